//! Who the binary speaks as: pkgr, or imgpkg when it was invoked under that name.
//!
//! An imgpkg user's scripts match imgpkg's words (`imgpkg: Error: …`, `imgpkg version X`), so
//! every text that differs between the two voices is decided here and nowhere else.
use super::audience::CommandLine;
use crate::relocate::Milestone;
use std::ffi::OsStr;
use std::path::Path;

/// The version both voices report (the crate's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Voice {
    Pkgr,
    Imgpkg,
}

impl Voice {
    /// `imgpkg` when the program's file name (argv[0], without directories or `.exe`) is
    /// `imgpkg`, as when pkgr is installed as a copy or symlink of that name.
    pub fn from_program(argv0: Option<&OsStr>) -> Voice {
        let stem = argv0
            .map(Path::new)
            .and_then(Path::file_stem)
            .and_then(OsStr::to_str);
        match stem {
            Some(name) if name.eq_ignore_ascii_case("imgpkg") => Voice::Imgpkg,
            _ => Voice::Pkgr,
        }
    }

    /// The voice of the running process.
    pub fn detect() -> Voice {
        Voice::from_program(std::env::args_os().next().as_deref())
    }

    /// The program name as the user typed it.
    pub fn program(self) -> &'static str {
        match self {
            Voice::Pkgr => "pkgr",
            Voice::Imgpkg => "imgpkg",
        }
    }

    /// The `version` subcommand's output: `imgpkg version X` or `pkgr version X`.
    pub fn version_line(self) -> String {
        format!("{} version {VERSION}", self.program())
    }

    /// How a failed command is reported on stderr.
    ///
    /// pkgr: `pkgr: <error>` and one indented `caused by:` line per cause.
    /// imgpkg: `imgpkg: Error: <error: cause: …>` with imgpkg's multi-line layout (a new,
    /// deeper-indented line wherever `: ` is followed by a capital letter).
    pub fn error_text(self, error: &(dyn std::error::Error + 'static)) -> String {
        match self {
            Voice::Pkgr => {
                let mut out = format!("pkgr: {}", link_text(error));
                let mut source = error.source();
                while let Some(cause) = source {
                    out.push_str(&format!("\n  caused by: {}", link_text(cause)));
                    source = cause.source();
                }
                out
            }
            Voice::Imgpkg => format!("imgpkg: Error: {}", multi_line(&go_chain(error))),
        }
    }
}

impl Voice {
    /// The lines imgpkg prints for a copy's milestone (`copy | exporting 2 images...`); pkgr
    /// reports progress on stderr instead and says nothing here. A copy from a tarball has
    /// nothing to export, so imgpkg starts at `importing`.
    pub fn copy_milestone(self, milestone: &Milestone, from_tarball: bool) -> Vec<String> {
        if self == Voice::Pkgr {
            return Vec::new();
        }
        let lines = match milestone {
            Milestone::Planned { .. } if from_tarball => Vec::new(),
            Milestone::Planned { images } => {
                let mut lines = vec![format!("exporting {} images...", images.len())];
                lines.extend(images.iter().map(|i| format!("will export {i}")));
                lines.push(format!("exported {} images", images.len()));
                lines
            }
            Milestone::Importing { images } => vec![format!("importing {images} images...")],
            Milestone::Writing => vec!["writing layers...".to_string()],
            Milestone::FileWritten { name, elapsed } => vec![format!(
                "done: file '{name}' ({})",
                crate::gotime::format_duration_nanos(elapsed.as_nanos().min(i64::MAX as u128) as i64)
            )],
            // imgpkg's line before it tags (pkgr tags as it pushes, so it comes once all is in).
            Milestone::Uploaded => vec!["Tagging images".to_string()],
            // imgpkg's prefixed logger puts its prefix before every line of a message.
            Milestone::NonDistributable { included, images } => non_distributable_warning(*included, images)
                .map(|text| text.lines().map(str::to_string).collect())
                .unwrap_or_default(),
        };
        lines.into_iter().map(|l| format!("copy | {l}")).collect()
    }
}

/// The first line of clap's error text without its `error: ` label (`unexpected argument
/// '--foo' found`), for imgpkg's one-line usage errors.
pub fn clap_message(rendered: &str) -> String {
    let first = rendered.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// imgpkg's warning about non-distributable layers: which were left out and how to include
/// them, or that the flag asking for them found none.
fn non_distributable_warning(included: bool, images: &[(String, Vec<String>)]) -> Option<String> {
    if included && images.is_empty() {
        return Some(
            "Warning: '--include-non-distributable-layers' flag provided, but no images contained a non-distributable layer."
                .to_string(),
        );
    }
    if included || images.is_empty() {
        return None;
    }
    let mut text = "Warning: Skipped the followings layer(s) due to it being non-distributable. \
                    If you would like to include non-distributable layers, use the \
                    --include-non-distributable-layers flag"
        .to_string();
    for (image, layers) in images {
        text.push_str(&format!("\n - Image: {image}\n   Layers:"));
        for layer in layers {
            text.push_str(&format!("\n     - {layer}"));
        }
    }
    Some(text)
}

/// The error chain as Go's `fmt.Errorf("…: %s", err)` wrapping prints it, leaving out a cause
/// whose text its parent already shows. Where imgpkg has its own words for a link of the chain
/// (`Fetching image`, go-containerregistry's `GET <url>: CODE: message`), they stand in its
/// place, whole, and what pkgr's message adds follows at the end, in brackets: scripts match
/// imgpkg's sentences.
fn go_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut explanations = Vec::new();
    let mut link = Some(error);
    while let Some(current) = link {
        let text = match imgpkg_words(current) {
            Some((words, explanation)) => {
                explanations.extend(explanation);
                words
            }
            None => link_text(current),
        };
        if out.is_empty() {
            out = text;
        } else if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        link = current.source();
    }
    for explanation in explanations {
        out.push_str(&format!(" ({explanation})"));
    }
    out
}

/// imgpkg's words for one error of a chain, with what pkgr's own message adds to them.
fn imgpkg_words(error: &(dyn std::error::Error + 'static)) -> Option<(String, Option<String>)> {
    use crate::bundle::BundleError;
    use crate::registry::RegistryError;
    use crate::relocate::RelocateError;
    if let Some(words) = error
        .downcast_ref::<BundleError>()
        .and_then(BundleError::imgpkg_words)
    {
        return Some((words.to_string(), None));
    }
    if let Some(words) = error
        .downcast_ref::<RelocateError>()
        .and_then(RelocateError::imgpkg_words)
    {
        return Some((words.to_string(), None));
    }
    // A boxed cause (`#[source] Box<RegistryError>`) is seen as the box.
    let registry = error
        .downcast_ref::<RegistryError>()
        .or_else(|| error.downcast_ref::<Box<RegistryError>>().map(|b| &**b))?;
    Some((
        registry.go_text()?.to_string(),
        registry.explanation(&CommandLine),
    ))
}

/// One link of an error chain, registry errors with the flags that fix them.
fn link_text(link: &(dyn std::error::Error + 'static)) -> String {
    use crate::relocate::{RelocateError, SignatureLookupError};
    let lookups =
        link.downcast_ref::<SignatureLookupError>()
            .or_else(|| match link.downcast_ref::<RelocateError>() {
                Some(RelocateError::Signatures(lookups)) => Some(lookups),
                _ => None,
            });
    if let Some(lookups) = lookups {
        return lookups.worded(Some(&CommandLine));
    }
    crate::registry::RegistryError::link_text(link, &CommandLine)
}

/// imgpkg's (go-cli-ui's) multi-line error layout: on the first line, outside brackets, each
/// `: ` followed by a capital letter starts a new line, indented two spaces deeper than the last.
/// Unbalanced brackets leave the text as it is, as imgpkg does.
fn multi_line(text: &str) -> String {
    let (first, rest) = match text.split_once('\n') {
        Some((first, rest)) => (first, Some(rest)),
        None => (text, None),
    };
    let mut depth = 0i32;
    let mut pieces: Vec<String> = vec![String::new()];
    let chars: Vec<char> = first.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '[' | '(' | '{' => depth += 1,
            ']' | ')' | '}' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return text.to_string();
        }
        let splits = depth == 0
            && c == ':'
            && chars.get(i + 1) == Some(&' ')
            && chars.get(i + 2).is_some_and(|n| n.is_uppercase());
        pieces.last_mut().expect("never empty").push(c);
        if splits {
            pieces.push(String::new());
            i += 2;
            continue;
        }
        i += 1;
    }
    if depth != 0 {
        return text.to_string();
    }
    let mut out = pieces
        .iter()
        .enumerate()
        .map(|(level, piece)| format!("{}{piece}", "  ".repeat(level)))
        .collect::<Vec<_>>()
        .join("\n");
    if let Some(rest) = rest {
        out.push('\n');
        out.push_str(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapped(&'static str, Option<Box<Wrapped>>);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn the_program_name_decides_the_voice() {
        let voice = |s: &str| Voice::from_program(Some(OsStr::new(s)));
        assert_eq!(voice("/usr/local/bin/imgpkg"), Voice::Imgpkg);
        assert_eq!(voice("imgpkg"), Voice::Imgpkg);
        assert_eq!(
            voice("C:\\bin\\imgpkg.exe".replace('\\', "/").as_str()),
            Voice::Imgpkg
        );
        assert_eq!(voice("/usr/bin/pkgr"), Voice::Pkgr);
        assert_eq!(voice("/opt/imgpkg/bin/pkgr"), Voice::Pkgr);
        assert_eq!(voice("imgpkg-old"), Voice::Pkgr);
        assert_eq!(Voice::from_program(None), Voice::Pkgr);
    }

    #[test]
    fn copy_milestones_in_imgpkg_words() {
        let planned = Milestone::Planned {
            images: vec!["reg/a@sha256:1".into(), "reg/b@sha256:2".into()],
        };
        assert_eq!(
            Voice::Imgpkg.copy_milestone(&planned, false),
            [
                "copy | exporting 2 images...",
                "copy | will export reg/a@sha256:1",
                "copy | will export reg/b@sha256:2",
                "copy | exported 2 images"
            ]
        );
        assert!(Voice::Imgpkg.copy_milestone(&planned, true).is_empty());
        assert_eq!(
            Voice::Imgpkg.copy_milestone(&Milestone::Importing { images: 2 }, true),
            ["copy | importing 2 images..."]
        );
        assert_eq!(
            Voice::Imgpkg.copy_milestone(&Milestone::Uploaded, false),
            ["copy | Tagging images"]
        );
        assert_eq!(
            Voice::Imgpkg.copy_milestone(
                &Milestone::FileWritten {
                    name: "manifest.json".into(),
                    elapsed: std::time::Duration::from_nanos(12_088),
                },
                false
            ),
            ["copy | done: file 'manifest.json' (12.088\u{b5}s)"]
        );
        assert!(Voice::Pkgr.copy_milestone(&planned, false).is_empty());

        let skipped = Milestone::NonDistributable {
            included: false,
            images: vec![(
                "reg/win@sha256:1".into(),
                vec!["sha256:f1".into(), "sha256:f2".into()],
            )],
        };
        assert_eq!(
            Voice::Imgpkg.copy_milestone(&skipped, false),
            [
                "copy | Warning: Skipped the followings layer(s) due to it being non-distributable. If you would like to include non-distributable layers, use the --include-non-distributable-layers flag",
                "copy |  - Image: reg/win@sha256:1",
                "copy |    Layers:",
                "copy |      - sha256:f1",
                "copy |      - sha256:f2",
            ]
        );
        let none = Milestone::NonDistributable {
            included: true,
            images: vec![],
        };
        assert_eq!(
            Voice::Imgpkg.copy_milestone(&none, false),
            [
                "copy | Warning: '--include-non-distributable-layers' flag provided, but no images contained a non-distributable layer."
            ]
        );
        let nothing = Milestone::NonDistributable {
            included: false,
            images: vec![],
        };
        assert!(Voice::Imgpkg.copy_milestone(&nothing, false).is_empty());
    }

    #[test]
    fn clap_errors_become_one_line() {
        assert_eq!(
            clap_message("error: unexpected argument '--foo' found\n\nUsage: imgpkg version\n"),
            "unexpected argument '--foo' found"
        );
    }

    #[test]
    fn version_lines() {
        assert_eq!(Voice::Imgpkg.version_line(), format!("imgpkg version {VERSION}"));
        assert_eq!(Voice::Pkgr.version_line(), format!("pkgr version {VERSION}"));
    }

    #[test]
    fn errors_in_each_voice() {
        let error = Wrapped(
            "Fetching image",
            Some(Box::new(Wrapped(
                "GET http://127.0.0.1:5000/v2/nothing/manifests/latest",
                Some(Box::new(Wrapped("NAME_UNKNOWN: Unknown name", None))),
            ))),
        );
        assert_eq!(
            Voice::Imgpkg.error_text(&error),
            "imgpkg: Error: Fetching image:\n  GET http://127.0.0.1:5000/v2/nothing/manifests/latest:\n    NAME_UNKNOWN:\n      Unknown name"
        );
        assert_eq!(
            Voice::Pkgr.error_text(&error),
            "pkgr: Fetching image\n  caused by: GET http://127.0.0.1:5000/v2/nothing/manifests/latest\n  caused by: NAME_UNKNOWN: Unknown name"
        );
    }

    #[test]
    fn multi_line_keeps_brackets_and_later_lines() {
        assert_eq!(
            multi_line("Overlaying (in order: A, B): Document on line (kv arg):1: Expected 1"),
            "Overlaying (in order: A, B):\n  Document on line (kv arg):1:\n    Expected 1"
        );
        assert_eq!(multi_line("a: B\nsecond: Line"), "a:\n  B\nsecond: Line");
        assert_eq!(multi_line("unbalanced (: B"), "unbalanced (: B");
        assert_eq!(multi_line("lower: case stays"), "lower: case stays");
    }

    #[test]
    fn imgpkg_words_stand_whole_and_pkgrs_detail_follows() {
        use crate::bundle::BundleError;
        use crate::registry::RegistryError;
        let missing = RegistryError::ManifestUnknown {
            action: "fetching manifest reg.io/nothing:latest".into(),
            reference: "reg.io/nothing:latest".into(),
            message: "Unknown name".into(),
            go_text: "GET https://reg.io/v2/nothing/manifests/latest: NAME_UNKNOWN: Unknown name".into(),
        };
        let error = BundleError::fetching_image("fetching the manifest of", "reg.io/nothing:latest", missing);
        assert_eq!(
            Voice::Imgpkg.error_text(&error),
            "imgpkg: Error: Fetching image:\n  GET https://reg.io/v2/nothing/manifests/latest:\n    NAME_UNKNOWN:\n      Unknown name (reg.io/nothing:latest does not exist in the registry)"
        );
        assert_eq!(
            Voice::Pkgr.error_text(&error),
            "pkgr: fetching the manifest of reg.io/nothing:latest\n  caused by: manifest unknown while fetching manifest reg.io/nothing:latest: reg.io/nothing:latest does not exist in the registry: Unknown name"
        );
        // Without the request (no go-containerregistry words), pkgr's message stays.
        let unknown_request = RegistryError::NameUnknown {
            action: "listing tags of reg.io/app".into(),
            repository: "reg.io/app".into(),
            message: String::new(),
            go_text: Default::default(),
        };
        assert_eq!(
            Voice::Imgpkg.error_text(&unknown_request),
            "imgpkg: Error: repository unknown while listing tags of reg.io/app: reg.io/app does not exist in the registry"
        );
    }

    #[test]
    fn both_voices_tell_the_flags_that_fix_a_registry_error() {
        use crate::bundle::BundleError;
        use crate::registry::RegistryError;
        let tls = RegistryError::Tls {
            action: "fetching manifest reg.io/app:v1".into(),
            registry: "reg.io".into(),
            message: "invalid peer certificate: UnknownIssuer".into(),
        };
        let error = BundleError::registry("fetching the manifest of", "reg.io/app:v1", tls);
        for voice in [Voice::Pkgr, Voice::Imgpkg] {
            let text = voice.error_text(&error);
            assert!(
                text.contains(
                    "UnknownIssuer. If the registry uses a private CA, pass it with \
                     --registry-ca-cert-path; --registry-verify-certs=false turns verification off (unsafe)"
                ),
                "{text}"
            );
        }
        let unauthorized = RegistryError::Unauthorized {
            action: "fetching manifest reg.io/app:v1".into(),
            registry: "reg.io".into(),
            repository: "app".into(),
            anonymous: true,
            message: "UNAUTHORIZED: authentication required".into(),
            go_text: "GET https://reg.io/v2/app/manifests/v1: UNAUTHORIZED: authentication required".into(),
        };
        let error = BundleError::fetching_image("fetching the manifest of", "reg.io/app:v1", unauthorized);
        assert_eq!(
            Voice::Imgpkg.error_text(&error),
            "imgpkg: Error: Fetching image:\n  GET https://reg.io/v2/app/manifests/v1:\n    UNAUTHORIZED: authentication \
             required (registry reg.io asks for credentials, and none were found for \
             repository app. Give credentials with --registry-username/--registry-password (or \
             --registry-token), the IMGPKG_REGISTRY_HOSTNAME/USERNAME/PASSWORD environment variables, or \
             `docker login reg.io`)"
        );
        // Inside an io::Error (a blob stream's failure), the hint is still there.
        let silent = std::io::Error::other(RegistryError::NoResponse {
            action: "downloading blob sha256:ab".into(),
            registry: "reg.io".into(),
            message: "timed out".into(),
            go_text: Default::default(),
        });
        let text = Voice::Pkgr.error_text(&silent);
        assert!(text.contains("(--registry-response-header-timeout)"), "{text}");
    }

    #[test]
    fn a_cause_already_in_its_parent_is_not_repeated() {
        let error = Wrapped(
            "pulling x: connection refused",
            Some(Box::new(Wrapped("connection refused", None))),
        );
        assert_eq!(go_chain(&error), "pulling x: connection refused");
    }
}
