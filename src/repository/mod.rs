//! Bundle contents → Package and PackageMetadata objects: parse, validate, relocate, name.
//! Pure: no network, no cluster.
use crate::api::{DATA_API_VERSION, Package, PackageMetadata, PackageMetadataSpec, PackageSpec};
use crate::bundle::{FileTree, lock::ImagesLock};
use kube::api::ObjectMeta;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, hash_map::Entry};

mod contents;
mod documents;
mod error;
mod gojson;
mod kbld;
mod naming;
mod relocate;
mod upstream;
mod validate;
pub mod versions;

pub use contents::{inline_files, sub_path};
pub use error::{Place, Problem, ProblemKind, RepositoryError};
pub use kbld::{KBLD_IMAGES_ANNOTATION, KBLD_ORIGINS_ANNOTATION};
pub use naming::{
    MAX_NAME_LENGTH, ORIGINAL_NAME_ANNOTATION, is_dns1123_subdomain, is_mapped_name, stored_name,
};
pub use relocate::KBLD_ID_ANNOTATION;
pub use upstream::field_table;

/// The directory a repository keeps its Package YAML in.
pub const PACKAGES_DIR: &str = "packages/";

/// A document under `packages/` that is not a Package or PackageMetadata (reported, not applied).
#[derive(Clone, Debug, PartialEq)]
pub struct Skipped {
    pub file: String,
    /// 1-based document index within the file.
    pub document: usize,
    /// Empty when the document has none (or is not a mapping at all).
    pub api_version: String,
    pub kind: String,
}

/// A field kapp-controller's Go types do not have: dropped from what is applied, as upstream's
/// decode drops it (often a typo worth a look).
#[derive(Clone, Debug, PartialEq)]
pub struct DroppedField {
    pub place: Place,
    /// Path from the document root, keys as written (`spec.template.spec.fetch[0].imgpkgbundle`).
    pub field: String,
}

/// What a repository's contents make.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// Sorted by (stored) name.
    pub packages: Vec<Package>,
    /// Sorted by name.
    pub metadatas: Vec<PackageMetadata>,
    /// In file and document order.
    pub skipped: Vec<Skipped>,
    /// How many distinct images the rewritten `image` references point at now (an image used by
    /// two Packages counts once).
    pub relocated_images: usize,
    /// In file and document order.
    pub dropped_fields: Vec<DroppedField>,
}

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
struct Built<S> {
    place: Place,
    /// The name as written (`refName.version` for a valid Package).
    original: String,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    spec: S,
}

impl<S: PartialEq> Built<S> {
    fn same_content(&self, other: &Built<S>) -> bool {
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
struct Collector {
    problems: Vec<Problem>,
    skipped: Vec<Skipped>,
    packages: Vec<Built<PackageSpec>>,
    metadatas: Vec<Built<PackageMetadataSpec>>,
    /// The images rewritten references now point at.
    relocated: BTreeSet<String>,
    dropped: Vec<DroppedField>,
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
        let decoded = gojson::normalise(&gojson::Ty::Struct(spec_type), &spec, "spec");
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
        if let Some(line) = ytt_annotation_line(text) {
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
fn read_all(inputs: &[(&String, &[u8])], relocations: &relocate::Relocations) -> Collector {
    let total: usize = inputs.iter().map(|(_, b)| b.len()).sum();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4);
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

/// Keep one object per stored name: identical repeats are dropped, differing ones and distinct
/// originals that share a stored name are problems.
fn unique<S: PartialEq>(
    kind: &str,
    built: Vec<Built<S>>,
    name_of: impl Fn(&str) -> String,
    problems: &mut Vec<Problem>,
) -> Vec<(String, Built<S>)> {
    let mut index: HashMap<String, usize> = HashMap::with_capacity(built.len());
    let mut kept: Vec<(String, Built<S>)> = Vec::with_capacity(built.len());
    for object in built {
        let stored = name_of(&object.original);
        match index.entry(stored) {
            Entry::Vacant(slot) => {
                let stored = slot.key().clone();
                slot.insert(kept.len());
                kept.push((stored, object));
            }
            Entry::Occupied(slot) => {
                let (stored, first) = &kept[*slot.get()];
                if first.original != object.original {
                    problems.push(Problem {
                        place: object.place.clone(),
                        kind: ProblemKind::NameCollision {
                            stored: stored.clone(),
                            original: object.original.clone(),
                            other_original: first.original.clone(),
                            other: first.place.clone(),
                        },
                    });
                } else if !first.same_content(&object) {
                    problems.push(Problem {
                        place: object.place.clone(),
                        kind: ProblemKind::Duplicate {
                            kind: kind.to_string(),
                            name: object.original.clone(),
                            first: first.place.clone(),
                        },
                    });
                }
            }
        }
    }
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    kept
}

fn object_meta(
    name: String,
    original: &str,
    labels: Option<BTreeMap<String, String>>,
    mut annotations: Option<BTreeMap<String, String>>,
) -> ObjectMeta {
    if name != original {
        annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(ORIGINAL_NAME_ANNOTATION.to_string(), original.to_string());
    }
    ObjectMeta {
        name: Some(name),
        labels: labels.filter(|l| !l.is_empty()),
        annotations: annotations.filter(|a| !a.is_empty()),
        ..ObjectMeta::default()
    }
}

/// `*.yml`/`*.yaml`, except ytt's libraries (`*.lib.yml`), which ytt never outputs.
fn is_package_file(path: &str) -> bool {
    (path.ends_with(".yml") || path.ends_with(".yaml"))
        && !(path.ends_with(".lib.yml") || path.ends_with(".lib.yaml"))
}

/// The first line (1-based) with a ytt annotation: a YAML comment that starts `#@`. Upstream
/// evaluates these with ytt; applying the YAML without them would silently produce other
/// objects, so they are reported instead. `#@` inside quoted values or block scalars (inline ytt
/// templates in a Package's spec) is content, not an annotation.
fn ytt_annotation_line(text: &str) -> Option<u64> {
    // Indentation of the line that opened the block scalar being read, if any.
    let mut block_parent: Option<usize> = None;
    for (line, number) in text.lines().zip(1u64..) {
        let content = line.trim_start_matches([' ', '\t']);
        let indent = line.len() - content.len();
        if let Some(parent) = block_parent {
            if content.is_empty() || indent > parent {
                continue;
            }
            block_parent = None;
        }
        let comment = comment_start(content);
        if comment.is_some_and(|at| content[at..].starts_with("#@")) {
            return Some(number);
        }
        if opens_block_scalar(content[..comment.unwrap_or(content.len())].trim_end()) {
            block_parent = Some(indent);
        }
    }
    None
}

/// Where a comment starts in one line of YAML: a `#` at the start or after a blank, outside
/// quotes. A quote that does not open a scalar (`it's`) hides the rest of the line: the safe
/// direction, an annotation missed rather than invented.
fn comment_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(b'"') if c == b'\\' => i += 1,
            Some(q) if c == q => {
                if q == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
                    i += 1;
                } else {
                    quote = None;
                }
            }
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c == b'#' && (i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t') => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

/// `key: |`, `- >-`, `key: |2+` and the like: the lines after it are a block scalar.
fn opens_block_scalar(code: &str) -> bool {
    let (before, last) = code.rsplit_once([' ', '\t']).unwrap_or(("", code));
    let indicator = last.starts_with(['|', '>']) && last[1..].bytes().all(|b| b"+-0123456789".contains(&b));
    let before = before.trim_end();
    indicator && (before.is_empty() || before.ends_with(':') || before.ends_with('-'))
}

/// Parse `packages/**.y(a)ml`, validate, relocate image references with `images_lock`
/// (already localised; `None` for plain images and inline sources), and name the objects.
///
/// Every problem in every document is collected before failing, so one run shows them all.
pub fn build(files: &FileTree, images_lock: Option<&ImagesLock>) -> Result<Output, RepositoryError> {
    let under_packages = || {
        files
            .range(PACKAGES_DIR.to_string()..)
            .take_while(|(path, _)| path.starts_with(PACKAGES_DIR))
    };
    if under_packages().next().is_none() {
        return Err(RepositoryError::MissingPackagesDirectory {
            found: contents::top_level_entries(files),
        });
    }
    let relocations = relocate::Relocations::new(images_lock);
    let inputs: Vec<(&String, &[u8])> = under_packages()
        .filter(|(path, _)| is_package_file(path))
        .map(|(path, bytes)| (path, bytes.as_slice()))
        .collect();
    let collector = read_all(&inputs, &relocations);

    let Collector {
        mut problems,
        skipped,
        packages,
        metadatas,
        relocated,
        dropped,
    } = collector;
    let metadatas = unique("PackageMetadata", metadatas, str::to_string, &mut problems);
    let packages = unique("Package", packages, stored_name, &mut problems);
    if !problems.is_empty() {
        problems.sort_by(|a, b| a.place.cmp(&b.place));
        return Err(RepositoryError::InvalidContent { problems });
    }
    Ok(Output {
        packages: packages
            .into_iter()
            .map(|(name, b)| Package {
                metadata: object_meta(name, &b.original, b.labels, b.annotations),
                spec: b.spec,
            })
            .collect(),
        metadatas: metadatas
            .into_iter()
            .map(|(name, b)| PackageMetadata {
                metadata: object_meta(name, &b.original, b.labels, b.annotations),
                spec: b.spec,
            })
            .collect(),
        skipped,
        relocated_images: relocated.len(),
        dropped_fields: dropped,
    })
}

/// How an object is printed: the fields a person needs to review what would be applied.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct View<'a, S> {
    api_version: &'a str,
    kind: &'a str,
    metadata: MetaView<'a>,
    spec: &'a S,
}

#[derive(Serialize)]
struct MetaView<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<&'a BTreeMap<String, String>>,
}

fn view<'a, S>(kind: &'a str, meta: &'a ObjectMeta, spec: &'a S) -> View<'a, S> {
    View {
        api_version: DATA_API_VERSION,
        kind,
        metadata: MetaView {
            name: meta.name.as_deref().unwrap_or_default(),
            annotations: meta.annotations.as_ref(),
            labels: meta.labels.as_ref(),
        },
        spec,
    }
}

impl Output {
    /// Each object as one YAML document (`---` first): PackageMetadatas, then Packages, each
    /// sorted by name. One at a time, so a large repository can be printed without holding all
    /// of its text.
    pub fn yaml_documents(&self) -> impl Iterator<Item = Result<String, RepositoryError>> + '_ {
        let metadatas = self
            .metadatas
            .iter()
            .map(|m| document(&view("PackageMetadata", &m.metadata, &m.spec)));
        let packages = self
            .packages
            .iter()
            .map(|p| document(&view("Package", &p.metadata, &p.spec)));
        metadatas.chain(packages)
    }

    /// All of [`Output::yaml_documents`] in one string.
    pub fn to_yaml(&self) -> Result<String, RepositoryError> {
        let mut out = String::new();
        for doc in self.yaml_documents() {
            out.push_str(&doc?);
        }
        Ok(out)
    }
}

fn document<T: Serialize>(value: &T) -> Result<String, RepositoryError> {
    // Image references and digests are long single words: keep them on one line instead of
    // folding them into `>-` blocks; multi-line strings still print as `|` blocks.
    let options = serde_saphyr::ser_options! {
        folded_wrap_chars: usize::MAX,
    };
    let mut text = String::from("---\n");
    text.push_str(
        &serde_saphyr::to_string_with_options(value, options).map_err(|e| RepositoryError::Output {
            reason: e.to_string(),
        })?,
    );
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ytt_annotations_are_comments_starting_hash_at() {
        assert_eq!(comment_start("# all comment"), Some(0));
        assert_eq!(comment_start("a: b # c"), Some(5));
        assert_eq!(
            comment_start("a: b#c"),
            None,
            "no blank before: part of the value"
        );
        assert_eq!(comment_start("a: \"x # y\" # z"), Some(11));
        assert_eq!(comment_start("a: 'it''s # here' #@ x"), Some(18));
        assert_eq!(comment_start("a: \"esc \\\" # still\" #c"), Some(20));
        for (code, opens) in [
            ("key: |", true),
            ("key: >-", true),
            ("key: |2+", true),
            ("- |", true),
            ("|", true),
            ("key: value", false),
            ("key: a|b", false),
            ("key: x |", false),
        ] {
            assert_eq!(opens_block_scalar(code), opens, "{code:?}");
        }
        assert_eq!(ytt_annotation_line("a: 1\nb: 2 #@ x\n"), Some(2));
        assert_eq!(ytt_annotation_line("a: |\n  #@ x\n  y\nb: #@ z\n"), Some(4));
        assert_eq!(ytt_annotation_line("- |\n  #@ x\n\n  #@ y\n- z\n"), None);
        assert_eq!(ytt_annotation_line("#! a ytt comment\na: 1 # plain\n"), None);
    }

    #[test]
    fn originals_that_share_a_stored_name_are_refused_naming_both() {
        let built = |original: &str, file: &str| Built {
            place: Place {
                file: file.into(),
                document: Some(1),
            },
            original: original.into(),
            labels: None,
            annotations: None,
            spec: (),
        };
        let mut problems = Vec::new();
        let objects = vec![built("a", "x.yml"), built("b", "y.yml"), built("a", "z.yml")];
        let kept = unique("Package", objects, |_| "same".to_string(), &mut problems);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].1.original, "a");
        assert_eq!(
            problems.len(),
            1,
            "an identical repeat is no problem: {problems:?}"
        );
        assert_eq!(
            problems[0].to_string(),
            "y.yml doc 1: Package \"b\" and Package \"a\" (in x.yml doc 1) would both be stored as \
             \"same\" (the hashes that keep mapped names apart collide); rename one version, for \
             example with another build metadata tag"
        );
    }

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
        let parallel = read_all(&inputs, &relocations);
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
