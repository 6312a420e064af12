//! Writing an imgpkg tarball: the layout first, then layers filled in by positional writes, in
//! any order; `--resume` keeps what an earlier partial file already holds.
use super::*;

/// The USTAR header Go's archive/tar writes for a regular file: mode 0644, uid/gid 0, mtime 0.
pub(super) fn entry_header(name: &str, size: u64) -> Result<[u8; BLOCK as usize], String> {
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
    pub(super) file: Arc<File>,
    /// Where the data is being written (the target itself, or a temporary file beside it).
    pub(super) writing: PathBuf,
    pub(super) target: PathBuf,
    pub(super) slots: BTreeMap<Digest, EntrySpan>,
    pub(super) filled: Arc<Mutex<HashSet<Digest>>>,
    pub(super) resume: ResumeReport,
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
pub(super) fn sha256_digest(hasher: Sha256) -> Digest {
    Digest::parse(&format!("sha256:{}", hex::encode(hasher.finalize())))
        .expect("a sha256 is always a valid digest")
}

pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

pub(super) fn span_verifies(file: &File, span: EntrySpan, digest: &Digest) -> bool {
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

pub(super) fn copy_span(from: &File, from_at: u64, to: &File, to_at: u64, size: u64) -> io::Result<()> {
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
    pub(super) file: Arc<File>,
    pub(super) path: PathBuf,
    pub(super) filled: Arc<Mutex<HashSet<Digest>>>,
    pub(super) start: u64,
    pub(super) position: u64,
    pub(super) end: u64,
    pub(super) hasher: Option<Sha256>,
    pub(super) digest: Digest,
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
