//! What to change to get past a registry error, kept apart from how it is said: the CLI names its
//! flags and environment variables, the controller the Secrets and config keys a cluster user
//! edits. A [`RegistryError`] carries its [`Fix`]; each [`Audience`] words it for its reader.
use super::RegistryError;
use super::error::{
    absent_explanation, blob_absent_explanation, client_build_text, connection_text, denied_explanation,
    detail_suffix, invalid_reference_text, no_response_explanation, protocol_text, sentence, tls_text,
    unauthorized_explanation,
};

/// A setting on the user's side that gets past a registry error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fix {
    /// Trust the CA that signed the registry's certificate (or, unsafely, stop verifying it).
    TrustRegistryCa,
    /// Give the machine CA roots to trust: it has none.
    SystemCaRoots,
    /// Give credentials for `registry` (host, or host:port), or other ones.
    Credentials { registry: String },
    /// Reach the registry over plain HTTP, or give it TLS.
    PlainHttp,
    /// Wait longer for the registry's response headers.
    ResponseTimeout,
}

/// A reader of registry errors, with its own words for each [`Fix`].
pub trait Audience {
    /// How this reader makes `fix`, as the clause the message carries (a sentence for
    /// [`Fix::TrustRegistryCa`] and [`Fix::Credentials`], the setting's name for
    /// [`Fix::ResponseTimeout`], a clause after the finding for the others); `None` when the
    /// reader has nothing to change for it.
    fn fix(&self, fix: &Fix) -> Option<String>;
}

impl RegistryError {
    /// What the user can change to get past this error, when something on their side would.
    pub fn fix(&self) -> Option<Fix> {
        match self {
            RegistryError::Tls { .. } => Some(Fix::TrustRegistryCa),
            RegistryError::Unauthorized { registry, .. } => Some(Fix::Credentials {
                registry: registry.clone(),
            }),
            RegistryError::NoResponse { .. } => Some(Fix::ResponseTimeout),
            RegistryError::Connection { fix, .. }
            | RegistryError::Protocol { fix, .. }
            | RegistryError::InvalidReference { fix, .. }
            | RegistryError::ClientBuild { fix, .. } => fix.clone(),
            _ => None,
        }
    }

    /// The message for `audience`: the facts ([`Display`](std::fmt::Display)), with what to
    /// change in the reader's terms where the error has a [`Fix`].
    pub fn worded(&self, audience: &dyn Audience) -> String {
        let Some(hint) = self.fix().and_then(|fix| audience.fix(&fix)) else {
            return self.to_string();
        };
        let hint = Some(hint.as_str());
        match self {
            RegistryError::Tls {
                action,
                registry,
                message,
            } => tls_text(action, registry, message, hint),
            RegistryError::Unauthorized {
                action,
                registry,
                repository,
                anonymous,
                message,
                ..
            } => format!(
                "unauthorized while {action}: {}{}{}",
                unauthorized_explanation(registry, repository, *anonymous),
                detail_suffix(message),
                sentence(hint)
            ),
            RegistryError::NoResponse {
                action,
                registry,
                message,
                ..
            } => format!(
                "no response while {action}: {} ({message})",
                no_response_explanation(registry, hint)
            ),
            RegistryError::Connection {
                action,
                registry,
                message,
                fix,
            } => connection_text(action, registry, message, fix, hint),
            RegistryError::Protocol {
                action,
                registry,
                message,
                ..
            } => protocol_text(action, registry, message, hint),
            RegistryError::InvalidReference { input, reason, .. } => {
                invalid_reference_text(input, reason, hint)
            }
            RegistryError::ClientBuild { message, fix } => client_build_text(message, fix, hint),
            _ => self.to_string(),
        }
    }

    /// What pkgr's message says beyond [`go_text`](Self::go_text) for `audience`: which image
    /// or repository is missing, what to change.
    pub fn explanation(&self, audience: &dyn Audience) -> Option<String> {
        let hint = self.fix().and_then(|fix| audience.fix(&fix));
        Some(match self {
            RegistryError::NoResponse { registry, .. } => no_response_explanation(registry, hint.as_deref()),
            RegistryError::Unauthorized {
                registry,
                repository,
                anonymous,
                ..
            } => format!(
                "{}{}",
                unauthorized_explanation(registry, repository, *anonymous),
                sentence(hint.as_deref())
            ),
            RegistryError::Denied {
                registry, repository, ..
            } => denied_explanation(registry, repository),
            RegistryError::ManifestUnknown { reference, .. } => absent_explanation(reference),
            RegistryError::BlobUnknown {
                repository, digest, ..
            } => blob_absent_explanation(digest, repository),
            RegistryError::NameUnknown { repository, .. } => absent_explanation(repository),
            _ => return None,
        })
    }

    /// The registry error one link of an error chain is, or carries without showing it as a
    /// cause: itself, boxed (`#[source] Box<RegistryError>`), or inside an `io::Error`, whose
    /// `source()` skips what it wraps.
    pub fn in_link<'a>(link: &'a (dyn std::error::Error + 'static)) -> Option<&'a RegistryError> {
        if let Some(error) = link.downcast_ref::<RegistryError>() {
            return Some(error);
        }
        if let Some(error) = link.downcast_ref::<Box<RegistryError>>() {
            return Some(error);
        }
        let inner = link.downcast_ref::<std::io::Error>()?.get_ref()?;
        RegistryError::in_link(inner)
    }

    /// One link of an error chain as `audience` reads it: a registry error [`worded`](Self::worded)
    /// for it, anything else as it displays.
    pub fn link_text(link: &(dyn std::error::Error + 'static), audience: &dyn Audience) -> String {
        match RegistryError::in_link(link) {
            Some(error) => error.worded(audience),
            None => link.to_string(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::registry::GoText;

    /// Marks where each fix goes: `«Fix»`.
    struct Marks;
    impl Audience for Marks {
        fn fix(&self, fix: &Fix) -> Option<String> {
            Some(format!("«{fix:?}»"))
        }
    }

    /// One of every variant, each with its fields filled.
    pub(crate) fn every_variant() -> Vec<RegistryError> {
        let action = || "fetching manifest reg.corp.xyz/repo:1".to_string();
        let registry = || "reg.corp.xyz".to_string();
        vec![
            RegistryError::InvalidReference {
                input: "http://reg.corp.xyz/repo".into(),
                reason: "a reference must not include a protocol prefix".into(),
                fix: Some(Fix::PlainHttp),
            },
            RegistryError::InvalidDigest {
                input: "sha256:x".into(),
                reason: "too short".into(),
            },
            RegistryError::Tls {
                action: action(),
                registry: registry(),
                message: "invalid peer certificate: UnknownIssuer".into(),
            },
            RegistryError::Connection {
                action: action(),
                registry: registry(),
                message: "connection refused".into(),
                fix: None,
            },
            RegistryError::Connection {
                action: action(),
                registry: registry(),
                message: "received corrupt message".into(),
                fix: Some(Fix::PlainHttp),
            },
            RegistryError::NoResponse {
                action: action(),
                registry: registry(),
                message: "operation timed out".into(),
                go_text: "Get \"https://reg.corp.xyz/v2/\": net/http: timeout awaiting response headers"
                    .into(),
            },
            RegistryError::Timeout {
                action: action(),
                registry: registry(),
                message: "read timed out".into(),
            },
            RegistryError::Unauthorized {
                action: action(),
                registry: registry(),
                repository: "repo".into(),
                anonymous: true,
                message: "UNAUTHORIZED: authentication required".into(),
                go_text: GoText::default(),
            },
            RegistryError::Unauthorized {
                action: action(),
                registry: registry(),
                repository: "repo".into(),
                anonymous: false,
                message: String::new(),
                go_text:
                    "GET https://reg.corp.xyz/v2/repo/manifests/1: UNAUTHORIZED: authentication required"
                        .into(),
            },
            RegistryError::Denied {
                action: action(),
                registry: registry(),
                repository: "repo".into(),
                message: "denied".into(),
                go_text: GoText::default(),
            },
            RegistryError::ManifestUnknown {
                action: action(),
                reference: "reg.corp.xyz/repo:1".into(),
                message: "manifest unknown".into(),
                go_text: GoText::default(),
            },
            RegistryError::BlobUnknown {
                action: action(),
                repository: "reg.corp.xyz/repo".into(),
                digest: "sha256:ab".into(),
                message: String::new(),
                go_text: GoText::default(),
            },
            RegistryError::NameUnknown {
                action: action(),
                repository: "reg.corp.xyz/repo".into(),
                message: String::new(),
                go_text: GoText::default(),
            },
            RegistryError::Status {
                action: action(),
                registry: registry(),
                status: 503,
                code: None,
                message: "busy".into(),
                retry_after: None,
                go_text: GoText::default(),
            },
            RegistryError::Protocol {
                action: action(),
                registry: registry(),
                message:
                    "the token realm http://auth.corp.xyz/token uses http, which is not allowed for this host"
                        .into(),
                fix: Some(Fix::PlainHttp),
            },
            RegistryError::DigestMismatch {
                action: action(),
                expected: "sha256:aa".into(),
                actual: "sha256:bb".into(),
            },
            RegistryError::SizeMismatch {
                action: action(),
                expected: 10,
                actual: 4,
            },
            RegistryError::Interrupted {
                action: action(),
                registry: registry(),
                message: "connection reset".into(),
            },
            RegistryError::TooLarge {
                action: action(),
                limit: 4,
            },
            RegistryError::UnsupportedMediaType {
                reference: "reg.corp.xyz/repo:1".into(),
                media_type: "text/plain".into(),
            },
            RegistryError::InvalidManifest {
                reference: "reg.corp.xyz/repo:1".into(),
                reason: "no layers".into(),
            },
            RegistryError::Source {
                action: "uploading blob sha256:ab".into(),
                digest: "sha256:ab".into(),
                message: "file vanished".into(),
            },
            RegistryError::Config {
                what: "registry settings".into(),
                reason: "unusable".into(),
            },
            RegistryError::Keychain(crate::registry::UnknownKeychain { name: "gcr".into() }),
            RegistryError::CaCert {
                path: "/etc/pkgr/ca.pem".into(),
                reason: "No such file".into(),
            },
            RegistryError::ClientBuild {
                message: "unexpected error: No CA certificates were loaded from the system".into(),
                fix: Some(Fix::SystemCaRoots),
            },
            RegistryError::ClientBuild {
                message: "the HTTPS proxy URL is invalid".into(),
                fix: None,
            },
            RegistryError::ForeignBlob {
                digest: "sha256:ab".into(),
                repository: "reg.corp.xyz/repo".into(),
                tried: vec![("https://cdn.example/ab".into(), "HTTP 404".into())],
            },
        ]
    }

    #[test]
    fn the_facts_hold_no_fix_and_each_reader_gets_one_where_the_error_has_one() {
        let mut fixes = Vec::new();
        for error in every_variant() {
            let facts = error.to_string();
            assert!(!facts.contains('«'), "Display is the facts alone: {facts}");
            let worded = error.worded(&Marks);
            match error.fix() {
                Some(fix) => {
                    let mark = format!("«{fix:?}»");
                    assert!(worded.contains(&mark), "{worded}");
                    // The facts stay whole around the hint.
                    let mut without = worded.clone();
                    for wrapped in [". {mark}", " ({mark})", "; {mark}", ": {mark}"] {
                        without = without.replace(&wrapped.replace("{mark}", &mark), "");
                    }
                    assert_eq!(without, facts);
                    fixes.push(fix);
                }
                None => assert_eq!(worded, facts),
            }
        }
        for fix in [
            Fix::TrustRegistryCa,
            Fix::SystemCaRoots,
            Fix::Credentials {
                registry: "reg.corp.xyz".into(),
            },
            Fix::PlainHttp,
            Fix::ResponseTimeout,
        ] {
            assert!(fixes.contains(&fix), "no variant carries {fix:?}");
        }
    }

    #[test]
    fn where_each_fix_goes() {
        let worded: Vec<String> = every_variant().iter().map(|e| e.worded(&Marks)).collect();
        let has = |text: &str| worded.iter().any(|w| w == text);
        assert!(has(
            "TLS error while fetching manifest reg.corp.xyz/repo:1: could not establish a trusted \
             connection to registry reg.corp.xyz: invalid peer certificate: UnknownIssuer. «TrustRegistryCa»"
        ));
        assert!(has(
            "no response while fetching manifest reg.corp.xyz/repo:1: registry reg.corp.xyz sent \
             nothing back within the response timeout («ResponseTimeout»); check that it is up and \
             reachable (operation timed out)"
        ));
        assert!(has(
            "connection to registry reg.corp.xyz failed while fetching manifest reg.corp.xyz/repo:1: \
             received corrupt message (the registry does not seem to speak TLS; «PlainHttp»)"
        ));
        assert!(has(
            "unauthorized while fetching manifest reg.corp.xyz/repo:1: registry reg.corp.xyz asks for \
             credentials, and none were found for repository repo: UNAUTHORIZED: authentication \
             required. «Credentials { registry: \"reg.corp.xyz\" }»"
        ));
    }

    #[test]
    fn the_explanation_goes_with_the_go_words_and_the_readers_fix() {
        let errors = every_variant();
        let unauthorized = errors
            .iter()
            .find(|e| matches!(e, RegistryError::Unauthorized { anonymous: false, .. }))
            .unwrap();
        assert_eq!(
            unauthorized.explanation(&Marks).as_deref(),
            Some(
                "registry reg.corp.xyz rejected the credentials for repository repo. \
                 «Credentials { registry: \"reg.corp.xyz\" }»"
            )
        );
        for error in &errors {
            let Some(explanation) = error.explanation(&Marks) else {
                continue;
            };
            let text = error.worded(&Marks);
            // The Unauthorized message puts the registry's words between the two sentences.
            for part in explanation.split(". ") {
                assert!(text.contains(part), "{text} lacks {part}");
            }
            if let Some(go) = error.go_text() {
                assert!(!text.contains(go), "pkgr's own words: {text}");
            }
        }
    }

    #[test]
    fn a_registry_error_is_found_boxed_and_inside_an_io_error() {
        let error = || RegistryError::Tls {
            action: "a".into(),
            registry: "r".into(),
            message: "m".into(),
        };
        let plain = error();
        let boxed: Box<RegistryError> = Box::new(error());
        let io = std::io::Error::other(error());
        let links: [&(dyn std::error::Error + 'static); 3] = [&plain, &boxed, &io];
        for link in links {
            assert!(
                RegistryError::link_text(link, &Marks).ends_with(". «TrustRegistryCa»"),
                "{link}"
            );
        }
        let other = std::io::Error::other("disk full");
        assert_eq!(RegistryError::link_text(&other, &Marks), "disk full");
    }
}
