//! The committed CRD YAML under `crds/` must equal what the Rust types generate.
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// `crds/` holds what every cluster needs (`kubectl apply -f crds/` is safe beside
/// kapp-controller); `crds/standalone/` the Package kinds a cluster without kapp-controller adds.
#[test]
fn committed_crds_match_the_rust_types() {
    let read = |path: &str| {
        std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
            .unwrap_or_else(|e| panic!("{path} is committed: {e}"))
    };
    let repository = pkgr::api::to_yaml(&pkgr::api::crds_for(true)).unwrap();
    assert!(
        repository == read("crds/packagerepository.yaml"),
        "crds/packagerepository.yaml is out of date with the Rust types in src/api; regenerate it \
         with `cargo run -- crd --beside-kapp-controller > crds/packagerepository.yaml`"
    );
    let standalone = pkgr::api::to_yaml(&pkgr::api::standalone_crds()).unwrap();
    assert!(
        standalone == read("crds/standalone/packages.yaml"),
        "crds/standalone/packages.yaml is out of date with the Rust types in src/api"
    );
    assert_eq!(
        format!("{repository}{standalone}"),
        pkgr::api::crds_yaml().unwrap(),
        "the two files together are the standalone set"
    );
    // Nothing beside kapp-controller may define the group its aggregated API serves.
    let beside: Vec<String> = std::fs::read_dir(format!("{}/crds", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(
        beside
            .iter()
            .all(|y| !y.contains("group: data.packaging.carvel.dev")),
        "crds/ (applied with `kubectl apply -f crds/`) must not define data.packaging.carvel.dev"
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

/// The install manifests parse, and Secrets are readable only in the controller namespace.
#[test]
fn config_manifests_are_least_privilege() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
    let rbac = std::fs::read_to_string(format!("{dir}/02-rbac.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(&rbac).unwrap();
    let cluster_role: ClusterRole =
        serde_json::from_value(docs.iter().find(|d| d["kind"] == "ClusterRole").unwrap().clone()).unwrap();
    for rule in cluster_role.rules.unwrap() {
        let resources = rule.resources.unwrap_or_default();
        assert!(
            !resources.iter().any(|r| r == "secrets" || r == "*"),
            "no cluster-wide Secret access"
        );
        assert!(!rule.verbs.iter().any(|v| v == "*"));
    }
    let role: Role =
        serde_json::from_value(docs.iter().find(|d| d["kind"] == "Role").unwrap().clone()).unwrap();
    assert_eq!(role.metadata.namespace.as_deref(), Some("kapp-controller"));
    let secrets = role
        .rules
        .unwrap()
        .into_iter()
        .find(|r| r.resources.as_ref().unwrap().contains(&"secrets".into()))
        .unwrap();
    assert_eq!(secrets.verbs, ["get", "list", "watch"]);

    let deployment: Deployment =
        serde_saphyr::from_str(&std::fs::read_to_string(format!("{dir}/03-deployment.yaml")).unwrap())
            .unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
    let container = &pod.containers[0];
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        container
            .liveness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .as_deref(),
        Some("/healthz")
    );
    assert_eq!(
        container
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .as_deref(),
        Some("/readyz")
    );
    assert!(container.resources.as_ref().unwrap().requests.is_some());
    let namespace_env = container
        .env
        .as_ref()
        .unwrap()
        .iter()
        .find(|e| e.name == "PKGR_NAMESPACE")
        .unwrap();
    assert_eq!(
        namespace_env
            .value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap()
            .field_path,
        "metadata.namespace"
    );
}

/// The Deployment runs the image the README tells people to build (`scripts/image REF`, the
/// command CI runs), tagged with this version, as the user that image is made for.
#[test]
fn deployment_names_the_image_the_readme_builds() {
    use k8s_openapi::api::apps::v1::Deployment;
    let root = env!("CARGO_MANIFEST_DIR");
    let deployment: Deployment = serde_saphyr::from_str(
        &std::fs::read_to_string(format!("{root}/config/03-deployment.yaml")).unwrap(),
    )
    .unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let image = pod.containers[0].image.clone().unwrap();
    assert_eq!(
        image,
        format!("registry.corp.xyz/pkgr:{}", env!("CARGO_PKG_VERSION")),
        "config/03-deployment.yaml must name the image of this version"
    );
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    assert!(
        readme.contains(&format!("scripts/image {image}")),
        "README.md must show how to build and push {image} with scripts/image"
    );
    // scripts/image writes user nonroot as 65532:65532.
    let security = pod.security_context.unwrap();
    assert_eq!(security.run_as_user, Some(65532));
    assert_eq!(security.run_as_group, Some(65532));
}
