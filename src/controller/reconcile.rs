//! One reconcile of one PackageRepository: the finalizer, pause, the full pass (`pipeline`), and
//! the last phase, status and Events; deletion (SPEC Reconcile 8).
use super::Context;
use super::apply::{self, Kind};
use super::error::ReconcileError;
use super::fetch::INLINE;
use super::pipeline::run_pipeline;
use super::status;
use crate::api::{FetchStatus, PackageRepository, PackageRepositoryStatus};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Resource, ResourceExt};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

/// The finalizer that lets pkgr remove what a repository supplied before it goes.
pub const FINALIZER: &str = "pkgr.packaging.carvel.dev/cleanup";

/// How a reconcile ended, for metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Unchanged,
    Failed,
    Paused,
    Deleted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Unchanged => "unchanged",
            Outcome::Failed => "failed",
            Outcome::Paused => "paused",
            Outcome::Deleted => "deleted",
        }
    }
}

/// Entry point for `Controller::run`: the finalizer wraps apply and cleanup.
pub async fn reconcile(repo: Arc<PackageRepository>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let name = repo.metadata.name.clone().ok_or(ReconcileError::Unnamed)?;
    let api: Api<PackageRepository> = Api::all(ctx.client.clone());
    let mut outcome = None;
    let result = finalizer(&api, FINALIZER, repo, |event| async {
        match event {
            FinalizerEvent::Apply(repo) => {
                let result = apply_repository(&repo, &ctx).await;
                // Whatever the outcome, what it leaves to others is now known (or cannot be).
                ctx.first_pass.mark(&repo.name_any());
                let (action, o) = result?;
                outcome = Some(o);
                Ok(action)
            }
            FinalizerEvent::Cleanup(repo) => {
                let action = cleanup(&repo, &ctx).await?;
                outcome = Some(Outcome::Deleted);
                Ok(action)
            }
        }
    })
    .await
    .map_err(|source| ReconcileError::Finalizer {
        name: name.clone(),
        source: Box::new(source),
    });
    let label = match (&result, outcome) {
        (Err(_), _) => "error",
        (Ok(_), Some(o)) => o.as_str(),
        (Ok(_), None) => "finalizer",
    };
    ctx.metrics.observe(label, started.elapsed());
    // A success gave its memory back before its Event; a failure or a deletion may have read a
    // whole repository too. A short-cut, a pause or a finalizer write allocated next to nothing.
    if result.is_err() || matches!(outcome, Some(Outcome::Failed | Outcome::Deleted)) {
        super::memory::release_free_memory();
    }
    result
}

/// What to do after an infrastructure error (status write, finalizer patch): retry soon.
pub fn error_policy(repo: Arc<PackageRepository>, error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    tracing::warn!(repository = %repo.name_any(), error = %super::error::full_chain(error), "reconcile error");
    let failures = repo
        .status
        .as_ref()
        .map_or(0, |s| s.consecutive_reconcile_failures)
        + 1;
    let period = status::sync_period(repo.spec.sync_period.as_deref()).unwrap_or(status::DEFAULT_SYNC_PERIOD);
    Action::requeue(status::backoff(failures, period))
}

/// `Apply` branch: run the pipeline, then report.
async fn apply_repository(
    repo: &PackageRepository,
    ctx: &Context,
) -> Result<(Action, Outcome), ReconcileError> {
    let name = repo.name_any();
    let generation = repo.metadata.generation;
    let old = repo.status.as_ref();
    // A repository created again under a deleted one's name owns its objects again.
    ctx.departed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&name);
    if repo.spec.paused == Some(true) {
        let newly = old.and_then(|s| s.friendly_description.as_deref()) != Some("Paused");
        write_status(ctx, &name, old, status::paused(old, generation)).await?;
        if newly {
            let note =
                "Paused: the repository is not fetched or applied until spec.paused is removed".to_string();
            publish(ctx, repo, EventType::Normal, "Paused", "Reconcile", note).await;
        }
        return Ok((Action::await_change(), Outcome::Paused));
    }
    // A new or edited spec shows `Reconciling` while it is worked on. observedGeneration keeps its
    // old value until the outcome is known, so waiters never take the old result for the new spec.
    let reconciling;
    let old = if old.is_none() || old.and_then(|s| s.observed_generation) != generation {
        reconciling = status::reconciling(old, &status::now());
        write_status(ctx, &name, old, reconciling.clone()).await?;
        Some(&reconciling)
    } else {
        old
    };
    let period = status::sync_period(repo.spec.sync_period.as_deref());
    let fetch_started = status::now();
    let result = match period {
        Some(_) => run_pipeline(repo, ctx).await,
        None => Err(ReconcileError::InvalidSyncPeriod {
            value: repo.spec.sync_period.clone().unwrap_or_default(),
        }),
    };
    let period = period.unwrap_or(status::DEFAULT_SYNC_PERIOD);
    match result {
        Ok(None) => {
            tracing::debug!(repository = %name, "unchanged: same digest, generation and applied set");
            Ok((
                Action::requeue(status::jitter(period, seed())),
                Outcome::Unchanged,
            ))
        }
        Ok(Some(applied)) => {
            let now = status::now();
            let fetch = FetchStatus {
                // An inline source has no image to name.
                image: Some(applied.fetched.clone()).filter(|f| f != INLINE),
                started_at: Some(fetch_started),
                updated_at: Some(now.clone()),
            };
            let mut new = status::succeeded(old, generation, fetch, applied.package_count, &now);
            new.destination = Some(ctx.destination());
            write_status(ctx, &name, old, new).await?;
            ctx.memo
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name.clone(), applied.memo);
            // The bundle, its documents and the applied objects are gone by now.
            super::memory::release_free_memory();
            let mut note = format!(
                "Applied {} Packages and {} PackageMetadatas from {} to {}",
                applied.package_count,
                applied.metadata_count,
                applied.fetched,
                ctx.destination()
            );
            if applied.pruned > 0 {
                note.push_str(&format!(
                    "; deleted {} no longer in the repository",
                    applied.pruned
                ));
            }
            publish(
                ctx,
                repo,
                EventType::Normal,
                "ReconcileSucceeded",
                "Reconcile",
                note,
            )
            .await;
            if !applied.skipped.is_empty() {
                let list: Vec<String> = applied
                    .skipped
                    .iter()
                    .map(|s| {
                        format!(
                            "{} document {} ({} {})",
                            s.file, s.document, s.api_version, s.kind
                        )
                    })
                    .collect();
                let note = format!(
                    "Skipped {} documents that are not Package or PackageMetadata: {}",
                    list.len(),
                    list.join(", ")
                );
                publish(
                    ctx,
                    repo,
                    EventType::Normal,
                    "DocumentsSkipped",
                    "Reconcile",
                    note,
                )
                .await;
            }
            if !applied.kept_by_others.is_empty() {
                // One Event for all of them: a repository may share hundreds of objects.
                let list: Vec<String> = applied
                    .kept_by_others
                    .iter()
                    .map(|(kind, object, theirs)| format!("{} {object} (from {theirs})", kind.as_str()))
                    .collect();
                let note = format!(
                    "{} objects are kept as another PackageRepository supplies them: {}",
                    list.len(),
                    list.join(", ")
                );
                publish(
                    ctx,
                    repo,
                    EventType::Normal,
                    "SuppliedByAnother",
                    "Reconcile",
                    note,
                )
                .await;
            }
            tracing::info!(repository = %name, packages = applied.package_count, fetched = %applied.fetched, "reconcile succeeded");
            Ok((
                Action::requeue(status::jitter(period, seed())),
                Outcome::Succeeded,
            ))
        }
        Err(error) => {
            ctx.memo.lock().unwrap_or_else(|p| p.into_inner()).remove(&name);
            let new = status::failed(old, generation, &error, &status::now());
            let failures = new.consecutive_reconcile_failures;
            let reason = super::error::short_reason(&error);
            write_status(ctx, &name, old, new).await?;
            publish(
                ctx,
                repo,
                EventType::Warning,
                "ReconcileFailed",
                "Reconcile",
                reason,
            )
            .await;
            tracing::warn!(repository = %name, error = %super::error::full_chain(&error), "reconcile failed");
            Ok((
                Action::requeue(status::backoff(failures, period)),
                Outcome::Failed,
            ))
        }
    }
}

/// A varying number for jitter, without a random-number dependency.
fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64)
}

/// Step 8: delete what this repository alone supplied (objects carrying its label).
async fn cleanup(repo: &PackageRepository, ctx: &Context) -> Result<Action, ReconcileError> {
    let name = repo.name_any();
    let old = repo.status.as_ref();
    let now = status::now();
    let deleting = status::deleting(old, None, &now);
    write_status(ctx, &name, old, deleting.clone()).await?;
    // Another repository may supply some of these objects too; it says so only once reconciled.
    if let Some(repositories) = &ctx.repositories {
        let left = ctx
            .first_pass
            .wait_for_others(repositories, &name, super::first_pass::WAIT)
            .await;
        if !left.is_empty() {
            tracing::info!(repository = %name, not_reconciled = ?left, "deleting without waiting longer for these repositories' first reconcile: objects they also supply are deleted and applied again at their next sync");
        }
    }
    let handover = |kind: Kind, object: &str| ctx.first_sharer(&name, kind, object);
    let deleted = match super::writes::prune(
        &ctx.client,
        ctx.sink(),
        &name,
        &BTreeSet::new(),
        &ctx.own_writes,
        &handover,
    )
    .await
    {
        Ok(deleted) => deleted,
        Err(error) => {
            // Keep the finalizer: the error policy retries, and the status says why.
            write_status(
                ctx,
                &name,
                Some(&deleting),
                status::deleting(old, Some(&error), &now),
            )
            .await?;
            publish(
                ctx,
                repo,
                EventType::Warning,
                "DeleteFailed",
                "Delete",
                super::error::short_reason(&error),
            )
            .await;
            return Err(error);
        }
    };
    ctx.memo.lock().unwrap_or_else(|p| p.into_inner()).remove(&name);
    ctx.departed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name.clone());
    ctx.requeue_sharers(&name, &deleted.released());
    let mut note = format!(
        "Deleted {} Packages and PackageMetadatas this repository supplied",
        deleted.deleted.len()
    );
    if !deleted.handed_over.is_empty() {
        note.push_str(&format!(
            "; {} that other PackageRepositories supply too were handed over to them",
            deleted.handed_over.len()
        ));
    }
    publish(ctx, repo, EventType::Normal, "Deleted", "Delete", note).await;
    tracing::info!(repository = %name, deleted = deleted.deleted.len(), handed_over = deleted.handed_over.len(), "repository deleted");
    Ok(Action::await_change())
}

/// Step 7: one server-side apply of the status, only when its content changed.
async fn write_status(
    ctx: &Context,
    name: &str,
    old: Option<&PackageRepositoryStatus>,
    new: PackageRepositoryStatus,
) -> Result<(), ReconcileError> {
    if old == Some(&new) {
        return Ok(());
    }
    let api: Api<PackageRepository> = Api::all(ctx.client.clone());
    let body = serde_json::json!({
        "apiVersion": crate::api::REPOSITORY_API_VERSION,
        "kind": "PackageRepository",
        "status": new,
    });
    let params = PatchParams::apply(apply::FIELD_MANAGER).force();
    // Bounded, so a stuck API server cannot hold a reconcile slot for the client's long default.
    let written = tokio::time::timeout(
        STATUS_TIMEOUT,
        api.patch_status(name, &params, &Patch::Apply(&body)),
    )
    .await;
    ctx.metrics
        .status_write(written.as_ref().is_ok_and(|r| r.is_ok()));
    match written {
        Ok(result) => result.map(|_| ()).map_err(|source| ReconcileError::Status {
            name: name.to_string(),
            source,
        }),
        Err(_) => Err(ReconcileError::StatusTimeout {
            name: name.to_string(),
            seconds: STATUS_TIMEOUT.as_secs(),
        }),
    }
}

/// Longest wait for one status write.
const STATUS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// An Event about `repo`; failing to record one never fails the reconcile.
async fn publish(
    ctx: &Context,
    repo: &PackageRepository,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = KubeEvent {
        type_,
        reason: reason.to_string(),
        note: Some(super::error::truncate(&note, 1000)),
        action: action.to_string(),
        secondary: None,
    };
    let reference = repo.object_ref(&());
    if let Err(error) = ctx.recorder.publish(&event, &reference).await {
        tracing::warn!(repository = %repo.name_any(), %error, "could not record an Event");
    }
}
