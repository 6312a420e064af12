//! The ownership phase of a reconcile: whose each object is (this repository's, another's,
//! kapp-controller's, or nobody's) and what the overlap rules make of it. It only decides:
//! nothing is written here, and a repository that may not be applied is refused before any write.
use super::Context;
use super::apply::{self, Desired, Kind, Overlap};
use super::error::ReconcileError;
use super::writes;
use crate::api::PackageRepository;
use crate::repository::Output;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use std::collections::{BTreeMap, BTreeSet};

/// What the ownership phase decided.
pub(super) struct Plan {
    /// The objects to apply (as JSON until each is sent).
    pub(super) to_write: Vec<Desired>,
    /// The applied-set annotation every written object carries.
    pub(super) mark: String,
    /// Every object the repository supplies (prune keeps these).
    pub(super) keep: BTreeSet<(Kind, String)>,
    /// Objects another repository keeps (identical, or its revision wins): counted, not written.
    pub(super) kept: BTreeMap<(Kind, String), Option<String>>,
    /// The same, with the repository that keeps each, for the Event.
    pub(super) kept_by_others: Vec<(Kind, String, String)>,
}

/// Decide, for every object `output` makes, whether this repository writes it.
pub(super) async fn plan(
    repo: &PackageRepository,
    ctx: &Context,
    output: Output,
    fetched: &str,
) -> Result<Plan, ReconcileError> {
    let name = repo.name_any();
    let desired = apply::desired_objects(repo, output, ctx.sink())?;
    let mut plan = Plan {
        to_write: Vec::with_capacity(desired.len()),
        mark: String::new(),
        keep: BTreeSet::new(),
        kept: BTreeMap::new(),
        kept_by_others: Vec::new(),
    };
    let mut foreign: Vec<(Kind, String, String)> = Vec::new();
    let mut kapp_held: Vec<(Kind, String, String)> = Vec::new();
    for mut object in desired {
        plan.keep.insert((object.kind, object.name.clone()));
        // The cache may not show pkgr's own last write of it yet (another repository applied it
        // a moment ago): then the API server says whose it is, not the lagging cache.
        let meta = if ctx.own_writes.unseen(object.kind, &object.name) {
            read_meta(ctx, object.kind, &object.name).await?
        } else {
            cached_meta(ctx, object.kind, &object.name)
        };
        let Some(meta) = meta else {
            plan.to_write.push(object);
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
            Some(owner) if owner == name || ctx.has_departed(&owner) => Overlap::Apply,
            Some(theirs) => {
                let full = read_full(ctx, object.kind, &object.name, &theirs).await?;
                apply::overlap(&name, &object, full.map(|v| (&meta, v)))
                    .map_err(|error| named_for_people(ctx, object.kind, error))?
            }
        };
        match decision {
            Overlap::Apply | Overlap::OursWins { .. } => {
                object.take_over = true;
                plan.to_write.push(object);
            }
            Overlap::Shared { theirs } | Overlap::TheirsWins { theirs } => {
                plan.kept.insert((object.kind, object.name.clone()), None);
                plan.kept_by_others.push((object.kind, object.name, theirs));
            }
        }
    }
    if let Some((kind, object, holder)) = kapp_held.first().cloned() {
        return Err(ReconcileError::HeldByKappController {
            kind: kind.as_str(),
            name: ctx.sink().display_name(kind, &object),
            holder,
            others: kapp_held.len() - 1 + foreign.len(),
        });
    }
    if let Some((kind, object, writers)) = foreign.first().cloned() {
        return Err(ReconcileError::NotApplied {
            kind: kind.as_str(),
            plural: kind.plural(),
            namespace: ctx
                .sink()
                .namespace()
                .map(|ns| format!(" -n {ns}"))
                .unwrap_or_default(),
            name: ctx.sink().display_name(kind, &object),
            writers,
            others: foreign.len() - 1,
        });
    }
    plan.mark = apply::applied_set(
        fetched,
        repo.metadata.generation,
        plan.to_write.len(),
        plan.kept_by_others.len(),
    );
    Ok(plan)
}

/// A conflict names the object as people know it (kapp-controller's stored names are encoded).
fn named_for_people(ctx: &Context, kind: Kind, error: ReconcileError) -> ReconcileError {
    match error {
        ReconcileError::Conflict {
            kind: k,
            name,
            ours,
            theirs,
            field,
        } => ReconcileError::Conflict {
            kind: k,
            name: ctx.sink().display_name(kind, &name),
            ours,
            theirs,
            field,
        },
        other => other,
    }
}

/// The cached metadata of the object of that kind and (stored) name.
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

/// The metadata of an object as the API server has it now.
async fn read_meta(
    ctx: &Context,
    kind: Kind,
    name: &str,
) -> Result<Option<kube::api::ObjectMeta>, ReconcileError> {
    ctx.sink()
        .api(&ctx.client, kind)
        .get_metadata_opt(name)
        .await
        .map(|o| o.map(|o| o.metadata))
        .map_err(|source| ReconcileError::ReadShared {
            kind: kind.as_str(),
            name: ctx.sink().display_name(kind, name),
            theirs: "another PackageRepository".to_string(),
            source: Box::new(source),
        })
}

/// The whole object another repository supplies, to compare with ours (the caches hold metadata
/// only; this read happens only where two repositories overlap).
async fn read_full(
    ctx: &Context,
    kind: Kind,
    name: &str,
    theirs: &str,
) -> Result<Option<serde_json::Value>, ReconcileError> {
    let read = |source| ReconcileError::ReadShared {
        kind: kind.as_str(),
        name: ctx.sink().display_name(kind, name),
        theirs: theirs.to_string(),
        source: Box::new(source),
    };
    writes::read(&ctx.client, ctx.sink(), kind, name)
        .await
        .map_err(read)
}
