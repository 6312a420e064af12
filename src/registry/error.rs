//! Registry errors: each names what was being done, to which reference (and blob).
//!
//! The message (`Display`) states the facts only. What the user can change about it is a typed
//! [`Fix`]; each reader's words for it are added by [`RegistryError::worded`] (see `fix.rs`), so
//! that the CLI's flags never reach a cluster user, nor Secrets someone at a shell.
use super::fix::Fix;
use std::path::PathBuf;

/// Everything that can go wrong talking to a registry or reading registry configuration.
///
/// `action` fields read like "fetching manifest 127.0.0.1:5000/app:v1" so that every
/// message says what was being done to what.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{}", invalid_reference_text(input, reason, None))]
    InvalidReference {
        input: String,
        reason: String,
        /// [`Fix::PlainHttp`] for a reference written with `http://`.
        fix: Option<Fix>,
    },

    #[error("invalid digest {input:?}: {reason} (expected sha256:<64 lowercase hex characters>)")]
    InvalidDigest { input: String, reason: String },

    /// Fixed by trusting the registry's CA ([`Fix::TrustRegistryCa`]).
    #[error("{}", tls_text(action, registry, message, None))]
    Tls {
        action: String,
        registry: String,
        message: String,
    },

    #[error("{}", connection_text(action, registry, message, fix, None))]
    Connection {
        action: String,
        registry: String,
        message: String,
        /// [`Fix::PlainHttp`] when the registry answered the TLS handshake with something
        /// else (usually plain HTTP).
        fix: Option<Fix>,
    },

    /// No response headers within `--registry-response-header-timeout`: the registry is not
    /// answering, and waiting the same time again would not change that (imgpkg does not retry).
    /// [`Fix::ResponseTimeout`].
    #[error(
        "no response while {action}: {} ({message})",
        no_response_explanation(registry, None)
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

    /// Fixed by credentials ([`Fix::Credentials`]).
    #[error(
        "unauthorized while {action}: {}{}",
        unauthorized_explanation(registry, repository, *anonymous),
        detail_suffix(message)
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

    #[error("{}", protocol_text(action, registry, message, None))]
    Protocol {
        action: String,
        registry: String,
        message: String,
        /// [`Fix::PlainHttp`] for a token realm on plain HTTP where that is not allowed.
        fix: Option<Fix>,
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

    #[error("{}", client_build_text(message, fix, None))]
    ClientBuild {
        message: String,
        /// [`Fix::SystemCaRoots`] when the system has no CA roots.
        fix: Option<Fix>,
    },

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

/// `hint`, where these take one, is a reader's words for the error's [`Fix`] (`None`: the
/// facts alone, as `Display` prints them).
pub(super) fn no_response_explanation(registry: &str, hint: Option<&str>) -> String {
    format!(
        "registry {registry} sent nothing back within the response timeout{}; check that it is up \
         and reachable",
        bracketed(hint)
    )
}

pub(super) fn tls_text(action: &str, registry: &str, message: &str, hint: Option<&str>) -> String {
    format!(
        "TLS error while {action}: could not establish a trusted connection to registry {registry}: \
         {message}{}",
        sentence(hint)
    )
}

pub(super) fn connection_text(
    action: &str,
    registry: &str,
    message: &str,
    fix: &Option<Fix>,
    hint: Option<&str>,
) -> String {
    let not_tls = match fix {
        Some(Fix::PlainHttp) => format!(
            " (the registry does not seem to speak TLS{})",
            hint.map(|h| format!("; {h}")).unwrap_or_default()
        ),
        _ => String::new(),
    };
    format!("connection to registry {registry} failed while {action}: {message}{not_tls}")
}

pub(super) fn protocol_text(action: &str, registry: &str, message: &str, hint: Option<&str>) -> String {
    format!(
        "registry {registry} sent an unusable response while {action}: {message}{}",
        bracketed(hint)
    )
}

pub(super) fn invalid_reference_text(input: &str, reason: &str, hint: Option<&str>) -> String {
    format!("invalid image reference {input:?}: {reason}{}", bracketed(hint))
}

pub(super) fn client_build_text(message: &str, fix: &Option<Fix>, hint: Option<&str>) -> String {
    let roots = match fix {
        Some(Fix::SystemCaRoots) => format!(
            ". pkgr trusts the system's CA bundle (/etc/ssl/certs/ca-certificates.crt on Debian, or \
             SSL_CERT_FILE / SSL_CERT_DIR when set) and found no certificate there{}",
            hint.map(|h| format!(": {h}")).unwrap_or_default()
        ),
        _ => String::new(),
    };
    format!("cannot build the HTTP client: {message}{roots}")
}

/// `. Hint` after a message.
pub(super) fn sentence(hint: Option<&str>) -> String {
    hint.map(|h| format!(". {h}")).unwrap_or_default()
}

/// ` (hint)` after a message.
fn bracketed(hint: Option<&str>) -> String {
    hint.map(|h| format!(" ({h})")).unwrap_or_default()
}

pub(super) fn unauthorized_explanation(registry: &str, repository: &str, anonymous: bool) -> String {
    let what = if anonymous {
        "asks for credentials, and none were found"
    } else {
        "rejected the credentials"
    };
    format!("registry {registry} {what} for repository {repository}")
}

pub(super) fn denied_explanation(registry: &str, repository: &str) -> String {
    format!("registry {registry} does not allow this on repository {repository}")
}

pub(super) fn absent_explanation(what: &str) -> String {
    format!("{what} does not exist in the registry")
}

pub(super) fn blob_absent_explanation(digest: &str, repository: &str) -> String {
    format!("blob {digest} is not in repository {repository}")
}

fn tried_list(tried: &[(String, String)]) -> String {
    tried
        .iter()
        .map(|(url, why)| format!("{url}: {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

pub(super) fn detail_suffix(message: &str) -> String {
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
        assert_eq!(
            tls.to_string(),
            "TLS error while downloading blob sha256:ab from reg.io/app: could not establish a \
             trusted connection to registry reg.io: UnknownIssuer",
            "the facts; what to change is each reader's (fix.rs)"
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
}
