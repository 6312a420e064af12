//! Where signatures are read from: the subject's repository in a registry (the tag
//! `sha256-<hex>.sig` next to it, as cosign writes it), or a tarball written by
//! `copy --to-tar --cosign-signatures` (the entry carrying that tag; no network).
use crate::bundle::signature::signature_tag;
use crate::bundle::tarball::TarballReader;
use crate::registry::{Client, Descriptor, Digest, Manifest, Reference, RegistryError};
use bytes::Bytes;
use std::io::Read as _;

/// The largest payload read: cosign's are a few hundred bytes, annotations included.
pub const MAX_PAYLOAD_BYTES: u64 = 4 * 1024 * 1024;

/// Where to look for signatures.
#[derive(Clone, Copy)]
pub enum SignatureSource<'a> {
    Registry(&'a Client),
    Tarball(&'a TarballReader),
}

/// What is verified: a manifest digest and, for registries, the repository holding it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub digest: Digest,
    /// The repository the signature tag is looked up in (registry sources).
    pub repository: Option<Reference>,
    /// How reports name it (`registry/repo@sha256:…`, or the images.yml entry).
    pub name: String,
}

impl Subject {
    /// A subject in a registry, named by where it is.
    pub fn in_registry(repository: &Reference, digest: Digest) -> Subject {
        let at = repository.with_digest(digest.clone());
        Subject {
            digest,
            repository: Some(at.clone()),
            name: at.to_string(),
        }
    }
}

/// A failure to read (not a rejection of what was read).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("reading the signature {tag} of {subject}")]
    Registry {
        subject: String,
        tag: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error("reading the signature {tag} of {subject}: {reason}")]
    Other {
        subject: String,
        tag: String,
        reason: String,
    },
}

impl SignatureSource<'_> {
    /// The `.sig` manifest of `subject`, or `None` when it has none.
    pub async fn signature_manifest(&self, subject: &Subject) -> Result<Option<Manifest>, SourceError> {
        let tag = signature_tag(&subject.digest);
        match self {
            SignatureSource::Registry(client) => {
                let Some(repository) = &subject.repository else {
                    return Err(other(subject, &tag, "no repository is known for it".into()));
                };
                match client.get_manifest(&repository.with_tag(&tag)).await {
                    Ok(manifest) => Ok(Some(manifest)),
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => Err(SourceError::Registry {
                        subject: subject.name.clone(),
                        tag,
                        source: Box::new(e),
                    }),
                }
            }
            SignatureSource::Tarball(reader) => Ok(reader
                .images()
                .iter()
                .find(|i| i.tag.as_deref() == Some(tag.as_str()))
                .map(|i| i.manifest.clone())),
        }
    }

    /// A payload blob, verified against its digest, at most [`MAX_PAYLOAD_BYTES`].
    pub async fn payload(&self, subject: &Subject, layer: &Descriptor) -> Result<Bytes, SourceError> {
        let tag = signature_tag(&subject.digest);
        if layer.size > MAX_PAYLOAD_BYTES {
            return Err(other(
                subject,
                &tag,
                format!(
                    "its payload {} is {} bytes, more than the {MAX_PAYLOAD_BYTES} read",
                    layer.digest, layer.size
                ),
            ));
        }
        match self {
            SignatureSource::Registry(client) => {
                let Some(repository) = &subject.repository else {
                    return Err(other(subject, &tag, "no repository is known for it".into()));
                };
                client
                    .get_blob_bytes(repository, &layer.digest, MAX_PAYLOAD_BYTES)
                    .await
                    .map_err(|e| SourceError::Registry {
                        subject: subject.name.clone(),
                        tag,
                        source: Box::new(e),
                    })
            }
            SignatureSource::Tarball(reader) => {
                let mut bytes = Vec::new();
                reader
                    .open_layer(&layer.digest)
                    .map_err(|e| e.to_string())
                    .and_then(|r| {
                        r.take(MAX_PAYLOAD_BYTES + 1)
                            .read_to_end(&mut bytes)
                            .map_err(|e| e.to_string())
                    })
                    .map_err(|reason| other(subject, &tag, reason))?;
                // Read whole and verified: the reader checks the digest only at the entry's end.
                if bytes.len() as u64 > MAX_PAYLOAD_BYTES || Digest::of(&bytes) != layer.digest {
                    return Err(other(
                        subject,
                        &tag,
                        format!(
                            "its payload {} in the tarball does not match its digest",
                            layer.digest
                        ),
                    ));
                }
                Ok(Bytes::from(bytes))
            }
        }
    }
}

fn other(subject: &Subject, tag: &str, reason: String) -> SourceError {
    SourceError::Other {
        subject: subject.name.clone(),
        tag: tag.to_string(),
        reason,
    }
}
