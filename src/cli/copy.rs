//! `pkgr copy`: imgpkg-compatible flags, turned into a `relocate::copy` call.
use super::CommandResult;
use crate::bundle::lock::{BundleLock, ImagesLock};
use crate::registry::{Client, Reference, RegistryAuthFlags};
use crate::relocate::{
    self, Clients, CopyOptions, Destination, LockOutput, Progress, ProgressMode, Source, TagStyle,
};
use clap::ArgGroup;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
#[command(
    group(ArgGroup::new("source").required(true).args(["bundle", "image", "lock", "tar"])),
    group(ArgGroup::new("destination").required(true).args(["to_repo", "to_tar"])),
)]
pub struct CopyArgs {
    /// Bundle to copy, with every image and nested bundle of its .imgpkg/images.yml.
    #[arg(short = 'b', long = "bundle", value_name = "REF")]
    bundle: Option<String>,
    /// Plain image or image index to copy (all platforms).
    #[arg(short = 'i', long = "image", value_name = "REF")]
    image: Option<String>,
    /// BundleLock or ImagesLock file naming what to copy.
    #[arg(long = "lock", value_name = "FILE")]
    lock: Option<PathBuf>,
    /// Tarball written by `pkgr copy --to-tar` or `imgpkg copy --to-tar` (no registry is contacted to read it).
    #[arg(long = "tar", value_name = "FILE")]
    tar: Option<PathBuf>,
    /// Destination repository: everything goes into it under sha256-<hex>.imgpkg tags.
    #[arg(long = "to-repo", value_name = "REPO")]
    to_repo: Option<String>,
    /// Destination tarball (imgpkg's format).
    #[arg(long = "to-tar", value_name = "FILE")]
    to_tar: Option<PathBuf>,
    /// Write a BundleLock (bundles) or ImagesLock (images) of the copy (--to-repo only).
    #[arg(long = "lock-output", value_name = "FILE")]
    lock_output: Option<PathBuf>,
    /// Parallel transfers.
    #[arg(long, default_value_t = 5, value_name = "N")]
    concurrency: usize,
    /// Re-use the verified layers of an existing --to-tar file.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = crate::goflag::parse_bool, value_name = "BOOL")]
    resume: bool,
    /// Copy non-distributable (foreign) layers too.
    #[arg(long = "include-non-distributable-layers", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = crate::goflag::parse_bool, value_name = "BOOL")]
    include_non_distributable_layers: bool,
    /// Find and copy the cosign signature (tag sha256-<hex>.sig) of every copied image (imgpkg's
    /// default: off). Signatures already inside a --tar file are always imported.
    // Go-style booleans (`--flag`, `--flag=true|false`), as imgpkg's scripts pass them.
    #[arg(long = "cosign-signatures", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = crate::goflag::parse_bool, value_name = "BOOL")]
    cosign_signatures: bool,
    /// Tag each copied image after the repository it came from (<path>-sha256-<hex>.imgpkg, the
    /// path cut to its last 49 characters, as imgpkg does) instead of sha256-<hex>.imgpkg.
    #[arg(long = "repo-based-tags", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = crate::goflag::parse_bool, value_name = "BOOL")]
    repo_based_tags: bool,
    /// Refuse to copy unless the root (each image of an ImagesLock) carries a cosign signature
    /// made by this PEM public key; repeat for several (one must verify). Checked before anything
    /// is written.
    #[arg(long = "verify-key", value_name = "FILE")]
    verify_keys: Vec<PathBuf>,
    #[command(flatten)]
    registry: Box<RegistryAuthFlags>,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn usage(message: impl Into<String>) -> Failure {
    relocate::RelocateError::Usage(message.into()).into()
}

fn source(args: &CopyArgs) -> Result<Source, Failure> {
    let parse = |flag: &str, s: &str| {
        Reference::parse(s).map_err(|e| -> Failure { format!("pkgr copy: reading {flag} {s:?}: {e}").into() })
    };
    if let Some(b) = &args.bundle {
        return Ok(Source::Bundle(parse("-b", b)?));
    }
    if let Some(i) = &args.image {
        return Ok(Source::Image(parse("-i", i)?));
    }
    if let Some(tar) = &args.tar {
        return Ok(Source::Tarball(tar.clone()));
    }
    let path = args
        .lock
        .as_ref()
        .ok_or_else(|| usage("one of -b, -i, --lock or --tar is required"))?;
    let bytes = std::fs::read(path)
        .map_err(|e| format!("pkgr copy: reading the lock file {}: {e}", path.display()))?;
    match BundleLock::parse(&bytes) {
        Ok(lock) => Ok(Source::BundleLock(lock)),
        Err(bundle_error) => match ImagesLock::parse(&bytes) {
            Ok(lock) => Ok(Source::ImagesLock(lock)),
            Err(images_error) => Err(format!(
                "pkgr copy: the lock file {} is neither a BundleLock ({bundle_error}) nor an ImagesLock ({images_error})",
                path.display()
            )
            .into()),
        },
    }
}

fn destination(args: &CopyArgs) -> Result<Destination, Failure> {
    if let Some(repo) = &args.to_repo {
        if args.resume {
            return Err(usage("--resume only applies to --to-tar"));
        }
        let repo = Reference::parse_repository(repo)
            .map_err(|e| -> Failure { format!("pkgr copy: reading --to-repo {repo:?}: {e}").into() })?;
        return Ok(Destination::Repository(repo));
    }
    let path = args
        .to_tar
        .clone()
        .ok_or_else(|| usage("one of --to-repo or --to-tar is required"))?;
    if args.tar.is_some() {
        return Err(usage(
            "--tar imports a tarball into a registry: use --to-repo with it, not --to-tar",
        ));
    }
    if args.lock_output.is_some() {
        return Err(usage(
            "--lock-output cannot be used with --to-tar (it records registry locations)",
        ));
    }
    Ok(Destination::Tarball {
        path,
        resume: args.resume,
    })
}

pub async fn run(args: CopyArgs) -> CommandResult {
    if args.concurrency == 0 {
        return Err(usage("--concurrency must be at least 1"));
    }
    let source = source(&args)?;
    let destination = destination(&args)?;
    let verify_keys = args
        .verify_keys
        .iter()
        .map(|path| crate::verify::PublicKey::from_file(path))
        .collect::<Result<Vec<_>, _>>()?;
    let client_options = args.registry.client_options()?;
    let client = Client::new(client_options)?;
    let clients = Clients {
        source: client.clone(),
        destination: client,
    };
    let options = CopyOptions {
        concurrency: args.concurrency,
        include_non_distributable: args.include_non_distributable_layers,
        cosign_signatures: args.cosign_signatures,
        verify_keys: verify_keys.into(),
        tag_style: if args.repo_based_tags {
            TagStyle::RepoBased
        } else {
            TagStyle::Digest
        },
        ..CopyOptions::default()
    };
    // As imgpkg, the binary narrates milestones on stdout (`copy | importing 2 images...`)
    // instead of pkgr's progress on stderr.
    let ui = super::ui::ui();
    let voice = ui.voice();
    let progress = if voice == super::voice::Voice::Imgpkg {
        let from_tarball = args.tar.is_some();
        Progress::new(ProgressMode::Quiet).with_narrator(move |milestone| {
            for line in voice.copy_milestone(milestone, from_tarball) {
                super::ui::ui().log(&line);
            }
        })
    } else {
        Progress::new(ProgressMode::detect())
    };
    let progress = Arc::new(progress);
    // `main` runs this on a one-thread runtime: the registries, not this process, are the
    // bottleneck, and keeping every buffer on one thread keeps the allocator from spreading them
    // over per-thread arenas (peak RSS is a target of issue 4).
    let summary = relocate::copy(&clients, &source, &destination, &options, progress)
        .await
        .map_err(Failure::from)?;
    if let (Some(path), Some(lock)) = (&args.lock_output, &summary.lock) {
        let yaml = match lock {
            LockOutput::Bundle(b) => b.to_yaml(),
            LockOutput::Images(i) => i.to_yaml(),
        };
        std::fs::write(path, yaml)
            .map_err(|e| format!("pkgr copy: writing --lock-output {}: {e}", path.display()))?;
    }
    ui.succeeded();
    Ok(ExitCode::SUCCESS)
}
