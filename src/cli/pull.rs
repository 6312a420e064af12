//! `pkgr pull`: extract a bundle or image into a directory, rewriting `.imgpkg/images.yml` as
//! imgpkg does.
use super::CommandResult;
use crate::bundle::lock::{BundleLock, ImagesLock};
use crate::bundle::pull::{PullOptions, PullSource, pull};
use crate::registry::{Client, Reference};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["bundle", "image", "lock"])))]
pub struct PullArgs {
    /// Bundle reference to pull.
    #[arg(short = 'b', long = "bundle", value_name = "REF")]
    bundle: Option<String>,
    /// Plain image reference to pull.
    #[arg(short = 'i', long = "image", value_name = "REF")]
    image: Option<String>,
    /// A BundleLock, or an ImagesLock with one image, naming what to pull.
    #[arg(long = "lock", value_name = "FILE")]
    lock: Option<PathBuf>,
    /// Output directory; removed and recreated.
    #[arg(short = 'o', long = "output", value_name = "DIR", required = true)]
    output: PathBuf,
    /// Also pull nested bundles into <output>/.imgpkg/bundles/sha256-<hex>/.
    #[arg(short = 'r', long = "recursive", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = crate::goflag::parse_bool, value_name = "BOOL")]
    recursive: bool,
    /// Refuse a bundle given with -i; `--image-is-bundle-check=false` pulls it as a plain image.
    #[arg(
        long = "image-is-bundle-check",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = crate::goflag::parse_bool,
        value_name = "BOOL"
    )]
    image_is_bundle_check: bool,
    #[command(flatten)]
    registry: crate::registry::RegistryAuthFlags,
}

#[derive(serde::Deserialize)]
struct KindOnly {
    kind: Option<String>,
}

fn source_from_lock(path: &PathBuf) -> Result<PullSource, Box<dyn std::error::Error + Send + Sync>> {
    let raw = std::fs::read(path).map_err(|e| format!("reading the lock file {}: {e}", path.display()))?;
    let kind: KindOnly = serde_saphyr::from_slice(&raw).map_err(|e| {
        format!(
            "reading the lock file {}: not a YAML lock document: {e}",
            path.display()
        )
    })?;
    match kind.kind.as_deref() {
        Some("BundleLock") => Ok(PullSource::Bundle(Reference::parse(
            &BundleLock::parse(&raw)?.image,
        )?)),
        Some("ImagesLock") => {
            let lock = ImagesLock::parse(&raw)?;
            if lock.images.len() != 1 {
                return Err(format!(
                    "Expected ImagesLock {} to have 1 image, but found: {}",
                    path.display(),
                    lock.images.len()
                )
                .into());
            }
            Ok(PullSource::Image(Reference::parse(&lock.images[0].image)?))
        }
        other => Err(format!(
            "lock file {} has kind {:?}; expected BundleLock or ImagesLock",
            path.display(),
            other.unwrap_or("")
        )
        .into()),
    }
}

pub async fn run(args: PullArgs) -> CommandResult {
    // imgpkg refuses this combination before reading anything; so does pkgr, in its words.
    if !args.image_is_bundle_check && args.bundle.is_some() {
        return Err("Cannot set --image-is-bundle-check while using -b flag".into());
    }
    let source = match (&args.bundle, &args.image, &args.lock) {
        (Some(b), None, None) => PullSource::Bundle(Reference::parse(b)?),
        (None, Some(i), None) => PullSource::Image(Reference::parse(i)?),
        (None, None, Some(lock)) => source_from_lock(lock)?,
        _ => return Err("Expected only one of --lock, --image (-i) or --bundle (-b)".into()),
    };
    if args.recursive && matches!(source, PullSource::Image(_)) {
        return Err("Cannot use --recursive with -i flag".into());
    }
    crate::bundle::pull::check_output_dir(&args.output)?;
    let client = Client::new(args.registry.client_options()?)?;
    let options = PullOptions {
        recursive: args.recursive,
        image_is_bundle_check: args.image_is_bundle_check,
        ..PullOptions::default()
    };
    let ui = super::ui::ui();
    let mut log = |line: String| ui.log(&line);
    pull(&client, &source, &args.output, &options, &mut log).await?;
    ui.succeeded();
    Ok(ExitCode::SUCCESS)
}
