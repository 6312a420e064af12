//! Reconcile counts and durations by outcome, rendered as Prometheus text.
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the duration histogram buckets.
const BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Default, Clone)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Process-wide reconcile metrics.
#[derive(Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<String, Series>>,
    status_writes: AtomicU64,
    status_write_failures: AtomicU64,
}

impl Metrics {
    /// Count one status write (failed or timed out when `ok` is false).
    pub fn status_write(&self, ok: bool) {
        self.status_writes.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.status_write_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Count one reconcile that ended with `outcome` after `elapsed`.
    pub fn observe(&self, outcome: &str, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let entry = series.entry(outcome.to_string()).or_default();
        entry.count += 1;
        entry.sum += seconds;
        for (bound, bucket) in BUCKETS.iter().zip(entry.buckets.iter_mut()) {
            if seconds <= *bound {
                *bucket += 1;
            }
        }
    }

    /// How many reconciles ended with `outcome`.
    pub fn count(&self, outcome: &str) -> u64 {
        self.series
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(outcome)
            .map_or(0, |s| s.count)
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out = String::new();
        out.push_str("# HELP pkgr_reconciles_total PackageRepository reconciles by outcome.\n");
        out.push_str("# TYPE pkgr_reconciles_total counter\n");
        for (outcome, s) in &series {
            out.push_str(&format!(
                "pkgr_reconciles_total{{outcome=\"{outcome}\"}} {}\n",
                s.count
            ));
        }
        out.push_str("# HELP pkgr_status_writes_total PackageRepository status writes.\n");
        out.push_str("# TYPE pkgr_status_writes_total counter\n");
        out.push_str(&format!(
            "pkgr_status_writes_total {}\n",
            self.status_writes.load(Ordering::Relaxed)
        ));
        out.push_str("# HELP pkgr_status_write_failures_total Status writes that failed or timed out.\n");
        out.push_str("# TYPE pkgr_status_write_failures_total counter\n");
        out.push_str(&format!(
            "pkgr_status_write_failures_total {}\n",
            self.status_write_failures.load(Ordering::Relaxed)
        ));
        out.push_str("# HELP pkgr_reconcile_duration_seconds Time one reconcile took, by outcome.\n");
        out.push_str("# TYPE pkgr_reconcile_duration_seconds histogram\n");
        for (outcome, s) in &series {
            for (bound, bucket) in BUCKETS.iter().zip(s.buckets.iter()) {
                out.push_str(&format!(
                    "pkgr_reconcile_duration_seconds_bucket{{outcome=\"{outcome}\",le=\"{bound}\"}} {bucket}\n"
                ));
            }
            out.push_str(&format!(
                "pkgr_reconcile_duration_seconds_bucket{{outcome=\"{outcome}\",le=\"+Inf\"}} {}\n",
                s.count
            ));
            out.push_str(&format!(
                "pkgr_reconcile_duration_seconds_sum{{outcome=\"{outcome}\"}} {}\n",
                s.sum
            ));
            out.push_str(&format!(
                "pkgr_reconcile_duration_seconds_count{{outcome=\"{outcome}\"}} {}\n",
                s.count
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.observe("succeeded", Duration::from_millis(30));
        metrics.observe("succeeded", Duration::from_millis(700));
        metrics.observe("failed", Duration::from_secs(60));
        let text = metrics.render();
        assert!(
            text.contains("pkgr_reconciles_total{outcome=\"succeeded\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("pkgr_reconciles_total{outcome=\"failed\"} 1\n"));
        assert!(
            text.contains("pkgr_reconcile_duration_seconds_bucket{outcome=\"succeeded\",le=\"0.05\"} 1\n")
        );
        assert!(text.contains("pkgr_reconcile_duration_seconds_bucket{outcome=\"succeeded\",le=\"1\"} 2\n"));
        assert!(text.contains("pkgr_reconcile_duration_seconds_bucket{outcome=\"failed\",le=\"30\"} 0\n"));
        assert!(text.contains("pkgr_reconcile_duration_seconds_bucket{outcome=\"failed\",le=\"+Inf\"} 1\n"));
        assert_eq!(metrics.count("succeeded"), 2);
        metrics.status_write(true);
        metrics.status_write(false);
        let text = metrics.render();
        assert!(text.contains("pkgr_status_writes_total 2\n"), "{text}");
        assert!(text.contains("pkgr_status_write_failures_total 1\n"), "{text}");
    }
}
