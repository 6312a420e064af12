//! Cosign signatures as imgpkg finds them: the tag `sha256-<hex>.sig` next to the signed image,
//! in the same repository. Used by `describe --cosign-artifacts` and `copy --cosign-signatures`.
use crate::registry::{Client, Digest, Reference, RegistryError};

/// `sha256-<hex>.sig`: the tag cosign gives the signature of the image `digest`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("{}.sig", digest.dashed())
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
    let Some(head) = client.head_manifest(&subject.with_tag(&tag)).await? else {
        return Ok(None);
    };
    Ok(Some(Signature {
        tag,
        image: subject.with_digest(head.digest),
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
