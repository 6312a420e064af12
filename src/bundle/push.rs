//! Pushing a one-layer imgpkg image (bundle, plain image or locations image) to a registry.
use super::BundleError;
use super::image::{config_json, manifest_json};
use super::layer::LayerInfo;
use crate::registry::{Client, Digest, MEDIA_DOCKER_MANIFEST, Reference};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where the gzip layer bytes are.
pub enum LayerBlob {
    /// Small layers built in memory.
    Memory(Bytes),
    /// Large layers written to a file first, streamed from it with constant memory.
    File(PathBuf),
}

/// The tag imgpkg adds to every pushed image so registry GC never collects it.
pub fn imgpkg_tag(digest: &Digest) -> String {
    format!("{}.imgpkg", digest.dashed())
}

/// Push a one-layer image: the layer (only if the repository lacks it), the config, the manifest
/// at `reference`'s tag, and the same manifest at `sha256-<hex>.imgpkg`. Returns the digest.
pub async fn push_image(
    client: &Client,
    reference: &Reference,
    layer: LayerBlob,
    info: &LayerInfo,
    labels: &BTreeMap<String, String>,
) -> Result<Digest, BundleError> {
    let exists = client
        .blob_exists(reference, &info.digest)
        .await
        .map_err(|e| BundleError::registry("checking for the layer blob in", reference, e))?;
    if !exists {
        match layer {
            LayerBlob::Memory(bytes) => {
                let pushed = client
                    .push_blob_bytes(reference, bytes)
                    .await
                    .map_err(|e| BundleError::registry("uploading the layer blob to", reference, e))?;
                if pushed != info.digest {
                    return Err(BundleError::Unexpected(format!(
                        "the layer uploaded to {reference} has digest {pushed}, expected {}",
                        info.digest
                    )));
                }
            }
            LayerBlob::File(path) => {
                let file = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| BundleError::io("opening the layer file", &path, e))?;
                let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
                client
                    .push_blob(reference, &info.digest, info.size, stream)
                    .await
                    .map_err(|e| BundleError::registry("uploading the layer blob to", reference, e))?;
            }
        }
    }
    let config = Bytes::from(config_json(&info.diff_id, labels));
    let config_size = config.len() as u64;
    let config_digest = Digest::of(&config);
    let config_exists = client
        .blob_exists(reference, &config_digest)
        .await
        .map_err(|e| BundleError::registry("checking for the config blob in", reference, e))?;
    if !config_exists {
        client
            .push_blob_bytes(reference, config)
            .await
            .map_err(|e| BundleError::registry("uploading the config blob to", reference, e))?;
    }
    let manifest = Bytes::from(manifest_json(
        (&config_digest, config_size),
        (&info.digest, info.size),
    ));
    let digest = Digest::of(&manifest);
    let target = if reference.tag().is_some() {
        reference.clone()
    } else {
        reference.with_tag("latest")
    };
    client
        .put_manifest(&target, MEDIA_DOCKER_MANIFEST, manifest.clone())
        .await
        .map_err(|e| BundleError::registry("writing the manifest to", &target, e))?;
    let internal = reference.with_tag(&imgpkg_tag(&digest));
    client
        .put_manifest(&internal, MEDIA_DOCKER_MANIFEST, manifest)
        .await
        .map_err(|e| BundleError::registry("writing the manifest to", &internal, e))?;
    Ok(digest)
}

/// `push -b` (a bundle, labelled) or `push -i` (a plain image).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushKind {
    Bundle,
    Image,
}

/// Check the inputs as imgpkg does: a bundle needs exactly one `.imgpkg` directory, a direct
/// child of one `-f` directory, holding a valid `images.yml`; a plain image may have none.
pub fn validate_inputs(kind: PushKind, inputs: &[PathBuf], exclusions: &[String]) -> Result<(), BundleError> {
    if inputs.is_empty() {
        return Err(BundleError::Input(
            "Expected at least one input file or directory (-f)".into(),
        ));
    }
    let mut found = Vec::new();
    for input in inputs {
        let meta = std::fs::symlink_metadata(input)
            .map_err(|e| BundleError::io("reading the input path", input, e))?;
        if meta.is_dir() {
            find_imgpkg_dirs(input, input, exclusions, &mut found)?;
        }
    }
    match kind {
        PushKind::Image => {
            if let Some(dir) = found.first() {
                return Err(BundleError::Input(format!(
                    "Images cannot be pushed with '.imgpkg' directories ({dir:?}), consider using --bundle (-b) option"
                )));
            }
        }
        PushKind::Bundle => {
            if found.len() != 1 {
                let list: Vec<String> = found.iter().map(|p| format!("{p:?}")).collect();
                return Err(BundleError::Input(format!(
                    "Expected one '.imgpkg' dir, got {}: [{}] (a bundle needs exactly one .imgpkg directory with images.yml, directly inside one -f directory)",
                    found.len(),
                    list.join(", ")
                )));
            }
            let dir = &found[0];
            let parent = dir.parent().unwrap_or(dir);
            if !inputs.iter().any(|input| input.as_path() == parent) {
                let roots: Vec<String> = inputs.iter().map(|p| format!("{p:?}")).collect();
                return Err(BundleError::Input(format!(
                    "Expected '.imgpkg' directory {dir:?} to be a direct child of one of: {}",
                    roots.join(", ")
                )));
            }
            let images = dir.join("images.yml");
            let raw = std::fs::read(&images).map_err(|e| {
                BundleError::io(
                    "reading the bundle's ImagesLock (a bundle needs .imgpkg/images.yml)",
                    &images,
                    e,
                )
            })?;
            super::lock::ImagesLock::parse(&raw).map_err(|e| e.context(format!("checking {images:?}")))?;
        }
    }
    Ok(())
}

fn find_imgpkg_dirs(
    root: &std::path::Path,
    dir: &std::path::Path,
    exclusions: &[String],
    found: &mut Vec<PathBuf>,
) -> Result<(), BundleError> {
    let entries = std::fs::read_dir(dir).map_err(|e| BundleError::io("listing directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BundleError::io("listing directory", dir, e))?;
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|e| BundleError::io("reading metadata of", &path, e))?;
        if !file_type.is_dir() {
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        if exclusions.contains(&rel) {
            continue;
        }
        if entry.file_name() == ".imgpkg" {
            found.push(path.clone());
        }
        find_imgpkg_dirs(root, &path, exclusions, found)?;
    }
    Ok(())
}

/// The label a bundle carries, reserved: `-l` may not set it.
pub fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), BundleError> {
    if labels.contains_key(super::BUNDLE_LABEL) {
        return Err(BundleError::Input(format!(
            "Label '{}' is reserved for bundles; push with -b instead of setting it",
            super::BUNDLE_LABEL
        )));
    }
    Ok(())
}

/// Build the layer from `inputs` in a temporary file (constant memory) and push it as a bundle
/// or plain image at `reference` (which must carry a tag, not a digest). Returns the digest.
pub async fn push_dir(
    client: &Client,
    reference: &Reference,
    kind: PushKind,
    inputs: &[PathBuf],
    exclusions: &[String],
    labels: &BTreeMap<String, String>,
    permissions: super::layer::Permissions,
) -> Result<Digest, BundleError> {
    if reference.digest().is_some() {
        return Err(BundleError::Input(format!(
            "cannot push to {reference}: give a tag (repo:tag) rather than a digest"
        )));
    }
    check_labels(labels)?;
    validate_inputs(kind, inputs, exclusions)?;
    let mut labels = labels.clone();
    if kind == PushKind::Bundle {
        labels.insert(super::BUNDLE_LABEL.to_string(), "true".to_string());
    }
    let temp = tempfile::NamedTempFile::new().map_err(|e| {
        BundleError::io(
            "creating a temporary file for the layer in",
            std::env::temp_dir(),
            e,
        )
    })?;
    let (inputs_owned, exclusions_owned) = (inputs.to_vec(), exclusions.to_vec());
    let file = temp
        .as_file()
        .try_clone()
        .map_err(|e| BundleError::io("opening the temporary layer file", temp.path(), e))?;
    let info = tokio::task::spawn_blocking(move || {
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
        let info = super::layer::write_layer_with(&inputs_owned, &exclusions_owned, permissions, &mut out)?;
        std::io::Write::flush(&mut out)
            .map_err(|e| BundleError::io("writing the temporary layer file", "<temp>", e))?;
        Ok::<_, BundleError>(info)
    })
    .await
    .map_err(|e| BundleError::Other(format!("the layer writer task failed: {e}")))??;
    push_image(
        client,
        reference,
        LayerBlob::File(temp.path().to_path_buf()),
        &info,
        &labels,
    )
    .await
}
