//! Custom resource types: PackageRepository, Package, PackageMetadata and their status.
mod package;
mod repository;

pub use package::*;
pub use repository::*;
