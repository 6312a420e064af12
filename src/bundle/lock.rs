//! `.imgpkg/images.yml` (ImagesLock), BundleLock and ImageLocations: strict parsing, and the
//! exact YAML imgpkg writes (`---`, sorted keys, empty fields left out).
use super::BundleError;
use crate::registry::{Digest, Reference};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The `apiVersion` of every imgpkg lock and locations document.
pub const API_VERSION: &str = "imgpkg.carvel.dev/v1alpha1";
/// The annotation kbld writes with the original image reference.
pub const KBLD_ID_ANNOTATION: &str = "kbld.carvel.dev/id";

/// `.imgpkg/images.yml`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ImagesLock {
    pub images: Vec<LockedImage>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct LockedImage {
    /// A digest reference, normalised (`index.docker.io/library/foo@sha256:…`).
    pub image: String,
    pub annotations: BTreeMap<String, String>,
}

impl LockedImage {
    /// The parsed reference (always carries a digest once parsed by [`ImagesLock::parse`]).
    pub fn reference(&self) -> Result<Reference, BundleError> {
        digest_reference(&self.image, "ImagesLock image")
    }

    /// The image's digest.
    pub fn digest(&self) -> Result<Digest, BundleError> {
        let reference = self.reference()?;
        reference
            .digest()
            .cloned()
            .ok_or_else(|| BundleError::format("ImagesLock image", format!("{:?} has no digest", self.image)))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawImagesLock {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    images: Option<Vec<RawLockedImage>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLockedImage {
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

impl ImagesLock {
    /// Parse strictly as imgpkg does (unknown fields and tag references are errors).
    pub fn parse(yaml: &[u8]) -> Result<ImagesLock, BundleError> {
        const WHAT: &str = "ImagesLock (.imgpkg/images.yml)";
        let raw: RawImagesLock = serde_saphyr::from_slice(yaml)
            .map_err(|e| BundleError::format(WHAT, format!("not a valid ImagesLock document: {e}")))?;
        check_header(
            WHAT,
            raw.api_version.as_deref(),
            raw.kind.as_deref(),
            "ImagesLock",
        )?;
        let mut images = Vec::new();
        for (i, entry) in raw.images.unwrap_or_default().into_iter().enumerate() {
            let image = entry.image.unwrap_or_default();
            let reference = digest_reference(&image, &format!("{WHAT} images[{i}]"))?;
            images.push(LockedImage {
                image: reference.to_string(),
                annotations: entry.annotations.unwrap_or_default(),
            });
        }
        Ok(ImagesLock { images })
    }

    /// The YAML imgpkg writes (`---`, sorted keys).
    pub fn to_yaml(&self) -> String {
        let mut out = format!("---\napiVersion: {API_VERSION}\n");
        if !self.images.is_empty() {
            out.push_str("images:\n");
            for image in &self.images {
                let mut first = true;
                let mut item = |line: String| {
                    out.push_str(if first { "- " } else { "  " });
                    out.push_str(&line);
                    out.push('\n');
                    first = false;
                };
                if !image.annotations.is_empty() {
                    let mut block = String::from("annotations:");
                    for (k, v) in &image.annotations {
                        let _ = write!(block, "\n    {}: {}", yaml_scalar(k), yaml_scalar(v));
                    }
                    item(block);
                }
                if !image.image.is_empty() {
                    item(format!("image: {}", yaml_scalar(&image.image)));
                }
                if first {
                    out.push_str("- {}\n");
                }
            }
        }
        out.push_str("kind: ImagesLock\n");
        out
    }

    /// Every image moved to `repository` (`<repository>@<digest>`), order and annotations kept.
    pub fn relocated_to(&self, repository: &Reference) -> Result<ImagesLock, BundleError> {
        let images = self
            .images
            .iter()
            .map(|img| {
                Ok(LockedImage {
                    image: repository.with_digest(img.digest()?).to_string(),
                    annotations: img.annotations.clone(),
                })
            })
            .collect::<Result<_, BundleError>>()?;
        Ok(ImagesLock { images })
    }
}

/// What `push -b --lock-output` and `copy --lock-output` write for a bundle.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct BundleLock {
    pub image: String,
    pub tag: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawBundleLock {
    api_version: Option<String>,
    kind: Option<String>,
    bundle: Option<RawBundleRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundleRef {
    image: Option<String>,
    tag: Option<String>,
}

impl BundleLock {
    /// Parse strictly (unknown fields are errors; `bundle.image` must be a digest reference).
    pub fn parse(yaml: &[u8]) -> Result<BundleLock, BundleError> {
        const WHAT: &str = "BundleLock";
        let raw: RawBundleLock = serde_saphyr::from_slice(yaml)
            .map_err(|e| BundleError::format(WHAT, format!("not a valid BundleLock document: {e}")))?;
        check_header(
            WHAT,
            raw.api_version.as_deref(),
            raw.kind.as_deref(),
            "BundleLock",
        )?;
        let bundle = raw
            .bundle
            .ok_or_else(|| BundleError::format(WHAT, "missing the \"bundle\" section"))?;
        let reference = digest_reference(&bundle.image.unwrap_or_default(), "BundleLock bundle.image")?;
        Ok(BundleLock {
            image: reference.to_string(),
            tag: bundle.tag.filter(|t| !t.is_empty()),
        })
    }

    /// The YAML imgpkg writes.
    pub fn to_yaml(&self) -> String {
        let mut out = format!("---\napiVersion: {API_VERSION}\nbundle:\n");
        let _ = writeln!(out, "  image: {}", yaml_scalar(&self.image));
        if let Some(tag) = &self.tag {
            let _ = writeln!(out, "  tag: {}", yaml_scalar(tag));
        }
        out.push_str("kind: BundleLock\n");
        out
    }
}

/// The contents of a locations image (`image-locations.yml`).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ImageLocations {
    pub images: Vec<ImageLocation>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct ImageLocation {
    pub image: String,
    pub is_bundle: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawImageLocations {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    images: Option<Vec<RawImageLocation>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawImageLocation {
    image: Option<String>,
    #[serde(default)]
    is_bundle: Option<bool>,
}

impl ImageLocations {
    /// Parse `image-locations.yml`. Unknown fields are tolerated: the file is a cache written by
    /// whichever imgpkg or pkgr version copied the bundle.
    pub fn parse(yaml: &[u8]) -> Result<ImageLocations, BundleError> {
        const WHAT: &str = "ImageLocations (image-locations.yml)";
        let raw: RawImageLocations = serde_saphyr::from_slice(yaml)
            .map_err(|e| BundleError::format(WHAT, format!("not a valid ImageLocations document: {e}")))?;
        check_header(
            WHAT,
            raw.api_version.as_deref(),
            raw.kind.as_deref(),
            "ImageLocations",
        )?;
        let images = raw
            .images
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                let image = l.image.unwrap_or_default();
                digest_reference(&image, &format!("{WHAT} images[{i}]"))?;
                Ok(ImageLocation {
                    image,
                    is_bundle: l.is_bundle.unwrap_or(false),
                })
            })
            .collect::<Result<_, BundleError>>()?;
        Ok(ImageLocations { images })
    }

    /// The YAML imgpkg writes: images sorted by `image`, `isBundle` always present, `images: null`
    /// when there are none.
    pub fn to_yaml(&self) -> String {
        let mut out = format!("---\napiVersion: {API_VERSION}\n");
        let mut images: Vec<&ImageLocation> = self.images.iter().collect();
        images.sort_by(|a, b| a.image.cmp(&b.image));
        if images.is_empty() {
            // imgpkg's list is nil for a bundle without images, and its field has no omitempty.
            out.push_str("images: null\n");
        } else {
            out.push_str("images:\n");
            for l in images {
                if l.image.is_empty() {
                    let _ = writeln!(out, "- isBundle: {}", l.is_bundle);
                } else {
                    let _ = writeln!(
                        out,
                        "- image: {}\n  isBundle: {}",
                        yaml_scalar(&l.image),
                        l.is_bundle
                    );
                }
            }
        }
        out.push_str("kind: ImageLocations\n");
        out
    }

    /// Whether the locations image records `digest` as a bundle.
    pub fn is_bundle(&self, digest: &Digest) -> Option<bool> {
        self.images
            .iter()
            .find(|l| l.image.ends_with(&format!("@{digest}")))
            .map(|l| l.is_bundle)
    }
}

fn check_header(
    what: &str,
    api_version: Option<&str>,
    kind: Option<&str>,
    expected_kind: &str,
) -> Result<(), BundleError> {
    if api_version != Some(API_VERSION) {
        return Err(BundleError::format(
            what,
            format!(
                "unknown apiVersion {:?} (known: {API_VERSION})",
                api_version.unwrap_or("")
            ),
        ));
    }
    if kind != Some(expected_kind) {
        return Err(BundleError::format(
            what,
            format!(
                "expected kind to be {expected_kind}, found {:?}",
                kind.unwrap_or("")
            ),
        ));
    }
    Ok(())
}

/// Parse a reference that must carry a digest, normalised as imgpkg does (tag dropped).
fn digest_reference(image: &str, what: &str) -> Result<Reference, BundleError> {
    if image.is_empty() {
        return Err(BundleError::format(
            what,
            "the image is missing (Expected ref to be in digest form: repo@sha256:...)",
        ));
    }
    let reference = Reference::parse(image)
        .map_err(|e| BundleError::format(what, format!("{image:?} is not a valid image reference: {e}")))?;
    let digest = reference.digest().cloned().ok_or_else(|| {
        BundleError::format(
            what,
            format!("Expected ref to be in digest form, got {image:?} (lock files pin images by digest: repo@sha256:...)"),
        )
    })?;
    Ok(reference.with_digest(digest))
}

/// A YAML scalar as go-yaml v2 writes it: plain when unambiguous, double-quoted when it would
/// read back as another type, single-quoted when it holds YAML indicators.
pub(crate) fn yaml_scalar(s: &str) -> String {
    if s.is_empty() || resolves_to_non_string(s) {
        return double_quoted(s);
    }
    if s.chars().any(|c| c.is_control() || c == '\u{feff}') {
        return double_quoted(s);
    }
    if plain_safe(s) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "''"))
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || c == '\u{feff}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false", "False",
        "FALSE", "on", "On", "ON", "off", "Off", "OFF", "~", "null", "Null", "NULL", ".inf", ".Inf", ".INF",
        "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    if let Some(hex) = body.strip_prefix("0x") {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit() || c == '_');
    }
    if let Some(bin) = body.strip_prefix("0b") {
        return !bin.is_empty() && bin.chars().all(|c| c == '0' || c == '1' || c == '_');
    }
    // Integers, floats and YAML 1.1 base-60 numbers (`1:20`).
    let numeric = body.replace('_', "");
    if !numeric.is_empty()
        && numeric.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && numeric
            .chars()
            .all(|c| c.is_ascii_digit() || "._:eE+-".contains(c))
    {
        let without_colons: String = numeric.split(':').collect::<Vec<_>>().join("");
        return without_colons.parse::<f64>().is_ok();
    }
    false
}

fn plain_safe(s: &str) -> bool {
    let first = s.chars().next().unwrap_or(' ');
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) || first.is_whitespace() {
        // `-foo` and `?foo` may be plain, but go-yaml quotes any leading indicator followed by
        // nothing or a space; keep it simple and quote them all.
        return false;
    }
    if s.ends_with(char::is_whitespace) || s.ends_with(':') {
        return false;
    }
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    !(s.contains(": ") || s.contains(" #") || s.contains('\n'))
}
