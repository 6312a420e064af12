//! kbld's rewrite of image references: every string under a key named `image` that equals an
//! ImagesLock entry's `kbld.carvel.dev/id` becomes that entry's (relocated) image.
use crate::bundle::lock::{ImagesLock, LockedImage};
use serde_json::Value;
use std::collections::HashMap;

/// The annotation kbld puts on each ImagesLock entry, naming the reference it replaces.
pub const KBLD_ID_ANNOTATION: &str = "kbld.carvel.dev/id";

/// Lookup from the reference written in Package YAML to the image to use instead.
#[derive(Debug, Default)]
pub(crate) struct Relocations<'a> {
    by_id: HashMap<&'a str, &'a LockedImage>,
}

impl<'a> Relocations<'a> {
    /// Entries without the id annotation cannot match anything and are ignored, as kbld does;
    /// when two entries share an id, the first one wins (kbld's override order).
    pub(crate) fn new(lock: Option<&'a ImagesLock>) -> Relocations<'a> {
        let mut by_id = HashMap::new();
        for entry in lock.map(|l| l.images.as_slice()).unwrap_or_default() {
            if let Some(id) = entry.annotations.get(KBLD_ID_ANNOTATION) {
                by_id.entry(id.as_str()).or_insert(entry);
            }
        }
        Relocations { by_id }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Rewrite matching `image` strings anywhere in `value`; returns the lock entry used for
    /// each rewritten reference, in document order.
    pub(crate) fn apply(&self, value: &mut Value) -> Vec<&'a LockedImage> {
        let mut used = Vec::new();
        if !self.is_empty() {
            self.walk(value, &mut used);
        }
        used
    }

    fn walk(&self, value: &mut Value, used: &mut Vec<&'a LockedImage>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    if key == "image" {
                        if let Value::String(reference) = child {
                            if let Some(entry) = self.by_id.get(reference.as_str()) {
                                reference.clone_from(&entry.image);
                                used.push(entry);
                            }
                            continue;
                        }
                    }
                    self.walk(child, used);
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.walk(item, used);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::lock::LockedImage;
    use serde_json::json;

    fn lock(entries: &[(&str, Option<&str>)]) -> ImagesLock {
        ImagesLock {
            images: entries
                .iter()
                .map(|(image, id)| LockedImage {
                    image: image.to_string(),
                    annotations: id
                        .map(|id| [(KBLD_ID_ANNOTATION.to_string(), id.to_string())].into())
                        .unwrap_or_default(),
                })
                .collect(),
        }
    }

    #[test]
    fn exact_matches_under_image_keys_are_replaced_at_any_depth() {
        let l = lock(&[("reg.corp/r@sha256:aa", Some("user/app:v1"))]);
        let r = Relocations::new(Some(&l));
        let mut doc = json!({
            "spec": {"template": {"spec": {"fetch": [
                {"imgpkgBundle": {"image": "user/app:v1"}},
                {"image": {"url": "user/app:v1"}},
                {"imgpkgBundle": {"image": "user/app:v1 "}},
                {"imgpkgBundle": {"image": "user/app:v2"}}
            ]}}},
            "other": {"image": "user/app:v1", "images": "user/app:v1"}
        });
        assert_eq!(r.apply(&mut doc).len(), 2);
        let fetch = &doc["spec"]["template"]["spec"]["fetch"];
        assert_eq!(fetch[0]["imgpkgBundle"]["image"], "reg.corp/r@sha256:aa");
        assert_eq!(
            fetch[1]["image"]["url"], "user/app:v1",
            "a map under image is walked, url is not an image key"
        );
        assert_eq!(
            fetch[2]["imgpkgBundle"]["image"], "user/app:v1 ",
            "no trimming: exact match only"
        );
        assert_eq!(fetch[3]["imgpkgBundle"]["image"], "user/app:v2");
        assert_eq!(doc["other"]["image"], "reg.corp/r@sha256:aa");
        assert_eq!(doc["other"]["images"], "user/app:v1");
    }

    #[test]
    fn entries_without_an_id_match_nothing_and_the_first_id_wins() {
        let l = lock(&[
            ("reg/a@sha256:11", None),
            ("reg/b@sha256:22", Some("x")),
            ("reg/c@sha256:33", Some("x")),
        ]);
        let r = Relocations::new(Some(&l));
        let mut doc = json!({"image": "reg/a@sha256:11", "list": [{"image": "x"}]});
        assert_eq!(r.apply(&mut doc).len(), 1);
        assert_eq!(doc["image"], "reg/a@sha256:11");
        assert_eq!(doc["list"][0]["image"], "reg/b@sha256:22");
    }

    #[test]
    fn no_lock_changes_nothing() {
        let r = Relocations::new(None);
        let mut doc = json!({"image": "x"});
        assert!(r.apply(&mut doc).is_empty());
        assert_eq!(doc, json!({"image": "x"}));
    }
}
