//! Uploads: cross-repository mounts, streamed blob uploads (counted, watched for progress) and
//! small uploads from memory.
use super::classify::classify;
use super::stream::{CountedBody, Progress};
use super::wire::{same_authority, upload_location};
use super::{Client, Op, Subject};
use crate::registry::{Digest, Reference, RegistryError};
use bytes::Bytes;
use futures_util::Stream;
use reqwest::header;
use reqwest::{StatusCode, Url};
use std::sync::{Arc, Mutex};
use std::time::Instant;

impl Client {
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
        let request_sent = super::debug::Sent::new(&request);
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
        let mut resp = sent.map_err(|e| request_sent.classify(&e, &op))?;
        request_sent.answered(&mut resp);
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

    // ---- upload sessions ----

    /// Run an upload, failing it when neither the body nor the response moved for `read_timeout`.
    ///
    /// The clock restarts whenever a chunk is handed to the connection, so an upload may take
    /// as long as it needs while it progresses; after the last chunk the registry has
    /// `read_timeout` to answer.
    pub(super) async fn watch_progress<F>(
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

    pub(super) async fn start_upload(&self, op: &Op) -> Result<Url, RegistryError> {
        self.retrying(op, || self.start_upload_once(op)).await
    }

    pub(super) async fn start_upload_once(&self, op: &Op) -> Result<Url, RegistryError> {
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
}
