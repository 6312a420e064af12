//! Where a repository's Packages and PackageMetadatas go: the one seam that apply, prune,
//! ownership, the digest short-cut and the restart rebuild all go through.
//!
//! - [`Sink::Crds`]: pkgr's own cluster-scoped `data.packaging.carvel.dev` CRDs (a cluster
//!   without kapp-controller).
//! - [`Sink::KappController`]: kapp-controller's storage, the `internal.packaging.carvel.dev`
//!   kinds in its global packaging namespace, named as its aggregated API names them (a Package:
//!   lower-case base32 "hex" of its name, no padding; a PackageMetadata: its plain name). Its API
//!   then serves them as Packages in every namespace, under their original names.
use super::apply::Kind;
use kube::api::{Api, ApiResource, DynamicObject};
use serde_json::Value;

/// The group and version kapp-controller stores Packages in.
pub const INTERNAL_GROUP: &str = "internal.packaging.carvel.dev";
pub const INTERNAL_API_VERSION: &str = "internal.packaging.carvel.dev/v1alpha1";
/// kapp-controller's CRDs behind its packaging API.
pub const INTERNAL_PACKAGES_CRD: &str = "internalpackages.internal.packaging.carvel.dev";
pub const INTERNAL_METADATAS_CRD: &str = "internalpackagemetadatas.internal.packaging.carvel.dev";
/// kapp-controller's aggregated packaging API.
pub const PACKAGING_API_SERVICE: &str = "v1alpha1.data.packaging.carvel.dev";
/// kapp-controller's (namespaced) PackageRepository CRD, which names the global namespace.
pub const KAPP_REPOSITORY_CRD: &str = "packagerepositories.packaging.carvel.dev";
pub const GLOBAL_NAMESPACE_ANNOTATION: &str = "packaging.carvel.dev/global-namespace";
pub const DEFAULT_GLOBAL_NAMESPACE: &str = "kapp-controller-packaging-global";
/// What kapp-controller's own PackageRepositories put on the objects they deploy.
pub const KAPP_REPOSITORY_REF_ANNOTATION: &str = "packaging.carvel.dev/package-repository-ref";
pub const KAPP_LABELS: [&str; 2] = ["kapp.k14s.io/app", "kapp.k14s.io/association"];

/// The destination of every object pkgr applies.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Sink {
    /// pkgr's cluster-scoped Package and PackageMetadata CRDs.
    #[default]
    Crds,
    /// kapp-controller's internal objects in its global packaging namespace.
    KappController { namespace: String },
}

impl Sink {
    /// The API resource objects of `kind` are written to.
    pub fn resource(&self, kind: Kind) -> ApiResource {
        let (group, api_version, kind_name, plural) = match (self, kind) {
            (Sink::Crds, Kind::Package) => (
                crate::api::DATA_GROUP,
                crate::api::DATA_API_VERSION,
                "Package",
                "packages",
            ),
            (Sink::Crds, Kind::PackageMetadata) => (
                crate::api::DATA_GROUP,
                crate::api::DATA_API_VERSION,
                "PackageMetadata",
                "packagemetadatas",
            ),
            (Sink::KappController { .. }, Kind::Package) => (
                INTERNAL_GROUP,
                INTERNAL_API_VERSION,
                "InternalPackage",
                "internalpackages",
            ),
            (Sink::KappController { .. }, Kind::PackageMetadata) => (
                INTERNAL_GROUP,
                INTERNAL_API_VERSION,
                "InternalPackageMetadata",
                "internalpackagemetadatas",
            ),
        };
        ApiResource {
            group: group.into(),
            version: "v1alpha1".into(),
            api_version: api_version.into(),
            kind: kind_name.into(),
            plural: plural.into(),
        }
    }

    /// The namespace objects live in (`None`: cluster-scoped).
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Sink::Crds => None,
            Sink::KappController { namespace } => Some(namespace),
        }
    }

    /// A dynamic client for objects of `kind`.
    pub fn api(&self, client: &kube::Client, kind: Kind) -> Api<DynamicObject> {
        let resource = self.resource(kind);
        match self.namespace() {
            None => Api::all_with(client.clone(), &resource),
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        }
    }

    /// The name an object called `name` (as the repository names it) is stored under.
    pub fn stored_name(&self, kind: Kind, name: &str) -> String {
        match (self, kind) {
            (Sink::KappController { .. }, Kind::Package) => internal_package_name(name),
            _ => name.to_string(),
        }
    }

    /// The name people know an object by (what `kubectl get packages` shows).
    pub fn display_name(&self, kind: Kind, stored: &str) -> String {
        match (self, kind) {
            (Sink::KappController { .. }, Kind::Package) => {
                external_package_name(stored).unwrap_or_else(|| stored.to_string())
            }
            _ => stored.to_string(),
        }
    }

    /// Turn a desired object (as pkgr's Package CRD shapes it) into what this sink stores:
    /// apiVersion, kind, namespace and name. Returns the stored name.
    pub fn shape(&self, kind: Kind, object: &mut Value) -> String {
        let Sink::KappController { namespace } = self else {
            return object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
        };
        let resource = self.resource(kind);
        let Some(map) = object.as_object_mut() else {
            return String::new();
        };
        map.insert("apiVersion".into(), Value::String(resource.api_version));
        map.insert("kind".into(), Value::String(resource.kind));
        let Some(metadata) = map.get_mut("metadata").and_then(Value::as_object_mut) else {
            return String::new();
        };
        // kapp-controller's API keeps `+` in names: the original, not pkgr's DNS-1123 stand-in.
        let original = metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
            .and_then(|a| a.remove(crate::repository::ORIGINAL_NAME_ANNOTATION))
            .and_then(|v| v.as_str().map(str::to_string));
        let name = original.unwrap_or_else(|| {
            metadata
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        });
        let stored = self.stored_name(kind, &name);
        metadata.insert("name".into(), Value::String(stored.clone()));
        metadata.insert("namespace".into(), Value::String(namespace.clone()));
        stored
    }

    /// For people: where the Packages go.
    pub fn describe(&self) -> String {
        match self {
            Sink::Crds => "cluster-scoped Packages and PackageMetadatas (pkgr's CRDs)".to_string(),
            Sink::KappController { namespace } => format!(
                "kapp-controller's global packaging namespace {namespace}, served in every namespace by its packaging API"
            ),
        }
    }
}

/// The kapp-controller PackageRepository (`namespace/name`) that deployed an object, or the kapp
/// app that did: such objects are kapp-controller's, never pkgr's to write over or delete.
pub fn kapp_controller_holder(meta: &kube::api::ObjectMeta) -> Option<String> {
    if let Some(reference) = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(KAPP_REPOSITORY_REF_ANNOTATION))
    {
        return Some(reference.clone());
    }
    let labels = meta.labels.as_ref()?;
    KAPP_LABELS
        .iter()
        .find_map(|l| labels.get(*l))
        .map(|app| format!("kapp app {app}"))
}

const HEX_ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";

/// kapp-controller's stored name of a Package: base32 with the "extended hex" alphabet
/// (RFC 4648 §7), no padding, lower case.
pub fn internal_package_name(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    for chunk in bytes.chunks(5) {
        let mut buffer = [0u8; 5];
        buffer[..chunk.len()].copy_from_slice(chunk);
        let bits = buffer.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        // 8 output characters per 5 bytes; fewer for a short last chunk (no padding).
        let characters = (chunk.len() * 8).div_ceil(5);
        for i in 0..characters {
            let index = (bits >> (35 - 5 * i)) & 0x1f;
            out.push(HEX_ALPHABET[index as usize] as char);
        }
    }
    out
}

/// The original name of a Package stored as `stored` (`None`: not a name kapp-controller's API
/// could decode either).
pub fn external_package_name(stored: &str) -> Option<String> {
    let mut bits = 0u64;
    let mut count = 0u32;
    let mut out = Vec::with_capacity(stored.len() * 5 / 8);
    for c in stored.bytes() {
        let value = HEX_ALPHABET.iter().position(|a| *a == c.to_ascii_lowercase())? as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    // Leftover bits must be zero and fewer than a character (as Go's strict decoder requires).
    if bits != 0 || count >= 5 {
        return None;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_as_kapp_controller_stores_them() {
        // What kapp-controller v0.53 writes for its own repositories.
        assert_eq!(
            internal_package_name("simple-app.corp.com.1.0.0"),
            "edkmqs3cckmm2s3g5phmusjg5phmur9e64n30bhg"
        );
        // Every length of the last 5-byte group (no padding).
        for name in ["a", "ab", "abc", "abcd", "abcde", "p.corp.com.1.0.0+vmware.1"] {
            let stored = internal_package_name(name);
            assert!(!stored.contains('='), "{stored}");
            assert!(
                stored
                    .bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'v').contains(&c))
            );
            assert_eq!(external_package_name(&stored).as_deref(), Some(name));
        }
        assert_eq!(internal_package_name("f"), "co");
        // RFC 4648 §10 test vectors, lower case, no padding.
        assert_eq!(internal_package_name("foobar"), "cpnmuoj1e8");
        assert_eq!(external_package_name("cpnmuoj1e8").as_deref(), Some("foobar"));
        assert_eq!(external_package_name("not-base32"), None);
        assert_eq!(external_package_name("cp"), None, "leftover bits set");
    }

    #[test]
    fn shape_for_kapp_controller() {
        let sink = Sink::KappController {
            namespace: "global".into(),
        };
        let mut package = json!({"apiVersion": "data.packaging.carvel.dev/v1alpha1", "kind": "Package",
            "metadata": {"name": "p.corp.com.1.0.0-vmware.1.0123", "annotations": {
                "pkgr.carvel.dev/original-name": "p.corp.com.1.0.0+vmware.1", "keep": "x"}},
            "spec": {"refName": "p.corp.com", "version": "1.0.0+vmware.1"}});
        let stored = sink.shape(Kind::Package, &mut package);
        assert_eq!(stored, internal_package_name("p.corp.com.1.0.0+vmware.1"));
        assert_eq!(package["apiVersion"], INTERNAL_API_VERSION);
        assert_eq!(package["kind"], "InternalPackage");
        assert_eq!(package["metadata"]["namespace"], "global");
        assert_eq!(package["metadata"]["name"], json!(stored));
        assert_eq!(package["metadata"]["annotations"], json!({"keep": "x"}));
        assert_eq!(
            sink.display_name(Kind::Package, &stored),
            "p.corp.com.1.0.0+vmware.1"
        );
        let mut metadata = json!({"apiVersion": "data.packaging.carvel.dev/v1alpha1", "kind": "PackageMetadata",
            "metadata": {"name": "p.corp.com"}, "spec": {}});
        assert_eq!(sink.shape(Kind::PackageMetadata, &mut metadata), "p.corp.com");
        assert_eq!(metadata["kind"], "InternalPackageMetadata");

        let mut unchanged = json!({"metadata": {"name": "a.b.c.1.0.0"}});
        assert_eq!(Sink::Crds.shape(Kind::Package, &mut unchanged), "a.b.c.1.0.0");
        assert_eq!(unchanged, json!({"metadata": {"name": "a.b.c.1.0.0"}}));
    }

    #[test]
    fn objects_kapp_controller_deployed() {
        let meta = |v: Value| -> kube::api::ObjectMeta { serde_json::from_value(v).unwrap() };
        assert_eq!(
            kapp_controller_holder(&meta(
                json!({"annotations": {KAPP_REPOSITORY_REF_ANNOTATION: "kapp-controller-packaging-global/tce"}})
            ))
            .as_deref(),
            Some("kapp-controller-packaging-global/tce")
        );
        assert_eq!(
            kapp_controller_holder(&meta(json!({"labels": {"kapp.k14s.io/app": "1690"}}))).as_deref(),
            Some("kapp app 1690")
        );
        assert_eq!(
            kapp_controller_holder(&meta(json!({"labels": {"other": "x"}}))),
            None
        );
    }
}
