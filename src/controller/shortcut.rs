//! The digest short-cut (SPEC Reconcile 2): same digest, same generation, applied objects as
//! written: no pull and no API write. After a restart it is rebuilt from what the cluster records.
use super::apply::{self, Kind};
use super::fetch::INLINE;
use super::status;
use super::{Context, Memo};
use crate::api::PackageRepository;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How long the short-cut waits for the caches to take in pkgr's own last applies before it
/// gives up and does a full pass. The watch normally delivers them within milliseconds.
const CATCH_UP: Duration = Duration::from_secs(5);

/// The digest short-cut: same fetched digest, same generation, and the applied objects are still
/// there as written (no registry pull, no API call). After a restart the memo is rebuilt from
/// what the cluster records (the status and the applied-set annotations). A reconcile that runs
/// right after another (its credential Secret touched, a second trigger queued meanwhile) may
/// find the caches not yet holding the last apply: it waits for them rather than take pkgr's own
/// writes for someone else's.
pub(super) async fn unchanged(ctx: &Context, repo: &PackageRepository, fetched: &str) -> bool {
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    let mut deliveries = ctx.own_writes.deliveries();
    loop {
        deliveries.mark_unchanged();
        match check(ctx, repo, fetched) {
            AppliedSet::Intact => return true,
            AppliedSet::Changed => return false,
            AppliedSet::Behind => {
                let next = tokio::time::timeout_at(deadline, deliveries.changed()).await;
                if !matches!(next, Ok(Ok(()))) {
                    tracing::debug!(repository = %repo.name_any(), "the caches did not catch up with pkgr's own applies: a full pass");
                    return false;
                }
            }
        }
    }
}

fn check(ctx: &Context, repo: &PackageRepository, fetched: &str) -> AppliedSet {
    let repository = repo.name_any();
    let generation = repo.metadata.generation;
    let mut memos = ctx.memo.lock().unwrap_or_else(|p| p.into_inner());
    if !memos.contains_key(&repository) {
        match memo_from_cluster(ctx, repo, fetched) {
            Some(memo) => {
                tracing::debug!(repository = %repository, "digest short-cut rebuilt from the status and the applied objects");
                memos.insert(repository.clone(), memo);
            }
            None => return AppliedSet::Changed,
        }
    }
    let Some(memo) = memos.get(&repository) else {
        return AppliedSet::Changed;
    };
    if memo.fetched != fetched || memo.generation != generation {
        return AppliedSet::Changed;
    }
    applied_set_intact(ctx, &repository, memo)
}

/// The memo of a reconcile that a previous controller process finished: the status says it
/// succeeded for this generation and this digest, and every object labelled for the repository
/// carries that reconcile's applied-set annotation, is counted in it, and was written by pkgr
/// alone. Objects left to other repositories cannot be checked this way: then `None` (a full pass).
pub fn memo_from_cluster(ctx: &Context, repo: &PackageRepository, fetched: &str) -> Option<Memo> {
    let status = repo.status.as_ref()?;
    let generation = repo.metadata.generation;
    if status.observed_generation != generation
        || status.friendly_description.as_deref() != Some(status::DESCRIPTION_SUCCEEDED)
    {
        return None;
    }
    let image = status.fetch.as_ref().and_then(|f| f.image.as_deref());
    if image != Some(fetched).filter(|f| *f != INLINE) {
        return None;
    }
    let label = apply::label_value(&repo.name_any());
    let mut applied = BTreeMap::new();
    let mut marks = BTreeSet::new();
    let mut visit = |kind: Kind, meta: &kube::api::ObjectMeta| -> bool {
        if meta.labels.as_ref().and_then(|l| l.get(apply::REPOSITORY_LABEL)) != Some(&label) {
            return true;
        }
        let mark = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(apply::APPLIED_SET_ANNOTATION));
        let Some(mark) = mark else { return false };
        marks.insert(mark.clone());
        applied.insert(
            (kind, meta.name.clone().unwrap_or_default()),
            meta.resource_version.clone(),
        );
        apply::written_only_by_pkgr(meta)
    };
    for p in ctx.packages.state() {
        if !visit(Kind::Package, &p.metadata) {
            return None;
        }
    }
    for m in ctx.metadatas.state() {
        if !visit(Kind::PackageMetadata, &m.metadata) {
            return None;
        }
    }
    let expected = apply::applied_set(fetched, generation, applied.len(), 0);
    (marks.len() == 1 && marks.contains(&expected)).then(|| Memo {
        fetched: fetched.to_string(),
        generation,
        applied,
    })
}

/// What the caches say of a repository's applied objects.
#[derive(Debug, PartialEq, Eq)]
pub enum AppliedSet {
    /// Every object the memo lists is there at the version written, and nothing else is labelled.
    Intact,
    /// Something differs that pkgr did not write.
    Changed,
    /// Only objects whose last apply by pkgr the watch has not delivered yet differ.
    Behind,
}

/// Compare the memo with the caches.
pub fn applied_set_intact(ctx: &Context, repository: &str, memo: &Memo) -> AppliedSet {
    // (resourceVersion, owner) of the cached object.
    let cached = |kind: Kind, name: &str| -> Option<(Option<String>, Option<String>)> {
        match kind {
            Kind::Package => ctx
                .packages
                .get(&ObjectRef::new(name))
                .map(|o| (o.resource_version(), apply::owner_of(&o.metadata))),
            Kind::PackageMetadata => ctx
                .metadatas
                .get(&ObjectRef::new(name))
                .map(|o| (o.resource_version(), apply::owner_of(&o.metadata))),
        }
    };
    let mut behind = false;
    for ((kind, name), written) in &memo.applied {
        let lagging = || {
            written
                .as_deref()
                .is_some_and(|w| ctx.own_writes.awaiting(*kind, name, w))
        };
        match (cached(*kind, name), written) {
            (None, _) if lagging() => behind = true,
            (None, _) => return AppliedSet::Changed,
            (Some((seen, _)), Some(written)) if seen.as_ref() != Some(written) => {
                if !lagging() {
                    return AppliedSet::Changed;
                }
                tracing::trace!(object = %name, cached = ?seen, written = %written, "the cache is behind pkgr's apply");
                behind = true;
            }
            // Kept by another repository that has since been deleted: ours to apply now.
            (Some((_, Some(owner))), None) if ctx.has_departed(&owner) => return AppliedSet::Changed,
            _ => {}
        }
    }
    if behind {
        return AppliedSet::Behind;
    }
    let label = apply::label_value(repository);
    let ours = |labels: &BTreeMap<String, String>| labels.get(apply::REPOSITORY_LABEL) == Some(&label);
    let labelled = ctx.packages.state().iter().filter(|p| ours(p.labels())).count()
        + ctx.metadatas.state().iter().filter(|p| ours(p.labels())).count();
    if labelled == memo.applied.values().filter(|rv| rv.is_some()).count() {
        AppliedSet::Intact
    } else {
        AppliedSet::Changed
    }
}
