//! The registry client against a real registry (Debian's docker-registry on loopback).
mod support;

use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _};
use pkgr::registry::{
    Client, ClientOptions, Credentials, Descriptor, Digest, Keychain, MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX,
    MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_MANIFEST, ManifestBody, Reference, RegistryError,
};
use support::registry::TestRegistry;

fn client(options: ClientOptions) -> Client {
    Client::new(options).expect("client")
}

/// A deterministic pseudo-random blob, large enough to span many chunks.
fn blob(len: usize, seed: u8) -> Vec<u8> {
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// Chunks of 64 KiB, as a file reader would yield them.
fn chunked(
    data: Vec<u8>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures_util::stream::iter(chunks)
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: Digest::of(bytes),
        size: bytes.len() as u64,
        urls: vec![],
        annotations: Default::default(),
    }
}

fn image_manifest(config: &Descriptor, layer: &Descriptor) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": {"mediaType": config.media_type, "digest": config.digest.as_str(), "size": config.size},
        "layers": [{"mediaType": layer.media_type, "digest": layer.digest.as_str(), "size": layer.size}],
    }))
    .unwrap()
}

/// Push a config + one layer + manifest into `repo`; returns (manifest bytes, layer bytes).
async fn push_image(
    client: &Client,
    repo: &Reference,
    tag: &str,
    seed: u8,
) -> (Vec<u8>, Vec<u8>, Descriptor) {
    let layer = blob(700_000, seed);
    let layer_desc = descriptor(MEDIA_OCI_LAYER_GZIP, &layer);
    client
        .push_blob(repo, &layer_desc.digest, layer_desc.size, chunked(layer.clone()))
        .await
        .expect("push layer");
    let config = format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#).into_bytes();
    let config_digest = client
        .push_blob_bytes(repo, Bytes::from(config.clone()))
        .await
        .expect("push config");
    assert_eq!(config_digest, Digest::of(&config));
    let config_desc = descriptor(MEDIA_OCI_CONFIG, &config);
    let manifest = image_manifest(&config_desc, &layer_desc);
    let pushed = client
        .put_manifest(
            &repo.with_tag(tag),
            MEDIA_OCI_MANIFEST,
            Bytes::from(manifest.clone()),
        )
        .await
        .expect("put manifest");
    assert_eq!(pushed, Digest::of(&manifest));
    (manifest, layer, layer_desc)
}

#[tokio::test]
async fn plain_registry_round_trip() {
    let reg = TestRegistry::start();
    let client = client(ClientOptions::default());
    let repo = Reference::parse_repository(&reg.repo("apps/one")).unwrap();

    let (manifest, layer, layer_desc) = push_image(&client, &repo, "v1", 1).await;
    let manifest_digest = Digest::of(&manifest);

    // HEAD by tag and by digest.
    let head = client
        .head_manifest(&repo.with_tag("v1"))
        .await
        .unwrap()
        .expect("tag exists");
    assert_eq!(head.digest, manifest_digest);
    assert_eq!(head.media_type, MEDIA_OCI_MANIFEST);
    assert_eq!(head.size, manifest.len() as u64);
    assert!(
        client
            .head_manifest(&repo.with_tag("nope"))
            .await
            .unwrap()
            .is_none()
    );
    let by_digest = repo.with_digest(manifest_digest.clone());
    assert_eq!(
        client.head_manifest(&by_digest).await.unwrap().unwrap().digest,
        manifest_digest
    );

    // GET returns the exact bytes, and the typed view.
    let got = client.get_manifest(&repo.with_tag("v1")).await.unwrap();
    assert_eq!(got.bytes.as_ref(), manifest.as_slice());
    assert_eq!(got.digest, manifest_digest);
    assert_eq!(got.media_type, MEDIA_OCI_MANIFEST);
    let ManifestBody::Image(image) = got.parse().unwrap() else {
        panic!("an image manifest")
    };
    assert_eq!(image.layers, vec![layer_desc.clone()]);
    let got = client.get_manifest(&by_digest).await.unwrap();
    assert_eq!(got.bytes.as_ref(), manifest.as_slice());

    // Missing manifest: a typed error naming the reference.
    let err = client.get_manifest(&repo.with_tag("missing")).await.unwrap_err();
    assert!(matches!(err, RegistryError::ManifestUnknown { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("{}/apps/one:missing", reg.host)),
        "{err}"
    );

    // Blob streamed back, verified.
    assert!(client.blob_exists(&repo, &layer_desc.digest).await.unwrap());
    let stream = client.get_blob(&repo, &layer_desc).await.unwrap();
    assert_eq!(stream.size, layer.len() as u64);
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    assert!(chunks.len() > 1, "the blob arrives in several chunks");
    assert_eq!(chunks.concat(), layer);

    // A descriptor that lies about the size is caught.
    let mut wrong = layer_desc.clone();
    wrong.size += 1;
    let err = client.get_blob(&repo, &wrong).await.err().expect("size mismatch");
    assert!(matches!(err, RegistryError::SizeMismatch { .. }), "{err:?}");

    // Small blob read whole, and a cap that is too small.
    let config_digest = image.config.digest.clone();
    let config = client.get_blob_bytes(&repo, &config_digest, 1024).await.unwrap();
    assert_eq!(Digest::of(&config), config_digest);
    let err = client.get_blob_bytes(&repo, &config_digest, 4).await.unwrap_err();
    assert!(matches!(err, RegistryError::TooLarge { limit: 4, .. }), "{err:?}");

    // Missing blob.
    let absent = Digest::of(b"absent");
    assert!(!client.blob_exists(&repo, &absent).await.unwrap());
    let err = client
        .get_blob(&repo, &descriptor("x", b"absent"))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, RegistryError::BlobUnknown { .. }), "{err:?}");
    assert!(err.to_string().contains(absent.as_str()), "{err}");

    // Push by digest, tags listed.
    let by_digest_push = client
        .put_manifest(
            &repo.with_digest(manifest_digest.clone()),
            MEDIA_OCI_MANIFEST,
            Bytes::from(manifest.clone()),
        )
        .await
        .unwrap();
    assert_eq!(by_digest_push, manifest_digest);
    let err = client
        .put_manifest(
            &repo.with_digest(Digest::of(b"other")),
            MEDIA_OCI_MANIFEST,
            Bytes::from(manifest.clone()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err:?}");
    push_image(&client, &repo, "v2", 2).await;
    let mut tags = client.list_tags(&repo).await.unwrap();
    tags.sort();
    assert_eq!(tags, vec!["v1", "v2"]);
    let err = client
        .list_tags(&Reference::parse_repository(&reg.repo("nothing/here")).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NameUnknown { .. }), "{err:?}");

    // An index over the image.
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_INDEX,
        "manifests": [{"mediaType": MEDIA_OCI_MANIFEST, "digest": manifest_digest.as_str(), "size": manifest.len()}],
    }))
    .unwrap();
    client
        .put_manifest(&repo.with_tag("idx"), MEDIA_OCI_INDEX, Bytes::from(index.clone()))
        .await
        .unwrap();
    let got = client.get_manifest(&repo.with_tag("idx")).await.unwrap();
    assert_eq!(got.media_type, MEDIA_OCI_INDEX);
    let ManifestBody::Index(idx) = got.parse().unwrap() else {
        panic!("index")
    };
    assert_eq!(idx.manifests[0].digest, manifest_digest);
}

#[tokio::test]
async fn mount_between_repositories() {
    let reg = TestRegistry::start();
    let client = client(ClientOptions::default());
    let src = Reference::parse_repository(&reg.repo("src/app")).unwrap();
    let dst = Reference::parse_repository(&reg.repo("dst/app")).unwrap();
    let (_, _, layer) = push_image(&client, &src, "v1", 3).await;

    assert!(!client.blob_exists(&dst, &layer.digest).await.unwrap());
    assert!(
        client.mount_blob(&dst, &layer.digest, &src).await.unwrap(),
        "mounted"
    );
    assert!(client.blob_exists(&dst, &layer.digest).await.unwrap());

    // A blob the source does not have: the registry declines (202), we get false.
    let absent = Digest::of(b"not anywhere");
    assert!(!client.mount_blob(&dst, &absent, &src).await.unwrap());
    // Another registry: no request, false.
    let elsewhere = Reference::parse_repository("other.example:5000/src/app").unwrap();
    assert!(!client.mount_blob(&dst, &layer.digest, &elsewhere).await.unwrap());
}

#[tokio::test]
async fn push_blob_rejects_a_source_of_the_wrong_size() {
    let reg = TestRegistry::start();
    let client = client(ClientOptions::default());
    let repo = Reference::parse_repository(&reg.repo("short/source")).unwrap();
    let data = blob(200_000, 9);
    let digest = Digest::of(&data);
    let err = client
        .push_blob(&repo, &digest, data.len() as u64 + 10, chunked(data.clone()))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Source { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("ended after 200000 of the declared 200010 bytes"),
        "{err}"
    );
    assert!(!client.blob_exists(&repo, &digest).await.unwrap());

    // Declared digest does not match the bytes: the registry refuses the upload.
    let err = client
        .push_blob(
            &repo,
            &Digest::of(b"something else"),
            data.len() as u64,
            chunked(data),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("uploading blob"), "{err}");
    assert!(!err.is_retryable(), "{err:?}");
}

fn tls_options(reg: &TestRegistry, credentials: Credentials) -> ClientOptions {
    let ca = std::fs::read(reg.ca_pem.as_ref().unwrap()).unwrap();
    ClientOptions {
        keychain: Keychain::anonymous().with_host(&reg.host, credentials),
        ca_certs_pem: vec![ca],
        ..ClientOptions::default()
    }
}

#[tokio::test]
async fn tls_registry_with_ca_and_basic_auth() {
    let reg = TestRegistry::start_tls_auth("alice", "s3cret");
    let basic = Credentials::Basic {
        username: "alice".into(),
        password: "s3cret".into(),
    };
    let client = client(tls_options(&reg, basic.clone()));
    let repo = Reference::parse_repository(&reg.repo("secure/app")).unwrap();
    let (manifest, _, layer) = push_image(&client, &repo, "v1", 4).await;
    let got = client.get_manifest(&repo.with_tag("v1")).await.unwrap();
    assert_eq!(got.bytes.as_ref(), manifest.as_slice());
    assert!(client.blob_exists(&repo, &layer.digest).await.unwrap());
    assert_eq!(client.list_tags(&repo).await.unwrap(), vec!["v1"]);
    assert_eq!(client.credentials_for(&repo), basic);

    // Without the CA: a TLS error naming the registry, and no fallback to plain HTTP.
    let no_ca = Client::new(ClientOptions {
        keychain: Keychain::for_all(basic.clone()),
        ..ClientOptions::default()
    })
    .unwrap();
    let err = no_ca.get_manifest(&repo.with_tag("v1")).await.unwrap_err();
    assert!(matches!(err, RegistryError::Tls { .. }), "{err:?}");
    let text = err.worded(&pkgr::cli::CommandLine);
    assert!(text.contains(&reg.host), "{text}");
    assert!(text.contains("--registry-ca-cert-path"), "{text}");
    let cluster = err.worded(&pkgr::controller::audience::ClusterUser);
    assert!(
        cluster.contains("caCerts") && !cluster.contains("--registry"),
        "{cluster}"
    );

    // Wrong password: Unauthorized naming registry and repository, and no secret in the text.
    let wrong = client_with(
        &reg,
        Credentials::Basic {
            username: "alice".into(),
            password: "wrong-pw".into(),
        },
    );
    let err = wrong.get_manifest(&repo.with_tag("v1")).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&reg.host) && text.contains("secure/app"), "{text}");
    assert!(
        !text.contains("wrong-pw") && !format!("{err:?}").contains("wrong-pw"),
        "{text}"
    );

    // Anonymous against an auth registry.
    let anon = client_with(&reg, Credentials::Anonymous);
    let err = anon.head_manifest(&repo.with_tag("v1")).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");

    // verify_certs = false works without the CA.
    let insecure = Client::new(ClientOptions {
        keychain: Keychain::for_all(basic.clone()),
        verify_certs: false,
        ..ClientOptions::default()
    })
    .unwrap();
    assert_eq!(
        insecure
            .get_manifest(&repo.with_tag("v1"))
            .await
            .unwrap()
            .bytes
            .as_ref(),
        manifest.as_slice()
    );

    // So does naming the host in skip_tls_verify_hosts.
    let skip = Client::new(ClientOptions {
        keychain: Keychain::for_all(basic),
        skip_tls_verify_hosts: vec![reg.host.clone()],
        ..ClientOptions::default()
    })
    .unwrap();
    let stream = skip.get_blob(&repo, &layer).await.unwrap();
    let total: usize = stream
        .map(|c| c.unwrap().len())
        .fold(0, |a, n| async move { a + n })
        .await;
    assert_eq!(total as u64, layer.size);
}

fn client_with(reg: &TestRegistry, credentials: Credentials) -> Client {
    client(tls_options(reg, credentials))
}
