//! `pkgr crd`: print the CustomResourceDefinitions generated from the API types, for the kind
//! of cluster they go to (beside kapp-controller only the PackageRepository CRD: its aggregated
//! API serves Packages, and a Package CRD would take that API group over from it).
use super::CommandResult;
use std::io::Write;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct CrdArgs {
    /// Print the CRDs for a cluster without kapp-controller (PackageRepository, Package,
    /// PackageMetadata), without asking the cluster.
    #[arg(long, conflicts_with = "beside_kapp_controller")]
    standalone: bool,
    /// Print only the PackageRepository CRD, for a cluster where kapp-controller serves Packages,
    /// without asking the cluster.
    #[arg(long)]
    beside_kapp_controller: bool,
}

pub async fn run(args: CrdArgs) -> CommandResult {
    let beside = if args.beside_kapp_controller {
        true
    } else if args.standalone {
        false
    } else {
        ask_the_cluster().await?
    };
    let yaml = crate::api::to_yaml(&crate::api::crds_for(beside))
        .map_err(|e| format!("cannot render the CRDs as YAML: {e}"))?;
    std::io::stdout()
        .write_all(yaml.as_bytes())
        .map_err(|e| format!("cannot write the CRDs to standard output: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

/// Whether the cluster of the current kubeconfig runs kapp-controller's packaging API (its
/// internal CRDs or its APIService). A cluster that cannot be asked is an error naming both flags.
async fn ask_the_cluster() -> Result<bool, String> {
    use crate::controller::sink::{INTERNAL_PACKAGES_CRD, PACKAGING_API_SERVICE};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
    let cannot = |e: String| {
        format!(
            "cannot tell whether kapp-controller runs in the cluster of the current kubeconfig ({e}); \
             choose: `pkgr crd --standalone` for a cluster without kapp-controller, or \
             `pkgr crd --beside-kapp-controller` for one with it"
        )
    };
    let ask = async {
        let client = kube::Client::try_default().await.map_err(|e| e.to_string())?;
        let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
        let internal = crds
            .get_metadata_opt(INTERNAL_PACKAGES_CRD)
            .await
            .map_err(|e| e.to_string())?
            .is_some();
        let services: kube::Api<APIService> = kube::Api::all(client);
        let aggregated = services
            .get_opt(PACKAGING_API_SERVICE)
            .await
            .map_err(|e| e.to_string())?
            .and_then(|s| s.spec)
            .is_some_and(|s| s.service.is_some());
        Ok::<bool, String>(internal || aggregated)
    };
    let beside = tokio::time::timeout(std::time::Duration::from_secs(10), ask)
        .await
        .map_err(|_| cannot("no answer within 10 s".into()))?
        .map_err(cannot)?;
    eprintln!(
        "{}",
        if beside {
            "kapp-controller serves Packages in this cluster: printing only the PackageRepository CRD"
        } else {
            "no kapp-controller in this cluster: printing the PackageRepository, Package and PackageMetadata CRDs"
        }
    );
    Ok(beside)
}
