//! Manifests kept as raw bytes (digests never change), with a typed view for walking the graph.
use super::{Digest, RegistryError};
use bytes::Bytes;
use std::collections::BTreeMap;

pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The Accept header for every manifest request.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// A manifest exactly as the registry served it, verified against its digest.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub media_type: String,
    pub digest: Digest,
    pub bytes: Bytes,
}

impl Manifest {
    /// The typed view of the bytes (image manifest or index).
    pub fn parse(&self) -> Result<ManifestBody, RegistryError> {
        todo!()
    }
}

#[derive(Clone, Debug)]
pub enum ManifestBody {
    Image(ImageManifest),
    Index(ImageIndex),
}

#[derive(Clone, Debug)]
pub struct ImageManifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Clone, Debug)]
pub struct ImageIndex {
    pub manifests: Vec<Descriptor>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub urls: Vec<String>,
    pub annotations: BTreeMap<String, String>,
}
