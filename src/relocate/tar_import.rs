//! Blobs of a tarball import: each layer streamed out of the tarball, and, for a layer the
//! tarball lacks (a foreign layer left out at export), imgpkg's way out: when the image was
//! exported from a repository of the destination registry, the layer is taken from there.
//!
//! imgpkg writes such an image from its origin instead of the tarball (the destination's
//! credentials reading it): its layers are mounted from the origin repository, else read from
//! there (or from a foreign layer's `urls`). A layer neither the tarball nor the origin holds
//! fails with imgpkg's `file … not found in tar (hint: …)`. Nothing is asked of any other
//! registry: an air-gapped import never reaches out of the destination.
use super::push::chain;
use super::{Progress, RelocateError};
use crate::bundle::tarball::{TarballError, TarballReader};
use crate::registry::{Client, Descriptor, Digest, Reference};
use bytes::Bytes;
use futures_util::StreamExt;
use std::io::Read;
use std::sync::Arc;

/// Bytes per read when streaming a layer out of a tarball.
const TAR_CHUNK: usize = 256 * 1024;

/// How a layer missing from the tarball reached the destination.
pub(super) enum FromOrigin {
    Mounted(Reference),
    Uploaded(Reference),
}

/// The layer `descriptor` of image `image`, which the tarball does not hold (`missing` says
/// so in imgpkg's words), from where the image was exported when that is a repository of
/// `repo`'s registry.
pub(super) async fn missing_layer(
    destination: &Client,
    repo: &Reference,
    tarball: &TarballReader,
    missing: TarballError,
    image: &Digest,
    descriptor: &Descriptor,
    progress: &Arc<Progress>,
) -> Result<FromOrigin, RelocateError> {
    let digest = &descriptor.digest;
    let Some(origin) = origin(tarball, image).filter(|o| o.registry() == repo.registry()) else {
        return Err(missing.into());
    };
    let mut why = Vec::new();
    if origin.repository() != repo.repository() {
        match destination.mount_blob(repo, digest, &origin).await {
            Ok(true) => return Ok(FromOrigin::Mounted(origin)),
            Ok(false) => why.push("the registry did not mount it".to_string()),
            Err(e) => why.push(format!("mounting it: {}", chain(&e))),
        }
    }
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = {
        let (sent, progress) = (sent.clone(), progress.clone());
        move |item: Result<Bytes, crate::registry::RegistryError>| -> Result<Bytes, std::io::Error> {
            let bytes = item.map_err(|e| std::io::Error::other(chain(&e)))?;
            sent.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
            progress.add(bytes.len() as u64);
            Ok(bytes)
        }
    };
    let uploaded = match destination.get_blob_or_urls(&origin, descriptor).await {
        Ok(stream) => destination
            .push_blob(repo, digest, descriptor.size, stream.map(counted))
            .await
            .map_err(|e| format!("copying it from {}: {}", origin.repository_name(), chain(&e))),
        Err(e) => Err(format!(
            "reading it from {}: {}",
            origin.repository_name(),
            chain(&e)
        )),
    };
    match uploaded {
        Ok(()) => Ok(FromOrigin::Uploaded(origin)),
        Err(e) => {
            progress.retract(sent.load(std::sync::atomic::Ordering::Relaxed));
            why.push(e);
            Err(RelocateError::NotInTarballNorOrigin {
                missing: Box::new(missing),
                origin: origin.repository_name(),
                why: why.join("; "),
            })
        }
    }
}

/// Where image `image` was read when the tarball was written (imgpkg's first `Refs` entry),
/// when the tarball records it.
fn origin(tarball: &TarballReader, image: &Digest) -> Option<Reference> {
    let entry = tarball.images().iter().find(|i| &i.manifest.digest == image)?;
    let read_from = Reference::parse(entry.refs.first()?).ok()?;
    Reference::parse_repository(&read_from.repository_name()).ok()
}

/// A layer out of the tarball as a stream: a blocking reader feeds a small bounded channel, so
/// memory stays at a few chunks whatever the layer's size.
pub(super) fn tar_layer_stream(
    tarball: Arc<TarballReader>,
    digest: Digest,
) -> impl futures_util::Stream<Item = Result<Bytes, String>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, String>>(1);
    tokio::task::spawn_blocking(move || {
        let mut reader = match tarball.open_layer(&digest) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.blocking_send(Err(e.to_string()));
                return;
            }
        };
        loop {
            let mut buf = vec![0u8; TAR_CHUNK];
            match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e.to_string()));
                    return;
                }
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}
