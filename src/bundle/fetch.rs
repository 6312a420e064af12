//! Bundle operations over the registry: resolve, fetch contents, localise images.yml as imgpkg
//! pull does, and read/write locations images.
use super::{
    BundleError, FileTree,
    layer::Limits,
    lock::{ImageLocations, ImagesLock},
};
use crate::registry::{Client, Reference};

/// What was fetched from a registry.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The reference resolved to a digest.
    pub resolved: Reference,
    pub is_bundle: bool,
    pub files: FileTree,
    /// For bundles: `.imgpkg/images.yml`, localised to the bundle's repository when imgpkg would.
    pub images_lock: Option<ImagesLock>,
}

/// Fetch a bundle (`expect_bundle`) or plain image's single layer into memory, localising images.yml.
pub async fn fetch_contents(
    client: &Client,
    reference: &Reference,
    expect_bundle: bool,
    limits: &Limits,
) -> Result<Fetched, BundleError> {
    todo!("{client:?} {reference} {expect_bundle} {limits:?}")
}

/// imgpkg pull's rewrite: locations image, else every digest present in the bundle's repository,
/// else the lock untouched.
pub async fn localize_images_lock(
    client: &Client,
    bundle: &Reference,
    lock: &ImagesLock,
) -> Result<ImagesLock, BundleError> {
    todo!("{client:?} {bundle} {lock:?}")
}

/// The locations image of `bundle` (which must carry a digest), if there is one.
pub async fn read_locations(
    client: &Client,
    bundle: &Reference,
) -> Result<Option<ImageLocations>, BundleError> {
    todo!("{client:?} {bundle}")
}

/// Write the locations image `<repo>:sha256-<hex>.image-locations.imgpkg` for `bundle`.
pub async fn write_locations(
    client: &Client,
    bundle: &Reference,
    locations: &ImageLocations,
) -> Result<(), BundleError> {
    todo!("{client:?} {bundle} {locations:?}")
}
