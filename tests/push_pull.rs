//! `pkgr push` and `pkgr pull` against a real registry (Debian's docker-registry on loopback).
mod support;
use pkgr::bundle::fetch::{localize, read_locations, write_locations};
use pkgr::bundle::lock::{BundleLock, ImageLocation, ImageLocations, ImagesLock};
use pkgr::registry::{Client, ClientOptions, Reference};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::registry::TestRegistry;

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn pkgr(home: &Path, args: &[&str]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .args(args)
        // A private HOME: no Docker config or credentials of the machine leak into the test.
        .env("HOME", home)
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env_remove("IMGPKG_USERNAME")
        .env_remove("IMGPKG_PASSWORD")
        .env_remove("IMGPKG_TOKEN")
        .output()
        .expect("run pkgr");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(home: &Path, args: &[&str]) -> Run {
    let run = pkgr(home, args);
    assert!(
        run.ok,
        "pkgr {args:?} failed:\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    run
}

fn write(path: &Path, contents: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

/// Every regular file under `root`: relative path → contents.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_str().unwrap().to_string();
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The `sha256:…` in "Pushed 'repo@sha256:…'".
fn pushed_digest(run: &Run) -> String {
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("Pushed '"))
        .expect("a Pushed line");
    assert!(run.stdout.contains("Succeeded"), "{}", run.stdout);
    line.split('@').nth(1).unwrap().trim_end_matches('\'').to_string()
}

fn images_yml(images: &[(String, &str)]) -> String {
    let mut s = String::from("apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n");
    for (image, id) in images {
        s.push_str(&format!(
            "- image: {image}\n  annotations:\n    kbld.carvel.dev/id: {id}\n"
        ));
    }
    s
}

fn push_plain_image(home: &Path, target: &str, marker: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("data.txt"), marker.as_bytes());
    pushed_digest(&ok(
        home,
        &["push", "-i", target, "-f", dir.path().to_str().unwrap()],
    ))
}

fn client() -> Client {
    Client::new(ClientOptions::default()).unwrap()
}

#[test]
fn bundle_round_trips_byte_for_byte() {
    let reg = TestRegistry::start();
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let root = src.path();
    write(&root.join(".imgpkg/images.yml"), images_yml(&[]).as_bytes());
    write(
        &root.join(".imgpkg/bundle.yml"),
        b"apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: Bundle\n",
    );
    write(&root.join("packages/simple/1.0.0.yml"), b"kind: Package\n");
    write(
        &root.join("packages/simple/deep/er/still/metadata.yml"),
        b"kind: PackageMetadata\n",
    );
    let binary: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    write(&root.join("assets/blob.bin"), &binary);
    write(&root.join("empty.txt"), b"");
    write(&root.join(".git/HEAD"), b"ref: refs/heads/main\n");
    write(&root.join("vendor/.git/config"), b"nested git is kept\n");

    let target = format!("{}/apps/bundle:v1", reg.host);
    let push = ok(
        home.path(),
        &["push", "-b", &target, "-f", root.to_str().unwrap()],
    );
    let digest = pushed_digest(&push);
    assert!(
        push.stdout
            .contains(&format!("Pushed '{}/apps/bundle@{digest}'", reg.host)),
        "{}",
        push.stdout
    );

    let out = home.path().join("out");
    // A stale file in the output directory disappears: the directory is recreated.
    write(&out.join("stale.txt"), b"old");
    let pull = ok(home.path(), &["pull", "-b", &target, "-o", out.to_str().unwrap()]);
    assert!(
        pull.stdout
            .contains(&format!("Pulling bundle '{}/apps/bundle@{digest}'", reg.host)),
        "{}",
        pull.stdout
    );
    assert!(pull.stdout.trim_end().ends_with("Succeeded"), "{}", pull.stdout);

    let mut expected = tree(root);
    expected.remove(".git/HEAD");
    // No images: every (zero) image is in the repository, so imgpkg rewrites the file.
    expected.insert(
        ".imgpkg/images.yml".into(),
        ImagesLock::default().to_yaml().into_bytes(),
    );
    assert_eq!(tree(&out), expected);

    // The extra imgpkg tag points at the same manifest.
    let tag_ref = Reference::parse(&format!(
        "{}/apps/bundle:{}.imgpkg",
        reg.host,
        digest.replace(':', "-")
    ))
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let head = rt
        .block_on(client().head_manifest(&tag_ref))
        .unwrap()
        .expect("sha256-<hex>.imgpkg tag");
    assert_eq!(head.digest.as_str(), digest);

    // Pushing the same content again gives the same digest (deterministic layer and config).
    let again = ok(
        home.path(),
        &["push", "-b", &target, "-f", root.to_str().unwrap()],
    );
    assert_eq!(pushed_digest(&again), digest);
}

#[test]
fn images_lock_rewrite_follows_imgpkg_rules() {
    let reg = TestRegistry::start();
    let home = tempfile::tempdir().unwrap();
    let repo = format!("{}/apps/bundle", reg.host);
    // Two images pushed into the bundle's repository (as a copy would have put them there).
    let d1 = push_plain_image(home.path(), &format!("{repo}:img1"), "one");
    let d2 = push_plain_image(home.path(), &format!("{repo}:img2"), "two");
    let missing = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    // (a) every image present in the bundle repo: rewritten to <bundleRepo>@<digest>.
    let present = images_yml(&[
        (format!("index.docker.io/library/one@{d1}"), "one"),
        (format!("ghcr.io/org/two@{d2}"), "two"),
    ]);
    let bundle = tempfile::tempdir().unwrap();
    write(&bundle.path().join(".imgpkg/images.yml"), present.as_bytes());
    ok(
        home.path(),
        &[
            "push",
            "-b",
            &format!("{repo}:present"),
            "-f",
            bundle.path().to_str().unwrap(),
        ],
    );
    let out = home.path().join("a");
    let run = ok(
        home.path(),
        &[
            "pull",
            "-b",
            &format!("{repo}:present"),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(run.stdout.contains("is hosting every image"), "{}", run.stdout);
    let rewritten = fs::read_to_string(out.join(".imgpkg/images.yml")).unwrap();
    assert_eq!(
        rewritten,
        format!(
            "---\napiVersion: imgpkg.carvel.dev/v1alpha1\nimages:\n- annotations:\n    kbld.carvel.dev/id: one\n  image: {repo}@{d1}\n- annotations:\n    kbld.carvel.dev/id: two\n  image: {repo}@{d2}\nkind: ImagesLock\n"
        )
    );

    // (b) one image missing: the file is left exactly as written.
    let partial = images_yml(&[
        (format!("index.docker.io/library/one@{d1}"), "one"),
        (format!("index.docker.io/library/gone@{missing}"), "gone"),
    ]);
    write(&bundle.path().join(".imgpkg/images.yml"), partial.as_bytes());
    ok(
        home.path(),
        &[
            "push",
            "-b",
            &format!("{repo}:partial"),
            "-f",
            bundle.path().to_str().unwrap(),
        ],
    );
    let out = home.path().join("b");
    let run = ok(
        home.path(),
        &[
            "pull",
            "-b",
            &format!("{repo}:partial"),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        run.stdout.contains("One or more images not found in bundle repo"),
        "{}",
        run.stdout
    );
    assert_eq!(
        fs::read_to_string(out.join(".imgpkg/images.yml")).unwrap(),
        partial
    );

    // (c) a locations image: every image rewritten, even one the repository does not hold,
    // because imgpkg trusts the locations image and checks nothing else.
    let partial_ref = Reference::parse(&format!("{repo}:partial")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = client();
    let resolved = rt.block_on(c.head_manifest(&partial_ref)).unwrap().unwrap();
    let bundle_ref = partial_ref.with_digest(resolved.digest);
    assert_eq!(rt.block_on(read_locations(&c, &bundle_ref)).unwrap(), None);
    let locations = ImageLocations {
        images: vec![
            ImageLocation {
                image: format!("index.docker.io/library/one@{d1}"),
                is_bundle: false,
            },
            ImageLocation {
                image: format!("index.docker.io/library/gone@{missing}"),
                is_bundle: false,
            },
        ],
    };
    rt.block_on(write_locations(&c, &bundle_ref, &locations)).unwrap();
    let read_back = rt
        .block_on(read_locations(&c, &bundle_ref))
        .unwrap()
        .expect("locations image");
    assert_eq!(read_back.images.len(), 2);
    assert_eq!(
        read_back.images[0].image,
        format!("index.docker.io/library/gone@{missing}")
    );
    let out = home.path().join("c");
    ok(
        home.path(),
        &[
            "pull",
            "-b",
            &format!("{repo}:partial"),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let lock = ImagesLock::parse(&fs::read(out.join(".imgpkg/images.yml")).unwrap()).unwrap();
    let images: Vec<&str> = lock.images.iter().map(|i| i.image.as_str()).collect();
    assert_eq!(images, [format!("{repo}@{d1}"), format!("{repo}@{missing}")]);
    assert_eq!(lock.images[1].annotations["kbld.carvel.dev/id"], "gone");

    // The library call reports the same, with the locations it used.
    let original = ImagesLock::parse(partial.as_bytes()).unwrap();
    let localized = rt.block_on(localize(&c, &bundle_ref, &original)).unwrap();
    assert!(localized.relocated);
    assert_eq!(localized.locations, Some(read_back));
}

#[test]
fn wrong_kind_of_image_fails_with_imgpkg_hints() {
    let reg = TestRegistry::start();
    let home = tempfile::tempdir().unwrap();
    let image = format!("{}/apps/plain:v1", reg.host);
    push_plain_image(home.path(), &image, "plain");
    let out = home.path().join("out");
    let run = pkgr(home.path(), &["pull", "-b", &image, "-o", out.to_str().unwrap()]);
    assert!(!run.ok);
    assert!(
        run.stderr
            .contains("Expected bundle image but found plain image (hint: Did you use -i instead of -b?)"),
        "{}",
        run.stderr
    );

    let bundle_dir = tempfile::tempdir().unwrap();
    write(
        &bundle_dir.path().join(".imgpkg/images.yml"),
        images_yml(&[]).as_bytes(),
    );
    write(&bundle_dir.path().join("x.yml"), b"x");
    let bundle = format!("{}/apps/bundle:v1", reg.host);
    ok(
        home.path(),
        &["push", "-b", &bundle, "-f", bundle_dir.path().to_str().unwrap()],
    );
    let run = pkgr(home.path(), &["pull", "-i", &bundle, "-o", out.to_str().unwrap()]);
    assert!(!run.ok);
    assert!(
        run.stderr
            .contains("Expected bundle flag when pulling a bundle (hint: Use -b instead of -i for bundles)"),
        "{}",
        run.stderr
    );
    // With the check off the bundle is pulled as a plain image: no images.yml rewrite.
    ok(
        home.path(),
        &[
            "pull",
            "-i",
            &bundle,
            "--image-is-bundle-check=false",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(
        fs::read_to_string(out.join(".imgpkg/images.yml")).unwrap(),
        images_yml(&[])
    );
    assert_eq!(fs::read(out.join("x.yml")).unwrap(), b"x");

    // --recursive makes no sense for -i; "." as output is refused before anything is deleted.
    let run = pkgr(
        home.path(),
        &["pull", "-i", &image, "--recursive", "-o", out.to_str().unwrap()],
    );
    assert!(!run.ok && run.stderr.contains("--recursive"), "{}", run.stderr);
    for bad in [".", "..", "/", "./"] {
        let run = pkgr(home.path(), &["pull", "-i", &image, "-o", bad]);
        assert!(
            !run.ok && run.stderr.contains("Disallowed output directory"),
            "{bad}: {}",
            run.stderr
        );
    }
}

#[test]
fn push_validates_inputs_like_imgpkg() {
    let reg = TestRegistry::start();
    let home = tempfile::tempdir().unwrap();
    let target = format!("{}/apps/bad:v1", reg.host);
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("a.yml"), b"a");
    let d = dir.path().to_str().unwrap();

    let run = pkgr(home.path(), &["push", "-b", &target, "-f", d]);
    assert!(
        !run.ok && run.stderr.contains("Expected one '.imgpkg' dir, got 0"),
        "{}",
        run.stderr
    );

    write(
        &dir.path().join("sub/.imgpkg/images.yml"),
        images_yml(&[]).as_bytes(),
    );
    let run = pkgr(home.path(), &["push", "-b", &target, "-f", d]);
    assert!(!run.ok && run.stderr.contains("direct child"), "{}", run.stderr);

    let run = pkgr(home.path(), &["push", "-i", &target, "-f", d]);
    assert!(
        !run.ok && run.stderr.contains("consider using --bundle (-b)"),
        "{}",
        run.stderr
    );

    fs::remove_dir_all(dir.path().join("sub")).unwrap();
    write(
        &dir.path().join(".imgpkg/images.yml"),
        b"apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n- image: nginx:latest\n",
    );
    let run = pkgr(home.path(), &["push", "-b", &target, "-f", d]);
    assert!(!run.ok && run.stderr.contains("digest form"), "{}", run.stderr);

    write(&dir.path().join(".imgpkg/images.yml"), images_yml(&[]).as_bytes());
    let run = pkgr(
        home.path(),
        &[
            "push",
            "-b",
            &target,
            "-f",
            d,
            "-l",
            "dev.carvel.imgpkg.bundle=true",
        ],
    );
    assert!(!run.ok && run.stderr.contains("reserved"), "{}", run.stderr);

    std::os::unix::fs::symlink("a.yml", dir.path().join("link.yml")).unwrap();
    let run = pkgr(home.path(), &["push", "-b", &target, "-f", d]);
    assert!(!run.ok && run.stderr.contains("link.yml"), "{}", run.stderr);
}

#[test]
fn labels_lock_output_and_pull_by_lock() {
    let reg = TestRegistry::start();
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join(".imgpkg/images.yml"), images_yml(&[]).as_bytes());
    write(&dir.path().join("config.yml"), b"c: 1\n");
    let bundle = format!("{}/apps/locked:v2", reg.host);
    let lock_file = home.path().join("bundle.lock.yml");
    let run = ok(
        home.path(),
        &[
            "push",
            "-b",
            &bundle,
            "-f",
            dir.path().to_str().unwrap(),
            "-l",
            "team=platform",
            "--lock-output",
            lock_file.to_str().unwrap(),
        ],
    );
    let digest = pushed_digest(&run);
    let lock = BundleLock::parse(&fs::read(&lock_file).unwrap()).unwrap();
    assert_eq!(lock.image, format!("{}/apps/locked@{digest}", reg.host));
    assert_eq!(lock.tag.as_deref(), Some("v2"));

    // The label landed in the config next to the bundle label.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let image = rt
        .block_on(pkgr::bundle::fetch::resolve_image(
            &client(),
            &Reference::parse(&bundle).unwrap(),
        ))
        .unwrap();
    assert_eq!(image.labels["team"], "platform");
    assert_eq!(image.labels["dev.carvel.imgpkg.bundle"], "true");

    let out = home.path().join("out");
    ok(
        home.path(),
        &[
            "pull",
            "--lock",
            lock_file.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(fs::read(out.join("config.yml")).unwrap(), b"c: 1\n");

    // -i writes an ImagesLock with the one image.
    let plain = tempfile::tempdir().unwrap();
    write(&plain.path().join("p.txt"), b"p");
    let images_lock = home.path().join("images.lock.yml");
    let run = ok(
        home.path(),
        &[
            "push",
            "-i",
            &format!("{}/apps/plain:v1", reg.host),
            "-f",
            plain.path().to_str().unwrap(),
            "--lock-output",
            images_lock.to_str().unwrap(),
        ],
    );
    let lock = ImagesLock::parse(&fs::read(&images_lock).unwrap()).unwrap();
    assert_eq!(lock.images.len(), 1);
    assert_eq!(
        lock.images[0].image,
        format!("{}/apps/plain@{}", reg.host, pushed_digest(&run))
    );
    let out = home.path().join("plain-out");
    ok(
        home.path(),
        &[
            "pull",
            "--lock",
            images_lock.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(fs::read(out.join("p.txt")).unwrap(), b"p");
}

#[test]
fn recursive_pull_extracts_nested_bundles_flat() {
    let reg = TestRegistry::start();
    let home = tempfile::tempdir().unwrap();
    // innermost <- middle <- outer, each in its own repository.
    let inner_dir = tempfile::tempdir().unwrap();
    write(
        &inner_dir.path().join(".imgpkg/images.yml"),
        images_yml(&[]).as_bytes(),
    );
    write(&inner_dir.path().join("inner.yml"), b"inner");
    let inner = pushed_digest(&ok(
        home.path(),
        &[
            "push",
            "-b",
            &format!("{}/apps/inner:v1", reg.host),
            "-f",
            inner_dir.path().to_str().unwrap(),
        ],
    ));
    let plain = push_plain_image(home.path(), &format!("{}/apps/plain:v1", reg.host), "plain");

    let middle_dir = tempfile::tempdir().unwrap();
    write(
        &middle_dir.path().join(".imgpkg/images.yml"),
        images_yml(&[(format!("{}/apps/inner@{inner}", reg.host), "inner")]).as_bytes(),
    );
    write(&middle_dir.path().join("middle.yml"), b"middle");
    let middle = pushed_digest(&ok(
        home.path(),
        &[
            "push",
            "-b",
            &format!("{}/apps/middle:v1", reg.host),
            "-f",
            middle_dir.path().to_str().unwrap(),
        ],
    ));

    let outer_dir = tempfile::tempdir().unwrap();
    write(
        &outer_dir.path().join(".imgpkg/images.yml"),
        images_yml(&[
            (format!("{}/apps/middle@{middle}", reg.host), "middle"),
            (format!("{}/apps/plain@{plain}", reg.host), "plain"),
            (format!("{}/apps/inner@{inner}", reg.host), "inner-again"),
        ])
        .as_bytes(),
    );
    let outer = format!("{}/apps/outer:v1", reg.host);
    ok(
        home.path(),
        &["push", "-b", &outer, "-f", outer_dir.path().to_str().unwrap()],
    );

    let out = home.path().join("out");
    let run = ok(
        home.path(),
        &["pull", "-b", &outer, "--recursive", "-o", out.to_str().unwrap()],
    );
    assert!(
        run.stdout.contains("Skipped, already downloaded"),
        "{}",
        run.stdout
    );
    let bundles = out.join(".imgpkg/bundles");
    let mut found: Vec<String> = fs::read_dir(&bundles)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    found.sort();
    let mut expected = vec![inner.replace(':', "-"), middle.replace(':', "-")];
    expected.sort();
    assert_eq!(found, expected);
    let middle_out = bundles.join(middle.replace(':', "-"));
    assert_eq!(fs::read(middle_out.join("middle.yml")).unwrap(), b"middle");
    assert_eq!(
        fs::read(bundles.join(inner.replace(':', "-")).join("inner.yml")).unwrap(),
        b"inner"
    );
    // The middle bundle's images.yml was localised against its own repository, where `inner`
    // is not: left untouched.
    assert_eq!(
        fs::read_to_string(middle_out.join(".imgpkg/images.yml")).unwrap(),
        images_yml(&[(format!("{}/apps/inner@{inner}", reg.host), "inner")])
    );
}

#[test]
fn tls_registry_with_basic_auth() {
    let reg = TestRegistry::start_tls_auth("alice", "s3cret-pass");
    let home = tempfile::tempdir().unwrap();
    let ca = reg.ca_pem.as_ref().unwrap().to_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join(".imgpkg/images.yml"), images_yml(&[]).as_bytes());
    write(&dir.path().join("secure.yml"), b"secure");
    let bundle = format!("{}/apps/secure:v1", reg.host);
    let auth = [
        "--registry-ca-cert-path",
        &ca,
        "--registry-username",
        "alice",
        "--registry-password",
        "s3cret-pass",
    ];

    let mut args = vec!["push", "-b", &bundle, "-f", dir.path().to_str().unwrap()];
    args.extend_from_slice(&auth);
    ok(home.path(), &args);

    let out = home.path().join("out");
    let out_s = out.to_str().unwrap().to_string();
    let mut args = vec!["pull", "-b", &bundle, "-o", &out_s];
    args.extend_from_slice(&auth);
    ok(home.path(), &args);
    assert_eq!(fs::read(out.join("secure.yml")).unwrap(), b"secure");

    // Wrong password: a clear failure that never shows the password.
    let run = pkgr(
        home.path(),
        &[
            "pull",
            "-b",
            &bundle,
            "-o",
            &out_s,
            "--registry-ca-cert-path",
            &ca,
            "--registry-username",
            "alice",
            "--registry-password",
            "wrong-pass-123",
        ],
    );
    assert!(!run.ok);
    assert!(
        run.stderr.to_lowercase().contains("unauthorized"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("wrong-pass-123") && !run.stdout.contains("wrong-pass-123"));
    // Without the CA the certificate is not trusted, so nothing is pulled.
    let run = pkgr(
        home.path(),
        &[
            "pull",
            "-b",
            &bundle,
            "-o",
            &out_s,
            "--registry-username",
            "alice",
            "--registry-password",
            "s3cret-pass",
        ],
    );
    assert!(!run.ok, "{}", run.stdout);
    assert!(
        run.stderr.contains(&reg.host) && !run.stderr.contains("s3cret-pass"),
        "{}",
        run.stderr
    );
}
