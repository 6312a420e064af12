//! Step 6 of a reconcile: whose each object is (this repository's, another's, or nobody's), the
//! overlap rules, the applies, and prune with hand-over to a repository that supplies the object too.
use super::apply::{self, Desired, Kind, Overlap};
use super::error::ReconcileError;
use super::writes;
use super::{Context, Memo};
use crate::api::PackageRepository;
use crate::repository::{Output, Skipped};
use kube::ResourceExt;
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
    let desired = apply::desired_objects(repo, output, &ctx.sink)?;
    let mut to_write: Vec<Desired> = Vec::with_capacity(desired.len());
    let mut kept_by_others = Vec::new();
    let mut applied: BTreeMap<(Kind, String), Option<String>> = BTreeMap::new();
    let mut keep = BTreeSet::new();
    let mut foreign: Vec<(Kind, String, String)> = Vec::new();
    let mut kapp_held: Vec<(Kind, String, String)> = Vec::new();
    for mut object in desired {
        keep.insert((object.kind, object.name.clone()));
        let Some(meta) = cached_meta(ctx, object.kind, &object.name) else {
            to_write.push(object);
            continue;
        };
        // kapp-controller's own PackageRepository deployed it (or adopted ours): never ours.
        if let Some(holder) = super::sink::kapp_controller_holder(&meta) {
            kapp_held.push((object.kind, object.name.clone(), holder));
            continue;
        }
        // An object whose owner was just deleted is free, even while the cache still shows it.
        let decision = match apply::owner_of(&meta) {
            None => {
                foreign.push((object.kind, object.name.clone(), apply::writers(&meta)));
                continue;
            }
            Some(owner) if owner == name || departed(ctx, &owner) => Overlap::Apply,
            Some(theirs) => {
                let full = read_full(ctx, object.kind, &object.name, &theirs).await?;
                apply::overlap(&name, &object, full.as_ref().map(|v| (&meta, v.clone()))).map_err(
                    |error| match error {
                        ReconcileError::Conflict {
                            kind,
                            name,
                            ours,
                            theirs,
                            field,
                        } => ReconcileError::Conflict {
                            kind,
                            name: ctx.sink.display_name(object.kind, &name),
                            ours,
                            theirs,
                            field,
                        },
                        other => other,
                    },
                )?
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
    if let Some((kind, object, holder)) = kapp_held.first().cloned() {
        return Err(ReconcileError::HeldByKappController {
            kind: kind.as_str(),
            name: ctx.sink.display_name(kind, &object),
            holder,
            others: kapp_held.len() - 1 + foreign.len(),
        });
    }
    if let Some((kind, object, writers)) = foreign.first().cloned() {
        return Err(ReconcileError::NotApplied {
            kind: kind.as_str(),
            plural: kind.plural(),
            namespace: ctx
                .sink
                .namespace()
                .map(|ns| format!(" -n {ns}"))
                .unwrap_or_default(),
            name: ctx.sink.display_name(kind, &object),
            writers,
            others: foreign.len() - 1,
        });
    }
    ctx.sink_ready(&name).await?;
    let mark = apply::applied_set(
        fetched,
        repo.metadata.generation,
        to_write.len(),
        kept_by_others.len(),
    );
    for object in &mut to_write {
        apply::mark_applied_set(object, &mark);
    }
    let written = writes::apply_all(
        &ctx.client,
        &ctx.sink,
        to_write,
        ctx.settings.apply_concurrency,
        &ctx.own_writes,
    )
    .await?;
    applied.extend(written);
    let handover = |kind: Kind, object: &str| first_sharer(ctx, &name, kind, object);
    let pruned = writes::prune(&ctx.client, &ctx.sink, &name, &keep, &ctx.own_writes, &handover).await?;
    requeue_sharers(ctx, &name, &pruned.released());
    retire_previous(ctx, &name).await;
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
        name: ctx.sink.display_name(kind, name),
        theirs: theirs.to_string(),
        source: Box::new(source),
    };
    writes::read(&ctx.client, &ctx.sink, kind, name)
        .await
        .map_err(read)
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

/// After the cluster changed (kapp-controller installed or removed), take this repository's
/// objects out of where they went before, now that they are in the new destination. Where the
/// old destination is no longer served (its CRDs went with kapp-controller, or its group now
/// belongs to kapp-controller's API) there is nothing to take out.
async fn retire_previous(ctx: &Context, repository: &str) {
    let Some(previous) = &ctx.settings.previous_sink else {
        return;
    };
    if previous == &ctx.sink
        || ctx
            .retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(repository)
    {
        return;
    }
    let nobody = |_: Kind, _: &str| None;
    let own = super::own_writes::OwnWrites::default();
    match writes::prune(&ctx.client, previous, repository, &BTreeSet::new(), &own, &nobody).await {
        Ok(pruned) => {
            if !pruned.deleted.is_empty() {
                tracing::info!(repository, deleted = pruned.deleted.len(), from = %previous.describe(), "took the repository's objects out of the previous destination");
            }
        }
        Err(error) => {
            tracing::info!(repository, from = %previous.describe(), error = %super::error::full_chain(&error), "the previous destination is not served any more: nothing to take out of it");
        }
    }
    ctx.retired
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(repository.to_string());
}
