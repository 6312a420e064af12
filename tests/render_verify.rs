//! `pkgr render --verify-key`: the controller's `verify` without a cluster. A repository bundle
//! signed in the test (cosign's layout, keys from the `openssl` CLI) renders with its key, from
//! its registry and from a tarball made with `copy --cosign-signatures` (no network); with another
//! key nothing is rendered and the error names the signature tag.
mod support;

use pkgr::registry::Reference;
use std::process::{Command, Output};
use support::cosign::{KeyKind, SigLayer, keypair, payload_for, push_sig};

fn pkgr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_verifies_the_repository_signature_when_asked() {
    let registry = support::registry::TestRegistry::start();
    let image = registry.repo("repo/signed:1.0.0");
    let dir = tempfile::tempdir().unwrap();
    support::data::repository_bundle(&dir.path().join("bundle"), "signed.corp.com", 2);
    let pushed = pkgr(&[
        "push",
        "-b",
        &image,
        "-f",
        dir.path().join("bundle").to_str().unwrap(),
    ]);
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let reference = Reference::parse(&image).unwrap();
    let client = support::signed_graph::client();
    let digest = client.head_manifest(&reference).await.unwrap().unwrap().digest;
    let good = keypair(dir.path(), "good", KeyKind::P256);
    let other = keypair(dir.path(), "other", KeyKind::P256);
    let payload = payload_for(&reference.repository_name(), &digest, &[]);
    push_sig(
        &client,
        &reference.with_digest(digest.clone()),
        &[SigLayer::signed(&good, payload)],
    )
    .await;
    let good_key = good.public.to_str().unwrap();
    let other_key = other.public.to_str().unwrap();

    let ok = pkgr(&["render", "-b", &image, "--verify-key", good_key]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("signed.corp.com.1.0.1"));

    let refused = pkgr(&["render", "-b", &image, "--verify-key", other_key]);
    assert!(!refused.status.success());
    assert!(refused.stdout.is_empty(), "nothing rendered");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("sha256-{}.sig", digest.hex())) && stderr.contains("not signed"),
        "{stderr}"
    );

    // From a tarball that carries the signature, with the registry gone.
    let tar = dir.path().join("repo.tar");
    let copied = pkgr(&[
        "copy",
        "-b",
        &image,
        "--to-tar",
        tar.to_str().unwrap(),
        "--cosign-signatures",
    ]);
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    drop(registry);
    let from_tar = pkgr(&["render", "--tar", tar.to_str().unwrap(), "--verify-key", good_key]);
    assert!(
        from_tar.status.success(),
        "{}",
        String::from_utf8_lossy(&from_tar.stderr)
    );
    let refused = pkgr(&[
        "render",
        "--tar",
        tar.to_str().unwrap(),
        "--verify-key",
        other_key,
    ]);
    assert!(!refused.status.success() && refused.stdout.is_empty());
}
