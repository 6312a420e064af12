//! OCI distribution client: references, auth, TLS, retries, raw manifests and verified blob streams.
//!
//! Knows nothing of Kubernetes or of imgpkg bundles. `bundle::fetch`, `relocate`, `controller`
//! and the CLI code against these types: [`Reference`] and [`Digest`] (parsing, Docker
//! normalisation), [`Keychain`] / [`RegistryAuthFlags`] (where credentials come from),
//! [`Client`] (manifests as raw verified bytes, streamed blobs, mounts, tags) and
//! [`RegistryError`] (typed, each naming what was done to which reference, with a [`Fix`] that
//! each [`Audience`] words for its reader).
mod auth;
mod client;
mod error;
mod fix;
mod manifest;
mod reference;

pub use auth::{
    Credentials, IaasKeychainKind, Keychain, RegistryAuthFlags, UnknownKeychain, active_keychains,
    docker_config_path, parse_go_duration,
};
pub use client::{BlobSource, BlobStream, Client, ClientOptions, ManifestHead, dump_like_go};
pub use error::{GoText, RegistryError};
#[cfg(test)]
pub(crate) use fix::tests::every_variant;
pub use fix::{Audience, Fix};
pub use manifest::{
    Descriptor, ImageIndex, ImageManifest, MANIFEST_ACCEPT, MEDIA_DOCKER_CONFIG, MEDIA_DOCKER_LAYER_GZIP,
    MEDIA_DOCKER_MANIFEST, MEDIA_DOCKER_MANIFEST_LIST, MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX,
    MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_MANIFEST, Manifest, ManifestBody, is_distributable, is_image_media_type,
    is_index_media_type,
};
pub use reference::{DOCKER_HUB, Digest, Reference};
