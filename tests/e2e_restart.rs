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
//! Runs only when `PKGR_E2E_KUBECONFIG` names a kubeconfig; otherwise it says so and returns.
mod support;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use pkgr::api::{Package, PackageRepository};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::registry::TestRegistry;

const NAMESPACE: &str = "kapp-controller";
const USER: &str = "e2e";
const PASSWORD: &str = "e2e-password";
const WAIT: Duration = Duration::from_secs(120);
const PREFIX: &str = "e2e-restart-";

struct Controller(Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `pkgr controller` with only the kubeconfig: every registry setting comes from the cluster.
fn controller(kubeconfig: &str) -> Controller {
    Controller(
        Command::new(env!("CARGO_BIN_EXE_pkgr"))
            .args([
                "controller",
                "--metrics-address",
                "127.0.0.1:0",
                "--namespace",
                NAMESPACE,
            ])
            .env("KUBECONFIG", kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start pkgr controller"),
    )
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_start_restart_and_api_server_outage() {
    let Ok(kubeconfig) = std::env::var("PKGR_E2E_KUBECONFIG") else {
        println!("e2e (restarts) skipped: PKGR_E2E_KUBECONFIG is not set");
        eprintln!("e2e (restarts) skipped: PKGR_E2E_KUBECONFIG is not set");
        return;
    };
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).expect("read PKGR_E2E_KUBECONFIG"),
        &Default::default(),
    )
    .await
    .expect("kubeconfig usable");
    let client = kube::Client::try_from(config).unwrap();
    let crds: Api<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    > = Api::all(client.clone());
    for crd in pkgr::api::crds() {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch(
            &name,
            &PatchParams::apply("pkgr-e2e").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
        tokio::time::timeout(
            WAIT,
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .expect("CRD established in time")
        .unwrap();
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            NAMESPACE,
            &PatchParams::apply("pkgr-e2e"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})),
        )
        .await
        .unwrap();
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

    let first = controller(&kubeconfig);
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
    let second = controller(&kubeconfig);
    let late = format!("{PREFIX}late");
    apply_repository(&repos, &late, &registry.repo("repo/small:1.0.0")).await;
    // late supplies the same 3 Packages, identical: small keeps them.
    wait_for(&repos, &late, succeeded_with(3), WAIT).await;
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
    drop(applied);
    drop(second); // SIGKILL, half-way
    assert!(
        versions(&client, &large).await.len() < 400,
        "killed before it finished"
    );
    let third = controller(&kubeconfig);
    wait_for(&repos, &large, succeeded_with(400), WAIT).await;
    assert_eq!(versions(&client, &large).await.len(), 400);

    // The API server restarts (only when the caller says how).
    match std::env::var("PKGR_E2E_RESTART_APISERVER") {
        Err(_) => eprintln!(
            "e2e (restarts): the API server restart was skipped: set PKGR_E2E_RESTART_APISERVER to a \
             command that restarts it"
        ),
        Ok(command) => {
            let status = Command::new("sh")
                .args(["-c", &command])
                .status()
                .expect("run the restart command");
            assert!(status.success(), "{command} failed: {status}");
            let down = Instant::now();
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
            apply_repository(&repos, &after, &registry.repo("repo/small:1.0.0")).await;
            wait_for(&repos, &after, succeeded_with(3), Duration::from_secs(10)).await;
            println!(
                "API server back → new repository ReconcileSucceeded: {:?}",
                back.elapsed()
            );
        }
    }

    // A deletion pending when the controller starts: small (which owns the 3 Packages late
    // supplies too) is deleted while no controller runs. The next one hands them to late without
    // deleting them, not even for a moment: same objects (uids) before and after.
    let shared_before = uids(&client, &small).await;
    assert_eq!(shared_before.len(), 3);
    terminate(third);
    let small_uid = repos.get(&small).await.unwrap().metadata.uid.unwrap_or_default();
    repos.delete(&small, &DeleteParams::default()).await.unwrap();
    let fourth = controller(&kubeconfig);
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
