//! Cosign signatures as imgpkg finds them: the tag `sha256-<hex>.sig` next to the signed image,
//! in the same repository. Used by `describe --cosign-artifacts` and `copy --cosign-signatures`.
use crate::registry::{Client, Digest, Reference, RegistryError};

/// `sha256-<hex>.sig`: the tag cosign gives the signature of the image `digest`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("{}.sig", digest.dashed())
}

/// `repo:sha256-<hex>.sig`, where the signature of `subject` (`repo@sha256:…`) is looked up, as
/// imgpkg names it when the lookup fails (`subject` itself when it has no digest).
pub fn signature_ref(subject: &Reference) -> String {
    match subject.digest() {
        Some(d) => subject.with_tag(&signature_tag(d)).to_string(),
        None => subject.to_string(),
    }
}

/// A signature found next to an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The `sha256-<hex>.sig` tag it was found under.
    pub tag: String,
    /// The signature image itself: `repo@sha256:…` in the signed image's repository.
    pub image: Reference,
}

/// The signature of `subject` (a digest reference), or `None` when its repository has no
/// `sha256-<hex>.sig` tag for it. Any answer other than found / not found is an error: a
/// registry that refuses the lookup must not make a copy silently drop signatures.
pub async fn find_signature(
    client: &Client,
    subject: &Reference,
) -> Result<Option<Signature>, RegistryError> {
    let Some(digest) = subject.digest() else {
        return Ok(None);
    };
    let tag = signature_tag(digest);
    let at = subject.with_tag(&tag);
    let found = match client.head_manifest(&at).await {
        Ok(head) => head.map(|h| h.digest),
        // As go-containerregistry (imgpkg) does, a refused HEAD is asked again with GET, whose
        // answer carries the registry's own words for the refusal.
        Err(_) => match client.get_manifest(&at).await {
            Ok(manifest) => Some(manifest.digest),
            Err(RegistryError::ManifestUnknown { .. }) => None,
            Err(e) => return Err(e),
        },
    };
    Ok(found.map(|digest| Signature {
        tag,
        image: subject.with_digest(digest),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_the_dashed_digest_with_sig() {
        let d = Digest::of(b"signed");
        assert_eq!(signature_tag(&d), format!("sha256-{}.sig", d.hex()));
    }
}
