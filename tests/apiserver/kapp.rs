//! kapp-controller's packaging API as a cluster running it has it: the internal CRDs it stores
//! Packages in (namespaced), its APIService, its PackageRepository CRD naming the global
//! namespace, that namespace, and the aggregated reads `kubectl get packages -n NS` makes: the
//! internal objects of NS and of the global namespace, Packages under their decoded names
//! (local objects win), as `pkg/apiserver/registry/datapackaging` serves them.
use super::{FakeApiServer, Key, Shared, publish};
use serde_json::{Value, json};

pub const INTERNAL_PACKAGES: &str = "internal.packaging.carvel.dev/v1alpha1/internalpackages";
pub const INTERNAL_METADATAS: &str = "internal.packaging.carvel.dev/v1alpha1/internalpackagemetadatas";
pub const CRDS: &str = "apiextensions.k8s.io/v1/customresourcedefinitions";
pub const API_SERVICES: &str = "apiregistration.k8s.io/v1/apiservices";
pub const API_SERVICE: &str = "v1alpha1.data.packaging.carvel.dev";
pub const NAMESPACES: &str = "v1/namespaces";

fn crd(name: &str, kind: &str, plural: &str, group: &str, scope: &str, annotations: Value) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"group": group, "scope": scope, "names": {"kind": kind, "plural": plural},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
        "status": {"conditions": [{"type": "Established", "status": "True"}]}})
}

impl FakeApiServer {
    /// Install kapp-controller's packaging API. `global`: the namespace its PackageRepository
    /// CRD names (`None`: no annotation, kapp-controller's default). The namespace is created
    /// when `create_namespace`.
    pub fn install_kapp_controller(&self, global: Option<&str>, create_namespace: bool, available: bool) {
        let annotations = match global {
            Some(ns) => json!({"packaging.carvel.dev/global-namespace": ns}),
            None => json!({}),
        };
        self.create(
            CRDS,
            None,
            "packagerepositories.packaging.carvel.dev",
            crd(
                "packagerepositories.packaging.carvel.dev",
                "PackageRepository",
                "packagerepositories",
                "packaging.carvel.dev",
                "Namespaced",
                annotations,
            ),
        );
        self.create(
            CRDS,
            None,
            "internalpackages.internal.packaging.carvel.dev",
            crd(
                "internalpackages.internal.packaging.carvel.dev",
                "InternalPackage",
                "internalpackages",
                "internal.packaging.carvel.dev",
                "Namespaced",
                json!({}),
            ),
        );
        self.create(
            CRDS,
            None,
            "internalpackagemetadatas.internal.packaging.carvel.dev",
            crd(
                "internalpackagemetadatas.internal.packaging.carvel.dev",
                "InternalPackageMetadata",
                "internalpackagemetadatas",
                "internal.packaging.carvel.dev",
                "Namespaced",
                json!({}),
            ),
        );
        let namespace = global.unwrap_or("kapp-controller-packaging-global");
        if create_namespace && self.get(NAMESPACES, None, namespace).is_none() {
            self.create(
                NAMESPACES,
                None,
                namespace,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
            );
        }
        self.create(
            API_SERVICES,
            None,
            API_SERVICE,
            json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": API_SERVICE},
                "spec": {"group": "data.packaging.carvel.dev", "version": "v1alpha1",
                    "groupPriorityMinimum": 100, "versionPriority": 100,
                    "service": {"name": "packaging-api", "namespace": "kapp-controller"}},
                "status": {"conditions": [{"type": "Available",
                    "status": if available { "True" } else { "False" }}]}}),
        );
    }

    /// Remove kapp-controller as `kapp delete` does: its APIService and CRDs go, and with the
    /// CRDs every object stored in them.
    pub fn remove_kapp_controller(&self) {
        self.delete(API_SERVICES, None, API_SERVICE);
        let stored: Vec<Key> = {
            let store = self.shared.store.lock().unwrap();
            store
                .objects
                .keys()
                .filter(|k| k.resource == INTERNAL_PACKAGES || k.resource == INTERNAL_METADATAS)
                .cloned()
                .collect()
        };
        for key in stored {
            self.delete(&key.resource, key.namespace.as_deref(), &key.name);
        }
        for name in [
            "internalpackages.internal.packaging.carvel.dev",
            "internalpackagemetadatas.internal.packaging.carvel.dev",
            "packagerepositories.packaging.carvel.dev",
        ] {
            self.delete(CRDS, None, name);
        }
    }

    /// Write an internal Package or PackageMetadata as kapp-controller's own PackageRepository
    /// `namespace/name` deploys it (through kapp: its labels and its ref annotation).
    pub fn kapp_controller_deploys(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        repository: &str,
        spec: Value,
    ) {
        let kind = if resource == INTERNAL_PACKAGES {
            "InternalPackage"
        } else {
            "InternalPackageMetadata"
        };
        let key = Key {
            resource: resource.into(),
            namespace: Some(namespace.into()),
            name: name.into(),
        };
        let object = json!({"apiVersion": "internal.packaging.carvel.dev/v1alpha1", "kind": kind,
            "metadata": {"name": name, "namespace": namespace,
                "labels": {"kapp.k14s.io/app": "1700000000000000000", "kapp.k14s.io/association": "v1.abc"},
                "annotations": {"packaging.carvel.dev/package-repository-ref": repository,
                    "kapp.k14s.io/identity": "v1;x", "kapp.k14s.io/disable-original": ""}},
            "spec": spec});
        let mut store = self.shared.store.lock().unwrap();
        let ((code, reply), changes) = store.create(&key, object, "kapp");
        assert_eq!(code, 201, "{reply}");
        publish(&self.shared, changes);
    }

    /// `kubectl get packages -n NAMESPACE` through kapp-controller's API: (name, refName, version)
    /// of each Package it serves there. Empty when its APIService is gone (the request would fail).
    pub fn packages_served_in(&self, namespace: &str) -> Vec<(String, String, String)> {
        self.served(INTERNAL_PACKAGES, namespace)
            .into_iter()
            .map(|p| {
                (
                    p["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                    p["spec"]["refName"].as_str().unwrap_or_default().to_string(),
                    p["spec"]["version"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// `kubectl get packagemetadatas -n NAMESPACE` through kapp-controller's API: names.
    pub fn metadatas_served_in(&self, namespace: &str) -> Vec<String> {
        self.served(INTERNAL_METADATAS, namespace)
            .into_iter()
            .map(|m| m["metadata"]["name"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn served(&self, resource: &str, namespace: &str) -> Vec<Value> {
        served(&self.shared, resource, namespace).unwrap_or_default()
    }
}

/// A GET of `data.packaging.carvel.dev` Packages or PackageMetadatas in a namespace, answered as
/// kapp-controller's API answers it (`None`: not such a request, or no kapp-controller).
pub(super) fn aggregated_list(shared: &Shared, resource: &str, namespace: Option<&str>) -> Option<Value> {
    let (internal, kind) = match resource {
        "data.packaging.carvel.dev/v1alpha1/packages" => (INTERNAL_PACKAGES, "Package"),
        "data.packaging.carvel.dev/v1alpha1/packagemetadatas" => (INTERNAL_METADATAS, "PackageMetadata"),
        _ => return None,
    };
    let items: Vec<Value> = served(shared, internal, namespace?)?
        .into_iter()
        .map(|mut o| {
            o["apiVersion"] = json!("data.packaging.carvel.dev/v1alpha1");
            o["kind"] = json!(kind);
            o
        })
        .collect();
    Some(
        json!({"apiVersion": "data.packaging.carvel.dev/v1alpha1", "kind": format!("{kind}List"),
        "metadata": {}, "items": items}),
    )
}

fn served(shared: &Shared, resource: &str, namespace: &str) -> Option<Vec<Value>> {
    {
        let get = |resource: &str, name: &str| {
            shared
                .store
                .lock()
                .unwrap()
                .get(&Key {
                    resource: resource.into(),
                    namespace: None,
                    name: name.into(),
                })
                .cloned()
        };
        get(API_SERVICES, API_SERVICE)?;
    }
    let global = {
        let store = shared.store.lock().unwrap();
        store
            .get(&Key {
                resource: CRDS.into(),
                namespace: None,
                name: "packagerepositories.packaging.carvel.dev".into(),
            })
            .and_then(|c| {
                c["metadata"]["annotations"]["packaging.carvel.dev/global-namespace"]
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "kapp-controller-packaging-global".into())
    };
    {
        let store = shared.store.lock().unwrap();
        let external = |key: &Key, object: &Value| -> Value {
            let mut object = object.clone();
            let name = if resource == INTERNAL_PACKAGES {
                // kapp-controller's API fails the request for a name it cannot decode.
                pkgr::controller::sink::external_package_name(&key.name).unwrap_or_else(|| {
                    panic!(
                        "kapp-controller's API cannot decode the internal name {}",
                        key.name
                    )
                })
            } else {
                key.name.clone()
            };
            object["metadata"]["name"] = json!(name);
            object["metadata"]["namespace"] = json!(namespace);
            object
        };
        let mut out: std::collections::BTreeMap<String, Value> = Default::default();
        // Global first, then local: a local object of the same name wins.
        for ns in [global.as_str(), namespace] {
            for (key, object) in store.objects.iter() {
                if key.resource == resource && key.namespace.as_deref() == Some(ns) {
                    let o = external(key, object);
                    out.insert(o["metadata"]["name"].as_str().unwrap_or_default().to_string(), o);
                }
            }
        }
        Some(out.into_values().collect())
    }
}
