//! `pkgr pull` unpacks every tar layer type: gzip (Docker `…tar.gzip`, OCI `…tar+gzip`) and
//! uncompressed (OCI `…layer.v1.tar`, `…layer.nondistributable.v1.tar`), whichever the bytes
//! turn out to be; other types fail with a message that names the layer and what can be pulled.
mod support;
use bytes::Bytes;
use pkgr::bundle::gogzip::GoGzipWriter;
use pkgr::bundle::pull::{PullOptions, PullSource, pull};
use pkgr::registry::{Client, ClientOptions, Digest, MEDIA_OCI_MANIFEST, Reference};
use std::fs;
use std::io::Write;
use support::registry::TestRegistry;

const OCI_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_NONDIST_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
const OCI_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut w = GoGzipWriter::new(Vec::new());
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

/// Push an OCI image whose layers are `(media type, tar, blob)`; returns its digest reference.
async fn push_image(c: &Client, target: &str, layers: &[(&str, Vec<u8>, Vec<u8>)]) -> Reference {
    let reference = Reference::parse(target).unwrap();
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for (media_type, tar, blob) in layers {
        let digest = c
            .push_blob_bytes(&reference, Bytes::from(blob.clone()))
            .await
            .unwrap();
        descriptors.push(serde_json::json!({
            "mediaType": media_type, "size": blob.len(), "digest": digest.to_string(),
        }));
        diff_ids.push(Digest::of(tar).to_string());
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_digest = c
        .push_blob_bytes(&reference, Bytes::from(config.clone()))
        .await
        .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": config.len(), "digest": config_digest.to_string(),
        },
        "layers": descriptors,
    }))
    .unwrap();
    let digest = c
        .put_manifest(&reference, MEDIA_OCI_MANIFEST, Bytes::from(manifest))
        .await
        .unwrap();
    reference.with_digest(digest)
}

#[tokio::test]
async fn uncompressed_and_gzip_layers_are_applied_in_order() {
    let reg = TestRegistry::start();
    let c = Client::new(ClientOptions::default()).unwrap();
    let plain = tar_of(&[("etc/a.txt", b"from the plain layer\n"), ("etc/b.txt", b"old\n")]);
    let nondist = tar_of(&[("opt/vendor.bin", b"\x00\x01non-distributable\n")]);
    let gz = tar_of(&[("etc/b.txt", b"new\n"), ("etc/.wh.a.txt", b"")]);
    let image = push_image(
        &c,
        &format!("{}/repo/layers:v1", reg.host),
        &[
            (OCI_TAR, plain.clone(), plain),
            (OCI_NONDIST_TAR, nondist.clone(), nondist),
            (OCI_TAR_GZIP, gz.clone(), gzip(&gz)),
        ],
    )
    .await;

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("pulled");
    let mut lines = Vec::new();
    pull(
        &c,
        &PullSource::Image(image),
        &dest,
        &PullOptions::default(),
        &mut |l| lines.push(l),
    )
    .await
    .unwrap();
    assert_eq!(
        fs::read(dest.join("opt/vendor.bin")).unwrap(),
        b"\x00\x01non-distributable\n"
    );
    assert_eq!(fs::read(dest.join("etc/b.txt")).unwrap(), b"new\n");
    assert!(
        !dest.join("etc/a.txt").exists(),
        "the gzip layer's whiteout removes a.txt"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains("Extracting layer")).count(),
        3,
        "{lines:?}"
    );
}

/// As in imgpkg (go-containerregistry peeks at the first bytes), a layer's bytes say whether it
/// is gzip, not its media type: go-containerregistry's `random.Layer` with the
/// `…nondistributable.v1.tar` type (imgpkg's e2e images) is gzip, and a plain tar labelled
/// `…tar+gzip` unpacks too.
#[tokio::test]
async fn the_bytes_not_the_media_type_say_whether_a_layer_is_gzip() {
    let reg = TestRegistry::start();
    let c = Client::new(ClientOptions::default()).unwrap();
    let gzipped = tar_of(&[("random_file.txt", b"gzip under a plain tar type\n")]);
    let plain = tar_of(&[("a.txt", b"a plain tar under a gzip type\n")]);
    let image = push_image(
        &c,
        &format!("{}/repo/mislabelled:v1", reg.host),
        &[
            (OCI_NONDIST_TAR, gzipped.clone(), gzip(&gzipped)),
            (OCI_TAR_GZIP, plain.clone(), plain),
        ],
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("pulled");
    pull(
        &c,
        &PullSource::Image(image),
        &dest,
        &PullOptions::default(),
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!(
        fs::read(dest.join("random_file.txt")).unwrap(),
        b"gzip under a plain tar type\n"
    );
    assert_eq!(
        fs::read(dest.join("a.txt")).unwrap(),
        b"a plain tar under a gzip type\n"
    );
}

#[tokio::test]
async fn a_zstd_layer_is_refused_with_what_can_be_pulled() {
    let reg = TestRegistry::start();
    let c = Client::new(ClientOptions::default()).unwrap();
    let plain = tar_of(&[("a.txt", b"a\n")]);
    let image = push_image(
        &c,
        &format!("{}/repo/zstd:v1", reg.host),
        &[(OCI_TAR_ZSTD, plain.clone(), plain)],
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let err = pull(
        &c,
        &PullSource::Image(image.clone()),
        &out.path().join("pulled"),
        &PullOptions::default(),
        &mut |_| {},
    )
    .await
    .unwrap_err();
    let message = format!("{err}");
    assert!(message.contains(OCI_TAR_ZSTD), "{message}");
    assert!(message.contains(&image.to_string()), "{message}");
    assert!(message.contains("uncompressed (…tar)"), "{message}");
}
