//! Each request on the wire: `--debug`'s dump of requests and responses, headers included, and
//! the request line that an error about the answer names (go-containerregistry's
//! `GET <url>: …`). Credentials never appear: their headers print as `<redacted>`.
//!
//! The dump goes to the `pkgr::registry::http` tracing target.
use reqwest::header::{HeaderMap, HeaderName};
use reqwest::{Method, Url};

/// Headers whose values are secrets.
const SECRET_HEADERS: [&str; 4] = ["authorization", "proxy-authorization", "cookie", "set-cookie"];

/// How Go's HTTP client says that no response headers came within the timeout.
pub(super) const GO_HEADER_TIMEOUT: &str = "net/http: timeout awaiting response headers";

/// The tracing target of pkgr's own dump.
const TARGET: &str = "pkgr::registry::http";

fn tracing_dump() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::DEBUG)
}

/// The request a response answers, kept in the response's extensions so that an error about
/// the answer can name it as go-containerregistry does.
#[derive(Clone, Debug)]
pub(super) struct RequestLine {
    pub method: Method,
    pub url: Url,
}

/// One request on its way, from [`Sent::new`] (which dumps it) to [`answered`](Sent::answered)
/// or [`failed`](Sent::failed).
pub(super) struct Sent {
    line: RequestLine,
}

impl Sent {
    pub(super) fn new(request: &reqwest::Request) -> Sent {
        let line = RequestLine {
            method: request.method().clone(),
            url: request.url().clone(),
        };
        if tracing_dump() {
            tracing::debug!(
                target: TARGET,
                "--> {} {}{}",
                request.method(),
                request.url(),
                headers(request.headers())
            );
        }
        Sent { line }
    }

    /// The response arrived: dump it, and tag it with the request it answers.
    pub(super) fn answered(&self, response: &mut reqwest::Response) {
        if tracing_dump() {
            tracing::debug!(
                target: TARGET,
                "<-- {} {}{}",
                response.status(),
                response.url(),
                headers(response.headers())
            );
        }
        response.extensions_mut().insert(self.line.clone());
    }

    /// No response: dump why.
    pub(super) fn failed(&self, error: &reqwest::Error) {
        if tracing_dump() {
            tracing::debug!(target: TARGET, "<-- {} {}: {}", self.line.method, self.line.url, error);
        }
    }

    /// A transport failure of this request: dumped, classified, and for a registry that did
    /// not answer in time, named as Go's HTTP client names it.
    pub(super) fn classify(&self, error: &reqwest::Error, op: &super::Op) -> crate::registry::RegistryError {
        self.failed(error);
        let mut classified = super::classify::classify(error, op);
        if let crate::registry::RegistryError::NoResponse { go_text, .. } = &mut classified {
            *go_text = self.go_error(GO_HEADER_TIMEOUT).into();
        }
        classified
    }

    /// Go's `*url.Error` text for this request: `Get "<url>": <cause>`.
    pub(super) fn go_error(&self, cause: &str) -> String {
        go_url_error(&self.line.method, &self.line.url, cause)
    }
}

/// Go's `*url.Error` text: the method as `Get`/`Post`/…, the URL quoted, then the cause.
pub(super) fn go_url_error(method: &Method, url: &Url, cause: &str) -> String {
    let method = method.as_str();
    let (first, rest) = method.split_at(method.len().min(1));
    format!(
        "{first}{} {:?}: {cause}",
        rest.to_ascii_lowercase(),
        redacted_url(url)
    )
}

/// The URL as go-containerregistry prints it in errors: query values other than the
/// distribution protocol's own (scope, service, mount, from, digest, n, last) are `REDACTED`,
/// since redirects put signatures and tokens there; the query sorted by key, as Go encodes it.
pub(super) fn redacted_url(url: &Url) -> String {
    const ALLOWED: [&str; 7] = ["scope", "service", "mount", "from", "digest", "n", "last"];
    if url.query().is_none() {
        return url.to_string();
    }
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if ALLOWED.contains(&k.as_ref()) {
                v.into_owned()
            } else {
                "REDACTED".to_string()
            };
            (k.into_owned(), v)
        })
        .collect();
    // Go's url.Values.Encode: sorted by key, each key's values in their order.
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = url.clone();
    out.set_query(None);
    if !pairs.is_empty() {
        out.query_pairs_mut().extend_pairs(pairs);
    }
    out.to_string()
}

/// One indented `name: value` line per header (each after a newline), secrets redacted.
pub(super) fn headers(map: &HeaderMap) -> String {
    map.iter()
        .map(|(name, value)| format!("\n  {name}: {}", header_value(name, value.as_bytes())))
        .collect()
}

fn header_value(name: &HeaderName, value: &[u8]) -> String {
    if SECRET_HEADERS.contains(&name.as_str()) {
        "<redacted>".to_string()
    } else {
        String::from_utf8_lossy(value).into_owned()
    }
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

    #[test]
    fn go_words_for_a_request() {
        let url = Url::parse("https://reg.io/v2/app/blobs/uploads/x?_state=s3cret&digest=sha256:ab").unwrap();
        assert_eq!(
            redacted_url(&url),
            "https://reg.io/v2/app/blobs/uploads/x?_state=REDACTED&digest=sha256%3Aab"
        );
        let url = Url::parse("http://127.0.0.1:5000/v2/").unwrap();
        assert_eq!(
            go_url_error(&Method::GET, &url, "net/http: timeout awaiting response headers"),
            "Get \"http://127.0.0.1:5000/v2/\": net/http: timeout awaiting response headers"
        );
    }
}
