//! A real docker-registry with Bearer token auth (`auth.token`, the flow of Docker Hub, Harbor,
//! GitLab and most private registries) and a token server that checks Basic credentials and
//! signs the scopes asked for. The registry checks each token's scopes, so a client that asks for
//! too little (a copy that mounts from another repository needs `pull` there) fails here.
//! - the CLI pushes, copies (by cross-repository mount) and pulls with one token per scope;
//! - wrong credentials fail naming the registry, before anything is uploaded;
//! - the controller's resync reuses its token (one manifest request, no token exchange), and a
//!   changed credential Secret drops the cached client and its token.
mod apiserver;
mod copy_proxy;
mod support;

use apiserver::FakeApiServer;
use apiserver::controller::{NS, Options, Running};
use pkgr::controller::source::RegistrySource;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;
use support::registry::TestRegistry;
use support::token::TokenServer;

const REPOS: &str = "install.package.carvel.dev/v1alpha1/packagerepositories";
const USER: &str = "alice";
const PASSWORD: &str = "wonderland";

/// Run the binary off the runtime's threads (the proxy runs on them).
async fn pkgr(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || run(&args)).await.unwrap()
}

fn run(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .args(args)
        .env_remove("IMGPKG_REGISTRY_HOSTNAME")
        .env_remove("IMGPKG_REGISTRY_USERNAME")
        .env_remove("IMGPKG_REGISTRY_PASSWORD")
        .env("DOCKER_CONFIG", "/nonexistent-docker-config")
        .output()
        .expect("run pkgr")
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "pkgr failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A repository bundle directory with `count` Packages.
fn bundle_dir(dir: &Path, count: usize) {
    support::data::repository_bundle(dir, "tok.corp.com", count);
}

#[tokio::test]
async fn push_copy_by_mount_and_pull_through_a_token_registry() {
    let tokens = TokenServer::start(USER, PASSWORD);
    let registry = TestRegistry::start_token_auth(&tokens, USER, PASSWORD);
    let proxy = copy_proxy::Proxy::start(&registry.host).await;
    let dir = tempfile::tempdir().unwrap();
    bundle_dir(&dir.path().join("bundle"), 3);
    let creds = ["--registry-username", USER, "--registry-password", PASSWORD];
    let src = format!("{}/tok/src:1.0.0", proxy.host);
    let dst = format!("{}/tok/dst", proxy.host);

    let bundle = dir.path().join("bundle");
    let mut push = vec!["push", "-b", &src, "-f", bundle.to_str().unwrap()];
    push.extend(creds);
    ok(&pkgr(&push).await);
    let pushed = tokens.requests();
    assert!(
        pushed.iter().all(|r| r.authenticated),
        "every token request carries the credentials: {pushed:?}"
    );
    assert!(
        pushed
            .iter()
            .any(|r| r.scopes.iter().any(|s| s == "repository:tok/src:pull,push")
                || r.scopes.iter().any(|s| s == "repository:tok/src:push,pull")),
        "push asks for push and pull on tok/src: {pushed:?}"
    );

    // Copy within the registry: blobs are mounted from tok/src, which the registry allows only
    // with a token that grants pull on tok/src as well as push on tok/dst.
    proxy.clear();
    tokens.clear();
    let mut copy = vec!["copy", "-b", &src, "--to-repo", &dst];
    copy.extend(creds);
    ok(&pkgr(&copy).await);
    let requests = proxy.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.method == "POST" && r.path.contains("mount=")),
        "the copy mounts blobs: {requests:?}"
    );
    assert!(
        !requests.iter().any(|r| r.method == "PATCH"),
        "nothing is uploaded when every blob can be mounted: {requests:?}"
    );
    let copied = tokens.requests();
    assert!(copied.iter().all(|r| r.authenticated), "{copied:?}");
    let scopes: Vec<&str> = copied
        .iter()
        .flat_map(|r| r.scopes.iter().map(String::as_str))
        .collect();
    assert!(
        scopes.iter().any(|s| s.starts_with("repository:tok/src:")),
        "the copy asks for access to the mount's source: {scopes:?}"
    );

    // Pull back what was copied; the files are those pushed.
    let out_dir = dir.path().join("pulled");
    let dst_tag = format!("{dst}:1.0.0");
    let mut pull = vec!["pull", "-b", &dst_tag, "-o", out_dir.to_str().unwrap()];
    pull.extend(creds);
    ok(&pkgr(&pull).await);
    for i in 0..3 {
        let name = format!("packages/{i}.yml");
        assert_eq!(
            std::fs::read(out_dir.join(&name)).unwrap(),
            std::fs::read(bundle.join(&name)).unwrap(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn wrong_credentials_fail_naming_the_registry_before_any_upload() {
    let tokens = TokenServer::start(USER, PASSWORD);
    let registry = TestRegistry::start_token_auth(&tokens, USER, PASSWORD);
    let proxy = copy_proxy::Proxy::start(&registry.host).await;
    let dir = tempfile::tempdir().unwrap();
    bundle_dir(dir.path(), 1);
    let image = format!("{}/tok/app:1.0.0", proxy.host);
    let out = pkgr(&[
        "push",
        "-b",
        &image,
        "-f",
        dir.path().to_str().unwrap(),
        "--registry-username",
        USER,
        "--registry-password",
        "not-the-password",
    ])
    .await;
    assert!(!out.status.success(), "a wrong password must fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&proxy.host), "names the registry: {stderr}");
    assert!(
        stderr.to_lowercase().contains("credential") || stderr.contains("401"),
        "says the credentials were refused: {stderr}"
    );
    let requests = tokens.requests();
    assert!(!requests.is_empty(), "the token server was asked");
    assert!(requests.iter().all(|r| !r.authenticated), "{requests:?}");
    assert!(
        proxy
            .writes()
            .iter()
            .all(|r| r.method != "PATCH" && r.method != "PUT"),
        "nothing was uploaded: {:?}",
        proxy.writes()
    );
}

/// Wait until the repository's status says something other than Reconciling.
async fn outcome(api: &FakeApiServer, name: &str) -> Value {
    api.wait_for("a reconcile outcome", Duration::from_secs(60), |api| {
        let status = api.get(REPOS, None, name)?.pointer("/status")?.clone();
        let description = status.pointer("/friendlyDescription")?;
        (description != "Reconciling").then_some(status)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_resync_reuses_its_token_and_a_changed_secret_drops_it() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("TEST_LOG"))
        .with_test_writer()
        .try_init();
    let tokens = TokenServer::start(USER, PASSWORD);
    let registry = TestRegistry::start_token_auth(&tokens, USER, PASSWORD);
    let proxy = copy_proxy::Proxy::start(&registry.host).await;
    let dir = tempfile::tempdir().unwrap();
    bundle_dir(dir.path(), 5);
    let image = format!("{}/tok/repo:1.0.0", proxy.host);
    ok(&pkgr(&[
        "push",
        "-b",
        &image,
        "-f",
        dir.path().to_str().unwrap(),
        "--registry-username",
        USER,
        "--registry-password",
        PASSWORD,
    ])
    .await);

    let api = FakeApiServer::start().await;
    api.create(
        "v1/secrets",
        Some(NS),
        "creds",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": NS},
               "stringData": {"username": USER, "password": PASSWORD}}),
    );
    let running = Running::start(
        &api,
        Arc::new(RegistrySource::new(Default::default())),
        Options::default(),
    )
    .await;
    tokens.clear();
    api.create(
        REPOS,
        None,
        "tok",
        json!({"apiVersion": "install.package.carvel.dev/v1alpha1", "kind": "PackageRepository",
               "metadata": {"name": "tok"},
               "spec": {"fetch": {"imgpkgBundle": {"image": image, "secretRef": {"name": "creds"}}}}}),
    );
    let status = outcome(&api, "tok").await;
    assert_eq!(status["friendlyDescription"], "ReconcileSucceeded", "{status}");
    assert_eq!(
        tokens.requests().len(),
        1,
        "one token for the first reconcile: {:?}",
        tokens.requests()
    );
    running.wait_outcome("succeeded", 1).await;

    // A resync (the Secret touched, its credentials unchanged): one manifest request, no token.
    proxy.clear();
    tokens.clear();
    let unchanged = running.outcomes("unchanged");
    api.edit(
        "v1/secrets",
        Some(NS),
        "creds",
        json!({"metadata": {"annotations": {"touched": "1"}}}),
    );
    running.wait_outcome("unchanged", unchanged + 1).await;
    let requests: Vec<String> = proxy
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(requests, vec!["HEAD /v2/tok/repo/manifests/1.0.0".to_string()]);
    assert!(tokens.requests().is_empty(), "{:?}", tokens.requests());

    // The password in the Secret changes (to a wrong one): the cached client and its token are
    // dropped, the new credentials go to the token server, and the status says what failed.
    tokens.clear();
    api.edit(
        "v1/secrets",
        Some(NS),
        "creds",
        json!({"data": {"password": base64_of("rotated-wrongly")}}),
    );
    let status = api
        .wait_for("the repository to fail", Duration::from_secs(60), |api| {
            let status = api.get(REPOS, None, "tok")?.pointer("/status")?.clone();
            (status["friendlyDescription"]
                .as_str()?
                .starts_with("ReconcileFailed"))
            .then_some(status)
        })
        .await;
    let requests = tokens.requests();
    assert!(
        !requests.is_empty() && requests.iter().all(|r| !r.authenticated),
        "the new (wrong) credentials were sent to the token server: {requests:?}"
    );
    let message = status["usefulErrorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("creds"), "the status names the Secret: {status}");
    running.stop().await;
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}
