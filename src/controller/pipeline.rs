//! One full pass over a repository, as the phases in order:
//! resolve → verify → short-cut → fetch → expand → ownership → apply → prune.
//! (Status and Events, the last phase, are the caller's: `reconcile`.)
use super::Context;
use super::Memo;
use super::apply::Kind;
use super::error::ReconcileError;
use super::fetch::{fetch, resolve_source};
use super::ownership;
use super::shortcut::unchanged;
use super::writes;
use crate::api::PackageRepository;
use crate::repository::Skipped;
use kube::ResourceExt;
use std::collections::BTreeSet;

/// What a full pass did.
pub(super) struct Applied {
    pub(super) fetched: String,
    pub(super) memo: Memo,
    pub(super) package_count: i64,
    pub(super) metadata_count: usize,
    pub(super) skipped: Vec<Skipped>,
    pub(super) pruned: usize,
    pub(super) kept_by_others: Vec<(Kind, String, String)>,
}

/// The phases; `None` when the digest short-cut applies (nothing pulled, nothing written).
pub(super) async fn run_pipeline(
    repo: &PackageRepository,
    ctx: &Context,
) -> Result<Option<Applied>, ReconcileError> {
    let name = repo.name_any();
    // Resolve: the source, its credentials, its digest.
    let resolved = resolve_source(repo, ctx).await?;
    let fetched = resolved.fetched.clone();
    // Verify (when asked): signed by one of the Secret's keys, or nothing is touched. Before the
    // short-cut, so a rotated key counts at once; remembered, so a resync costs nothing more.
    super::verify::verify_source(repo, ctx, &resolved).await?;
    // Short-cut: same digest, generation and applied objects.
    if unchanged(ctx, repo, &fetched).await {
        return Ok(None);
    }
    // Fetch, expand, apply: what takes memory, so at most as many at once as the budget allows.
    let permit = ctx.fetches.clone().acquire_owned().await.ok();
    let contents = fetch(&resolved).await?;
    if !contents.files.keys().any(|k| k.starts_with("packages/")) {
        return Err(ReconcileError::NoPackagesDirectory { source_name: fetched });
    }
    let mut output = (ctx.builder)(&contents.files, contents.images_lock.as_ref()).map_err(|source| {
        ReconcileError::Build {
            source_name: fetched.clone(),
            source,
        }
    })?;
    drop(contents);
    let package_count = output.packages.len() as i64;
    let metadata_count = output.metadatas.len();
    let skipped = std::mem::take(&mut output.skipped);
    // Ownership: decisions only; a repository that may not be applied is refused here. The
    // parsed objects are turned into compact JSON on the way (and freed).
    let plan = ownership::plan(repo, ctx, output, &fetched).await?;
    let json_bytes: u64 = plan.to_write.iter().map(|d| d.json.len() as u64).sum();
    let objects = plan.keep.len();
    super::budget::fits(
        objects,
        json_bytes,
        ctx.settings.apply_concurrency,
        ctx.settings.per_reconcile_bytes,
    )
    .map_err(|(needed, allowance)| ReconcileError::OverBudget {
        objects,
        json_mib: json_bytes.div_ceil(1 << 20),
        needed_mib: needed.div_ceil(1 << 20),
        allowance_mib: allowance >> 20,
    })?;
    ctx.sink_ready(&name).await?;
    // Apply.
    let mut applied = plan.kept;
    let written = writes::apply_all(
        &ctx.client,
        ctx.sink(),
        plan.to_write,
        &plan.mark,
        ctx.settings.apply_concurrency,
        &ctx.own_writes,
    )
    .await?;
    applied.extend(written);
    // Prune: what the repository no longer supplies, handed over where another one does.
    let handover = |kind: Kind, object: &str| ctx.first_sharer(&name, kind, object);
    let pruned = writes::prune(
        &ctx.client,
        ctx.sink(),
        &name,
        &plan.keep,
        &ctx.own_writes,
        &handover,
    )
    .await?;
    // The permit covers the whole reconcile, applies and prune included: the budget bounds what
    // all reconciles hold at once.
    drop(permit);
    ctx.requeue_sharers(&name, &pruned.released());
    retire_previous(ctx, &name).await;
    Ok(Some(Applied {
        fetched: fetched.clone(),
        memo: Memo {
            fetched,
            generation: repo.metadata.generation,
            applied,
        },
        package_count,
        metadata_count,
        skipped,
        pruned: pruned.deleted.len(),
        kept_by_others: plan.kept_by_others,
    }))
}

/// After the cluster changed (kapp-controller installed or removed), take this repository's
/// objects out of where they went before, now that they are in the new destination. Where the
/// old destination is no longer served (its CRDs went with kapp-controller, or its group now
/// belongs to kapp-controller's API) there is nothing to take out.
async fn retire_previous(ctx: &Context, repository: &str) {
    let Some(previous) = &ctx.settings.previous_sink else {
        return;
    };
    if previous == ctx.sink()
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
