//! imgpkg's root `--version`, its `completion` command, and the flag combinations it refuses up
//! front, driven through the binary installed as `imgpkg` (a symlink) and as `pkgr`.
use std::path::{Path, PathBuf};
use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A temp dir holding `imgpkg` → the pkgr binary, used as HOME too (nothing of the user's).
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

    fn run(&self, program: &Path, args: &[&str]) -> Run {
        let out = Command::new(program)
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("DOCKER_CONFIG", self.dir.path().join(".docker"))
            .env_remove("PKGR_LOG")
            .output()
            .expect("run the binary");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn pkgr() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pkgr"))
}

#[test]
fn root_version_flag_prints_what_the_version_command_prints() {
    let installed = Installed::new();
    let version = env!("CARGO_PKG_VERSION");
    for flag in ["--version", "-v"] {
        // cobra answers before imgpkg configures its UI: no `Succeeded`, even with --tty.
        for extra in [&[][..], &["--tty"][..]] {
            let args: Vec<&str> = std::iter::once(flag).chain(extra.iter().copied()).collect();
            let run = installed.run(&installed.imgpkg(), &args);
            assert_eq!(
                (run.code, run.stdout.as_str()),
                (0, format!("imgpkg version {version}\n").as_str()),
                "{args:?}"
            );
        }
        let run = installed.run(&pkgr(), &[flag]);
        assert_eq!(run.code, 0);
        assert_eq!(run.stdout, installed.run(&pkgr(), &["version"]).stdout);
        assert!(
            run.stdout.starts_with(&format!("pkgr version {version}\n")),
            "{}",
            run.stdout
        );
    }
    // Bare, imgpkg prints its help and succeeds; pkgr asks for a subcommand.
    let run = installed.run(&installed.imgpkg(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("Usage: imgpkg"), "{}", run.stdout);
    let run = installed.run(&pkgr(), &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("a subcommand is required"), "{}", run.stderr);
    // The flag belongs to the root alone.
    let run = installed.run(&installed.imgpkg(), &["--version", "version"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("imgpkg: Error: --version (-v) cannot be used with a subcommand"),
        "{}",
        run.stderr
    );
}

#[test]
fn completion_scripts_parse_and_complete_the_commands() {
    let installed = Installed::new();
    for (program, name) in [(installed.imgpkg(), "imgpkg"), (pkgr(), "pkgr")] {
        let run = installed.run(&program, &["completion", "bash"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(!run.stdout.contains("Succeeded"), "the script is all of stdout");
        let script = installed.dir.path().join(format!("{name}.bash"));
        std::fs::write(&script, &run.stdout).unwrap();
        let syntax = Command::new("bash").arg("-n").arg(&script).output().unwrap();
        assert!(
            syntax.status.success(),
            "bash -n: {}",
            String::from_utf8_lossy(&syntax.stderr)
        );
        // Ask the completion function what follows `<name> co` and `<name> push --pre`.
        let complete = |words: &str, cword: usize| {
            let probe = format!(
                "source {script}; COMP_WORDS=({words}); COMP_CWORD={cword}; \
                 _{name} {name} \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; \
                 echo \"${{COMPREPLY[@]}}\"",
                script = script.display()
            );
            let out = Command::new("bash").arg("-c").arg(probe).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let mut words: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            words.sort();
            words
        };
        assert_eq!(
            complete(&format!("{name} co"), 1),
            ["completion", "controller", "copy"]
        );
        assert_eq!(
            complete(&format!("{name} push --pre"), 2),
            ["--preserve-permissions"]
        );

        for shell in ["zsh", "fish", "powershell"] {
            let run = installed.run(&program, &["completion", shell]);
            assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
            for sub in ["push", "pull", "copy", "describe", "version"] {
                assert!(run.stdout.contains(sub), "{shell} script of {name} lacks {sub}");
            }
            assert!(run.stdout.contains(name), "{shell} script names {name}");
        }
    }
    let run = installed.run(&installed.imgpkg(), &["completion", "tcsh"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("invalid value 'tcsh'"), "{}", run.stderr);
}

#[test]
fn refused_combinations_get_imgpkgs_messages_before_any_network_access() {
    let installed = Installed::new();
    // Registries on a port nothing listens on: a refusal must come before any request.
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "copy",
                "-b",
                "127.0.0.1:1/a:1",
                "-i",
                "127.0.0.1:1/b:1",
                "--to-repo",
                "127.0.0.1:1/c",
            ],
            "Expected either --lock, --bundle (-b), --image (-i), or --tar as a source",
        ),
        (
            &["copy", "--to-repo", "127.0.0.1:1/c"],
            "Expected either --lock, --bundle (-b), --image (-i), or --tar as a source",
        ),
        (
            &["copy", "-b", "127.0.0.1:1/a:1"],
            "Expected either --to-tar or --to-repo",
        ),
        (
            &[
                "copy",
                "-b",
                "127.0.0.1:1/a:1",
                "--to-repo",
                "127.0.0.1:1/c",
                "--to-tar",
                "x.tar",
            ],
            "Expected either --to-tar or --to-repo",
        ),
        (
            &["copy", "--tar", "in.tar", "--to-tar", "out.tar"],
            "Cannot use tar source (--tar) with tar destination (--to-tar)",
        ),
        (
            &[
                "copy",
                "-b",
                "127.0.0.1:1/a:1",
                "--to-tar",
                "out.tar",
                "--lock-output",
                "l.yml",
            ],
            "Cannot output lock file with tar destination",
        ),
        (
            &["pull", "-b", "127.0.0.1:1/a:1"],
            "required flag(s) \"output\" not set",
        ),
        (
            &["pull", "-b", "127.0.0.1:1/a:1", "-o", "."],
            "Disallowed output directory (trying to avoid accidental deletion)",
        ),
        (
            &[
                "pull",
                "-b",
                "127.0.0.1:1/a:1",
                "-i",
                "127.0.0.1:1/b:1",
                "-o",
                "out",
            ],
            "Expected only one of image, bundle, or lock",
        ),
        (
            &["pull", "-o", "out"],
            "Expected either image or bundle reference",
        ),
        (
            &["pull", "-i", "127.0.0.1:1/a:1", "-r", "-o", "out"],
            "Cannot use --recursive (-r) flag when pulling a bundle",
        ),
        (
            &[
                "pull",
                "-b",
                "127.0.0.1:1/a:1",
                "--image-is-bundle-check=false",
                "-o",
                "out",
            ],
            "Cannot set --image-is-bundle-check while using -b flag",
        ),
        (
            &[
                "push",
                "-b",
                "127.0.0.1:1/a:1",
                "-i",
                "127.0.0.1:1/b:1",
                "-f",
                ".",
            ],
            "Expected only one of image or bundle",
        ),
        (&["push", "-f", "."], "Expected either image or bundle"),
        (
            &[
                "push",
                "-i",
                "127.0.0.1:1/a:1",
                "-f",
                ".",
                "--lock-output",
                "l.yml",
            ],
            "Lock output is not compatible with image, use bundle for lock output",
        ),
        (
            &[
                "push",
                "-b",
                "127.0.0.1:1/a:1",
                "-i",
                "127.0.0.1:1/b:1",
                "-f",
                ".",
                "-l",
                "dev.carvel.imgpkg.bundle=x",
            ],
            "label 'dev.carvel.imgpkg.bundle' is reserved and cannot be overriden. Please use a different key",
        ),
        (
            &["describe", "-b", "127.0.0.1:1/a:1", "-o", "json"],
            "--output-type can only have the following values: [text, yaml]",
        ),
    ];
    for (args, message) in cases {
        let run = installed.run(&installed.imgpkg(), args);
        assert_eq!(
            (run.code, run.stderr.as_str(), run.stdout.as_str()),
            (1, format!("imgpkg: Error: {message}\n").as_str(), ""),
            "imgpkg {args:?}"
        );
        // As pkgr, the same command lines fail too, in pkgr's words (`push -i --lock-output` is
        // pkgr's extension: it writes an ImagesLock, so there it is the registry that fails).
        let run = installed.run(&pkgr(), args);
        assert_ne!(run.code, 0, "pkgr {args:?} was accepted");
        assert!(
            run.stderr.starts_with("pkgr: ") || run.stderr.starts_with("error: "),
            "pkgr {args:?}: {}",
            run.stderr
        );
    }
    // With --json the refusal is the document's line, as imgpkg's UI prints it.
    let run = installed.run(&installed.imgpkg(), &["copy", "-b", "127.0.0.1:1/a:1", "--json"]);
    assert_eq!((run.code, run.stderr.as_str()), (1, ""));
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        doc["Lines"][0],
        "imgpkg: Error: Expected either --to-tar or --to-repo"
    );
}
