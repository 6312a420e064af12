//! Library-level bundle fetching against a real registry: fetch_contents, layer shape checks,
//! limits, multi-layer pulls with whiteouts, and the locations image.
mod support;
use bytes::Bytes;
use pkgr::bundle::BundleError;
use pkgr::bundle::fetch::{fetch_contents, locations_reference, read_locations, write_locations};
use pkgr::bundle::image::{config_json, manifest_json};
use pkgr::bundle::layer::{Limits, Permissions, write_single_file_layer};
use pkgr::bundle::lock::{ImageLocation, ImageLocations};
use pkgr::bundle::pull::{PullOptions, PullSource, pull};
use pkgr::bundle::push::{PushKind, push_dir};
use pkgr::registry::{
    Client, ClientOptions, Digest, MEDIA_DOCKER_LAYER_GZIP, MEDIA_DOCKER_MANIFEST, Reference,
};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use support::registry::TestRegistry;

fn client() -> Client {
    Client::new(ClientOptions::default()).unwrap()
}

fn write(path: &Path, contents: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

const EMPTY_LOCK: &str = "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\n";

async fn push_bundle(c: &Client, target: &str, images_yml: &str, files: &[(&str, &[u8])]) -> Reference {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join(".imgpkg/images.yml"), images_yml.as_bytes());
    for (name, data) in files {
        write(&dir.path().join(name), data);
    }
    let reference = Reference::parse(target).unwrap();
    let digest = push_dir(
        c,
        &reference,
        PushKind::Bundle,
        &[dir.path().to_path_buf()],
        &[],
        &BTreeMap::new(),
        Permissions::Normalised,
    )
    .await
    .unwrap();
    reference.with_digest(digest)
}

/// Push an image whose layers each hold one file (name, contents), in order.
async fn push_layers(c: &Client, target: &str, layers: &[(&str, &[u8])]) -> Reference {
    let reference = Reference::parse(target).unwrap();
    let mut descriptors = Vec::new();
    for (name, data) in layers {
        let (bytes, info) = write_single_file_layer(name, data, 0o644).unwrap();
        c.push_blob_bytes(&reference, Bytes::from(bytes)).await.unwrap();
        descriptors.push(info);
    }
    // A config with one diff id per layer is not needed by readers here; imgpkg's shape is kept
    // for the first layer only.
    let config = Bytes::from(config_json(&descriptors[0].diff_id, &BTreeMap::new()));
    let config_digest = c.push_blob_bytes(&reference, config.clone()).await.unwrap();
    let single = String::from_utf8(manifest_json(
        (&config_digest, config.len() as u64),
        (&descriptors[0].digest, descriptors[0].size),
    ))
    .unwrap();
    let layers_json: Vec<String> = descriptors
        .iter()
        .map(|d| {
            format!(
                r#"{{"mediaType":"{MEDIA_DOCKER_LAYER_GZIP}","size":{},"digest":"{}"}}"#,
                d.size, d.digest
            )
        })
        .collect();
    let head = &single[..single.find(r#""layers":["#).unwrap()];
    let manifest = format!(r#"{head}"layers":[{}]}}"#, layers_json.join(","));
    let digest = c
        .put_manifest(&reference, MEDIA_DOCKER_MANIFEST, Bytes::from(manifest))
        .await
        .unwrap();
    reference.with_digest(digest)
}

#[tokio::test]
async fn fetch_contents_reads_bundles_and_images() {
    let reg = TestRegistry::start();
    let c = client();
    let bundle = push_bundle(
        &c,
        &format!("{}/repo/bundle:v1", reg.host),
        EMPTY_LOCK,
        &[("packages/a.yml", b"kind: Package\n")],
    )
    .await;
    let fetched = fetch_contents(&c, &bundle.with_tag("v1"), true, &Limits::default())
        .await
        .unwrap();
    assert!(fetched.is_bundle);
    assert_eq!(fetched.resolved, bundle);
    assert_eq!(fetched.files["packages/a.yml"], b"kind: Package\n");
    assert_eq!(fetched.images_lock.unwrap().images.len(), 0);

    // The same bundle read as an image: files, but no lock handling.
    let as_image = fetch_contents(&c, &bundle, false, &Limits::default())
        .await
        .unwrap();
    assert!(as_image.is_bundle && as_image.images_lock.is_none());

    // A plain image where a bundle is expected.
    let plain = push_layers(&c, &format!("{}/repo/plain:v1", reg.host), &[("x.yml", b"x")]).await;
    let err = fetch_contents(&c, &plain, true, &Limits::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("expected a bundle but found a plain image")
            && err.to_string().contains("hint: use -i / an `image` source"),
        "{err}"
    );
    // The controller's source reports it as "not a bundle", for the reconciler to word.
    let session = pkgr::controller::source::Source::session(
        &pkgr::controller::source::RegistrySource::new(ClientOptions::default()),
        &Default::default(),
    )
    .unwrap();
    let contents = session.fetch(&plain.to_string(), true).await.unwrap();
    assert!(!contents.is_bundle && contents.files.is_empty());
    let image = fetch_contents(&c, &plain, false, &Limits::default())
        .await
        .unwrap();
    assert!(!image.is_bundle);
    assert_eq!(image.files["x.yml"], b"x");

    // Limits apply to what is fetched.
    let tiny = Limits {
        max_bytes: 4,
        ..Limits::default()
    };
    let err = fetch_contents(&c, &bundle, true, &tiny).await.unwrap_err();
    assert!(err.chain().contains("4 uncompressed bytes"), "{}", err.chain());
}

#[tokio::test]
async fn layer_shape_is_checked() {
    let reg = TestRegistry::start();
    let c = client();
    let two = push_layers(
        &c,
        &format!("{}/repo/two:v1", reg.host),
        &[("a", b"a"), ("b", b"b")],
    )
    .await;
    let err = fetch_contents(&c, &two, false, &Limits::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Expected bundle to only have a single layer, got 2"),
        "{err}"
    );
    let missing = Reference::parse(&format!("{}/repo/none:v1", reg.host)).unwrap();
    let err = fetch_contents(&c, &missing, true, &Limits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, BundleError::Registry { .. }), "{err}");
    assert!(err.chain().contains("repo/none"), "{}", err.chain());
}

#[tokio::test]
async fn multi_layer_images_pull_in_order_with_whiteouts() {
    let reg = TestRegistry::start();
    let c = client();
    let image = push_layers(
        &c,
        &format!("{}/repo/layered:v1", reg.host),
        &[
            ("keep.txt", b"first"),
            ("gone.txt", b"soon removed"),
            (".wh.gone.txt", b""),
            ("keep.txt", b"second"),
        ],
    )
    .await;
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("pulled");
    let mut lines = Vec::new();
    let report = pull(
        &c,
        &PullSource::Image(image.clone()),
        &dest,
        &PullOptions::default(),
        &mut |l| lines.push(l),
    )
    .await
    .unwrap();
    assert_eq!(report.resolved, image);
    assert!(!report.is_bundle && !report.lock_rewritten);
    assert_eq!(fs::read(dest.join("keep.txt")).unwrap(), b"second");
    assert!(!dest.join("gone.txt").exists());
    assert!(!dest.join(".wh.gone.txt").exists());
    assert!(lines.iter().any(|l| l.contains("(4/4)")), "{lines:?}");
}

#[tokio::test]
async fn pulling_an_image_with_links_and_devices_skips_them_as_imgpkg_does() {
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write as _;
    let reg = TestRegistry::start();
    let c = client();
    let mut builder = tar::Builder::new(Vec::new());
    let mut file = tar::Header::new_ustar();
    file.set_size(5);
    file.set_mode(0o644);
    file.set_cksum();
    builder
        .append_data(&mut file, "usr/bin/tool", &b"tool\n"[..])
        .unwrap();
    let mut link = tar::Header::new_ustar();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    link.set_mode(0o777);
    builder.append_link(&mut link, "bin", "usr/bin").unwrap();
    let mut device = tar::Header::new_ustar();
    device.set_entry_type(tar::EntryType::Char);
    device.set_size(0);
    device.set_mode(0o666);
    device.set_cksum();
    builder
        .append_data(&mut device, "dev/null", std::io::empty())
        .unwrap();
    let tar = builder.into_inner().unwrap();
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&tar).unwrap();
    let layer = Bytes::from(gz.finish().unwrap());

    let reference = Reference::parse(&format!("{}/repo/distro:v1", reg.host)).unwrap();
    let layer_digest = c.push_blob_bytes(&reference, layer.clone()).await.unwrap();
    let config = Bytes::from(config_json(&Digest::of(&tar), &BTreeMap::new()));
    let config_digest = c.push_blob_bytes(&reference, config.clone()).await.unwrap();
    let manifest = manifest_json(
        (&config_digest, config.len() as u64),
        (&layer_digest, layer.len() as u64),
    );
    let image = reference.with_digest(
        c.put_manifest(&reference, MEDIA_DOCKER_MANIFEST, Bytes::from(manifest))
            .await
            .unwrap(),
    );

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
    assert_eq!(fs::read(dest.join("usr/bin/tool")).unwrap(), b"tool\n");
    assert!(
        fs::symlink_metadata(dest.join("bin")).is_err(),
        "no link is created"
    );
    assert!(
        fs::symlink_metadata(dest.join("dev/null")).is_err(),
        "no device is created"
    );
    assert!(
        lines.iter().any(|l| l
            == "  Skipped 2 link/device entries of this layer, as imgpkg does: bin -> usr/bin and 1 more"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn locations_image_is_a_plain_imgpkg_image() {
    let reg = TestRegistry::start();
    let c = client();
    let bundle = push_bundle(&c, &format!("{}/repo/loc:v1", reg.host), EMPTY_LOCK, &[]).await;
    let locations = ImageLocations {
        images: vec![ImageLocation {
            image: format!("index.docker.io/library/nginx@{}", Digest::of(b"nginx")),
            is_bundle: false,
        }],
    };
    write_locations(&c, &bundle, &locations).await.unwrap();
    // Written twice (as a second copy would): still fine.
    write_locations(&c, &bundle, &locations).await.unwrap();

    let location_ref = locations_reference(&bundle).unwrap();
    assert_eq!(
        location_ref.tag().unwrap(),
        format!("{}.image-locations.imgpkg", bundle.digest().unwrap().dashed())
    );
    let fetched = fetch_contents(&c, &location_ref, false, &Limits::default())
        .await
        .unwrap();
    assert!(!fetched.is_bundle);
    assert_eq!(fetched.files.keys().collect::<Vec<_>>(), ["image-locations.yml"]);
    assert_eq!(
        fetched.files["image-locations.yml"],
        locations.to_yaml().into_bytes()
    );
    // It also carries its own sha256-<hex>.imgpkg tag.
    let own = location_ref.with_tag(&format!("{}.imgpkg", fetched.resolved.digest().unwrap().dashed()));
    assert!(c.head_manifest(&own).await.unwrap().is_some());

    assert_eq!(read_locations(&c, &bundle).await.unwrap(), Some(locations));
    let other = bundle.with_digest(Digest::of(b"no such bundle"));
    assert_eq!(read_locations(&c, &other).await.unwrap(), None);
}

#[test]
fn output_directories_that_would_delete_the_working_tree_are_refused() {
    use pkgr::bundle::pull::check_output_dir;
    let cwd = std::env::current_dir().unwrap();
    for bad in [
        Path::new("."),
        Path::new(".."),
        Path::new("/"),
        Path::new("./."),
        &cwd,
        cwd.parent().unwrap(),
    ] {
        let err = check_output_dir(bad).unwrap_err();
        assert!(
            err.to_string().contains("Disallowed output directory"),
            "{bad:?}: {err}"
        );
    }
    let fresh = tempfile::tempdir().unwrap();
    check_output_dir(&fresh.path().join("out")).unwrap();
    check_output_dir(fresh.path()).unwrap();
}

#[tokio::test]
async fn denied_and_unauthorized_images_count_as_missing_but_server_errors_fail() {
    use pkgr::bundle::fetch::localize;
    use pkgr::bundle::lock::{ImagesLock, LockedImage};
    use support::hostile::{HostileServer, Reply, Request};
    let ok = Digest::of(b"present");
    let denied = Digest::of(b"denied");
    let unauthorized = Digest::of(b"unauthorized");
    let broken = Digest::of(b"broken");
    let (ok_s, denied_s, unauth_s) = (ok.to_string(), denied.to_string(), unauthorized.to_string());
    let server = HostileServer::start(move |req: &Request| {
        let path = req.path();
        if path.contains(".image-locations.imgpkg") {
            Reply::status(404)
        } else if path.ends_with(&ok_s) {
            Reply::ok(
                &[
                    ("Content-Type", MEDIA_DOCKER_MANIFEST),
                    ("Docker-Content-Digest", &ok_s),
                ],
                "",
            )
        } else if path.ends_with(&denied_s) {
            Reply::with(403, &[], r#"{"errors":[{"code":"DENIED","message":"no"}]}"#)
        } else if path.ends_with(&unauth_s) {
            Reply::with(401, &[], r#"{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}"#)
        } else {
            Reply::status(500)
        }
    })
    .await;
    let c = Client::new(ClientOptions {
        retries: 1,
        ..ClientOptions::default()
    })
    .unwrap();
    let bundle = Reference::parse(&format!("{}/app/bundle@{}", server.host, Digest::of(b"bundle"))).unwrap();
    let lock = |digests: &[&Digest]| ImagesLock {
        images: digests
            .iter()
            .map(|d| LockedImage {
                image: format!("index.docker.io/library/app@{d}"),
                annotations: BTreeMap::new(),
            })
            .collect(),
    };

    let all_there = localize(&c, &bundle, &lock(&[&ok])).await.unwrap();
    assert!(all_there.relocated && all_there.locations.is_none());
    assert_eq!(
        all_there.lock.images[0].image,
        format!("{}/app/bundle@{ok}", server.host)
    );

    for other in [&denied, &unauthorized] {
        let original = lock(&[&ok, other]);
        let result = localize(&c, &bundle, &original).await.unwrap();
        assert!(!result.relocated, "{other}");
        assert_eq!(result.lock, original);
    }

    let err = localize(&c, &bundle, &lock(&[&ok, &broken])).await.unwrap_err();
    assert!(
        err.chain().contains(broken.as_str()) && err.chain().contains("500"),
        "{}",
        err.chain()
    );
}

#[tokio::test]
async fn a_tampered_layer_fails_the_fetch_and_the_pull() {
    let reg = TestRegistry::start();
    let c = client();
    let bundle = push_bundle(
        &c,
        &format!("{}/repo/tampered:v1", reg.host),
        EMPTY_LOCK,
        &[("a.yml", b"aaaa")],
    )
    .await;
    let image = pkgr::bundle::fetch::resolve_image(&c, &bundle).await.unwrap();
    let layer = image.manifest.layers[0].digest.clone();
    let data = reg
        .storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&layer.hex()[..2])
        .join(layer.hex())
        .join("data");
    // Same length, different content: only the digest can tell.
    let mut bytes = fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&data, &bytes).unwrap();

    let err = fetch_contents(&c, &bundle, true, &Limits::default())
        .await
        .unwrap_err();
    assert!(err.chain().contains(layer.as_str()), "{}", err.chain());
    let out = tempfile::tempdir().unwrap();
    let err = pull(
        &c,
        &PullSource::Bundle(bundle),
        &out.path().join("o"),
        &PullOptions::default(),
        &mut |_| {},
    )
    .await
    .unwrap_err();
    assert!(err.chain().contains(layer.as_str()), "{}", err.chain());
}

#[tokio::test]
async fn image_indexes_are_refused_with_imgpkgs_message() {
    let reg = TestRegistry::start();
    let c = client();
    let child = push_layers(&c, &format!("{}/repo/multi:child", reg.host), &[("a", b"a")]).await;
    let child_manifest = c.get_manifest(&child).await.unwrap();
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","size":{},"digest":"{}","platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        pkgr::registry::MEDIA_OCI_INDEX,
        child_manifest.media_type,
        child_manifest.bytes.len(),
        child_manifest.digest
    );
    let index_ref = Reference::parse(&format!("{}/repo/multi:v1", reg.host)).unwrap();
    c.put_manifest(&index_ref, pkgr::registry::MEDIA_OCI_INDEX, Bytes::from(index))
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    for source in [
        PullSource::Image(index_ref.clone()),
        PullSource::Bundle(index_ref.clone()),
    ] {
        let err = pull(
            &c,
            &source,
            &out.path().join("o"),
            &PullOptions::default(),
            &mut |_| {},
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("Unable to pull non-images, such as image indexes"),
            "{err}"
        );
    }
    assert!(
        !out.path().join("o").exists(),
        "nothing is written for a refused pull"
    );
}
