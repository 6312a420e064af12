//! Errors reading or writing imgpkg formats.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{0}")]
    Other(String),
}
