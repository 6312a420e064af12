//! Bundle contents → Package and PackageMetadata objects: parse, validate, relocate, name.
//! Pure: no network, no cluster.
use crate::api::{Package, PackageMetadata};
use crate::bundle::{FileTree, lock::ImagesLock};

/// A document under `packages/` that is not a Package or PackageMetadata (reported, not applied).
#[derive(Clone, Debug, PartialEq)]
pub struct Skipped {
    pub file: String,
    /// 1-based document index within the file.
    pub document: usize,
    pub api_version: String,
    pub kind: String,
}

/// What a repository's contents make.
#[derive(Clone, Debug, Default)]
pub struct Output {
    pub packages: Vec<Package>,
    pub metadatas: Vec<PackageMetadata>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error("{0}")]
    Other(String),
}

/// Parse `packages/**.y(a)ml`, validate, relocate image references with `images_lock`
/// (already localised; `None` for plain images and inline sources), and name the objects.
pub fn build(files: &FileTree, images_lock: Option<&ImagesLock>) -> Result<Output, RepositoryError> {
    todo!("{} {images_lock:?}", files.len())
}

pub mod versions;
