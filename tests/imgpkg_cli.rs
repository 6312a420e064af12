//! The binary installed as `imgpkg` (a symlink of that name), driven as imgpkg's own end-to-end
//! tests drive imgpkg: global `--yes`/`--tty`/`--json`, `version`, `tag list`, `tag resolve`,
//! and imgpkg's error voice. The same calls as `pkgr` keep pkgr's voice.
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::registry::TestRegistry;

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// A temp dir holding `imgpkg` → the pkgr binary, plus a private HOME.
struct Installed {
    dir: tempfile::TempDir,
}

impl Installed {
    fn new() -> Installed {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_pkgr"), dir.path().join("imgpkg")).unwrap();
        Installed { dir }
    }

    fn imgpkg(&self) -> PathBuf {
        self.dir.path().join("imgpkg")
    }

    /// As imgpkg's e2e helper does: every call ends with `--yes`.
    fn run(&self, program: &Path, args: &[&str]) -> Run {
        let out = Command::new(program)
            .args(args)
            .arg("--yes")
            .env("HOME", self.dir.path())
            .env("DOCKER_CONFIG", self.dir.path().join(".docker"))
            .env_remove("IMGPKG_USERNAME")
            .env_remove("IMGPKG_PASSWORD")
            .env_remove("IMGPKG_TOKEN")
            .env_remove("PKGR_LOG")
            .output()
            .expect("run the binary");
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ok(&self, program: &Path, args: &[&str]) -> Run {
        let run = self.run(program, args);
        assert!(
            run.ok,
            "{} {args:?} failed:\nstdout: {}\nstderr: {}",
            program.display(),
            run.stdout,
            run.stderr
        );
        run
    }
}

fn pkgr() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pkgr"))
}

#[test]
fn version_in_each_voice() {
    let installed = Installed::new();
    let version = env!("CARGO_PKG_VERSION");
    let run = installed.ok(&installed.imgpkg(), &["version", "--tty"]);
    assert_eq!(run.stdout, format!("imgpkg version {version}\n\nSucceeded\n"));
    // Without a terminal or --tty, imgpkg leaves out its status lines.
    let run = installed.ok(&installed.imgpkg(), &["version"]);
    assert_eq!(run.stdout, format!("imgpkg version {version}\n"));
    let run = installed.ok(&pkgr(), &["version"]);
    assert_eq!(run.stdout, format!("pkgr version {version}\n\nSucceeded\n"));
}

#[test]
fn global_flags_are_accepted_before_and_after_the_subcommand() {
    let installed = Installed::new();
    for args in [
        &["--tty", "version"][..],
        &[
            "version",
            "-y",
            "--color=false",
            "--column",
            "name,digest",
            "--debug=false",
        ],
        &["--json=false", "--tty=true", "version"],
    ] {
        installed.ok(&installed.imgpkg(), args);
    }
}

#[test]
fn errors_speak_with_the_voice_of_the_program_name() {
    let installed = Installed::new();
    let out = installed.dir.path().join("out");
    let out = out.to_str().unwrap();
    let args = [
        "pull",
        "--tty",
        "-b",
        "127.0.0.1:1/x:1",
        "-o",
        out,
        "--image-is-bundle-check=false",
    ];
    let run = installed.run(&installed.imgpkg(), &args);
    assert!(!run.ok);
    assert_eq!(
        run.stderr,
        "imgpkg: Error: Cannot set --image-is-bundle-check while using -b flag\n"
    );
    let run = installed.run(&pkgr(), &args);
    assert!(!run.ok);
    assert_eq!(
        run.stderr,
        "pkgr: Cannot set --image-is-bundle-check while using -b flag\n"
    );
}

#[test]
fn unknown_flags_are_reported_in_each_voice() {
    let installed = Installed::new();
    let run = installed.run(&installed.imgpkg(), &["version", "--no-such-flag"]);
    assert!(!run.ok);
    assert!(
        run.stderr
            .starts_with("imgpkg: Error: unexpected argument '--no-such-flag'"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    let run = installed.run(&pkgr(), &["version", "--no-such-flag"]);
    assert!(!run.ok);
    assert!(run.stderr.contains("Usage: pkgr version"), "{}", run.stderr);
}

#[test]
fn json_output_holds_the_error_line() {
    let installed = Installed::new();
    let out = installed.dir.path().join("out");
    let run = installed.run(
        &installed.imgpkg(),
        &[
            "pull",
            "-b",
            "127.0.0.1:1/x:1",
            "-o",
            out.to_str().unwrap(),
            "--image-is-bundle-check=false",
            "--json",
        ],
    );
    assert!(!run.ok);
    assert_eq!(run.stderr, "");
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        doc["Lines"][0],
        "imgpkg: Error: Cannot set --image-is-bundle-check while using -b flag"
    );
}

/// Push two plain images and tag one of them; the internal `.imgpkg` tags exist too.
fn push_tagged(installed: &Installed, reg: &TestRegistry) -> (String, String, String) {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("a.txt"), b"tag list test").unwrap();
    let repo = reg.repo("apps/tags");
    let push = |tag: &str| {
        let run = installed.ok(
            &installed.imgpkg(),
            &[
                "push",
                "--tty",
                "-i",
                &format!("{repo}:{tag}"),
                "-f",
                src.path().to_str().unwrap(),
            ],
        );
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with("Pushed '"))
            .unwrap_or_else(|| panic!("no Pushed line in {}", run.stdout));
        line.split('@').nth(1).unwrap().trim_end_matches('\'').to_string()
    };
    let d1 = push("tag1");
    let d2 = push("tag2");
    (repo, d1, d2)
}

#[test]
fn tag_list_and_resolve_against_a_registry() {
    let reg = TestRegistry::start();
    let installed = Installed::new();
    let imgpkg = installed.imgpkg();
    let (repo, d1, d2) = push_tagged(&installed, &reg);
    assert_eq!(d1, d2, "same content, same digest");

    // imgpkg's e2e test reads `tag list --json` rows by name, with an empty digest.
    let run = installed.ok(&imgpkg, &["tag", "list", "-i", &repo, "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let rows = doc["Tables"][0]["Rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["tag1", "tag2"], "internal tags hidden: {}", run.stdout);
    assert!(rows.iter().all(|r| r.get("digest").is_none()), "{}", run.stdout);
    assert_eq!(doc["Tables"][0]["Content"], "tags");
    assert_eq!(doc["Lines"][0], "Succeeded");

    let run = installed.ok(&imgpkg, &["tag", "ls", "-i", &repo, "--digests=true", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    for row in doc["Tables"][0]["Rows"].as_array().unwrap() {
        assert_eq!(row["digest"], d1.as_str(), "{}", run.stdout);
    }

    let run = installed.ok(&imgpkg, &["tag", "list", "-i", &repo, "--imgpkg-internal-tags"]);
    let internal = format!("sha256-{}.imgpkg\t", d1.trim_start_matches("sha256:"));
    assert_eq!(run.stdout, format!("{internal}\ntag1\t\ntag2\t\n"));

    let run = installed.ok(&imgpkg, &["tag", "list", "-i", &repo, "--digests", "--tty"]);
    assert_eq!(
        run.stdout,
        format!("Tags\n\nName  Digest  \ntag1  {d1}  \ntag2  {d1}  \n\n2 tags\n\nSucceeded\n")
    );

    // tag resolve prints repo@digest with no newline, as imgpkg does; pkgr ends the line.
    let run = installed.ok(&imgpkg, &["tag", "resolve", "-i", &format!("{repo}:tag1")]);
    assert_eq!(run.stdout, format!("{repo}@{d1}"));
    let run = installed.ok(&pkgr(), &["tag", "resolve", "-i", &format!("{repo}:tag2")]);
    assert_eq!(run.stdout, format!("{repo}@{d1}\n\nSucceeded\n"));

    let run = installed.run(&imgpkg, &["tag", "resolve", "-i", &format!("{repo}:missing")]);
    assert!(!run.ok);
    assert!(run.stderr.starts_with("imgpkg: Error: "), "{}", run.stderr);
    assert!(run.stderr.contains("missing"), "{}", run.stderr);
}

#[test]
fn a_silent_registry_fails_within_the_response_header_timeout() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let open: Vec<_> = listener.incoming().collect();
        drop(open);
    });
    let installed = Installed::new();
    let started = std::time::Instant::now();
    let run = installed.run(
        &installed.imgpkg(),
        &[
            "tag",
            "resolve",
            "-i",
            &format!("{addr}/app:v1"),
            "--registry-response-header-timeout",
            "1s",
        ],
    );
    let elapsed = started.elapsed();
    assert!(!run.ok);
    assert!(
        elapsed < std::time::Duration::from_secs(3),
        "took {elapsed:?}; imgpkg gives up after about 1 s"
    );
    assert!(run.stderr.starts_with("imgpkg: Error: "), "{}", run.stderr);
    assert!(
        run.stderr.contains("--registry-response-header-timeout"),
        "{}",
        run.stderr
    );
}

#[test]
fn debug_dumps_requests_and_responses_without_credentials() {
    let reg = TestRegistry::start_tls_auth("alice", "s3cret-pw");
    let installed = Installed::new();
    let ca = reg.ca_pem.as_ref().unwrap().to_str().unwrap().to_string();
    let run = installed.run(
        &installed.imgpkg(),
        &[
            "tag",
            "list",
            "-i",
            &reg.repo("apps/nothing"),
            "--debug",
            "--registry-username",
            "alice",
            "--registry-password",
            "s3cret-pw",
            "--registry-ca-cert-path",
            &ca,
        ],
    );
    // The repository does not exist: the command fails, the dump shows why.
    assert!(!run.ok);
    let dump = &run.stderr;
    // go-containerregistry's shape, as imgpkg prints it.
    assert!(
        dump.contains(&format!(" --> GET https://{}/v2/\n", reg.host)),
        "{dump}"
    );
    assert!(
        dump.contains(&format!(" <-- 401 https://{}/v2/ (", reg.host)),
        "the ping's challenge: {dump}"
    );
    assert!(dump.contains("\r\nWww-Authenticate: Basic"), "{dump}");
    assert!(dump.contains("\r\nAuthorization: <redacted>\r\n"), "{dump}");
    assert!(
        !dump.contains("s3cret-pw") && !dump.contains("YWxpY2U6czNjcmV0LXB3"),
        "{dump}"
    );
    assert!(dump.contains("imgpkg: Error: "), "{dump}");

    // Without --debug, no dump.
    let run = installed.run(
        &installed.imgpkg(),
        &[
            "tag",
            "list",
            "-i",
            &reg.repo("apps/nothing"),
            "--registry-ca-cert-path",
            &ca,
        ],
    );
    assert!(!run.stderr.contains("-->"), "{}", run.stderr);
}
