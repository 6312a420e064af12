//! imgpkg's registry flags (`--registry-username`, `--registry-ca-cert-path`, …) and the
//! client options they make, with the environment and Docker config.
use super::{Credentials, Keychain, docker_config_path};
use crate::registry::{ClientOptions, RegistryError};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// imgpkg-compatible auth flags (`--registry-username` ...), shared by every CLI subcommand.
#[derive(Clone, clap::Args)]
pub struct RegistryAuthFlags {
    /// Username for every registry (prefer IMGPKG_REGISTRY_* variables or docker login for several).
    #[arg(id = "registry_username", long = "registry-username", env = "IMGPKG_USERNAME")]
    pub username: Option<String>,
    /// Password for every registry.
    #[arg(
        id = "registry_password",
        long = "registry-password",
        env = "IMGPKG_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// Registry bearer token for every registry, sent as is.
    #[arg(
        id = "registry_token",
        long = "registry-token",
        env = "IMGPKG_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Anonymous access to every registry (ignores Docker config); also when IMGPKG_ANON is
    /// `true` (that word only, as imgpkg reads it).
    #[arg(
        id = "registry_anon",
        long = "registry-anon",
        default_value_t = false,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = crate::goflag::parse_bool,
        value_name = "BOOL"
    )]
    pub anon: bool,
    /// A PEM file of CA certificates to trust in addition to the system roots (repeatable).
    #[arg(
        id = "registry_ca_cert_path",
        long = "registry-ca-cert-path",
        value_name = "PATH"
    )]
    pub ca_cert_paths: Vec<PathBuf>,
    /// Verify registry TLS certificates; `--registry-verify-certs=false` turns this off (unsafe).
    #[arg(
        id = "registry_verify_certs",
        long = "registry-verify-certs",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = crate::goflag::parse_bool,
        value_name = "BOOL"
    )]
    pub verify_certs: bool,
    /// Allow plain HTTP to registries (HTTPS is still tried first).
    #[arg(
        id = "registry_insecure",
        long = "registry-insecure",
        default_value_t = false,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = crate::goflag::parse_bool,
        value_name = "BOOL"
    )]
    pub insecure: bool,
    /// Retries after a failed request (5xx, timeouts, dropped connections).
    #[arg(
        id = "registry_retry_count",
        long = "registry-retry-count",
        default_value_t = 5,
        value_name = "N"
    )]
    pub retry_count: u32,
    /// Longest wait for response headers and the longest silence in a body (Go duration: 30s, 1m, 500ms).
    #[arg(
        id = "registry_response_header_timeout",
        long = "registry-response-header-timeout",
        default_value = "30s",
        value_parser = parse_go_duration,
        value_name = "DURATION"
    )]
    pub response_header_timeout: Duration,
}

/// The same values as the flags' defaults: verification on, 5 retries, 30 s.
impl Default for RegistryAuthFlags {
    fn default() -> Self {
        RegistryAuthFlags {
            username: None,
            password: None,
            token: None,
            anon: false,
            ca_cert_paths: Vec::new(),
            verify_certs: true,
            insecure: false,
            retry_count: 5,
            response_header_timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for RegistryAuthFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryAuthFlags")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("anon", &self.anon)
            .field("ca_cert_paths", &self.ca_cert_paths)
            .field("verify_certs", &self.verify_certs)
            .field("insecure", &self.insecure)
            .field("retry_count", &self.retry_count)
            .field("response_header_timeout", &self.response_header_timeout)
            .finish()
    }
}

pub use crate::gotime::parse_go_duration;

impl RegistryAuthFlags {
    /// Client options from the flags, the process environment and the user's Docker config.
    pub fn client_options(&self) -> Result<ClientOptions, RegistryError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let docker_config = docker_config_path(&env);
        self.client_options_from(&env, docker_config.as_deref())
    }

    /// Like [`client_options`](Self::client_options) with explicit inputs (for tests and embedding).
    pub fn client_options_from(
        &self,
        env: &HashMap<String, String>,
        docker_config: Option<&Path>,
    ) -> Result<ClientOptions, RegistryError> {
        // imgpkg's priority: env keychain, IaaS keychains, then flags (every registry), then
        // Docker config.
        let mut keychain = Keychain::from_imgpkg_env(env)?.then(Keychain::from_imgpkg_iaas_env(env)?);
        // imgpkg: IMGPKG_ANON=true (that word only) asks for anonymous access too.
        let anon = self.anon || env.get("IMGPKG_ANON").map(String::as_str) == Some("true");
        let flag_credentials = self.flag_credentials(anon)?;
        match flag_credentials {
            Some(c) => keychain = keychain.then(Keychain::for_all(c)),
            None => {
                if let Some(path) = docker_config {
                    keychain = keychain.then(Keychain::from_docker_config_file(path)?);
                }
            }
        }
        let mut ca_certs_pem = Vec::new();
        for path in &self.ca_cert_paths {
            ca_certs_pem.push(read_ca_file(path)?);
        }
        Ok(ClientOptions {
            keychain,
            ca_certs_pem,
            verify_certs: self.verify_certs,
            allow_plain_http: self.insecure,
            retries: self.retry_count,
            read_timeout: self.response_header_timeout,
            ..ClientOptions::default()
        })
    }

    fn flag_credentials(&self, anon: bool) -> Result<Option<Credentials>, RegistryError> {
        let conflict = |reason: &str| RegistryError::Config {
            what: "registry flags".into(),
            reason: reason.into(),
        };
        if anon && (self.username.is_some() || self.password.is_some() || self.token.is_some()) {
            return Err(conflict(
                "--registry-anon cannot be combined with --registry-username, --registry-password or --registry-token",
            ));
        }
        if self.token.is_some() && (self.username.is_some() || self.password.is_some()) {
            return Err(conflict(
                "--registry-token cannot be combined with --registry-username/--registry-password",
            ));
        }
        if anon {
            return Ok(Some(Credentials::Anonymous));
        }
        if let Some(token) = &self.token {
            return Ok(Some(Credentials::Bearer { token: token.clone() }));
        }
        match (&self.username, &self.password) {
            (Some(u), Some(p)) => Ok(Some(Credentials::Basic {
                username: u.clone(),
                password: p.clone(),
            })),
            (Some(_), None) => Err(conflict(
                "--registry-username was given without --registry-password (or IMGPKG_PASSWORD)",
            )),
            (None, Some(_)) => Err(conflict(
                "--registry-password was given without --registry-username (or IMGPKG_USERNAME)",
            )),
            (None, None) => Ok(None),
        }
    }
}

fn read_ca_file(path: &Path) -> Result<Vec<u8>, RegistryError> {
    let bytes = std::fs::read(path).map_err(|e| RegistryError::CaCert {
        path: path.to_path_buf(),
        reason: format!("{e}; check the path given to --registry-ca-cert-path"),
    })?;
    if !String::from_utf8_lossy(&bytes).contains("-----BEGIN CERTIFICATE-----") {
        return Err(RegistryError::CaCert {
            path: path.to_path_buf(),
            reason: "the file holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        });
    }
    Ok(bytes)
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::auth::tests::env;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        auth: RegistryAuthFlags,
    }

    fn parse(args: &[&str]) -> RegistryAuthFlags {
        Cli::try_parse_from(std::iter::once("pkgr").chain(args.iter().copied()))
            .unwrap()
            .auth
    }

    #[test]
    fn flags_parse_like_imgpkg() {
        let f = parse(&[]);
        assert_eq!(
            format!("{f:?}"),
            format!("{:?}", RegistryAuthFlags::default()),
            "Default matches the flags"
        );
        assert!(f.verify_certs && !f.insecure && !f.anon);
        assert_eq!(f.retry_count, 5);
        assert_eq!(f.response_header_timeout, Duration::from_secs(30));
        assert!(!parse(&["--registry-verify-certs=false"]).verify_certs);
        assert!(parse(&["--registry-verify-certs"]).verify_certs);
        assert!(parse(&["--registry-verify-certs=true"]).verify_certs);
        let f = parse(&[
            "--registry-username",
            "u",
            "--registry-password",
            "p",
            "--registry-ca-cert-path",
            "/a.pem",
            "--registry-ca-cert-path",
            "/b.pem",
            "--registry-insecure",
            "--registry-retry-count",
            "2",
            "--registry-response-header-timeout",
            "1m30s",
        ]);
        assert_eq!(
            f.ca_cert_paths,
            vec![PathBuf::from("/a.pem"), PathBuf::from("/b.pem")]
        );
        assert!(f.insecure);
        assert_eq!(f.retry_count, 2);
        assert_eq!(f.response_header_timeout, Duration::from_secs(90));
        let err = Cli::try_parse_from(["pkgr", "--registry-response-header-timeout", "soon"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid duration \"soon\""), "{err}");
    }

    /// Subcommands flatten these flags next to their own; the ids must not collide.
    #[derive(clap::Parser, Debug)]
    struct CliWithOwnFlags {
        #[arg(long)]
        token: Option<String>,
        #[arg(long)]
        insecure: bool,
        #[command(flatten)]
        auth: RegistryAuthFlags,
    }

    #[test]
    fn flattens_next_to_same_named_fields() {
        let cli =
            CliWithOwnFlags::try_parse_from(["pkgr", "--token", "a", "--registry-token", "b", "--insecure"])
                .unwrap();
        assert_eq!(cli.token.as_deref(), Some("a"));
        assert_eq!(cli.auth.token.as_deref(), Some("b"));
        assert!(cli.insecure && !cli.auth.insecure);
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_go_duration("1h2m3s").unwrap(), Duration::from_secs(3723));
        assert_eq!(parse_go_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "10", "s", "5x", "-1s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn client_options_priority_env_then_flags_then_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("config.json");
        std::fs::write(&docker, r#"{"auths":{"docker-only.io":{"username":"d","password":"dp"},"env.io":{"username":"d","password":"dp"}}}"#).unwrap();
        let e = env(&[
            ("IMGPKG_REGISTRY_HOSTNAME", "env.io"),
            ("IMGPKG_REGISTRY_USERNAME", "e"),
            ("IMGPKG_REGISTRY_PASSWORD", "ep"),
        ]);
        let e_creds = Credentials::Basic {
            username: "e".into(),
            password: "ep".into(),
        };
        let d_creds = Credentials::Basic {
            username: "d".into(),
            password: "dp".into(),
        };

        // No flags: env first, then Docker config.
        let o = RegistryAuthFlags::default()
            .client_options_from(&e, Some(&docker))
            .unwrap();
        assert!(o.verify_certs && !o.allow_plain_http);
        assert_eq!((o.retries, o.read_timeout), (5, Duration::from_secs(30)));
        assert_eq!(o.keychain.resolve("env.io", "x"), e_creds);
        assert_eq!(o.keychain.resolve("docker-only.io", "x"), d_creds);
        assert_eq!(o.keychain.resolve("other.io", "x"), Credentials::Anonymous);

        // Flags apply to every registry not in the env, and hide the Docker config.
        let flags = RegistryAuthFlags {
            username: Some("f".into()),
            password: Some("fp".into()),
            verify_certs: false,
            insecure: true,
            retry_count: 7,
            response_header_timeout: Duration::from_secs(3),
            ..Default::default()
        };
        let o = flags.client_options_from(&e, Some(&docker)).unwrap();
        assert_eq!(o.keychain.resolve("env.io", "x"), e_creds);
        assert_eq!(
            o.keychain.resolve("docker-only.io", "x"),
            Credentials::Basic {
                username: "f".into(),
                password: "fp".into()
            }
        );
        assert!(!o.verify_certs && o.allow_plain_http);
        assert_eq!((o.retries, o.read_timeout), (7, Duration::from_secs(3)));

        // --registry-anon: anonymous everywhere the env does not say otherwise.
        let anon = RegistryAuthFlags {
            anon: true,
            ..Default::default()
        };
        let o = anon.client_options_from(&e, Some(&docker)).unwrap();
        assert_eq!(o.keychain.resolve("docker-only.io", "x"), Credentials::Anonymous);
        // IMGPKG_ANON=true does the same, as imgpkg reads it: that word only.
        let mut with_anon = e.clone();
        with_anon.insert("IMGPKG_ANON".into(), "true".into());
        let o = RegistryAuthFlags::default()
            .client_options_from(&with_anon, Some(&docker))
            .unwrap();
        assert_eq!(o.keychain.resolve("docker-only.io", "x"), Credentials::Anonymous);
        with_anon.insert("IMGPKG_ANON".into(), "1".into());
        let o = RegistryAuthFlags::default()
            .client_options_from(&with_anon, Some(&docker))
            .unwrap();
        assert_ne!(o.keychain.resolve("docker-only.io", "x"), Credentials::Anonymous);

        // Token flag.
        let tok = RegistryAuthFlags {
            token: Some("t".into()),
            ..Default::default()
        };
        let o = tok.client_options_from(&HashMap::new(), None).unwrap();
        assert_eq!(
            o.keychain.resolve("any.io", "x"),
            Credentials::Bearer { token: "t".into() }
        );
    }

    /// imgpkg's order: `IMGPKG_REGISTRY_*`, then the IaaS keychains, then flags and Docker config.
    #[test]
    fn iaas_keychains_sit_between_env_and_flags() {
        let e = env(&[
            ("IMGPKG_ACTIVE_KEYCHAINS", "github"),
            ("GITHUB_TOKEN", "gh-token"),
            ("GITHUB_ACTOR", "octocat"),
            ("IMGPKG_REGISTRY_HOSTNAME", "ghcr.io"),
            ("IMGPKG_REGISTRY_HOSTNAME_1", "ghcr.io:443"),
            ("IMGPKG_REGISTRY_USERNAME_1", "env-user"),
            ("IMGPKG_REGISTRY_PASSWORD_1", "env-pw"),
        ]);
        let flags = RegistryAuthFlags {
            username: Some("flag-user".into()),
            password: Some("flag-pw".into()),
            ..Default::default()
        };
        let o = flags.client_options_from(&e, None).unwrap();
        let basic = |u: &str, p: &str| Credentials::Basic {
            username: u.into(),
            password: p.into(),
        };
        // The env keychain wins where it has credentials (ghcr.io:443)...
        assert_eq!(
            o.keychain.resolve("ghcr.io:443", "x"),
            basic("env-user", "env-pw")
        );
        // ...an env entry without credentials falls through, and the GitHub keychain beats the flags...
        assert_eq!(o.keychain.resolve("ghcr.io", "x"), basic("octocat", "gh-token"));
        // ...and the flags answer for the rest.
        assert_eq!(o.keychain.resolve("other.io", "x"), basic("flag-user", "flag-pw"));
        assert!(
            !o.keychain.runs_programs(),
            "the GitHub keychain only reads a variable: no blocking pool needed"
        );
        let err = RegistryAuthFlags::default()
            .client_options_from(&env(&[("IMGPKG_ACTIVE_KEYCHAINS", "gcr")]), None)
            .unwrap_err();
        assert_eq!(
            go_style(&err),
            "Creating registry keychain: Unable to load keychain for gcr, available keychains [aks, ecr, gke, github]]"
        );
    }

    fn go_style(e: &(dyn std::error::Error + 'static)) -> String {
        match e.source() {
            Some(cause) => format!("{e}: {}", go_style(cause)),
            None => e.to_string(),
        }
    }

    #[test]
    fn client_options_errors() {
        let none = HashMap::new();
        let half = RegistryAuthFlags {
            username: Some("u".into()),
            ..Default::default()
        };
        let err = half.client_options_from(&none, None).unwrap_err().to_string();
        assert!(
            err.contains("--registry-username was given without --registry-password"),
            "{err}"
        );
        let both = RegistryAuthFlags {
            anon: true,
            token: Some("t".into()),
            ..Default::default()
        };
        assert!(
            both.client_options_from(&none, None)
                .unwrap_err()
                .to_string()
                .contains("--registry-anon")
        );
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing-ca.pem");
        let flags = RegistryAuthFlags {
            ca_cert_paths: vec![missing.clone()],
            ..Default::default()
        };
        let err = flags.client_options_from(&none, None).unwrap_err().to_string();
        assert!(
            err.contains(&missing.display().to_string()) && err.contains("--registry-ca-cert-path"),
            "{err}"
        );
        let not_pem = dir.path().join("ca.txt");
        std::fs::write(&not_pem, "hello").unwrap();
        let flags = RegistryAuthFlags {
            ca_cert_paths: vec![not_pem],
            ..Default::default()
        };
        let err = flags.client_options_from(&none, None).unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
        let err = RegistryAuthFlags::default()
            .client_options_from(&env(&[("IMGPKG_REGISTRY_PASWORD", "typo")]), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("IMGPKG_REGISTRY_PASWORD"), "{err}");
    }
}
