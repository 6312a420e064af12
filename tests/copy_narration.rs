//! How the binary invoked as `imgpkg` narrates a copy of a signed bundle on stdout, against a
//! real docker-registry: the exports listed sorted by reference (signatures among them),
//! `Tagging images`, and `done: file '…' (<duration>)` for every file of a tarball.
mod support;

use support::registry::TestRegistry;
use support::signed_graph::*;

/// As imgpkg, the copy lists what it exports sorted by reference, signatures among them, and
/// ends with imgpkg's `Tagging images`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_imgpkg_the_exports_are_listed_sorted_signatures_included() {
    let src = TestRegistry::start();
    let dst = TestRegistry::start();
    let g = build(&client(), &src).await;
    let imgpkg = support::imgpkg::Installed::new();
    let root = g.root.with_digest(g.root_digest.clone());
    let run = imgpkg.ok(&[
        "copy",
        "--tty",
        "-b",
        &root.to_string(),
        "--to-repo",
        &dst.repo("dst/bundle"),
        "--cosign-signatures",
    ]);
    let exported: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("copy | will export "))
        .collect();
    let mut sorted = exported.clone();
    sorted.sort();
    assert_eq!(exported, sorted, "{}", run.stdout);
    // The root, every image of every bundle (nested ones included) and the four signatures.
    assert_eq!(exported.len(), 9, "{}", run.stdout);
    for (subject, sig) in &g.signatures {
        let at = g.repo_of(subject).with_digest(sig.clone()).to_string();
        assert!(exported.contains(&at.as_str()), "{at} in {}", run.stdout);
    }
    assert!(
        run.stdout.ends_with("copy | Tagging images\n\nSucceeded\n"),
        "{}",
        run.stdout
    );
}

/// As imgpkg, a copy to a tarball says `done: file '…' (<Go duration>)` once for every file it
/// writes: manifest.json, then each layer (the signatures' payloads included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_imgpkg_every_file_of_the_tarball_is_announced() {
    let src = TestRegistry::start();
    let g = build(&client(), &src).await;
    let imgpkg = support::imgpkg::Installed::new();
    let tar = imgpkg.path("signed.tar");
    let root = g.root.with_digest(g.root_digest.clone());
    let run = imgpkg.ok(&[
        "copy",
        "--tty",
        "-b",
        &root.to_string(),
        "--to-tar",
        &tar,
        "--cosign-signatures",
    ]);
    let announced: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("copy | done: file '"))
        .map(|rest| {
            let (name, duration) = rest.split_once("' (").unwrap();
            assert!(
                duration.ends_with("s)") && duration.starts_with(|c: char| c.is_ascii_digit()),
                "{rest}"
            );
            name
        })
        .collect();
    let mut archive = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    let files: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(announced.first(), Some(&"manifest.json"), "{}", run.stdout);
    let mut announced_sorted: Vec<String> = announced.iter().map(|s| s.to_string()).collect();
    announced_sorted.sort();
    let mut files_sorted = files.clone();
    files_sorted.sort();
    assert_eq!(announced_sorted, files_sorted, "{}", run.stdout);
    let writing = run.stdout.find("copy | writing layers...\n").unwrap();
    assert!(
        writing < run.stdout.find("copy | done: file").unwrap(),
        "{}",
        run.stdout
    );
}
