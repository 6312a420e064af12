//! Which kind of cluster the controller runs in, decided at start and followed afterwards:
//! standalone (pkgr's own Package CRDs) or beside kapp-controller (its internal CRDs and
//! aggregated packaging API: pkgr delivers into its global packaging namespace).
use super::sink::{
    DEFAULT_GLOBAL_NAMESPACE, GLOBAL_NAMESPACE_ANNOTATION, INTERNAL_METADATAS_CRD, INTERNAL_PACKAGES_CRD,
    KAPP_REPOSITORY_CRD, PACKAGING_API_SERVICE, Sink,
};
use futures_util::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::Api;
use kube::api::PartialObjectMeta;
use kube::runtime::watcher;

/// The hint shown when pkgr's CRDs are not installed.
pub const CRD_HINT: &str = "install them with `pkgr crd | kubectl apply -f -` (or `kubectl apply -f crds/`)";

/// What was found in the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mode {
    pub sink: Sink,
    /// Beside kapp-controller: whether its packaging API is registered and available (when it
    /// is not, the Packages pkgr delivers appear once it is back).
    pub api_available: bool,
}

impl Mode {
    /// For the log line at start.
    pub fn describe(&self) -> String {
        match &self.sink {
            Sink::Crds => "standalone: Packages go to pkgr's cluster-scoped CRDs".to_string(),
            Sink::KappController { namespace } if self.api_available => format!(
                "beside kapp-controller: Packages go to its global packaging namespace {namespace}, \
                 served in every namespace by its packaging API"
            ),
            Sink::KappController { namespace } => format!(
                "beside kapp-controller: Packages go to its global packaging namespace {namespace}; \
                 its packaging API (APIService {PACKAGING_API_SERVICE}) is not available, so they \
                 appear in `kubectl get packages` once it is back"
            ),
        }
    }
}

async fn crd(
    client: &kube::Client,
    name: &str,
) -> Result<Option<PartialObjectMeta<CustomResourceDefinition>>, String> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.get_metadata_opt(name)
        .await
        .map_err(|e| format!("cannot read the CustomResourceDefinition {name}: {e}"))
}

/// Decide the mode from the cluster. An error says what is missing and how to fix it.
pub async fn detect(client: &kube::Client) -> Result<Mode, String> {
    let packages = crd(client, INTERNAL_PACKAGES_CRD).await?.is_some();
    let metadatas = crd(client, INTERNAL_METADATAS_CRD).await?.is_some();
    let services: Api<APIService> = Api::all(client.clone());
    let service = match services.get_opt(PACKAGING_API_SERVICE).await {
        Ok(service) => service,
        Err(kube::Error::Api(status)) if status.code == 403 => None,
        Err(e) => return Err(format!("cannot read the APIService {PACKAGING_API_SERVICE}: {e}")),
    };
    // An APIService without a Service is the local one the API server makes for a CRD (pkgr's).
    let aggregated = service
        .as_ref()
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.service.as_ref())
        .map(|b| {
            format!(
                "{}/{}",
                b.namespace.clone().unwrap_or_default(),
                b.name.clone().unwrap_or_default()
            )
        });
    let available = service
        .as_ref()
        .and_then(|s| s.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Available" && c.status == "True"));
    match (packages && metadatas, aggregated) {
        (true, aggregated) => {
            let namespace = crd(client, KAPP_REPOSITORY_CRD)
                .await?
                .and_then(|c| c.metadata.annotations)
                .and_then(|a| a.get(GLOBAL_NAMESPACE_ANNOTATION).cloned())
                .filter(|ns| !ns.is_empty())
                .unwrap_or_else(|| DEFAULT_GLOBAL_NAMESPACE.to_string());
            Ok(Mode {
                sink: Sink::KappController { namespace },
                api_available: aggregated.is_some() && available,
            })
        }
        (false, Some(backend)) => Err(format!(
            "kapp-controller's packaging API (APIService {PACKAGING_API_SERVICE}, Service {backend}) \
             is registered, but its CustomResourceDefinitions {INTERNAL_PACKAGES_CRD} and \
             {INTERNAL_METADATAS_CRD} are not both installed; reinstall kapp-controller, or delete \
             the APIService {PACKAGING_API_SERVICE} if kapp-controller was removed"
        )),
        (false, None) => {
            for crd_def in crate::api::crds() {
                let name = crd_def.metadata.name.unwrap_or_default();
                if crd(client, &name).await?.is_none() {
                    return Err(format!(
                        "the CustomResourceDefinition {name} is not installed; {CRD_HINT}"
                    ));
                }
            }
            Ok(Mode {
                sink: Sink::Crds,
                api_available: true,
            })
        }
    }
}

/// Resolves once the cluster's sink differs from `current`'s (kapp-controller installed or
/// removed, its global namespace moved): watches of the objects that decide it, each change
/// checked with [`detect`]. A detection error keeps the current mode (and is logged), as does a
/// change of the packaging API's availability alone (logged too).
pub async fn changed(
    client: kube::Client,
    current: Mode,
    available_now: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Mode {
    use kube::runtime::watcher::Event;
    // As the controller's own watches: re-listed at once after 410 Gone, backed off on errors.
    let health = std::sync::Arc::new(super::watch::WatchHealth::default());
    fn watch_named<K>(
        api: Api<PartialObjectMeta<K>>,
        name: &'static str,
        health: &std::sync::Arc<super::watch::WatchHealth>,
    ) -> futures_util::stream::BoxStream<'static, bool>
    where
        K: kube::Resource<DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let make = move || watcher(api.clone(), config.clone()).boxed();
        let (_, writer) = kube::runtime::reflector::store::<PartialObjectMeta<K>>();
        // A change, or a (re-)list completed: anything may have happened meanwhile.
        super::watch::resilient(name, make, writer, health.clone())
            .map(|event| matches!(event, Event::Apply(_) | Event::Delete(_) | Event::InitDone))
            .boxed()
    }
    let crds: Api<PartialObjectMeta<CustomResourceDefinition>> = Api::all(client.clone());
    let services: Api<PartialObjectMeta<APIService>> = Api::all(client.clone());
    let watches = futures_util::stream::select_all([
        watch_named(crds.clone(), INTERNAL_PACKAGES_CRD, &health),
        watch_named(crds.clone(), INTERNAL_METADATAS_CRD, &health),
        watch_named(crds, KAPP_REPOSITORY_CRD, &health),
        watch_named(services, PACKAGING_API_SERVICE, &health),
    ]);
    futures_util::pin_mut!(watches);
    let mut available = current.api_available;
    available_now.store(available, std::sync::atomic::Ordering::Relaxed);
    while let Some(worth) = watches.next().await {
        if !worth {
            continue;
        }
        match detect(&client).await {
            Ok(mode) if mode.sink != current.sink => return mode,
            Ok(mode) => {
                if mode.api_available != available {
                    available = mode.api_available;
                    available_now.store(available, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(mode = %mode.describe(), "kapp-controller's packaging API changed");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "the cluster changed, and pkgr cannot deliver Packages in it as it is now; keeping the current mode")
            }
        }
    }
    std::future::pending().await
}

/// Run the controller until `stop`, in the mode the cluster is in: when kapp-controller is
/// installed or removed, the running controller finishes its reconciles and starts again
/// delivering to the new destination (every repository is reconciled into it at once, then
/// takes its objects out of the old one where that is still served).
#[allow(clippy::too_many_arguments)]
pub async fn run_following(
    client: kube::Client,
    source: std::sync::Arc<dyn super::source::Source>,
    mut settings: super::Settings,
    mut mode: Mode,
    concurrency: u16,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    metrics: std::sync::Arc<super::metrics::Metrics>,
    watches: std::sync::Arc<super::watch::WatchHealth>,
) {
    let stop = futures_util::FutureExt::shared(Box::pin(stop));
    loop {
        settings.sink = mode.sink.clone();
        let (switch_tx, switch_rx) = tokio::sync::oneshot::channel::<Mode>();
        let watcher = tokio::spawn(changed(
            client.clone(),
            mode.clone(),
            settings.packaging_api.clone(),
        ));
        let watcher_abort = watcher.abort_handle();
        let forward = tokio::spawn(async move {
            if let Ok(new) = watcher.await {
                let _ = switch_tx.send(new);
            }
        });
        let (new_mode_tx, mut new_mode_rx) = tokio::sync::mpsc::unbounded_channel();
        let this_stop = {
            let stop = stop.clone();
            async move {
                tokio::select! {
                    _ = stop => {}
                    new = switch_rx => {
                        if let Ok(new) = new {
                            let _ = new_mode_tx.send(new);
                        }
                    }
                }
            }
        };
        super::run(
            client.clone(),
            source.clone(),
            settings.clone(),
            concurrency,
            this_stop,
            metrics.clone(),
            watches.clone(),
        )
        .await;
        watcher_abort.abort();
        forward.abort();
        match new_mode_rx.try_recv() {
            Ok(new) => {
                tracing::warn!(from = %mode.describe(), to = %new.describe(), "the cluster changed: delivering Packages to the new destination");
                settings.previous_sink = Some(mode.sink.clone());
                mode = new;
            }
            Err(_) => return,
        }
    }
}
