//! Docker credential helpers (`docker-credential-<name> get`), run once per registry.
use super::Credentials;
use std::collections::{BTreeMap, HashMap};

/// Docker credential helpers named in a config file (`credHelpers`, `credsStore`).
///
/// Run lazily (once per registry, then cached) because a helper may prompt or be slow, and
/// only for a config file the user owns: a Secret's config never names programs to run.
#[derive(Clone, Debug, Default)]
pub(super) struct CredentialHelpers {
    pub(super) per_host: BTreeMap<String, String>,
    pub(super) store: Option<String>,
    pub(super) cache: std::sync::Arc<std::sync::Mutex<HashMap<String, Option<Credentials>>>>,
    /// Where to look for `docker-credential-*` instead of `$PATH` (tests).
    pub(super) search_path: Option<std::ffi::OsString>,
}

impl CredentialHelpers {
    pub(super) fn is_empty(&self) -> bool {
        self.per_host.is_empty() && self.store.is_none()
    }

    pub(super) fn resolve(&self, registry: &str) -> Option<Credentials> {
        let helper = self.per_host.get(registry).or(self.store.as_ref())?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = cache.get(registry) {
            return hit.clone();
        }
        let found = run_credential_helper(helper, registry, self.search_path.as_deref());
        cache.insert(registry.to_string(), found.clone());
        found
    }
}

/// A credential helper that could not be started (not installed, not executable).
#[derive(Debug)]
pub(super) struct HelperNotRunnable {
    pub(super) program: String,
    pub(super) error: std::io::Error,
}

/// `docker-credential-<name> get` with the server URL on stdin, as a Docker config names it
/// (the Hub as `https://index.docker.io/v1/`); `None` when it has nothing.
fn run_credential_helper(
    name: &str,
    registry: &str,
    search_path: Option<&std::ffi::OsStr>,
) -> Option<Credentials> {
    let server = if registry == crate::registry::DOCKER_HUB {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    match ask_credential_helper(name, server, search_path) {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(helper = %e.program, registry, error = %e.error, "cannot run Docker credential helper; using no credentials");
            None
        }
    }
}

/// Runs `docker-credential-<name> get` with `server` on stdin.
///
/// `Ok(None)` when the helper has no credentials for it (non-zero exit or unexpected output);
/// `Err` only when the program cannot be started, so callers can say how to install it.
pub(super) fn ask_credential_helper(
    name: &str,
    server: &str,
    search_path: Option<&std::ffi::OsStr>,
) -> Result<Option<Credentials>, HelperNotRunnable> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{name}");
    let mut command = Command::new(&program);
    if let Some(path) = search_path {
        // On Unix the child's PATH is also where the program is looked up.
        command.env("PATH", path);
    }
    let child = command
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(error) => return Err(HelperNotRunnable { program, error }),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let Ok(out) = child.wait_with_output() else {
        return Ok(None);
    };
    if !out.status.success() {
        tracing::debug!(helper = %program, server, "Docker credential helper has no credentials");
        return Ok(None);
    }
    #[derive(serde::Deserialize)]
    struct HelperReply {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let reply: HelperReply = match serde_json::from_slice(&out.stdout) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(helper = %program, server, error = %e, "Docker credential helper answered with unexpected output");
            return Ok(None);
        }
    };
    Ok(Some(if reply.username == "<token>" {
        Credentials::IdentityToken { token: reply.secret }
    } else {
        Credentials::Basic {
            username: reply.username,
            password: reply.secret,
        }
    }))
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Keychain;

    #[cfg(unix)]
    #[test]
    fn credential_helpers_run_once_per_registry() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let calls = dir.path().join("calls");
        // A helper that records the server it was asked about and answers for two of them.
        let script = format!(
            "#!/bin/sh\nread server\necho \"$1 $server\" >> {calls}\ncase \"$server\" in\n  \
             helped.io) echo '{{\"ServerURL\":\"helped.io\",\"Username\":\"hu\",\"Secret\":\"hs\"}}' ;;\n  \
             https://index.docker.io/v1/) echo '{{\"Username\":\"<token>\",\"Secret\":\"refresh\"}}' ;;\n  \
             *) echo 'credentials not found in native keychain' >&2; exit 1 ;;\nesac\n",
            calls = calls.display()
        );
        for name in ["docker-credential-store", "docker-credential-special"] {
            let p = dir.path().join(name);
            std::fs::write(&p, &script).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let config = dir.path().join("config.json");
        std::fs::write(
            &config,
            r#"{"credsStore":"store","credHelpers":{"special.io":"special","missing.io":"not-installed"},
                "auths":{"fallback.io":{"username":"fu","password":"fp"}}}"#,
        )
        .unwrap();
        let path = std::ffi::OsString::from(format!("{}:/usr/bin:/bin", dir.path().display()));
        let k = Keychain::from_docker_config_file_with(&config, Some(path)).unwrap();
        assert!(k.runs_programs());
        assert_eq!(
            k.resolve("helped.io", "x"),
            Credentials::Basic {
                username: "hu".into(),
                password: "hs".into()
            }
        );
        assert_eq!(
            k.resolve("helped.io", "y"),
            Credentials::Basic {
                username: "hu".into(),
                password: "hs".into()
            }
        );
        assert_eq!(
            k.resolve("index.docker.io", "u/a"),
            Credentials::IdentityToken {
                token: "refresh".into()
            }
        );
        // The store knows nothing of fallback.io: the auths entry answers.
        assert_eq!(
            k.resolve("fallback.io", "x"),
            Credentials::Basic {
                username: "fu".into(),
                password: "fp".into()
            }
        );
        // A helper that is not installed gives no credentials (with a warning), not a failure.
        assert_eq!(k.resolve("missing.io", "x"), Credentials::Anonymous);
        assert_eq!(k.resolve("special.io", "x"), Credentials::Anonymous);
        let log = std::fs::read_to_string(&calls).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(
            lines,
            vec![
                "get helped.io",
                "get https://index.docker.io/v1/",
                "get fallback.io",
                "get special.io"
            ],
            "one call per registry, cached afterwards"
        );
        assert!(!Keychain::from_docker_config_json(b"{}").unwrap().runs_programs());
    }
}
