//! The status a reconcile reports (SPEC Reconcile 7), computed purely from the old status.
use super::error::{full_chain, short_reason};
use crate::api::{
    CONDITION_DELETE_FAILED, CONDITION_DELETING, CONDITION_RECONCILE_FAILED, CONDITION_RECONCILE_SUCCEEDED,
    CONDITION_RECONCILING, Condition, FetchStatus, PackageRepositoryStatus,
};
use std::time::Duration;

pub const DESCRIPTION_SUCCEEDED: &str = "ReconcileSucceeded";
pub const DESCRIPTION_DELETING: &str = "Deleting";
pub const DESCRIPTION_RECONCILING: &str = "Reconciling";
pub const DESCRIPTION_PAUSED: &str = "Paused";

/// Default and smallest `syncPeriod`.
pub const DEFAULT_SYNC_PERIOD: Duration = Duration::from_secs(300);
pub const MIN_SYNC_PERIOD: Duration = Duration::from_secs(30);

/// RFC 3339 "now" to the second, as Kubernetes writes times.
pub fn now() -> String {
    use k8s_openapi::jiff::{Timestamp, Unit};
    Timestamp::now()
        .round(Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| Timestamp::now().to_string())
}

/// One condition of `type_` = True, keeping `lastTransitionTime` when the old list already said so.
fn condition(
    old: Option<&PackageRepositoryStatus>,
    type_: &str,
    reason: Option<String>,
    message: Option<String>,
    now: &str,
) -> Condition {
    let previous = old.and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == type_ && c.status == "True")
    });
    Condition {
        type_: type_.to_string(),
        status: "True".to_string(),
        reason,
        message,
        last_transition_time: Some(
            previous
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| now.to_string()),
        ),
    }
}

/// Status after a successful reconcile.
pub fn succeeded(
    old: Option<&PackageRepositoryStatus>,
    generation: Option<i64>,
    fetch: FetchStatus,
    package_count: i64,
    now: &str,
) -> PackageRepositoryStatus {
    PackageRepositoryStatus {
        observed_generation: generation,
        conditions: vec![condition(old, CONDITION_RECONCILE_SUCCEEDED, None, None, now)],
        friendly_description: Some(DESCRIPTION_SUCCEEDED.to_string()),
        useful_error_message: None,
        consecutive_reconcile_successes: old.map_or(0, |s| s.consecutive_reconcile_successes) + 1,
        consecutive_reconcile_failures: 0,
        fetch: Some(fetch),
        package_count: Some(package_count),
        destination: old.and_then(|s| s.destination.clone()),
    }
}

/// Status after a failed reconcile; the last good fetch and count stay visible.
pub fn failed(
    old: Option<&PackageRepositoryStatus>,
    generation: Option<i64>,
    error: &(dyn std::error::Error + 'static),
    now: &str,
) -> PackageRepositoryStatus {
    let short = short_reason(error);
    PackageRepositoryStatus {
        observed_generation: generation,
        conditions: vec![condition(
            old,
            CONDITION_RECONCILE_FAILED,
            Some("ReconcileFailed".into()),
            Some(short.clone()),
            now,
        )],
        friendly_description: Some(format!("ReconcileFailed: {short}")),
        useful_error_message: Some(full_chain(error)),
        consecutive_reconcile_successes: 0,
        consecutive_reconcile_failures: old.map_or(0, |s| s.consecutive_reconcile_failures) + 1,
        fetch: old.and_then(|s| s.fetch.clone()),
        package_count: old.and_then(|s| s.package_count),
        destination: old.and_then(|s| s.destination.clone()),
    }
}

/// Status of a paused repository: the rest of the old status is kept.
pub fn paused(old: Option<&PackageRepositoryStatus>, generation: Option<i64>) -> PackageRepositoryStatus {
    let mut status = old.cloned().unwrap_or_default();
    status.observed_generation = generation;
    status.friendly_description = Some(DESCRIPTION_PAUSED.to_string());
    status
}

/// Status while a new or edited spec is reconciled (observedGeneration still the last one done).
pub fn reconciling(old: Option<&PackageRepositoryStatus>, now: &str) -> PackageRepositoryStatus {
    let mut status = old.cloned().unwrap_or_default();
    status.conditions = vec![condition(old, CONDITION_RECONCILING, None, None, now)];
    status.friendly_description = Some(DESCRIPTION_RECONCILING.to_string());
    status
}

/// Status while the repository's objects are being deleted, or after that failed.
pub fn deleting(
    old: Option<&PackageRepositoryStatus>,
    error: Option<&(dyn std::error::Error + 'static)>,
    now: &str,
) -> PackageRepositoryStatus {
    let mut status = old.cloned().unwrap_or_default();
    match error {
        None => {
            status.conditions = vec![condition(old, CONDITION_DELETING, None, None, now)];
            status.friendly_description = Some(DESCRIPTION_DELETING.to_string());
            status.useful_error_message = None;
        }
        Some(error) => {
            let short = short_reason(error);
            status.conditions = vec![condition(
                old,
                CONDITION_DELETE_FAILED,
                Some("DeleteFailed".into()),
                Some(short.clone()),
                now,
            )];
            status.friendly_description = Some(format!("DeleteFailed: {short}"));
            status.useful_error_message = Some(full_chain(error));
        }
    }
    status
}

/// `spec.syncPeriod` with its default and floor; `None` when it does not parse.
pub fn sync_period(spec: Option<&str>) -> Option<Duration> {
    match spec {
        None => Some(DEFAULT_SYNC_PERIOD),
        Some(text) => crate::registry::parse_go_duration(text)
            .ok()
            .map(|d| d.max(MIN_SYNC_PERIOD)),
    }
}

/// `period` ±10%, spread by `seed` (any varying number) so repositories do not resync in lockstep.
pub fn jitter(period: Duration, seed: u64) -> Duration {
    let fraction = (seed % 2001) as f64 / 1000.0 - 1.0; // -1.0 ..= 1.0
    period.mul_f64(1.0 + 0.1 * fraction)
}

/// Delay before retrying after `failures` consecutive failures: `min(2^failures s, period)`.
pub fn backoff(failures: i64, period: Duration) -> Duration {
    let exponent = failures.clamp(0, 30) as u32;
    Duration::from_secs(1u64 << exponent).min(period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_periods() {
        assert_eq!(sync_period(Some("1h30m")), Some(Duration::from_secs(5400)));
        for bad in ["", "5", "m", "5x", "1h-2m"] {
            assert_eq!(sync_period(Some(bad)), None, "{bad}");
        }
        assert_eq!(sync_period(None), Some(DEFAULT_SYNC_PERIOD));
        assert_eq!(sync_period(Some("10s")), Some(MIN_SYNC_PERIOD));
        assert_eq!(sync_period(Some("2m")), Some(Duration::from_secs(120)));
        assert_eq!(sync_period(Some("soon")), None);
    }

    #[test]
    fn jitter_stays_within_ten_percent_and_varies() {
        let period = Duration::from_secs(300);
        let values: Vec<_> = (0..50u64).map(|s| jitter(period, s * 97)).collect();
        assert!(
            values
                .iter()
                .all(|d| *d >= Duration::from_secs(270) && *d <= Duration::from_secs(330))
        );
        assert!(values.iter().any(|d| *d != values[0]));
    }

    #[test]
    fn backoff_doubles_up_to_the_sync_period() {
        let period = Duration::from_secs(300);
        assert_eq!(backoff(1, period), Duration::from_secs(2));
        assert_eq!(backoff(3, period), Duration::from_secs(8));
        assert_eq!(backoff(20, period), period);
    }

    #[test]
    fn transition_time_is_kept_while_the_condition_holds() {
        let fetch = FetchStatus::default();
        let first = succeeded(None, Some(1), fetch.clone(), 3, "2026-01-01T00:00:00Z");
        let second = succeeded(Some(&first), Some(1), fetch.clone(), 3, "2026-01-01T00:05:00Z");
        assert_eq!(
            second.conditions[0].last_transition_time.as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
        assert_eq!(second.consecutive_reconcile_successes, 2);
        let error = super::super::error::ReconcileError::NoSource;
        let third = failed(Some(&second), Some(2), &error, "2026-01-01T00:10:00Z");
        assert_eq!(third.conditions.len(), 1);
        assert_eq!(third.conditions[0].type_, CONDITION_RECONCILE_FAILED);
        assert_eq!(
            third.conditions[0].last_transition_time.as_deref(),
            Some("2026-01-01T00:10:00Z")
        );
        assert_eq!(
            third.friendly_description.as_deref(),
            Some(&*format!("ReconcileFailed: {error}"))
        );
        assert_eq!(third.package_count, Some(3), "the last good count stays");
        assert_eq!(third.consecutive_reconcile_failures, 1);
        assert_eq!(third.consecutive_reconcile_successes, 0);
    }
}
