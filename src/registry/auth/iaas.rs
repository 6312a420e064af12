//! imgpkg's IaaS keychains (`IMGPKG_ACTIVE_KEYCHAINS`, `IMGPKG_ENABLE_IAAS_AUTH`): credentials
//! from GitHub Actions, Google Cloud, AWS and Azure, consulted after the `IMGPKG_REGISTRY_*`
//! variables and before the flags and the Docker config, as imgpkg does.
//!
//! What is a plain HTTP call or a variable runs in-process (the GitHub token, the GCE metadata
//! server); what needs a cloud SDK (ECR's signed API call, Azure AD) goes to the credential
//! helper imgpkg links in, as a program on the PATH.
use super::Credentials;
use super::gce_metadata;
use super::helpers::ask_credential_helper;
use super::keychain_names::{IaasKeychainKind, UnknownKeychain, active_keychains};
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Whether go-containerregistry's Google keychain answers for `registry`.
fn is_google_registry(registry: &str) -> bool {
    registry == "gcr.io"
        || registry.ends_with(".gcr.io")
        || registry.ends_with(".pkg.dev")
        || registry.ends_with(".google.com")
}

/// Whether go-containerregistry's GitHub keychain answers for `registry` (any port).
fn is_github_registry(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    };
    host.eq_ignore_ascii_case("ghcr.io")
}

/// The metadata server's token and when to stop using it.
#[derive(Clone)]
struct MetadataToken {
    credentials: Credentials,
    valid_until: Option<Instant>,
}

/// The metadata server's last answer: a token, or why there is none.
type MetadataAnswer = Option<Result<MetadataToken, String>>;

/// What each keychain's helper said about each registry (`None`: nothing).
type HelperAnswers = HashMap<(IaasKeychainKind, String), Option<Credentials>>;

/// The active IaaS keychains with what they read from the environment.
#[derive(Clone)]
pub(super) struct IaasKeychains {
    kinds: Vec<IaasKeychainKind>,
    /// `GITHUB_ACTOR` (or `unset`, as go-containerregistry) and `GITHUB_TOKEN`.
    github: Option<(String, String)>,
    /// `GCE_METADATA_HOST`, else the link-local address.
    metadata_host: String,
    /// `PATH` from the environment given, for the helpers.
    search_path: Option<OsString>,
    /// One answer for every Google registry, as go-containerregistry asks once per process: off
    /// Google Cloud the connection attempt costs its timeout once, not once per registry. A
    /// token is asked again when it nears expiry; a failure stands for the keychain's life.
    metadata: Arc<Mutex<MetadataAnswer>>,
    /// Helper answers per (keychain, registry): a helper runs once per registry.
    helper_answers: Arc<Mutex<HelperAnswers>>,
    /// Helpers already reported missing (one warning each).
    missing_reported: Arc<Mutex<HashSet<&'static str>>>,
}

impl fmt::Debug for IaasKeychains {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IaasKeychains")
            .field("kinds", &self.kinds)
            .field(
                "github",
                &self.github.as_ref().map(|(user, _)| format!("{user}:<redacted>")),
            )
            .field("metadata_host", &self.metadata_host)
            .finish_non_exhaustive()
    }
}

/// Tokens are renewed this long before they expire, so a request never carries a dead one.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

impl IaasKeychains {
    /// The keychains `env` turns on, or `None` when it turns on none.
    pub(super) fn from_env(env: &HashMap<String, String>) -> Result<Option<IaasKeychains>, UnknownKeychain> {
        let kinds = active_keychains(env)?;
        if kinds.is_empty() {
            return Ok(None);
        }
        let github = env.get("GITHUB_TOKEN").filter(|t| !t.is_empty()).map(|token| {
            let user = env
                .get("GITHUB_ACTOR")
                .filter(|u| !u.is_empty())
                .cloned()
                .unwrap_or_else(|| "unset".to_string());
            (user, token.clone())
        });
        Ok(Some(IaasKeychains {
            kinds,
            github,
            metadata_host: env
                .get("GCE_METADATA_HOST")
                .filter(|h| !h.is_empty())
                .cloned()
                .unwrap_or_else(|| gce_metadata::DEFAULT_HOST.to_string()),
            search_path: env.get("PATH").map(OsString::from),
            metadata: Arc::default(),
            helper_answers: Arc::default(),
            missing_reported: Arc::default(),
        }))
    }

    /// Whether [`resolve`](Self::resolve) may block (run a helper, ask the metadata server);
    /// the GitHub keychain only reads a variable.
    pub(super) fn may_block(&self) -> bool {
        self.kinds.iter().any(|&k| k != IaasKeychainKind::Github)
    }

    /// The first keychain's credentials for `registry`, in order; `None` when none has any.
    pub(super) fn resolve(&self, registry: &str) -> Option<Credentials> {
        self.kinds
            .iter()
            .find_map(|&kind| self.resolve_one(kind, registry))
    }

    fn resolve_one(&self, kind: IaasKeychainKind, registry: &str) -> Option<Credentials> {
        match kind {
            IaasKeychainKind::Github => match &self.github {
                Some((user, token)) if is_github_registry(registry) => Some(Credentials::Basic {
                    username: user.clone(),
                    password: token.clone(),
                }),
                _ => None,
            },
            IaasKeychainKind::Gke if !is_google_registry(registry) => None,
            IaasKeychainKind::Gke => match self.metadata_credentials() {
                Ok(credentials) => Some(credentials),
                Err(metadata_error) => {
                    let found = self.helper_credentials(kind, registry);
                    if found.is_none() {
                        tracing::warn!(
                            "the gke keychain found no Google credentials for {registry}: the metadata \
                             server (set GCE_METADATA_HOST to move it) failed: {metadata_error}; and \
                             docker-credential-gcr had none. Continuing with the next source of credentials"
                        );
                    }
                    found
                }
            },
            IaasKeychainKind::Ecr | IaasKeychainKind::Aks => self.helper_credentials(kind, registry),
        }
    }

    /// The metadata server's token as go-containerregistry's Google keychain sends it.
    fn metadata_credentials(&self) -> Result<Credentials, String> {
        // Held across the request so that parallel transfers ask once.
        let mut slot = self.metadata.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some(Ok(token)) if token.valid_until.is_none_or(|t| Instant::now() < t) => {
                return Ok(token.credentials.clone());
            }
            Some(Err(e)) => return Err(e.clone()),
            _ => {}
        }
        let fresh = gce_metadata::fetch_token(&self.metadata_host).map(|token| MetadataToken {
            credentials: Credentials::Basic {
                username: "_token".into(),
                password: token.access_token,
            },
            valid_until: token
                .expires_in
                .map(|d| Instant::now() + d.saturating_sub(EXPIRY_MARGIN)),
        });
        *slot = Some(fresh.clone());
        fresh.map(|t| t.credentials)
    }

    /// The keychain's credential helper's answer for `registry`, asked once.
    fn helper_credentials(&self, kind: IaasKeychainKind, registry: &str) -> Option<Credentials> {
        let key = (kind, registry.to_string());
        // Held across the call so that parallel transfers run the helper once.
        let mut answers = self.helper_answers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = answers.get(&key) {
            return hit.clone();
        }
        let helper = kind.helper().expect("every keychain but github has a helper");
        // As go-containerregistry's helper keychain: the registry host on stdin, no scheme.
        let found = match ask_credential_helper(helper, registry, self.search_path.as_deref()) {
            Ok(found) => found,
            Err(not_runnable) => {
                let first = self
                    .missing_reported
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(helper);
                if first {
                    tracing::warn!(
                        "the {name} keychain (IMGPKG_ACTIVE_KEYCHAINS / IMGPKG_ENABLE_IAAS_AUTH) could not run \
                         {program}: {error}; install it on the PATH or leave {name} out of IMGPKG_ACTIVE_KEYCHAINS. \
                         Continuing without {name} credentials",
                        name = kind.name(),
                        program = not_runnable.program,
                        error = not_runnable.error,
                    );
                }
                None
            }
        };
        answers.insert(key, found.clone());
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::auth::gce_metadata::tests::{fake_metadata, ok_reply};
    use crate::registry::auth::tests::env;

    #[test]
    fn hosts_each_keychain_answers_for() {
        for google in [
            "gcr.io",
            "eu.gcr.io",
            "us-docker.pkg.dev",
            "europe-west1-docker.pkg.dev",
            "x.google.com",
        ] {
            assert!(is_google_registry(google), "{google}");
        }
        for other in [
            "gcr.io.evil.com",
            "mygcr.io",
            "pkg.dev.example.com",
            "127.0.0.1:5000",
            "index.docker.io",
        ] {
            assert!(!is_google_registry(other), "{other}");
        }
        assert!(is_github_registry("ghcr.io"));
        assert!(is_github_registry("ghcr.io:443"));
        for other in [
            "docker.pkg.github.com",
            "ghcr.io.example.com",
            "gcr.io",
            "127.0.0.1:5000",
        ] {
            assert!(!is_github_registry(other), "{other}");
        }
    }

    #[test]
    fn github_token_for_ghcr_only() {
        let k = IaasKeychains::from_env(&env(&[
            ("IMGPKG_ACTIVE_KEYCHAINS", "github"),
            ("GITHUB_TOKEN", "ghs_secret"),
            ("GITHUB_ACTOR", "octocat"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            k.resolve("ghcr.io"),
            Some(Credentials::Basic {
                username: "octocat".into(),
                password: "ghs_secret".into()
            })
        );
        assert_eq!(k.resolve("gcr.io"), None);
        assert!(!format!("{k:?}").contains("ghs_secret"));
        let unset = IaasKeychains::from_env(&env(&[
            ("IMGPKG_ACTIVE_KEYCHAINS", "github"),
            ("GITHUB_TOKEN", "t"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            unset.resolve("ghcr.io"),
            Some(Credentials::Basic {
                username: "unset".into(),
                password: "t".into()
            })
        );
        let no_token = IaasKeychains::from_env(&env(&[("IMGPKG_ACTIVE_KEYCHAINS", "github")]))
            .unwrap()
            .unwrap();
        assert_eq!(no_token.resolve("ghcr.io"), None);
        assert!(
            !no_token.may_block(),
            "reading a variable needs no blocking thread"
        );
        assert!(IaasKeychains::from_env(&env(&[])).unwrap().is_none());
    }

    #[test]
    fn gke_uses_the_metadata_server_for_google_hosts_once() {
        let (host, seen) = fake_metadata(ok_reply(r#"{"access_token":"ya29.meta","expires_in":3600}"#));
        let k = IaasKeychains::from_env(&env(&[
            ("IMGPKG_ACTIVE_KEYCHAINS", "gke"),
            ("GCE_METADATA_HOST", &host),
            // No helper anywhere: the metadata server alone answers.
            ("PATH", "/nonexistent"),
        ]))
        .unwrap()
        .unwrap();
        // Not a Google host: the metadata server is not asked (the fake answers only once, so
        // the gcr.io lookup below would fail had it been).
        assert_eq!(k.resolve("127.0.0.1:5000"), None);
        let expected = Some(Credentials::Basic {
            username: "_token".into(),
            password: "ya29.meta".into(),
        });
        assert_eq!(k.resolve("gcr.io"), expected);
        assert!(seen.recv().unwrap().contains("Metadata-Flavor: Google"));
        // One token for every Google registry until it nears expiry: the one-shot fake is gone,
        // yet the answer stands.
        assert_eq!(k.resolve("gcr.io"), expected);
        assert_eq!(k.resolve("europe-docker.pkg.dev"), expected);
        assert!(k.may_block());
    }

    #[test]
    fn a_failed_metadata_server_is_asked_once() {
        use std::io::{Read as _, Write as _};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                // Counted before the reply goes out, so the client sees it once it has the reply.
                counted.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
            }
        });
        let k = IaasKeychains::from_env(&env(&[
            ("IMGPKG_ACTIVE_KEYCHAINS", "gke"),
            ("GCE_METADATA_HOST", &host),
            ("PATH", "/nonexistent"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(k.resolve("gcr.io"), None);
        assert_eq!(k.resolve("us.gcr.io"), None);
        assert_eq!(k.resolve("us-docker.pkg.dev"), None);
        assert_eq!(requests.load(Ordering::SeqCst), 1);
        assert!(k.missing_reported.lock().unwrap().contains("gcr"));
    }

    #[cfg(unix)]
    #[test]
    fn helpers_get_the_registry_host_and_may_decline() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let calls = dir.path().join("calls");
        let script = format!(
            "#!/bin/sh\nread server\necho \"$0 $1 $server\" >> {calls}\ncase \"$server\" in\n  \
             123456789012.dkr.ecr.us-east-1.amazonaws.com) echo '{{\"Username\":\"AWS\",\"Secret\":\"ecr-pw\"}}' ;;\n  \
             *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n",
            calls = calls.display()
        );
        let helper = dir.path().join("docker-credential-ecr-login");
        std::fs::write(&helper, script).unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:/usr/bin:/bin", dir.path().display());
        let k = IaasKeychains::from_env(&env(&[("IMGPKG_ACTIVE_KEYCHAINS", "aks,ecr"), ("PATH", &path)]))
            .unwrap()
            .unwrap();
        let ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
        let from_helper = Some(Credentials::Basic {
            username: "AWS".into(),
            password: "ecr-pw".into(),
        });
        assert_eq!(k.resolve(ecr), from_helper);
        // Asked again: the same credentials, without calling the helper again (the log below).
        assert_eq!(k.resolve(ecr), from_helper, "the second lookup");
        assert_eq!(k.resolve("other.io"), None);
        let log = std::fs::read_to_string(&calls).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(
            lines,
            vec![
                format!("{} get {ecr}", helper.display()),
                format!("{} get other.io", helper.display())
            ],
            "one call per registry; the aks helper is not installed and is skipped"
        );
        assert!(k.missing_reported.lock().unwrap().contains("acr-env"));
    }
}
