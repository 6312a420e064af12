//! Cosign signature verification with public keys, offline (no transparency log, no
//! certificate authority): is the manifest digest signed, in cosign's layout, by one of the keys?
//!
//! [`verify`] looks up `sha256-<hex>.sig` for the subject ([`SignatureSource`]: the subject's
//! repository, or a tarball), and tries every signature layer in it ([`payload::check`]). The
//! first one a key verifies, over a payload naming the subject's digest, is the answer; otherwise
//! one [`VerifyError`] names the digest, the tag tried and why each signature was refused.
//! [`subjects`] lists what `--recursive` verifies in a copy plan.
pub mod keys;
pub mod payload;
mod source;

pub use keys::{KeyError, PublicKey};
pub use payload::{Rejection, parse_annotation};
pub use source::{MAX_PAYLOAD_BYTES, SignatureSource, SourceError, Subject};

use crate::bundle::signature::signature_tag;
use crate::registry::{Digest, ManifestBody, RegistryError};
use crate::relocate::Plan;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

/// What vouches for a subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub subject: Subject,
    /// The `sha256-<hex>.sig` tag.
    pub tag: String,
    /// The signature image's digest.
    pub signature: Digest,
    /// Which layer of it (1-based, as people count).
    pub layer: usize,
    /// The key's name (file, Secret key) and type.
    pub key: String,
    pub key_kind: &'static str,
}

/// One signature that was tried and refused (`layer` is `None` when there was none to try).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub tag: String,
    pub layer: Option<usize>,
    pub rejection: Rejection,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Read, and nothing vouches for it.
    #[error("{}", not_verified(.subject, .attempts))]
    NotVerified {
        subject: Subject,
        attempts: Vec<Attempt>,
    },
    /// The signatures could not be read (a registry error, a broken tarball).
    #[error("cannot verify {}: {source}", .subject.name)]
    Source {
        subject: Subject,
        #[source]
        source: SourceError,
    },
}

impl VerifyError {
    pub fn subject(&self) -> &Subject {
        match self {
            VerifyError::NotVerified { subject, .. } | VerifyError::Source { subject, .. } => subject,
        }
    }

    /// Why, in one line (the subject left out), registry errors worded for `audience`: for
    /// tables and status conditions.
    pub fn reason(&self, audience: &dyn crate::registry::Audience) -> String {
        match self {
            VerifyError::NotVerified { attempts, .. } => reasons(attempts),
            VerifyError::Source { source, .. } => {
                let mut out = RegistryError::link_text(source, audience);
                let mut cause = std::error::Error::source(source);
                while let Some(c) = cause {
                    let _ = write!(out, ": {}", RegistryError::link_text(c, audience));
                    cause = c.source();
                }
                out
            }
        }
    }
}

fn not_verified(subject: &Subject, attempts: &[Attempt]) -> String {
    // A registry subject's name already holds its digest.
    let digest = if subject.name.contains(subject.digest.as_str()) {
        String::new()
    } else {
        format!(" (digest {})", subject.digest)
    };
    format!(
        "{}{digest} is not signed by any of the keys given: {}",
        subject.name,
        reasons(attempts)
    )
}

/// `sha256-<hex>.sig: signature 1: …; signature 2: …` (one tag per subject, named once).
fn reasons(attempts: &[Attempt]) -> String {
    let mut out = String::new();
    let mut tag = None;
    for a in attempts {
        if tag != Some(&a.tag) {
            if tag.is_some() {
                out.push_str("; ");
            }
            let _ = write!(out, "{}: ", a.tag);
            tag = Some(&a.tag);
        } else {
            out.push_str("; ");
        }
        match a.layer {
            Some(n) => {
                let _ = write!(out, "signature {n}: {}", a.rejection);
            }
            None => {
                let _ = write!(out, "{}", a.rejection);
            }
        }
    }
    out
}

/// Verify that `subject` carries a cosign signature one of `keys` made, over a payload for its
/// digest, whose `optional` map holds every `annotations` entry.
pub async fn verify(
    source: SignatureSource<'_>,
    subject: &Subject,
    keys: &[PublicKey],
    annotations: &BTreeMap<String, String>,
) -> Result<Verified, VerifyError> {
    let tag = signature_tag(&subject.digest);
    let failed = |source| VerifyError::Source {
        subject: subject.clone(),
        source,
    };
    let refused = |attempts| VerifyError::NotVerified {
        subject: subject.clone(),
        attempts,
    };
    let Some(manifest) = source.signature_manifest(subject).await.map_err(failed)? else {
        return Err(refused(vec![Attempt {
            tag,
            layer: None,
            rejection: Rejection::Missing,
        }]));
    };
    let layers = match manifest.parse() {
        Ok(ManifestBody::Image(image)) => image.layers,
        Ok(ManifestBody::Index(_)) => {
            return Err(refused(vec![malformed(
                &tag,
                "it is an image index, not a signature image",
            )]));
        }
        Err(e) => return Err(refused(vec![malformed(&tag, &e.to_string())])),
    };
    if layers.is_empty() {
        return Err(refused(vec![malformed(
            &tag,
            "the signature image has no layers",
        )]));
    }
    let mut attempts = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let signature = match payload::layer_signature(layer) {
            Ok(s) => s,
            Err(rejection) => {
                attempts.push(Attempt {
                    tag: tag.clone(),
                    layer: Some(i + 1),
                    rejection,
                });
                continue;
            }
        };
        let payload = source.payload(subject, layer).await.map_err(failed)?;
        match payload::check(&subject.digest, &payload, &signature, keys, annotations) {
            Ok(k) => {
                return Ok(Verified {
                    subject: subject.clone(),
                    tag,
                    signature: manifest.digest.clone(),
                    layer: i + 1,
                    key: keys[k].name().to_string(),
                    key_kind: keys[k].kind(),
                });
            }
            Err(rejection) => attempts.push(Attempt {
                tag: tag.clone(),
                layer: Some(i + 1),
                rejection,
            }),
        }
    }
    Err(refused(attempts))
}

fn malformed(tag: &str, reason: &str) -> Attempt {
    Attempt {
        tag: tag.to_string(),
        layer: None,
        rejection: Rejection::Malformed(reason.to_string()),
    }
}

/// What to verify in a copy plan: the root (or, without one, every top-level entry that is not
/// itself a signature) and, when `recursive`, every image and nested bundle of the bundles'
/// images.yml, once each, in the order they are reached.
pub fn subjects(plan: &Plan, recursive: bool) -> Vec<Subject> {
    let subject = |digest: &Digest| {
        let node = plan.nodes.get(digest);
        match node.and_then(|n| n.source.as_ref()) {
            Some(repository) => Subject::in_registry(repository, digest.clone()),
            None => Subject {
                digest: digest.clone(),
                repository: None,
                name: node
                    .map(|n| n.display_name())
                    .unwrap_or_else(|| digest.to_string()),
            },
        }
    };
    let mut queue: Vec<Digest> = match &plan.root {
        Some(root) => vec![root.digest.clone()],
        None => plan
            .tops
            .iter()
            .filter(|t| !t.tag.as_deref().is_some_and(|t| t.ends_with(".sig")))
            .map(|t| t.digest.clone())
            .collect(),
    };
    let mut seen: HashSet<Digest> = queue.iter().cloned().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < queue.len() {
        let digest = queue[i].clone();
        i += 1;
        out.push(subject(&digest));
        if !recursive {
            continue;
        }
        let Some(lock) = plan.nodes.get(&digest).and_then(|n| n.lock.as_ref()) else {
            continue;
        };
        for entry in &lock.images {
            if let Ok(d) = entry.digest()
                && seen.insert(d.clone())
            {
                queue.push(d);
            }
        }
    }
    out
}
