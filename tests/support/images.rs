//! Images pushed in-test with the crate's registry client: a plain Docker image, an imgpkg
//! bundle, and a cosign signature (a simple-signing payload) at `sha256-<hex>.sig`.
use bytes::Bytes;
use pkgr::registry::{Client, Digest, Reference};
use std::collections::BTreeMap;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

fn repo_of(reference: &Reference) -> Reference {
    Reference::parse_repository(&reference.repository_name()).unwrap()
}

/// A one-layer Docker image whose layer is `content`, at `reference`; returns its digest.
pub async fn push_image(client: &Client, reference: &Reference, content: &[u8]) -> Digest {
    let repo = repo_of(reference);
    let layer = client
        .push_blob_bytes(&repo, Bytes::from(content.to_vec()))
        .await
        .unwrap();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer}"]}},"config":{{}}}}"#
    );
    let config_digest = client
        .push_blob_bytes(&repo, Bytes::from(config.clone()))
        .await
        .unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{config_digest}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{},"digest":"{layer}"}}]}}"#,
        config.len(),
        content.len()
    );
    client
        .put_manifest(reference, DOCKER_MANIFEST, Bytes::from(manifest))
        .await
        .unwrap()
}

/// A cosign-style signature of `subject` (a digest reference): an OCI image whose one layer is
/// the simple-signing payload naming the subject, tagged `sha256-<hex>.sig` in the subject's
/// repository. Returns the signature's digest.
pub async fn push_signature(client: &Client, subject: &Reference) -> Digest {
    let digest = subject.digest().expect("a digest reference").clone();
    let repo = repo_of(subject);
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#,
        subject.repository_name()
    );
    let layer = client
        .push_blob_bytes(&repo, Bytes::from(payload.clone()))
        .await
        .unwrap();
    let config = format!(
        r#"{{"architecture":"","os":"","rootfs":{{"type":"layers","diff_ids":["{layer}"]}},"config":{{}}}}"#
    );
    let config_digest = client
        .push_blob_bytes(&repo, Bytes::from(config.clone()))
        .await
        .unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":{},"digest":"{config_digest}"}},"layers":[{{"mediaType":"{SIMPLE_SIGNING}","size":{},"digest":"{layer}","annotations":{{"dev.cosignproject.cosign/signature":"c2lnbmVk"}}}}]}}"#,
        config.len(),
        payload.len()
    );
    let at = subject.with_tag(&format!("{}.sig", digest.dashed()));
    client
        .put_manifest(&at, OCI_MANIFEST, Bytes::from(manifest))
        .await
        .unwrap()
}

/// An imgpkg bundle at `reference` whose images.yml lists `images` (digest references).
pub async fn push_bundle(client: &Client, reference: &Reference, images: &[String]) -> Digest {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".imgpkg")).unwrap();
    let mut yaml = String::from("apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n");
    for image in images {
        yaml.push_str(&format!("- image: {image}\n"));
    }
    std::fs::write(dir.path().join(".imgpkg/images.yml"), yaml).unwrap();
    std::fs::write(dir.path().join("config.yml"), "kind: ConfigMap\n").unwrap();
    let mut layer = Vec::new();
    let info = pkgr::bundle::layer::write_layer(&[dir.path().to_path_buf()], &[], &mut layer).unwrap();
    let repo = repo_of(reference);
    client
        .push_blob_bytes(&repo, Bytes::from(layer.clone()))
        .await
        .unwrap();
    let labels = BTreeMap::from([(pkgr::bundle::BUNDLE_LABEL.to_string(), "true".to_string())]);
    let config = pkgr::bundle::image::config_json(&info.diff_id, &labels);
    let config_digest = client
        .push_blob_bytes(&repo, Bytes::from(config.clone()))
        .await
        .unwrap();
    let manifest = pkgr::bundle::image::manifest_json(
        (&config_digest, config.len() as u64),
        (&info.digest, layer.len() as u64),
    );
    client
        .put_manifest(reference, DOCKER_MANIFEST, Bytes::from(manifest))
        .await
        .unwrap()
}
