//! An access token from the Google Compute Engine metadata server, as Google's Go libraries get it.
//!
//! The metadata server is a plain-HTTP endpoint on the instance's link-local address, so this is
//! one blocking `GET` over a `TcpStream` (the keychain runs on the blocking pool); no HTTP client
//! and no TLS are needed, and the request never leaves the machine.
use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::Duration;

/// Where the metadata server is when `GCE_METADATA_HOST` does not say: the address Google's Go
/// libraries use, reachable on every GCE VM and GKE node without DNS.
pub(super) const DEFAULT_HOST: &str = "169.254.169.254";

/// The scope go-containerregistry's Google keychain asks for.
const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Off Google Cloud nothing answers on the link-local address: give up quickly.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A token reply is a few hundred bytes; anything much larger is not the metadata server.
const MAX_REPLY: u64 = 64 * 1024;

/// A service-account access token and how long it stays valid.
pub(super) struct MetadataToken {
    pub(super) access_token: String,
    pub(super) expires_in: Option<Duration>,
}

/// The default service account's token from the metadata server at `host` (`host[:port]`).
///
/// The error says what failed, for a warning; callers fall back to other sources.
pub(super) fn fetch_token(host: &str) -> Result<MetadataToken, String> {
    let path = format!(
        "/computeMetadata/v1/instance/service-accounts/default/token?scopes={}",
        percent_encode(CLOUD_PLATFORM_SCOPE)
    );
    let url = format!("http://{host}{path}");
    let body = get(host, &path).map_err(|e| format!("GET {url}: {e}"))?;
    #[derive(serde::Deserialize)]
    struct TokenReply {
        access_token: String,
        expires_in: Option<u64>,
    }
    let reply: TokenReply =
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: the reply is not a token ({e})"))?;
    if reply.access_token.is_empty() {
        return Err(format!("GET {url}: the reply holds an empty access_token"));
    }
    Ok(MetadataToken {
        access_token: reply.access_token,
        expires_in: reply.expires_in.map(Duration::from_secs),
    })
}

/// One HTTP/1.1 `GET` with `Metadata-Flavor: Google`; the body of a 200 reply.
fn get(host: &str, path: &str) -> Result<Vec<u8>, String> {
    let with_port = if has_port(host) {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    let addrs: Vec<_> = with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last_error = format!("{host} has no address");
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = format!("cannot connect to {addr}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last_error)?;
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .and_then(|_| stream.set_write_timeout(Some(READ_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nMetadata-Flavor: Google\r\nUser-Agent: pkgr\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut reply = Vec::new();
    stream
        .take(MAX_REPLY + 1)
        .read_to_end(&mut reply)
        .map_err(|e| format!("reading the reply: {e}"))?;
    if reply.len() as u64 > MAX_REPLY {
        return Err(format!("the reply is larger than {MAX_REPLY} bytes"));
    }
    parse_reply(&reply)
}

/// The body of a complete HTTP/1.x reply read until the connection closed.
fn parse_reply(reply: &[u8]) -> Result<Vec<u8>, String> {
    let Some(split) = reply.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err("the reply has no complete HTTP header".into());
    };
    let head = String::from_utf8_lossy(&reply[..split]);
    let body = &reply[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split(' ').nth(1).unwrap_or_default();
    if status != "200" {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        return Err(format!(
            "the metadata server answered {status_line:?}{}",
            if text.is_empty() {
                String::new()
            } else {
                format!(": {}", text.chars().take(200).collect::<String>())
            }
        ));
    }
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    if chunked {
        return dechunk(body);
    }
    match length {
        Some(n) if body.len() < n => Err(format!("the reply ended after {} of {n} body bytes", body.len())),
        Some(n) => Ok(body[..n].to_vec()),
        None => Ok(body.to_vec()),
    }
}

/// Joins an HTTP/1.1 chunked body.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let Some(end) = body.windows(2).position(|w| w == b"\r\n") else {
            return Err("a chunk size line is cut short".into());
        };
        let size_text = String::from_utf8_lossy(&body[..end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size {size_text:?}"))?;
        body = &body[end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err("a chunk is cut short".into());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// Whether `host` ends in `:port` (an IPv6 literal needs brackets to have one).
fn has_port(host: &str) -> bool {
    match host.rsplit_once(':') {
        Some((before, port)) => {
            !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!before.contains(':') || before.ends_with(']'))
        }
        None => false,
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::io::BufRead as _;
    use std::net::TcpListener;
    use std::sync::mpsc;

    /// A one-shot fake metadata server on loopback: answers the first request with `reply` and
    /// sends the request head it saw.
    pub(crate) fn fake_metadata(reply: String) -> (String, mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = std::io::BufReader::new(stream);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let mut stream = reader.into_inner();
            let _ = stream.write_all(reply.as_bytes());
            let _ = tx.send(head);
        });
        (host, rx)
    }

    pub(crate) fn ok_reply(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nMetadata-Flavor: Google\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn asks_for_the_default_account_token_as_google_libraries_do() {
        let (host, seen) = fake_metadata(ok_reply(
            r#"{"access_token":"ya29.fake","expires_in":3599,"token_type":"Bearer"}"#,
        ));
        let token = fetch_token(&host).unwrap();
        assert_eq!(token.access_token, "ya29.fake");
        assert_eq!(token.expires_in, Some(Duration::from_secs(3599)));
        let head = seen.recv().unwrap();
        assert!(
            head.starts_with(
                "GET /computeMetadata/v1/instance/service-accounts/default/token?scopes=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform HTTP/1.1\r\n"
            ),
            "{head}"
        );
        assert!(head.contains("\r\nMetadata-Flavor: Google\r\n"), "{head}");
        assert!(head.contains(&format!("\r\nHost: {host}\r\n")), "{head}");
    }

    #[test]
    fn chunked_replies_are_joined() {
        let body = r#"{"access_token":"chunked-token"}"#;
        let (a, b) = body.split_at(10);
        let reply = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        );
        let (host, _seen) = fake_metadata(reply);
        let token = fetch_token(&host).unwrap();
        assert_eq!(token.access_token, "chunked-token");
        assert_eq!(token.expires_in, None);
    }

    #[test]
    fn failures_say_what_and_where() {
        let (host, _seen) = fake_metadata(
            "HTTP/1.1 404 Not Found\r\nContent-Length: 25\r\n\r\nservice account not found".into(),
        );
        let err = fetch_token(&host).err().unwrap();
        assert!(
            err.contains(&format!("GET http://{host}/computeMetadata/v1/"))
                && err.contains("404 Not Found")
                && err.contains("service account not found"),
            "{err}"
        );
        let (host, _seen) = fake_metadata(ok_reply("<html>captive portal</html>"));
        let err = fetch_token(&host).err().unwrap();
        assert!(err.contains("not a token"), "{err}");
        let (host, _seen) = fake_metadata(ok_reply(r#"{"access_token":""}"#));
        assert!(fetch_token(&host).err().unwrap().contains("empty access_token"));
        // Nothing listening: a connection error, quickly (loopback refuses at once).
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let err = fetch_token(&closed).err().unwrap();
        assert!(err.contains("cannot connect"), "{err}");
    }

    #[test]
    fn ports_and_encoding() {
        assert!(has_port("127.0.0.1:8080"));
        assert!(has_port("[::1]:80"));
        assert!(!has_port("169.254.169.254"));
        assert!(!has_port("::1"));
        assert!(!has_port("metadata.google.internal"));
        assert_eq!(percent_encode("a b/c:"), "a%20b%2Fc%3A");
    }
}
