//! `copy --include-non-distributable-layers` with foreign layers the source repository does not
//! hold: each is fetched from its descriptor's `urls` (in order, verified), registry → registry
//! and registry → tarball → registry; a URL that fails or serves other bytes gives an error
//! naming the layer, the image and every URL tried; streamed, a URL found out at the end of its
//! stream is passed over for the next one. The URLs point at a loopback HTTP server.
mod support;

use bytes::Bytes;
use pkgr::bundle::tarball::TarballReader;
use pkgr::registry::{Client, ClientOptions, Credentials, Digest, Keychain, Reference};
use pkgr::relocate::{self, Clients, CopyOptions, CopySummary, Destination, Progress, RelocateError, Source};
use std::sync::{Arc, Mutex};
use support::hostile::{HostileServer, Reply};
use support::registry::TestRegistry;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
const OCI_NONDISTRIBUTABLE: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";

fn client() -> Client {
    Client::new(ClientOptions::default()).unwrap()
}

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

struct Foreign {
    bytes: Vec<u8>,
    urls: Vec<String>,
}

/// Push an image whose layers are one ordinary layer (in the registry) and `foreign` layers
/// that only their URLs hold; `oci` picks OCI media types over Docker's.
async fn push_image(client: &Client, reference: &Reference, foreign: &[Foreign], oci: bool) -> Digest {
    let repo = Reference::parse_repository(&reference.repository_name()).unwrap();
    let own = noise(7, 5_000);
    client
        .push_blob_bytes(&repo, Bytes::from(own.clone()))
        .await
        .unwrap();
    let (manifest_type, config_type, layer_type, foreign_type) = if oci {
        (
            OCI_MANIFEST,
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            OCI_NONDISTRIBUTABLE,
        )
    } else {
        (
            DOCKER_MANIFEST,
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            DOCKER_FOREIGN,
        )
    };
    let mut layers = Vec::new();
    for f in foreign {
        let urls = f
            .urls
            .iter()
            .map(|u| format!("\"{u}\""))
            .collect::<Vec<_>>()
            .join(",");
        layers.push(format!(
            r#"{{"mediaType":"{foreign_type}","size":{},"digest":"{}","urls":[{urls}]}}"#,
            f.bytes.len(),
            Digest::of(&f.bytes)
        ));
    }
    layers.push(format!(
        r#"{{"mediaType":"{layer_type}","size":{},"digest":"{}"}}"#,
        own.len(),
        Digest::of(&own)
    ));
    let config = r#"{"architecture":"amd64","os":"windows","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = client.push_blob_bytes(&repo, Bytes::from(config)).await.unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{manifest_type}","config":{{"mediaType":"{config_type}","size":{},"digest":"{config_digest}"}},"layers":[{}]}}"#,
        config.len(),
        layers.join(",")
    );
    client
        .put_manifest(reference, manifest_type, Bytes::from(manifest))
        .await
        .unwrap()
}

/// A loopback server holding `blobs` at `/good/<n>`, other bytes of the same length at
/// `/liar/<n>`, and nothing (404) anywhere else. It records every path asked for.
async fn url_server(blobs: Vec<Vec<u8>>) -> (HostileServer, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let server = HostileServer::start(move |req| {
        record.lock().unwrap().push(req.path().to_string());
        let mut parts = req.path().trim_start_matches('/').splitn(2, '/');
        let (kind, n) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let Some(blob) = n.parse::<usize>().ok().and_then(|n| blobs.get(n)) else {
            return Reply::status(404);
        };
        match kind {
            "good" => Reply::ok(&[("Content-Type", "application/octet-stream")], blob.clone()),
            "liar" => Reply::ok(&[], noise(99, blob.len())),
            _ => Reply::status(404),
        }
    })
    .await;
    (server, seen)
}

async fn copy(source: Source, destination: Destination) -> Result<CopySummary, RelocateError> {
    let clients = Clients {
        source: client(),
        destination: client(),
    };
    copy_with(&clients, source, destination).await
}

async fn copy_with(
    clients: &Clients,
    source: Source,
    destination: Destination,
) -> Result<CopySummary, RelocateError> {
    relocate::copy(
        clients,
        &source,
        &destination,
        &CopyOptions {
            include_non_distributable: true,
            ..CopyOptions::default()
        },
        Arc::new(Progress::quiet()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_layers_come_from_their_urls_in_order_to_a_registry_and_through_a_tar() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    // One layer read whole (under 1 MiB), one streamed (over it).
    let small = noise(1, 20_000);
    let large = noise(2, 1_500_000);
    let (server, seen) = url_server(vec![small.clone(), large.clone()]).await;
    let url = |path: &str| format!("http://{}/{path}", server.host);
    let foreign = [
        Foreign {
            bytes: small.clone(),
            urls: vec![url("missing/0"), url("good/0")],
        },
        Foreign {
            bytes: large.clone(),
            urls: vec![url("good/1"), url("never-asked/1")],
        },
    ];
    for oci in [false, true] {
        let name = if oci { "oci" } else { "docker" };
        let image = Reference::parse(&format!("{}/src/{name}:ltsc", src.host)).unwrap();
        let digest = push_image(&client(), &image, &foreign, oci).await;
        assert!(!client().blob_exists(&image, &Digest::of(&small)).await.unwrap());

        let to = Reference::parse_repository(&format!("{}/direct/{name}", dst.host)).unwrap();
        seen.lock().unwrap().clear();
        let summary = copy(Source::Image(image.clone()), Destination::Repository(to.clone()))
            .await
            .unwrap();
        assert_eq!(summary.non_distributable_skipped, 0);
        assert_eq!(
            client()
                .head_manifest(&to.with_tag("ltsc"))
                .await
                .unwrap()
                .map(|h| h.digest),
            Some(digest.clone()),
            "{name}: the manifest is copied unchanged"
        );
        for blob in [&small, &large] {
            let got = client()
                .get_blob_bytes(&to, &Digest::of(blob), 2_000_000)
                .await
                .unwrap();
            assert_eq!(&got[..], &blob[..], "{name}: the foreign layer arrived whole");
        }
        let mut asked = seen.lock().unwrap().clone();
        asked.sort();
        assert_eq!(
            asked,
            ["/good/0", "/good/1", "/missing/0"],
            "{name}: URLs in order, first success wins"
        );

        // Through a tarball: the layers are fetched into it, then imported with no source.
        let dir = tempfile::tempdir().unwrap();
        let tar = dir.path().join("image.tar");
        copy(
            Source::Image(image.clone()),
            Destination::Tarball {
                path: tar.clone(),
                resume: false,
            },
        )
        .await
        .unwrap();
        let reader = TarballReader::open(&tar).unwrap();
        assert!(reader.has_layer(&Digest::of(&small)) && reader.has_layer(&Digest::of(&large)));
        let imported = Reference::parse_repository(&format!("{}/via-tar/{name}", dst.host)).unwrap();
        copy(Source::Tarball(tar), Destination::Repository(imported.clone()))
            .await
            .unwrap();
        assert!(
            client()
                .blob_exists(&imported, &Digest::of(&large))
                .await
                .unwrap()
        );
        assert_eq!(
            client()
                .head_manifest(&imported.with_tag("ltsc"))
                .await
                .unwrap()
                .map(|h| h.digest),
            Some(digest)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_that_fail_or_lie_are_named_with_the_layer_and_the_image() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let small = noise(3, 30_000);
    let large = noise(4, 1_200_000);
    let (server, _seen) = url_server(vec![small.clone(), large.clone()]).await;
    let url = |path: &str| format!("http://{}/{path}", server.host);

    // Read whole: every URL is tried, and each one's failure is reported. Nothing listens on
    // the last one (a port free a moment ago).
    let closed = format!("http://127.0.0.1:{}/layer", support::registry::free_port());
    let image = Reference::parse(&format!("{}/src/small:1", src.host)).unwrap();
    let foreign = [Foreign {
        bytes: small.clone(),
        urls: vec![url("missing/0"), url("liar/0"), closed.clone()],
    }];
    push_image(&client(), &image, &foreign, false).await;
    let to = Reference::parse_repository(&format!("{}/dst/small", dst.host)).unwrap();
    let err = copy(Source::Image(image.clone()), Destination::Repository(to.clone()))
        .await
        .unwrap_err();
    let msg = pkgr::cli::render_error(&err);
    for needle in [
        Digest::of(&small).to_string(),
        image.repository_name(),
        format!("{}: it answered HTTP 404", url("missing/0")),
        format!(
            "{}: it served content with digest {}",
            url("liar/0"),
            Digest::of(&noise(99, small.len()))
        ),
        format!("{closed}: "),
        "make one of these URLs reachable".to_string(),
    ] {
        assert!(msg.contains(&needle), "missing {needle:?} in:\n{msg}");
    }
    assert!(!client().blob_exists(&to, &Digest::of(&small)).await.unwrap());

    // Streamed: a URL serving other bytes fails the transfer, naming that URL; nothing is stored.
    let image = Reference::parse(&format!("{}/src/large:1", src.host)).unwrap();
    let foreign = [Foreign {
        bytes: large.clone(),
        urls: vec![url("liar/1")],
    }];
    push_image(&client(), &image, &foreign, true).await;
    let dir = tempfile::tempdir().unwrap();
    let err = copy(
        Source::Image(image.clone()),
        Destination::Tarball {
            path: dir.path().join("large.tar"),
            resume: false,
        },
    )
    .await
    .unwrap_err();
    let msg = pkgr::cli::render_error(&err);
    for needle in [
        Digest::of(&large).to_string(),
        image.repository_name(),
        format!(
            "{}: it served content with digest {}",
            url("liar/1"),
            Digest::of(&noise(99, large.len()))
        ),
    ] {
        assert!(msg.contains(&needle), "missing {needle:?} in:\n{msg}");
    }
}

/// Streamed (over 1 MiB), a URL that serves other bytes is only found out at the end of its
/// stream: the next attempt goes on to the next URL instead of asking the same one again, to a
/// registry and to a tarball; when every URL fails, each is named with why, each asked once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_layer_whose_url_lies_comes_from_the_next_url() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let large = noise(6, 1_300_000);
    let (server, seen) = url_server(vec![large.clone(), large.clone(), large.clone()]).await;
    let url = |path: &str| format!("http://{}/{path}", server.host);
    let image = Reference::parse(&format!("{}/src/streamed:1", src.host)).unwrap();
    // More liars than attempts (3): a URL passed over is not an attempt used up.
    let urls = ["liar/0", "liar/1", "liar/2", "missing/0", "good/0"];
    let asked: Vec<String> = urls.iter().map(|u| format!("/{u}")).collect();
    let foreign = [Foreign {
        bytes: large.clone(),
        urls: urls.iter().map(|u| url(u)).collect(),
    }];
    push_image(&client(), &image, &foreign, true).await;

    let to = Reference::parse_repository(&format!("{}/dst/streamed", dst.host)).unwrap();
    copy(Source::Image(image.clone()), Destination::Repository(to.clone()))
        .await
        .unwrap();
    let got = client()
        .get_blob_bytes(&to, &Digest::of(&large), 2_000_000)
        .await
        .unwrap();
    assert_eq!(&got[..], &large[..]);
    assert_eq!(
        std::mem::take(&mut *seen.lock().unwrap()),
        asked,
        "each URL asked once, in order"
    );

    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("streamed.tar");
    copy(
        Source::Image(image.clone()),
        Destination::Tarball {
            path: tar.clone(),
            resume: false,
        },
    )
    .await
    .unwrap();
    assert!(TarballReader::open(&tar).unwrap().has_layer(&Digest::of(&large)));
    assert_eq!(std::mem::take(&mut *seen.lock().unwrap()), asked);

    // No URL serves it: the error names each one and why; none is asked twice.
    let image = Reference::parse(&format!("{}/src/streamed-nowhere:1", src.host)).unwrap();
    let closed = format!("http://127.0.0.1:{}/layer", support::registry::free_port());
    let foreign = [Foreign {
        bytes: large.clone(),
        urls: vec![url("liar/0"), closed.clone(), url("missing/0")],
    }];
    push_image(&client(), &image, &foreign, false).await;
    let to = Reference::parse_repository(&format!("{}/dst/nowhere", dst.host)).unwrap();
    let err = copy(Source::Image(image.clone()), Destination::Repository(to.clone()))
        .await
        .unwrap_err();
    let msg = pkgr::cli::render_error(&err);
    for needle in [
        Digest::of(&large).to_string(),
        image.repository_name(),
        format!(
            "{}: it served content with digest {}",
            url("liar/0"),
            Digest::of(&noise(99, large.len()))
        ),
        format!("{closed}: "),
        format!("{}: it answered HTTP 404", url("missing/0")),
        "make one of these URLs reachable".to_string(),
    ] {
        assert!(msg.contains(&needle), "missing {needle:?} in:\n{msg}");
    }
    assert_eq!(
        std::mem::take(&mut *seen.lock().unwrap()),
        ["/liar/0", "/missing/0"],
        "no URL asked twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_registrys_credentials_never_reach_a_layer_url() {
    let src = TestRegistry::start_tls_auth("puller", "s3cret");
    let dst = TestRegistry::start();
    let mut options = ClientOptions {
        keychain: Keychain::anonymous().with_host(
            &src.host,
            Credentials::Basic {
                username: "puller".into(),
                password: "s3cret".into(),
            },
        ),
        ..ClientOptions::default()
    };
    options
        .ca_certs_pem
        .push(std::fs::read(src.ca_pem.as_ref().unwrap()).unwrap());
    let source = Client::new(options).unwrap();

    let layer = noise(5, 40_000);
    type Headers = Vec<(String, String)>;
    let headers: Arc<Mutex<Vec<Headers>>> = Arc::default();
    let record = headers.clone();
    let served = layer.clone();
    let server = HostileServer::start(move |req| {
        record.lock().unwrap().push(req.headers.clone());
        Reply::ok(&[], served.clone())
    })
    .await;
    let image = Reference::parse(&format!("{}/src/private:1", src.host)).unwrap();
    let foreign = [Foreign {
        bytes: layer.clone(),
        urls: vec![format!("http://{}/layer", server.host)],
    }];
    push_image(&source, &image, &foreign, false).await;
    let to = Reference::parse_repository(&format!("{}/dst/private", dst.host)).unwrap();
    let clients = Clients {
        source,
        destination: client(),
    };
    copy_with(
        &clients,
        Source::Image(image),
        Destination::Repository(to.clone()),
    )
    .await
    .unwrap();
    assert!(client().blob_exists(&to, &Digest::of(&layer)).await.unwrap());
    let headers = headers.lock().unwrap().clone();
    assert_eq!(headers.len(), 1, "one GET of the layer URL");
    assert!(
        headers[0]
            .iter()
            .all(|(k, _)| !k.eq_ignore_ascii_case("authorization") && !k.eq_ignore_ascii_case("cookie")),
        "{headers:?}"
    );
}
