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
use std::sync::{Arc, Mutex};

impl Client {
    /// The blob of `descriptor`, streamed: from `repository`, or, when the repository does not
    /// have it, from the first of the descriptor's URLs that answers with its size. The stream
    /// verifies size and digest at its end; a URL that lies fails the transfer there, naming it.
    /// A caller that tries again should keep a [`BlobSource`] instead, which moves on to the
    /// next URL.
    pub async fn get_blob_or_urls(
        &self,
        repository: &Reference,
        descriptor: &Descriptor,
    ) -> Result<BlobStream, RegistryError> {
        self.blob_source(repository, descriptor).open().await
    }

    /// Where the attempts of one streamed transfer of `descriptor` read it from (see
    /// [`BlobSource`]).
    pub fn blob_source(&self, repository: &Reference, descriptor: &Descriptor) -> BlobSource {
        BlobSource {
            client: self.clone(),
            repository: repository.clone(),
            descriptor: descriptor.clone(),
            state: Arc::default(),
        }
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
            checked: false,
        };
        Ok(BlobStream {
            size: descriptor.size,
            inner: Box::pin(verifying),
        })
    }
}

/// Where the attempts of one streamed transfer read a blob: its repository, then, when the
/// repository does not have it, each URL of its descriptor in turn. Streamed, a URL that serves
/// the wrong bytes is only found out as its last bytes arrive, when the rest went on to the
/// destination already: that URL (or one whose stream broke off) is then passed over, and the next
/// [`open`](BlobSource::open) goes on to the next URL, as the whole read does, instead of asking
/// the same one again. Once every URL has failed, `open` names each one and why.
pub struct BlobSource {
    client: Client,
    repository: Reference,
    descriptor: Descriptor,
    state: Arc<Mutex<UrlState>>,
}

#[derive(Default)]
struct UrlState {
    /// The repository said it does not have the blob: the URLs are in use.
    urls: bool,
    /// The URL the next `open` starts from (the one the last stream came from, while it has
    /// not failed).
    current: usize,
    /// Each URL that failed, and why.
    tried: Vec<(String, String)>,
    /// A URL whose stream failed since the last [`BlobSource::passed_over`].
    passed_over: Option<(String, String)>,
}

impl BlobSource {
    /// A stream of the blob, from the repository or the first URL still in the running.
    pub async fn open(&self) -> Result<BlobStream, RegistryError> {
        let urls = &self.descriptor.urls;
        if !self.state().urls {
            match self.client.get_blob(&self.repository, &self.descriptor).await {
                Err(e) if e.is_not_found() && !urls.is_empty() => self.state().urls = true,
                other => return other,
            }
        }
        loop {
            let at = self.state().current;
            let Some(url) = urls.get(at) else {
                let tried = self.state().tried.clone();
                return Err(foreign_error(&self.repository, &self.descriptor, tried));
            };
            match self.client.open_url(url, &self.descriptor).await {
                Ok(stream) => return Ok(self.watched(stream, at)),
                Err(why) => {
                    let mut state = self.state();
                    state.tried.push((url.clone(), why));
                    state.current = at + 1;
                }
            }
        }
    }

    /// The URL whose stream failed since the last call, and why: the next `open` will not ask
    /// it again. `None` when no URL stream failed (the failure, if any, was elsewhere).
    pub fn passed_over(&self) -> Option<(String, String)> {
        self.state().passed_over.take()
    }

    /// Every URL has failed: another `open` can only report them.
    pub fn exhausted(&self) -> bool {
        let state = self.state();
        state.urls && state.current >= self.descriptor.urls.len()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, UrlState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `stream` from URL number `at`, which is passed over when the stream fails.
    fn watched(&self, stream: BlobStream, at: usize) -> BlobStream {
        let state = self.state.clone();
        let url = self.descriptor.urls[at].clone();
        let size = stream.size;
        let inner = stream.inspect(move |item| {
            if let Err(e) = item {
                let mut state = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if state.current == at {
                    let why = short_reason(e);
                    state.tried.push((url.clone(), why.clone()));
                    state.passed_over = Some((url.clone(), why));
                    state.current = at + 1;
                }
            }
        });
        BlobStream {
            size,
            inner: Box::pin(inner),
        }
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
