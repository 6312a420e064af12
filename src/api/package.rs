//! `data.packaging.carvel.dev/v1alpha1` Package and PackageMetadata, following upstream's fields.
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const DATA_GROUP: &str = "data.packaging.carvel.dev";
pub const DATA_VERSION: &str = "v1alpha1";
pub const DATA_API_VERSION: &str = "data.packaging.carvel.dev/v1alpha1";

/// One version of a package. The object name is `refName + "." + version`, stored under a
/// deterministic DNS-1123 form (annotation `pkgr.carvel.dev/original-name` holds the original)
/// when the version carries semver build metadata (`+`) or upper-case letters.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[kube(
    group = "data.packaging.carvel.dev",
    version = "v1alpha1",
    kind = "Package",
    plural = "packages",
    shortname = "pkg",
    category = "carvel",
    printcolumn = r#"{"name":"PackageMetadata name","type":"string","jsonPath":".spec.refName"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".spec.version"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PackageSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ref_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
    /// RFC 3339 time, stored in UTC with whole seconds (as kapp-controller's metav1.Time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_requirements_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_notes: Option<String>,
    /// The App template (`spec: {fetch, template, deploy, ...}`), kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub template: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub values_schema: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_software: Vec<IncludedSoftware>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kapp_controller_version_selection: Option<ConstraintSelection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version_selection: Option<ConstraintSelection>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct IncludedSoftware {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
pub struct ConstraintSelection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<String>,
}

/// What a package is, shared by all its versions. Named by the package's `refName`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[kube(
    group = "data.packaging.carvel.dev",
    version = "v1alpha1",
    kind = "PackageMetadata",
    plural = "packagemetadatas",
    shortname = "pkgm",
    category = "carvel",
    printcolumn = r#"{"name":"Display name","type":"string","jsonPath":".spec.displayName"}"#,
    printcolumn = r#"{"name":"Categories","type":"string","jsonPath":".spec.categories"}"#,
    printcolumn = r#"{"name":"Short description","type":"string","jsonPath":".spec.shortDescription"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PackageMetadataSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "iconSVGBase64")]
    pub icon_svg_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintainers: Vec<Maintainer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_description: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
pub struct Maintainer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An object whose fields are kept as written (`x-kubernetes-preserve-unknown-fields`).
pub(crate) fn preserve_unknown_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}
