//! Custom resource types: PackageRepository, Package, PackageMetadata and their status.
mod package;
mod repository;

pub use package::*;
pub use repository::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The three CustomResourceDefinitions pkgr serves, generated from the Rust types.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![PackageRepository::crd(), Package::crd(), PackageMetadata::crd()]
}

/// The CRDs a cluster needs: beside kapp-controller only the PackageRepository one (its
/// aggregated API serves Packages; a Package CRD there would take its group over).
pub fn crds_for(beside_kapp_controller: bool) -> Vec<CustomResourceDefinition> {
    if beside_kapp_controller {
        vec![PackageRepository::crd()]
    } else {
        crds()
    }
}

/// The Package and PackageMetadata CRDs, for a cluster without kapp-controller.
pub fn standalone_crds() -> Vec<CustomResourceDefinition> {
    vec![Package::crd(), PackageMetadata::crd()]
}

/// The CRDs for a standalone cluster as one multi-document YAML stream.
pub fn crds_yaml() -> Result<String, serde_saphyr::SerializeError> {
    to_yaml(&crds())
}

/// CRDs as one multi-document YAML stream (what `pkgr crd` prints and `crds/` holds).
pub fn to_yaml(crds: &[CustomResourceDefinition]) -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}
