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
#[derive(Clone, Default, clap::Args)]
pub struct RegistryAuthFlags {
    /// Username for every registry (prefer IMGPKG_REGISTRY_* variables or docker login for several).
    #[arg(long = "registry-username", env = "IMGPKG_USERNAME")]
    pub username: Option<String>,
    /// Password for every registry.
    #[arg(long = "registry-password", env = "IMGPKG_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Registry bearer token for every registry, sent as is.
    #[arg(long = "registry-token", env = "IMGPKG_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Anonymous access to every registry (ignores Docker config).
    #[arg(long = "registry-anon", env = "IMGPKG_ANON")]
    pub anon: bool,
    /// A PEM file of CA certificates to trust in addition to the system roots (repeatable).
    #[arg(long = "registry-ca-cert-path", value_name = "PATH")]
    pub ca_cert_paths: Vec<PathBuf>,
    /// Verify registry TLS certificates; `--registry-verify-certs=false` turns this off (unsafe).
    #[arg(
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
    #[arg(long = "registry-insecure")]
    pub insecure: bool,
    /// Retries after a failed request (5xx, timeouts, dropped connections).
    #[arg(long = "registry-retry-count", default_value_t = 5, value_name = "N")]
    pub retry_count: u32,
    /// Longest wait for response headers and the longest silence in a body (Go duration: 30s, 1m, 500ms).
    #[arg(long = "registry-response-header-timeout", default_value = "30s", value_parser = parse_go_duration, value_name = "DURATION")]
    pub response_header_timeout: Duration,
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

/// Parse a Go duration as imgpkg flags take them (`30s`, `1m30s`, `500ms`, `1h`).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}: expected a Go duration such as 30s, 1m30s or 500ms");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_end..];
        total += Duration::try_from_secs_f64(value * seconds).map_err(|_| bad())?;
    }
    Ok(total)
}

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
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (h, Some(p.to_string())),
            _ => (hostport, None),
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
/// glob, a longer path prefix beats a shorter one).
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
    /// Credentials to use for `registry` / `repository`.
    pub fn resolve(&self, registry: &str, repository: &str) -> Credentials {
        for layer in &self.layers {
            match layer {
                Layer::All(c) => return c.clone(),
                Layer::Hosts(entries) => {
                    // Entries are kept reverse-sorted, so the first match is the most specific.
                    if let Some(e) = entries.iter().find(|e| e.pattern.matches(registry, repository)) {
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
        match std::fs::read(path) {
            Ok(bytes) => {
                let (keychain, helpers) = Self::parse_docker_config(&bytes).map_err(|e| match e {
                    RegistryError::Config { reason, .. } => RegistryError::Config {
                        what: format!("Docker config {}", path.display()),
                        reason,
                    },
                    other => other,
                })?;
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
        let found = run_credential_helper(helper, registry);
        cache.insert(registry.to_string(), found.clone());
        found
    }
}

/// `docker-credential-<name> get` with the server URL on stdin; `None` when it has nothing.
fn run_credential_helper(name: &str, registry: &str) -> Option<Credentials> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let server = if registry == super::reference::DOCKER_HUB {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    };
    let program = format!("docker-credential-{name}");
    let child = Command::new(&program)
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
