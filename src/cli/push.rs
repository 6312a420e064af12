//! `pkgr push`: push directories as an imgpkg bundle (`-b`) or plain image (`-i`).
use super::CommandResult;
use crate::bundle::layer::Permissions;
use crate::bundle::lock::{BundleLock, ImagesLock, LockedImage};
use crate::bundle::push::{PushKind, push_dir};
use crate::registry::{Client, Reference};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["bundle", "image"])))]
pub struct PushArgs {
    /// Bundle reference to push to (repo:tag); the inputs must hold one .imgpkg directory.
    #[arg(short = 'b', long = "bundle", value_name = "REF")]
    bundle: Option<String>,
    /// Plain image reference to push to (repo:tag).
    #[arg(short = 'i', long = "image", value_name = "REF")]
    image: Option<String>,
    /// File or directory to include (repeatable).
    #[arg(short = 'f', long = "file", value_name = "PATH", required = true)]
    files: Vec<PathBuf>,
    /// Path, relative to a -f directory, to leave out (repeatable; replaces the default .git).
    #[arg(long = "file-exclusion", alias = "file-exclude-defaults", value_name = "PATH", default_values_t = [".git".to_string()])]
    file_exclusions: Vec<String>,
    /// Label to add to the image config, key=value (repeatable).
    #[arg(short = 'l', long = "labels", value_name = "KEY=VALUE", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// Keep each file's full mode (group and other bits too) instead of imgpkg's normalised
    /// 0700/0600; directories take the mode of their -f directory, as imgpkg does.
    #[arg(long = "preserve-permissions", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = crate::goflag::parse_bool, value_name = "BOOL")]
    preserve_permissions: bool,
    /// Write a BundleLock (-b) or ImagesLock (-i) for what was pushed to this file.
    #[arg(long = "lock-output", value_name = "FILE")]
    lock_output: Option<PathBuf>,
    #[command(flatten)]
    registry: crate::registry::RegistryAuthFlags,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("invalid label {s:?}: expected key=value")),
    }
}

pub async fn run(args: PushArgs) -> CommandResult {
    let (raw, kind) = match (&args.bundle, &args.image) {
        (Some(b), None) => (b, PushKind::Bundle),
        (None, Some(i)) => (i, PushKind::Image),
        _ => return Err("Expected only one of image (-i) or bundle (-b)".into()),
    };
    let reference = Reference::parse(raw)?;
    let labels: BTreeMap<String, String> = args.labels.iter().cloned().collect();
    let client = Client::new(args.registry.client_options()?)?;
    let digest = push_dir(
        &client,
        &reference,
        kind,
        &args.files,
        &args.file_exclusions,
        &labels,
        if args.preserve_permissions {
            Permissions::Preserved
        } else {
            Permissions::Normalised
        },
    )
    .await?;
    let pushed = reference.with_digest(digest);
    let ui = super::ui::ui();
    ui.line(&format!("Pushed '{pushed}'"));
    if let Some(path) = &args.lock_output {
        let yaml = match kind {
            PushKind::Bundle => BundleLock {
                image: pushed.to_string(),
                tag: Some(reference.tag().unwrap_or("latest").to_string()),
            }
            .to_yaml(),
            PushKind::Image => ImagesLock {
                images: vec![LockedImage {
                    image: pushed.to_string(),
                    annotations: BTreeMap::new(),
                }],
            }
            .to_yaml(),
        };
        std::fs::write(path, yaml).map_err(|e| format!("writing the lock output {}: {e}", path.display()))?;
    }
    ui.succeeded();
    Ok(ExitCode::SUCCESS)
}
