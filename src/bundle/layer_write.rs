//! Writing the bundle layer: imgpkg's deterministic tar (sorted paths, uid/gid 0, mtime 0, its
//! modes and PAX rules), gzip-compressed exactly as Go's BestSpeed, with its digests.
use super::BundleError;
use super::gogzip::GoGzipWriter;
use super::tar_header::{BLOCK, header_blocks};
use crate::registry::Digest;
use sha2::{Digest as _, Sha256};
use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

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

/// Which modes go into the layer's headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Permissions {
    /// imgpkg's default: directories `0700`, files `mode & 0700`, so that the digest does not
    /// depend on the umask of whoever checked the files out.
    #[default]
    Normalised,
    /// `push --preserve-permissions`: each file's Go `os.FileMode`, all of it (group and other
    /// bits, setuid/setgid/sticky in Go's high bits); every directory gets the mode of the `-f`
    /// directory it came from, as imgpkg does (it stats the walk's root, not each directory).
    Preserved,
}

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
    write_layer_with(inputs, exclusions, Permissions::Normalised, out)
}

/// [`write_layer`] with a choice of [`Permissions`].
pub fn write_layer_with(
    inputs: &[PathBuf],
    exclusions: &[String],
    permissions: Permissions,
    out: impl Write,
) -> Result<LayerInfo, BundleError> {
    let mut tar = TarWriter {
        out: layer_sink(out),
        seen_files: HashSet::new(),
        exclusions,
        permissions,
        dir_mode: 0o700,
    };
    for input in inputs {
        let meta =
            fs::symlink_metadata(input).map_err(|e| BundleError::io("reading the input path", input, e))?;
        if meta.is_dir() {
            if permissions == Permissions::Preserved {
                tar.dir_mode = go_file_mode(&meta);
            }
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
    sink.write_all(&header_blocks(
        name,
        u64::from(mode & 0o777),
        data.len() as u64,
        b'0',
    ))
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
    permissions: Permissions,
    /// The mode every directory entry of the current input gets.
    dir_mode: u64,
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
        let blocks = header_blocks(name, self.dir_mode, 0, b'5');
        self.write_all(&blocks, source)
    }

    fn file_entry(&mut self, name: &str, source: &Path, meta: &fs::Metadata) -> Result<(), BundleError> {
        if !self.seen_files.insert(name.to_string()) {
            return Err(BundleError::Input(format!(
                "Found duplicate paths: {name:?} comes from more than one -f input (last seen at {source:?}); give each file once"
            )));
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = match self.permissions {
            Permissions::Normalised => u64::from(meta.permissions().mode() & 0o700),
            Permissions::Preserved => go_file_mode(meta),
        };
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

/// Go's `os.FileMode` of a file as imgpkg puts it in `tar.Header.Mode` unconverted: the
/// permission bits, plus Go's own high bits for a directory and for setuid, setgid and sticky.
fn go_file_mode(meta: &fs::Metadata) -> u64 {
    use std::os::unix::fs::PermissionsExt;
    const GO_MODE_DIR: u64 = 1 << 31;
    const GO_MODE_SETUID: u64 = 1 << 23;
    const GO_MODE_SETGID: u64 = 1 << 22;
    const GO_MODE_STICKY: u64 = 1 << 20;
    let unix = u64::from(meta.permissions().mode());
    let mut mode = unix & 0o777;
    for (bit, go_bit) in [
        (0o4000, GO_MODE_SETUID),
        (0o2000, GO_MODE_SETGID),
        (0o1000, GO_MODE_STICKY),
    ] {
        if unix & bit != 0 {
            mode |= go_bit;
        }
    }
    if meta.is_dir() {
        mode |= GO_MODE_DIR;
    }
    mode
}
