//! End to end beside kapp-controller: the real `pkgr controller` binary, a repository bundle in a
//! TLS registry with credentials, and the Packages checked where kapp-controller's PackageInstall
//! reads them: through its packaging API (`kubectl get packages -n default` lists the global
//! ones, `+` versions under their original names), then a PackageInstall that resolves one.
//!
//! Against a real cluster with kapp-controller installed when `PKGR_E2E_KUBECONFIG` and
//! `PKGR_E2E_KAPP_CONTROLLER=1` are set (otherwise it says it was skipped); every time against the
//! fake API server modelling kapp-controller's API, through a kubeconfig (there, no kapp-controller
//! runs PackageInstalls: that step says it was skipped).
mod apiserver;
mod support;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use pkgr::api::PackageRepository;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::registry::TestRegistry;

const NAMESPACE: &str = "kapp-controller";
const USER: &str = "e2e";
const PASSWORD: &str = "e2e-password";
const WAIT: Duration = Duration::from_secs(120);
const NAME: &str = "e2e-kapp-repository";
const VERSIONS: [&str; 2] = ["1.0.0", "0.1.0+vmware.1"];

struct Controller(Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn data_resource(plural: &str, kind: &str) -> ApiResource {
    ApiResource {
        group: "data.packaging.carvel.dev".into(),
        version: "v1alpha1".into(),
        api_version: "data.packaging.carvel.dev/v1alpha1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// Push a repository bundle with one Package per version of `e2e-kapp.corp.com`.
fn push_repository(registry: &TestRegistry, reference: &str) {
    let dir = tempfile::tempdir().unwrap();
    let packages = dir.path().join("packages/e2e-kapp.corp.com");
    std::fs::create_dir_all(&packages).unwrap();
    std::fs::create_dir_all(dir.path().join(".imgpkg")).unwrap();
    std::fs::write(
        dir.path().join(".imgpkg/images.yml"),
        "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n",
    )
    .unwrap();
    std::fs::write(
        packages.join("metadata.yml"),
        "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: PackageMetadata\nmetadata:\n  name: e2e-kapp.corp.com\nspec:\n  displayName: e2e\n",
    )
    .unwrap();
    for version in VERSIONS {
        std::fs::write(
            packages.join(format!("{version}.yml")),
            format!(
                "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata:\n  name: e2e-kapp.corp.com.{version}\nspec:\n  refName: e2e-kapp.corp.com\n  version: {version}\n  template:\n    spec:\n      fetch:\n      - imgpkgBundle:\n          image: registry.corp.example/app@sha256:{}\n      template:\n      - ytt: {{}}\n      deploy:\n      - kapp: {{}}\n",
                "a".repeat(64)
            ),
        )
        .unwrap();
    }
    let ca = registry.ca_pem.as_ref().unwrap().to_str().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .args(["push", "-b", reference, "-f", dir.path().to_str().unwrap()])
        .args([
            "--registry-ca-cert-path",
            ca,
            "--registry-username",
            USER,
            "--registry-password",
            PASSWORD,
        ])
        .output()
        .expect("run pkgr push");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_beside_kapp_controller() {
    let (Ok(kubeconfig), Ok(_)) = (
        std::env::var("PKGR_E2E_KUBECONFIG"),
        std::env::var("PKGR_E2E_KAPP_CONTROLLER"),
    ) else {
        println!(
            "e2e (beside kapp-controller) skipped: set PKGR_E2E_KUBECONFIG and PKGR_E2E_KAPP_CONTROLLER=1 for a cluster running kapp-controller"
        );
        eprintln!(
            "e2e (beside kapp-controller) skipped: set PKGR_E2E_KUBECONFIG and PKGR_E2E_KAPP_CONTROLLER=1 for a cluster running kapp-controller"
        );
        return;
    };
    scenario(&kubeconfig, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_beside_kapp_controller_runs_against_the_fake_api_server() {
    let api = apiserver::FakeApiServer::start().await;
    // As kapp-controller's release installs it; pkgr's Package CRDs are not there.
    for name in [
        "packages.data.packaging.carvel.dev",
        "packagemetadatas.data.packaging.carvel.dev",
    ] {
        api.delete(apiserver::kapp::CRDS, None, name);
    }
    api.install_kapp_controller(None, true, true);
    let kubeconfig = api.kubeconfig();
    scenario(kubeconfig.path().to_str().unwrap(), false).await;
}

async fn scenario(kubeconfig: &str, kapp_controller_runs: bool) {
    let client = support::e2e::client(kubeconfig).await;
    // Only the PackageRepository CRD: kapp-controller serves Packages.
    support::e2e::install(&client, pkgr::api::crds_for(true), NAMESPACE, WAIT).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    let registry = TestRegistry::start_tls_auth(USER, PASSWORD);
    let ca = std::fs::read_to_string(registry.ca_pem.as_ref().unwrap()).unwrap();
    for (name, data) in [
        ("kapp-controller-config", json!({"caCerts": ca})),
        ("e2e-kapp-creds", json!({"username": USER, "password": PASSWORD})),
    ] {
        let body = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": NAMESPACE}, "stringData": data});
        secrets
            .patch(
                name,
                &PatchParams::apply("pkgr-e2e").force(),
                &Patch::Apply(&body),
            )
            .await
            .unwrap();
    }
    let image = registry.repo("repo/e2e-kapp:1.0.0");
    push_repository(&registry, &image);

    let controller = Controller(
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
    );
    let repos: Api<PackageRepository> = Api::all(client.clone());
    let body = json!({"apiVersion": "install.package.carvel.dev/v1alpha1", "kind": "PackageRepository",
        "metadata": {"name": NAME},
        "spec": {"fetch": {"imgpkgBundle": {"image": image, "secretRef": {"name": "e2e-kapp-creds"}}}}});
    let started = Instant::now();
    repos
        .patch(
            NAME,
            &PatchParams::apply("pkgr-e2e").force(),
            &Patch::Apply(&body),
        )
        .await
        .unwrap();
    let done = tokio::time::timeout(
        WAIT,
        await_condition(repos.clone(), NAME, |r: Option<&PackageRepository>| {
            r.and_then(|r| r.status.as_ref())
                .is_some_and(|s| s.friendly_description.as_deref() == Some("ReconcileSucceeded"))
        }),
    )
    .await
    .expect("ReconcileSucceeded in time")
    .unwrap()
    .unwrap();
    println!("apply → ReconcileSucceeded: {:?}", started.elapsed());
    let status = done.status.unwrap();
    assert_eq!(status.package_count, Some(2));
    assert!(
        status
            .destination
            .as_deref()
            .unwrap_or_default()
            .contains("kapp-controller-packaging-global"),
        "{:?}",
        status.destination
    );

    // `kubectl get packages -n default`, through kapp-controller's API: the global ones, under
    // their original names.
    let packages: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &data_resource("packages", "Package"));
    let mut names: Vec<String> = packages
        .list(&Default::default())
        .await
        .expect("list Packages through kapp-controller's API")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .filter(|n| n.starts_with("e2e-kapp.corp.com."))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["e2e-kapp.corp.com.0.1.0+vmware.1", "e2e-kapp.corp.com.1.0.0"],
        "kubectl get packages -n default"
    );
    let metadatas: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &data_resource("packagemetadatas", "PackageMetadata"),
    );
    assert!(
        metadatas
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|m| m.metadata.name.as_deref() == Some("e2e-kapp.corp.com"))
    );

    if kapp_controller_runs {
        install_one(&client).await;
    } else {
        eprintln!(
            "e2e (beside kapp-controller): the PackageInstall step was skipped: no kapp-controller runs against the fake API server"
        );
    }

    repos.delete(NAME, &DeleteParams::default()).await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let left = packages
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|p| {
                p.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("e2e-kapp.corp.com."))
            })
            .count();
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} Packages left after the repository was deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for name in ["kapp-controller-config", "e2e-kapp-creds"] {
        let _ = secrets.delete(name, &DeleteParams::default()).await;
    }
    drop(controller);
}

/// A PackageInstall in `default` resolves the `+` version from pkgr's Packages (kapp-controller
/// may then fail to fetch the package's bundle, which this test does not serve: resolution is
/// what pkgr is responsible for).
async fn install_one(client: &kube::Client) {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    accounts
        .patch(
            "e2e-kapp-installer",
            &PatchParams::apply("pkgr-e2e"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "e2e-kapp-installer", "namespace": "default"}})),
        )
        .await
        .unwrap();
    let resource = ApiResource {
        group: "packaging.carvel.dev".into(),
        version: "v1alpha1".into(),
        api_version: "packaging.carvel.dev/v1alpha1".into(),
        kind: "PackageInstall".into(),
        plural: "packageinstalls".into(),
    };
    let installs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
    let body = json!({"apiVersion": "packaging.carvel.dev/v1alpha1", "kind": "PackageInstall",
        "metadata": {"name": "e2e-kapp-install", "namespace": "default"},
        "spec": {"serviceAccountName": "e2e-kapp-installer",
            "packageRef": {"refName": "e2e-kapp.corp.com",
                "versionSelection": {"constraints": "0.1.0+vmware.1"}}}});
    installs
        .patch(
            "e2e-kapp-install",
            &PatchParams::apply("pkgr-e2e").force(),
            &Patch::Apply(&body),
        )
        .await
        .unwrap();
    let resolved = tokio::time::timeout(
        WAIT,
        await_condition(
            installs.clone(),
            "e2e-kapp-install",
            |o: Option<&DynamicObject>| {
                o.and_then(|o| o.data.pointer("/status/lastAttemptedVersion"))
                    .and_then(|v| v.as_str())
                    .is_some()
            },
        ),
    )
    .await
    .expect("kapp-controller resolved the PackageInstall in time")
    .unwrap()
    .unwrap();
    assert_eq!(
        resolved
            .data
            .pointer("/status/lastAttemptedVersion")
            .and_then(|v| v.as_str()),
        Some("0.1.0+vmware.1"),
        "{:?}",
        resolved.data.get("status")
    );
    let _ = installs
        .delete("e2e-kapp-install", &DeleteParams::default())
        .await;
    let _ = accounts
        .delete("e2e-kapp-installer", &DeleteParams::default())
        .await;
}
