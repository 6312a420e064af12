//! `copy --repo-based-tags` against real docker-registry instances: every copied image is tagged
//! with exactly imgpkg's repo-based string (nested paths dashed, long paths cut), directly and on
//! import from a tarball; and both issue-11 flags as a user passes them to the binary.
mod support;

use pkgr::registry::{Digest, Reference};
use pkgr::relocate::{CopyOptions, Destination, Source, TagStyle};
use support::registry::TestRegistry;
use support::signed_graph::*;

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
