//! A real OCI registry (Debian's `docker-registry`) on a free loopback port, for one test.
//!
//! Plain HTTP and anonymous by default; `start_tls_auth` adds TLS with a CA generated for the
//! test and htpasswd Basic auth. The process is killed when the value is dropped.
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct TestRegistry {
    child: Child,
    /// `127.0.0.1:<port>`: the registry host part of references.
    pub host: String,
    /// PEM file of the CA that signed the server certificate (TLS registries only).
    pub ca_pem: Option<PathBuf>,
    /// Basic credentials (auth registries only).
    pub credentials: Option<(String, String)>,
    /// Where the registry stores blobs (to inspect or corrupt in tests).
    pub storage: PathBuf,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    /// Anonymous plain-HTTP registry.
    pub fn start() -> TestRegistry {
        Self::launch(false, None, None)
    }

    /// HTTPS registry with a CA made for this test and Basic auth for `username`/`password`.
    pub fn start_tls_auth(username: &str, password: &str) -> TestRegistry {
        Self::launch(true, Some((username.to_string(), password.to_string())), None)
    }

    /// Plain-HTTP registry with Bearer token auth from `token` (which holds the credentials:
    /// `credentials` here names them for the tests).
    pub fn start_token_auth(
        token: &super::token::TokenServer,
        username: &str,
        password: &str,
    ) -> TestRegistry {
        Self::launch(
            false,
            Some((username.to_string(), password.to_string())),
            Some(token.registry_auth_config()),
        )
    }

    /// `host/repository` for a repository in this registry.
    pub fn repo(&self, repository: &str) -> String {
        format!("{}/{}", self.host, repository)
    }

    /// The base URL (`http://` or `https://`).
    pub fn base_url(&self) -> String {
        let scheme = if self.ca_pem.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.host)
    }

    fn launch(tls: bool, credentials: Option<(String, String)>, token_auth: Option<String>) -> TestRegistry {
        let binary = "/usr/bin/docker-registry";
        assert!(
            Path::new(binary).exists(),
            "{binary} is missing: install Debian's docker-registry (apt-get install docker-registry), as .ci/run does"
        );
        // A port taken by someone else between probe and bind makes the registry exit; try again.
        for _attempt in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir for the test registry");
            let port = free_port();
            let host = format!("127.0.0.1:{port}");
            let storage = dir.path().join("storage");
            let mut config = format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n  secret: pkgr-test-secret\n",
                storage.display()
            );
            let mut ca_pem = None;
            if tls {
                let (ca, cert, key) = make_certificates(dir.path());
                config.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                ));
                ca_pem = Some(ca);
            }
            if let Some(auth) = &token_auth {
                config.push_str(auth);
            } else if let Some((user, pass)) = &credentials {
                let htpasswd = dir.path().join("htpasswd");
                let out = Command::new("htpasswd")
                    .args(["-Bbn", "-C", "5", user, pass])
                    .output()
                    .expect("run htpasswd (apache2-utils)");
                assert!(
                    out.status.success(),
                    "htpasswd failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                std::fs::write(&htpasswd, &out.stdout).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: pkgr-test\n    path: {}\n",
                    htpasswd.display()
                ));
            }
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).unwrap();
            let mut child = Command::new(binary)
                .arg("serve")
                .arg(&config_path)
                .env("REGISTRY_VALIDATION_DISABLED", "true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start docker-registry");
            // The registry logs "listening on <addr>" once it accepts connections.
            let stderr = child.stderr.take().unwrap();
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut sent = false;
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if !sent && line.contains("listening on") {
                        let _ = tx.send(Ok(()));
                        sent = true;
                    } else if !sent && (line.contains("level=fatal") || line.contains("panic")) {
                        let _ = tx.send(Err(line));
                        sent = true;
                    }
                }
                if !sent {
                    let _ = tx.send(Err("docker-registry exited before listening".to_string()));
                }
            });
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(Ok(())) => {
                    return TestRegistry {
                        child,
                        host,
                        ca_pem,
                        credentials,
                        storage,
                        dir,
                    };
                }
                Ok(Err(line)) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    eprintln!("test registry failed to start on {host}: {line}; retrying on another port");
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("docker-registry did not report listening on {host} within 30 s");
                }
            }
        }
        panic!("could not start docker-registry after 5 attempts");
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CA and a server certificate for 127.0.0.1/localhost signed by it: (ca.pem, server.pem, server.key).
pub fn make_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = dir.join("ca.key");
    let ca = dir.join("ca.pem");
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let cert = dir.join("server.pem");
    let ext = dir.join("server.ext");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let run = openssl;
    let p = |p: &Path| p.to_str().unwrap().to_string();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &p(&ca_key),
        "-out",
        &p(&ca),
        "-days",
        "2",
        "-subj",
        "/CN=pkgr test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &p(&key),
        "-out",
        &p(&csr),
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        &p(&csr),
        "-CA",
        &p(&ca),
        "-CAkey",
        &p(&ca_key),
        "-CAcreateserial",
        "-out",
        &p(&cert),
        "-days",
        "2",
        "-extfile",
        &p(&ext),
    ]);
    (ca, cert, key)
}

/// Run the `openssl` CLI; panics with its stderr when it fails.
pub fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
