//! imgpkg formats: the bundle layer (read/write), ImagesLock, BundleLock, locations image,
//! tarball; plus the registry-facing bundle operations (fetch, localise, locations).
pub mod describe;
pub mod fetch;
pub mod gogzip;
pub mod image;
pub mod layer;
pub mod layer_media;
mod layer_write;
pub mod lock;
pub mod pull;
pub mod push;
pub mod signature;
mod tar_header;
pub mod tarball;

mod error;
pub use error::BundleError;

/// Label on an image config that marks an imgpkg bundle (presence is what counts).
pub const BUNDLE_LABEL: &str = "dev.carvel.imgpkg.bundle";

/// Files of an extracted layer: path relative to the root (`/`-separated) → contents.
pub type FileTree = std::collections::BTreeMap<String, Vec<u8>>;
