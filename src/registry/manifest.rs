//! Manifests kept as raw bytes (digests never change), with a typed view for walking the graph.
use super::{Digest, RegistryError};
use bytes::Bytes;
use serde::Deserialize;
use std::collections::BTreeMap;

pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The Accept header for every manifest request.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// A manifest exactly as the registry served it, verified against its digest.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub media_type: String,
    pub digest: Digest,
    pub bytes: Bytes,
}

impl Manifest {
    /// The typed view of the bytes (image manifest or index).
    pub fn parse(&self) -> Result<ManifestBody, RegistryError> {
        parse_body(&self.digest.to_string(), &self.media_type, &self.bytes)
    }
}

#[derive(Clone, Debug)]
pub enum ManifestBody {
    Image(ImageManifest),
    Index(ImageIndex),
}

#[derive(Clone, Debug)]
pub struct ImageManifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Clone, Debug)]
pub struct ImageIndex {
    pub manifests: Vec<Descriptor>,
}

/// A content descriptor, as found in manifests and indexes (serialises in the OCI field order).
#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The fields of any manifest or index we look at; unknown fields are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<u32>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
}

/// imgpkg's rule: foreign / non-distributable layer media types are not copied by default.
pub fn is_distributable(media_type: &str) -> bool {
    !(media_type.contains(".foreign.") || media_type.contains("nondistributable"))
}

/// Whether a media type names an image index / manifest list.
pub fn is_index_media_type(media_type: &str) -> bool {
    media_type == MEDIA_OCI_INDEX || media_type == MEDIA_DOCKER_MANIFEST_LIST
}

/// Whether a media type names an image manifest.
pub fn is_image_media_type(media_type: &str) -> bool {
    media_type == MEDIA_OCI_MANIFEST || media_type == MEDIA_DOCKER_MANIFEST
}

/// The media type to record for a manifest: the served Content-Type unless it is generic,
/// else the document's own `mediaType`, else what its shape says (OCI allows omitting it).
pub(crate) fn effective_media_type(served: &str, bytes: &[u8]) -> String {
    if !is_generic(served) {
        return served.to_string();
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Shape {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        config: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Shape>(bytes) {
        Ok(Shape {
            media_type: Some(m), ..
        }) => m,
        Ok(Shape {
            manifests: Some(_), ..
        }) => MEDIA_OCI_INDEX.to_string(),
        Ok(Shape { config: Some(_), .. }) => MEDIA_OCI_MANIFEST.to_string(),
        _ => served.to_string(),
    }
}

fn is_generic(media_type: &str) -> bool {
    media_type.is_empty() || media_type == "application/json" || media_type == "text/plain"
}

fn parse_body(reference: &str, media_type: &str, bytes: &[u8]) -> Result<ManifestBody, RegistryError> {
    let invalid = |reason: String| RegistryError::InvalidManifest {
        reference: reference.to_string(),
        reason,
    };
    let raw: RawManifest = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("not a valid manifest JSON document: {e}")))?;
    if raw.schema_version == Some(1) {
        return Err(invalid(
            "Docker schema 1 manifests are not supported; push the image again with a current client".into(),
        ));
    }
    let effective = effective_media_type(media_type, bytes);
    if is_index_media_type(&effective) {
        let manifests = raw
            .manifests
            .ok_or_else(|| invalid("an index without a \"manifests\" list".into()))?;
        Ok(ManifestBody::Index(ImageIndex { manifests }))
    } else if is_image_media_type(&effective) {
        let config = raw
            .config
            .ok_or_else(|| invalid("an image manifest without \"config\"".into()))?;
        Ok(ManifestBody::Image(ImageManifest {
            config,
            layers: raw.layers.unwrap_or_default(),
        }))
    } else {
        Err(RegistryError::UnsupportedMediaType {
            reference: reference.to_string(),
            media_type: effective,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(media_type: &str, json: &str) -> Manifest {
        Manifest {
            media_type: media_type.into(),
            digest: Digest::of(json.as_bytes()),
            bytes: Bytes::from(json.to_string()),
        }
    }

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn parses_image_manifest() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MEDIA_OCI_MANIFEST}","config":{{"mediaType":"{MEDIA_OCI_CONFIG}","digest":"{D1}","size":7}},"layers":[{{"mediaType":"{MEDIA_OCI_LAYER_GZIP}","digest":"{D2}","size":9,"annotations":{{"a":"b"}},"urls":["https://x"]}}]}}"#
        );
        let ManifestBody::Image(img) = manifest(MEDIA_OCI_MANIFEST, &json).parse().unwrap() else {
            panic!("image")
        };
        assert_eq!(img.config.digest.as_str(), D1);
        assert_eq!(img.config.size, 7);
        assert_eq!(img.layers.len(), 1);
        assert_eq!(img.layers[0].annotations.get("a").map(String::as_str), Some("b"));
        assert_eq!(img.layers[0].urls, vec!["https://x".to_string()]);
    }

    #[test]
    fn parses_index_with_generic_content_type() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MEDIA_DOCKER_MANIFEST_LIST}","manifests":[{{"mediaType":"{MEDIA_DOCKER_MANIFEST}","digest":"{D1}","size":1,"platform":{{"os":"linux"}}}}]}}"#
        );
        let ManifestBody::Index(idx) = manifest("application/json", &json).parse().unwrap() else {
            panic!("index")
        };
        assert_eq!(idx.manifests[0].digest.as_str(), D1);
        // No mediaType at all: inferred from the shape.
        let bare = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            manifest("", bare).parse().unwrap(),
            ManifestBody::Index(_)
        ));
    }

    #[test]
    fn descriptor_serialises_without_empty_fields() {
        let d = Descriptor {
            media_type: MEDIA_OCI_LAYER_GZIP.into(),
            digest: Digest::parse(D1).unwrap(),
            size: 3,
            urls: vec![],
            annotations: BTreeMap::new(),
        };
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            json,
            format!(r#"{{"mediaType":"{MEDIA_OCI_LAYER_GZIP}","digest":"{D1}","size":3}}"#)
        );
        assert_eq!(serde_json::from_str::<Descriptor>(&json).unwrap(), d);
    }

    #[test]
    fn rejects_unknown_and_broken() {
        let err = manifest("application/vnd.foo", "{}")
            .parse()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unsupported manifest media type \"application/vnd.foo\""),
            "{err}"
        );
        let err = manifest(MEDIA_OCI_MANIFEST, "{not json")
            .parse()
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid manifest JSON"), "{err}");
        let err = manifest(MEDIA_OCI_MANIFEST, r#"{"schemaVersion":1}"#)
            .parse()
            .unwrap_err()
            .to_string();
        assert!(err.contains("schema 1"), "{err}");
        let err = manifest(MEDIA_OCI_MANIFEST, r#"{"schemaVersion":2,"layers":[]}"#)
            .parse()
            .unwrap_err()
            .to_string();
        assert!(err.contains("without \"config\""), "{err}");
        let bad_digest = r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:zz","size":1}}"#;
        let err = manifest(MEDIA_OCI_MANIFEST, bad_digest)
            .parse()
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid digest"), "{err}");
    }
}
