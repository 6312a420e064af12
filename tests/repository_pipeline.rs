//! The pure repository pipeline against YAML fixtures: every rule and every error.
use pkgr::bundle::FileTree;
use pkgr::bundle::lock::{ImagesLock, LockedImage};
use pkgr::repository::{
    self, ORIGINAL_NAME_ANNOTATION, Output, Place, ProblemKind, RepositoryError, Skipped,
};
use std::path::{Path, PathBuf};

fn fixture_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/repository")
        .join(case)
}

/// A fixture directory as the FileTree an extracted layer would give.
fn load(case: &str) -> FileTree {
    load_dir(&fixture_dir(case))
}

fn load_dir(root: &Path) -> FileTree {
    fn walk(root: &Path, dir: &Path, out: &mut FileTree) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut files = FileTree::new();
    walk(root, root, &mut files);
    files
}

fn tree(files: &[(&str, &str)]) -> FileTree {
    files
        .iter()
        .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
        .collect()
}

/// The ImagesLock of `valid/.imgpkg/images.yml` after a relocation to `repo`.
fn relocated_lock(repo: &str) -> ImagesLock {
    let entry = |id: &str, hex: char| LockedImage {
        image: format!("{repo}@sha256:{}", hex.to_string().repeat(64)),
        annotations: [("kbld.carvel.dev/id".to_string(), id.to_string())].into(),
    };
    ImagesLock {
        images: vec![
            entry("docker.io/user1/simple-app-pkg:1.0.0", '1'),
            entry("docker.io/user1/simple-app-pkg:2.0.0", '2'),
        ],
    }
}

fn build_ok(files: &FileTree, lock: Option<&ImagesLock>) -> Output {
    match repository::build(files, lock) {
        Ok(output) => output,
        Err(e) => panic!("build failed: {}", e.detailed()),
    }
}

fn problems(result: Result<Output, RepositoryError>) -> Vec<(Place, ProblemKind, String)> {
    match result {
        Ok(o) => panic!("expected problems, got {} packages", o.packages.len()),
        Err(e) => {
            assert!(matches!(e, RepositoryError::InvalidContent { .. }), "{e}");
            e.problems()
                .iter()
                .map(|p| (p.place.clone(), p.kind.clone(), p.to_string()))
                .collect()
        }
    }
}

fn place(file: &str, document: usize) -> Place {
    Place {
        file: file.to_string(),
        document: Some(document),
    }
}

fn fetch_image(p: &pkgr::api::Package, index: usize) -> String {
    let template = p.spec.template.as_ref().expect("template");
    template["spec"]["fetch"][index]["imgpkgBundle"]["image"]
        .as_str()
        .unwrap_or_else(|| panic!("no imgpkgBundle.image at fetch[{index}] of {}", p.spec.ref_name))
        .to_string()
}

#[test]
fn a_valid_repository_builds_every_object_from_every_depth() {
    let out = build_ok(&load("valid"), None);
    let names: Vec<_> = out
        .packages
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            repository::stored_name("other.corp.com.0.1.0+vmware.1").as_str(),
            "simple-app.corp.com.1.0.0",
            "simple-app.corp.com.2.0.0"
        ]
    );
    let metas: Vec<_> = out
        .metadatas
        .iter()
        .map(|m| m.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(metas, ["other.corp.com", "simple-app.corp.com"]);
}

#[test]
fn fields_are_read_into_the_typed_objects() {
    let out = build_ok(&load("valid"), None);
    let p1 = &out.packages[1];
    assert_eq!(p1.spec.ref_name, "simple-app.corp.com");
    assert_eq!(p1.spec.version, "1.0.0");
    assert_eq!(p1.spec.released_at.as_deref(), Some("2021-05-05T18:57:06Z"));
    assert_eq!(p1.spec.licenses, ["Apache 2.0"]);
    assert_eq!(
        p1.spec.values_schema.as_ref().unwrap()["openAPIv3"]["properties"]["port"]["default"],
        80
    );
    let p2 = &out.packages[2];
    assert_eq!(
        p2.spec
            .kubernetes_version_selection
            .as_ref()
            .unwrap()
            .constraints
            .as_deref(),
        Some(">=1.20.0 <2.0.0")
    );
    let m = &out.metadatas[1];
    assert_eq!(m.spec.display_name.as_deref(), Some("Simple App"));
    assert_eq!(m.spec.categories, ["demo", "web"]);
    assert_eq!(m.spec.maintainers[0].name.as_deref(), Some("Jane"));
}

#[test]
fn namespace_is_dropped_and_labels_and_annotations_are_kept() {
    let out = build_ok(&load("valid"), None);
    let m = &out.metadatas[1];
    assert_eq!(m.metadata.namespace, None);
    assert_eq!(m.metadata.labels.as_ref().unwrap()["team"], "apps");
    let p = &out.packages[1];
    assert_eq!(p.metadata.namespace, None);
    assert_eq!(p.metadata.annotations.as_ref().unwrap()["corp.com/owner"], "apps");
}

#[test]
fn other_kinds_and_api_versions_are_skipped_and_reported_in_order() {
    let out = build_ok(&load("valid"), None);
    let file = "packages/nested/deeper/multi.yaml";
    assert_eq!(
        out.skipped,
        [
            Skipped {
                file: file.into(),
                document: 3,
                api_version: "v1".into(),
                kind: "ConfigMap".into()
            },
            Skipped {
                file: file.into(),
                document: 4,
                api_version: "data.packaging.carvel.dev/v1alpha1".into(),
                kind: "PackageExtra".into()
            },
        ]
    );
}

#[test]
fn files_outside_packages_and_non_yaml_files_are_not_read() {
    let out = build_ok(&load("valid"), None);
    assert!(
        out.packages
            .iter()
            .all(|p| p.spec.ref_name != "outside.packages.dir"),
        "config/ignored.yml must not be read"
    );
    // packages/README.md holds broken YAML: reading it would have failed the build.
}

#[test]
fn relocation_replaces_exact_kbld_id_matches_only() {
    let lock = relocated_lock("registry.corp.xyz/apps/simple-app-bundle");
    let out = build_ok(&load("valid"), Some(&lock));
    assert_eq!(out.relocated_images, 2);
    assert_eq!(
        fetch_image(&out.packages[1], 0),
        format!(
            "registry.corp.xyz/apps/simple-app-bundle@sha256:{}",
            "1".repeat(64)
        )
    );
    let p2 = &out.packages[2];
    assert_eq!(
        fetch_image(p2, 0),
        format!(
            "registry.corp.xyz/apps/simple-app-bundle@sha256:{}",
            "2".repeat(64)
        )
    );
    // `fetch[].image` is a map (url), not an image string: untouched.
    assert_eq!(
        p2.spec.template.as_ref().unwrap()["spec"]["fetch"][1]["image"]["url"],
        "docker.io/user1/not-relocated:1.0.0"
    );
    // A digest reference without a lock entry stays as written.
    assert_eq!(
        fetch_image(&out.packages[0], 0),
        format!("docker.io/user1/other@sha256:{}", "3".repeat(64))
    );
}

#[test]
fn without_a_lock_images_stay_as_written() {
    let out = build_ok(&load("valid"), None);
    assert_eq!(out.relocated_images, 0);
    assert_eq!(
        fetch_image(&out.packages[1], 0),
        "docker.io/user1/simple-app-pkg:1.0.0"
    );
}

#[test]
fn build_metadata_versions_get_a_dns_name_and_keep_the_original() {
    let out = build_ok(&load("valid"), None);
    let p = &out.packages[0];
    let stored = p.metadata.name.as_deref().unwrap();
    assert!(
        stored.starts_with("other.corp.com.0.1.0-vmware.1.0") && repository::is_mapped_name(stored),
        "{stored}"
    );
    assert!(repository::is_dns1123_subdomain(stored));
    assert_eq!(p.spec.version, "0.1.0+vmware.1");
    assert_eq!(p.spec.ref_name, "other.corp.com");
    assert_eq!(
        p.metadata.annotations.as_ref().unwrap()[ORIGINAL_NAME_ANNOTATION],
        "other.corp.com.0.1.0+vmware.1"
    );
    // Names that are already valid carry no such annotation.
    assert!(
        out.packages[2]
            .metadata
            .annotations
            .as_ref()
            .is_none_or(|a| !a.contains_key(ORIGINAL_NAME_ANNOTATION))
    );
}

#[test]
fn a_repository_without_packages_is_rejected_with_upstreams_words() {
    let err = repository::build(&load("no-packages"), None).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "Invalid package repository content: must contain 'packages/' directory but did not"
        ),
        "{text}"
    );
    assert!(text.contains("found .imgpkg/, config/"), "{text}");
    let err = repository::build(&FileTree::new(), None).unwrap_err();
    assert!(err.to_string().contains("found no files at all"), "{err}");
    // A file named like the directory is not the directory.
    let err = repository::build(&tree(&[("packages", "x")]), None).unwrap_err();
    assert!(matches!(err, RepositoryError::MissingPackagesDirectory { .. }));
}

#[test]
fn malformed_yaml_names_file_line_and_column_and_other_files_are_still_checked() {
    let found = problems(repository::build(&load("malformed"), None));
    assert_eq!(found.len(), 2, "{found:#?}");
    let (p, kind, text) = &found[0];
    assert_eq!(p, &place("packages/a.yml", 2));
    match kind {
        ProblemKind::Yaml { line, column, .. } => assert_eq!((*line, *column), (15, 15), "{text}"),
        other => panic!("{other:?}"),
    }
    assert!(
        text.starts_with("packages/a.yml doc 2: malformed YAML at line 15, column 15: unclosed bracket '{'"),
        "{text}"
    );
    let (p, kind, text) = &found[1];
    assert_eq!(p, &place("packages/b.yml", 1));
    assert!(matches!(kind, ProblemKind::Yaml { line: 5, .. }), "{text}");
    assert!(text.contains("duplicate"), "{text}");
}

#[test]
fn every_validation_rule_is_reported_with_file_document_and_rule() {
    let found = problems(repository::build(&load("invalid"), None));
    let texts: Vec<&str> = found.iter().map(|f| f.2.as_str()).collect();
    let f = "packages/packages.yml";
    let expected_prefixes = [
        format!(
            "{f} doc 1: metadata.name: Invalid value: \"two.segments\": should be a domain with at least three segments separated by dots"
        ),
        format!("{f} doc 2: spec.version: Invalid value: \"v1.0.0\": must be valid semver: "),
        format!(
            "{f} doc 3: metadata.name: Invalid value: \"pkg.corp.com.1.0.0\": must be <spec.refName> + '.' + <spec.version>"
        ),
        format!(
            "{f} doc 4: metadata.name: Invalid value: \"empty\": must be <spec.refName> + '.' + <spec.version>"
        ),
        format!("{f} doc 4: spec.refName: Required value: cannot be empty"),
        format!("{f} doc 4: spec.version: Required value: cannot be empty"),
        format!(
            "{f} doc 5: spec.refName: Invalid value: \"Pkg_Bad.corp.com\": a lowercase RFC 1123 subdomain must consist of"
        ),
        format!("{f} doc 6: spec.kubernetesVersionSelection.constraints: Invalid value: \">=1.x.y\": "),
        format!(
            "{f} doc 7: spec.licenses: expected a list of strings, found a string (\"Apache\") (kapp-controller cannot decode it either)"
        ),
        format!(
            "{f} doc 8: cannot read Package: field metadata.labels.version: invalid type: integer `4`, expected a string"
        ),
        format!("{f} doc 9: spec.version: expected a string, found a number (5.0)"),
    ];
    assert_eq!(texts.len(), expected_prefixes.len(), "{texts:#?}");
    for (text, prefix) in texts.iter().zip(&expected_prefixes) {
        assert!(
            text.starts_with(prefix.as_str()),
            "\n got: {text}\nwant: {prefix}"
        );
    }
}

#[test]
fn the_error_summary_is_one_line_and_the_detail_lists_everything() {
    let err = repository::build(&load("invalid"), None).unwrap_err();
    let summary = err.to_string();
    assert!(!summary.contains('\n'), "{summary}");
    assert!(
        summary.starts_with(
            "11 problems in the repository's packages: packages/packages.yml doc 1: metadata.name"
        ),
        "{summary}"
    );
    assert!(summary.ends_with("(and 10 more)"), "{summary}");
    let detail = err.detailed();
    assert_eq!(detail.lines().count(), 12, "{detail}");
    assert!(
        detail
            .lines()
            .nth(11)
            .unwrap()
            .starts_with("- packages/packages.yml doc 9: "),
        "{detail}"
    );
}

#[test]
fn differing_duplicates_name_both_files_and_identical_ones_are_kept_once() {
    let found = problems(repository::build(&load("duplicates"), None));
    let texts: Vec<&str> = found.iter().map(|f| f.2.as_str()).collect();
    assert_eq!(
        texts,
        [
            "packages/b/pkg.yml doc 1: Package \"dup.corp.com.1.0.0\" is also defined in packages/a/pkg.yml doc 1 with different contents; keep one definition",
            "packages/b/pkg.yml doc 3: PackageMetadata \"dup.corp.com\" is also defined in packages/a/pkg.yml doc 3 with different contents; keep one definition",
        ]
    );
    // Without the differing ones, the identical pair builds into one object.
    let mut files = load("duplicates");
    files.remove("packages/b/pkg.yml");
    let same = "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata:\n  name: same.corp.com.1.0.0\nspec:\n  refName: same.corp.com\n  version: 1.0.0\n";
    files.insert("packages/c.yml".into(), same.as_bytes().to_vec());
    let out = build_ok(&files, None);
    assert_eq!(
        out.packages
            .iter()
            .filter(|p| p.spec.ref_name == "same.corp.com")
            .count(),
        1
    );
}

#[test]
fn versions_upstream_keeps_apart_are_stored_apart_and_each_keeps_its_original() {
    let out = build_ok(&load("collision"), None);
    let originals: Vec<String> = out
        .packages
        .iter()
        .map(|p| format!("{}.{}", p.spec.ref_name, p.spec.version))
        .collect();
    assert_eq!(originals.len(), 6, "{originals:?}");
    let mut stored: Vec<&str> = out
        .packages
        .iter()
        .map(|p| p.metadata.name.as_deref().unwrap())
        .collect();
    stored.sort();
    stored.dedup();
    assert_eq!(stored.len(), 6, "one stored name each: {stored:?}");
    for p in &out.packages {
        let name = p.metadata.name.as_deref().unwrap();
        let original = format!("{}.{}", p.spec.ref_name, p.spec.version);
        assert!(repository::is_dns1123_subdomain(name), "{name}");
        if repository::is_dns1123_subdomain(&original) {
            assert_eq!(name, original, "a valid name is kept as it is");
            assert!(p.metadata.annotations.is_none());
        } else {
            assert_eq!(name, repository::stored_name(&original));
            assert_eq!(
                p.metadata.annotations.as_ref().unwrap()[ORIGINAL_NAME_ANNOTATION],
                original,
                "the original is recoverable from the annotation"
            );
        }
    }
    for valid in ["col.corp.com.1.0.0--build.1", "col.corp.com.1.0.0-rc.1"] {
        assert!(stored.contains(&valid), "{valid} kept as it is: {stored:?}");
    }
}

#[test]
fn empty_documents_and_empty_files_are_fine() {
    let files = tree(&[
        ("packages/empty.yml", ""),
        ("packages/comments.yaml", "# nothing here\n---\n---\n"),
        (
            "packages/one.yml",
            "---\napiVersion: data.packaging.carvel.dev/v1alpha1\nkind: PackageMetadata\nmetadata: {name: a.b.c}\n",
        ),
    ]);
    let out = build_ok(&files, None);
    assert_eq!(out.metadatas.len(), 1);
    assert!(out.packages.is_empty());
    assert!(out.skipped.is_empty());
}

#[test]
fn non_mapping_documents_are_skipped_not_fatal() {
    let files = tree(&[("packages/list.yml", "- a\n- b\n---\njust a string\n")]);
    let out = build_ok(&files, None);
    assert_eq!(out.skipped.len(), 2);
    assert_eq!(out.skipped[1].document, 2);
    assert_eq!(out.skipped[1].kind, "");
}

#[test]
fn a_file_that_is_not_utf8_is_named() {
    let mut files = FileTree::new();
    files.insert("packages/bin.yml".into(), vec![0xff, 0xfe, 0x00, 0x41]);
    let found = problems(repository::build(&files, None));
    assert!(
        found[0].2.starts_with("packages/bin.yml: file is not UTF-8 text"),
        "{}",
        found[0].2
    );
}

#[test]
fn ytt_templates_are_reported_and_ytt_libraries_are_not_read() {
    let plain = "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: PackageMetadata\nmetadata:\n  name: plain.corp.com\nspec:\n  displayName: \"Plain #@ not a comment\" # an ordinary comment\n";
    let files = tree(&[
        ("packages/plain/metadata.yml", plain),
        // A ytt library: never output by ytt, so never read here.
        ("packages/helpers.lib.yml", "#@ def name(): return \"x\"\n"),
        (
            "packages/templated/metadata.yml",
            "#@ load(\"@ytt:data\", \"data\")\napiVersion: data.packaging.carvel.dev/v1alpha1\nkind: PackageMetadata\n",
        ),
        (
            "packages/templated/1.0.0.yml",
            "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata:\n  name: t.corp.com.1.0.0\nspec:\n  refName: t.corp.com\n  version: #@ data.values.version\n",
        ),
    ]);
    let found = problems(repository::build(&files, None));
    let texts: Vec<&str> = found.iter().map(|(_, _, t)| t.as_str()).collect();
    assert_eq!(
        texts,
        [
            "packages/templated/1.0.0.yml: line 7 holds a ytt annotation (#@); pkgr reads packages/ as plain YAML and does not run ytt, so render the templates before pushing (ytt -f packages/)",
            "packages/templated/metadata.yml: line 1 holds a ytt annotation (#@); pkgr reads packages/ as plain YAML and does not run ytt, so render the templates before pushing (ytt -f packages/)",
        ]
    );
    // Without the templates the plain file builds; `#@` inside a quoted value is no annotation.
    // Nor is it inside a block scalar: an inline ytt template in a Package is content.
    let inline = "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata:\n  name: i.corp.com.1.0.0\nspec:\n  refName: i.corp.com\n  version: 1.0.0\n  template:\n    spec:\n      template:\n      - ytt:\n          inline:\n            paths:\n              values.yml: |\n                #@data/values\n                ---\n                port: 80 #@ annotation of the inline template\n              other.yml: |-\n                #@ load(\"@ytt:data\", \"data\")\n      deploy:\n      - kapp: {}\n";
    let out = build_ok(&tree(&[("packages/i/1.0.0.yml", inline)]), None);
    assert_eq!(out.packages.len(), 1);
    let template = out.packages[0].spec.template.as_ref().unwrap();
    assert!(
        template["spec"]["template"][0]["ytt"]["inline"]["paths"]["values.yml"]
            .as_str()
            .unwrap()
            .starts_with("#@data/values\n"),
        "{template}"
    );
    let out = build_ok(
        &tree(&[
            ("packages/plain/metadata.yml", plain),
            ("packages/helpers.lib.yml", "#@ x\n"),
        ]),
        None,
    );
    assert_eq!(out.metadatas.len(), 1);
    assert_eq!(
        out.metadatas[0].spec.display_name.as_deref(),
        Some("Plain #@ not a comment")
    );
}

#[test]
fn yaml_output_lists_metadatas_first_then_packages_by_name() {
    let lock = relocated_lock("registry.corp.xyz/apps/simple-app-bundle");
    let out = build_ok(&load("valid"), Some(&lock));
    let yaml = out.to_yaml().unwrap();
    let golden_path = fixture_dir("valid.rendered.yml");
    if std::env::var_os("PKGR_BLESS").is_some() {
        std::fs::write(&golden_path, &yaml).unwrap();
    }
    let golden = std::fs::read_to_string(&golden_path).unwrap();
    assert_eq!(
        yaml, golden,
        "rerun with PKGR_BLESS=1 to accept a deliberate change"
    );
    // The output reads back as the same objects.
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&yaml).unwrap();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "PackageMetadata",
            "PackageMetadata",
            "Package",
            "Package",
            "Package"
        ]
    );
    assert_eq!(docs[2]["spec"]["version"], "0.1.0+vmware.1");
    assert_eq!(
        docs[2]["metadata"]["name"],
        repository::stored_name("other.corp.com.0.1.0+vmware.1")
    );
}

#[test]
fn the_committed_example_repository_builds() {
    let files = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/simple-repo"));
    assert!(files.contains_key(".imgpkg/images.yml"));
    let lock = ImagesLock {
        images: vec![LockedImage {
            image: format!("registry.corp.xyz/apps/simple-app-repo@sha256:{}", "a".repeat(64)),
            annotations: [(
                "kbld.carvel.dev/id".to_string(),
                "docker.io/user1/simple-app-package:1.0.0".to_string(),
            )]
            .into(),
        }],
    };
    let out = build_ok(&files, Some(&lock));
    assert_eq!(out.metadatas.len(), 1);
    assert_eq!(out.packages.len(), 2);
    assert!(out.skipped.is_empty());
    assert_eq!(out.relocated_images, 1);
    assert_eq!(
        fetch_image(&out.packages[0], 0),
        format!("registry.corp.xyz/apps/simple-app-repo@sha256:{}", "a".repeat(64))
    );
    assert_eq!(
        fetch_image(&out.packages[1], 0),
        "docker.io/user1/simple-app-package:2.0.0"
    );
}
