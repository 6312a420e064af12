//! A loopback HTTP/1.1 proxy in front of a plain-HTTP test registry: it logs every request
//! (method and path), can cut the connection part-way through an upload body, and can answer
//! requests whose path contains a given text itself, with a refusal (403, 401, 500…).
#![allow(dead_code)]
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub method: String,
    pub path: String,
}

#[derive(Default)]
struct State {
    log: Vec<Request>,
    /// Cut the next upload body (PATCH or PUT with a body) after this many bytes, once.
    cut_after: Option<u64>,
    cuts: usize,
    /// Requests whose path contains the text are answered here with the status, not forwarded.
    refusals: Vec<(String, u16)>,
}

/// The proxy; it stops when dropped (its accept task is aborted).
pub struct Proxy {
    pub host: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Listen on a free loopback port, forwarding to `upstream` (`127.0.0.1:port`).
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let upstream = upstream.to_string();
        let s = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let upstream = upstream.clone();
                let s = s.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        serve(client, server, s).await;
                    }
                });
            }
        });
        Proxy { host, state, task }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn clear(&self) {
        self.state.lock().unwrap().log.clear();
    }

    /// Requests that change the registry (anything but GET and HEAD).
    pub fn writes(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method != "GET" && r.method != "HEAD")
            .collect()
    }

    pub fn cut_next_upload_after(&self, bytes: u64) {
        self.state.lock().unwrap().cut_after = Some(bytes);
    }

    /// Answer every request whose path contains `path_contains` with `status` and a registry
    /// error body, instead of forwarding it.
    pub fn refuse(&self, path_contains: &str, status: u16) {
        self.state
            .lock()
            .unwrap()
            .refusals
            .push((path_contains.to_string(), status));
    }

    pub fn cuts(&self) -> usize {
        self.state.lock().unwrap().cuts
    }
}

async fn serve(client: TcpStream, server: TcpStream, state: Arc<Mutex<State>>) {
    // The client tries HTTPS first on loopback; refuse a TLS handshake so it falls back to HTTP.
    let mut first = [0u8; 1];
    match client.peek(&mut first).await {
        Ok(1) if first[0] != 0x16 => {}
        _ => return,
    }
    let (mut client_read, client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // Shared with the refusals answered here; a client waits for each answer before its next
    // request on the connection, so the two never interleave.
    let client_write = Arc::new(tokio::sync::Mutex::new(client_write));
    let back_write = client_write.clone();
    let back = tokio::spawn(async move {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match server_read.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if back_write.lock().await.write_all(&chunk[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = back_write.lock().await.shutdown().await;
    });
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    'requests: loop {
        // Read one request head.
        let head_end = loop {
            if let Some(p) = find(&buf, b"\r\n\r\n") {
                break p + 4;
            }
            match client_read.read(&mut chunk).await {
                Ok(0) | Err(_) => break 'requests,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_string();
        let path = first.next().unwrap_or("").to_string();
        let mut length: u64 = 0;
        let mut chunked = false;
        for line in lines {
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let refusal = {
            let s = state.lock().unwrap();
            s.refusals
                .iter()
                .find(|(text, _)| path.contains(text.as_str()))
                .map(|(_, status)| *status)
        };
        let cut_at = {
            let mut s = state.lock().unwrap();
            s.log.push(Request {
                method: method.clone(),
                path,
            });
            // The cut stays armed until a body actually reaches the threshold.
            if (length > 0 || chunked) && (method == "PATCH" || method == "PUT") {
                s.cut_after
            } else {
                None
            }
        };
        if let Some(status) = refusal {
            // Refused requests carry no body (GET/HEAD lookups).
            buf.drain(..head_end);
            if client_write
                .lock()
                .await
                .write_all(&refusal_response(status, method == "HEAD"))
                .await
                .is_err()
            {
                break;
            }
            continue;
        }
        if server_write.write_all(&buf[..head_end]).await.is_err() {
            break;
        }
        buf.drain(..head_end);
        let mut forwarded: u64 = 0;
        let cut = |forwarded: u64| cut_at.is_some_and(|c| forwarded >= c);
        if chunked {
            // Forward chunk by chunk until the zero-size chunk and its blank line.
            loop {
                let line_end = loop {
                    if let Some(p) = find(&buf, b"\r\n") {
                        break p + 2;
                    }
                    match client_read.read(&mut chunk).await {
                        Ok(0) | Err(_) => break 'requests,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let size_text = String::from_utf8_lossy(&buf[..line_end - 2]).to_string();
                let size =
                    u64::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
                let total = line_end as u64 + size + 2;
                while (buf.len() as u64) < total {
                    match client_read.read(&mut chunk).await {
                        Ok(0) | Err(_) => break 'requests,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                forwarded += size;
                if cut(forwarded) && disarm(&state) {
                    break 'requests;
                }
                if server_write.write_all(&buf[..total as usize]).await.is_err() {
                    break 'requests;
                }
                buf.drain(..total as usize);
                if size == 0 {
                    break;
                }
            }
        } else {
            let mut left = length;
            while left > 0 {
                if buf.is_empty() {
                    match client_read.read(&mut chunk).await {
                        Ok(0) | Err(_) => break 'requests,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let take = (left as usize).min(buf.len());
                forwarded += take as u64;
                if cut(forwarded) && disarm(&state) {
                    break 'requests;
                }
                if server_write.write_all(&buf[..take]).await.is_err() {
                    break 'requests;
                }
                buf.drain(..take);
                left -= take as u64;
            }
        }
    }
    // Dropping both halves closes the connection on both sides (the cut, or the end).
    back.abort();
}

/// A registry's refusal: the status with a distribution-spec error body.
fn refusal_response(status: u16, head: bool) -> Vec<u8> {
    let (reason, code) = match status {
        401 => ("Unauthorized", "UNAUTHORIZED"),
        403 => ("Forbidden", "DENIED"),
        _ => ("Internal Server Error", "UNKNOWN"),
    };
    let body = format!(r#"{{"errors":[{{"code":"{code}","message":"refused by the test proxy"}}]}}"#);
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Count the cut and disarm it; false when another connection already made it.
fn disarm(state: &Mutex<State>) -> bool {
    let mut s = state.lock().unwrap();
    if s.cut_after.take().is_some() {
        s.cuts += 1;
        true
    } else {
        false
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
