//! Error classification: HTTP statuses, distribution error bodies and transport failures turned
//! into typed [`RegistryError`]s that name the operation.
use super::debug::{RequestLine, redacted_url};
use super::retry::retry_after;
use super::wire::read_capped;
use super::{Client, MAX_SMALL_BODY, Op, Subject};
use crate::registry::{GoText, RegistryError};

impl Client {
    /// Turn a failed response into a typed error, reading (a bounded part of) its body.
    pub(super) async fn status_error(&self, resp: reqwest::Response, op: &Op) -> RegistryError {
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers(), std::time::SystemTime::now());
        let line = resp.extensions().get::<RequestLine>().cloned();
        let body = read_capped(resp, MAX_SMALL_BODY, op).await.unwrap_or_default();
        let (code, message) = distribution_error(&body);
        let go_text = line
            .map(|line| go_status_text(&line, status, &body))
            .unwrap_or_default();
        let mut error = status_to_error(op, status, code, message, go_text);
        if let RegistryError::Status {
            retry_after: slot, ..
        } = &mut error
        {
            *slot = retry_after;
        }
        error
    }
}

pub(super) fn status_to_error(
    op: &Op,
    status: u16,
    code: Option<String>,
    message: String,
    go_text: String,
) -> RegistryError {
    let action = op.action.clone();
    let reference = || match &op.subject {
        Subject::Manifest(r) => r.clone(),
        _ => format!("{}/{}", op.registry, op.repository),
    };
    let blob = || match &op.subject {
        Subject::Blob(d) => d.clone(),
        _ => String::new(),
    };
    let repository = format!("{}/{}", op.registry, op.repository);
    match (status, code.as_deref()) {
        (401, _) | (_, Some("UNAUTHORIZED")) => {
            unauthorized(op, false, with_code(code.as_deref(), message), go_text)
        }
        (403, _) | (_, Some("DENIED")) => RegistryError::Denied {
            action,
            registry: op.registry.clone(),
            repository: op.repository.clone(),
            message,
            go_text: go_text.into(),
        },
        (_, Some("MANIFEST_UNKNOWN")) => RegistryError::ManifestUnknown {
            action,
            reference: reference(),
            message,
            go_text: go_text.into(),
        },
        (_, Some("BLOB_UNKNOWN")) => RegistryError::BlobUnknown {
            action,
            repository,
            digest: blob(),
            message,
            go_text: go_text.into(),
        },
        (_, Some("NAME_UNKNOWN")) => RegistryError::NameUnknown {
            action,
            repository,
            message,
            go_text: go_text.into(),
        },
        (404, None) => match &op.subject {
            Subject::Manifest(r) => RegistryError::ManifestUnknown {
                action,
                reference: r.clone(),
                message,
                go_text: go_text.into(),
            },
            Subject::Blob(d) => RegistryError::BlobUnknown {
                action,
                repository,
                digest: d.clone(),
                message,
                go_text: go_text.into(),
            },
            Subject::Repository => RegistryError::NameUnknown {
                action,
                repository,
                message,
                go_text: go_text.into(),
            },
        },
        _ => RegistryError::Status {
            action,
            registry: op.registry.clone(),
            status,
            code,
            message,
            retry_after: None,
            go_text: go_text.into(),
        },
    }
}

/// `anonymous`: nothing was sent, so the registry did not reject credentials, it asked for them.
pub(super) fn unauthorized(op: &Op, anonymous: bool, message: String, go_text: String) -> RegistryError {
    RegistryError::Unauthorized {
        action: op.action.clone(),
        registry: op.registry.clone(),
        repository: op.repository.clone(),
        anonymous,
        message,
        go_text: go_text.into(),
    }
}

/// go-containerregistry's text for a failed answer (its `transport.Error`): the request, then
/// the registry's diagnostics (`CODE: message; detail`), or the status and the body when the
/// registry gave none.
pub(super) fn go_status_text(line: &RequestLine, status: u16, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<Diagnostic>,
    }
    #[derive(serde::Deserialize)]
    struct Diagnostic {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        detail: serde_json::Value,
    }
    let diagnostics = serde_json::from_slice::<Errors>(body)
        .map(|e| e.errors)
        .unwrap_or_default();
    let diagnostic = |d: &Diagnostic| {
        let mut text = format!("{}: {}", d.code, d.message);
        if !d.detail.is_null() {
            text.push_str("; ");
            text.push_str(&go_value(&d.detail));
        }
        text
    };
    let answer = match diagnostics.as_slice() {
        [] => {
            let reason = reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or_default();
            let raw = String::from_utf8_lossy(body);
            if !raw.is_empty() {
                format!(
                    "unexpected status code {status} {reason}: {}",
                    truncate(&raw, 500)
                )
            } else if line.method == reqwest::Method::HEAD {
                format!(
                    "unexpected status code {status} {reason} (HEAD responses have no body, use GET for details)"
                )
            } else {
                format!("unexpected status code {status} {reason}")
            }
        }
        [one] => diagnostic(one),
        many => format!(
            "multiple errors returned: {}",
            many.iter().map(diagnostic).collect::<Vec<_>>().join("; ")
        ),
    };
    format!("{} {}: {answer}", line.method, redacted_url(&line.url))
}

/// A JSON value as Go's `%v` prints what `encoding/json` decoded into `any`:
/// `map[Tag:v1]`, `[a b]`, numbers as float64, `<nil>`.
fn go_value(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            Some(f) => f.to_string(),
            None => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            format!(
                "map[{}]",
                entries
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", go_value(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

/// `UNAUTHORIZED: authentication required`, the registry's words as imgpkg shows them.
fn with_code(code: Option<&str>, message: String) -> String {
    match code {
        Some(code) if message.is_empty() => code.to_string(),
        Some(code) => format!("{code}: {message}"),
        None => message,
    }
}

/// `{"errors":[{"code","message","detail"}]}` → (first code, readable messages).
pub(super) fn distribution_error(body: &[u8]) -> (Option<String>, String) {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
        detail: Option<serde_json::Value>,
    }
    let Ok(parsed) = serde_json::from_slice::<Errors>(body) else {
        let text = String::from_utf8_lossy(body);
        return (None, truncate(text.trim(), 300));
    };
    let code = parsed.errors.first().and_then(|e| e.code.clone());
    let messages: Vec<String> = parsed
        .errors
        .iter()
        .map(|e| {
            let mut m = e.message.clone().unwrap_or_default();
            if let Some(detail) = &e.detail
                && !detail.is_null()
            {
                let detail = match detail {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                m = if m.is_empty() {
                    detail
                } else {
                    format!("{m} ({detail})")
                };
            }
            m
        })
        .filter(|m| !m.is_empty())
        .collect();
    (code, truncate(&messages.join("; "), 500))
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// A certificate problem somewhere in the error chain. rustls errors sit inside (nested)
/// io::Errors, whose `source()` skips the wrapped error, so those are opened with `get_ref`.
pub(super) fn certificate_error(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut pending: Vec<&(dyn std::error::Error + 'static)> = vec![e];
    while let Some(err) = pending.pop() {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            use rustls::Error as E;
            if matches!(
                r,
                E::InvalidCertificate(_)
                    | E::NoCertificatesPresented
                    | E::UnsupportedNameType
                    | E::InvalidCertRevocationList(_)
            ) {
                return Some(r.to_string());
            }
        }
        if let Some(inner) = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            pending.push(inner);
        }
        if let Some(source) = err.source() {
            pending.push(source);
        }
    }
    None
}

/// A registry that answered the TLS handshake with something else (usually plain HTTP).
pub(super) fn not_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut pending: Vec<&(dyn std::error::Error + 'static)> = vec![e];
    while let Some(err) = pending.pop() {
        if let Some(rustls::Error::InvalidMessage(_)) = err.downcast_ref::<rustls::Error>() {
            return true;
        }
        if let Some(inner) = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            pending.push(inner);
        }
        if let Some(source) = err.source() {
            pending.push(source);
        }
    }
    false
}

pub(super) fn classify(e: &reqwest::Error, op: &Op) -> RegistryError {
    let message = error_chain(e);
    if let Some(cert) = certificate_error(e) {
        return RegistryError::Tls {
            action: op.action.clone(),
            registry: op.registry.clone(),
            message: cert,
        };
    }
    // The handshake met something other than TLS: a connection failure whose fix is plain HTTP
    // (each reader is told how to allow it).
    if not_tls(e) {
        return RegistryError::Connection {
            action: op.action.clone(),
            registry: op.registry.clone(),
            message,
            fix: Some(crate::registry::Fix::PlainHttp),
        };
    }
    // Waiting for response headers is bounded by the user's --registry-response-header-timeout;
    // a connection or body that stalls is a network hiccup, worth another attempt.
    if e.is_timeout() && !e.is_connect() && !e.is_body() {
        return RegistryError::NoResponse {
            action: op.action.clone(),
            registry: op.registry.clone(),
            message,
            go_text: GoText::default(),
        };
    }
    if e.is_timeout() {
        return RegistryError::Timeout {
            action: op.action.clone(),
            registry: op.registry.clone(),
            message,
        };
    }
    if e.is_body() || e.is_decode() {
        return RegistryError::Interrupted {
            action: op.action.clone(),
            registry: op.registry.clone(),
            message,
        };
    }
    if e.is_builder() {
        return RegistryError::Protocol {
            action: op.action.clone(),
            registry: op.registry.clone(),
            message,
            fix: None,
        };
    }
    RegistryError::Connection {
        action: op.action.clone(),
        registry: op.registry.clone(),
        message,
        fix: None,
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Reference;

    #[test]
    fn distribution_errors_are_typed() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v9"}}]}"#;
        let (code, message) = distribution_error(body);
        assert_eq!(code.as_deref(), Some("MANIFEST_UNKNOWN"));
        assert_eq!(message, r#"manifest unknown ({"Tag":"v9"})"#);
        let reference = Reference::parse("reg.io/app:v9").unwrap();
        let op = Op::new(
            format!("fetching manifest {reference}"),
            &reference,
            false,
            Subject::Manifest(reference.to_string()),
        );
        let e = status_to_error(&op, 404, code, message, String::new());
        assert_eq!(
            e.to_string(),
            r#"manifest unknown while fetching manifest reg.io/app:v9: reg.io/app:v9 does not exist in the registry: manifest unknown ({"Tag":"v9"})"#
        );
        assert!(!e.is_retryable());
        let e = status_to_error(&op, 503, None, "busy".into(), String::new());
        assert!(e.is_retryable());
        assert_eq!(
            e.to_string(),
            "registry reg.io answered HTTP 503 while fetching manifest reg.io/app:v9: busy"
        );
        let e = status_to_error(&op, 401, None, String::new(), String::new());
        let text = e.to_string();
        assert!(
            text.contains("registry reg.io rejected the credentials for repository app"),
            "{text}"
        );
        assert_eq!(
            e.fix(),
            Some(crate::registry::Fix::Credentials {
                registry: "reg.io".into()
            })
        );
        let e = status_to_error(&op, 403, Some("DENIED".into()), "no".into(), String::new());
        assert!(matches!(e, RegistryError::Denied { .. }), "{e:?}");
    }

    #[test]
    fn go_words_for_failed_answers() {
        let line = |method: reqwest::Method, url: &str| RequestLine {
            method,
            url: reqwest::Url::parse(url).unwrap(),
        };
        let get = line(
            reqwest::Method::GET,
            "http://127.0.0.1:5000/v2/nothing/manifests/latest",
        );
        assert_eq!(
            go_status_text(
                &get,
                404,
                br#"{"errors":[{"code":"NAME_UNKNOWN","message":"Unknown name"}]}"#
            ),
            "GET http://127.0.0.1:5000/v2/nothing/manifests/latest: NAME_UNKNOWN: Unknown name"
        );
        assert_eq!(
            go_status_text(
                &get,
                404,
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"latest","n":2,"l":[1,"a"]}}]}"#
            ),
            "GET http://127.0.0.1:5000/v2/nothing/manifests/latest: MANIFEST_UNKNOWN: manifest unknown; map[Tag:latest l:[1 a] n:2]"
        );
        assert_eq!(
            go_status_text(
                &get,
                400,
                br#"{"errors":[{"code":"A","message":"one"},{"code":"B","message":"two"}]}"#
            ),
            "GET http://127.0.0.1:5000/v2/nothing/manifests/latest: multiple errors returned: A: one; B: two"
        );
        assert_eq!(
            go_status_text(&get, 502, b"bad gateway"),
            "GET http://127.0.0.1:5000/v2/nothing/manifests/latest: unexpected status code 502 Bad Gateway: bad gateway"
        );
        let head = line(reqwest::Method::HEAD, "http://127.0.0.1:5000/v2/x/manifests/v1");
        assert_eq!(
            go_status_text(&head, 404, b""),
            "HEAD http://127.0.0.1:5000/v2/x/manifests/v1: unexpected status code 404 Not Found (HEAD responses have no body, use GET for details)"
        );
    }
}
