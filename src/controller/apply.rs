//! Apply, overlap and prune (SPEC Reconcile 6): server-side apply with one field manager, in
//! parallel, never reading before a write; what a repository no longer contains is deleted.
use super::error::ReconcileError;
use crate::api::PackageRepository;
use crate::repository::Output;
use kube::{Resource, ResourceExt};
use serde_json::Value;
use std::collections::BTreeSet;

/// The one field manager of every pkgr write.
pub const FIELD_MANAGER: &str = "pkgr";
/// Label naming the repository that applied an object (its name, or a hash when longer than a label allows).
pub const REPOSITORY_LABEL: &str = "pkgr.packaging.carvel.dev/repository";
/// The repository's full name, for people and for names longer than a label value.
pub const REPOSITORY_ANNOTATION: &str = "pkgr.packaging.carvel.dev/repository-name";
/// What a reconcile applied, on every object it wrote: `<fetched>#<generation>#<written>#<kept>`
/// (the source's digest reference, the repository's generation, how many objects it wrote and
/// how many it left to other repositories). A restarted controller rebuilds the digest short-cut
/// from this and the repository's status instead of applying everything again.
pub const APPLIED_SET_ANNOTATION: &str = "pkgr.packaging.carvel.dev/applied-set";
/// Upstream's annotation deciding which of two repositories supplies an object.
pub const REVISION_ANNOTATION: &str = "packaging.carvel.dev/revision";
const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// Which of the two data kinds an object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    PackageMetadata,
    Package,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Package => "Package",
            Kind::PackageMetadata => "PackageMetadata",
        }
    }

    /// The resource name kubectl takes.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Package => "packages",
            Kind::PackageMetadata => "packagemetadatas",
        }
    }
}

/// Who wrote an object, from its managedFields: `kubectl-create, helm`.
pub fn writers(meta: &kube::api::ObjectMeta) -> String {
    let mut names: Vec<&str> = meta
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|e| e.manager.as_deref())
        .collect();
    names.dedup();
    if names.is_empty() {
        "an unknown client".to_string()
    } else {
        names.join(", ")
    }
}

/// One object to apply, already labelled and owned.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub kind: Kind,
    /// The stored name.
    pub name: String,
    /// The object as compact JSON until it is sent: a tenth of what its parsed form holds, so
    /// a repository of 10,000 Packages waits for its applies in a few MiB.
    pub json: Box<str>,
    /// The object exists and is this repository's (or it wins it from another repository):
    /// apply with force. A new object is applied without, so that one created by someone else in
    /// the meantime is a conflict, not taken over.
    pub take_over: bool,
}

impl Desired {
    pub fn new(kind: Kind, name: &str, object: &Value) -> Desired {
        Desired {
            kind,
            name: name.to_string(),
            json: object.to_string().into_boxed_str(),
            take_over: false,
        }
    }

    /// The object, parsed (for the few compared with another repository's copy, and at send time).
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }

    /// The object as sent: with the applied-set annotation `mark` (see [`APPLIED_SET_ANNOTATION`]).
    pub fn body(&self, mark: &str) -> Value {
        let mut object = self.value();
        if let Some(annotations) = object
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            annotations.insert(APPLIED_SET_ANNOTATION.into(), Value::String(mark.to_string()));
        }
        object
    }
}

/// The label value for a repository name: the name itself when it fits in 63 characters.
pub fn label_value(repository: &str) -> String {
    use sha2::Digest as _;
    if repository.len() <= 63 {
        repository.to_string()
    } else {
        let hash = sha2::Sha256::digest(repository.as_bytes());
        format!("sha256-{}", &hex::encode(hash)[..40])
    }
}

/// The objects `output` makes, each labelled with and owned by `repo`, shaped for `sink`.
pub fn desired_objects(
    repo: &PackageRepository,
    output: Output,
    sink: &super::sink::Sink,
) -> Result<Vec<Desired>, ReconcileError> {
    let name = repo.metadata.name.clone().ok_or(ReconcileError::Unnamed)?;
    let owner = repo.controller_owner_ref(&()).ok_or(ReconcileError::Unnamed)?;
    let owner = serde_json::to_value(owner).map_err(|source| ReconcileError::Serialize {
        what: "the owner reference".into(),
        source,
    })?;
    let mut out = Vec::with_capacity(output.packages.len() + output.metadatas.len());
    // Each typed object is dropped as soon as its JSON is made.
    let items = output
        .metadatas
        .into_iter()
        .map(|m| (Kind::PackageMetadata, m.name_any(), serde_json::to_value(m)))
        .chain(
            output
                .packages
                .into_iter()
                .map(|p| (Kind::Package, p.name_any(), serde_json::to_value(p))),
        );
    for (kind, object_name, value) in items {
        let mut object = value.map_err(|source| ReconcileError::Serialize {
            what: format!("{} {object_name}", kind.as_str()),
            source,
        })?;
        let metadata = object
            .as_object_mut()
            .and_then(|o| {
                o.entry("metadata")
                    .or_insert_with(|| Value::Object(Default::default()))
                    .as_object_mut()
            })
            .ok_or(ReconcileError::Unnamed)?;
        // Server-owned fields copied from a file would make the apply fail or fight the server.
        for field in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "managedFields",
            "selfLink",
        ] {
            metadata.remove(field);
        }
        let labels = metadata
            .entry("labels")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(REPOSITORY_LABEL.into(), Value::String(label_value(&name)));
            labels.insert(MANAGED_BY_LABEL.into(), Value::String("pkgr".into()));
        }
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.insert(REPOSITORY_ANNOTATION.into(), Value::String(name.clone()));
        }
        metadata.insert("ownerReferences".into(), Value::Array(vec![owner.clone()]));
        let stored = sink.shape(kind, &mut object);
        out.push(Desired {
            kind,
            name: if stored.is_empty() { object_name } else { stored },
            json: object.to_string().into_boxed_str(),
            take_over: false,
        });
    }
    Ok(out)
}

/// The applied-set annotation value (see [`APPLIED_SET_ANNOTATION`]).
pub fn applied_set(fetched: &str, generation: Option<i64>, written: usize, kept: usize) -> String {
    format!("{fetched}#{}#{written}#{kept}", generation.unwrap_or(0))
}

/// Did only pkgr write this object (no `kubectl edit`, no other tool since)?
pub fn written_only_by_pkgr(meta: &kube::api::ObjectMeta) -> bool {
    let entries = meta.managed_fields.as_deref().unwrap_or_default();
    !entries.is_empty()
        && entries
            .iter()
            .all(|entry| entry.manager.as_deref() == Some(FIELD_MANAGER) || entry.subresource.is_some())
}

/// The repository an existing object belongs to, from its ownerReference or annotation.
pub fn owner_of(meta: &kube::api::ObjectMeta) -> Option<String> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "PackageRepository")
        .map(|o| o.name.clone())
        .or_else(|| {
            meta.annotations
                .as_ref()
                .and_then(|a| a.get(REPOSITORY_ANNOTATION).cloned())
        })
}

/// What to do with an object another repository may already supply.
#[derive(Clone, Debug, PartialEq)]
pub enum Overlap {
    /// Ours (or nobody's): apply it.
    Apply,
    /// Another repository supplies the identical object; it keeps it.
    Shared { theirs: String },
    /// Another repository's copy has the higher revision; it keeps it.
    TheirsWins { theirs: String },
    /// Ours has the higher revision: take it over.
    OursWins { theirs: String },
}

/// SPEC step 6: identical → first owner keeps it; higher revision wins; else conflict.
pub fn overlap(
    ours: &str,
    desired: &Desired,
    existing: Option<(&kube::api::ObjectMeta, Value)>,
) -> Result<Overlap, ReconcileError> {
    let Some((meta, existing)) = existing else {
        return Ok(Overlap::Apply);
    };
    let theirs = match owner_of(meta) {
        Some(theirs) if theirs != ours => theirs,
        _ => return Ok(Overlap::Apply),
    };
    let desired_object = desired.value();
    let ours_spec = desired_object.get("spec").unwrap_or(&Value::Null);
    let their_spec = existing.get("spec").unwrap_or(&Value::Null);
    if ours_spec == their_spec {
        return Ok(Overlap::Shared { theirs });
    }
    let revision = |v: &Value| {
        v.pointer("/metadata/annotations")
            .and_then(|a| a.get(REVISION_ANNOTATION))
            .and_then(Value::as_str)
            .and_then(parse_revision)
    };
    match (revision(&desired_object), revision(&existing)) {
        (Some(a), Some(b)) if a > b => Ok(Overlap::OursWins { theirs }),
        (Some(a), Some(b)) if a < b => Ok(Overlap::TheirsWins { theirs }),
        (Some(_), None) => Ok(Overlap::OursWins { theirs }),
        (None, Some(_)) => Ok(Overlap::TheirsWins { theirs }),
        _ => Err(ReconcileError::Conflict {
            kind: desired.kind.as_str(),
            name: desired.name.clone(),
            ours: ours.to_string(),
            theirs,
            field: first_difference(ours_spec, their_spec, "spec").unwrap_or_else(|| "spec".into()),
        }),
    }
}

/// `1`, `1.2`, `2.0.1` as numbers compared part by part.
fn parse_revision(text: &str) -> Option<Vec<u64>> {
    text.trim().split('.').map(|p| p.parse().ok()).collect()
}

/// The path of the first field where `a` and `b` differ.
pub fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    if a == b {
        return None;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                first_difference(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &format!("{path}.{k}"),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{path}[{i}]"))),
        _ => Some(path.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn desired(spec: Value, revision: Option<&str>) -> Desired {
        let mut object = json!({"apiVersion": "data.packaging.carvel.dev/v1alpha1", "kind": "Package",
            "metadata": {"name": "p.example.com.1.0.0", "annotations": {}}, "spec": spec});
        if let Some(r) = revision {
            object["metadata"]["annotations"][REVISION_ANNOTATION] = json!(r);
        }
        Desired::new(Kind::Package, "p.example.com.1.0.0", &object)
    }

    fn owned_by(repo: &str) -> kube::api::ObjectMeta {
        kube::api::ObjectMeta {
            owner_references: Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                    api_version: "install.package.carvel.dev/v1alpha1".into(),
                    kind: "PackageRepository".into(),
                    name: repo.into(),
                    uid: "u".into(),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }
    }

    #[test]
    fn overlap_rules() {
        let ours = desired(json!({"version": "1.0.0", "template": {"image": "a"}}), None);
        assert_eq!(overlap("mine", &ours, None).unwrap(), Overlap::Apply);
        assert_eq!(
            overlap(
                "mine",
                &ours,
                Some((&owned_by("mine"), desired(json!({}), None).value()))
            )
            .unwrap(),
            Overlap::Apply
        );
        let identical = ours.value();
        assert_eq!(
            overlap("mine", &ours, Some((&owned_by("other"), identical))).unwrap(),
            Overlap::Shared {
                theirs: "other".into()
            }
        );
        let theirs = desired(json!({"version": "1.0.0", "template": {"image": "b"}}), None);
        let err = overlap("mine", &ours, Some((&owned_by("other"), theirs.value()))).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("mine") && text.contains("other") && text.contains("spec.template.image"),
            "{text}"
        );

        let ours_v2 = desired(json!({"version": "1.0.0", "template": {"image": "a"}}), Some("2"));
        let theirs_v1 = desired(
            json!({"version": "1.0.0", "template": {"image": "b"}}),
            Some("1.5"),
        );
        assert_eq!(
            overlap("mine", &ours_v2, Some((&owned_by("other"), theirs_v1.value()))).unwrap(),
            Overlap::OursWins {
                theirs: "other".into()
            }
        );
        let ours_v1 = desired(json!({"version": "1.0.0", "template": {"image": "a"}}), Some("1"));
        assert_eq!(
            overlap("mine", &ours_v1, Some((&owned_by("other"), theirs_v1.value()))).unwrap(),
            Overlap::TheirsWins {
                theirs: "other".into()
            }
        );
    }

    #[test]
    fn long_repository_names_get_a_hashed_label() {
        assert_eq!(label_value("short"), "short");
        let long = "x".repeat(100);
        let value = label_value(&long);
        assert!(value.len() <= 63 && value.starts_with("sha256-"));
        assert_eq!(value, label_value(&long));
    }

    #[test]
    fn first_difference_paths() {
        assert_eq!(
            first_difference(&json!({"a": [1, {"b": 2}]}), &json!({"a": [1, {"b": 3}]}), "spec").as_deref(),
            Some("spec.a[1].b")
        );
        assert_eq!(first_difference(&json!({"a": 1}), &json!({"a": 1}), "spec"), None);
        assert_eq!(
            first_difference(&json!({"a": 1}), &json!({"c": 1}), "spec").as_deref(),
            Some("spec.a")
        );
    }
}

#[cfg(test)]
mod body_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_applied_set_is_marked_at_send_time() {
        let object = json!({"metadata": {"name": "a.b.c", "annotations": {"keep": "1"}}, "spec": {"x": 1}});
        let desired = Desired::new(Kind::PackageMetadata, "a.b.c", &object);
        assert_eq!(desired.value(), object);
        let body = desired.body("r@sha256:1#3#2#0");
        assert_eq!(
            body["metadata"]["annotations"][APPLIED_SET_ANNOTATION],
            "r@sha256:1#3#2#0"
        );
        assert_eq!(body["metadata"]["annotations"]["keep"], "1");
        assert_eq!(body["spec"], json!({"x": 1}));
    }
}
