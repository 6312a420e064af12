//! Benchmark (ignored; run with `bench/controller-restart.sh`): the running controller with the
//! real registry client against a real docker-registry (through a counting proxy) and the fake
//! API server, for a repository of N Packages (default 1,000): first reconcile, a restart with
//! nothing changed, and a resync, each with its registry requests and API writes; how long after
//! a control-plane restart a new repository is reconciled; peak RSS of the whole test process (the
//! fake API server and its stored objects included).
mod apiserver;
mod copy_proxy;
mod support;

use apiserver::FakeApiServer;
use apiserver::controller::{NS, Options, Running};
use pkgr::controller::metrics::Metrics;
use pkgr::controller::source::RegistrySource;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const REPOS: &str = "install.package.carvel.dev/v1alpha1/packagerepositories";

async fn start(api: &FakeApiServer, metrics: Arc<Metrics>) -> Running {
    let options = Options {
        apply_concurrency: 32,
        fetch_concurrency: 1,
        reconcile_concurrency: 8,
        metrics,
        per_reconcile_bytes: None,
    };
    Running::start(api, Arc::new(RegistrySource::new(Default::default())), options).await
}

/// `BENCH_BESIDE_KAPP=1`: the fake API server runs kapp-controller's packaging API, and pkgr
/// delivers into its global namespace (the mode the benchmark reports).
fn beside_kapp(api: &FakeApiServer) -> &'static str {
    if std::env::var("BENCH_BESIDE_KAPP").is_ok_and(|v| v == "1") {
        api.install_kapp_controller(None, true, true);
        "beside kapp-controller"
    } else {
        "standalone"
    }
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Push a repository bundle of `count` Packages of `bench.corp.com` to `image`.
fn push_packages(image: &str, count: usize, flags: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    support::data::repository_bundle(dir.path(), "bench.corp.com", count);
    let pushed = std::process::Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .args(["push", "-b", image, "-f", dir.path().to_str().unwrap()])
        .args(flags)
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
}

/// VmRSS and VmHWM of a process, in MiB.
fn rss_of(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The `pkgr controller` process itself (the release binary, as deployed) against the fake API
/// server: its memory while it holds a repository of N Packages (default 10,000) after the first
/// reconcile, and after a resync. Run with `bench/controller-rss.sh [N]`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: bench/controller-rss.sh"]
async fn bench_controller_process_memory() {
    let count: usize = std::env::var("PACKAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let registry = support::registry::TestRegistry::start();
    let image = registry.repo("bench/repo:1.0.0");
    push_packages(&image, count, &[]);
    let api = FakeApiServer::start().await;
    let mode = beside_kapp(&api);
    let kubeconfig = api.kubeconfig();
    let mut controller = std::process::Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .args([
            "controller",
            "--metrics-address",
            "127.0.0.1:0",
            "--namespace",
            NS,
        ])
        .env("KUBECONFIG", kubeconfig.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Idle: every watch is open.
    api.wait_for("the controller's watches", Duration::from_secs(60), |api| {
        let watching = |resource: &str| api.log().iter().any(|l| l.watch && l.path.ends_with(resource));
        (watching("packagerepositories") && watching("packages") && watching("secrets")).then_some(())
    })
    .await;
    let (idle, _) = rss_of(controller.id());
    let started = Instant::now();
    api.create(
        REPOS,
        None,
        "bench",
        json!({"apiVersion": "install.package.carvel.dev/v1alpha1",
        "kind": "PackageRepository", "metadata": {"name": "bench"},
        "spec": {"fetch": {"imgpkgBundle": {"image": image}}}}),
    );
    let described = |api: &FakeApiServer| -> Option<Value> {
        let description = api
            .get(REPOS, None, "bench")?
            .pointer("/status/friendlyDescription")?
            .clone();
        (description != "Reconciling").then_some(description)
    };
    let outcome = api
        .wait_for("a reconcile outcome", Duration::from_secs(600), described)
        .await;
    assert_eq!(outcome, Value::from("ReconcileSucceeded"));
    let first = started.elapsed();
    if mode != "standalone" {
        // What `kubectl get packages -n default` shows through kapp-controller's API.
        assert_eq!(api.packages_served_in("default").len(), count);
    }
    // The reconcile ends with its Event, after the status.
    let reconciled = |n: usize| {
        move |api: &FakeApiServer| {
            let events = api
                .log()
                .iter()
                .filter(|l| l.is_write() && l.path.contains("/events"))
                .count();
            (events >= n).then_some(())
        }
    };
    api.wait_for(
        "the first reconcile's Event",
        Duration::from_secs(60),
        reconciled(1),
    )
    .await;
    let (after, peak) = rss_of(controller.id());
    // The spec edited (syncPeriod): a second full pass.
    api.edit(REPOS, None, "bench", json!({"spec": {"syncPeriod": "6m"}}));
    api.wait_for("the resync", Duration::from_secs(600), |api| {
        let repo = api.get(REPOS, None, "bench")?;
        (repo.pointer("/status/observedGeneration") == repo.pointer("/metadata/generation")).then_some(())
    })
    .await;
    api.wait_for(
        "the second reconcile's Event",
        Duration::from_secs(60),
        reconciled(2),
    )
    .await;
    let (resynced, peak_after_resync) = rss_of(controller.id());
    let _ = controller.kill();
    let _ = controller.wait();
    println!(
        "pkgr controller process ({mode}), {count} Packages: RSS {idle:.1} MiB idle before; first reconcile {first:?}, \
         then RSS {after:.1} MiB (peak {peak:.1} MiB); after a second full pass (spec edited) RSS \
         {resynced:.1} MiB (peak {peak_after_resync:.1} MiB)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: bench/controller-restart.sh"]
async fn bench_first_reconcile_restart_and_resync() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("BENCH_LOG"))
        .with_writer(std::io::stderr)
        .try_init();
    let count: usize = std::env::var("PACKAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    // A token-auth registry (the Bearer flow of most private registries): the token server counts
    // token exchanges, the proxy counts registry requests.
    let tokens = support::token::TokenServer::start("bench", "s3cret");
    let registry = support::registry::TestRegistry::start_token_auth(&tokens, "bench", "s3cret");
    let proxy = copy_proxy::Proxy::start(&registry.host).await;
    let image = format!("{}/bench/repo:1.0.0", proxy.host);
    push_packages(
        &image,
        count,
        &["--registry-username", "bench", "--registry-password", "s3cret"],
    );

    let api = FakeApiServer::start().await;
    let mode = beside_kapp(&api);
    api.create(
        "v1/secrets",
        Some(NS),
        "creds",
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds", "namespace": NS}, "stringData": {"username": "bench", "password": "s3cret"}}),
    );
    let metrics = Arc::new(Metrics::default());
    let running = start(&api, metrics.clone()).await;
    proxy.clear();
    tokens.clear();
    api.clear_log();
    let started = Instant::now();
    api.create(
        REPOS,
        None,
        "bench",
        json!({"apiVersion": "install.package.carvel.dev/v1alpha1",
        "kind": "PackageRepository", "metadata": {"name": "bench"},
        "spec": {"fetch": {"imgpkgBundle": {"image": image, "secretRef": {"name": "creds"}}}}}),
    );
    let outcome = api
        .wait_for("a reconcile outcome", Duration::from_secs(120), |api| {
            let description = api
                .get(REPOS, None, "bench")?
                .pointer("/status/friendlyDescription")?
                .clone();
            (description != "Reconciling").then_some(description)
        })
        .await;
    assert_eq!(
        outcome,
        Value::from("ReconcileSucceeded"),
        "{:?}",
        api.get(REPOS, None, "bench")
    );
    let first = started.elapsed();
    let writes = |api: &FakeApiServer| api.log().iter().filter(|l| l.is_write()).count();
    println!(
        "first reconcile of {count} Packages ({mode}): {first:?}, {} registry requests, {} token requests, {} API requests ({} writes)",
        proxy.requests().len(),
        tokens.requests().len(),
        api.log().len(),
        writes(&api)
    );

    // The reconcile's Event is posted after its status: let it land before counting the resync.
    api.wait_for("the ReconcileSucceeded Event", Duration::from_secs(30), |api| {
        api.log()
            .iter()
            .any(|l| l.method == "POST" && l.path.ends_with("/events"))
            .then_some(())
    })
    .await;
    // A resync (the credential Secret touched): the digest short-cut.
    proxy.clear();
    tokens.clear();
    api.clear_log();
    let unchanged = running.outcomes("unchanged");
    api.edit(
        "v1/secrets",
        Some(NS),
        "creds",
        json!({"metadata": {"annotations": {"touched": "1"}}}),
    );
    running.wait_outcome("unchanged", unchanged + 1).await;
    let resync_writes = writes(&api); // the edit itself is not a request
    let write_lines = |api: &FakeApiServer| -> Vec<String> {
        api.log()
            .iter()
            .filter(|l| l.is_write())
            .map(|l| format!("{} {}", l.method, l.path))
            .collect()
    };
    println!("resync API writes: {:?}", write_lines(&api));
    println!(
        "resync: {} registry requests ({:?}), {} token requests, {resync_writes} API writes",
        proxy.requests().len(),
        proxy
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>(),
        tokens.requests().len()
    );
    running.stop().await;

    // A restart with nothing changed.
    proxy.clear();
    tokens.clear();
    api.clear_log();
    let metrics = Arc::new(Metrics::default());
    let started = Instant::now();
    let running = start(&api, metrics.clone()).await;
    running.wait_outcome("unchanged", 1).await;
    println!(
        "restart with nothing changed: {:?} to the short-cut, {} registry requests ({:?}), {} token requests, {} API writes",
        started.elapsed(),
        proxy.requests().len(),
        proxy
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>(),
        tokens.requests().len(),
        writes(&api)
    );

    // A control-plane restart: the API server away for 3 s (its watch history compacted), back
    // answering 503 to its first requests. tests/controller_protocol.rs checks how the watches
    // recover; this measures how long until a repository created on its return is reconciled.
    api.stop();
    tokio::time::sleep(Duration::from_secs(3)).await; // the outage itself, not a synchronisation
    api.restart(6).await;
    let back = Instant::now();
    let package = "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata:\n  name: after.corp.com.1.0.0\nspec:\n  refName: after.corp.com\n  version: 1.0.0\n";
    api.create(
        REPOS,
        None,
        "after-outage",
        json!({"apiVersion": "install.package.carvel.dev/v1alpha1",
        "kind": "PackageRepository", "metadata": {"name": "after-outage"},
        "spec": {"fetch": {"inline": {"paths": {"packages/p.yml": package}}}}}),
    );
    api.wait_for("after-outage to be reconciled", Duration::from_secs(120), |api| {
        let description = api
            .get(REPOS, None, "after-outage")?
            .pointer("/status/friendlyDescription")?
            .clone();
        (description == "ReconcileSucceeded").then_some(())
    })
    .await;
    println!(
        "control-plane restart (3 s away): a new repository reconciled {:?} after the API server's return",
        back.elapsed()
    );
    running.stop().await;
    println!("peak RSS of the test process: {:.1} MiB", peak_rss_mib());
}
