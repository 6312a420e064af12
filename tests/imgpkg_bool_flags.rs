//! Every boolean flag of every imgpkg command pkgr implements reads its value as cobra does:
//! bare is true, `=true`/`=false` (and Go's other spellings, `=1`, `=F`, …) set it, anything
//! else is refused. Checked on the command line as the binary parses it in each voice, then
//! end to end for flags whose effect shows, against a real registry.
mod support;

use pkgr::cli::command;
use pkgr::cli::voice::Voice;
use support::imgpkg::Installed;
use support::registry::TestRegistry;

/// A command line that parses, for each command: (words before the flag, words after it).
const COMMANDS: &[(&str, &[&str])] = &[
    ("push", &["push", "-i", "reg.io/app:v1", "-f", "."]),
    ("pull", &["pull", "-i", "reg.io/app:v1", "-o", "out"]),
    ("copy", &["copy", "-i", "reg.io/app:v1", "--to-tar", "out.tar"]),
    ("describe", &["describe", "-b", "reg.io/bundle:v1"]),
    ("tag list", &["tag", "list", "-i", "reg.io/app"]),
    ("tag resolve", &["tag", "resolve", "-i", "reg.io/app:v1"]),
    ("version", &["version"]),
];

const GLOBAL: &[(&str, &str, bool)] = &[
    ("--tty", "tty", false),
    ("--color", "color", true),
    ("--json", "json", false),
    ("--yes", "yes", false),
    ("--debug", "debug", false),
];

const REGISTRY: &[(&str, &str, bool)] = &[
    ("--registry-verify-certs", "registry_verify_certs", true),
    ("--registry-insecure", "registry_insecure", false),
    ("--registry-anon", "registry_anon", false),
];

/// The boolean flags of one command (beyond the global ones): (flag, clap id, imgpkg's default).
fn own_flags(name: &str) -> Vec<(&'static str, &'static str, bool)> {
    let own: &[(&str, &str, bool)] = match name {
        "push" => &[("--preserve-permissions", "preserve_permissions", false)],
        "pull" => &[
            ("--recursive", "recursive", false),
            ("--image-is-bundle-check", "image_is_bundle_check", true),
        ],
        "copy" => &[
            (
                "--include-non-distributable-layers",
                "include_non_distributable_layers",
                false,
            ),
            ("--repo-based-tags", "repo_based_tags", false),
            ("--resume", "resume", false),
            ("--cosign-signatures", "cosign_signatures", false),
        ],
        "describe" => &[
            ("--layers", "layers", true),
            ("--cosign-artifacts", "cosign_artifacts", true),
        ],
        "tag list" => &[
            ("--digests", "digests", false),
            ("--imgpkg-internal-tags", "imgpkg_internal_tags", false),
        ],
        _ => &[],
    };
    let mut flags = own.to_vec();
    if name != "version" {
        flags.extend_from_slice(REGISTRY);
    }
    flags
}

/// The value of `id` after parsing `args` as `voice` (Err: clap's message).
fn parsed(voice: Voice, args: &[&str], id: &str) -> Result<bool, String> {
    let program = voice.program();
    let matches = command(voice)
        .try_get_matches_from(std::iter::once(program).chain(args.iter().copied()))
        .map_err(|e| e.to_string())?;
    let mut m = &matches;
    while let Some((_, sub)) = m.subcommand() {
        m = sub;
    }
    Ok(*m
        .get_one::<bool>(id)
        .unwrap_or_else(|| panic!("{id} has no value in {args:?}")))
}

fn with_flag<'a>(base: &[&'a str], flag: &'a str) -> Vec<&'a str> {
    let mut args = base.to_vec();
    args.push(flag);
    args
}

#[test]
fn every_boolean_flag_takes_gos_values() {
    let mut checked = 0;
    for (name, base) in COMMANDS {
        let flags = own_flags(name).into_iter().chain(GLOBAL.iter().copied());
        for (flag, id, default) in flags {
            let voice = Voice::Imgpkg;
            assert_eq!(parsed(voice, base, id), Ok(default), "{name}: {flag} absent");
            assert_eq!(
                parsed(voice, &with_flag(base, flag), id),
                Ok(true),
                "{name}: bare {flag}"
            );
            for (value, expected) in [
                ("true", true),
                ("false", false),
                ("1", true),
                ("0", false),
                ("T", true),
                ("F", false),
                ("TRUE", true),
                ("False", false),
            ] {
                let given = format!("{flag}={value}");
                assert_eq!(
                    parsed(voice, &with_flag(base, &given), id),
                    Ok(expected),
                    "{name}: {given}"
                );
                // pkgr reads the same words.
                assert_eq!(
                    parsed(Voice::Pkgr, &with_flag(base, &given), id),
                    Ok(expected),
                    "pkgr {name}: {given}"
                );
            }
            // The last of repeated flags wins, as with Go's flag package.
            let (on, off) = (format!("{flag}=true"), format!("{flag}=false"));
            let twice = with_flag(&with_flag(base, &on), &off);
            assert_eq!(parsed(voice, &twice, id), Ok(false), "{name}: {twice:?}");
            let refused = parsed(voice, &with_flag(base, &format!("{flag}=yes")), id).unwrap_err();
            assert!(
                refused.contains("strconv.ParseBool: parsing \"yes\": invalid syntax"),
                "{name}: {flag}=yes: {refused}"
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked}");
}

#[test]
fn short_boolean_flags_take_values_too() {
    let pull = ["pull", "-b", "reg.io/bundle:v1", "-o", "out"];
    assert_eq!(
        parsed(Voice::Imgpkg, &with_flag(&pull, "-r"), "recursive"),
        Ok(true)
    );
    assert_eq!(
        parsed(Voice::Imgpkg, &with_flag(&pull, "-r=false"), "recursive"),
        Ok(false)
    );
    assert_eq!(
        parsed(Voice::Imgpkg, &with_flag(&pull, "-r=true"), "recursive"),
        Ok(true)
    );
    assert_eq!(parsed(Voice::Imgpkg, &["version", "-y=false"], "yes"), Ok(false));
    assert_eq!(parsed(Voice::Imgpkg, &["version", "-y"], "yes"), Ok(true));
    // Global flags before the command too.
    assert_eq!(
        parsed(Voice::Imgpkg, &["--tty=false", "version"], "tty"),
        Ok(false)
    );
    assert_eq!(parsed(Voice::Imgpkg, &["--json=1", "version"], "json"), Ok(true));
    // The root's --version.
    assert_eq!(parsed(Voice::Imgpkg, &["--version=true"], "version"), Ok(true));
    assert_eq!(parsed(Voice::Imgpkg, &["-v=false"], "version"), Ok(false));
}

#[test]
fn describe_lists_layers_unless_asked_not_to_as_imgpkg() {
    let describe = ["describe", "-b", "reg.io/bundle:v1"];
    assert_eq!(parsed(Voice::Imgpkg, &describe, "layers"), Ok(true));
    assert_eq!(
        parsed(Voice::Imgpkg, &with_flag(&describe, "--layers=false"), "layers"),
        Ok(false)
    );
    // pkgr saves the request per image unless asked.
    assert_eq!(parsed(Voice::Pkgr, &describe, "layers"), Ok(false));
}

/// The digest of a push of `dir` with `extra` flags.
fn pushed(installed: &Installed, reference: &str, dir: &str, extra: &[&str]) -> String {
    let mut args = vec!["push", "--tty", "-i", reference, "-f", dir];
    args.extend(extra);
    let run = installed.ok(&args);
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("Pushed '"))
        .unwrap_or_else(|| panic!("no Pushed line in {}", run.stdout));
    line.rsplit('@')
        .next()
        .unwrap()
        .trim_end_matches('\'')
        .to_string()
}

#[test]
fn preserve_permissions_true_and_false_push_what_they_say() {
    use std::os::unix::fs::PermissionsExt as _;
    let reg = TestRegistry::start();
    let installed = Installed::new();
    let dir = installed.path("content");
    std::fs::create_dir(&dir).unwrap();
    let file = std::path::Path::new(&dir).join("shared.yml");
    std::fs::write(&file, "a: 1\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let repo = reg.repo("flags/perms:v1");

    let normalised = pushed(&installed, &repo, &dir, &[]);
    let kept = pushed(&installed, &repo, &dir, &["--preserve-permissions"]);
    assert_ne!(normalised, kept, "0640 is normalised to 0600 unless preserved");
    assert_eq!(
        pushed(&installed, &repo, &dir, &["--preserve-permissions=true"]),
        kept
    );
    assert_eq!(
        pushed(&installed, &repo, &dir, &["--preserve-permissions=false"]),
        normalised
    );

    // Pulled back (under umask 022), the file has the mode that was pushed: 0640 kept, or
    // 0600 spread to group and other as imgpkg's pull does (0666), less the umask.
    for (digest, mode) in [(&kept, 0o640), (&normalised, 0o644)] {
        let out = installed.path(&format!("pulled-{mode:o}"));
        let pulled = std::process::Command::new("sh")
            .arg("-c")
            .arg("umask 022 && exec \"$0\" \"$@\"")
            .arg(installed.imgpkg())
            .args([
                "pull",
                "-i",
                &format!("{}@{digest}", reg.repo("flags/perms")),
                "-o",
                &out,
                "--registry-insecure=false",
                "--registry-anon=true",
            ])
            .env("HOME", installed.dir.path())
            .output()
            .unwrap();
        assert!(pulled.status.success(), "{pulled:?}");
        let file = std::fs::metadata(std::path::Path::new(&out).join("shared.yml")).unwrap();
        assert_eq!(file.permissions().mode() & 0o777, mode, "{digest}");
    }
}

#[test]
fn copy_and_tag_flags_with_values_run_against_a_registry() {
    let reg = TestRegistry::start();
    let installed = Installed::new();
    let image = installed.push("-i", &reg.repo("flags/app:v1"), &[("a.txt", "copy me")]);
    let tar = installed.path("app.tar");
    installed.ok(&[
        "copy",
        "-i",
        &image,
        "--to-tar",
        &tar,
        "--resume=false",
        "--include-non-distributable-layers=false",
        "--cosign-signatures=false",
        "--repo-based-tags=false",
        "--registry-verify-certs=true",
    ]);
    // --resume=true over the finished tarball: nothing to add, the same file.
    let before = std::fs::read(&tar).unwrap();
    installed.ok(&["copy", "-i", &image, "--to-tar", &tar, "--resume=true"]);
    assert_eq!(std::fs::read(&tar).unwrap(), before);

    let run = installed.ok(&[
        "copy",
        "--tar",
        &tar,
        "--to-repo",
        &reg.repo("flags/copied"),
        "--repo-based-tags=true",
        "--include-non-distributable-layers=false",
    ]);
    assert!(run.ok);
    // Repo-based tags name the source repository; internal tags only shown when asked.
    let run = installed.ok(&[
        "tag",
        "list",
        "-i",
        &reg.repo("flags/copied"),
        "--imgpkg-internal-tags=true",
        "--digests=false",
    ]);
    assert!(
        run.stdout.lines().any(|l| l.starts_with("flags-app-sha256-")),
        "{}",
        run.stdout
    );
    let run = installed.ok(&[
        "tag",
        "list",
        "-i",
        &reg.repo("flags/copied"),
        "--imgpkg-internal-tags=false",
    ]);
    assert!(!run.stdout.contains(".imgpkg"), "{}", run.stdout);
}
