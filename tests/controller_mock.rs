//! The controller's Kubernetes traffic against a recording fake API server: exact requests for
//! success, each failure class, prune, overlap, deletion, pause and the no-change resync.
mod controller_support;

use controller_support::*;
use http::Method;
use pkgr::api::PackageRepository;
use pkgr::controller::reconcile;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const IMAGE: &str = "registry.corp.example/apps/repo";
const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn shared() -> Shared {
    Arc::new(Mutex::new(ClusterState::default()))
}

/// A registry holding IMAGE:1.0.0 → DIGEST with `files`.
fn registry_with(files: &[(&str, String)]) -> Registry {
    let mut registry = Registry::default();
    registry.tags.insert(format!("{IMAGE}:1.0.0"), DIGEST.into());
    registry
        .tags
        .insert(format!("{IMAGE}:sha256-{}.imgpkg", &DIGEST[7..]), DIGEST.into());
    registry
        .contents
        .insert(format!("{IMAGE}@{DIGEST}"), bundle(files));
    registry
}

fn three_objects() -> Vec<(&'static str, String)> {
    vec![
        (
            "packages/simple.corp.com/1.0.0.yml",
            package_yaml(
                "simple.corp.com",
                "1.0.0",
                "registry.corp.example/apps/repo@sha256:aaaa",
            ),
        ),
        (
            "packages/simple.corp.com/2.0.0.yml",
            format!(
                "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stray\n",
                package_yaml(
                    "simple.corp.com",
                    "2.0.0",
                    "registry.corp.example/apps/repo@sha256:bbbb"
                )
            ),
        ),
        (
            "packages/simple.corp.com/metadata.yml",
            metadata_yaml("simple.corp.com"),
        ),
    ]
}

fn bundle_spec(image: &str, secret: Option<&str>) -> Value {
    let mut bundle = json!({"image": image});
    if let Some(s) = secret {
        bundle["secretRef"] = json!({"name": s});
    }
    json!({"fetch": {"imgpkgBundle": bundle}})
}

/// Run one reconcile with `repo` stored in the fake cluster; return the requests it made.
async fn run(
    state: &Shared,
    ctx: &Arc<pkgr::controller::Context>,
    repo: &PackageRepository,
) -> Vec<Recorded> {
    {
        let mut s = state.lock().unwrap();
        s.repository = Some(serde_json::to_value(repo).unwrap());
        s.log.clear();
    }
    reconcile(Arc::new(repo.clone()), ctx.clone())
        .await
        .expect("reconcile returns an action");
    state.lock().unwrap().log.clone()
}

fn status_of(state: &Shared) -> Value {
    state.lock().unwrap().repository.as_ref().unwrap()["status"].clone()
}

fn lines(log: &[Recorded]) -> Vec<String> {
    let mut lines: Vec<String> = log.iter().map(Recorded::line).collect();
    lines.sort();
    lines
}

/// The final status write. A new or edited spec is first marked `Reconciling` (without moving
/// observedGeneration); otherwise there is exactly one write, at the end.
fn status_patch(log: &[Recorded]) -> &Recorded {
    let patches: Vec<&Recorded> = log.iter().filter(|r| r.path.ends_with("/status")).collect();
    for patch in &patches {
        assert_eq!(patch.method, Method::PATCH);
        assert_eq!(patch.query.get("fieldManager").map(String::as_str), Some("pkgr"));
        assert_eq!(patch.query.get("force").map(String::as_str), Some("true"));
    }
    match patches.as_slice() {
        [only] => only,
        [first, last] if first.body["status"]["friendlyDescription"] == "Reconciling" => {
            assert_eq!(first.body["status"]["conditions"][0]["type"], "Reconciling");
            assert!(
                first.body["status"]["observedGeneration"].is_null(),
                "not yet observed"
            );
            last
        }
        _ => panic!(
            "one status write at the end (after Reconciling for a new spec): {:?}",
            lines(log)
        ),
    }
}

fn events(log: &[Recorded]) -> Vec<(String, String, String)> {
    log.iter()
        .filter(|r| r.path.starts_with("/apis/events.k8s.io/"))
        .map(|r| {
            (
                r.body["type"].as_str().unwrap_or("").to_string(),
                r.body["reason"].as_str().unwrap_or("").to_string(),
                r.body["note"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn first_reconcile_applies_everything_then_a_resync_is_one_registry_call_and_no_writes() {
    let state = shared();
    state.lock().unwrap().secrets.insert(
        "creds".into(),
        secret("creds", &[("username", "u"), ("password", "hunter2")]),
    );
    let registry = registry_with(&three_objects());
    let (ctx, mut caches) = context(&state, &registry);
    let repo = repository(
        "simple-package-repository",
        bundle_spec(&format!("{IMAGE}:1.0.0"), Some("creds")),
    );

    let log = run(&state, &ctx, &repo).await;
    let pkgs = "/apis/data.packaging.carvel.dev/v1alpha1";
    assert_eq!(
        lines(&log),
        [
            "GET /api/v1/namespaces/kapp-controller/secrets/creds".to_string(),
            format!("GET {pkgs}/packagemetadatas"),
            format!("GET {pkgs}/packages"),
            format!("PATCH {pkgs}/packagemetadatas/simple.corp.com"),
            format!("PATCH {pkgs}/packages/simple.corp.com.1.0.0"),
            format!("PATCH {pkgs}/packages/simple.corp.com.2.0.0"),
            "PATCH /apis/install.package.carvel.dev/v1alpha1/packagerepositories/simple-package-repository/status".to_string(),
            "PATCH /apis/install.package.carvel.dev/v1alpha1/packagerepositories/simple-package-repository/status".to_string(),
            "POST /apis/events.k8s.io/v1/namespaces/default/events".to_string(),
            "POST /apis/events.k8s.io/v1/namespaces/default/events".to_string(),
        ],
        "N applies plus a small constant"
    );
    for apply in log
        .iter()
        .filter(|r| r.method == Method::PATCH && r.path.starts_with(pkgs))
    {
        assert_eq!(
            apply.query.get("fieldManager").map(String::as_str),
            Some("pkgr"),
            "{}",
            apply.line()
        );
        assert_eq!(
            apply.query.get("force"),
            None,
            "new objects are applied without force: one made by someone else meanwhile is a conflict, not taken over"
        );
        let meta = &apply.body["metadata"];
        assert_eq!(
            meta["labels"]["pkgr.packaging.carvel.dev/repository"],
            "simple-package-repository"
        );
        assert_eq!(meta["ownerReferences"][0]["kind"], "PackageRepository");
        assert_eq!(meta["ownerReferences"][0]["name"], "simple-package-repository");
        assert_eq!(meta["ownerReferences"][0]["uid"], "uid-simple-package-repository");
        assert!(apply.body["spec"].is_object());
    }
    for list in log
        .iter()
        .filter(|r| r.method == Method::GET && r.path.starts_with(pkgs))
    {
        assert_eq!(
            list.query.get("labelSelector").map(String::as_str),
            Some("pkgr.packaging.carvel.dev/repository=simple-package-repository")
        );
    }
    let status = &status_patch(&log).body["status"];
    assert_eq!(status["friendlyDescription"], "ReconcileSucceeded");
    assert_eq!(status["packageCount"], 2);
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(status["conditions"][0]["type"], "ReconcileSucceeded");
    assert_eq!(status["conditions"][0]["status"], "True");
    assert_eq!(status["fetch"]["image"], format!("{IMAGE}@{DIGEST}"));
    assert_eq!(status["consecutiveReconcileSuccesses"], 1);
    let events = events(&log);
    assert!(
        events
            .iter()
            .any(|(t, r, n)| t == "Normal" && r == "ReconcileSucceeded" && n.contains("2 Packages")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(_, r, n)| r == "DocumentsSkipped" && n.contains("2.0.0.yml document 2 (v1 ConfigMap)")),
        "{events:?}"
    );
    assert!(
        !serde_json::to_string(&log.iter().map(|r| &r.body).collect::<Vec<_>>())
            .unwrap()
            .contains("hunter2")
    );
    assert_eq!(
        (
            registry.resolves.load(std::sync::atomic::Ordering::SeqCst),
            registry.fetches.load(std::sync::atomic::Ordering::SeqCst)
        ),
        (1, 1)
    );
    assert_eq!(
        format!("{:?}", registry.sessions.lock().unwrap()[0]),
        "RegistryAuth { entries: [AuthEntry { host: None, credentials: Basic { username: \"u\", password: <redacted> } }] }"
    );

    // The periodic resync: the watch caches now hold what was applied, status says succeeded.
    caches.sync_from(&state);
    let mut resynced = repo.clone();
    resynced.status = serde_json::from_value(status_of(&state)).unwrap();
    let before = registry.calls();
    let log = run(&state, &ctx, &resynced).await;
    assert_eq!(registry.calls() - before, 1, "one manifest request");
    assert_eq!(
        registry.fetches.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "no pull"
    );
    assert!(
        log.iter().all(|r| !r.is_write()),
        "no API writes: {:?}",
        lines(&log)
    );
    assert_eq!(ctx.metrics.count("unchanged"), 1);
    assert_eq!(ctx.metrics.count("succeeded"), 1);

    // Someone deletes an applied Package: the short-cut no longer holds; it is applied again.
    state.lock().unwrap().packages.remove("simple.corp.com.1.0.0");
    caches.sync_from(&state);
    let log = run(&state, &ctx, &resynced).await;
    assert!(
        lines(&log).contains(&format!("PATCH {pkgs}/packages/simple.corp.com.1.0.0")),
        "{:?}",
        lines(&log)
    );
    assert_eq!(registry.fetches.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn with_the_secret_cache_a_resync_makes_no_api_request_at_all() {
    let state = shared();
    state.lock().unwrap().secrets.insert(
        "creds".into(),
        secret("creds", &[("username", "u"), ("password", "p")]),
    );
    let registry = registry_with(&three_objects());
    let (ctx, mut caches, _secrets) = context_with_secret_cache(&state, &registry);
    let repo = repository("cached", bundle_spec(&format!("{IMAGE}:1.0.0"), Some("creds")));
    let log = run(&state, &ctx, &repo).await;
    assert!(
        !log.iter().any(|r| r.path.contains("/secrets/")),
        "{:?}",
        lines(&log)
    );
    assert_eq!(status_of(&state)["friendlyDescription"], "ReconcileSucceeded");

    caches.sync_from(&state);
    let mut resynced = repo.clone();
    resynced.status = serde_json::from_value(status_of(&state)).unwrap();
    let before = registry.calls();
    let log = run(&state, &ctx, &resynced).await;
    assert!(log.is_empty(), "{:?}", lines(&log));
    assert_eq!(registry.calls() - before, 1);

    // A Secret missing from the cache is reported as missing.
    let repo = repository("uncached", bundle_spec(&format!("{IMAGE}:1.0.0"), Some("other")));
    let log = run(&state, &ctx, &repo).await;
    assert!(
        status_patch(&log).body["status"]["friendlyDescription"]
            .as_str()
            .unwrap()
            .contains("Secret kapp-controller/other")
    );
}

#[tokio::test]
async fn prune_deletes_what_the_repository_no_longer_contains() {
    let state = shared();
    let registry = registry_with(&three_objects());
    let (ctx, _caches) = context(&state, &registry);
    let repo = repository("repo", bundle_spec(&format!("{IMAGE}:1.0.0"), None));
    run(&state, &ctx, &repo).await;
    // A new digest without version 2.0.0.
    let mut registry2 = registry.clone();
    let digest2 = format!("sha256:{}", "2".repeat(64));
    registry2.tags.insert(format!("{IMAGE}:1.0.0"), digest2.clone());
    let mut files = three_objects();
    files.remove(1);
    registry2
        .contents
        .insert(format!("{IMAGE}@{digest2}"), bundle(&files));
    let (ctx2, _caches2) = context(&state, &registry2);
    let log = run(&state, &ctx2, &repo).await;
    let deletes: Vec<String> = log
        .iter()
        .filter(|r| r.method == Method::DELETE)
        .map(Recorded::line)
        .collect();
    assert_eq!(
        deletes,
        ["DELETE /apis/data.packaging.carvel.dev/v1alpha1/packages/simple.corp.com.2.0.0"]
    );
    assert!(
        !state
            .lock()
            .unwrap()
            .packages
            .contains_key("simple.corp.com.2.0.0")
    );
    assert!(
        state
            .lock()
            .unwrap()
            .packages
            .contains_key("simple.corp.com.1.0.0")
    );
    assert_eq!(status_of(&state)["packageCount"], 1);
    assert!(
        events(&log)
            .iter()
            .any(|(_, _, n)| n.contains("deleted 1 no longer in the repository"))
    );
}

/// Run a reconcile expected to fail; return (friendlyDescription, usefulErrorMessage, log).
async fn failing(state: &Shared, registry: &Registry, spec: Value) -> (String, String, Vec<Recorded>) {
    let (ctx, _caches) = context(state, registry);
    let repo = repository("repo", spec);
    let log = run(state, &ctx, &repo).await;
    let patch = status_patch(&log);
    let status = &patch.body["status"];
    assert_eq!(status["conditions"][0]["type"], "ReconcileFailed");
    assert_eq!(status["consecutiveReconcileFailures"], 1);
    assert!(
        log.iter()
            .all(|r| !(r.method == Method::PATCH && r.path.starts_with("/apis/data."))),
        "nothing applied"
    );
    let events = events(&log);
    assert!(
        events
            .iter()
            .any(|(t, r, _)| t == "Warning" && r == "ReconcileFailed"),
        "{events:?}"
    );
    (
        status["friendlyDescription"].as_str().unwrap().to_string(),
        status["usefulErrorMessage"].as_str().unwrap().to_string(),
        log,
    )
}

#[tokio::test]
async fn secret_missing() {
    let state = shared();
    let (description, _, log) = failing(
        &state,
        &registry_with(&three_objects()),
        bundle_spec(IMAGE, Some("nope")),
    )
    .await;
    assert_eq!(
        description,
        "ReconcileFailed: Secret kapp-controller/nope named by spec.fetch secretRef does not exist; create it in namespace kapp-controller"
    );
    assert_eq!(
        lines(&log)[0],
        "GET /api/v1/namespaces/kapp-controller/secrets/nope"
    );
}

#[tokio::test]
async fn secret_with_unknown_key() {
    let state = shared();
    state.lock().unwrap().secrets.insert(
        "creds".into(),
        secret("creds", &[("user", "u"), ("password", "hunter2")]),
    );
    let (description, message, _) = failing(
        &state,
        &registry_with(&three_objects()),
        bundle_spec(IMAGE, Some("creds")),
    )
    .await;
    assert!(
        description.contains("Secret kapp-controller/creds has unknown key \"user\""),
        "{description}"
    );
    assert!(!message.contains("hunter2"));
}

#[tokio::test]
async fn registry_unreachable_and_unauthorized() {
    for failure in [
        "connecting to registry.corp.example: connection refused",
        "401 Unauthorized: authentication required",
    ] {
        let state = shared();
        let mut registry = registry_with(&three_objects());
        registry.fail_with = Some(failure.to_string());
        let (description, message, _) =
            failing(&state, &registry, bundle_spec(&format!("{IMAGE}:1.0.0"), None)).await;
        assert_eq!(
            description,
            format!("ReconcileFailed: resolving {IMAGE}:1.0.0: {failure}")
        );
        assert_eq!(message, format!("resolving {IMAGE}:1.0.0: {failure}"));
    }
}

#[tokio::test]
async fn tag_not_found_lists_the_tags_without_imgpkg_internals() {
    let state = shared();
    let (description, _, _) = failing(
        &state,
        &registry_with(&three_objects()),
        bundle_spec(&format!("{IMAGE}:9.9.9"), None),
    )
    .await;
    assert_eq!(
        description,
        format!("ReconcileFailed: tag \"9.9.9\" not found in {IMAGE}; tags there: 1.0.0")
    );
}

#[tokio::test]
async fn plain_image_given_as_bundle() {
    let state = shared();
    let mut registry = registry_with(&three_objects());
    for contents in registry.contents.values_mut() {
        contents.is_bundle = false;
    }
    let (description, _, _) = failing(&state, &registry, bundle_spec(&format!("{IMAGE}:1.0.0"), None)).await;
    assert!(description.contains("is not an imgpkg bundle"), "{description}");
}

#[tokio::test]
async fn no_packages_directory() {
    let state = shared();
    let registry = registry_with(&[("config/x.yml", metadata_yaml("a.b.c"))]);
    let (description, _, _) = failing(&state, &registry, bundle_spec(&format!("{IMAGE}:1.0.0"), None)).await;
    assert!(
        description.contains("have no packages/ directory"),
        "{description}"
    );
}

#[tokio::test]
async fn malformed_yaml_and_invalid_package_name_the_file() {
    let state = shared();
    let registry = registry_with(&[("packages/bad.yml", "kind: [unclosed\n".to_string())]);
    let (description, message, _) =
        failing(&state, &registry, bundle_spec(&format!("{IMAGE}:1.0.0"), None)).await;
    let prefix = format!("ReconcileFailed: reading the Packages of {IMAGE}@{DIGEST}: ");
    assert!(description.starts_with(&prefix), "{description}");
    assert!(
        description.contains("packages/bad.yml") && description.contains("line 1"),
        "{description}"
    );
    assert!(message.contains("packages/bad.yml"));

    let state = shared();
    let wrong =
        package_yaml("simple.corp.com", "1.0.0", "x").replace("name: simple.corp.com.1.0.0", "name: wrong");
    let registry = registry_with(&[("packages/p.yml", wrong)]);
    let (description, _, _) = failing(&state, &registry, bundle_spec(&format!("{IMAGE}:1.0.0"), None)).await;
    assert!(description.starts_with(&prefix), "{description}");
    assert!(
        description.contains("packages/p.yml") && description.contains("metadata.name"),
        "{description}"
    );
}

#[tokio::test]
async fn zero_or_two_sources() {
    let state = shared();
    let (description, _, _) = failing(&state, &Registry::default(), json!({"fetch": {}})).await;
    assert_eq!(
        description,
        "ReconcileFailed: spec.fetch names no source: set exactly one of imgpkgBundle, image or inline"
    );
    let (description, _, _) = failing(
        &state,
        &Registry::default(),
        json!({"fetch": {"imgpkgBundle": {"image": IMAGE}, "image": {"url": IMAGE}}}),
    )
    .await;
    assert_eq!(
        description,
        "ReconcileFailed: spec.fetch names 2 sources (imgpkgBundle and image): set exactly one of imgpkgBundle, image or inline"
    );
}

/// Put an object supplied by repository `other` into the cluster.
fn supplied_by_other(state: &Shared, name: &str, image: &str, revision: Option<&str>) {
    let ref_name = name.strip_suffix(".1.0.0").expect("a 1.0.0 Package name");
    let mut object: Value = serde_saphyr::from_str(&package_yaml(ref_name, "1.0.0", image)).unwrap();
    object["metadata"]["resourceVersion"] = json!("5");
    object["metadata"]["labels"] = json!({"pkgr.packaging.carvel.dev/repository": "other"});
    object["metadata"]["ownerReferences"] = json!([{"apiVersion": "install.package.carvel.dev/v1alpha1", "kind": "PackageRepository", "name": "other", "uid": "uid-other"}]);
    if let Some(r) = revision {
        object["metadata"]["annotations"] = json!({"packaging.carvel.dev/revision": r});
    }
    state.lock().unwrap().packages.insert(name.into(), object);
}

#[tokio::test]
async fn conflict_with_another_repository_names_both_and_the_field() {
    let state = shared();
    supplied_by_other(
        &state,
        "simple.corp.com.1.0.0",
        "elsewhere.example/x@sha256:cccc",
        None,
    );
    let registry = registry_with(&three_objects());
    let (description, _, _) = failing(&state, &registry, bundle_spec(&format!("{IMAGE}:1.0.0"), None)).await;
    assert!(
        description.contains("Package simple.corp.com.1.0.0 is supplied by both PackageRepository repo and other, which differ in spec.template.spec.fetch[0].imgpkgBundle.image"),
        "{description}"
    );
}

#[tokio::test]
async fn identical_object_stays_with_its_first_owner() {
    let state = shared();
    supplied_by_other(
        &state,
        "simple.corp.com.1.0.0",
        "registry.corp.example/apps/repo@sha256:aaaa",
        None,
    );
    let registry = registry_with(&three_objects());
    let (ctx, _caches) = context(&state, &registry);
    let log = run(
        &state,
        &ctx,
        &repository("repo", bundle_spec(&format!("{IMAGE}:1.0.0"), None)),
    )
    .await;
    let applied: Vec<String> = log
        .iter()
        .filter(|r| r.method == Method::PATCH && r.path.starts_with("/apis/data."))
        .map(Recorded::line)
        .collect();
    assert_eq!(applied.len(), 2, "the shared Package is not written: {applied:?}");
    assert!(!applied.iter().any(|l| l.ends_with("simple.corp.com.1.0.0")));
    assert_eq!(
        state.lock().unwrap().packages["simple.corp.com.1.0.0"]["metadata"]["labels"]["pkgr.packaging.carvel.dev/repository"],
        "other"
    );
    assert_eq!(status_of(&state)["friendlyDescription"], "ReconcileSucceeded");
    assert!(
        events(&log)
            .iter()
            .any(|(_, r, n)| r == "SuppliedByAnother" && n.contains("other"))
    );
}

#[tokio::test]
async fn higher_revision_wins() {
    // Ours (no revision) against theirs at revision 2: theirs stays.
    let state = shared();
    supplied_by_other(
        &state,
        "simple.corp.com.1.0.0",
        "elsewhere.example/x@sha256:cccc",
        Some("2"),
    );
    let (ctx, _caches) = context(&state, &registry_with(&three_objects()));
    let log = run(
        &state,
        &ctx,
        &repository("repo", bundle_spec(&format!("{IMAGE}:1.0.0"), None)),
    )
    .await;
    assert!(
        !lines(&log)
            .iter()
            .any(|l| l == "PATCH /apis/data.packaging.carvel.dev/v1alpha1/packages/simple.corp.com.1.0.0")
    );
    assert!(
        lines(&log)
            .iter()
            .any(|l| l == "GET /apis/data.packaging.carvel.dev/v1alpha1/packages/simple.corp.com.1.0.0"),
        "the other repository's copy is read to compare (the caches hold metadata only)"
    );
    assert_eq!(status_of(&state)["friendlyDescription"], "ReconcileSucceeded");

    // Ours at revision 3 against theirs at 2: ours is applied over it.
    let state = shared();
    supplied_by_other(
        &state,
        "simple.corp.com.1.0.0",
        "elsewhere.example/x@sha256:cccc",
        Some("2"),
    );
    let mut files = three_objects();
    files[0].1 = files[0].1.replace(
        "metadata:\n",
        "metadata:\n  annotations:\n    packaging.carvel.dev/revision: \"3\"\n",
    );
    let (ctx, _caches) = context(&state, &registry_with(&files));
    let log = run(
        &state,
        &ctx,
        &repository("repo", bundle_spec(&format!("{IMAGE}:1.0.0"), None)),
    )
    .await;
    assert!(
        lines(&log)
            .iter()
            .any(|l| l == "PATCH /apis/data.packaging.carvel.dev/v1alpha1/packages/simple.corp.com.1.0.0")
    );
    assert_eq!(
        state.lock().unwrap().packages["simple.corp.com.1.0.0"]["metadata"]["labels"]["pkgr.packaging.carvel.dev/repository"],
        "repo"
    );
}

fn deleting(mut repo: PackageRepository) -> PackageRepository {
    repo.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    repo
}

#[tokio::test]
async fn deletion_removes_what_the_repository_supplied_then_releases_the_finalizer() {
    let state = shared();
    supplied_by_other(&state, "other.corp.com.1.0.0", "x", None);
    let registry = registry_with(&three_objects());
    let (ctx, _caches) = context(&state, &registry);
    let repo = repository("repo", bundle_spec(&format!("{IMAGE}:1.0.0"), None));
    run(&state, &ctx, &repo).await;
    let calls = registry.calls();
    let log = run(&state, &ctx, &deleting(repo)).await;
    let mut deletes: Vec<String> = log
        .iter()
        .filter(|r| r.method == Method::DELETE)
        .map(Recorded::line)
        .collect();
    deletes.sort();

    assert_eq!(
        deletes,
        [
            "DELETE /apis/data.packaging.carvel.dev/v1alpha1/packagemetadatas/simple.corp.com",
            "DELETE /apis/data.packaging.carvel.dev/v1alpha1/packages/simple.corp.com.1.0.0",
            "DELETE /apis/data.packaging.carvel.dev/v1alpha1/packages/simple.corp.com.2.0.0",
        ]
    );
    assert!(
        state
            .lock()
            .unwrap()
            .packages
            .contains_key("other.corp.com.1.0.0"),
        "another repository's object stays"
    );
    let last = log.last().unwrap();
    assert_eq!(
        last.line(),
        "PATCH /apis/install.package.carvel.dev/v1alpha1/packagerepositories/repo"
    );
    assert_eq!(
        last.body[1],
        json!({"op": "remove", "path": "/metadata/finalizers/0"})
    );
    assert_eq!(registry.calls(), calls, "deletion does not contact the registry");
    assert!(events(&log).iter().any(|(_, r, _)| r == "Deleted"));
}

#[tokio::test]
async fn a_new_repository_gets_the_finalizer_first() {
    let state = shared();
    let registry = registry_with(&three_objects());
    let (ctx, _caches) = context(&state, &registry);
    let mut repo = repository("repo", bundle_spec(&format!("{IMAGE}:1.0.0"), None));
    repo.metadata.finalizers = None;
    let log = run(&state, &ctx, &repo).await;
    assert_eq!(
        lines(&log),
        ["PATCH /apis/install.package.carvel.dev/v1alpha1/packagerepositories/repo"]
    );
    assert_eq!(
        log[0].body[1],
        json!({"op": "add", "path": "/metadata/finalizers", "value": [pkgr::controller::FINALIZER]})
    );
    assert_eq!(registry.calls(), 0);
}

#[tokio::test]
async fn paused_writes_paused_once_and_can_still_be_deleted() {
    let state = shared();
    let registry = registry_with(&three_objects());
    let (ctx, _caches) = context(&state, &registry);
    let mut spec = bundle_spec(&format!("{IMAGE}:1.0.0"), None);
    spec["paused"] = json!(true);
    let repo = repository("repo", spec);
    let log = run(&state, &ctx, &repo).await;
    assert_eq!(status_patch(&log).body["status"]["friendlyDescription"], "Paused");
    assert_eq!(registry.calls(), 0);
    let paused: Vec<_> = events(&log)
        .into_iter()
        .filter(|(_, reason, _)| reason == "Paused")
        .collect();
    assert_eq!(
        paused.len(),
        1,
        "one Event when the repository becomes paused: {paused:?}"
    );
    let mut again = repo.clone();
    again.status = serde_json::from_value(status_of(&state)).unwrap();
    let log = run(&state, &ctx, &again).await;
    assert!(
        log.is_empty(),
        "an unchanged paused status is not rewritten: {:?}",
        lines(&log)
    );

    supplied_by_other(&state, "simple.corp.com.1.0.0", "x", None);
    state
        .lock()
        .unwrap()
        .packages
        .get_mut("simple.corp.com.1.0.0")
        .unwrap()["metadata"]["labels"] = json!({"pkgr.packaging.carvel.dev/repository": "repo"});
    let log = run(&state, &ctx, &deleting(again)).await;
    assert!(lines(&log).contains(
        &"DELETE /apis/data.packaging.carvel.dev/v1alpha1/packages/simple.corp.com.1.0.0".to_string()
    ));
    assert_eq!(
        log.last().unwrap().line(),
        "PATCH /apis/install.package.carvel.dev/v1alpha1/packagerepositories/repo"
    );
}

#[tokio::test]
async fn inline_source() {
    let state = shared();
    let (ctx, _caches) = context(&state, &Registry::default());
    let files = three_objects();
    let paths: serde_json::Map<String, Value> =
        files.iter().map(|(p, c)| (p.to_string(), json!(c))).collect();
    let log = run(
        &state,
        &ctx,
        &repository("inline", json!({"fetch": {"inline": {"paths": paths}}})),
    )
    .await;
    assert_eq!(
        status_patch(&log).body["status"]["friendlyDescription"],
        "ReconcileSucceeded"
    );
    assert_eq!(status_patch(&log).body["status"]["packageCount"], 2);
    assert!(status_patch(&log).body["status"]["fetch"]["image"].is_null());
}

#[tokio::test]
async fn image_source_with_sub_path() {
    let state = shared();
    let mut registry = Registry::default();
    registry.tags.insert(format!("{IMAGE}:1.0.0"), DIGEST.into());
    let mut contents = bundle(&[
        (
            "repo/packages/p.yml",
            package_yaml("simple.corp.com", "1.0.0", "x"),
        ),
        (
            "other/packages/q.yml",
            package_yaml("other.corp.com", "1.0.0", "x"),
        ),
    ]);
    contents.is_bundle = false;
    registry.contents.insert(format!("{IMAGE}@{DIGEST}"), contents);
    let (ctx, _caches) = context(&state, &registry);
    let spec = json!({"fetch": {"image": {"url": format!("{IMAGE}:1.0.0"), "subPath": "repo"}}});
    let log = run(&state, &ctx, &repository("img", spec)).await;
    let applied: Vec<String> = log
        .iter()
        .filter(|r| r.method == Method::PATCH && r.path.starts_with("/apis/data."))
        .map(Recorded::line)
        .collect();
    assert_eq!(
        applied,
        ["PATCH /apis/data.packaging.carvel.dev/v1alpha1/packages/simple.corp.com.1.0.0"]
    );

    let (description, _, _) = failing(
        &shared(),
        &registry,
        json!({"fetch": {"image": {"url": format!("{IMAGE}:1.0.0"), "subPath": "missing"}}}),
    )
    .await;
    assert!(
        description.contains(
            "subPath \"missing\" not found in the fetched contents (top-level entries: other/, repo/)"
        ),
        "{description}"
    );
    let (description, _, _) = failing(
        &shared(),
        &registry,
        json!({"fetch": {"image": {"url": format!("{IMAGE}:1.0.0"), "subPath": "../etc"}}}),
    )
    .await;
    assert!(description.contains("'..' is not allowed"), "{description}");
}

#[tokio::test]
async fn invalid_sync_period_fails_clearly() {
    let state = shared();
    let mut spec = bundle_spec(&format!("{IMAGE}:1.0.0"), None);
    spec["syncPeriod"] = json!("often");
    let (description, _, _) = failing(&state, &registry_with(&three_objects()), spec).await;
    assert_eq!(
        description,
        "ReconcileFailed: spec.syncPeriod \"often\" is not a Go duration such as 30s, 5m or 1h30m"
    );
}

/// Benchmark (ignored; run by bench/controller-mock.sh): one first reconcile of PACKAGES (default
/// 1,000) Packages against the in-process fake API, to see the controller's own cost without a
/// cluster. Asserts the request count (N applies plus a constant); prints the time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: bench/controller-mock.sh"]
async fn bench_first_reconcile_of_many_packages() {
    let count: usize = std::env::var("PACKAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let files: Vec<(String, String)> = (0..count)
        .map(|i| {
            let (p, v) = (i / 10, i % 10);
            (
                format!("packages/pkg{p:04}.bench.corp.com/1.{v}.0.yml"),
                package_yaml(
                    &format!("pkg{p:04}.bench.corp.com"),
                    &format!("1.{v}.0"),
                    "index.docker.io/bench/x:1",
                ),
            )
        })
        .collect();
    let refs: Vec<(&str, String)> = files.iter().map(|(p, c)| (p.as_str(), c.clone())).collect();
    let state = shared();
    let registry = registry_with(&refs);
    let (ctx, _caches) = context(&state, &registry);
    let repo = repository("bench", bundle_spec(&format!("{IMAGE}:1.0.0"), None));
    let rss_before = peak_rss_kib();
    let started = std::time::Instant::now();
    let log = run(&state, &ctx, &repo).await;
    let elapsed = started.elapsed();
    let rss_after = peak_rss_kib();
    let applies = log
        .iter()
        .filter(|r| r.method == Method::PATCH && r.path.starts_with("/apis/data."))
        .count();
    assert_eq!(applies, count);
    assert!(
        log.len() <= count + 6,
        "N applies plus a small constant: {}",
        log.len()
    );
    assert_eq!(status_of(&state)["packageCount"], count);
    println!(
        "first reconcile of {count} Packages against the fake API: {elapsed:?}, {} requests",
        log.len()
    );
    println!(
        "peak RSS of the whole test process (fake API server and its {count} stored objects included): \
         {:.1} MiB before the reconcile, {:.1} MiB after",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
}

/// VmHWM of this process, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

#[tokio::test]
async fn infrastructure_errors_back_off_up_to_the_repositorys_sync_period() {
    use kube::runtime::controller::Action;
    use std::time::Duration;
    let state = shared();
    let (ctx, _caches) = context(&state, &Registry::default());
    let mut repo = repository("flaky", bundle_spec(&format!("{IMAGE}:1.0.0"), None));
    repo.spec.sync_period = Some("40s".into());
    repo.status = serde_json::from_value(json!({"consecutiveReconcileFailures": 9})).unwrap();
    let error = pkgr::controller::ReconcileError::InvalidSyncPeriod { value: "x".into() };
    let action = pkgr::controller::error_policy(Arc::new(repo), &error, ctx);
    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(40)),
        "min(2^10 s, 40 s)"
    );
}

#[tokio::test]
async fn failures_back_off_exponentially_up_to_the_sync_period() {
    use kube::runtime::controller::Action;
    use std::time::Duration;
    let state = shared();
    let mut registry = registry_with(&three_objects());
    registry.fail_with = Some("connection refused".into());
    let (ctx, _caches) = context(&state, &registry);
    let mut repo = repository("flaky", bundle_spec(&format!("{IMAGE}:1.0.0"), None));
    repo.spec.sync_period = Some("40s".into());
    state.lock().unwrap().repository = Some(serde_json::to_value(&repo).unwrap());
    let mut delays = Vec::new();
    for _ in 0..7 {
        let action = reconcile(Arc::new(repo.clone()), ctx.clone()).await.unwrap();
        repo.status = serde_json::from_value(status_of(&state)).unwrap();
        delays.push(action);
    }
    let expected: Vec<Action> = [2, 4, 8, 16, 32, 40, 40]
        .iter()
        .map(|s| Action::requeue(Duration::from_secs(*s)))
        .collect();
    assert_eq!(delays, expected);
    assert_eq!(status_of(&state)["consecutiveReconcileFailures"], 7);
}

#[tokio::test]
async fn deleting_the_first_owner_requeues_the_repository_that_shares_its_objects() {
    let state = shared();
    let registry = registry_with(&three_objects());
    let (ctx, mut caches) = context(&state, &registry);
    let mut ctx = Arc::into_inner(ctx).unwrap();
    let (requeue, mut requeued) = tokio::sync::mpsc::unbounded_channel();
    ctx.requeue = Some(requeue);
    let ctx = Arc::new(ctx);

    let first = repository("first", bundle_spec(&format!("{IMAGE}:1.0.0"), None));
    run(&state, &ctx, &first).await;
    caches.sync_from(&state);
    let log = run(
        &state,
        &ctx,
        &repository("second", bundle_spec(&format!("{IMAGE}:1.0.0"), None)),
    )
    .await;
    assert!(
        !log.iter()
            .any(|r| r.method == Method::PATCH && r.path.starts_with("/apis/data.")),
        "all identical: kept by first"
    );
    assert!(requeued.try_recv().is_err(), "nothing deleted yet");

    let second = repository("second", bundle_spec(&format!("{IMAGE}:1.0.0"), None));
    state
        .lock()
        .unwrap()
        .others
        .insert("second".into(), serde_json::to_value(&second).unwrap());
    run(&state, &ctx, &deleting(first)).await;
    {
        // Handed over, never deleted: the objects are there all the time, now second's.
        let state = state.lock().unwrap();
        assert_eq!(state.packages.len(), 2);
        for package in state.packages.values() {
            assert_eq!(
                package["metadata"]["labels"]["pkgr.packaging.carvel.dev/repository"],
                "second"
            );
            assert_eq!(package["metadata"]["ownerReferences"][0]["name"], "second");
        }
        assert!(
            !state.log.iter().any(|r| r.method == Method::DELETE),
            "nothing shared is deleted"
        );
    }
    assert_eq!(requeued.try_recv().unwrap().name, "second");
    assert!(requeued.try_recv().is_err(), "one request per sharing repository");

    // The requeued reconcile runs before the watch updated the cache: applied anyway.
    let log = run(
        &state,
        &ctx,
        &repository("second", bundle_spec(&format!("{IMAGE}:1.0.0"), None)),
    )
    .await;
    let applied = log
        .iter()
        .filter(|r| r.method == Method::PATCH && r.path.starts_with("/apis/data."))
        .count();
    assert_eq!(applied, 3, "{:?}", lines(&log));
    assert_eq!(
        state.lock().unwrap().packages["simple.corp.com.1.0.0"]["metadata"]["labels"]["pkgr.packaging.carvel.dev/repository"],
        "second"
    );
}

#[tokio::test]
async fn tag_selection_picks_the_highest_matching_tag() {
    let state = shared();
    let mut registry = registry_with(&three_objects());
    let digest2 = format!("sha256:{}", "3".repeat(64));
    registry.tags.insert(format!("{IMAGE}:1.5.0"), digest2.clone());
    registry
        .tags
        .insert(format!("{IMAGE}:2.0.0"), format!("sha256:{}", "4".repeat(64)));
    registry
        .contents
        .insert(format!("{IMAGE}@{digest2}"), bundle(&three_objects()));
    let (ctx, _caches) = context(&state, &registry);
    let spec = json!({"fetch": {"imgpkgBundle": {"image": IMAGE, "tagSelection": {"semver": {"constraints": ">=1.0.0 <2.0.0"}}}}});
    run(&state, &ctx, &repository("sel", spec)).await;
    assert_eq!(status_of(&state)["fetch"]["image"], format!("{IMAGE}@{digest2}"));
    assert_eq!(status_of(&state)["friendlyDescription"], "ReconcileSucceeded");

    let spec = json!({"fetch": {"imgpkgBundle": {"image": IMAGE, "tagSelection": {"semver": {"constraints": ">=3.0.0"}}}}});
    let (description, _, _) = failing(&shared(), &registry, spec).await;
    assert_eq!(
        description,
        format!(
            "ReconcileFailed: no tag of {IMAGE} matches spec tagSelection; tags there: 1.0.0, 1.5.0, 2.0.0"
        )
    );
}
