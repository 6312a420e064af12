//! The bundle layer: imgpkg's deterministic tar (write) and a bounded, path-safe reader.
use super::gogzip::GoGzipWriter;
use super::layer_media::LayerCompression;
use super::{BundleError, FileTree};
use crate::registry::Digest;
use flate2::read::MultiGzDecoder;
use sha2::{Digest as _, Sha256};
use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Hard limits on what a layer may expand to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Total uncompressed bytes of all regular files.
    pub max_bytes: u64,
    /// Number of regular files.
    pub max_files: u64,
    /// Path components of any entry (`a/b/c` has depth 3).
    pub max_depth: usize,
}

impl Default for Limits {
    /// Generous for a package repository (a few thousand small YAML files), small enough that a
    /// hostile layer cannot exhaust memory.
    fn default() -> Self {
        Limits {
            max_bytes: 256 * 1024 * 1024,
            max_files: 100_000,
            max_depth: 64,
        }
    }
}

impl Limits {
    /// Limits for `pkgr pull`, which writes to disk rather than memory and must take whole images.
    pub fn for_disk() -> Self {
        Limits {
            max_bytes: 64 * 1024 * 1024 * 1024,
            max_files: 10_000_000,
            max_depth: 256,
        }
    }
}

/// Digests and size of a written layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerInfo {
    /// sha256 of the gzip bytes.
    pub digest: Digest,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Size of the gzip bytes.
    pub size: u64,
}

pub(crate) fn finish_digest(hasher: Sha256) -> Digest {
    // A sha256 output formatted as lowercase hex is always a valid digest.
    Digest::parse(&format!("sha256:{}", hex::encode(hasher.finalize())))
        .expect("a sha256 hash always forms a valid digest")
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// Counts and hashes what passes through to `inner`.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

const BLOCK: usize = 512;
/// Largest size a 12-byte octal field holds (11 digits).
const MAX_OCTAL_SIZE: u64 = 0o77777777777;

/// Write imgpkg's layer for `inputs` (each `-f` path) as gzip to `out`.
///
/// The tar follows imgpkg's rules so that imgpkg reads it as its own: a `.` entry per directory
/// input, a lexical walk, directories 0700 without a trailing slash, files `mode & 0700`, mtime 0,
/// uid/gid 0, USTAR headers, and two zero blocks at the end with no padding. Contents stream
/// from disk, so memory stays constant whatever the input size.
pub fn write_layer(
    inputs: &[PathBuf],
    exclusions: &[String],
    out: impl Write,
) -> Result<LayerInfo, BundleError> {
    let mut tar = TarWriter {
        out: layer_sink(out),
        seen_files: HashSet::new(),
        exclusions,
    };
    for input in inputs {
        let meta =
            fs::symlink_metadata(input).map_err(|e| BundleError::io("reading the input path", input, e))?;
        if meta.is_dir() {
            tar.dir_entry(".", input)?;
            tar.walk(input, "")?;
        } else if meta.is_file() {
            let name = input
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| {
                    BundleError::Input(format!(
                        "input file {input:?} has no usable file name (it must be valid UTF-8)"
                    ))
                })?
                .to_string();
            tar.file_entry(&name, input, &meta)?;
        } else {
            return Err(BundleError::Input(format!(
                "Expected file {input:?} to be a regular file or a directory (symlinks and special files cannot be pushed)"
            )));
        }
    }
    finish_layer(tar.out)
}

type LayerSink<W> = HashingWriter<GoGzipWriter<HashingWriter<W>>>;

/// Tar bytes go in; they are hashed (diff_id), gzipped, and the gzip is hashed and counted.
/// The gzip is Go's BestSpeed stream byte for byte, so layer digests equal imgpkg's.
fn layer_sink<W: Write>(out: W) -> LayerSink<W> {
    let gzip = GoGzipWriter::new(HashingWriter {
        inner: out,
        hasher: Sha256::new(),
        count: 0,
    });
    HashingWriter {
        inner: gzip,
        hasher: Sha256::new(),
        count: 0,
    }
}

/// Write the two zero blocks that end the tar (no padding to a record), then finish the gzip.
fn finish_layer<W: Write>(mut sink: LayerSink<W>) -> Result<LayerInfo, BundleError> {
    let fail = |e| BundleError::io("writing the compressed layer", "<layer output>", e);
    sink.write_all(&[0u8; 2 * BLOCK]).map_err(fail)?;
    let diff_id = finish_digest(sink.hasher);
    let mut gz_out = sink.inner.finish().map_err(fail)?;
    gz_out.flush().map_err(fail)?;
    Ok(LayerInfo {
        digest: finish_digest(gz_out.hasher),
        diff_id,
        size: gz_out.count,
    })
}

/// A layer with a `.` directory and one file, built in memory (used for the locations image).
pub fn write_single_file_layer(
    name: &str,
    data: &[u8],
    mode: u32,
) -> Result<(Vec<u8>, LayerInfo), BundleError> {
    let mut out = Vec::new();
    let mut sink = layer_sink(&mut out);
    let fail = |e| BundleError::io("writing the in-memory layer for", name, e);
    sink.write_all(&header_blocks(".", 0o700, 0, b'5'))
        .map_err(fail)?;
    sink.write_all(&header_blocks(name, mode & 0o777, data.len() as u64, b'0'))
        .map_err(fail)?;
    sink.write_all(data).map_err(fail)?;
    let pad = (BLOCK - (data.len() % BLOCK)) % BLOCK;
    sink.write_all(&[0u8; BLOCK][..pad]).map_err(fail)?;
    let info = finish_layer(sink)?;
    Ok((out, info))
}

struct TarWriter<'a, W: Write> {
    out: LayerSink<W>,
    seen_files: HashSet<String>,
    exclusions: &'a [String],
}

impl<W: Write> TarWriter<'_, W> {
    fn write_all(&mut self, bytes: &[u8], source: &Path) -> Result<(), BundleError> {
        self.out
            .write_all(bytes)
            .map_err(|e| BundleError::io("writing the layer for", source, e))
    }

    /// Go's `filepath.Walk` order: each directory's names sorted bytewise, depth first.
    fn walk(&mut self, dir: &Path, rel: &str) -> Result<(), BundleError> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| BundleError::io("listing directory", dir, e))? {
            let entry = entry.map_err(|e| BundleError::io("listing directory", dir, e))?;
            let name = entry.file_name().into_string().map_err(|raw| {
                BundleError::Input(format!(
                    "file name {raw:?} in {dir:?} is not valid UTF-8 and cannot be stored in a bundle layer"
                ))
            })?;
            names.push(name);
        }
        names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let child_rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            // imgpkg matches exclusions against the whole relative path, so only a top-level
            // `.git` is skipped by default.
            if self.exclusions.contains(&child_rel) {
                continue;
            }
            let path = dir.join(&name);
            let meta =
                fs::symlink_metadata(&path).map_err(|e| BundleError::io("reading metadata of", &path, e))?;
            if meta.is_dir() {
                self.dir_entry(&child_rel, &path)?;
                self.walk(&path, &child_rel)?;
            } else if meta.is_file() {
                self.file_entry(&child_rel, &path, &meta)?;
            } else {
                return Err(BundleError::Input(format!(
                    "Expected file {path:?} to be a regular file: symlinks, sockets, FIFOs and devices cannot be put in a bundle layer; replace it with a copy of its target or remove it"
                )));
            }
        }
        Ok(())
    }

    fn dir_entry(&mut self, name: &str, source: &Path) -> Result<(), BundleError> {
        let blocks = header_blocks(name, 0o700, 0, b'5');
        self.write_all(&blocks, source)
    }

    fn file_entry(&mut self, name: &str, source: &Path, meta: &fs::Metadata) -> Result<(), BundleError> {
        if !self.seen_files.insert(name.to_string()) {
            return Err(BundleError::Input(format!(
                "Found duplicate paths: {name:?} comes from more than one -f input (last seen at {source:?}); give each file once"
            )));
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o700;
        let size = meta.len();
        let blocks = header_blocks(name, mode, size, b'0');
        self.write_all(&blocks, source)?;
        let file = fs::File::open(source).map_err(|e| BundleError::io("opening", source, e))?;
        let copied = io::copy(&mut file.take(size), &mut self.out)
            .map_err(|e| BundleError::io("reading", source, e))?;
        if copied != size {
            return Err(BundleError::Input(format!(
                "file {source:?} changed size while it was being pushed ({size} bytes expected, {copied} read); push again once it is stable"
            )));
        }
        let pad = (BLOCK - (size as usize % BLOCK)) % BLOCK;
        self.write_all(&[0u8; BLOCK][..pad], source)
    }
}

/// One or more 512-byte blocks for an entry: a PAX extended header first when the name or size
/// does not fit USTAR (as Go's archive/tar does), then the USTAR header.
fn header_blocks(name: &str, mode: u32, size: u64, typeflag: u8) -> Vec<u8> {
    let mut records = Vec::new();
    let (prefix, short) = match ustar_split(name) {
        Some(split) => split,
        None => {
            records.push(pax_record("path", name));
            (String::new(), ascii_truncated(name, 100))
        }
    };
    let size_field = if size > MAX_OCTAL_SIZE {
        records.push(pax_record("size", &size.to_string()));
        0
    } else {
        size
    };
    let mut out = Vec::with_capacity(BLOCK);
    if !records.is_empty() {
        let data: Vec<u8> = records.concat();
        let pax_name = match name.rsplit_once('/') {
            Some((dir, base)) => format!("{dir}/PaxHeaders.0/{base}"),
            None => format!("PaxHeaders.0/{name}"),
        };
        out.extend_from_slice(&ustar_header(
            "",
            &ascii_truncated(&pax_name, 100),
            0,
            data.len() as u64,
            b'x',
        ));
        out.extend_from_slice(&data);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }
    out.extend_from_slice(&ustar_header(&prefix, &short, mode, size_field, typeflag));
    out
}

/// Go's `splitUSTARPath`: names up to 100 bytes go whole; longer ASCII names split at a `/` into
/// a prefix (at most 155 bytes) and a name (at most 100 bytes).
fn ustar_split(name: &str) -> Option<(String, String)> {
    if !name.is_ascii() {
        return None;
    }
    if name.len() <= 100 {
        return Some((String::new(), name.to_string()));
    }
    let mut length = name.len();
    if length > 156 {
        length = 156;
    } else if name.as_bytes()[length - 1] == b'/' {
        length -= 1;
    }
    let i = name[..length].rfind('/')?;
    let (plen, nlen) = (i, name.len() - i - 1);
    if i == 0 || nlen == 0 || nlen > 100 || plen > 155 {
        return None;
    }
    Some((name[..i].to_string(), name[i + 1..].to_string()))
}

fn ascii_truncated(s: &str, max: usize) -> String {
    s.chars().filter(|c| c.is_ascii()).take(max).collect()
}

/// A PAX record `"<len> <key>=<value>\n"`, where `<len>` counts the whole record.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + body.to_string().len();
    if len.to_string().len() != body.to_string().len() {
        len += 1;
    }
    format!("{len} {key}={value}\n").into_bytes()
}

/// A USTAR header exactly as Go's archive/tar formats it: octal fields zero-padded with a NUL
/// terminator, empty uname/gname, devmajor/devminor `0000000\0`, checksum `%06o\0 `.
fn ustar_header(prefix: &str, name: &str, mode: u32, size: u64, typeflag: u8) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], mode as u64);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 0);
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // Go leaves devmajor/devminor empty in PAX extended headers and zero-filled in USTAR ones.
    if typeflag != b'x' {
        octal(&mut h[329..337], 0);
        octal(&mut h[337..345], 0);
    }
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    octal(&mut h[148..155], sum);
    h[155] = b' ';
    h
}

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// A validated entry: its normalised path (`""` is the root) and what it is.
struct SafeEntry {
    path: String,
    kind: SafeKind,
}

enum SafeKind {
    Dir,
    File { mode: u32, mtime: u64 },
}

/// Running totals across the layers of one image, checked against the limits.
#[derive(Default)]
struct Budget {
    bytes: u64,
    files: u64,
}

/// Trailing decompressed bytes tolerated after the tar end (tools pad to 10 KiB records).
const MAX_TRAILING: u64 = 1024 * 1024;

/// Validate every entry of a gzip tar and hand regular files and dirs to `visit`; fail on any
/// entry that breaks path safety or the limits. The input is read to its end, so a digest
/// check on the underlying stream always runs.
///
/// Links, device nodes and FIFOs are errors, unless `skipped` collects them instead (how imgpkg
/// pull treats them: nothing is written for them).
fn read_layer<R: Read>(
    blob: R,
    compression: LayerCompression,
    limits: &Limits,
    budget: &mut Budget,
    mut skipped: Option<&mut Vec<String>>,
    mut visit: impl FnMut(SafeEntry, &mut dyn Read) -> Result<(), BundleError>,
) -> Result<(), BundleError> {
    // Headers count too: the tar reader keeps PAX and GNU long-name data in memory, so without
    // this a small gzip could inflate into gigabytes of "header".
    let cap = limits
        .max_bytes
        .saturating_add(limits.max_files.saturating_add(1).saturating_mul(1024))
        .saturating_add(MAX_TRAILING);
    let over = std::rc::Rc::new(std::cell::Cell::new(false));
    let tar = match compression {
        LayerCompression::Gzip => TarStream::Gzip(MultiGzDecoder::new(blob)),
        LayerCompression::Uncompressed => TarStream::Plain(blob),
    };
    let capped = Capped {
        inner: tar,
        left: cap,
        over: over.clone(),
    };
    let corrupt = |entry: Option<String>, source: io::Error| {
        if over.get() {
            BundleError::LimitExceeded {
                limit: format!("{cap} decompressed bytes (contents, headers and padding)"),
                entry,
            }
        } else {
            BundleError::Corrupt { entry, source }
        }
    };
    let mut archive = tar::Archive::new(capped);
    let entries = archive.entries().map_err(|e| corrupt(None, e))?;
    let mut last: Option<String> = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(last.clone(), e))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        last = Some(raw.clone());
        let kind = entry.header().entry_type();
        use tar::EntryType as T;
        if let (Some(skipped), T::Symlink | T::Link | T::Char | T::Block | T::Fifo) =
            (skipped.as_deref_mut(), kind)
        {
            skipped.push(match entry.link_name_bytes() {
                Some(to) if kind == T::Symlink || kind == T::Link => {
                    format!("{raw} -> {}", String::from_utf8_lossy(&to))
                }
                _ => raw,
            });
            continue;
        }
        match kind {
            T::Regular | T::Continuous | T::Directory => {}
            // Global PAX headers carry no file.
            T::XGlobalHeader => continue,
            T::Symlink => {
                return Err(BundleError::unsafe_entry(
                    raw,
                    "symbolic links are not allowed in a layer",
                ));
            }
            T::Link => {
                return Err(BundleError::unsafe_entry(
                    raw,
                    "hard links are not allowed in a layer",
                ));
            }
            T::Char | T::Block => {
                return Err(BundleError::unsafe_entry(
                    raw,
                    "device nodes are not allowed in a layer",
                ));
            }
            T::Fifo => return Err(BundleError::unsafe_entry(raw, "FIFOs are not allowed in a layer")),
            other => {
                return Err(BundleError::unsafe_entry(
                    raw,
                    format!(
                        "entry type {:?} is not supported (only regular files and directories)",
                        other.as_byte() as char
                    ),
                ));
            }
        }
        let path = safe_path(&raw, limits)?;
        budget.files += 1;
        if budget.files > limits.max_files {
            return Err(BundleError::LimitExceeded {
                limit: format!("{} files and directories", limits.max_files),
                entry: Some(raw),
            });
        }
        if kind == T::Directory {
            visit(
                SafeEntry {
                    path,
                    kind: SafeKind::Dir,
                },
                &mut io::empty(),
            )?;
            continue;
        }
        if path.is_empty() {
            return Err(BundleError::unsafe_entry(raw, "a file entry must have a name"));
        }
        let size = entry.size();
        budget.bytes = budget.bytes.saturating_add(size);
        if budget.bytes > limits.max_bytes {
            return Err(BundleError::LimitExceeded {
                limit: format!("{} uncompressed bytes", limits.max_bytes),
                entry: Some(raw),
            });
        }
        let mode = entry.header().mode().unwrap_or(0o644);
        let mtime = entry.header().mtime().unwrap_or(0);
        visit(
            SafeEntry {
                path,
                kind: SafeKind::File { mode, mtime },
            },
            &mut entry,
        )?;
    }
    let mut decoder = archive.into_inner();
    let trailing = io::copy(&mut (&mut decoder).take(MAX_TRAILING + 1), &mut io::sink())
        .map_err(|e| corrupt(None, e))?;
    let decoder = decoder.inner;
    if trailing > MAX_TRAILING {
        return Err(BundleError::LimitExceeded {
            limit: format!("{MAX_TRAILING} bytes of data after the end of the tar"),
            entry: None,
        });
    }
    // Anything after the gzip stream still belongs to the blob; reading it lets the blob's
    // digest and size checks run.
    io::copy(&mut decoder.into_blob(), &mut io::sink()).map_err(|e| BundleError::Corrupt {
        entry: None,
        source: e,
    })?;
    Ok(())
}

/// The tar bytes of a layer blob.
enum TarStream<R> {
    Gzip(MultiGzDecoder<R>),
    Plain(R),
}

impl<R: Read> Read for TarStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            TarStream::Gzip(d) => d.read(buf),
            TarStream::Plain(r) => r.read(buf),
        }
    }
}

impl<R> TarStream<R> {
    fn into_blob(self) -> R {
        match self {
            TarStream::Gzip(d) => d.into_inner(),
            TarStream::Plain(r) => r,
        }
    }
}

/// A reader that fails (and says so in `over`) once it has given out `left` bytes.
struct Capped<R> {
    inner: R,
    left: u64,
    over: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // Only a real byte beyond the cap counts; an end of stream here is fine.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.over.set(true);
            return Err(io::Error::other(
                "the decompressed layer is larger than its limit",
            ));
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Normalise an entry path (`./` prefixes and `\` separators accepted) or reject it.
fn safe_path(raw: &str, limits: &Limits) -> Result<String, BundleError> {
    let unified = raw.replace('\\', "/");
    if unified.starts_with('/') {
        return Err(BundleError::unsafe_entry(raw, "absolute paths are not allowed"));
    }
    let bytes = unified.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return Err(BundleError::unsafe_entry(
            raw,
            "absolute (drive letter) paths are not allowed",
        ));
    }
    let mut parts = Vec::new();
    for part in unified.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(BundleError::unsafe_entry(
                    raw,
                    "'..' path components are not allowed",
                ));
            }
            p => parts.push(p),
        }
    }
    if parts.len() > limits.max_depth {
        return Err(BundleError::LimitExceeded {
            limit: format!("path depth {}", limits.max_depth),
            entry: Some(raw.to_string()),
        });
    }
    Ok(parts.join("/"))
}

/// Read a gzip tar layer into memory, enforcing `limits` and path safety.
pub fn read_to_memory(gzip: impl Read, limits: &Limits) -> Result<FileTree, BundleError> {
    let mut files = FileTree::new();
    read_layer(
        gzip,
        LayerCompression::Gzip,
        limits,
        &mut Budget::default(),
        None,
        |entry, reader| {
            if let SafeKind::File { .. } = entry.kind {
                let mut data = Vec::new();
                reader.read_to_end(&mut data).map_err(|e| BundleError::Corrupt {
                    entry: Some(entry.path.clone()),
                    source: e,
                })?;
                files.insert(entry.path, data);
            }
            Ok(())
        },
    )?;
    Ok(files)
}

/// Extract a gzip tar layer under `dest`, enforcing `limits` and path safety.
pub fn extract_to_dir(gzip: impl Read, dest: &Path, limits: &Limits) -> Result<(), BundleError> {
    Extractor::new(dest, limits.clone()).apply_layer(gzip)
}

/// Applies the layers of one image in order under a directory, with OCI whiteouts and limits
/// counted across all layers.
pub struct Extractor {
    dest: PathBuf,
    limits: Limits,
    budget: Budget,
    /// `Some`: links, devices and FIFOs are skipped and listed here rather than refused.
    skipped: Option<Vec<String>>,
}

impl Extractor {
    pub fn new(dest: &Path, limits: Limits) -> Extractor {
        Extractor {
            dest: dest.to_path_buf(),
            limits,
            budget: Budget::default(),
            skipped: None,
        }
    }

    /// Skip symbolic links, hard links, device nodes and FIFOs instead of failing, as imgpkg
    /// pull does (container images are full of them); [`take_skipped`](Self::take_skipped)
    /// lists what was left out.
    pub fn skipping_links_and_devices(mut self) -> Extractor {
        self.skipped = Some(Vec::new());
        self
    }

    /// The entries skipped since the last call (`name` or `name -> target`).
    pub fn take_skipped(&mut self) -> Vec<String> {
        self.skipped.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Extract one gzip tar layer on top of what earlier layers wrote. `.wh.NAME` removes NAME
    /// from earlier layers; `.wh..wh..opq` empties its directory of earlier layers' content.
    pub fn apply_layer(&mut self, gzip: impl Read) -> Result<(), BundleError> {
        self.apply_layer_as(gzip, LayerCompression::Gzip)
    }

    /// [`apply_layer`](Self::apply_layer) for a blob stored as `compression`.
    pub fn apply_layer_as(
        &mut self,
        blob: impl Read,
        compression: LayerCompression,
    ) -> Result<(), BundleError> {
        let dest = self.dest.clone();
        // Paths this layer wrote (and their parents), which whiteouts in the same layer keep.
        let mut written: HashSet<String> = HashSet::new();
        written.insert(String::new());
        read_layer(
            blob,
            compression,
            &self.limits,
            &mut self.budget,
            self.skipped.as_mut(),
            |entry, reader| {
                let (parent, base) = match entry.path.rsplit_once('/') {
                    Some((p, b)) => (p.to_string(), b.to_string()),
                    None => (String::new(), entry.path.clone()),
                };
                if let Some(target) = base.strip_prefix(".wh.") {
                    if target == ".wh..opq" {
                        clear_dir_except(&dest, &parent, &written).map_err(|e| {
                            BundleError::io("applying opaque whiteout in", dest.join(&parent), e)
                        })?;
                    } else {
                        // `.wh..` or `.wh...` would name the directory itself or its parent.
                        if target.is_empty() || target == "." || target == ".." {
                            return Err(BundleError::unsafe_entry(
                                entry.path.clone(),
                                "a whiteout must name an entry of its own directory",
                            ));
                        }
                        let victim = join_rel(&parent, target);
                        if !written.contains(&victim) {
                            remove_any(&dest.join(&victim)).map_err(|e| {
                                BundleError::io("applying whiteout for", dest.join(&victim), e)
                            })?;
                        }
                    }
                    return Ok(());
                }
                let target = dest.join(&entry.path);
                mark_written(&mut written, &entry.path);
                match entry.kind {
                    SafeKind::Dir => fs::create_dir_all(&target)
                        .map_err(|e| BundleError::io("creating directory", &target, e)),
                    SafeKind::File { mode, mtime } => {
                        write_file(&target, reader, mode, mtime).map_err(|e| BundleError::Io {
                            action: "extracting layer entry to",
                            path: target.clone(),
                            source: e,
                        })
                    }
                }
            },
        )
    }
}

fn join_rel(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

fn mark_written(written: &mut HashSet<String>, path: &str) {
    let mut p = path;
    written.insert(p.to_string());
    while let Some((parent, _)) = p.rsplit_once('/') {
        written.insert(parent.to_string());
        p = parent;
    }
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn clear_dir_except(dest: &Path, rel: &str, keep: &HashSet<String>) -> io::Result<()> {
    let dir = dest.join(rel);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            remove_any(&entry.path())?;
            continue;
        };
        let child = join_rel(rel, &name);
        if !keep.contains(&child) {
            remove_any(&entry.path())?;
        } else if entry.file_type()?.is_dir() {
            clear_dir_except(dest, &child, keep)?;
        }
    }
    Ok(())
}

/// Write one file the way imgpkg does: a mode without group/other bits gets the user bits
/// copied to them; the header mtime is kept.
fn write_file(target: &Path, reader: &mut dyn Read, mode: u32, mtime: u64) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    // A file from an earlier layer may be read-only; replace it rather than open it.
    match fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a directory of that name already exists",
            ));
        }
        Ok(_) => fs::remove_file(target)?,
        Err(_) => {}
    }
    let mut perm = mode & 0o777;
    if perm & 0o077 == 0 {
        let user = perm & 0o700;
        perm = user | (user >> 3) | (user >> 6);
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(perm)
        .open(target)?;
    io::copy(reader, &mut file)?;
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
    file.set_times(fs::FileTimes::new().set_modified(time).set_accessed(time))?;
    Ok(())
}
