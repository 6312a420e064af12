//! One blob's transfer into the destination repository: present already, missing from the
//! tarball (then from the image's origin), mounted, or uploaded (read whole when small, else
//! streamed) with retries; a foreign layer's URLs are tried in turn across the attempts.
use super::{Pusher, SMALL_BLOB, chain};
use crate::registry::{BlobSource, Descriptor, Digest};
use crate::relocate::RelocateError;
use crate::relocate::plan::{Node, NodeKind};
use crate::relocate::tar_import::{self, tar_layer_stream};
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

impl Pusher {
    pub(super) async fn transfer_blob(
        &self,
        descriptor: &Descriptor,
        node: &Node,
    ) -> Result<(), RelocateError> {
        let _permit = self
            .transfers
            .acquire()
            .await
            .map_err(|e| RelocateError::Task(e.to_string()))?;
        let digest = &descriptor.digest;
        match self.destination.blob_exists(&self.repo, digest).await {
            Ok(true) => {
                self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                self.progress.skip(descriptor.size);
                return Ok(());
            }
            Ok(false) => {}
            Err(e) => return Err(self.blob_error(node, digest, 1, Box::new(e))),
        }
        // A layer the tarball does not hold (one left out without
        // --include-non-distributable-layers) will not appear by trying again: it comes from
        // where the image was exported, when that is on the destination registry, or the copy
        // fails at once, in imgpkg's words. Configs travel in manifest.json, not as entries.
        if let Some(tarball) = &self.plan.tarball
            && !is_config(node, digest)
            && let Err(missing) = tarball.require_layer(digest)
        {
            let from = tar_import::missing_layer(
                &self.destination,
                &self.repo,
                tarball,
                missing,
                &node.manifest.digest,
                descriptor,
                &self.progress,
            )
            .await?;
            match from {
                tar_import::FromOrigin::Mounted(origin) => {
                    self.stats.mounted.fetch_add(1, Ordering::Relaxed);
                    self.progress.skip(descriptor.size);
                    self.progress.item(&format!(
                        "mounted blob {digest}, which the tarball lacks, from {}",
                        origin.repository_name()
                    ));
                }
                tar_import::FromOrigin::Uploaded(origin) => {
                    self.stats.transferred.fetch_add(1, Ordering::Relaxed);
                    self.stats.bytes.fetch_add(descriptor.size, Ordering::Relaxed);
                    self.progress.item(&format!(
                        "copied blob {digest}, which the tarball lacks, from {}",
                        origin.repository_name()
                    ));
                }
            }
            return Ok(());
        }
        if let Some(from) = &node.source
            && from.registry() == self.repo.registry()
            && from.repository() != self.repo.repository()
        {
            match self.destination.mount_blob(&self.repo, digest, from).await {
                Ok(true) => {
                    self.stats.mounted.fetch_add(1, Ordering::Relaxed);
                    self.progress.skip(descriptor.size);
                    self.progress
                        .item(&format!("mounted blob {digest} from {}", from.repository_name()));
                    return Ok(());
                }
                Ok(false) => {}
                // imgpkg #495: a refused mount falls back to a plain upload.
                Err(e) => self.progress.note(&format!(
                    "mounting blob {digest} failed ({e}); uploading it instead"
                )),
            }
        }
        let _stream_permit = if descriptor.size > SMALL_BLOB {
            Some(
                self.large_streams
                    .acquire()
                    .await
                    .map_err(|e| RelocateError::Task(e.to_string()))?,
            )
        } else {
            None
        };
        // Read from the source registry, a foreign layer's URLs are tried in turn across the
        // attempts: one that failed is not asked again (see `BlobSource`).
        let blob_source = match (&node.source, &self.plan.tarball) {
            (Some(from), None) => Some(self.source.blob_source(from, descriptor)),
            _ => None,
        };
        let attempts = self.options.blob_attempts;
        let mut failures = 0;
        loop {
            let sent = Arc::new(AtomicU64::new(0));
            let error = match self
                .upload_once(descriptor, node, blob_source.as_ref(), sent.clone())
                .await
            {
                Ok(()) => {
                    self.stats.transferred.fetch_add(1, Ordering::Relaxed);
                    self.stats.bytes.fetch_add(descriptor.size, Ordering::Relaxed);
                    self.progress.item(&format!(
                        "copied blob {digest} ({} bytes) of {}",
                        descriptor.size,
                        node.display_name()
                    ));
                    return Ok(());
                }
                Err(error) => error,
            };
            self.progress.retract(sent.load(Ordering::Relaxed));
            if let Some(source) = &blob_source {
                if let Some((url, why)) = source.passed_over() {
                    self.progress.note(&format!(
                        "blob {digest} of {}: {url} failed ({why}); trying the next URL",
                        node.display_name()
                    ));
                    continue;
                }
                if source.exhausted() {
                    return Err(self.blob_error(node, digest, failures + 1, error));
                }
            }
            failures += 1;
            if failures == attempts {
                return Err(self.blob_error(node, digest, failures, error));
            }
            self.progress.note(&format!(
                "blob {digest} of {} failed (attempt {failures} of {attempts}): {}; retrying",
                node.display_name(),
                chain(error.as_ref())
            ));
            // What arrived before the failure need not travel again.
            if let Ok(true) = self.destination.blob_exists(&self.repo, digest).await {
                self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
    }

    fn blob_error(
        &self,
        node: &Node,
        digest: &Digest,
        attempts: u32,
        source: Box<dyn std::error::Error + Send + Sync>,
    ) -> RelocateError {
        RelocateError::Blob {
            image: node.display_name(),
            digest: digest.clone(),
            destination: self.repo.repository_name(),
            attempts,
            source,
        }
    }

    /// One streamed upload from the source (registry or tarball).
    async fn upload_once(
        &self,
        descriptor: &Descriptor,
        node: &Node,
        blob_source: Option<&BlobSource>,
        sent: Arc<AtomicU64>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let source_error: Arc<Mutex<Option<String>>> = Arc::default();
        let progress = self.progress.clone();
        let counted = {
            let sent = sent.clone();
            let source_error = source_error.clone();
            move |item: Result<Bytes, String>| -> Result<Bytes, std::io::Error> {
                match item {
                    Ok(bytes) => {
                        sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        progress.add(bytes.len() as u64);
                        Ok(bytes)
                    }
                    Err(message) => {
                        *source_error.lock().expect("error slot") = Some(message.clone());
                        Err(std::io::Error::other(message))
                    }
                }
            }
        };
        let config = match &node.kind {
            NodeKind::Image {
                config,
                config_descriptor,
                ..
            } if config_descriptor.digest == descriptor.digest => Some(config.clone()),
            _ => None,
        };
        // Small blobs already in memory (configs, read while planning; tarballs hold them in
        // manifest.json) or cheap to hold (small registry layers) go up in one replayable PUT.
        let small = match (config, &node.source) {
            (Some(config), _) => Some(config),
            (None, Some(from)) if self.plan.tarball.is_none() && descriptor.size <= SMALL_BLOB => Some(
                self.source
                    .get_blob_bytes_or_urls(from, descriptor, descriptor.size)
                    .await
                    .map_err(|e| format!("reading it from {}: {}", from.repository_name(), chain(&e)))?,
            ),
            _ => None,
        };
        let result = if let Some(bytes) = small {
            let size = bytes.len() as u64;
            let pushed = self.destination.push_blob_bytes(&self.repo, bytes).await;
            match pushed {
                Ok(digest) if digest == descriptor.digest => {
                    sent.fetch_add(size, Ordering::Relaxed);
                    self.progress.add(size);
                    Ok(())
                }
                Ok(digest) => return Err(format!("the destination stored it as {digest}").into()),
                Err(e) => Err(e),
            }
        } else if let Some(tarball) = &self.plan.tarball {
            let stream = tar_layer_stream(tarball.clone(), descriptor.digest.clone()).map(counted);
            self.destination
                .push_blob(&self.repo, &descriptor.digest, descriptor.size, stream)
                .await
        } else {
            let from = node
                .source
                .as_ref()
                .ok_or_else(|| format!("no source for {}", node.display_name()))?;
            let stream = blob_source
                .ok_or_else(|| format!("no source for {}", node.display_name()))?
                .open()
                .await
                .map_err(|e| format!("reading it from {}: {}", from.repository_name(), chain(&e)))?;
            let stream = stream.map(|r| r.map_err(|e| chain(&e))).map(counted);
            self.destination
                .push_blob(&self.repo, &descriptor.digest, descriptor.size, stream)
                .await
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) => match source_error.lock().expect("error slot").take() {
                // The source failed (or lied about the content); say so rather than blame the upload.
                Some(message) => Err(format!("reading it from the source: {message}").into()),
                None => Err(Box::new(e)),
            },
        }
    }
}

/// Whether `digest` is the config of image `node`.
fn is_config(node: &Node, digest: &Digest) -> bool {
    matches!(&node.kind, NodeKind::Image { config_descriptor, .. } if &config_descriptor.digest == digest)
}
