//! Step 6 of a reconcile: whose each object is (this repository's, another's, or nobody's), the
//! overlap rules, the applies, and prune with hand-over to a repository that supplies the object too.
use super::apply::{self, Desired, Kind, Overlap};
use super::error::ReconcileError;
use super::{Context, Memo};
use crate::api::PackageRepository;
use crate::repository::{Output, Skipped};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use std::collections::{BTreeMap, BTreeSet};

/// What a full reconcile produced.
pub(super) struct Applied {
    pub(super) fetched: String,
    pub(super) memo: Memo,
    pub(super) package_count: i64,
    pub(super) metadata_count: usize,
    pub(super) skipped: Vec<Skipped>,
    pub(super) pruned: usize,
    pub(super) kept_by_others: Vec<(Kind, String, String)>,
}

/// Step 6: ownership and overlap rules, parallel server-side apply, prune.
pub(super) async fn apply_and_prune(
    repo: &PackageRepository,
    ctx: &Context,
    output: &Output,
    fetched: &str,
) -> Result<Applied, ReconcileError> {
    let name = repo.name_any();
    let desired = apply::desired_objects(repo, output)?;
    let mut to_write: Vec<Desired> = Vec::with_capacity(desired.len());
    let mut kept_by_others = Vec::new();
    let mut applied: BTreeMap<(Kind, String), Option<String>> = BTreeMap::new();
    let mut keep = BTreeSet::new();
    let mut foreign: Vec<(Kind, String, String)> = Vec::new();
    for mut object in desired {
        keep.insert((object.kind, object.name.clone()));
        let Some(meta) = cached_meta(ctx, object.kind, &object.name) else {
            to_write.push(object);
            continue;
        };
        // An object whose owner was just deleted is free, even while the cache still shows it.
        let decision = match apply::owner_of(&meta) {
            None => {
                foreign.push((object.kind, object.name.clone(), apply::writers(&meta)));
                continue;
            }
            Some(owner) if owner == name || departed(ctx, &owner) => Overlap::Apply,
            Some(theirs) => {
                let full = read_full(ctx, object.kind, &object.name, &theirs).await?;
                apply::overlap(&name, &object, full.as_ref().map(|v| (&meta, v.clone())))?
            }
        };
        match decision {
            Overlap::Apply | Overlap::OursWins { .. } => {
                object.take_over = true;
                to_write.push(object);
            }
            Overlap::Shared { theirs } | Overlap::TheirsWins { theirs } => {
                applied.insert((object.kind, object.name.clone()), None);
                kept_by_others.push((object.kind, object.name, theirs));
            }
        }
    }
    // Refused before any write: nothing of the repository is applied half-way.
    if let Some((kind, object, writers)) = foreign.first().cloned() {
        return Err(ReconcileError::NotApplied {
            kind: kind.as_str(),
            plural: kind.plural(),
            name: object,
            writers,
            others: foreign.len() - 1,
        });
    }
    let mark = apply::applied_set(
        fetched,
        repo.metadata.generation,
        to_write.len(),
        kept_by_others.len(),
    );
    for object in &mut to_write {
        apply::mark_applied_set(object, &mark);
    }
    let written = apply::apply_all(
        &ctx.client,
        to_write,
        ctx.settings.apply_concurrency,
        &ctx.own_writes,
    )
    .await?;
    applied.extend(written);
    let handover = |kind: Kind, object: &str| first_sharer(ctx, &name, kind, object);
    let pruned = apply::prune(&ctx.client, &name, &keep, &ctx.own_writes, &handover).await?;
    requeue_sharers(ctx, &name, &pruned.released());
    Ok(Applied {
        fetched: String::new(),
        memo: Memo {
            fetched: String::new(),
            generation: None,
            applied,
        },
        package_count: output.packages.len() as i64,
        metadata_count: output.metadatas.len(),
        skipped: output.skipped.clone(),
        pruned: pruned.deleted.len(),
        kept_by_others,
    })
}

/// The cached metadata of the object of that kind and name.
pub(super) fn cached_meta(ctx: &Context, kind: Kind, name: &str) -> Option<kube::api::ObjectMeta> {
    match kind {
        Kind::Package => ctx
            .packages
            .get(&ObjectRef::new(name))
            .map(|o| o.metadata.clone()),
        Kind::PackageMetadata => ctx
            .metadatas
            .get(&ObjectRef::new(name))
            .map(|o| o.metadata.clone()),
    }
}

/// The whole object another repository supplies, to compare with ours (the caches hold metadata
/// only; this read happens only where two repositories overlap).
pub(super) async fn read_full(
    ctx: &Context,
    kind: Kind,
    name: &str,
    theirs: &str,
) -> Result<Option<serde_json::Value>, ReconcileError> {
    let read = |source| ReconcileError::ReadShared {
        kind: kind.as_str(),
        name: name.to_string(),
        theirs: theirs.to_string(),
        source: Box::new(source),
    };
    let value = match kind {
        Kind::Package => Api::<crate::api::Package>::all(ctx.client.clone())
            .get_opt(name)
            .await
            .map_err(read)?
            .map(|o| serde_json::to_value(&o)),
        Kind::PackageMetadata => Api::<crate::api::PackageMetadata>::all(ctx.client.clone())
            .get_opt(name)
            .await
            .map_err(read)?
            .map(|o| serde_json::to_value(&o)),
    };
    value.transpose().map_err(|source| ReconcileError::Serialize {
        what: format!("{} {name}", kind.as_str()),
        source,
    })
}

/// Another repository (not `repository`, not deleted) whose last reconcile left this object to
/// `repository`: it takes the object over instead of seeing it deleted.
pub(super) fn first_sharer(ctx: &Context, repository: &str, kind: Kind, object: &str) -> Option<String> {
    super::sharers(&ctx.memo, repository, &[(kind, object.to_string())])
        .into_iter()
        .find(|other| !departed(ctx, other))
}

/// Was PackageRepository `name` deleted (and not created again) since this controller started?
pub(super) fn departed(ctx: &Context, name: &str) -> bool {
    ctx.departed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(name)
}

/// Another repository that supplies an object this one just deleted applies it again now, rather
/// than at its next sync (the watch event of the deletion is filtered as pkgr's own echo).
pub(super) fn requeue_sharers(ctx: &Context, repository: &str, deleted: &[(Kind, String)]) {
    if deleted.is_empty() {
        return;
    }
    let Some(requeue) = &ctx.requeue else { return };
    for other in super::sharers(&ctx.memo, repository, deleted) {
        tracing::info!(repository = %other, deleted_by = %repository, "reconciling a repository that shares deleted objects");
        let _ = requeue.send(ObjectRef::new(&other));
    }
}
