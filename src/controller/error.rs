//! Why a reconcile failed: one error per thing that can go wrong, each naming what and where.
use super::source::SourceError;
use crate::repository::RepositoryError;

/// A failed reconcile of one PackageRepository. The `Display` of the top level is the short
/// reason shown in `kubectl get pkgr`; the source chain goes to `usefulErrorMessage`.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("spec.fetch names no source: set exactly one of imgpkgBundle, image or inline")]
    NoSource,
    #[error("spec.fetch names {0}: set exactly one of imgpkgBundle, image or inline")]
    SeveralSources(String),
    #[error("spec.syncPeriod {value:?} is not a Go duration such as 30s, 5m or 1h30m")]
    InvalidSyncPeriod { value: String },
    #[error(
        "Secret {namespace}/{name} named by {field} does not exist; create it in namespace \
         {namespace}"
    )]
    SecretMissing {
        namespace: String,
        name: String,
        /// Where the repository names it: `spec.fetch secretRef` (credentials) or the verify
        /// block's secretRef (keys).
        field: &'static str,
    },
    #[error(
        "Secret {namespace}/{name} has unknown key {key:?}: use username+password, token, \
         hostname with username+password or token, or a Secret of type kubernetes.io/dockerconfigjson"
    )]
    SecretUnknownKey {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("Secret {namespace}/{name} cannot be used for registry credentials: {reason}")]
    SecretInvalid {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error("reading Secret {namespace}/{name}")]
    SecretRead {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("preparing a registry client")]
    Session(#[source] SourceError),
    #[error("resolving {image}{credentials}")]
    Resolve {
        image: String,
        /// ` with the credentials of Secret ns/name`, or empty when anonymous.
        credentials: String,
        #[source]
        source: SourceError,
    },
    #[error("listing the tags of {repository}{credentials}")]
    ListTags {
        repository: String,
        credentials: String,
        #[source]
        source: SourceError,
    },
    #[error("tag {tag:?} not found in {repository}; tags there: {available}")]
    TagNotFound {
        repository: String,
        tag: String,
        available: String,
    },
    #[error("no tag of {repository} matches spec tagSelection; tags there: {available}")]
    NoTagMatches { repository: String, available: String },
    #[error("applying spec tagSelection to the tags of {repository}")]
    TagSelection {
        repository: String,
        #[source]
        source: RepositoryError,
    },
    #[error("fetching {image}{credentials}")]
    Fetch {
        image: String,
        credentials: String,
        #[source]
        source: SourceError,
    },
    #[error(
        "{image} is not an imgpkg bundle (its config has no dev.carvel.imgpkg.bundle label); \
         use spec.fetch.image for a plain image"
    )]
    NotBundle { image: String },
    /// `reason` (not `source`) so the short reason in `kubectl get pkgr` says what is wrong.
    #[error("spec.fetch.image.subPath of {image}: {reason}")]
    SubPath { image: String, reason: RepositoryError },
    #[error(
        "the repository contents of {source_name} have no packages/ directory; put the Package \
         and PackageMetadata YAML under packages/"
    )]
    NoPackagesDirectory { source_name: String },
    #[error("reading the Packages of {source_name}")]
    Build {
        source_name: String,
        #[source]
        source: super::BuildError,
    },
    #[error(
        "{kind} {name} is supplied by both PackageRepository {ours} and {theirs}, which differ in \
         {field}; make them identical, or give the one that should win a higher \
         packaging.carvel.dev/revision annotation"
    )]
    Conflict {
        kind: &'static str,
        name: String,
        ours: String,
        theirs: String,
        field: String,
    },
    #[error(
        "{kind} {name} already exists and was not applied by a PackageRepository (written by {writers}); \
         pkgr does not take over objects it did not create: delete it (kubectl delete {plural} {name}{namespace}) \
         or remove it from this repository{}",
        more_such(*.others)
    )]
    NotApplied {
        kind: &'static str,
        plural: &'static str,
        /// ` -n NAMESPACE` beside kapp-controller, else empty.
        namespace: String,
        name: String,
        writers: String,
        others: usize,
    },
    #[error(
        "{kind} {name} is already supplied by kapp-controller's PackageRepository {holder}; pkgr \
         never writes over or deletes what kapp-controller deployed: remove it from one of the two \
         repositories, or delete kapp-controller's PackageRepository {holder}{}",
        more_such(*.others)
    )]
    HeldByKappController {
        kind: &'static str,
        name: String,
        holder: String,
        others: usize,
    },
    #[error(
        "kapp-controller's global packaging namespace {namespace} does not exist (named by the \
         annotation packaging.carvel.dev/global-namespace on the CustomResourceDefinition \
         packagerepositories.packaging.carvel.dev, or kapp-controller's default); create it, or \
         correct the annotation. Nothing was applied"
    )]
    GlobalNamespaceMissing { namespace: String },
    #[error("checking kapp-controller's global packaging namespace {namespace}")]
    GlobalNamespaceRead {
        namespace: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error(
        "the repository's {objects} Packages and PackageMetadatas ({json_mib} MiB as JSON) need \
         about {needed_mib} MiB to apply and keep track of, more than the {allowance_mib} MiB the \
         controller's memory budget gives one reconcile; nothing was applied. Raise the memory \
         limit of the pkgr-controller Deployment (resources.limits.memory; its budget is that \
         limit less 48 MiB, or PKGR_MEMORY_BUDGET), or split the repository"
    )]
    OverBudget {
        objects: usize,
        json_mib: u64,
        needed_mib: u64,
        allowance_mib: u64,
    },
    #[error(
        "{image} is not signed by any key of Secret {namespace}/{name} (spec.fetch verify); \
         nothing was applied: {reason}"
    )]
    NotVerified {
        image: String,
        namespace: String,
        name: String,
        reason: String,
    },
    #[error("Secret {namespace}/{name} named by spec.fetch verify.secretRef: {reason}")]
    VerifyKeys {
        namespace: String,
        name: String,
        reason: String,
    },
    #[error("handing {kind} {name} over to PackageRepository {to}, which supplies it too")]
    HandOver {
        kind: &'static str,
        name: String,
        to: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("reading {kind} {name}, which PackageRepository {theirs} supplies, to compare it")]
    ReadShared {
        kind: &'static str,
        name: String,
        theirs: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("applying {kind} {name}{}", more_failures(*.others))]
    Apply {
        kind: &'static str,
        name: String,
        others: usize,
        #[source]
        source: kube::Error,
    },
    #[error("listing the {kind}s labelled for PackageRepository {repository}")]
    List {
        kind: &'static str,
        repository: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting {kind} {name}")]
    Delete {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the status of PackageRepository {name}")]
    Status {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the status of PackageRepository {name} took longer than {seconds}s")]
    StatusTimeout { name: String, seconds: u64 },
    #[error("serialising {what}")]
    Serialize {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the PackageRepository has no metadata.name")]
    Unnamed,
    #[error("managing the finalizer of PackageRepository {name}")]
    Finalizer {
        name: String,
        #[source]
        source: Box<kube::runtime::finalizer::Error<ReconcileError>>,
    },
}

fn more_such(others: usize) -> String {
    match others {
        0 => String::new(),
        n => format!(" ({n} more objects of this repository are in the same situation)"),
    }
}

fn more_failures(others: usize) -> String {
    if others == 0 {
        String::new()
    } else {
        format!(" (and {others} more failed)")
    }
}

/// Largest `usefulErrorMessage` stored in status.
pub const MAX_ERROR_MESSAGE: usize = 8 * 1024;
/// Largest short reason in `friendlyDescription`.
pub const MAX_SHORT_REASON: usize = 300;

/// The short reason: the top message, plus the root cause when there is one (the top alone,
/// "fetching X", does not say what went wrong). Registry errors are worded for a cluster user.
pub fn short_reason(error: &(dyn std::error::Error + 'static)) -> String {
    let top = super::audience::link_text(error);
    let text = match super::audience::root(error) {
        Some(root) => format!("{top}: {root}"),
        None => top,
    };
    truncate(&text, MAX_SHORT_REASON)
}

/// The whole chain, `top: cause: cause`, bounded; registry errors worded for a cluster user.
pub fn full_chain(error: &(dyn std::error::Error + 'static)) -> String {
    truncate(&super::audience::chain(error), MAX_ERROR_MESSAGE)
}

/// Cut at a char boundary at most `max` bytes long, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let marker = " …(truncated)";
    let mut end = max.saturating_sub(marker.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{marker}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_and_short_reason() {
        let error = ReconcileError::Fetch {
            image: "r.example/app@sha256:1".into(),
            credentials: String::new(),
            source: SourceError::Other("401 Unauthorized".into()),
        };
        assert_eq!(
            short_reason(&error),
            "fetching r.example/app@sha256:1: 401 Unauthorized"
        );
        assert_eq!(
            full_chain(&error),
            "fetching r.example/app@sha256:1: 401 Unauthorized"
        );
        assert_eq!(
            short_reason(&ReconcileError::NoSource),
            ReconcileError::NoSource.to_string()
        );
    }

    #[test]
    fn truncation_is_bounded_and_char_safe() {
        let long = "é".repeat(10_000);
        let cut = truncate(&long, MAX_ERROR_MESSAGE);
        assert!(cut.len() <= MAX_ERROR_MESSAGE);
        assert!(cut.ends_with("(truncated)"));
        assert_eq!(truncate("short", 10), "short");
    }
}
