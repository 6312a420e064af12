//! Signature lookups the registry refuses, against a real docker-registry behind a proxy that
//! refuses chosen paths: `copy --cosign-signatures` names every refused `.sig` lookup in one
//! error, in imgpkg's layout (`Unable to retrieve the following images:` / `Image: '…'` /
//! `Error: …`); `describe` lists a denied one as an entry carrying the error, as imgpkg does.
mod copy_proxy;
mod support;

use copy_proxy::Proxy;
use pkgr::registry::{Digest, Reference};
use pkgr::relocate::{self, CopyOptions, Destination, Progress, RelocateError, Source};
use std::sync::Arc;
use support::images::{push_bundle, push_image, push_signature};
use support::registry::TestRegistry;
use support::signed_graph::{client, clients, sig_tag, with_signatures};

/// A bundle (signed) of three signed images, all read through `proxy`.
struct Signed {
    bundle: Reference,
    images: Vec<Reference>,
}

async fn signed_bundle(proxy: &Proxy) -> Signed {
    let c = client();
    let at = |path: &str| Reference::parse(&format!("{}/{path}", proxy.host)).unwrap();
    let mut images = Vec::new();
    for name in ["a", "b", "c"] {
        let r = at(&format!("src/{name}:1"));
        let d = push_image(&c, &r, format!("layer of {name}").as_bytes()).await;
        let pinned = r.with_digest(d);
        push_signature(&c, &pinned).await;
        images.push(pinned);
    }
    let tagged = at("src/bundle:v1");
    let listed: Vec<String> = images.iter().map(|r| r.to_string()).collect();
    let d = push_bundle(&c, &tagged, &listed).await;
    let bundle = tagged.with_digest(d);
    push_signature(&c, &bundle).await;
    Signed { bundle, images }
}

fn sig_ref(subject: &Reference) -> String {
    subject.with_tag(&sig_tag(subject.digest().unwrap())).to_string()
}

async fn copy_err(source: &Reference, to: &TestRegistry, options: &CopyOptions) -> RelocateError {
    relocate::copy(
        &clients(),
        &Source::Bundle(source.clone()),
        &Destination::Repository(Reference::parse_repository(&to.repo("dst/bundle")).unwrap()),
        options,
        Arc::new(Progress::quiet()),
    )
    .await
    .unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refused_signature_lookup_is_named_in_one_error() {
    let registry = TestRegistry::start();
    let proxy = Proxy::start(&registry.host).await;
    let g = signed_bundle(&proxy).await;
    let (a, b, c) = (&g.images[0], &g.images[1], &g.images[2]);
    // a: 403, b: 401, c: 500; the bundle's own signature is found.
    for (subject, status) in [(a, 403), (b, 401), (c, 500)] {
        let tag = sig_tag(subject.digest().unwrap());
        proxy.refuse(&format!("/manifests/{tag}"), status);
    }
    let err = copy_err(&g.bundle, &registry, &with_signatures()).await;
    let RelocateError::Signatures(gathered) = &err else {
        panic!("not the gathered signature error: {err:?}");
    };
    assert_eq!(gathered.failures.len(), 3, "{err}");
    let text = err.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Unable to retrieve the following images:", "{text}");
    // Sorted by image; each named by its .sig tag, as imgpkg names it.
    assert_eq!(lines[1], format!("Image: '{}'", sig_ref(a)), "{text}");
    assert!(lines[2].starts_with("Error: access denied"), "{text}");
    assert_eq!(lines[3], format!("Image: '{}'", sig_ref(b)), "{text}");
    // imgpkg's sentence for any other failure, with go-containerregistry's GET wording.
    let b_tag = sig_tag(b.digest().unwrap());
    assert!(
        lines[4].starts_with(&format!(
            "Error: Fetching signature for image '{b}': GET http://{}/v2/src/b/manifests/{b_tag}: UNAUTHORIZED: refused by the test proxy",
            proxy.host
        )),
        "{text}"
    );
    assert_eq!(lines[5], format!("Image: '{}'", sig_ref(c)), "{text}");
    assert!(
        lines[6].starts_with(&format!("Error: Fetching signature for image '{c}': GET ")),
        "{text}"
    );
    assert!(lines[6].contains("UNKNOWN: refused by the test proxy"), "{text}");
    assert_eq!(
        lines[7], "(copy without --cosign-signatures to leave signatures behind)",
        "{text}"
    );
    assert_eq!(lines.len(), 8, "{text}");
    // Nothing was written: the error comes before any transfer.
    assert!(
        proxy.writes().iter().all(|w| !w.path.contains("/dst/")),
        "{:?}",
        proxy.writes()
    );

    // Without the flag nothing asks for signatures and the same copy succeeds.
    relocate::copy(
        &clients(),
        &Source::Bundle(g.bundle.clone()),
        &Destination::Repository(Reference::parse_repository(&registry.repo("dst/bundle")).unwrap()),
        &CopyOptions::default(),
        Arc::new(Progress::quiet()),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refused_lookup_is_reported_in_the_same_layout() {
    let registry = TestRegistry::start();
    let proxy = Proxy::start(&registry.host).await;
    let g = signed_bundle(&proxy).await;
    let bundle_digest: &Digest = g.bundle.digest().unwrap();
    proxy.refuse(&format!("/manifests/{}", sig_tag(bundle_digest)), 403);
    let err = copy_err(&g.bundle, &registry, &with_signatures()).await;
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "Unable to retrieve the following images:\nImage: '{}'\nError: access denied",
            sig_ref(&g.bundle)
        )),
        "{text}"
    );
}

/// Invoked as `imgpkg`, the gathered error is printed whole after `imgpkg: Error: `, one line
/// per image and reason, and the exit status is a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_imgpkg_the_gathered_error_keeps_its_lines() {
    let registry = TestRegistry::start();
    let proxy = Proxy::start(&registry.host).await;
    let g = signed_bundle(&proxy).await;
    for subject in [&g.images[0], &g.bundle] {
        proxy.refuse(&format!("/manifests/{}", sig_tag(subject.digest().unwrap())), 403);
    }
    let imgpkg = support::imgpkg::Installed::new();
    let run = imgpkg.fails(&[
        "copy",
        "-b",
        &g.bundle.to_string(),
        "--to-repo",
        &registry.repo("dst/bundle"),
        "--cosign-signatures",
    ]);
    let expected = format!(
        "imgpkg: Error: Unable to retrieve the following images:\nImage: '{}'\nError: access denied",
        sig_ref(&g.images[0])
    );
    assert!(run.stderr.starts_with(&expected), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "\nImage: '{}'\nError: access denied",
            sig_ref(&g.bundle)
        )),
        "{}",
        run.stderr
    );
}

/// `describe` lists a signature whose lookup the registry denies as an entry of its own, keyed
/// by the signature tag, with imgpkg's `access denied` instead of an image, and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_lists_a_denied_signature_as_an_error_entry() {
    let registry = TestRegistry::start();
    let proxy = Proxy::start(&registry.host).await;
    let g = signed_bundle(&proxy).await;
    let a = &g.images[0];
    proxy.refuse(&format!("/manifests/{}", sig_tag(a.digest().unwrap())), 403);
    let imgpkg = support::imgpkg::Installed::new();
    let bundle = g.bundle.to_string();

    let yaml = imgpkg.ok(&["describe", "-b", &bundle, "-o", "yaml"]).stdout;
    let body: serde_json::Value = serde_saphyr::from_str(yaml.split_once('\n').unwrap().1).unwrap();
    let images = body["content"]["images"].as_object().unwrap();
    assert_eq!(
        images.get(&sig_ref(a)),
        Some(&serde_json::json!({"error": "access denied", "imageType": "Signature"})),
        "{yaml}"
    );
    // The other images' signatures (and the bundle's) are listed as usual.
    let listed = images.values().filter(|i| i["imageType"] == "Signature").count();
    assert_eq!(listed, 4, "{yaml}");

    let text = imgpkg.ok(&["describe", "-b", &bundle]).stdout;
    assert!(text.contains("  - Image: \n    Type: Signature\n"), "{text}");
}
