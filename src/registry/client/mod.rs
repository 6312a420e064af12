//! The registry client: manifests, blobs, mounts, uploads and tags, each one operation of the
//! distribution API. How a request is sent, authorised, retried and checked lives in the
//! submodules, one job each.
//!
//! Built directly on `reqwest` (the copy oci-client already brings) rather than on
//! `oci_client::Client`, because relocation and the controller need control that client does
//! not give: manifests as raw bytes read under a size cap, blobs streamed with constant memory
//! and verified while streaming, HEAD-then-mount decisions left to the caller, bounded retries
//! that know a streamed upload cannot be replayed, and typed errors naming the reference.
use super::manifest::effective_media_type;
use super::{Credentials, Descriptor, Digest, MANIFEST_ACCEPT, Manifest, Reference, RegistryError};
use bytes::Bytes;
use reqwest::header;
use reqwest::{StatusCode, Url};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

mod challenge;
mod classify;
mod debug;
mod foreign;
mod options;
mod retry;
mod stream;
mod transport;
mod upload;
mod wire;

pub use debug::dump_like_go;
pub use foreign::BlobSource;
pub use options::ClientOptions;
pub use stream::BlobStream;
pub(crate) use wire::is_loopback;

use challenge::{Challenge, TokenKey, TokenSlot};
use options::{build_http, verified_tls};
use stream::Verifying;
use transport::SchemeSlot;
use wire::{content_digest, content_type, is_generic, manifest_path, next_link, read_capped};

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
        // The system's CA roots are read once, and both verifying clients share them.
        let tls = options.verify_certs.then(|| verified_tls(&options)).transpose()?;
        let verified = build_http(&options, tls.as_ref(), read_timeout)?;
        let upload_verified = build_http(&options, tls.as_ref(), None)?;
        let (unverified, upload_unverified) = if some_unverified {
            (
                Some(build_http(&options, None, read_timeout)?),
                Some(build_http(&options, None, None)?),
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
            checked: false,
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
                            fix: None,
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
            fix: None,
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
}

#[cfg(test)]
mod tests {
    use super::wire::same_authority;
    use super::*;

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
