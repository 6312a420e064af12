//! A repository of 400 Packages in the shapes that broke fidelity with kapp-controller (`+`
//! versions, versions that differ only in case or in `+`/`--`, Go durations and offset times,
//! empty optional fields, unknown fields, case-insensitive keys, package bundles shared between
//! Packages and relocated through the ImagesLock), compared field by field with what
//! kapp-controller stores for the same source, as the reference's rules give it.
use pkgr::bundle::FileTree;
use pkgr::bundle::lock::{ImagesLock, LockedImage};
use pkgr::repository::{self, KBLD_IMAGES_ANNOTATION, ORIGINAL_NAME_ANNOTATION, Output};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const REF_NAMES: usize = 40;

/// Ten versions per refName that kapp-controller keeps apart.
const VERSIONS: [&str; 10] = [
    "1.0.0",
    "1.0.0+vmware.1",
    "1.0.0--vmware.1",
    "1.0.0-RC.1",
    "1.0.0-rc.1",
    "1.0.0-Rc.1",
    "1.0.0+VMWARE.1",
    "1.0.0-vmware.1",
    "1.0.0+vmware.1-tkg.1",
    "1.0.0-vmware.1-tkg.1",
];

/// `syncPeriod` as written, and as Go's `Duration.String` prints it (`None`: not written).
const SYNC_PERIODS: [(Option<&str>, Option<&str>); 9] = [
    (Some("5m"), Some("5m0s")),
    (Some("1h"), Some("1h0m0s")),
    (Some("90s"), Some("1m30s")),
    (Some("30s"), Some("30s")),
    (Some("1h30m"), Some("1h30m0s")),
    (Some("1.5h"), Some("1h30m0s")),
    (Some("300ms"), Some("300ms")),
    (Some("2m0s"), Some("2m0s")),
    (None, None),
];

/// `releasedAt` as written (YAML), and as `metav1.Time` stores it (UTC, whole seconds).
const RELEASED_AT: [(Option<&str>, Option<&str>); 7] = [
    (
        Some("\"2021-05-05T18:57:06+02:00\""),
        Some("2021-05-05T16:57:06Z"),
    ),
    (Some("2021-05-05T18:57:06Z"), Some("2021-05-05T18:57:06Z")),
    (
        Some("\"2021-05-05T18:57:06.123456Z\""),
        Some("2021-05-05T18:57:06Z"),
    ),
    (Some("2020-12-31T23:00:00-01:30"), Some("2021-01-01T00:30:00Z")),
    (
        Some("\"2024-02-29T23:59:59-00:01\""),
        Some("2024-03-01T00:00:59Z"),
    ),
    (Some("null"), None),
    (None, None),
];

/// What one generated Package was written with.
struct Case {
    ref_name: String,
    version: &'static str,
    sync: (Option<&'static str>, Option<&'static str>),
    released: (Option<&'static str>, Option<&'static str>),
    /// `Some("")`: written empty.
    capacity: Option<&'static str>,
    licenses: Vec<&'static str>,
    image: String,
    /// `SyncPeriod:` instead of `syncPeriod:` (Go matches keys ignoring case).
    capitalised_key: bool,
    unknown_fields: bool,
}

fn case(i: usize) -> Case {
    Case {
        ref_name: format!("pkg{:02}.corp.com", i / VERSIONS.len()),
        version: VERSIONS[i % VERSIONS.len()],
        sync: SYNC_PERIODS[i % SYNC_PERIODS.len()],
        released: RELEASED_AT[i % RELEASED_AT.len()],
        capacity: [Some(""), Some("2 CPUs, 4 GiB"), None][i % 3],
        licenses: if i % 4 == 0 { vec![] } else { vec!["Apache-2.0"] },
        // 60 package bundles shared by the 400 Packages: the relocated images are counted once.
        image: format!("docker.io/corp/bundle-{:02}:v1.{}", i % 60, i % 60),
        capitalised_key: i % 4 == 1,
        unknown_fields: i % 5 == 0,
    }
}

fn package_yaml(c: &Case) -> String {
    let mut spec = format!("  refName: {}\n  version: \"{}\"\n", c.ref_name, c.version);
    if let Some(capacity) = c.capacity {
        spec.push_str(&format!("  capacityRequirementsDescription: \"{capacity}\"\n"));
    }
    spec.push_str(&format!("  licenses: {:?}\n", c.licenses));
    if let Some(released) = c.released.0 {
        spec.push_str(&format!("  releasedAt: {released}\n"));
    }
    if c.unknown_fields {
        spec.push_str("  notAField: dropped\n");
    }
    spec.push_str("  template:\n    spec:\n");
    if let Some(sync) = c.sync.0 {
        let key = if c.capitalised_key {
            "SyncPeriod"
        } else {
            "syncPeriod"
        };
        spec.push_str(&format!("      {key}: {sync}\n"));
    }
    spec.push_str(&format!(
        "      fetch:\n      - imgpkgBundle:\n          image: {}\n",
        c.image
    ));
    if c.unknown_fields {
        spec.push_str("          imagePullPolicy: Always\n");
    }
    spec.push_str(
        "      template:\n      - ytt:\n          paths:\n          - config/\n      - kbld:\n          paths:\n          - \"-\"\n          - .imgpkg/images.yml\n      deploy:\n      - kapp: {}\n",
    );
    spec.push_str(
        "  valuesSchema:\n    openAPIv3:\n      type: object\n      properties:\n        replicas: {type: integer, default: 1}\n",
    );
    spec.push_str("  includedSoftware:\n  - displayName: App\n    version: \"\"\n    description: the app\n");
    format!(
        "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata:\n  name: {}.{}\n  namespace: dropped\nspec:\n{spec}",
        c.ref_name, c.version
    )
}

fn metadata_yaml(ref_name: &str) -> String {
    format!(
        "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: PackageMetadata\nmetadata:\n  name: {ref_name}\nspec:\n  displayName: {ref_name}\n  shortDescription: \"\"\n  maintainers:\n  - name: \"\"\n  - name: Jane\n  - {{}}\n  categories: []\n  supportDescription: ask\n"
    )
}

/// The repository: per refName a metadata file, versions in nested directories and one
/// multi-document file.
fn repository_files() -> FileTree {
    let mut files = FileTree::new();
    for r in 0..REF_NAMES {
        let ref_name = case(r * VERSIONS.len()).ref_name;
        files.insert(
            format!("packages/{ref_name}/metadata.yml"),
            metadata_yaml(&ref_name).into_bytes(),
        );
        let mut multi = String::new();
        for v in 0..VERSIONS.len() {
            let c = case(r * VERSIONS.len() + v);
            if v < 6 {
                files.insert(
                    format!("packages/{ref_name}/versions/deeper/{v}.yaml"),
                    package_yaml(&c).into_bytes(),
                );
            } else {
                multi.push_str("---\n");
                multi.push_str(&package_yaml(&c));
            }
        }
        files.insert(format!("packages/{ref_name}/more.yml"), multi.into_bytes());
    }
    files
}

/// The ImagesLock after `imgpkg copy` to `registry.corp.xyz/apps/repo`: 50 of the 60 package
/// bundles (the other 10 stay as written), every even one with kbld origins.
fn lock() -> ImagesLock {
    ImagesLock {
        images: (0..50)
            .map(|b| {
                let mut annotations = BTreeMap::new();
                annotations.insert(
                    "kbld.carvel.dev/id".to_string(),
                    format!("docker.io/corp/bundle-{b:02}:v1.{b}"),
                );
                if b % 2 == 0 {
                    annotations.insert(
                        repository::KBLD_ORIGINS_ANNOTATION.to_string(),
                        format!(
                            "- resolved:\n    tag: v1.{b}\n    url: docker.io/corp/bundle-{b:02}:v1.{b}\n"
                        ),
                    );
                }
                LockedImage {
                    image: relocated(b),
                    annotations,
                }
            })
            .collect(),
    }
}

/// The same documents as [`repository_files`], each in a file of its own, named so that they
/// are read in another order: a fixed shuffle, metadatas among the Packages.
fn shuffled_files() -> FileTree {
    let mut documents = Vec::new();
    for r in 0..REF_NAMES {
        let ref_name = case(r * VERSIONS.len()).ref_name;
        documents.push(metadata_yaml(&ref_name));
        for v in 0..VERSIONS.len() {
            documents.push(package_yaml(&case(r * VERSIONS.len() + v)));
        }
    }
    let n = documents.len();
    // 7919 is prime and does not divide n: a permutation of 0..n.
    assert_ne!(n % 7919, 0);
    documents
        .into_iter()
        .enumerate()
        .map(|(k, doc)| (format!("packages/all/{:04}.yml", k * 7919 % n), doc.into_bytes()))
        .collect()
}

/// The documents of `files` in the order the repository reads them (by path, then within a file).
fn read_order(files: &FileTree) -> Vec<String> {
    files
        .values()
        .flat_map(|bytes| {
            std::str::from_utf8(bytes)
                .unwrap()
                .split("---\n")
                .filter(|d| !d.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn relocated(bundle: usize) -> String {
    format!("registry.corp.xyz/apps/repo@sha256:{bundle:064x}")
}

fn build() -> Output {
    build_from(&repository_files())
}

fn build_from(files: &FileTree) -> Output {
    repository::build(files, Some(&lock())).unwrap_or_else(|e| panic!("{}", e.detailed()))
}

/// As the controller applies it.
fn applied<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap()
}

fn is_valid_as_is(name: &str) -> bool {
    name.len() <= 253
        && name
            .split('.')
            .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'))
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

#[test]
fn four_hundred_packages_are_stored_as_kapp_controller_stores_them() {
    let out = build();
    assert_eq!(out.packages.len(), REF_NAMES * VERSIONS.len());
    assert_eq!(out.metadatas.len(), REF_NAMES);

    let by_original: BTreeMap<String, Value> = out
        .packages
        .iter()
        .map(|p| (format!("{}.{}", p.spec.ref_name, p.spec.version), applied(p)))
        .collect();
    assert_eq!(
        by_original.len(),
        REF_NAMES * VERSIONS.len(),
        "every original kept apart"
    );
    let valid_originals: BTreeSet<&String> = by_original.keys().filter(|o| is_valid_as_is(o)).collect();
    let mut stored_names = BTreeSet::new();

    for i in 0..REF_NAMES * VERSIONS.len() {
        let c = case(i);
        let original = format!("{}.{}", c.ref_name, c.version);
        let p = &by_original[&original];
        let at = |path: &str| {
            path.split('.')
                .fold(p, |v, key| match key.parse::<usize>() {
                    Ok(index) => &v[index],
                    Err(_) => &v[key],
                })
                .clone()
        };

        // Names: valid ones unchanged; others mapped, valid, never a valid original's name.
        let name = at("metadata.name").as_str().unwrap().to_string();
        let annotations = at("metadata.annotations");
        if is_valid_as_is(&original) {
            assert_eq!(name, original);
            assert!(annotations.get(ORIGINAL_NAME_ANNOTATION).is_none(), "{original}");
        } else {
            assert!(is_valid_as_is(&name), "{original} -> {name}");
            assert!(
                !valid_originals.contains(&name),
                "{original} took a valid name: {name}"
            );
            assert!(
                name.starts_with(&format!("{}.0", original.to_lowercase().replace('+', "-"))),
                "{original} -> {name}"
            );
            assert_eq!(annotations[ORIGINAL_NAME_ANNOTATION], original.as_str());
        }
        assert!(stored_names.insert(name.clone()), "{name} stored twice");
        assert!(
            at("metadata.namespace").is_null(),
            "the namespace is not carried over"
        );

        // Exact refName and version.
        assert_eq!(at("spec.refName"), c.ref_name.as_str());
        assert_eq!(at("spec.version"), c.version);

        // Go durations and UTC times.
        assert_eq!(
            at("spec.template.spec.syncPeriod").as_str(),
            c.sync.1,
            "{original}: syncPeriod {:?}",
            c.sync.0
        );
        assert!(at("spec.template.spec.SyncPeriod").is_null());
        assert_eq!(at("spec.releasedAt").as_str(), c.released.1, "{original}");

        // omitempty: empty strings and lists are not stored.
        match c.capacity {
            Some("") | None => assert!(at("spec.capacityRequirementsDescription").is_null()),
            Some(text) => assert_eq!(at("spec.capacityRequirementsDescription"), text),
        }
        if c.licenses.is_empty() {
            assert!(at("spec.licenses").is_null(), "{original}");
        } else {
            assert_eq!(at("spec.licenses"), json!(c.licenses));
        }
        assert_eq!(
            at("spec.includedSoftware"),
            json!([{"displayName": "App", "description": "the app"}])
        );

        // Unknown fields are dropped, as FilterResources drops them.
        assert!(at("spec.notAField").is_null());
        assert_eq!(
            at("spec.template.spec.fetch.0.imgpkgBundle")
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["image"]
        );

        // The rest of the App spec, and the values schema as written.
        assert_eq!(
            at("spec.template.spec.template"),
            json!([{"ytt": {"paths": ["config/"]}}, {"kbld": {"paths": ["-", ".imgpkg/images.yml"]}}])
        );
        assert_eq!(at("spec.template.spec.deploy"), json!([{"kapp": {}}]));
        assert_eq!(
            at("spec.valuesSchema.openAPIv3"),
            json!({"type": "object", "properties": {"replicas": {"type": "integer", "default": 1}}})
        );

        // Relocation through the lock, and kbld's record of it.
        let bundle = i % 60;
        let image = at("spec.template.spec.fetch.0.imgpkgBundle.image");
        let kbld = annotations.get(KBLD_IMAGES_ANNOTATION);
        if bundle < 50 {
            assert_eq!(image, relocated(bundle).as_str());
            let record: Value = serde_saphyr::from_str(kbld.unwrap().as_str().unwrap()).unwrap();
            let mut origins = Vec::new();
            if bundle % 2 == 0 {
                origins.push(json!({"resolved": {"tag": format!("v1.{bundle}"), "url": c.image}}));
            }
            origins.push(json!({"preresolved": {"url": relocated(bundle)}}));
            assert_eq!(record, json!([{"origins": origins, "url": relocated(bundle)}]));
        } else {
            assert_eq!(image, c.image.as_str());
            assert!(kbld.is_none(), "{original}: nothing was relocated");
        }
    }

    // Each relocated image counts once, however many Packages use it.
    assert_eq!(out.relocated_images, 50);
    // notAField on every fifth Package, imagePullPolicy on the same ones.
    assert_eq!(
        out.dropped_fields.len(),
        2 * (REF_NAMES * VERSIONS.len()).div_ceil(5)
    );
}

#[test]
fn metadatas_leave_out_empty_strings_lists_and_names() {
    let out = build();
    for m in &out.metadatas {
        let v = applied(m);
        let name = m.metadata.name.as_deref().unwrap();
        assert_eq!(
            v["spec"],
            json!({
                "displayName": name,
                "maintainers": [{}, {"name": "Jane"}, {}],
                "supportDescription": "ask"
            })
        );
    }
}

/// (That the result does not depend on how many threads read the files is checked where they
/// are split: `src/repository/read.rs`.)
#[test]
fn the_result_does_not_depend_on_which_files_hold_the_documents_or_their_order() {
    let (nested, shuffled) = (repository_files(), shuffled_files());
    let (mut a, mut b) = (read_order(&nested), read_order(&shuffled));
    assert_ne!(a, b, "the two layouts are read in different orders");
    a.sort();
    b.sort();
    assert_eq!(a, b, "the two layouts hold the same documents");

    let (nested, shuffled) = (build_from(&nested), build_from(&shuffled));
    assert_eq!(nested.packages.len(), REF_NAMES * VERSIONS.len());
    assert_eq!(nested.to_yaml().unwrap(), shuffled.to_yaml().unwrap());
    assert_eq!(nested.relocated_images, shuffled.relocated_images);
    assert_eq!(nested.dropped_fields.len(), shuffled.dropped_fields.len());
}
