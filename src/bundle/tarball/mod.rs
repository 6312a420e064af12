//! imgpkg's tarball format: `manifest.json` (Go field names) followed by `sha256-<hex>.tar.gz`
//! layer entries. Read by `copy --tar` and `render --tar`, written by `copy --to-tar`.
//!
//! The writer lays the whole file out first (headers in place, data regions still empty) so that
//! layers can be filled in any order, in parallel, by positional writes; `--resume` keeps every
//! layer of an earlier partial file that is at the same place and still verifies.
use super::BundleError;
use crate::registry::{Digest, Manifest};
use bytes::Bytes;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

mod manifest;
mod read;
mod write;
pub use manifest::*;
pub use read::*;
pub use write::*;

/// Label (in manifest.json only) marking the root bundle of a copy.
pub const ROOT_BUNDLE_LABEL: &str = "dev.carvel.imgpkg.copy.root-bundle";

/// Name of the first entry of every tarball.
pub const MANIFEST_ENTRY: &str = "manifest.json";

const BLOCK: u64 = 512;
/// manifest.json is read whole; a bigger one is not a tarball we wrote or imgpkg would write.
const MAX_MANIFEST_JSON: u64 = 512 * 1024 * 1024;

/// Errors reading or writing a tarball; each names the file and, where it applies, the entry.
#[derive(Debug, thiserror::Error)]
pub enum TarballError {
    #[error("cannot {action} tarball {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "tarball {path} is truncated: {what} needs bytes up to offset {needed} but the file ends at {len}; \
         re-create it (pkgr copy ... --to-tar FILE --resume keeps the layers that did arrive)"
    )]
    Truncated {
        path: PathBuf,
        what: String,
        needed: u64,
        len: u64,
    },
    #[error("tarball {path} is not a tar file: {what} at offset {offset} {reason}")]
    BadHeader {
        path: PathBuf,
        what: String,
        offset: u64,
        reason: String,
    },
    #[error(
        "tarball {path} has no {MANIFEST_ENTRY} as its first entry; it was not written by `imgpkg copy --to-tar` or `pkgr copy --to-tar`"
    )]
    NoManifest { path: PathBuf },
    #[error("tarball {path}: {MANIFEST_ENTRY} is invalid: {reason}")]
    BadManifest { path: PathBuf, reason: String },
    /// imgpkg's sentence first and whole (scripts match it), then what pkgr knows of the layer.
    #[error(
        "file {entry} not found in tar (hint: This may be because when copying to a tarball, the \
         --include-non-distributable-layers flag should have been provided.): tarball {} has no layer \
         {entry} of image {image}{}",
        path.display(),
        if *non_distributable {
            "; the layer is non-distributable: export the tarball again with \
             --include-non-distributable-layers, or import without that flag"
        } else {
            "; the tarball is incomplete: export it again"
        }
    )]
    MissingLayer {
        path: PathBuf,
        entry: String,
        image: String,
        /// The layer's media type marks it non-distributable (foreign).
        non_distributable: bool,
    },
    #[error("cannot write tarball {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

impl From<TarballError> for BundleError {
    fn from(e: TarballError) -> BundleError {
        BundleError::Other(e.to_string())
    }
}

/// A layer of an image as recorded in manifest.json.
#[derive(Clone, Debug, PartialEq)]
pub struct TarLayer {
    pub media_type: String,
    pub digest: Digest,
    /// The uncompressed digest from the config (`""` when unknown), as imgpkg records it.
    pub diff_id: String,
    pub size: u64,
}

/// One image or index recorded in a tarball's manifest.json.
#[derive(Clone, Debug)]
pub struct TarImage {
    /// Raw manifest bytes, media type and digest.
    pub manifest: Manifest,
    /// Raw config bytes (images only).
    pub config: Option<Bytes>,
    /// Layers (images only), in manifest order.
    pub layers: Vec<TarLayer>,
    /// Child manifests (indexes only), in index order; each appears earlier in the list.
    pub children: Vec<Digest>,
    pub tag: Option<String>,
    /// The ImagesLock `image` value it was copied for (or the root bundle digest ref).
    pub orig_ref: String,
    /// Where it was read from (`Refs`).
    pub refs: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Listed at the top level of manifest.json (not only as an index child).
    pub top_level: bool,
}

impl TarImage {
    pub fn is_index(&self) -> bool {
        self.config.is_none()
    }
    /// The config digest of an image (`""` for an index).
    fn config_digest(&self) -> String {
        self.config
            .as_ref()
            .map(|c| Digest::of(c).to_string())
            .unwrap_or_default()
    }
    fn sort_key(&self) -> String {
        if self.is_index() {
            self.manifest.digest.to_string()
        } else {
            format!("{}/{}", self.manifest.digest, self.config_digest())
        }
    }
}

/// `sha256-<hex>.tar.gz`.
pub fn layer_entry_name(digest: &Digest) -> String {
    format!("{}.tar.gz", digest.dashed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_string_escaping_matches_encoding_json() {
        let mut s = String::new();
        go_str(&mut s, "a<b>&\"\\\n\u{1}\u{2028}é");
        assert_eq!(s, "\"a\\u003cb\\u003e\\u0026\\\"\\\\\\n\\u0001\\u2028é\"");
    }

    #[test]
    fn header_matches_go_archive_tar() {
        let h = entry_header("manifest.json", 1234).unwrap();
        assert_eq!(&h[124..136], b"00000002322\0");
        assert_eq!(&h[100..108], b"0000644\0");
        assert_eq!(&h[257..265], b"ustar\x0000");
        let parsed = tar::Header::from_byte_slice(&h);
        assert_eq!(parsed.entry_size().unwrap(), 1234);
        assert_eq!(parsed.mtime().unwrap(), 0);
        assert_eq!(parsed.mode().unwrap(), 0o644);
        let stored = parsed.cksum().unwrap();
        let sum: u32 = h
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(*b)
                }
            })
            .sum();
        assert_eq!(stored, sum);
        assert_eq!(h[154], 0);
        assert_eq!(h[155], b' ');
    }

    #[test]
    fn huge_sizes_use_base_256() {
        let h = entry_header("x", 9 * 1024 * 1024 * 1024).unwrap();
        assert_eq!(
            tar::Header::from_byte_slice(&h).entry_size().unwrap(),
            9 * 1024 * 1024 * 1024
        );
    }

    #[test]
    fn pax_records_are_parsed() {
        let recs = pax_records(b"16 size=1234567\n12 path=abc\n");
        assert_eq!(
            recs,
            vec![("size".into(), "1234567".into()), ("path".into(), "abc".into())]
        );
    }
}
