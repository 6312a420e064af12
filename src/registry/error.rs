//! Registry errors: each names the reference (and blob) it concerns.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidReference { input: String, reason: String },
    #[error("{0}")]
    Other(String),
}
