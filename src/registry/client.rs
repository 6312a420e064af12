//! The HTTP side: auth challenges, token cache, TLS, retries, manifests and streamed blobs.
//!
//! Built directly on `reqwest` (the copy oci-client already brings) rather than on
//! `oci_client::Client`, because relocation and the controller need control that client does
//! not give: manifests as raw bytes read under a size cap, blobs streamed with constant memory
//! and verified while streaming, HEAD-then-mount decisions left to the caller, bounded retries
//! that know a streamed upload cannot be replayed, and typed errors naming the reference.
use super::manifest::effective_media_type;
use super::{Credentials, Descriptor, Digest, Keychain, MANIFEST_ACCEPT, Manifest, Reference, RegistryError};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt as _};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::hash::{BuildHasher as _, Hasher as _};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How to reach registries.
#[derive(Clone)]
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

/// CA bundles are summarised (they are long and not interesting in logs); the keychain
/// prints redacted credentials.
impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("keychain", &self.keychain)
            .field(
                "ca_certs_pem",
                &format_args!("{} bundle(s)", self.ca_certs_pem.len()),
            )
            .field("verify_certs", &self.verify_certs)
            .field("skip_tls_verify_hosts", &self.skip_tls_verify_hosts)
            .field("allow_plain_http", &self.allow_plain_http)
            .field("retries", &self.retries)
            .field("max_manifest_bytes", &self.max_manifest_bytes)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("http_proxy", &self.http_proxy.as_deref().map(redact_userinfo))
            .field("https_proxy", &self.https_proxy.as_deref().map(redact_userinfo))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// `http://user:pass@proxy:3128` → `http://<redacted>@proxy:3128`.
fn redact_userinfo(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let prefix = if scheme.is_empty() {
                String::new()
            } else {
                format!("{scheme}://")
            };
            format!("{prefix}<redacted>{}", &rest[at..])
        }
        None => url.to_string(),
    }
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

/// Largest error body or token response read.
const MAX_SMALL_BODY: u64 = 1024 * 1024;
/// Largest tags/list page read.
const MAX_TAGS_PAGE: u64 = 16 * 1024 * 1024;
/// Guard against a registry whose `Link` headers loop.
const MAX_TAG_PAGES: usize = 10_000;

/// A registry client; cheap to clone, share it.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    options: ClientOptions,
    verified: reqwest::Client,
    /// Only built when some registry is reached without verification.
    unverified: Option<reqwest::Client>,
    /// For streamed uploads: reqwest's read timeout counts from the start of the request to
    /// the response headers, which would cut off any upload longer than it. Uploads use clients
    /// without it and a progress watchdog instead (see `push_blob`).
    upload_verified: reqwest::Client,
    upload_unverified: Option<reqwest::Client>,
    /// `https` or `http` per registry, decided once.
    schemes: Mutex<HashMap<String, SchemeSlot>>,
    /// The last `WWW-Authenticate` challenge seen per registry.
    challenges: Mutex<HashMap<String, Challenge>>,
    /// Bearer tokens per (registry, scopes, credentials), each behind its own async lock so
    /// that concurrent requests wait for one token fetch instead of each fetching their own.
    tokens: Mutex<HashMap<TokenKey, TokenSlot>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Challenge {
    Basic,
    /// The challenge's `scope` is not kept: it names the repository of the request that was
    /// challenged, while the cached challenge serves every repository of the registry.
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    registry: String,
    scopes: String,
    credentials: Credentials,
}

/// A registry's scheme once known; the async lock makes concurrent first requests share one probe.
type SchemeSlot = Arc<tokio::sync::Mutex<Option<&'static str>>>;

type TokenSlot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

struct CachedToken {
    token: String,
    expires: Instant,
}

/// What an operation is about, to name it in errors.
#[derive(Clone, Debug)]
enum Subject {
    Manifest(String),
    Blob(String),
    Repository,
}

/// One operation's context: what is done, where, with which token scopes.
#[derive(Clone, Debug)]
struct Op {
    action: String,
    registry: String,
    repository: String,
    scopes: Vec<String>,
    subject: Subject,
}

impl Op {
    fn new(action: String, reference: &Reference, push: bool, subject: Subject) -> Op {
        let access = if push { "pull,push" } else { "pull" };
        Op {
            action,
            registry: reference.registry().to_string(),
            repository: reference.repository().to_string(),
            scopes: vec![format!("repository:{}:{access}", reference.repository())],
            subject,
        }
    }
}

impl Client {
    pub fn new(options: ClientOptions) -> Result<Client, RegistryError> {
        let some_unverified = !options.verify_certs || !options.skip_tls_verify_hosts.is_empty();
        let read_timeout = Some(options.read_timeout);
        let verified = build_http(&options, options.verify_certs, read_timeout)?;
        let upload_verified = build_http(&options, options.verify_certs, None)?;
        let (unverified, upload_unverified) = if some_unverified {
            (
                Some(build_http(&options, false, read_timeout)?),
                Some(build_http(&options, false, None)?),
            )
        } else {
            (None, None)
        };
        Ok(Client {
            inner: Arc::new(Inner {
                options,
                verified,
                unverified,
                upload_verified,
                upload_unverified,
                schemes: Mutex::default(),
                challenges: Mutex::default(),
                tokens: Mutex::default(),
            }),
        })
    }

    /// The options this client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// HEAD a manifest; `None` when it does not exist (404).
    pub async fn head_manifest(&self, reference: &Reference) -> Result<Option<ManifestHead>, RegistryError> {
        let op = Op::new(
            format!("checking manifest {reference}"),
            reference,
            false,
            Subject::Manifest(reference.to_string()),
        );
        let path = manifest_path(reference);
        let (op, path) = (&op, &path);
        let resp = self
            .retrying(op, || async move {
                self.send(op, &|http, base| {
                    http.head(format!("{base}{path}"))
                        .header(header::ACCEPT, MANIFEST_ACCEPT)
                })
                .await
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.status_error(resp, op).await);
        }
        let header_digest = content_digest(resp.headers());
        let media_type = content_type(resp.headers());
        // The header, not reqwest's body length: a HEAD response has an empty body.
        let size = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        match (header_digest, media_type, size) {
            (Some(digest), Some(media_type), Some(size)) if !is_generic(&media_type) => {
                if let Some(want) = reference.digest()
                    && *want != digest
                {
                    return Err(RegistryError::DigestMismatch {
                        action: op.action.clone(),
                        expected: want.to_string(),
                        actual: digest.to_string(),
                    });
                }
                Ok(Some(ManifestHead {
                    digest,
                    media_type,
                    size,
                }))
            }
            // Some registries omit the digest or type on HEAD: the GET tells all.
            _ => match self.get_manifest(reference).await {
                Ok(m) => Ok(Some(ManifestHead {
                    size: m.bytes.len() as u64,
                    digest: m.digest,
                    media_type: m.media_type,
                })),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    /// GET a manifest, verified against the reference's digest (or the returned one) and size-capped.
    pub async fn get_manifest(&self, reference: &Reference) -> Result<Manifest, RegistryError> {
        let op = Op::new(
            format!("fetching manifest {reference}"),
            reference,
            false,
            Subject::Manifest(reference.to_string()),
        );
        let path = manifest_path(reference);
        let limit = self.inner.options.max_manifest_bytes;
        let (op, path) = (&op, &path);
        self.retrying(op, || async move {
            let resp = self
                .send(op, &|http, base| {
                    http.get(format!("{base}{path}"))
                        .header(header::ACCEPT, MANIFEST_ACCEPT)
                })
                .await?;
            if !resp.status().is_success() {
                return Err(self.status_error(resp, op).await);
            }
            let served_type = content_type(resp.headers()).unwrap_or_default();
            let header_digest = content_digest(resp.headers());
            let bytes = read_capped(resp, limit, op).await?;
            let digest = Digest::of(&bytes);
            // A digest reference is checked against itself; a tag against what the registry claims.
            if let Some(expected) = reference.digest().or(header_digest.as_ref())
                && *expected != digest
            {
                return Err(RegistryError::DigestMismatch {
                    action: op.action.clone(),
                    expected: expected.to_string(),
                    actual: digest.to_string(),
                });
            }
            let media_type = effective_media_type(&served_type, &bytes);
            Ok(Manifest {
                media_type,
                digest,
                bytes,
            })
        })
        .await
    }

    /// PUT raw manifest bytes at the reference's tag or digest; returns the digest.
    pub async fn put_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest, RegistryError> {
        let op = Op::new(
            format!("pushing manifest {reference}"),
            reference,
            true,
            Subject::Manifest(reference.to_string()),
        );
        let digest = Digest::of(&bytes);
        if let Some(want) = reference.digest()
            && *want != digest
        {
            return Err(RegistryError::DigestMismatch {
                action: op.action,
                expected: want.to_string(),
                actual: digest.to_string(),
            });
        }
        let path = manifest_path(reference);
        let media_type = media_type.to_string();
        let (op, path, media_type, bytes, digest) = (&op, &path, &media_type, &bytes, &digest);
        self.retrying(op, || async move {
            let resp = self
                .send(op, &|http, base| {
                    http.put(format!("{base}{path}"))
                        .header(header::CONTENT_TYPE, media_type.as_str())
                        .body(bytes.clone())
                })
                .await?;
            if !resp.status().is_success() {
                return Err(self.status_error(resp, op).await);
            }
            if let Some(served) = content_digest(resp.headers())
                && served != *digest
            {
                return Err(RegistryError::DigestMismatch {
                    action: op.action.clone(),
                    expected: digest.to_string(),
                    actual: served.to_string(),
                });
            }
            Ok(digest.clone())
        })
        .await
    }

    /// Does `repository` (a reference; tag/digest ignored) hold blob `digest`?
    pub async fn blob_exists(&self, repository: &Reference, digest: &Digest) -> Result<bool, RegistryError> {
        let op = Op::new(
            format!("checking blob {digest} in {}", repository.repository_name()),
            repository,
            false,
            Subject::Blob(digest.to_string()),
        );
        let path = format!("/v2/{}/blobs/{digest}", repository.repository());
        let (op, path) = (&op, &path);
        let resp = self
            .retrying(op, || async move {
                self.send(op, &|http, base| http.head(format!("{base}{path}")))
                    .await
            })
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_error(resp, op).await),
        }
    }

    /// Stream a blob; the stream fails at the end if size or digest differ from `descriptor`.
    pub async fn get_blob(
        &self,
        repository: &Reference,
        descriptor: &Descriptor,
    ) -> Result<BlobStream, RegistryError> {
        let digest = &descriptor.digest;
        let op = Op::new(
            format!("downloading blob {digest} from {}", repository.repository_name()),
            repository,
            false,
            Subject::Blob(digest.to_string()),
        );
        let path = format!("/v2/{}/blobs/{digest}", repository.repository());
        let (op, path) = (&op, &path);
        let resp = self
            .retrying(op, || async move {
                let resp = self
                    .send(op, &|http, base| http.get(format!("{base}{path}")))
                    .await?;
                if resp.status().is_success() {
                    Ok(resp)
                } else {
                    Err(self.status_error(resp, op).await)
                }
            })
            .await?;
        if let Some(len) = resp.content_length()
            && len != descriptor.size
        {
            return Err(RegistryError::SizeMismatch {
                action: op.action.clone(),
                expected: descriptor.size,
                actual: len,
            });
        }
        let verifying = Verifying {
            inner: Box::pin(resp.bytes_stream()),
            hasher: Sha256::new(),
            received: 0,
            expected_size: descriptor.size,
            expected_digest: digest.clone(),
            action: op.action.clone(),
            registry: op.registry.clone(),
            done: false,
        };
        Ok(BlobStream {
            size: descriptor.size,
            inner: Box::pin(verifying),
        })
    }

    /// A small blob (a config) read whole, at most `max_bytes`, verified.
    pub async fn get_blob_bytes(
        &self,
        repository: &Reference,
        digest: &Digest,
        max_bytes: u64,
    ) -> Result<Bytes, RegistryError> {
        let op = Op::new(
            format!("downloading blob {digest} from {}", repository.repository_name()),
            repository,
            false,
            Subject::Blob(digest.to_string()),
        );
        let path = format!("/v2/{}/blobs/{digest}", repository.repository());
        let (op, path) = (&op, &path);
        self.retrying(op, || async move {
            let resp = self
                .send(op, &|http, base| http.get(format!("{base}{path}")))
                .await?;
            if !resp.status().is_success() {
                return Err(self.status_error(resp, op).await);
            }
            let bytes = read_capped(resp, max_bytes, op).await?;
            let actual = Digest::of(&bytes);
            if actual != *digest {
                return Err(RegistryError::DigestMismatch {
                    action: op.action.clone(),
                    expected: digest.to_string(),
                    actual: actual.to_string(),
                });
            }
            Ok(bytes)
        })
        .await
    }

    /// Cross-repository mount on the same registry; `false` when the registry declined.
    pub async fn mount_blob(
        &self,
        repository: &Reference,
        digest: &Digest,
        from: &Reference,
    ) -> Result<bool, RegistryError> {
        if from.registry() != repository.registry() {
            return Ok(false);
        }
        let mut op = Op::new(
            format!(
                "mounting blob {digest} from {} into {}",
                from.repository_name(),
                repository.repository_name()
            ),
            repository,
            true,
            Subject::Blob(digest.to_string()),
        );
        op.scopes.push(format!("repository:{}:pull", from.repository()));
        // Digests and repository names hold only characters that need no escaping in a query
        // (and reqwest's `query` feature is not ours to rely on).
        let path = format!(
            "/v2/{}/blobs/uploads/?mount={digest}&from={}",
            repository.repository(),
            from.repository()
        );
        let (op, path) = (&op, &path);
        let resp = self
            .retrying(op, || async move {
                self.send(op, &|http, base| {
                    http.post(format!("{base}{path}"))
                        .header(header::CONTENT_LENGTH, "0")
                })
                .await
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                // The registry opened an upload session instead; close it, it is not needed.
                if let Ok(url) = upload_location(&resp, op) {
                    let cancel = self.send(op, &|http, _| http.delete(url.clone())).await;
                    if let Err(e) = cancel {
                        tracing::debug!(error = %e, "cancelling the unused upload session failed");
                    }
                }
                Ok(false)
            }
            _ => Err(self.status_error(resp, op).await),
        }
    }

    /// Upload a blob from a stream of `size` bytes, verified by the registry against `digest`.
    ///
    /// POST, one streamed PATCH, then PUT `?digest=`. Only the POST and PUT are retried: the
    /// stream cannot be replayed, so a failed PATCH returns an error for which
    /// [`RegistryError::is_retryable`] tells the caller whether to re-open the source and retry.
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
        let op = Op::new(
            format!("uploading blob {digest} to {}", repository.repository_name()),
            repository,
            true,
            Subject::Blob(digest.to_string()),
        );
        let start = self.start_upload(&op).await?;

        // The stream is counted so that a source that ends early or runs long fails the PATCH
        // with the real reason rather than a registry-side digest error.
        let source_error: Arc<Mutex<Option<String>>> = Arc::default();
        let progress = Progress::new();
        let counted = CountedBody::new(body, size, source_error.clone(), progress.clone());
        let credentials = self.credentials(&op).await;
        let auth = self.authorization(&op, &credentials).await?;
        let http = self.upload_http_for(&op.registry);
        let mut request = http
            .patch(start.clone())
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, size.to_string())
            .body(reqwest::Body::wrap_stream(counted))
            .build()
            .map_err(|e| classify(&e, &op))?;
        if let Some(auth) = auth
            && same_authority(request.url(), &op.registry)
        {
            request.headers_mut().insert(header::AUTHORIZATION, auth);
        }
        let sent = self
            .watch_progress(http.execute(request), &progress, &op, size)
            .await?;
        let source_failure = source_error.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(message) = source_failure {
            return Err(RegistryError::Source {
                action: op.action,
                digest: digest.to_string(),
                message,
            });
        }
        let resp = sent.map_err(|e| classify(&e, &op))?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(unauthorized(&op));
        }
        if !resp.status().is_success() {
            return Err(self.status_error(resp, &op).await);
        }
        let after_patch = upload_location(&resp, &op).unwrap_or(start);

        let mut finish = after_patch;
        finish.query_pairs_mut().append_pair("digest", digest.as_str());
        let (op, finish) = (&op, &finish);
        let committed = self
            .retrying(op, || async move {
                let resp = self
                    .send(op, &|http, _| {
                        http.put(finish.clone()).header(header::CONTENT_LENGTH, "0")
                    })
                    .await?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(self.status_error(resp, op).await)
                }
            })
            .await;
        match committed {
            // A retried PUT finds the session gone when the first one landed but its answer
            // was lost: the blob is then in place.
            Err(e) if e.is_not_found() && self.blob_exists(repository, digest).await? => Ok(()),
            other => other,
        }
    }

    /// Upload a small blob held in memory; returns its digest.
    pub async fn push_blob_bytes(
        &self,
        repository: &Reference,
        bytes: Bytes,
    ) -> Result<Digest, RegistryError> {
        let digest = Digest::of(&bytes);
        let op = Op::new(
            format!("uploading blob {digest} to {}", repository.repository_name()),
            repository,
            true,
            Subject::Blob(digest.to_string()),
        );
        // The body is in memory, so the whole POST + PUT can be replayed on failure.
        let (op, bytes, digest_ref) = (&op, &bytes, &digest);
        self.retrying(op, || async move {
            let mut url = self.start_upload_once(op).await?;
            url.query_pairs_mut().append_pair("digest", digest_ref.as_str());
            let resp = self
                .send(op, &|http, _| {
                    http.put(url.clone())
                        .header(header::CONTENT_TYPE, "application/octet-stream")
                        .body(bytes.clone())
                })
                .await?;
            if !resp.status().is_success() {
                return Err(self.status_error(resp, op).await);
            }
            Ok(())
        })
        .await?;
        Ok(digest)
    }

    /// All tags of a repository.
    pub async fn list_tags(&self, repository: &Reference) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let op = Op::new(
            format!("listing tags of {}", repository.repository_name()),
            repository,
            false,
            Subject::Repository,
        );
        let mut tags = Vec::new();
        let mut next: Option<Url> = None;
        for _ in 0..MAX_TAG_PAGES {
            let first = format!("/v2/{}/tags/list", repository.repository());
            let (op, first, current) = (&op, &first, &next);
            let page = self
                .retrying(op, || async move {
                    let resp = self
                        .send(op, &|http, base| match current {
                            Some(url) => http.get(url.clone()),
                            None => http.get(format!("{base}{first}")),
                        })
                        .await?;
                    if !resp.status().is_success() {
                        return Err(self.status_error(resp, op).await);
                    }
                    let link = next_link(resp.headers(), resp.url());
                    let body = read_capped(resp, MAX_TAGS_PAGE, op).await?;
                    let list: TagList =
                        serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                            action: op.action.clone(),
                            registry: op.registry.clone(),
                            message: format!("the tag list is not the expected JSON: {e}"),
                        })?;
                    Ok((list.tags.unwrap_or_default(), link))
                })
                .await?;
            tags.extend(page.0);
            match page.1 {
                Some(url) => next = Some(url),
                None => return Ok(tags),
            }
        }
        Err(RegistryError::Protocol {
            action: op.action,
            registry: op.registry,
            message: format!(
                "more than {MAX_TAG_PAGES} pages of tags; the registry's Link headers seem to loop"
            ),
        })
    }

    /// The credentials this client would use for `reference`.
    ///
    /// May run a Docker credential helper (blocking) when the keychain has one; see
    /// [`Keychain::runs_programs`].
    pub fn credentials_for(&self, reference: &Reference) -> Credentials {
        self.inner
            .options
            .keychain
            .resolve(reference.registry(), reference.repository())
    }

    // ---- upload sessions ----

    /// Run an upload, failing it when neither the body nor the response moved for `read_timeout`.
    ///
    /// The clock restarts whenever a chunk is handed to the connection, so an upload may take
    /// as long as it needs while it progresses; after the last chunk the registry has
    /// `read_timeout` to answer.
    async fn watch_progress<F>(
        &self,
        upload: F,
        progress: &Progress,
        op: &Op,
        size: u64,
    ) -> Result<reqwest::Result<reqwest::Response>, RegistryError>
    where
        F: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
    {
        let limit = self.inner.options.read_timeout;
        let mut upload = std::pin::pin!(upload);
        loop {
            let deadline = progress.last() + limit;
            tokio::select! {
                result = &mut upload => return Ok(result),
                _ = tokio::time::sleep_until(deadline.into()) => {
                    if progress.last() + limit <= Instant::now() {
                        return Err(RegistryError::Timeout {
                            action: op.action.clone(),
                            registry: op.registry.clone(),
                            message: format!(
                                "no progress for {limit:?} after sending {} of {size} bytes",
                                progress.sent()
                            ),
                        });
                    }
                }
            }
        }
    }

    async fn start_upload(&self, op: &Op) -> Result<Url, RegistryError> {
        self.retrying(op, || self.start_upload_once(op)).await
    }

    async fn start_upload_once(&self, op: &Op) -> Result<Url, RegistryError> {
        let path = format!("/v2/{}/blobs/uploads/", op.repository);
        let resp = self
            .send(op, &|http, base| {
                http.post(format!("{base}{path}"))
                    .header(header::CONTENT_LENGTH, "0")
            })
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.status_error(resp, op).await);
        }
        upload_location(&resp, op)
    }

    // ---- request machinery ----

    /// Run `f` again after retryable failures, with exponential backoff and jitter.
    ///
    /// `f` is a plain closure returning a future (not an async closure) so that the futures of
    /// the public methods stay `Send`; it captures only references, copied into each attempt.
    async fn retrying<T, F, Fut>(&self, op: &Op, f: F) -> Result<T, RegistryError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, RegistryError>>,
    {
        let mut attempt = 0u32;
        loop {
            match f().await {
                // A registry that says when to come back is believed up to MAX_RETRY_AFTER;
                // one that asks for longer gets its error now rather than a silent stall.
                Err(e)
                    if e.is_retryable()
                        && attempt < self.inner.options.retries
                        && e.retry_after().is_none_or(|d| d <= MAX_RETRY_AFTER) =>
                {
                    let delay = e.retry_after().unwrap_or_else(|| backoff(attempt));
                    tracing::debug!(action = %op.action, attempt = attempt + 1, ?delay, error = %e, "retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One request with authentication: answers a 401 challenge once, and turns retryable
    /// statuses (5xx, 408, 429) into errors so that [`retrying`](Self::retrying) sees them.
    async fn send(
        &self,
        op: &Op,
        build: &(dyn Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Sync),
    ) -> Result<reqwest::Response, RegistryError> {
        let credentials = self.credentials(op).await;
        let mut answered_challenge = false;
        loop {
            let auth = self.authorization(op, &credentials).await?;
            let scheme = self.scheme(op).await?;
            let http = self.http_for(&op.registry);
            let base = format!("{scheme}://{}", op.registry);
            let mut request = build(http, &base).build().map_err(|e| classify(&e, op))?;
            let sent_auth = auth.clone();
            if let Some(auth) = auth
                && same_authority(request.url(), &op.registry)
            {
                request.headers_mut().insert(header::AUTHORIZATION, auth);
            }
            let resp = http.execute(request).await.map_err(|e| classify(&e, op))?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED {
                // Retry once with what the challenge asks for, when we have something better to send.
                let challenge = match (parse_challenge(resp.headers()), &credentials) {
                    (_, _) if answered_challenge => None,
                    (_, Credentials::Bearer { .. }) | (Some(Challenge::Basic), Credentials::Anonymous) => {
                        None
                    }
                    (challenge, _) => challenge,
                };
                let Some(challenge) = challenge else {
                    return Err(unauthorized(op));
                };
                if let Some(rejected) = &sent_auth {
                    self.forget_token(op, &credentials, rejected).await;
                }
                self.inner
                    .challenges
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(op.registry.clone(), challenge);
                answered_challenge = true;
                continue;
            }
            if status.is_server_error()
                || status == StatusCode::REQUEST_TIMEOUT
                || status == StatusCode::TOO_MANY_REQUESTS
            {
                return Err(self.status_error(resp, op).await);
            }
            return Ok(resp);
        }
    }

    /// The keychain's answer; a Docker credential helper runs on the blocking pool.
    async fn credentials(&self, op: &Op) -> Credentials {
        let keychain = &self.inner.options.keychain;
        if !keychain.runs_programs() {
            return keychain.resolve(&op.registry, &op.repository);
        }
        let (keychain, registry, repository) = (keychain.clone(), op.registry.clone(), op.repository.clone());
        match tokio::task::spawn_blocking(move || keychain.resolve(&registry, &repository)).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "credential lookup failed; continuing anonymously");
                Credentials::Anonymous
            }
        }
    }

    fn skip_verify(&self, registry: &str) -> bool {
        !self.inner.options.verify_certs
            || self
                .inner
                .options
                .skip_tls_verify_hosts
                .iter()
                .any(|h| h == registry || registry.rsplit_once(':').is_some_and(|(host, _)| host == h))
    }

    fn http_for(&self, registry: &str) -> &reqwest::Client {
        match (&self.inner.unverified, self.skip_verify(registry)) {
            (Some(unverified), true) => unverified,
            _ => &self.inner.verified,
        }
    }

    fn upload_http_for(&self, registry: &str) -> &reqwest::Client {
        match (&self.inner.upload_unverified, self.skip_verify(registry)) {
            (Some(unverified), true) => unverified,
            _ => &self.inner.upload_verified,
        }
    }

    fn plain_http_allowed(&self, registry: &str) -> bool {
        self.inner.options.allow_plain_http || is_loopback(registry)
    }

    /// `https`, or `http` for a registry allowed plain HTTP that does not speak TLS.
    ///
    /// Falls back only when the TLS attempt failed for a reason other than certificate
    /// verification or a timeout: a bad certificate is never "solved" by dropping TLS.
    async fn scheme(&self, op: &Op) -> Result<&'static str, RegistryError> {
        let registry = &op.registry;
        let slot = {
            let mut schemes = self.inner.schemes.lock().unwrap_or_else(|p| p.into_inner());
            schemes.entry(registry.clone()).or_default().clone()
        };
        let mut known = slot.lock().await;
        if let Some(s) = *known {
            return Ok(s);
        }
        let scheme = if !self.plain_http_allowed(registry) {
            "https"
        } else {
            let http = self.http_for(registry);
            match http.get(format!("https://{registry}/v2/")).send().await {
                Ok(_) => "https",
                Err(e) => match classify(&e, op) {
                    err @ (RegistryError::Tls { .. } | RegistryError::Timeout { .. }) => return Err(err),
                    tls_failure => match http.get(format!("http://{registry}/v2/")).send().await {
                        // A TLS server answers plain HTTP with 400 ("Client sent an HTTP request
                        // to an HTTPS server"): the TLS attempt failed for another reason, so
                        // report that instead of settling on plain HTTP for good.
                        Ok(resp) if resp.status() == StatusCode::BAD_REQUEST => return Err(tls_failure),
                        Ok(_) => {
                            tracing::debug!(registry, error = %tls_failure, "registry does not speak TLS; using plain HTTP");
                            "http"
                        }
                        Err(e) => return Err(classify(&e, op)),
                    },
                },
            }
        };
        *known = Some(scheme);
        Ok(scheme)
    }

    /// The Authorization header for a request, from the registry's last challenge.
    async fn authorization(
        &self,
        op: &Op,
        credentials: &Credentials,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        if let Credentials::Bearer { token } = credentials {
            return Ok(Some(secret_header(&format!("Bearer {token}"))?));
        }
        let challenge = self
            .inner
            .challenges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&op.registry)
            .cloned();
        match (challenge, credentials) {
            (None, _) => Ok(None),
            (Some(Challenge::Basic), Credentials::Basic { username, password }) => {
                Ok(Some(secret_header(&basic(username, password))?))
            }
            (Some(Challenge::Basic), _) => Ok(None),
            (Some(Challenge::Bearer { realm, service }), _) => {
                let token = self.token(op, credentials, &realm, service.as_deref()).await?;
                Ok(Some(secret_header(&format!("Bearer {token}"))?))
            }
        }
    }

    fn token_key(op: &Op, credentials: &Credentials) -> TokenKey {
        TokenKey {
            registry: op.registry.clone(),
            scopes: op.scopes.join(" "),
            credentials: credentials.clone(),
        }
    }

    /// Drop the cached token if it is the one the registry rejected (another task may
    /// already have replaced it with a good one).
    async fn forget_token(&self, op: &Op, credentials: &Credentials, rejected: &HeaderValue) {
        let slot = self.token_slot(Self::token_key(op, credentials));
        let mut cached = slot.lock().await;
        if cached
            .as_ref()
            .is_some_and(|c| rejected.as_bytes() == format!("Bearer {}", c.token).as_bytes())
        {
            *cached = None;
        }
    }

    /// The cache slot for one key; its async lock makes concurrent requests for the same
    /// scopes wait for one fetch, while other registries and scopes go ahead.
    fn token_slot(&self, key: TokenKey) -> TokenSlot {
        let mut tokens = self.inner.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.entry(key).or_default().clone()
    }

    /// A bearer token for the operation's scopes, from the cache or the token server.
    async fn token(
        &self,
        op: &Op,
        credentials: &Credentials,
        realm: &str,
        service: Option<&str>,
    ) -> Result<String, RegistryError> {
        let slot = self.token_slot(Self::token_key(op, credentials));
        let mut cached = slot.lock().await;
        if let Some(cached) = cached.as_ref()
            && cached.expires > Instant::now()
        {
            return Ok(cached.token.clone());
        }
        let protocol = |message: String| RegistryError::Protocol {
            action: op.action.clone(),
            registry: op.registry.clone(),
            message,
        };
        let mut url = Url::parse(realm)
            .map_err(|e| protocol(format!("the token realm {realm:?} is not a URL: {e}")))?;
        let realm_authority = authority(&url);
        match url.scheme() {
            "https" => {}
            "http" if self.plain_http_allowed(&realm_authority) => {}
            other => {
                return Err(protocol(format!(
                    "the token realm {realm} uses {other}, which is not allowed for this host; \
                     use --registry-insecure to allow plain HTTP"
                )));
            }
        }
        let scopes = &op.scopes;
        let http = self.http_for(&realm_authority);
        let request = match credentials {
            Credentials::IdentityToken { token } => {
                let mut form = Url::parse("http://form.invalid/").expect("static URL");
                {
                    let mut pairs = form.query_pairs_mut();
                    pairs.append_pair("grant_type", "refresh_token");
                    pairs.append_pair("refresh_token", token);
                    pairs.append_pair("client_id", "pkgr");
                    if let Some(service) = service {
                        pairs.append_pair("service", service);
                    }
                    pairs.append_pair("scope", &scopes.join(" "));
                }
                let body = form.query().unwrap_or_default().to_string();
                http.post(url.clone())
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body)
            }
            _ => {
                {
                    let mut pairs = url.query_pairs_mut();
                    if let Some(service) = service {
                        pairs.append_pair("service", service);
                    }
                    for scope in scopes {
                        pairs.append_pair("scope", scope);
                    }
                }
                let mut request = http.get(url.clone());
                if let Credentials::Basic { username, password } = credentials {
                    request =
                        request.header(header::AUTHORIZATION, secret_header(&basic(username, password))?);
                }
                request
            }
        };
        let resp = request.send().await.map_err(|e| classify(&e, op))?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(unauthorized(op));
        }
        if !status.is_success() {
            let body = read_capped(resp, MAX_SMALL_BODY, op).await.unwrap_or_default();
            let (code, message) = distribution_error(&body);
            return Err(RegistryError::Status {
                action: format!("{} (getting a token from {realm})", op.action),
                registry: op.registry.clone(),
                status: status.as_u16(),
                code,
                message,
                retry_after: None,
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenReply {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let body = read_capped(resp, MAX_SMALL_BODY, op).await?;
        let reply: TokenReply = serde_json::from_slice(&body).map_err(|e| {
            protocol(format!(
                "the token server {realm} answered with unexpected JSON: {e}"
            ))
        })?;
        let token = reply
            .token
            .or(reply.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| protocol(format!("the token server {realm} returned no token")))?;
        // The distribution spec's default lifetime is 60 s; renew a little early.
        let lifetime = Duration::from_secs(reply.expires_in.unwrap_or(60).max(1));
        let margin = (lifetime / 10).min(Duration::from_secs(30));
        *cached = Some(CachedToken {
            token: token.clone(),
            expires: Instant::now() + lifetime - margin,
        });
        Ok(token)
    }

    /// Turn a failed response into a typed error, reading (a bounded part of) its body.
    async fn status_error(&self, resp: reqwest::Response, op: &Op) -> RegistryError {
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers(), std::time::SystemTime::now());
        let body = read_capped(resp, MAX_SMALL_BODY, op).await.unwrap_or_default();
        let (code, message) = distribution_error(&body);
        let mut error = status_to_error(op, status, code, message);
        if let RegistryError::Status {
            retry_after: slot, ..
        } = &mut error
        {
            *slot = retry_after;
        }
        error
    }
}

fn status_to_error(op: &Op, status: u16, code: Option<String>, message: String) -> RegistryError {
    let action = op.action.clone();
    let reference = || match &op.subject {
        Subject::Manifest(r) => r.clone(),
        _ => format!("{}/{}", op.registry, op.repository),
    };
    let blob = || match &op.subject {
        Subject::Blob(d) => d.clone(),
        _ => String::new(),
    };
    let repository = format!("{}/{}", op.registry, op.repository);
    match (status, code.as_deref()) {
        (401, _) | (_, Some("UNAUTHORIZED")) => unauthorized(op),
        (403, _) | (_, Some("DENIED")) => RegistryError::Denied {
            action,
            registry: op.registry.clone(),
            repository: op.repository.clone(),
            message,
        },
        (_, Some("MANIFEST_UNKNOWN")) => RegistryError::ManifestUnknown {
            action,
            reference: reference(),
            message,
        },
        (_, Some("BLOB_UNKNOWN")) => RegistryError::BlobUnknown {
            action,
            repository,
            digest: blob(),
            message,
        },
        (_, Some("NAME_UNKNOWN")) => RegistryError::NameUnknown {
            action,
            repository,
            message,
        },
        (404, None) => match &op.subject {
            Subject::Manifest(r) => RegistryError::ManifestUnknown {
                action,
                reference: r.clone(),
                message,
            },
            Subject::Blob(d) => RegistryError::BlobUnknown {
                action,
                repository,
                digest: d.clone(),
                message,
            },
            Subject::Repository => RegistryError::NameUnknown {
                action,
                repository,
                message,
            },
        },
        _ => RegistryError::Status {
            action,
            registry: op.registry.clone(),
            status,
            code,
            message,
            retry_after: None,
        },
    }
}

fn unauthorized(op: &Op) -> RegistryError {
    RegistryError::Unauthorized {
        action: op.action.clone(),
        registry: op.registry.clone(),
        repository: op.repository.clone(),
    }
}

/// `{"errors":[{"code","message","detail"}]}` → (first code, readable messages).
fn distribution_error(body: &[u8]) -> (Option<String>, String) {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
        detail: Option<serde_json::Value>,
    }
    let Ok(parsed) = serde_json::from_slice::<Errors>(body) else {
        let text = String::from_utf8_lossy(body);
        return (None, truncate(text.trim(), 300));
    };
    let code = parsed.errors.first().and_then(|e| e.code.clone());
    let messages: Vec<String> = parsed
        .errors
        .iter()
        .map(|e| {
            let mut m = e.message.clone().unwrap_or_default();
            if let Some(detail) = &e.detail
                && !detail.is_null()
            {
                let detail = match detail {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                m = if m.is_empty() {
                    detail
                } else {
                    format!("{m} ({detail})")
                };
            }
            m
        })
        .filter(|m| !m.is_empty())
        .collect();
    (code, truncate(&messages.join("; "), 500))
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn build_http(
    options: &ClientOptions,
    verify: bool,
    read_timeout: Option<Duration>,
) -> Result<reqwest::Client, RegistryError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .user_agent(concat!("pkgr/", env!("CARGO_PKG_VERSION")));
    if let Some(t) = read_timeout {
        builder = builder.read_timeout(t);
    }
    if verify {
        let mut certs = Vec::new();
        for (i, pem) in options.ca_certs_pem.iter().enumerate() {
            let parsed = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                RegistryError::ClientBuild(format!("CA certificate bundle #{} is not valid PEM: {e}", i + 1))
            })?;
            certs.extend(parsed);
        }
        builder = builder.tls_certs_merge(certs);
    } else {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    let no_proxy = options
        .no_proxy
        .as_deref()
        .and_then(reqwest::NoProxy::from_string);
    let proxy_error = |which: &str, e: reqwest::Error| {
        RegistryError::ClientBuild(format!("the {which} proxy URL is invalid: {}", e.without_url()))
    };
    if let Some(p) = options.http_proxy.as_deref().filter(|p| !p.is_empty()) {
        builder = builder.proxy(
            reqwest::Proxy::http(p)
                .map_err(|e| proxy_error("HTTP", e))?
                .no_proxy(no_proxy.clone()),
        );
    }
    if let Some(p) = options.https_proxy.as_deref().filter(|p| !p.is_empty()) {
        builder = builder.proxy(
            reqwest::Proxy::https(p)
                .map_err(|e| proxy_error("HTTPS", e))?
                .no_proxy(no_proxy),
        );
    }
    builder.build().map_err(|e| {
        let chain = error_chain(&e);
        // rustls-platform-verifier's words when the system has no CA roots (an image without
        // ca-certificates, an SSL_CERT_FILE that names an empty file): say where they come from.
        if chain.contains("No CA certificates were loaded from the system") {
            RegistryError::ClientBuild(format!(
                "{chain}. pkgr trusts the system's CA bundle (/etc/ssl/certs/ca-certificates.crt on \
                 Debian, or SSL_CERT_FILE / SSL_CERT_DIR when set) and found no certificate there: \
                 install the ca-certificates package, or pass the registry's CA with \
                 --registry-ca-cert-path"
            ))
        } else {
            RegistryError::ClientBuild(chain)
        }
    })
}

fn manifest_path(reference: &Reference) -> String {
    format!(
        "/v2/{}/manifests/{}",
        reference.repository(),
        reference.manifest_selector()
    )
}

fn basic(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
}

/// A header value marked sensitive so that it never shows in Debug output.
fn secret_header(value: &str) -> Result<HeaderValue, RegistryError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| RegistryError::Config {
        what: "registry credentials".into(),
        reason: "they contain characters that cannot be sent in an HTTP header".into(),
    })?;
    v.set_sensitive(true);
    Ok(v)
}

fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// Credentials go only to the registry itself, not to a storage backend it redirects to.
fn same_authority(url: &Url, registry: &str) -> bool {
    let host = url.host_str().unwrap_or_default();
    let with_port = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    with_port == registry
        || url
            .port_or_known_default()
            .is_some_and(|p| format!("{host}:{p}") == registry)
        || (url.port().is_none() && host == registry)
}

/// Loopback registries may use plain HTTP without an opt-in.
pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        registry.rsplit_once(':').map_or(registry, |(h, _)| h)
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn content_digest(headers: &HeaderMap) -> Option<Digest> {
    let value = headers.get("docker-content-digest")?.to_str().ok()?;
    Digest::parse(value.trim()).ok()
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or_default().trim().to_string())
}

fn is_generic(media_type: &str) -> bool {
    media_type.is_empty() || media_type == "application/json" || media_type == "text/plain"
}

fn upload_location(resp: &reqwest::Response, op: &Op) -> Result<Url, RegistryError> {
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Protocol {
            action: op.action.clone(),
            registry: op.registry.clone(),
            message: format!(
                "the upload response (HTTP {}) has no Location header",
                resp.status().as_u16()
            ),
        })?;
    resp.url().join(location).map_err(|e| RegistryError::Protocol {
        action: op.action.clone(),
        registry: op.registry.clone(),
        message: format!("the upload Location {location:?} is not a valid URL: {e}"),
    })
}

/// `Link: </v2/x/tags/list?last=a&n=100>; rel="next"` → the absolute next URL.
fn next_link(headers: &HeaderMap, current: &Url) -> Option<Url> {
    for value in headers.get_all(header::LINK) {
        let value = value.to_str().ok()?;
        for part in value.split(',') {
            let (target, params) = part.split_once(';')?;
            if !params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            }) {
                continue;
            }
            let target = target.trim().trim_start_matches('<').trim_end_matches('>');
            return current.join(target).ok();
        }
    }
    None
}

/// Parse `WWW-Authenticate: Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
/// Quoted values may hold commas (the scope does), so the parameters are tokenised properly.
fn parse_challenge(headers: &HeaderMap) -> Option<Challenge> {
    let value = headers.get(header::WWW_AUTHENTICATE)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let params = parse_auth_params(rest);
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
        })
    } else {
        None
    }
}

/// `key="value", key2=value2` (quoted values may contain commas and escaped quotes).
fn parse_auth_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            return out;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        out.insert(key.trim().to_ascii_lowercase(), value);
    }
}

/// 100 ms × 2^attempt, capped at 2 s, with ±50 % jitter so that parallel transfers spread out.
/// The longest a `Retry-After` header can hold one retry back.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// `Retry-After` as delta-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to `now`.
fn retry_after(headers: &header::HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(100)
        .saturating_mul(1u32 << attempt.min(5))
        .min(Duration::from_secs(2));
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let factor = 0.5 + (random % 1000) as f64 / 1000.0;
    base.mul_f64(factor)
}

/// Read a body whole, refusing (without reading on) once it passes `limit`.
async fn read_capped(mut resp: reqwest::Response, limit: u64, op: &Op) -> Result<Bytes, RegistryError> {
    let too_large = || RegistryError::TooLarge {
        action: op.action.clone(),
        limit,
    };
    if resp.content_length().is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| classify(&e, op))? {
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// A certificate problem somewhere in the error chain. rustls errors sit inside (nested)
/// io::Errors, whose `source()` skips the wrapped error, so those are opened with `get_ref`.
fn certificate_error(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut pending: Vec<&(dyn std::error::Error + 'static)> = vec![e];
    while let Some(err) = pending.pop() {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            use rustls::Error as E;
            if matches!(
                r,
                E::InvalidCertificate(_)
                    | E::NoCertificatesPresented
                    | E::UnsupportedNameType
                    | E::InvalidCertRevocationList(_)
            ) {
                return Some(r.to_string());
            }
        }
        if let Some(inner) = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            pending.push(inner);
        }
        if let Some(source) = err.source() {
            pending.push(source);
        }
    }
    None
}

/// A registry that answered the TLS handshake with something else (usually plain HTTP).
fn not_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut pending: Vec<&(dyn std::error::Error + 'static)> = vec![e];
    while let Some(err) = pending.pop() {
        if let Some(rustls::Error::InvalidMessage(_)) = err.downcast_ref::<rustls::Error>() {
            return true;
        }
        if let Some(inner) = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            pending.push(inner);
        }
        if let Some(source) = err.source() {
            pending.push(source);
        }
    }
    false
}

fn classify(e: &reqwest::Error, op: &Op) -> RegistryError {
    let mut message = error_chain(e);
    if not_tls(e) {
        message.push_str(
            " (the registry does not seem to speak TLS; if it only serves plain HTTP, \
             allow that with --registry-insecure)",
        );
    }
    if let Some(cert) = certificate_error(e) {
        return RegistryError::Tls {
            action: op.action.clone(),
            registry: op.registry.clone(),
            message: cert,
        };
    }
    if e.is_timeout() {
        return RegistryError::Timeout {
            action: op.action.clone(),
            registry: op.registry.clone(),
            message,
        };
    }
    if e.is_body() || e.is_decode() {
        return RegistryError::Interrupted {
            action: op.action.clone(),
            registry: op.registry.clone(),
            message,
        };
    }
    if e.is_builder() {
        return RegistryError::Protocol {
            action: op.action.clone(),
            registry: op.registry.clone(),
            message,
        };
    }
    RegistryError::Connection {
        action: op.action.clone(),
        registry: op.registry.clone(),
        message,
    }
}

/// The download side of verification: counts and hashes every chunk as it passes.
struct Verifying {
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    hasher: Sha256,
    received: u64,
    expected_size: u64,
    expected_digest: Digest,
    action: String,
    registry: String,
    done: bool,
}

impl Stream for Verifying {
    type Item = Result<Bytes, RegistryError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.received += chunk.len() as u64;
                if self.received > self.expected_size {
                    self.done = true;
                    return Poll::Ready(Some(Err(RegistryError::SizeMismatch {
                        action: self.action.clone(),
                        expected: self.expected_size,
                        actual: self.received,
                    })));
                }
                self.hasher.update(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                let message = format!(
                    "after {} of {} bytes: {}",
                    self.received,
                    self.expected_size,
                    error_chain(&e)
                );
                let (action, registry) = (self.action.clone(), self.registry.clone());
                Poll::Ready(Some(Err(if e.is_timeout() {
                    RegistryError::Timeout {
                        action,
                        registry,
                        message,
                    }
                } else {
                    RegistryError::Interrupted {
                        action,
                        registry,
                        message,
                    }
                })))
            }
            Poll::Ready(None) => {
                self.done = true;
                if self.received != self.expected_size {
                    return Poll::Ready(Some(Err(RegistryError::SizeMismatch {
                        action: self.action.clone(),
                        expected: self.expected_size,
                        actual: self.received,
                    })));
                }
                let hasher = std::mem::take(&mut self.hasher);
                let actual = Digest::from_sha256(hasher);
                if actual != self.expected_digest {
                    return Poll::Ready(Some(Err(RegistryError::DigestMismatch {
                        action: self.action.clone(),
                        expected: self.expected_digest.to_string(),
                        actual: actual.to_string(),
                    })));
                }
                Poll::Ready(None)
            }
        }
    }
}

/// When an upload last moved, and how far it got (shared with the watchdog).
#[derive(Clone)]
struct Progress {
    start: Instant,
    last_millis: Arc<std::sync::atomic::AtomicU64>,
    sent: Arc<std::sync::atomic::AtomicU64>,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            start: Instant::now(),
            last_millis: Arc::default(),
            sent: Arc::default(),
        }
    }
    fn touch(&self, sent: u64) {
        use std::sync::atomic::Ordering;
        let millis = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_millis.store(millis, Ordering::Relaxed);
        self.sent.store(sent, Ordering::Relaxed);
    }
    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_millis.load(std::sync::atomic::Ordering::Relaxed))
    }
    fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The upload side: passes chunks on and fails the request if the source yields a different size.
struct CountedBody<S> {
    inner: Pin<Box<S>>,
    expected: u64,
    sent: u64,
    failure: Arc<Mutex<Option<String>>>,
    progress: Progress,
}

impl<S> CountedBody<S> {
    fn new(inner: S, expected: u64, failure: Arc<Mutex<Option<String>>>, progress: Progress) -> Self {
        CountedBody {
            inner: Box::pin(inner),
            expected,
            sent: 0,
            failure,
            progress,
        }
    }

    fn fail(&self, message: String) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.clone());
        Poll::Ready(Some(Err(std::io::Error::other(message))))
    }
}

impl<S> Stream for CountedBody<S>
where
    S: Stream<Item = Result<Bytes, std::io::Error>>,
{
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.sent += chunk.len() as u64;
                self.progress.touch(self.sent);
                if self.sent > self.expected {
                    let message = format!(
                        "the source yielded more than the declared {} bytes",
                        self.expected
                    );
                    return self.fail(message);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                let message = format!("reading the source failed after {} bytes: {e}", self.sent);
                self.fail(message)
            }
            Poll::Ready(None) if self.sent < self.expected => {
                let message = format!(
                    "the source ended after {} of the declared {} bytes",
                    self.sent, self.expected
                );
                self.fail(message)
            }
            Poll::Ready(None) => {
                // The body is done: from here the registry has `read_timeout` to answer.
                self.progress.touch(self.sent);
                Poll::Ready(None)
            }
        }
    }
}

/// A blob being downloaded; yields chunks and checks size and digest at the end.
pub struct BlobStream {
    pub size: u64,
    inner: Pin<Box<dyn Stream<Item = Result<Bytes, RegistryError>> + Send>>,
}

impl BlobStream {
    /// The blob as an `AsyncRead` (for tar readers and files). A failure (short read, wrong
    /// digest, timeout) surfaces as an `io::Error` whose inner error is the [`RegistryError`]:
    /// `e.into_inner()` then `downcast::<RegistryError>()` gets it back.
    pub fn into_async_read(self) -> impl tokio::io::AsyncRead + Send + Unpin {
        use futures_util::TryStreamExt as _;
        tokio_util::io::StreamReader::new(self.map_err(std::io::Error::other))
    }
}

impl Stream for BlobStream {
    type Item = Result<Bytes, RegistryError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let h = headers(&[(
            "www-authenticate",
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push""#,
        )]);
        assert_eq!(
            parse_challenge(&h),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
            })
        );
        assert_eq!(
            parse_challenge(&headers(&[(
                "www-authenticate",
                r#"Basic realm="Registry Realm""#
            )])),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(&headers(&[("www-authenticate", "Negotiate")])),
            None
        );
        assert_eq!(
            parse_challenge(&headers(&[("www-authenticate", "Bearer service=x")])),
            None,
            "realm is required"
        );
    }

    #[test]
    fn follows_link_headers() {
        let current = Url::parse("https://reg.io/v2/a/tags/list").unwrap();
        let h = headers(&[("link", r#"</v2/a/tags/list?last=t2&n=2>; rel="next""#)]);
        assert_eq!(
            next_link(&h, &current).unwrap().as_str(),
            "https://reg.io/v2/a/tags/list?last=t2&n=2"
        );
        assert_eq!(next_link(&HeaderMap::new(), &current), None);
    }

    #[test]
    fn loopback_detection() {
        for r in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in ["10.0.0.1:5000", "reg.io", "localhost.evil.com", "[::2]:1"] {
            assert!(!is_loopback(r), "{r}");
        }
    }

    #[test]
    fn distribution_errors_are_typed() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v9"}}]}"#;
        let (code, message) = distribution_error(body);
        assert_eq!(code.as_deref(), Some("MANIFEST_UNKNOWN"));
        assert_eq!(message, r#"manifest unknown ({"Tag":"v9"})"#);
        let reference = Reference::parse("reg.io/app:v9").unwrap();
        let op = Op::new(
            format!("fetching manifest {reference}"),
            &reference,
            false,
            Subject::Manifest(reference.to_string()),
        );
        let e = status_to_error(&op, 404, code, message);
        assert_eq!(
            e.to_string(),
            r#"manifest unknown while fetching manifest reg.io/app:v9: reg.io/app:v9 does not exist in the registry: manifest unknown ({"Tag":"v9"})"#
        );
        assert!(!e.is_retryable());
        let e = status_to_error(&op, 503, None, "busy".into());
        assert!(e.is_retryable());
        assert_eq!(
            e.to_string(),
            "registry reg.io answered HTTP 503 while fetching manifest reg.io/app:v9: busy"
        );
        let e = status_to_error(&op, 401, None, String::new());
        let text = e.to_string();
        assert!(
            text.contains("registry reg.io rejected the credentials for repository app"),
            "{text}"
        );
        assert!(text.contains("--registry-username"), "{text}");
        assert!(text.contains("docker login reg.io"), "{text}");
        let e = status_to_error(&op, 403, Some("DENIED".into()), "no".into());
        assert!(matches!(e, RegistryError::Denied { .. }), "{e:?}");
    }

    /// Callers spawn these on a multi-threaded runtime: the client and every future must be Send.
    #[test]
    fn client_and_futures_are_send() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        let c = Client::new(ClientOptions::default()).unwrap();
        send_sync(&c);
        let r = Reference::parse("reg.io/app:v1").unwrap();
        let d = Digest::of(b"x");
        let desc = Descriptor {
            media_type: String::new(),
            digest: d.clone(),
            size: 1,
            urls: vec![],
            annotations: Default::default(),
        };
        send(c.head_manifest(&r));
        send(c.get_manifest(&r));
        send(c.put_manifest(&r, "", Bytes::new()));
        send(c.blob_exists(&r, &d));
        send(c.get_blob(&r, &desc));
        send(c.get_blob_bytes(&r, &d, 1));
        send(c.mount_blob(&r, &d, &r));
        send(c.push_blob(&r, &d, 0, futures_util::stream::empty()));
        send(c.push_blob_bytes(&r, Bytes::new()));
        send(c.list_tags(&r));
    }

    #[tokio::test]
    async fn plain_http_answer_to_tls_gets_a_hint() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut hello = [0u8; 512];
            let _ = stream.read(&mut hello).await;
            let _ = stream
                .write_all(
                    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
                )
                .await;
        });
        let err = reqwest::Client::new()
            .get(format!("https://{addr}/v2/"))
            .send()
            .await
            .unwrap_err();
        server.await.unwrap();
        let reference = Reference::parse(&format!("{addr}/app:v1")).unwrap();
        let op = Op::new("fetching manifest".into(), &reference, false, Subject::Repository);
        let classified = classify(&err, &op);
        assert!(
            matches!(classified, RegistryError::Connection { .. }),
            "{classified:?}"
        );
        assert!(
            classified.to_string().contains("--registry-insecure"),
            "{classified}"
        );
    }

    #[test]
    fn proxy_credentials_are_redacted_in_debug() {
        let options = ClientOptions {
            http_proxy: Some("http://bob:pr0xy-pw@proxy.corp:3128".into()),
            https_proxy: Some("proxy.corp:3128".into()),
            ca_certs_pem: vec![b"-----BEGIN CERTIFICATE-----".to_vec()],
            ..ClientOptions::default()
        };
        let text = format!("{options:?}");
        assert!(!text.contains("pr0xy-pw") && !text.contains("bob"), "{text}");
        assert!(
            text.contains("http://<redacted>@proxy.corp:3128") && text.contains("proxy.corp:3128"),
            "{text}"
        );
        assert!(text.contains("1 bundle(s)"), "{text}");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let at = |value: &str| {
            let mut headers = header::HeaderMap::new();
            headers.insert(header::RETRY_AFTER, value.parse().unwrap());
            headers
        };
        let now = httpdate::parse_http_date("Tue, 24 Nov 2026 10:00:00 GMT").unwrap();
        assert_eq!(retry_after(&at("3"), now), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(&at(" 0 "), now), Some(Duration::ZERO));
        assert_eq!(
            retry_after(&at("Tue, 24 Nov 2026 10:00:07 GMT"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&at("Tue, 24 Nov 2026 09:59:00 GMT"), now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(retry_after(&at("soon"), now), None);
        assert_eq!(retry_after(&at("-5"), now), None);
        assert_eq!(retry_after(&header::HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        for attempt in 0..10 {
            let d = backoff(attempt);
            let base = Duration::from_millis(100 * (1u64 << attempt.min(5))).min(Duration::from_secs(2));
            assert!(d >= base / 2 && d <= base * 3 / 2, "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn credentials_stay_with_the_registry() {
        let url = Url::parse("https://reg.io/v2/x").unwrap();
        assert!(same_authority(&url, "reg.io"));
        assert!(same_authority(&url, "reg.io:443"));
        assert!(!same_authority(
            &Url::parse("https://s3.amazonaws.com/b").unwrap(),
            "reg.io"
        ));
        assert!(same_authority(
            &Url::parse("http://127.0.0.1:5000/v2/").unwrap(),
            "127.0.0.1:5000"
        ));
    }
}
