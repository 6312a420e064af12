//! End to end against a real cluster (issue 3 steps 3-5): a loopback registry, `pkgr push` and
//! `pkgr copy`, the CRDs, the `pkgr controller` binary, a Secret and the PackageRepository from
//! SPEC.md; everything checked through the API by watching, never by sleeping.
//!
//! Runs against a real cluster only when `PKGR_E2E_KUBECONFIG` names a kubeconfig (otherwise it
//! says so and returns); in a cluster running kapp-controller it says so and leaves the workflow
//! to `tests/e2e_kapp.rs`. The same workflow runs every time against the fake API server through
//! a kubeconfig (the same code path), so a scenario that cannot pass is caught where it can run.
mod apiserver;
mod support;

use futures_util::TryStreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::wait::{await_condition, conditions};
use pkgr::api::{Package, PackageMetadata, PackageRepository};
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::registry::TestRegistry;

const NAMESPACE: &str = "kapp-controller";
const USER: &str = "e2e";
const PASSWORD: &str = "e2e-password";
/// Generous bound for every wait; the product target is far below it.
const WAIT: Duration = Duration::from_secs(90);

struct ControllerProcess(Child);

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pkgr(registry: &TestRegistry, args: &[&str]) -> String {
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
        "pkgr {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn write(dir: &Path, path: &str, content: &str) {
    let full = dir.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, content).unwrap();
}

fn package(ref_name: &str, version: &str, image: &str) -> String {
    format!(
        "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata:\n  name: {ref_name}.{version}\nspec:\n  refName: {ref_name}\n  version: {version}\n  template:\n    spec:\n      fetch:\n      - imgpkgBundle:\n          image: {image}\n      template:\n      - ytt: {{}}\n      deploy:\n      - kapp: {{}}\n"
    )
}

fn metadata(name: &str) -> String {
    format!(
        "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: PackageMetadata\nmetadata:\n  name: {name}\nspec:\n  displayName: {name}\n  shortDescription: e2e\n"
    )
}

/// The digest of `reference` (`host/repo:tag`), asked of the registry directly.
async fn digest_of(registry: &TestRegistry, repository: &str, tag: &str) -> String {
    let ca =
        reqwest::Certificate::from_pem(&std::fs::read(registry.ca_pem.as_ref().unwrap()).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let response = client
        .head(format!("{}/v2/{repository}/manifests/{tag}", registry.base_url()))
        .basic_auth(USER, Some(PASSWORD))
        .header(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json",
        )
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "HEAD {repository}:{tag}: {}",
        response.status()
    );
    response.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_string()
}

/// Push a repository bundle whose one Package points at `app` (listed in .imgpkg/images.yml).
fn push_repository(registry: &TestRegistry, reference: &str, app: &str, packages: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    for (ref_name, version) in packages {
        write(
            dir.path(),
            &format!("packages/{ref_name}/{version}.yml"),
            &package(ref_name, version, app),
        );
        write(
            dir.path(),
            &format!("packages/{ref_name}/metadata.yml"),
            &metadata(ref_name),
        );
    }
    write(
        dir.path(),
        ".imgpkg/images.yml",
        &format!(
            "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n- image: {app}\n  annotations:\n    kbld.carvel.dev/id: {app}\n"
        ),
    );
    pkgr(
        registry,
        &["push", "-b", reference, "-f", dir.path().to_str().unwrap()],
    );
}

fn described(description: &'static str) -> impl Fn(Option<&PackageRepository>) -> bool {
    move |repo| {
        repo.and_then(|r| r.status.as_ref())
            .and_then(|s| s.friendly_description.as_deref())
            .is_some_and(|d| d.starts_with(description))
    }
}

async fn wait_for<C: kube::runtime::wait::Condition<PackageRepository>>(
    api: &Api<PackageRepository>,
    name: &str,
    condition: C,
) -> PackageRepository {
    tokio::time::timeout(WAIT, await_condition(api.clone(), name, condition))
        .await
        .unwrap_or_else(|_| {
            panic!("PackageRepository {name} did not reach the expected state within {WAIT:?}")
        })
        .expect("watch PackageRepository")
        .expect("PackageRepository exists")
}

async fn labelled_packages(client: &kube::Client, repository: &str) -> Vec<Package> {
    Api::<Package>::all(client.clone())
        .list(&ListParams::default().labels(&format!("pkgr.packaging.carvel.dev/repository={repository}")))
        .await
        .unwrap()
        .items
}

fn spec(image: &str, secret: &str) -> serde_json::Value {
    json!({"fetch": {"imgpkgBundle": {"image": image, "secretRef": {"name": secret}}}, "syncPeriod": "30s"})
}

async fn apply_repository(api: &Api<PackageRepository>, name: &str, spec: serde_json::Value) {
    let body = json!({"apiVersion": "install.package.carvel.dev/v1alpha1", "kind": "PackageRepository",
                      "metadata": {"name": name}, "spec": spec});
    api.patch(
        name,
        &PatchParams::apply("pkgr-e2e").force(),
        &Patch::Apply(&body),
    )
    .await
    .unwrap();
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

/// Names of the PackageRepositories this suite creates (with a run id appended).
const REPOSITORY_PREFIXES: [&str; 3] = [
    "simple-package-repository-",
    "e2e-missing-secret-",
    "e2e-missing-tag-",
];
/// Every Package this suite makes a repository supply.
const PACKAGES: [&str; 5] = [
    "simple.corp.com.1.0.0",
    "other.corp.com.1.0.0",
    "simple.corp.com.2.0.0",
    "third.corp.com.1.0.0",
    "fourth.corp.com.1.0.0",
];

async fn remove_leftovers(client: &kube::Client, repos: &Api<PackageRepository>) {
    let stale: Vec<String> = repos
        .list(&ListParams::default())
        .await
        .expect("list PackageRepositories")
        .items
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .filter(|n| REPOSITORY_PREFIXES.iter().any(|p| n.starts_with(p)))
        .collect();
    for name in &stale {
        println!("removing PackageRepository {name} left by an earlier run");
        delete_and_wait(repos, name).await;
    }
    let packages: Api<Package> = Api::all(client.clone());
    for name in PACKAGES {
        let Some(package) = packages.get_opt(name).await.expect("read Package") else {
            continue;
        };
        let uid = package.metadata.uid.unwrap_or_default();
        tokio::time::timeout(
            WAIT,
            await_condition(packages.clone(), name, conditions::is_deleted(&uid)),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "Package {name} is in the cluster and not going away (not supplied by a repository of \
                 this suite?); delete it before running the end-to-end suite"
            )
        })
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_air_gapped_workflow() {
    let Ok(kubeconfig) = std::env::var("PKGR_E2E_KUBECONFIG") else {
        println!("e2e skipped: PKGR_E2E_KUBECONFIG is not set");
        eprintln!("e2e skipped: PKGR_E2E_KUBECONFIG is not set");
        return;
    };
    scenario(&kubeconfig).await;
}

/// The same workflow, binary and kubeconfig, against the fake API server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_air_gapped_workflow_runs_against_the_fake_api_server() {
    let api = apiserver::FakeApiServer::start().await;
    let kubeconfig = api.kubeconfig();
    scenario(kubeconfig.path().to_str().unwrap()).await;
}

async fn scenario(kubeconfig: &str) {
    let client = support::e2e::client(kubeconfig).await;
    let run_id = std::process::id();
    // This workflow checks pkgr's own Package CRDs: beside kapp-controller, tests/e2e_kapp.rs
    // checks the same through kapp-controller's API.
    let api_services: Api<APIService> = Api::all(client.clone());
    if let Some(backend) = api_services
        .get_opt("v1alpha1.data.packaging.carvel.dev")
        .await
        .expect("read APIServices")
        .and_then(|s| s.spec)
        .and_then(|s| s.service)
    {
        println!(
            "e2e (standalone) skipped: this cluster runs kapp-controller (Service {}/{} serves \
             data.packaging.carvel.dev); tests/e2e_kapp.rs covers it (PKGR_E2E_KAPP_CONTROLLER=1)",
            backend.namespace.clone().unwrap_or_default(),
            backend.name.clone().unwrap_or_default()
        );
        eprintln!(
            "e2e (standalone) skipped: this cluster runs kapp-controller (Service {}/{}); tests/e2e_kapp.rs covers it",
            backend.namespace.unwrap_or_default(),
            backend.name.unwrap_or_default()
        );
        return;
    }

    // The registry, an app image, a repository bundle, and its relocated copy.
    let registry = TestRegistry::start_tls_auth(USER, PASSWORD);
    let app_dir = tempfile::tempdir().unwrap();
    write(app_dir.path(), "config/app.yml", "kind: ConfigMap\n");
    pkgr(
        &registry,
        &[
            "push",
            "-i",
            &registry.repo("origin/app:1.0.0"),
            "-f",
            app_dir.path().to_str().unwrap(),
        ],
    );
    let app_digest = digest_of(&registry, "origin/app", "1.0.0").await;
    let app = format!("{}@{app_digest}", registry.repo("origin/app"));
    push_repository(
        &registry,
        &registry.repo("origin/repo:1.0.0"),
        &app,
        &[("simple.corp.com", "1.0.0"), ("other.corp.com", "1.0.0")],
    );
    pkgr(
        &registry,
        &[
            "copy",
            "-b",
            &registry.repo("origin/repo:1.0.0"),
            "--to-repo",
            &registry.repo("final/repo"),
        ],
    );
    let relocated_app = format!("{}@{app_digest}", registry.repo("final/repo"));

    // Step 1: CRDs and namespace.
    support::e2e::install(&client, pkgr::api::crds(), NAMESPACE, WAIT).await;

    // The controller binary, with the test CA.
    let controller = ControllerProcess(
        Command::new(env!("CARGO_BIN_EXE_pkgr"))
            .args([
                "controller",
                "--metrics-address",
                "127.0.0.1:0",
                "--namespace",
                NAMESPACE,
            ])
            .args([
                "--registry-ca-cert-path",
                registry.ca_pem.as_ref().unwrap().to_str().unwrap(),
            ])
            .env("KUBECONFIG", kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start pkgr controller"),
    );

    // A run that failed half-way leaves its repositories (and through them its Packages) behind;
    // the controller just started releases their finalizers, garbage collection does the rest.
    let repos: Api<PackageRepository> = Api::all(client.clone());
    remove_leftovers(&client, &repos).await;

    // Step 2: the Secret and the PackageRepository of SPEC.md.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    let secret_name = format!("e2e-creds-{run_id}");
    secrets
        .patch(
            &secret_name,
            &PatchParams::apply("pkgr-e2e").force(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret_name, "namespace": NAMESPACE},
                                 "stringData": {"username": USER, "password": PASSWORD}})),
        )
        .await
        .unwrap();
    let name = format!("simple-package-repository-{run_id}");
    let started = Instant::now();
    apply_repository(
        &repos,
        &name,
        spec(&registry.repo("final/repo:1.0.0"), &secret_name),
    )
    .await;

    // Step 3: ReconcileSucceeded with the count; Packages point at the relocated repository.
    let repo = wait_for(&repos, &name, described("ReconcileSucceeded")).await;
    println!("apply → ReconcileSucceeded: {:?}", started.elapsed());
    let status = repo.status.clone().unwrap();
    assert_eq!(status.package_count, Some(2));
    assert_eq!(status.observed_generation, repo.metadata.generation);
    assert!(
        status
            .fetch
            .as_ref()
            .unwrap()
            .image
            .as_deref()
            .unwrap()
            .starts_with(&registry.repo("final/repo@sha256:"))
    );
    let packages = labelled_packages(&client, &name).await;
    let mut names: Vec<_> = packages
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["other.corp.com.1.0.0", "simple.corp.com.1.0.0"]);
    for p in &packages {
        let image = p
            .spec
            .template
            .as_ref()
            .unwrap()
            .pointer("/spec/fetch/0/imgpkgBundle/image")
            .unwrap();
        assert_eq!(
            image,
            &json!(relocated_app),
            "{} points at the relocated repository",
            p.metadata.name.as_deref().unwrap()
        );
    }
    let metadatas = Api::<PackageMetadata>::all(client.clone());
    assert!(metadatas.get_opt("simple.corp.com").await.unwrap().is_some());

    // Step 4: failures are visible, with an Event.
    let missing = format!("e2e-missing-secret-{run_id}");
    apply_repository(
        &repos,
        &missing,
        spec(&registry.repo("final/repo:1.0.0"), "no-such-secret"),
    )
    .await;
    let failed = wait_for(&repos, &missing, described("ReconcileFailed")).await;
    let description = failed
        .status
        .as_ref()
        .unwrap()
        .friendly_description
        .clone()
        .unwrap();
    assert!(
        description.contains("no-such-secret") && description.contains("does not exist"),
        "{description}"
    );
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let mut stream =
        Box::pin(kube::runtime::watcher(events, kube::runtime::watcher::Config::default()).applied_objects());
    tokio::time::timeout(WAIT, async {
        while let Some(event) = stream.try_next().await.expect("watch Events") {
            let regarding = event.regarding.as_ref().and_then(|r| r.name.as_deref());
            if regarding == Some(missing.as_str()) && event.reason.as_deref() == Some("ReconcileFailed") {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no ReconcileFailed Event for {missing} within {WAIT:?}"));
    let tagless = format!("e2e-missing-tag-{run_id}");
    apply_repository(
        &repos,
        &tagless,
        spec(&registry.repo("final/repo:9.9.9"), &secret_name),
    )
    .await;
    let failed = wait_for(&repos, &tagless, described("ReconcileFailed")).await;
    let description = failed
        .status
        .as_ref()
        .unwrap()
        .friendly_description
        .clone()
        .unwrap();
    assert!(
        description.contains("tag \"9.9.9\" not found")
            && description.contains("1.0.0")
            && !description.contains(".imgpkg"),
        "{description}"
    );
    let useful = failed
        .status
        .as_ref()
        .unwrap()
        .useful_error_message
        .clone()
        .unwrap();
    assert!(!useful.contains(PASSWORD));

    // Step 5: a new tag with changed content: updated, added, pruned.
    push_repository(
        &registry,
        &registry.repo("origin/repo:2.0.0"),
        &app,
        &[("simple.corp.com", "2.0.0"), ("third.corp.com", "1.0.0")],
    );
    pkgr(
        &registry,
        &[
            "copy",
            "-b",
            &registry.repo("origin/repo:2.0.0"),
            "--to-repo",
            &registry.repo("final/repo"),
        ],
    );
    let first_fetch = status.fetch.unwrap().image.unwrap();
    apply_repository(
        &repos,
        &name,
        spec(&registry.repo("final/repo:2.0.0"), &secret_name),
    )
    .await;
    let repo = wait_for(&repos, &name, |r: Option<&PackageRepository>| {
        r.and_then(|r| r.status.as_ref()).is_some_and(|s| {
            s.friendly_description.as_deref() == Some("ReconcileSucceeded")
                && s.fetch.as_ref().and_then(|f| f.image.as_deref()) != Some(first_fetch.as_str())
        })
    })
    .await;
    assert_eq!(repo.status.unwrap().package_count, Some(2));
    let mut names: Vec<_> = labelled_packages(&client, &name)
        .await
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["simple.corp.com.2.0.0", "third.corp.com.1.0.0"],
        "1.0.0s pruned, new ones applied"
    );
    assert!(
        metadatas.get_opt("other.corp.com").await.unwrap().is_none(),
        "metadata no longer supplied is pruned"
    );

    // A re-pushed tag is picked up on the next resync (syncPeriod 30s).
    let before = labelled_packages(&client, &name).await.len();
    push_repository(
        &registry,
        &registry.repo("origin/repo:2.0.0"),
        &app,
        &[
            ("simple.corp.com", "2.0.0"),
            ("third.corp.com", "1.0.0"),
            ("fourth.corp.com", "1.0.0"),
        ],
    );
    pkgr(
        &registry,
        &[
            "copy",
            "-b",
            &registry.repo("origin/repo:2.0.0"),
            "--to-repo",
            &registry.repo("final/repo"),
        ],
    );
    let repo = wait_for(&repos, &name, |r: Option<&PackageRepository>| {
        r.and_then(|r| r.status.as_ref())
            .is_some_and(|s| s.package_count == Some(3))
    })
    .await;
    assert_eq!(
        repo.status.unwrap().friendly_description.as_deref(),
        Some("ReconcileSucceeded")
    );
    assert_eq!(labelled_packages(&client, &name).await.len(), before + 1);

    // Deleting the repository removes what it supplied.
    delete_and_wait(&repos, &name).await;
    assert!(labelled_packages(&client, &name).await.is_empty());
    assert!(
        Api::<Package>::all(client.clone())
            .get_opt("third.corp.com.1.0.0")
            .await
            .unwrap()
            .is_none()
    );

    // Clean up.
    delete_and_wait(&repos, &missing).await;
    delete_and_wait(&repos, &tagless).await;
    let _ = secrets.delete(&secret_name, &DeleteParams::default()).await;
    drop(controller);
}
