//! One reconcile of one PackageRepository, as the named phases of SPEC Reconcile 1-8:
//! read_secret → resolve → (digest short-cut) → pull → build → apply → prune → report.
use super::apply::{self, Desired, Kind, Overlap};
use super::error::ReconcileError;
use super::secret::{RegistryAuth, read_secret};
use super::source::{Contents, Session, split_image};
use super::status;
use super::{Context, Memo};
use crate::api::{
    FetchStatus, ImageFetch, ImgpkgBundleFetch, InlineFetch, PackageRepository, PackageRepositoryStatus,
};
use crate::repository::{Output, Skipped};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

/// The finalizer that lets pkgr remove what a repository supplied before it goes.
pub const FINALIZER: &str = "pkgr.packaging.carvel.dev/cleanup";

/// What the memo records as "fetched" for an inline source.
const INLINE: &str = "inline";

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
                let (action, o) = apply_repository(&repo, &ctx).await?;
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

/// The source a repository names.
#[derive(Clone, Copy, Debug)]
pub enum SourceSpec<'a> {
    Bundle(&'a ImgpkgBundleFetch),
    Image(&'a ImageFetch),
    Inline(&'a InlineFetch),
}

/// Exactly one of imgpkgBundle, image, inline.
pub fn select_source(repo: &PackageRepository) -> Result<SourceSpec<'_>, ReconcileError> {
    let fetch = &repo.spec.fetch;
    let mut named = Vec::new();
    if let Some(b) = &fetch.imgpkg_bundle {
        named.push(("imgpkgBundle", SourceSpec::Bundle(b)));
    }
    if let Some(i) = &fetch.image {
        named.push(("image", SourceSpec::Image(i)));
    }
    if let Some(i) = &fetch.inline {
        named.push(("inline", SourceSpec::Inline(i)));
    }
    match named.len() {
        0 => Err(ReconcileError::NoSource),
        1 => Ok(named[0].1),
        _ => {
            let names: Vec<_> = named.iter().map(|(n, _)| *n).collect();
            Err(ReconcileError::SeveralSources(format!(
                "{} sources ({})",
                names.len(),
                names.join(" and ")
            )))
        }
    }
}

/// What a full reconcile produced.
struct Applied {
    fetched: String,
    memo: Memo,
    package_count: i64,
    metadata_count: usize,
    skipped: Vec<Skipped>,
    pruned: usize,
    kept_by_others: Vec<(Kind, String, String)>,
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
            let new = status::succeeded(old, generation, fetch, applied.package_count, &now);
            write_status(ctx, &name, old, new).await?;
            ctx.memo
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name.clone(), applied.memo);
            let mut note = format!(
                "Applied {} Packages and {} PackageMetadatas from {}",
                applied.package_count, applied.metadata_count, applied.fetched
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

/// Steps 1-3 for a registry source: credentials, resolve, and (unless the digest short-cut
/// applies, then `None`) pull.
async fn fetch_from_registry(
    repo: &PackageRepository,
    ctx: &Context,
    image: &str,
    secret: Option<&str>,
    selection: Option<&crate::api::VersionSelection>,
    expect_bundle: bool,
) -> Result<Option<(String, Contents)>, ReconcileError> {
    let auth = read_secret_ref(ctx, secret).await?;
    let credentials = credentials_note(ctx, secret);
    let session = ctx.source.session(&auth).map_err(ReconcileError::Session)?;
    let fetched = resolve(session.as_ref(), image, selection, &credentials).await?;
    if unchanged(ctx, repo, &fetched) {
        return Ok(None);
    }
    let contents = pull(session.as_ref(), &fetched, expect_bundle, &credentials).await?;
    Ok(Some((fetched, contents)))
}

/// A varying number for jitter, without a random-number dependency.
fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64)
}

/// Steps 1-6; `None` when the digest short-cut applies.
async fn run_pipeline(repo: &PackageRepository, ctx: &Context) -> Result<Option<Applied>, ReconcileError> {
    let source = select_source(repo)?;
    // Fetching and reading a repository is what takes memory: at most as many at once as the
    // memory budget allows (the applies after it are not bounded by this).
    let permit = ctx.fetches.clone().acquire_owned().await.ok();
    let (fetched, contents) = match source {
        SourceSpec::Inline(inline) => {
            let fetched = INLINE.to_string();
            if unchanged(ctx, repo, &fetched) {
                return Ok(None);
            }
            (
                fetched,
                Contents {
                    is_bundle: false,
                    files: crate::repository::inline_files(&inline.paths),
                    images_lock: None,
                },
            )
        }
        SourceSpec::Bundle(bundle) => {
            let secret = bundle.secret_ref.as_ref().map(|s| s.name.as_str());
            let selection = bundle.tag_selection.as_ref();
            match fetch_from_registry(repo, ctx, &bundle.image, secret, selection, true).await? {
                Some(fetched) => fetched,
                None => return Ok(None),
            }
        }
        SourceSpec::Image(image) => {
            let secret = image.secret_ref.as_ref().map(|s| s.name.as_str());
            let selection = image.tag_selection.as_ref();
            let Some((fetched, mut contents)) =
                fetch_from_registry(repo, ctx, &image.url, secret, selection, false).await?
            else {
                return Ok(None);
            };
            if let Some(sub_path) = image
                .sub_path
                .as_deref()
                .filter(|p| !p.trim_matches('/').is_empty())
            {
                contents.files =
                    crate::repository::sub_path(&contents.files, sub_path).map_err(|reason| {
                        ReconcileError::SubPath {
                            image: fetched.clone(),
                            reason,
                        }
                    })?;
            }
            (fetched, contents)
        }
    };
    if !contents.files.keys().any(|k| k.starts_with("packages/")) {
        return Err(ReconcileError::NoPackagesDirectory { source_name: fetched });
    }
    let output = (ctx.builder)(&contents.files, contents.images_lock.as_ref()).map_err(|source| {
        ReconcileError::Build {
            source_name: fetched.clone(),
            source,
        }
    })?;
    drop(contents);
    drop(permit);
    let mut applied = apply_and_prune(repo, ctx, &output, &fetched).await?;
    applied.fetched = fetched.clone();
    applied.memo.fetched = fetched;
    applied.memo.generation = repo.metadata.generation;
    Ok(Some(applied))
}

/// Which credentials a registry request used, for error messages (never the values).
fn credentials_note(ctx: &Context, secret: Option<&str>) -> String {
    match secret {
        Some(name) => format!(
            " with the credentials of Secret {}/{name}",
            ctx.settings.namespace
        ),
        None => String::new(),
    }
}

/// Step 1: the credentials the repository names (anonymous without a secretRef).
async fn read_secret_ref(ctx: &Context, secret: Option<&str>) -> Result<RegistryAuth, ReconcileError> {
    let Some(name) = secret else {
        return Ok(RegistryAuth::default());
    };
    let namespace = ctx.settings.namespace.clone();
    let missing = || ReconcileError::SecretMissing {
        namespace: namespace.clone(),
        name: name.to_string(),
    };
    if let Some(cache) = &ctx.secrets {
        // The watch cache saves an API read on every resync; a Secret change re-triggers us.
        let secret = cache
            .get(&ObjectRef::new(name).within(&namespace))
            .ok_or_else(missing)?;
        return read_secret(&secret);
    }
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let secret = api
        .get_opt(name)
        .await
        .map_err(|source| ReconcileError::SecretRead {
            namespace: namespace.clone(),
            name: name.to_string(),
            source,
        })?
        .ok_or_else(missing)?;
    read_secret(&secret)
}

/// Step 2: `repository@digest` for `image`, through tagSelection when there is no tag.
pub async fn resolve(
    session: &dyn Session,
    image: &str,
    selection: Option<&crate::api::VersionSelection>,
    credentials: &str,
) -> Result<String, ReconcileError> {
    let parts = split_image(image);
    if let Some(digest) = parts.digest {
        // A digest is immutable: nothing to ask the registry.
        return Ok(format!("{}@{digest}", parts.name));
    }
    let tag = match (parts.tag, selection) {
        (Some(tag), _) => tag,
        (None, Some(selection)) => {
            let tags = list_tags(session, &parts.name, credentials).await?;
            let chosen = crate::repository::versions::select_tag(&tags, selection).map_err(|source| {
                ReconcileError::TagSelection {
                    repository: parts.name.clone(),
                    source,
                }
            })?;
            match chosen {
                Some(tag) => tag.to_string(),
                None => {
                    return Err(ReconcileError::NoTagMatches {
                        repository: parts.name.clone(),
                        available: describe_tags(&tags),
                    });
                }
            }
        }
        (None, None) => "latest".to_string(),
    };
    let tagged = format!("{}:{tag}", parts.name);
    let digest = session
        .resolve(&tagged)
        .await
        .map_err(|source| ReconcileError::Resolve {
            credentials: credentials.to_string(),
            image: tagged.clone(),
            source,
        })?;
    match digest {
        Some(digest) => Ok(format!("{}@{digest}", parts.name)),
        None => {
            let tags = list_tags(session, &parts.name, credentials).await?;
            Err(ReconcileError::TagNotFound {
                repository: parts.name,
                tag,
                available: describe_tags(&tags),
            })
        }
    }
}

async fn list_tags(
    session: &dyn Session,
    repository: &str,
    credentials: &str,
) -> Result<Vec<String>, ReconcileError> {
    session
        .list_tags(repository)
        .await
        .map_err(|source| ReconcileError::ListTags {
            credentials: credentials.to_string(),
            repository: repository.to_string(),
            source,
        })
}

/// The tags a person would pick from: imgpkg internals (`*.imgpkg`) left out, the list bounded.
pub fn describe_tags(tags: &[String]) -> String {
    const SHOWN: usize = 20;
    let visible: Vec<&str> = tags
        .iter()
        .map(String::as_str)
        .filter(|t| !t.ends_with(".imgpkg"))
        .collect();
    if visible.is_empty() {
        return "none".to_string();
    }
    let mut text = visible.iter().take(SHOWN).copied().collect::<Vec<_>>().join(", ");
    if visible.len() > SHOWN {
        text.push_str(&format!(" and {} more", visible.len() - SHOWN));
    }
    text
}

/// The digest short-cut: same fetched digest, same generation, and the applied objects are still
/// there as written (no registry pull, no API call). After a restart the memo is rebuilt from
/// what the cluster records (the status and the applied-set annotations).
fn unchanged(ctx: &Context, repo: &PackageRepository, fetched: &str) -> bool {
    let repository = repo.name_any();
    let generation = repo.metadata.generation;
    let mut memos = ctx.memo.lock().unwrap_or_else(|p| p.into_inner());
    if !memos.contains_key(&repository) {
        match memo_from_cluster(ctx, repo, fetched) {
            Some(memo) => {
                tracing::debug!(repository = %repository, "digest short-cut rebuilt from the status and the applied objects");
                memos.insert(repository.clone(), memo);
            }
            None => return false,
        }
    }
    let Some(memo) = memos.get(&repository) else {
        return false;
    };
    if memo.fetched != fetched || memo.generation != generation {
        return false;
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

/// Every object the memo lists is in the caches at the version written, and nothing else carries
/// this repository's label.
pub fn applied_set_intact(ctx: &Context, repository: &str, memo: &Memo) -> bool {
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
    for ((kind, name), written) in &memo.applied {
        match (cached(*kind, name), written) {
            (None, _) => return false,
            (Some((seen, _)), Some(written)) if seen.as_ref() != Some(written) => return false,
            // Kept by another repository that has since been deleted: ours to apply now.
            (Some((_, Some(owner))), None) if departed(ctx, &owner) => return false,
            _ => {}
        }
    }
    let label = apply::label_value(repository);
    let ours = |labels: &BTreeMap<String, String>| labels.get(apply::REPOSITORY_LABEL) == Some(&label);
    let labelled = ctx.packages.state().iter().filter(|p| ours(p.labels())).count()
        + ctx.metadatas.state().iter().filter(|p| ours(p.labels())).count();
    labelled == memo.applied.values().filter(|rv| rv.is_some()).count()
}

/// Step 3: pull; a bundle must be one, a plain image is never read as a bundle.
async fn pull(
    session: &dyn Session,
    image: &str,
    expect_bundle: bool,
    credentials: &str,
) -> Result<Contents, ReconcileError> {
    let mut contents = session
        .fetch(image, expect_bundle)
        .await
        .map_err(|source| ReconcileError::Fetch {
            credentials: credentials.to_string(),
            image: image.to_string(),
            source,
        })?;
    if expect_bundle && !contents.is_bundle {
        return Err(ReconcileError::NotBundle {
            image: image.to_string(),
        });
    }
    if !expect_bundle {
        contents.images_lock = None;
    }
    Ok(contents)
}

/// Step 6: ownership and overlap rules, parallel server-side apply, prune.
async fn apply_and_prune(
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
fn cached_meta(ctx: &Context, kind: Kind, name: &str) -> Option<kube::api::ObjectMeta> {
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
async fn read_full(
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
fn first_sharer(ctx: &Context, repository: &str, kind: Kind, object: &str) -> Option<String> {
    super::sharers(&ctx.memo, repository, &[(kind, object.to_string())])
        .into_iter()
        .find(|other| !departed(ctx, other))
}

/// Step 8: delete what this repository alone supplied (objects carrying its label).
async fn cleanup(repo: &PackageRepository, ctx: &Context) -> Result<Action, ReconcileError> {
    let name = repo.name_any();
    let old = repo.status.as_ref();
    let now = status::now();
    let deleting = status::deleting(old, None, &now);
    write_status(ctx, &name, old, deleting.clone()).await?;
    let handover = |kind: Kind, object: &str| first_sharer(ctx, &name, kind, object);
    let deleted = match apply::prune(&ctx.client, &name, &BTreeSet::new(), &ctx.own_writes, &handover).await {
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
    requeue_sharers(ctx, &name, &deleted.released());
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

/// Was PackageRepository `name` deleted (and not created again) since this controller started?
fn departed(ctx: &Context, name: &str) -> bool {
    ctx.departed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(name)
}

/// Another repository that supplies an object this one just deleted applies it again now, rather
/// than at its next sync (the watch event of the deletion is filtered as pkgr's own echo).
fn requeue_sharers(ctx: &Context, repository: &str, deleted: &[(Kind, String)]) {
    if deleted.is_empty() {
        return;
    }
    let Some(requeue) = &ctx.requeue else { return };
    for other in super::sharers(&ctx.memo, repository, deleted) {
        tracing::info!(repository = %other, deleted_by = %repository, "reconciling a repository that shares deleted objects");
        let _ = requeue.send(ObjectRef::new(&other));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::source::{BoxFuture, SourceError};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Tags {
        tags: Vec<(String, String)>,
        calls: Mutex<Vec<String>>,
    }

    impl Session for Tags {
        fn resolve<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<Option<String>, SourceError>> {
            self.calls.lock().unwrap().push(format!("resolve {image}"));
            let found = self
                .tags
                .iter()
                .find(|(t, _)| image.ends_with(&format!(":{t}")))
                .map(|(_, d)| d.clone());
            Box::pin(async move { Ok(found) })
        }
        fn list_tags<'a>(&'a self, repository: &'a str) -> BoxFuture<'a, Result<Vec<String>, SourceError>> {
            self.calls.lock().unwrap().push(format!("list {repository}"));
            let tags = self.tags.iter().map(|(t, _)| t.clone()).collect();
            Box::pin(async move { Ok(tags) })
        }
        fn fetch<'a>(&'a self, _: &'a str, _: bool) -> BoxFuture<'a, Result<Contents, SourceError>> {
            Box::pin(async move { Err(SourceError::Other("not used".into())) })
        }
    }

    #[tokio::test]
    async fn resolve_digest_tag_and_latest() {
        let session = Tags {
            tags: vec![
                ("latest".into(), "sha256:l".into()),
                ("1.0.0".into(), "sha256:a".into()),
            ],
            ..Default::default()
        };
        assert_eq!(
            resolve(&session, "r.example/x@sha256:d", None, "").await.unwrap(),
            "r.example/x@sha256:d"
        );
        assert!(
            session.calls.lock().unwrap().is_empty(),
            "a digest needs no registry request"
        );
        assert_eq!(
            resolve(&session, "r.example/x:1.0.0", None, "").await.unwrap(),
            "r.example/x@sha256:a"
        );
        assert_eq!(
            resolve(&session, "r.example:5000/x", None, "").await.unwrap(),
            "r.example:5000/x@sha256:l"
        );
        assert_eq!(
            *session.calls.lock().unwrap(),
            ["resolve r.example/x:1.0.0", "resolve r.example:5000/x:latest"]
        );
    }

    #[tokio::test]
    async fn missing_tag_lists_what_exists() {
        let mut tags: Vec<(String, String)> = (0..25)
            .map(|i| (format!("1.{i}.0"), "sha256:a".to_string()))
            .collect();
        tags.push(("sha256-abc.imgpkg".into(), "sha256:b".into()));
        let session = Tags {
            tags,
            ..Default::default()
        };
        let err = resolve(&session, "r.example/x:2.0.0", None, "")
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("tag \"2.0.0\" not found in r.example/x; tags there: 1.0.0, 1.1.0"),
            "{text}"
        );
        assert!(text.ends_with("and 5 more"), "{text}");
        assert!(!text.contains(".imgpkg"));
        assert_eq!(describe_tags(&["a.imgpkg".to_string()]), "none");
    }

    #[test]
    fn sources() {
        let repo = |fetch: serde_json::Value| -> PackageRepository {
            serde_json::from_value(
                serde_json::json!({"apiVersion": "install.package.carvel.dev/v1alpha1",
                "kind": "PackageRepository", "metadata": {"name": "a"}, "spec": {"fetch": fetch}}),
            )
            .unwrap()
        };
        assert!(matches!(
            select_source(&repo(serde_json::json!({"inline": {"paths": {}}}))),
            Ok(SourceSpec::Inline(_))
        ));
        let all =
            repo(serde_json::json!({"inline": {}, "image": {"url": "x"}, "imgpkgBundle": {"image": "y"}}));
        assert_eq!(
            select_source(&all).unwrap_err().to_string(),
            "spec.fetch names 3 sources (imgpkgBundle and image and inline): set exactly one of imgpkgBundle, image or inline"
        );
    }
}
