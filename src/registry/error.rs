//! Registry errors: each names what was being done, to which reference (and blob).
use std::path::PathBuf;

/// Everything that can go wrong talking to a registry or reading registry configuration.
///
/// `action` fields read like "fetching manifest 127.0.0.1:5000/app:v1" so that every
/// message says what was being done to what.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidReference { input: String, reason: String },

    #[error("invalid digest {input:?}: {reason} (expected sha256:<64 lowercase hex characters>)")]
    InvalidDigest { input: String, reason: String },

    #[error(
        "TLS error while {action}: could not establish a trusted connection to registry {registry}: {message}. \
         If the registry uses a private CA, pass it with --registry-ca-cert-path; \
         --registry-verify-certs=false turns verification off (unsafe)"
    )]
    Tls {
        action: String,
        registry: String,
        message: String,
    },

    #[error("connection to registry {registry} failed while {action}: {message}")]
    Connection {
        action: String,
        registry: String,
        message: String,
    },

    /// No response headers within `--registry-response-header-timeout`: the registry is not
    /// answering, and waiting the same time again would not change that (imgpkg does not retry).
    #[error(
        "no response while {action}: {} ({message})",
        no_response_explanation(registry)
    )]
    NoResponse {
        action: String,
        registry: String,
        message: String,
        /// The error as go-containerregistry (imgpkg's registry client) words it; see
        /// [`RegistryError::go_text`].
        go_text: GoText,
    },

    #[error("timed out while {action}: registry {registry} did not answer in time ({message})")]
    Timeout {
        action: String,
        registry: String,
        message: String,
    },

    #[error(
        "unauthorized while {action}: {}{}. {}",
        unauthorized_explanation(registry, repository, *anonymous),
        detail_suffix(message),
        credentials_hint(registry)
    )]
    Unauthorized {
        action: String,
        registry: String,
        repository: String,
        /// No credentials were sent (none configured for this registry).
        anonymous: bool,
        /// The registry's own words (`UNAUTHORIZED: authentication required`), when it said.
        message: String,
        /// The error as go-containerregistry (imgpkg's registry client) words it; see
        /// [`RegistryError::go_text`].
        go_text: GoText,
    },

    #[error(
        "access denied while {action}: {}{}",
        denied_explanation(registry, repository),
        detail_suffix(message)
    )]
    Denied {
        action: String,
        registry: String,
        repository: String,
        message: String,
        /// The error as go-containerregistry (imgpkg's registry client) words it; see
        /// [`RegistryError::go_text`].
        go_text: GoText,
    },

    #[error(
        "manifest unknown while {action}: {}{}",
        absent_explanation(reference),
        detail_suffix(message)
    )]
    ManifestUnknown {
        action: String,
        reference: String,
        message: String,
        /// The error as go-containerregistry (imgpkg's registry client) words it; see
        /// [`RegistryError::go_text`].
        go_text: GoText,
    },

    #[error(
        "blob unknown while {action}: {}{}",
        blob_absent_explanation(digest, repository),
        detail_suffix(message)
    )]
    BlobUnknown {
        action: String,
        repository: String,
        digest: String,
        message: String,
        /// The error as go-containerregistry (imgpkg's registry client) words it; see
        /// [`RegistryError::go_text`].
        go_text: GoText,
    },

    #[error(
        "repository unknown while {action}: {}{}",
        absent_explanation(repository),
        detail_suffix(message)
    )]
    NameUnknown {
        action: String,
        repository: String,
        message: String,
        /// The error as go-containerregistry (imgpkg's registry client) words it; see
        /// [`RegistryError::go_text`].
        go_text: GoText,
    },

    #[error(
        "registry {registry} answered HTTP {status}{} while {action}{}{}",
        code_suffix(code),
        detail_suffix(message),
        retry_after_suffix(retry_after)
    )]
    Status {
        action: String,
        registry: String,
        status: u16,
        code: Option<String>,
        message: String,
        /// How long the registry asked us to wait (`Retry-After`), when it said.
        retry_after: Option<std::time::Duration>,
        /// The error as go-containerregistry (imgpkg's registry client) words it; see
        /// [`RegistryError::go_text`].
        go_text: GoText,
    },

    #[error("registry {registry} sent an unusable response while {action}: {message}")]
    Protocol {
        action: String,
        registry: String,
        message: String,
    },

    #[error(
        "digest mismatch while {action}: expected {expected}, but the content received has digest {actual}"
    )]
    DigestMismatch {
        action: String,
        expected: String,
        actual: String,
    },

    #[error(
        "size mismatch while {action}: expected {expected} bytes, {}",
        if actual < expected { format!("but the transfer ended after {actual} bytes (short read)") } else { format!("but more than {expected} bytes arrived ({actual} or more)") }
    )]
    SizeMismatch {
        action: String,
        expected: u64,
        actual: u64,
    },

    #[error("transfer interrupted while {action}: {message}")]
    Interrupted {
        action: String,
        registry: String,
        message: String,
    },

    #[error("too large while {action}: the content exceeds the limit of {limit} bytes; refusing to read it")]
    TooLarge { action: String, limit: u64 },

    #[error(
        "unsupported manifest media type {media_type:?} for {reference}: expected an OCI or Docker v2 image manifest or index"
    )]
    UnsupportedMediaType { reference: String, media_type: String },

    #[error("invalid manifest {reference}: {reason}")]
    InvalidManifest { reference: String, reason: String },

    #[error("upload source for blob {digest} failed while {action}: {message}")]
    Source {
        action: String,
        digest: String,
        message: String,
    },

    #[error("invalid registry configuration: {what}: {reason}")]
    Config { what: String, reason: String },

    /// imgpkg's words (`Creating registry keychain: Unable to load keychain for …`): scripts
    /// written for imgpkg match on them.
    #[error("Creating registry keychain")]
    Keychain(#[source] crate::registry::auth::UnknownKeychain),

    #[error("cannot read CA certificate file {}: {reason}", path.display())]
    CaCert { path: PathBuf, reason: String },

    #[error("cannot build the HTTP client: {0}")]
    ClientBuild(String),

    /// A foreign (non-distributable) layer that neither its repository nor any of its URLs
    /// provided.
    #[error(
        "foreign layer {digest} is not in {repository}, and no URL of its descriptor served it: {}; \
         make one of these URLs reachable from here, or push the layer into {repository}",
        tried_list(tried)
    )]
    ForeignBlob {
        digest: String,
        repository: String,
        tried: Vec<(String, String)>,
    },
}

/// An error's text as go-containerregistry words it (see [`RegistryError::go_text`]), behind
/// one pointer: it is rarely read, and errors travel in `Result`s that should stay small.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GoText(Option<Box<GoWords>>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct GoWords(String);

impl GoText {
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref().map(|words| words.0.as_str())
    }
}

impl From<String> for GoText {
    fn from(text: String) -> GoText {
        GoText((!text.is_empty()).then(|| Box::new(GoWords(text))))
    }
}

impl From<&str> for GoText {
    fn from(text: &str) -> GoText {
        GoText::from(text.to_string())
    }
}

fn no_response_explanation(registry: &str) -> String {
    format!(
        "registry {registry} sent nothing back within the response timeout \
         (--registry-response-header-timeout); check that it is up and reachable"
    )
}

fn unauthorized_explanation(registry: &str, repository: &str, anonymous: bool) -> String {
    let what = if anonymous {
        "asks for credentials, and none were found"
    } else {
        "rejected the credentials"
    };
    format!("registry {registry} {what} for repository {repository}")
}

fn credentials_hint(registry: &str) -> String {
    format!(
        "Give credentials with --registry-username/--registry-password (or --registry-token), \
         the IMGPKG_REGISTRY_HOSTNAME/USERNAME/PASSWORD environment variables, or `docker login {registry}`"
    )
}

fn denied_explanation(registry: &str, repository: &str) -> String {
    format!("registry {registry} does not allow this on repository {repository}")
}

fn absent_explanation(what: &str) -> String {
    format!("{what} does not exist in the registry")
}

fn blob_absent_explanation(digest: &str, repository: &str) -> String {
    format!("blob {digest} is not in repository {repository}")
}

fn tried_list(tried: &[(String, String)]) -> String {
    tried
        .iter()
        .map(|(url, why)| format!("{url}: {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn detail_suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn retry_after_suffix(retry_after: &Option<std::time::Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (it asked to be retried after {} s)", d.as_secs()),
        None => String::new(),
    }
}

fn code_suffix(code: &Option<String>) -> String {
    match code {
        Some(c) => format!(" ({c})"),
        None => String::new(),
    }
}

impl RegistryError {
    /// Worth trying again: server-side 5xx/408/429, stalled connections and bodies, dropped
    /// connections. Not [`NoResponse`](Self::NoResponse): a registry that did not answer within
    /// the response timeout is reported at once, as imgpkg does.
    ///
    /// Callers that stream a blob from a source use this to decide whether to re-open the
    /// source and retry the whole transfer (a streamed body cannot be replayed here).
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Connection { .. }
            | RegistryError::Timeout { .. }
            | RegistryError::Interrupted { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            _ => false,
        }
    }

    /// The wait the registry asked for with `Retry-After` on a 429 or 503, when it asked.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            RegistryError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The error as go-containerregistry, imgpkg's registry client, words it, when the request
    /// it answers is known: `GET <url>: MANIFEST_UNKNOWN: manifest unknown; map[Tag:v1]` for
    /// what the registry answered, `Get "<url>": net/http: timeout awaiting response headers`
    /// for a registry that did not answer. Scripts written for imgpkg match these words.
    pub fn go_text(&self) -> Option<&str> {
        let text = match self {
            RegistryError::NoResponse { go_text, .. }
            | RegistryError::Unauthorized { go_text, .. }
            | RegistryError::Denied { go_text, .. }
            | RegistryError::ManifestUnknown { go_text, .. }
            | RegistryError::BlobUnknown { go_text, .. }
            | RegistryError::NameUnknown { go_text, .. }
            | RegistryError::Status { go_text, .. } => go_text,
            _ => return None,
        };
        text.as_str()
    }

    /// What pkgr's message says beyond [`go_text`](Self::go_text): which image or repository
    /// is missing, what to change. Part of the message ([`Display`](std::fmt::Display)).
    pub fn explanation(&self) -> Option<String> {
        Some(match self {
            RegistryError::NoResponse { registry, .. } => no_response_explanation(registry),
            RegistryError::Unauthorized {
                registry,
                repository,
                anonymous,
                ..
            } => format!(
                "{}. {}",
                unauthorized_explanation(registry, repository, *anonymous),
                credentials_hint(registry)
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

    /// A 404-type error (manifest, blob or repository unknown).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            RegistryError::ManifestUnknown { .. }
                | RegistryError::BlobUnknown { .. }
                | RegistryError::NameUnknown { .. }
        ) || matches!(self, RegistryError::Status { status: 404, .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action() -> String {
        "downloading blob sha256:ab from reg.io/app".to_string()
    }

    #[test]
    fn messages_say_what_to_what() {
        let cases: Vec<(RegistryError, &str)> = vec![
            (
                RegistryError::SizeMismatch {
                    action: action(),
                    expected: 10,
                    actual: 4,
                },
                "size mismatch while downloading blob sha256:ab from reg.io/app: expected 10 bytes, but the transfer ended after 4 bytes (short read)",
            ),
            (
                RegistryError::SizeMismatch {
                    action: action(),
                    expected: 10,
                    actual: 11,
                },
                "size mismatch while downloading blob sha256:ab from reg.io/app: expected 10 bytes, but more than 10 bytes arrived (11 or more)",
            ),
            (
                RegistryError::TooLarge {
                    action: "fetching manifest reg.io/app:v1".into(),
                    limit: 4,
                },
                "too large while fetching manifest reg.io/app:v1: the content exceeds the limit of 4 bytes; refusing to read it",
            ),
            (
                RegistryError::Timeout {
                    action: action(),
                    registry: "reg.io".into(),
                    message: "read timed out".into(),
                },
                "timed out while downloading blob sha256:ab from reg.io/app: registry reg.io did not answer in time (read timed out)",
            ),
            (
                RegistryError::Status {
                    action: action(),
                    registry: "reg.io".into(),
                    status: 400,
                    code: Some("DIGEST_INVALID".into()),
                    message: String::new(),
                    retry_after: None,
                    go_text: GoText::default(),
                },
                "registry reg.io answered HTTP 400 (DIGEST_INVALID) while downloading blob sha256:ab from reg.io/app",
            ),
            (
                RegistryError::CaCert {
                    path: "/x/ca.pem".into(),
                    reason: "No such file".into(),
                },
                "cannot read CA certificate file /x/ca.pem: No such file",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
        let tls = RegistryError::Tls {
            action: action(),
            registry: "reg.io".into(),
            message: "UnknownIssuer".into(),
        };
        let text = tls.to_string();
        assert!(
            text.contains("registry reg.io") && text.contains("--registry-ca-cert-path"),
            "{text}"
        );
    }

    #[test]
    fn retryable_and_not_found_classes() {
        let status = |status: u16| RegistryError::Status {
            action: action(),
            registry: "r".into(),
            status,
            code: None,
            message: String::new(),
            retry_after: None,
            go_text: GoText::default(),
        };
        for s in [500, 502, 503, 504, 408, 429] {
            assert!(status(s).is_retryable(), "{s}");
        }
        for s in [400, 401, 403, 404, 405, 409] {
            assert!(!status(s).is_retryable(), "{s}");
        }
        assert!(status(404).is_not_found());
        let unknown = RegistryError::BlobUnknown {
            action: action(),
            repository: "r/app".into(),
            digest: "sha256:ab".into(),
            message: String::new(),
            go_text: GoText::default(),
        };
        assert!(unknown.is_not_found() && !unknown.is_retryable());
        let tls = RegistryError::Tls {
            action: action(),
            registry: "r".into(),
            message: String::new(),
        };
        assert!(
            !tls.is_retryable(),
            "a certificate problem does not go away by retrying"
        );
        let cut = RegistryError::Interrupted {
            action: action(),
            registry: "r".into(),
            message: String::new(),
        };
        assert!(cut.is_retryable());
    }

    #[test]
    fn the_explanation_is_part_of_the_message_and_go_words_are_kept_apart() {
        let errors = [
            RegistryError::NoResponse {
                action: action(),
                registry: "reg.io".into(),
                message: "timed out".into(),
                go_text: "Get \"https://reg.io/v2/\": net/http: timeout awaiting response headers".into(),
            },
            RegistryError::Unauthorized {
                action: action(),
                registry: "reg.io".into(),
                repository: "app".into(),
                anonymous: true,
                message: "UNAUTHORIZED: authentication required".into(),
                go_text: GoText::default(),
            },
            RegistryError::Denied {
                action: action(),
                registry: "reg.io".into(),
                repository: "app".into(),
                message: String::new(),
                go_text: GoText::default(),
            },
            RegistryError::ManifestUnknown {
                action: action(),
                reference: "reg.io/app:v1".into(),
                message: "manifest unknown".into(),
                go_text: "GET https://reg.io/v2/app/manifests/v1: MANIFEST_UNKNOWN: manifest unknown".into(),
            },
            RegistryError::NameUnknown {
                action: action(),
                repository: "reg.io/app".into(),
                message: String::new(),
                go_text: GoText::default(),
            },
        ];
        for error in &errors {
            let explanation = error.explanation().expect("explained");
            let text = error.to_string();
            // The Unauthorized message puts the registry's words between the two sentences.
            for part in explanation.split(". ") {
                assert!(text.contains(part), "{text} lacks {part}");
            }
            if let Some(go) = error.go_text() {
                assert!(!text.contains(go), "pkgr's own words: {text}");
            }
        }
        assert_eq!(errors[1].go_text(), None, "empty: the request is not known");
        assert_eq!(
            errors[3].explanation().as_deref(),
            Some("reg.io/app:v1 does not exist in the registry")
        );
    }
}
