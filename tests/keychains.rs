//! imgpkg's IaaS keychains (`IMGPKG_ACTIVE_KEYCHAINS`, `IMGPKG_ENABLE_IAAS_AUTH`) through the
//! real binary, against a real registry on loopback whose only accepted credentials come from
//! the keychain under test.
//!
//! What each test proves, honestly: `ecr` and `aks` ask their credential helper about every
//! registry (as go-containerregistry's helper keychain does), so a fake helper on PATH carries
//! the whole flow end to end. `github` and `gke` answer only for their own hosts (`ghcr.io`;
//! `gcr.io`, `*.gcr.io`, `*.pkg.dev`, `*.google.com`), which a loopback registry cannot be: for
//! them the binary tests prove that nothing is sent to, or asked for, other registries, and the
//! library tests prove the credentials they produce for their hosts (from the token variable,
//! from a fake metadata server on loopback, from a fake `docker-credential-gcr`).
mod support;

use pkgr::registry::{Credentials, Keychain};
use std::collections::HashMap;
use std::io::{BufRead as _, Write as _};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::registry::TestRegistry;

const UNKNOWN: &str = "Unable to load keychain for random-name, available keychains [aks, ecr, gke, github]]";

/// A private HOME, a `bin/` for fake helpers and `imgpkg` → the pkgr binary.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_pkgr"), dir.path().join("bin/imgpkg")).unwrap();
        Sandbox { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A fake `docker-credential-<name>` that logs `get <server>` to `<name>.calls` and answers
    /// `username`/`password` for `server` only, "not found" (exit 1) for anything else.
    fn helper(&self, name: &str, server: &str, username: &str, password: &str) -> PathBuf {
        let calls = self.path(&format!("{name}.calls"));
        let script = format!(
            "#!/bin/sh\nread server\necho \"$1 $server\" >> '{calls}'\nif [ \"$server\" = '{server}' ]; then\n  \
             printf '%s' '{{\"ServerURL\":\"{server}\",\"Username\":\"{username}\",\"Secret\":\"{password}\"}}'\nelse\n  \
             echo 'credentials not found in native keychain'; exit 1\nfi\n",
            calls = calls.display()
        );
        let program = self.path(&format!("bin/docker-credential-{name}"));
        std::fs::write(&program, script).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        calls
    }

    /// Runs `program` (`pkgr` or `imgpkg`) with only the environment given, HOME, a Docker
    /// config dir without a config, and PATH = our bin/ then the system's.
    fn run(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let binary = match program {
            "pkgr" => PathBuf::from(env!("CARGO_BIN_EXE_pkgr")),
            _ => self.path("bin/imgpkg"),
        };
        Command::new(binary)
            .args(args)
            .env_clear()
            .env("HOME", self.dir.path())
            .env("DOCKER_CONFIG", self.path("docker"))
            .env("PATH", format!("{}:/usr/bin:/bin", self.path("bin").display()))
            .envs(env.iter().copied())
            .output()
            .expect("run the binary")
    }

    /// A directory with one file, to push as an image.
    fn content(&self, text: &str) -> String {
        let dir = self.path("content");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.yml"), text).unwrap();
        dir.to_str().unwrap().to_string()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
}

/// Whether anyone connected to `listener` since it was bound. Connections complete in the
/// kernel's backlog even when nobody accepts, so a non-blocking accept after the child has
/// exited sees every attempt: no waiting involved.
fn was_contacted(listener: &TcpListener) -> bool {
    listener.set_nonblocking(true).unwrap();
    match listener.accept() {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("accept: {e}"),
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn unknown_keychain_is_refused_before_any_request_in_both_voices() {
    let sandbox = Sandbox::new();
    let registry = TcpListener::bind("127.0.0.1:0").unwrap();
    let metadata = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = registry.local_addr().unwrap().to_string();
    let metadata_host = metadata.local_addr().unwrap().to_string();
    let image = format!("{host}/apps/app:v1");
    let repo = format!("{host}/apps/app");
    let out_dir = sandbox.path("out");
    let out_dir = out_dir.to_str().unwrap();
    let content = sandbox.content("x");
    let commands: [Vec<&str>; 5] = [
        vec!["pull", "-i", &image, "-o", out_dir],
        vec!["push", "-i", &image, "-f", &content],
        vec!["copy", "-i", &image, "--to-repo", &repo],
        vec!["tag", "list", "-i", &repo],
        vec!["describe", "-b", &image],
    ];
    let env = [
        ("IMGPKG_ACTIVE_KEYCHAINS", "gke, random-name"),
        ("GCE_METADATA_HOST", metadata_host.as_str()),
    ];
    for args in &commands {
        let out = sandbox.run("pkgr", args, &env);
        assert_eq!(out.status.code(), Some(1), "pkgr {args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out),
            format!("pkgr: Creating registry keychain\n  caused by: {UNKNOWN}\n"),
            "pkgr {args:?}"
        );
        let out = sandbox.run("imgpkg", args, &env);
        assert_eq!(out.status.code(), Some(1), "imgpkg {args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out),
            format!("imgpkg: Error: Creating registry keychain: {UNKNOWN}\n"),
            "imgpkg {args:?}"
        );
    }
    // Upper case is not imgpkg's spelling either; an empty entry is refused by name.
    let out = sandbox.run("imgpkg", &commands[0], &[("IMGPKG_ACTIVE_KEYCHAINS", "ECR")]);
    assert!(stderr(&out).contains("Unable to load keychain for ECR, available keychains"));
    let out = sandbox.run("imgpkg", &commands[0], &[("IMGPKG_ACTIVE_KEYCHAINS", "ecr,")]);
    assert!(stderr(&out).contains("Unable to load keychain for , available keychains"));
    assert!(!was_contacted(&registry), "no request may reach the registry");
    assert!(
        !was_contacted(&metadata),
        "no request may reach the metadata server"
    );
    assert!(!Path::new(out_dir).exists());
}

#[test]
fn ecr_keychain_gets_credentials_from_its_helper_before_flags() {
    let sandbox = Sandbox::new();
    let reg = TestRegistry::start_tls_auth("AWS", "ecr-password");
    let ca = reg.ca_pem.as_ref().unwrap().to_str().unwrap().to_string();
    let calls = sandbox.helper("ecr-login", &reg.host, "AWS", "ecr-password");
    let image = reg.repo("apps/app:v1");
    let content = sandbox.content("from the ecr keychain");
    let push = [
        "push",
        "-i",
        &image,
        "-f",
        &content,
        "--registry-ca-cert-path",
        &ca,
    ];

    // Without the keychain the registry refuses: the credentials below come from the helper.
    let out = sandbox.run("pkgr", &push, &[]);
    assert!(!out.status.success(), "an anonymous push must fail");
    assert!(
        lines(&calls).is_empty(),
        "the helper is not asked unless ecr is active"
    );

    let ecr = [("IMGPKG_ACTIVE_KEYCHAINS", "ecr")];
    assert_ok(&sandbox.run("pkgr", &push, &ecr), "push with the ecr keychain");
    // imgpkg's order: the IaaS keychains come before --registry-username/--registry-password.
    let out_dir = sandbox.path("out");
    let out_dir = out_dir.to_str().unwrap();
    let pull = [
        "pull",
        "-i",
        &image,
        "-o",
        out_dir,
        "--registry-ca-cert-path",
        &ca,
        "--registry-username",
        "wrong",
        "--registry-password",
        "wrong",
    ];
    assert_ok(&sandbox.run("imgpkg", &pull, &ecr), "pull with the ecr keychain");
    assert_eq!(
        std::fs::read_to_string(Path::new(out_dir).join("config.yml")).unwrap(),
        "from the ecr keychain"
    );
    // As go-containerregistry's helper keychain: `get`, the registry host without a scheme,
    // asked once per registry per run.
    let expected = format!("get {}", reg.host);
    assert_eq!(lines(&calls), vec![expected.clone(), expected]);
}

#[test]
fn aks_keychain_and_enable_iaas_auth() {
    let sandbox = Sandbox::new();
    let reg = TestRegistry::start_tls_auth("00000000-0000-0000-0000-000000000000", "acr-token");
    let ca = reg.ca_pem.as_ref().unwrap().to_str().unwrap().to_string();
    let calls = sandbox.helper(
        "acr-env",
        &reg.host,
        "00000000-0000-0000-0000-000000000000",
        "acr-token",
    );
    let image = reg.repo("apps/app:v1");
    let content = sandbox.content("from the aks keychain");
    let push = [
        "push",
        "-i",
        &image,
        "-f",
        &content,
        "--registry-ca-cert-path",
        &ca,
    ];
    assert_ok(
        &sandbox.run("imgpkg", &push, &[("IMGPKG_ACTIVE_KEYCHAINS", "aks")]),
        "push with the aks keychain",
    );
    assert_eq!(lines(&calls), vec![format!("get {}", reg.host)]);

    // IMGPKG_ENABLE_IAAS_AUTH=true turns on every keychain and, as imgpkg, does not read the
    // list (even a wrong one). gke is on too: its metadata server must stay untouched for a
    // registry that is not Google's.
    let metadata = TcpListener::bind("127.0.0.1:0").unwrap();
    let metadata_host = metadata.local_addr().unwrap().to_string();
    let tags = [
        "tag",
        "list",
        "-i",
        &reg.repo("apps/app"),
        "--registry-ca-cert-path",
        &ca,
    ];
    let out = sandbox.run(
        "imgpkg",
        &tags,
        &[
            ("IMGPKG_ENABLE_IAAS_AUTH", "True"),
            ("IMGPKG_ACTIVE_KEYCHAINS", "random-name"),
            ("GCE_METADATA_HOST", &metadata_host),
        ],
    );
    assert_ok(&out, "tag list with IMGPKG_ENABLE_IAAS_AUTH=true");
    assert!(String::from_utf8_lossy(&out.stdout).contains("v1"));
    // The missing ecr helper is reported once, with what to do.
    let err = stderr(&out);
    assert!(
        err.contains("could not run docker-credential-ecr-login")
            && err.contains("install it on the PATH or leave ecr out of IMGPKG_ACTIVE_KEYCHAINS"),
        "{err}"
    );
    assert_eq!(err.matches("docker-credential-ecr-login").count(), 1, "{err}");
    assert!(!was_contacted(&metadata));

    // Off again: anything but "true" leaves the keychains off, so the registry refuses.
    let out = sandbox.run("imgpkg", &tags, &[("IMGPKG_ENABLE_IAAS_AUTH", "false")]);
    assert!(!out.status.success(), "anonymous tag list must fail");
}

#[test]
fn github_and_gke_send_nothing_to_other_registries() {
    let sandbox = Sandbox::new();
    let reg = TestRegistry::start_tls_auth("octocat", "ghs_token");
    let ca = reg.ca_pem.as_ref().unwrap().to_str().unwrap().to_string();
    let gcr_calls = sandbox.helper("gcr", &reg.host, "octocat", "ghs_token");
    let metadata = TcpListener::bind("127.0.0.1:0").unwrap();
    let metadata_host = metadata.local_addr().unwrap().to_string();
    let tags = [
        "tag",
        "list",
        "-i",
        &reg.repo("apps/app"),
        "--registry-ca-cert-path",
        &ca,
    ];
    // The token variable holds exactly what this registry accepts, yet it is meant for ghcr.io
    // only: sending it here would leak a GitHub token to any registry.
    let out = sandbox.run(
        "pkgr",
        &tags,
        &[
            ("IMGPKG_ACTIVE_KEYCHAINS", "github,gke"),
            ("GITHUB_TOKEN", "ghs_token"),
            ("GITHUB_ACTOR", "octocat"),
            ("GCE_METADATA_HOST", &metadata_host),
        ],
    );
    assert!(
        !out.status.success(),
        "credentials were sent to a registry that is not ghcr.io"
    );
    let err = stderr(&out);
    assert!(
        err.contains("401") || err.to_lowercase().contains("unauthorized"),
        "{err}"
    );
    assert!(!err.contains("ghs_token"), "{err}");
    assert!(
        !was_contacted(&metadata),
        "gke asked the metadata server about a loopback registry"
    );
    assert!(
        lines(&gcr_calls).is_empty(),
        "gke asked docker-credential-gcr about a loopback registry"
    );
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn github_keychain_credentials_for_ghcr() {
    let k = Keychain::from_imgpkg_iaas_env(&env(&[
        ("IMGPKG_ACTIVE_KEYCHAINS", "github"),
        ("GITHUB_TOKEN", "ghs_token"),
        ("GITHUB_ACTOR", "octocat"),
    ]))
    .unwrap();
    assert_eq!(
        k.resolve("ghcr.io", "carvel-dev/imgpkg"),
        Credentials::Basic {
            username: "octocat".into(),
            password: "ghs_token".into()
        }
    );
    assert_eq!(
        k.resolve("index.docker.io", "library/busybox"),
        Credentials::Anonymous
    );
}

/// A fake metadata server on loopback answering one token request; returns its host and the
/// request line it saw.
fn fake_metadata(token: &str) -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let body = format!(r#"{{"access_token":"{token}","expires_in":3599,"token_type":"Bearer"}}"#);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = std::io::BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let mut stream = reader.into_inner();
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nMetadata-Flavor: Google\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        tx.send(head).unwrap();
    });
    (host, rx)
}

#[test]
fn gke_keychain_token_from_the_metadata_server() {
    let (host, seen) = fake_metadata("ya29.from-metadata");
    let k = Keychain::from_imgpkg_iaas_env(&env(&[
        ("IMGPKG_ACTIVE_KEYCHAINS", "gke"),
        ("GCE_METADATA_HOST", &host),
        ("PATH", "/nonexistent"),
    ]))
    .unwrap();
    assert_eq!(
        k.resolve("us-docker.pkg.dev", "project/repo/app"),
        Credentials::Basic {
            username: "_token".into(),
            password: "ya29.from-metadata".into()
        }
    );
    let head = seen.recv().unwrap();
    assert!(
        head.starts_with("GET /computeMetadata/v1/instance/service-accounts/default/token?scopes="),
        "{head}"
    );
    assert!(head.contains("Metadata-Flavor: Google"), "{head}");
}

#[test]
fn gke_keychain_falls_back_to_docker_credential_gcr() {
    let sandbox = Sandbox::new();
    let calls = sandbox.helper("gcr", "eu.gcr.io", "_dcgcr_2_0_0_token", "ya29.from-helper");
    // Nothing listens on this port: the metadata server is unreachable, as off Google Cloud.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let path = format!("{}:/usr/bin:/bin", sandbox.path("bin").display());
    let k = Keychain::from_imgpkg_iaas_env(&env(&[
        ("IMGPKG_ACTIVE_KEYCHAINS", "gke"),
        ("GCE_METADATA_HOST", &closed),
        ("PATH", &path),
    ]))
    .unwrap();
    assert_eq!(
        k.resolve("eu.gcr.io", "project/app"),
        Credentials::Basic {
            username: "_dcgcr_2_0_0_token".into(),
            password: "ya29.from-helper".into()
        }
    );
    assert_eq!(lines(&calls), vec!["get eu.gcr.io".to_string()]);
}
