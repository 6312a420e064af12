//! Reading a request: the path's resource, namespace, name and subresource, its query, which
//! objects a LIST or WATCH selects, and the shape a client asked for (metadata only or whole).
use super::store::Key;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Where a path points: resource, namespace, name, subresource.
pub(super) type Route = (String, Option<String>, Option<String>, Option<String>);

pub(super) fn route(path: &str) -> Option<Route> {
    let s: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (gv, rest) = match s.as_slice() {
        ["api", v, rest @ ..] => (v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (format!("{g}/{v}"), rest),
        _ => return None,
    };
    let (ns, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        _ => (None, rest),
    };
    let (res, name, sub) = match rest {
        [res] => (res, None, None),
        [res, name] => (res, Some(name.to_string()), None),
        [res, name, sub] => (res, Some(name.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    Some((format!("{gv}/{res}"), ns, name, sub))
}

/// Kind and apiVersion of a resource's objects.
pub(super) fn kind_of(resource: &str) -> (String, String) {
    let (gv, plural) = resource.rsplit_once('/').unwrap_or(("v1", resource));
    let kind = match plural {
        "secrets" => "Secret",
        "configmaps" => "ConfigMap",
        "leases" => "Lease",
        "events" => "Event",
        "packagerepositories" => "PackageRepository",
        "packages" => "Package",
        "packagemetadatas" => "PackageMetadata",
        "internalpackages" => "InternalPackage",
        "internalpackagemetadatas" => "InternalPackageMetadata",
        "customresourcedefinitions" => "CustomResourceDefinition",
        "apiservices" => "APIService",
        "namespaces" => "Namespace",
        other => other,
    };
    (kind.to_string(), gv.to_string())
}

/// Built-in kinds come without apiVersion and kind inside lists, as the real server sends them.
pub(super) fn is_builtin(resource: &str) -> bool {
    !resource.contains(".carvel.dev") && !resource.starts_with("apiextensions")
}

pub(super) fn matches(
    object: &Value,
    key: &Key,
    resource: &str,
    ns: Option<&str>,
    query: &BTreeMap<String, String>,
) -> bool {
    if key.resource != resource || (ns.is_some() && key.namespace.as_deref() != ns) {
        return false;
    }
    let labels = object.pointer("/metadata/labels");
    let label_ok = query.get("labelSelector").is_none_or(|sel| {
        sel.split(',')
            .filter(|t| !t.is_empty())
            .all(|term| match term.split_once('=') {
                Some((k, v)) => labels.and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v),
                None => labels.and_then(|l| l.get(term)).is_some(),
            })
    });
    let field_ok = query.get("fieldSelector").is_none_or(|sel| {
        sel.split(',')
            .filter(|t| !t.is_empty())
            .all(|term| match term.split_once('=') {
                Some(("metadata.name", v)) => key.name == v,
                Some(("metadata.namespace", v)) => key.namespace.as_deref() == Some(v),
                _ => true,
            })
    });
    label_ok && field_ok
}

/// The object as a metadata-only client asked for it.
pub(super) fn shaped(object: &Value, metadata_only: bool, in_list: bool, resource: &str) -> Value {
    if metadata_only {
        return json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": object["metadata"]});
    }
    let mut object = object.clone();
    if in_list && is_builtin(resource) {
        if let Some(m) = object.as_object_mut() {
            m.remove("apiVersion");
            m.remove("kind");
        }
    }
    object
}

pub(super) fn parse_query(q: Option<&str>) -> BTreeMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), percent_decode(v))
        })
        .collect()
}

pub(super) fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() + 1 && i + 3 <= bytes.len() {
            if let Ok(b) = u8::from_str_radix(&v[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

pub(super) fn collection(path: &str, query: &BTreeMap<String, String>) -> String {
    let selector = |name: &str| query.get(name).map(String::as_str).unwrap_or("");
    format!(
        "{path}?fieldSelector={}&labelSelector={}",
        selector("fieldSelector"),
        selector("labelSelector")
    )
}
