//! Installed as `imgpkg`, every error line holds imgpkg's sentence whole, as imgpkg's own
//! end-to-end tests and users' scripts match it; pkgr's extra detail comes after it. Against a
//! real registry (docker-registry on loopback).
mod support;

use bytes::Bytes;
use pkgr::registry::{Client, ClientOptions, MEDIA_OCI_INDEX, Reference};
use support::imgpkg::Installed;
use support::registry::TestRegistry;

const COPY_BUNDLE_WITH_I: &str =
    "Expected bundle flag when copying a bundle (hint: Use -b instead of -i for bundles)";
const PULL_BUNDLE_WITH_I: &str =
    "Expected bundle flag when pulling a bundle (hint: Use -b instead of -i for bundles)";
const IMAGE_WITH_B: &str =
    "Expected bundle image but found plain image (hint: Did you use -i instead of -b?)";
const INDEX: &str = "Unable to pull non-images, such as image indexes. (hint: provide a specific digest to the image instead)";

/// imgpkg's error (`imgpkg: Error: ` and the lines of its layout that follow) holds `sentence`
/// whole, on one line.
fn assert_error_line(output: &str, sentence: &str) {
    let start = output
        .find("imgpkg: Error: ")
        .unwrap_or_else(|| panic!("no error in {output:?}"));
    assert!(
        output[start..].lines().any(|l| l.contains(sentence)),
        "{:?} does not hold {sentence:?} whole on a line",
        &output[start..]
    );
}

#[test]
fn bundle_and_image_flag_mistakes_in_imgpkgs_words() {
    let reg = TestRegistry::start();
    let installed = Installed::new();
    let image = installed.push("-i", &reg.repo("msg/image:v1"), &[("a.txt", "plain")]);
    let bundle = installed.push("-b", &reg.repo("msg/bundle:v1"), &[("b.txt", "bundle")]);
    let tar = installed.path("out.tar");
    let to_repo = reg.repo("msg/copied");

    for destination in [["--to-tar", tar.as_str()], ["--to-repo", to_repo.as_str()]] {
        let mut args = vec!["copy", "-i", bundle.as_str()];
        args.extend(destination);
        let run = installed.fails(&args);
        assert_error_line(&run.stderr, COPY_BUNDLE_WITH_I);
        // pkgr's detail follows the sentence: which reference is the bundle.
        assert!(
            run.stderr
                .contains(&format!("{COPY_BUNDLE_WITH_I}: {bundle} is a bundle")),
            "{}",
            run.stderr
        );

        let mut args = vec!["copy", "-b", image.as_str()];
        args.extend(destination);
        let run = installed.fails(&args);
        assert_error_line(&run.stderr, IMAGE_WITH_B);
    }
    // By tag too (the reference shown is the digest the tag resolved to).
    let run = installed.fails(&["copy", "-i", &reg.repo("msg/bundle:v1"), "--to-tar", &tar]);
    assert_error_line(&run.stderr, COPY_BUNDLE_WITH_I);
    assert!(!std::path::Path::new(&tar).exists(), "nothing written");

    let out = installed.path("pulled");
    let run = installed.fails(&["pull", "-i", &bundle, "-o", &out]);
    assert_error_line(&run.stderr, PULL_BUNDLE_WITH_I);
    let run = installed.fails(&["pull", "-b", &image, "-o", &out]);
    assert_error_line(&run.stderr, IMAGE_WITH_B);

    // As pkgr the same sentences are there too, in pkgr's layout.
    let run = installed.run(&installed.pkgr(), &["copy", "-i", &bundle, "--to-tar", &tar]);
    assert!(!run.ok);
    assert!(
        run.stderr.starts_with(&format!("pkgr: {COPY_BUNDLE_WITH_I}")),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_index_is_refused_in_imgpkgs_words() {
    let reg = TestRegistry::start();
    let installed = Installed::new();
    let image = installed.push("-i", &reg.repo("msg/platform:v1"), &[("a.txt", "linux")]);
    let client = Client::new(ClientOptions::default()).unwrap();
    let child = client
        .get_manifest(&Reference::parse(&image).unwrap())
        .await
        .unwrap();
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MEDIA_OCI_INDEX}","manifests":[{{"mediaType":"{}","size":{},"digest":"{}","platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        child.media_type,
        child.bytes.len(),
        child.digest
    );
    let index_ref = Reference::parse(&reg.repo("msg/platform:index")).unwrap();
    let index_digest = client
        .put_manifest(&index_ref, MEDIA_OCI_INDEX, Bytes::from(index))
        .await
        .unwrap();
    let by_digest = format!("{}@{index_digest}", reg.repo("msg/platform"));
    let out = installed.path("pulled");
    for reference in [by_digest.as_str(), &reg.repo("msg/platform:index")] {
        let run = installed.fails(&["pull", "--tty", "-i", reference, "-o", &out]);
        assert_error_line(&run.output(), INDEX);
        assert!(
            run.stderr
                .contains(&format!("{INDEX}: {by_digest} is an image index")),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn a_missing_image_is_reported_as_imgpkg_reports_it() {
    let reg = TestRegistry::start();
    let installed = Installed::new();
    // imgpkg's e2e test: `^imgpkg: Error: Fetching image:\n\s+GET http://…/v2/nothing/manifests/
    // latest:\n\s+<CODE>:\n?\s+<message>`, on stdout and stderr together, nothing before it.
    let run = installed.fails(&["pull", "--tty", "-i", &reg.repo("nothing"), "-o", "/dev/null"]);
    assert_eq!(run.stdout, "");
    let expected = format!(
        "imgpkg: Error: Fetching image:\n  GET http://{}/v2/nothing/manifests/latest:\n    MANIFEST_UNKNOWN: manifest unknown; map[Tag:latest]",
        reg.host
    );
    assert!(
        run.output().starts_with(&expected),
        "{}\ndoes not start with\n{expected}",
        run.output()
    );
    // pkgr's detail after imgpkg's words.
    assert!(
        run.stderr.trim_end().ends_with(&format!(
            "({} does not exist in the registry)",
            reg.repo("nothing:latest")
        )),
        "{}",
        run.stderr
    );

    // A bundle, and both kinds of copy, start from the same fetch, with the same words.
    let tar = installed.path("out.tar");
    let missing = reg.repo("nothing:v2");
    for args in [
        &["pull", "-b", &missing, "-o", &installed.path("o")][..],
        &["copy", "-i", &missing, "--to-tar", &tar],
        &["copy", "-b", &missing, "--to-repo", &reg.repo("copied")],
    ] {
        let run = installed.fails(args);
        let expected = format!(
            "imgpkg: Error: Fetching image:\n  GET http://{}/v2/nothing/manifests/v2:\n    MANIFEST_UNKNOWN: manifest unknown",
            reg.host
        );
        assert!(run.stderr.starts_with(&expected), "{args:?}: {}", run.stderr);
    }

    // As pkgr: pkgr's own words.
    let run = installed.run(
        &installed.pkgr(),
        &["pull", "-i", &reg.repo("nothing"), "-o", &installed.path("o")],
    );
    assert!(!run.ok);
    assert!(
        run.stderr.starts_with(&format!(
            "pkgr: fetching the manifest of {}:latest",
            reg.repo("nothing")
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("GET http"), "{}", run.stderr);
}

#[test]
fn a_registry_that_does_not_answer_times_out_in_gos_words() {
    // Accepts connections and never answers, like the slow registry of imgpkg's e2e test.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let open: Vec<_> = listener.incoming().collect();
        drop(open);
    });
    let installed = Installed::new();
    let image = format!("{addr}/random-image@sha256:{}", "1".repeat(64));
    let run = installed.fails(&[
        "pull",
        "--registry-response-header-timeout",
        "1s",
        "-i",
        &image,
        "-o",
        &installed.path("o"),
    ]);
    let output = run.output();
    assert_error_line(&output, "timeout awaiting response headers");
    assert!(
        output.contains(&format!(
            "Get \"http://{addr}/v2/\": net/http: timeout awaiting response headers"
        )) || output.contains(&format!(
            "Get \"https://{addr}/v2/\": net/http: timeout awaiting response headers"
        )),
        "{output}"
    );
    assert!(output.starts_with("imgpkg: Error: Fetching image:\n"), "{output}");
    // What pkgr adds comes last: what to look at.
    assert!(output.contains("--registry-response-header-timeout"), "{output}");
}

#[test]
fn debug_dumps_requests_and_responses_in_go_containerregistrys_shape() {
    let reg = TestRegistry::start();
    let installed = Installed::new();
    let nothing = reg.repo("nothing");
    let run = installed.fails(&["pull", "--tty", "-i", &nothing, "--debug", "-o", "/dev/null"]);
    let output = run.output();
    // imgpkg's e2e test looks for a request header of Go's dump.
    assert!(output.contains("Accept-Encoding"), "{output}");
    let url = format!("http://{}/v2/nothing/manifests/latest", reg.host);
    let logged = |text: &str| {
        output.lines().any(|l| {
            // Go's log prefix: `2006/01/02 15:04:05 `.
            let (stamp, rest) = l.split_at(l.len().min(20));
            stamp.len() == 20
                && stamp.as_bytes()[4] == b'/'
                && stamp.as_bytes()[10] == b' '
                && rest.starts_with(text)
        })
    };
    assert!(logged(&format!("--> GET {url}")), "{output}");
    assert!(
        logged("GET /v2/nothing/manifests/latest HTTP/1.1")
            && output.contains("GET /v2/nothing/manifests/latest HTTP/1.1\r\nHost: "),
        "{output}"
    );
    assert!(
        output.contains(&format!("\r\nHost: {}\r\n", reg.host)),
        "{output}"
    );
    assert!(logged(&format!("<-- 404 {url} (")), "{output}");
    assert!(logged("HTTP/1.1 404 Not Found"), "{output}");
    assert!(output.contains("HTTP/1.1 404 Not Found\r\n"), "{output}");
    assert!(
        output.contains("\r\nDocker-Distribution-Api-Version: registry/2.0\r\n"),
        "{output}"
    );
    // The error still ends the output, in imgpkg's words.
    assert!(
        run.stderr.contains("imgpkg: Error: Fetching image:\n  GET "),
        "{output}"
    );

    // Without --debug, or with --debug=false: nothing of it.
    for extra in [&[][..], &["--debug=false"]] {
        let mut args = vec!["pull", "--tty", "-i", nothing.as_str(), "-o", "/dev/null"];
        args.extend(extra);
        let run = installed.fails(&args);
        let output = run.output();
        for dumped in ["-->", "<--", "Accept-Encoding", "HTTP/1.1"] {
            assert!(!output.contains(dumped), "{args:?}: {output}");
        }
        assert!(output.starts_with("imgpkg: Error: Fetching image:"), "{output}");
    }
}

/// An image with one ordinary layer and one non-distributable layer (OCI's uncompressed
/// restricted layer, as imgpkg's e2e test makes it) whose URL is the blob in the same
/// repository, pushed there too.
async fn push_image_with_a_non_distributable_layer(client: &Client, reference: &Reference) -> String {
    let repo = Reference::parse_repository(&reference.repository_name()).unwrap();
    let own = b"an ordinary layer".to_vec();
    let foreign = vec![7u8; 1024];
    let own_digest = client
        .push_blob_bytes(&repo, Bytes::from(own.clone()))
        .await
        .unwrap();
    let foreign_digest = client
        .push_blob_bytes(&repo, Bytes::from(foreign.clone()))
        .await
        .unwrap();
    let url = format!(
        "http://{}/v2/{}/blobs/{foreign_digest}",
        reference.registry(),
        reference.repository()
    );
    let config = r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = client.push_blob_bytes(&repo, Bytes::from(config)).await.unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":{},"digest":"{config_digest}"}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar","size":{},"digest":"{foreign_digest}","urls":["{url}"]}},{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":{},"digest":"{own_digest}"}}]}}"#,
        config.len(),
        foreign.len(),
        own.len()
    );
    client
        .put_manifest(
            reference,
            "application/vnd.oci.image.manifest.v1+json",
            Bytes::from(manifest),
        )
        .await
        .unwrap();
    foreign_digest.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tarball_without_non_distributable_layers_cannot_import_them() {
    let source = TestRegistry::start();
    let destination = TestRegistry::start();
    let installed = Installed::new();
    let client = Client::new(ClientOptions::default()).unwrap();
    let image = Reference::parse(&source.repo("repo/airgapped-image:latest")).unwrap();
    let foreign = push_image_with_a_non_distributable_layer(&client, &image).await;
    let tar = installed.path("image.tar");

    // To a tarball without the flag: the layer is left out, with imgpkg's warning.
    let run = installed.ok(&["copy", "--tty", "-i", &image.to_string(), "--to-tar", &tar]);
    assert!(
        run.output()
            .contains("Skipped the followings layer(s) due to it being non-distributable"),
        "{}",
        run.output()
    );
    // Air-gapped: the source is gone.
    drop(source);

    let started = std::time::Instant::now();
    let run = installed.fails(&[
        "copy",
        "--tar",
        &tar,
        "--to-repo",
        &destination.repo("include-non-distributable-layers"),
        "--include-non-distributable-layers",
    ]);
    let entry = format!("{}.tar.gz", foreign.replace(':', "-"));
    // imgpkg's e2e test: `Error: file sha256\-.*\.tar\.gz not found in tar.*(hint: This may be
    // because when copying to a tarball, the --include-non-distributable-layers flag should
    // have been provided.)`, all on one line.
    let line = run
        .output()
        .lines()
        .find(|l| l.contains("Error: "))
        .unwrap_or_else(|| panic!("no error line: {}", run.output()))
        .to_string();
    assert!(
        line.starts_with(&format!(
            "imgpkg: Error: file {entry} not found in tar (hint: This may be because when copying to a tarball, the --include-non-distributable-layers flag should have been provided.)"
        )),
        "{line}"
    );
    assert!(line.contains("the layer is non-distributable"), "{line}");
    // At once: no attempt after the first.
    assert!(!run.output().contains("retrying"), "{}", run.output());
    assert!(!run.output().contains("attempt"), "{}", run.output());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Without the flag the same tarball imports, the layer left out again.
    installed.ok(&[
        "copy",
        "--tar",
        &tar,
        "--to-repo",
        &destination.repo("without-the-flag"),
    ]);
}
