//! The fake API server's write semantics: server-side apply (fields per manager, conflicts
//! without force), JSON patch (test/add/remove/replace), JSON merge patch, and managedFields.
use serde_json::{Map, Value, json};

/// The entry of `manager` with `operation` in managedFields, created when missing. Its
/// `fieldsV1` records which labels, annotations, owners and top-level fields an apply set (a
/// simplified form of the real field set, enough to remove what an applier stops applying).
fn entry<'a>(object: &'a mut Value, manager: &str, operation: &str) -> &'a mut Value {
    let fields = object["metadata"]["managedFields"].take();
    let mut list = match fields {
        Value::Array(list) => list,
        _ => vec![],
    };
    let position = list
        .iter()
        .position(|e| e["manager"] == manager && e["operation"] == operation);
    let index = match position {
        Some(i) => i,
        None => {
            list.push(
                json!({"manager": manager, "operation": operation, "apiVersion": "v1",
                             "fieldsType": "FieldsV1", "fieldsV1": {}}),
            );
            list.len() - 1
        }
    };
    object["metadata"]["managedFields"] = Value::Array(list);
    &mut object["metadata"]["managedFields"][index]
}

pub fn add_manager(object: &mut Value, manager: &str, operation: &str) {
    entry(object, manager, operation)["time"] = json!("2026-01-01T00:00:00Z");
}

/// A create through apply records the manager as an applier.
pub fn set_manager_operation(object: &mut Value, manager: &str, operation: &str) {
    if let Some(list) = object["metadata"]["managedFields"].as_array_mut() {
        for e in list.iter_mut().filter(|e| e["manager"] == manager) {
            e["operation"] = json!(operation);
        }
    }
    let body = object.clone();
    record_applied(object, manager, &body);
}

fn record_applied(object: &mut Value, manager: &str, body: &Value) {
    let keys = |v: Option<&Value>| -> Value {
        json!(
            v.and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        )
    };
    let owners: Vec<Value> = body["metadata"]["ownerReferences"]
        .as_array()
        .map(|o| o.iter().map(|r| r["uid"].clone()).collect())
        .unwrap_or_default();
    let top: Vec<String> = body
        .as_object()
        .map(|m| {
            m.keys()
                .filter(|k| !matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let e = entry(object, manager, "Apply");
    e["fieldsV1"] = json!({"labels": keys(body["metadata"].get("labels")),
                           "annotations": keys(body["metadata"].get("annotations")),
                           "owners": owners, "top": top});
}

fn applied_before(old: &Value, manager: &str) -> Value {
    old["metadata"]["managedFields"]
        .as_array()
        .and_then(|l| {
            l.iter()
                .find(|e| e["manager"] == manager && e["operation"] == "Apply")
        })
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(json!({}))
}

/// A non-forced apply that changes the spec of an object another manager also manages conflicts.
pub fn apply_conflict(old: &Value, body: &Value, manager: &str, subresource: Option<&str>) -> Option<String> {
    if subresource.is_some() || body.get("spec").is_none() || body.get("spec") == old.get("spec") {
        return None;
    }
    old["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] != manager && e.get("subresource").is_none())
        .and_then(|e| e["manager"].as_str().map(str::to_string))
}

/// Server-side apply of `body` by `manager` over `old`.
pub fn server_side_apply(old: &Value, body: &Value, manager: &str, subresource: Option<&str>) -> Value {
    let mut new = old.clone();
    if subresource == Some("status") {
        new["status"] = body["status"].clone();
        let e = entry(&mut new, manager, "Apply");
        e["subresource"] = json!("status");
        return new;
    }
    let before = applied_before(old, manager);
    let listed = |field: &str, key: &Value| before[field].as_array().is_some_and(|l| l.contains(key));
    // Top-level fields: the applied ones replace; ones this manager alone applied before and
    // no longer applies are removed.
    if let Some(map) = new.as_object_mut() {
        map.retain(|k, _| !listed("top", &json!(k)) || body.get(k).is_some());
    }
    for (k, v) in body.as_object().into_iter().flatten() {
        if !matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status") {
            new[k] = v.clone();
        }
    }
    for field in ["labels", "annotations"] {
        let mut merged: Map<String, Value> = old["metadata"][field]
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !listed(field, &json!(k)))
            .collect();
        for (k, v) in body["metadata"][field].as_object().into_iter().flatten() {
            merged.insert(k.clone(), v.clone());
        }
        set_or_remove(&mut new["metadata"], field, Value::Object(merged));
    }
    if body["metadata"].get("ownerReferences").is_some() || before.get("owners").is_some() {
        let mut owners: Vec<Value> = old["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| !listed("owners", &r["uid"]))
            .collect();
        for r in body["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
        {
            owners.retain(|o| o["uid"] != r["uid"]);
            owners.push(r.clone());
        }
        set_or_remove(&mut new["metadata"], "ownerReferences", Value::Array(owners));
    }
    add_manager(&mut new, manager, "Apply");
    record_applied(&mut new, manager, body);
    new
}

fn set_or_remove(meta: &mut Value, field: &str, value: Value) {
    let empty = match &value {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    if let Some(m) = meta.as_object_mut() {
        if empty {
            m.remove(field);
        } else {
            m.insert(field.to_string(), value);
        }
    }
}

/// RFC 7386 merge; a status patch changes only the status.
pub fn merge(old: &Value, body: &Value, subresource: Option<&str>) -> Value {
    fn apply(target: &mut Value, patch: &Value) {
        let Value::Object(patch) = patch else {
            *target = patch.clone();
            return;
        };
        if !target.is_object() {
            *target = json!({});
        }
        for (k, v) in patch {
            if v.is_null() {
                target.as_object_mut().map(|m| m.remove(k));
            } else {
                apply(&mut target[k], v);
            }
        }
    }
    let mut new = old.clone();
    if subresource == Some("status") {
        apply(&mut new["status"], &body["status"]);
    } else {
        apply(&mut new, body);
    }
    new
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// RFC 6902 with the operations clients send (test, add, remove, replace).
pub fn json_patch(old: &Value, ops: &Value) -> Result<Value, String> {
    let mut doc = old.clone();
    for op in ops.as_array().ok_or("a JSON patch must be a list")? {
        let path = op["path"].as_str().ok_or("op without a path")?;
        let tokens: Vec<String> = path.split('/').skip(1).map(unescape).collect();
        let (last, parents) = tokens.split_last().ok_or("empty path")?;
        match op["op"].as_str() {
            Some("test") => {
                let found = doc.pointer(path).cloned().unwrap_or(Value::Null);
                if found != op["value"] {
                    return Err(format!("the test of {path} failed"));
                }
            }
            Some(verb @ ("add" | "replace" | "remove")) => {
                let mut parent = &mut doc;
                for t in parents {
                    parent = match parent {
                        Value::Array(a) => a.get_mut(t.parse::<usize>().map_err(|e| e.to_string())?),
                        Value::Object(m) => m.get_mut(t),
                        _ => None,
                    }
                    .ok_or_else(|| format!("{path}: no such parent"))?;
                }
                match (parent, verb) {
                    (Value::Object(m), "remove") => {
                        m.remove(last)
                            .ok_or_else(|| format!("{path}: nothing to remove"))?;
                    }
                    (Value::Object(m), _) => {
                        m.insert(last.clone(), op["value"].clone());
                    }
                    (Value::Array(a), "add") if last == "-" => a.push(op["value"].clone()),
                    (Value::Array(a), verb) => {
                        let i: usize = last.parse().map_err(|_| format!("{path}: bad index"))?;
                        match verb {
                            "remove" if i < a.len() => {
                                a.remove(i);
                            }
                            "replace" if i < a.len() => a[i] = op["value"].clone(),
                            "add" if i <= a.len() => a.insert(i, op["value"].clone()),
                            _ => return Err(format!("{path}: index out of range")),
                        }
                    }
                    _ => return Err(format!("{path}: not a container")),
                }
            }
            other => return Err(format!("unsupported JSON patch operation {other:?}")),
        }
    }
    Ok(doc)
}
