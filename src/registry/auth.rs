//! Credentials and where they come from: imgpkg flags and env vars, Docker config, Secrets.
use super::{ClientOptions, RegistryError};
use base64::Engine as _;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Credentials for one registry. `Debug` never prints secrets.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub enum Credentials {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// A registry bearer token, sent as is.
    Bearer {
        token: String,
    },
    /// An OAuth2 refresh token (`identitytoken` in Docker config, `IMGPKG_REGISTRY_IDENTITY_TOKEN`),
    /// exchanged at the registry's token server for access tokens.
    IdentityToken {
        token: String,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => {
                write!(f, "Basic {{ username: {username:?}, password: <redacted> }}")
            }
            Credentials::Bearer { .. } => f.write_str("Bearer { token: <redacted> }"),
            Credentials::IdentityToken { .. } => f.write_str("IdentityToken { token: <redacted> }"),
        }
    }
}

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
    /// Anonymous access to every registry (ignores Docker config).
    #[arg(id = "registry_anon", long = "registry-anon", env = "IMGPKG_ANON")]
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
        value_name = "BOOL"
    )]
    pub verify_certs: bool,
    /// Allow plain HTTP to registries (HTTPS is still tried first).
    #[arg(id = "registry_insecure", long = "registry-insecure")]
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
        // imgpkg's priority: env keychain, then flags (every registry), then Docker config.
        let mut keychain = Keychain::from_imgpkg_env(env)?;
        let flag_credentials = self.flag_credentials()?;
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

    fn flag_credentials(&self) -> Result<Option<Credentials>, RegistryError> {
        let conflict = |reason: &str| RegistryError::Config {
            what: "registry flags".into(),
            reason: reason.into(),
        };
        if self.anon && (self.username.is_some() || self.password.is_some() || self.token.is_some()) {
            return Err(conflict(
                "--registry-anon cannot be combined with --registry-username, --registry-password or --registry-token",
            ));
        }
        if self.token.is_some() && (self.username.is_some() || self.password.is_some()) {
            return Err(conflict(
                "--registry-token cannot be combined with --registry-username/--registry-password",
            ));
        }
        if self.anon {
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

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub fn docker_config_path(env: &HashMap<String, String>) -> Option<PathBuf> {
    if let Some(dir) = env.get("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(Path::new(dir).join("config.json"));
    }
    env.get("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| Path::new(h).join(".docker").join("config.json"))
}

/// A host pattern as imgpkg and the Kubernetes credential provider match them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct HostPattern {
    /// Normalised text (`host[:port][/path]`), used for imgpkg's reverse-sorted ordering.
    text: String,
    labels: Vec<String>,
    port: Option<String>,
    path: String,
}

impl HostPattern {
    fn parse(raw: &str) -> Result<HostPattern, String> {
        let mut s = raw.trim();
        for scheme in ["https://", "http://"] {
            if let Some(rest) = s.strip_prefix(scheme) {
                s = rest;
            }
        }
        let s = s.trim_end_matches('/');
        let (hostport, path) = match s.split_once('/') {
            Some((h, p)) => (h, p.trim_end_matches('/')),
            None => (s, ""),
        };
        // `/v1/` and `/v2/` are API paths, not repository prefixes (Docker Hub's key is .../v1/).
        let path = match path {
            "v1" | "v2" => "",
            p => p.strip_prefix("v2/").unwrap_or(p),
        };
        if hostport.is_empty() {
            return Err(format!("host pattern {raw:?} has no host"));
        }
        let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
            // IPv6 literal: [::1] or [::1]:5000
            let Some((addr, after)) = rest.split_once(']') else {
                return Err(format!("host pattern {raw:?} has an unclosed '['"));
            };
            (
                &hostport[..addr.len() + 2],
                after.strip_prefix(':').map(str::to_string),
            )
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p.to_string())),
                None => (hostport, None),
            }
        };
        let host = host.to_ascii_lowercase();
        let host = match host.as_str() {
            "docker.io" | "registry-1.docker.io" => super::reference::DOCKER_HUB.to_string(),
            _ => host,
        };
        let text = match (&port, path) {
            (None, "") => host.clone(),
            (Some(p), "") => format!("{host}:{p}"),
            (None, path) => format!("{host}/{path}"),
            (Some(p), path) => format!("{host}:{p}/{path}"),
        };
        Ok(HostPattern {
            text,
            labels: host.split('.').map(str::to_string).collect(),
            port,
            path: path.to_string(),
        })
    }

    fn is_glob(&self) -> bool {
        self.labels.iter().any(|l| l.contains('*'))
    }

    fn matches(&self, registry: &str, repository: &str) -> bool {
        let (host, port) = match registry.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, Some(p)),
            _ => (registry, None),
        };
        if self.port.as_deref() != port {
            return false;
        }
        let target: Vec<&str> = host.split('.').collect();
        if target.len() != self.labels.len() {
            return false;
        }
        if !self
            .labels
            .iter()
            .zip(&target)
            .all(|(p, t)| glob_match(p, &t.to_ascii_lowercase()))
        {
            return false;
        }
        self.path.is_empty()
            || repository == self.path
            || repository
                .strip_prefix(&self.path)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// Shell-style `*` matching within one DNS label.
fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((prefix, rest)) => {
            let Some(text) = text.strip_prefix(prefix) else {
                return false;
            };
            (0..=text.len()).any(|i| text.is_char_boundary(i) && glob_match(rest, &text[i..]))
        }
    }
}

#[derive(Clone, Debug)]
struct HostEntry {
    pattern: HostPattern,
    credentials: Credentials,
}

#[derive(Clone, Debug)]
enum Layer {
    /// The same credentials for every registry; ends the search.
    All(Credentials),
    /// Host patterns; the most specific match wins, no match falls through to the next layer.
    Hosts(Vec<HostEntry>),
    /// Docker credential helpers; no answer falls through to the next layer.
    Helpers(CredentialHelpers),
}

/// Resolves credentials for a (registry, repository), most specific match first.
///
/// Layers are consulted in order (imgpkg: environment, flags, Docker config); within a layer
/// the most specific host pattern wins (imgpkg's reverse-sorted order: an exact host beats a
/// glob, a longer path prefix beats a shorter one). A layer whose answer is anonymous passes
/// the question on, except [`Keychain::for_all`] (`--registry-anon` means anonymous everywhere).
#[derive(Clone, Debug, Default)]
pub struct Keychain {
    layers: Vec<Layer>,
}

impl Keychain {
    /// Anonymous for every registry.
    pub fn anonymous() -> Keychain {
        Keychain::default()
    }
    /// One set of credentials for every registry.
    pub fn for_all(credentials: Credentials) -> Keychain {
        Keychain {
            layers: vec![Layer::All(credentials)],
        }
    }
    /// Add credentials for one host pattern (`host[:port]`, optional path prefix, `*.` globs).
    ///
    /// An unusable pattern (empty host) is ignored with a warning; use
    /// [`try_with_host`](Self::try_with_host) to get the error instead.
    pub fn with_host(self, host: &str, credentials: Credentials) -> Keychain {
        match self.clone().try_with_host(host, credentials) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring credentials entry");
                self
            }
        }
    }
    /// Like [`with_host`](Self::with_host), failing on an unusable pattern.
    pub fn try_with_host(mut self, host: &str, credentials: Credentials) -> Result<Keychain, RegistryError> {
        let pattern = HostPattern::parse(host).map_err(|reason| RegistryError::Config {
            what: "registry credentials".into(),
            reason,
        })?;
        let entry = HostEntry { pattern, credentials };
        match self.layers.last_mut() {
            Some(Layer::Hosts(entries)) => {
                entries.push(entry);
                entries.sort_by(|a, b| {
                    (a.pattern.is_glob(), &b.pattern.text).cmp(&(b.pattern.is_glob(), &a.pattern.text))
                });
            }
            _ => self.layers.push(Layer::Hosts(vec![entry])),
        }
        Ok(self)
    }
    /// This keychain, then `fallback` for registries it does not cover.
    pub fn then(mut self, fallback: Keychain) -> Keychain {
        self.layers.extend(fallback.layers);
        self
    }
    /// Whether [`resolve`](Self::resolve) may run a Docker credential helper (a blocking call).
    pub fn runs_programs(&self) -> bool {
        self.layers.iter().any(|l| matches!(l, Layer::Helpers(_)))
    }
    /// Credentials to use for `registry` / `repository`.
    ///
    /// May run a Docker credential helper (once per registry, then cached); async callers
    /// check [`runs_programs`](Self::runs_programs) and move the call off the runtime.
    pub fn resolve(&self, registry: &str, repository: &str) -> Credentials {
        for layer in &self.layers {
            match layer {
                Layer::All(c) => return c.clone(),
                Layer::Hosts(entries) => {
                    // Entries are kept reverse-sorted, so the first match is the most specific.
                    // An anonymous answer falls through, as in ggcr's multi-keychain.
                    if let Some(e) = entries.iter().find(|e| e.pattern.matches(registry, repository))
                        && e.credentials != Credentials::Anonymous
                    {
                        return e.credentials.clone();
                    }
                }
                Layer::Helpers(helpers) => {
                    if let Some(c) = helpers.resolve(registry) {
                        return c;
                    }
                }
            }
        }
        Credentials::Anonymous
    }

    /// imgpkg's env keychain: `IMGPKG_REGISTRY_{HOSTNAME,USERNAME,PASSWORD,IDENTITY_TOKEN,REGISTRY_TOKEN}[_SUFFIX]`.
    pub fn from_imgpkg_env(env: &HashMap<String, String>) -> Result<Keychain, RegistryError> {
        const PREFIX: &str = "IMGPKG_REGISTRY_";
        const FIELDS: [&str; 5] = [
            "HOSTNAME",
            "USERNAME",
            "PASSWORD",
            "IDENTITY_TOKEN",
            "REGISTRY_TOKEN",
        ];
        let mut groups: BTreeMap<String, BTreeMap<&str, (String, String)>> = BTreeMap::new();
        let mut names: Vec<&String> = env.keys().filter(|k| k.starts_with(PREFIX)).collect();
        names.sort();
        for name in names {
            let rest = &name[PREFIX.len()..];
            if rest == "AZURE_CR_CONFIG" {
                continue;
            }
            let field = FIELDS
                .iter()
                .find(|f| rest == **f || rest.starts_with(&format!("{f}_")));
            let Some(field) = field else {
                return Err(RegistryError::Config {
                    what: format!("environment variable {name}"),
                    reason: format!(
                        "unknown variable; expected {PREFIX}HOSTNAME, USERNAME, PASSWORD, IDENTITY_TOKEN or \
                         REGISTRY_TOKEN, optionally followed by _SUFFIX to group several registries"
                    ),
                });
            };
            let suffix = rest[field.len()..].to_string();
            groups
                .entry(suffix)
                .or_default()
                .insert(field, (name.clone(), env[name].clone()));
        }
        let mut keychain = Keychain::default();
        for (suffix, fields) in groups {
            let var = |f: &str| format!("{PREFIX}{f}{suffix}");
            let Some((_, hostname)) = fields.get("HOSTNAME") else {
                return Err(RegistryError::Config {
                    what: format!("environment variables with suffix {suffix:?}"),
                    reason: format!(
                        "credentials are set but {} is missing; set it to the registry host",
                        var("HOSTNAME")
                    ),
                });
            };
            let value = |f: &str| fields.get(f).map(|(_, v)| v.clone());
            let credentials = match (
                value("USERNAME"),
                value("PASSWORD"),
                value("IDENTITY_TOKEN"),
                value("REGISTRY_TOKEN"),
            ) {
                (_, _, _, Some(token)) => Credentials::Bearer { token },
                (_, _, Some(token), None) => Credentials::IdentityToken { token },
                (Some(username), Some(password), None, None) => Credentials::Basic { username, password },
                (Some(_), None, None, None) | (None, Some(_), None, None) => {
                    return Err(RegistryError::Config {
                        what: format!("environment variable {}", var("HOSTNAME")),
                        reason: format!("{} and {} must be set together", var("USERNAME"), var("PASSWORD")),
                    });
                }
                (None, None, None, None) => Credentials::Anonymous,
            };
            // HOSTNAME may list several hosts separated by commas.
            for host in hostname.split(',').map(str::trim).filter(|h| !h.is_empty()) {
                keychain =
                    keychain
                        .try_with_host(host, credentials.clone())
                        .map_err(|e| RegistryError::Config {
                            what: format!("environment variable {}", var("HOSTNAME")),
                            reason: e.to_string(),
                        })?;
            }
        }
        Ok(keychain)
    }

    /// A Docker `config.json` file; a missing file gives an empty keychain.
    pub fn from_docker_config_file(path: &Path) -> Result<Keychain, RegistryError> {
        Self::from_docker_config_file_with(path, None)
    }

    fn from_docker_config_file_with(
        path: &Path,
        helper_search_path: Option<std::ffi::OsString>,
    ) -> Result<Keychain, RegistryError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let (keychain, mut helpers) = Self::parse_docker_config(&bytes).map_err(|e| match e {
                    RegistryError::Config { reason, .. } => RegistryError::Config {
                        what: format!("Docker config {}", path.display()),
                        reason,
                    },
                    other => other,
                })?;
                helpers.search_path = helper_search_path;
                // Docker consults credHelpers/credsStore before the auths entries.
                if helpers.is_empty() {
                    Ok(keychain)
                } else {
                    Ok(Keychain {
                        layers: vec![Layer::Helpers(helpers)],
                    }
                    .then(keychain))
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Keychain::default()),
            Err(e) => Err(RegistryError::Config {
                what: format!("Docker config {}", path.display()),
                reason: e.to_string(),
            }),
        }
    }

    /// Docker `config.json` content (also the `.dockerconfigjson` key of a Kubernetes Secret).
    ///
    /// `auths` entries with `auth` (base64 `user:password`), `username`/`password`,
    /// `identitytoken` or `registrytoken`. Credential helpers are ignored here (a Secret must
    /// not make us run programs); [`from_docker_config_file`](Self::from_docker_config_file) runs them.
    pub fn from_docker_config_json(bytes: &[u8]) -> Result<Keychain, RegistryError> {
        Ok(Self::parse_docker_config(bytes)?.0)
    }

    fn parse_docker_config(bytes: &[u8]) -> Result<(Keychain, CredentialHelpers), RegistryError> {
        #[derive(serde::Deserialize)]
        struct Config {
            #[serde(default)]
            auths: BTreeMap<String, AuthEntry>,
            #[serde(default, rename = "credHelpers")]
            cred_helpers: BTreeMap<String, String>,
            #[serde(default, rename = "credsStore")]
            creds_store: Option<String>,
        }
        #[derive(serde::Deserialize, Default)]
        struct AuthEntry {
            auth: Option<String>,
            username: Option<String>,
            password: Option<String>,
            identitytoken: Option<String>,
            registrytoken: Option<String>,
        }
        let what = || "Docker config JSON".to_string();
        let config: Config = serde_json::from_slice(bytes).map_err(|e| RegistryError::Config {
            what: what(),
            reason: format!("not valid JSON of the expected shape: {e}"),
        })?;
        let mut keychain = Keychain::default();
        for (host, entry) in config.auths {
            let bad = |reason: String| RegistryError::Config {
                what: what(),
                reason: format!("entry auths[{host:?}]: {reason}"),
            };
            let credentials = if let Some(token) = entry.registrytoken.filter(|t| !t.is_empty()) {
                Credentials::Bearer { token }
            } else if let Some(token) = entry.identitytoken.filter(|t| !t.is_empty()) {
                Credentials::IdentityToken { token }
            } else if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|_| bad("the \"auth\" field is not valid base64".into()))?;
                let decoded = String::from_utf8(decoded)
                    .map_err(|_| bad("the \"auth\" field is not UTF-8 text".into()))?;
                let Some((username, password)) = decoded.split_once(':') else {
                    return Err(bad("the \"auth\" field must encode username:password".into()));
                };
                Credentials::Basic {
                    username: username.to_string(),
                    password: password.to_string(),
                }
            } else {
                match (entry.username, entry.password) {
                    (Some(username), Some(password)) => Credentials::Basic { username, password },
                    _ => continue,
                }
            };
            keychain = keychain
                .try_with_host(&host, credentials)
                .map_err(|e| bad(e.to_string()))?;
        }
        let helpers = CredentialHelpers {
            per_host: config
                .cred_helpers
                .into_iter()
                .filter_map(|(host, name)| HostPattern::parse(&host).ok().map(|p| (p.text, name)))
                .collect(),
            store: config.creds_store.filter(|s| !s.is_empty()),
            cache: Default::default(),
            search_path: None,
        };
        Ok((keychain, helpers))
    }
}

/// Docker credential helpers named in a config file (`credHelpers`, `credsStore`).
///
/// Run lazily (once per registry, then cached) because a helper may prompt or be slow, and
/// only for a config file the user owns: a Secret's config never names programs to run.
#[derive(Clone, Debug, Default)]
struct CredentialHelpers {
    per_host: BTreeMap<String, String>,
    store: Option<String>,
    cache: std::sync::Arc<std::sync::Mutex<HashMap<String, Option<Credentials>>>>,
    /// Where to look for `docker-credential-*` instead of `$PATH` (tests).
    search_path: Option<std::ffi::OsString>,
}

impl CredentialHelpers {
    fn is_empty(&self) -> bool {
        self.per_host.is_empty() && self.store.is_none()
    }

    fn resolve(&self, registry: &str) -> Option<Credentials> {
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

/// `docker-credential-<name> get` with the server URL on stdin; `None` when it has nothing.
fn run_credential_helper(
    name: &str,
    registry: &str,
    search_path: Option<&std::ffi::OsStr>,
) -> Option<Credentials> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let server = if registry == super::reference::DOCKER_HUB {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    };
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
        Err(e) => {
            tracing::warn!(helper = %program, registry, error = %e, "cannot run Docker credential helper; using no credentials");
            return None;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        tracing::debug!(helper = %program, registry, "Docker credential helper has no credentials");
        return None;
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
            tracing::warn!(helper = %program, registry, error = %e, "Docker credential helper answered with unexpected output");
            return None;
        }
    };
    Some(if reply.username == "<token>" {
        Credentials::IdentityToken { token: reply.secret }
    } else {
        Credentials::Basic {
            username: reply.username,
            password: reply.secret,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn basic(u: &str) -> Credentials {
        Credentials::Basic {
            username: u.into(),
            password: format!("{u}-pw"),
        }
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn most_specific_host_pattern_wins() {
        let k = Keychain::anonymous()
            .with_host("*.docker.io", basic("glob"))
            .with_host("index.docker.io", basic("exact"))
            .with_host("gcr.io", basic("gcr"))
            .with_host("gcr.io/team", basic("team"))
            .with_host("gcr.io/team/app", basic("app"))
            .with_host("reg.io:5000", basic("port"))
            .with_host("*.corp.xyz", basic("corp"));
        assert_eq!(k.resolve("index.docker.io", "library/ubuntu"), basic("exact"));
        assert_eq!(k.resolve("auth.docker.io", "x"), basic("glob"));
        assert_eq!(k.resolve("gcr.io", "team/app"), basic("app"));
        assert_eq!(k.resolve("gcr.io", "team/app/sub"), basic("app"));
        assert_eq!(
            k.resolve("gcr.io", "team/application"),
            basic("team"),
            "prefix matches whole components"
        );
        assert_eq!(k.resolve("gcr.io", "other"), basic("gcr"));
        assert_eq!(k.resolve("reg.io:5000", "x"), basic("port"));
        assert_eq!(
            k.resolve("reg.io", "x"),
            Credentials::Anonymous,
            "the port must match"
        );
        assert_eq!(k.resolve("final-registry.corp.xyz", "apps/b"), basic("corp"));
        assert_eq!(
            k.resolve("a.b.corp.xyz", "x"),
            Credentials::Anonymous,
            "a glob covers one label"
        );
        assert_eq!(k.resolve("quay.io", "x"), Credentials::Anonymous);
    }

    #[test]
    fn patterns_drop_scheme_and_api_paths() {
        let k = Keychain::anonymous()
            .with_host("https://index.docker.io/v1/", basic("hub"))
            .with_host("http://reg.io:5000/v2/", basic("reg"))
            .with_host("docker.io", basic("ignored-duplicate-of-hub"));
        // docker.io normalises to index.docker.io; the reverse-sorted order picks one of them
        // deterministically, and both are the Hub.
        assert!(matches!(
            k.resolve("index.docker.io", "u/app"),
            Credentials::Basic { .. }
        ));
        assert_eq!(k.resolve("reg.io:5000", "any/thing"), basic("reg"));
        let v6 = Keychain::anonymous()
            .with_host("[::1]:5000", basic("v6port"))
            .with_host("[::1]", basic("v6"));
        assert_eq!(v6.resolve("[::1]:5000", "x"), basic("v6port"));
        assert_eq!(v6.resolve("[::1]", "x"), basic("v6"));
        assert_eq!(v6.resolve("[::1]:6000", "x"), Credentials::Anonymous);
        assert!(Keychain::anonymous().try_with_host("[::1", basic("x")).is_err());
    }

    #[test]
    fn layers_fall_through_in_order() {
        let env_layer = Keychain::anonymous().with_host("reg.io", basic("env"));
        let all = env_layer.clone().then(Keychain::for_all(basic("flags")));
        assert_eq!(all.resolve("reg.io", "x"), basic("env"));
        assert_eq!(all.resolve("other.io", "x"), basic("flags"));
        let docker = Keychain::anonymous().with_host("other.io", basic("docker"));
        let chain = env_layer.then(docker);
        assert_eq!(chain.resolve("other.io", "x"), basic("docker"));
        assert_eq!(chain.resolve("third.io", "x"), Credentials::Anonymous);
        // An anonymous host entry does not hide a later layer; an anonymous for_all does.
        let anon_entry = Keychain::anonymous().with_host("other.io", Credentials::Anonymous);
        let docker = Keychain::anonymous().with_host("other.io", basic("docker"));
        assert_eq!(
            anon_entry.then(docker.clone()).resolve("other.io", "x"),
            basic("docker")
        );
        assert_eq!(
            Keychain::for_all(Credentials::Anonymous)
                .then(docker)
                .resolve("other.io", "x"),
            Credentials::Anonymous
        );
        assert_eq!(
            Keychain::anonymous().resolve("reg.io", "x"),
            Credentials::Anonymous
        );
        assert!(
            Keychain::anonymous()
                .try_with_host("https:///", basic("x"))
                .is_err()
        );
    }

    #[test]
    fn imgpkg_env_with_suffixes() {
        let k = Keychain::from_imgpkg_env(&env(&[
            ("IMGPKG_REGISTRY_HOSTNAME", "reg.io"),
            ("IMGPKG_REGISTRY_USERNAME", "u0"),
            ("IMGPKG_REGISTRY_PASSWORD", "p0"),
            ("IMGPKG_REGISTRY_HOSTNAME_1", "https://gcr.io/v2/"),
            ("IMGPKG_REGISTRY_USERNAME_1", "u1"),
            ("IMGPKG_REGISTRY_PASSWORD_1", "p1"),
            ("IMGPKG_REGISTRY_HOSTNAME_TOK", "tok.io"),
            ("IMGPKG_REGISTRY_REGISTRY_TOKEN_TOK", "t"),
            ("IMGPKG_REGISTRY_HOSTNAME_ID", "id.io"),
            ("IMGPKG_REGISTRY_IDENTITY_TOKEN_ID", "refresh"),
            ("IMGPKG_REGISTRY_AZURE_CR_CONFIG", "/etc/azure.json"),
            ("IMGPKG_USERNAME", "not-the-env-keychain"),
            ("HOME", "/root"),
        ]))
        .unwrap();
        assert_eq!(
            k.resolve("reg.io", "x"),
            Credentials::Basic {
                username: "u0".into(),
                password: "p0".into()
            }
        );
        assert_eq!(
            k.resolve("gcr.io", "x"),
            Credentials::Basic {
                username: "u1".into(),
                password: "p1".into()
            }
        );
        assert_eq!(
            k.resolve("tok.io", "x"),
            Credentials::Bearer { token: "t".into() }
        );
        assert_eq!(
            k.resolve("id.io", "x"),
            Credentials::IdentityToken {
                token: "refresh".into()
            }
        );
        assert_eq!(k.resolve("else.io", "x"), Credentials::Anonymous);
    }

    #[test]
    fn imgpkg_env_errors_name_the_variable() {
        let err = Keychain::from_imgpkg_env(&env(&[("IMGPKG_REGISTRY_TOKEN", "t")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("environment variable IMGPKG_REGISTRY_TOKEN") && err.contains("unknown"),
            "{err}"
        );
        let err = Keychain::from_imgpkg_env(&env(&[("IMGPKG_REGISTRY_USER_2", "u")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("IMGPKG_REGISTRY_USER_2"), "{err}");
        let err = Keychain::from_imgpkg_env(&env(&[
            ("IMGPKG_REGISTRY_USERNAME_A", "u"),
            ("IMGPKG_REGISTRY_PASSWORD_A", "p"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("IMGPKG_REGISTRY_HOSTNAME_A is missing"), "{err}");
        let err = Keychain::from_imgpkg_env(&env(&[
            ("IMGPKG_REGISTRY_HOSTNAME_B", "r.io"),
            ("IMGPKG_REGISTRY_USERNAME_B", "u"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("IMGPKG_REGISTRY_PASSWORD_B must be set together"),
            "{err}"
        );
        assert!(!err.contains("\"u\""), "{err}");
    }

    #[test]
    fn docker_config_entries() {
        let json = br#"{
            "auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOmh1Yi1wdw=="},
                "reg.io:5000": {"username": "ru", "password": "rp"},
                "acr.io": {"identitytoken": "refresh-me"},
                "tok.io": {"registrytoken": "tok"},
                "empty.io": {}
            },
            "credHelpers": {"gcr.io": "gcloud"},
            "HttpHeaders": {"X": "y"}
        }"#;
        let k = Keychain::from_docker_config_json(json).unwrap();
        assert_eq!(
            k.resolve("index.docker.io", "u/app"),
            Credentials::Basic {
                username: "hub".into(),
                password: "hub-pw".into()
            }
        );
        assert_eq!(
            k.resolve("reg.io:5000", "x"),
            Credentials::Basic {
                username: "ru".into(),
                password: "rp".into()
            }
        );
        assert_eq!(
            k.resolve("acr.io", "x"),
            Credentials::IdentityToken {
                token: "refresh-me".into()
            }
        );
        assert_eq!(
            k.resolve("tok.io", "x"),
            Credentials::Bearer { token: "tok".into() }
        );
        assert_eq!(k.resolve("empty.io", "x"), Credentials::Anonymous);
        // A Secret's config never runs credential helpers.
        assert_eq!(k.resolve("gcr.io", "x"), Credentials::Anonymous);
    }

    #[test]
    fn docker_config_errors() {
        let err = Keychain::from_docker_config_json(b"{").unwrap_err().to_string();
        assert!(
            err.contains("Docker config JSON") && err.contains("not valid JSON"),
            "{err}"
        );
        let err = Keychain::from_docker_config_json(br#"{"auths":{"r.io":{"auth":"%%%"}}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("auths[\"r.io\"]") && err.contains("base64"), "{err}");
        let no_colon = base64::engine::general_purpose::STANDARD.encode("userpass");
        let json = format!(r#"{{"auths":{{"r.io":{{"auth":"{no_colon}"}}}}}}"#);
        let err = Keychain::from_docker_config_json(json.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("username:password"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let missing = Keychain::from_docker_config_file(&dir.path().join("none.json")).unwrap();
        assert_eq!(missing.resolve("r.io", "x"), Credentials::Anonymous);
        let bad = dir.path().join("config.json");
        std::fs::write(&bad, "not json").unwrap();
        let err = Keychain::from_docker_config_file(&bad).unwrap_err().to_string();
        assert!(err.contains(&bad.display().to_string()), "{err}");
    }

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

    #[test]
    fn debug_output_is_redacted() {
        let c = Credentials::Basic {
            username: "alice".into(),
            password: "hunter2".into(),
        };
        let k = Keychain::for_all(c.clone())
            .then(Keychain::anonymous().with_host(
                "r.io",
                Credentials::Bearer {
                    token: "tok-secret".into(),
                },
            ))
            .then(Keychain::anonymous().with_host(
                "s.io",
                Credentials::IdentityToken {
                    token: "refresh-secret".into(),
                },
            ));
        let flags = RegistryAuthFlags {
            username: Some("alice".into()),
            password: Some("hunter2".into()),
            token: Some("tok-secret".into()),
            ..RegistryAuthFlags::default()
        };
        let options = crate::registry::ClientOptions {
            keychain: k.clone(),
            ..Default::default()
        };
        for text in [
            format!("{c:?}"),
            format!("{k:?}"),
            format!("{flags:?}"),
            format!("{options:?}"),
        ] {
            for secret in ["hunter2", "tok-secret", "refresh-secret"] {
                assert!(!text.contains(secret), "{secret} leaked in {text}");
            }
            assert!(text.contains("redacted") || text.contains("Anonymous"), "{text}");
        }
        assert!(format!("{c:?}").contains("alice"), "the username is not a secret");
    }

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

    #[test]
    fn docker_config_location() {
        assert_eq!(
            docker_config_path(&env(&[("DOCKER_CONFIG", "/cfg"), ("HOME", "/home/u")])),
            Some(PathBuf::from("/cfg/config.json"))
        );
        assert_eq!(
            docker_config_path(&env(&[("HOME", "/home/u")])),
            Some(PathBuf::from("/home/u/.docker/config.json"))
        );
        assert_eq!(docker_config_path(&env(&[])), None);
    }
}
