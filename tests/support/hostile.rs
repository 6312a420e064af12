//! A scriptable HTTP/1.1 server on loopback that misbehaves on demand (for registry client tests).
//!
//! Each test passes a handler that maps a parsed request to a [`Reply`]. `GET /v2/` is answered
//! with 200 by the server itself (the client's ping) and is not given to the handler, unless the
//! server was started with [`HostileServer::start_with_ping`].
//! TLS handshakes (the client tries HTTPS first on loopback) are refused by closing the
//! connection, which the client reads as "this server does not speak TLS".
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// A header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
    /// Every value of a query parameter (not percent-decoded beyond `%3A` and `%2C`).
    pub fn query(&self, key: &str) -> Vec<String> {
        let Some((_, q)) = self.target.split_once('?') else {
            return vec![];
        };
        q.split('&')
            .filter_map(|pair| pair.split_once('='))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| {
                v.replace("%3A", ":")
                    .replace("%2C", ",")
                    .replace("%2F", "/")
                    .replace('+', " ")
            })
            .collect()
    }
}

/// What the server does with a request.
pub enum Reply {
    /// A normal response with Content-Length.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// A chunked response (no Content-Length).
    Chunked {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Declares `declared` bytes, sends `body` (shorter), then closes the connection.
    Truncated {
        status: u16,
        headers: Vec<(String, String)>,
        declared: u64,
        body: Vec<u8>,
    },
    /// Sends `total` filler bytes (declared with Content-Length when `declare`, else chunked)
    /// until done or the client goes away; the bytes written are counted in `bytes_sent`.
    Flood {
        status: u16,
        headers: Vec<(String, String)>,
        total: u64,
        declare: bool,
    },
    /// Never answers; keeps the connection open.
    Hang,
    /// Declares `declared` bytes, sends `body` (shorter), then goes silent with the connection open.
    Stall { declared: u64, body: Vec<u8> },
    /// Closes the connection without answering.
    Close,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply::Respond {
            status,
            headers: vec![],
            body: vec![],
        }
    }
    pub fn ok(headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Reply {
        Reply::with(200, headers, body)
    }
    pub fn with(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Reply {
        Reply::Respond {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
        }
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// The running server; stops (with every open connection) when dropped.
pub struct HostileServer {
    /// `127.0.0.1:<port>`
    pub host: String,
    /// Filler bytes written by [`Reply::Flood`] so far.
    pub bytes_sent: Arc<AtomicU64>,
    /// `GET /v2/` requests answered by the server itself.
    pub pings: Arc<AtomicU64>,
    /// Connections that opened with something other than HTTP (TLS handshakes), refused.
    pub refused: Arc<AtomicU64>,
    _tasks: JoinSet<()>,
}

impl HostileServer {
    pub async fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> HostileServer {
        Self::launch(handler, false, false).await
    }

    /// Like [`start`](Self::start), but `GET /v2/` goes to the handler too (a registry whose
    /// ping answers something other than 200, such as an auth challenge).
    pub async fn start_with_ping(
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> HostileServer {
        Self::launch(handler, false, true).await
    }

    /// Like [`start`](Self::start), but the server stops reading as soon as a request with a
    /// body arrives (a registry that accepts an upload and then stalls).
    pub async fn start_stalling_bodies(
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> HostileServer {
        Self::launch(handler, true, false).await
    }

    async fn launch(
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
        stall_bodies: bool,
        ping_to_handler: bool,
    ) -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let host = listener.local_addr().unwrap().to_string();
        let handler: Arc<Handler> = Arc::new(handler);
        let bytes_sent = Arc::new(AtomicU64::new(0));
        let counters = Counters {
            sent: bytes_sent.clone(),
            pings: Arc::default(),
            refused: Arc::default(),
            ping_to_handler,
        };
        let (pings, refused) = (counters.pings.clone(), counters.refused.clone());
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            // Connection tasks live in this set, so dropping the server aborts them all.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let handler = handler.clone();
                let counters = counters.clone();
                connections.spawn(async move {
                    let _ = serve(stream, handler, counters, stall_bodies).await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        HostileServer {
            host,
            bytes_sent,
            pings,
            refused,
            _tasks: tasks,
        }
    }

    /// `host/repository`.
    pub fn repo(&self, repository: &str) -> String {
        format!("{}/{}", self.host, repository)
    }
}

#[derive(Clone)]
struct Counters {
    sent: Arc<AtomicU64>,
    pings: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    ping_to_handler: bool,
}

async fn serve(
    mut stream: TcpStream,
    handler: Arc<Handler>,
    counters: Counters,
    stall_bodies: bool,
) -> std::io::Result<()> {
    let sent = counters.sent.clone();
    let mut buf = Vec::new();
    loop {
        let request = match read_request(&mut stream, &mut buf, stall_bodies).await? {
            Incoming::Request(r) => r,
            Incoming::Closed => return Ok(()),
            Incoming::NotHttp => {
                counters.refused.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
        };
        if request.method == "GET" && request.target == "/v2/" {
            counters.pings.fetch_add(1, Ordering::SeqCst);
        }
        if request.method == "GET" && request.target == "/v2/" && !counters.ping_to_handler {
            write_head(&mut stream, 200, &[], Some(2)).await?;
            stream.write_all(b"{}").await?;
            continue;
        }
        match handler(&request) {
            Reply::Respond {
                status,
                headers,
                body,
            } => {
                let len = if request.method == "HEAD" {
                    headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .map(|(_, v)| v.parse().unwrap())
                        .unwrap_or(body.len() as u64)
                } else {
                    body.len() as u64
                };
                let headers: Vec<_> = headers
                    .into_iter()
                    .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
                    .collect();
                write_head(&mut stream, status, &headers, Some(len)).await?;
                if request.method != "HEAD" {
                    stream.write_all(&body).await?;
                }
            }
            Reply::Chunked {
                status,
                headers,
                body,
            } => {
                write_head(&mut stream, status, &headers, None).await?;
                for chunk in body.chunks(16 * 1024) {
                    stream
                        .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .await?;
                    stream.write_all(chunk).await?;
                    stream.write_all(b"\r\n").await?;
                }
                stream.write_all(b"0\r\n\r\n").await?;
            }
            Reply::Truncated {
                status,
                headers,
                declared,
                body,
            } => {
                write_head(&mut stream, status, &headers, Some(declared)).await?;
                stream.write_all(&body).await?;
                stream.shutdown().await?;
                return Ok(());
            }
            Reply::Flood {
                status,
                headers,
                total,
                declare,
            } => {
                write_head(&mut stream, status, &headers, declare.then_some(total)).await?;
                let chunk = vec![b' '; 64 * 1024];
                let mut written = 0u64;
                while written < total {
                    let n = chunk.len().min((total - written) as usize);
                    if declare {
                        stream.write_all(&chunk[..n]).await?;
                    } else {
                        stream.write_all(format!("{n:x}\r\n").as_bytes()).await?;
                        stream.write_all(&chunk[..n]).await?;
                        stream.write_all(b"\r\n").await?;
                    }
                    written += n as u64;
                    sent.fetch_add(n as u64, Ordering::SeqCst);
                }
                if !declare {
                    stream.write_all(b"0\r\n\r\n").await?;
                }
            }
            Reply::Hang => std::future::pending::<()>().await,
            Reply::Stall { declared, body } => {
                write_head(&mut stream, 200, &[], Some(declared)).await?;
                stream.write_all(&body).await?;
                stream.flush().await?;
                std::future::pending::<()>().await
            }
            Reply::Close => return Ok(()),
        }
    }
}

async fn write_head(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    content_length: Option<u64>,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} Hostile\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match content_length {
        Some(n) => head.push_str(&format!("Content-Length: {n}\r\n")),
        None => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await
}

enum Incoming {
    Request(Request),
    Closed,
    NotHttp,
}

/// Read one request (head + Content-Length or chunked body).
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    stall_bodies: bool,
) -> std::io::Result<Incoming> {
    let head_end = loop {
        if let Some(first) = buf.first()
            && !first.is_ascii_uppercase()
        {
            // Not an HTTP method: most likely a TLS ClientHello. Refuse it.
            return Ok(Incoming::NotHttp);
        }
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > 64 * 1024 {
            return Ok(Incoming::NotHttp);
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Incoming::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    buf.drain(..head_end + 4);
    if stall_bodies && (length > 0 || chunked) {
        std::future::pending::<()>().await;
    }
    let body = if chunked {
        read_chunked(stream, buf).await?
    } else {
        read_exact_buffered(stream, buf, length).await?
    };
    Ok(Incoming::Request(Request {
        method,
        target,
        headers,
        body,
    }))
}

async fn read_exact_buffered(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    len: usize,
) -> std::io::Result<Vec<u8>> {
    while buf.len() < len {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "body cut short",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf.drain(..len).collect())
}

async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(pos) = buf.windows(2).position(|w| w == b"\r\n") {
                break pos;
            }
            let mut chunk = vec![0u8; 8192];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "chunk header cut short",
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let size_text = String::from_utf8_lossy(&buf[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk size"))?;
        buf.drain(..line_end + 2);
        let data = read_exact_buffered(stream, buf, size + 2).await?;
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&data[..size]);
    }
}
