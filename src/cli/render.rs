//! `pkgr render`: the controller's pipeline (fetch, parse, validate, relocate, name) without a
//! cluster, printing the objects it would apply as YAML or the errors it would report.
use super::CommandResult;
use crate::bundle::{
    self, BUNDLE_LABEL, BundleError, FileTree,
    layer::Limits,
    lock::ImagesLock,
    tarball::{ROOT_BUNDLE_LABEL, TarballReader},
};
use crate::registry::{Client, ManifestBody, Reference, RegistryAuthFlags};
use crate::repository::{self, Output, RepositoryError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit status for a repository that cannot be rendered (what the controller reports as
/// ReconcileFailed).
const EXIT_FAILED: u8 = 1;
/// Exit status for flags that do not make sense (clap uses the same for its own checks).
const EXIT_USAGE: u8 = 2;

const IMAGES_LOCK_PATH: &str = ".imgpkg/images.yml";

#[derive(clap::Args, Debug)]
#[command(group(
    clap::ArgGroup::new("source")
        .required(true)
        .args(["bundle", "image", "tar"])
))]
pub struct RenderArgs {
    /// Repository bundle to render, as `fetch.imgpkgBundle.image` (for example
    /// registry.corp.xyz/apps/simple-app-bundle:v1.0.0); images are relocated with its
    /// .imgpkg/images.yml.
    #[arg(short = 'b', long = "bundle", value_name = "REF")]
    bundle: Option<String>,
    /// Repository in a plain image, as `fetch.image.url`; no image relocation.
    #[arg(short = 'i', long = "image", value_name = "REF")]
    image: Option<String>,
    /// Tarball written by `pkgr copy --to-tar` or `imgpkg copy --to-tar`; its root image is read
    /// directly, no registry is contacted.
    #[arg(long = "tar", value_name = "FILE")]
    tar: Option<PathBuf>,
    /// Read the repository from this directory of the image, as `fetch.image.subPath`.
    #[arg(long = "sub-path", value_name = "PATH", conflicts_with = "bundle")]
    sub_path: Option<String>,
    /// With --tar: render as if the tarball had been imported into this repository (as
    /// `pkgr copy --tar FILE --to-repo REPO` does), so image references point at REPO@digest.
    #[arg(long = "relocated-to", value_name = "REPO", requires = "tar")]
    relocated_to: Option<String>,
    /// Render only if the repository carries a cosign signature made by this PEM public key
    /// (repeatable: one must verify), as a PackageRepository's `verify` asks the controller to.
    /// From a tarball, the signature copied into it is read, with no network.
    #[arg(long = "verify-key", value_name = "FILE")]
    verify_keys: Vec<PathBuf>,
    #[command(flatten)]
    registry: RegistryAuthFlags,
}

/// Where the repository comes from, with references already checked.
enum Source {
    Bundle(Reference),
    Image(Reference),
    Tar {
        path: PathBuf,
        relocated_to: Option<Reference>,
    },
}

/// The repository's files, and its ImagesLock when its images are relocated.
struct Contents {
    files: FileTree,
    images_lock: Option<ImagesLock>,
    /// What was read, for the summary line (`repo@sha256:…`, or the tarball path).
    origin: String,
}

fn usage(message: String) -> CommandResult {
    eprintln!("pkgr render: {message}");
    Ok(ExitCode::from(EXIT_USAGE))
}

pub async fn run(args: RenderArgs) -> CommandResult {
    let source = match source(&args) {
        Ok(source) => source,
        Err(message) => return usage(message),
    };
    // Keys first: a broken one is named before any request.
    let keys = args
        .verify_keys
        .iter()
        .map(|path| crate::verify::PublicKey::from_file(path))
        .collect::<Result<Vec<_>, _>>()?;
    let contents = match &source {
        Source::Bundle(reference) | Source::Image(reference) => {
            let options = match args.registry.client_options() {
                Ok(options) => options,
                Err(error) => return usage(format!("registry flags: {error}")),
            };
            let client = Client::new(options)?;
            let contents = fetch(&client, reference, matches!(source, Source::Bundle(_))).await?;
            if !keys.is_empty() {
                let resolved = Reference::parse(&contents.origin)?;
                let digest = resolved
                    .digest()
                    .cloned()
                    .ok_or("the resolved reference has no digest")?;
                let subject = crate::verify::Subject::in_registry(&resolved, digest);
                let source = crate::verify::SignatureSource::Registry(&client);
                crate::verify::verify(source, &subject, &keys, &Default::default()).await?;
            }
            contents
        }
        Source::Tar { path, relocated_to } => {
            if !keys.is_empty() {
                verify_tar(path, &keys).await?;
            }
            read_tar(path, relocated_to.as_ref())?
        }
    };
    let Contents {
        files,
        images_lock,
        origin,
    } = contents;
    let files = match &args.sub_path {
        Some(path) => match repository::sub_path(&files, path) {
            Ok(selected) => selected,
            Err(error) => return Ok(failed(&error)),
        },
        None => files,
    };
    let built = repository::build(&files, images_lock.as_ref());
    // Only the objects are needed for printing: free the raw files of a large repository first.
    drop(files);
    drop(images_lock);
    match built {
        Ok(output) => print(&output, &origin),
        Err(error) => Ok(failed(&error)),
    }
}

fn source(args: &RenderArgs) -> Result<Source, String> {
    let reference = |flag: &str, text: &str| {
        Reference::parse(text).map_err(|e| format!("{flag} {text:?} is not an image reference: {e}"))
    };
    // Checked here as well as by clap, whose `requires` does not hold inside an argument group.
    if args.relocated_to.is_some() && args.tar.is_none() {
        return Err("--relocated-to only applies to --tar FILE".to_string());
    }
    if let Some(text) = &args.bundle {
        if args.sub_path.is_some() {
            return Err(
                "--sub-path applies to -i and --tar; an imgpkgBundle source has no subPath".to_string(),
            );
        }
        return Ok(Source::Bundle(reference("-b", text)?));
    }
    if let Some(text) = &args.image {
        return Ok(Source::Image(reference("-i", text)?));
    }
    let path = args
        .tar
        .clone()
        .ok_or_else(|| "give the repository with -b REF, -i REF or --tar FILE".to_string())?;
    let relocated_to =
        match &args.relocated_to {
            Some(text) => Some(Reference::parse_repository(text).map_err(|e| {
                format!("--relocated-to {text:?} is not a repository (host/path, no tag): {e}")
            })?),
            None => None,
        };
    Ok(Source::Tar { path, relocated_to })
}

async fn fetch(client: &Client, reference: &Reference, bundle: bool) -> Result<Contents, BundleError> {
    // The controller's in-memory limits, so render rejects what the controller would.
    let fetched = bundle::fetch::fetch_contents(client, reference, bundle, &Limits::default()).await?;
    Ok(Contents {
        files: fetched.files,
        // A plain image source is deployed as written: no images.yml, no relocation (upstream).
        images_lock: if bundle { fetched.images_lock } else { None },
        origin: fetched.resolved.to_string(),
    })
}

/// `--verify-key` with `--tar`: the tarball's root is signed, by the signature copied with it.
async fn verify_tar(
    path: &Path,
    keys: &[crate::verify::PublicKey],
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let reader = TarballReader::open(path)?;
    let Some(root) = reader.root() else {
        return Err(format!("{}: cannot tell which image is the repository", path.display()).into());
    };
    let subject = crate::verify::Subject {
        digest: root.manifest.digest.clone(),
        repository: None,
        name: format!("{} ({})", path.display(), root.manifest.digest),
    };
    let source = crate::verify::SignatureSource::Tarball(&reader);
    crate::verify::verify(source, &subject, keys, &Default::default()).await?;
    Ok(())
}

/// The root image of a tarball, read with no network access.
fn read_tar(
    path: &Path,
    relocated_to: Option<&Reference>,
) -> Result<Contents, Box<dyn std::error::Error + Send + Sync>> {
    let shown = path.display();
    let reader = TarballReader::open(path)?;
    let root = reader.root().ok_or_else(|| {
        format!(
            "{shown}: cannot tell which image is the repository: no image carries the \
             {ROOT_BUNDLE_LABEL} label and there is more than one; export the repository with \
             `pkgr copy -b REF --to-tar FILE`"
        )
    })?;
    let manifest = match root.manifest.parse()? {
        ManifestBody::Image(manifest) => manifest,
        ManifestBody::Index(_) => {
            return Err(format!(
                "{shown}: the root entry {} is an image index; a package repository is a \
                 bundle or a single image",
                root.manifest.digest
            )
            .into());
        }
    };
    if manifest.layers.len() != 1 {
        return Err(format!(
            "{shown}: the root image {} has {} layers; a package repository image has exactly \
             one (as imgpkg push writes it)",
            root.manifest.digest,
            manifest.layers.len()
        )
        .into());
    }
    let is_bundle = match &root.config {
        Some(config) => bundle::image::config_labels(config)?.contains_key(BUNDLE_LABEL),
        None => false,
    };
    let layer = reader.open_layer(&manifest.layers[0].digest)?;
    let files = bundle::layer::read_to_memory(layer, &Limits::default())?;
    let origin = format!("{shown} ({})", root.manifest.digest);
    if !is_bundle {
        if relocated_to.is_some() {
            return Err(format!(
                "{shown}: --relocated-to rewrites a bundle's .imgpkg/images.yml, but the root \
                 image is not a bundle (no {BUNDLE_LABEL} label)"
            )
            .into());
        }
        return Ok(Contents {
            files,
            images_lock: None,
            origin,
        });
    }
    let lock_bytes = files.get(IMAGES_LOCK_PATH).ok_or_else(|| {
        format!("{shown}: the root bundle has no {IMAGES_LOCK_PATH}; it is not a valid imgpkg bundle")
    })?;
    let mut lock = ImagesLock::parse(lock_bytes)?;
    if let Some(repository) = relocated_to {
        // What `copy --tar --to-repo REPO` followed by a pull makes of images.yml: every image
        // was copied into REPO under its digest.
        lock = lock.relocated_to(repository)?;
    }
    Ok(Contents {
        files,
        images_lock: Some(lock),
        origin,
    })
}

/// Print the error as the controller would report it, every problem on its own line.
fn failed(error: &RepositoryError) -> ExitCode {
    eprintln!("pkgr: {}", error.detailed());
    ExitCode::from(EXIT_FAILED)
}

fn plural(count: usize, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

fn print(output: &Output, origin: &str) -> CommandResult {
    for s in &output.skipped {
        let what = if s.kind.is_empty() && s.api_version.is_empty() {
            "a document that is not a Kubernetes object".to_string()
        } else {
            format!("{} {}", s.api_version, s.kind)
        };
        eprintln!(
            "pkgr: skipped {} doc {}: {what} is not a Package or PackageMetadata",
            s.file, s.document
        );
    }
    for d in &output.dropped_fields {
        eprintln!(
            "pkgr: note: {}: field {} is not part of kapp-controller's types and is left out, \
             as kapp-controller leaves it out (check its spelling)",
            d.place, d.field
        );
    }
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    for doc in output.yaml_documents() {
        stdout.write_all(doc?.as_bytes())?;
    }
    stdout.flush()?;
    eprintln!(
        "pkgr: rendered {} and {} from {origin} ({} relocated)",
        plural(output.metadatas.len(), "PackageMetadata", "PackageMetadatas"),
        plural(output.packages.len(), "Package", "Packages"),
        plural(output.relocated_images, "image", "images"),
    );
    Ok(ExitCode::SUCCESS)
}
