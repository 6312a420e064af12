//! `describe`: a bundle's images and nested bundles, where each lives now (its primary location,
//! as imgpkg pull would localise it) and where it came from (its ImagesLock entry).
use super::BundleError;
use super::fetch::{
    IMAGES_LOCK_PATH, localize, locations_reference, read_layer_to_memory, resolve_image, single_gzip_layer,
};
use super::layer::Limits;
use super::lock::ImagesLock;
use super::signature::{find_signature, signature_ref};
use crate::registry::{Client, ManifestBody, Reference, RegistryError};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

/// Nested bundles followed at most this deep (a digest cannot contain itself; this bounds a
/// hostile registry that serves ever new bundles).
const MAX_DEPTH: usize = 32;

/// What an entry of a bundle is, in imgpkg's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ImageType {
    /// An image of the bundle's ImagesLock.
    Image,
    /// A nested bundle.
    Bundle,
    /// The locations image that `copy` writes next to a bundle.
    Internal,
    /// A cosign signature (`sha256-<hex>.sig`) of the bundle or one of its images.
    Signature,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Layer {
    pub digest: String,
    /// Not printed: imgpkg's description has only the digest.
    #[serde(skip)]
    pub size: u64,
}

/// One image of a bundle.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageInfo {
    /// Where it is now: `repo@sha256:…`.
    pub image: String,
    /// The ImagesLock entry it came from.
    pub origin: String,
    pub annotations: BTreeMap<String, String>,
    pub image_type: ImageType,
    /// Filled only when layers were asked for.
    pub layers: Vec<Layer>,
    /// Sum of the layer sizes; 0 unless layers were asked for (as imgpkg).
    pub size: u64,
    /// Why it could not be read (a signature lookup the registry denied: `access denied`);
    /// such an entry has no image, origin or layers, as in imgpkg's description.
    pub error: String,
}

/// A bundle and, recursively, its contents.
#[derive(Clone, Debug, PartialEq)]
pub struct Description {
    pub image: String,
    pub origin: String,
    pub annotations: BTreeMap<String, String>,
    /// Nested bundles by digest.
    pub bundles: BTreeMap<String, Description>,
    /// Images (and the locations image) by digest.
    pub images: BTreeMap<String, ImageInfo>,
    pub layers: Vec<Layer>,
}

impl Description {
    /// The bundle's digest (`sha256:…`).
    pub fn digest(&self) -> &str {
        self.image.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

/// What to look up besides the ImagesLock.
#[derive(Clone, Copy, Debug, Default)]
pub struct DescribeOptions {
    /// List every image's layers and size.
    pub layers: bool,
    /// List cosign signatures of the bundles and images (`sha256-<hex>.sig` tags).
    pub cosign_artifacts: bool,
}

/// Describe the bundle at `reference` (a tag or digest).
pub async fn describe(
    client: &Client,
    reference: &Reference,
    options: DescribeOptions,
) -> Result<Description, BundleError> {
    let root = resolve_image(client, reference).await?;
    if !root.is_bundle {
        return Err(BundleError::Unexpected(format!(
            "Only bundles can be described, and {reference} is not a bundle"
        )));
    }
    let origin = root.reference.to_string();
    describe_bundle(client, root.reference, origin, BTreeMap::new(), options, 0).await
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, BundleError>> + Send + 'a>>;

fn describe_bundle<'a>(
    client: &'a Client,
    primary: Reference,
    origin: String,
    annotations: BTreeMap<String, String>,
    options: DescribeOptions,
    depth: usize,
) -> Boxed<'a, Description> {
    let with_layers = options.layers;
    Box::pin(async move {
        if depth > MAX_DEPTH {
            return Err(BundleError::Unexpected(format!(
                "bundle {primary} nests bundles more than {MAX_DEPTH} deep; refusing to follow further"
            )));
        }
        let image = resolve_image(client, &primary).await?;
        let layer = single_gzip_layer(&image)?;
        let files = read_layer_to_memory(client, &image.reference, layer, &Limits::default()).await?;
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
        let localized = localize(client, &image.reference, &lock).await?;
        let mut description = Description {
            image: image.reference.to_string(),
            origin,
            annotations,
            bundles: BTreeMap::new(),
            images: BTreeMap::new(),
            layers: if with_layers {
                layers_of(&image.manifest.layers)
            } else {
                Vec::new()
            },
        };
        // Whose signatures this bundle lists: itself and every entry of its ImagesLock, nested
        // bundles included (imgpkg lists a nested bundle's signature both here and inside it).
        let mut signed = vec![image.reference.clone()];
        let mut entries: Vec<_> = lock.images.iter().zip(&localized.lock.images).collect();
        entries.sort_by(|a, b| a.0.image.cmp(&b.0.image));
        for (original, located) in entries {
            let reference = located.reference()?;
            let digest = located.digest()?.to_string();
            let known = localized.locations.as_ref().and_then(|l| {
                l.images
                    .iter()
                    .find(|i| i.image == original.image)
                    .map(|i| i.is_bundle)
            });
            let resolved = match known {
                Some(false) if !with_layers => None,
                _ => Some(resolve_image(client, &reference).await?),
            };
            let is_bundle = known.unwrap_or_else(|| resolved.as_ref().is_some_and(|r| r.is_bundle));
            signed.push(reference.clone());
            if is_bundle {
                let nested = describe_bundle(
                    client,
                    reference,
                    original.image.clone(),
                    original.annotations.clone(),
                    options,
                    depth + 1,
                )
                .await?;
                description.bundles.insert(digest, nested);
            } else {
                let layers = match (&resolved, with_layers) {
                    (Some(r), true) => layers_of(&r.manifest.layers),
                    _ => Vec::new(),
                };
                description.images.insert(
                    digest,
                    ImageInfo {
                        image: located.image.clone(),
                        origin: original.image.clone(),
                        annotations: original.annotations.clone(),
                        image_type: ImageType::Image,
                        size: layers.iter().map(|l| l.size).sum(),
                        layers,
                        error: String::new(),
                    },
                );
            }
        }
        if localized.locations.is_some() {
            let tag = locations_reference(&image.reference)?;
            if let Some(head) = client
                .head_manifest(&tag)
                .await
                .map_err(|e| BundleError::registry("checking the locations image", &tag, e))?
            {
                let at = image.reference.with_digest(head.digest.clone());
                // imgpkg lists the locations image's layer like any other entry's.
                let layers = if with_layers {
                    manifest_layers(client, &at).await?
                } else {
                    Vec::new()
                };
                description.images.insert(
                    head.digest.to_string(),
                    ImageInfo {
                        image: at.to_string(),
                        origin: at.to_string(),
                        annotations: BTreeMap::new(),
                        image_type: ImageType::Internal,
                        size: layers.iter().map(|l| l.size).sum(),
                        layers,
                        error: String::new(),
                    },
                );
            }
        }
        if options.cosign_artifacts {
            for subject in &signed {
                if let Some((digest, info)) = signature(client, subject, with_layers).await? {
                    description.images.insert(digest, info);
                }
            }
        }
        Ok(description)
    })
}

/// The cosign signature of `subject` (which carries a digest), described as imgpkg lists it.
async fn signature(
    client: &Client,
    subject: &Reference,
    with_layers: bool,
) -> Result<Option<(String, ImageInfo)>, BundleError> {
    let found = match find_signature(client, subject).await {
        Ok(found) => found,
        // imgpkg lists a denied lookup as an entry of its own, keyed by the signature tag, with
        // the error instead of an image.
        Err(RegistryError::Denied { .. }) => {
            let key = signature_ref(subject);
            return Ok(Some((
                key,
                ImageInfo {
                    image: String::new(),
                    origin: String::new(),
                    annotations: BTreeMap::new(),
                    image_type: ImageType::Signature,
                    layers: Vec::new(),
                    size: 0,
                    error: "access denied".to_string(),
                },
            )));
        }
        Err(e) => {
            return Err(BundleError::registry(
                "checking for a cosign signature of",
                subject,
                e,
            ));
        }
    };
    let Some(found) = found else {
        return Ok(None);
    };
    let digest = found.image.digest().map(ToString::to_string).unwrap_or_default();
    let layers = if with_layers {
        manifest_layers(client, &found.image).await?
    } else {
        Vec::new()
    };
    let image = found.image.to_string();
    Ok(Some((
        digest,
        ImageInfo {
            origin: image.clone(),
            image,
            annotations: BTreeMap::from([("tag".to_string(), found.tag)]),
            image_type: ImageType::Signature,
            size: layers.iter().map(|l| l.size).sum(),
            layers,
            error: String::new(),
        },
    )))
}

/// The layers of the image at `reference`, from its manifest alone (no config needed).
async fn manifest_layers(client: &Client, reference: &Reference) -> Result<Vec<Layer>, BundleError> {
    let manifest = client
        .get_manifest(reference)
        .await
        .map_err(|e| BundleError::fetching_image("fetching the manifest of", reference, e))?;
    match manifest
        .parse()
        .map_err(|e| BundleError::registry("reading the manifest of", reference, e))?
    {
        ManifestBody::Image(image) => Ok(layers_of(&image.layers)),
        ManifestBody::Index(_) => Err(BundleError::Unexpected(format!(
            "{reference} is an image index, which has no layers of its own to list"
        ))),
    }
}

fn layers_of(layers: &[crate::registry::Descriptor]) -> Vec<Layer> {
    layers
        .iter()
        .map(|l| Layer {
            digest: l.digest.to_string(),
            size: l.size,
        })
        .collect()
}
