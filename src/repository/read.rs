//! Reading the documents of `packages/`: parse each file, keep Packages and PackageMetadatas,
//! decode them as kapp-controller does, relocate their images, validate them.
use super::error::{Place, Problem, ProblemKind};
use super::{
    DroppedField, KBLD_IMAGES_ANNOTATION, Skipped, documents, gojson, kbld, relocate, upstream, validate, ytt,
};
use crate::api::{DATA_API_VERSION, PackageMetadataSpec, PackageSpec};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// The part of `metadata` that is carried over; everything else (namespace, uid, owner
/// references...) belongs to the cluster the repository is applied to.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Meta {
    name: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct Document<S> {
    #[serde(default)]
    metadata: Option<Meta>,
    #[serde(default)]
    spec: Option<S>,
}

/// A decoded, validated object and where it came from.
pub(crate) struct Built<S> {
    pub place: Place,
    /// The name as written (`refName.version` for a valid Package).
    pub original: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub spec: S,
}

impl<S: PartialEq> Built<S> {
    pub(crate) fn same_content(&self, other: &Built<S>) -> bool {
        self.original == other.original
            && self.labels == other.labels
            && self.annotations == other.annotations
            && self.spec == other.spec
    }
}

fn decode<S: serde::de::DeserializeOwned + Default>(
    kind: &str,
    value: serde_json::Value,
) -> Result<(Meta, S), ProblemKind> {
    match serde_path_to_error::deserialize::<_, Document<S>>(value) {
        Ok(doc) => Ok((doc.metadata.unwrap_or_default(), doc.spec.unwrap_or_default())),
        Err(error) => Err(ProblemKind::Decode {
            kind: kind.to_string(),
            field: error.path().to_string(),
            message: error.inner().to_string(),
        }),
    }
}

/// Everything collected while reading the documents.
#[derive(Default)]
pub(crate) struct Collector {
    pub problems: Vec<Problem>,
    pub skipped: Vec<Skipped>,
    pub packages: Vec<Built<PackageSpec>>,
    pub metadatas: Vec<Built<PackageMetadataSpec>>,
    /// The images rewritten references now point at.
    pub relocated: BTreeSet<String>,
    pub dropped: Vec<DroppedField>,
}

impl Collector {
    fn problem(&mut self, place: &Place, kind: ProblemKind) {
        self.problems.push(Problem {
            place: place.clone(),
            kind,
        });
    }

    /// Decode and validate one kept document; its problems are recorded instead.
    fn build<S: serde::de::DeserializeOwned + Default>(
        &mut self,
        kind: &str,
        place: Place,
        value: serde_json::Value,
        validate: fn(&str, &S) -> Vec<ProblemKind>,
    ) -> Option<Built<S>> {
        let (meta, spec) = match decode::<S>(kind, value) {
            Ok(decoded) => decoded,
            Err(problem) => {
                self.problem(&place, problem);
                return None;
            }
        };
        let original = meta.name.unwrap_or_default();
        let problems = validate(&original, &spec);
        if !problems.is_empty() {
            for p in problems {
                self.problem(&place, p);
            }
            return None;
        }
        Some(Built {
            place,
            original,
            labels: meta.labels,
            annotations: meta.annotations,
            spec,
        })
    }

    fn document(&mut self, place: Place, value: serde_json::Value, relocations: &relocate::Relocations) {
        let field = |name: &str| {
            value
                .get(name)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let (api_version, kind) = (field("apiVersion"), field("kind"));
        let kept = value.is_object()
            && api_version == DATA_API_VERSION
            && (kind == "Package" || kind == "PackageMetadata");
        if !kept {
            self.skipped.push(Skipped {
                file: place.file,
                document: place.document.unwrap_or(0),
                api_version,
                kind,
            });
            return;
        }
        let mut value = value;
        if !self.normalise(&place, &kind, &mut value) {
            return;
        }
        // kbld runs after the decode, on what it printed (kapp-controller's order).
        let rewritten = relocations.apply(&mut value);
        if !rewritten.is_empty() {
            self.relocated.extend(rewritten.iter().map(|e| e.image.clone()));
            annotate(
                &mut value,
                KBLD_IMAGES_ANNOTATION,
                kbld::images_annotation(&rewritten),
            );
        }
        if kind == "Package" {
            if let Some(built) = self.build(&kind, place, value, validate::package) {
                self.packages.push(built);
            }
        } else if let Some(built) = self.build(&kind, place, value, validate::package_metadata) {
            self.metadatas.push(built);
        }
    }

    /// Replace `spec` with what kapp-controller's decode and re-encode make of it; type errors
    /// are recorded and make the document fail (`false`).
    fn normalise(&mut self, place: &Place, kind: &str, value: &mut serde_json::Value) -> bool {
        let Some(object) = value.as_object_mut() else {
            return true;
        };
        let spec_type = if kind == "Package" {
            &upstream::PACKAGE_SPEC
        } else {
            &upstream::PACKAGE_METADATA_SPEC
        };
        let spec = object.remove("spec").unwrap_or_default();
        let decoded = gojson::normalise(&gojson::Ty::Struct(spec_type), spec, "spec");
        self.dropped
            .extend(decoded.dropped.into_iter().map(|field| DroppedField {
                place: place.clone(),
                field,
            }));
        if !decoded.errors.is_empty() {
            for e in decoded.errors {
                self.problem(
                    place,
                    ProblemKind::WrongType {
                        field: e.field,
                        expected: e.expected,
                        found: e.found,
                    },
                );
            }
            return false;
        }
        if let Some(spec) = decoded.value {
            object.insert("spec".to_string(), spec);
        }
        true
    }
}

/// Set `metadata.annotations[key]`, making the maps it needs.
fn annotate(value: &mut serde_json::Value, key: &str, text: String) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    if metadata.is_null() {
        *metadata = serde_json::Value::Object(Default::default());
    }
    if !metadata.is_object() {
        // A malformed metadata is reported by the decode; there is nothing to annotate.
        return;
    }
    let annotations = &mut metadata["annotations"];
    if !annotations.is_object() {
        *annotations = serde_json::Value::Object(Default::default());
    }
    annotations[key] = serde_json::Value::String(text);
}

/// Read, decode and validate every document of `inputs` (in order).
fn read_files(inputs: &[(&String, &[u8])], relocations: &relocate::Relocations) -> Collector {
    let mut collector = Collector::default();
    for (path, bytes) in inputs {
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => {
                collector.problem(
                    &Place {
                        file: path.to_string(),
                        document: None,
                    },
                    ProblemKind::NotUtf8 {
                        reason: error.to_string(),
                    },
                );
                continue;
            }
        };
        if let Some(line) = ytt::ytt_annotation_line(text) {
            let place = Place {
                file: path.to_string(),
                document: None,
            };
            collector.problem(&place, ProblemKind::Ytt { line });
            continue;
        }
        for doc in documents::parse(text) {
            let place = Place {
                file: path.to_string(),
                document: Some(doc.number),
            };
            match doc.value {
                Err(problem) => collector.problem(&place, problem),
                Ok(None) => {}
                Ok(Some(value)) => collector.document(place, value, relocations),
            }
        }
    }
    collector
}

/// Below this much YAML, one thread is faster than starting more.
const PARALLEL_THRESHOLD_BYTES: usize = 512 * 1024;

/// [`read_files`] over contiguous shares of the files on a few threads (parsing dominates the
/// cost of a large repository), results joined in file order so the output does not depend on
/// the number of threads.
pub(crate) fn read_all(inputs: &[(&String, &[u8])], relocations: &relocate::Relocations) -> Collector {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4);
    read_on(inputs, relocations, threads)
}

/// [`read_all`] on at most `threads` threads.
fn read_on(inputs: &[(&String, &[u8])], relocations: &relocate::Relocations, threads: usize) -> Collector {
    let total: usize = inputs.iter().map(|(_, b)| b.len()).sum();
    if threads < 2 || total < PARALLEL_THRESHOLD_BYTES {
        return read_files(inputs, relocations);
    }
    // Split by bytes, not by file count, so one huge file does not leave the others idle.
    let share = total.div_ceil(threads);
    let mut chunks: Vec<&[(&String, &[u8])]> = Vec::with_capacity(threads);
    let (mut start, mut size) = (0, 0);
    for (i, (_, bytes)) in inputs.iter().enumerate() {
        size += bytes.len();
        if size >= share {
            chunks.push(&inputs[start..=i]);
            (start, size) = (i + 1, 0);
        }
    }
    if start < inputs.len() {
        chunks.push(&inputs[start..]);
    }
    let results: Vec<Collector> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| scope.spawn(move || read_files(chunk, relocations)))
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(collector) => collector,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    let mut all = Collector::default();
    for part in results {
        all.problems.extend(part.problems);
        all.skipped.extend(part.skipped);
        all.packages.extend(part.packages);
        all.metadatas.extend(part.metadatas);
        all.relocated.extend(part.relocated);
        all.dropped.extend(part.dropped);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::FileTree;

    #[test]
    fn parallel_reading_gives_the_same_result_in_the_same_order() {
        let mut files = FileTree::new();
        for i in 0..3000 {
            let body = if i % 997 == 0 {
                format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n")
            } else if i % 1001 == 0 {
                format!(
                    "apiVersion: {DATA_API_VERSION}\nkind: Package\nmetadata: {{name: bad}}\nspec: {{refName: p{i}.corp.com, version: v1}}\n"
                )
            } else {
                format!(
                    "apiVersion: {DATA_API_VERSION}\nkind: Package\nmetadata:\n  name: p{i:04}.corp.com.1.0.0\nspec:\n  refName: p{i:04}.corp.com\n  version: 1.0.0\n  releaseNotes: {}\n",
                    "x".repeat(200)
                )
            };
            files.insert(format!("packages/p{i:04}.yml"), body.into_bytes());
        }
        let inputs: Vec<(&String, &[u8])> = files.iter().map(|(p, b)| (p, b.as_slice())).collect();
        let total: usize = inputs.iter().map(|(_, b)| b.len()).sum();
        assert!(
            total > PARALLEL_THRESHOLD_BYTES,
            "the input must take the parallel path"
        );
        let relocations = relocate::Relocations::new(None);
        let serial = read_files(&inputs, &relocations);
        // Four threads whatever the machine has: the parallel path is taken on one core too.
        let parallel = read_on(&inputs, &relocations, 4);
        assert_eq!(serial.problems, parallel.problems);
        // p1001 and p2002: wrong name and invalid version each.
        assert_eq!(serial.problems.len(), 4);
        assert_eq!(serial.problems[2].place.file, "packages/p2002.yml");
        assert_eq!(serial.skipped, parallel.skipped);
        assert_eq!(serial.skipped.len(), 4);
        let names = |c: &Collector| c.packages.iter().map(|p| p.original.clone()).collect::<Vec<_>>();
        assert_eq!(names(&serial), names(&parallel));
        assert_eq!(serial.packages.len(), 3000 - 4 - 2);
    }
}
