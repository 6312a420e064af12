//! Reading an imgpkg tarball: one scan of the entries (PAX names included), then layers read
//! back by position and verified against their digests as they stream.
use super::*;

/// Where an entry's data sits in the file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct EntrySpan {
    pub(super) header_offset: u64,
    pub(super) data_offset: u64,
    pub(super) size: u64,
}

/// A tarball opened for reading; layer entries are located once, then read by offset.
pub struct TarballReader {
    pub(super) path: PathBuf,
    pub(super) images: Vec<TarImage>,
    pub(super) entries: HashMap<String, EntrySpan>,
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

    /// The layer blob `digest` is in the tarball, or the error that says which image lacks it
    /// (imgpkg's message: a tarball written without `--include-non-distributable-layers`).
    pub fn require_layer(&self, digest: &Digest) -> Result<(), TarballError> {
        if self.has_layer(digest) {
            return Ok(());
        }
        let owner = self
            .images
            .iter()
            .find_map(|i| i.layers.iter().find(|l| &l.digest == digest).map(|l| (i, l)));
        Err(TarballError::MissingLayer {
            path: self.path.clone(),
            entry: layer_entry_name(digest),
            image: owner.map_or_else(|| "(none)".to_string(), |(i, _)| i.manifest.digest.to_string()),
            non_distributable: owner.is_some_and(|(_, l)| !crate::registry::is_distributable(&l.media_type)),
        })
    }

    /// Read a layer blob, verified against `digest` while reading.
    pub fn open_layer(&self, digest: &Digest) -> Result<Box<dyn Read + Send>, TarballError> {
        self.require_layer(digest)?;
        let entry = layer_entry_name(digest);
        let span = self.entries[&entry];
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
pub(super) struct VerifyingReader {
    pub(super) file: File,
    pub(super) position: u64,
    pub(super) end: u64,
    pub(super) hasher: Option<Sha256>,
    pub(super) expected: Digest,
    pub(super) what: String,
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

pub(super) fn io_err(action: &'static str, path: &Path, source: io::Error) -> TarballError {
    TarballError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Index the entries of a tar file: (names in order, name → span). `strict` rejects a file that
/// ends early; otherwise scanning stops at the first incomplete entry (for `--resume`).
pub(super) fn scan(
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
pub(super) fn pax_records(data: &[u8]) -> Vec<(String, String)> {
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

pub(super) fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK) * BLOCK
}

// ---------------------------------------------------------------------------------------------
// manifest.json
