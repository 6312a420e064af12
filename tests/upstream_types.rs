//! Every field of kapp-controller's Package and PackageMetadata types (the App spec included),
//! with its Go type and one value Go's decoder refuses: each is refused with the file, the
//! document, the field path and the expected type; null is accepted everywhere, as Go accepts it.
use pkgr::bundle::FileTree;
use pkgr::repository::{self, ProblemKind};
use serde_json::{Value, json};

/// (kind, field path with `[]` for a list element, Go type, a value Go refuses there).
/// Sources: kapp-controller `pkg/apiserver/apis/datapackaging/v1alpha1/types.go`,
/// `pkg/apis/kappctrl/v1alpha1/types*.go`, vendir `pkg/vendir/versions/v1alpha1`.
#[rustfmt::skip]
const FIELDS: &[(&str, &str, &str, &str)] = &[
    ("Package", "spec.refName", "string", r#"42"#),
    ("Package", "spec.version", "string", r#"1.0"#),
    ("Package", "spec.licenses", "[]string", r#""Apache-2.0""#),
    ("Package", "spec.releasedAt", "metav1.Time", r#""2021-05-05""#),
    ("Package", "spec.capacityRequirementsDescription", "string", r#"42"#),
    ("Package", "spec.releaseNotes", "string", r#"true"#),
    ("Package", "spec.template", "AppTemplateSpec", r#""x""#),
    ("Package", "spec.template.spec", "*AppSpec", r#""x""#),
    ("Package", "spec.template.spec.serviceAccountName", "string", r#"["a"]"#),
    ("Package", "spec.template.spec.cluster", "*AppCluster", r#""x""#),
    ("Package", "spec.template.spec.cluster.namespace", "string", r#"{"k": "v"}"#),
    ("Package", "spec.template.spec.cluster.kubeconfigSecretRef", "*AppClusterKubeconfigSecretRef", r#""x""#),
    ("Package", "spec.template.spec.cluster.kubeconfigSecretRef.name", "string", r#"1.5"#),
    ("Package", "spec.template.spec.cluster.kubeconfigSecretRef.key", "string", r#"42"#),
    ("Package", "spec.template.spec.fetch", "[]AppFetch", r#"{"a": 1}"#),
    ("Package", "spec.template.spec.fetch[].inline", "*AppFetchInline", r#""x""#),
    ("Package", "spec.template.spec.fetch[].inline.paths", "map[string]string", r#"["config.yml"]"#),
    ("Package", "spec.template.spec.fetch[].inline.pathsFrom", "[]AppFetchInlineSource", r#"{"a": 1}"#),
    ("Package", "spec.template.spec.fetch[].inline.pathsFrom[].secretRef", "*AppFetchInlineSourceRef", r#""x""#),
    ("Package", "spec.template.spec.fetch[].inline.pathsFrom[].secretRef.directoryPath", "string", r#"true"#),
    ("Package", "spec.template.spec.fetch[].inline.pathsFrom[].secretRef.name", "string", r#"["a"]"#),
    ("Package", "spec.template.spec.fetch[].inline.pathsFrom[].configMapRef", "*AppFetchInlineSourceRef", r#"[]"#),
    ("Package", "spec.template.spec.fetch[].inline.pathsFrom[].configMapRef.directoryPath", "string", r#"{"k": "v"}"#),
    ("Package", "spec.template.spec.fetch[].inline.pathsFrom[].configMapRef.name", "string", r#"1.5"#),
    ("Package", "spec.template.spec.fetch[].image", "*AppFetchImage", r#""x""#),
    ("Package", "spec.template.spec.fetch[].image.url", "string", r#"42"#),
    ("Package", "spec.template.spec.fetch[].image.tagSelection", "*VersionSelection", r#""x""#),
    ("Package", "spec.template.spec.fetch[].image.tagSelection.semver", "*VersionSelectionSemver", r#""x""#),
    ("Package", "spec.template.spec.fetch[].image.tagSelection.semver.constraints", "string", r#"true"#),
    ("Package", "spec.template.spec.fetch[].image.tagSelection.semver.prereleases", "*VersionSelectionSemverPrereleases", r#""x""#),
    ("Package", "spec.template.spec.fetch[].image.tagSelection.semver.prereleases.identifiers", "[]string", r#""x""#),
    ("Package", "spec.template.spec.fetch[].image.secretRef", "*AppFetchLocalRef", r#""x""#),
    ("Package", "spec.template.spec.fetch[].image.secretRef.name", "string", r#"["a"]"#),
    ("Package", "spec.template.spec.fetch[].image.subPath", "string", r#"{"k": "v"}"#),
    ("Package", "spec.template.spec.fetch[].http", "*AppFetchHTTP", r#""x""#),
    ("Package", "spec.template.spec.fetch[].http.url", "string", r#"1.5"#),
    ("Package", "spec.template.spec.fetch[].http.sha256", "string", r#"42"#),
    ("Package", "spec.template.spec.fetch[].http.secretRef", "*AppFetchLocalRef", r#"[]"#),
    ("Package", "spec.template.spec.fetch[].http.secretRef.name", "string", r#"true"#),
    ("Package", "spec.template.spec.fetch[].http.subPath", "string", r#"["a"]"#),
    ("Package", "spec.template.spec.fetch[].git", "*AppFetchGit", r#""x""#),
    ("Package", "spec.template.spec.fetch[].git.url", "string", r#"{"k": "v"}"#),
    ("Package", "spec.template.spec.fetch[].git.ref", "string", r#"1.5"#),
    ("Package", "spec.template.spec.fetch[].git.refSelection", "*VersionSelection", r#"[]"#),
    ("Package", "spec.template.spec.fetch[].git.refSelection.semver", "*VersionSelectionSemver", r#"[]"#),
    ("Package", "spec.template.spec.fetch[].git.refSelection.semver.constraints", "string", r#"42"#),
    ("Package", "spec.template.spec.fetch[].git.refSelection.semver.prereleases", "*VersionSelectionSemverPrereleases", r#"[]"#),
    ("Package", "spec.template.spec.fetch[].git.refSelection.semver.prereleases.identifiers", "[]string", r#"{"a": "b"}"#),
    ("Package", "spec.template.spec.fetch[].git.secretRef", "*AppFetchLocalRef", r#"3"#),
    ("Package", "spec.template.spec.fetch[].git.secretRef.name", "string", r#"true"#),
    ("Package", "spec.template.spec.fetch[].git.subPath", "string", r#"["a"]"#),
    ("Package", "spec.template.spec.fetch[].git.lfsSkipSmudge", "bool", r#""true""#),
    ("Package", "spec.template.spec.fetch[].git.dangerousSkipTLSVerify", "bool", r#""yes""#),
    ("Package", "spec.template.spec.fetch[].helmChart", "*AppFetchHelmChart", r#""x""#),
    ("Package", "spec.template.spec.fetch[].helmChart.name", "string", r#"{"k": "v"}"#),
    ("Package", "spec.template.spec.fetch[].helmChart.version", "string", r#"1.5"#),
    ("Package", "spec.template.spec.fetch[].helmChart.repository", "*AppFetchHelmChartRepo", r#""x""#),
    ("Package", "spec.template.spec.fetch[].helmChart.repository.url", "string", r#"42"#),
    ("Package", "spec.template.spec.fetch[].helmChart.repository.secretRef", "*AppFetchLocalRef", r#""x""#),
    ("Package", "spec.template.spec.fetch[].helmChart.repository.secretRef.name", "string", r#"true"#),
    ("Package", "spec.template.spec.fetch[].imgpkgBundle", "*AppFetchImgpkgBundle", r#""x""#),
    ("Package", "spec.template.spec.fetch[].imgpkgBundle.image", "string", r#"42"#),
    ("Package", "spec.template.spec.fetch[].imgpkgBundle.tagSelection", "*VersionSelection", r#"3"#),
    ("Package", "spec.template.spec.fetch[].imgpkgBundle.tagSelection.semver", "*VersionSelectionSemver", r#"3"#),
    ("Package", "spec.template.spec.fetch[].imgpkgBundle.tagSelection.semver.constraints", "string", r#"["a"]"#),
    ("Package", "spec.template.spec.fetch[].imgpkgBundle.tagSelection.semver.prereleases", "*VersionSelectionSemverPrereleases", r#"3"#),
    ("Package", "spec.template.spec.fetch[].imgpkgBundle.tagSelection.semver.prereleases.identifiers", "[]string", r#"7"#),
    ("Package", "spec.template.spec.fetch[].imgpkgBundle.secretRef", "*AppFetchLocalRef", r#"[]"#),
    ("Package", "spec.template.spec.fetch[].imgpkgBundle.secretRef.name", "string", r#"{"k": "v"}"#),
    ("Package", "spec.template.spec.fetch[].path", "string", r#"1.5"#),
    ("Package", "spec.template.spec.template", "[]AppTemplate", r#"{"a": 1}"#),
    ("Package", "spec.template.spec.template[].ytt", "*AppTemplateYtt", r#""x""#),
    ("Package", "spec.template.spec.template[].ytt.ignoreUnknownComments", "bool", r#"1"#),
    ("Package", "spec.template.spec.template[].ytt.strict", "bool", r#""false""#),
    ("Package", "spec.template.spec.template[].ytt.inline", "*AppFetchInline", r#"[]"#),
    ("Package", "spec.template.spec.template[].ytt.inline.paths", "map[string]string", r#"["a"]"#),
    ("Package", "spec.template.spec.template[].ytt.inline.pathsFrom", "[]AppFetchInlineSource", r#""x""#),
    ("Package", "spec.template.spec.template[].ytt.inline.pathsFrom[].secretRef", "*AppFetchInlineSourceRef", r#"3"#),
    ("Package", "spec.template.spec.template[].ytt.inline.pathsFrom[].secretRef.directoryPath", "string", r#"42"#),
    ("Package", "spec.template.spec.template[].ytt.inline.pathsFrom[].secretRef.name", "string", r#"true"#),
    ("Package", "spec.template.spec.template[].ytt.inline.pathsFrom[].configMapRef", "*AppFetchInlineSourceRef", r#""x""#),
    ("Package", "spec.template.spec.template[].ytt.inline.pathsFrom[].configMapRef.directoryPath", "string", r#"["a"]"#),
    ("Package", "spec.template.spec.template[].ytt.inline.pathsFrom[].configMapRef.name", "string", r#"{"k": "v"}"#),
    ("Package", "spec.template.spec.template[].ytt.paths", "[]string", r#""config/""#),
    ("Package", "spec.template.spec.template[].ytt.fileMarks", "[]string", r#""x""#),
    ("Package", "spec.template.spec.template[].ytt.valuesFrom", "[]AppTemplateValuesSource", r#"{"a": 1}"#),
    ("Package", "spec.template.spec.template[].ytt.valuesFrom[].secretRef", "*AppTemplateValuesSourceRef", r#""x""#),
    ("Package", "spec.template.spec.template[].ytt.valuesFrom[].secretRef.name", "string", r#"1.5"#),
    ("Package", "spec.template.spec.template[].ytt.valuesFrom[].configMapRef", "*AppTemplateValuesSourceRef", r#"[]"#),
    ("Package", "spec.template.spec.template[].ytt.valuesFrom[].configMapRef.name", "string", r#"42"#),
    ("Package", "spec.template.spec.template[].ytt.valuesFrom[].path", "string", r#"true"#),
    ("Package", "spec.template.spec.template[].ytt.valuesFrom[].downwardAPI", "*AppTemplateValuesDownwardAPI", r#""x""#),
    ("Package", "spec.template.spec.template[].ytt.valuesFrom[].downwardAPI.items", "[]AppTemplateValuesDownwardAPIItem", r#"{"a": 1}"#),
    ("Package", "spec.template.spec.template[].ytt.valuesFrom[].downwardAPI.items[].name", "string", r#"["a"]"#),
    ("Package", "spec.template.spec.template[].ytt.valuesFrom[].downwardAPI.items[].fieldPath", "string", r#"{"k": "v"}"#),
    ("Package", "spec.template.spec.template[].ytt.valuesFrom[].downwardAPI.items[].kubernetesVersion", "*Version", r#""x""#),
    ("Package", "spec.template.spec.template[].ytt.valuesFrom[].downwardAPI.items[].kubernetesVersion.version", "string", r#"1.5"#),
    ("Package", "spec.template.spec.template[].ytt.valuesFrom[].downwardAPI.items[].kappControllerVersion", "*Version", r#"[]"#),
    ("Package", "spec.template.spec.template[].ytt.valuesFrom[].downwardAPI.items[].kappControllerVersion.version", "string", r#"42"#),
    ("Package", "spec.template.spec.template[].ytt.valuesFrom[].downwardAPI.items[].kubernetesAPIs", "*KubernetesAPIs", r#""x""#),
    ("Package", "spec.template.spec.template[].ytt.valuesFrom[].downwardAPI.items[].kubernetesAPIs.groupVersions", "[]string", r#"{"a": "b"}"#),
    ("Package", "spec.template.spec.template[].kbld", "*AppTemplateKbld", r#""x""#),
    ("Package", "spec.template.spec.template[].kbld.paths", "[]string", r#"7"#),
    ("Package", "spec.template.spec.template[].helmTemplate", "*AppTemplateHelmTemplate", r#""x""#),
    ("Package", "spec.template.spec.template[].helmTemplate.name", "string", r#"true"#),
    ("Package", "spec.template.spec.template[].helmTemplate.namespace", "string", r#"["a"]"#),
    ("Package", "spec.template.spec.template[].helmTemplate.path", "string", r#"{"k": "v"}"#),
    ("Package", "spec.template.spec.template[].helmTemplate.valuesFrom", "[]AppTemplateValuesSource", r#""x""#),
    ("Package", "spec.template.spec.template[].helmTemplate.valuesFrom[].secretRef", "*AppTemplateValuesSourceRef", r#"3"#),
    ("Package", "spec.template.spec.template[].helmTemplate.valuesFrom[].secretRef.name", "string", r#"1.5"#),
    ("Package", "spec.template.spec.template[].helmTemplate.valuesFrom[].configMapRef", "*AppTemplateValuesSourceRef", r#""x""#),
    ("Package", "spec.template.spec.template[].helmTemplate.valuesFrom[].configMapRef.name", "string", r#"42"#),
    ("Package", "spec.template.spec.template[].helmTemplate.valuesFrom[].path", "string", r#"true"#),
    ("Package", "spec.template.spec.template[].helmTemplate.valuesFrom[].downwardAPI", "*AppTemplateValuesDownwardAPI", r#"[]"#),
    ("Package", "spec.template.spec.template[].helmTemplate.valuesFrom[].downwardAPI.items", "[]AppTemplateValuesDownwardAPIItem", r#""x""#),
    ("Package", "spec.template.spec.template[].helmTemplate.valuesFrom[].downwardAPI.items[].name", "string", r#"["a"]"#),
    ("Package", "spec.template.spec.template[].helmTemplate.valuesFrom[].downwardAPI.items[].fieldPath", "string", r#"{"k": "v"}"#),
    ("Package", "spec.template.spec.template[].helmTemplate.valuesFrom[].downwardAPI.items[].kubernetesVersion", "*Version", r#"3"#),
    ("Package", "spec.template.spec.template[].helmTemplate.valuesFrom[].downwardAPI.items[].kubernetesVersion.version", "string", r#"1.5"#),
    ("Package", "spec.template.spec.template[].helmTemplate.valuesFrom[].downwardAPI.items[].kappControllerVersion", "*Version", r#""x""#),
    ("Package", "spec.template.spec.template[].helmTemplate.valuesFrom[].downwardAPI.items[].kappControllerVersion.version", "string", r#"42"#),
    ("Package", "spec.template.spec.template[].helmTemplate.valuesFrom[].downwardAPI.items[].kubernetesAPIs", "*KubernetesAPIs", r#"[]"#),
    ("Package", "spec.template.spec.template[].helmTemplate.valuesFrom[].downwardAPI.items[].kubernetesAPIs.groupVersions", "[]string", r#""x""#),
    ("Package", "spec.template.spec.template[].helmTemplate.kubernetesVersion", "*Version", r#"[]"#),
    ("Package", "spec.template.spec.template[].helmTemplate.kubernetesVersion.version", "string", r#"true"#),
    ("Package", "spec.template.spec.template[].helmTemplate.kubernetesAPIs", "*KubernetesAPIs", r#"3"#),
    ("Package", "spec.template.spec.template[].helmTemplate.kubernetesAPIs.groupVersions", "[]string", r#"{"a": "b"}"#),
    ("Package", "spec.template.spec.template[].kustomize", "*AppTemplateKustomize", r#""x""#),
    ("Package", "spec.template.spec.template[].jsonnet", "*AppTemplateJsonnet", r#""x""#),
    ("Package", "spec.template.spec.template[].sops", "*AppTemplateSops", r#""x""#),
    ("Package", "spec.template.spec.template[].sops.pgp", "*AppTemplateSopsPGP", r#""x""#),
    ("Package", "spec.template.spec.template[].sops.pgp.privateKeysSecretRef", "*AppTemplateSopsPrivateKeysSecretRef", r#""x""#),
    ("Package", "spec.template.spec.template[].sops.pgp.privateKeysSecretRef.name", "string", r#"["a"]"#),
    ("Package", "spec.template.spec.template[].sops.paths", "[]string", r#"7"#),
    ("Package", "spec.template.spec.template[].sops.age", "*AppTemplateSopsAge", r#""x""#),
    ("Package", "spec.template.spec.template[].sops.age.privateKeysSecretRef", "*AppTemplateSopsPrivateKeysSecretRef", r#"[]"#),
    ("Package", "spec.template.spec.template[].sops.age.privateKeysSecretRef.name", "string", r#"{"k": "v"}"#),
    ("Package", "spec.template.spec.template[].cue", "*AppTemplateCue", r#""x""#),
    ("Package", "spec.template.spec.template[].cue.paths", "[]string", r#""x""#),
    ("Package", "spec.template.spec.template[].cue.valuesFrom", "[]AppTemplateValuesSource", r#"{"a": 1}"#),
    ("Package", "spec.template.spec.template[].cue.valuesFrom[].secretRef", "*AppTemplateValuesSourceRef", r#"[]"#),
    ("Package", "spec.template.spec.template[].cue.valuesFrom[].secretRef.name", "string", r#"1.5"#),
    ("Package", "spec.template.spec.template[].cue.valuesFrom[].configMapRef", "*AppTemplateValuesSourceRef", r#"3"#),
    ("Package", "spec.template.spec.template[].cue.valuesFrom[].configMapRef.name", "string", r#"42"#),
    ("Package", "spec.template.spec.template[].cue.valuesFrom[].path", "string", r#"true"#),
    ("Package", "spec.template.spec.template[].cue.valuesFrom[].downwardAPI", "*AppTemplateValuesDownwardAPI", r#"3"#),
    ("Package", "spec.template.spec.template[].cue.valuesFrom[].downwardAPI.items", "[]AppTemplateValuesDownwardAPIItem", r#"{"a": 1}"#),
    ("Package", "spec.template.spec.template[].cue.valuesFrom[].downwardAPI.items[].name", "string", r#"["a"]"#),
    ("Package", "spec.template.spec.template[].cue.valuesFrom[].downwardAPI.items[].fieldPath", "string", r#"{"k": "v"}"#),
    ("Package", "spec.template.spec.template[].cue.valuesFrom[].downwardAPI.items[].kubernetesVersion", "*Version", r#"3"#),
    ("Package", "spec.template.spec.template[].cue.valuesFrom[].downwardAPI.items[].kubernetesVersion.version", "string", r#"1.5"#),
    ("Package", "spec.template.spec.template[].cue.valuesFrom[].downwardAPI.items[].kappControllerVersion", "*Version", r#""x""#),
    ("Package", "spec.template.spec.template[].cue.valuesFrom[].downwardAPI.items[].kappControllerVersion.version", "string", r#"42"#),
    ("Package", "spec.template.spec.template[].cue.valuesFrom[].downwardAPI.items[].kubernetesAPIs", "*KubernetesAPIs", r#""x""#),
    ("Package", "spec.template.spec.template[].cue.valuesFrom[].downwardAPI.items[].kubernetesAPIs.groupVersions", "[]string", r#"{"a": "b"}"#),
    ("Package", "spec.template.spec.template[].cue.inputExpression", "string", r#"true"#),
    ("Package", "spec.template.spec.template[].cue.outputExpression", "string", r#"["a"]"#),
    ("Package", "spec.template.spec.deploy", "[]AppDeploy", r#"{"a": 1}"#),
    ("Package", "spec.template.spec.deploy[].kapp", "*AppDeployKapp", r#""x""#),
    ("Package", "spec.template.spec.deploy[].kapp.intoNs", "string", r#"{"k": "v"}"#),
    ("Package", "spec.template.spec.deploy[].kapp.mapNs", "[]string", r#"7"#),
    ("Package", "spec.template.spec.deploy[].kapp.rawOptions", "[]string", r#""x""#),
    ("Package", "spec.template.spec.deploy[].kapp.inspect", "*AppDeployKappInspect", r#""x""#),
    ("Package", "spec.template.spec.deploy[].kapp.inspect.rawOptions", "[]string", r#"{"a": "b"}"#),
    ("Package", "spec.template.spec.deploy[].kapp.delete", "*AppDeployKappDelete", r#""x""#),
    ("Package", "spec.template.spec.deploy[].kapp.delete.rawOptions", "[]string", r#"7"#),
    ("Package", "spec.template.spec.paused", "bool", r#""yes""#),
    ("Package", "spec.template.spec.canceled", "bool", r#""yes""#),
    ("Package", "spec.template.spec.syncPeriod", "*metav1.Duration", r#""5 minutes""#),
    ("Package", "spec.template.spec.noopDelete", "bool", r#"1"#),
    ("Package", "spec.template.spec.defaultNamespace", "string", r#"1.5"#),
    ("Package", "spec.valuesSchema", "ValuesSchema", r#""x""#),
    ("Package", "spec.valuesSchema.openAPIv3", "runtime.RawExtension", r#""a schema""#),
    ("Package", "spec.includedSoftware", "[]IncludedSoftware", r#"{"a": 1}"#),
    ("Package", "spec.includedSoftware[].displayName", "string", r#"42"#),
    ("Package", "spec.includedSoftware[].version", "string", r#"true"#),
    ("Package", "spec.includedSoftware[].description", "string", r#"["a"]"#),
    ("Package", "spec.kappControllerVersionSelection", "*VersionSelection", r#""x""#),
    ("Package", "spec.kappControllerVersionSelection.constraints", "string", r#"{"k": "v"}"#),
    ("Package", "spec.kubernetesVersionSelection", "*VersionSelection", r#"[]"#),
    ("Package", "spec.kubernetesVersionSelection.constraints", "string", r#"1.2"#),
    ("PackageMetadata", "spec.displayName", "string", r#"1.5"#),
    ("PackageMetadata", "spec.longDescription", "string", r#"42"#),
    ("PackageMetadata", "spec.shortDescription", "string", r#"true"#),
    ("PackageMetadata", "spec.iconSVGBase64", "string", r#"["a"]"#),
    ("PackageMetadata", "spec.providerName", "string", r#"{"k": "v"}"#),
    ("PackageMetadata", "spec.maintainers", "[]Maintainer", r#"{"name": "Jane"}"#),
    ("PackageMetadata", "spec.maintainers[].name", "string", r#"1.5"#),
    ("PackageMetadata", "spec.categories", "[]string", r#""demo""#),
    ("PackageMetadata", "spec.supportDescription", "string", r#"42"#),
];

/// What a person is told to write, by Go type (the wording of pkgr's messages).
fn expected(go_type: &str) -> String {
    let ty = go_type.trim_start_matches('*');
    match ty {
        "string" => "a string".into(),
        "bool" => "true or false".into(),
        "[]string" => "a list of strings".into(),
        "map[string]string" => "a map of names to strings".into(),
        "metav1.Time" => "an RFC 3339 time such as 2021-05-05T18:57:06Z".into(),
        "metav1.Duration" => "a Go duration such as 30s, 5m or 1h30m".into(),
        "runtime.RawExtension" => "an object (an OpenAPI v3 schema)".into(),
        list if list.starts_with("[]") => format!("a list of objects ({})", &list[2..]),
        name => format!("an object ({name})"),
    }
}

/// A valid document of `kind` with `value` placed at `path` (`[]` makes a one-element list).
fn document(kind: &str, path: &str, value: Value) -> Value {
    let mut doc = if kind == "Package" {
        json!({
            "apiVersion": "data.packaging.carvel.dev/v1alpha1", "kind": "Package",
            "metadata": {"name": "p.corp.com.1.0.0"},
            "spec": {"refName": "p.corp.com", "version": "1.0.0"}
        })
    } else {
        json!({
            "apiVersion": "data.packaging.carvel.dev/v1alpha1", "kind": "PackageMetadata",
            "metadata": {"name": "p.corp.com"}, "spec": {}
        })
    };
    let segments: Vec<&str> = path.split('.').collect();
    let mut at = &mut doc;
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        let (name, list) = match segment.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (*segment, false),
        };
        if last {
            at[name] = value;
            break;
        }
        if list {
            if !at[name].is_array() {
                at[name] = json!([{}]);
            }
            at = &mut at[name][0];
        } else {
            if !at[name].is_object() {
                at[name] = json!({});
            }
            at = &mut at[name];
        }
    }
    doc
}

fn build(doc: &Value) -> Result<repository::Output, repository::RepositoryError> {
    // JSON is YAML: the document goes in as a file of the repository.
    let mut files = FileTree::new();
    files.insert("packages/p.yml".into(), serde_json::to_vec(doc).unwrap());
    repository::build(&files, None)
}

#[test]
fn the_table_lists_every_field_of_the_types_with_its_go_type() {
    let mut listed: Vec<(String, String)> = FIELDS
        .iter()
        .map(|(kind, path, ty, _)| (format!("{kind} {path}"), ty.to_string()))
        .collect();
    let mut known: Vec<(String, String)> = ["Package", "PackageMetadata"]
        .iter()
        .flat_map(|kind| {
            repository::field_table(kind)
                .into_iter()
                .map(move |(path, ty)| (format!("{kind} {path}"), ty))
        })
        .collect();
    listed.sort();
    known.sort();
    assert_eq!(listed, known);
    // Spot checks against upstream's Go source.
    for (path, ty) in [
        ("Package spec.releasedAt", "metav1.Time"),
        ("Package spec.template.spec.syncPeriod", "*metav1.Duration"),
        ("Package spec.template.spec.template[].ytt.paths", "[]string"),
        (
            "Package spec.template.spec.fetch[].inline.paths",
            "map[string]string",
        ),
        ("Package spec.valuesSchema.openAPIv3", "runtime.RawExtension"),
        ("PackageMetadata spec.maintainers[].name", "string"),
    ] {
        assert!(known.contains(&(path.to_string(), ty.to_string())), "{path}");
    }
}

#[test]
fn every_field_refuses_its_bad_value_naming_file_document_field_and_type() {
    for (kind, path, ty, bad) in FIELDS {
        let bad: Value = serde_json::from_str(bad).unwrap();
        let err = match build(&document(kind, path, bad.clone())) {
            Ok(_) => panic!("{kind} {path}: {bad} was accepted"),
            Err(err) => err,
        };
        let problems = err.problems();
        assert_eq!(problems.len(), 1, "{kind} {path}: {problems:#?}");
        let field = path.replace("[]", "[0]");
        match &problems[0].kind {
            ProblemKind::WrongType {
                field: got,
                expected: want,
                ..
            } => {
                assert_eq!(got, &field, "{kind} {path}");
                assert_eq!(want, &expected(ty), "{kind} {path}");
            }
            other => panic!("{kind} {path}: {other:?}"),
        }
        let text = problems[0].to_string();
        assert!(
            text.starts_with(&format!(
                "packages/p.yml doc 1: {field}: expected {}, found ",
                expected(ty)
            )),
            "{text}"
        );
    }
}

#[test]
fn null_is_accepted_for_every_field_and_stores_nothing() {
    for (kind, path, _, _) in FIELDS {
        if matches!(*path, "spec.refName" | "spec.version") {
            continue; // Required by validation, not by the type.
        }
        let out = build(&document(kind, path, Value::Null))
            .unwrap_or_else(|e| panic!("{kind} {path}: {}", e.detailed()));
        let spec = if *kind == "Package" {
            serde_json::to_value(&out.packages[0].spec).unwrap()
        } else {
            serde_json::to_value(&out.metadatas[0].spec).unwrap()
        };
        let text = spec.to_string();
        assert!(!text.contains("null"), "{kind} {path}: {text}");
    }
}

#[test]
fn messages_say_what_was_found_and_what_to_write() {
    let cases = [
        (
            "spec.template.spec.syncPeriod",
            json!("5 minutes"),
            "spec.template.spec.syncPeriod: expected a Go duration such as 30s, 5m or 1h30m, found \
             \"5 minutes\" (time: unknown unit \" minutes\" in duration \"5 minutes\")",
        ),
        (
            "spec.template.spec.template[].ytt.paths",
            json!("config/"),
            "spec.template.spec.template[0].ytt.paths: expected a list of strings, found a string (\"config/\")",
        ),
        (
            "spec.releasedAt",
            json!("2021-05-05T18:57:06"),
            "spec.releasedAt: expected an RFC 3339 time such as 2021-05-05T18:57:06Z, found \"2021-05-05T18:57:06\"",
        ),
        (
            "spec.template.spec.fetch[].imgpkgBundle.image",
            json!(42),
            "spec.template.spec.fetch[0].imgpkgBundle.image: expected a string, found a number (42)",
        ),
        (
            "spec.template.spec.fetch[].inline.paths",
            json!({"config.yml": 3}),
            "spec.template.spec.fetch[0].inline.paths[\"config.yml\"]: expected a string, found a number (3)",
        ),
    ];
    for (path, value, message) in cases {
        let err = build(&document("Package", path, value)).unwrap_err();
        assert_eq!(
            err.problems()[0].to_string(),
            format!("packages/p.yml doc 1: {message} (kapp-controller cannot decode it either)")
        );
    }
}
