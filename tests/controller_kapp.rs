//! pkgr beside kapp-controller, driven through kube-runtime's real watcher, reflector and
//! Controller against the fake API server modelling kapp-controller's packaging API (internal
//! CRDs, APIService, global namespace, name encoding, aggregated reads): Packages land where
//! kapp-controller's PackageInstall reads them, under the names its API shows, and everything
//! pkgr guarantees (ownership, prune, deletion, restart with 0 writes, mode switches) holds.
mod apiserver;

use apiserver::FakeApiServer;
use apiserver::controller::{Options, Running, outcomes};
use apiserver::kapp::{INTERNAL_METADATAS, INTERNAL_PACKAGES};
use pkgr::controller::metrics::Metrics;
use pkgr::controller::sink::internal_package_name;
use pkgr::controller::source::RegistrySource;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const REPOS: &str = "install.package.carvel.dev/v1alpha1/packagerepositories";
const PACKAGES: &str = "data.packaging.carvel.dev/v1alpha1/packages";
const METADATAS: &str = "data.packaging.carvel.dev/v1alpha1/packagemetadatas";
const GLOBAL: &str = "kapp-controller-packaging-global";
const WAIT: Duration = Duration::from_secs(30);

fn package_yaml(ref_name: &str, version: &str) -> String {
    format!(
        "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata:\n  name: {ref_name}.{version}\nspec:\n  refName: {ref_name}\n  version: {version}\n  template:\n    spec:\n      fetch:\n      - imgpkgBundle:\n          image: registry.corp.example/app@sha256:{}\n",
        "a".repeat(64)
    )
}

/// An inline repository: one Package per version and the PackageMetadata.
fn repository(name: &str, ref_name: &str, versions: &[&str]) -> Value {
    let mut paths: serde_json::Map<String, Value> = versions
        .iter()
        .map(|v| {
            (
                format!("packages/{ref_name}/{v}.yml"),
                json!(package_yaml(ref_name, v)),
            )
        })
        .collect();
    paths.insert(
        format!("packages/{ref_name}/metadata.yml"),
        json!(format!(
            "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: PackageMetadata\nmetadata:\n  name: {ref_name}\nspec:\n  displayName: {ref_name}\n"
        )),
    );
    json!({"apiVersion": "install.package.carvel.dev/v1alpha1", "kind": "PackageRepository",
           "metadata": {"name": name}, "spec": {"fetch": {"inline": {"paths": paths}}}})
}

async fn start(api: &FakeApiServer) -> Running {
    start_counting(api, Arc::new(Metrics::default())).await
}

async fn start_counting(api: &FakeApiServer, metrics: Arc<Metrics>) -> Running {
    let options = Options {
        metrics,
        ..Options::default()
    };
    Running::start(api, Arc::new(RegistrySource::new(Default::default())), options).await
}

fn status(api: &FakeApiServer, name: &str) -> Value {
    api.get(REPOS, None, name)
        .and_then(|r| r.get("status").cloned())
        .unwrap_or(Value::Null)
}

async fn wait_described(api: &FakeApiServer, name: &str, prefix: &str) -> Value {
    api.wait_for(&format!("{name} to report {prefix}"), WAIT, |api| {
        let s = status(api, name);
        s["friendlyDescription"]
            .as_str()
            .is_some_and(|d| d.starts_with(prefix))
            .then_some(s)
    })
    .await
}

fn internal_names(api: &FakeApiServer, resource: &str) -> Vec<String> {
    let mut names: Vec<String> = api
        .all(resource)
        .iter()
        .map(|o| {
            assert_eq!(o["metadata"]["namespace"], GLOBAL, "{o}");
            o["metadata"]["name"].as_str().unwrap().to_string()
        })
        .collect();
    names.sort();
    names
}

fn writes(api: &FakeApiServer) -> Vec<String> {
    api.log()
        .iter()
        .filter(|l| l.is_write() && !l.path.contains("/events"))
        .map(|l| format!("{} {}", l.method, l.path))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_are_delivered_where_kapp_controller_serves_them_in_every_namespace() {
    let api = FakeApiServer::start().await;
    api.install_kapp_controller(None, true, true);
    let running = start(&api).await;
    api.create(
        REPOS,
        None,
        "tce",
        repository("tce", "app.corp.com", &["1.0.0", "0.1.0+vmware.1"]),
    );
    let s = wait_described(&api, "tce", "ReconcileSucceeded").await;
    assert_eq!(s["packageCount"], 2);
    assert!(
        s["destination"].as_str().unwrap().contains(GLOBAL),
        "the status says where the Packages went: {s}"
    );
    // Stored as kapp-controller stores them: base32hex names, the `+` version kept.
    let mut expected = vec![
        internal_package_name("app.corp.com.1.0.0"),
        internal_package_name("app.corp.com.0.1.0+vmware.1"),
    ];
    expected.sort();
    assert_eq!(internal_names(&api, INTERNAL_PACKAGES), expected);
    assert_eq!(internal_names(&api, INTERNAL_METADATAS), ["app.corp.com"]);
    let stored = api
        .get(
            INTERNAL_PACKAGES,
            Some(GLOBAL),
            &internal_package_name("app.corp.com.0.1.0+vmware.1"),
        )
        .unwrap();
    assert_eq!(stored["kind"], "InternalPackage");
    assert_eq!(stored["spec"]["version"], "0.1.0+vmware.1");
    assert!(
        stored["metadata"]["annotations"]
            .get("pkgr.carvel.dev/original-name")
            .is_none(),
        "no renaming beside kapp-controller: {stored}"
    );
    assert_eq!(stored["metadata"]["ownerReferences"][0]["name"], "tce");
    // Nothing in the group kapp-controller's API serves.
    assert!(api.all(PACKAGES).is_empty() && api.all(METADATAS).is_empty());
    // What `kubectl get packages -n default` and in any other namespace show, through its API.
    for namespace in ["default", "team-a"] {
        let mut served = api.packages_served_in(namespace);
        served.sort();
        assert_eq!(
            served,
            [
                (
                    "app.corp.com.0.1.0+vmware.1".to_string(),
                    "app.corp.com".to_string(),
                    "0.1.0+vmware.1".to_string()
                ),
                (
                    "app.corp.com.1.0.0".to_string(),
                    "app.corp.com".to_string(),
                    "1.0.0".to_string()
                ),
            ]
        );
        assert_eq!(api.metadatas_served_in(namespace), ["app.corp.com"]);
    }
    running.stop().await;

    // A restart with nothing changed: found unchanged from the internal objects, no write.
    api.clear_log();
    let metrics = Arc::new(Metrics::default());
    let running = start_counting(&api, metrics.clone()).await;
    // (The metrics are not the API server's state: waited for by the harness, not `wait_for`.)
    running.wait_outcome("unchanged", 1).await;
    assert_eq!(outcomes(&metrics, "succeeded"), 0, "nothing applied again");
    assert_eq!(writes(&api), Vec::<String>::new());

    // A version removed: pruned from the global namespace; deletion removes the rest.
    // (A merge patch: the removed file is set to null.)
    api.edit(
        REPOS,
        None,
        "tce",
        json!({"metadata": {"generation": 2}, "spec": {"fetch": {"inline": {"paths": {
            "packages/app.corp.com/0.1.0+vmware.1.yml": null}}}}}),
    );
    api.wait_for("the removed version to be pruned", WAIT, |api| {
        (internal_names(api, INTERNAL_PACKAGES) == [internal_package_name("app.corp.com.1.0.0")])
            .then_some(())
    })
    .await;
    api.delete(REPOS, None, "tce");
    api.wait_for("the repository's objects to be deleted", WAIT, |api| {
        (api.all(INTERNAL_PACKAGES).is_empty()
            && api.all(INTERNAL_METADATAS).is_empty()
            && api.get(REPOS, None, "tce").is_none())
        .then_some(())
    })
    .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_kapp_controller_deployed_is_never_written_over_and_the_status_names_its_repository() {
    let api = FakeApiServer::start().await;
    api.install_kapp_controller(None, true, true);
    let spec = json!({"refName": "app.corp.com", "version": "1.0.0", "licenses": ["theirs"]});
    api.kapp_controller_deploys(
        INTERNAL_PACKAGES,
        GLOBAL,
        &internal_package_name("app.corp.com.1.0.0"),
        "kapp-controller-packaging-global/tanzu-standard",
        spec,
    );
    let before = api
        .get(
            INTERNAL_PACKAGES,
            Some(GLOBAL),
            &internal_package_name("app.corp.com.1.0.0"),
        )
        .unwrap();
    let running = start(&api).await;
    api.create(
        REPOS,
        None,
        "mine",
        repository("mine", "app.corp.com", &["1.0.0", "2.0.0"]),
    );
    let s = wait_described(&api, "mine", "ReconcileFailed").await;
    let text = s["friendlyDescription"].as_str().unwrap();
    assert!(
        text.contains("Package app.corp.com.1.0.0")
            && text.contains(
                "kapp-controller's PackageRepository kapp-controller-packaging-global/tanzu-standard"
            ),
        "{text}"
    );
    let after = api
        .get(
            INTERNAL_PACKAGES,
            Some(GLOBAL),
            &internal_package_name("app.corp.com.1.0.0"),
        )
        .unwrap();
    assert_eq!(after, before, "kapp-controller's object untouched");
    assert_eq!(
        api.all(INTERNAL_PACKAGES).len(),
        1,
        "refused before any write: nothing of the repository applied"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_namespace_comes_from_kapp_controller_crd_and_must_exist() {
    let api = FakeApiServer::start().await;
    api.install_kapp_controller(Some("carvel-global"), false, true);
    let running = start(&api).await;
    api.create(REPOS, None, "r", repository("r", "app.corp.com", &["1.0.0"]));
    let s = wait_described(&api, "r", "ReconcileFailed").await;
    let text = s["friendlyDescription"].as_str().unwrap();
    assert!(
        text.contains("carvel-global does not exist")
            && text.contains("packaging.carvel.dev/global-namespace"),
        "{text}"
    );
    assert!(api.all(INTERNAL_PACKAGES).is_empty() && api.all(INTERNAL_METADATAS).is_empty());
    // Created: the next reconcile delivers there.
    api.create(
        apiserver::kapp::NAMESPACES,
        None,
        "carvel-global",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "carvel-global"}}),
    );
    api.edit(REPOS, None, "r", json!({"metadata": {"generation": 2}}));
    wait_described(&api, "r", "ReconcileSucceeded").await;
    let stored = api.all(INTERNAL_PACKAGES);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["metadata"]["namespace"], "carvel-global");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_kapp_controller_api_down_packages_are_delivered_and_the_status_says_when_they_appear() {
    let api = FakeApiServer::start().await;
    api.install_kapp_controller(None, true, false);
    let running = start(&api).await;
    api.create(REPOS, None, "r", repository("r", "app.corp.com", &["1.0.0"]));
    let s = wait_described(&api, "r", "ReconcileSucceeded").await;
    assert!(
        s["destination"].as_str().unwrap().contains("once it is back"),
        "{s}"
    );
    assert_eq!(api.all(INTERNAL_PACKAGES).len(), 1);
    running.stop().await;
}

/// kapp-controller installed while pkgr runs, then removed: pkgr follows, and the Packages are in
/// the new destination before they leave the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installing_and_removing_kapp_controller_moves_the_packages() {
    let api = FakeApiServer::start().await;
    let running = start(&api).await;
    api.create(
        REPOS,
        None,
        "r",
        repository("r", "app.corp.com", &["1.0.0", "2.0.0"]),
    );
    wait_described(&api, "r", "ReconcileSucceeded").await;
    assert_eq!(api.all(PACKAGES).len(), 2);

    api.install_kapp_controller(None, true, true);
    api.wait_for(
        "the Packages in kapp-controller's global namespace",
        WAIT,
        |api| (api.all(INTERNAL_PACKAGES).len() == 2 && api.all(INTERNAL_METADATAS).len() == 1).then_some(()),
    )
    .await;
    api.wait_for("the old cluster-scoped Packages taken out", WAIT, |api| {
        (api.all(PACKAGES).is_empty() && api.all(METADATAS).is_empty()).then_some(())
    })
    .await;
    // Never missing: the internal ones were written before the first old one was deleted.
    let log = api.log();
    let first_delete = log
        .iter()
        .position(|l| l.method == "DELETE" && l.path.contains("/data.packaging.carvel.dev/"))
        .expect("the old Packages were deleted");
    let internal_writes = log[..first_delete]
        .iter()
        .filter(|l| l.method == "PATCH" && l.path.contains("/internalpackages/"))
        .count();
    assert_eq!(
        internal_writes, 2,
        "both Packages delivered before any old one left"
    );
    assert_eq!(api.packages_served_in("default").len(), 2);
    api.wait_for("the status to name the global namespace", WAIT, |api| {
        status(api, "r")["destination"]
            .as_str()
            .is_some_and(|d| d.contains(GLOBAL))
            .then_some(())
    })
    .await;

    api.remove_kapp_controller();
    api.wait_for("the Packages back in pkgr's CRDs", WAIT, |api| {
        (api.all(PACKAGES).len() == 2 && api.all(METADATAS).len() == 1).then_some(())
    })
    .await;
    api.wait_for("the status to say so", WAIT, |api| {
        status(api, "r")["destination"]
            .as_str()
            .is_some_and(|d| d.contains("pkgr's CRDs"))
            .then_some(())
    })
    .await;
    running.stop().await;
}

/// Two repositories supply the same Package beside kapp-controller: deleting the one that holds
/// it hands it to the other (same object, same uid), never leaving PackageInstall without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_one_of_two_repositories_hands_the_shared_package_over() {
    let api = FakeApiServer::start().await;
    api.install_kapp_controller(None, true, true);
    let running = start(&api).await;
    api.create(
        REPOS,
        None,
        "first",
        repository("first", "app.corp.com", &["1.0.0"]),
    );
    wait_described(&api, "first", "ReconcileSucceeded").await;
    api.create(
        REPOS,
        None,
        "second",
        repository("second", "app.corp.com", &["1.0.0"]),
    );
    wait_described(&api, "second", "ReconcileSucceeded").await;
    let stored = internal_package_name("app.corp.com.1.0.0");
    let before = api.get(INTERNAL_PACKAGES, Some(GLOBAL), &stored).unwrap();
    assert_eq!(before["metadata"]["ownerReferences"][0]["name"], "first");
    api.clear_log();
    api.delete(REPOS, None, "first");
    api.wait_for("the Package handed to second", WAIT, |api| {
        let p = api.get(INTERNAL_PACKAGES, Some(GLOBAL), &stored)?;
        (p["metadata"]["ownerReferences"][0]["name"] == "second" && api.get(REPOS, None, "first").is_none())
            .then_some(p)
    })
    .await;
    let after = api.get(INTERNAL_PACKAGES, Some(GLOBAL), &stored).unwrap();
    assert_eq!(
        after["metadata"]["uid"], before["metadata"]["uid"],
        "the same object"
    );
    assert!(
        !api.log()
            .iter()
            .any(|l| l.method == "DELETE" && l.path.contains("/internalpackages/")),
        "never deleted: {:?}",
        writes(&api)
    );
    assert_eq!(api.packages_served_in("default").len(), 1);
    running.stop().await;
}

/// The watch lags behind a first repository's applies (as under load) when a second repository
/// that supplies the same Package reconciles: it still sees whose the object is (the API server
/// says so, not the lagging cache) and leaves it to the first, instead of taking it over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_repository_leaves_the_first_ones_object_even_while_the_watch_lags() {
    let api = FakeApiServer::start().await;
    api.install_kapp_controller(None, true, true);
    let running = start(&api).await;
    api.hold_watch_events(INTERNAL_PACKAGES);
    api.create(
        REPOS,
        None,
        "first",
        repository("first", "app.corp.com", &["1.0.0"]),
    );
    wait_described(&api, "first", "ReconcileSucceeded").await;
    api.create(
        REPOS,
        None,
        "second",
        repository("second", "app.corp.com", &["1.0.0"]),
    );
    wait_described(&api, "second", "ReconcileSucceeded").await;
    let stored = internal_package_name("app.corp.com.1.0.0");
    let object = api.get(INTERNAL_PACKAGES, Some(GLOBAL), &stored).unwrap();
    assert_eq!(
        object["metadata"]["ownerReferences"][0]["name"], "first",
        "{object}"
    );
    api.release_watch_events();
    running.stop().await;
}
