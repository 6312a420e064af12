//! The memory budget covers the whole reconcile: a repository too large to apply within what
//! the budget gives one reconcile fails before anything is written, with a status that names its
//! size, the budget and what to raise; within it, it is applied; and the `pkgr controller`
//! process given the shipped Deployment's budget stays under it through 10,000 Packages.
mod apiserver;
mod support;

use apiserver::FakeApiServer;
use apiserver::controller::{Options, Running};
use pkgr::controller::source::RegistrySource;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const REPOS: &str = "install.package.carvel.dev/v1alpha1/packagerepositories";
const PACKAGES: &str = "data.packaging.carvel.dev/v1alpha1/packages";

fn repository(count: usize) -> Value {
    let paths: serde_json::Map<String, Value> = (0..count)
        .map(|i| {
            (
                format!("packages/m.corp.com/{i}.yml"),
                json!(format!(
                    "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata:\n  name: m.corp.com.1.0.{i}\nspec:\n  refName: m.corp.com\n  version: 1.0.{i}\n  template:\n    spec:\n      fetch:\n      - imgpkgBundle:\n          image: registry.corp.example/app@sha256:{}\n",
                    "a".repeat(64)
                )),
            )
        })
        .collect();
    json!({"apiVersion": "install.package.carvel.dev/v1alpha1", "kind": "PackageRepository",
           "metadata": {"name": "big"}, "spec": {"fetch": {"inline": {"paths": paths}}}})
}

async fn outcome_with(allowance: u64, count: usize) -> (FakeApiServer, Value) {
    let api = FakeApiServer::start().await;
    let running = Running::start(
        &api,
        Arc::new(RegistrySource::new(Default::default())),
        Options {
            per_reconcile_bytes: Some(allowance),
            ..Options::default()
        },
    )
    .await;
    api.create(REPOS, None, "big", repository(count));
    let status = api
        .wait_for("an outcome", Duration::from_secs(60), |api| {
            let status = api.get(REPOS, None, "big")?.get("status")?.clone();
            let description = status["friendlyDescription"].as_str()?;
            (description != "Reconciling").then_some(status)
        })
        .await;
    running.stop().await;
    (api, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_beyond_the_budget_fails_before_any_write_and_says_what_to_raise() {
    let (api, status) = outcome_with(1 << 20, 500).await;
    let text = status["friendlyDescription"].as_str().unwrap();
    assert!(text.starts_with("ReconcileFailed: "), "{text}");
    let message = status["usefulErrorMessage"].as_str().unwrap();
    assert!(
        message.contains("500 Packages and PackageMetadatas")
            && message.contains("more than the 1 MiB the controller's memory budget gives one reconcile")
            && message.contains("nothing was applied")
            && message.contains("resources.limits.memory"),
        "{message}"
    );
    assert!(api.all(PACKAGES).is_empty(), "nothing applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_within_the_budget_is_applied() {
    let (api, status) = outcome_with(64 << 20, 500).await;
    assert_eq!(status["friendlyDescription"], "ReconcileSucceeded", "{status}");
    assert_eq!(api.all(PACKAGES).len(), 500);
}

/// The shipped Deployment's budget: its 256Mi limit less 48 MiB.
const SHIPPED_BUDGET_MIB: u64 = 208;

/// Peak resident memory (VmHWM) of a process, in MiB: everything it ever held at once, heap,
/// stacks and mapped code included, so a bound on it bounds the heap in use too.
fn peak_rss_mib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        >> 10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_process_stays_within_the_shipped_budget_through_10000_packages() {
    const COUNT: usize = 10_000;
    let registry = support::registry::TestRegistry::start();
    let image = registry.repo("memory/repo:1.0.0");
    let dir = tempfile::tempdir().unwrap();
    support::data::repository_bundle(dir.path(), "memory.corp.com", COUNT);
    let pushed = std::process::Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .args(["push", "-b", &image, "-f", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let api = FakeApiServer::start().await;
    let kubeconfig = api.kubeconfig();
    let mut controller = std::process::Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .args([
            "controller",
            "--metrics-address",
            "127.0.0.1:0",
            "--namespace",
            "kapp-controller",
        ])
        .args(["--memory-budget", &format!("{SHIPPED_BUDGET_MIB}Mi")])
        .env_remove("MALLOC_ARENA_MAX")
        .env("KUBECONFIG", kubeconfig.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    api.create(
        REPOS,
        None,
        "big",
        json!({"apiVersion": "install.package.carvel.dev/v1alpha1", "kind": "PackageRepository",
            "metadata": {"name": "big"}, "spec": {"fetch": {"imgpkgBundle": {"image": image}}}}),
    );
    let outcome = api
        .wait_for(
            "the reconcile of 10,000 Packages",
            Duration::from_secs(900),
            |api| {
                let status = api.get(REPOS, None, "big")?.get("status")?.clone();
                let description = status["friendlyDescription"].as_str()?.to_string();
                (description != "Reconciling").then_some(status)
            },
        )
        .await;
    let peak = peak_rss_mib(controller.id());
    let _ = controller.kill();
    let _ = controller.wait();
    assert_eq!(outcome["friendlyDescription"], "ReconcileSucceeded", "{outcome}");
    assert_eq!(api.all(PACKAGES).len(), COUNT);
    println!(
        "pkgr controller, {COUNT} Packages, --memory-budget {SHIPPED_BUDGET_MIB}Mi: peak RSS {peak} MiB"
    );
    assert!(
        peak < SHIPPED_BUDGET_MIB,
        "peak RSS {peak} MiB over the {SHIPPED_BUDGET_MIB} MiB budget the controller was given"
    );
}
