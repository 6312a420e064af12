//! `copy`: plan the graph of bundles and images, then registry → registry, → tar, tar → registry.
//!
//! Planning reads every manifest (and every bundle's `.imgpkg/images.yml`) first, so the transfer
//! knows the whole graph: it pushes bottom-up, moves each blob at most once, and skips whatever
//! the destination already holds (a tag at the right digest skips everything under it).
mod error;
mod plan;
mod progress;
mod push;
mod signatures;
mod tags;
mod tar_export;
mod tar_import;

pub use error::RelocateError;
pub use plan::{Node, NodeKind, Plan, Root, Top, plan_from_registry, plan_from_tarball};
pub use progress::{Milestone, Progress, ProgressMode};
pub use signatures::{SignatureFailure, SignatureLookupError};
pub use tags::{TagStyle, repo_based_tag};

use crate::bundle::lock::{BundleLock, ImagesLock, LockedImage};
use crate::registry::{Client, Reference};
use std::path::PathBuf;
use std::sync::Arc;

/// What to copy.
#[derive(Clone, Debug)]
pub enum Source {
    /// `-b REF`: a bundle, followed through its images.yml (nested bundles at any depth).
    Bundle(Reference),
    /// `-i REF`: a plain image or index (a bundle is refused).
    Image(Reference),
    /// `--lock` with a BundleLock.
    BundleLock(BundleLock),
    /// `--lock` with an ImagesLock (plain images only).
    ImagesLock(ImagesLock),
    /// `--tar FILE` (never contacts the source registry).
    Tarball(PathBuf),
}

/// Where to copy to.
#[derive(Clone, Debug)]
pub enum Destination {
    /// `--to-repo`: one repository receives everything.
    Repository(Reference),
    /// `--to-tar FILE`, optionally re-using a partial file.
    Tarball { path: PathBuf, resume: bool },
}

/// Knobs of one copy.
#[derive(Clone, Debug)]
pub struct CopyOptions {
    /// Parallel transfers (and parallel manifest reads while planning).
    pub concurrency: usize,
    /// Copy non-distributable (foreign) layers too.
    pub include_non_distributable: bool,
    /// Attempts per blob (re-opening the source each time) before the copy fails.
    pub blob_attempts: u32,
    /// Largest bundle layer read while planning (it is held in memory to read images.yml).
    pub max_bundle_layer_bytes: u64,
    /// The tag each top-level image gets at a destination repository (`--repo-based-tags`).
    pub tag_style: TagStyle,
    /// Copy the cosign signature (`sha256-<hex>.sig`) of every image found in a source registry
    /// (`--cosign-signatures`); signatures inside a tarball are always imported.
    pub cosign_signatures: bool,
    /// `--verify-key`: when not empty, the root (every image of an ImagesLock) must carry a
    /// cosign signature one of these keys made, checked after planning, before anything is
    /// written.
    pub verify_keys: Arc<[crate::verify::PublicKey]>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            concurrency: 5,
            include_non_distributable: false,
            blob_attempts: 3,
            max_bundle_layer_bytes: 256 * 1024 * 1024,
            tag_style: TagStyle::Digest,
            cosign_signatures: false,
            verify_keys: Arc::from([]),
        }
    }
}

/// What a copy did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CopySummary {
    /// Images and indexes in the graph.
    pub images: usize,
    pub bundles: usize,
    pub blobs_transferred: usize,
    pub blobs_skipped: usize,
    pub blobs_mounted: usize,
    /// Layers re-used from an earlier partial tarball (`--resume`).
    pub blobs_resumed: usize,
    pub bytes_transferred: u64,
    pub manifests_written: usize,
    pub manifests_skipped: usize,
    /// Non-distributable layers left out (without `--include-non-distributable-layers`).
    pub non_distributable_skipped: usize,
    /// For repository destinations: the root (or every image of an ImagesLock) at the destination.
    pub lock: Option<LockOutput>,
}

/// What `--lock-output` writes after a copy to a repository.
#[derive(Clone, Debug, PartialEq)]
pub enum LockOutput {
    Bundle(BundleLock),
    Images(ImagesLock),
}

/// Registry clients for the two sides (they differ when credentials differ; may be the same).
#[derive(Clone, Debug)]
pub struct Clients {
    pub source: Client,
    pub destination: Client,
}

/// Run one copy: plan, then transfer.
pub async fn copy(
    clients: &Clients,
    source: &Source,
    destination: &Destination,
    options: &CopyOptions,
    progress: Arc<Progress>,
) -> Result<CopySummary, RelocateError> {
    let options = CopyOptions {
        concurrency: options.concurrency.max(1),
        blob_attempts: options.blob_attempts.max(1),
        ..options.clone()
    };
    // The destination's current root tag is read while the source is planned: it overlaps the
    // destination's connection and auth set-up with the source's, and a warm copy needs it.
    let root_tag = match (source, destination) {
        (Source::Bundle(r) | Source::Image(r), Destination::Repository(repo)) if r.digest().is_none() => {
            r.tag().map(|t| repo.with_tag(t))
        }
        (Source::BundleLock(lock), Destination::Repository(repo)) => {
            lock.tag.as_deref().map(|t| repo.with_tag(t))
        }
        _ => None,
    };
    let root_head = async {
        match &root_tag {
            // An error leaves it unknown: the tag is checked again before it is written.
            Some(at) => clients
                .destination
                .head_manifest(at)
                .await
                .ok()
                .map(|h| h.map(|h| h.digest)),
            None => None,
        }
    };
    let planning = async {
        match source {
            Source::Tarball(path) => {
                if let Destination::Tarball { .. } = destination {
                    return Err(RelocateError::Usage(
                        "copying a tarball to a tarball is not supported: use --to-repo with --tar".into(),
                    ));
                }
                plan_from_tarball(path, &options).await
            }
            other => plan_from_registry(&clients.source, other, &options).await,
        }
    };
    let (plan, root_head) = futures_util::join!(planning, root_head);
    let plan = plan?;
    verify_root(clients, &plan, &options).await?;
    progress.planned(&plan);
    // imgpkg lists what it exports sorted by reference.
    let mut exported: Vec<String> = plan
        .tops
        .iter()
        .map(|t| {
            plan.nodes
                .get(&t.digest)
                .map_or_else(|| t.orig_ref.clone(), |n| n.display_name())
        })
        .collect();
    exported.sort();
    progress.milestone(Milestone::Planned { images: exported });
    let plan = Arc::new(plan);
    let mut summary = match destination {
        Destination::Repository(repo) => {
            progress.milestone(Milestone::Importing {
                images: plan.tops.len(),
            });
            push::push_plan(
                &clients.source,
                &clients.destination,
                plan.clone(),
                repo,
                &options,
                progress.clone(),
                root_head,
            )
            .await?
        }
        Destination::Tarball { path, resume } => {
            progress.milestone(Milestone::Writing);
            tar_export::export_plan(&clients.source, &plan, path, *resume, &options, progress.clone()).await?
        }
    };
    if let Destination::Repository(_) = destination {
        progress.milestone(Milestone::Uploaded);
    }
    progress.milestone(Milestone::NonDistributable {
        included: options.include_non_distributable,
        images: non_distributable_layers(&plan, destination),
    });
    summary.images = plan.nodes.len();
    summary.bundles = plan.bundles.len();
    if let Destination::Repository(repo) = destination {
        summary.lock = Some(lock_output(&plan, source, repo));
    }
    progress.finished(&summary);
    Ok(summary)
}

/// Every image with non-distributable (foreign) layers, and those layers' digests, as imgpkg
/// lists them after a copy: the top-level images in the order of where they were read, each
/// index followed through its children in manifest order; an image is named by where it now is
/// (`DEST@digest`) after a copy to a repository, by where it was read after one to a tarball.
fn non_distributable_layers(plan: &Plan, destination: &Destination) -> Vec<(String, Vec<String>)> {
    // A tarball records where each image was read (imgpkg's first `Refs` entry).
    let recorded: std::collections::HashMap<&crate::registry::Digest, &String> = plan
        .tarball
        .iter()
        .flat_map(|t| t.images())
        .filter_map(|i| Some((&i.manifest.digest, i.refs.first()?)))
        .collect();
    let read_from = |digest: &crate::registry::Digest| -> String {
        recorded.get(digest).map(|r| r.to_string()).unwrap_or_else(|| {
            plan.nodes
                .get(digest)
                .map_or_else(|| digest.to_string(), Node::display_name)
        })
    };
    let mut tops: Vec<(String, &crate::registry::Digest)> = plan
        .tops
        .iter()
        .map(|t| (read_from(&t.digest), &t.digest))
        .collect();
    tops.sort();
    tops.dedup();
    let mut images = Vec::new();
    let mut pending: Vec<&crate::registry::Digest> = tops.iter().rev().map(|(_, d)| *d).collect();
    while let Some(digest) = pending.pop() {
        let Some(node) = plan.nodes.get(digest) else {
            continue;
        };
        match &node.kind {
            NodeKind::Index { children } => pending.extend(children.iter().rev().map(|c| &c.digest)),
            NodeKind::Image { layers, .. } => {
                let foreign: Vec<String> = layers
                    .iter()
                    .filter(|l| !plan::is_distributable(&l.media_type))
                    .map(|l| l.digest.to_string())
                    .collect();
                if foreign.is_empty() {
                    continue;
                }
                let name = match destination {
                    Destination::Repository(repo) => repo.with_digest(digest.clone()).to_string(),
                    Destination::Tarball { .. } => node.display_name(),
                };
                images.push((name, foreign));
            }
        }
    }
    images
}

/// The destination lock: a BundleLock for a bundle root, else an ImagesLock of every top image.
fn lock_output(plan: &Plan, source: &Source, repo: &Reference) -> LockOutput {
    if let Some(root) = &plan.root
        && plan.nodes.get(&root.digest).is_some_and(|n| n.is_bundle)
    {
        return LockOutput::Bundle(BundleLock {
            image: repo.with_digest(root.digest.clone()).to_string(),
            tag: root.tag.clone(),
        });
    }
    let images = match source {
        // Keep the input's order and annotations.
        Source::ImagesLock(lock) => lock
            .images
            .iter()
            .map(|i| LockedImage {
                image: Reference::parse(&i.image)
                    .ok()
                    .and_then(|r| r.digest().cloned())
                    .map(|d| repo.with_digest(d).to_string())
                    .unwrap_or_else(|| i.image.clone()),
                annotations: i.annotations.clone(),
            })
            .collect(),
        _ => plan
            .tops
            .iter()
            .map(|t| LockedImage {
                image: repo.with_digest(t.digest.clone()).to_string(),
                annotations: Default::default(),
            })
            .collect(),
    };
    LockOutput::Images(ImagesLock { images })
}

/// `--verify-key`: refuse the copy unless every root of the plan is signed by one of the keys.
async fn verify_root(clients: &Clients, plan: &Plan, options: &CopyOptions) -> Result<(), RelocateError> {
    if options.verify_keys.is_empty() {
        return Ok(());
    }
    let source = match &plan.tarball {
        Some(reader) => crate::verify::SignatureSource::Tarball(reader),
        None => crate::verify::SignatureSource::Registry(&clients.source),
    };
    let none = std::collections::BTreeMap::new();
    for subject in crate::verify::subjects(plan, false) {
        crate::verify::verify(source, &subject, &options.verify_keys, &none)
            .await
            .map_err(|e| RelocateError::Unverified(Box::new(e)))?;
    }
    Ok(())
}
