//! Image references (`registry/repository[:tag][@digest]`) with Docker's normalisation, and digests.
use super::RegistryError;
use std::fmt;

/// A content digest, always `sha256:<64 lowercase hex>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parse `sha256:<64 hex>`; anything else is an error.
    pub fn parse(s: &str) -> Result<Digest, RegistryError> {
        todo!("{s}")
    }
    /// The sha256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        todo!("{}", bytes.len())
    }
    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The 64 hex characters.
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }
    /// `sha256-<hex>`: the form used in imgpkg tags and tarball entry names.
    pub fn dashed(&self) -> String {
        format!("sha256-{}", self.hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A fully normalised reference: `ubuntu` is `index.docker.io/library/ubuntu:latest`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parse an image reference; without tag or digest the tag is `latest`.
    pub fn parse(s: &str) -> Result<Reference, RegistryError> {
        todo!("{s}")
    }
    /// Parse a repository (no tag, no digest), as given to `--to-repo`.
    pub fn parse_repository(s: &str) -> Result<Reference, RegistryError> {
        todo!("{s}")
    }
    /// Parse a reference, keeping "no tag given" (for tag selection); no `latest` default.
    pub fn parse_untagged(s: &str) -> Result<Reference, RegistryError> {
        todo!("{s}")
    }
    /// Registry host, with port if any (`index.docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }
    /// Repository path (`library/ubuntu`).
    pub fn repository(&self) -> &str {
        &self.repository
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }
    /// `registry/repository`.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
    /// The same repository at `digest` (tag dropped).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            tag: None,
            ..self.clone()
        }
    }
    /// The same repository at `tag` (digest dropped).
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }
    /// What to put in a manifest URL: the digest if any, else the tag.
    pub fn manifest_selector(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}
