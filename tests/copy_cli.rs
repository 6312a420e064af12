//! `pkgr copy` as a user runs it: flag validation, and a copy with `--lock-output`.
mod support;

use bytes::Bytes;
use pkgr::registry::{Client, ClientOptions, Digest, Reference};
use std::process::Command;
use support::registry::TestRegistry;

fn pkgr(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .arg("copy")
        .args(args)
        .env_remove("IMGPKG_USERNAME")
        .env_remove("IMGPKG_PASSWORD")
        .env_remove("IMGPKG_TOKEN")
        .env("DOCKER_CONFIG", "/nonexistent-pkgr-test")
        .output()
        .expect("run pkgr");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn flags_are_validated_before_any_network_access() {
    let (ok, _, err) = pkgr(&["-b", "127.0.0.1:1/x:1", "--to-repo", "127.0.0.1:1/y", "--resume"]);
    assert!(!ok);
    assert!(err.contains("--resume only applies to --to-tar"), "{err}");

    let (ok, _, err) = pkgr(&[
        "-b",
        "127.0.0.1:1/x:1",
        "--to-tar",
        "/tmp/x.tar",
        "--lock-output",
        "l.yml",
    ]);
    assert!(!ok);
    assert!(
        err.contains("--lock-output cannot be used with --to-tar"),
        "{err}"
    );

    let (ok, _, err) = pkgr(&["--tar", "/tmp/x.tar", "--to-tar", "/tmp/y.tar"]);
    assert!(!ok);
    assert!(err.contains("--to-repo"), "{err}");

    let (ok, _, err) = pkgr(&["-b", "a:1", "-i", "b:1", "--to-repo", "c"]);
    assert!(!ok);
    assert!(err.contains("cannot be used with"), "{err}");

    let (ok, _, err) = pkgr(&["-b", "127.0.0.1:1/x:1"]);
    assert!(!ok);
    assert!(err.contains("--to-repo") || err.contains("required"), "{err}");

    let (ok, _, err) = pkgr(&["--tar", "/nonexistent/pkgr.tar", "--to-repo", "127.0.0.1:1/y"]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/pkgr.tar"), "{err}");
}

#[test]
fn copy_an_image_and_write_its_lock() {
    let reg = TestRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    // A one-layer image pushed with the registry client.
    let layer = b"pkgr copy cli test layer".to_vec();
    let digest = |b: &[u8]| Digest::of(b).to_string();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        digest(&layer)
    );
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{},"digest":"{}"}}]}}"#,
        config.len(),
        digest(config.as_bytes()),
        layer.len(),
        digest(&layer)
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = Client::new(ClientOptions::default()).unwrap();
        let repo = Reference::parse_repository(&format!("{}/src/cli", reg.host)).unwrap();
        client
            .push_blob_bytes(&repo, Bytes::from(layer.clone()))
            .await
            .unwrap();
        client
            .push_blob_bytes(&repo, Bytes::from(config.clone()))
            .await
            .unwrap();
        client
            .put_manifest(
                &repo.with_tag("v1"),
                "application/vnd.docker.distribution.manifest.v2+json",
                Bytes::from(manifest.clone()),
            )
            .await
            .unwrap();
    });

    let lock = dir.path().join("out.lock.yml");
    let src = format!("{}/src/cli:v1", reg.host);
    let dst = format!("{}/dst/cli", reg.host);
    let (ok, _, err) = pkgr(&[
        "-i",
        &src,
        "--to-repo",
        &dst,
        "--lock-output",
        lock.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("copied"), "a summary is printed: {err}");
    assert!(
        !err.contains('\x1b') && !err.contains('\r'),
        "no terminal codes when stderr is not a terminal: {err:?}"
    );
    let written = std::fs::read_to_string(&lock).unwrap();
    let md = digest(manifest.as_bytes());
    assert!(written.contains("kind: ImagesLock"), "{written}");
    assert!(written.contains(&format!("image: {dst}@{md}")), "{written}");

    // The lock output feeds a further copy (--lock with an ImagesLock).
    let dst2 = format!("{}/dst/again", reg.host);
    let (ok, _, err) = pkgr(&["--lock", lock.to_str().unwrap(), "--to-repo", &dst2]);
    assert!(ok, "{err}");
    let tags = runtime.block_on(async {
        let client = Client::new(ClientOptions::default()).unwrap();
        client
            .list_tags(&Reference::parse_repository(&dst2).unwrap())
            .await
            .unwrap()
    });
    assert!(tags.contains(&format!("sha256-{}.imgpkg", &md[7..])), "{tags:?}");

    // On a terminal (a pseudo-terminal from util-linux `script`): one line redrawn in place with
    // bytes, percentage, rate and ETA, then the summary on a clean line.
    // A second registry, so that the blobs travel rather than being mounted.
    let other = TestRegistry::start();
    let dst3 = format!("{}/dst/terminal", other.host);
    let command = format!("{} copy -i {src} --to-repo {dst3}", env!("CARGO_BIN_EXE_pkgr"));
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("DOCKER_CONFIG", "/nonexistent-pkgr-test")
        .output()
        .expect("run script (util-linux)");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    let redrawn = shown
        .split("\r\x1b[K")
        .find(|part| part.contains("(100%)"))
        .unwrap_or_else(|| panic!("a redrawn progress line: {shown:?}"));
    assert!(
        redrawn.contains(&format!(
            "{} B / {} B (100%)",
            layer.len() + config.len(),
            layer.len() + config.len()
        )) && redrawn.contains("/s")
            && redrawn.contains("ETA"),
        "{redrawn:?}"
    );
    assert!(shown.contains("\r\x1b[Kcopied 1 image(s)"), "{shown:?}");
}
