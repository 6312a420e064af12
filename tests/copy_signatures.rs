//! `copy --cosign-signatures` against real docker-registry instances: the signatures of the
//! bundle, its images and a nested bundle's images arrive under their `sha256-<hex>.sig` tags
//! with unchanged digests, registry → registry and through a tarball; a lookup the registry
//! refuses fails the copy, naming the image.
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
    for (subject, sig) in &g.signatures {
        let entry = reader
            .images()
            .iter()
            .find(|i| &i.manifest.digest == sig)
            .unwrap_or_else(|| panic!("signature {sig} of {subject} not in the tarball"));
        assert_eq!(entry.tag.as_deref(), Some(sig_tag(subject).as_str()));
        assert!(entry.top_level);
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
