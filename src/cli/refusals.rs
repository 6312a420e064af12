//! The flag combinations imgpkg refuses before doing any work, refused in imgpkg's words when
//! the binary runs as `imgpkg`: scripts that match imgpkg's messages keep working. As `pkgr`,
//! clap's groups and each command's own checks refuse them in pkgr's words (and pkgr keeps its
//! extensions, such as an ImagesLock from `push -i --lock-output`).
use clap::ArgMatches;
use clap::error::{ContextKind, ContextValue, ErrorKind};

/// The command line for imgpkg's voice: the clap groups and requirements that would answer
/// first, in clap's words, are lifted so that [`check`] answers in imgpkg's.
pub fn relax(command: clap::Command) -> clap::Command {
    let optional = |g: clap::ArgGroup| g.required(false).multiple(true);
    command
        .mut_subcommand("copy", |c| {
            c.mut_group("source", optional).mut_group("destination", optional)
        })
        .mut_subcommand("pull", |c| {
            c.mut_group("source", optional)
                .mut_arg("output", |a| a.required(false))
        })
        .mut_subcommand("push", |c| c.mut_group("target", optional))
}

/// imgpkg's refusal of this command line, if it refuses it (checked in imgpkg's order).
pub fn check(matches: &ArgMatches) -> Option<String> {
    match matches.subcommand()? {
        ("copy", m) => copy(m).map(str::to_string),
        ("pull", m) => pull(m).map(str::to_string),
        // imgpkg checks the reserved bundle label before the image/bundle flags.
        ("push", m) => reserved_label(m).or_else(|| push(m).map(str::to_string)),
        _ => None,
    }
}

/// imgpkg's words for a clap error, where imgpkg has its own check for the same mistake.
pub fn clap_error_message(error: &clap::Error) -> Option<String> {
    let invalid_arg = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg.as_str(),
        _ => return None,
    };
    if error.kind() == ErrorKind::InvalidValue && invalid_arg.starts_with("--output-type") {
        return Some("--output-type can only have the following values: [text, yaml]".to_string());
    }
    None
}

/// A flag given with a non-empty value (imgpkg treats `-b ""` as not given).
fn given(m: &ArgMatches, id: &str) -> bool {
    m.try_get_raw(id)
        .ok()
        .flatten()
        .is_some_and(|mut values| values.any(|v| !v.is_empty()))
}

fn count(m: &ArgMatches, ids: &[&str]) -> usize {
    ids.iter().filter(|id| given(m, id)).count()
}

fn copy(m: &ArgMatches) -> Option<&'static str> {
    if count(m, &["lock", "tar", "bundle", "image"]) != 1 {
        return Some("Expected either --lock, --bundle (-b), --image (-i), or --tar as a source");
    }
    if count(m, &["to_repo", "to_tar"]) != 1 {
        return Some("Expected either --to-tar or --to-repo");
    }
    if given(m, "to_tar") && given(m, "tar") {
        return Some("Cannot use tar source (--tar) with tar destination (--to-tar)");
    }
    if given(m, "to_tar") && given(m, "lock_output") {
        return Some("Cannot output lock file with tar destination");
    }
    None
}

fn pull(m: &ArgMatches) -> Option<&'static str> {
    let output = m
        .try_get_raw("output")
        .ok()
        .flatten()
        .and_then(|mut v| v.next_back());
    match output.and_then(|o| o.to_str()) {
        None => return Some("required flag(s) \"output\" not set"),
        Some("") => return Some("expected --output to be non-empty"),
        Some("/" | "." | "..") => {
            return Some("Disallowed output directory (trying to avoid accidental deletion)");
        }
        Some(_) => {}
    }
    match count(m, &["lock", "bundle", "image"]) {
        0 => return Some("Expected either image or bundle reference"),
        1 => {}
        _ => return Some("Expected only one of image, bundle, or lock"),
    }
    if m.get_flag("recursive") && given(m, "image") {
        return Some("Cannot use --recursive (-r) flag when pulling a bundle");
    }
    if m.get_one::<bool>("image_is_bundle_check") == Some(&false) && given(m, "bundle") {
        return Some("Cannot set --image-is-bundle-check while using -b flag");
    }
    None
}

fn push(m: &ArgMatches) -> Option<&'static str> {
    match (given(m, "bundle"), given(m, "image")) {
        (true, true) => Some("Expected only one of image or bundle"),
        (false, false) => Some("Expected either image or bundle"),
        (false, true) if given(m, "lock_output") => {
            Some("Lock output is not compatible with image, use bundle for lock output")
        }
        _ => None,
    }
}

fn reserved_label(m: &ArgMatches) -> Option<String> {
    let label = crate::bundle::BUNDLE_LABEL;
    let reserved = m
        .try_get_raw("labels")
        .ok()
        .flatten()?
        .filter_map(|v| v.to_str())
        .any(|v| v.split_once('=').is_some_and(|(k, _)| k == label));
    reserved
        .then(|| format!("label '{label}' is reserved and cannot be overriden. Please use a different key"))
}
