//! The bundle layer: limits and a bounded, path-safe reader (writing is in `layer_write`, and
//! re-exported here).
use super::layer_media::{LayerCompression, Sniffed};
use super::{BundleError, FileTree};
use flate2::read::MultiGzDecoder;
use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub use super::layer_write::{
    LayerInfo, Permissions, write_layer, write_layer_with, write_single_file_layer,
};

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

/// Validate every entry of a layer's tar (gzip or plain, as its first bytes say) and hand
/// regular files and dirs to `visit`; fail on any entry that breaks path safety or the limits.
/// The input is read to its end, so a digest check on the underlying stream always runs.
///
/// Links, device nodes and FIFOs are errors, unless `skipped` collects them instead (how imgpkg
/// pull treats them: nothing is written for them).
fn read_layer<R: Read>(
    blob: R,
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
    let blob = Sniffed::new(blob).map_err(|e| BundleError::Corrupt {
        entry: None,
        source: e,
    })?;
    let tar = match blob.compression() {
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

/// Read a tar layer (gzip or plain) into memory, enforcing `limits` and path safety.
pub fn read_to_memory(blob: impl Read, limits: &Limits) -> Result<FileTree, BundleError> {
    let mut files = FileTree::new();
    read_layer(blob, limits, &mut Budget::default(), None, |entry, reader| {
        if let SafeKind::File { .. } = entry.kind {
            let mut data = Vec::new();
            reader.read_to_end(&mut data).map_err(|e| BundleError::Corrupt {
                entry: Some(entry.path.clone()),
                source: e,
            })?;
            files.insert(entry.path, data);
        }
        Ok(())
    })?;
    Ok(files)
}

/// Extract a tar layer (gzip or plain) under `dest`, enforcing `limits` and path safety.
pub fn extract_to_dir(blob: impl Read, dest: &Path, limits: &Limits) -> Result<(), BundleError> {
    Extractor::new(dest, limits.clone()).apply_layer(blob)
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

    /// Extract one tar layer (gzip or plain, as its first bytes say) on top of what earlier
    /// layers wrote. `.wh.NAME` removes NAME from earlier layers; `.wh..wh..opq` empties its
    /// directory of earlier layers' content.
    pub fn apply_layer(&mut self, blob: impl Read) -> Result<(), BundleError> {
        let dest = self.dest.clone();
        // Paths this layer wrote (and their parents), which whiteouts in the same layer keep.
        let mut written: HashSet<String> = HashSet::new();
        written.insert(String::new());
        read_layer(
            blob,
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
