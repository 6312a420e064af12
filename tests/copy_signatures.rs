//! `copy --cosign-signatures` against real docker-registry instances: the signatures of the
//! bundle, its images and a nested bundle's images arrive under their `sha256-<hex>.sig` tags
//! with unchanged digests, registry → registry and through a tarball, where manifest.json records
//! them as imgpkg does (`"OrigRef":""`); a lookup the registry refuses fails the copy, naming it.
mod support;

use pkgr::bundle::tarball::TarballReader;
use pkgr::registry::{Digest, Reference};
use pkgr::relocate::{CopyOptions, Destination, Source};
use support::registry::TestRegistry;
use support::signed_graph::*;

/// Every signature of `g` is at `dst` under its `.sig` tag with its source digest, and also
/// carries imgpkg's tag; nothing is claimed for the unsigned image.
async fn assert_signatures_arrived(dst: &Reference, g: &Graph) {
    let tags = tags(dst).await;
    for (subject, sig) in &g.signatures {
        assert_eq!(
            digest_at(&dst.with_tag(&sig_tag(subject))).await.as_ref(),
            Some(sig),
            "signature of {subject} in {tags:?}"
        );
        assert!(tags.contains(&format!("{}.imgpkg", sig.dashed())), "{tags:?}");
    }
    assert!(!tags.contains(&sig_tag(&g.unsigned)), "{tags:?}");
    assert_eq!(tags.iter().filter(|t| t.ends_with(".sig")).count(), 4, "{tags:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_copied_registry_to_registry_only_when_asked() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let g = build(&client(), &src).await;

    let plain = Reference::parse_repository(&dst.repo("plain/bundle")).unwrap();
    let without = copy(
        Source::Bundle(g.root.clone()),
        Destination::Repository(plain.clone()),
        CopyOptions::default(),
    )
    .await;
    let plain_tags = tags(&plain).await;
    assert!(!plain_tags.iter().any(|t| t.ends_with(".sig")), "{plain_tags:?}");

    let signed = Reference::parse_repository(&dst.repo("signed/bundle")).unwrap();
    let with = copy(
        Source::Bundle(g.root.clone()),
        Destination::Repository(signed.clone()),
        with_signatures(),
    )
    .await;
    assert_eq!(with.images, without.images + 4);
    assert_signatures_arrived(&signed, &g).await;
    // The signature manifest is byte-identical (same digest by content, read back).
    let (subject, sig) = &g.signatures[0];
    let back = client()
        .get_manifest(&signed.with_tag(&sig_tag(subject)))
        .await
        .unwrap();
    assert_eq!(&back.digest, sig);
    assert_eq!(Digest::of(&back.bytes), *sig);
    // The rest of the copy is unchanged by the flag.
    assert_eq!(
        digest_at(&signed.with_tag("v1")).await,
        Some(g.root_digest.clone())
    );

    // A second copy finds every signature tag in place and writes nothing.
    let again = copy(
        Source::Bundle(g.root.clone()),
        Destination::Repository(signed.clone()),
        with_signatures(),
    )
    .await;
    assert_eq!(again.manifests_written, 0, "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_travel_through_a_tarball() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let g = build(&client(), &src).await;
    let dir = tempfile::tempdir().unwrap();

    let bare = dir.path().join("bare.tar");
    copy(
        Source::Bundle(g.root.clone()),
        Destination::Tarball {
            path: bare.clone(),
            resume: false,
        },
        CopyOptions::default(),
    )
    .await;
    let reader = TarballReader::open(&bare).unwrap();
    assert!(
        !reader
            .images()
            .iter()
            .any(|i| i.tag.as_deref().is_some_and(|t| t.ends_with(".sig")))
    );

    let tar = dir.path().join("signed.tar");
    copy(
        Source::Bundle(g.root.clone()),
        Destination::Tarball {
            path: tar.clone(),
            resume: false,
        },
        with_signatures(),
    )
    .await;
    // In manifest.json each signature is a top-level image carrying its .sig tag, as imgpkg
    // writes it; the root bundle keeps its own tag and label.
    let reader = TarballReader::open(&tar).unwrap();
    let raw = manifest_json_text(&tar);
    for (subject, sig) in &g.signatures {
        let entry = reader
            .images()
            .iter()
            .find(|i| &i.manifest.digest == sig)
            .unwrap_or_else(|| panic!("signature {sig} of {subject} not in the tarball"));
        assert_eq!(entry.tag.as_deref(), Some(sig_tag(subject).as_str()));
        assert!(entry.top_level);
        // imgpkg records no origin for a signature: its entry reads `"OrigRef":""`.
        assert_eq!(entry.orig_ref, "", "signature {sig}");
        let read_from = g.repo_of(subject).with_digest(sig.clone());
        assert!(
            raw.contains(&format!(r#""Refs":["{read_from}"],"#))
                && raw.contains(&format!(
                    r#""Tag":"{}","OrigRef":"","Labels":null}}"#,
                    sig_tag(subject)
                )),
            "signature {sig} of {subject} in {raw}"
        );
    }
    // Everything else keeps the reference it was reached through.
    for entry in reader
        .images()
        .iter()
        .filter(|i| i.tag.as_deref().is_none_or(|t| !t.ends_with(".sig")))
    {
        assert!(!entry.orig_ref.is_empty(), "{entry:?}");
    }
    assert_eq!(reader.root().unwrap().manifest.digest, g.root_digest);
    assert_eq!(reader.root().unwrap().tag.as_deref(), Some("v1"));

    // Importing needs neither the source nor the flag: what the tarball holds is imported.
    drop(src);
    let to = Reference::parse_repository(&dst.repo("airgap/bundle")).unwrap();
    copy(
        Source::Tarball(tar),
        Destination::Repository(to.clone()),
        CopyOptions::default(),
    )
    .await;
    assert_signatures_arrived(&to, &g).await;
    assert_eq!(digest_at(&to.with_tag("v1")).await, Some(g.root_digest.clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_copy_keeps_its_tag_and_its_signature_through_a_tarball() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let g = build(&client(), &src).await;
    let image = Reference::parse(&src.repo("src/apps/signed:1")).unwrap();
    let sig = &g.signatures[0].1;

    let direct = Reference::parse_repository(&dst.repo("direct/app")).unwrap();
    copy(
        Source::Image(image.clone()),
        Destination::Repository(direct.clone()),
        with_signatures(),
    )
    .await;
    assert_eq!(digest_at(&direct.with_tag("1")).await, Some(g.signed.clone()));
    assert_eq!(
        digest_at(&direct.with_tag(&sig_tag(&g.signed))).await.as_ref(),
        Some(sig)
    );

    // Two top-level entries (image and signature), no root bundle: both tags still arrive.
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("image.tar");
    copy(
        Source::Image(image),
        Destination::Tarball {
            path: tar.clone(),
            resume: false,
        },
        with_signatures(),
    )
    .await;
    // imgpkg records no origin for the image of an `-i` copy, nor for its signature.
    let raw = manifest_json_text(&tar);
    let reader = TarballReader::open(&tar).unwrap();
    assert_eq!(reader.images().len(), 2, "{raw}");
    assert!(reader.images().iter().all(|i| i.orig_ref.is_empty()), "{raw}");
    assert_eq!(raw.matches(r#""OrigRef":"""#).count(), 2, "{raw}");
    let via_tar = Reference::parse_repository(&dst.repo("tar/app")).unwrap();
    copy(
        Source::Tarball(tar),
        Destination::Repository(via_tar.clone()),
        CopyOptions::default(),
    )
    .await;
    assert_eq!(digest_at(&via_tar.with_tag("1")).await, Some(g.signed.clone()));
    assert_eq!(
        digest_at(&via_tar.with_tag(&sig_tag(&g.signed))).await.as_ref(),
        Some(sig)
    );
}

/// A registry that serves one image but answers 403 to any signature lookup: the copy fails,
/// naming the signature and how to copy without signatures, instead of silently leaving them out
/// (tests/copy_signature_lookups.rs has several refusals gathered into one error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_signature_lookup_fails_the_copy_naming_the_image() {
    use support::hostile::{HostileServer, Reply};
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#;
    let config_digest = Digest::of(config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{config_digest}"}},"layers":[]}}"#,
        support::images::DOCKER_MANIFEST,
        config.len()
    );
    let digest = Digest::of(manifest.as_bytes());
    let server = {
        let (manifest, digest, config_digest) =
            (manifest.clone(), digest.to_string(), config_digest.to_string());
        HostileServer::start(move |req| {
            let path = req.path();
            if path.ends_with(".sig") {
                Reply::with(
                    403,
                    &[("Content-Type", "application/json")],
                    r#"{"errors":[{"code":"DENIED","message":"no"}]}"#,
                )
            } else if path.ends_with(&format!("/manifests/{digest}")) {
                let headers = [
                    ("Content-Type", support::images::DOCKER_MANIFEST),
                    ("Docker-Content-Digest", digest.as_str()),
                ];
                let body = if req.method == "HEAD" {
                    Vec::new()
                } else {
                    manifest.clone().into_bytes()
                };
                Reply::Respond {
                    status: 200,
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    body,
                }
            } else if path.ends_with(&format!("/blobs/{config_digest}")) {
                Reply::ok(&[], config.to_vec())
            } else {
                Reply::status(404)
            }
        })
        .await
    };
    let image = Reference::parse(&server.repo("apps/app"))
        .unwrap()
        .with_digest(digest.clone());
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("app.tar");
    let destination = Destination::Tarball {
        path: tar.clone(),
        resume: false,
    };
    let err = pkgr::relocate::copy(
        &clients(),
        &Source::Image(image.clone()),
        &destination,
        &with_signatures(),
        std::sync::Arc::new(pkgr::relocate::Progress::quiet()),
    )
    .await
    .unwrap_err();
    let message = support_chain(&err);
    // Named by its signature tag, as imgpkg names what it could not retrieve.
    let sig_ref = image.with_tag(&sig_tag(&digest));
    assert!(message.contains(&format!("Image: '{sig_ref}'")), "{message}");
    assert!(message.contains("--cosign-signatures"), "{message}");
    assert!(
        message.contains("403") || message.to_lowercase().contains("denied"),
        "{message}"
    );
    // Without the flag nothing asks for signatures and the same copy succeeds.
    copy(Source::Image(image), destination, CopyOptions::default()).await;
    assert!(tar.exists());
}

/// The tarball's manifest.json as written.
fn manifest_json_text(tar: &std::path::Path) -> String {
    use std::io::Read;
    let mut archive = tar::Archive::new(std::fs::File::open(tar).unwrap());
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(entry.path().unwrap().to_str(), Some("manifest.json"));
    let mut text = String::new();
    entry.read_to_string(&mut text).unwrap();
    text
}

fn support_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
