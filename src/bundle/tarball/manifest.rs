//! `manifest.json`: imgpkg's Go field names, read into images (indexes flattened) and written
//! back byte for byte as Go's encoding/json would.
use super::*;

#[derive(Deserialize)]
pub(super) struct JEntry {
    #[serde(rename = "ImageIndex", default)]
    pub(super) image_index: Option<JIndex>,
    #[serde(rename = "Image", default)]
    pub(super) image: Option<JImage>,
}

#[derive(Deserialize)]
pub(super) struct JIndex {
    #[serde(rename = "Refs", default)]
    pub(super) refs: Option<Vec<String>>,
    #[serde(rename = "Images", default)]
    pub(super) images: Option<Vec<JImage>>,
    #[serde(rename = "Indexes", default)]
    pub(super) indexes: Option<Vec<JIndex>>,
    #[serde(rename = "MediaType", default)]
    pub(super) media_type: String,
    #[serde(rename = "Digest", default)]
    pub(super) digest: String,
    #[serde(rename = "Raw", default)]
    pub(super) raw: String,
    #[serde(rename = "Tag", default)]
    pub(super) tag: String,
    #[serde(rename = "OrigRef", default)]
    pub(super) orig_ref: String,
    #[serde(rename = "Labels", default)]
    pub(super) labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
pub(super) struct JImage {
    #[serde(rename = "Refs", default)]
    pub(super) refs: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    pub(super) layers: Option<Vec<JLayer>>,
    #[serde(rename = "Config")]
    pub(super) config: JConfig,
    #[serde(rename = "Manifest")]
    pub(super) manifest: JManifest,
    #[serde(rename = "Tag", default)]
    pub(super) tag: String,
    #[serde(rename = "OrigRef", default)]
    pub(super) orig_ref: String,
    #[serde(rename = "Labels", default)]
    pub(super) labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
pub(super) struct JLayer {
    #[serde(rename = "MediaType", default)]
    pub(super) media_type: String,
    #[serde(rename = "Digest")]
    pub(super) digest: String,
    #[serde(rename = "DiffID", default)]
    pub(super) diff_id: String,
    #[serde(rename = "Size")]
    pub(super) size: u64,
}

#[derive(Deserialize)]
pub(super) struct JConfig {
    #[serde(rename = "Digest")]
    pub(super) digest: String,
    #[serde(rename = "Raw")]
    pub(super) raw: String,
}

#[derive(Deserialize)]
pub(super) struct JManifest {
    #[serde(rename = "MediaType", default)]
    pub(super) media_type: String,
    #[serde(rename = "Digest")]
    pub(super) digest: String,
    #[serde(rename = "Raw")]
    pub(super) raw: String,
}

/// Parse manifest.json into a flat list, children before parents, each digest once.
pub(super) fn parse_manifest_json(json: &[u8]) -> Result<Vec<TarImage>, String> {
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

pub(super) fn checked_digest(value: &str, what: &str, raw: &[u8]) -> Result<Digest, String> {
    let digest = Digest::parse(value).map_err(|e| format!("{what}: {e}"))?;
    let actual = Digest::of(raw);
    if actual != digest {
        return Err(format!(
            "{what}: the recorded bytes have digest {actual}, not {digest}"
        ));
    }
    Ok(digest)
}

pub(super) fn push_unique(
    image: TarImage,
    out: &mut Vec<TarImage>,
    seen: &mut HashMap<Digest, usize>,
) -> Digest {
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

pub(super) fn flatten_image(
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

pub(super) fn flatten_index(
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

pub(super) fn non_empty(s: String) -> Option<String> {
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

pub(super) fn raw_str(bytes: &Bytes, what: &str, digest: &Digest) -> Result<String, TarballError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| TarballError::Write {
        path: PathBuf::from(MANIFEST_ENTRY),
        reason: format!("the {what} of {digest} is not UTF-8 text, so it cannot be stored in manifest.json"),
    })
}

pub(super) fn write_image(out: &mut String, image: &TarImage) -> Result<(), TarballError> {
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

pub(super) fn write_index(
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
pub(super) fn write_tail(out: &mut String, image: &TarImage) {
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

pub(super) fn go_str_list(out: &mut String, list: &[String]) {
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
    out.push_str(&super::super::image::go_json_string(s));
}

// ---------------------------------------------------------------------------------------------
// Writer
