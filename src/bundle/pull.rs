//! imgpkg pull: extract a bundle or image into a directory (streaming, constant memory), rewrite
//! `.imgpkg/images.yml` relative to the bundle's repository, and follow nested bundles.
use super::BundleError;
use super::fetch::{IMAGES_LOCK_PATH, Localized, ResolvedImage, extract_layer, localize, resolve_image};
use super::layer::{Extractor, Limits};
use super::layer_media::is_tar_layer;
use super::lock::ImagesLock;
use crate::registry::{Client, Digest, Reference};
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// What to pull.
#[derive(Clone, Debug)]
pub enum PullSource {
    /// `-b`: must be a bundle.
    Bundle(Reference),
    /// `-i`: must be a plain image unless the bundle check is off.
    Image(Reference),
}

#[derive(Clone, Debug)]
pub struct PullOptions {
    /// Follow nested bundles into `<out>/.imgpkg/bundles/sha256-<hex>/`.
    pub recursive: bool,
    /// Refuse a bundle given as `-i` (imgpkg's `--image-is-bundle-check`).
    pub image_is_bundle_check: bool,
    /// Limits on what each image may expand to.
    pub limits: Limits,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            recursive: false,
            image_is_bundle_check: true,
            limits: Limits::for_disk(),
        }
    }
}

/// What a pull did.
#[derive(Clone, Debug)]
pub struct PullReport {
    /// The pulled image at its digest.
    pub resolved: Reference,
    pub is_bundle: bool,
    /// `.imgpkg/images.yml` was rewritten to the bundle's repository.
    pub lock_rewritten: bool,
    /// Nested bundles extracted (with `recursive`), in the order they were pulled.
    pub nested: Vec<Reference>,
}

/// Refuse output directories whose removal would be a disaster: `/`, `.`, `..`, and the current
/// directory or any of its ancestors however they are spelled.
pub fn check_output_dir(out: &Path) -> Result<(), BundleError> {
    let refuse = || {
        Err(BundleError::Input(format!(
            "Disallowed output directory {out:?} (it would delete the current directory, a parent of it, or /); choose a new or dedicated directory"
        )))
    };
    let lexical: Vec<Component> = out.components().filter(|c| *c != Component::CurDir).collect();
    if lexical.is_empty()
        || lexical
            .iter()
            .all(|c| matches!(c, Component::RootDir | Component::ParentDir))
    {
        return refuse();
    }
    if let (Ok(target), Ok(cwd)) = (
        out.canonicalize(),
        std::env::current_dir().and_then(|d| d.canonicalize()),
    ) {
        if cwd.starts_with(&target) {
            return refuse();
        }
    }
    Ok(())
}

/// Pull `source` into `out` (removed and recreated first), as `imgpkg pull` does.
pub async fn pull(
    client: &Client,
    source: &PullSource,
    out: &Path,
    options: &PullOptions,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<PullReport, BundleError> {
    check_output_dir(out)?;
    let (reference, want_bundle) = match source {
        PullSource::Bundle(r) => (r, true),
        PullSource::Image(r) => (r, false),
    };
    if !want_bundle && options.recursive {
        return Err(BundleError::Input(
            "Cannot use --recursive with -i (only bundles have nested bundles)".into(),
        ));
    }
    let image = resolve_image(client, reference).await?;
    if want_bundle && !image.is_bundle {
        return Err(BundleError::Unexpected(format!(
            "Expected bundle image but found plain image (hint: Did you use -i instead of -b?): {}",
            image.reference
        )));
    }
    if !want_bundle && image.is_bundle && options.image_is_bundle_check {
        return Err(BundleError::Unexpected(format!(
            "Expected bundle flag when pulling a bundle (hint: Use -b instead of -i for bundles): {}",
            image.reference
        )));
    }
    log(format!(
        "Pulling {} '{}'",
        if want_bundle { "bundle" } else { "image" },
        image.reference
    ));
    recreate_dir(out)?;
    extract_image(client, &image, out, &options.limits, log).await?;
    let mut report = PullReport {
        resolved: image.reference.clone(),
        is_bundle: image.is_bundle,
        lock_rewritten: false,
        nested: Vec::new(),
    };
    if !want_bundle {
        return Ok(report);
    }
    let localized = rewrite_lock(client, &image.reference, out, log).await?;
    report.lock_rewritten = localized.relocated;
    if options.recursive {
        pull_nested(client, out, localized, options, log, &mut report).await?;
    }
    Ok(report)
}

async fn pull_nested(
    client: &Client,
    root: &Path,
    root_lock: Localized,
    options: &PullOptions,
    log: &mut (dyn FnMut(String) + Send),
    report: &mut PullReport,
) -> Result<(), BundleError> {
    let mut seen: HashSet<Digest> = HashSet::new();
    let mut pending = vec![root_lock];
    while let Some(localized) = pending.pop() {
        for locked in &localized.lock.images {
            let digest = locked.digest()?;
            let location = locked.reference()?;
            let known = localized.locations.as_ref().and_then(|l| l.is_bundle(&digest));
            // Without a locations image, only the config tells whether an image is a bundle.
            let image = match known {
                Some(false) => continue,
                Some(true) => None,
                None => {
                    let image = resolve_image(client, &location).await?;
                    if !image.is_bundle {
                        continue;
                    }
                    Some(image)
                }
            };
            if !seen.insert(digest.clone()) {
                log(format!("Nested bundle '{location}': Skipped, already downloaded"));
                continue;
            }
            let image = match image {
                Some(image) => image,
                None => resolve_image(client, &location).await?,
            };
            let dir = root.join(".imgpkg").join("bundles").join(digest.dashed());
            log(format!("Pulling nested bundle '{}'", image.reference));
            recreate_dir(&dir)?;
            extract_image(client, &image, &dir, &options.limits, log).await?;
            let nested = rewrite_lock(client, &image.reference, &dir, log).await?;
            report.nested.push(image.reference.clone());
            pending.push(nested);
        }
    }
    Ok(())
}

fn recreate_dir(dir: &Path) -> Result<(), BundleError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BundleError::io("removing the output directory", dir, e)),
    }
    std::fs::create_dir_all(dir).map_err(|e| BundleError::io("creating the output directory", dir, e))
}

/// Apply every layer in order, streaming each one from the registry onto disk.
async fn extract_image(
    client: &Client,
    image: &ResolvedImage,
    dir: &Path,
    limits: &Limits,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<(), BundleError> {
    let mut extractor = Extractor::new(dir, limits.clone()).skipping_links_and_devices();
    let count = image.manifest.layers.len();
    for (i, layer) in image.manifest.layers.iter().enumerate() {
        if !is_tar_layer(&layer.media_type) {
            return Err(BundleError::Unexpected(format!(
                "layer {} of {} has media type {:?}, which pkgr cannot unpack: only tar layers, \
                 gzip-compressed (…tar.gzip, …tar+gzip) or uncompressed (…tar), can be pulled",
                layer.digest, image.reference, layer.media_type
            )));
        }
        log(format!(
            "  Extracting layer '{}' ({}/{count})",
            layer.digest,
            i + 1
        ));
        extractor = extract_layer(client, &image.reference, layer, extractor).await?;
        let skipped = extractor.take_skipped();
        if let Some(first) = skipped.first() {
            let more = match skipped.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            };
            log(format!(
                "  Skipped {} link/device entr{} of this layer, as imgpkg does: {first}{more}",
                skipped.len(),
                if skipped.len() == 1 { "y" } else { "ies" }
            ));
        }
    }
    Ok(())
}

/// imgpkg's rewrite of the extracted `.imgpkg/images.yml`; the file is left byte for byte when
/// the images are not all in the bundle's repository.
async fn rewrite_lock(
    client: &Client,
    bundle: &Reference,
    dir: &Path,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<Localized, BundleError> {
    let path: PathBuf = dir.join(IMAGES_LOCK_PATH);
    let raw = std::fs::read(&path).map_err(|e| {
        BundleError::io(
            "reading the bundle's ImagesLock (is this an imgpkg bundle?)",
            &path,
            e,
        )
    })?;
    let lock = ImagesLock::parse(&raw).map_err(|e| e.context(format!("reading {}", path.display())))?;
    log(String::new());
    log("Locating image lock file images...".into());
    let localized = localize(client, bundle, &lock).await?;
    let repo = bundle.repository_name();
    if localized.relocated {
        log(format!(
            "The bundle repo ({repo}) is hosting every image specified in the bundle's Images Lock file ({IMAGES_LOCK_PATH})"
        ));
        log(String::new());
        log(format!(
            "Updating all images in the ImagesLock file: {}",
            path.display()
        ));
        log(format!(
            "+ Changing all image registry/repository references in {} to {repo}",
            path.display()
        ));
        std::fs::write(&path, localized.lock.to_yaml())
            .map_err(|e| BundleError::io("writing the rewritten ImagesLock", &path, e))?;
    } else {
        log("One or more images not found in bundle repo; skipping lock file update".into());
    }
    Ok(localized)
}
