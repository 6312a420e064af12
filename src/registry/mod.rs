//! OCI distribution client: references, auth, TLS, retries, raw manifests and verified blob streams.
//!
//! Knows nothing of Kubernetes or of imgpkg bundles.
//! INTERFACE CONTRACT (skeleton): signatures here are what `bundle::fetch`, `relocate`,
//! `controller` and the CLI code against. Bodies are filled in by the registry work.
mod auth;
mod client;
mod error;
mod manifest;
mod reference;

pub use auth::{Credentials, Keychain, RegistryAuthFlags};
pub use client::{BlobStream, Client, ClientOptions, ManifestHead};
pub use error::RegistryError;
pub use manifest::{
    Descriptor, ImageIndex, ImageManifest, MANIFEST_ACCEPT, MEDIA_DOCKER_CONFIG, MEDIA_DOCKER_LAYER_GZIP,
    MEDIA_DOCKER_MANIFEST, MEDIA_DOCKER_MANIFEST_LIST, MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX,
    MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_MANIFEST, Manifest, ManifestBody,
};
pub use reference::{Digest, Reference};
