//! Bundle operations over the registry: resolve, fetch contents, localise images.yml as imgpkg
//! pull does, and read/write locations images.
use super::{
    BUNDLE_LABEL, BundleError, FileTree,
    image::config_labels,
    layer::{Extractor, Limits, read_to_memory, write_single_file_layer},
    lock::{ImageLocations, ImagesLock},
    push::{LayerBlob, push_image},
};
use crate::registry::{
    Client, Descriptor, ImageManifest, MEDIA_DOCKER_LAYER_GZIP, MEDIA_OCI_LAYER_GZIP, ManifestBody,
    Reference, RegistryError,
};
use futures_util::{StreamExt as _, TryStreamExt as _};
use std::collections::BTreeMap;
use tokio_util::io::{StreamReader, SyncIoBridge};

/// Path of the ImagesLock inside a bundle.
pub const IMAGES_LOCK_PATH: &str = ".imgpkg/images.yml";
/// Largest image config read.
const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;
/// HEAD requests in flight while checking a bundle's images.
const HEAD_CONCURRENCY: usize = 8;

/// What was fetched from a registry.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The reference resolved to a digest.
    pub resolved: Reference,
    pub is_bundle: bool,
    pub files: FileTree,
    /// For bundles: `.imgpkg/images.yml`, localised to the bundle's repository when imgpkg would.
    pub images_lock: Option<ImagesLock>,
}

/// An image manifest resolved to its digest, with its config's labels.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    /// The input reference at the manifest's digest.
    pub reference: Reference,
    pub manifest: ImageManifest,
    pub labels: BTreeMap<String, String>,
    /// The config carries `dev.carvel.imgpkg.bundle` (any value).
    pub is_bundle: bool,
}

/// GET the manifest (an image, not an index) and its config.
pub async fn resolve_image(client: &Client, reference: &Reference) -> Result<ResolvedImage, BundleError> {
    let manifest = client
        .get_manifest(reference)
        .await
        .map_err(|e| BundleError::fetching_image("fetching the manifest of", reference, e))?;
    let resolved = reference.with_digest(manifest.digest.clone());
    let body = manifest
        .parse()
        .map_err(|e| BundleError::registry("reading the manifest of", &resolved, e))?;
    let image = match body {
        ManifestBody::Image(image) => image,
        ManifestBody::Index(_) => {
            // imgpkg's sentence first and whole: scripts written for imgpkg match it.
            return Err(BundleError::Unexpected(format!(
                "Unable to pull non-images, such as image indexes. (hint: provide a specific digest to the image instead): {resolved} is an image index"
            )));
        }
    };
    let config = client
        .get_blob_bytes(&resolved, &image.config.digest, MAX_CONFIG_BYTES)
        .await
        .map_err(|e| BundleError::registry("fetching the image config of", &resolved, e))?;
    let labels =
        config_labels(&config).map_err(|e| e.context(format!("reading the image config of {resolved}")))?;
    Ok(ResolvedImage {
        is_bundle: labels.contains_key(BUNDLE_LABEL),
        reference: resolved,
        manifest: image,
        labels,
    })
}

/// The one gzip tar layer a bundle (or locations image) must have.
pub fn single_gzip_layer(image: &ResolvedImage) -> Result<&Descriptor, BundleError> {
    let layers = &image.manifest.layers;
    if layers.len() != 1 {
        return Err(BundleError::Unexpected(format!(
            "Expected bundle to only have a single layer, got {} ({})",
            layers.len(),
            image.reference
        )));
    }
    let layer = &layers[0];
    if layer.media_type != MEDIA_DOCKER_LAYER_GZIP && layer.media_type != MEDIA_OCI_LAYER_GZIP {
        return Err(BundleError::Unexpected(format!(
            "Expected layer to have docker layer media type, got {:?} ({})",
            layer.media_type, image.reference
        )));
    }
    Ok(layer)
}

/// Fetch a bundle (`expect_bundle`) or plain image's single layer into memory, localising images.yml.
pub async fn fetch_contents(
    client: &Client,
    reference: &Reference,
    expect_bundle: bool,
    limits: &Limits,
) -> Result<Fetched, BundleError> {
    let image = resolve_image(client, reference).await?;
    if expect_bundle && !image.is_bundle {
        return Err(BundleError::NotABundle {
            reference: image.reference.to_string(),
        });
    }
    let layer = single_gzip_layer(&image)?;
    let files = read_layer_to_memory(client, &image.reference, layer, limits).await?;
    let images_lock = if expect_bundle {
        let raw = files.get(IMAGES_LOCK_PATH).ok_or_else(|| {
            BundleError::Unexpected(format!(
                "bundle {} has no {IMAGES_LOCK_PATH}; it is not a valid imgpkg bundle",
                image.reference
            ))
        })?;
        let lock = ImagesLock::parse(raw).map_err(|e| {
            e.context(format!(
                "reading {IMAGES_LOCK_PATH} of bundle {}",
                image.reference
            ))
        })?;
        Some(localize_images_lock(client, &image.reference, &lock).await?)
    } else {
        None
    };
    Ok(Fetched {
        resolved: image.reference,
        is_bundle: image.is_bundle,
        files,
        images_lock,
    })
}

/// Compressed size allowed for a layer whose contents may be `limits.max_bytes`: gzip of
/// incompressible data is slightly larger than the data.
fn compressed_cap(limits: &Limits) -> u64 {
    limits
        .max_bytes
        .saturating_add(limits.max_bytes / 100)
        .saturating_add(1024 * 1024)
}

/// Stream a layer blob through gzip and tar into memory, never holding the compressed blob.
pub async fn read_layer_to_memory(
    client: &Client,
    repository: &Reference,
    layer: &Descriptor,
    limits: &Limits,
) -> Result<FileTree, BundleError> {
    if layer.size > compressed_cap(limits) {
        return Err(BundleError::LimitExceeded {
            limit: format!(
                "{} uncompressed bytes (layer {} of {repository} is {} bytes compressed)",
                limits.max_bytes, layer.digest, layer.size
            ),
            entry: None,
        });
    }
    let bridge = open_layer(client, repository, layer).await?;
    let limits = limits.clone();
    let result = tokio::task::spawn_blocking(move || read_to_memory(bridge, &limits))
        .await
        .map_err(|e| BundleError::Other(format!("the layer reader task failed: {e}")))?;
    result.map_err(|e| e.context(format!("reading layer {} of {repository}", layer.digest)))
}

/// Stream a layer blob (gzip or plain tar) onto disk with `extractor` (constant memory).
pub async fn extract_layer(
    client: &Client,
    repository: &Reference,
    layer: &Descriptor,
    mut extractor: Extractor,
) -> Result<Extractor, BundleError> {
    let bridge = open_layer(client, repository, layer).await?;
    let result = tokio::task::spawn_blocking(move || extractor.apply_layer(bridge).map(|()| extractor))
        .await
        .map_err(|e| BundleError::Other(format!("the layer extraction task failed: {e}")))?;
    result.map_err(|e| e.context(format!("extracting layer {} of {repository}", layer.digest)))
}

type BlobRead = SyncIoBridge<
    StreamReader<
        futures_util::stream::MapErr<crate::registry::BlobStream, fn(RegistryError) -> std::io::Error>,
        bytes::Bytes,
    >,
>;

async fn open_layer(
    client: &Client,
    repository: &Reference,
    layer: &Descriptor,
) -> Result<BlobRead, BundleError> {
    let stream = client
        .get_blob(repository, layer)
        .await
        .map_err(|e| BundleError::registry("fetching a layer blob of", repository, e))?;
    let to_io: fn(RegistryError) -> std::io::Error = std::io::Error::other;
    // Must be built inside the runtime: the bridge keeps a handle to drive the async reads.
    Ok(SyncIoBridge::new(StreamReader::new(stream.map_err(to_io))))
}

/// 404, 401 and 403 all mean "not there" to imgpkg when probing relocated images.
fn counts_as_missing(error: &RegistryError) -> bool {
    error.is_not_found()
        || matches!(
            error,
            RegistryError::Unauthorized { .. } | RegistryError::Denied { .. }
        )
}

/// The outcome of imgpkg pull's images.yml rewrite.
#[derive(Clone, Debug)]
pub struct Localized {
    pub lock: ImagesLock,
    /// The images were found in the bundle's repository and `lock` points there.
    pub relocated: bool,
    /// The bundle's locations image, when it has one.
    pub locations: Option<ImageLocations>,
}

/// imgpkg pull's rewrite: locations image, else every digest present in the bundle's repository,
/// else the lock untouched.
pub async fn localize_images_lock(
    client: &Client,
    bundle: &Reference,
    lock: &ImagesLock,
) -> Result<ImagesLock, BundleError> {
    Ok(localize(client, bundle, lock).await?.lock)
}

/// [`localize_images_lock`], also telling whether the lock was rewritten and what the
/// locations image said.
pub async fn localize(
    client: &Client,
    bundle: &Reference,
    lock: &ImagesLock,
) -> Result<Localized, BundleError> {
    let bundle = with_resolved_digest(client, bundle).await?;
    if let Some(locations) = read_locations(client, &bundle).await? {
        return Ok(Localized {
            lock: lock.relocated_to(&bundle)?,
            relocated: true,
            locations: Some(locations),
        });
    }
    let candidates = lock
        .images
        .iter()
        .map(|image| Ok(bundle.with_digest(image.digest()?)))
        .collect::<Result<Vec<_>, BundleError>>()?;
    // All or nothing: the first image missing from the bundle repository settles it, so stop
    // there (dropping the stream cancels the HEADs still in flight).
    let mut checks = futures_util::stream::iter(candidates.into_iter().map(|candidate| async move {
        match client.head_manifest(&candidate).await {
            Ok(head) => Ok(head.is_some()),
            Err(e) if counts_as_missing(&e) => Ok(false),
            Err(e) => Err(BundleError::registry(
                "checking whether the bundle repository holds",
                &candidate,
                e,
            )),
        }
    }))
    .buffered(HEAD_CONCURRENCY);
    let mut all_present = true;
    while let Some(present) = checks.next().await {
        if !present? {
            all_present = false;
            break;
        }
    }
    drop(checks);
    if all_present {
        Ok(Localized {
            lock: lock.relocated_to(&bundle)?,
            relocated: true,
            locations: None,
        })
    } else {
        tracing::debug!(
            bundle = %bundle,
            "one or more images not found in bundle repo; skipping lock file update"
        );
        Ok(Localized {
            lock: lock.clone(),
            relocated: false,
            locations: None,
        })
    }
}

async fn with_resolved_digest(client: &Client, reference: &Reference) -> Result<Reference, BundleError> {
    if reference.digest().is_some() {
        return Ok(reference.clone());
    }
    let head = client
        .head_manifest(reference)
        .await
        .map_err(|e| BundleError::registry("resolving", reference, e))?
        .ok_or_else(|| BundleError::Unexpected(format!("{reference} does not exist in the registry")))?;
    Ok(reference.with_digest(head.digest))
}

/// The tag of `bundle`'s locations image.
pub fn locations_reference(bundle: &Reference) -> Result<Reference, BundleError> {
    let digest = bundle.digest().ok_or_else(|| {
        BundleError::Unexpected(format!(
            "the locations image of {bundle} needs the bundle's digest"
        ))
    })?;
    Ok(bundle.with_tag(&format!("{}.image-locations.imgpkg", digest.dashed())))
}

/// The locations image of `bundle` (which must carry a digest), if there is one.
pub async fn read_locations(
    client: &Client,
    bundle: &Reference,
) -> Result<Option<ImageLocations>, BundleError> {
    let location_ref = locations_reference(bundle)?;
    let image = match resolve_image(client, &location_ref).await {
        Ok(image) => image,
        Err(BundleError::Registry { source, .. }) if counts_as_missing(&source) => return Ok(None),
        Err(e) => return Err(e.context(format!("reading the locations image {location_ref}"))),
    };
    let layer = single_gzip_layer(&image)?;
    let limits = Limits {
        max_bytes: 64 * 1024 * 1024,
        max_files: 16,
        max_depth: 4,
    };
    let files = read_layer_to_memory(client, &image.reference, layer, &limits).await?;
    let (_, yaml) = files
        .iter()
        .find(|(path, _)| path.rsplit('/').next() == Some("image-locations.yml"))
        .ok_or_else(|| {
            BundleError::Unexpected(format!(
                "the locations image {location_ref} has no image-locations.yml"
            ))
        })?;
    let locations = ImageLocations::parse(yaml)
        .map_err(|e| e.context(format!("reading the locations image {location_ref}")))?;
    Ok(Some(locations))
}

/// Write the locations image `<repo>:sha256-<hex>.image-locations.imgpkg` for `bundle`.
pub async fn write_locations(
    client: &Client,
    bundle: &Reference,
    locations: &ImageLocations,
) -> Result<(), BundleError> {
    let location_ref = locations_reference(bundle)?;
    let (bytes, info) =
        write_single_file_layer("image-locations.yml", locations.to_yaml().as_bytes(), 0o600)?;
    match push_image(
        client,
        &location_ref,
        LayerBlob::Memory(bytes.into()),
        &info,
        &BTreeMap::new(),
    )
    .await
    {
        Ok(_) => Ok(()),
        // Tag-immutable registries refuse a second write; the existing image is a valid cache.
        Err(e) if e.chain().to_lowercase().contains("immutable") => {
            match client.head_manifest(&location_ref).await {
                Ok(Some(_)) => Ok(()),
                _ => Err(e.context(format!("writing the locations image {location_ref}"))),
            }
        }
        Err(e) => Err(e.context(format!("writing the locations image {location_ref}"))),
    }
}
