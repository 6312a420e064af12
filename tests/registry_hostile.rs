//! The registry client against misbehaving servers on loopback.
mod support;

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use pkgr::registry::{
    Client, ClientOptions, Credentials, Descriptor, Digest, Keychain, MEDIA_OCI_MANIFEST, Reference,
    RegistryError,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::hostile::{HostileServer, Reply, Request};

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

fn manifest_reply() -> Reply {
    let digest = Digest::of(MANIFEST.as_bytes()).to_string();
    Reply::ok(
        &[
            ("Content-Type", MEDIA_OCI_MANIFEST),
            ("Docker-Content-Digest", &digest),
        ],
        MANIFEST,
    )
}

fn options() -> ClientOptions {
    ClientOptions {
        retries: 3,
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    }
}

fn client(options: ClientOptions) -> Client {
    Client::new(options).unwrap()
}

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

fn reference(server: &HostileServer, tail: &str) -> Reference {
    Reference::parse(&server.repo(tail)).unwrap()
}

#[tokio::test]
async fn wrong_manifest_digest_is_rejected() {
    let server = HostileServer::start(|_req: &Request| {
        // Claims the digest of other content.
        let lie = Digest::of(b"something else").to_string();
        Reply::ok(
            &[
                ("Content-Type", MEDIA_OCI_MANIFEST),
                ("Docker-Content-Digest", &lie),
            ],
            MANIFEST,
        )
    })
    .await;
    let c = client(options());
    let by_tag = reference(&server, "app:v1");
    let err = c.get_manifest(&by_tag).await.unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains(&by_tag.to_string()), "{err}");
    assert!(!err.is_retryable());

    // By digest: the body must hash to the requested digest, whatever the header says.
    let wanted = Digest::of(b"the manifest we asked for");
    let by_digest = reference(&server, "app").with_digest(wanted.clone());
    let err = c.get_manifest(&by_digest).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&format!("expected {wanted}")), "{text}");
    assert!(
        text.contains(&Digest::of(MANIFEST.as_bytes()).to_string()),
        "{text}"
    );
}

#[tokio::test]
async fn truncated_overlong_and_corrupt_blobs_fail_naming_the_blob() {
    let good = b"0123456789".repeat(100);
    let desc = Descriptor {
        media_type: "application/octet-stream".into(),
        digest: Digest::of(&good),
        size: good.len() as u64,
        urls: vec![],
        annotations: Default::default(),
    };
    let served = good.clone();
    let server = HostileServer::start(move |req: &Request| match req.path() {
        p if p.starts_with("/v2/short/") => Reply::Truncated {
            status: 200,
            headers: vec![],
            declared: served.len() as u64,
            body: served[..500].to_vec(),
        },
        p if p.starts_with("/v2/long/") => {
            let mut body = served.clone();
            body.extend_from_slice(b"extra");
            Reply::Chunked {
                status: 200,
                headers: vec![],
                body,
            }
        }
        p if p.starts_with("/v2/corrupt/") => {
            let mut body = served.clone();
            body[0] = b'X';
            Reply::ok(&[], body)
        }
        _ => Reply::ok(&[], served.clone()),
    })
    .await;
    let c = client(options());

    let repo = reference(&server, "short/app");
    let err = c
        .get_blob(&repo, &desc)
        .await
        .unwrap()
        .try_collect::<Vec<Bytes>>()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            RegistryError::Interrupted { .. } | RegistryError::SizeMismatch { .. }
        ),
        "{err:?}"
    );
    assert!(
        text.contains(desc.digest.as_str()) && text.contains(&repo.repository_name()),
        "{text}"
    );
    assert!(err.is_retryable() || matches!(err, RegistryError::SizeMismatch { .. }));

    let repo = reference(&server, "long/app");
    let err = c
        .get_blob(&repo, &desc)
        .await
        .unwrap()
        .try_collect::<Vec<Bytes>>()
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::SizeMismatch { expected: 1000, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(desc.digest.as_str()), "{err}");

    let repo = reference(&server, "corrupt/app");
    let err = c
        .get_blob(&repo, &desc)
        .await
        .unwrap()
        .try_collect::<Vec<Bytes>>()
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains(desc.digest.as_str()), "{err}");

    // The honest repository streams fine.
    let repo = reference(&server, "fine/app");
    let chunks: Vec<Bytes> = c
        .get_blob(&repo, &desc)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(chunks.concat(), good);
}

#[tokio::test]
async fn huge_manifest_is_refused_without_reading_it() {
    const HUNDRED_MB: u64 = 100 * 1024 * 1024;
    let server = HostileServer::start(|req: &Request| Reply::Flood {
        status: 200,
        headers: vec![("Content-Type".into(), MEDIA_OCI_MANIFEST.into())],
        total: HUNDRED_MB,
        // One repository declares its length, the other streams chunks without one.
        declare: req.path().starts_with("/v2/declared/"),
    })
    .await;
    let c = client(options());

    for repo in ["declared/app:v1", "chunked/app:v1"] {
        let r = reference(&server, repo);
        let err = c.get_manifest(&r).await.unwrap_err();
        assert!(
            matches!(err, RegistryError::TooLarge { limit: 4194304, .. }),
            "{repo}: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&r.to_string()) && text.contains("4194304"),
            "{text}"
        );
    }
    // The client stopped early: far less than the 2 × 100 MB offered was ever written.
    let sent = server.bytes_sent.load(Ordering::SeqCst);
    assert!(sent < HUNDRED_MB / 2, "server wrote {sent} bytes");
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let calls = counter();
    let seen = calls.clone();
    let server = HostileServer::start(move |_req: &Request| {
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::status(500)
        } else {
            manifest_reply()
        }
    })
    .await;
    let m = client(options())
        .get_manifest(&reference(&server, "app:v1"))
        .await
        .unwrap();
    assert_eq!(m.bytes.as_ref(), MANIFEST.as_bytes());
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one failure, one retry");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    let server = HostileServer::start(move |_req: &Request| {
        let mut seen = seen.lock().unwrap();
        seen.push(std::time::Instant::now());
        if seen.len() == 1 {
            Reply::with(429, &[("Retry-After", "1")], "")
        } else {
            manifest_reply()
        }
    })
    .await;
    let m = client(options())
        .get_manifest(&reference(&server, "app:v1"))
        .await
        .unwrap();
    assert_eq!(m.bytes.as_ref(), MANIFEST.as_bytes());
    let arrivals = arrivals.lock().unwrap();
    assert_eq!(arrivals.len(), 2, "one 429, one retry");
    let waited = arrivals[1] - arrivals[0];
    // The default backoff before a first retry is at most 150 ms; the registry asked for 1 s.
    assert!(waited >= Duration::from_secs(1), "retried after only {waited:?}");
}

#[tokio::test]
async fn an_unreasonable_retry_after_fails_at_once() {
    let calls = counter();
    let seen = calls.clone();
    let server = HostileServer::start(move |_req: &Request| {
        seen.fetch_add(1, Ordering::SeqCst);
        Reply::with(
            503,
            &[("Retry-After", "3600")],
            r#"{"errors":[{"code":"UNAVAILABLE","message":"maintenance"}]}"#,
        )
    })
    .await;
    let err = client(options())
        .get_manifest(&reference(&server, "app:v1"))
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert_eq!(
        err.to_string(),
        format!(
            "registry {} answered HTTP 503 (UNAVAILABLE) while fetching manifest {}: maintenance (it asked to be retried after 3600 s)",
            server.host,
            reference(&server, "app:v1")
        )
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no retry into an hour-long wait");
}

#[tokio::test]
async fn retries_are_bounded() {
    let calls = counter();
    let seen = calls.clone();
    let server = HostileServer::start(move |_req: &Request| {
        seen.fetch_add(1, Ordering::SeqCst);
        Reply::with(
            503,
            &[],
            r#"{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}"#,
        )
    })
    .await;
    let c = client(ClientOptions {
        retries: 2,
        ..options()
    });
    let err = c.get_manifest(&reference(&server, "app:v1")).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::Status { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(err.to_string().contains("try later"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 3, "first attempt + 2 retries");
}

#[tokio::test]
async fn not_found_is_not_retried() {
    let calls = counter();
    let seen = calls.clone();
    let server = HostileServer::start(move |_req: &Request| {
        seen.fetch_add(1, Ordering::SeqCst);
        Reply::with(
            404,
            &[],
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        )
    })
    .await;
    let err = client(options())
        .get_manifest(&reference(&server, "app:v1"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::ManifestUnknown { .. }), "{err:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn dropped_connection_is_retried() {
    let calls = counter();
    let seen = calls.clone();
    let server = HostileServer::start(move |_req: &Request| {
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::Close
        } else {
            manifest_reply()
        }
    })
    .await;
    let m = client(options())
        .get_manifest(&reference(&server, "app:v1"))
        .await
        .unwrap();
    assert_eq!(m.digest, Digest::of(MANIFEST.as_bytes()));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn silent_server_times_out() {
    let calls = counter();
    let seen = calls.clone();
    let server = HostileServer::start(move |_req: &Request| {
        seen.fetch_add(1, Ordering::SeqCst);
        Reply::Hang
    })
    .await;
    let c = client(ClientOptions {
        retries: 1,
        read_timeout: Duration::from_millis(300),
        ..options()
    });
    let err = c.get_manifest(&reference(&server, "app:v1")).await.unwrap_err();
    assert!(matches!(err, RegistryError::NoResponse { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let text = err.worded(&pkgr::cli::CommandLine);
    assert!(
        text.contains(&server.host) && text.contains("(--registry-response-header-timeout)"),
        "{text}"
    );
    let cluster = err.worded(&pkgr::controller::audience::ClusterUser);
    assert!(
        cluster.contains(&server.host) && !cluster.contains("--registry"),
        "{cluster}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "no response within the response timeout is reported at once, as imgpkg does"
    );
}

#[tokio::test]
async fn blob_body_that_goes_silent_times_out() {
    let server = HostileServer::start(|_req: &Request| Reply::Stall {
        declared: 1000,
        body: vec![b'a'; 100],
    })
    .await;
    let desc = Descriptor {
        media_type: "application/octet-stream".into(),
        digest: Digest::of(&[b'a'; 1000]),
        size: 1000,
        urls: vec![],
        annotations: Default::default(),
    };
    let c = client(ClientOptions {
        read_timeout: Duration::from_millis(300),
        ..options()
    });
    let repo = reference(&server, "slow/app");
    let mut stream = c.get_blob(&repo, &desc).await.unwrap();
    use futures_util::StreamExt as _;
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.len(), 100);
    let err = stream.next().await.unwrap().unwrap_err();
    assert!(matches!(err, RegistryError::Timeout { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(desc.digest.as_str()) && text.contains("after 100 of 1000 bytes"),
        "{text}"
    );
    assert!(err.is_retryable());
    assert!(stream.next().await.is_none(), "the stream ends after its error");
}

#[tokio::test]
async fn upload_that_stops_moving_times_out() {
    let server = HostileServer::start_stalling_bodies(|req: &Request| match req.method.as_str() {
        "POST" => Reply::with(202, &[("Location", "/v2/app/blobs/uploads/s1")], ""),
        _ => Reply::status(400),
    })
    .await;
    // Far more than the socket buffers hold, so the client blocks once the server stops reading.
    let data = vec![7u8; 64 * 1024 * 1024];
    let digest = Digest::of(&data);
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(256 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let c = client(ClientOptions {
        read_timeout: Duration::from_millis(500),
        ..options()
    });
    let err = c
        .push_blob(
            &reference(&server, "app"),
            &digest,
            data.len() as u64,
            futures_util::stream::iter(chunks),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Timeout { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("no progress") && text.contains(digest.as_str()),
        "{text}"
    );
    assert!(
        err.is_retryable(),
        "the caller may re-open the source and try again"
    );
}

#[tokio::test]
async fn upload_longer_than_the_read_timeout_succeeds_while_it_progresses() {
    let patched = Arc::new(Mutex::new(Vec::new()));
    let seen = patched.clone();
    let server = HostileServer::start(move |req: &Request| match req.method.as_str() {
        "POST" => Reply::with(202, &[("Location", "/v2/app/blobs/uploads/s1")], ""),
        "PATCH" => {
            *seen.lock().unwrap() = req.body.clone();
            Reply::with(202, &[("Location", "/v2/app/blobs/uploads/s1?_state=2")], "")
        }
        "PUT" => Reply::status(201),
        _ => Reply::status(400),
    })
    .await;
    // The source is rate-limited (one chunk per 100 ms tick, 8 chunks): the whole upload takes
    // about 0.8 s, well over the 300 ms read timeout, while no single gap reaches it.
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let chunk = Bytes::from(vec![1u8; 1000]);
    let source = futures_util::stream::unfold((ticks, 0), move |(mut ticks, n)| {
        let chunk = chunk.clone();
        async move {
            if n == 8 {
                return None;
            }
            ticks.tick().await;
            Some((Ok::<_, std::io::Error>(chunk), (ticks, n + 1)))
        }
    });
    let data = vec![1u8; 8000];
    let c = client(ClientOptions {
        read_timeout: Duration::from_millis(300),
        ..options()
    });
    let started = std::time::Instant::now();
    c.push_blob(&reference(&server, "app"), &Digest::of(&data), 8000, source)
        .await
        .unwrap();
    assert!(
        started.elapsed() > Duration::from_millis(300),
        "the upload outlasted the read timeout"
    );
    assert_eq!(*patched.lock().unwrap(), data);
}

/// A registry that wants `Bearer good-token`, and its token endpoint.
struct TokenRealm {
    server: HostileServer,
    token_requests: Arc<Mutex<Vec<Request>>>,
    registry_requests: Arc<AtomicUsize>,
}

async fn token_realm(expected_basic: Option<&'static str>) -> TokenRealm {
    let token_requests: Arc<Mutex<Vec<Request>>> = Arc::default();
    let registry_requests = counter();
    let (tokens, calls) = (token_requests.clone(), registry_requests.clone());
    let realm_host: Arc<Mutex<String>> = Arc::default();
    let realm = realm_host.clone();
    let server = HostileServer::start(move |req: &Request| {
        if req.path() == "/token" {
            tokens.lock().unwrap().push(req.clone());
            let authorized = match expected_basic {
                Some(b) => req.header("authorization") == Some(b),
                None => req.header("authorization").is_none(),
            };
            return if authorized {
                Reply::ok(
                    &[("Content-Type", "application/json")],
                    r#"{"access_token":"good-token","expires_in":300}"#,
                )
            } else {
                Reply::status(401)
            };
        }
        calls.fetch_add(1, Ordering::SeqCst);
        if req.header("authorization") == Some("Bearer good-token") {
            return manifest_reply();
        }
        let challenge = format!(
            r#"Bearer realm="http://{}/token",service="hostile.test",scope="repository:app:pull""#,
            realm.lock().unwrap()
        );
        Reply::with(
            401,
            &[("WWW-Authenticate", &challenge)],
            r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#,
        )
    })
    .await;
    *realm_host.lock().unwrap() = server.host.clone();
    TokenRealm {
        server,
        token_requests,
        registry_requests,
    }
}

#[tokio::test]
async fn bearer_token_is_fetched_once_and_reused() {
    // "alice:pw" in base64.
    let realm = token_realm(Some("Basic YWxpY2U6cHc=")).await;
    let keychain = Keychain::anonymous().with_host(
        &realm.server.host,
        Credentials::Basic {
            username: "alice".into(),
            password: "pw".into(),
        },
    );
    let c = client(ClientOptions {
        keychain,
        ..options()
    });
    let r = reference(&realm.server, "app:v1");
    for _ in 0..3 {
        c.get_manifest(&r).await.unwrap();
    }
    assert!(c.head_manifest(&r).await.unwrap().is_some());
    let tokens = realm.token_requests.lock().unwrap().clone();
    assert_eq!(tokens.len(), 1, "one token for every pull of the repository");
    assert_eq!(tokens[0].query("service"), vec!["hostile.test"]);
    assert_eq!(tokens[0].query("scope"), vec!["repository:app:pull"]);
    // 1 challenged request + 3 GETs + 1 HEAD, each sent once.
    assert_eq!(realm.registry_requests.load(Ordering::SeqCst), 5);

    // Concurrent pulls on a fresh client: every one is challenged, one token is fetched.
    let fresh = client(ClientOptions {
        keychain: Keychain::for_all(Credentials::Basic {
            username: "alice".into(),
            password: "pw".into(),
        }),
        ..options()
    });
    let pulls: Vec<_> = (0..8)
        .map(|_| {
            let (fresh, r) = (fresh.clone(), r.clone());
            tokio::spawn(async move { fresh.get_manifest(&r).await })
        })
        .collect();
    for pull in pulls {
        pull.await.unwrap().unwrap();
    }
    assert_eq!(
        realm.token_requests.lock().unwrap().len(),
        2,
        "one more token for the new client"
    );

    // A push needs a wider scope: a third token.
    c.put_manifest(&r, MEDIA_OCI_MANIFEST, Bytes::from_static(MANIFEST.as_bytes()))
        .await
        .unwrap();
    let tokens = realm.token_requests.lock().unwrap().clone();
    assert_eq!(tokens.len(), 3);
    assert!(
        tokens[2]
            .query("scope")
            .contains(&"repository:app:pull,push".to_string()),
        "{:?}",
        tokens[2]
    );
}

#[tokio::test]
async fn anonymous_token_and_rejected_credentials() {
    let realm = token_realm(None).await;
    let c = client(options());
    c.get_manifest(&reference(&realm.server, "app:v1")).await.unwrap();
    assert_eq!(realm.token_requests.lock().unwrap().len(), 1);

    // The token server refuses these credentials: Unauthorized, naming registry and repository.
    let wrong = client(ClientOptions {
        keychain: Keychain::for_all(Credentials::Basic {
            username: "mallory".into(),
            password: "guess".into(),
        }),
        ..options()
    });
    let err = wrong
        .get_manifest(&reference(&realm.server, "app:v1"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&realm.server.host) && text.contains("repository app"),
        "{text}"
    );
    assert!(!text.contains("guess"), "{text}");
}

#[tokio::test]
async fn registry_token_is_sent_as_is() {
    let realm = token_realm(None).await;
    let c = client(ClientOptions {
        keychain: Keychain::for_all(Credentials::Bearer {
            token: "good-token".into(),
        }),
        ..options()
    });
    c.get_manifest(&reference(&realm.server, "app:v1")).await.unwrap();
    assert_eq!(
        realm.token_requests.lock().unwrap().len(),
        0,
        "no token server round trip"
    );
    assert_eq!(realm.registry_requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn push_blob_follows_every_location() {
    let log: Arc<Mutex<Vec<Request>>> = Arc::default();
    let seen = log.clone();
    let host: Arc<Mutex<String>> = Arc::default();
    let h = host.clone();
    let server = HostileServer::start(move |req: &Request| {
        seen.lock().unwrap().push(req.clone());
        match (req.method.as_str(), req.path()) {
            // Absolute Location first, then a relative one: both must be followed.
            ("POST", "/v2/app/blobs/uploads/") => {
                let location = format!("http://{}/upload/one?_state=a", h.lock().unwrap());
                Reply::with(202, &[("Location", &location)], "")
            }
            ("PATCH", "/upload/one") => Reply::with(202, &[("Location", "/upload/two?_state=b")], ""),
            ("PUT", "/upload/two") => Reply::status(201),
            _ => Reply::status(400),
        }
    })
    .await;
    *host.lock().unwrap() = server.host.clone();
    let data = b"blob body ".repeat(5000);
    let digest = Digest::of(&data);
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        data.chunks(4096).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    client(options())
        .push_blob(
            &reference(&server, "app"),
            &digest,
            data.len() as u64,
            futures_util::stream::iter(chunks),
        )
        .await
        .unwrap();
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 3, "{log:?}");
    assert_eq!(log[1].target, "/upload/one?_state=a");
    assert_eq!(
        log[1].header("content-length"),
        Some(data.len().to_string().as_str())
    );
    assert_eq!(log[1].body, data);
    assert_eq!(log[2].path(), "/upload/two");
    assert_eq!(log[2].query("_state"), vec!["b"]);
    assert_eq!(log[2].query("digest"), vec![digest.to_string()]);
}

#[tokio::test]
async fn declined_mount_cancels_the_session() {
    let log: Arc<Mutex<Vec<Request>>> = Arc::default();
    let seen = log.clone();
    let server = HostileServer::start(move |req: &Request| {
        seen.lock().unwrap().push(req.clone());
        match req.method.as_str() {
            "POST" => Reply::with(202, &[("Location", "/v2/dst/blobs/uploads/session-1")], ""),
            "DELETE" => Reply::status(204),
            _ => Reply::status(400),
        }
    })
    .await;
    let digest = Digest::of(b"layer");
    let mounted = client(options())
        .mount_blob(&reference(&server, "dst"), &digest, &reference(&server, "src"))
        .await
        .unwrap();
    assert!(!mounted);
    let log = log.lock().unwrap();
    assert_eq!(log[0].query("mount"), vec![digest.to_string()]);
    assert_eq!(log[0].query("from"), vec!["src"]);
    assert_eq!(
        (log[1].method.as_str(), log[1].path()),
        ("DELETE", "/v2/dst/blobs/uploads/session-1")
    );
}

#[tokio::test]
async fn tags_follow_link_pagination() {
    let server = HostileServer::start(
        |req: &Request| match req.query("last").first().map(String::as_str) {
            None => Reply::ok(
                &[("Link", r#"</v2/app/tags/list?last=b&n=2>; rel="next""#)],
                r#"{"name":"app","tags":["a","b"]}"#,
            ),
            Some("b") => Reply::ok(&[], r#"{"name":"app","tags":["c"]}"#),
            Some(_) => Reply::status(400),
        },
    )
    .await;
    let tags = client(options())
        .list_tags(&reference(&server, "app"))
        .await
        .unwrap();
    assert_eq!(tags, vec!["a", "b", "c"]);
}

#[tokio::test]
async fn rejected_cached_token_is_replaced_once() {
    // The token server numbers its tokens; the registry accepts only the newest one.
    let issued = counter();
    let token_requests: Arc<Mutex<Vec<Request>>> = Arc::default();
    let host: Arc<Mutex<String>> = Arc::default();
    let (n, log, h) = (issued.clone(), token_requests.clone(), host.clone());
    let server = HostileServer::start(move |req: &Request| {
        if req.path() == "/token" {
            log.lock().unwrap().push(req.clone());
            let k = n.fetch_add(1, Ordering::SeqCst) + 1;
            return Reply::ok(&[], format!(r#"{{"token":"tok-{k}","expires_in":600}}"#));
        }
        let newest = format!("Bearer tok-{}", n.load(Ordering::SeqCst));
        if req.header("authorization") == Some(newest.as_str()) {
            return match req.method.as_str() {
                "POST" => Reply::status(201),
                _ => manifest_reply(),
            };
        }
        let challenge = format!(
            r#"Bearer realm="http://{}/token",service="svc""#,
            h.lock().unwrap()
        );
        Reply::with(401, &[("WWW-Authenticate", &challenge)], "")
    })
    .await;
    *host.lock().unwrap() = server.host.clone();
    let c = client(options());
    let r = reference(&server, "app:v1");
    c.get_manifest(&r).await.unwrap();
    c.get_manifest(&r).await.unwrap();
    assert_eq!(issued.load(Ordering::SeqCst), 1);
    // Revoke tok-1 by issuing tok-2 out of band: the client's cached token now fails.
    issued.fetch_add(1, Ordering::SeqCst);
    c.get_manifest(&r).await.unwrap();
    assert_eq!(
        issued.load(Ordering::SeqCst),
        3,
        "one fresh token after the rejection"
    );

    // A cross-repository mount asks for push on the target and pull on the source.
    let mounted = c
        .mount_blob(
            &reference(&server, "dst"),
            &Digest::of(b"l"),
            &reference(&server, "src"),
        )
        .await
        .unwrap();
    assert!(mounted);
    let last = token_requests.lock().unwrap().last().unwrap().clone();
    let scopes = last.query("scope");
    assert!(
        scopes.contains(&"repository:dst:pull,push".to_string()),
        "{scopes:?}"
    );
    assert!(scopes.contains(&"repository:src:pull".to_string()), "{scopes:?}");
}

#[tokio::test]
async fn explicit_proxy_carries_the_requests() {
    // The "proxy" sees absolute-form targets for a registry name that does not resolve.
    let targets: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = targets.clone();
    let proxy = HostileServer::start(move |req: &Request| {
        seen.lock()
            .unwrap()
            .push(format!("{} {}", req.method, req.target));
        if req.method == "CONNECT" {
            // Refuse the HTTPS tunnel so the client falls back to plain HTTP, which it may here.
            return Reply::status(403);
        }
        match req.target.as_str() {
            "http://registry.invalid:5000/v2/" => Reply::ok(&[], "{}"),
            "http://registry.invalid:5000/v2/app/manifests/v1" => manifest_reply(),
            _ => Reply::status(404),
        }
    })
    .await;
    let c = client(ClientOptions {
        http_proxy: Some(format!("http://{}", proxy.host)),
        https_proxy: Some(format!("http://{}", proxy.host)),
        allow_plain_http: true,
        ..options()
    });
    let m = c
        .get_manifest(&Reference::parse("registry.invalid:5000/app:v1").unwrap())
        .await
        .unwrap();
    assert_eq!(m.digest, Digest::of(MANIFEST.as_bytes()));
    let targets = targets.lock().unwrap();
    assert!(
        targets.contains(&"GET http://registry.invalid:5000/v2/app/manifests/v1".to_string()),
        "{targets:?}"
    );
    assert!(
        targets
            .iter()
            .any(|t| t.starts_with("CONNECT registry.invalid:5000")),
        "HTTPS was tried first: {targets:?}"
    );
}

#[tokio::test]
async fn identity_token_is_exchanged_with_oauth2_post() {
    let token_requests: Arc<Mutex<Vec<Request>>> = Arc::default();
    let host: Arc<Mutex<String>> = Arc::default();
    let (log, h) = (token_requests.clone(), host.clone());
    let server = HostileServer::start(move |req: &Request| {
        if req.path() == "/oauth2/token" {
            log.lock().unwrap().push(req.clone());
            let form = String::from_utf8_lossy(&req.body).to_string();
            return if req.method == "POST"
                && form.contains("grant_type=refresh_token")
                && form.contains("refresh_token=R1")
            {
                Reply::ok(&[], r#"{"access_token":"from-refresh","expires_in":60}"#)
            } else {
                Reply::status(401)
            };
        }
        if req.header("authorization") == Some("Bearer from-refresh") {
            return manifest_reply();
        }
        let challenge = format!(
            r#"Bearer realm="http://{}/oauth2/token",service="acr""#,
            h.lock().unwrap()
        );
        Reply::with(401, &[("WWW-Authenticate", &challenge)], "")
    })
    .await;
    *host.lock().unwrap() = server.host.clone();
    let c = client(ClientOptions {
        keychain: Keychain::for_all(Credentials::IdentityToken { token: "R1".into() }),
        ..options()
    });
    c.get_manifest(&reference(&server, "app:v1")).await.unwrap();
    let log = token_requests.lock().unwrap();
    assert_eq!(log.len(), 1);
    let form = String::from_utf8_lossy(&log[0].body).to_string();
    assert!(
        form.contains("service=acr") && form.contains("scope=repository%3Aapp%3Apull"),
        "{form}"
    );
    assert_eq!(
        log[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn head_without_digest_header_falls_back_to_get() {
    let methods: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = methods.clone();
    let server = HostileServer::start(move |req: &Request| {
        seen.lock().unwrap().push(req.method.clone());
        // A registry (or a cache in front of it) that never sends Docker-Content-Digest.
        Reply::ok(&[("Content-Type", MEDIA_OCI_MANIFEST)], MANIFEST)
    })
    .await;
    let head = client(options())
        .head_manifest(&reference(&server, "app:v1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.digest, Digest::of(MANIFEST.as_bytes()));
    assert_eq!(head.size, MANIFEST.len() as u64);
    assert_eq!(head.media_type, MEDIA_OCI_MANIFEST);
    assert_eq!(*methods.lock().unwrap(), vec!["HEAD", "GET"]);
}

#[tokio::test]
async fn credentials_do_not_follow_a_redirect_to_another_host() {
    let data = b"layer bytes from storage".to_vec();
    let storage_auth: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let seen = storage_auth.clone();
    let served = data.clone();
    let storage = HostileServer::start(move |req: &Request| {
        seen.lock()
            .unwrap()
            .push(req.header("authorization").map(str::to_string));
        Reply::ok(&[], served.clone())
    })
    .await;
    let storage_url = format!("http://{}/bucket/blob?sig=1", storage.host);
    let registry = HostileServer::start(move |req: &Request| {
        if req.header("authorization").is_none() {
            return Reply::with(401, &[("WWW-Authenticate", r#"Basic realm="r""#)], "");
        }
        Reply::with(307, &[("Location", &storage_url)], "")
    })
    .await;
    let c = client(ClientOptions {
        keychain: Keychain::for_all(Credentials::Basic {
            username: "u".into(),
            password: "secret-pw".into(),
        }),
        ..options()
    });
    let desc = Descriptor {
        media_type: "application/octet-stream".into(),
        digest: Digest::of(&data),
        size: data.len() as u64,
        urls: vec![],
        annotations: Default::default(),
    };
    let chunks: Vec<Bytes> = c
        .get_blob(&reference(&registry, "app"), &desc)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(chunks.concat(), data);
    assert_eq!(
        *storage_auth.lock().unwrap(),
        vec![None],
        "the storage host never sees the registry credentials"
    );
}

#[test]
fn invalid_ca_bundle_is_a_clear_error() {
    let err = Client::new(ClientOptions {
        ca_certs_pem: vec![b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".to_vec()],
        ..options()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("CA certificate bundle #1"), "{err}");
}

#[tokio::test]
async fn concurrent_first_requests_share_one_scheme_probe() {
    let server = HostileServer::start(|_req: &Request| manifest_reply()).await;
    let c = client(options());
    let r = reference(&server, "app:v1");
    let pulls: Vec<_> = (0..8)
        .map(|_| {
            let (c, r) = (c.clone(), r.clone());
            tokio::spawn(async move { c.get_manifest(&r).await })
        })
        .collect();
    for pull in pulls {
        pull.await.unwrap().unwrap();
    }
    assert_eq!(server.refused.load(Ordering::SeqCst), 1, "one HTTPS attempt");
    assert_eq!(server.pings.load(Ordering::SeqCst), 1, "one plain-HTTP probe");
}

#[tokio::test]
async fn lost_answer_to_the_final_put_is_recovered() {
    let puts = counter();
    let heads = counter();
    let (p, h) = (puts.clone(), heads.clone());
    let server = HostileServer::start(move |req: &Request| match req.method.as_str() {
        "POST" | "PATCH" => Reply::with(202, &[("Location", "/v2/app/blobs/uploads/s1")], ""),
        // The first PUT commits, but the answer is lost; the retry finds no session.
        "PUT" if p.fetch_add(1, Ordering::SeqCst) == 0 => Reply::Close,
        "PUT" => Reply::with(
            404,
            &[],
            r#"{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"blob upload unknown"}]}"#,
        ),
        "HEAD" => {
            h.fetch_add(1, Ordering::SeqCst);
            Reply::status(200)
        }
        _ => Reply::status(400),
    })
    .await;
    let data = Bytes::from_static(b"some layer");
    let digest = Digest::of(&data);
    client(options())
        .push_blob(
            &reference(&server, "app"),
            &digest,
            data.len() as u64,
            futures_util::stream::iter([Ok(data)]),
        )
        .await
        .unwrap();
    assert_eq!(puts.load(Ordering::SeqCst), 2);
    assert_eq!(heads.load(Ordering::SeqCst), 1, "the blob's presence was checked");
}

#[tokio::test]
async fn blob_as_async_read_reports_the_registry_error() {
    use tokio::io::AsyncReadExt as _;
    let good = b"0123456789".repeat(100);
    let desc = Descriptor {
        media_type: "application/octet-stream".into(),
        digest: Digest::of(&good),
        size: good.len() as u64,
        urls: vec![],
        annotations: Default::default(),
    };
    let served = good.clone();
    let server = HostileServer::start(move |req: &Request| {
        let mut body = served.clone();
        if req.path().starts_with("/v2/corrupt/") {
            body[999] = b'X';
        }
        Reply::ok(&[], body)
    })
    .await;
    let c = client(options());

    let mut read = Vec::new();
    let mut reader = c
        .get_blob(&reference(&server, "fine/app"), &desc)
        .await
        .unwrap()
        .into_async_read();
    reader.read_to_end(&mut read).await.unwrap();
    assert_eq!(read, good);

    let mut reader = c
        .get_blob(&reference(&server, "corrupt/app"), &desc)
        .await
        .unwrap()
        .into_async_read();
    let err = reader.read_to_end(&mut Vec::new()).await.unwrap_err();
    let inner = err
        .into_inner()
        .expect("an inner error")
        .downcast::<RegistryError>()
        .expect("a RegistryError");
    assert!(
        matches!(*inner, RegistryError::DigestMismatch { .. }),
        "{inner:?}"
    );
}
