//! The keychain: which credentials go to which registry and repository, from imgpkg's
//! `IMGPKG_REGISTRY_*` variables, flags and Docker config files.
use super::Credentials;
use super::helpers::CredentialHelpers;
use super::iaas::IaasKeychains;
use crate::registry::RegistryError;
use base64::Engine as _;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

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
            "docker.io" | "registry-1.docker.io" => crate::registry::DOCKER_HUB.to_string(),
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
    /// imgpkg's IaaS keychains (GitHub, GKE, ECR, AKS); no answer falls through.
    Iaas(IaasKeychains),
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
    /// Whether [`resolve`](Self::resolve) may block: run a Docker credential helper or ask
    /// the GCE metadata server.
    pub fn runs_programs(&self) -> bool {
        self.layers.iter().any(|l| match l {
            Layer::Helpers(_) => true,
            Layer::Iaas(k) => k.may_block(),
            Layer::All(_) | Layer::Hosts(_) => false,
        })
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
                Layer::Iaas(keychains) => {
                    if let Some(c) = keychains.resolve(registry) {
                        return c;
                    }
                }
            }
        }
        Credentials::Anonymous
    }

    /// imgpkg's IaaS keychains as `IMGPKG_ENABLE_IAAS_AUTH` and `IMGPKG_ACTIVE_KEYCHAINS` in
    /// `env` turn them on (none by default), reading `GITHUB_TOKEN`, `GITHUB_ACTOR`,
    /// `GCE_METADATA_HOST` and `PATH` from `env` too. An unknown keychain name is refused here,
    /// before any request, with imgpkg's message.
    pub fn from_imgpkg_iaas_env(env: &HashMap<String, String>) -> Result<Keychain, RegistryError> {
        let keychains = IaasKeychains::from_env(env).map_err(RegistryError::Keychain)?;
        Ok(match keychains {
            Some(keychains) => Keychain {
                layers: vec![Layer::Iaas(keychains)],
            },
            None => Keychain::anonymous(),
        })
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

    pub(super) fn from_docker_config_file_with(
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
#[cfg(test)]
mod tests {
    use super::*;

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
}
