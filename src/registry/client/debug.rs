//! `--debug`: every request and response, headers included, on the `pkgr::registry::http`
//! tracing target. Credentials never appear: their headers print as `<redacted>`.
use reqwest::header::HeaderMap;

/// Headers whose values are secrets.
const SECRET_HEADERS: [&str; 4] = ["authorization", "proxy-authorization", "cookie", "set-cookie"];

pub(super) fn request(request: &reqwest::Request) {
    if tracing::enabled!(target: "pkgr::registry::http", tracing::Level::DEBUG) {
        tracing::debug!(
            target: "pkgr::registry::http",
            "--> {} {}{}",
            request.method(),
            request.url(),
            headers(request.headers())
        );
    }
}

pub(super) fn response(response: &reqwest::Response) {
    if tracing::enabled!(target: "pkgr::registry::http", tracing::Level::DEBUG) {
        tracing::debug!(
            target: "pkgr::registry::http",
            "<-- {} {}{}",
            response.status(),
            response.url(),
            headers(response.headers())
        );
    }
}

/// One indented `name: value` line per header (each after a newline), secrets redacted.
pub(super) fn headers(map: &HeaderMap) -> String {
    map.iter()
        .map(|(name, value)| {
            let value = if SECRET_HEADERS.contains(&name.as_str()) {
                "<redacted>".to_string()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            format!("\n  {name}: {value}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn secrets_are_redacted() {
        let mut map = HeaderMap::new();
        map.insert("authorization", HeaderValue::from_static("Basic c2VjcmV0"));
        map.insert("accept", HeaderValue::from_static("application/json"));
        map.insert("set-cookie", HeaderValue::from_static("session=secret"));
        let text = headers(&map);
        assert!(!text.contains("c2VjcmV0") && !text.contains("session"), "{text}");
        assert!(text.contains("authorization: <redacted>"), "{text}");
        assert!(text.contains("accept: application/json"), "{text}");
    }
}
