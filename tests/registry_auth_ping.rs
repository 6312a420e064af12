//! The `/v2/` ping as Docker clients do it: the auth challenge learned there sends credentials
//! from the first request (registries that answer a bare 401 elsewhere), and a registry that
//! never answers fails within the response timeout, without retries.
mod support;

use pkgr::registry::{
    Client, ClientOptions, Credentials, Digest, Keychain, MEDIA_OCI_MANIFEST, Reference, RegistryError,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::hostile::{HostileServer, Reply, Request};

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
const BARE_401: &str =
    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#;
/// "alice:pw" in base64.
const ALICE: &str = "Basic YWxpY2U6cHc=";

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

fn alice() -> Keychain {
    Keychain::for_all(Credentials::Basic {
        username: "alice".into(),
        password: "pw".into(),
    })
}

fn client(keychain: Keychain) -> Client {
    Client::new(ClientOptions {
        keychain,
        retries: 3,
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    })
    .unwrap()
}

/// A registry that challenges only on `/v2/` and answers a bare 401 (no `WWW-Authenticate`)
/// to anything sent without alice's credentials. Counts the manifest requests.
async fn basic_on_ping_only() -> (HostileServer, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    let server = HostileServer::start_with_ping(move |req: &Request| {
        if req.path() == "/v2/" {
            return Reply::with(401, &[("WWW-Authenticate", r#"Basic realm="hostile""#)], "");
        }
        seen.fetch_add(1, Ordering::SeqCst);
        if req.header("authorization") == Some(ALICE) {
            manifest_reply()
        } else {
            Reply::with(401, &[("Content-Type", "application/json")], BARE_401)
        }
    })
    .await;
    (server, requests)
}

#[tokio::test]
async fn basic_credentials_go_out_with_the_first_request() {
    let (server, requests) = basic_on_ping_only().await;
    let reference = Reference::parse(&server.repo("app:v1")).unwrap();
    let manifest = client(alice()).get_manifest(&reference).await.unwrap();
    assert_eq!(manifest.digest, Digest::of(MANIFEST.as_bytes()));
    assert_eq!(requests.load(Ordering::SeqCst), 1, "no unauthorised round trip");
}

#[tokio::test]
async fn no_credentials_is_not_called_rejected_credentials() {
    let (server, _) = basic_on_ping_only().await;
    let reference = Reference::parse(&server.repo("app:v1")).unwrap();
    let err = client(Keychain::anonymous())
        .get_manifest(&reference)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Unauthorized { anonymous: true, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("none were found"), "{text}");
    assert!(!text.contains("rejected"), "{text}");
    assert!(
        text.contains("UNAUTHORIZED: authentication required"),
        "the registry's own words, as imgpkg shows them: {text}"
    );

    // Wrong credentials are sent, and rejected: that is what the message says.
    let wrong = client(Keychain::for_all(Credentials::Basic {
        username: "mallory".into(),
        password: "guess".into(),
    }));
    let err = wrong.get_manifest(&reference).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::Unauthorized { anonymous: false, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("rejected the credentials"), "{err}");
    assert!(!err.to_string().contains("guess"), "{err}");
}

#[tokio::test]
async fn bearer_challenge_on_ping_only() {
    let tokens: Arc<Mutex<Vec<Request>>> = Arc::default();
    let seen_tokens = tokens.clone();
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    let host: Arc<Mutex<String>> = Arc::default();
    let realm_host = host.clone();
    let server = HostileServer::start_with_ping(move |req: &Request| match req.path() {
        "/v2/" => {
            let challenge = format!(
                r#"Bearer realm="http://{}/token",service="hostile.test""#,
                realm_host.lock().unwrap()
            );
            Reply::with(401, &[("WWW-Authenticate", &challenge)], "")
        }
        "/token" => {
            seen_tokens.lock().unwrap().push(req.clone());
            if req.header("authorization") == Some(ALICE) {
                Reply::ok(&[("Content-Type", "application/json")], r#"{"token":"t1"}"#)
            } else {
                Reply::status(401)
            }
        }
        _ => {
            seen.fetch_add(1, Ordering::SeqCst);
            if req.header("authorization") == Some("Bearer t1") {
                manifest_reply()
            } else {
                Reply::with(401, &[], BARE_401)
            }
        }
    })
    .await;
    *host.lock().unwrap() = server.host.clone();
    let reference = Reference::parse(&server.repo("app:v1")).unwrap();
    client(alice()).get_manifest(&reference).await.unwrap();
    assert_eq!(
        requests.load(Ordering::SeqCst),
        1,
        "the token came before the first request"
    );
    let tokens = tokens.lock().unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].query("scope"), vec!["repository:app:pull"]);
    assert_eq!(tokens[0].query("service"), vec!["hostile.test"]);
}

#[tokio::test]
async fn identity_token_is_exchanged_at_the_realm_learned_from_the_ping() {
    let host: Arc<Mutex<String>> = Arc::default();
    let realm_host = host.clone();
    let server = HostileServer::start_with_ping(move |req: &Request| match req.path() {
        "/v2/" => {
            let challenge = format!(
                r#"Bearer realm="http://{}/oauth2/token",service="hostile.test""#,
                realm_host.lock().unwrap()
            );
            Reply::with(401, &[("WWW-Authenticate", &challenge)], "")
        }
        "/oauth2/token" => {
            let body = String::from_utf8_lossy(&req.body).into_owned();
            if req.method == "POST"
                && body.contains("grant_type=refresh_token")
                && body.contains("refresh_token=refresh-1")
            {
                Reply::ok(&[], r#"{"access_token":"t2"}"#)
            } else {
                Reply::status(401)
            }
        }
        _ if req.header("authorization") == Some("Bearer t2") => manifest_reply(),
        _ => Reply::with(401, &[], BARE_401),
    })
    .await;
    *host.lock().unwrap() = server.host.clone();
    let reference = Reference::parse(&server.repo("app:v1")).unwrap();
    let keychain = Keychain::for_all(Credentials::IdentityToken {
        token: "refresh-1".into(),
    });
    client(keychain).get_manifest(&reference).await.unwrap();
}

#[tokio::test]
async fn a_registry_that_never_answers_fails_within_the_response_timeout() {
    // Accepts connections (and TLS hellos) and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let silent = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            open.push(stream);
        }
    });
    let c = Client::new(ClientOptions {
        retries: 5,
        read_timeout: Duration::from_secs(1),
        ..ClientOptions::default()
    })
    .unwrap();
    let reference = Reference::parse(&format!("{addr}/app:v1")).unwrap();
    let started = Instant::now();
    let err = c.get_manifest(&reference).await.unwrap_err();
    let elapsed = started.elapsed();
    silent.abort();
    assert!(matches!(err, RegistryError::NoResponse { .. }), "{err:?}");
    assert!(
        elapsed < Duration::from_millis(2500),
        "took {elapsed:?}; 5 retries of the ping would take 9 s"
    );
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one attempt, no retry");
}
