//! The HTTP side: auth challenges, token cache, TLS, retries, manifests and streamed blobs.
use super::{Credentials, Descriptor, Digest, Keychain, Manifest, Reference, RegistryError};
use bytes::Bytes;
use futures_util::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};

/// How to reach registries.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub keychain: Keychain,
    /// Extra trusted CA certificates (PEM).
    pub ca_certs_pem: Vec<Vec<u8>>,
    /// `false` turns off TLS verification for every registry (explicit opt-in).
    pub verify_certs: bool,
    /// Hosts (`host` or `host:port`) reached without TLS verification.
    pub skip_tls_verify_hosts: Vec<String>,
    /// Allow plain HTTP to any registry (`--registry-insecure`). Loopback is always allowed.
    pub allow_plain_http: bool,
    /// Retries after the first attempt on 5xx, timeouts and dropped connections.
    pub retries: u32,
    /// Largest manifest accepted, in bytes.
    pub max_manifest_bytes: u64,
    /// Time to establish a connection.
    pub connect_timeout: std::time::Duration,
    /// Time to wait for response headers, and the longest silence while reading a body.
    pub read_timeout: std::time::Duration,
    /// Explicit proxies (the controller's `kapp-controller-config`); `None` uses the environment.
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub no_proxy: Option<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            keychain: Keychain::anonymous(),
            ca_certs_pem: Vec::new(),
            verify_certs: true,
            skip_tls_verify_hosts: Vec::new(),
            allow_plain_http: false,
            retries: 3,
            max_manifest_bytes: 4 * 1024 * 1024,
            connect_timeout: std::time::Duration::from_secs(10),
            read_timeout: std::time::Duration::from_secs(30),
            http_proxy: None,
            https_proxy: None,
            no_proxy: None,
        }
    }
}

/// What a HEAD of a manifest tells.
#[derive(Clone, Debug, PartialEq)]
pub struct ManifestHead {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// A registry client; cheap to clone, share it.
#[derive(Clone, Debug)]
pub struct Client {}

impl Client {
    pub fn new(options: ClientOptions) -> Result<Client, RegistryError> {
        todo!("{options:?}")
    }
    /// HEAD a manifest; `None` when it does not exist (404).
    pub async fn head_manifest(&self, reference: &Reference) -> Result<Option<ManifestHead>, RegistryError> {
        todo!("{reference}")
    }
    /// GET a manifest, verified against the reference's digest (or the returned one) and size-capped.
    pub async fn get_manifest(&self, reference: &Reference) -> Result<Manifest, RegistryError> {
        todo!("{reference}")
    }
    /// PUT raw manifest bytes at the reference's tag or digest; returns the digest.
    pub async fn put_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest, RegistryError> {
        todo!("{reference} {media_type} {}", bytes.len())
    }
    /// Does `repository` (a reference; tag/digest ignored) hold blob `digest`?
    pub async fn blob_exists(&self, repository: &Reference, digest: &Digest) -> Result<bool, RegistryError> {
        todo!("{repository} {digest}")
    }
    /// Stream a blob; the stream fails at the end if size or digest differ from `descriptor`.
    pub async fn get_blob(
        &self,
        repository: &Reference,
        descriptor: &Descriptor,
    ) -> Result<BlobStream, RegistryError> {
        todo!("{repository} {descriptor:?}")
    }
    /// A small blob (a config) read whole, at most `max_bytes`, verified.
    pub async fn get_blob_bytes(
        &self,
        repository: &Reference,
        digest: &Digest,
        max_bytes: u64,
    ) -> Result<Bytes, RegistryError> {
        todo!("{repository} {digest} {max_bytes}")
    }
    /// Cross-repository mount on the same registry; `false` when the registry declined.
    pub async fn mount_blob(
        &self,
        repository: &Reference,
        digest: &Digest,
        from: &Reference,
    ) -> Result<bool, RegistryError> {
        todo!("{repository} {digest} {from}")
    }
    /// Upload a blob from a stream of `size` bytes, verified by the registry against `digest`.
    pub async fn push_blob<S>(
        &self,
        repository: &Reference,
        digest: &Digest,
        size: u64,
        body: S,
    ) -> Result<(), RegistryError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    {
        let _ = body;
        todo!("{repository} {digest} {size}")
    }
    /// Upload a small blob held in memory; returns its digest.
    pub async fn push_blob_bytes(
        &self,
        repository: &Reference,
        bytes: Bytes,
    ) -> Result<Digest, RegistryError> {
        todo!("{repository} {}", bytes.len())
    }
    /// All tags of a repository.
    pub async fn list_tags(&self, repository: &Reference) -> Result<Vec<String>, RegistryError> {
        todo!("{repository}")
    }
    /// The credentials this client would use for `reference`.
    pub fn credentials_for(&self, reference: &Reference) -> Credentials {
        todo!("{reference}")
    }
}

/// A blob being downloaded; yields chunks and checks size and digest at the end.
pub struct BlobStream {
    pub size: u64,
    inner: Pin<Box<dyn Stream<Item = Result<Bytes, RegistryError>> + Send>>,
}

impl Stream for BlobStream {
    type Item = Result<Bytes, RegistryError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}
