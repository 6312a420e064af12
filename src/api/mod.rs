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

/// The CRDs as one multi-document YAML stream (what `pkgr crd` prints and `crds/` holds).
pub fn crds_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}
