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
    /// A plain image where a bundle was asked for.
    #[error(
        "expected a bundle but found a plain image at {reference}: its config has no \
         dev.carvel.imgpkg.bundle label (hint: use -i / an `image` source)"
    )]
    NotABundle { reference: String },
    /// An image that is not what was asked for (layer shape, index, missing files).
    #[error("{0}")]
    Unexpected(String),
    /// A registry operation failed.
    #[error("{action} {reference}")]
    Registry {
        action: &'static str,
        reference: String,
        #[source]
        source: Box<RegistryError>,
        /// imgpkg's words for the step, when imgpkg names it (`Fetching image`).
        imgpkg: Option<&'static str>,
    },
    /// A failure with what was being done around it (which layer, which image).
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<BundleError>,
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

    pub(crate) fn context(self, context: impl Into<String>) -> Self {
        BundleError::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// The message with every cause, on one line (for logs, status and tests).
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            source = cause.source();
        }
        out
    }

    pub(crate) fn registry(action: &'static str, reference: impl ToString, source: RegistryError) -> Self {
        BundleError::Registry {
            action,
            reference: reference.to_string(),
            source: Box::new(source),
            imgpkg: None,
        }
    }

    /// The manifest of the image a command starts from could not be read: imgpkg's
    /// `Fetching image: <registry error>`.
    pub(crate) fn fetching_image(
        action: &'static str,
        reference: impl ToString,
        source: RegistryError,
    ) -> Self {
        BundleError::Registry {
            action,
            reference: reference.to_string(),
            source: Box::new(source),
            imgpkg: Some("Fetching image"),
        }
    }

    /// How imgpkg names this step of the work, where it has words for it.
    pub fn imgpkg_words(&self) -> Option<&'static str> {
        match self {
            BundleError::Registry { imgpkg, .. } => *imgpkg,
            _ => None,
        }
    }
}
