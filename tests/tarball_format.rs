//! imgpkg's tarball format: an imgpkg-style fixture imports, pkgr's manifest.json matches Go's
//! output field for field, truncation is reported by entry, and `--resume` keeps verified layers.
use bytes::Bytes;
use pkgr::bundle::tarball::{
    ROOT_BUNDLE_LABEL, TarImage, TarLayer, TarballError, TarballReader, TarballWriter, manifest_json,
};
use pkgr::registry::{Digest, Manifest};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::Read;

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Incompressible-looking deterministic bytes.
fn blob(seed: u8, len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn go_escape(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

struct FixtureImage {
    manifest: String,
    config: String,
    layers: Vec<Vec<u8>>,
}

fn fixture_image(seed: u8, label: bool) -> FixtureImage {
    let layers = vec![blob(seed, 3000), blob(seed.wrapping_add(100), 700)];
    let labels = if label {
        r#"{"Labels":{"dev.carvel.imgpkg.bundle":"true"}}"#
    } else {
        "{}"
    };
    let config = format!(
        r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","os":"","rootfs":{{"type":"layers","diff_ids":["sha256:{0}","sha256:{0}"]}},"config":{labels}}}"#,
        "ab".repeat(32)
    );
    let layer_json: Vec<String> = layers
        .iter()
        .map(|l| {
            format!(
                r#"{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{},"digest":"{}"}}"#,
                l.len(),
                sha(l)
            )
        })
        .collect();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{}"}},"layers":[{}]}}"#,
        config.len(),
        sha(config.as_bytes()),
        layer_json.join(",")
    );
    FixtureImage {
        manifest,
        config,
        layers,
    }
}

fn go_image_json(img: &FixtureImage, refs: &str, tag: &str, orig: &str, labels: &str) -> String {
    let layers: Vec<String> = img
        .layers
        .iter()
        .map(|l| {
            format!(
                r#"{{"MediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","Digest":"{}","DiffID":"sha256:{}","Size":{}}}"#,
                sha(l),
                "ab".repeat(32),
                l.len()
            )
        })
        .collect();
    format!(
        r#"{{"Refs":["{refs}@{}"],"Layers":[{}],"Config":{{"Digest":"{}","Raw":{}}},"Manifest":{{"MediaType":"application/vnd.docker.distribution.manifest.v2+json","Digest":"{}","Raw":{}}},"Tag":"{tag}","OrigRef":"{orig}","Labels":{labels}}}"#,
        sha(img.manifest.as_bytes()),
        layers.join(","),
        sha(img.config.as_bytes()),
        go_escape(&img.config),
        sha(img.manifest.as_bytes()),
        go_escape(&img.manifest),
    )
}

/// A tar written the way imgpkg's Go code writes it (archive/tar USTAR, 0644, mtime 0, sorted layers).
fn write_imgpkg_style_tar(path: &std::path::Path, manifest_json: &str, layers: &[&Vec<u8>]) {
    let mut sorted: Vec<(String, &Vec<u8>)> = layers.iter().map(|l| (sha(l), *l)).collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted.dedup_by(|a, b| a.0 == b.0);
    let mut builder = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut append = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        builder.append(&h, data).unwrap();
    };
    append("manifest.json", manifest_json.as_bytes());
    for (digest, data) in &sorted {
        append(&format!("{}.tar.gz", digest.replace(':', "-")), data);
    }
    builder.into_inner().unwrap();
}

#[test]
fn imgpkg_style_tarball_imports() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = fixture_image(1, true);
    let app = fixture_image(2, false);
    let bundle_json = go_image_json(
        &bundle,
        "reg.example.com/repo",
        "v1.0.0",
        &format!("reg.example.com/repo@{}", sha(bundle.manifest.as_bytes())),
        &format!(r#"{{"{ROOT_BUNDLE_LABEL}":""}}"#),
    );
    let app_json = go_image_json(
        &app,
        "reg.example.com/app",
        "",
        &format!("docker.io/app@{}", sha(app.manifest.as_bytes())),
        "null",
    );
    // imgpkg sorts top-level entries by manifest digest + "/" + config digest.
    let key = |i: &FixtureImage| format!("{}/{}", sha(i.manifest.as_bytes()), sha(i.config.as_bytes()));
    let (first, second) = if key(&bundle) < key(&app) {
        (&bundle_json, &app_json)
    } else {
        (&app_json, &bundle_json)
    };
    let manifest =
        format!(r#"[{{"ImageIndex":null,"Image":{first}}},{{"ImageIndex":null,"Image":{second}}}]"#);
    let path = dir.path().join("imgpkg.tar");
    let all: Vec<&Vec<u8>> = bundle.layers.iter().chain(app.layers.iter()).collect();
    write_imgpkg_style_tar(&path, &manifest, &all);

    let reader = TarballReader::open(&path).unwrap();
    assert_eq!(reader.images().len(), 2);
    let root = reader.root().expect("root bundle by label");
    assert_eq!(root.manifest.digest.as_str(), sha(bundle.manifest.as_bytes()));
    assert_eq!(root.tag.as_deref(), Some("v1.0.0"));
    assert_eq!(root.config.as_deref(), Some(bundle.config.as_bytes()));
    assert_eq!(root.manifest.bytes.as_ref(), bundle.manifest.as_bytes());
    let app_entry = reader
        .images()
        .iter()
        .find(|i| i.manifest.digest.as_str() == sha(app.manifest.as_bytes()))
        .unwrap();
    assert_eq!(
        app_entry.orig_ref,
        format!("docker.io/app@{}", sha(app.manifest.as_bytes()))
    );
    assert_eq!(app_entry.layers.len(), 2);
    assert_eq!(app_entry.layers[1].size, 700);
    for layer in &all {
        let mut got = Vec::new();
        let mut r = reader.open_layer(&Digest::parse(&sha(layer)).unwrap()).unwrap();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(&got, *layer);
        // Decoders read again after the end: still the end, not an error.
        assert_eq!(r.read(&mut [0u8; 16]).unwrap(), 0);
    }
    // pkgr writes the same manifest.json back, byte for byte.
    assert_eq!(
        String::from_utf8(manifest_json(reader.images()).unwrap()).unwrap(),
        manifest
    );
}

fn tar_image(img: &FixtureImage, refs: &str, tag: Option<&str>, orig: &str, root: bool) -> TarImage {
    let mut labels = BTreeMap::new();
    if root {
        labels.insert(ROOT_BUNDLE_LABEL.to_string(), String::new());
    }
    TarImage {
        manifest: Manifest {
            media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
            digest: Digest::parse(&sha(img.manifest.as_bytes())).unwrap(),
            bytes: Bytes::from(img.manifest.clone()),
        },
        config: Some(Bytes::from(img.config.clone())),
        layers: img
            .layers
            .iter()
            .map(|l| TarLayer {
                media_type: "application/vnd.docker.image.rootfs.diff.tar.gzip".into(),
                digest: Digest::parse(&sha(l)).unwrap(),
                diff_id: format!("sha256:{}", "ab".repeat(32)),
                size: l.len() as u64,
            })
            .collect(),
        children: vec![],
        tag: tag.map(str::to_string),
        orig_ref: orig.to_string(),
        refs: vec![format!("{refs}@{}", sha(img.manifest.as_bytes()))],
        labels,
        top_level: true,
    }
}

#[test]
fn manifest_json_matches_go_field_for_field_with_index_and_sorting() {
    let a = fixture_image(3, false);
    let b = fixture_image(4, false);
    let root = fixture_image(5, true);
    let index_raw = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{}","size":{}}},{{"digest":"{}","size":{}}}],"annotations":{{"x":"<&>"}}}}"#,
        sha(a.manifest.as_bytes()),
        a.manifest.len(),
        sha(b.manifest.as_bytes()),
        b.manifest.len()
    );
    let index_digest = sha(index_raw.as_bytes());
    let mut child_a = tar_image(&a, "src.example/idx", None, "docker.io/idx@X", false);
    let mut child_b = tar_image(&b, "src.example/idx", None, "docker.io/idx@X", false);
    child_a.top_level = false;
    child_b.top_level = false;
    let index = TarImage {
        manifest: Manifest {
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            digest: Digest::parse(&index_digest).unwrap(),
            bytes: Bytes::from(index_raw.clone()),
        },
        config: None,
        layers: vec![],
        children: vec![child_a.manifest.digest.clone(), child_b.manifest.digest.clone()],
        tag: None,
        orig_ref: "docker.io/idx@X".into(),
        refs: vec![format!("src.example/idx@{index_digest}")],
        labels: BTreeMap::new(),
        top_level: true,
    };
    let root_img = tar_image(
        &root,
        "src.example/bundle",
        Some("v2"),
        "src.example/bundle@R",
        true,
    );
    let images = vec![child_a, child_b, index, root_img];
    let got = String::from_utf8(manifest_json(&images).unwrap()).unwrap();

    let index_entry = format!(
        r#"{{"ImageIndex":{{"Refs":["src.example/idx@{index_digest}"],"Images":[{},{}],"Indexes":null,"MediaType":"application/vnd.oci.image.index.v1+json","Digest":"{index_digest}","Raw":{},"Tag":"","OrigRef":"docker.io/idx@X","Labels":null}},"Image":null}}"#,
        go_image_json(&a, "src.example/idx", "", "docker.io/idx@X", "null"),
        go_image_json(&b, "src.example/idx", "", "docker.io/idx@X", "null"),
        go_escape(&index_raw),
    );
    let root_entry = format!(
        r#"{{"ImageIndex":null,"Image":{}}}"#,
        go_image_json(
            &root,
            "src.example/bundle",
            "v2",
            "src.example/bundle@R",
            &format!(r#"{{"{ROOT_BUNDLE_LABEL}":""}}"#)
        )
    );
    // Top-level entries are sorted by manifest digest (+ "/" + config digest for images).
    let root_key = format!(
        "{}/{}",
        sha(root.manifest.as_bytes()),
        sha(root.config.as_bytes())
    );
    let expected = if root_key < index_digest {
        format!("[{root_entry},{index_entry}]")
    } else {
        format!("[{index_entry},{root_entry}]")
    };
    assert_eq!(got, expected);
    assert!(
        got.contains(r#"\"x\":\"\u003c\u0026\u003e\""#),
        "HTML characters escaped as Go does"
    );

    // And it reads back: children before their index, index children not top level.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.tar");
    let layers = layer_list(&[&a, &b, &root]);
    let writer = TarballWriter::create(&path, got.as_bytes(), &layers, false).unwrap();
    fill(&writer, &[&a, &b, &root]);
    writer.finish().unwrap();
    let reader = TarballReader::open(&path).unwrap();
    let digests: Vec<String> = reader
        .images()
        .iter()
        .map(|i| i.manifest.digest.to_string())
        .collect();
    let idx_pos = digests.iter().position(|d| *d == index_digest).unwrap();
    let a_pos = digests
        .iter()
        .position(|d| *d == sha(a.manifest.as_bytes()))
        .unwrap();
    assert!(a_pos < idx_pos);
    assert!(!reader.images()[a_pos].top_level);
    assert_eq!(reader.root().unwrap().tag.as_deref(), Some("v2"));
}

fn layer_list(images: &[&FixtureImage]) -> Vec<(Digest, u64)> {
    images
        .iter()
        .flat_map(|i| i.layers.iter())
        .map(|l| (Digest::parse(&sha(l)).unwrap(), l.len() as u64))
        .collect()
}

fn fill(writer: &TarballWriter, images: &[&FixtureImage]) {
    for image in images {
        for l in &image.layers {
            let digest = Digest::parse(&sha(l)).unwrap();
            if writer.missing().iter().any(|(d, _)| *d == digest) {
                let mut sink = writer.layer_sink(&digest).unwrap();
                // Two writes, to exercise positional appends.
                sink.write(&l[..l.len() / 2]).unwrap();
                sink.write(&l[l.len() / 2..]).unwrap();
                sink.finish().unwrap();
            }
        }
    }
}

fn pkgr_tar(dir: &std::path::Path, images: &[&FixtureImage]) -> (std::path::PathBuf, Vec<u8>) {
    let tar_images: Vec<TarImage> = images
        .iter()
        .enumerate()
        .map(|(n, i)| tar_image(i, "src.example/r", None, "o", n == 0))
        .collect();
    let json = manifest_json(&tar_images).unwrap();
    let path = dir.join("out.tar");
    let writer = TarballWriter::create(&path, &json, &layer_list(images), false).unwrap();
    fill(&writer, images);
    writer.finish().unwrap();
    (path, json)
}

#[test]
fn layout_is_imgpkg_format_and_tar_tools_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let a = fixture_image(6, true);
    let b = fixture_image(7, false);
    let (path, json) = pkgr_tar(dir.path(), &[&a, &b]);
    let mut archive = tar::Archive::new(std::fs::File::open(&path).unwrap());
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        assert_eq!(header.mode().unwrap(), 0o644);
        assert_eq!(header.mtime().unwrap(), 0);
        assert_eq!(header.uid().unwrap(), 0);
        assert_eq!(header.entry_type(), tar::EntryType::Regular);
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if name == "manifest.json" {
            assert_eq!(data, json);
        } else {
            assert_eq!(name, format!("{}.tar.gz", sha(&data).replace(':', "-")));
        }
        names.push(name);
    }
    assert_eq!(names[0], "manifest.json");
    let mut layer_names = names[1..].to_vec();
    let sorted = {
        let mut s = layer_names.clone();
        s.sort();
        s
    };
    assert_eq!(layer_names, sorted, "layers sorted by digest");
    layer_names.dedup();
    assert_eq!(layer_names.len(), 4);
    // Go's writer ends with exactly two zero blocks and no 10 KiB record padding.
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes[bytes.len() - 1024..].iter().all(|b| *b == 0));
    assert_eq!(bytes.len() % 512, 0);
}

#[test]
fn truncated_tarball_names_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let a = fixture_image(8, true);
    let (path, _) = pkgr_tar(dir.path(), &[&a]);
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 1024 - 512 - 200).unwrap();
    let err = TarballReader::open(&path).expect_err("a truncated tar is refused");
    let msg = err.to_string();
    assert!(matches!(err, TarballError::Truncated { .. }), "{msg}");
    let last_layer = {
        let mut d: Vec<String> = a.layers.iter().map(|l| sha(l).replace(':', "-")).collect();
        d.sort();
        d.pop().unwrap()
    };
    assert!(msg.contains(&format!("{last_layer}.tar.gz")), "{msg}");
    assert!(msg.contains("truncated"), "{msg}");
    // Cut exactly after an entry: the end-of-archive marker is missing.
    file.set_len(len - 1024).unwrap();
    let msg = TarballReader::open(&path).err().unwrap().to_string();
    assert!(msg.contains("end-of-archive"), "{msg}");
}

#[test]
fn an_impossible_entry_size_is_a_header_error_not_an_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let mut header = tar::Header::new_ustar();
    header.set_path("manifest.json").unwrap();
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    // A base-256 size of nearly 2^64 bytes.
    let size = &mut header.as_mut_bytes()[124..136];
    size.fill(0xff);
    size[0] = 0x80;
    header.set_cksum();
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(&[0u8; 2048]);
    let path = dir.path().join("hostile.tar");
    std::fs::write(&path, bytes).unwrap();
    let err = TarballReader::open(&path).expect_err("refused");
    assert!(
        matches!(err, TarballError::BadHeader { .. }) && err.to_string().contains("impossible size"),
        "{err}"
    );
}

#[test]
fn corrupt_layer_fails_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let a = fixture_image(9, true);
    let (path, _) = pkgr_tar(dir.path(), &[&a]);
    let reader = TarballReader::open(&path).unwrap();
    let digest = Digest::parse(&sha(&a.layers[0])).unwrap();
    // Flip a byte inside that layer's data.
    let bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(64).position(|w| w == &a.layers[0][..64]).unwrap();
    let mut bytes = bytes;
    bytes[at + 10] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let mut out = Vec::new();
    let err = reader
        .open_layer(&digest)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
    assert!(err.to_string().contains(&digest.dashed()), "{err}");
    // A layer that is not in the tar: the imgpkg hint about non-distributable layers.
    let missing = Digest::parse(&sha(b"nope")).unwrap();
    let msg = reader.open_layer(&missing).err().unwrap().to_string();
    assert!(
        msg.contains("not found") && msg.contains("--include-non-distributable-layers"),
        "{msg}"
    );
}

#[test]
fn resume_reuses_verified_layers_and_replaces_corrupt_ones() {
    let dir = tempfile::tempdir().unwrap();
    let a = fixture_image(10, true);
    let b = fixture_image(11, false);
    let images = [&a, &b];
    let tar_images: Vec<TarImage> = images
        .iter()
        .enumerate()
        .map(|(n, i)| tar_image(i, "src.example/r", None, "o", n == 0))
        .collect();
    let json = manifest_json(&tar_images).unwrap();
    let layers = layer_list(&images);
    let path = dir.path().join("partial.tar");

    // First run: only three of the four layers arrive, then the process "dies" (no finish).
    let writer = TarballWriter::create(&path, &json, &layers, false).unwrap();
    let todo = writer.missing();
    assert_eq!(todo.len(), 4);
    assert!(todo.windows(2).all(|w| w[0].1 >= w[1].1), "largest first");
    let by_digest = |d: &Digest| -> Vec<u8> {
        a.layers
            .iter()
            .chain(b.layers.iter())
            .find(|l| sha(l) == d.as_str())
            .unwrap()
            .clone()
    };
    for (d, _) in &todo[..3] {
        let mut sink = writer.layer_sink(d).unwrap();
        sink.write(&by_digest(d)).unwrap();
        sink.finish().unwrap();
    }
    drop(writer);
    // Corrupt one of the arrived layers on disk.
    let corrupted = todo[1].0.clone();
    let mut bytes = std::fs::read(&path).unwrap();
    let data = by_digest(&corrupted);
    let at = bytes.windows(64).position(|w| w == &data[..64]).unwrap();
    bytes[at + 5] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();

    let writer = TarballWriter::create(&path, &json, &layers, true).unwrap();
    let report = writer.resume_report().clone();
    assert_eq!(report.reused_in_place, 2);
    assert_eq!(report.corrupt, 2, "the damaged layer and the one never filled");
    let still: Vec<Digest> = writer.missing().into_iter().map(|(d, _)| d).collect();
    assert_eq!(still.len(), 2);
    assert!(still.contains(&corrupted));
    assert!(still.contains(&todo[3].0));
    for d in &still {
        let mut sink = writer.layer_sink(d).unwrap();
        sink.write(&by_digest(d)).unwrap();
        sink.finish().unwrap();
    }
    writer.finish().unwrap();
    let reader = TarballReader::open(&path).unwrap();
    for (d, _) in &layers {
        let mut out = Vec::new();
        reader.open_layer(d).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, by_digest(d));
    }

    // A new export with a different manifest.json moves the layout: verified layers are copied
    // locally, nothing is missing.
    let c = fixture_image(12, false);
    let mut more = tar_images.clone();
    more.push(tar_image(
        &c,
        "src.example/r",
        None,
        "o-with-a-longer-orig-ref",
        false,
    ));
    let json2 = manifest_json(&more).unwrap();
    let layers2 = layer_list(&[&a, &b, &c]);
    let writer = TarballWriter::create(&path, &json2, &layers2, true).unwrap();
    assert_eq!(writer.resume_report().reused_copied, 4);
    assert_eq!(writer.missing().len(), 2);
    fill(&writer, &[&c]);
    writer.finish().unwrap();
    let reader = TarballReader::open(&path).unwrap();
    assert_eq!(reader.images().len(), 3);
    assert!(!dir.path().join("partial.tar.pkgr-partial").exists());
}

#[test]
fn sink_refuses_wrong_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let a = fixture_image(13, true);
    let json = manifest_json(&[tar_image(&a, "r", None, "o", true)]).unwrap();
    let path = dir.path().join("x.tar");
    let writer = TarballWriter::create(&path, &json, &layer_list(&[&a]), false).unwrap();
    let d = Digest::parse(&sha(&a.layers[0])).unwrap();
    let mut sink = writer.layer_sink(&d).unwrap();
    let mut wrong = a.layers[0].clone();
    wrong[0] ^= 1;
    sink.write(&wrong).unwrap();
    let msg = sink.finish().unwrap_err().to_string();
    assert!(msg.contains("arrived with digest"), "{msg}");
    let mut sink = writer.layer_sink(&d).unwrap();
    assert!(sink.write(&vec![0u8; a.layers[0].len() + 1]).is_err());
    let msg = writer.finish().unwrap_err().to_string();
    assert!(msg.contains("not written") && msg.contains("--resume"), "{msg}");
}
