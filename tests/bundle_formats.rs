//! imgpkg's config/manifest bytes and the lock documents (ImagesLock, BundleLock, ImageLocations).
use pkgr::bundle::BundleError;
use pkgr::bundle::image::{config_json, config_labels, manifest_json};
use pkgr::bundle::lock::{BundleLock, ImageLocation, ImageLocations, ImagesLock, LockedImage};
use pkgr::registry::{Digest, Reference};
use std::collections::BTreeMap;

const D1: &str = "sha256:4c8b96d4fffdfae29258d94a22ae4ad1fe36139d47288b8960d9958d1e63a9d0";
const D2: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

fn digest(s: &str) -> Digest {
    Digest::parse(s).unwrap()
}

#[test]
fn bundle_config_bytes_match_imgpkg() {
    let diff = digest(D1);
    let labels = BTreeMap::from([("dev.carvel.imgpkg.bundle".to_string(), "true".to_string())]);
    // The reference text (imgpkg-bundle-copy-tar.md §1.1) with the diff id filled in.
    let expected = format!(
        r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{{"author":"imgpkg","created":"0001-01-01T00:00:00Z","created_by":"imgpkg"}}],"os":"","rootfs":{{"type":"layers","diff_ids":["{D1}"]}},"config":{{"Labels":{{"dev.carvel.imgpkg.bundle":"true"}}}}}}"#
    );
    assert_eq!(String::from_utf8(config_json(&diff, &labels)).unwrap(), expected);
}

#[test]
fn plain_image_config_is_273_bytes_like_imgpkgs() {
    // The simple-app image in imgpkg's deterministic push test has a 273-byte config.
    let bytes = config_json(&digest(D1), &BTreeMap::new());
    assert!(
        String::from_utf8(bytes.clone())
            .unwrap()
            .ends_with(r#""config":{}}"#)
    );
    assert_eq!(bytes.len(), 273);
}

#[test]
fn labels_are_sorted_and_go_escaped() {
    let labels = BTreeMap::from([
        ("z".to_string(), "<a&b>".to_string()),
        ("a".to_string(), "quote\"back\\slash\nnl".to_string()),
    ]);
    let text = String::from_utf8(config_json(&digest(D1), &labels)).unwrap();
    assert!(
        text.ends_with(r#""config":{"Labels":{"a":"quote\"back\\slash\nnl","z":"\u003ca\u0026b\u003e"}}}"#),
        "{text}"
    );
    assert_eq!(config_labels(text.as_bytes()).unwrap(), labels);
}

#[test]
fn manifest_bytes_match_imgpkg_key_order() {
    let m = manifest_json((&digest(D1), 273), (&digest(D2), 4763));
    assert_eq!(
        String::from_utf8(m).unwrap(),
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":273,"digest":"{D1}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":4763,"digest":"{D2}"}}]}}"#
        )
    );
}

#[test]
fn config_labels_reads_any_docker_or_oci_config() {
    assert!(config_labels(br#"{"architecture":"amd64"}"#).unwrap().is_empty());
    assert!(config_labels(br#"{"config":null}"#).unwrap().is_empty());
    assert!(
        config_labels(br#"{"config":{"Labels":null,"Env":["A=1"]}}"#)
            .unwrap()
            .is_empty()
    );
    let l = config_labels(br#"{"config":{"Labels":{"dev.carvel.imgpkg.bundle":""}}}"#).unwrap();
    assert_eq!(l["dev.carvel.imgpkg.bundle"], "");
    for bad in [
        &b"not json"[..],
        br#"[]"#,
        br#"{"config":{"Labels":{"a":1}}}"#,
        br#"{"config":3}"#,
    ] {
        let err = config_labels(bad).unwrap_err();
        assert!(matches!(err, BundleError::Format { .. }), "{err}");
        assert!(err.to_string().contains("image config"), "{err}");
    }
}

const KBLD_LOCK: &str = "apiVersion: imgpkg.carvel.dev/v1alpha1
kind: ImagesLock
images:
- image: index.docker.io/dkalinin/k8s-simple-app@sha256:4c8b96d4fffdfae29258d94a22ae4ad1fe36139d47288b8960d9958d1e63a9d0
  annotations:
    kbld.carvel.dev/id: docker.io/dkalinin/k8s-simple-app
- image: library/nginx@sha256:0000000000000000000000000000000000000000000000000000000000000001
";

#[test]
fn images_lock_parses_and_normalises() {
    let lock = ImagesLock::parse(KBLD_LOCK.as_bytes()).unwrap();
    assert_eq!(lock.images.len(), 2);
    assert_eq!(
        lock.images[0].image,
        format!("index.docker.io/dkalinin/k8s-simple-app@{D1}")
    );
    assert_eq!(
        lock.images[0].annotations["kbld.carvel.dev/id"],
        "docker.io/dkalinin/k8s-simple-app"
    );
    assert_eq!(
        lock.images[1].image,
        format!("index.docker.io/library/nginx@{D2}")
    );
    assert!(lock.images[1].annotations.is_empty());
    assert_eq!(lock.images[1].digest().unwrap().as_str(), D2);
}

#[test]
fn images_lock_writes_exactly_what_imgpkg_writes() {
    let lock = ImagesLock {
        images: vec![
            LockedImage {
                image: format!("registry.corp.com/apps/bundle@{D1}"),
                annotations: BTreeMap::from([(
                    "kbld.carvel.dev/id".to_string(),
                    "docker.io/dkalinin/k8s-simple-app".to_string(),
                )]),
            },
            LockedImage {
                image: format!("registry.corp.com/apps/bundle@{D2}"),
                annotations: BTreeMap::new(),
            },
        ],
    };
    let expected = format!(
        "---\napiVersion: imgpkg.carvel.dev/v1alpha1\nimages:\n- annotations:\n    kbld.carvel.dev/id: docker.io/dkalinin/k8s-simple-app\n  image: registry.corp.com/apps/bundle@{D1}\n- image: registry.corp.com/apps/bundle@{D2}\nkind: ImagesLock\n"
    );
    assert_eq!(lock.to_yaml(), expected);
    assert_eq!(ImagesLock::parse(expected.as_bytes()).unwrap(), lock);
    // No images: the key is left out (omitempty), and it still parses.
    let empty = ImagesLock::default().to_yaml();
    assert_eq!(
        empty,
        "---\napiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\n"
    );
    assert_eq!(
        ImagesLock::parse(empty.as_bytes()).unwrap(),
        ImagesLock::default()
    );
}

#[test]
fn awkward_annotation_values_round_trip() {
    let values = [
        "true",
        "1.5",
        "123",
        "",
        "a: b",
        "#x",
        "- dash",
        "it's",
        "multi\nline",
        "null",
        "1:20",
        "@at",
    ];
    let lock = ImagesLock {
        images: vec![LockedImage {
            image: format!("index.docker.io/library/x@{D1}"),
            annotations: values
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("k{i}"), v.to_string()))
                .collect(),
        }],
    };
    let yaml = lock.to_yaml();
    assert!(
        yaml.contains("k0: \"true\"")
            && yaml.contains("k2: \"123\"")
            && yaml.contains("k7: it's")
            && yaml.contains("k4: 'a: b'"),
        "{yaml}"
    );
    assert_eq!(ImagesLock::parse(yaml.as_bytes()).unwrap(), lock);
}

#[test]
fn images_lock_is_strict() {
    let cases: &[(&str, &str)] = &[
        (
            "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n- image: nginx:1.2\n",
            "digest form",
        ),
        (
            "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n- image: nginx\n",
            "digest form",
        ),
        (
            "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n- annotations: {}\n",
            "digest form",
        ),
        (
            "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n- image: nginx@sha256:abc\n",
            "not a valid image reference",
        ),
        (
            "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nextra: 1\n",
            "not a valid ImagesLock",
        ),
        (
            "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages:\n- image: x\n  imgae: typo\n",
            "not a valid ImagesLock",
        ),
        ("apiVersion: v2\nkind: ImagesLock\n", "apiVersion"),
        (
            "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: BundleLock\n",
            "kind",
        ),
        ("apiVersion: [\n", "not a valid ImagesLock"),
    ];
    for (yaml, needle) in cases {
        let err = ImagesLock::parse(yaml.as_bytes()).unwrap_err();
        assert!(matches!(err, BundleError::Format { .. }), "{yaml}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(needle) && text.contains("ImagesLock"),
            "{yaml}: {text}"
        );
    }
}

#[test]
fn relocating_a_lock_keeps_order_and_annotations() {
    let lock = ImagesLock::parse(KBLD_LOCK.as_bytes()).unwrap();
    let repo = Reference::parse("127.0.0.1:5000/apps/bundle:v1").unwrap();
    let moved = lock.relocated_to(&repo).unwrap();
    assert_eq!(moved.images[0].image, format!("127.0.0.1:5000/apps/bundle@{D1}"));
    assert_eq!(moved.images[1].image, format!("127.0.0.1:5000/apps/bundle@{D2}"));
    assert_eq!(moved.images[0].annotations, lock.images[0].annotations);
}

#[test]
fn bundle_lock_round_trip_and_strictness() {
    let lock = BundleLock {
        image: format!("index.docker.io/library/my-app@{D1}"),
        tag: Some("v1.0".into()),
    };
    let yaml = lock.to_yaml();
    assert_eq!(
        yaml,
        format!(
            "---\napiVersion: imgpkg.carvel.dev/v1alpha1\nbundle:\n  image: index.docker.io/library/my-app@{D1}\n  tag: v1.0\nkind: BundleLock\n"
        )
    );
    assert_eq!(BundleLock::parse(yaml.as_bytes()).unwrap(), lock);
    let untagged = BundleLock {
        tag: None,
        ..lock.clone()
    };
    assert!(!untagged.to_yaml().contains("tag:"));
    assert_eq!(
        BundleLock::parse(untagged.to_yaml().as_bytes()).unwrap(),
        untagged
    );

    for (bad, needle) in [
        (
            "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: BundleLock\nbundle:\n  image: my-app:v1\n",
            "digest form",
        ),
        (
            "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: BundleLock\n",
            "bundle",
        ),
        (
            "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nbundle:\n  image: x\n",
            "kind",
        ),
        (
            "apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: BundleLock\nbundle:\n  image: x\n  extra: 1\n",
            "BundleLock",
        ),
    ] {
        let err = BundleLock::parse(bad.as_bytes()).unwrap_err();
        assert!(err.to_string().contains(needle), "{bad}: {err}");
    }
}

#[test]
fn image_locations_sorted_with_is_bundle_always_written() {
    let locations = ImageLocations {
        images: vec![
            ImageLocation {
                image: format!("index.docker.io/z/app@{D1}"),
                is_bundle: true,
            },
            ImageLocation {
                image: format!("index.docker.io/a/app@{D2}"),
                is_bundle: false,
            },
        ],
    };
    let yaml = locations.to_yaml();
    assert_eq!(
        yaml,
        format!(
            "---\napiVersion: imgpkg.carvel.dev/v1alpha1\nimages:\n- image: index.docker.io/a/app@{D2}\n  isBundle: false\n- image: index.docker.io/z/app@{D1}\n  isBundle: true\nkind: ImageLocations\n"
        )
    );
    let parsed = ImageLocations::parse(yaml.as_bytes()).unwrap();
    assert_eq!(parsed.images.len(), 2);
    assert_eq!(parsed.is_bundle(&digest(D1)), Some(true));
    assert_eq!(parsed.is_bundle(&digest(D2)), Some(false));
    let err =
        ImageLocations::parse(b"apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\n").unwrap_err();
    assert!(err.to_string().contains("ImageLocations"), "{err}");
    // A bundle without images: imgpkg writes the nil list as null (77 bytes in the layer).
    let empty = ImageLocations::default().to_yaml();
    assert_eq!(
        empty,
        "---\napiVersion: imgpkg.carvel.dev/v1alpha1\nimages: null\nkind: ImageLocations\n"
    );
    assert_eq!(empty.len(), 77);
    assert!(ImageLocations::parse(empty.as_bytes()).unwrap().images.is_empty());
}
