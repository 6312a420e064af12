//! The copy graph: root → bundles' images.yml → nested bundles → images → index children,
//! each manifest read once (deduplicated by digest), before anything is transferred.
use super::{CopyOptions, RelocateError, Source};
use crate::bundle::lock::ImagesLock;
use crate::bundle::tarball::TarballReader;
use crate::bundle::{BUNDLE_LABEL, layer::Limits};
use crate::registry::{Client, Descriptor, Digest, Manifest, ManifestBody, Reference};
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// Largest image config read while planning.
const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;
const IMAGES_YML: &str = ".imgpkg/images.yml";

#[derive(Clone, Debug)]
pub enum NodeKind {
    Image {
        config: Bytes,
        config_descriptor: Descriptor,
        layers: Vec<Descriptor>,
    },
    Index {
        children: Vec<Descriptor>,
    },
}

/// One manifest of the graph.
#[derive(Clone, Debug)]
pub struct Node {
    pub manifest: Manifest,
    pub kind: NodeKind,
    /// The repository it was read from (registry sources); blobs are read from there too.
    pub source: Option<Reference>,
    pub is_bundle: bool,
    /// A bundle's `.imgpkg/images.yml`, as written in the bundle.
    pub lock: Option<ImagesLock>,
    /// The ImagesLock value (or root reference) it was first reached through.
    pub orig_ref: String,
}

impl Node {
    /// `registry/repo@digest` where it was read, or the digest alone for tar sources.
    pub fn display_name(&self) -> String {
        match &self.source {
            Some(s) => s.with_digest(self.manifest.digest.clone()).to_string(),
            None if !self.orig_ref.is_empty() => self.orig_ref.clone(),
            None => self.manifest.digest.to_string(),
        }
    }
}

/// Something tagged `sha256-<hex>.imgpkg` at the destination: the root, every images.yml entry,
/// and each cosign signature copied with them.
#[derive(Clone, Debug, PartialEq)]
pub struct Top {
    pub digest: Digest,
    pub orig_ref: String,
    /// A tag it keeps at the destination besides imgpkg's (a signature's `sha256-<hex>.sig`, a
    /// tagged entry of a tarball); the root's own tag is in [`Root`].
    pub tag: Option<String>,
}

/// The root of a `-b`/`-i`/BundleLock copy and the tag it keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct Root {
    pub digest: Digest,
    pub tag: Option<String>,
}

/// The whole graph of a copy.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub nodes: HashMap<Digest, Node>,
    /// Every node once, children before parents.
    pub order: Vec<Digest>,
    pub tops: Vec<Top>,
    pub root: Option<Root>,
    /// Digests of every bundle in the graph.
    pub bundles: Vec<Digest>,
    /// Set when the source is a tarball: blobs are read from it.
    pub tarball: Option<Arc<TarballReader>>,
}

impl Plan {
    /// Total bytes of the blobs a transfer may move (config + layers, each digest once).
    pub fn blob_bytes(&self, include_non_distributable: bool) -> u64 {
        let mut seen = HashSet::new();
        let mut total = 0;
        for node in self.nodes.values() {
            if let NodeKind::Image {
                config_descriptor,
                layers,
                ..
            } = &node.kind
            {
                for d in std::iter::once(config_descriptor).chain(layers) {
                    if (include_non_distributable || is_distributable(&d.media_type))
                        && seen.insert(&d.digest)
                    {
                        total += d.size;
                    }
                }
            }
        }
        total
    }

    fn finish(&mut self) -> Result<(), RelocateError> {
        // Post-order from the tops, so a manifest is always pushed after what it references.
        let mut order = Vec::new();
        let mut done = HashSet::new();
        let tops: Vec<Digest> = self.tops.iter().map(|t| t.digest.clone()).collect();
        for top in &tops {
            self.visit(top, &mut done, &mut order, 0)?;
        }
        self.order = order;
        let mut bundles: Vec<Digest> = self
            .nodes
            .values()
            .filter(|n| n.is_bundle)
            .map(|n| n.manifest.digest.clone())
            .collect();
        bundles.sort();
        self.bundles = bundles;
        Ok(())
    }

    fn visit(
        &self,
        digest: &Digest,
        done: &mut HashSet<Digest>,
        order: &mut Vec<Digest>,
        depth: usize,
    ) -> Result<(), RelocateError> {
        if done.contains(digest) {
            return Ok(());
        }
        if depth > 32 {
            return Err(RelocateError::Invalid {
                what: format!("image index {digest}"),
                reason: "indexes nest more than 32 levels deep".into(),
            });
        }
        let Some(node) = self.nodes.get(digest) else {
            return Err(RelocateError::Invalid {
                what: format!("manifest {digest}"),
                reason: "it is referenced but was not found in the source".into(),
            });
        };
        if let NodeKind::Index { children } = &node.kind {
            for c in children {
                self.visit(&c.digest, done, order, depth + 1)?;
            }
        }
        done.insert(digest.clone());
        order.push(digest.clone());
        Ok(())
    }
}

pub use crate::registry::is_distributable;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Expect {
    Bundle,
    Image,
    /// An ImagesLock entry of `--lock`: a bundle is refused.
    LockedImage,
    Any,
}

pub(super) struct Item {
    /// Locations to try in order (the first that exists is used).
    pub(super) candidates: Vec<Reference>,
    pub(super) orig_ref: String,
    pub(super) expect: Expect,
    pub(super) top: bool,
    /// See [`Top::tag`].
    pub(super) tag: Option<String>,
    /// imgpkg records no origin for it (a cosign signature): its [`Top::orig_ref`] stays empty,
    /// as manifest.json's `"OrigRef":""`.
    pub(super) no_origin: bool,
}

struct Fetched {
    node: Node,
    next: Vec<Item>,
    top: Option<Top>,
}

/// Plan a copy whose source is a registry.
pub async fn plan_from_registry(
    client: &Client,
    source: &Source,
    options: &CopyOptions,
) -> Result<Plan, RelocateError> {
    let mut plan = Plan::default();
    let mut pending = Vec::new();
    let mut root_tag = None;
    let mut root_ref = None;
    match source {
        Source::Bundle(r) | Source::Image(r) => {
            root_tag = if r.digest().is_some() {
                None
            } else {
                r.tag().map(str::to_string)
            };
            root_ref = Some(r.clone());
            pending.push(Item {
                candidates: vec![r.clone()],
                orig_ref: String::new(),
                expect: if matches!(source, Source::Bundle(_)) {
                    Expect::Bundle
                } else {
                    Expect::Image
                },
                top: true,
                tag: None,
                // imgpkg records no origin for the image of an `-i` copy.
                no_origin: matches!(source, Source::Image(_)),
            });
        }
        Source::BundleLock(lock) => {
            let r = Reference::parse(&lock.image).map_err(|e| {
                RelocateError::registry(format!("reading the BundleLock image {:?}", lock.image), e)
            })?;
            if r.digest().is_none() {
                return Err(RelocateError::Invalid {
                    what: format!("BundleLock image {}", lock.image),
                    reason: "it must be a digest reference (…@sha256:…)".into(),
                });
            }
            root_tag = lock.tag.clone();
            root_ref = Some(r.clone());
            pending.push(Item {
                candidates: vec![r],
                orig_ref: String::new(),
                expect: Expect::Bundle,
                top: true,
                tag: None,
                no_origin: false,
            });
        }
        Source::ImagesLock(lock) => {
            for image in &lock.images {
                let r = Reference::parse(&image.image).map_err(|e| {
                    RelocateError::registry(format!("reading the ImagesLock image {:?}", image.image), e)
                })?;
                pending.push(Item {
                    candidates: vec![r],
                    orig_ref: image.image.clone(),
                    expect: Expect::LockedImage,
                    top: true,
                    tag: None,
                    no_origin: false,
                });
            }
        }
        Source::Tarball(path) => {
            return Err(RelocateError::Usage(format!(
                "{} is a tarball: plan it with plan_from_tarball",
                path.display()
            )));
        }
    }

    let mut requested: HashSet<Digest> = HashSet::new();
    let root = root_ref.map(|_| root_tag);
    drain(client, &mut plan, pending, &mut requested, &root, options).await?;
    if options.cosign_signatures {
        // imgpkg looks signatures up for what it copies (not for index children, nor for the
        // signatures themselves), once the whole graph is known.
        let signatures = super::signatures::signature_items(client, &plan, options).await?;
        drain(client, &mut plan, signatures, &mut requested, &root, options).await?;
    }
    plan.finish()?;
    Ok(plan)
}

/// Read every pending item and what it leads to (nested bundles, index children) into `plan`.
/// `root`: `Some(tag)` when the first node read is the copy's root.
async fn drain(
    client: &Client,
    plan: &mut Plan,
    mut pending: Vec<Item>,
    requested: &mut HashSet<Digest>,
    root: &Option<Option<String>>,
    options: &CopyOptions,
) -> Result<(), RelocateError> {
    let parallel = (options.concurrency * 2).max(4);
    while !pending.is_empty() {
        let mut batch = Vec::new();
        for item in std::mem::take(&mut pending) {
            let Some(d) = item.candidates.first().and_then(|c| c.digest()).cloned() else {
                batch.push(item);
                continue;
            };
            if requested.insert(d.clone()) {
                batch.push(item);
            } else if item.top {
                // Already read through another path; it still gets its own tag(s).
                add_top(
                    plan,
                    Top {
                        digest: d,
                        orig_ref: item.orig_ref,
                        tag: item.tag,
                    },
                );
            }
        }
        let results: Vec<Result<Fetched, RelocateError>> = futures_util::stream::iter(batch)
            .map(|item| fetch_item(client, item, options))
            .buffer_unordered(parallel)
            .collect()
            .await;
        for result in results {
            let fetched = result?;
            let digest = fetched.node.manifest.digest.clone();
            if let Some(top) = fetched.top {
                add_top(plan, top);
            }
            if plan.nodes.contains_key(&digest) {
                continue;
            }
            requested.insert(digest.clone());
            if let Some(tag) = root
                && plan.root.is_none()
            {
                plan.root = Some(Root {
                    digest: digest.clone(),
                    tag: tag.clone(),
                });
            }
            pending.extend(fetched.next);
            plan.nodes.insert(digest, fetched.node);
        }
    }
    Ok(())
}

/// Record a top-level image once; a later path may add the extra tag an earlier one lacked.
fn add_top(plan: &mut Plan, top: Top) {
    match plan.tops.iter_mut().find(|t| t.digest == top.digest) {
        Some(existing) if existing.tag.is_none() => existing.tag = top.tag,
        Some(_) => {}
        None => plan.tops.push(top),
    }
}

async fn fetch_item(client: &Client, item: Item, options: &CopyOptions) -> Result<Fetched, RelocateError> {
    // imgpkg's FirstImageExists: a bundle relocated earlier is read from its own repository.
    // A candidate that cannot be read (absent, denied) is passed over, as imgpkg does; when none
    // can, the last one's real error is reported by the GET below.
    let mut location = item.candidates[item.candidates.len() - 1].clone();
    if item.candidates.len() > 1 {
        // The last candidate needs no HEAD: it is used whenever the others are not there.
        for candidate in &item.candidates[..item.candidates.len() - 1] {
            if let Ok(Some(_)) = client.head_manifest(candidate).await {
                location = candidate.clone();
                break;
            }
        }
    }
    let manifest = client.get_manifest(&location).await.map_err(|e| {
        let action = if item.orig_ref.is_empty() || item.orig_ref == location.to_string() {
            format!("reading the manifest of {location}")
        } else {
            format!("reading the manifest of {location} (for {})", item.orig_ref)
        };
        // What the copy starts from is read as imgpkg reads it: `Fetching image: …`.
        if item.top {
            RelocateError::fetching_image(action, e)
        } else {
            RelocateError::registry(action, e)
        }
    })?;
    let digest = manifest.digest.clone();
    let repo = location.with_digest(digest.clone());
    let display = repo.to_string();
    let body = manifest
        .parse()
        .map_err(|e| RelocateError::registry(format!("reading the manifest of {display}"), e))?;
    let orig_ref = if item.orig_ref.is_empty() {
        display.clone()
    } else {
        item.orig_ref.clone()
    };
    let top = item.top.then(|| Top {
        digest: digest.clone(),
        orig_ref: if item.no_origin {
            String::new()
        } else {
            orig_ref.clone()
        },
        tag: item.tag.clone(),
    });
    match body {
        ManifestBody::Index(index) => {
            if item.expect == Expect::Bundle {
                return Err(RelocateError::NotABundle { reference: display });
            }
            let next = index
                .manifests
                .iter()
                .map(|child| Item {
                    candidates: vec![location.with_digest(child.digest.clone())],
                    orig_ref: orig_ref.clone(),
                    expect: Expect::Any,
                    top: false,
                    tag: None,
                    no_origin: false,
                })
                .collect();
            Ok(Fetched {
                node: Node {
                    manifest,
                    kind: NodeKind::Index {
                        children: index.manifests,
                    },
                    source: Some(location),
                    is_bundle: false,
                    lock: None,
                    orig_ref,
                },
                next,
                top,
            })
        }
        ManifestBody::Image(image) => {
            let config = client
                .get_blob_bytes(&location, &image.config.digest, MAX_CONFIG_BYTES)
                .await
                .map_err(|e| RelocateError::registry(format!("reading the config of {display}"), e))?;
            let labels = crate::bundle::image::config_labels(&config)
                .map_err(|e| RelocateError::bundle(format!("reading the labels of {display}"), e))?;
            let is_bundle = labels.contains_key(BUNDLE_LABEL);
            match (item.expect, is_bundle) {
                (Expect::Bundle, false) => return Err(RelocateError::NotABundle { reference: display }),
                (Expect::Image, true) => return Err(RelocateError::IsABundle { reference: display }),
                (Expect::LockedImage, true) => {
                    return Err(RelocateError::BundleInImagesLock { image: display });
                }
                _ => {}
            }
            let mut lock = None;
            let mut next = Vec::new();
            if is_bundle {
                let images =
                    read_bundle_lock_from_registry(client, &location, &display, &image.layers, options)
                        .await?;
                next = lock_items(&images, &location)?;
                lock = Some(images);
            }
            Ok(Fetched {
                node: Node {
                    manifest,
                    kind: NodeKind::Image {
                        config,
                        config_descriptor: image.config,
                        layers: image.layers,
                    },
                    source: Some(location),
                    is_bundle,
                    lock,
                    orig_ref,
                },
                next,
                top,
            })
        }
    }
}

/// images.yml entries to visit: each read from the bundle's own repository when it is there
/// (a bundle copied before), else from where images.yml says.
fn lock_items(lock: &ImagesLock, bundle_repo: &Reference) -> Result<Vec<Item>, RelocateError> {
    let mut items = Vec::new();
    for entry in &lock.images {
        let original = Reference::parse(&entry.image)
            .map_err(|e| RelocateError::registry(format!("reading images.yml entry {:?}", entry.image), e))?;
        let Some(digest) = original.digest().cloned() else {
            return Err(RelocateError::Invalid {
                what: format!("images.yml entry {}", entry.image),
                reason: "Expected ref to be in digest form".into(),
            });
        };
        let local = bundle_repo.with_digest(digest);
        let candidates = if local.repository_name() == original.repository_name() {
            vec![local]
        } else {
            vec![
                local,
                original.with_digest(original.digest().cloned().expect("checked")),
            ]
        };
        items.push(Item {
            candidates,
            orig_ref: entry.image.clone(),
            expect: Expect::Any,
            top: true,
            tag: None,
            no_origin: false,
        });
    }
    Ok(items)
}

fn bundle_limits(options: &CopyOptions) -> Limits {
    Limits {
        max_bytes: options.max_bundle_layer_bytes.saturating_mul(4),
        max_files: 100_000,
        max_depth: 64,
    }
}

fn single_layer<'a>(display: &str, layers: &'a [Descriptor]) -> Result<&'a Descriptor, RelocateError> {
    match layers {
        [one] => Ok(one),
        _ => Err(RelocateError::Invalid {
            what: format!("bundle {display}"),
            reason: format!(
                "Expected bundle to only have a single layer, got {}",
                layers.len()
            ),
        }),
    }
}

fn parse_images_yml(display: &str, files: &crate::bundle::FileTree) -> Result<ImagesLock, RelocateError> {
    let Some(yaml) = files.get(IMAGES_YML) else {
        return Err(RelocateError::Invalid {
            what: format!("bundle {display}"),
            reason: format!("it has no {IMAGES_YML}"),
        });
    };
    ImagesLock::parse(yaml)
        .map_err(|e| RelocateError::bundle(format!("reading {IMAGES_YML} of bundle {display}"), e))
}

async fn read_bundle_lock_from_registry(
    client: &Client,
    location: &Reference,
    display: &str,
    layers: &[Descriptor],
    options: &CopyOptions,
) -> Result<ImagesLock, RelocateError> {
    let layer = single_layer(display, layers)?;
    if layer.size > options.max_bundle_layer_bytes {
        return Err(RelocateError::Invalid {
            what: format!("bundle {display}"),
            reason: format!(
                "its layer is {} bytes, more than the {} read to find {IMAGES_YML}",
                layer.size, options.max_bundle_layer_bytes
            ),
        });
    }
    let mut stream = client
        .get_blob(location, layer)
        .await
        .map_err(|e| RelocateError::registry(format!("reading the layer of bundle {display}"), e))?;
    // Grows as bytes arrive: the manifest's claimed size is not reserved up front.
    let mut bytes = Vec::with_capacity(layer.size.min(1 << 20) as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| RelocateError::registry(format!("reading the layer of bundle {display}"), e))?;
        bytes.extend_from_slice(&chunk);
    }
    let limits = bundle_limits(options);
    let display_owned = display.to_string();
    let files = tokio::task::spawn_blocking(move || {
        crate::bundle::layer::read_to_memory(&bytes[..], &limits)
            .map_err(|e| RelocateError::bundle(format!("reading the layer of bundle {display_owned}"), e))
    })
    .await
    .map_err(|e| RelocateError::Task(e.to_string()))??;
    parse_images_yml(display, &files)
}

/// Plan an import from a tarball (no network).
pub async fn plan_from_tarball(path: &Path, options: &CopyOptions) -> Result<Plan, RelocateError> {
    let owned = path.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || TarballReader::open(&owned))
        .await
        .map_err(|e| RelocateError::Task(e.to_string()))??;
    let reader = Arc::new(reader);
    let mut plan = Plan {
        tarball: Some(reader.clone()),
        ..Plan::default()
    };
    let root_digest = reader.root().map(|r| r.manifest.digest.clone());
    for image in reader.images() {
        let display = if image.orig_ref.is_empty() {
            image.manifest.digest.to_string()
        } else {
            image.orig_ref.clone()
        };
        let body = image.manifest.parse().map_err(|e| {
            RelocateError::registry(
                format!("reading the manifest of {display} in {}", path.display()),
                e,
            )
        })?;
        let (kind, is_bundle) = match body {
            ManifestBody::Index(index) => (
                NodeKind::Index {
                    children: index.manifests,
                },
                false,
            ),
            ManifestBody::Image(m) => {
                let config = image.config.clone().ok_or_else(|| RelocateError::Invalid {
                    what: format!("image {display} in {}", path.display()),
                    reason: "manifest.json records an image manifest without its config".into(),
                })?;
                let labels = crate::bundle::image::config_labels(&config)
                    .map_err(|e| RelocateError::bundle(format!("reading the labels of {display}"), e))?;
                (
                    NodeKind::Image {
                        config,
                        config_descriptor: m.config,
                        layers: m.layers,
                    },
                    labels.contains_key(BUNDLE_LABEL),
                )
            }
        };
        let mut lock = None;
        if is_bundle && let NodeKind::Image { layers, .. } = &kind {
            let layer = single_layer(&display, layers)?.clone();
            let reader = reader.clone();
            let limits = bundle_limits(options);
            let d = display.clone();
            let files = tokio::task::spawn_blocking(move || -> Result<_, RelocateError> {
                let r = reader.open_layer(&layer.digest)?;
                crate::bundle::layer::read_to_memory(r, &limits)
                    .map_err(|e| RelocateError::bundle(format!("reading the layer of bundle {d}"), e))
            })
            .await
            .map_err(|e| RelocateError::Task(e.to_string()))??;
            lock = Some(parse_images_yml(&display, &files)?);
        }
        if image.top_level {
            // imgpkg names an entry without OrigRef (a signature, an `-i` copy) by where it was
            // read from; repo-based tags are derived from that.
            let orig_ref = match (image.orig_ref.is_empty(), image.refs.first()) {
                (true, Some(read_from)) => read_from.clone(),
                _ => image.orig_ref.clone(),
            };
            // The root's tag is written as the root's (see `Root`); any other tagged entry keeps
            // its tag too, as imgpkg tags every entry that has one.
            let is_root = root_digest.as_ref() == Some(&image.manifest.digest);
            plan.tops.push(Top {
                digest: image.manifest.digest.clone(),
                orig_ref,
                tag: image.tag.clone().filter(|_| !is_root),
            });
        }
        plan.nodes.insert(
            image.manifest.digest.clone(),
            Node {
                manifest: image.manifest.clone(),
                kind,
                source: None,
                is_bundle,
                lock,
                orig_ref: image.orig_ref.clone(),
            },
        );
    }
    if let Some(root) = reader.root() {
        plan.root = Some(Root {
            digest: root.manifest.digest.clone(),
            tag: root.tag.clone(),
        });
    }
    plan.finish()?;
    Ok(plan)
}
