//! imgpkg's tarball format: `manifest.json` (Go field names) followed by `sha256-<hex>.tar.gz`
//! layer entries. Read by `copy --tar` and `render --tar`, written by `copy --to-tar`.
use super::BundleError;
use crate::registry::{Digest, Manifest};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Label (in manifest.json only) marking the root bundle of a copy.
pub const ROOT_BUNDLE_LABEL: &str = "dev.carvel.imgpkg.copy.root-bundle";

/// One image or index recorded in a tarball's manifest.json.
#[derive(Clone, Debug)]
pub struct TarImage {
    /// Raw manifest bytes, media type and digest.
    pub manifest: Manifest,
    /// Raw config bytes (images only).
    pub config: Option<Bytes>,
    pub tag: Option<String>,
    /// The ImagesLock `image` value it was copied for (or the root bundle digest ref).
    pub orig_ref: String,
    /// Where it was read from (`Refs`).
    pub refs: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// A tarball opened for reading; layer entries are located once, then read by offset.
pub struct TarballReader {}

impl TarballReader {
    /// Open and index a tarball written by `pkgr copy --to-tar` or `imgpkg copy --to-tar`.
    pub fn open(path: &Path) -> Result<TarballReader, BundleError> {
        todo!("{path:?}")
    }
    /// Every image and index in the tarball (index children included).
    pub fn images(&self) -> &[TarImage] {
        todo!()
    }
    /// The root bundle (by label), or the only top-level entry when there is just one.
    pub fn root(&self) -> Option<&TarImage> {
        todo!()
    }
    /// Read a layer blob, verified against `digest` while reading.
    pub fn open_layer(&self, digest: &Digest) -> Result<Box<dyn Read + Send>, BundleError> {
        todo!("{digest}")
    }
}
