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
    #[error(
        "file {entry} not found in tarball {path} (hint: the image {image} needs it; if it is a non-distributable layer, \
         export the tarball with --include-non-distributable-layers, or import without that flag)"
    )]
    MissingLayer {
        path: PathBuf,
        entry: String,
        image: String,
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

/// Where an entry's data sits in the file.
#[derive(Clone, Copy, Debug, PartialEq)]
struct EntrySpan {
    header_offset: u64,
    data_offset: u64,
    size: u64,
}

/// A tarball opened for reading; layer entries are located once, then read by offset.
pub struct TarballReader {
    path: PathBuf,
    images: Vec<TarImage>,
    entries: HashMap<String, EntrySpan>,
}

impl std::fmt::Debug for TarballReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarballReader")
            .field("path", &self.path)
            .field("images", &self.images.len())
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl TarballReader {
    /// Open and index a tarball written by `pkgr copy --to-tar` or `imgpkg copy --to-tar`.
    pub fn open(path: &Path) -> Result<TarballReader, TarballError> {
        let file = File::open(path).map_err(|source| io_err("open", path, source))?;
        let (order, entries) = scan(&file, path, true)?;
        if order.first().map(String::as_str) != Some(MANIFEST_ENTRY) {
            return Err(TarballError::NoManifest {
                path: path.to_path_buf(),
            });
        }
        let span = entries[MANIFEST_ENTRY];
        if span.size > MAX_MANIFEST_JSON {
            return Err(TarballError::BadManifest {
                path: path.to_path_buf(),
                reason: format!(
                    "it is {} bytes, more than the {MAX_MANIFEST_JSON} accepted",
                    span.size
                ),
            });
        }
        let mut json = vec![0u8; span.size as usize];
        file.read_exact_at(&mut json, span.data_offset)
            .map_err(|source| io_err("read manifest.json of", path, source))?;
        let images = parse_manifest_json(&json).map_err(|reason| TarballError::BadManifest {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(TarballReader {
            path: path.to_path_buf(),
            images,
            entries,
        })
    }

    /// Every image and index in the tarball, children before the indexes that list them.
    pub fn images(&self) -> &[TarImage] {
        &self.images
    }

    /// The root bundle (by label), or the only top-level entry when there is just one.
    pub fn root(&self) -> Option<&TarImage> {
        if let Some(root) = self
            .images
            .iter()
            .find(|i| i.labels.contains_key(ROOT_BUNDLE_LABEL))
        {
            return Some(root);
        }
        let mut top = self.images.iter().filter(|i| i.top_level);
        match (top.next(), top.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }

    /// Whether the tarball holds the layer blob `digest`.
    pub fn has_layer(&self, digest: &Digest) -> bool {
        self.entries.contains_key(&layer_entry_name(digest))
    }

    /// Read a layer blob, verified against `digest` while reading.
    pub fn open_layer(&self, digest: &Digest) -> Result<Box<dyn Read + Send>, TarballError> {
        let entry = layer_entry_name(digest);
        let Some(span) = self.entries.get(&entry).copied() else {
            let image = self
                .images
                .iter()
                .find(|i| i.layers.iter().any(|l| &l.digest == digest))
                .map(|i| i.manifest.digest.to_string())
                .unwrap_or_else(|| "(none)".to_string());
            return Err(TarballError::MissingLayer {
                path: self.path.clone(),
                entry,
                image,
            });
        };
        let file = File::open(&self.path).map_err(|source| io_err("open", &self.path, source))?;
        Ok(Box::new(VerifyingReader {
            file,
            position: span.data_offset,
            end: span.data_offset + span.size,
            hasher: Some(Sha256::new()),
            expected: digest.clone(),
            what: format!("entry {entry} of tarball {}", self.path.display()),
        }))
    }
}

/// Reads an entry's bytes by offset and fails at the end when they do not hash to `expected`.
struct VerifyingReader {
    file: File,
    position: u64,
    end: u64,
    hasher: Option<Sha256>,
    expected: Digest,
    what: String,
}

impl Read for VerifyingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.position;
        if left == 0 {
            // Readers may ask again after the end; the digest is checked once.
            if let Some(hasher) = self.hasher.take() {
                let actual = sha256_digest(hasher);
                if actual != self.expected {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} is corrupt: its content has digest {actual}, not {}",
                            self.what, self.expected
                        ),
                    ));
                }
            }
            return Ok(0);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(left.min(usize::MAX as u64) as usize);
        let n = self.file.read_at(&mut buf[..want], self.position)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} ends {} bytes early (the file is truncated)", self.what, left),
            ));
        }
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.position += n as u64;
        Ok(n)
    }
}

/// `sha256-<hex>.tar.gz`.
pub fn layer_entry_name(digest: &Digest) -> String {
    format!("{}.tar.gz", digest.dashed())
}

fn io_err(action: &'static str, path: &Path, source: io::Error) -> TarballError {
    TarballError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Index the entries of a tar file: (names in order, name → span). `strict` rejects a file that
/// ends early; otherwise scanning stops at the first incomplete entry (for `--resume`).
fn scan(
    file: &File,
    path: &Path,
    strict: bool,
) -> Result<(Vec<String>, HashMap<String, EntrySpan>), TarballError> {
    let len = file
        .metadata()
        .map_err(|source| io_err("inspect", path, source))?
        .len();
    let mut order = Vec::new();
    let mut entries = HashMap::new();
    let mut offset = 0u64;
    let mut long_name: Option<String> = None;
    let mut pax_size: Option<u64> = None;
    let mut previous = "the start of the file".to_string();
    loop {
        if offset == len {
            // Go's writer always ends with two zero blocks; a file that stops at an entry boundary
            // was cut there.
            if strict {
                return Err(TarballError::Truncated {
                    path: path.to_path_buf(),
                    what: format!("the end-of-archive marker after {previous}"),
                    needed: offset + 2 * BLOCK,
                    len,
                });
            }
            break;
        }
        if offset + BLOCK > len {
            if strict {
                return Err(TarballError::Truncated {
                    path: path.to_path_buf(),
                    what: format!("the entry header after {previous}"),
                    needed: offset + BLOCK,
                    len,
                });
            }
            break;
        }
        let mut block = [0u8; BLOCK as usize];
        file.read_exact_at(&mut block, offset)
            .map_err(|source| io_err("read", path, source))?;
        if block.iter().all(|b| *b == 0) {
            break;
        }
        let header = tar::Header::from_byte_slice(&block);
        let bad = |reason: String| TarballError::BadHeader {
            path: path.to_path_buf(),
            what: format!("the entry header after {previous}"),
            offset,
            reason,
        };
        let stored_sum = header
            .cksum()
            .map_err(|e| bad(format!("has an unreadable checksum ({e})")))?;
        let actual_sum: u32 = block
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    u32::from(b' ')
                } else {
                    u32::from(*b)
                }
            })
            .sum();
        if stored_sum != actual_sum {
            return Err(bad("has a wrong checksum".to_string()));
        }
        let mut size = header
            .entry_size()
            .map_err(|e| bad(format!("has an unreadable size ({e})")))?;
        if let Some(s) = pax_size.take() {
            size = s;
        }
        let name = match long_name.take() {
            Some(n) => n,
            None => String::from_utf8_lossy(&header.path_bytes()).into_owned(),
        };
        let data_offset = offset + BLOCK;
        let Some(data_end) = data_offset
            .checked_add(size)
            .filter(|end| end.checked_add(BLOCK).is_some())
        else {
            return Err(bad(format!("has an impossible size ({size} bytes)")));
        };
        if data_end > len {
            if strict {
                return Err(TarballError::Truncated {
                    path: path.to_path_buf(),
                    what: format!("entry {name} ({size} bytes)"),
                    needed: data_end,
                    len,
                });
            }
            break;
        }
        let kind = block[156];
        match kind {
            b'x' | b'L' => {
                if size > 1024 * 1024 {
                    return Err(bad(format!("is an extended header of {size} bytes")));
                }
                let mut data = vec![0u8; size as usize];
                file.read_exact_at(&mut data, data_offset)
                    .map_err(|source| io_err("read", path, source))?;
                if kind == b'L' {
                    let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
                    long_name = Some(String::from_utf8_lossy(&data[..end]).into_owned());
                } else {
                    for (key, value) in pax_records(&data) {
                        match key.as_str() {
                            "size" => pax_size = value.parse().ok(),
                            "path" => long_name = Some(value),
                            _ => {}
                        }
                    }
                }
            }
            b'0' | 0 => {
                order.push(name.clone());
                entries.insert(
                    name.clone(),
                    EntrySpan {
                        header_offset: offset,
                        data_offset,
                        size,
                    },
                );
                previous = format!("entry {name}");
            }
            _ => previous = format!("entry {name}"),
        }
        offset = data_offset + padded(size);
    }
    Ok((order, entries))
}

/// PAX records: `<len> <key>=<value>\n`.
fn pax_records(data: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(space) = rest.iter().position(|b| *b == b' ') {
        let Some(len) = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if len <= space + 1 || len > rest.len() {
            break;
        }
        let record = &rest[space + 1..len - 1];
        if let Some(eq) = record.iter().position(|b| *b == b'=') {
            out.push((
                String::from_utf8_lossy(&record[..eq]).into_owned(),
                String::from_utf8_lossy(&record[eq + 1..]).into_owned(),
            ));
        }
        rest = &rest[len..];
    }
    out
}

fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK) * BLOCK
}

// ---------------------------------------------------------------------------------------------
// manifest.json

#[derive(Deserialize)]
struct JEntry {
    #[serde(rename = "ImageIndex", default)]
    image_index: Option<JIndex>,
    #[serde(rename = "Image", default)]
    image: Option<JImage>,
}

#[derive(Deserialize)]
struct JIndex {
    #[serde(rename = "Refs", default)]
    refs: Option<Vec<String>>,
    #[serde(rename = "Images", default)]
    images: Option<Vec<JImage>>,
    #[serde(rename = "Indexes", default)]
    indexes: Option<Vec<JIndex>>,
    #[serde(rename = "MediaType", default)]
    media_type: String,
    #[serde(rename = "Digest", default)]
    digest: String,
    #[serde(rename = "Raw", default)]
    raw: String,
    #[serde(rename = "Tag", default)]
    tag: String,
    #[serde(rename = "OrigRef", default)]
    orig_ref: String,
    #[serde(rename = "Labels", default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct JImage {
    #[serde(rename = "Refs", default)]
    refs: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Option<Vec<JLayer>>,
    #[serde(rename = "Config")]
    config: JConfig,
    #[serde(rename = "Manifest")]
    manifest: JManifest,
    #[serde(rename = "Tag", default)]
    tag: String,
    #[serde(rename = "OrigRef", default)]
    orig_ref: String,
    #[serde(rename = "Labels", default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct JLayer {
    #[serde(rename = "MediaType", default)]
    media_type: String,
    #[serde(rename = "Digest")]
    digest: String,
    #[serde(rename = "DiffID", default)]
    diff_id: String,
    #[serde(rename = "Size")]
    size: u64,
}

#[derive(Deserialize)]
struct JConfig {
    #[serde(rename = "Digest")]
    digest: String,
    #[serde(rename = "Raw")]
    raw: String,
}

#[derive(Deserialize)]
struct JManifest {
    #[serde(rename = "MediaType", default)]
    media_type: String,
    #[serde(rename = "Digest")]
    digest: String,
    #[serde(rename = "Raw")]
    raw: String,
}

/// Parse manifest.json into a flat list, children before parents, each digest once.
fn parse_manifest_json(json: &[u8]) -> Result<Vec<TarImage>, String> {
    let entries: Vec<JEntry> =
        serde_json::from_slice(json).map_err(|e| format!("not the expected JSON ({e})"))?;
    let mut out = Vec::new();
    let mut seen = HashMap::new();
    for (n, entry) in entries.into_iter().enumerate() {
        match (entry.image_index, entry.image) {
            (Some(index), None) => {
                flatten_index(index, true, &mut out, &mut seen)?;
            }
            (None, Some(image)) => {
                flatten_image(image, true, &mut out, &mut seen)?;
            }
            _ => return Err(format!("entry {n} must have exactly one of ImageIndex and Image")),
        }
    }
    Ok(out)
}

fn checked_digest(value: &str, what: &str, raw: &[u8]) -> Result<Digest, String> {
    let digest = Digest::parse(value).map_err(|e| format!("{what}: {e}"))?;
    let actual = Digest::of(raw);
    if actual != digest {
        return Err(format!(
            "{what}: the recorded bytes have digest {actual}, not {digest}"
        ));
    }
    Ok(digest)
}

fn push_unique(image: TarImage, out: &mut Vec<TarImage>, seen: &mut HashMap<Digest, usize>) -> Digest {
    let digest = image.manifest.digest.clone();
    match seen.get(&digest) {
        Some(&at) => out[at].top_level |= image.top_level,
        None => {
            seen.insert(digest.clone(), out.len());
            out.push(image);
        }
    }
    digest
}

fn flatten_image(
    j: JImage,
    top_level: bool,
    out: &mut Vec<TarImage>,
    seen: &mut HashMap<Digest, usize>,
) -> Result<Digest, String> {
    let what = format!("image {}", j.manifest.digest);
    let digest = checked_digest(
        &j.manifest.digest,
        &format!("{what} manifest"),
        j.manifest.raw.as_bytes(),
    )?;
    checked_digest(
        &j.config.digest,
        &format!("{what} config"),
        j.config.raw.as_bytes(),
    )?;
    let mut layers = Vec::new();
    for l in j.layers.unwrap_or_default() {
        layers.push(TarLayer {
            digest: Digest::parse(&l.digest).map_err(|e| format!("{what} layer: {e}"))?,
            media_type: l.media_type,
            diff_id: l.diff_id,
            size: l.size,
        });
    }
    let image = TarImage {
        manifest: Manifest {
            media_type: j.manifest.media_type,
            digest,
            bytes: Bytes::from(j.manifest.raw),
        },
        config: Some(Bytes::from(j.config.raw)),
        layers,
        children: Vec::new(),
        tag: non_empty(j.tag),
        orig_ref: j.orig_ref,
        refs: j.refs.unwrap_or_default(),
        labels: j.labels.unwrap_or_default(),
        top_level,
    };
    Ok(push_unique(image, out, seen))
}

fn flatten_index(
    j: JIndex,
    top_level: bool,
    out: &mut Vec<TarImage>,
    seen: &mut HashMap<Digest, usize>,
) -> Result<Digest, String> {
    let digest = checked_digest(&j.digest, &format!("index {}", j.digest), j.raw.as_bytes())?;
    let mut children = Vec::new();
    for image in j.images.unwrap_or_default() {
        children.push(flatten_image(image, false, out, seen)?);
    }
    for index in j.indexes.unwrap_or_default() {
        children.push(flatten_index(index, false, out, seen)?);
    }
    let index = TarImage {
        manifest: Manifest {
            media_type: j.media_type,
            digest,
            bytes: Bytes::from(j.raw),
        },
        config: None,
        layers: Vec::new(),
        children,
        tag: non_empty(j.tag),
        orig_ref: j.orig_ref,
        refs: j.refs.unwrap_or_default(),
        labels: j.labels.unwrap_or_default(),
        top_level,
    };
    Ok(push_unique(index, out, seen))
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

/// manifest.json exactly as imgpkg's Go `json.Marshal` writes it: Go field names, `null` for
/// absent lists and maps, top-level entries sorted, `<>&` escaped. `images` is a flat list in
/// which every index's children are present.
pub fn manifest_json(images: &[TarImage]) -> Result<Vec<u8>, TarballError> {
    let by_digest: HashMap<&Digest, &TarImage> = images.iter().map(|i| (&i.manifest.digest, i)).collect();
    let mut top: Vec<&TarImage> = images.iter().filter(|i| i.top_level).collect();
    top.sort_by_key(|i| i.sort_key());
    top.dedup_by(|a, b| a.manifest.digest == b.manifest.digest);
    let mut out = String::from("[");
    for (n, image) in top.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        if image.is_index() {
            out.push_str("{\"ImageIndex\":");
            write_index(&mut out, image, &by_digest, 0)?;
            out.push_str(",\"Image\":null}");
        } else {
            out.push_str("{\"ImageIndex\":null,\"Image\":");
            write_image(&mut out, image)?;
            out.push('}');
        }
    }
    out.push(']');
    Ok(out.into_bytes())
}

fn raw_str(bytes: &Bytes, what: &str, digest: &Digest) -> Result<String, TarballError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| TarballError::Write {
        path: PathBuf::from(MANIFEST_ENTRY),
        reason: format!("the {what} of {digest} is not UTF-8 text, so it cannot be stored in manifest.json"),
    })
}

fn write_image(out: &mut String, image: &TarImage) -> Result<(), TarballError> {
    let digest = &image.manifest.digest;
    let config = image
        .config
        .as_ref()
        .expect("write_image is called for images only");
    out.push_str("{\"Refs\":");
    go_str_list(out, &image.refs);
    out.push_str(",\"Layers\":");
    if image.layers.is_empty() {
        out.push_str("null");
    } else {
        out.push('[');
        for (n, l) in image.layers.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str("{\"MediaType\":");
            go_str(out, &l.media_type);
            out.push_str(",\"Digest\":");
            go_str(out, l.digest.as_str());
            out.push_str(",\"DiffID\":");
            go_str(out, &l.diff_id);
            out.push_str(&format!(",\"Size\":{}}}", l.size));
        }
        out.push(']');
    }
    out.push_str(",\"Config\":{\"Digest\":");
    go_str(out, Digest::of(config).as_str());
    out.push_str(",\"Raw\":");
    go_str(out, &raw_str(config, "config", digest)?);
    out.push_str("},\"Manifest\":{\"MediaType\":");
    go_str(out, &image.manifest.media_type);
    out.push_str(",\"Digest\":");
    go_str(out, digest.as_str());
    out.push_str(",\"Raw\":");
    go_str(out, &raw_str(&image.manifest.bytes, "manifest", digest)?);
    out.push_str("},");
    write_tail(out, image);
    out.push('}');
    Ok(())
}

fn write_index(
    out: &mut String,
    index: &TarImage,
    by_digest: &HashMap<&Digest, &TarImage>,
    depth: usize,
) -> Result<(), TarballError> {
    if depth > 16 {
        return Err(TarballError::Write {
            path: PathBuf::from(MANIFEST_ENTRY),
            reason: format!("index {} nests more than 16 levels deep", index.manifest.digest),
        });
    }
    let mut images = Vec::new();
    let mut indexes = Vec::new();
    for child in &index.children {
        let Some(c) = by_digest.get(child) else {
            return Err(TarballError::Write {
                path: PathBuf::from(MANIFEST_ENTRY),
                reason: format!(
                    "index {} lists {child}, which was not exported",
                    index.manifest.digest
                ),
            });
        };
        if c.is_index() {
            indexes.push(*c)
        } else {
            images.push(*c)
        }
    }
    out.push_str("{\"Refs\":");
    go_str_list(out, &index.refs);
    out.push_str(",\"Images\":");
    if images.is_empty() {
        out.push_str("null");
    } else {
        out.push('[');
        for (n, c) in images.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            write_image(out, c)?;
        }
        out.push(']');
    }
    out.push_str(",\"Indexes\":");
    if indexes.is_empty() {
        out.push_str("null");
    } else {
        out.push('[');
        for (n, c) in indexes.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            write_index(out, c, by_digest, depth + 1)?;
        }
        out.push(']');
    }
    out.push_str(",\"MediaType\":");
    go_str(out, &index.manifest.media_type);
    out.push_str(",\"Digest\":");
    go_str(out, index.manifest.digest.as_str());
    out.push_str(",\"Raw\":");
    go_str(
        out,
        &raw_str(&index.manifest.bytes, "manifest", &index.manifest.digest)?,
    );
    out.push(',');
    write_tail(out, index);
    out.push('}');
    Ok(())
}

/// `"Tag":…,"OrigRef":…,"Labels":…`
fn write_tail(out: &mut String, image: &TarImage) {
    out.push_str("\"Tag\":");
    go_str(out, image.tag.as_deref().unwrap_or(""));
    out.push_str(",\"OrigRef\":");
    go_str(out, &image.orig_ref);
    out.push_str(",\"Labels\":");
    if image.labels.is_empty() {
        out.push_str("null");
    } else {
        out.push('{');
        // BTreeMap order is byte order, which is the order Go gives map keys.
        for (n, (k, v)) in image.labels.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            go_str(out, k);
            out.push(':');
            go_str(out, v);
        }
        out.push('}');
    }
}

fn go_str_list(out: &mut String, list: &[String]) {
    if list.is_empty() {
        out.push_str("null");
        return;
    }
    out.push('[');
    for (n, s) in list.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        go_str(out, s);
    }
    out.push(']');
}

/// A JSON string as Go's encoding/json writes it (HTML-safe escaping included).
pub fn go_str(out: &mut String, s: &str) {
    out.push_str(&super::image::go_json_string(s));
}

// ---------------------------------------------------------------------------------------------
// Writer

/// The USTAR header Go's archive/tar writes for a regular file: mode 0644, uid/gid 0, mtime 0.
fn entry_header(name: &str, size: u64) -> Result<[u8; BLOCK as usize], String> {
    if name.len() > 100 {
        return Err(format!("entry name {name:?} is longer than 100 bytes"));
    }
    let mut h = [0u8; BLOCK as usize];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    if size < 8u64.pow(11) {
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    } else {
        // GNU base-256, which Go's reader and every other reader accept.
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[329..337].copy_from_slice(b"0000000\0");
    h[337..345].copy_from_slice(b"0000000\0");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Ok(h)
}

/// What `TarballWriter::create` found in an earlier partial file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResumeReport {
    /// Layers kept where they were (verified).
    pub reused_in_place: usize,
    /// Layers copied from the earlier file into a new layout (verified).
    pub reused_copied: usize,
    /// Layer entries of the earlier file that failed verification (damaged, or never filled).
    pub corrupt: usize,
}

/// A tarball being written: laid out up front, layers filled by position in any order.
pub struct TarballWriter {
    file: Arc<File>,
    /// Where the data is being written (the target itself, or a temporary file beside it).
    writing: PathBuf,
    target: PathBuf,
    slots: BTreeMap<Digest, EntrySpan>,
    filled: Arc<Mutex<HashSet<Digest>>>,
    resume: ResumeReport,
}

impl std::fmt::Debug for TarballWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarballWriter")
            .field("target", &self.target)
            .field("layers", &self.slots.len())
            .finish()
    }
}

impl TarballWriter {
    /// The tarball being written (as the user named it).
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Lay out `path` with `manifest_json` and one entry per layer (sorted by digest, deduplicated).
    /// With `resume`, verified layers of an existing file at `path` are kept: in place when they
    /// already sit where the new layout puts them, else copied locally into the new file.
    pub fn create(
        path: &Path,
        manifest_json: &[u8],
        layers: &[(Digest, u64)],
        resume: bool,
    ) -> Result<TarballWriter, TarballError> {
        let mut wanted: BTreeMap<Digest, u64> = BTreeMap::new();
        for (d, s) in layers {
            if let Some(prev) = wanted.insert(d.clone(), *s)
                && prev != *s
            {
                return Err(TarballError::Write {
                    path: path.to_path_buf(),
                    reason: format!("layer {d} is listed with two sizes ({prev} and {s})"),
                });
            }
        }
        let write_err = |reason: String| TarballError::Write {
            path: path.to_path_buf(),
            reason,
        };
        // Layout.
        let mut headers: Vec<(u64, [u8; BLOCK as usize])> = Vec::new();
        headers.push((
            0,
            entry_header(MANIFEST_ENTRY, manifest_json.len() as u64).map_err(write_err)?,
        ));
        let mut offset = BLOCK + padded(manifest_json.len() as u64);
        let mut slots = BTreeMap::new();
        for (digest, size) in &wanted {
            let name = layer_entry_name(digest);
            headers.push((offset, entry_header(&name, *size).map_err(write_err)?));
            slots.insert(
                digest.clone(),
                EntrySpan {
                    header_offset: offset,
                    data_offset: offset + BLOCK,
                    size: *size,
                },
            );
            offset += BLOCK + padded(*size);
        }
        let total = offset + 2 * BLOCK;

        // What an earlier file offers: every wanted layer that is there whole and verifies.
        let mut report = ResumeReport::default();
        let mut verified: Vec<(Digest, EntrySpan)> = Vec::new();
        let old = if resume && path.exists() {
            let old = File::open(path).map_err(|source| io_err("open", path, source))?;
            let (_, entries) = scan(&old, path, false)?;
            for (digest, slot) in &slots {
                let Some(span) = entries.get(&layer_entry_name(digest)).copied() else {
                    continue;
                };
                if span.size != slot.size || !span_verifies(&old, span, digest) {
                    report.corrupt += 1;
                    continue;
                }
                verified.push((digest.clone(), span));
            }
            Some(old)
        } else {
            None
        };
        let all_in_place = verified
            .iter()
            .all(|(d, span)| span.header_offset == slots[d].header_offset);

        let mut filled: HashSet<Digest> = HashSet::new();
        let mut to_copy: Vec<(Digest, EntrySpan)> = Vec::new();
        let (file, writing) = if all_in_place {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(verified.is_empty())
                .open(path)
                .map_err(|source| io_err("create", path, source))?;
            report.reused_in_place = verified.len();
            filled.extend(verified.into_iter().map(|(d, _)| d));
            (file, path.to_path_buf())
        } else {
            // The layout moved (a different manifest.json): build beside it, then replace it.
            let writing = sibling(path, ".pkgr-partial");
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&writing)
                .map_err(|source| io_err("create", &writing, source))?;
            to_copy = verified;
            (file, writing)
        };
        file.set_len(total)
            .map_err(|source| io_err("size", &writing, source))?;
        for (at, header) in &headers {
            file.write_all_at(header, *at)
                .map_err(|source| io_err("write", &writing, source))?;
        }
        file.write_all_at(manifest_json, BLOCK)
            .map_err(|source| io_err("write", &writing, source))?;
        // Padding after manifest.json and the trailer must be zeros even over an older file.
        let pad = padded(manifest_json.len() as u64) - manifest_json.len() as u64;
        file.write_all_at(&vec![0u8; pad as usize], BLOCK + manifest_json.len() as u64)
            .map_err(|source| io_err("write", &writing, source))?;
        file.write_all_at(&[0u8; 2 * BLOCK as usize], offset)
            .map_err(|source| io_err("write", &writing, source))?;

        if let Some(old) = &old {
            for (digest, span) in to_copy {
                let slot = slots[&digest];
                copy_span(old, span.data_offset, &file, slot.data_offset, slot.size)
                    .map_err(|source| io_err("copy a layer within", &writing, source))?;
                filled.insert(digest);
                report.reused_copied += 1;
            }
        }
        Ok(TarballWriter {
            file: Arc::new(file),
            writing,
            target: path.to_path_buf(),
            slots,
            filled: Arc::new(Mutex::new(filled)),
            resume: report,
        })
    }

    /// What was re-used from an earlier file.
    pub fn resume_report(&self) -> &ResumeReport {
        &self.resume
    }

    /// Layers still to be written, largest first (they take longest, so start them first).
    pub fn missing(&self) -> Vec<(Digest, u64)> {
        let filled = self.filled.lock().expect("tar fill bookkeeping");
        let mut out: Vec<(Digest, u64)> = self
            .slots
            .iter()
            .filter(|(d, _)| !filled.contains(*d))
            .map(|(d, s)| (d.clone(), s.size))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// A sink for one layer's bytes; it can be used from any thread, alongside other sinks.
    pub fn layer_sink(&self, digest: &Digest) -> Result<LayerSink, TarballError> {
        let Some(slot) = self.slots.get(digest) else {
            return Err(TarballError::Write {
                path: self.target.clone(),
                reason: format!("layer {digest} is not part of this tarball's layout"),
            });
        };
        Ok(LayerSink {
            file: self.file.clone(),
            path: self.writing.clone(),
            filled: self.filled.clone(),
            start: slot.data_offset,
            position: slot.data_offset,
            end: slot.data_offset + slot.size,
            hasher: Some(Sha256::new()),
            digest: digest.clone(),
        })
    }

    /// Like [`layer_sink`](Self::layer_sink) for a source that verifies the digest itself (a
    /// registry blob stream fails at its end on a mismatch, before `finish` is called): the
    /// bytes are not hashed a second time. The size is still checked.
    pub fn verified_layer_sink(&self, digest: &Digest) -> Result<LayerSink, TarballError> {
        let mut sink = self.layer_sink(digest)?;
        sink.hasher = None;
        Ok(sink)
    }

    /// Check every layer arrived and put the file in place.
    pub fn finish(self) -> Result<(), TarballError> {
        let missing = self.missing();
        if let Some((digest, _)) = missing.first() {
            return Err(TarballError::Write {
                path: self.target.clone(),
                reason: format!(
                    "{} layer(s) were not written, the first is {digest}; run the copy again with --resume",
                    missing.len()
                ),
            });
        }
        if self.writing != self.target {
            std::fs::rename(&self.writing, &self.target)
                .map_err(|source| io_err("move into place", &self.target, source))?;
        }
        Ok(())
    }
}

/// Finish an incremental sha256 as a `Digest`.
fn sha256_digest(hasher: Sha256) -> Digest {
    Digest::parse(&format!("sha256:{}", hex::encode(hasher.finalize())))
        .expect("a sha256 is always a valid digest")
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn span_verifies(file: &File, span: EntrySpan, digest: &Digest) -> bool {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut at = span.data_offset;
    let end = span.data_offset + span.size;
    while at < end {
        let want = buf.len().min((end - at) as usize);
        match file.read_at(&mut buf[..want], at) {
            Ok(0) | Err(_) => return false,
            Ok(n) => {
                hasher.update(&buf[..n]);
                at += n as u64;
            }
        }
    }
    &sha256_digest(hasher) == digest
}

fn copy_span(from: &File, from_at: u64, to: &File, to_at: u64, size: u64) -> io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    while done < size {
        let want = buf.len().min((size - done) as usize);
        from.read_exact_at(&mut buf[..want], from_at + done)?;
        to.write_all_at(&buf[..want], to_at + done)?;
        done += want as u64;
    }
    Ok(())
}

/// Receives one layer's bytes and writes them at the layer's place; `finish` verifies them.
pub struct LayerSink {
    file: Arc<File>,
    path: PathBuf,
    filled: Arc<Mutex<HashSet<Digest>>>,
    start: u64,
    position: u64,
    end: u64,
    hasher: Option<Sha256>,
    digest: Digest,
}

impl LayerSink {
    /// Append bytes; more than the layer's size is an error.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), TarballError> {
        if self.position + bytes.len() as u64 > self.end {
            return Err(TarballError::Write {
                path: self.path.clone(),
                reason: format!(
                    "layer {} received more than its {} bytes",
                    self.digest,
                    self.end - self.start
                ),
            });
        }
        self.file
            .write_all_at(bytes, self.position)
            .map_err(|source| io_err("write a layer to", &self.path, source))?;
        if let Some(h) = &mut self.hasher {
            h.update(bytes);
        }
        self.position += bytes.len() as u64;
        Ok(())
    }

    /// Verify size and digest; only then does the layer count as written.
    pub fn finish(self) -> Result<(), TarballError> {
        let received = self.position - self.start;
        let expected = self.end - self.start;
        if received != expected {
            return Err(TarballError::Write {
                path: self.path,
                reason: format!("layer {} ended after {received} of {expected} bytes", self.digest),
            });
        }
        if let Some(hasher) = self.hasher {
            let actual = sha256_digest(hasher);
            if actual != self.digest {
                return Err(TarballError::Write {
                    path: self.path,
                    reason: format!("layer {} arrived with digest {actual}", self.digest),
                });
            }
        }
        self.filled
            .lock()
            .expect("tar fill bookkeeping")
            .insert(self.digest);
        Ok(())
    }
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
