//! Registry → tarball: manifest.json from the plan, then every layer streamed into its place in
//! the laid-out file, in parallel, largest first; `--resume` keeps what a partial file holds.
use super::plan::{NodeKind, Plan, is_distributable};
use super::push::chain;
use super::{CopyOptions, CopySummary, Milestone, Progress, RelocateError};
use crate::bundle::tarball::{ROOT_BUNDLE_LABEL, TarImage, TarLayer, TarballWriter, manifest_json};
use crate::registry::{BlobSource, Client, Descriptor, Digest, Reference};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// What manifest.json records about where a node came from, inherited by index children.
#[derive(Clone)]
struct Provenance {
    tag: Option<String>,
    orig_ref: String,
    labels: BTreeMap<String, String>,
}

/// The manifest.json entries of a plan (children before parents).
pub(super) fn tar_images(plan: &Plan) -> Result<Vec<TarImage>, RelocateError> {
    let mut provenance: HashMap<Digest, Provenance> = HashMap::new();
    let mut queue: Vec<(Digest, Provenance)> = Vec::new();
    for top in &plan.tops {
        let mut p = Provenance {
            tag: top.tag.clone(),
            orig_ref: top.orig_ref.clone(),
            labels: BTreeMap::new(),
        };
        if let Some(root) = plan.root.as_ref().filter(|r| r.digest == top.digest) {
            p.tag = root.tag.clone();
            if plan.nodes.get(&root.digest).is_some_and(|n| n.is_bundle) {
                p.labels.insert(ROOT_BUNDLE_LABEL.to_string(), String::new());
            }
        }
        queue.push((top.digest.clone(), p));
    }
    while let Some((digest, p)) = queue.pop() {
        if provenance.contains_key(&digest) {
            continue;
        }
        if let Some(NodeKind::Index { children }) = plan.nodes.get(&digest).map(|n| &n.kind) {
            for c in children {
                queue.push((c.digest.clone(), p.clone()));
            }
        }
        provenance.insert(digest, p);
    }
    let tops: HashSet<&Digest> = plan.tops.iter().map(|t| &t.digest).collect();
    let mut out = Vec::new();
    for digest in &plan.order {
        let node = &plan.nodes[digest];
        let p = provenance.get(digest).cloned().unwrap_or(Provenance {
            tag: None,
            orig_ref: node.orig_ref.clone(),
            labels: BTreeMap::new(),
        });
        let refs = node
            .source
            .as_ref()
            .map(|s| vec![s.with_digest(digest.clone()).to_string()])
            .unwrap_or_default();
        let (config, layers, children) = match &node.kind {
            NodeKind::Image { config, layers, .. } => {
                let diff_ids = diff_ids(config);
                let layers = layers
                    .iter()
                    .enumerate()
                    .map(|(i, l)| TarLayer {
                        media_type: l.media_type.clone(),
                        digest: l.digest.clone(),
                        diff_id: diff_ids.get(i).cloned().unwrap_or_default(),
                        size: l.size,
                    })
                    .collect();
                (Some(config.clone()), layers, Vec::new())
            }
            NodeKind::Index { children } => (
                None,
                Vec::new(),
                children.iter().map(|c| c.digest.clone()).collect(),
            ),
        };
        out.push(TarImage {
            manifest: node.manifest.clone(),
            config,
            layers,
            children,
            tag: p.tag,
            orig_ref: p.orig_ref,
            refs,
            labels: p.labels,
            top_level: tops.contains(digest),
        });
    }
    Ok(out)
}

/// `rootfs.diff_ids` of a config (empty when absent or unreadable: imgpkg then records `""`).
fn diff_ids(config: &[u8]) -> Vec<String> {
    serde_json::from_slice::<serde_json::Value>(config)
        .ok()
        .and_then(|v| {
            v.get("rootfs")?
                .get("diff_ids")?
                .as_array()
                .map(|a| a.iter().filter_map(|d| d.as_str().map(str::to_string)).collect())
        })
        .unwrap_or_default()
}

pub(super) async fn export_plan(
    source: &Client,
    plan: &Plan,
    path: &Path,
    resume: bool,
    options: &CopyOptions,
    progress: Arc<Progress>,
) -> Result<CopySummary, RelocateError> {
    let images = tar_images(plan)?;
    let json = manifest_json(&images)?;
    // Each layer once, with a repository to read it from.
    let mut layers: BTreeMap<Digest, (Descriptor, Reference, String)> = BTreeMap::new();
    let mut non_distributable = HashSet::new();
    for digest in &plan.order {
        let node = &plan.nodes[digest];
        if let NodeKind::Image { layers: ls, .. } = &node.kind {
            for l in ls {
                if !options.include_non_distributable && !is_distributable(&l.media_type) {
                    non_distributable.insert(l.digest.clone());
                    continue;
                }
                if let Some(from) = &node.source {
                    layers
                        .entry(l.digest.clone())
                        .or_insert_with(|| (l.clone(), from.clone(), node.display_name()));
                }
            }
        }
    }
    let sizes: Vec<(Digest, u64)> = layers.iter().map(|(d, (l, _, _))| (d.clone(), l.size)).collect();
    let owned_path = path.to_path_buf();
    let started = std::time::Instant::now();
    let writer =
        tokio::task::spawn_blocking(move || TarballWriter::create(&owned_path, &json, &sizes, resume))
            .await
            .map_err(|e| RelocateError::Task(e.to_string()))??;
    progress.milestone(Milestone::FileWritten {
        name: "manifest.json".to_string(),
        elapsed: started.elapsed(),
    });
    let writer = Arc::new(writer);
    let missing = writer.missing();
    let resumed = layers.len() - missing.len();
    if resume {
        let r = writer.resume_report();
        progress.note(&format!(
            "resume: {} layer(s) re-used from {}, {} to fetch ({} damaged or incomplete)",
            r.reused_in_place + r.reused_copied,
            path.display(),
            missing.len(),
            r.corrupt
        ));
    }
    progress.set_total(missing.iter().map(|(_, s)| *s).sum());
    let transferred = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    futures_util::stream::iter(missing.iter())
        .map(|(digest, _)| {
            let (descriptor, from, image) = &layers[digest];
            let writer = writer.clone();
            let progress = progress.clone();
            let (transferred, bytes) = (&transferred, &bytes);
            async move {
                fill_with_retries(source, &writer, descriptor, from, image, options, &progress).await?;
                transferred.fetch_add(1, Ordering::Relaxed);
                bytes.fetch_add(descriptor.size, Ordering::Relaxed);
                Ok::<(), RelocateError>(())
            }
        })
        // Layers stream from the registry in parallel; beyond a few streams only memory grows.
        .buffer_unordered(options.concurrency.clamp(1, super::push::MAX_LARGE_STREAMS))
        .try_collect::<Vec<()>>()
        .await?;
    let writer = Arc::into_inner(writer)
        .ok_or_else(|| RelocateError::Task("a layer writer is still running".into()))?;
    tokio::task::spawn_blocking(move || writer.finish())
        .await
        .map_err(|e| RelocateError::Task(e.to_string()))??;
    Ok(CopySummary {
        blobs_transferred: transferred.load(Ordering::Relaxed),
        blobs_resumed: resumed,
        bytes_transferred: bytes.load(Ordering::Relaxed),
        non_distributable_skipped: non_distributable.len(),
        ..CopySummary::default()
    })
}

async fn fill_with_retries(
    source: &Client,
    writer: &Arc<TarballWriter>,
    descriptor: &Descriptor,
    from: &Reference,
    image: &str,
    options: &CopyOptions,
    progress: &Arc<Progress>,
) -> Result<(), RelocateError> {
    // A foreign layer's URLs are tried in turn across the attempts: one that failed is not
    // asked again (see `BlobSource`).
    let blob_source = source.blob_source(from, descriptor);
    let attempts = options.blob_attempts;
    let mut failures = 0;
    loop {
        let sent = Arc::new(AtomicU64::new(0));
        let started = std::time::Instant::now();
        let error = match fill_once(&blob_source, writer, descriptor, from, progress, sent.clone()).await {
            Ok(()) => {
                progress.milestone(Milestone::FileWritten {
                    name: format!("{}.tar.gz", descriptor.digest.dashed()),
                    elapsed: started.elapsed(),
                });
                progress.item(&format!(
                    "wrote layer {} ({} bytes) of {image}",
                    descriptor.digest, descriptor.size
                ));
                return Ok(());
            }
            Err(error) => error,
        };
        progress.retract(sent.load(Ordering::Relaxed));
        if let Some((url, why)) = blob_source.passed_over() {
            progress.note(&format!(
                "layer {} of {image}: {url} failed ({why}); trying the next URL",
                descriptor.digest
            ));
            continue;
        }
        failures += 1;
        if failures == attempts || blob_source.exhausted() {
            return Err(RelocateError::Blob {
                image: image.to_string(),
                digest: descriptor.digest.clone(),
                destination: format!(
                    "tarball {} (run again with --resume to keep what arrived)",
                    writer.target().display()
                ),
                attempts: failures,
                source: error.into(),
            });
        }
        progress.note(&format!(
            "layer {} of {image} failed (attempt {failures} of {attempts}): {error}; retrying",
            descriptor.digest
        ));
    }
}

/// Stream one layer from the registry into its slot; a blocking task does the file writes.
async fn fill_once(
    source: &BlobSource,
    writer: &Arc<TarballWriter>,
    descriptor: &Descriptor,
    from: &Reference,
    progress: &Arc<Progress>,
    sent: Arc<AtomicU64>,
) -> Result<(), String> {
    let mut stream = source
        .open()
        .await
        .map_err(|e| format!("reading it from {}: {}", from.repository_name(), chain(&e)))?;
    // The blob stream checks size and digest at its end; the slot only counts once it has.
    let mut sink = writer
        .verified_layer_sink(&descriptor.digest)
        .map_err(|e| e.to_string())?;
    // One chunk in flight per layer keeps memory flat when the disk is slower than the network.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let write = tokio::task::spawn_blocking(move || {
        while let Some(chunk) = rx.blocking_recv() {
            sink.write(&chunk)?;
        }
        Ok::<_, crate::bundle::tarball::TarballError>(sink)
    });
    let mut stream_error = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                progress.add(chunk.len() as u64);
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                stream_error = Some(format!(
                    "reading it from {}: {}",
                    from.repository_name(),
                    chain(&e)
                ));
                break;
            }
        }
    }
    drop(tx);
    let written = write.await.map_err(|e| e.to_string())?;
    if let Some(e) = stream_error {
        return Err(e);
    }
    // Only a stream that ended cleanly (verified) marks the layer as written.
    written.and_then(|sink| sink.finish()).map_err(|e| e.to_string())
}
