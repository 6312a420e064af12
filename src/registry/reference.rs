//! Image references (`registry/repository[:tag][@digest]`) with Docker's normalisation, and digests.
use super::RegistryError;
use sha2::{Digest as _, Sha256};
use std::fmt;

/// Docker Hub's canonical registry host, as ggcr and imgpkg spell it.
pub const DOCKER_HUB: &str = "index.docker.io";
const MAX_NAME_LEN: usize = 255;

/// A content digest, always `sha256:<64 lowercase hex>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parse `sha256:<64 hex>`; anything else is an error.
    pub fn parse(s: &str) -> Result<Digest, RegistryError> {
        let err = |reason: &str| RegistryError::InvalidDigest {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let Some((algorithm, hex)) = s.split_once(':') else {
            return Err(err("missing the algorithm prefix"));
        };
        if algorithm != "sha256" {
            return Err(err(&format!(
                "unsupported algorithm {algorithm:?}, only sha256 is supported"
            )));
        }
        if hex.len() != 64 {
            return Err(err(&format!(
                "the hex part has {} characters instead of 64",
                hex.len()
            )));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err("the hex part must be lowercase hexadecimal"));
        }
        Ok(Digest(s.to_string()))
    }
    /// The sha256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        let mut hasher = Sha256::new();
        hasher.update(bytes);
        Digest::from_sha256(hasher)
    }
    /// Finish an incremental sha256 (used while streaming blobs).
    pub fn from_sha256(hasher: Sha256) -> Digest {
        Digest(format!("sha256:{}", hex::encode(hasher.finalize())))
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

/// Serialised as the `sha256:<hex>` string; deserialising validates it.
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Digest {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl std::str::FromStr for Reference {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
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
        let mut r = Self::parse_untagged(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some("latest".to_string());
        }
        Ok(r)
    }
    /// Parse a repository (no tag, no digest), as given to `--to-repo`.
    pub fn parse_repository(s: &str) -> Result<Reference, RegistryError> {
        let r = Self::parse_untagged(s)?;
        if r.tag.is_some() || r.digest.is_some() {
            return Err(invalid(
                s,
                "expected a repository without tag or digest (for example registry.corp/apps/bundle)",
            ));
        }
        Ok(r)
    }
    /// Parse a reference, keeping "no tag given" (for tag selection); no `latest` default.
    pub fn parse_untagged(s: &str) -> Result<Reference, RegistryError> {
        parse_reference(s)
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

fn invalid(input: &str, reason: &str) -> RegistryError {
    RegistryError::InvalidReference {
        input: input.to_string(),
        reason: reason.to_string(),
        fix: None,
    }
}

/// Docker's grammar: `[domain/]path[:tag][@digest]`, then ggcr's normalisation of Docker Hub.
fn parse_reference(input: &str) -> Result<Reference, RegistryError> {
    if input.is_empty() {
        return Err(invalid(input, "the reference is empty"));
    }
    if input.contains("://") {
        return Err(RegistryError::InvalidReference {
            input: input.to_string(),
            reason: "a reference must not include a protocol prefix such as http:// or https://; \
                     give host/repository"
                .to_string(),
            fix: Some(crate::registry::Fix::PlainHttp),
        });
    }
    if input.trim() != input || input.chars().any(char::is_whitespace) {
        return Err(invalid(input, "the reference contains whitespace"));
    }
    let (rest, digest) = match input.split_once('@') {
        Some((rest, d)) => {
            let digest = Digest::parse(d).map_err(|e| invalid(input, &e.to_string()))?;
            (rest, Some(digest))
        }
        None => (input, None),
    };
    // A ':' after the last '/' separates the tag; one before it belongs to a registry port.
    let last_slash = rest.rfind('/');
    let (name, tag) = match rest.rfind(':') {
        Some(colon) if last_slash.is_none_or(|s| colon > s) => (&rest[..colon], Some(&rest[colon + 1..])),
        _ => (rest, None),
    };
    if let Some(tag) = tag {
        validate_tag(input, tag)?;
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(
            input,
            &format!("the name is longer than {MAX_NAME_LEN} characters"),
        ));
    }
    let (registry, repository) = match name.split_once('/') {
        Some((first, path)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (first.to_string(), path.to_string())
        }
        Some(_) => (DOCKER_HUB.to_string(), name.to_string()),
        None => (DOCKER_HUB.to_string(), name.to_string()),
    };
    validate_registry(input, &registry)?;
    let registry = match registry.as_str() {
        "docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        _ => registry,
    };
    let repository = if registry == DOCKER_HUB && !repository.contains('/') {
        format!("library/{repository}")
    } else {
        repository
    };
    validate_repository(input, &repository)?;
    Ok(Reference {
        registry,
        repository,
        tag: tag.map(str::to_string),
        digest,
    })
}

fn validate_tag(input: &str, tag: &str) -> Result<(), RegistryError> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            input,
            &format!(
                "tag {tag:?} is invalid: a tag is 1 to 128 letters, digits, '_', '.' or '-' and cannot start with '.' or '-'"
            ),
        ))
    }
}

fn validate_registry(input: &str, registry: &str) -> Result<(), RegistryError> {
    let (host, port) = if let Some(stripped) = registry.strip_prefix('[') {
        // IPv6 literal: [::1]:5000
        let Some((addr, after)) = stripped.split_once(']') else {
            return Err(invalid(
                input,
                &format!("registry {registry:?} has an unclosed '['"),
            ));
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid(
                input,
                &format!("registry {registry:?} is not a valid IPv6 address"),
            ));
        }
        match after {
            "" => return Ok(()),
            p if p.starts_with(':') => ("", Some(&p[1..])),
            _ => {
                return Err(invalid(
                    input,
                    &format!("registry {registry:?} is malformed after ']'"),
                ));
            }
        }
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (registry, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid(
            input,
            &format!("registry {registry:?} has an invalid port {port:?}"),
        ));
    }
    if !registry.starts_with('[') {
        let ok = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return Err(invalid(
                input,
                &format!("registry host {host:?} is not a valid host name"),
            ));
        }
    }
    Ok(())
}

fn validate_repository(input: &str, repository: &str) -> Result<(), RegistryError> {
    if repository.is_empty() {
        return Err(invalid(input, "the repository path is empty"));
    }
    for component in repository.split('/') {
        if !valid_path_component(component) {
            return Err(invalid(
                input,
                &format!(
                    "repository path component {component:?} is invalid: use lowercase letters and digits, \
                     separated by '.', '_', '__' or '-'"
                ),
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__' or any number of '-'.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .to_string()
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalisation_table() {
        let table = [
            ("ubuntu", "index.docker.io/library/ubuntu:latest"),
            ("ubuntu:22.04", "index.docker.io/library/ubuntu:22.04"),
            ("docker.io/ubuntu", "index.docker.io/library/ubuntu:latest"),
            ("docker.io/x", "index.docker.io/library/x:latest"),
            ("docker.io/user1/app", "index.docker.io/user1/app:latest"),
            ("index.docker.io/user1/app:v1", "index.docker.io/user1/app:v1"),
            (
                "registry-1.docker.io/user1/app",
                "index.docker.io/user1/app:latest",
            ),
            (
                "user1/simple-app-bundle:v1.0.0",
                "index.docker.io/user1/simple-app-bundle:v1.0.0",
            ),
            ("localhost:5000/x", "localhost:5000/x:latest"),
            ("localhost/x", "localhost/x:latest"),
            ("127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000/a/b/c:t"),
            ("gcr.io/p/img", "gcr.io/p/img:latest"),
            (
                "final-registry.corp.xyz/apps/simple-app-bundle",
                "final-registry.corp.xyz/apps/simple-app-bundle:latest",
            ),
            ("[::1]:5000/x:y", "[::1]:5000/x:y"),
            ("a.b/c__d/e-f.g_h:t", "a.b/c__d/e-f.g_h:t"),
        ];
        for (input, want) in table {
            assert_eq!(norm(input), want, "{input}");
        }
    }

    #[test]
    fn tag_and_digest() {
        let r = Reference::parse(&format!("reg.io:443/app:v1@{D}")).unwrap();
        assert_eq!(r.registry(), "reg.io:443");
        assert_eq!(r.repository(), "app");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest().unwrap().as_str(), D);
        assert_eq!(r.manifest_selector(), D);
        let d = Reference::parse(&format!("reg.io/app@{D}")).unwrap();
        assert_eq!(d.tag(), None, "a digest reference gets no default tag");
        assert_eq!(d.to_string(), format!("reg.io/app@{D}"));
    }

    #[test]
    fn untagged_and_repository() {
        let r = Reference::parse_untagged("reg.io/app").unwrap();
        assert_eq!((r.tag(), r.digest()), (None, None));
        assert_eq!(r.manifest_selector(), "latest");
        let repo = Reference::parse_repository("reg.io:5000/apps/bundle").unwrap();
        assert_eq!(repo.repository_name(), "reg.io:5000/apps/bundle");
        assert_eq!(repo.to_string(), "reg.io:5000/apps/bundle");
        let err = Reference::parse_repository("reg.io/apps/bundle:v1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("without tag or digest"), "{err}");
    }

    #[test]
    fn rejects_bad_references_with_reasons() {
        let cases = [
            ("http://reg.io/app", "protocol prefix"),
            ("https://reg.io/app", "protocol prefix"),
            ("", "empty"),
            ("reg.io/App", "lowercase"),
            ("reg.io/app:", "tag"),
            ("reg.io/app:-x", "tag"),
            ("reg.io/app@sha256:abc", "64"),
            ("reg.io/app@md5:abc", "unsupported algorithm"),
            ("reg.io:port/app", "invalid port"),
            ("reg..io/app", "not a valid host"),
            ("reg.io/a//b", "component"),
            ("reg.io/a b", "whitespace"),
            ("reg.io/", "empty"),
        ];
        for (input, want) in cases {
            let err = Reference::parse(input).expect_err(input).to_string();
            assert!(err.contains(want), "{input}: {err}");
            assert!(
                err.contains(&format!("{input:?}")) || input.is_empty(),
                "{input}: {err}"
            );
        }
    }

    #[test]
    fn digest_parsing() {
        assert_eq!(Digest::parse(D).unwrap().hex(), &D[7..]);
        assert_eq!(Digest::parse(D).unwrap().dashed(), format!("sha256-{}", &D[7..]));
        assert!(Digest::parse(&D.to_uppercase()).is_err());
        assert!(Digest::parse(&D.replace("sha256", "sha512")).is_err());
        assert!(Digest::parse(&D[..70]).is_err());
        assert!(Digest::parse("0123").is_err());
        let err = Digest::parse(&format!("{}g", &D[..70])).unwrap_err().to_string();
        assert!(err.contains("hexadecimal"), "{err}");
    }

    #[test]
    fn digest_serde_round_trip() {
        let d = Digest::parse(D).unwrap();
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{D}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        let err = serde_json::from_str::<Digest>("\"sha256:nope\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid digest"), "{err}");
        assert_eq!(D.parse::<Digest>().unwrap(), d);
        assert_eq!(
            "ubuntu".parse::<Reference>().unwrap().to_string(),
            "index.docker.io/library/ubuntu:latest"
        );
    }

    #[test]
    fn digest_of_known_value() {
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
