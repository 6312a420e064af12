//! `spec.fetch.imgpkgBundle.verify` through the running controller, a real docker-registry behind
//! a counting proxy, and cosign signatures made in the test: a signed repository is applied; a
//! resync of it makes no extra request; a key rotated in the Secret is used at once, and a
//! signature it does not verify fails the repository naming the digest and the signature tag,
//! leaving what was applied untouched; an unsigned repository applies nothing.
mod apiserver;
mod copy_proxy;
mod support;

use apiserver::FakeApiServer;
use apiserver::controller::{NS, Options, Running};
use base64::Engine as _;
use pkgr::controller::source::RegistrySource;
use pkgr::registry::Reference;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::cosign::{KeyKind, SigLayer, keypair, payload_for, push_sig};

const REPOS: &str = "install.package.carvel.dev/v1alpha1/packagerepositories";
const PACKAGES: &str = "data.packaging.carvel.dev/v1alpha1/packages";
const WAIT: Duration = Duration::from_secs(60);

fn push_bundle(image: &str, ref_name: &str, count: usize) -> Reference {
    let dir = tempfile::tempdir().unwrap();
    support::data::repository_bundle(dir.path(), ref_name, count);
    let pushed = std::process::Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .args(["push", "-b", image, "-f", dir.path().to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    Reference::parse(image).unwrap()
}

fn keys_secret(keys: &[(&str, &std::path::Path)]) -> Value {
    let data: serde_json::Map<String, Value> = keys
        .iter()
        .map(|(name, path)| {
            let pem = std::fs::read(path).unwrap();
            (
                name.to_string(),
                json!(base64::engine::general_purpose::STANDARD.encode(pem)),
            )
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "signing-keys", "namespace": NS}, "data": data})
}

fn repository(name: &str, image: &str) -> Value {
    json!({"apiVersion": "install.package.carvel.dev/v1alpha1", "kind": "PackageRepository",
        "metadata": {"name": name},
        "spec": {"fetch": {"imgpkgBundle": {"image": image,
            "verify": {"provider": "cosign", "secretRef": {"name": "signing-keys"}}}}}})
}

fn status(api: &FakeApiServer, name: &str) -> Value {
    api.get(REPOS, None, name)
        .and_then(|r| r.get("status").cloned())
        .unwrap_or(Value::Null)
}

async fn wait_described(api: &FakeApiServer, name: &str, prefix: &str) -> Value {
    api.wait_for(&format!("{name}: {prefix}"), WAIT, |api| {
        let s = status(api, name);
        s["friendlyDescription"]
            .as_str()
            .is_some_and(|d| d.starts_with(prefix))
            .then_some(s)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_signed_repository_is_applied_and_a_rotated_key_counts_at_once() {
    let registry = support::registry::TestRegistry::start();
    let proxy = copy_proxy::Proxy::start(&registry.host).await;
    let signed = push_bundle(&format!("{}/repo/signed:1.0.0", proxy.host), "signed.corp.com", 3);
    let unsigned = push_bundle(
        &format!("{}/repo/unsigned:1.0.0", proxy.host),
        "unsigned.corp.com",
        2,
    );
    let client = support::signed_graph::client();
    let head = client.head_manifest(&signed).await.unwrap().unwrap();
    let subject = signed.with_digest(head.digest.clone());
    let dir = tempfile::tempdir().unwrap();
    let good = keypair(dir.path(), "good", KeyKind::P256);
    let other = keypair(dir.path(), "other", KeyKind::Ed25519);
    let payload = payload_for(&signed.repository_name(), &head.digest, &[]);
    let sig_digest = push_sig(&client, &subject, &[SigLayer::signed(&good, payload)]).await;
    let sig_tag = format!("sha256-{}.sig", head.digest.hex());

    let api = FakeApiServer::start().await;
    api.create(
        "v1/secrets",
        Some(NS),
        "signing-keys",
        keys_secret(&[("cosign.pub", &good.public)]),
    );
    let running = Running::start(
        &api,
        Arc::new(RegistrySource::new(Default::default())),
        Options::default(),
    )
    .await;
    api.create(REPOS, None, "signed", repository("signed", &signed.to_string()));
    api.create(
        REPOS,
        None,
        "unsigned",
        repository("unsigned", &unsigned.to_string()),
    );
    wait_described(&api, "signed", "ReconcileSucceeded").await;
    assert_eq!(
        api.all(PACKAGES).len(),
        3,
        "only the signed repository's Packages"
    );
    let refused = wait_described(&api, "unsigned", "ReconcileFailed").await;
    let text = refused["usefulErrorMessage"].as_str().unwrap();
    assert!(
        text.contains("is not signed by any key of Secret kapp-controller/signing-keys")
            && text.contains("nothing was applied")
            && text.contains(".sig"),
        "{text}"
    );
    assert!(
        api.all(PACKAGES)
            .iter()
            .all(|p| p["spec"]["refName"] == "signed.corp.com"),
        "nothing of the unsigned repository"
    );

    // A resync (the keys Secret touched, same keys): verified before, no registry request more
    // than the digest short-cut's one.
    proxy.clear();
    let unchanged = running.outcomes("unchanged");
    api.edit(
        "v1/secrets",
        Some(NS),
        "signing-keys",
        json!({"metadata": {"annotations": {"touched": "1"}}}),
    );
    running.wait_outcome("unchanged", unchanged + 1).await;
    let requests: Vec<String> = proxy
        .requests()
        .iter()
        .filter(|r| r.path.contains("/repo/signed/"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        requests.len(),
        1,
        "one manifest request, nothing for the signature: {requests:?}"
    );

    // The key rotated: the signature is not the new key's. Failed, naming the digest and the
    // tag; what was applied stays.
    let before: Vec<Value> = api.all(PACKAGES);
    api.edit(
        "v1/secrets",
        Some(NS),
        "signing-keys",
        json!({"data": {"cosign.pub": null,
            "new.pub": base64::engine::general_purpose::STANDARD.encode(std::fs::read(&other.public).unwrap())}}),
    );
    let failed = wait_described(&api, "signed", "ReconcileFailed").await;
    let text = failed["usefulErrorMessage"].as_str().unwrap();
    assert!(
        text.contains(&head.digest.to_string()) && text.contains(&sig_tag),
        "names the digest and the signature tag: {text}"
    );
    assert_eq!(api.all(PACKAGES), before, "nothing applied is touched");

    // A signature by the new key as well: verified again, applied.
    let payload = payload_for(&signed.repository_name(), &head.digest, &[]);
    let second = push_sig(
        &client,
        &subject,
        &[
            SigLayer::signed(&good, payload_for(&signed.repository_name(), &head.digest, &[])),
            SigLayer::signed(&other, payload),
        ],
    )
    .await;
    assert_ne!(second, sig_digest);
    api.edit(REPOS, None, "signed", json!({"spec": {"syncPeriod": "6m"}}));
    wait_described(&api, "signed", "ReconcileSucceeded").await;

    // A malformed key: named.
    api.edit(
        "v1/secrets",
        Some(NS),
        "signing-keys",
        json!({"data": {"broken.pub": base64::engine::general_purpose::STANDARD.encode("not a key")}}),
    );
    let broken = wait_described(&api, "signed", "ReconcileFailed").await;
    let text = broken["friendlyDescription"].as_str().unwrap();
    assert!(
        text.contains("broken.pub") && text.contains("signing-keys"),
        "{text}"
    );

    // The keys Secret deleted: the status names the verify block's secretRef, not the
    // credentials' one.
    let before: Vec<Value> = api.all(PACKAGES);
    api.delete("v1/secrets", Some(NS), "signing-keys");
    let missing = api
        .wait_for("the missing keys Secret named", WAIT, |api| {
            let s = status(api, "signed");
            s["friendlyDescription"]
                .as_str()
                .is_some_and(|d| d.contains("does not exist"))
                .then_some(s)
        })
        .await;
    assert_eq!(
        missing["friendlyDescription"].as_str().unwrap(),
        "ReconcileFailed: Secret kapp-controller/signing-keys named by \
         spec.fetch.imgpkgBundle.verify.secretRef does not exist; create it in namespace \
         kapp-controller"
    );
    assert_eq!(api.all(PACKAGES), before, "nothing applied is touched");
    running.stop().await;
}
