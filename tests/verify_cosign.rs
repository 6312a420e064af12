//! Cosign signature verification (`pkgr::verify`) against a real docker-registry, with keys
//! generated and signatures made in the test by the `openssl` CLI, pushed in cosign's layout:
//! every key type, several signatures of which one is good, a wrong key, a tampered payload, a
//! payload for another digest, no signature, a payload that is not simple-signing, annotations.
mod support;

use pkgr::registry::{Digest, Reference};
use pkgr::verify::{self, PublicKey, Rejection, SignatureSource, Subject, Verified, VerifyError};
use std::collections::BTreeMap;
use support::cosign::{KeyKind, KeyPair, SigLayer, keypair, payload, payload_for, push_sig};
use support::images::push_image;
use support::registry::TestRegistry;
use support::signed_graph::client;

fn public(keys: &[&KeyPair]) -> Vec<PublicKey> {
    keys.iter()
        .map(|k| PublicKey::from_file(&k.public).unwrap())
        .collect()
}

async fn check(
    subject: &Reference,
    keys: &[&KeyPair],
    annotations: &[(&str, &str)],
) -> Result<Verified, VerifyError> {
    let client = client();
    let repository = Reference::parse_repository(&subject.repository_name()).unwrap();
    let subject = Subject::in_registry(&repository, subject.digest().unwrap().clone());
    let annotations: BTreeMap<String, String> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    verify::verify(
        SignatureSource::Registry(&client),
        &subject,
        &public(keys),
        &annotations,
    )
    .await
}

fn rejections(result: Result<Verified, VerifyError>) -> (Vec<Rejection>, String) {
    match result {
        Err(VerifyError::NotVerified { attempts, subject }) => {
            let message = VerifyError::NotVerified {
                attempts: attempts.clone(),
                subject,
            }
            .to_string();
            (attempts.into_iter().map(|a| a.rejection).collect(), message)
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn image(reg: &TestRegistry, path: &str, content: &[u8]) -> Reference {
    let at = Reference::parse(&reg.repo(path)).unwrap();
    let digest = push_image(&client(), &at, content).await;
    at.with_digest(digest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_type_verifies_its_own_signature_among_several() {
    let reg = TestRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let subject = image(&reg, "apps/app:1", b"app layer").await;
    let kinds = [
        (KeyKind::P256, "ECDSA P-256"),
        (KeyKind::P384, "ECDSA P-384"),
        (KeyKind::Rsa, "RSA"),
        (KeyKind::RsaPss, "RSA"),
        (KeyKind::Ed25519, "Ed25519"),
    ];
    let keys: Vec<KeyPair> = kinds
        .iter()
        .enumerate()
        .map(|(i, (kind, _))| keypair(dir.path(), &format!("k{i}"), *kind))
        .collect();
    let layers: Vec<SigLayer> = keys
        .iter()
        .map(|k| SigLayer::signed(k, payload(&subject, &[])))
        .collect();
    let sig = push_sig(&client(), &subject, &layers).await;

    for (i, key) in keys.iter().enumerate() {
        let verified = check(&subject, &[key], &[]).await.unwrap();
        assert_eq!(verified.layer, i + 1, "{:?}", key.kind);
        assert_eq!(verified.key_kind, kinds[i].1);
        assert_eq!(verified.signature, sig);
        assert_eq!(verified.key, key.public.display().to_string());
        assert_eq!(
            verified.tag,
            format!("{}.sig", subject.digest().unwrap().dashed())
        );
    }

    // A key that signed none of them: each of the five is refused, in one error naming the
    // digest and the tag.
    let stranger = keypair(dir.path(), "stranger", KeyKind::P256);
    let (refused, message) = rejections(check(&subject, &[&stranger], &[]).await);
    assert_eq!(refused, vec![Rejection::WrongKey { keys: 1 }; 5]);
    let digest = subject.digest().unwrap();
    assert!(message.contains(digest.as_str()), "{message}");
    assert!(message.contains(&format!("{}.sig", digest.dashed())), "{message}");
    assert!(message.contains("signature 5: signed by none"), "{message}");

    // Several keys, one of which signed: it is the one reported.
    let verified = check(&subject, &[&stranger, &keys[4]], &[]).await.unwrap();
    assert_eq!((verified.layer, verified.key_kind), (5, "Ed25519"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_why_each_signature_failed() {
    let reg = TestRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let key = keypair(dir.path(), "cosign", KeyKind::P256);
    let subject = image(&reg, "apps/app:1", b"app layer").await;
    let other = image(&reg, "apps/app:2", b"another layer").await;
    let digest = subject.digest().unwrap().clone();
    let c = client();

    // No signature at all.
    let (refused, message) = rejections(check(&subject, &[&key], &[]).await);
    assert_eq!(refused, vec![Rejection::Missing]);
    assert!(message.contains(&format!("{}.sig", digest.dashed())), "{message}");

    // A payload for another digest, validly signed.
    push_sig(&c, &subject, &[SigLayer::signed(&key, payload(&other, &[]))]).await;
    let (refused, _) = rejections(check(&subject, &[&key], &[]).await);
    assert_eq!(
        refused,
        vec![Rejection::OtherDigest {
            signed: other.digest().unwrap().to_string()
        }]
    );

    // A tampered payload: the signature is of the original bytes.
    let original = payload(&subject, &[]);
    let mut tampered = SigLayer::signed(&key, original);
    tampered.payload = payload(&subject, &[("release", "forged")]);
    // Signed bytes that are not a simple-signing document.
    let not_json = SigLayer::signed(&key, b"not a payload".to_vec());
    push_sig(&c, &subject, &[tampered, not_json]).await;
    let (refused, message) = rejections(check(&subject, &[&key], &[]).await);
    assert_eq!(refused[0], Rejection::WrongKey { keys: 1 });
    assert!(
        matches!(&refused[1], Rejection::Malformed(m) if m.contains("simple-signing")),
        "{refused:?}"
    );
    assert!(
        message.contains("signature 1:") && message.contains("signature 2:"),
        "{message}"
    );

    // Among bad ones, one good signature is enough; required annotations are checked in it.
    let mut bad = SigLayer::signed(&key, payload(&subject, &[]));
    bad.signature = b"garbage".to_vec();
    let good = SigLayer::signed(&key, payload(&subject, &[("env", "prod")]));
    push_sig(&c, &subject, &[bad, good]).await;
    let verified = check(&subject, &[&key], &[("env", "prod")]).await.unwrap();
    assert_eq!(verified.layer, 2);
    let (refused, _) = rejections(check(&subject, &[&key], &[("env", "dev")]).await);
    assert_eq!(refused[0], Rejection::WrongKey { keys: 1 });
    assert!(
        matches!(&refused[1], Rejection::Annotation { key, wanted, .. } if key == "env" && wanted == "dev"),
        "{refused:?}"
    );

    // The digest check is exact: a payload naming the subject under another repository still
    // verifies (cosign checks the digest, not the identity), one naming a near digest does not.
    let elsewhere = payload_for("elsewhere/app", &digest, &[]);
    push_sig(&c, &subject, &[SigLayer::signed(&key, elsewhere)]).await;
    assert!(check(&subject, &[&key], &[]).await.is_ok());
    let near = Digest::parse(&format!("sha256:{}0", &digest.hex()[..63])).unwrap();
    push_sig(
        &c,
        &subject,
        &[SigLayer::signed(&key, payload_for("apps/app", &near, &[]))],
    )
    .await;
    let (refused, _) = rejections(check(&subject, &[&key], &[]).await);
    assert!(matches!(refused[0], Rejection::OtherDigest { .. }), "{refused:?}");
}
