//! `.imgpkg/images.yml` (ImagesLock), BundleLock, ImageLocations and `.imgpkg/bundle.yml`.
use super::BundleError;
use std::collections::BTreeMap;

/// `.imgpkg/images.yml`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ImagesLock {
    pub images: Vec<LockedImage>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct LockedImage {
    /// A digest reference, normalised (`index.docker.io/library/foo@sha256:…`).
    pub image: String,
    pub annotations: BTreeMap<String, String>,
}

impl ImagesLock {
    /// Parse strictly as imgpkg does (unknown fields and tag references are errors).
    pub fn parse(yaml: &[u8]) -> Result<ImagesLock, BundleError> {
        todo!("{}", yaml.len())
    }
    /// The YAML imgpkg writes (`---`, sorted keys).
    pub fn to_yaml(&self) -> String {
        todo!()
    }
}

/// What `push -b --lock-output` and `copy --lock-output` write for a bundle.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct BundleLock {
    pub image: String,
    pub tag: Option<String>,
}

/// The contents of a locations image (`image-locations.yml`).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ImageLocations {
    pub images: Vec<ImageLocation>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct ImageLocation {
    pub image: String,
    pub is_bundle: bool,
}
