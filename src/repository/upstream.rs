//! kapp-controller's Go types for Package and PackageMetadata specs, field by field, as
//! [`gojson`](super::gojson) reads them. Sources: `pkg/apiserver/apis/datapackaging/v1alpha1/
//! types.go` (PackageSpec, PackageMetadataSpec), `pkg/apis/kappctrl/v1alpha1/types*.go` (the App
//! spec a Package's `template.spec` is), vendir's `versions/v1alpha1` (VersionSelection).
//! Every field is `omitempty`.
use super::gojson::{Field, GoStruct, Ty};

static LOCAL_REF: GoStruct = GoStruct {
    name: "AppFetchLocalRef",
    fields: &[Field::value("name", Ty::String)],
};

static PRERELEASES: GoStruct = GoStruct {
    name: "VersionSelectionSemverPrereleases",
    fields: &[Field::value("identifiers", Ty::List(&Ty::String))],
};

static SEMVER: GoStruct = GoStruct {
    name: "VersionSelectionSemver",
    fields: &[
        Field::value("constraints", Ty::String),
        Field::pointer("prereleases", Ty::Struct(&PRERELEASES)),
    ],
};

static VERSION_SELECTION: GoStruct = GoStruct {
    name: "VersionSelection",
    fields: &[Field::pointer("semver", Ty::Struct(&SEMVER))],
};

static INLINE_SOURCE_REF: GoStruct = GoStruct {
    name: "AppFetchInlineSourceRef",
    fields: &[
        Field::value("directoryPath", Ty::String),
        Field::value("name", Ty::String),
    ],
};

static INLINE_SOURCE: GoStruct = GoStruct {
    name: "AppFetchInlineSource",
    fields: &[
        Field::pointer("secretRef", Ty::Struct(&INLINE_SOURCE_REF)),
        Field::pointer("configMapRef", Ty::Struct(&INLINE_SOURCE_REF)),
    ],
};

static FETCH_INLINE: GoStruct = GoStruct {
    name: "AppFetchInline",
    fields: &[
        Field::value("paths", Ty::StringMap),
        Field::value("pathsFrom", Ty::List(&Ty::Struct(&INLINE_SOURCE))),
    ],
};

static FETCH_IMAGE: GoStruct = GoStruct {
    name: "AppFetchImage",
    fields: &[
        Field::value("url", Ty::String),
        Field::pointer("tagSelection", Ty::Struct(&VERSION_SELECTION)),
        Field::pointer("secretRef", Ty::Struct(&LOCAL_REF)),
        Field::value("subPath", Ty::String),
    ],
};

static FETCH_HTTP: GoStruct = GoStruct {
    name: "AppFetchHTTP",
    fields: &[
        Field::value("url", Ty::String),
        Field::value("sha256", Ty::String),
        Field::pointer("secretRef", Ty::Struct(&LOCAL_REF)),
        Field::value("subPath", Ty::String),
    ],
};

static FETCH_GIT: GoStruct = GoStruct {
    name: "AppFetchGit",
    fields: &[
        Field::value("url", Ty::String),
        Field::value("ref", Ty::String),
        Field::pointer("refSelection", Ty::Struct(&VERSION_SELECTION)),
        Field::pointer("secretRef", Ty::Struct(&LOCAL_REF)),
        Field::value("subPath", Ty::String),
        Field::value("lfsSkipSmudge", Ty::Bool),
        Field::value("dangerousSkipTLSVerify", Ty::Bool),
    ],
};

static HELM_CHART_REPO: GoStruct = GoStruct {
    name: "AppFetchHelmChartRepo",
    fields: &[
        Field::value("url", Ty::String),
        Field::pointer("secretRef", Ty::Struct(&LOCAL_REF)),
    ],
};

static FETCH_HELM_CHART: GoStruct = GoStruct {
    name: "AppFetchHelmChart",
    fields: &[
        Field::value("name", Ty::String),
        Field::value("version", Ty::String),
        Field::pointer("repository", Ty::Struct(&HELM_CHART_REPO)),
    ],
};

static FETCH_IMGPKG_BUNDLE: GoStruct = GoStruct {
    name: "AppFetchImgpkgBundle",
    fields: &[
        Field::value("image", Ty::String),
        Field::pointer("tagSelection", Ty::Struct(&VERSION_SELECTION)),
        Field::pointer("secretRef", Ty::Struct(&LOCAL_REF)),
    ],
};

static FETCH: GoStruct = GoStruct {
    name: "AppFetch",
    fields: &[
        Field::pointer("inline", Ty::Struct(&FETCH_INLINE)),
        Field::pointer("image", Ty::Struct(&FETCH_IMAGE)),
        Field::pointer("http", Ty::Struct(&FETCH_HTTP)),
        Field::pointer("git", Ty::Struct(&FETCH_GIT)),
        Field::pointer("helmChart", Ty::Struct(&FETCH_HELM_CHART)),
        Field::pointer("imgpkgBundle", Ty::Struct(&FETCH_IMGPKG_BUNDLE)),
        Field::value("path", Ty::String),
    ],
};

static VALUES_SOURCE_REF: GoStruct = GoStruct {
    name: "AppTemplateValuesSourceRef",
    fields: &[Field::value("name", Ty::String)],
};

static VERSION: GoStruct = GoStruct {
    name: "Version",
    fields: &[Field::value("version", Ty::String)],
};

static KUBERNETES_APIS: GoStruct = GoStruct {
    name: "KubernetesAPIs",
    fields: &[Field::value("groupVersions", Ty::List(&Ty::String))],
};

static DOWNWARD_API_ITEM: GoStruct = GoStruct {
    name: "AppTemplateValuesDownwardAPIItem",
    fields: &[
        Field::value("name", Ty::String),
        Field::value("fieldPath", Ty::String),
        Field::pointer("kubernetesVersion", Ty::Struct(&VERSION)),
        Field::pointer("kappControllerVersion", Ty::Struct(&VERSION)),
        Field::pointer("kubernetesAPIs", Ty::Struct(&KUBERNETES_APIS)),
    ],
};

static DOWNWARD_API: GoStruct = GoStruct {
    name: "AppTemplateValuesDownwardAPI",
    fields: &[Field::value("items", Ty::List(&Ty::Struct(&DOWNWARD_API_ITEM)))],
};

static VALUES_SOURCE: GoStruct = GoStruct {
    name: "AppTemplateValuesSource",
    fields: &[
        Field::pointer("secretRef", Ty::Struct(&VALUES_SOURCE_REF)),
        Field::pointer("configMapRef", Ty::Struct(&VALUES_SOURCE_REF)),
        Field::value("path", Ty::String),
        Field::pointer("downwardAPI", Ty::Struct(&DOWNWARD_API)),
    ],
};

static YTT: GoStruct = GoStruct {
    name: "AppTemplateYtt",
    fields: &[
        Field::value("ignoreUnknownComments", Ty::Bool),
        Field::value("strict", Ty::Bool),
        Field::pointer("inline", Ty::Struct(&FETCH_INLINE)),
        Field::value("paths", Ty::List(&Ty::String)),
        Field::value("fileMarks", Ty::List(&Ty::String)),
        Field::value("valuesFrom", Ty::List(&Ty::Struct(&VALUES_SOURCE))),
    ],
};

static KBLD: GoStruct = GoStruct {
    name: "AppTemplateKbld",
    fields: &[Field::value("paths", Ty::List(&Ty::String))],
};

static HELM_TEMPLATE: GoStruct = GoStruct {
    name: "AppTemplateHelmTemplate",
    fields: &[
        Field::value("name", Ty::String),
        Field::value("namespace", Ty::String),
        Field::value("path", Ty::String),
        Field::value("valuesFrom", Ty::List(&Ty::Struct(&VALUES_SOURCE))),
        Field::pointer("kubernetesVersion", Ty::Struct(&VERSION)),
        Field::pointer("kubernetesAPIs", Ty::Struct(&KUBERNETES_APIS)),
    ],
};

/// `AppTemplateKustomize` and `AppTemplateJsonnet` have no fields (not implemented upstream).
static EMPTY_KUSTOMIZE: GoStruct = GoStruct {
    name: "AppTemplateKustomize",
    fields: &[],
};

static EMPTY_JSONNET: GoStruct = GoStruct {
    name: "AppTemplateJsonnet",
    fields: &[],
};

static SOPS_KEYS_REF: GoStruct = GoStruct {
    name: "AppTemplateSopsPrivateKeysSecretRef",
    fields: &[Field::value("name", Ty::String)],
};

static SOPS_PGP: GoStruct = GoStruct {
    name: "AppTemplateSopsPGP",
    fields: &[Field::pointer("privateKeysSecretRef", Ty::Struct(&SOPS_KEYS_REF))],
};

static SOPS_AGE: GoStruct = GoStruct {
    name: "AppTemplateSopsAge",
    fields: &[Field::pointer("privateKeysSecretRef", Ty::Struct(&SOPS_KEYS_REF))],
};

static SOPS: GoStruct = GoStruct {
    name: "AppTemplateSops",
    fields: &[
        Field::pointer("pgp", Ty::Struct(&SOPS_PGP)),
        Field::value("paths", Ty::List(&Ty::String)),
        Field::pointer("age", Ty::Struct(&SOPS_AGE)),
    ],
};

static CUE: GoStruct = GoStruct {
    name: "AppTemplateCue",
    fields: &[
        Field::value("paths", Ty::List(&Ty::String)),
        Field::value("valuesFrom", Ty::List(&Ty::Struct(&VALUES_SOURCE))),
        Field::value("inputExpression", Ty::String),
        Field::value("outputExpression", Ty::String),
    ],
};

static TEMPLATE_STEP: GoStruct = GoStruct {
    name: "AppTemplate",
    fields: &[
        Field::pointer("ytt", Ty::Struct(&YTT)),
        Field::pointer("kbld", Ty::Struct(&KBLD)),
        Field::pointer("helmTemplate", Ty::Struct(&HELM_TEMPLATE)),
        Field::pointer("kustomize", Ty::Struct(&EMPTY_KUSTOMIZE)),
        Field::pointer("jsonnet", Ty::Struct(&EMPTY_JSONNET)),
        Field::pointer("sops", Ty::Struct(&SOPS)),
        Field::pointer("cue", Ty::Struct(&CUE)),
    ],
};

static KAPP_RAW_OPTIONS: GoStruct = GoStruct {
    name: "AppDeployKappInspect",
    fields: &[Field::value("rawOptions", Ty::List(&Ty::String))],
};

static KAPP_DELETE: GoStruct = GoStruct {
    name: "AppDeployKappDelete",
    fields: &[Field::value("rawOptions", Ty::List(&Ty::String))],
};

static KAPP: GoStruct = GoStruct {
    name: "AppDeployKapp",
    fields: &[
        Field::value("intoNs", Ty::String),
        Field::value("mapNs", Ty::List(&Ty::String)),
        Field::value("rawOptions", Ty::List(&Ty::String)),
        Field::pointer("inspect", Ty::Struct(&KAPP_RAW_OPTIONS)),
        Field::pointer("delete", Ty::Struct(&KAPP_DELETE)),
    ],
};

static DEPLOY_STEP: GoStruct = GoStruct {
    name: "AppDeploy",
    fields: &[Field::pointer("kapp", Ty::Struct(&KAPP))],
};

static CLUSTER_SECRET_REF: GoStruct = GoStruct {
    name: "AppClusterKubeconfigSecretRef",
    fields: &[Field::value("name", Ty::String), Field::value("key", Ty::String)],
};

static CLUSTER: GoStruct = GoStruct {
    name: "AppCluster",
    fields: &[
        Field::value("namespace", Ty::String),
        Field::pointer("kubeconfigSecretRef", Ty::Struct(&CLUSTER_SECRET_REF)),
    ],
};

/// kapp-controller's `AppSpec`: what a Package's `spec.template.spec` is decoded as.
pub(crate) static APP_SPEC: GoStruct = GoStruct {
    name: "AppSpec",
    fields: &[
        Field::value("serviceAccountName", Ty::String),
        Field::pointer("cluster", Ty::Struct(&CLUSTER)),
        Field::value("fetch", Ty::List(&Ty::Struct(&FETCH))),
        Field::value("template", Ty::List(&Ty::Struct(&TEMPLATE_STEP))),
        Field::value("deploy", Ty::List(&Ty::Struct(&DEPLOY_STEP))),
        Field::value("paused", Ty::Bool),
        Field::value("canceled", Ty::Bool),
        Field::pointer("syncPeriod", Ty::Duration),
        Field::value("noopDelete", Ty::Bool),
        Field::value("defaultNamespace", Ty::String),
    ],
};

static APP_TEMPLATE_SPEC: GoStruct = GoStruct {
    name: "AppTemplateSpec",
    fields: &[Field::pointer("spec", Ty::Struct(&APP_SPEC))],
};

static VALUES_SCHEMA: GoStruct = GoStruct {
    name: "ValuesSchema",
    fields: &[Field::value("openAPIv3", Ty::RawObject)],
};

static INCLUDED_SOFTWARE: GoStruct = GoStruct {
    name: "IncludedSoftware",
    fields: &[
        Field::value("displayName", Ty::String),
        Field::value("version", Ty::String),
        Field::value("description", Ty::String),
    ],
};

static CONSTRAINT_SELECTION: GoStruct = GoStruct {
    name: "VersionSelection",
    fields: &[Field::value("constraints", Ty::String)],
};

/// `PackageSpec` (data.packaging.carvel.dev/v1alpha1).
pub(crate) static PACKAGE_SPEC: GoStruct = GoStruct {
    name: "PackageSpec",
    fields: &[
        Field::value("refName", Ty::String),
        Field::value("version", Ty::String),
        Field::value("licenses", Ty::List(&Ty::String)),
        Field::value("releasedAt", Ty::Time),
        Field::value("capacityRequirementsDescription", Ty::String),
        Field::value("releaseNotes", Ty::String),
        Field::value("template", Ty::Struct(&APP_TEMPLATE_SPEC)),
        Field::value("valuesSchema", Ty::Struct(&VALUES_SCHEMA)),
        Field::value("includedSoftware", Ty::List(&Ty::Struct(&INCLUDED_SOFTWARE))),
        Field::pointer(
            "kappControllerVersionSelection",
            Ty::Struct(&CONSTRAINT_SELECTION),
        ),
        Field::pointer("kubernetesVersionSelection", Ty::Struct(&CONSTRAINT_SELECTION)),
    ],
};

static MAINTAINER: GoStruct = GoStruct {
    name: "Maintainer",
    fields: &[Field::value("name", Ty::String)],
};

/// `PackageMetadataSpec` (data.packaging.carvel.dev/v1alpha1).
pub(crate) static PACKAGE_METADATA_SPEC: GoStruct = GoStruct {
    name: "PackageMetadataSpec",
    fields: &[
        Field::value("displayName", Ty::String),
        Field::value("longDescription", Ty::String),
        Field::value("shortDescription", Ty::String),
        Field::value("iconSVGBase64", Ty::String),
        Field::value("providerName", Ty::String),
        Field::value("maintainers", Ty::List(&Ty::Struct(&MAINTAINER))),
        Field::value("categories", Ty::List(&Ty::String)),
        Field::value("supportDescription", Ty::String),
    ],
};

/// Every field reachable from `root`, as `(path, Go type)` with `[]` marking list elements:
/// `spec.template.spec.fetch[].git.url`. The test table of every field is checked against it.
pub fn field_table(root: &str) -> Vec<(String, String)> {
    let start = match root {
        "Package" => &PACKAGE_SPEC,
        "PackageMetadata" => &PACKAGE_METADATA_SPEC,
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    walk(start, "spec", &mut out);
    out
}

fn walk(s: &GoStruct, prefix: &str, out: &mut Vec<(String, String)>) {
    for field in s.fields {
        let path = format!("{prefix}.{}", field.json);
        let star = if field.pointer { "*" } else { "" };
        out.push((path.clone(), format!("{star}{}", field.ty.go_name())));
        match &field.ty {
            Ty::Struct(inner) => walk(inner, &path, out),
            Ty::List(Ty::Struct(inner)) => walk(inner, &format!("{path}[]"), out),
            _ => {}
        }
    }
}
