//! Retries: which failures are tried again, how long to wait, and `Retry-After`.
use super::{Client, Op};
use crate::registry::RegistryError;
use reqwest::header;
use std::hash::{BuildHasher as _, Hasher as _};
use std::time::Duration;

impl Client {
    /// Run `f` again after retryable failures, with exponential backoff and jitter.
    ///
    /// `f` is a plain closure returning a future (not an async closure) so that the futures of
    /// the public methods stay `Send`; it captures only references, copied into each attempt.
    pub(super) async fn retrying<T, F, Fut>(&self, op: &Op, f: F) -> Result<T, RegistryError>
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
}

/// The longest a `Retry-After` header can hold one retry back.
pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// `Retry-After` as delta-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to `now`.
pub(super) fn retry_after(headers: &header::HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// 100 ms × 2^attempt, capped at 2 s, with ±50 % jitter so that parallel transfers spread out.
pub(super) fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(100)
        .saturating_mul(1u32 << attempt.min(5))
        .min(Duration::from_secs(2));
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let factor = 0.5 + (random % 1000) as f64 / 1000.0;
    base.mul_f64(factor)
}
#[cfg(test)]
mod tests {
    use super::*;

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
}
