//! The fake API server's etcd: objects by resource, namespace and name, one resourceVersion
//! counter, the event history a watch replays, finalizers, owner garbage collection, and the
//! four write verbs (create, replace, patch, delete) with the API server's answers.
use super::patch;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `group/version/resource` (`v1/secrets`, `install.package.carvel.dev/v1alpha1/packagerepositories`).
pub type Resource = String;

/// Where an object lives.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub resource: Resource,
    pub namespace: Option<String>,
    pub name: String,
}

/// One change, as a watch delivers it.
#[derive(Clone, Debug)]
pub struct Change {
    pub rv: u64,
    pub kind: &'static str,
    pub key: Key,
    pub object: Value,
}

/// What a request gets back: status code and JSON body.
pub type Reply = (u16, Value);

#[derive(Default)]
pub struct Store {
    pub rv: u64,
    pub objects: BTreeMap<Key, Value>,
    /// Changes after `compacted_at`, oldest first.
    pub history: Vec<Change>,
    /// A watch from a resourceVersion older than this is answered with 410 Gone.
    pub compacted_at: u64,
    uid: u64,
}

/// The `Status` object the API server sends with an error.
pub fn status(code: u16, reason: &str, message: &str) -> Reply {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

/// `packagerepositories.install.package.carvel.dev` as the API server names a resource in messages.
pub fn qualified(resource: &str) -> String {
    let parts: Vec<&str> = resource.split('/').collect();
    match parts.as_slice() {
        [_, plural] => plural.to_string(),
        [group, _, plural] => format!("{plural}.{group}"),
        _ => resource.to_string(),
    }
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// What the API server does on every write: a Secret's stringData goes into data (base64); a
/// CustomResourceDefinition is established at once (its names accepted, its resource served).
fn normalise(resource: &str, object: &mut Value) {
    use base64::Engine;
    if resource == "apiextensions.k8s.io/v1/customresourcedefinitions" {
        object["status"]["conditions"] = json!([
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}
        ]);
        return;
    }
    if resource != "v1/secrets" {
        return;
    }
    let Some(strings) = object.as_object_mut().and_then(|o| o.remove("stringData")) else {
        return;
    };
    for (k, v) in strings.as_object().into_iter().flatten() {
        let text = v.as_str().unwrap_or_default();
        object["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
    }
}

impl Store {
    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(&mut self, kind: &'static str, key: &Key, object: &Value) -> Change {
        let change = Change {
            rv: self.rv,
            kind,
            key: key.clone(),
            object: object.clone(),
        };
        self.history.push(change.clone());
        change
    }

    /// Forget all history, as a restarted API server's watch cache does (after other writers
    /// moved the resourceVersion on): every watch resumed from before now gets 410 Gone.
    pub fn compact(&mut self) {
        self.next_rv();
        self.compacted_at = self.rv;
        self.history.clear();
    }

    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    /// POST: 409 AlreadyExists when the name is taken.
    pub fn create(&mut self, key: &Key, mut object: Value, manager: &str) -> (Reply, Vec<Change>) {
        if self.objects.contains_key(key) {
            let message = format!("{} \"{}\" already exists", qualified(&key.resource), key.name);
            return (status(409, "AlreadyExists", &message), vec![]);
        }
        self.uid += 1;
        normalise(&key.resource, &mut object);
        let rv = self.next_rv();
        let meta = &mut object["metadata"];
        meta["name"] = json!(key.name);
        if let Some(ns) = &key.namespace {
            meta["namespace"] = json!(ns);
        }
        meta["uid"] = json!(format!("uid-{}-{}", key.name, self.uid));
        meta["resourceVersion"] = json!(rv.to_string());
        meta["creationTimestamp"] = json!(now());
        meta["generation"] = json!(1);
        patch::add_manager(&mut object, manager, "Update");
        self.objects.insert(key.clone(), object.clone());
        let change = self.record("ADDED", key, &object);
        ((201, object), vec![change])
    }

    /// Store `object` as the new state of an existing `key`, bumping generation on a spec change.
    fn update(&mut self, key: &Key, old: &Value, mut object: Value) -> (Reply, Vec<Change>) {
        normalise(&key.resource, &mut object);
        for field in [
            "uid",
            "creationTimestamp",
            "namespace",
            "name",
            "deletionTimestamp",
        ] {
            match old["metadata"].get(field) {
                Some(v) => object["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = object["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
        let spec_changed = old.get("spec") != object.get("spec");
        object["metadata"]["generation"] = json!(generation + i64::from(spec_changed));
        if object == *old {
            return ((200, object), vec![]);
        }
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let finalizers_empty = object["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
        if object["metadata"].get("deletionTimestamp").is_some() && finalizers_empty {
            return self.remove(key, object);
        }
        self.objects.insert(key.clone(), object.clone());
        let change = self.record("MODIFIED", key, &object);
        ((200, object), vec![change])
    }

    /// PUT: the body's resourceVersion must be the current one (409 Conflict otherwise).
    pub fn replace(&mut self, key: &Key, object: Value, manager: &str) -> (Reply, Vec<Change>) {
        let Some(old) = self.objects.get(key).cloned() else {
            let message = format!("{} \"{}\" not found", qualified(&key.resource), key.name);
            return (status(404, "NotFound", &message), vec![]);
        };
        if let Some(rv) = object["metadata"]["resourceVersion"].as_str()
            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
        {
            return (conflict(key), vec![]);
        }
        let mut object = object;
        object["metadata"]["managedFields"] = old["metadata"]["managedFields"].clone();
        patch::add_manager(&mut object, manager, "Update");
        self.update(key, &old, object)
    }

    /// PATCH of the object or (`subresource` "status") its status.
    pub fn patch(
        &mut self,
        key: &Key,
        content_type: &str,
        body: &Value,
        subresource: Option<&str>,
        manager: &str,
        force: bool,
    ) -> (Reply, Vec<Change>) {
        let existing = self.objects.get(key).cloned();
        let is_apply = content_type.starts_with("application/apply-patch");
        let Some(old) = existing else {
            if is_apply && subresource.is_none() {
                let mut object = body.clone();
                let (reply, changes) = self.create(key, object.take(), manager);
                return match reply {
                    (201, mut created) => {
                        patch::set_manager_operation(&mut created, manager, "Apply");
                        self.objects.insert(key.clone(), created.clone());
                        if let Some(last) = self.history.last_mut() {
                            last.object = created.clone();
                        }
                        ((201, created), changes)
                    }
                    other => (other, changes),
                };
            }
            let message = format!("{} \"{}\" not found", qualified(&key.resource), key.name);
            return (status(404, "NotFound", &message), vec![]);
        };
        if let Some(rv) = body.pointer("/metadata/resourceVersion").and_then(Value::as_str)
            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
        {
            return (conflict(key), vec![]);
        }
        let new = if is_apply {
            if !force && let Some(other) = patch::apply_conflict(&old, body, manager, subresource) {
                let message = format!("Apply failed with 1 conflict: conflict with \"{other}\": .spec");
                return (status(409, "Conflict", &message), vec![]);
            }
            patch::server_side_apply(&old, body, manager, subresource)
        } else if content_type.starts_with("application/json-patch") {
            match patch::json_patch(&old, body) {
                Ok(v) => v,
                Err(message) => return (status(422, "Invalid", &message), vec![]),
            }
        } else {
            patch::merge(&old, body, subresource)
        };
        let mut new = new;
        if !is_apply {
            patch::add_manager(&mut new, manager, "Update");
        }
        self.update(key, &old, new)
    }

    /// DELETE: with finalizers only marks the object; otherwise removes it (and what it owns).
    pub fn delete(&mut self, key: &Key) -> (Reply, Vec<Change>) {
        let Some(old) = self.objects.get(key).cloned() else {
            let message = format!("{} \"{}\" not found", qualified(&key.resource), key.name);
            return (status(404, "NotFound", &message), vec![]);
        };
        let has_finalizers = old["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if old["metadata"].get("deletionTimestamp").is_some() {
                return ((200, old), vec![]);
            }
            let mut marked = old.clone();
            marked["metadata"]["deletionTimestamp"] = json!(now());
            self.next_rv();
            marked["metadata"]["resourceVersion"] = json!(self.rv.to_string());
            self.objects.insert(key.clone(), marked.clone());
            let change = self.record("MODIFIED", key, &marked);
            return ((200, marked), vec![change]);
        }
        self.remove(key, old)
    }

    /// Remove `key` for good, then collect objects whose every owner is gone, as the garbage
    /// collector of kube-controller-manager does.
    fn remove(&mut self, key: &Key, mut last: Value) -> (Reply, Vec<Change>) {
        self.objects.remove(key);
        self.next_rv();
        last["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let mut changes = vec![self.record("DELETED", key, &last)];
        let gone_uid = last["metadata"]["uid"].clone();
        let orphans: Vec<Key> = self
            .objects
            .iter()
            .filter(|(_, o)| {
                let owners = o["metadata"]["ownerReferences"].as_array();
                owners.is_some_and(|owners| {
                    !owners.is_empty()
                        && owners.iter().any(|r| r["uid"] == gone_uid)
                        && owners
                            .iter()
                            .all(|r| r["uid"] == gone_uid || !self.uid_exists(&r["uid"]))
                })
            })
            .map(|(k, _)| k.clone())
            .collect();
        for orphan in orphans {
            let (_, more) = self.delete(&orphan);
            changes.extend(more);
        }
        ((200, last), changes)
    }

    fn uid_exists(&self, uid: &Value) -> bool {
        self.objects.values().any(|o| o["metadata"]["uid"] == *uid)
    }
}

fn conflict(key: &Key) -> Reply {
    let message = format!(
        "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
        qualified(&key.resource),
        key.name
    );
    status(409, "Conflict", &message)
}
