//! `push --preserve-permissions`: the layer keeps each file's whole mode (Go's `os.FileMode`, as
//! imgpkg writes it), byte for byte what Go's archive/tar makes of it; without the flag the
//! modes stay normalised (the fixture digests in `push_digests.rs` guard that path).
mod support;

use pkgr::bundle::layer::{Permissions, write_layer_with};
use sha2::{Digest as _, Sha256};
use std::fs;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

/// Go's `os.ModeDir`, which imgpkg leaves in the directory entries' mode.
const GO_MODE_DIR: u64 = 1 << 31;
const GO_MODE_SETUID: u64 = 1 << 23;

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A tree with group/other bits, an executable, a setuid file and a path over 100 bytes.
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let deep = root.join("config").join("d".repeat(60)).join("e".repeat(50));
    fs::create_dir_all(&deep).unwrap();
    fs::write(root.join("config/values.yml"), b"a: 1\n").unwrap();
    fs::write(root.join("config/run.sh"), b"#!/bin/sh\n").unwrap();
    fs::write(root.join("config/suid"), b"x").unwrap();
    fs::write(deep.join("deep.txt"), b"deep").unwrap();
    chmod(&root.join("config/values.yml"), 0o644);
    chmod(&root.join("config/run.sh"), 0o755);
    chmod(&root.join("config/suid"), 0o4750);
    chmod(&deep.join("deep.txt"), 0o640);
    chmod(&root.join("config"), 0o750);
    chmod(root, 0o755);
    dir
}

fn layer(root: &Path, permissions: Permissions) -> (Vec<u8>, String) {
    let mut gz = Vec::new();
    let info = write_layer_with(&[root.to_path_buf()], &[".git".into()], permissions, &mut gz).unwrap();
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(
        info.diff_id.to_string(),
        format!("sha256:{}", hex::encode(Sha256::digest(&tar)))
    );
    (tar, info.diff_id.to_string())
}

/// (path, raw mode) of every entry, as a tar reader sees it (GNU long names resolved).
fn modes(tar: &[u8]) -> Vec<(String, u64)> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            (path, raw_mode(e.header()))
        })
        .collect()
}

/// The mode field, octal or GNU base-256.
fn raw_mode(header: &tar::Header) -> u64 {
    let field = &header.as_bytes()[100..108];
    if field[0] & 0x80 != 0 {
        field[1..]
            .iter()
            .fold(u64::from(field[0] & 0x7f), |acc, &b| (acc << 8) | u64::from(b))
    } else {
        let text = std::str::from_utf8(&field[..7]).unwrap();
        u64::from_str_radix(text, 8).unwrap()
    }
}

fn mode_of(modes: &[(String, u64)], path: &str) -> u64 {
    modes
        .iter()
        .find(|(p, _)| p == path)
        .unwrap_or_else(|| panic!("{path} not in the layer: {modes:?}"))
        .1
}

#[test]
fn preserved_modes_differ_from_normalised_ones_as_imgpkg_writes_them() {
    let dir = tree();
    let deep_file = format!("config/{}/{}/deep.txt", "d".repeat(60), "e".repeat(50));
    let deep_dir = format!("config/{}/{}", "d".repeat(60), "e".repeat(50));

    let (plain, plain_id) = layer(dir.path(), Permissions::Normalised);
    let plain = modes(&plain);
    assert_eq!(mode_of(&plain, "."), 0o700);
    assert_eq!(mode_of(&plain, "config"), 0o700);
    assert_eq!(mode_of(&plain, &deep_dir), 0o700);
    assert_eq!(mode_of(&plain, "config/values.yml"), 0o600);
    assert_eq!(mode_of(&plain, "config/run.sh"), 0o700);
    assert_eq!(mode_of(&plain, "config/suid"), 0o700);
    assert_eq!(mode_of(&plain, &deep_file), 0o600);

    let (kept, kept_id) = layer(dir.path(), Permissions::Preserved);
    let kept = modes(&kept);
    assert_eq!(
        kept.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
        plain.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
        "the same entries in the same order"
    );
    // Every directory carries the -f root's mode (0755 here), Go's ModeDir bit included, even
    // `config`, whose own mode is 0750: imgpkg stats the walk's root for each directory.
    for d in [".", "config", deep_dir.as_str()] {
        assert_eq!(mode_of(&kept, d), GO_MODE_DIR | 0o755, "{d}");
    }
    assert_eq!(mode_of(&kept, "config/values.yml"), 0o644);
    assert_eq!(mode_of(&kept, "config/run.sh"), 0o755);
    assert_eq!(mode_of(&kept, "config/suid"), GO_MODE_SETUID | 0o750);
    assert_eq!(mode_of(&kept, &deep_file), 0o640);
    assert_ne!(plain_id, kept_id);
}

/// imgpkg's tar writer with and without keepPermissions, rewritten as a small Go program: the
/// same walk, the same `tar.Header`s, Go's own archive/tar choosing USTAR, PAX or GNU.
const GO_TAR: &str = r#"package main

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"time"
)

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func main() {
	root, keep := os.Args[1], os.Args[2] == "keep"
	rootInfo, err := os.Stat(root)
	must(err)
	tw := tar.NewWriter(os.Stdout)
	must(filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		must(err)
		rel, err := filepath.Rel(root, path)
		must(err)
		if info.IsDir() {
			mode := int64(0700)
			if keep {
				mode = int64(rootInfo.Mode())
			}
			return tw.WriteHeader(&tar.Header{Name: rel, Mode: mode, ModTime: time.Time{}, Typeflag: tar.TypeDir})
		}
		mode := int64(info.Mode() & 0700)
		if keep {
			mode = int64(info.Mode())
		}
		must(tw.WriteHeader(&tar.Header{Name: rel, Size: info.Size(), Mode: mode, ModTime: time.Time{}, Typeflag: tar.TypeReg}))
		f, err := os.Open(path)
		must(err)
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	}))
	must(tw.Close())
}
"#;

fn go_tar(root: &Path, keep: bool) -> Option<Vec<u8>> {
    let bin = support::go::build_go_program("go-imgpkg-tar", GO_TAR)?;
    let out = Command::new(bin)
        .arg(root)
        .arg(if keep { "keep" } else { "normalise" })
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Some(out.stdout)
}

#[test]
fn the_tar_is_byte_for_byte_what_go_writes_for_imgpkg() {
    let dir = tree();
    for (permissions, keep) in [(Permissions::Normalised, false), (Permissions::Preserved, true)] {
        let (ours, _) = layer(dir.path(), permissions);
        let Some(go) = go_tar(dir.path(), keep) else {
            return;
        };
        assert_eq!(
            hex::encode(Sha256::digest(&ours)),
            hex::encode(Sha256::digest(&go)),
            "{permissions:?}: pkgr's tar differs from Go's ({} vs {} bytes)",
            ours.len(),
            go.len()
        );
    }
}

/// The layer the registry holds for `reference`, uncompressed.
async fn pushed_tar(client: &pkgr::registry::Client, reference: &str) -> Vec<u8> {
    use pkgr::registry::{ManifestBody, Reference};
    let reference = Reference::parse(reference).unwrap();
    let manifest = client.get_manifest(&reference).await.unwrap();
    let ManifestBody::Image(image) = manifest.parse().unwrap() else {
        panic!("{reference} is not an image manifest")
    };
    let gz = client
        .get_blob_bytes(&reference, &image.layers[0].digest, 10 << 20)
        .await
        .unwrap();
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut tar)
        .unwrap();
    tar
}

#[tokio::test]
async fn the_push_flag_reaches_the_layer_in_the_registry() {
    let reg = support::registry::TestRegistry::start();
    let client = pkgr::registry::Client::new(pkgr::registry::ClientOptions::default()).unwrap();
    let dir = tree();
    let input = dir.path().join("config");
    let plain = reg.repo("apps/plain:1");
    let kept = reg.repo("apps/kept:1");
    for (target, extra) in [(&plain, None), (&kept, Some("--preserve-permissions"))] {
        let out = Command::new(env!("CARGO_BIN_EXE_pkgr"))
            .args(["push", "-i", target, "-f"])
            .arg(&input)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let plain = modes(&pushed_tar(&client, &plain).await);
    let kept = modes(&pushed_tar(&client, &kept).await);
    assert_eq!(mode_of(&plain, "values.yml"), 0o600);
    assert_eq!(mode_of(&kept, "values.yml"), 0o644);
    // -f config: its directories take config's own mode (0750).
    assert_eq!(mode_of(&plain, "."), 0o700);
    assert_eq!(mode_of(&kept, "."), GO_MODE_DIR | 0o750);

    // The GNU headers read back: pkgr pulls what it pushed.
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .args(["pull", "-i", &reg.repo("apps/kept:1"), "-o"])
        .arg(out_dir.path().join("kept"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        fs::read(out_dir.path().join("kept/values.yml")).unwrap(),
        b"a: 1\n"
    );
}
