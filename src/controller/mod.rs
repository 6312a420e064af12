//! The reconcile pipeline: resolve → pull → (repository) → apply → prune → report.
//!
//! `run` wires the `kube::runtime::Controller`; `reconcile` holds the phases; the registry side is
//! behind `source::Source` so tests can fake it.
pub mod apply;
pub mod audience;
pub mod budget;
pub mod config;
pub mod error;
mod fetch;
pub mod first_pass;
pub mod leader;
pub mod memory;
pub mod metrics;
pub mod mode;
pub mod own_writes;
mod ownership;
mod pipeline;
pub mod reconcile;
mod run;
pub mod secret;
pub mod server;
mod shortcut;
pub mod sink;
pub mod source;
pub mod status;
mod verify;
pub mod watch;
pub mod writes;

use crate::api::{Package, PackageMetadata, PackageRepository};
use crate::bundle::{FileTree, lock::ImagesLock};
use crate::repository::{Output, RepositoryError};
use apply::Kind;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

pub use error::ReconcileError;
pub use reconcile::{FINALIZER, error_policy, reconcile};
pub use run::run;

/// What the caches keep of a Package or PackageMetadata: its metadata, with the managedFields
/// entries reduced to who wrote (their field sets are most of an object's metadata).
pub type Cached<K> = kube::core::PartialObjectMeta<K>;

/// What the caches keep of an object's metadata: what decisions need. Of managedFields, who
/// wrote (manager, operation, subresource), not the field sets; of labels and annotations, those
/// that say whose the object is and what pkgr applied (`kbld.k14s.io/images` and the like can be
/// most of an object's metadata, and nothing here reads them).
pub fn slim(object: &mut kube::api::ObjectMeta) {
    for entry in object.managed_fields.iter_mut().flatten() {
        entry.fields_v1 = None;
        entry.time = None;
    }
    const LABELS: [&str; 3] = [
        apply::REPOSITORY_LABEL,
        sink::KAPP_LABELS[0],
        sink::KAPP_LABELS[1],
    ];
    const ANNOTATIONS: [&str; 3] = [
        apply::REPOSITORY_ANNOTATION,
        apply::APPLIED_SET_ANNOTATION,
        sink::KAPP_REPOSITORY_REF_ANNOTATION,
    ];
    if let Some(labels) = object.labels.as_mut() {
        labels.retain(|k, _| LABELS.contains(&k.as_str()));
    }
    if let Some(annotations) = object.annotations.as_mut() {
        annotations.retain(|k, _| ANNOTATIONS.contains(&k.as_str()));
    }
}

/// Why the build step rejected a repository's contents (the repository layer's error, boxed so a
/// test double does not depend on its variants).
pub type BuildError = Box<dyn std::error::Error + Send + Sync>;

/// The pure build step (`repository::build`), injectable so tests control what a repository makes.
pub type Builder = Arc<dyn Fn(&FileTree, Option<&ImagesLock>) -> Result<Output, BuildError> + Send + Sync>;

/// The real build step.
pub fn default_builder() -> Builder {
    Arc::new(|files, lock| {
        crate::repository::build(files, lock).map_err(|e: RepositoryError| Box::new(e) as BuildError)
    })
}

/// Controller settings from flags and environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where Secrets (credentials, `kapp-controller-config`) and the Lease live.
    pub namespace: String,
    /// Server-side applies in flight at once for one repository.
    pub apply_concurrency: usize,
    /// Repositories fetched and read at once (the memory-heavy part of a reconcile).
    pub fetch_concurrency: usize,
    /// Where Packages and PackageMetadatas go.
    pub sink: sink::Sink,
    /// Where they went before the cluster changed (kapp-controller installed or removed): each
    /// repository takes its objects out of there once it has applied them to `sink`.
    pub previous_sink: Option<sink::Sink>,
    /// Beside kapp-controller: whether its packaging API is available now (kept up to date by
    /// `mode::changed`); the status says when the Packages will appear only once it is back.
    pub packaging_api: Arc<std::sync::atomic::AtomicBool>,
    /// What one repository's reconcile may hold from its fetch to its last write (`None`:
    /// unbounded); see `budget`.
    pub per_reconcile_bytes: Option<u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            namespace: "kapp-controller".into(),
            apply_concurrency: 32,
            fetch_concurrency: 8,
            sink: sink::Sink::default(),
            previous_sink: None,
            packaging_api: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            per_reconcile_bytes: None,
        }
    }
}

/// What the last successful full reconcile of a repository applied (for the digest short-cut).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Memo {
    /// `repository@sha256:…`, or `inline`.
    pub fetched: String,
    pub generation: Option<i64>,
    /// Every object the repository supplies → the resourceVersion pkgr's write returned
    /// (`None` when another repository's copy was kept).
    pub applied: BTreeMap<(Kind, String), Option<String>>,
}

/// Shared state of all reconciles.
pub struct Context {
    pub client: kube::Client,
    pub source: Arc<dyn source::Source>,
    pub builder: Builder,
    pub settings: Settings,
    pub recorder: Recorder,
    /// Metadata of every Package and PackageMetadata in the cluster (ownership and overlap
    /// checks, the short-cut, prune): not only pkgr's, so that objects made by hand are seen.
    pub packages: Store<Cached<Package>>,
    pub metadatas: Store<Cached<PackageMetadata>>,
    /// Cache of the Secrets in the controller namespace (`None`: read each from the API).
    pub secrets: Option<Store<Secret>>,
    pub memo: Arc<Mutex<HashMap<String, Memo>>>,
    /// pkgr's own writes, so their watch echoes do not trigger reconciles.
    pub own_writes: Arc<own_writes::OwnWrites>,
    /// Asks the controller to reconcile another repository (one that shared an object this one
    /// just deleted); `None` outside `run`.
    pub requeue: Option<tokio::sync::mpsc::UnboundedSender<ObjectRef<PackageRepository>>>,
    /// Repositories deleted since start-up: their objects are free to take over.
    pub departed: Mutex<std::collections::HashSet<String>>,
    pub metrics: Arc<metrics::Metrics>,
    /// Permits for fetching and reading a repository (see `budget`).
    pub fetches: Arc<tokio::sync::Semaphore>,
    /// Every PackageRepository (`None` outside `run`), and which were reconciled since start.
    pub repositories: Option<Store<PackageRepository>>,
    pub first_pass: first_pass::FirstPass,
    /// Verified (digest, keys, annotations) fingerprints (see `verify`).
    pub verified: Mutex<std::collections::HashSet<String>>,
    /// Repositories whose objects in `settings.previous_sink` are gone (or were never there).
    pub retired: Mutex<std::collections::HashSet<String>>,
}

/// The Event reporter name.
pub const CONTROLLER_NAME: &str = "pkgr";

impl Context {
    /// A context whose caches are fed by the caller (tests, or `run`).
    pub fn new(
        client: kube::Client,
        source: Arc<dyn source::Source>,
        builder: Builder,
        settings: Settings,
        packages: Store<Cached<Package>>,
        metadatas: Store<Cached<PackageMetadata>>,
    ) -> Context {
        let reporter = Reporter {
            controller: CONTROLLER_NAME.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let fetches = Arc::new(tokio::sync::Semaphore::new(settings.fetch_concurrency.max(1)));
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            source,
            builder,
            settings,
            packages,
            metadatas,
            secrets: None,
            memo: Arc::default(),
            own_writes: Arc::default(),
            requeue: None,
            departed: Mutex::default(),
            metrics: Arc::default(),
            fetches,
            repositories: None,
            first_pass: Default::default(),
            retired: Mutex::default(),
            verified: Mutex::default(),
        }
    }
}

impl Context {
    /// Where Packages and PackageMetadatas go (pkgr's CRDs, or kapp-controller's storage).
    pub fn sink(&self) -> &sink::Sink {
        &self.settings.sink
    }

    /// Was PackageRepository `name` deleted (and not created again) since this controller started?
    pub fn has_departed(&self, name: &str) -> bool {
        self.departed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(name)
    }

    /// Another repository (not `repository`, not deleted) whose last reconcile left this object
    /// to `repository`: it takes the object over instead of seeing it deleted.
    pub fn first_sharer(&self, repository: &str, kind: Kind, object: &str) -> Option<String> {
        sharers(&self.memo, repository, &[(kind, object.to_string())])
            .into_iter()
            .find(|other| !self.has_departed(other))
    }

    /// Another repository that supplies an object this one just deleted applies it again now,
    /// rather than at its next sync (the watch event of the deletion is filtered as pkgr's own echo).
    pub fn requeue_sharers(&self, repository: &str, deleted: &[(Kind, String)]) {
        if deleted.is_empty() {
            return;
        }
        let Some(requeue) = &self.requeue else { return };
        for other in sharers(&self.memo, repository, deleted) {
            tracing::info!(repository = %other, deleted_by = %repository, "reconciling a repository that shares deleted objects");
            let _ = requeue.send(ObjectRef::new(&other));
        }
    }

    /// Where the Packages went, for the status and Events.
    pub fn destination(&self) -> String {
        let mut text = self.sink().describe();
        let available = self
            .settings
            .packaging_api
            .load(std::sync::atomic::Ordering::Relaxed);
        if self.sink().namespace().is_some() && !available {
            text.push_str(
                "; kapp-controller's packaging API is not available now: the Packages appear in \
                 `kubectl get packages` once it is back",
            );
        }
        text
    }

    /// Before the first write of a reconcile: beside kapp-controller, its global packaging
    /// namespace must exist (else nothing is written, and the status says what to create).
    pub async fn sink_ready(&self, repository: &str) -> Result<(), ReconcileError> {
        let Some(namespace) = self.sink().namespace() else {
            return Ok(());
        };
        let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
            kube::Api::all(self.client.clone());
        match namespaces.get_metadata_opt(namespace).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(ReconcileError::GlobalNamespaceMissing {
                namespace: namespace.to_string(),
            }),
            Err(source) => {
                tracing::debug!(repository, %source, "cannot read the global namespace");
                Err(ReconcileError::GlobalNamespaceRead {
                    namespace: namespace.to_string(),
                    source: Box::new(source),
                })
            }
        }
    }
}

/// Reconcile triggers: spec changes, finalizer changes and deletion; not our own status writes.
fn trigger_hash(repo: &PackageRepository) -> Option<u64> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    repo.metadata.generation.hash(&mut hasher);
    repo.metadata.finalizers.hash(&mut hasher);
    repo.metadata.deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

/// Repositories to reconcile when a Package or PackageMetadata changes: its owner, and those
/// whose last reconcile counted on it while another repository kept it.
fn interested(
    memo: &Mutex<HashMap<String, Memo>>,
    kind: Kind,
    meta: &kube::api::ObjectMeta,
) -> Vec<ObjectRef<PackageRepository>> {
    let name = meta.name.clone().unwrap_or_default();
    let owner = apply::owner_of(meta);
    let mut out: Vec<ObjectRef<PackageRepository>> = owner.iter().map(|o| ObjectRef::new(o)).collect();
    let memo = memo.lock().unwrap_or_else(|p| p.into_inner());
    for (repository, m) in memo.iter() {
        if Some(repository) != owner.as_ref() && m.applied.contains_key(&(kind, name.clone())) {
            out.push(ObjectRef::new(repository));
        }
    }
    out
}

/// Repositories (other than `except`) whose last reconcile counted on an object now deleted.
pub fn sharers(memo: &Mutex<HashMap<String, Memo>>, except: &str, deleted: &[(Kind, String)]) -> Vec<String> {
    let memo = memo.lock().unwrap_or_else(|p| p.into_inner());
    memo.iter()
        .filter(|(repository, m)| {
            repository.as_str() != except && deleted.iter().any(|key| m.applied.contains_key(key))
        })
        .map(|(repository, _)| repository.clone())
        .collect()
}

/// Repositories to reconcile when Secret `name` changes: those taking credentials from it, and
/// all of them for `kapp-controller-config` (one failing on TLS may now succeed; the others cost
/// one manifest request through the digest short-cut).
pub fn secret_dependents(repos: &[Arc<PackageRepository>], name: &str) -> Vec<ObjectRef<PackageRepository>> {
    repos
        .iter()
        .filter(|r| name == config::CONFIG_SECRET || uses_secret(r, name))
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

/// Does `repo` take credentials from Secret `name`?
pub fn uses_secret(repo: &PackageRepository, name: &str) -> bool {
    let fetch = &repo.spec.fetch;
    let bundle = fetch.imgpkg_bundle.as_ref().and_then(|b| b.secret_ref.as_ref());
    let image = fetch.image.as_ref().and_then(|i| i.secret_ref.as_ref());
    // The Secret of verify's keys too: a rotated key is used at the next reconcile.
    let keys = verify::requested(repo).map(|v| &v.secret_ref);
    bundle
        .into_iter()
        .chain(image)
        .chain(keys)
        .any(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(json: serde_json::Value) -> PackageRepository {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_cache_keeps_what_decisions_read() {
        let mut meta: kube::api::ObjectMeta = serde_json::from_value(serde_json::json!({
            "name": "p", "resourceVersion": "7",
            "labels": {apply::REPOSITORY_LABEL: "r", "kapp.k14s.io/app": "1", "team": "x"},
            "annotations": {apply::REPOSITORY_ANNOTATION: "r", apply::APPLIED_SET_ANNOTATION: "a#1#1#0",
                sink::KAPP_REPOSITORY_REF_ANNOTATION: "ns/k", "kbld.k14s.io/images": "- origins: [...]"},
            "managedFields": [{"manager": "pkgr", "operation": "Apply", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {}}, "time": "2026-01-01T00:00:00Z"}]
        }))
        .unwrap();
        slim(&mut meta);
        let labels = meta.labels.as_ref().unwrap();
        assert_eq!(labels.len(), 2);
        assert!(!labels.contains_key("team"));
        let annotations = meta.annotations.as_ref().unwrap();
        assert_eq!(annotations.len(), 3);
        assert!(!annotations.contains_key("kbld.k14s.io/images"));
        let entry = &meta.managed_fields.as_ref().unwrap()[0];
        assert_eq!(entry.manager.as_deref(), Some("pkgr"));
        assert!(entry.fields_v1.is_none() && entry.time.is_none());
        // What the ownership decisions read still answers the same.
        assert_eq!(apply::owner_of(&meta).as_deref(), Some("r"));
        assert_eq!(sink::kapp_controller_holder(&meta).as_deref(), Some("ns/k"));
        assert!(apply::written_only_by_pkgr(&meta));
    }

    #[test]
    fn sharers_of_deleted_objects() {
        let memo = Mutex::new(HashMap::new());
        let mut m = Memo::default();
        m.applied.insert((Kind::Package, "p".into()), None);
        memo.lock().unwrap().insert("b".to_string(), m.clone());
        memo.lock().unwrap().insert("a".to_string(), m);
        memo.lock().unwrap().insert("c".to_string(), Memo::default());
        assert_eq!(sharers(&memo, "a", &[(Kind::Package, "p".into())]), ["b"]);
        assert!(sharers(&memo, "a", &[(Kind::PackageMetadata, "p".into())]).is_empty());
    }

    #[test]
    fn secret_mapping() {
        let r = repo(
            serde_json::json!({"apiVersion": "install.package.carvel.dev/v1alpha1", "kind": "PackageRepository",
            "metadata": {"name": "a"}, "spec": {"fetch": {"image": {"url": "x", "secretRef": {"name": "s"}}}}}),
        );
        assert!(uses_secret(&r, "s"));
        assert!(!uses_secret(&r, "t"));
        let other = repo(
            serde_json::json!({"apiVersion": "install.package.carvel.dev/v1alpha1", "kind": "PackageRepository",
            "metadata": {"name": "b"}, "spec": {"fetch": {"inline": {"paths": {}}}}}),
        );
        let all = [Arc::new(r), Arc::new(other)];
        let names = |secret: &str| -> Vec<String> {
            secret_dependents(&all, secret)
                .into_iter()
                .map(|o| o.name)
                .collect()
        };
        assert_eq!(names("s"), ["a"]);
        assert!(names("t").is_empty());
        assert_eq!(names(config::CONFIG_SECRET), ["a", "b"]);
    }

    #[test]
    fn package_events_reach_the_owner_and_repositories_sharing_the_object() {
        let memo = Mutex::new(HashMap::new());
        let mut shared = Memo::default();
        shared
            .applied
            .insert((Kind::Package, "p.example.com.1.0.0".into()), None);
        memo.lock().unwrap().insert("second".to_string(), shared);
        memo.lock()
            .unwrap()
            .insert("unrelated".to_string(), Memo::default());
        let meta: kube::api::ObjectMeta = serde_json::from_value(serde_json::json!({
            "name": "p.example.com.1.0.0",
            "ownerReferences": [{"apiVersion": "install.package.carvel.dev/v1alpha1", "kind": "PackageRepository", "name": "first", "uid": "u"}]
        }))
        .unwrap();
        let mut names: Vec<String> = interested(&memo, Kind::Package, &meta)
            .into_iter()
            .map(|r| r.name)
            .collect();
        names.sort();
        assert_eq!(names, ["first", "second"]);
        assert!(
            interested(&memo, Kind::PackageMetadata, &meta)
                .iter()
                .all(|r| r.name == "first")
        );
    }

    #[test]
    fn only_spec_finalizer_and_deletion_changes_trigger() {
        let base = repo(
            serde_json::json!({"apiVersion": "install.package.carvel.dev/v1alpha1", "kind": "PackageRepository",
            "metadata": {"name": "a", "generation": 1}, "spec": {"fetch": {}}}),
        );
        let mut status_only = base.clone();
        status_only.status = Some(Default::default());
        assert_eq!(trigger_hash(&base), trigger_hash(&status_only));
        let mut edited = base.clone();
        edited.metadata.generation = Some(2);
        assert_ne!(trigger_hash(&base), trigger_hash(&edited));
        let mut finalized = base.clone();
        finalized.metadata.finalizers = Some(vec![FINALIZER.into()]);
        assert_ne!(trigger_hash(&base), trigger_hash(&finalized));
        let mut deleted = base.clone();
        deleted.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ));
        assert_ne!(trigger_hash(&base), trigger_hash(&deleted));
    }
}
