//! Installed as `imgpkg`, non-distributable (foreign) layers as imgpkg's own e2e tests handle
//! them, against real registries (docker-registry on loopback, foreign URLs allowed):
//! - a tarball made without them, imported with `--include-non-distributable-layers` into the
//!   registry it was exported from: each missing layer is taken from the image's origin there,
//!   and the image then pulls (its foreign layer is a gzip under a plain-tar media type, as
//!   go-containerregistry's `random.Layer` makes it);
//! - the warning naming the layers left out: `copy | ` before every line, and the image named
//!   where it now is after a copy to a repository, where it was read after one to a tarball.
mod support;

use bytes::Bytes;
use pkgr::bundle::gogzip::GoGzipWriter;
use pkgr::registry::{Client, ClientOptions, Digest, MEDIA_OCI_INDEX, Reference};
use std::io::Write;
use support::imgpkg::Installed;
use support::registry::TestRegistry;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_NONDIST_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
const SKIPPED: &str = "Skipped the followings layer(s) due to it being non-distributable. If you would like to include non-distributable layers, use the --include-non-distributable-layers flag";
const NOT_IN_TAR_HINT: &str = "not found in tar (hint: This may be because when copying to a tarball, the --include-non-distributable-layers flag should have been provided.)";

fn client() -> Client {
    Client::new(ClientOptions::default()).unwrap()
}

/// A gzip'd tar of one file, as go-containerregistry's `random.Layer` writes it.
fn gzip_tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, name, content).unwrap();
    let mut w = GoGzipWriter::new(Vec::new());
    w.write_all(&builder.into_inner().unwrap()).unwrap();
    w.finish().unwrap()
}

/// An OCI image at `reference` with an ordinary layer and a non-distributable one (`foreign`,
/// its URL `url`); `push_foreign` also pushes the foreign blob into the repository, as imgpkg's
/// e2e helper does. Returns the image's digest, the manifest's size and the foreign digest.
async fn push_image(
    client: &Client,
    reference: &Reference,
    foreign: &[u8],
    url: Option<String>,
    push_foreign: bool,
) -> (Digest, usize, Digest) {
    let repo = Reference::parse_repository(&reference.repository_name()).unwrap();
    let own = gzip_tar("own.txt", reference.to_string().as_bytes());
    let own_digest = client
        .push_blob_bytes(&repo, Bytes::from(own.clone()))
        .await
        .unwrap();
    let foreign_digest = Digest::of(foreign);
    if push_foreign {
        client
            .push_blob_bytes(&repo, Bytes::from(foreign.to_vec()))
            .await
            .unwrap();
    }
    let url = url.unwrap_or_else(|| {
        format!(
            "http://{}/v2/{}/blobs/{foreign_digest}",
            reference.registry(),
            reference.repository()
        )
    });
    let config = r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = client.push_blob_bytes(&repo, Bytes::from(config)).await.unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":{},"digest":"{config_digest}"}},"layers":[{{"mediaType":"{OCI_NONDIST_TAR}","size":{},"digest":"{foreign_digest}","urls":["{url}"]}},{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":{},"digest":"{own_digest}"}}]}}"#,
        config.len(),
        foreign.len(),
        own.len()
    );
    let digest = client
        .put_manifest(reference, OCI_MANIFEST, Bytes::from(manifest.clone()))
        .await
        .unwrap();
    (digest, manifest.len(), foreign_digest)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_layer_the_tarball_lacks_comes_from_its_origin_on_the_destination_registry() {
    let reg = TestRegistry::start();
    let installed = Installed::new();
    let image = Reference::parse(&reg.repo("local-tests/test-relocation-repo:latest")).unwrap();
    let foreign = gzip_tar("random_file_1.txt", b"restricted bytes\n");
    let (digest, _, foreign_digest) = push_image(&client(), &image, &foreign, None, true).await;
    let tar = installed.path("image.tar");

    let run = installed.ok(&["copy", "--tty", "-i", &image.to_string(), "--to-tar", &tar]);
    assert!(run.output().contains(SKIPPED), "{}", run.output());

    let to = reg.repo("local-tests/test-relocation-repoinclude-non-distributable-layers");
    installed.ok(&[
        "copy",
        "--tar",
        &tar,
        "--to-repo",
        &to,
        "--include-non-distributable-layers",
    ]);
    let to = Reference::parse_repository(&to).unwrap();
    let got = client()
        .get_blob_bytes(&to, &foreign_digest, 1 << 20)
        .await
        .unwrap();
    assert_eq!(&got[..], &foreign[..]);

    // The image pulls: its foreign layer is a gzip, whatever its media type says.
    let out = installed.path("pulled-image");
    installed.ok(&[
        "pull",
        "-i",
        &to.with_digest(digest).to_string(),
        "--output",
        &out,
    ]);
    assert_eq!(
        std::fs::read(format!("{out}/random_file_1.txt")).unwrap(),
        b"restricted bytes\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_layer_neither_the_tarball_nor_its_origin_holds_fails_in_imgpkgs_words() {
    let reg = TestRegistry::start();
    let installed = Installed::new();
    let image = Reference::parse(&reg.repo("src/gone:latest")).unwrap();
    let foreign = gzip_tar("f.txt", b"only at a URL that is down\n");
    // Nothing listens at the URL (a port free a moment ago), and the registry lacks the blob.
    let closed = format!("http://127.0.0.1:{}/layer", support::registry::free_port());
    let (_, _, foreign_digest) = push_image(&client(), &image, &foreign, Some(closed.clone()), false).await;
    let tar = installed.path("image.tar");
    installed.ok(&["copy", "-i", &image.to_string(), "--to-tar", &tar]);

    let run = installed.fails(&[
        "copy",
        "--tar",
        &tar,
        "--to-repo",
        &reg.repo("dst/gone"),
        "--include-non-distributable-layers",
    ]);
    let line = run
        .output()
        .lines()
        .find(|l| l.contains("Error: "))
        .unwrap_or_else(|| panic!("no error line: {}", run.output()))
        .to_string();
    let entry = format!("{}.tar.gz", foreign_digest.dashed());
    assert!(
        line.starts_with(&format!("imgpkg: Error: file {entry} {NOT_IN_TAR_HINT}")),
        "{line}"
    );
    // pkgr's detail after it: where it looked, and what each place answered.
    let output = run.output();
    for needle in [image.repository_name(), closed] {
        assert!(output.contains(&needle), "missing {needle:?} in {output}");
    }
}

/// imgpkg e2e `TestCopyTarSrc`: a bundle whose images.yml lists an index holding a nested index
/// (holding an image with a foreign layer) and a plain image.
#[tokio::test(flavor = "multi_thread")]
async fn the_warning_names_each_image_where_it_is_with_imgpkgs_prefix_on_every_line() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let installed = Installed::new();
    let c = client();
    let foreign = gzip_tar("f.txt", b"foreign\n");
    // An index's children must be in its repository: everything is in one.
    let with_foreign = Reference::parse(&src.repo("repo/imageindex:image_belonging_to_image_index")).unwrap();
    let (image_digest, image_size, foreign_digest) =
        push_image(&c, &with_foreign, &foreign, None, true).await;
    let nested = Reference::parse(&src.repo("repo/imageindex:nestedimageindex")).unwrap();
    let nested_digest = push_index(&c, &nested, &[(OCI_MANIFEST, &image_digest, image_size)]).await;
    let random = Reference::parse(&src.repo("repo/imageindex:randomimage")).unwrap();
    let random_digest = support::images::push_image(&c, &random, b"random layer").await;
    let random_size = manifest_size(&c, &random.with_digest(random_digest.clone())).await;
    let nested_size = manifest_size(&c, &nested.with_digest(nested_digest.clone())).await;
    let index = Reference::parse(&src.repo("repo/imageindex:imageindex")).unwrap();
    let index_digest = push_index(
        &c,
        &index,
        &[
            (MEDIA_OCI_INDEX, &nested_digest, nested_size),
            (support::images::DOCKER_MANIFEST, &random_digest, random_size),
        ],
    )
    .await;
    let bundle = Reference::parse(&src.repo("repo/bundle:1")).unwrap();
    let bundle_digest = support::images::push_bundle(
        &c,
        &bundle,
        &[index.with_digest(index_digest.clone()).to_string()],
    )
    .await;
    let bundle = bundle.with_digest(bundle_digest).to_string();
    let block = |image: &str| {
        format!(
            "copy | Warning: {SKIPPED}\ncopy |  - Image: {image}\ncopy |    Layers:\ncopy |      - {foreign_digest}\n"
        )
    };

    // To a tarball: the image is named where it was read (its index's repository).
    let tar = installed.path("bundle-tar.tgz");
    let run = installed.ok(&["copy", "--tty", "-b", &bundle, "--to-tar", &tar]);
    let read_at = index.with_digest(image_digest.clone()).to_string();
    assert!(run.stdout.contains(&block(&read_at)), "{}", run.output());

    // From the tarball to a repository, and from the registry to one: named where it now is.
    for (args, to) in [
        (vec!["--tar", tar.as_str()], dst.repo("copied-bundle")),
        (vec!["-b", bundle.as_str()], dst.repo("direct-bundle")),
    ] {
        let mut all = vec!["copy", "--tty"];
        all.extend(args);
        all.extend(["--to-repo", to.as_str()]);
        let run = installed.ok(&all);
        let now_at = Reference::parse_repository(&to)
            .unwrap()
            .with_digest(image_digest.clone())
            .to_string();
        assert!(run.stdout.contains(&block(&now_at)), "{}", run.output());
    }

    // With the flag but nothing foreign: imgpkg's other warning, prefixed too.
    let run = installed.ok(&[
        "copy",
        "--tty",
        "-i",
        &random.to_string(),
        "--to-repo",
        &dst.repo("plain"),
        "--include-non-distributable-layers",
    ]);
    assert!(
        run.stdout.contains("copy | Warning: '--include-non-distributable-layers' flag provided, but no images contained a non-distributable layer.\n"),
        "{}",
        run.output()
    );
}

async fn push_index(client: &Client, reference: &Reference, children: &[(&str, &Digest, usize)]) -> Digest {
    let manifests: Vec<String> = children
        .iter()
        .map(|(media_type, digest, size)| {
            format!(r#"{{"mediaType":"{media_type}","size":{size},"digest":"{digest}","platform":{{"architecture":"amd64","os":"linux"}}}}"#)
        })
        .collect();
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MEDIA_OCI_INDEX}","manifests":[{}]}}"#,
        manifests.join(",")
    );
    client
        .put_manifest(reference, MEDIA_OCI_INDEX, Bytes::from(index))
        .await
        .unwrap()
}

async fn manifest_size(client: &Client, reference: &Reference) -> usize {
    client.get_manifest(reference).await.unwrap().bytes.len()
}
