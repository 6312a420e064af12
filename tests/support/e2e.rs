//! The start of every end-to-end suite: a client for the kubeconfig it was given (a real
//! cluster's, or the fake API server's), and pkgr's CRDs and namespace installed as a user would.
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use std::time::Duration;

/// A client for the cluster `kubeconfig` names.
pub async fn client(kubeconfig: &str) -> kube::Client {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig).expect("read the kubeconfig"),
        &Default::default(),
    )
    .await
    .expect("kubeconfig usable");
    kube::Client::try_from(config).unwrap()
}

/// Apply `crds` (each waited for until Established, at most `wait`) and the namespace.
pub async fn install(
    client: &kube::Client,
    crds: Vec<CustomResourceDefinition>,
    namespace: &str,
    wait: Duration,
) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap();
        api.patch(
            &name,
            &PatchParams::apply("pkgr-e2e").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
        tokio::time::timeout(
            wait,
            await_condition(api.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .expect("CRD established in time")
        .unwrap();
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            namespace,
            &PatchParams::apply("pkgr-e2e"),
            &Patch::Apply(
                serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
            ),
        )
        .await
        .unwrap();
}
