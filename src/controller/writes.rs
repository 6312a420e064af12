//! Every write of Packages and PackageMetadatas, through the sink: server-side apply in parallel
//! (never reading before a write), prune of what a repository no longer contains, and hand-over
//! of an object to another repository that supplies it too.
use super::apply::{
    APPLIED_SET_ANNOTATION, Desired, FIELD_MANAGER, Kind, REPOSITORY_ANNOTATION, REPOSITORY_LABEL,
    label_value,
};
use super::error::ReconcileError;
use super::own_writes::OwnWrites;
use super::sink::Sink;
use crate::api::PackageRepository;
use futures_util::{StreamExt, TryStreamExt, stream};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One object written and the resourceVersion the server returned.
type Written = ((Kind, String), Option<String>);

/// Server-side apply every object with bounded concurrency; the resourceVersion each write
/// returned. Each response is dropped as soon as its resourceVersion is taken.
pub async fn apply_all(
    client: &kube::Client,
    sink: &Sink,
    objects: Vec<Desired>,
    mark: &str,
    concurrency: usize,
    own: &OwnWrites,
) -> Result<BTreeMap<(Kind, String), Option<String>>, ReconcileError> {
    let packages = sink.api(client, Kind::Package);
    let metadatas = sink.api(client, Kind::PackageMetadata);
    let forced = PatchParams::apply(FIELD_MANAGER).force();
    let new = PatchParams::apply(FIELD_MANAGER);
    let results: Vec<Result<Written, ReconcileError>> = stream::iter(objects)
        .map(|desired| {
            let api = match desired.kind {
                Kind::Package => &packages,
                Kind::PackageMetadata => &metadatas,
            };
            let params = if desired.take_over { &forced } else { &new };
            async move {
                // The body is made when it is sent, and the reply dropped once its
                // resourceVersion is taken: only what is in flight is held whole.
                let body = desired.body(mark);
                let written = api
                    .patch(&desired.name, params, &Patch::Apply(&body))
                    .await
                    .map(|o| o.resource_version());
                drop(body);
                written
                    .map(|rv| {
                        own.record(desired.kind, &desired.name, rv.clone());
                        ((desired.kind, desired.name.clone()), rv)
                    })
                    .map_err(|source| ReconcileError::Apply {
                        kind: desired.kind.as_str(),
                        name: sink.display_name(desired.kind, &desired.name),
                        others: 0,
                        source,
                    })
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut applied = BTreeMap::new();
    let mut first_error = None;
    let mut failures = 0usize;
    for result in results {
        match result {
            Ok((key, rv)) => {
                applied.insert(key, rv);
            }
            Err(error) => {
                failures += 1;
                first_error.get_or_insert(error);
            }
        }
    }
    match first_error {
        Some(ReconcileError::Apply {
            kind, name, source, ..
        }) => Err(ReconcileError::Apply {
            kind,
            name,
            others: failures - 1,
            source,
        }),
        Some(other) => Err(other),
        None => Ok(applied),
    }
}

/// Stored names of the objects of one kind labelled for `repository`, listed from the API server.
async fn labelled(
    api: &Api<kube::api::DynamicObject>,
    kind: Kind,
    repository: &str,
) -> Result<Vec<String>, ReconcileError> {
    let selector = format!("{REPOSITORY_LABEL}={}", label_value(repository));
    let list = api
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| ReconcileError::List {
            kind: kind.as_str(),
            repository: repository.to_string(),
            source,
        })?;
    Ok(list.items.into_iter().filter_map(|m| m.metadata.name).collect())
}

/// What [`prune`] did: objects deleted, and objects handed to another repository that supplies
/// them too (they stay in the cluster, never missing for a moment).
#[derive(Debug, Default)]
pub struct Pruned {
    pub deleted: Vec<(Kind, String)>,
    pub handed_over: Vec<(Kind, String, String)>,
}

impl Pruned {
    /// Every object this repository no longer supplies, deleted or handed over.
    pub fn released(&self) -> Vec<(Kind, String)> {
        self.deleted
            .iter()
            .cloned()
            .chain(self.handed_over.iter().map(|(k, n, _)| (*k, n.clone())))
            .collect()
    }
}

/// Delete what `repository` applied before and `keep` no longer lists, except what `sharer`
/// names another repository for: that is handed over to it.
pub async fn prune(
    client: &kube::Client,
    sink: &Sink,
    repository: &str,
    keep: &BTreeSet<(Kind, String)>,
    own: &OwnWrites,
    sharer: &(dyn Fn(Kind, &str) -> Option<String> + Sync),
) -> Result<Pruned, ReconcileError> {
    let packages = sink.api(client, Kind::Package);
    let metadatas = sink.api(client, Kind::PackageMetadata);
    let mut doomed = Vec::new();
    for (kind, api) in [(Kind::Package, &packages), (Kind::PackageMetadata, &metadatas)] {
        for name in labelled(api, kind, repository).await? {
            if !keep.contains(&(kind, name.clone())) {
                doomed.push((kind, name));
            }
        }
    }
    let mut pruned = Pruned::default();
    let mut deletions = Vec::new();
    for (kind, name) in doomed {
        match sharer(kind, &name) {
            Some(other) => {
                hand_over(client, sink, kind, &name, &other, own).await?;
                pruned.handed_over.push((kind, name, other));
            }
            None => deletions.push((kind, name)),
        }
    }
    stream::iter(deletions.clone())
        .map(|(kind, name)| {
            let api = match kind {
                Kind::Package => &packages,
                Kind::PackageMetadata => &metadatas,
            };
            async move {
                // Recorded first: the watch may report the deletion before the reply arrives.
                own.record(kind, &name, None);
                match api.delete(&name, &DeleteParams::background()).await {
                    Ok(_) => Ok(()),
                    // Already gone is what we wanted.
                    Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
                    Err(source) => Err(ReconcileError::Delete {
                        kind: kind.as_str(),
                        name: sink.display_name(kind, &name),
                        source,
                    }),
                }
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await?;
    pruned.deleted = deletions;
    Ok(pruned)
}

/// The whole stored object (`None`: not there), as JSON.
pub async fn read(
    client: &kube::Client,
    sink: &Sink,
    kind: Kind,
    name: &str,
) -> Result<Option<Value>, kube::Error> {
    let object = sink.api(client, kind).get_opt(name).await?;
    Ok(object.and_then(|o| serde_json::to_value(&o).ok()))
}

/// Give object `name` to repository `to` (which supplies it too): its label, annotation and owner
/// reference become `to`'s, its content stays. `to` is then reconciled and applies its own copy.
async fn hand_over(
    client: &kube::Client,
    sink: &Sink,
    kind: Kind,
    name: &str,
    to: &str,
    own: &OwnWrites,
) -> Result<(), ReconcileError> {
    let failed = |source| ReconcileError::HandOver {
        kind: kind.as_str(),
        name: sink.display_name(kind, name),
        to: to.to_string(),
        source: Box::new(source),
    };
    let repos: Api<PackageRepository> = Api::all(client.clone());
    let Some(new_owner) = repos.get_opt(to).await.map_err(failed)? else {
        return Ok(());
    };
    let owner = new_owner
        .controller_owner_ref(&())
        .ok_or(ReconcileError::Unnamed)?;
    let Some(current) = read(client, sink, kind, name).await.map_err(failed)? else {
        return Ok(());
    };
    let mut object = serde_json::json!({
        "apiVersion": current["apiVersion"],
        "kind": current["kind"],
        "metadata": {
            "name": name,
            "labels": current["metadata"]["labels"],
            "annotations": current["metadata"]["annotations"],
            "ownerReferences": [owner],
        },
        "spec": current["spec"],
    });
    if let Some(namespace) = sink.namespace() {
        object["metadata"]["namespace"] = Value::String(namespace.to_string());
    }
    if let Some(labels) = object["metadata"]["labels"].as_object_mut() {
        labels.insert(REPOSITORY_LABEL.into(), Value::String(label_value(to)));
    }
    if let Some(annotations) = object["metadata"]["annotations"].as_object_mut() {
        annotations.insert(REPOSITORY_ANNOTATION.into(), Value::String(to.to_string()));
        annotations.remove(APPLIED_SET_ANNOTATION);
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let written = sink
        .api(client, kind)
        .patch(name, &params, &Patch::Apply(&object))
        .await
        .map(|o| o.resource_version())
        .map_err(failed)?;
    own.record(kind, name, written);
    Ok(())
}
