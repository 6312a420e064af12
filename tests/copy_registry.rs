//! `relocate::copy` against real docker-registry instances: a bundle of bundles with a
//! multi-platform index, registry → registry (plain → TLS+auth), registry → tar → registry,
//! warm copies that write nothing, same-registry mounts, and faults (a cut upload, a lying
//! source, a truncated tar).
mod copy_proxy;
mod support;

use bytes::Bytes;
use copy_proxy::Proxy;
use pkgr::bundle::lock::{ImagesLock, LockedImage};
use pkgr::registry::{Client, ClientOptions, Credentials, Digest, Keychain, Reference};
use pkgr::relocate::{
    self, Clients, CopyOptions, CopySummary, Destination, LockOutput, Milestone, Progress, Source,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use support::registry::TestRegistry;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn plain_client() -> Client {
    Client::new(ClientOptions::default()).unwrap()
}

fn client_for(reg: &TestRegistry) -> Client {
    let mut options = ClientOptions::default();
    if let Some((user, pass)) = &reg.credentials {
        options.keychain = Keychain::anonymous().with_host(
            &reg.host,
            Credentials::Basic {
                username: user.clone(),
                password: pass.clone(),
            },
        );
    }
    if let Some(ca) = &reg.ca_pem {
        options.ca_certs_pem.push(std::fs::read(ca).unwrap());
    }
    Client::new(options).unwrap()
}

/// Deterministic incompressible bytes.
fn noise(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn sha(bytes: &[u8]) -> Digest {
    Digest::of(bytes)
}

/// Push a Docker schema 2 image with `layers` (raw blobs) under `reference`; returns its digest
/// and manifest size.
async fn push_image(
    client: &Client,
    reference: &Reference,
    layers: &[Vec<u8>],
    arch: &str,
) -> (Digest, usize) {
    let repo = Reference::parse_repository(&reference.repository_name()).unwrap();
    let mut diff_ids = Vec::new();
    let mut layer_json = Vec::new();
    for layer in layers {
        client
            .push_blob_bytes(&repo, Bytes::from(layer.clone()))
            .await
            .unwrap();
        diff_ids.push(format!("\"{}\"", sha(layer)));
        layer_json.push(format!(
            r#"{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{},"digest":"{}"}}"#,
            layer.len(),
            sha(layer)
        ));
    }
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}},"config":{{}}}}"#,
        diff_ids.join(",")
    );
    let config_digest = client
        .push_blob_bytes(&repo, Bytes::from(config.clone()))
        .await
        .unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{config_digest}"}},"layers":[{}]}}"#,
        config.len(),
        layer_json.join(",")
    );
    let digest = client
        .put_manifest(reference, DOCKER_MANIFEST, Bytes::from(manifest.clone()))
        .await
        .unwrap();
    (digest, manifest.len())
}

/// Push a two-platform OCI index (the platforms share a layer) at `reference`.
async fn push_index(client: &Client, reference: &Reference, seed: u32) -> Digest {
    let shared = noise(seed, 40_000);
    let mut entries = Vec::new();
    for (n, arch) in ["amd64", "arm64"].iter().enumerate() {
        let own = noise(seed + 1 + n as u32, 30_000);
        // Children need to be in the repository before the index; a scratch tag puts them there.
        let scratch = reference.with_tag(&format!("scratch-{arch}"));
        let (digest, size) = push_image(client, &scratch, &[shared.clone(), own], arch).await;
        entries.push(format!(
            r#"{{"mediaType":"{DOCKER_MANIFEST}","digest":"{digest}","size":{size},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#
        ));
    }
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        entries.join(",")
    );
    client
        .put_manifest(reference, OCI_INDEX, Bytes::from(index))
        .await
        .unwrap()
}

/// Push an imgpkg bundle whose images.yml lists `images` (digest references).
async fn push_bundle(client: &Client, reference: &Reference, images: &[String]) -> Digest {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".imgpkg")).unwrap();
    let mut yaml = String::from("apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n");
    for image in images {
        yaml.push_str(&format!(
            "- image: {image}\n  annotations:\n    kbld.carvel.dev/id: {}\n",
            image.split('@').next().unwrap()
        ));
    }
    std::fs::write(dir.path().join(".imgpkg/images.yml"), yaml).unwrap();
    std::fs::create_dir_all(dir.path().join("packages")).unwrap();
    std::fs::write(dir.path().join("packages/p.yml"), "kind: Package\n").unwrap();
    let mut layer = Vec::new();
    let info =
        pkgr::bundle::layer::write_layer(&[dir.path().to_path_buf()], &[".git".to_string()], &mut layer)
            .unwrap();
    let repo = Reference::parse_repository(&reference.repository_name()).unwrap();
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

/// The graph every test copies: root bundle → package bundle → (index, plain image).
struct Graph {
    root: Reference,
    root_digest: Digest,
    pkg_digest: Digest,
    index_digest: Digest,
    app_digest: Digest,
    lock: ImagesLock,
}

async fn build_graph(client: &Client, reg: &TestRegistry) -> Graph {
    let index_ref = Reference::parse(&format!("{}/src/multiarch:1", reg.host)).unwrap();
    let index_digest = push_index(client, &index_ref, 7).await;
    let app_ref = Reference::parse(&format!("{}/src/app:1", reg.host)).unwrap();
    let (app_digest, _) =
        push_image(client, &app_ref, &[noise(20, 120_000), noise(21, 1_000)], "amd64").await;
    let images = vec![
        index_ref.with_digest(index_digest.clone()).to_string(),
        app_ref.with_digest(app_digest.clone()).to_string(),
    ];
    let pkg_ref = Reference::parse(&format!("{}/src/pkg:1", reg.host)).unwrap();
    let pkg_digest = push_bundle(client, &pkg_ref, &images).await;
    let root = Reference::parse(&format!("{}/src/repo:v1.0.0", reg.host)).unwrap();
    let root_images = vec![pkg_ref.with_digest(pkg_digest.clone()).to_string()];
    let root_digest = push_bundle(client, &root, &root_images).await;
    Graph {
        root,
        root_digest,
        pkg_digest,
        index_digest,
        app_digest,
        lock: ImagesLock {
            images: images
                .iter()
                .map(|i| LockedImage {
                    image: i.clone(),
                    annotations: BTreeMap::new(),
                })
                .collect(),
        },
    }
}

async fn copy(
    clients: &Clients,
    source: Source,
    destination: Destination,
) -> Result<CopySummary, relocate::RelocateError> {
    relocate::copy(
        clients,
        &source,
        &destination,
        &CopyOptions::default(),
        Arc::new(Progress::quiet()),
    )
    .await
}

async fn digest_at(client: &Client, reference: &Reference) -> Option<Digest> {
    client.head_manifest(reference).await.unwrap().map(|h| h.digest)
}

/// Everything imgpkg's copy leaves in the destination repository.
async fn check_destination(client: &Client, dst: &Reference, g: &Graph) {
    let tags = client.list_tags(dst).await.unwrap();
    for d in [&g.root_digest, &g.pkg_digest, &g.index_digest, &g.app_digest] {
        let tag = format!("{}.imgpkg", d.dashed());
        assert!(tags.contains(&tag), "tag {tag} missing in {tags:?}");
        assert_eq!(digest_at(client, &dst.with_tag(&tag)).await.as_ref(), Some(d));
    }
    for bundle in [&g.root_digest, &g.pkg_digest] {
        let tag = format!("{}.image-locations.imgpkg", bundle.dashed());
        assert!(tags.contains(&tag), "locations tag {tag} missing in {tags:?}");
    }
    assert_eq!(
        digest_at(client, &dst.with_tag("v1.0.0")).await.as_ref(),
        Some(&g.root_digest)
    );
    // Index children by digest, with their bytes unchanged.
    let index = client
        .get_manifest(&dst.with_digest(g.index_digest.clone()))
        .await
        .unwrap();
    let pkgr::registry::ManifestBody::Index(index) = index.parse().unwrap() else {
        panic!("not an index")
    };
    assert_eq!(index.manifests.len(), 2);
    for child in &index.manifests {
        let m = client
            .get_manifest(&dst.with_digest(child.digest.clone()))
            .await
            .unwrap();
        assert_eq!(m.digest, child.digest);
    }
    // The controller's rewrite finds every image of the package bundle at the destination.
    let localized =
        pkgr::bundle::fetch::localize_images_lock(client, &dst.with_digest(g.pkg_digest.clone()), &g.lock)
            .await
            .unwrap();
    for image in &localized.images {
        assert!(
            image
                .image
                .starts_with(&format!("{}@sha256:", dst.repository_name())),
            "{} not relocated",
            image.image
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundle_of_bundles_plain_to_tls_auth_registry() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start_tls_auth("alice", "s3cret");
    let source = plain_client();
    let g = build_graph(&source, &src).await;
    let clients = Clients {
        source,
        destination: client_for(&dst),
    };
    let to = Reference::parse_repository(&format!("{}/apps/relocated", dst.host)).unwrap();
    let summary = copy(
        &clients,
        Source::Bundle(g.root.clone()),
        Destination::Repository(to.clone()),
    )
    .await
    .unwrap();
    assert_eq!(summary.bundles, 2);
    assert_eq!(
        summary.images, 6,
        "2 bundles, 1 index, 2 platform images, 1 image"
    );
    assert!(summary.blobs_transferred > 0);
    check_destination(&clients.destination, &to, &g).await;
    match summary.lock {
        Some(LockOutput::Bundle(lock)) => {
            assert_eq!(lock.image, to.with_digest(g.root_digest.clone()).to_string());
            assert_eq!(lock.tag.as_deref(), Some("v1.0.0"));
        }
        other => panic!("expected a BundleLock, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_copy_writes_nothing() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let proxy = Proxy::start(&dst.host).await;
    let source = plain_client();
    let g = build_graph(&source, &src).await;
    let clients = Clients {
        source,
        destination: plain_client(),
    };
    let to = Reference::parse_repository(&format!("{}/apps/warm", proxy.host)).unwrap();
    copy(
        &clients,
        Source::Bundle(g.root.clone()),
        Destination::Repository(to.clone()),
    )
    .await
    .unwrap();
    assert!(!proxy.writes().is_empty());
    proxy.clear();
    let summary = copy(
        &clients,
        Source::Bundle(g.root.clone()),
        Destination::Repository(to.clone()),
    )
    .await
    .unwrap();
    assert_eq!(proxy.writes(), vec![], "a warm copy must not write");
    assert_eq!(summary.blobs_transferred, 0);
    assert_eq!(summary.manifests_written, 0);
    let requests = proxy.requests().len();
    // A HEAD per top-level tag, the two locations images, the root tag: nothing per blob.
    assert!(
        requests <= 20,
        "{requests} destination requests: {:?}",
        proxy.requests()
    );
    eprintln!("warm copy: {requests} destination requests, 0 writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_to_tar_to_registry_without_the_source() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let source = plain_client();
    let g = build_graph(&source, &src).await;
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("bundle.tar");
    let clients = Clients {
        source,
        destination: plain_client(),
    };
    let exported = copy(
        &clients,
        Source::Bundle(g.root.clone()),
        Destination::Tarball {
            path: tar.clone(),
            resume: false,
        },
    )
    .await
    .unwrap();
    assert!(exported.blobs_transferred > 0);
    let reader = pkgr::bundle::tarball::TarballReader::open(&tar).unwrap();
    assert_eq!(reader.root().unwrap().manifest.digest, g.root_digest);
    assert_eq!(reader.root().unwrap().tag.as_deref(), Some("v1.0.0"));

    // A resumed export of a complete tar fetches nothing.
    let again = copy(
        &clients,
        Source::Bundle(g.root.clone()),
        Destination::Tarball {
            path: tar.clone(),
            resume: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(again.blobs_transferred, 0);
    assert_eq!(again.blobs_resumed, exported.blobs_transferred);

    // An export cut short leaves a layer unwritten (zeros): --resume fetches only that one.
    let app_layer = noise(20, 120_000);
    let mut bytes = std::fs::read(&tar).unwrap();
    let at = bytes.windows(64).position(|w| w == &app_layer[..64]).unwrap();
    bytes[at..at + app_layer.len()].fill(0);
    std::fs::write(&tar, &bytes).unwrap();
    let resumed = copy(
        &clients,
        Source::Bundle(g.root.clone()),
        Destination::Tarball {
            path: tar.clone(),
            resume: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(resumed.blobs_transferred, 1);
    assert_eq!(resumed.blobs_resumed, exported.blobs_transferred - 1);
    assert_eq!(
        std::fs::read(&tar).unwrap()[at..at + app_layer.len()],
        app_layer[..]
    );

    drop(src); // Importing must not need the source registry.
    let to = Reference::parse_repository(&format!("{}/airgap/bundle", dst.host)).unwrap();
    let imported = copy(
        &clients,
        Source::Tarball(tar.clone()),
        Destination::Repository(to.clone()),
    )
    .await
    .unwrap();
    assert!(imported.blobs_transferred > 0);
    check_destination(&clients.destination, &to, &g).await;

    // A truncated tarball is refused with the entry named.
    let len = std::fs::metadata(&tar).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&tar)
        .unwrap()
        .set_len(len - 3000)
        .unwrap();
    let err = copy(
        &clients,
        Source::Tarball(tar.clone()),
        Destination::Repository(to),
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("truncated") && msg.contains(".tar.gz"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_upload_is_retried_and_a_rerun_sends_nothing_again() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let proxy = Proxy::start(&dst.host).await;
    let source = plain_client();
    let image = Reference::parse(&format!("{}/src/big:1", src.host)).unwrap();
    let (digest, _) = push_image(
        &source,
        &image,
        &[noise(90, 3_000_000), noise(91, 2_000_000)],
        "amd64",
    )
    .await;
    let clients = Clients {
        source,
        destination: plain_client(),
    };
    let to = Reference::parse_repository(&format!("{}/dst/big", proxy.host)).unwrap();
    proxy.cut_next_upload_after(1_000_000);
    let summary = copy(
        &clients,
        Source::Image(image.clone()),
        Destination::Repository(to.clone()),
    )
    .await
    .unwrap();
    assert_eq!(proxy.cuts(), 1, "the proxy cut one upload");
    assert_eq!(summary.blobs_transferred, 3);
    assert_eq!(
        digest_at(
            &clients.destination,
            &to.with_tag(&format!("{}.imgpkg", digest.dashed()))
        )
        .await,
        Some(digest.clone())
    );
    assert_eq!(
        digest_at(&clients.destination, &to.with_tag("1")).await,
        Some(digest)
    );
    proxy.clear();
    let again = copy(&clients, Source::Image(image), Destination::Repository(to))
        .await
        .unwrap();
    assert_eq!(again.blobs_transferred, 0);
    assert_eq!(proxy.writes(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_source_fails_naming_image_and_blob() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let source = plain_client();
    let image = Reference::parse(&format!("{}/src/liar:1", src.host)).unwrap();
    let layer = noise(5, 50_000);
    let (digest, _) = push_image(&source, &image, std::slice::from_ref(&layer), "amd64").await;
    // Flip a byte of the stored blob: the registry keeps serving it under the old digest.
    let layer_digest = sha(&layer);
    let hex = layer_digest.hex();
    let data = src.storage.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    let clients = Clients {
        source,
        destination: plain_client(),
    };
    let to = Reference::parse_repository(&format!("{}/dst/liar", dst.host)).unwrap();
    let err = copy(
        &clients,
        Source::Image(image.clone()),
        Destination::Repository(to.clone()),
    )
    .await
    .unwrap_err();
    let msg = pkgr::cli::render_error(&err);
    assert!(msg.contains(layer_digest.as_str()), "{msg}");
    assert!(msg.contains(&format!("src/liar@{digest}")), "{msg}");
    assert!(
        msg.contains("running the same command again skips what already arrived"),
        "{msg}"
    );
    assert!(!clients.destination.blob_exists(&to, &layer_digest).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_registry_copy_mounts_and_flags_are_checked() {
    let reg = TestRegistry::start();
    let client = plain_client();
    let g = build_graph(&client, &reg).await;
    let clients = Clients {
        source: client.clone(),
        destination: client.clone(),
    };
    let to = Reference::parse_repository(&format!("{}/mirror/all", reg.host)).unwrap();
    let summary = copy(
        &clients,
        Source::Bundle(g.root.clone()),
        Destination::Repository(to.clone()),
    )
    .await
    .unwrap();
    assert!(summary.blobs_mounted > 0, "{summary:?}");
    assert_eq!(summary.blobs_transferred, 0, "{summary:?}");
    check_destination(&client, &to, &g).await;

    // -i on a bundle and -b on an image are refused, as imgpkg does.
    let err = copy(
        &clients,
        Source::Image(g.root.clone()),
        Destination::Repository(to.clone()),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("Use -b"), "{err}");
    let app = Reference::parse(&format!("{}/src/app:1", reg.host)).unwrap();
    let err = copy(&clients, Source::Bundle(app), Destination::Repository(to.clone()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Did you use -i"), "{err}");
    // An ImagesLock may not name a bundle.
    let lock = ImagesLock {
        images: vec![LockedImage {
            image: g.root.with_digest(g.root_digest.clone()).to_string(),
            annotations: BTreeMap::new(),
        }],
    };
    let err = copy(&clients, Source::ImagesLock(lock), Destination::Repository(to))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Images Lock"), "{err}");

    // A BundleLock names the root by digest; its tag is the one kept at the destination.
    let bundle_lock = pkgr::bundle::lock::BundleLock {
        image: g.root.with_digest(g.root_digest.clone()).to_string(),
        tag: Some("from-lock".into()),
    };
    let to = Reference::parse_repository(&format!("{}/mirror/from-lock", reg.host)).unwrap();
    let summary = copy(
        &clients,
        Source::BundleLock(bundle_lock),
        Destination::Repository(to.clone()),
    )
    .await
    .unwrap();
    assert_eq!(summary.bundles, 2);
    assert_eq!(
        digest_at(&client, &to.with_tag("from-lock")).await,
        Some(g.root_digest.clone())
    );
    match summary.lock {
        Some(LockOutput::Bundle(lock)) => assert_eq!(lock.tag.as_deref(), Some("from-lock")),
        other => panic!("expected a BundleLock, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_platform_index_plain_to_tls_auth_and_through_a_tar() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start_tls_auth("bob", "pw-for-bob");
    let source = plain_client();
    let index_ref = Reference::parse(&format!("{}/src/multiarch:2.0", src.host)).unwrap();
    let index_digest = push_index(&source, &index_ref, 11).await;
    let clients = Clients {
        source,
        destination: client_for(&dst),
    };
    let to = Reference::parse_repository(&format!("{}/mirror/multiarch", dst.host)).unwrap();
    let summary = copy(
        &clients,
        Source::Image(index_ref.clone()),
        Destination::Repository(to.clone()),
    )
    .await
    .unwrap();
    assert_eq!(summary.images, 3);
    // Shared layer once: 2 configs + 1 shared + 2 own layers.
    assert_eq!(summary.blobs_transferred, 5, "{summary:?}");
    let d = &clients.destination;
    assert_eq!(
        digest_at(d, &to.with_tag("2.0")).await,
        Some(index_digest.clone())
    );
    assert_eq!(
        digest_at(d, &to.with_tag(&format!("{}.imgpkg", index_digest.dashed()))).await,
        Some(index_digest.clone())
    );
    let index = d
        .get_manifest(&to.with_digest(index_digest.clone()))
        .await
        .unwrap();
    let source_index = clients.source.get_manifest(&index_ref).await.unwrap();
    assert_eq!(index.bytes, source_index.bytes, "raw bytes kept");
    match summary.lock {
        Some(LockOutput::Images(lock)) => {
            assert_eq!(lock.images.len(), 1);
            assert_eq!(
                lock.images[0].image,
                to.with_digest(index_digest.clone()).to_string()
            );
        }
        other => panic!("expected an ImagesLock, got {other:?}"),
    }

    // Through a tarball into a second repository of the TLS registry.
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("index.tar");
    copy(
        &clients,
        Source::Image(index_ref),
        Destination::Tarball {
            path: tar.clone(),
            resume: false,
        },
    )
    .await
    .unwrap();
    drop(src);
    let to2 = Reference::parse_repository(&format!("{}/airgap/multiarch", dst.host)).unwrap();
    let imported = copy(
        &clients,
        Source::Tarball(tar),
        Destination::Repository(to2.clone()),
    )
    .await
    .unwrap();
    assert_eq!(imported.images, 3);
    assert_eq!(
        digest_at(d, &to2.with_tag("2.0")).await,
        Some(index_digest.clone())
    );
    let pkgr::registry::ManifestBody::Index(children) = index.parse().unwrap() else {
        panic!("not an index")
    };
    for child in children.manifests {
        assert_eq!(
            digest_at(d, &to2.with_digest(child.digest.clone())).await,
            Some(child.digest)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_distributable_layers_are_left_out_unless_asked_for() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let source = plain_client();
    let repo = Reference::parse_repository(&format!("{}/src/windows", src.host)).unwrap();
    let layer = noise(33, 10_000);
    source
        .push_blob_bytes(&repo, Bytes::from(layer.clone()))
        .await
        .unwrap();
    // The foreign layer lives elsewhere (its urls); the source registry does not hold it.
    let foreign = noise(34, 20_000);
    let config = format!(
        r#"{{"architecture":"amd64","os":"windows","rootfs":{{"type":"layers","diff_ids":["{}","{}"]}}}}"#,
        sha(&foreign),
        sha(&layer)
    );
    let config_digest = source
        .push_blob_bytes(&repo, Bytes::from(config.clone()))
        .await
        .unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{config_digest}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","size":{},"digest":"{}","urls":["http://127.0.0.1:{}/layer"]}},{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{},"digest":"{}"}}]}}"#,
        config.len(),
        foreign.len(),
        sha(&foreign),
        // Nothing listens there (the port was free a moment ago): the URL fails on loopback.
        support::registry::free_port(),
        layer.len(),
        sha(&layer)
    );
    let image = repo.with_tag("ltsc");
    let digest = source
        .put_manifest(&image, DOCKER_MANIFEST, Bytes::from(manifest))
        .await
        .unwrap();
    let clients = Clients {
        source,
        destination: plain_client(),
    };
    let to = Reference::parse_repository(&format!("{}/dst/windows", dst.host)).unwrap();
    let summary = copy(
        &clients,
        Source::Image(image.clone()),
        Destination::Repository(to.clone()),
    )
    .await
    .unwrap();
    assert_eq!(summary.non_distributable_skipped, 1);
    assert_eq!(summary.blobs_transferred, 2);
    assert_eq!(
        digest_at(&clients.destination, &to.with_tag("ltsc")).await,
        Some(digest.clone())
    );
    assert!(
        !clients
            .destination
            .blob_exists(&to, &sha(&foreign))
            .await
            .unwrap()
    );

    // The caller hears which image's layers were left out (imgpkg's warning block is made of
    // it), the image named where it now is, as imgpkg names it after a copy to a repository.
    let heard: Arc<std::sync::Mutex<Vec<Milestone>>> = Arc::default();
    let record = heard.clone();
    relocate::copy(
        &clients,
        &Source::Image(image.clone()),
        &Destination::Repository(to.clone()),
        &CopyOptions::default(),
        Arc::new(Progress::quiet().with_narrator(move |m| record.lock().unwrap().push(m.clone()))),
    )
    .await
    .unwrap();
    let heard = heard.lock().unwrap().clone();
    assert!(
        heard.contains(&Milestone::NonDistributable {
            included: false,
            images: vec![(
                to.with_digest(digest.clone()).to_string(),
                vec![sha(&foreign).to_string()]
            )],
        }),
        "{heard:?}"
    );
    assert!(heard.contains(&Milestone::Uploaded), "{heard:?}");

    // Asked to include it, the copy must fetch it, and says which blob it could not get.
    let err = relocate::copy(
        &clients,
        &Source::Image(image),
        &Destination::Repository(Reference::parse_repository(&format!("{}/dst/windows2", dst.host)).unwrap()),
        &CopyOptions {
            include_non_distributable: true,
            ..CopyOptions::default()
        },
        Arc::new(Progress::quiet()),
    )
    .await
    .unwrap_err();
    let msg = pkgr::cli::render_error(&err);
    assert!(msg.contains(sha(&foreign).as_str()), "{msg}");
}
