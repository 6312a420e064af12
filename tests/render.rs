//! `pkgr render`, the binary: tarballs built here in imgpkg's format (no network), usage errors,
//! and bundles and images pushed to a real local registry.
mod support;

use flate2::{Compression, write::GzEncoder};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BUNDLE_LABEL: &str = "dev.carvel.imgpkg.bundle";
const ROOT_LABEL: &str = "dev.carvel.imgpkg.copy.root-bundle";
const LAYER_MEDIA: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const MANIFEST_MEDIA: &str = "application/vnd.docker.distribution.manifest.v2+json";
const CONFIG_MEDIA: &str = "application/vnd.docker.container.image.v1+json";

fn pkgr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .args(args)
        // No credentials or Docker config of the machine running the tests.
        .env(
            "DOCKER_CONFIG",
            std::env::temp_dir().join("pkgr-render-test-no-docker-config"),
        )
        .env_remove("IMGPKG_USERNAME")
        .env_remove("IMGPKG_PASSWORD")
        .env_remove("IMGPKG_TOKEN")
        .output()
        .expect("run pkgr")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Files of a directory, relative paths with `/`, under `prefix`.
fn read_dir(root: &Path, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, prefix, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(format!("{prefix}{rel}"), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, prefix, &mut out);
    out
}

/// An imgpkg-style gzip layer; returns (gzip bytes, diff id).
fn layer(files: &BTreeMap<String, Vec<u8>>) -> (Vec<u8>, String) {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(contents.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, contents.as_slice())
            .unwrap();
    }
    let tar_bytes = builder.into_inner().unwrap();
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    std::io::Write::write_all(&mut gz, &tar_bytes).unwrap();
    (gz.finish().unwrap(), sha256(&tar_bytes))
}

/// A tarball as `imgpkg copy --to-tar` writes it (reference §4): manifest.json, then the layer.
fn write_tarball(path: &Path, files: &BTreeMap<String, Vec<u8>>, bundle: bool) -> String {
    let (gz, diff_id) = layer(files);
    let layer_digest = sha256(&gz);
    let labels = if bundle {
        format!(r#"{{"Labels":{{"{BUNDLE_LABEL}":"true"}}}}"#)
    } else {
        "{}".to_string()
    };
    let config = format!(
        r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{{"author":"imgpkg","created":"0001-01-01T00:00:00Z","created_by":"imgpkg"}}],"os":"","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}},"config":{labels}}}"#
    );
    let config_digest = sha256(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST_MEDIA}","config":{{"mediaType":"{CONFIG_MEDIA}","size":{},"digest":"{config_digest}"}},"layers":[{{"mediaType":"{LAYER_MEDIA}","size":{},"digest":"{layer_digest}"}}]}}"#,
        config.len(),
        gz.len()
    );
    let manifest_digest = sha256(manifest.as_bytes());
    let described = serde_json::json!([{
        "ImageIndex": null,
        "Image": {
            "Refs": [format!("source.example.com/apps/repo@{manifest_digest}")],
            "Layers": [{"MediaType": LAYER_MEDIA, "Digest": layer_digest, "DiffID": diff_id, "Size": gz.len()}],
            "Config": {"Digest": config_digest, "Raw": config},
            "Manifest": {"MediaType": MANIFEST_MEDIA, "Digest": manifest_digest, "Raw": manifest},
            "Tag": "v1.0.0",
            "OrigRef": "",
            "Labels": {ROOT_LABEL: ""}
        }
    }]);
    let json = serde_json::to_vec(&described).unwrap();
    let mut outer = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in [
        ("manifest.json".to_string(), json.as_slice()),
        (
            format!("{}.tar.gz", layer_digest.replace(':', "-")),
            gz.as_slice(),
        ),
    ] {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        outer.append_data(&mut header, name, data).unwrap();
    }
    outer.into_inner().unwrap();
    manifest_digest
}

fn example_files() -> BTreeMap<String, Vec<u8>> {
    read_dir(&repo_root().join("examples/simple-repo"), "")
}

/// The digests the example's images.yml locks the two package images to.
fn example_digests() -> Vec<String> {
    let lock = std::fs::read_to_string(repo_root().join("examples/simple-repo/.imgpkg/images.yml")).unwrap();
    lock.lines()
        .filter_map(|l| l.trim().strip_prefix("image: "))
        .map(|image| image.split_once('@').unwrap().1.to_string())
        .collect()
}

fn documents(stdout: &[u8]) -> Vec<serde_json::Value> {
    serde_saphyr::from_multiple(&text(stdout)).expect("render prints YAML")
}

fn fetch_image(doc: &serde_json::Value) -> &str {
    doc["spec"]["template"]["spec"]["fetch"][0]["imgpkgBundle"]["image"]
        .as_str()
        .expect("imgpkgBundle.image")
}

#[test]
fn renders_a_bundle_tarball_with_its_images_yml() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("repo.tar");
    write_tarball(&tarball, &example_files(), true);
    let out = pkgr(&["render", "--tar", tarball.to_str().unwrap()]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let docs = documents(&out.stdout);
    let kinds: Vec<_> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["PackageMetadata", "Package", "Package"]);
    let names: Vec<_> = docs
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "simple-app.corp.com",
            "simple-app.corp.com.1.0.0",
            "simple-app.corp.com.2.0.0"
        ]
    );
    let digests = example_digests();
    assert_eq!(
        fetch_image(&docs[1]),
        format!("index.docker.io/user1/simple-app-package@{}", digests[0])
    );
    assert_eq!(
        fetch_image(&docs[2]),
        format!("index.docker.io/user1/simple-app-package@{}", digests[1])
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("rendered 1 PackageMetadata and 2 Packages"),
        "{stderr}"
    );
}

#[test]
fn relocated_to_points_images_at_the_destination_repository() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("repo.tar");
    write_tarball(&tarball, &example_files(), true);
    let out = pkgr(&[
        "render",
        "--tar",
        tarball.to_str().unwrap(),
        "--relocated-to",
        "final-registry.corp.xyz/apps/simple-app-bundle",
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let docs = documents(&out.stdout);
    let digests = example_digests();
    assert_eq!(
        fetch_image(&docs[1]),
        format!("final-registry.corp.xyz/apps/simple-app-bundle@{}", digests[0])
    );
    assert_eq!(
        fetch_image(&docs[2]),
        format!("final-registry.corp.xyz/apps/simple-app-bundle@{}", digests[1])
    );
}

#[test]
fn a_plain_image_tarball_with_a_sub_path_is_not_relocated() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("image.tar");
    let mut files = read_dir(&repo_root().join("examples/simple-repo"), "repo/");
    files.insert("README.md".into(), b"not part of the repository".to_vec());
    write_tarball(&tarball, &files, false);
    let out = pkgr(&["render", "--tar", tarball.to_str().unwrap(), "--sub-path", "repo"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let docs = documents(&out.stdout);
    assert_eq!(docs.len(), 3);
    assert_eq!(fetch_image(&docs[1]), "docker.io/user1/simple-app-package:1.0.0");
    // --relocated-to needs a bundle's images.yml.
    let out = pkgr(&[
        "render",
        "--tar",
        tarball.to_str().unwrap(),
        "--sub-path",
        "repo",
        "--relocated-to",
        "reg.corp/x",
    ]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not a bundle"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_invalid_repository_exits_1_listing_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("bad.tar");
    let mut files = example_files();
    files.insert(
        "packages/simple-app.corp.com/1.0.0.yml".into(),
        b"apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata:\n  name: simple-app.corp.com.v1.0.0\nspec:\n  refName: simple-app.corp.com\n  version: v1.0.0\n".to_vec(),
    );
    files.insert(
        "packages/simple-app.corp.com/2.0.0.yml".into(),
        b"apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata:\n  name: [unclosed\n"
            .to_vec(),
    );
    files.insert(
        "packages/other.yml".into(),
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n".to_vec(),
    );
    write_tarball(&tarball, &files, true);
    let out = pkgr(&["render", "--tar", tarball.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "nothing is printed when the repository is invalid"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("pkgr: 2 problems in the repository's packages:\n- packages/simple-app.corp.com/1.0.0.yml doc 1: spec.version: Invalid value: \"v1.0.0\": must be valid semver: "),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "\n- packages/simple-app.corp.com/2.0.0.yml doc 1: malformed YAML at line 4, column 9: "
        ),
        "{stderr}"
    );
}

#[test]
fn a_tarball_without_packages_fails_with_upstreams_message() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("nopkgs.tar");
    let mut files = BTreeMap::new();
    files.insert(
        ".imgpkg/images.yml".to_string(),
        b"apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n".to_vec(),
    );
    files.insert("config/app.yml".to_string(), b"a: 1\n".to_vec());
    write_tarball(&tarball, &files, true);
    let out = pkgr(&["render", "--tar", tarball.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("Invalid package repository content: must contain 'packages/' directory but did not"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn skipped_documents_are_listed_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("extra.tar");
    let mut files = example_files();
    files.insert(
        "packages/extra.yml".into(),
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n".to_vec(),
    );
    write_tarball(&tarball, &files, true);
    let out = pkgr(&["render", "--tar", tarball.to_str().unwrap()]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr)
            .contains("skipped packages/extra.yml doc 1: v1 ConfigMap is not a Package or PackageMetadata"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(documents(&out.stdout).len(), 3);
}

#[test]
fn unknown_fields_are_noted_shared_images_count_once_and_kbld_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("shared.tar");
    let mut files = example_files();
    // A third Package using the 1.0.0 package bundle, with a misspelt field and a Go duration.
    files.insert(
        "packages/simple-app.corp.com/1.0.0+hotfix.1.yml".into(),
        b"apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata:\n  name: simple-app.corp.com.1.0.0+hotfix.1\nspec:\n  refName: simple-app.corp.com\n  version: 1.0.0+hotfix.1\n  template:\n    spec:\n      syncPeriod: 10m\n      fetch:\n      - imgpkgbundel:\n          image: x\n      - imgpkgBundle:\n          image: docker.io/user1/simple-app-package:1.0.0\n"
            .to_vec(),
    );
    write_tarball(&tarball, &files, true);
    let out = pkgr(&["render", "--tar", tarball.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(
        stderr.contains(
            "note: packages/simple-app.corp.com/1.0.0+hotfix.1.yml doc 1: field \
             spec.template.spec.fetch[0].imgpkgbundel is not part of kapp-controller's types"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("rendered 1 PackageMetadata and 3 Packages from")
            && stderr.contains("(2 images relocated)"),
        "{stderr}"
    );
    let docs = documents(&out.stdout);
    let hotfix = docs
        .iter()
        .find(|d| d["spec"]["version"] == "1.0.0+hotfix.1")
        .expect("the hotfix Package");
    assert_eq!(hotfix["spec"]["template"]["spec"]["syncPeriod"], "10m0s");
    assert_eq!(
        hotfix["spec"]["template"]["spec"]["fetch"][0],
        serde_json::json!({})
    );
    let digests = example_digests();
    let image = format!("index.docker.io/user1/simple-app-package@{}", digests[0]);
    assert_eq!(
        hotfix["spec"]["template"]["spec"]["fetch"][1]["imgpkgBundle"]["image"],
        image.as_str()
    );
    let record = hotfix["metadata"]["annotations"]["kbld.k14s.io/images"]
        .as_str()
        .unwrap();
    assert_eq!(
        record,
        format!("- origins:\n  - preresolved:\n      url: {image}\n  url: {image}\n")
    );
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[&[&str]] = &[
        &["render"],
        &["render", "-b", "reg.corp/a:1", "--tar", "x.tar"],
        &["render", "-b", "reg.corp/a:1", "-i", "reg.corp/b:1"],
        &["render", "-b", "reg.corp/a:1", "--relocated-to", "reg.corp/c"],
        &["render", "-b", "reg.corp/a:1", "--sub-path", "repo"],
        &["render", "-b", "NOT A REFERENCE"],
        &["render", "--tar", "x.tar", "--relocated-to", "reg.corp/c:tag"],
    ];
    for args in cases {
        let out = pkgr(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty());
        assert!(!out.stderr.is_empty());
    }
}

/// A machine (or image) without CA roots: the error says where pkgr looks and what to install.
#[test]
fn no_system_ca_roots_is_an_error_that_says_what_to_install() {
    let empty = tempfile::tempdir().unwrap();
    let bundle = empty.path().join("ca-certificates.crt");
    std::fs::write(&bundle, "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .args(["render", "-i", "127.0.0.1:9/pkgr-test/repo:v1"])
        .env("SSL_CERT_FILE", &bundle)
        .env("SSL_CERT_DIR", empty.path())
        .env("DOCKER_CONFIG", empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("No CA certificates were loaded"), "{stderr}");
    assert!(
        stderr.contains("install the ca-certificates package") && stderr.contains("--registry-ca-cert-path"),
        "{stderr}"
    );
}

#[test]
fn a_missing_tarball_is_a_clear_error() {
    let out = pkgr(&["render", "--tar", "/nonexistent/pkgr-render-test.tar"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("/nonexistent/pkgr-render-test.tar"),
        "{}",
        text(&out.stderr)
    );
}

/// The digest a registry serves for `repository:tag` (HEAD with every manifest type accepted).
fn manifest_digest(registry: &support::registry::TestRegistry, repository: &str, tag: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(&registry.host).unwrap();
    write!(
        stream,
        "HEAD /v2/{repository}/manifests/{tag} HTTP/1.1\r\nHost: {}\r\nAccept: {MANIFEST_MEDIA}, application/vnd.oci.image.manifest.v1+json\r\nConnection: close\r\n\r\n",
        registry.host
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("docker-content-digest")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no digest for {repository}:{tag}: {response}"))
}

fn copy_dir(from: &Path, to: &Path) {
    for (rel, contents) in read_dir(from, "") {
        let dest = to.join(&rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, contents).unwrap();
    }
}

#[test]
fn renders_a_pushed_bundle_from_the_registry() {
    let registry = support::registry::TestRegistry::start();
    let bundle = format!("{}:v1.0.0", registry.repo("apps/simple-repo"));
    let example = repo_root().join("examples/simple-repo");
    let push = pkgr(&["push", "-b", &bundle, "-f", example.to_str().unwrap()]);
    assert!(push.status.success(), "push: {}", text(&push.stderr));
    let out = pkgr(&["render", "-b", &bundle]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let docs = documents(&out.stdout);
    assert_eq!(docs.len(), 3);
    // The package images are not in the bundle's repository: images.yml is used as written.
    let digests = example_digests();
    assert_eq!(
        fetch_image(&docs[1]),
        format!("index.docker.io/user1/simple-app-package@{}", digests[0])
    );
    assert!(
        text(&out.stderr).contains(&registry.repo("apps/simple-repo")),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn images_present_in_the_bundle_repository_are_localised_like_imgpkg_pull() {
    let registry = support::registry::TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    // A package image pushed into the same repository as the bundle, as a copy would leave it.
    let image_dir = work.path().join("image");
    std::fs::create_dir_all(&image_dir).unwrap();
    std::fs::write(image_dir.join("app.yml"), "kind: ConfigMap\n").unwrap();
    let image = format!("{}:pkg-1.0.0", registry.repo("apps/repo"));
    let push = pkgr(&["push", "-i", &image, "-f", image_dir.to_str().unwrap()]);
    assert!(push.status.success(), "push -i: {}", text(&push.stderr));
    let digest = manifest_digest(&registry, "apps/repo", "pkg-1.0.0");
    // The repository bundle locks the package image at its original location.
    let repo_dir = work.path().join("repo");
    copy_dir(&repo_root().join("examples/simple-repo"), &repo_dir);
    std::fs::write(
        repo_dir.join(".imgpkg/images.yml"),
        format!(
            "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n- image: index.docker.io/user1/simple-app-package@{digest}\n  annotations:\n    kbld.carvel.dev/id: docker.io/user1/simple-app-package:1.0.0\n"
        ),
    )
    .unwrap();
    let bundle = format!("{}:v1", registry.repo("apps/repo"));
    let push = pkgr(&["push", "-b", &bundle, "-f", repo_dir.to_str().unwrap()]);
    assert!(push.status.success(), "push -b: {}", text(&push.stderr));
    let out = pkgr(&["render", "-b", &bundle]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let docs = documents(&out.stdout);
    assert_eq!(
        fetch_image(&docs[1]),
        format!("{}@{digest}", registry.repo("apps/repo"))
    );
    assert_eq!(fetch_image(&docs[2]), "docker.io/user1/simple-app-package:2.0.0");
}

#[test]
fn renders_a_plain_image_with_a_sub_path() {
    let registry = support::registry::TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    copy_dir(
        &repo_root().join("examples/simple-repo/packages"),
        &work.path().join("repo/packages"),
    );
    let image = format!("{}:v1", registry.repo("apps/plain"));
    let push = pkgr(&["push", "-i", &image, "-f", work.path().to_str().unwrap()]);
    assert!(push.status.success(), "push -i: {}", text(&push.stderr));
    let out = pkgr(&["render", "-i", &image, "--sub-path", "repo"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let docs = documents(&out.stdout);
    assert_eq!(docs.len(), 3);
    assert_eq!(fetch_image(&docs[1]), "docker.io/user1/simple-app-package:1.0.0");
    let out = pkgr(&["render", "-i", &image, "--sub-path", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("subPath \"nope\" not found"),
        "{}",
        text(&out.stderr)
    );
    // A plain image is not a bundle: -b refuses it, as the controller's imgpkgBundle source does.
    let out = pkgr(&["render", "-b", &image]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("expected a bundle but found a plain image"),
        "{}",
        text(&out.stderr)
    );
    // Without the subPath, there is no packages/ at the root.
    let out = pkgr(&["render", "-i", &image]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("must contain 'packages/' directory"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn registry_credentials_and_ca_come_from_the_registry_flags() {
    let registry = support::registry::TestRegistry::start_tls_auth("render-user", "render-pass");
    let ca = registry.ca_pem.clone().unwrap();
    let ca = ca.to_str().unwrap();
    let bundle = format!("{}:v1", registry.repo("apps/private"));
    let example = repo_root().join("examples/simple-repo");
    let creds = [
        "--registry-username",
        "render-user",
        "--registry-password",
        "render-pass",
    ];
    let mut args = vec![
        "push",
        "-b",
        &bundle,
        "-f",
        example.to_str().unwrap(),
        "--registry-ca-cert-path",
        ca,
    ];
    args.extend(creds);
    let push = pkgr(&args);
    assert!(push.status.success(), "push: {}", text(&push.stderr));
    let mut args = vec!["render", "-b", &bundle, "--registry-ca-cert-path", ca];
    args.extend(creds);
    let out = pkgr(&args);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(documents(&out.stdout).len(), 3);
    // Without credentials the registry refuses: exit 1, and the password is never printed.
    let out = pkgr(&["render", "-b", &bundle, "--registry-ca-cert-path", ca]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("401") || stderr.to_lowercase().contains("unauthorized"),
        "{stderr}"
    );
    assert!(!stderr.contains("render-pass"));
}

#[test]
fn renders_a_tarball_written_by_pkgr_copy_as_if_imported() {
    let registry = support::registry::TestRegistry::start();
    let work = tempfile::tempdir().unwrap();
    // The package image, and a repository bundle whose images.yml locks it.
    let image_dir = work.path().join("image");
    std::fs::create_dir_all(&image_dir).unwrap();
    std::fs::write(image_dir.join("app.yml"), "kind: ConfigMap\n").unwrap();
    let image = format!("{}:1.0.0", registry.repo("user1/simple-app-package"));
    let push = pkgr(&["push", "-i", &image, "-f", image_dir.to_str().unwrap()]);
    assert!(push.status.success(), "push -i: {}", text(&push.stderr));
    let digest = manifest_digest(&registry, "user1/simple-app-package", "1.0.0");
    let repo_dir = work.path().join("repo");
    copy_dir(&repo_root().join("examples/simple-repo"), &repo_dir);
    std::fs::write(
        repo_dir.join(".imgpkg/images.yml"),
        format!(
            "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n- image: {}@{digest}\n  annotations:\n    kbld.carvel.dev/id: docker.io/user1/simple-app-package:1.0.0\n",
            registry.repo("user1/simple-app-package")
        ),
    )
    .unwrap();
    let bundle = format!("{}:v1", registry.repo("apps/simple-repo"));
    let push = pkgr(&["push", "-b", &bundle, "-f", repo_dir.to_str().unwrap()]);
    assert!(push.status.success(), "push -b: {}", text(&push.stderr));
    let tarball = work.path().join("export.tar");
    let copy = pkgr(&["copy", "-b", &bundle, "--to-tar", tarball.to_str().unwrap()]);
    assert!(copy.status.success(), "copy: {}", text(&copy.stderr));
    // Across the air gap: no registry at all.
    drop(registry);
    let out = pkgr(&[
        "render",
        "--tar",
        tarball.to_str().unwrap(),
        "--relocated-to",
        "final-registry.corp.xyz/apps/simple-app-bundle",
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let docs = documents(&out.stdout);
    assert_eq!(docs.len(), 3);
    assert_eq!(
        fetch_image(&docs[1]),
        format!("final-registry.corp.xyz/apps/simple-app-bundle@{digest}")
    );
    assert_eq!(fetch_image(&docs[2]), "docker.io/user1/simple-app-package:2.0.0");
}
