//! Errors of a copy: each names the image (and blob) it concerns and what to do about it.
use crate::bundle::BundleError;
use crate::bundle::tarball::TarballError;
use crate::registry::{Digest, RegistryError};

type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum RelocateError {
    #[error("{0}")]
    Usage(String),
    #[error("{action}")]
    Registry {
        action: String,
        #[source]
        source: Box<RegistryError>,
        /// imgpkg's words for the step, when imgpkg names it (`Fetching image`).
        imgpkg: Option<&'static str>,
    },
    #[error("{action}")]
    Bundle {
        action: String,
        #[source]
        source: Box<BundleError>,
    },
    #[error(transparent)]
    Tarball(#[from] Box<TarballError>),
    /// A layer the tarball lacks, which the repository the image was exported from (on the
    /// destination registry) did not give either; imgpkg's sentence (in `missing`) first.
    #[error("{missing}; nor could it be taken from {origin}, where the image was exported from: {why}")]
    NotInTarballNorOrigin {
        missing: Box<TarballError>,
        origin: String,
        why: String,
    },
    // imgpkg's sentences first and whole: scripts written for imgpkg match them.
    #[error(
        "Expected bundle image but found plain image (hint: Did you use -i instead of -b?): {reference} is not a bundle"
    )]
    NotABundle { reference: String },
    #[error(
        "Expected bundle flag when copying a bundle (hint: Use -b instead of -i for bundles): {reference} is a bundle"
    )]
    IsABundle { reference: String },
    #[error(
        "Unable to copy bundles using an Images Lock file: {image} is a bundle (hint: copy it with -b, or use its BundleLock)"
    )]
    BundleInImagesLock { image: String },
    #[error("{what} is not usable: {reason}")]
    Invalid { what: String, reason: String },
    #[error(
        "copying blob {digest} of image {image} to {destination} failed after {attempts} attempt(s); \
         running the same command again skips what already arrived"
    )]
    Blob {
        image: String,
        digest: Digest,
        destination: String,
        attempts: u32,
        #[source]
        source: Cause,
    },
    #[error(
        "the destination {reference} answered digest {actual} after the push of {expected}; the registry rewrote the manifest"
    )]
    DigestChanged {
        reference: String,
        expected: Digest,
        actual: Digest,
    },
    /// Every `.sig` lookup the registry refused, gathered (imgpkg's `Unable to retrieve …`).
    #[error(transparent)]
    Signatures(super::signatures::SignatureLookupError),
    #[error("refusing to copy (--verify-key): nothing was copied")]
    Unverified(#[source] Box<crate::verify::VerifyError>),
    #[error("a copy task stopped unexpectedly: {0}")]
    Task(String),
}

impl RelocateError {
    pub(crate) fn registry(action: impl Into<String>, source: RegistryError) -> RelocateError {
        RelocateError::Registry {
            action: action.into(),
            source: Box::new(source),
            imgpkg: None,
        }
    }
    /// The manifest of an image the copy starts from could not be read: imgpkg's
    /// `Fetching image: <registry error>`.
    pub(crate) fn fetching_image(action: impl Into<String>, source: RegistryError) -> RelocateError {
        RelocateError::Registry {
            action: action.into(),
            source: Box::new(source),
            imgpkg: Some("Fetching image"),
        }
    }
    /// How imgpkg names this step of the work, where it has words for it.
    pub fn imgpkg_words(&self) -> Option<&'static str> {
        match self {
            RelocateError::Registry { imgpkg, .. } => *imgpkg,
            _ => None,
        }
    }
    pub(crate) fn bundle(action: impl Into<String>, source: BundleError) -> RelocateError {
        RelocateError::Bundle {
            action: action.into(),
            source: Box::new(source),
        }
    }
}

impl From<TarballError> for RelocateError {
    fn from(e: TarballError) -> RelocateError {
        RelocateError::Tarball(Box::new(e))
    }
}
