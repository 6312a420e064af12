//! A loopback token server for docker-registry's `auth.token` (the Bearer flow of Docker Hub,
//! Harbor, GitLab and most private registries): it checks Basic credentials, grants the scopes
//! asked for, and signs an ES256 JWT with a key whose self-signed certificate the registry trusts
//! (`rootcertbundle`); the certificate travels in the token's `x5c` header. Signing goes through
//! the `openssl` CLI (already needed for the TLS registries), so no crypto crate is added for
//! tests. Every token request is logged (scopes and whether the credentials were right).
use super::registry::openssl;
use base64::Engine as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub const SERVICE: &str = "pkgr-test-registry";
pub const ISSUER: &str = "pkgr-test-token-issuer";

/// One request to the token endpoint.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub scopes: Vec<String>,
    /// Whether Basic credentials were sent and matched.
    pub authenticated: bool,
}

struct Shared {
    username: String,
    password: String,
    key: PathBuf,
    /// The signing certificate, DER, base64 (standard alphabet) for `x5c`.
    x5c: String,
    log: Mutex<Vec<TokenRequest>>,
    serial: AtomicU64,
    stopped: AtomicBool,
}

/// The server; it stops accepting when dropped.
pub struct TokenServer {
    /// `http://127.0.0.1:PORT/token`: the realm the registry sends in its challenge.
    pub realm: String,
    /// PEM certificate for the registry's `auth.token.rootcertbundle`.
    pub certificate: PathBuf,
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    /// Grant tokens to `username`/`password` (anonymous requests get none: 401).
    pub fn start(username: &str, password: &str) -> TokenServer {
        let dir = tempfile::tempdir().expect("temp dir for the token server");
        let key = dir.path().join("token.key");
        let certificate = dir.path().join("token.pem");
        let der = dir.path().join("token.der");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            path(&key),
            "-out",
            path(&certificate),
            "-days",
            "2",
            "-subj",
            "/CN=pkgr test token issuer",
        ]);
        openssl(&[
            "x509",
            "-in",
            path(&certificate),
            "-outform",
            "DER",
            "-out",
            path(&der),
        ]);
        let x5c = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&der).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the token server");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            username: username.to_string(),
            password: password.to_string(),
            key,
            x5c,
            log: Mutex::new(Vec::new()),
            serial: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let s = s.clone();
                std::thread::spawn(move || serve(stream, &s));
            }
        });
        TokenServer {
            realm: format!("http://{addr}/token"),
            certificate,
            addr,
            shared,
            _dir: dir,
        }
    }

    /// The token requests so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared.log.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.shared.log.lock().unwrap().clear();
    }

    /// The registry config's `auth:` section for this server.
    pub fn registry_auth_config(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.realm,
            self.certificate.display()
        )
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut stream: TcpStream, shared: &Shared) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_string());
        }
    }
    let target = request_line.split(' ').nth(1).unwrap_or("").to_string();
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let scopes: Vec<String> = query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("scope="))
        .map(percent_decode)
        .collect();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", shared.username, shared.password))
    );
    let authenticated = authorization.as_deref() == Some(expected.as_str());
    shared.log.lock().unwrap().push(TokenRequest {
        scopes: scopes.clone(),
        authenticated,
    });
    let response = if !target.starts_with("/token") {
        reply(404, "{\"details\":\"not found\"}")
    } else if !authenticated {
        reply(401, "{\"details\":\"incorrect username or password\"}")
    } else {
        let token = sign(shared, &scopes);
        reply(
            200,
            &serde_json::json!({"token": token, "access_token": token, "expires_in": 300}).to_string(),
        )
    };
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
    // Drain anything left so the client sees a clean close.
    let _ = reader.get_mut().set_nonblocking(true);
    let _ = reader.read(&mut [0u8; 64]);
}

fn reply(status: u16, body: &str) -> String {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// An ES256 JWT granting every action asked for in `scopes` (`type:name:action,action`).
fn sign(shared: &Shared, scopes: &[String]) -> String {
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .flat_map(|s| s.split(' '))
        .filter_map(|scope| {
            let (kind, rest) = scope.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [shared.x5c]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": shared.username, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now - 10,
        "jti": format!("t{}", shared.serial.fetch_add(1, Ordering::SeqCst)),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        url.encode(header.to_string()),
        url.encode(claims.to_string())
    );
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign", path(&shared.key)])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(signing_input.as_bytes())?;
            child.wait_with_output()
        })
        .expect("run openssl dgst -sign");
    assert!(out.status.success(), "openssl could not sign the token");
    let signature = der_ecdsa_to_jws(&out.stdout);
    format!("{signing_input}.{}", url.encode(signature))
}

/// openssl writes an ECDSA signature as DER `SEQUENCE { INTEGER r, INTEGER s }`; JWS ES256 wants
/// r and s as two 32-byte big-endian numbers.
fn der_ecdsa_to_jws(der: &[u8]) -> Vec<u8> {
    assert_eq!(der[0], 0x30, "not a DER sequence");
    // P-256 signatures are short enough for a one-byte length.
    let mut at = 2;
    let mut out = Vec::with_capacity(64);
    for _ in 0..2 {
        assert_eq!(der[at], 0x02, "not a DER integer");
        let len = der[at + 1] as usize;
        let mut value = &der[at + 2..at + 2 + len];
        while value.len() > 32 && value[0] == 0 {
            value = &value[1..];
        }
        out.extend(std::iter::repeat_n(0u8, 32 - value.len()));
        out.extend_from_slice(value);
        at += 2 + len;
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}
