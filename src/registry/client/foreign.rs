//! Foreign (non-distributable) layers: a blob the repository lacks, fetched from the `urls` of
//! its descriptor, as go-containerregistry does when imgpkg copies with
//! `--include-non-distributable-layers`.
//!
//! The registry is asked first (a mirror may well hold the layer); only a "not found" answer
//! moves on to the URLs, in order, because any other failure (credentials, a refused TLS
//! certificate) is the user's to see and fix, not to paper over. No credentials travel to a
//! URL: it is not the registry they were given for. Every byte is checked against the
//! descriptor's size and digest, so a URL that serves other content cannot slip it in.
use super::Client;
use super::classify::error_chain;
use super::stream::{BlobStream, Verifying};
use crate::registry::{Descriptor, Reference, RegistryError};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use sha2::{Digest as _, Sha256};

impl Client {
    /// The blob of `descriptor`, streamed: from `repository`, or, when the repository does not
    /// have it, from the first of the descriptor's URLs that answers with its size. The stream
    /// verifies size and digest at its end; a URL that lies fails the transfer there, naming it.
    pub async fn get_blob_or_urls(
        &self,
        repository: &Reference,
        descriptor: &Descriptor,
    ) -> Result<BlobStream, RegistryError> {
        match self.get_blob(repository, descriptor).await {
            Err(e) if e.is_not_found() && !descriptor.urls.is_empty() => {}
            other => return other,
        }
        let mut tried = Vec::new();
        for url in &descriptor.urls {
            match self.open_url(url, descriptor).await {
                Ok(stream) => return Ok(stream),
                Err(why) => tried.push((url.clone(), why)),
            }
        }
        Err(foreign_error(repository, descriptor, tried))
    }

    /// The blob of `descriptor` read whole (at most `max_bytes`) and verified: from
    /// `repository`, or from its URLs in order when the repository does not have it. Read whole,
    /// a URL that serves the wrong bytes is passed over for the next one.
    pub async fn get_blob_bytes_or_urls(
        &self,
        repository: &Reference,
        descriptor: &Descriptor,
        max_bytes: u64,
    ) -> Result<Bytes, RegistryError> {
        match self
            .get_blob_bytes(repository, &descriptor.digest, max_bytes)
            .await
        {
            Err(e) if e.is_not_found() && !descriptor.urls.is_empty() => {}
            other => return other,
        }
        let mut tried = Vec::new();
        for url in &descriptor.urls {
            match self.read_url(url, descriptor, max_bytes).await {
                Ok(bytes) => return Ok(bytes),
                Err(why) => tried.push((url.clone(), why)),
            }
        }
        Err(foreign_error(repository, descriptor, tried))
    }

    async fn read_url(&self, url: &str, descriptor: &Descriptor, max_bytes: u64) -> Result<Bytes, String> {
        if descriptor.size > max_bytes {
            return Err(format!(
                "the layer is {} bytes, more than the {max_bytes} read whole",
                descriptor.size
            ));
        }
        let mut stream = self.open_url(url, descriptor).await?;
        let mut out = BytesMut::with_capacity(descriptor.size as usize);
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.map_err(|e| short_reason(&e))?);
        }
        Ok(out.freeze())
    }

    /// GET `url` without credentials; a success answer whose length (when given) matches the
    /// descriptor becomes a verifying stream.
    async fn open_url(&self, url: &str, descriptor: &Descriptor) -> Result<BlobStream, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a usable URL ({e})"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "scheme {:?} is not supported (only http and https)",
                parsed.scheme()
            ));
        }
        let host = match (parsed.host_str(), parsed.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            (None, _) => return Err("the URL names no host".to_string()),
        };
        let resp = self
            .http_for(&host)
            .get(parsed)
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("it answered HTTP {}", status.as_u16()));
        }
        if let Some(len) = resp.content_length()
            && len != descriptor.size
        {
            return Err(format!(
                "it offered {len} bytes where the descriptor says {}",
                descriptor.size
            ));
        }
        let verifying = Verifying {
            inner: Box::pin(resp.bytes_stream()),
            hasher: Sha256::new(),
            received: 0,
            expected_size: descriptor.size,
            expected_digest: descriptor.digest.clone(),
            action: format!("downloading foreign layer {} from {url}", descriptor.digest),
            registry: host,
            done: false,
        };
        Ok(BlobStream {
            size: descriptor.size,
            inner: Box::pin(verifying),
        })
    }
}

/// Why a URL's content was refused, without repeating the layer and URL the caller names.
fn short_reason(e: &RegistryError) -> String {
    match e {
        RegistryError::DigestMismatch { actual, .. } => {
            format!("it served content with digest {actual}, not the layer's")
        }
        RegistryError::SizeMismatch { expected, actual, .. } => {
            format!("it served {actual} bytes where the descriptor says {expected}")
        }
        other => other.to_string(),
    }
}

fn foreign_error(
    repository: &Reference,
    descriptor: &Descriptor,
    tried: Vec<(String, String)>,
) -> RegistryError {
    RegistryError::ForeignBlob {
        digest: descriptor.digest.to_string(),
        repository: repository.repository_name(),
        tried,
    }
}
