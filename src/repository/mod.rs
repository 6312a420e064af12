//! Bundle contents → Package and PackageMetadata objects: parse, validate, relocate, name.
//! Pure: no network, no cluster.
use crate::api::{DATA_API_VERSION, Package, PackageMetadata};
use crate::bundle::{FileTree, lock::ImagesLock};
use kube::api::ObjectMeta;
use read::{Built, Collector, read_all};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, hash_map::Entry};

mod contents;
mod documents;
mod error;
mod gojson;
mod kbld;
mod naming;
mod read;
mod relocate;
mod upstream;
mod validate;
pub mod versions;
mod ytt;

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
}
