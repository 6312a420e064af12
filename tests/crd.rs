//! The committed CRD YAML under `crds/` must equal what the Rust types generate.
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

#[test]
fn committed_crds_match_the_rust_types() {
    let generated = pkgr::api::crds_yaml().expect("CRDs render as YAML");
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/crds.yaml"))
        .expect("crds/crds.yaml is committed");
    assert!(
        generated == committed,
        "crds/crds.yaml is out of date with the Rust types in src/api; regenerate it with \
         `cargo run -- crd > crds/crds.yaml` and commit the result"
    );
}

#[test]
fn crds_have_the_spec_columns_and_no_cel() {
    let yaml = pkgr::api::crds_yaml().unwrap();
    assert!(
        !yaml.contains("x-kubernetes-validations"),
        "CEL is not available on Kubernetes 1.24"
    );
    let docs: Vec<CustomResourceDefinition> = serde_saphyr::from_str_multiple(&yaml).unwrap();
    let names: Vec<_> = docs.iter().map(|c| c.metadata.name.clone().unwrap()).collect();
    assert_eq!(
        names,
        [
            "packagerepositories.install.package.carvel.dev",
            "packages.data.packaging.carvel.dev",
            "packagemetadatas.data.packaging.carvel.dev"
        ]
    );
    let repo = &docs[0];
    assert_eq!(repo.spec.scope, "Cluster");
    assert_eq!(
        repo.spec.names.short_names.as_deref(),
        Some(&["pkgr".to_string()][..])
    );
    assert_eq!(
        repo.spec.names.categories.as_deref(),
        Some(&["carvel".to_string()][..])
    );
    let version = &repo.spec.versions[0];
    assert!(version.subresources.as_ref().unwrap().status.is_some());
    let columns: Vec<_> = version
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| (c.name.as_str(), c.json_path.as_str()))
        .collect();
    assert_eq!(
        columns,
        [
            ("Packages", ".status.packageCount"),
            ("Age", ".metadata.creationTimestamp"),
            ("Description", ".status.friendlyDescription")
        ]
    );
    assert_eq!(
        docs[1].spec.names.short_names.as_deref(),
        Some(&["pkg".to_string()][..])
    );
    assert_eq!(
        docs[2].spec.names.short_names.as_deref(),
        Some(&["pkgm".to_string()][..])
    );
    for crd in &docs {
        assert_eq!(crd.spec.scope, "Cluster");
    }
}
