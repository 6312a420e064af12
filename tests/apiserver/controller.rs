//! The controller running in the test process against the fake API server, started as
//! `pkgr controller` starts it (the config is read once, then the watches run), with its own
//! metrics to count reconcile outcomes.
use super::FakeApiServer;
use pkgr::controller::Settings;
use pkgr::controller::config;
use pkgr::controller::metrics::Metrics;
use pkgr::controller::source::Source;
use pkgr::controller::watch::WatchHealth;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The namespace the controller runs in (where `kapp-controller-config` lives).
pub const NS: &str = "kapp-controller";

/// How the controller is started.
pub struct Options {
    pub apply_concurrency: usize,
    pub fetch_concurrency: usize,
    pub reconcile_concurrency: u16,
    pub metrics: Arc<Metrics>,
    /// What one reconcile may hold (the memory budget's share), `None`: unbounded.
    pub per_reconcile_bytes: Option<u64>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            apply_concurrency: 4,
            fetch_concurrency: 2,
            reconcile_concurrency: 4,
            metrics: Arc::new(Metrics::default()),
            per_reconcile_bytes: None,
        }
    }
}

/// A running controller; `stop` ends it as SIGTERM does.
pub struct Running {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    pub metrics: Arc<Metrics>,
    pub watches: Arc<WatchHealth>,
}

impl Running {
    pub async fn start(api: &FakeApiServer, source: Arc<dyn Source>, options: Options) -> Running {
        let client = api.client();
        let startup = config::load(&client, NS)
            .await
            .expect("read kapp-controller-config at start");
        source
            .reconfigure(startup.as_ref())
            .expect("kapp-controller-config at start is valid");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let watches = Arc::new(WatchHealth::default());
        // As `pkgr controller` does: the mode the cluster is in, followed while it runs.
        let mode = pkgr::controller::mode::detect(&client)
            .await
            .expect("the cluster has what the controller needs");
        let task = tokio::spawn(pkgr::controller::mode::run_following(
            client,
            source,
            Settings {
                namespace: NS.into(),
                apply_concurrency: options.apply_concurrency,
                fetch_concurrency: options.fetch_concurrency,
                per_reconcile_bytes: options.per_reconcile_bytes,
                ..Default::default()
            },
            mode,
            options.reconcile_concurrency,
            async move {
                let _ = stopped.await;
            },
            options.metrics.clone(),
            watches.clone(),
        ));
        Running {
            stop: Some(stop),
            task,
            metrics: options.metrics,
            watches,
        }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(20), &mut self.task)
            .await
            .expect("the controller stops within 20 s")
            .unwrap();
    }

    /// How many reconciles ended with `outcome`, from the controller's own metrics.
    pub fn outcomes(&self, outcome: &str) -> u64 {
        outcomes(&self.metrics, outcome)
    }

    /// Wait (bounded) until at least `count` reconciles ended with `outcome`.
    pub async fn wait_outcome(&self, outcome: &str, count: u64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.outcomes(outcome) < count {
            assert!(
                Instant::now() < deadline,
                "fewer than {count} {outcome} reconciles within 120 s: {}",
                self.metrics.render()
            );
            // The metrics have no change notification: poll them.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// How many reconciles ended with `outcome`, from the controller's own metrics.
pub fn outcomes(metrics: &Metrics, outcome: &str) -> u64 {
    let needle = format!("pkgr_reconciles_total{{outcome=\"{outcome}\"}} ");
    metrics
        .render()
        .lines()
        .find_map(|l| {
            l.strip_prefix(needle.as_str())
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}
