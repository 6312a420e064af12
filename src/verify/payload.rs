//! One cosign signature checked offline: a layer of the `.sig` image (cosign's
//! `pkg/oci/static` layout) and its simple-signing payload.
//!
//! The layer has media type `application/vnd.dev.cosign.simplesigning.v1+json`, the base64
//! signature in its annotation `dev.cosignproject.cosign/signature`, and the payload as its blob:
//! `{"critical":{"identity":{…},"image":{"docker-manifest-digest":"sha256:…"},"type":…},
//! "optional":{…}}`. As cosign does, the signature is checked over the payload bytes first, then
//! the payload's digest, then the wanted annotations against `optional`.
use super::keys::PublicKey;
use crate::registry::{Descriptor, Digest};
use base64::Engine as _;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The media type of every signature layer cosign writes.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// Why one signature does not vouch for the subject.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no such tag: the digest is not signed there")]
    Missing,
    #[error("signed by none of the {keys} key(s) given (another key, or the payload was altered)")]
    WrongKey { keys: usize },
    #[error("its payload is for {signed}, not for this digest")]
    OtherDigest { signed: String },
    #[error("annotation {key}={wanted:?} is required but the payload has {found}")]
    Annotation {
        key: String,
        wanted: String,
        found: String,
    },
    #[error("malformed: {0}")]
    Malformed(String),
}

/// The base64 signature of a layer, or why the layer is not a cosign signature.
pub fn layer_signature(layer: &Descriptor) -> Result<Vec<u8>, Rejection> {
    if layer.media_type != SIMPLE_SIGNING {
        return Err(Rejection::Malformed(format!(
            "layer {} has media type {:?}, not {SIMPLE_SIGNING}",
            layer.digest, layer.media_type
        )));
    }
    let Some(encoded) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
        return Err(Rejection::Malformed(format!(
            "layer {} has no {SIGNATURE_ANNOTATION} annotation",
            layer.digest
        )));
    };
    base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| {
            Rejection::Malformed(format!(
                "the {SIGNATURE_ANNOTATION} annotation of layer {} is not base64: {e}",
                layer.digest
            ))
        })
}

#[derive(Deserialize)]
struct SimpleSigning {
    critical: Critical,
    #[serde(default)]
    optional: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct Critical {
    image: CriticalImage,
}

#[derive(Deserialize)]
struct CriticalImage {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// Check `signature` over `payload` for `subject`: returns the index in `keys` of the key that
/// made it. `annotations` must all be in the payload's `optional` map as strings (cosign's `-a`).
pub fn check(
    subject: &Digest,
    payload: &[u8],
    signature: &[u8],
    keys: &[PublicKey],
    annotations: &BTreeMap<String, String>,
) -> Result<usize, Rejection> {
    let key = keys
        .iter()
        .position(|k| k.verifies(payload, signature))
        .ok_or(Rejection::WrongKey { keys: keys.len() })?;
    let parsed: SimpleSigning = serde_json::from_slice(payload)
        .map_err(|e| Rejection::Malformed(format!("the payload is not a simple-signing document: {e}")))?;
    let signed = parsed.critical.image.docker_manifest_digest;
    if signed != subject.as_str() {
        return Err(Rejection::OtherDigest { signed });
    }
    let optional = parsed.optional.unwrap_or_default();
    for (k, wanted) in annotations {
        let found = optional.get(k);
        if found.and_then(|v| v.as_str()) != Some(wanted.as_str()) {
            return Err(Rejection::Annotation {
                key: k.clone(),
                wanted: wanted.clone(),
                found: found.map_or_else(|| "none".to_string(), |v| format!("{k}={v}")),
            });
        }
    }
    Ok(key)
}

/// Parse cosign's `-a key=value` flags.
pub fn parse_annotation(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("annotation {s:?} is not key=value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(media_type: &str, signature: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest: Digest::of(b"payload"),
            size: 7,
            urls: vec![],
            annotations: signature
                .map(|s| BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), s.to_string())]))
                .unwrap_or_default(),
        }
    }

    #[test]
    fn layer_signatures_are_read_from_the_annotation() {
        assert_eq!(
            layer_signature(&layer(SIMPLE_SIGNING, Some("c2ln"))).unwrap(),
            b"sig"
        );
        for (bad, why) in [
            (layer("application/json", Some("c2ln")), "media type"),
            (
                layer(SIMPLE_SIGNING, None),
                "no dev.cosignproject.cosign/signature",
            ),
            (layer(SIMPLE_SIGNING, Some("%%%")), "not base64"),
        ] {
            let err = layer_signature(&bad).unwrap_err().to_string();
            assert!(err.starts_with("malformed: ") && err.contains(why), "{err}");
        }
    }

    #[test]
    fn annotations_parse_as_key_value() {
        assert_eq!(
            parse_annotation("env=prod=1").unwrap(),
            ("env".into(), "prod=1".into())
        );
        assert!(parse_annotation("novalue").is_err());
        assert!(parse_annotation("=x").is_err());
    }
}
