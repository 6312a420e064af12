//! Each request on the wire: `--debug`'s dump of requests and responses, headers included, and
//! the request line that an error about the answer names (go-containerregistry's
//! `GET <url>: …`). Credentials never appear: their headers print as `<redacted>`.
//!
//! As pkgr, the dump goes to the `pkgr::registry::http` tracing target. As imgpkg it has
//! go-containerregistry's shape, which is what imgpkg prints on stderr with `--debug`:
//! `--> GET <url>`, the request as Go's `httputil.DumpRequestOut` writes it, `<-- 200 <url>
//! (1.2ms)`, then the response's status line and headers, each behind Go's log prefix
//! (`2006/01/02 15:04:05 `, in UTC). Bodies are not shown (pkgr streams them).
use super::options::default_headers;
use reqwest::header::{HeaderMap, HeaderName};
use reqwest::{Method, Url};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

/// Headers whose values are secrets.
const SECRET_HEADERS: [&str; 4] = ["authorization", "proxy-authorization", "cookie", "set-cookie"];

/// How Go's HTTP client says that no response headers came within the timeout.
pub(super) const GO_HEADER_TIMEOUT: &str = "net/http: timeout awaiting response headers";

/// The tracing target of pkgr's own dump.
const TARGET: &str = "pkgr::registry::http";

/// Whether the dump is written in go-containerregistry's shape on stderr (imgpkg's `--debug`).
static GO_DUMP: AtomicBool = AtomicBool::new(false);

/// Write `--debug`'s dump as go-containerregistry writes it, on stderr, from now on: imgpkg's
/// `--debug`, for tools that read imgpkg's debug output.
pub fn dump_like_go() {
    GO_DUMP.store(true, Ordering::Relaxed);
}

fn go_dump() -> bool {
    GO_DUMP.load(Ordering::Relaxed)
}

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
    started: Instant,
}

impl Sent {
    pub(super) fn new(request: &reqwest::Request) -> Sent {
        let line = RequestLine {
            method: request.method().clone(),
            url: request.url().clone(),
        };
        if go_dump() {
            go_log(&format!("--> {} {}", line.method, line.url));
            go_log(&go_request_dump(request));
        } else if tracing_dump() {
            tracing::debug!(
                target: TARGET,
                "--> {} {}{}",
                request.method(),
                request.url(),
                headers(request.headers())
            );
        }
        Sent {
            line,
            started: Instant::now(),
        }
    }

    /// The response arrived: dump it, and tag it with the request it answers.
    pub(super) fn answered(&self, response: &mut reqwest::Response) {
        if go_dump() {
            let elapsed = crate::gotime::format_duration_nanos(
                i64::try_from(self.started.elapsed().as_nanos()).unwrap_or(i64::MAX),
            );
            go_log(&format!(
                "<-- {} {} ({elapsed})",
                response.status().as_u16(),
                response.url()
            ));
            go_log(&go_response_dump(response));
        } else if tracing_dump() {
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

    /// No response: dump why, as go-containerregistry does (`<-- <error> GET <url> (1s)`).
    pub(super) fn failed(&self, error: &reqwest::Error) {
        if go_dump() {
            let elapsed = crate::gotime::format_duration_nanos(
                i64::try_from(self.started.elapsed().as_nanos()).unwrap_or(i64::MAX),
            );
            go_log(&format!(
                "<-- {} {} {} ({elapsed})",
                self.go_error(&super::classify::error_chain(error)),
                self.line.method,
                self.line.url
            ));
        } else if tracing_dump() {
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

/// Go's canonical header name (`www-authenticate` → `Www-Authenticate`).
fn canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// `Name: value` lines in Go's order (sorted by canonical name), each ended by CRLF.
fn go_header_lines(map: &HeaderMap, skip: &[&str]) -> String {
    let mut lines: Vec<(String, String)> = map
        .iter()
        .filter(|(name, _)| !skip.contains(&name.as_str()))
        .map(|(name, value)| (canonical(name.as_str()), header_value(name, value.as_bytes())))
        .collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    lines
        .into_iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect()
}

/// The request as `httputil.DumpRequestOut` writes it: the request line, `Host`, `User-Agent`,
/// then the other headers sent (the client's defaults included), and a blank line.
fn go_request_dump(request: &reqwest::Request) -> String {
    let url = request.url();
    let mut target = url.path().to_string();
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let mut sent = default_headers();
    for (name, value) in request.headers() {
        sent.insert(name.clone(), value.clone());
    }
    let mut out = format!("{} {target} HTTP/1.1\r\nHost: {host}\r\n", request.method());
    if let Some(agent) = sent.get(reqwest::header::USER_AGENT) {
        out.push_str(&format!(
            "User-Agent: {}\r\n",
            String::from_utf8_lossy(agent.as_bytes())
        ));
    }
    out.push_str(&go_header_lines(&sent, &["user-agent", "host"]));
    out.push_str("\r\n");
    out
}

/// The response as `httputil.DumpResponse` writes it without the body: the status line, the
/// headers, and a blank line.
fn go_response_dump(response: &reqwest::Response) -> String {
    let status = response.status();
    let version = match response.version() {
        reqwest::Version::HTTP_10 => "HTTP/1.0",
        reqwest::Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    };
    format!(
        "{version} {} {}\r\n{}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default(),
        go_header_lines(response.headers(), &[])
    )
}

/// One message through Go's standard logger (`log.LstdFlags`): the date and time, then the
/// text, ended by a newline.
fn go_log(text: &str) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let stamp = crate::gotime::format_rfc3339_utc(crate::gotime::UnixSeconds(now))
        .map(|t| {
            t.trim_end_matches('Z')
                .replacen('-', "/", 2)
                .replacen('T', " ", 1)
        })
        .unwrap_or_default();
    let mut line = format!("{stamp} {text}");
    if !line.ends_with('\n') {
        line.push('\n');
    }
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
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
        let go = go_header_lines(&map, &[]);
        assert_eq!(
            go,
            "Accept: application/json\r\nAuthorization: <redacted>\r\nSet-Cookie: <redacted>\r\n"
        );
    }

    #[test]
    fn requests_are_dumped_as_go_writes_them() {
        let client = reqwest::Client::new();
        let request = client
            .get("http://127.0.0.1:5000/v2/app/manifests/latest")
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .header("authorization", "Bearer t0ken")
            .build()
            .unwrap();
        let dump = go_request_dump(&request);
        assert!(
            dump.starts_with(&format!(
                "GET /v2/app/manifests/latest HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nUser-Agent: pkgr/{}\r\n",
                env!("CARGO_PKG_VERSION")
            )),
            "{dump}"
        );
        assert!(
            dump.contains("Accept: application/vnd.oci.image.manifest.v1+json\r\n"),
            "{dump}"
        );
        assert!(dump.contains("Accept-Encoding: identity\r\n"), "{dump}");
        assert!(dump.contains("Authorization: <redacted>\r\n"), "{dump}");
        assert!(!dump.contains("t0ken"), "{dump}");
        assert!(dump.ends_with("\r\n\r\n"), "{dump}");
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
        assert_eq!(
            canonical("docker-distribution-api-version"),
            "Docker-Distribution-Api-Version"
        );
    }
}
