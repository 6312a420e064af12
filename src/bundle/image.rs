//! Config and manifest bytes of imgpkg images, and bundle detection from a config.
use super::BundleError;
use crate::registry::{Digest, MEDIA_DOCKER_CONFIG, MEDIA_DOCKER_LAYER_GZIP, MEDIA_DOCKER_MANIFEST};
use std::collections::BTreeMap;

/// imgpkg's config JSON for a one-layer image with `labels`.
///
/// The bytes are what go-containerregistry's `v1.ConfigFile` marshals to for imgpkg's image:
/// fixed key order, zero times, and `"config":{}` when there are no labels.
pub fn config_json(diff_id: &Digest, labels: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = String::from(
        r#"{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"author":"imgpkg","created":"0001-01-01T00:00:00Z","created_by":"imgpkg"}],"os":"","rootfs":{"type":"layers","diff_ids":["#,
    );
    out.push_str(&go_json_string(diff_id.as_str()));
    out.push_str(r#"]},"config":{"#);
    if !labels.is_empty() {
        out.push_str(r#""Labels":{"#);
        // Go marshals map keys sorted, which a BTreeMap already is.
        let pairs: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{}:{}", go_json_string(k), go_json_string(v)))
            .collect();
        out.push_str(&pairs.join(","));
        out.push('}');
    }
    out.push_str("}}");
    out.into_bytes()
}

/// imgpkg's Docker schema 2 manifest JSON for one config and one gzip layer.
pub fn manifest_json(config: (&Digest, u64), layer: (&Digest, u64)) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{MEDIA_DOCKER_MANIFEST}","config":{{"mediaType":"{MEDIA_DOCKER_CONFIG}","size":{},"digest":"{}"}},"layers":[{{"mediaType":"{MEDIA_DOCKER_LAYER_GZIP}","size":{},"digest":"{}"}}]}}"#,
        config.1, config.0, layer.1, layer.0
    )
    .into_bytes()
}

/// Labels of an image config (`config.Labels`), from any Docker or OCI config.
pub fn config_labels(config: &[u8]) -> Result<BTreeMap<String, String>, BundleError> {
    let value: serde_json::Value = serde_json::from_slice(config)
        .map_err(|e| BundleError::format("image config", format!("not valid JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(BundleError::format("image config", "expected a JSON object"));
    };
    let labels = match object.get("config") {
        None | Some(serde_json::Value::Null) => return Ok(BTreeMap::new()),
        Some(serde_json::Value::Object(c)) => c.get("Labels"),
        Some(_) => {
            return Err(BundleError::format(
                "image config",
                "\"config\" must be an object",
            ));
        }
    };
    match labels {
        None | Some(serde_json::Value::Null) => Ok(BTreeMap::new()),
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(BundleError::format(
                    "image config",
                    format!("label {k:?} must be a string, found {other}"),
                )),
            })
            .collect(),
        Some(_) => Err(BundleError::format(
            "image config",
            "\"config.Labels\" must be an object of strings",
        )),
    }
}

/// A JSON string as Go's encoding/json writes it (HTML-safe: `<`, `>`, `&` escaped).
pub(crate) fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
