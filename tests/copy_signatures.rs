//! `copy --cosign-signatures` and `copy --repo-based-tags` against real docker-registry
//! instances: signatures of the bundle, its images and a nested bundle's images arrive under
//! their `sha256-<hex>.sig` tags with unchanged digests, registry → registry and through a
//! tarball; repo-based tags are exactly imgpkg's strings.
mod support;

use pkgr::bundle::tarball::TarballReader;
use pkgr::registry::{Client, ClientOptions, Digest, Reference};
use pkgr::relocate::{self, Clients, CopyOptions, CopySummary, Destination, Progress, Source, TagStyle};
use std::sync::Arc;
use support::images::{push_bundle, push_image, push_signature};
use support::registry::TestRegistry;

/// A long nested source path: its repo-based tag keeps only the last 49 characters.
const LONG_PATH: &str =
    "src/a-very-long-organisation-name/with/several/nested/levels/of/image-repositories/img";

fn client() -> Client {
    Client::new(ClientOptions::default()).unwrap()
}

fn clients() -> Clients {
    Clients {
        source: client(),
        destination: client(),
    }
}

/// root bundle (signed) → signed image, unsigned image, nested bundle (signed) → image at a long
/// nested path (signed). `signatures` maps each signed digest to its signature's digest.
struct Graph {
    root: Reference,
    root_digest: Digest,
    signed: Digest,
    unsigned: Digest,
    nested_bundle: Digest,
    deep: Digest,
    signatures: Vec<(Digest, Digest)>,
}

async fn build(client: &Client, reg: &TestRegistry) -> Graph {
    let r = |path: &str| Reference::parse(&reg.repo(path)).unwrap();
    let signed_ref = r("src/apps/signed:1");
    let signed = push_image(client, &signed_ref, b"signed image layer").await;
    let unsigned = push_image(client, &r("src/apps/plain:1"), b"unsigned image layer").await;
    let deep_ref = r(&format!("{LONG_PATH}:1"));
    let deep = push_image(client, &deep_ref, b"deep image layer").await;
    let nested_ref = r("src/nested/bundle:1");
    let nested_bundle = push_bundle(
        client,
        &nested_ref,
        &[deep_ref.with_digest(deep.clone()).to_string()],
    )
    .await;
    let root = r("src/root:v1");
    let root_digest = push_bundle(
        client,
        &root,
        &[
            signed_ref.with_digest(signed.clone()).to_string(),
            r("src/apps/plain:1").with_digest(unsigned.clone()).to_string(),
            nested_ref.with_digest(nested_bundle.clone()).to_string(),
        ],
    )
    .await;
    let mut signatures = Vec::new();
    for (at, digest) in [
        (&signed_ref, &signed),
        (&deep_ref, &deep),
        (&nested_ref, &nested_bundle),
        (&root, &root_digest),
    ] {
        let sig = push_signature(client, &at.with_digest(digest.clone())).await;
        signatures.push((digest.clone(), sig));
    }
    Graph {
        root,
        root_digest,
        signed,
        unsigned,
        nested_bundle,
        deep,
        signatures,
    }
}

async fn copy(source: Source, destination: Destination, options: CopyOptions) -> CopySummary {
    relocate::copy(
        &clients(),
        &source,
        &destination,
        &options,
        Arc::new(Progress::quiet()),
    )
    .await
    .unwrap()
}

fn with_signatures() -> CopyOptions {
    CopyOptions {
        cosign_signatures: true,
        ..CopyOptions::default()
    }
}

fn sig_tag(digest: &Digest) -> String {
    format!("{}.sig", digest.dashed())
}

async fn digest_at(reference: &Reference) -> Option<Digest> {
    client().head_manifest(reference).await.unwrap().map(|h| h.digest)
}

async fn tags(repo: &Reference) -> Vec<String> {
    client().list_tags(repo).await.unwrap()
}

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

/// imgpkg's repo-based tag for `digest` first reached through a repository at `path`.
fn repo_tag(path: &str, digest: &Digest) -> String {
    format!("{path}-{}.imgpkg", digest.dashed())
}

async fn assert_repo_based_tags(dst: &Reference, g: &Graph) {
    let tags = tags(dst).await;
    let sig_of_signed = &g.signatures[0].1;
    let expected = [
        repo_tag("src-root", &g.root_digest),
        repo_tag("src-apps-signed", &g.signed),
        repo_tag("src-apps-plain", &g.unsigned),
        repo_tag("src-nested-bundle", &g.nested_bundle),
        // 86 characters of path, cut to the last 49.
        repo_tag("h-several-nested-levels-of-image-repositories-img", &g.deep),
        // A signature is named after the repository it was found in.
        repo_tag("src-apps-signed", sig_of_signed),
    ];
    for tag in &expected {
        assert!(tags.contains(tag), "{tag} missing in {tags:?}");
        assert!(tag.len() <= 128);
    }
    assert_eq!(digest_at(&dst.with_tag(&expected[4])).await, Some(g.deep.clone()));
    // They replace imgpkg's digest tags; the locations images and kept tags are as before.
    for d in [&g.root_digest, &g.signed, &g.unsigned, &g.nested_bundle, &g.deep] {
        assert!(!tags.contains(&format!("{}.imgpkg", d.dashed())), "{tags:?}");
    }
    for bundle in [&g.root_digest, &g.nested_bundle] {
        assert!(
            tags.contains(&format!("{}.image-locations.imgpkg", bundle.dashed())),
            "{tags:?}"
        );
    }
    assert_eq!(digest_at(&dst.with_tag("v1")).await, Some(g.root_digest.clone()));
    assert_eq!(
        digest_at(&dst.with_tag(&sig_tag(&g.signed))).await.as_ref(),
        Some(sig_of_signed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repo_based_tags_name_the_source_repositories_directly_and_through_a_tarball() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let g = build(&client(), &src).await;
    let options = CopyOptions {
        tag_style: TagStyle::RepoBased,
        cosign_signatures: true,
        ..CopyOptions::default()
    };

    let direct = Reference::parse_repository(&dst.repo("direct/bundle")).unwrap();
    copy(
        Source::Bundle(g.root.clone()),
        Destination::Repository(direct.clone()),
        options.clone(),
    )
    .await;
    assert_repo_based_tags(&direct, &g).await;
    // The relocated bundle still resolves every image from its new repository.
    let pulled = pkgr::bundle::describe::describe(&client(), &direct.with_tag("v1"), Default::default())
        .await
        .unwrap();
    assert!(
        pulled
            .images
            .values()
            .all(|i| i.image.starts_with(&direct.repository_name()))
    );

    // The tag is derived on import, from the OrigRef the tarball records.
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("bundle.tar");
    copy(
        Source::Bundle(g.root.clone()),
        Destination::Tarball {
            path: tar.clone(),
            resume: false,
        },
        with_signatures(),
    )
    .await;
    drop(src);
    let via_tar = Reference::parse_repository(&dst.repo("tar/bundle")).unwrap();
    copy(
        Source::Tarball(tar),
        Destination::Repository(via_tar.clone()),
        options,
    )
    .await;
    assert_repo_based_tags(&via_tar, &g).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_flags_reach_the_copy() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let g = build(&client(), &src).await;
    let run = |args: Vec<String>| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pkgr"))
            .arg("copy")
            .args(args)
            .env("DOCKER_CONFIG", "/nonexistent-pkgr-test")
            .output()
            .unwrap()
    };
    let image = src.repo("src/apps/signed:1");
    let to = Reference::parse_repository(&dst.repo("cli/app")).unwrap();
    let out = tokio::task::spawn_blocking({
        let (image, to) = (image.clone(), to.repository_name());
        move || {
            run(vec![
                "-i".into(),
                image,
                "--to-repo".into(),
                to,
                "--cosign-signatures".into(),
                "--repo-based-tags".into(),
            ])
        }
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let at_to = tags(&to).await;
    assert!(
        at_to.contains(&repo_tag("src-apps-signed", &g.signed)),
        "{at_to:?}"
    );
    assert!(at_to.contains(&sig_tag(&g.signed)), "{at_to:?}");

    // Go-style `=false` turns them off, as an imgpkg script may spell it.
    let off = Reference::parse_repository(&dst.repo("cli/off")).unwrap();
    let out = tokio::task::spawn_blocking({
        let to = off.repository_name();
        move || {
            run(vec![
                "-i".into(),
                image,
                "--to-repo".into(),
                to,
                "--cosign-signatures=false".into(),
                "--repo-based-tags=false".into(),
            ])
        }
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let at_off = tags(&off).await;
    assert!(
        at_off.contains(&format!("{}.imgpkg", g.signed.dashed())),
        "{at_off:?}"
    );
    assert!(!at_off.iter().any(|t| t.ends_with(".sig")), "{at_off:?}");
}
