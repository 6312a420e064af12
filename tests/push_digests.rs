//! `pkgr push` gives imgpkg's digests for the same directory: the fixture under
//! `tests/fixtures/imgpkg-push` holds what the real imgpkg pushed for `input/`.
mod support;
use pkgr::registry::{Client, ClientOptions, Digest, Reference};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use support::registry::TestRegistry;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/imgpkg-push");

/// Copy `from` to `to` with the modes git records for the fixture: `run.sh` executable,
/// everything else 0644 (a checkout's umask or a read-only copy must not change the tar).
fn copy_with_git_modes(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_with_git_modes(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
            let mode = if entry.file_name() == "run.sh" {
                0o755
            } else {
                0o644
            };
            fs::set_permissions(&target, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

/// `manifest`, `config` and `layer` digests from a fixture's digests.txt.
fn expected_digest(push: &str, what: &str) -> Digest {
    let text = fs::read_to_string(format!("{FIXTURE}/{push}/digests.txt")).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{what} ")))
        .unwrap_or_else(|| panic!("{push}/digests.txt has no {what} line"));
    Digest::parse(line.trim()).unwrap()
}

fn push(home: &Path, flag: &str, target: &str, input: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .args(["push", flag, target, "-f", input.to_str().unwrap()])
        .env("HOME", home)
        .env("DOCKER_CONFIG", home.join(".docker"))
        .output()
        .expect("run pkgr");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "pkgr push {flag} {target} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Pushed '"))
        .unwrap_or_else(|| panic!("no Pushed line in:\n{stdout}"));
    line.split('@').nth(1).unwrap().trim_end_matches('\'').to_string()
}

#[test]
fn push_gives_imgpkgs_digests_and_bytes() {
    let reg = TestRegistry::start();
    let home = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let input = src.path().join("input");
    copy_with_git_modes(&Path::new(FIXTURE).join("input"), &input);
    let client = Client::new(ClientOptions::default()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();

    for (push_dir, flag, from) in [
        ("imgpkg-bundle", "-b", input.clone()),
        ("imgpkg-image", "-i", input.join("config")),
    ] {
        let target = format!("{}/fx/{}:1", reg.host, &push_dir[7..]);
        let pushed = push(home.path(), flag, &target, &from);
        let manifest_digest = expected_digest(push_dir, "manifest");
        assert_eq!(
            pushed,
            manifest_digest.to_string(),
            "pkgr push {flag}: manifest digest differs from imgpkg's"
        );

        let reference = Reference::parse(&target).unwrap();
        let manifest = rt.block_on(client.get_manifest(&reference)).unwrap();
        let expected = fs::read(format!("{FIXTURE}/{push_dir}/manifest.json")).unwrap();
        assert_eq!(&manifest.bytes[..], &expected[..], "{push_dir}: manifest bytes");
        for (what, file) in [("config", "config.json"), ("layer", "layer.tar.gz")] {
            let digest = expected_digest(push_dir, what);
            let blob = rt
                .block_on(client.get_blob_bytes(&reference, &digest, 1 << 20))
                .unwrap_or_else(|e| panic!("{push_dir}: the {what} blob {digest} is missing: {e}"));
            let expected = fs::read(format!("{FIXTURE}/{push_dir}/{file}")).unwrap();
            assert!(blob[..] == expected[..], "{push_dir}: {what} bytes differ");
        }
    }
}
