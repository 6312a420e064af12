//! `pkgr controller`: run the PackageRepository controller with the current kubeconfig or in-cluster.
use super::CommandResult;
use crate::controller::source::{RegistrySource, Source as _};
use crate::controller::{self, config, leader, metrics::Metrics, server};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

#[derive(clap::Args, Debug)]
pub struct ControllerArgs {
    /// Namespace holding registry Secrets, `kapp-controller-config` and the leader Lease.
    #[arg(long, env = "PKGR_NAMESPACE", default_value = "kapp-controller")]
    namespace: String,
    /// PackageRepositories reconciled at once.
    #[arg(long, env = "PKGR_CONCURRENCY", default_value_t = 8)]
    concurrency: u16,
    /// Server-side applies in flight at once within one repository.
    #[arg(long, env = "PKGR_APPLY_CONCURRENCY", default_value_t = 32)]
    apply_concurrency: usize,
    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, env = "PKGR_METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    metrics_address: SocketAddr,
    /// Log format.
    #[arg(long, env = "PKGR_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Elect one active replica through a coordination.k8s.io Lease (for more than one replica).
    #[arg(long, env = "PKGR_LEADER_ELECT", default_value_t = false)]
    leader_elect: bool,
    /// Name of the Lease used for leader election.
    #[arg(long, env = "PKGR_LEASE_NAME", default_value = "pkgr-controller")]
    lease_name: String,
    /// Memory the controller may spend on repositories being fetched and read (e.g. 512Mi): it
    /// decides how many are fetched at once and how large one may expand. Default: the
    /// container's memory limit less 48 MiB, or unbounded without a limit.
    #[arg(long, env = "PKGR_MEMORY_BUDGET", value_parser = controller::budget::parse_quantity)]
    memory_budget: Option<u64>,
    /// Registry CA certificate (PEM) to trust, in addition to `kapp-controller-config`'s caCerts.
    #[arg(long = "registry-ca-cert-path")]
    registry_ca_cert_path: Vec<std::path::PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PKGR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub async fn run(args: ControllerArgs) -> CommandResult {
    init_logging(args.log_format);
    let client = kube::Client::try_default().await.map_err(|e| {
        format!("cannot reach the Kubernetes API (current kubeconfig or in-cluster service account): {e}")
    })?;
    let mode = controller::mode::detect(&client).await?;

    let mut options = crate::registry::ClientOptions::default();
    for path in &args.registry_ca_cert_path {
        let pem = std::fs::read(path)
            .map_err(|e| format!("reading --registry-ca-cert-path {}: {e}", path.display()))?;
        options.ca_certs_pem.push(pem);
    }
    // Read once here so that a broken config stops the start with a clear message; later
    // changes are picked up from the Secret watch (a broken edit keeps the last good settings).
    let budget = controller::budget::plan(
        args.memory_budget.or_else(controller::budget::from_cgroup),
        usize::from(args.concurrency),
    )?;
    tracing::info!(
        fetches_at_once = budget.fetches,
        max_repository_mib = budget.max_repository_bytes >> 20,
        "memory budget"
    );
    let mut source = RegistrySource::new(options);
    source.limits.max_bytes = budget.max_repository_bytes;
    // A cluster user's words (config keys, not CLI flags), as in the statuses.
    let config_error = |e: config::ConfigError| controller::error::full_chain(&e);
    let config = config::load(&client, &args.namespace)
        .await
        .map_err(config_error)?;
    source.reconfigure(config.as_ref()).map_err(config_error)?;

    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(server::Health::default());
    let listener = server::bind(args.metrics_address)
        .await
        .map_err(|e| format!("cannot listen on --metrics-address {}: {e}", args.metrics_address))?;
    tokio::spawn(server::serve(listener, metrics.clone(), health.clone()));
    // Ready once the startup checks pass; a standby replica is ready too.
    health.ready.store(true, Ordering::Relaxed);

    let settings = controller::Settings {
        namespace: args.namespace.clone(),
        apply_concurrency: args.apply_concurrency,
        fetch_concurrency: budget.fetches,
        per_reconcile_bytes: budget.per_reconcile_bytes,
        sink: mode.sink.clone(),
        ..Default::default()
    };
    let source: Arc<dyn controller::source::Source> = Arc::new(source);
    let shutdown = terminated();

    if !args.leader_elect {
        tracing::info!(namespace = %args.namespace, mode = %mode.describe(), "pkgr controller starting");
        controller::mode::run_following(
            client,
            source,
            settings,
            mode,
            args.concurrency,
            shutdown,
            metrics,
            health.watches.clone(),
        )
        .await;
        return Ok(ExitCode::SUCCESS);
    }

    let identity = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("pkgr-{}", std::process::id()));
    let elector = Arc::new(leader::Elector::new(
        client.clone(),
        &args.namespace,
        &args.lease_name,
        &identity,
        leader::LeaseTimings::default(),
    ));
    tokio::select! {
        _ = elector.acquire() => {}
        _ = terminated() => return Ok(ExitCode::SUCCESS),
    }
    tracing::info!(identity = %identity, lease = %args.lease_name, mode = %mode.describe(), "leader: pkgr controller starting");
    let holder = elector.clone();
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        tokio::select! {
            _ = holder.hold() => tracing::warn!("leadership lost: stopping reconciles"),
            _ = terminated() => {}
        }
        let _ = lost_tx.send(());
    });
    let stop = async move {
        let _ = lost_rx.await;
    };
    controller::mode::run_following(
        client,
        source,
        settings,
        mode,
        args.concurrency,
        stop,
        metrics,
        health.watches.clone(),
    )
    .await;
    if let Err(error) = elector.release().await {
        tracing::warn!(error = %error, "could not release the Lease");
    }
    // Exit after losing the lease: the Deployment restarts us as a fresh candidate.
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM (what the kubelet sends before killing a pod) or SIGINT (Ctrl-C): stop taking new
/// reconciles, let the running ones finish, release the Lease, exit.
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(error) => {
            tracing::warn!(error = %error, "cannot listen for SIGTERM; only Ctrl-C stops the controller");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutdown requested: finishing running reconciles");
}
