//! Errors reading or writing imgpkg formats.
use crate::registry::RegistryError;
use std::path::PathBuf;

/// Every failure of the bundle layer. Messages say what was being done and to what; the cause
/// (an I/O or registry error) is the `source`, so callers can print the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A local file or directory could not be read or written.
    #[error("{action} {path:?}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An input given to `push` breaks imgpkg's rules (symlink, duplicate path, `.imgpkg` layout).
    #[error("{0}")]
    Input(String),
    /// A layer entry that may not be extracted (unsafe path, link, device, unsupported type).
    #[error("layer entry {entry:?}: {rule}")]
    UnsafeEntry { entry: String, rule: String },
    /// A layer expands beyond a hard limit.
    #[error("layer exceeds the limit of {limit}{at}", at = entry.as_deref().map(|e| format!(" at entry {e:?}")).unwrap_or_default())]
    LimitExceeded { limit: String, entry: Option<String> },
    /// A layer that is not a readable gzip tar.
    #[error("reading the layer tar{at}", at = entry.as_deref().map(|e| format!(" at entry {e:?}")).unwrap_or_default())]
    Corrupt {
        entry: Option<String>,
        #[source]
        source: std::io::Error,
    },
    /// A YAML or JSON document (images.yml, a lock file, a config) that does not follow its format.
    #[error("{what}: {reason}")]
    Format { what: String, reason: String },
    /// An image that is not what was asked for (bundle vs plain image, layer shape, index).
    #[error("{0}")]
    Unexpected(String),
    /// A registry operation failed.
    #[error("{action} {reference}")]
    Registry {
        action: &'static str,
        reference: String,
        #[source]
        source: RegistryError,
    },
    #[error("{0}")]
    Other(String),
}

impl BundleError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BundleError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn unsafe_entry(entry: impl Into<String>, rule: impl Into<String>) -> Self {
        BundleError::UnsafeEntry {
            entry: entry.into(),
            rule: rule.into(),
        }
    }

    pub(crate) fn format(what: impl Into<String>, reason: impl Into<String>) -> Self {
        BundleError::Format {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
