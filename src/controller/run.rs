//! The running controller: resilient watches that fill the caches and trigger reconciles, the
//! `kapp-controller-config` tracker, and kube-runtime's `Controller` over them.
use super::apply::{self, Kind};
use super::config::{self, ControllerConfig};
use super::own_writes::{Change, OwnWrites};
use super::sink::Sink;
use super::watch::{self, WatchHealth};
use super::{
    Cached, Context, Settings, default_builder, error, interested, metrics, secret_dependents, source,
};
use super::{error_policy, reconcile, trigger_hash};
use crate::api::{Package, PackageMetadata, PackageRepository};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use kube::runtime::reflector;
use kube::runtime::watcher::{self, Event, watcher};
use kube::runtime::{Controller, WatchStreamExt, controller};
use kube::{Resource, ResourceExt};
use std::sync::{Arc, Mutex};

/// A watch of `api` with `config`, rebuilt by `watch::resilient` when it must list afresh.
fn watch_of<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl FnMut() -> std::pin::Pin<Box<dyn futures_util::Stream<Item = watcher::Result<Event<K>>> + Send>>
+ Send
+ 'static
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    move || watcher(api.clone(), config.clone()).boxed()
}

/// A metadata-only watch of every object of `kind` in the sink, slimmed for the cache. Beside
/// kapp-controller the objects are its internal kinds in its global namespace: the cache holds
/// them under their stored names, without the namespace, as it holds pkgr's cluster-scoped ones.
fn metadata_watch_of<K>(
    client: kube::Client,
    sink: &Sink,
    kind: Kind,
) -> impl FnMut() -> watch::EventStream<Cached<K>> + Send + 'static
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    use futures_util::TryStreamExt;
    use kube::api::{DynamicObject, PartialObjectMeta};
    let typed = Api::<Cached<K>>::all(client.clone());
    let dynamic: Option<Api<PartialObjectMeta<DynamicObject>>> = sink
        .namespace()
        .map(|ns| Api::namespaced_with(client, ns, &sink.resource(kind)));
    move || match &dynamic {
        None => watcher(typed.clone(), watcher::Config::default())
            .map_ok(|event| event.modify(|o| super::slim(&mut o.metadata)))
            .boxed(),
        Some(api) => watcher(api.clone(), watcher::Config::default())
            .map_ok(|event| {
                let cached = |o: PartialObjectMeta<DynamicObject>| -> Cached<K> {
                    let mut metadata = o.metadata;
                    super::slim(&mut metadata);
                    metadata.namespace = None;
                    PartialObjectMeta {
                        types: None,
                        metadata,
                        _phantom: std::marker::PhantomData,
                    }
                };
                match event {
                    Event::Apply(o) => Event::Apply(cached(o)),
                    Event::Delete(o) => Event::Delete(cached(o)),
                    Event::InitApply(o) => Event::InitApply(cached(o)),
                    Event::Init => Event::Init,
                    Event::InitDone => Event::InitDone,
                }
            })
            .boxed(),
    }
}

/// Watch events worth a reconcile: anything but the echo of pkgr's own applies and deletes. The
/// first list is not: every repository is reconciled at start from its own listing, and mapping
/// each listed object to its repository again would only repeat that (one more manifest request
/// each). A later re-list (after a watch expired) does count: changes made while the watch was
/// down arrive only that way.
pub(super) fn external_changes<K: Resource>(
    own: Arc<OwnWrites>,
    kind: Kind,
) -> impl FnMut(Event<K>) -> std::future::Ready<Option<Result<K, watcher::Error>>> {
    let mut listed = false;
    // A (re-)list's objects reach the cache together at its end: they are shown to `own` then.
    let mut listing: Vec<(String, Option<String>)> = Vec::new();
    move |event| {
        // Every event is shown to `own` once the cache holds it, echo or not.
        let echo = |object: &K, change: Change| {
            let meta = object.meta();
            let name = meta.name.as_deref().unwrap_or_default();
            let pkgr_only = apply::written_only_by_pkgr(meta);
            own.observe(kind, name, meta.resource_version.as_deref(), change, pkgr_only)
        };
        std::future::ready(match event {
            Event::Apply(o) => {
                // Written by pkgr alone: the echo of an apply, even one whose reply (and so its
                // resourceVersion) has not arrived yet.
                let ours = echo(&o, Change::Applied) || apply::written_only_by_pkgr(o.meta());
                (!ours).then_some(Ok(o))
            }
            Event::Delete(o) => (!echo(&o, Change::Deleted)).then_some(Ok(o)),
            Event::InitApply(o) => {
                let meta = o.meta();
                listing.push((
                    meta.name.clone().unwrap_or_default(),
                    meta.resource_version.clone(),
                ));
                listed.then_some(Ok(o))
            }
            Event::InitDone => {
                for (name, version) in listing.drain(..) {
                    own.observe(kind, &name, version.as_deref(), Change::Applied, false);
                }
                listing.shrink_to_fit();
                listed = true;
                None
            }
            Event::Init => None,
        })
    }
}

/// Objects that were changed (deletions included), or listed again after the first list, as
/// triggers (see `external_changes`).
fn touched<K>() -> impl FnMut(Event<K>) -> std::future::Ready<Option<Result<K, watcher::Error>>> {
    let mut listed = false;
    move |event| {
        std::future::ready(match event {
            Event::Apply(o) | Event::Delete(o) => Some(Ok(o)),
            Event::InitApply(o) => listed.then_some(Ok(o)),
            Event::InitDone => {
                listed = true;
                None
            }
            Event::Init => None,
        })
    }
}

/// Names of the watches whose caches a reconcile reads.
const PACKAGES: &str = "packages";
const METADATAS: &str = "packagemetadatas";
const SECRETS: &str = "secrets";

/// Run the controller until `stop` resolves.
pub async fn run(
    client: kube::Client,
    source: Arc<dyn source::Source>,
    settings: Settings,
    reconcile_concurrency: u16,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    metrics: Arc<metrics::Metrics>,
    watches: Arc<WatchHealth>,
) {
    let (packages, package_writer) = reflector::store::<Cached<Package>>();
    let (metadatas, metadata_writer) = reflector::store::<Cached<PackageMetadata>>();
    let mut ctx = Context::new(
        client.clone(),
        source,
        default_builder(),
        settings.clone(),
        packages,
        metadatas,
    );
    ctx.metrics = metrics;
    let (secrets, secret_writer) = reflector::store::<Secret>();
    ctx.secrets = Some(secrets);
    let (requeue, requeued) = tokio::sync::mpsc::unbounded_channel();
    ctx.requeue = Some(requeue);
    let (repo_store, repo_writer) = reflector::store::<PackageRepository>();
    ctx.repositories = Some(repo_store.clone());
    let ctx = Arc::new(ctx);

    let package_stream = watch::resilient(
        PACKAGES,
        metadata_watch_of::<Package>(client.clone(), &settings.sink, Kind::Package),
        package_writer,
        watches.clone(),
    )
    .filter_map(external_changes(ctx.own_writes.clone(), Kind::Package));
    let metadata_stream = watch::resilient(
        METADATAS,
        metadata_watch_of::<PackageMetadata>(client.clone(), &settings.sink, Kind::PackageMetadata),
        metadata_writer,
        watches.clone(),
    )
    .filter_map(external_changes(ctx.own_writes.clone(), Kind::PackageMetadata));

    let repo_stream = watch::resilient(
        "packagerepositories",
        watch_of(Api::<PackageRepository>::all(client.clone()), Default::default()),
        repo_writer,
        watches.clone(),
    )
    .filter_map(|event| {
        std::future::ready(match event {
            Event::Apply(o) | Event::InitApply(o) => Some(Ok(o)),
            _ => None,
        })
    })
    .predicate_filter(trigger_hash, Default::default())
    .inspect(|r| {
        if let Ok(r) = r {
            tracing::debug!(repository = %r.name_any(), generation = ?r.metadata.generation, "repository to reconcile");
        }
    });

    let tracker = Arc::new(ConfigTracker::new(ctx.clone()));
    let secret_tracker = tracker.clone();
    let secret_stream = watch::resilient(
        SECRETS,
        watch_of(
            Api::<Secret>::namespaced(client.clone(), &settings.namespace),
            Default::default(),
        ),
        secret_writer,
        watches.clone(),
    )
    .inspect(move |event| secret_tracker.on_secret(event))
    .filter_map(touched());
    // Only the one ConfigMap: the older form of kapp-controller-config.
    let (_, config_map_writer) = reflector::store::<ConfigMap>();
    let map_tracker = tracker.clone();
    let config_map_stream = watch::resilient(
        "configmap kapp-controller-config",
        watch_of(
            Api::<ConfigMap>::namespaced(client.clone(), &settings.namespace),
            watcher::Config::default().fields(&format!("metadata.name={}", config::CONFIG_SECRET)),
        ),
        config_map_writer,
        watches.clone(),
    )
    .inspect(move |event| map_tracker.on_config_map(event))
    .filter_map(touched());

    let secret_repos = repo_store.clone();
    let map_repos = repo_store.clone();
    let package_memo = ctx.memo.clone();
    let metadata_memo = ctx.memo.clone();
    Controller::for_stream(repo_stream, repo_store)
        .watches_stream(secret_stream, move |secret: Secret| {
            secret_dependents(&secret_repos.state(), &secret.name_any())
        })
        .watches_stream(config_map_stream, move |_: ConfigMap| {
            secret_dependents(&map_repos.state(), config::CONFIG_SECRET)
        })
        .watches_stream(package_stream, move |p: Cached<Package>| {
            interested(&package_memo, Kind::Package, &p.metadata)
        })
        .watches_stream(metadata_stream, move |m: Cached<PackageMetadata>| {
            interested(&metadata_memo, Kind::PackageMetadata, &m.metadata)
        })
        .reconcile_on(stream_from(requeued))
        .with_config(controller::Config::default().concurrency(reconcile_concurrency))
        .graceful_shutdown_on(stop)
        .run(
            move |repo, ctx: Arc<Context>| {
                let watches = watches.clone();
                async move {
                    // Overlap checks, the short-cut and credentials read the caches: wait for
                    // their first listing (safe for many reconciles at once, unlike
                    // `Store::wait_until_ready`).
                    watches.wait_listed(&[PACKAGES, METADATAS, SECRETS]).await;
                    reconcile(repo, ctx).await
                }
            },
            error_policy,
            ctx,
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(error = %error, "controller event");
            }
        })
        .await;
}

/// Both forms of `kapp-controller-config` as the watches last reported them. A list in progress
/// is collected apart and replaces the last state only when complete (`InitDone`), so the Secret
/// present at start is never mistaken for a deleted one (the reflector's own store commits a
/// list only at `InitDone`, too).
struct ConfigTracker {
    ctx: Arc<Context>,
    state: Mutex<TrackerState>,
}

#[derive(Default)]
struct TrackerState {
    secret: Option<Secret>,
    map: Option<ConfigMap>,
    listing_secret: Option<Option<Secret>>,
    listing_map: Option<Option<ConfigMap>>,
    /// Each watch completed its first list: until both have, the startup read stands.
    secret_listed: bool,
    map_listed: bool,
    /// What the source was last given (the startup read counts).
    applied: Option<Option<ControllerConfig>>,
}

/// Fold one watch event for `kapp-controller-config` into `current`/`listing`.
fn fold<K: Resource + Clone>(
    event: &Event<K>,
    current: &mut Option<K>,
    listing: &mut Option<Option<K>>,
) -> bool {
    let ours = |o: &K| o.meta().name.as_deref() == Some(config::CONFIG_SECRET);
    match event {
        Event::Init => {
            *listing = Some(None);
            false
        }
        Event::InitApply(o) if ours(o) => {
            *listing = Some(Some(o.clone()));
            false
        }
        Event::InitDone => {
            *current = listing.take().flatten();
            true
        }
        Event::Apply(o) if ours(o) => {
            *current = Some(o.clone());
            true
        }
        Event::Delete(o) if ours(o) => {
            *current = None;
            true
        }
        _ => false,
    }
}

impl ConfigTracker {
    fn new(ctx: Arc<Context>) -> ConfigTracker {
        ConfigTracker {
            ctx,
            state: Mutex::default(),
        }
    }

    fn on_secret(&self, event: &Event<Secret>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let TrackerState {
            secret,
            listing_secret,
            ..
        } = &mut *state;
        if fold(event, secret, listing_secret) {
            state.secret_listed |= matches!(event, Event::InitDone);
            self.update(&mut state);
        }
    }

    fn on_config_map(&self, event: &Event<ConfigMap>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let TrackerState { map, listing_map, .. } = &mut *state;
        if fold(event, map, listing_map) {
            state.map_listed |= matches!(event, Event::InitDone);
            self.update(&mut state);
        }
    }

    /// Hand the effective config to the source when it differs from what it has.
    fn update(&self, state: &mut TrackerState) {
        if !(state.secret_listed && state.map_listed) {
            return;
        }
        let effective = config::effective(state.secret.as_ref(), state.map.as_ref());
        if state.applied.as_ref() == Some(&effective) {
            return;
        }
        match self.ctx.source.reconfigure(effective.as_ref()) {
            Ok(changed) => {
                if changed {
                    match &effective {
                        Some(c) => tracing::info!(
                            namespace = %c.namespace, kind = %c.kind,
                            "{} changed: registry settings reloaded", config::CONFIG_SECRET
                        ),
                        None => tracing::info!(
                            namespace = %self.ctx.settings.namespace,
                            "{} removed: registry settings are the flags' again", config::CONFIG_SECRET
                        ),
                    }
                }
                state.applied = Some(effective);
            }
            Err(e) => tracing::warn!(
                error = %error::full_chain(&e),
                "{} is not usable; keeping the previous registry settings", config::CONFIG_SECRET
            ),
        }
    }
}

/// An unbounded receiver as a stream (without a tokio-stream dependency).
fn stream_from<T: Send + 'static>(
    receiver: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str) -> Secret {
        Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn own_echoes_and_the_first_list_are_not_triggers() {
        let own = Arc::new(OwnWrites::default());
        own.record(Kind::Package, "mine", Some("5".into()));
        own.record(Kind::Package, "pruned", None);
        let package = |name: &str, rv: &str| -> Package {
            serde_json::from_value(
                serde_json::json!({"apiVersion": "data.packaging.carvel.dev/v1alpha1",
                "kind": "Package", "metadata": {"name": name, "resourceVersion": rv}, "spec": {}}),
            )
            .unwrap()
        };
        let mut filter = external_changes::<Package>(own, Kind::Package);
        let mut passes = |event: Event<Package>| {
            futures_util::FutureExt::now_or_never(filter(event))
                .unwrap()
                .is_some()
        };
        assert!(!passes(Event::Init));
        assert!(
            !passes(Event::InitApply(package("mine", "5"))),
            "the first list: repositories reconcile anyway"
        );
        assert!(!passes(Event::InitDone));
        assert!(!passes(Event::Apply(package("mine", "5"))), "echo of our apply");
        assert!(passes(Event::Apply(package("mine", "6"))), "someone edited it");
        let mut ours_in_flight = package("in-flight", "9");
        ours_in_flight.metadata.managed_fields = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry {
                manager: Some(apply::FIELD_MANAGER.into()),
                operation: Some("Apply".into()),
                ..Default::default()
            },
        ]);
        assert!(
            !passes(Event::Apply(ours_in_flight.clone())),
            "written by pkgr alone, reply not yet seen"
        );
        ours_in_flight.metadata.managed_fields.as_mut().unwrap().push(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry {
                manager: Some("kubectl-edit".into()),
                operation: Some("Update".into()),
                ..Default::default()
            },
        );
        assert!(passes(Event::Apply(ours_in_flight)), "edited by someone else");
        assert!(passes(Event::Delete(package("mine", "6"))), "someone deleted it");
        assert!(
            !passes(Event::Delete(package("pruned", "3"))),
            "echo of our prune"
        );
        assert!(
            passes(Event::InitApply(package("mine", "5"))),
            "a re-list after an outage counts"
        );
    }

    #[test]
    fn a_listed_config_is_current_once_the_list_is_complete() {
        let (mut current, mut listing) = (None, None);
        assert!(!fold(&Event::Init, &mut current, &mut listing));
        assert!(!fold(
            &Event::InitApply(secret("other")),
            &mut current,
            &mut listing
        ));
        assert!(!fold(
            &Event::InitApply(secret(config::CONFIG_SECRET)),
            &mut current,
            &mut listing
        ));
        assert!(current.is_none(), "not before InitDone");
        assert!(fold(&Event::InitDone, &mut current, &mut listing));
        assert!(current.is_some(), "present at start");
        // A re-list that no longer finds it: deleted while the watch was down.
        fold(&Event::Init, &mut current, &mut listing);
        assert!(current.is_some(), "the old state holds during the list");
        assert!(fold(&Event::InitDone, &mut current, &mut listing));
        assert!(current.is_none());
        assert!(fold(
            &Event::Apply(secret(config::CONFIG_SECRET)),
            &mut current,
            &mut listing
        ));
        assert!(!fold(&Event::Delete(secret("other")), &mut current, &mut listing));
        assert!(fold(
            &Event::Delete(secret(config::CONFIG_SECRET)),
            &mut current,
            &mut listing
        ));
        assert!(current.is_none());
    }
}
