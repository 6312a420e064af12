//! Verified streams: downloads hashed and counted as they pass, uploads counted and watched.
use super::classify::error_chain;
use crate::registry::{Digest, RegistryError};
use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use sha2::{Digest as _, Sha256};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The download side of verification: counts and hashes every chunk as it passes.
pub(super) struct Verifying {
    pub(super) inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    pub(super) hasher: Sha256,
    pub(super) received: u64,
    pub(super) expected_size: u64,
    pub(super) expected_digest: Digest,
    pub(super) action: String,
    pub(super) registry: String,
    pub(super) done: bool,
    /// The digest was checked when the last expected byte arrived.
    pub(super) checked: bool,
}

impl Verifying {
    /// The digest of everything received, against the expected one.
    fn digest_error(&mut self) -> Option<RegistryError> {
        self.checked = true;
        let actual = Digest::from_sha256(std::mem::take(&mut self.hasher));
        (actual != self.expected_digest).then(|| RegistryError::DigestMismatch {
            action: self.action.clone(),
            expected: self.expected_digest.to_string(),
            actual: actual.to_string(),
        })
    }
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
                // Checked as the last byte arrives, the wrong content fails before that chunk
                // goes on: a consumer that stops at the declared length (an upload with a
                // Content-Length) never polls for the end, and must not pass a lie on whole.
                if self.received == self.expected_size
                    && let Some(error) = self.digest_error()
                {
                    self.done = true;
                    return Poll::Ready(Some(Err(error)));
                }
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
                if !self.checked
                    && let Some(error) = self.digest_error()
                {
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(None)
            }
        }
    }
}

/// When an upload last moved, and how far it got (shared with the watchdog).
#[derive(Clone)]
pub(super) struct Progress {
    start: Instant,
    last_millis: Arc<std::sync::atomic::AtomicU64>,
    pub(super) sent: Arc<std::sync::atomic::AtomicU64>,
}

impl Progress {
    pub(super) fn new() -> Progress {
        Progress {
            start: Instant::now(),
            last_millis: Arc::default(),
            sent: Arc::default(),
        }
    }
    pub(super) fn touch(&self, sent: u64) {
        use std::sync::atomic::Ordering;
        let millis = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_millis.store(millis, Ordering::Relaxed);
        self.sent.store(sent, Ordering::Relaxed);
    }
    pub(super) fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_millis.load(std::sync::atomic::Ordering::Relaxed))
    }
    pub(super) fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The upload side: passes chunks on and fails the request if the source yields a different size.
pub(super) struct CountedBody<S> {
    pub(super) inner: Pin<Box<S>>,
    pub(super) expected: u64,
    pub(super) sent: u64,
    pub(super) failure: Arc<Mutex<Option<String>>>,
    pub(super) progress: Progress,
}

impl<S> CountedBody<S> {
    pub(super) fn new(
        inner: S,
        expected: u64,
        failure: Arc<Mutex<Option<String>>>,
        progress: Progress,
    ) -> Self {
        CountedBody {
            inner: Box::pin(inner),
            expected,
            sent: 0,
            failure,
            progress,
        }
    }

    pub(super) fn fail(&self, message: String) -> Poll<Option<Result<Bytes, std::io::Error>>> {
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
    pub(super) inner: Pin<Box<dyn Stream<Item = Result<Bytes, RegistryError>> + Send>>,
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
