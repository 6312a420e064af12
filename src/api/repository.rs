//! `install.package.carvel.dev/v1alpha1` PackageRepository: where a repository comes from, and
//! what the controller last made of it.
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const REPOSITORY_GROUP: &str = "install.package.carvel.dev";
pub const REPOSITORY_API_VERSION: &str = "install.package.carvel.dev/v1alpha1";

/// A Carvel package repository to keep applied in the cluster.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[kube(
    group = "install.package.carvel.dev",
    version = "v1alpha1",
    kind = "PackageRepository",
    plural = "packagerepositories",
    shortname = "pkgr",
    category = "carvel",
    status = "PackageRepositoryStatus",
    printcolumn = r#"{"name":"Packages","type":"integer","jsonPath":".status.packageCount"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Description","type":"string","jsonPath":".status.friendlyDescription"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PackageRepositorySpec {
    /// Where the repository contents come from: exactly one source.
    pub fetch: Fetch,
    /// How often to check the source for changes (Go duration, default 5m, at least 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "go_duration_schema")]
    pub sync_period: Option<String>,
    /// Stop reconciling; deletion still works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct Fetch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imgpkg_bundle: Option<ImgpkgBundleFetch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageFetch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<InlineFetch>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ImgpkgBundleFetch {
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_selection: Option<VersionSelection>,
    /// pkgr's addition: apply nothing unless the bundle is signed (cosign, public keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verify>,
}

/// Offline signature verification before anything is applied (Flux OCIRepository's shape).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct Verify {
    /// `cosign`: the `sha256-<hex>.sig` signature next to the image, checked with public keys.
    #[schemars(schema_with = "cosign_provider_schema")]
    pub provider: String,
    /// A Secret in the controller's namespace: every key whose name ends in `.pub` is a PEM
    /// public key (ECDSA P-256/P-384, RSA, Ed25519); one of them must verify a signature.
    pub secret_ref: SecretRef,
    /// Annotations the signature's payload must carry (cosign's `-a key=value`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_annotations: BTreeMap<String, String>,
}

fn cosign_provider_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["cosign"]})
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct ImageFetch {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_selection: Option<VersionSelection>,
    /// pkgr's addition: apply nothing unless the image is signed (cosign, public keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verify>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
pub struct InlineFetch {
    /// File path → file content.
    #[serde(default)]
    pub paths: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
pub struct SecretRef {
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
pub struct VersionSelection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<SemverSelection>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
pub struct SemverSelection {
    /// For example `>=1.0.0 <2.0.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prereleases: Option<Prereleases>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
pub struct Prereleases {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct PackageRepositoryStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friendly_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub useful_error_message: Option<String>,
    #[serde(default)]
    pub consecutive_reconcile_successes: i64,
    #[serde(default)]
    pub consecutive_reconcile_failures: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch: Option<FetchStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_count: Option<i64>,
    /// Where the last successful reconcile delivered the Packages: pkgr's cluster-scoped CRDs,
    /// or kapp-controller's global packaging namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

/// What the last fetch resolved.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct FetchStatus {
    /// The resolved `image@sha256:…` (empty for inline sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// Condition types a PackageRepository reports.
pub const CONDITION_RECONCILING: &str = "Reconciling";
pub const CONDITION_RECONCILE_SUCCEEDED: &str = "ReconcileSucceeded";
pub const CONDITION_RECONCILE_FAILED: &str = "ReconcileFailed";
pub const CONDITION_DELETING: &str = "Deleting";
pub const CONDITION_DELETE_FAILED: &str = "DeleteFailed";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// A Go duration such as `5m` or `1h30m` (validated by pattern: Kubernetes 1.24 has no CEL).
fn go_duration_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "pattern": "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
    })
}

/// Conditions are a list-map keyed by `type`, so server-side apply merges them per type.
fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let item = generator.subschema_for::<Condition>();
    schemars::json_schema!({
        "type": "array",
        "items": item,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"]
    })
}
