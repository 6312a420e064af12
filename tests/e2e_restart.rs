//! End to end against a real cluster: start-up, restarts and the API server going away.
//! - a TLS registry whose CA comes only from `kapp-controller-config`, created before the
//!   controller starts (no CA flag);
//! - a controller restart after which that repository still reconciles, and nothing changed is
//!   written again;
//! - a controller killed (SIGKILL) in the middle of a large first reconcile, restarted, converging;
//! - when `PKGR_E2E_RESTART_APISERVER` names a command that restarts the API server (and returns
//!   once it is asked to stop), a repository applied right after its return reconciles within 10 s;
//! - a deletion pending when the controller starts hands the Packages another repository also
//!   supplies over to it (same uids), instead of deleting them.
//!
//! Runs against a real cluster only when `PKGR_E2E_KUBECONFIG` names a kubeconfig (otherwise it
//! says so); the same scenarios run every time against the fake API server through a kubeconfig,
//! the same code path, so that a scenario that cannot pass is caught where it can be run.
mod apiserver;
mod support;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use pkgr::api::{Package, PackageRepository};
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::registry::TestRegistry;

const NAMESPACE: &str = "kapp-controller";
const USER: &str = "e2e";
const PASSWORD: &str = "e2e-password";
const WAIT: Duration = Duration::from_secs(120);
const PREFIX: &str = "e2e-restart-";

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Controller(Child, u16);

/// `pkgr controller` with only the kubeconfig: every registry setting comes from the cluster.
/// Its metrics are served on a free loopback port, so the test can tell what it has done.
fn controller(kubeconfig: &str, extra: &[&str]) -> Controller {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .args([
            "controller",
            "--metrics-address",
            &format!("127.0.0.1:{port}"),
            "--namespace",
            NAMESPACE,
        ])
        .args(extra)
        .env("KUBECONFIG", kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start pkgr controller");
    Controller(child, port)
}

/// How many reconciles the controller ended with `outcome` (0 while its metrics server is not up).
fn outcomes(controller: &Controller, outcome: &str) -> u64 {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", controller.1)) else {
        return 0;
    };
    let _ = stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let needle = format!("pkgr_reconciles_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| {
            l.strip_prefix(needle.as_str())
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Wait (bounded) until the controller's metrics count at least `count` reconciles with `outcome`.
async fn wait_outcome(controller: &Controller, outcome: &str, count: u64) {
    let deadline = Instant::now() + WAIT;
    while outcomes(controller, outcome) < count {
        assert!(
            Instant::now() < deadline,
            "the controller did not report {count} {outcome} reconciles within {WAIT:?}"
        );
        // The metrics endpoint has no change notification: poll it.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stop as the kubelet does (SIGTERM), waiting for the exit.
fn terminate(mut process: Controller) {
    let _ = Command::new("kill")
        .args(["-TERM", &process.0.id().to_string()])
        .status();
    let _ = process.0.wait();
}

fn pkgr(registry: &TestRegistry, args: &[&str]) {
    let ca = registry.ca_pem.as_ref().unwrap().to_str().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .args(args)
        .args([
            "--registry-ca-cert-path",
            ca,
            "--registry-username",
            USER,
            "--registry-password",
            PASSWORD,
        ])
        .output()
        .expect("run pkgr");
    assert!(
        output.status.success(),
        "pkgr {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Push a repository bundle of `count` Packages of `ref_name`.
fn push_repository(registry: &TestRegistry, reference: &str, ref_name: &str, count: usize) {
    let dir = tempfile::tempdir().unwrap();
    let packages = dir.path().join("packages");
    std::fs::create_dir_all(&packages).unwrap();
    // `push -b` needs the bundle's .imgpkg directory, as imgpkg does.
    std::fs::create_dir_all(dir.path().join(".imgpkg")).unwrap();
    std::fs::write(
        dir.path().join(".imgpkg/images.yml"),
        "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n",
    )
    .unwrap();
    for i in 0..count {
        std::fs::write(
            packages.join(format!("{i}.yml")),
            format!(
                "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata:\n  name: {ref_name}.1.0.{i}\nspec:\n  refName: {ref_name}\n  version: 1.0.{i}\n  template:\n    spec:\n      fetch:\n      - imgpkgBundle:\n          image: registry.corp.example/app@sha256:{}\n",
                "a".repeat(64)
            ),
        )
        .unwrap();
    }
    pkgr(
        registry,
        &["push", "-b", reference, "-f", dir.path().to_str().unwrap()],
    );
}

async fn apply_repository(api: &Api<PackageRepository>, name: &str, image: &str) {
    let body = json!({"apiVersion": "install.package.carvel.dev/v1alpha1", "kind": "PackageRepository",
        "metadata": {"name": name},
        "spec": {"fetch": {"imgpkgBundle": {"image": image, "secretRef": {"name": "e2e-restart-creds"}}}}});
    api.patch(
        name,
        &PatchParams::apply("pkgr-e2e").force(),
        &Patch::Apply(&body),
    )
    .await
    .unwrap();
}

fn succeeded_with(count: i64) -> impl Fn(Option<&PackageRepository>) -> bool {
    move |r| {
        r.and_then(|r| r.status.as_ref()).is_some_and(|s| {
            s.friendly_description.as_deref() == Some("ReconcileSucceeded") && s.package_count == Some(count)
        })
    }
}

async fn wait_for(
    api: &Api<PackageRepository>,
    name: &str,
    condition: impl kube::runtime::wait::Condition<PackageRepository>,
    within: Duration,
) -> PackageRepository {
    tokio::time::timeout(within, await_condition(api.clone(), name, condition))
        .await
        .unwrap_or_else(|_| panic!("PackageRepository {name} did not get there within {within:?}"))
        .expect("watch PackageRepository")
        .expect("PackageRepository exists")
}

async fn delete_and_wait(api: &Api<PackageRepository>, name: &str) {
    let Ok(Some(existing)) = api.get_opt(name).await else {
        return;
    };
    let _ = api.delete(name, &DeleteParams::default()).await;
    let uid = existing.metadata.uid.unwrap_or_default();
    tokio::time::timeout(
        WAIT,
        await_condition(api.clone(), name, conditions::is_deleted(&uid)),
    )
    .await
    .unwrap_or_else(|_| panic!("PackageRepository {name} was not deleted within {WAIT:?}"))
    .unwrap();
}

/// resourceVersions of the Packages a repository applied.
async fn versions(client: &kube::Client, repository: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Api::<Package>::all(client.clone())
        .list(&ListParams::default().labels(&format!("pkgr.packaging.carvel.dev/repository={repository}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| {
            (
                p.metadata.name.unwrap_or_default(),
                p.metadata.resource_version.unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

/// (name, uid) of the Packages a repository owns.
async fn uids(client: &kube::Client, repository: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Api::<Package>::all(client.clone())
        .list_metadata(
            &ListParams::default().labels(&format!("pkgr.packaging.carvel.dev/repository={repository}")),
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| {
            (
                p.metadata.name.unwrap_or_default(),
                p.metadata.uid.unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Restarts the API server; resolves once it was asked to stop (it may still be answering).
type RestartApiServer = Box<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_start_restart_and_api_server_outage() {
    let Ok(kubeconfig) = std::env::var("PKGR_E2E_KUBECONFIG") else {
        println!("e2e (restarts) skipped: PKGR_E2E_KUBECONFIG is not set");
        eprintln!("e2e (restarts) skipped: PKGR_E2E_KUBECONFIG is not set");
        return;
    };
    let restart: Option<RestartApiServer> = match std::env::var("PKGR_E2E_RESTART_APISERVER") {
        Err(_) => {
            eprintln!(
                "e2e (restarts): the API server restart was skipped: set PKGR_E2E_RESTART_APISERVER to a \
                 command that restarts it"
            );
            None
        }
        Ok(command) => Some(Box::new(move || {
            let command = command.clone();
            Box::pin(async move {
                let shell = command.clone();
                let status =
                    tokio::task::spawn_blocking(move || Command::new("sh").args(["-c", &shell]).status())
                        .await
                        .unwrap()
                        .expect("run the restart command");
                assert!(status.success(), "{command} failed: {status}");
            })
        })),
    };
    scenario(&kubeconfig, restart).await;
}

/// The same scenarios, with the same binary and a kubeconfig, against the fake API server (which
/// is restarted as a control plane is: connections drop, it comes back answering 503 for a while).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_restart_scenarios_run_against_the_fake_api_server() {
    let api = std::sync::Arc::new(apiserver::FakeApiServer::start().await);
    let kubeconfig = api.kubeconfig();
    let server = api.clone();
    let restart: RestartApiServer = Box::new(move || {
        let server = server.clone();
        Box::pin(async move {
            server.stop();
            server.restart(3).await;
        })
    });
    scenario(kubeconfig.path().to_str().unwrap(), Some(restart)).await;
}

async fn scenario(kubeconfig: &str, restart: Option<RestartApiServer>) {
    let client = support::e2e::client(kubeconfig).await;
    support::e2e::install(&client, pkgr::api::crds(), NAMESPACE, WAIT).await;
    let repos: Api<PackageRepository> = Api::all(client.clone());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);

    // The private CA only in kapp-controller-config, which exists before the controller starts.
    let registry = TestRegistry::start_tls_auth(USER, PASSWORD);
    let ca = std::fs::read_to_string(registry.ca_pem.as_ref().unwrap()).unwrap();
    let config_secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "kapp-controller-config", "namespace": NAMESPACE}, "stringData": {"caCerts": ca}});
    secrets
        .patch(
            "kapp-controller-config",
            &PatchParams::apply("pkgr-e2e").force(),
            &Patch::Apply(&config_secret),
        )
        .await
        .unwrap();
    let creds = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "e2e-restart-creds", "namespace": NAMESPACE},
        "stringData": {"username": USER, "password": PASSWORD}});
    secrets
        .patch(
            "e2e-restart-creds",
            &PatchParams::apply("pkgr-e2e").force(),
            &Patch::Apply(&creds),
        )
        .await
        .unwrap();
    push_repository(
        &registry,
        &registry.repo("repo/small:1.0.0"),
        "small.e2e.corp.com",
        3,
    );
    push_repository(
        &registry,
        &registry.repo("repo/large:1.0.0"),
        "large.e2e.corp.com",
        400,
    );
    // Its own Packages: what after-outage supplies is shared with no other repository.
    push_repository(
        &registry,
        &registry.repo("repo/outage:1.0.0"),
        "outage.e2e.corp.com",
        3,
    );

    let first = controller(kubeconfig, &[]);
    for name in ["small", "large", "late", "after-outage"] {
        delete_and_wait(&repos, &format!("{PREFIX}{name}")).await;
    }
    let small = format!("{PREFIX}small");
    apply_repository(&repos, &small, &registry.repo("repo/small:1.0.0")).await;
    let repo = wait_for(&repos, &small, succeeded_with(3), WAIT).await;
    let successes = repo.status.unwrap().consecutive_reconcile_successes;
    let before = versions(&client, &small).await;
    assert_eq!(before.len(), 3);

    // A restart: the repository is found unchanged (nothing written), and the controller works.
    terminate(first);
    // Applies one at a time: killed at the first one (below), it is far from done.
    let second = controller(kubeconfig, &["--apply-concurrency", "1"]);
    let late = format!("{PREFIX}late");
    apply_repository(&repos, &late, &registry.repo("repo/small:1.0.0")).await;
    // late supplies the same 3 Packages, identical: small keeps them.
    wait_for(&repos, &late, succeeded_with(3), WAIT).await;
    // The second controller has looked at small too (found unchanged) before the check.
    wait_outcome(&second, "unchanged", 1).await;
    assert_eq!(
        versions(&client, &small).await,
        before,
        "nothing rewritten after the restart"
    );
    let repo = repos.get(&small).await.unwrap();
    assert_eq!(repo.status.unwrap().consecutive_reconcile_successes, successes);

    // Killed in the middle of a large first reconcile, then started again: it converges.
    let large = format!("{PREFIX}large");
    apply_repository(&repos, &large, &registry.repo("repo/large:1.0.0")).await;
    let packages: Api<Package> = Api::all(client.clone());
    // The first of its Packages appears: the reconcile is under way.
    let label = format!("pkgr.packaging.carvel.dev/repository={large}");
    let mut applied = Box::pin(kube::runtime::WatchStreamExt::applied_objects(
        kube::runtime::watcher(
            packages.clone(),
            kube::runtime::watcher::Config::default().labels(&label),
        ),
    ));
    tokio::time::timeout(WAIT, futures_util::TryStreamExt::try_next(&mut applied))
        .await
        .unwrap_or_else(|_| panic!("no Package of {large} appeared within {WAIT:?}"))
        .expect("watch Packages");
    drop(second); // SIGKILL, at the first of 400 applies made one at a time
    drop(applied);
    assert!(
        versions(&client, &large).await.len() < 400,
        "killed before it finished"
    );
    let third = controller(kubeconfig, &[]);
    wait_for(&repos, &large, succeeded_with(400), WAIT).await;
    assert_eq!(versions(&client, &large).await.len(), 400);

    // The API server restarts (only when the caller says how).
    if let Some(restart) = restart {
        // A watch established on the server before the restart: the server ends it when it goes
        // down, which is the proof that it did (the command may return before, or after).
        let listed = packages
            .list_metadata(&ListParams::default().limit(1))
            .await
            .expect("list before the restart");
        let from = listed.metadata.resource_version.unwrap_or_default();
        let window = 280;
        let mut open = packages
            .watch(&kube::api::WatchParams::default().timeout(window), &from)
            .await
            .expect("open a watch before the restart")
            .boxed();
        let down = Instant::now();
        restart().await;
        tokio::time::timeout(Duration::from_secs(300), async {
            while let Some(Ok(_)) = open.next().await {}
        })
        .await
        .expect("the watch open before the restart did not end: the API server did not go down");
        assert!(
            down.elapsed() < Duration::from_secs(u64::from(window)),
            "the watch only ran out its {window} s: the API server did not go down"
        );
        drop(open);
        // Back once it answers a request.
        while packages
            .list_metadata(&ListParams::default().limit(1))
            .await
            .is_err()
        {
            assert!(
                down.elapsed() < Duration::from_secs(300),
                "the API server did not come back"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let back = Instant::now();
        let after = format!("{PREFIX}after-outage");
        apply_repository(&repos, &after, &registry.repo("repo/outage:1.0.0")).await;
        // Recovers (how fast is measured by bench/controller-restart.sh, not asserted here).
        wait_for(&repos, &after, succeeded_with(3), WAIT).await;
        println!(
            "API server back → new repository ReconcileSucceeded: {:?}",
            back.elapsed()
        );
    }

    // A deletion pending when the controller starts: small (which owns the 3 Packages late
    // supplies too) is deleted while no controller runs. The next one hands them to late without
    // deleting them, not even for a moment: same objects (uids) before and after.
    let shared_before = uids(&client, &small).await;
    assert_eq!(shared_before.len(), 3);
    terminate(third);
    let small_uid = repos.get(&small).await.unwrap().metadata.uid.unwrap_or_default();
    repos.delete(&small, &DeleteParams::default()).await.unwrap();
    let fourth = controller(kubeconfig, &[]);
    tokio::time::timeout(
        WAIT,
        await_condition(repos.clone(), &small, conditions::is_deleted(&small_uid)),
    )
    .await
    .unwrap_or_else(|_| panic!("PackageRepository {small} was not deleted within {WAIT:?}"))
    .unwrap();
    assert_eq!(
        uids(&client, &late).await,
        shared_before,
        "the shared Packages were handed to {late}, not deleted and created again"
    );

    for name in ["after-outage", "large", "late", "small"] {
        delete_and_wait(&repos, &format!("{PREFIX}{name}")).await;
    }
    assert!(versions(&client, &late).await.is_empty());
    let _ = secrets
        .delete("kapp-controller-config", &DeleteParams::default())
        .await;
    let _ = secrets
        .delete("e2e-restart-creds", &DeleteParams::default())
        .await;
    drop(fourth);
}
