//! The running controller (kube-runtime's real watcher, reflector and Controller) against a fake
//! API server that answers as the real one does: LIST then WATCH with resourceVersions and
//! bookmarks, 410 Gone after a restart, 503 while starting. Start-up with objects that already
//! exist, `kapp-controller-config` in both forms, recovery from a control-plane restart and from a
//! compaction while the API server runs.
//!
//! Recovery is checked by what the watches did (the API server's log, each watch's journal), not
//! by how long it took: the bounds on waits here only stop a hung test. How fast the controller
//! recovers is measured by `bench/controller-restart.sh`.
mod apiserver;

use apiserver::FakeApiServer;
use apiserver::controller::{NS, Options, Running, outcomes};
use pkgr::controller::config::{self, ConfigKind, ControllerConfig};
use pkgr::controller::metrics::Metrics;
use pkgr::controller::secret::RegistryAuth;
use pkgr::controller::source::{BoxFuture, Contents, Session, Source, SourceError};
use pkgr::controller::watch::{Step, WatchHealth};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REPOS: &str = "install.package.carvel.dev/v1alpha1/packagerepositories";
const PACKAGES: &str = "data.packaging.carvel.dev/v1alpha1/packages";

/// A source that records what `kapp-controller-config` it was given, and serves one bundle
/// (`BUNDLE` → `DIGEST`, three Packages) counting its registry requests.
#[derive(Default)]
struct RecordingSource {
    configs: Mutex<Vec<Option<ControllerConfig>>>,
    requests: Arc<AtomicUsize>,
    /// Fetches in progress now, and the most there ever were at once.
    fetching: Arc<(AtomicUsize, AtomicUsize)>,
    /// How long a fetch takes (a slow registry).
    fetch_time: Duration,
}

const BUNDLE: &str = "registry.corp.example/repo:1.0.0";
const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

struct BundleSession(Arc<AtomicUsize>, Arc<(AtomicUsize, AtomicUsize)>, Duration);

impl Session for BundleSession {
    fn resolve<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<Option<String>, SourceError>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        let found = (image == BUNDLE).then(|| DIGEST.to_string());
        Box::pin(async move { Ok(found) })
    }
    fn list_tags<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<String>, SourceError>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(vec!["1.0.0".to_string()]) })
    }
    fn fetch<'a>(&'a self, _: &'a str, _: bool) -> BoxFuture<'a, Result<Contents, SourceError>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        let (fetching, delay) = (self.1.clone(), self.2);
        let files = ["1.0.0", "1.1.0", "2.0.0"]
            .iter()
            .map(|v| {
                (
                    format!("packages/b/{v}.yml"),
                    package_yaml("bundled.corp.com", v).into_bytes(),
                )
            })
            .collect();
        Box::pin(async move {
            let now = fetching.0.fetch_add(1, Ordering::SeqCst) + 1;
            fetching.1.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            fetching.0.fetch_sub(1, Ordering::SeqCst);
            Ok(Contents {
                is_bundle: true,
                files,
                images_lock: None,
            })
        })
    }
}

impl Source for RecordingSource {
    fn session(&self, _: &RegistryAuth) -> Result<Arc<dyn Session>, SourceError> {
        Ok(Arc::new(BundleSession(
            self.requests.clone(),
            self.fetching.clone(),
            self.fetch_time,
        )))
    }
    fn reconfigure(&self, config: Option<&ControllerConfig>) -> Result<bool, config::ConfigError> {
        let mut configs = self.configs.lock().unwrap();
        let changed = configs.last() != Some(&config.cloned());
        configs.push(config.cloned());
        Ok(changed)
    }
}

/// Start the controller as `pkgr controller` does: read the config once, then run.
async fn start(api: &FakeApiServer, source: Arc<RecordingSource>) -> Running {
    Running::start(api, source, Options::default()).await
}

fn package_yaml(ref_name: &str, version: &str) -> String {
    format!(
        "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata:\n  name: {ref_name}.{version}\nspec:\n  refName: {ref_name}\n  version: {version}\n  template:\n    spec:\n      fetch:\n      - imgpkgBundle:\n          image: registry.corp.example/app@sha256:{}\n",
        "a".repeat(64)
    )
}

/// An inline repository with one Package per version.
fn inline_repository(name: &str, ref_name: &str, versions: &[&str]) -> Value {
    let paths: serde_json::Map<String, Value> = versions
        .iter()
        .map(|v| {
            (
                format!("packages/{ref_name}/{v}.yml"),
                json!(package_yaml(ref_name, v)),
            )
        })
        .collect();
    json!({"apiVersion": "install.package.carvel.dev/v1alpha1", "kind": "PackageRepository",
           "metadata": {"name": name}, "spec": {"fetch": {"inline": {"paths": paths}}}})
}

fn described(api: &FakeApiServer, name: &str) -> Option<String> {
    api.get(REPOS, None, name).and_then(|r| {
        r.pointer("/status/friendlyDescription")
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

async fn wait_succeeded(api: &FakeApiServer, name: &str, timeout: Duration) {
    api.wait_for(&format!("{name} to report ReconcileSucceeded"), timeout, |api| {
        (described(api, name).as_deref() == Some("ReconcileSucceeded")).then_some(())
    })
    .await;
}

fn config_secret(pem_marker: &str) -> Value {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("http://{pem_marker}:3128"));
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": config::CONFIG_SECRET, "namespace": NS},
           "type": "Opaque", "data": {"httpsProxy": encoded}})
}

fn config_map(marker: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": config::CONFIG_SECRET, "namespace": NS},
           "data": {"httpsProxy": format!("http://{marker}:3128")}})
}

fn proxy_of(config: &Option<ControllerConfig>) -> Option<(ConfigKind, String)> {
    config.as_ref().map(|c| {
        (
            c.kind,
            String::from_utf8(c.data.get("httpsProxy").cloned().unwrap_or_default()).unwrap(),
        )
    })
}

#[tokio::test]
async fn the_config_secret_present_at_start_is_kept_through_the_first_list() {
    let api = FakeApiServer::start().await;
    api.create(
        "v1/secrets",
        Some(NS),
        config::CONFIG_SECRET,
        config_secret("secret-proxy"),
    );
    api.create(
        "v1/configmaps",
        Some(NS),
        config::CONFIG_SECRET,
        config_map("map-proxy"),
    );
    // Objects that exist before the controller starts: a credential Secret and a repository.
    api.create(
        "v1/secrets",
        Some(NS),
        "creds",
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds", "namespace": NS}, "data": {"username": "dQ==", "password": "cA=="}}),
    );
    api.create(
        REPOS,
        None,
        "first",
        inline_repository("first", "first.corp.com", &["1.0.0"]),
    );
    let source = Arc::new(RecordingSource::default());
    let running = start(&api, source.clone()).await;
    wait_succeeded(&api, "first", Duration::from_secs(20)).await;

    let seen: Vec<_> = source.configs.lock().unwrap().iter().map(proxy_of).collect();
    let secret_form = Some((ConfigKind::Secret, "http://secret-proxy:3128".to_string()));
    assert!(
        !seen.is_empty() && seen.iter().all(|c| *c == secret_form),
        "the Secret wins and is never dropped: {seen:?}"
    );

    // Deleting the Secret falls back to the ConfigMap; deleting that too goes back to the flags.
    api.delete("v1/secrets", Some(NS), config::CONFIG_SECRET);
    let map_form = Some((ConfigKind::ConfigMap, "http://map-proxy:3128".to_string()));
    wait_until("the ConfigMap form", || {
        source.configs.lock().unwrap().last().map(proxy_of) == Some(map_form.clone())
    })
    .await;
    api.delete("v1/configmaps", Some(NS), config::CONFIG_SECRET);
    wait_until("no config", || {
        source.configs.lock().unwrap().last() == Some(&None)
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn the_config_map_form_alone_is_read_at_start() {
    let api = FakeApiServer::start().await;
    api.create(
        "v1/configmaps",
        Some(NS),
        config::CONFIG_SECRET,
        config_map("only-map"),
    );
    api.create(
        REPOS,
        None,
        "first",
        inline_repository("first", "first.corp.com", &["1.0.0"]),
    );
    let source = Arc::new(RecordingSource::default());
    let running = start(&api, source.clone()).await;
    wait_succeeded(&api, "first", Duration::from_secs(20)).await;
    let seen: Vec<_> = source.configs.lock().unwrap().iter().map(proxy_of).collect();
    let map_form = Some((ConfigKind::ConfigMap, "http://only-map:3128".to_string()));
    assert!(
        !seen.is_empty() && seen.iter().all(|c| *c == map_form),
        "{seen:?}"
    );
    running.stop().await;
}

/// Poll a condition of the test's own state (not the API server's), bounded.
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A hang guard for recoveries, not a target: generous enough for a loaded machine.
const RECOVERY_GUARD: Duration = Duration::from_secs(60);

/// The controller's watches: Packages, PackageMetadatas, PackageRepositories, Secrets and the
/// `kapp-controller-config` ConfigMap.
const CONTROLLER_WATCHES: usize = 5;
/// Every watch stream the running controller keeps open: its own and the four that follow the
/// mode (three CRDs and the packaging APIService).
const OPEN_WATCHES: usize = CONTROLLER_WATCHES + 4;

/// Every watch got 410 Gone and listed again at once, checked by what happened rather than by
/// how long it took (a re-list delayed by a backoff fails this however short the backoff, and an
/// immediate one passes however loaded the machine):
/// - in the journal of each of the controller's watches, every 410 is followed by a completed
///   list, with no backoff and no other failure between;
/// - in the API server's log (which also has the watches that decide the mode), the next request
///   for a collection after its 410 is a LIST of it answered with 200, not a failed request and
///   not the same watch again.
///
/// Returns how many 410s the API server sent.
async fn assert_relisted_without_backoff(api: &FakeApiServer, watches: &WatchHealth) -> usize {
    // Each 410 with the step that followed it.
    let after_410 = |steps: &[Step]| -> Vec<Step> {
        steps
            .windows(2)
            .filter(|w| w[0] == Step::Failed(Some(410)))
            .map(|w| w[1])
            .collect()
    };
    wait_until("every watch to get 410 Gone and take its next step", || {
        let journal = watches.journal();
        journal.len() == CONTROLLER_WATCHES && journal.values().all(|steps| !after_410(steps).is_empty())
    })
    .await;
    for (name, steps) in watches.journal() {
        assert!(
            after_410(&steps).iter().all(|s| *s == Step::Listed),
            "watch {name}: after 410 Gone it must list again at once: {steps:?}"
        );
    }
    let log = api
        .wait_for("a request after every 410 Gone", RECOVERY_GUARD, |api| {
            let log = api.log();
            log.iter()
                .enumerate()
                .filter(|(_, l)| l.gone)
                .all(|(i, g)| log[i + 1..].iter().any(|l| l.collection() == g.collection()))
                .then_some(log)
        })
        .await;
    let gone: Vec<usize> = (0..log.len()).filter(|&i| log[i].gone).collect();
    for &i in &gone {
        let g = &log[i];
        let next = log[i + 1..]
            .iter()
            .find(|l| l.collection() == g.collection())
            .unwrap();
        assert!(
            next.is_list() && next.status == 200,
            "after 410 Gone for {}, the next request of it was {} {} (watch: {}, status {}), not a \
             LIST",
            g.collection(),
            next.method,
            next.path,
            next.watch,
            next.status
        );
    }
    gone.len()
}

async fn control_plane_restart(gone_as_http: bool, outage: Duration) {
    let api = FakeApiServer::start().await;
    api.set_gone_as_http(gone_as_http);
    api.create(
        REPOS,
        None,
        "before",
        inline_repository("before", "before.corp.com", &["1.0.0"]),
    );
    let source = Arc::new(RecordingSource::default());
    let running = start(&api, source).await;
    wait_succeeded(&api, "before", Duration::from_secs(20)).await;

    api.stop();
    wait_until("readiness to report the watches down during the outage", || {
        !running.watches.down().is_empty()
    })
    .await;
    // The scenario: the control plane stays away for `outage` (the backoff grows meanwhile).
    tokio::time::sleep(outage).await;
    api.clear_log();
    api.restart(6).await;
    let back = Instant::now();
    // The restart compacted the history: every watch resumed from before it gets 410 Gone.
    assert_relisted_without_backoff(&api, &running.watches).await;
    api.create(
        REPOS,
        None,
        "after",
        inline_repository("after", "after.corp.com", &["1.0.0", "2.0.0"]),
    );
    wait_succeeded(&api, "after", RECOVERY_GUARD).await;
    let recovered = back.elapsed();
    assert_eq!(api.all(PACKAGES).len(), 3);
    wait_until("every watch to be back", || running.watches.down().is_empty()).await;
    // Informational only: bench/controller-restart.sh measures this.
    eprintln!("new repository reconciled {recovered:?} after the API server's return");
    running.stop().await;
}

#[tokio::test]
async fn after_a_control_plane_restart_watches_relist_without_backoff_and_a_new_repository_reconciles() {
    control_plane_restart(false, Duration::from_secs(3)).await;
}

#[tokio::test]
async fn a_watch_request_refused_with_http_410_lists_again_instead_of_retrying_the_old_version() {
    control_plane_restart(true, Duration::from_secs(2)).await;
}

/// The controller running on `first`, then a compaction while the API server runs (no restart,
/// no dropped connection), then every watch ended as its timeoutSeconds end it: each resumes
/// from its last resourceVersion. Returns the API server (its log cleared at the compaction),
/// the controller, the watch streams ended and the journals before they were.
async fn compaction_then_watches_resume(
    bookmarks: bool,
) -> (
    FakeApiServer,
    Running,
    Vec<usize>,
    std::collections::BTreeMap<String, Vec<Step>>,
) {
    let api = FakeApiServer::start().await;
    api.set_bookmark_interval(if bookmarks { 100 } else { 0 });
    api.create(
        REPOS,
        None,
        "first",
        inline_repository("first", "first.corp.com", &["1.0.0"]),
    );
    let running = start(&api, Arc::new(RecordingSource::default())).await;
    wait_succeeded(&api, "first", Duration::from_secs(20)).await;
    // Every watch listed and watching: the compaction then expires what each has.
    api.wait_for("every watch to be open", RECOVERY_GUARD, |api| {
        let open = api.watch_streams().iter().filter(|s| s.open).count();
        (open == OPEN_WATCHES).then_some(())
    })
    .await;

    api.clear_log();
    let compacted = api.compact();
    if bookmarks {
        let streams = api.watch_streams();
        let without: Vec<_> = streams
            .iter()
            .filter(|s| s.open && !s.bookmarks_allowed)
            .collect();
        assert!(without.is_empty(), "every watch asks for bookmarks: {without:?}");
        api.wait_for(
            "a bookmark at or past the compaction on every open watch",
            RECOVERY_GUARD,
            |api| {
                api.watch_streams()
                    .iter()
                    .filter(|s| s.open)
                    .all(|s| s.last_bookmark.is_some_and(|b| b >= compacted))
                    .then_some(())
            },
        )
        .await;
    }
    let journal = running.watches.journal();
    let ended = api.end_watches();
    assert_eq!(ended.len(), OPEN_WATCHES, "{:?}", api.watch_streams());
    // Each ended watch is requested again.
    api.wait_for("every ended watch to be resumed", RECOVERY_GUARD, |api| {
        let streams = api.watch_streams();
        let log = api.log();
        ended
            .iter()
            .all(|&i| {
                !streams[i].open
                    && log
                        .iter()
                        .any(|l| l.watch && l.collection() == streams[i].collection)
            })
            .then_some(())
    })
    .await;
    // The watches deliver again.
    api.create(
        REPOS,
        None,
        "second",
        inline_repository("second", "second.corp.com", &["1.0.0"]),
    );
    wait_succeeded(&api, "second", RECOVERY_GUARD).await;
    (api, running, ended, journal)
}

#[tokio::test]
async fn after_a_compaction_watches_resume_from_their_last_bookmark_without_410_or_relist() {
    let (api, running, ended, journal_before) = compaction_then_watches_resume(true).await;
    let log = api.log();
    let gone: Vec<String> = log.iter().filter(|l| l.gone).map(|l| l.collection()).collect();
    assert!(gone.is_empty(), "no watch got 410 Gone: {gone:?}");
    let streams = api.watch_streams();
    for &i in &ended {
        let stream = &streams[i];
        let bookmark = stream
            .last_bookmark
            .unwrap_or_else(|| panic!("{stream:?} got a bookmark"));
        assert!(
            stream.last_change.is_none_or(|c| c <= bookmark),
            "the bookmark is the last resourceVersion {stream:?} sent"
        );
        let resumed = log
            .iter()
            .find(|l| l.watch && l.collection() == stream.collection)
            .unwrap();
        assert_eq!(
            resumed.query.get("resourceVersion"),
            Some(&bookmark.to_string()),
            "{} resumed from its last bookmark",
            stream.collection
        );
        let lists: Vec<_> = log
            .iter()
            .filter(|l| l.is_list() && l.collection() == stream.collection)
            .collect();
        assert!(lists.is_empty(), "no re-list: {lists:?}");
    }
    // The controller's own account: nothing failed, nothing was listed again.
    assert_eq!(running.watches.journal(), journal_before);
    running.stop().await;
}

#[tokio::test]
async fn after_a_compaction_watches_without_bookmarks_get_410_and_relist_without_backoff() {
    let (api, running, ended, journal_before) = compaction_then_watches_resume(false).await;
    let gone = assert_relisted_without_backoff(&api, &running.watches).await;
    assert_eq!(
        gone,
        ended.len(),
        "every watch resumed from before the compaction got 410 Gone"
    );
    for (name, steps) in running.watches.journal() {
        let new = &steps[journal_before[&name].len()..];
        assert_eq!(
            new,
            [Step::Failed(Some(410)), Step::Listed],
            "watch {name}: 410 Gone, then a list, nothing else"
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn a_restart_with_nothing_changed_costs_one_registry_request_and_no_api_write() {
    let api = FakeApiServer::start().await;
    api.create(
        REPOS,
        None,
        "inline",
        inline_repository("inline", "inline.corp.com", &["1.0.0", "2.0.0"]),
    );
    api.create(
        REPOS,
        None,
        "bundle",
        json!({"apiVersion": "install.package.carvel.dev/v1alpha1",
        "kind": "PackageRepository", "metadata": {"name": "bundle"},
        "spec": {"fetch": {"imgpkgBundle": {"image": BUNDLE}}}}),
    );
    let source = Arc::new(RecordingSource::default());
    let running = start(&api, source.clone()).await;
    wait_succeeded(&api, "inline", Duration::from_secs(20)).await;
    wait_succeeded(&api, "bundle", Duration::from_secs(20)).await;
    assert_eq!(api.all(PACKAGES).len(), 5);
    running.stop().await;

    // A new process: nothing in memory, everything in the cluster.
    api.clear_log();
    let before = source.requests.load(Ordering::SeqCst);
    let metrics = Arc::new(Metrics::default());
    let running = Running::start(
        &api,
        source.clone(),
        Options {
            metrics: metrics.clone(),
            ..Options::default()
        },
    )
    .await;
    wait_until("both repositories to be found unchanged", || {
        outcomes(&metrics, "unchanged") == 2
    })
    .await;
    let writes: Vec<String> = api
        .log()
        .iter()
        .filter(|l| l.is_write())
        .map(|l| format!("{} {}", l.method, l.path))
        .collect();
    assert!(
        writes.is_empty(),
        "a restart with nothing changed writes nothing: {writes:?}"
    );
    assert_eq!(
        source.requests.load(Ordering::SeqCst) - before,
        1,
        "one manifest request for the bundle"
    );

    // Someone edits an applied Package while the controller is down: the next start repairs it.
    running.stop().await;
    api.edit(
        PACKAGES,
        None,
        "inline.corp.com.1.0.0",
        json!({"spec": {"licenses": ["edited"]}}),
    );
    api.clear_log();
    let before = source.requests.load(Ordering::SeqCst);
    let metrics = Arc::new(Metrics::default());
    let running = Running::start(
        &api,
        source.clone(),
        Options {
            metrics: metrics.clone(),
            ..Options::default()
        },
    )
    .await;
    // The repair's echo may reach the watch before the apply's reply does, and so count as a
    // change: the inline repository may then be reconciled once more (unchanged, nothing
    // written). The bundle repository is reconciled once, and found unchanged.
    wait_until(
        "the edited repository applied again, the other found unchanged",
        || outcomes(&metrics, "succeeded") == 1 && outcomes(&metrics, "unchanged") >= 1,
    )
    .await;
    let repaired = api.get(PACKAGES, None, "inline.corp.com.1.0.0").unwrap();
    assert_eq!(repaired.pointer("/spec/licenses"), None, "{repaired}");
    assert_eq!(outcomes(&metrics, "succeeded"), 1, "{}", metrics.render());
    assert_eq!(
        source.requests.load(Ordering::SeqCst) - before,
        1,
        "the bundle repository: one manifest request, no fetch"
    );
    let writes: Vec<String> = api
        .log()
        .iter()
        // The repair's Event names the inline repository in its body, not its path.
        .filter(|l| l.is_write() && !l.path.contains("inline") && !l.path.contains("/events"))
        .map(|l| format!("{} {}", l.method, l.path))
        .collect();
    assert!(
        writes.is_empty(),
        "nothing of the bundle repository is written: {writes:?}"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_package_made_by_hand_is_never_taken_over() {
    let api = FakeApiServer::start().await;
    let mine = json!({"apiVersion": "data.packaging.carvel.dev/v1alpha1", "kind": "Package",
        "metadata": {"name": "hand.corp.com.1.0.0"},
        "spec": {"refName": "hand.corp.com", "version": "1.0.0", "licenses": ["mine"]}});
    api.create(PACKAGES, None, "hand.corp.com.1.0.0", mine);
    api.create(
        REPOS,
        None,
        "repo",
        inline_repository("repo", "hand.corp.com", &["1.0.0", "2.0.0"]),
    );
    let running = start(&api, Arc::new(RecordingSource::default())).await;
    let description = api
        .wait_for("the repository to fail", Duration::from_secs(20), |api| {
            described(api, "repo").filter(|d| d.starts_with("ReconcileFailed"))
        })
        .await;
    assert!(
        description.contains("Package hand.corp.com.1.0.0 already exists and was not applied by a PackageRepository (written by kubectl-create)"),
        "{description}"
    );
    assert!(
        description.contains("kubectl delete packages hand.corp.com.1.0.0"),
        "{description}"
    );
    let untouched = api.get(PACKAGES, None, "hand.corp.com.1.0.0").unwrap();
    assert_eq!(untouched.pointer("/spec/licenses/0"), Some(&json!("mine")));
    assert_eq!(
        untouched.pointer("/metadata/labels"),
        None,
        "not even labelled: {untouched}"
    );
    assert!(
        api.get(PACKAGES, None, "hand.corp.com.2.0.0").is_none(),
        "nothing applied half-way"
    );

    // Once the person removes it, the repository applies both.
    api.delete(PACKAGES, None, "hand.corp.com.1.0.0");
    api.edit(REPOS, None, "repo", json!({"spec": {"syncPeriod": "31s"}}));
    wait_succeeded(&api, "repo", Duration::from_secs(20)).await;
    assert_eq!(api.all(PACKAGES).len(), 2);
    running.stop().await;
}

/// The repository whose label a Package carries.
fn owner(api: &FakeApiServer, name: &str) -> Option<Value> {
    api.get(PACKAGES, None, name).and_then(|p| {
        p.pointer("/metadata/labels/pkgr.packaging.carvel.dev~1repository")
            .cloned()
    })
}

/// Names of the Packages deleted so far, in order.
fn deleted_packages(api: &FakeApiServer) -> Vec<String> {
    api.history()
        .into_iter()
        .filter(|(kind, resource, _)| kind == "DELETED" && resource == PACKAGES)
        .map(|(_, _, name)| name)
        .collect()
}

#[tokio::test]
async fn deleting_one_of_two_repositories_that_supply_an_object_never_removes_it() {
    let api = FakeApiServer::start().await;
    api.create(
        REPOS,
        None,
        "first",
        inline_repository("first", "shared.corp.com", &["1.0.0", "2.0.0"]),
    );
    let running = start(&api, Arc::new(RecordingSource::default())).await;
    wait_succeeded(&api, "first", Duration::from_secs(20)).await;
    api.create(
        REPOS,
        None,
        "second",
        inline_repository("second", "shared.corp.com", &["1.0.0"]),
    );
    wait_succeeded(&api, "second", Duration::from_secs(20)).await;
    assert_eq!(
        owner(&api, "shared.corp.com.1.0.0"),
        Some(json!("first")),
        "first owner keeps it"
    );

    api.delete(REPOS, None, "first");
    api.wait_for(
        "first to be gone and second to own the shared Package",
        Duration::from_secs(20),
        |api| {
            (api.get(REPOS, None, "first").is_none()
                && owner(api, "shared.corp.com.1.0.0") == Some(json!("second")))
            .then_some(())
        },
    )
    .await;
    let deletions = deleted_packages(&api);
    assert_eq!(
        deletions,
        ["shared.corp.com.2.0.0"],
        "only what first alone supplied is deleted"
    );
    let shared = api.get(PACKAGES, None, "shared.corp.com.1.0.0").unwrap();
    assert_eq!(
        shared.pointer("/metadata/ownerReferences/0/name"),
        Some(&json!("second"))
    );
    running.stop().await;
}

/// Three bundle repositories against a slow registry: at most `fetches` are read at once.
async fn most_fetches_at_once(fetches: usize) -> usize {
    let api = FakeApiServer::start().await;
    for name in ["one", "two", "three"] {
        api.create(
            REPOS,
            None,
            name,
            json!({"apiVersion": "install.package.carvel.dev/v1alpha1",
            "kind": "PackageRepository", "metadata": {"name": name},
            "spec": {"fetch": {"imgpkgBundle": {"image": BUNDLE}}}}),
        );
    }
    let source = Arc::new(RecordingSource {
        fetch_time: Duration::from_millis(200),
        ..Default::default()
    });
    let running = Running::start(
        &api,
        source.clone(),
        Options {
            fetch_concurrency: fetches,
            ..Options::default()
        },
    )
    .await;
    for name in ["one", "two", "three"] {
        wait_succeeded(&api, name, Duration::from_secs(20)).await;
    }
    running.stop().await;
    source.fetching.1.load(Ordering::SeqCst)
}

#[tokio::test]
async fn the_memory_budget_bounds_how_many_repositories_are_fetched_at_once() {
    assert_eq!(most_fetches_at_once(1).await, 1);
    assert!(
        most_fetches_at_once(3).await > 1,
        "without the bound they overlap"
    );
}

/// A reconcile that runs right after another one (here: its credential Secret touched) while the
/// Package watch still lags behind pkgr's own applies waits for the watch to catch up, then takes
/// the digest short-cut: it does not take its own writes for someone else's edits, re-fetch and
/// re-apply everything.
#[tokio::test]
async fn a_reconcile_while_the_watch_lags_behind_pkgr_own_applies_waits_for_it() {
    let api = FakeApiServer::start().await;
    api.create(
        "v1/secrets",
        Some(NS),
        "creds",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": NS},
               "stringData": {"username": "u", "password": "p"}}),
    );
    let source = Arc::new(RecordingSource::default());
    let metrics = Arc::new(Metrics::default());
    let running = Running::start(
        &api,
        source.clone(),
        Options {
            metrics: metrics.clone(),
            ..Options::default()
        },
    )
    .await;
    // The Package watch delivers nothing of the first reconcile's applies for now.
    api.hold_watch_events(PACKAGES);
    api.create(
        REPOS,
        None,
        "bundle",
        json!({"apiVersion": "install.package.carvel.dev/v1alpha1",
        "kind": "PackageRepository", "metadata": {"name": "bundle"},
        "spec": {"fetch": {"imgpkgBundle": {"image": BUNDLE, "secretRef": {"name": "creds"}}}}}),
    );
    wait_succeeded(&api, "bundle", Duration::from_secs(20)).await;
    wait_until("the first reconcile to end", || {
        outcomes(&metrics, "succeeded") == 1
    })
    .await;
    assert_eq!(api.all(PACKAGES).len(), 3);

    api.clear_log();
    let before = source.requests.load(Ordering::SeqCst);
    api.edit(
        "v1/secrets",
        Some(NS),
        "creds",
        json!({"metadata": {"annotations": {"rotated-by": "external-secrets"}}}),
    );
    // The resync has asked the registry for the digest: it now compares what it applied with
    // the caches, which have not seen those applies yet. Then the watch catches up.
    wait_until("the resync's manifest request", || {
        source.requests.load(Ordering::SeqCst) > before
    })
    .await;
    api.release_watch_events();
    wait_until("the resync to end", || {
        outcomes(&metrics, "unchanged") + outcomes(&metrics, "succeeded") == 2
    })
    .await;
    assert_eq!(
        outcomes(&metrics, "unchanged"),
        1,
        "the resync takes the short-cut"
    );
    let writes: Vec<String> = api
        .log()
        .iter()
        .filter(|l| l.is_write())
        .map(|l| format!("{} {}", l.method, l.path))
        .collect();
    assert!(writes.is_empty(), "the resync writes nothing: {writes:?}");
    assert_eq!(
        source.requests.load(Ordering::SeqCst) - before,
        1,
        "one manifest request, no pull"
    );
    running.stop().await;
}

/// A deletion pending when the controller starts (a restart, or a replica that just took the
/// lead) is processed only once the other repositories were reconciled: one of them may supply
/// the same object, which it learns only then. Here that repository's registry is slow.
#[tokio::test]
async fn a_deletion_pending_at_start_hands_shared_objects_over_instead_of_deleting_them() {
    let api = FakeApiServer::start().await;
    api.create(
        REPOS,
        None,
        "first",
        inline_repository("first", "bundled.corp.com", &["1.0.0", "9.0.0"]),
    );
    let running = start(&api, Arc::new(RecordingSource::default())).await;
    wait_succeeded(&api, "first", Duration::from_secs(20)).await;
    api.create(
        REPOS,
        None,
        "second",
        json!({"apiVersion": "install.package.carvel.dev/v1alpha1",
        "kind": "PackageRepository", "metadata": {"name": "second"},
        "spec": {"fetch": {"imgpkgBundle": {"image": BUNDLE}}}}),
    );
    wait_succeeded(&api, "second", Duration::from_secs(20)).await;
    assert_eq!(owner(&api, "bundled.corp.com.1.0.0"), Some(json!("first")));
    running.stop().await;

    // Deleted while no controller runs; the next one finds the deletion pending.
    api.delete(REPOS, None, "first");
    let slow_registry = Arc::new(RecordingSource {
        fetch_time: Duration::from_millis(800),
        ..RecordingSource::default()
    });
    let running = start(&api, slow_registry).await;
    api.wait_for(
        "first to be gone and second to own the shared Package",
        Duration::from_secs(40),
        |api| {
            (api.get(REPOS, None, "first").is_none()
                && owner(api, "bundled.corp.com.1.0.0") == Some(json!("second")))
            .then_some(())
        },
    )
    .await;
    let deletions = deleted_packages(&api);
    assert_eq!(
        deletions,
        ["bundled.corp.com.9.0.0"],
        "only what first alone supplied is deleted, never the shared Package"
    );
    running.stop().await;
}
