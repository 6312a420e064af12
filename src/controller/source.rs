//! The registry side of a reconcile behind a small trait: resolve, list tags, fetch contents.
//!
//! The controller only sees image references as strings and bundle contents as files, so the
//! reconciler can be tested against a fake that counts its calls.
use super::config::{CONFIG_SECRET, ConfigError, ControllerConfig, apply_config};
use super::secret::RegistryAuth;
use crate::bundle::{self, FileTree, layer::Limits, lock::ImagesLock};
use crate::registry::{Client, ClientOptions, Keychain, Reference, RegistryError};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};

/// A boxed future, so the traits stay object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a fetch produced.
#[derive(Clone, Debug, Default)]
pub struct Contents {
    pub is_bundle: bool,
    pub files: FileTree,
    /// A bundle's `.imgpkg/images.yml`, localised as imgpkg pull does.
    pub images_lock: Option<ImagesLock>,
}

/// A registry-side failure (boxed: registry errors carry references and keep reconcile errors small).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Registry(Box<RegistryError>),
    #[error(transparent)]
    Bundle(Box<bundle::BundleError>),
    #[error("{0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl From<RegistryError> for SourceError {
    fn from(error: RegistryError) -> Self {
        SourceError::Registry(Box::new(error))
    }
}

impl From<bundle::BundleError> for SourceError {
    fn from(error: bundle::BundleError) -> Self {
        SourceError::Bundle(Box::new(error))
    }
}

/// Makes registry sessions with a repository's credentials.
pub trait Source: Send + Sync {
    fn session(&self, auth: &RegistryAuth) -> Result<Arc<dyn Session>, SourceError>;

    /// `kapp-controller-config` was created, changed or (`None`) deleted: later sessions use it.
    /// Returns whether anything a session uses changed. Sources without settings ignore it.
    fn reconfigure(&self, _config: Option<&ControllerConfig>) -> Result<bool, ConfigError> {
        Ok(false)
    }
}

/// One reconcile's view of the registry.
pub trait Session: Send + Sync {
    /// The digest (`sha256:…`) `image` (with a tag) points at; `None` when the tag does not exist.
    fn resolve<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<Option<String>, SourceError>>;
    /// Every tag of `repository` (`registry/path`, no tag).
    fn list_tags<'a>(&'a self, repository: &'a str) -> BoxFuture<'a, Result<Vec<String>, SourceError>>;
    /// Pull `image` (`repository@digest`); a bundle's images.yml comes back localised.
    fn fetch<'a>(
        &'a self,
        image: &'a str,
        expect_bundle: bool,
    ) -> BoxFuture<'a, Result<Contents, SourceError>>;
    /// Is `image` (`repository@digest`) signed, as cosign signs, by one of `keys`, over a payload
    /// for its digest carrying `annotations`? `Ok`: what vouched for it; `Err`: why not, every
    /// signature tried (or why none could be read), for people.
    fn verify<'a>(
        &'a self,
        image: &'a str,
        keys: &'a [crate::verify::PublicKey],
        annotations: &'a std::collections::BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<String, String>> {
        let _ = (keys, annotations);
        Box::pin(async move { Err(format!("{image}: this source cannot read signatures")) })
    }
}

/// The real registry, through `registry::Client` and `bundle::fetch`.
#[derive(Debug)]
pub struct RegistrySource {
    /// From flags; `kapp-controller-config` is layered on top of these.
    base: ClientOptions,
    current: RwLock<ClientOptions>,
    pub limits: Limits,
    /// One client per set of credentials, kept across reconciles so that a periodic resync reuses
    /// its connections, TLS set-up and bearer tokens (until they expire): one manifest request,
    /// not a token exchange each time. Emptied when `kapp-controller-config` changes; a changed
    /// Secret is different credentials, so it gets a client of its own.
    sessions: Mutex<HashMap<RegistryAuth, Arc<RegistrySession>>>,
}

/// Credential sets kept at most; beyond that the cache starts afresh (rotated Secrets leave old
/// entries behind).
const MAX_CACHED_SESSIONS: usize = 64;

/// Bounds on what one repository may expand to (SPEC Reconcile 3).
pub fn default_limits() -> Limits {
    Limits {
        max_bytes: 256 * 1024 * 1024,
        max_files: 100_000,
        max_depth: 32,
    }
}

impl RegistrySource {
    /// A source using `options` (from flags) until [`Source::reconfigure`] adds the config Secret.
    pub fn new(options: ClientOptions) -> RegistrySource {
        RegistrySource {
            current: RwLock::new(options.clone()),
            base: options,
            limits: default_limits(),
            sessions: Mutex::default(),
        }
    }

    /// What the next session will use: the flags plus the current `kapp-controller-config`.
    pub fn options(&self) -> ClientOptions {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The parts of the options `kapp-controller-config` sets, to tell a real change from a resync.
fn configured(options: &ClientOptions) -> impl PartialEq + '_ {
    (
        &options.ca_certs_pem,
        &options.skip_tls_verify_hosts,
        &options.http_proxy,
        &options.https_proxy,
        &options.no_proxy,
    )
}

impl Source for RegistrySource {
    fn reconfigure(&self, config: Option<&ControllerConfig>) -> Result<bool, ConfigError> {
        let mut options = self.base.clone();
        if let Some(config) = config {
            let ignored = apply_config(config, &mut options)?;
            if !ignored.is_empty() {
                tracing::debug!(keys = ?ignored, "keys of {CONFIG_SECRET} that pkgr does not use");
            }
        }
        // A PEM or proxy URL that cannot be used is refused here, not at every later reconcile.
        Client::new(options.clone()).map_err(|source| ConfigError::Unusable {
            kind: config.map_or(super::config::ConfigKind::Secret, |c| c.kind),
            namespace: config.map(|c| c.namespace.clone()).unwrap_or_default(),
            source: Box::new(source),
        })?;
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        let changed = configured(&current) != configured(&options);
        *current = options;
        if changed {
            self.sessions.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
        Ok(changed)
    }

    fn session(&self, auth: &RegistryAuth) -> Result<Arc<dyn Session>, SourceError> {
        // Held while a client is built, so a config change cannot slip in between.
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(session) = sessions.get(auth) {
            return Ok(session.clone());
        }
        let mut options = self.options();
        options.keychain = keychain(auth);
        let session = Arc::new(RegistrySession {
            client: Client::new(options)?,
            limits: self.limits.clone(),
        });
        if sessions.len() >= MAX_CACHED_SESSIONS {
            sessions.clear();
        }
        sessions.insert(auth.clone(), session.clone());
        Ok(session)
    }
}

/// Secret credentials as a keychain: host-specific entries, or one set for every registry.
fn keychain(auth: &RegistryAuth) -> Keychain {
    let mut keychain = Keychain::anonymous();
    if let Some(all) = auth.entries.iter().find(|e| e.host.is_none()) {
        keychain = Keychain::for_all(all.credentials.clone());
    }
    for entry in &auth.entries {
        if let Some(host) = &entry.host {
            keychain = keychain.with_host(host, entry.credentials.clone());
        }
    }
    keychain
}

#[derive(Debug)]
struct RegistrySession {
    client: Client,
    limits: Limits,
}

impl Session for RegistrySession {
    fn resolve<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<Option<String>, SourceError>> {
        Box::pin(async move {
            let reference = Reference::parse(image)?;
            let head = self.client.head_manifest(&reference).await?;
            Ok(head.map(|h| h.digest.to_string()))
        })
    }

    fn list_tags<'a>(&'a self, repository: &'a str) -> BoxFuture<'a, Result<Vec<String>, SourceError>> {
        Box::pin(async move {
            let reference = Reference::parse_repository(repository)?;
            Ok(self.client.list_tags(&reference).await?)
        })
    }

    fn fetch<'a>(
        &'a self,
        image: &'a str,
        expect_bundle: bool,
    ) -> BoxFuture<'a, Result<Contents, SourceError>> {
        Box::pin(async move {
            let reference = Reference::parse(image)?;
            let fetched =
                match bundle::fetch::fetch_contents(&self.client, &reference, expect_bundle, &self.limits)
                    .await
                {
                    // Said as the reconciler says it (naming spec.fetch.image), not as the CLI does.
                    Err(bundle::BundleError::NotABundle { .. }) => return Ok(Contents::default()),
                    other => other?,
                };
            Ok(Contents {
                is_bundle: fetched.is_bundle,
                files: fetched.files,
                images_lock: fetched.images_lock,
            })
        })
    }

    fn verify<'a>(
        &'a self,
        image: &'a str,
        keys: &'a [crate::verify::PublicKey],
        annotations: &'a std::collections::BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(self.verify_signed(image, keys, annotations))
    }
}

impl RegistrySession {
    async fn verify_signed(
        &self,
        image: &str,
        keys: &[crate::verify::PublicKey],
        annotations: &std::collections::BTreeMap<String, String>,
    ) -> Result<String, String> {
        use crate::verify::{SignatureSource, Subject, verify};
        let reference = Reference::parse(image)
            .map_err(|e| format!("{image}: {}", e.worded(&super::audience::ClusterUser)))?;
        let digest = reference
            .digest()
            .cloned()
            .ok_or_else(|| format!("{image} names no digest"))?;
        let subject = Subject::in_registry(&reference, digest);
        match verify(
            SignatureSource::Registry(&self.client),
            &subject,
            keys,
            annotations,
        )
        .await
        {
            Ok(v) => Ok(format!(
                "{} signed ({} signature {}, {} key {})",
                v.subject.name, v.tag, v.layer, v.key_kind, v.key
            )),
            Err(error) => Err(super::audience::chain(&error)),
        }
    }
}

/// An image reference split without a registry round trip: `name[:tag][@digest]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageParts {
    /// `registry/path` as written.
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Split `image` into name, tag and digest (a `:` after the last `/` starts the tag, so a
/// registry port is never mistaken for one).
pub fn split_image(image: &str) -> ImageParts {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest.to_string())),
        None => (image, None),
    };
    let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    match rest[slash..].rfind(':') {
        Some(colon) => {
            let at = slash + colon;
            ImageParts {
                name: rest[..at].to_string(),
                tag: Some(rest[at + 1..].to_string()),
                digest,
            }
        }
        None => ImageParts {
            name: rest.to_string(),
            tag: None,
            digest,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_secret(pairs: &[(&str, &str)]) -> k8s_openapi::api::core::v1::Secret {
        use k8s_openapi::api::core::v1::Secret;
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), k8s_openapi::ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn config_changes_reach_later_sessions_and_deletion_restores_the_flags() {
        let mut flags = ClientOptions::default();
        flags.ca_certs_pem.push(b"from --registry-ca-cert-path".to_vec());
        let source = RegistrySource::new(flags);

        let first = config_secret(&[
            ("dangerousSkipTLSVerify", "reg.corp.xyz"),
            ("httpsProxy", "http://p:3128"),
        ]);
        assert!(source.reconfigure(Some(&ControllerConfig::from(&first))).unwrap());
        let options = source.options();
        assert_eq!(options.skip_tls_verify_hosts, ["reg.corp.xyz"]);
        assert_eq!(options.https_proxy.as_deref(), Some("http://p:3128"));
        assert_eq!(options.ca_certs_pem, [b"from --registry-ca-cert-path".to_vec()]);

        assert!(
            !source.reconfigure(Some(&ControllerConfig::from(&first))).unwrap(),
            "a resync of the same Secret is no change"
        );
        let edited = config_secret(&[("dangerousSkipTLSVerify", "other.corp.xyz")]);
        assert!(
            source
                .reconfigure(Some(&ControllerConfig::from(&edited)))
                .unwrap()
        );
        assert_eq!(
            source.options().skip_tls_verify_hosts,
            ["other.corp.xyz"],
            "replaced, not added to"
        );
        assert_eq!(source.options().https_proxy, None);

        assert!(source.reconfigure(None).unwrap());
        let options = source.options();
        assert!(options.skip_tls_verify_hosts.is_empty());
        assert_eq!(options.ca_certs_pem.len(), 1, "the flag's CA stays");

        source.reconfigure(Some(&ControllerConfig::from(&first))).unwrap();
        let mut broken = config_secret(&[("dangerousSkipTLSVerify", "third.corp.xyz")]);
        broken
            .data
            .as_mut()
            .unwrap()
            .insert("noProxy".into(), k8s_openapi::ByteString(vec![0xff, 0xfe]));
        assert!(
            source
                .reconfigure(Some(&ControllerConfig::from(&broken)))
                .is_err()
        );
        let bad_pem = config_secret(&[(
            "caCerts",
            "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
        )]);
        let err = source
            .reconfigure(Some(&ControllerConfig::from(&bad_pem)))
            .unwrap_err();
        assert!(
            crate::controller::error::full_chain(&err).contains("not valid PEM"),
            "{}",
            crate::controller::error::full_chain(&err)
        );
        let bad_proxy = config_secret(&[("httpsProxy", "http://[::1")]);
        assert!(
            source
                .reconfigure(Some(&ControllerConfig::from(&bad_proxy)))
                .is_err()
        );
        assert_eq!(
            source.options().skip_tls_verify_hosts,
            ["reg.corp.xyz"],
            "a broken Secret leaves the last good settings in place"
        );
    }

    #[test]
    fn sessions_are_kept_per_credentials_until_the_config_changes() {
        use crate::controller::secret::AuthEntry;
        use crate::registry::Credentials;
        let source = RegistrySource::new(ClientOptions::default());
        let auth = |password: &str| RegistryAuth {
            entries: vec![AuthEntry {
                host: None,
                credentials: Credentials::Basic {
                    username: "u".into(),
                    password: password.into(),
                },
            }],
        };
        let first = source.session(&auth("p")).unwrap();
        let again = source.session(&auth("p")).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the same credentials reuse the client"
        );
        let rotated = source.session(&auth("q")).unwrap();
        assert!(!Arc::ptr_eq(&first, &rotated), "other credentials get their own");
        let config = config_secret(&[("httpsProxy", "http://p:3128")]);
        assert!(
            source
                .reconfigure(Some(&ControllerConfig::from(&config)))
                .unwrap()
        );
        let after = source.session(&auth("p")).unwrap();
        assert!(!Arc::ptr_eq(&first, &after), "a config change builds new clients");
        assert!(
            !source
                .reconfigure(Some(&ControllerConfig::from(&config)))
                .unwrap()
        );
        assert!(
            Arc::ptr_eq(&after, &source.session(&auth("p")).unwrap()),
            "a resync of the config keeps them"
        );
    }

    #[test]
    fn splits_tags_digests_and_ports() {
        assert_eq!(
            split_image("127.0.0.1:5000/apps/repo:1.0.0"),
            ImageParts {
                name: "127.0.0.1:5000/apps/repo".into(),
                tag: Some("1.0.0".into()),
                digest: None
            }
        );
        assert_eq!(
            split_image("127.0.0.1:5000/apps/repo"),
            ImageParts {
                name: "127.0.0.1:5000/apps/repo".into(),
                tag: None,
                digest: None
            }
        );
        assert_eq!(
            split_image("r.example/a@sha256:ab"),
            ImageParts {
                name: "r.example/a".into(),
                tag: None,
                digest: Some("sha256:ab".into())
            }
        );
        assert_eq!(
            split_image("r.example/a:v1@sha256:ab"),
            ImageParts {
                name: "r.example/a".into(),
                tag: Some("v1".into()),
                digest: Some("sha256:ab".into())
            }
        );
        assert_eq!(split_image("ubuntu").name, "ubuntu");
    }
}
