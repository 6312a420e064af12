//! `imgpkg describe` (the binary installed as imgpkg) of relocated bundles against real
//! registries, whole output compared with imgpkg v0.43's: a nested bundle copied into the same
//! repository as its outer bundle (text and YAML), and a bundle copied out of a registry that is
//! gone by the time it is described (nothing may reach it).
mod support;

use pkgr::registry::{Client, ClientOptions, ManifestBody, Reference};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::imgpkg::Installed;
use support::registry::TestRegistry;

/// Reads the registry the way imgpkg's e2e helpers do, to know what describe should print.
struct Look {
    runtime: tokio::runtime::Runtime,
    client: Client,
}

impl Look {
    fn new() -> Look {
        Look {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: Client::new(ClientOptions::default()).unwrap(),
        }
    }

    /// The layer digests of the image at `reference`.
    fn layers(&self, reference: &str) -> Vec<String> {
        let reference = Reference::parse(reference).unwrap();
        let manifest = self
            .runtime
            .block_on(self.client.get_manifest(&reference))
            .unwrap();
        match manifest.parse().unwrap() {
            ManifestBody::Image(image) => image.layers.iter().map(|l| l.digest.to_string()).collect(),
            ManifestBody::Index(_) => panic!("{reference} is an index"),
        }
    }

    /// The digest `repo:tag` points at.
    fn digest(&self, repo: &str, tag: &str) -> String {
        let reference = Reference::parse(&format!("{repo}:{tag}")).unwrap();
        let head = self
            .runtime
            .block_on(self.client.head_manifest(&reference))
            .unwrap()
            .unwrap_or_else(|| panic!("{reference} is missing"));
        head.digest.to_string()
    }

    /// Sign `subject` (`repo@digest`) as cosign would; returns the signature's digest and tag.
    fn sign(&self, subject: &str) -> (String, String) {
        let reference = Reference::parse(subject).unwrap();
        let digest = self
            .runtime
            .block_on(support::images::push_signature(&self.client, &reference));
        let tag = format!("{}.sig", reference.digest().unwrap().dashed());
        (digest.to_string(), tag)
    }
}

/// `.imgpkg/images.yml` listing `images`, each with an optional `what is this` annotation.
fn images_lock(images: &[(&str, Option<&str>)]) -> String {
    let mut yaml = String::from("---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n");
    for (image, what) in images {
        yaml.push_str(&format!("- image: {image}\n"));
        if let Some(what) = what {
            yaml.push_str(&format!("  annotations:\n    what is this: {what}\n"));
        }
    }
    yaml
}

fn digest_of(reference: &str) -> &str {
    reference.split_once('@').unwrap().1
}

fn locations_tag(bundle_digest: &str) -> String {
    format!("{}.image-locations.imgpkg", bundle_digest.replace(':', "-"))
}

/// One entry of imgpkg's text layout, at `pad`; `origin` only for plain images.
fn text_entry(
    pad: &str,
    image: &str,
    kind: &str,
    origin: Option<&str>,
    layers: &[String],
    annotations: &[(&str, &str)],
) -> String {
    let mut out = format!("{pad}- Image: {image}\n{pad}  Type: {kind}\n");
    if let Some(origin) = origin {
        out.push_str(&format!("{pad}  Origin: {origin}\n"));
    }
    if !layers.is_empty() {
        out.push_str(&format!("{pad}  Layers:\n"));
        for layer in layers {
            out.push_str(&format!("{pad}    - Digest: {layer}\n"));
        }
    }
    if !annotations.is_empty() {
        out.push_str(&format!("{pad}  Annotations:\n"));
        for (key, value) in annotations {
            out.push_str(&format!("{pad}    {key}: {value}\n"));
        }
    }
    out
}

/// Entries keyed by digest, in the order pkgr prints them (imgpkg's is its map's, random).
fn in_digest_order(mut entries: Vec<(&str, String)>) -> String {
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries.into_iter().map(|(_, text)| text).collect()
}

/// The YAML document after the `sha:` line (without `--tty` nothing follows it, as in imgpkg).
/// Written as Go's writer does: digest keys unquoted, every reference on its own one line.
fn yaml_body(stdout: &str, sha: &str) -> Value {
    let body = stdout
        .strip_prefix(&format!("sha: {sha}\n"))
        .unwrap_or_else(|| panic!("no sha line first: {stdout}"));
    assert!(!body.contains('"') && !body.contains(">-"), "{stdout}");
    serde_saphyr::from_str(body).unwrap()
}

fn layers_yaml(layers: &[String]) -> Value {
    Value::Array(layers.iter().map(|d| json!({ "digest": d })).collect())
}

#[test]
fn a_nested_bundle_copied_into_the_same_repository_is_described_as_imgpkg_does() {
    let reg = TestRegistry::start();
    let imgpkg = Installed::new();
    let look = Look::new();
    let base = reg.repo("local-tests/test-repo");
    let img1 = imgpkg.push("-i", &format!("{base}-img1"), &[("app.txt", "the first image")]);
    let img2 = imgpkg.push("-i", &format!("{base}-img2"), &[("app.txt", "the second image")]);
    let nested_lock = images_lock(&[(&img1, None), (&img2, None)]);
    let nested = imgpkg.push(
        "-b",
        &format!("{base}-bundle-nested"),
        &[(".imgpkg/images.yml", &nested_lock)],
    );
    let outer_lock = images_lock(&[
        (&nested, Some("this is the nested bundle")),
        (&img1, Some("this is just an image")),
    ]);
    let outer = imgpkg.push(
        "-b",
        &format!("{base}-bundle-outer"),
        &[(".imgpkg/images.yml", &outer_lock)],
    );
    let dst = reg.repo("local-tests/test-relocation-repo");
    imgpkg.ok(&["copy", "-b", &outer, "--to-repo", &dst]);

    let (outer_digest, nested_digest) = (digest_of(&outer), digest_of(&nested));
    let (img1_digest, img2_digest) = (digest_of(&img1), digest_of(&img2));
    let at = |digest: &str| format!("{dst}@{digest}");
    let nested_locations = look.digest(&dst, &locations_tag(nested_digest));
    let outer_locations = look.digest(&dst, &locations_tag(outer_digest));
    let layers = |digest: &str| look.layers(&at(digest));

    let out = imgpkg.ok(&["describe", "--bundle", &at(outer_digest)]).stdout;
    let nested_entries = in_digest_order(vec![
        (
            img1_digest,
            text_entry(
                "    ",
                &at(img1_digest),
                "Image",
                Some(&img1),
                &layers(img1_digest),
                &[],
            ),
        ),
        (
            img2_digest,
            text_entry(
                "    ",
                &at(img2_digest),
                "Image",
                Some(&img2),
                &layers(img2_digest),
                &[],
            ),
        ),
        (
            &nested_locations,
            text_entry(
                "    ",
                &at(&nested_locations),
                "Internal",
                None,
                &layers(&nested_locations),
                &[],
            ),
        ),
    ]);
    let outer_entries = in_digest_order(vec![
        (
            img1_digest,
            text_entry(
                "  ",
                &at(img1_digest),
                "Image",
                Some(&img1),
                &layers(img1_digest),
                &[("what is this", "this is just an image")],
            ),
        ),
        (
            &outer_locations,
            text_entry(
                "  ",
                &at(&outer_locations),
                "Internal",
                None,
                &layers(&outer_locations),
                &[],
            ),
        ),
    ]);
    let expected = format!(
        "Bundle SHA: {outer_digest}\n\nImages:\n{}    Images:\n{nested_entries}{outer_entries}",
        text_entry(
            "  ",
            &at(nested_digest),
            "Bundle",
            Some(&nested),
            &layers(nested_digest),
            &[("what is this", "this is the nested bundle")],
        ),
    );
    assert_eq!(out, expected);

    let out = imgpkg
        .ok(&["describe", "--bundle", &at(outer_digest), "-o", "yaml"])
        .stdout;
    let image = |digest: &str, origin: &str, kind: &str| json!({ "image": at(digest), "imageType": kind, "layers": layers_yaml(&layers(digest)), "origin": origin });
    let mut just_an_image = image(img1_digest, &img1, "Image");
    just_an_image["annotations"] = json!({ "what is this": "this is just an image" });
    let expected = json!({
        "content": {
            "bundles": {
                nested_digest: {
                    "annotations": { "what is this": "this is the nested bundle" },
                    "content": { "images": {
                        img1_digest: image(img1_digest, &img1, "Image"),
                        img2_digest: image(img2_digest, &img2, "Image"),
                        &nested_locations: image(&nested_locations, &at(&nested_locations), "Internal"),
                    }},
                    "image": at(nested_digest),
                    "layers": layers_yaml(&layers(nested_digest)),
                    "metadata": {},
                    "origin": nested,
                }
            },
            "images": {
                img1_digest: just_an_image,
                &outer_locations: image(&outer_locations, &at(&outer_locations), "Internal"),
            },
        },
        "image": at(outer_digest),
        "layers": layers_yaml(&layers(outer_digest)),
        "metadata": {},
        "origin": at(outer_digest),
    });
    assert_eq!(yaml_body(&out, outer_digest), expected, "{out}");
}

/// A port that once served the original registry: it accepts connections, counts them and
/// closes them at once, so a describe that reached for an original would both fail and be seen.
struct Tripwire {
    hits: Arc<AtomicUsize>,
}

impl Tripwire {
    fn on(host: &str) -> Tripwire {
        let listener = TcpListener::bind(host).unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Tripwire { hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

#[test]
fn a_bundle_relocated_out_of_a_registry_that_is_gone_is_described_without_reaching_it() {
    let original = TestRegistry::start();
    let relocated = TestRegistry::start();
    let imgpkg = Installed::new();
    let look = Look::new();
    let base = original.repo("local-tests/test-repo");
    let img1 = imgpkg.push("-i", &format!("{base}-img1"), &[("app.txt", "a private image")]);
    let lock = images_lock(&[(&img1, None)]);
    let bundle = imgpkg.push("-b", &format!("{base}-bundle"), &[(".imgpkg/images.yml", &lock)]);
    let (img_sig, img_sig_tag) = look.sign(&img1);
    let (bundle_sig, bundle_sig_tag) = look.sign(&bundle);
    let dst = relocated.repo("local-tests/test-relocation-repo");
    imgpkg.ok(&[
        "copy",
        "--tty",
        "-b",
        &bundle,
        "--to-repo",
        &dst,
        "--cosign-signatures",
    ]);

    // The original registry goes away; its port now only counts who knocks.
    let original_host = original.host.clone();
    drop(original);
    let tripwire = Tripwire::on(&original_host);

    let (bundle_digest, img1_digest) = (digest_of(&bundle), digest_of(&img1));
    let at = |digest: &str| format!("{dst}@{digest}");
    let locations = look.digest(&dst, &locations_tag(bundle_digest));
    let layers = |digest: &str| look.layers(&at(digest));

    let out = imgpkg
        .ok(&["describe", "--bundle", &at(bundle_digest), "-o", "yaml"])
        .stdout;
    let signature = |digest: &str, tag: &str| {
        json!({ "annotations": { "tag": tag }, "image": at(digest), "imageType": "Signature",
                "layers": layers_yaml(&layers(digest)), "origin": at(digest) })
    };
    let expected = json!({
        "content": { "images": {
            img1_digest: { "image": at(img1_digest), "imageType": "Image",
                           "layers": layers_yaml(&layers(img1_digest)), "origin": img1 },
            &img_sig: signature(&img_sig, &img_sig_tag),
            &bundle_sig: signature(&bundle_sig, &bundle_sig_tag),
            &locations: { "image": at(&locations), "imageType": "Internal",
                          "layers": layers_yaml(&layers(&locations)), "origin": at(&locations) },
        }},
        "image": at(bundle_digest),
        "layers": layers_yaml(&layers(bundle_digest)),
        "metadata": {},
        "origin": at(bundle_digest),
    });
    assert_eq!(yaml_body(&out, bundle_digest), expected, "{out}");

    let out = imgpkg.ok(&["describe", "--bundle", &at(bundle_digest)]).stdout;
    let signature = |digest: &str, tag: &str| {
        text_entry(
            "  ",
            &at(digest),
            "Signature",
            None,
            &layers(digest),
            &[("tag", tag)],
        )
    };
    let entries = in_digest_order(vec![
        (
            img1_digest,
            text_entry(
                "  ",
                &at(img1_digest),
                "Image",
                Some(&img1),
                &layers(img1_digest),
                &[],
            ),
        ),
        (&img_sig, signature(&img_sig, &img_sig_tag)),
        (&bundle_sig, signature(&bundle_sig, &bundle_sig_tag)),
        (
            &locations,
            text_entry("  ", &at(&locations), "Internal", None, &layers(&locations), &[]),
        ),
    ]);
    assert_eq!(out, format!("Bundle SHA: {bundle_digest}\n\nImages:\n{entries}"));
    assert_eq!(tripwire.hits(), 0, "describe reached the original registry");

    // The tripwire does catch a describe that goes there.
    imgpkg.fails(&["describe", "--bundle", &bundle]);
    assert!(tripwire.hits() > 0, "the tripwire saw nothing");
}

#[test]
fn a_nested_bundles_signature_is_listed_in_both_bundles_as_imgpkg_does() {
    let reg = TestRegistry::start();
    let imgpkg = Installed::new();
    let look = Look::new();
    let base = reg.repo("local-tests/test-repo");
    let img = imgpkg.push("-i", &format!("{base}-img"), &[("app.txt", "an image")]);
    let nested_repo = format!("{base}-bundle-nested");
    let nested = imgpkg.push(
        "-b",
        &nested_repo,
        &[(".imgpkg/images.yml", &images_lock(&[(&img, None)]))],
    );
    let outer = imgpkg.push(
        "-b",
        &format!("{base}-bundle-outer"),
        &[(".imgpkg/images.yml", &images_lock(&[(&nested, None)]))],
    );
    let (sig, sig_tag) = look.sign(&nested);

    // imgpkg looks up the signature of every entry of a bundle's ImagesLock, nested bundles
    // included, and the nested bundle looks up its own: the signature shows at both levels.
    let out = imgpkg.ok(&["describe", "-b", &outer, "--layers=false"]).stdout;
    let signature = |pad: &str| {
        text_entry(
            pad,
            &format!("{nested_repo}@{sig}"),
            "Signature",
            None,
            &[],
            &[("tag", &sig_tag)],
        )
    };
    let nested_entries = in_digest_order(vec![
        (
            digest_of(&img),
            text_entry("    ", &img, "Image", Some(&img), &[], &[]),
        ),
        (&sig, signature("    ")),
    ]);
    let expected = format!(
        "Bundle SHA: {}\n\nImages:\n{}    Images:\n{nested_entries}{}",
        digest_of(&outer),
        text_entry("  ", &nested, "Bundle", Some(&nested), &[], &[]),
        signature("  "),
    );
    assert_eq!(out, expected);
}
