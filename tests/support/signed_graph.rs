//! The signed graph the copy tests share, pushed into a real registry: a root bundle (signed)
//! listing a signed image, an unsigned one and a nested bundle (signed) whose one image (signed)
//! sits at a long nested path; plus the small calls those tests make.
use super::images::{push_bundle, push_image, push_signature};
use super::registry::TestRegistry;
use pkgr::registry::{Client, ClientOptions, Digest, Reference};
use pkgr::relocate::{self, Clients, CopyOptions, CopySummary, Destination, Progress, Source};
use std::sync::Arc;

/// A long nested source path: its repo-based tag keeps only the last 49 characters.
pub const LONG_PATH: &str =
    "src/a-very-long-organisation-name/with/several/nested/levels/of/image-repositories/img";

pub fn client() -> Client {
    Client::new(ClientOptions::default()).unwrap()
}

pub fn clients() -> Clients {
    Clients {
        source: client(),
        destination: client(),
    }
}

/// root bundle (signed) → signed image, unsigned image, nested bundle (signed) → image at a long
/// nested path (signed). `signatures` maps each signed digest to its signature's digest.
pub struct Graph {
    pub root: Reference,
    pub root_digest: Digest,
    pub signed: Digest,
    pub unsigned: Digest,
    pub nested_bundle: Digest,
    pub deep: Digest,
    pub signatures: Vec<(Digest, Digest)>,
}

pub async fn build(client: &Client, reg: &TestRegistry) -> Graph {
    let r = |path: &str| Reference::parse(&reg.repo(path)).unwrap();
    let signed_ref = r("src/apps/signed:1");
    let signed = push_image(client, &signed_ref, b"signed image layer").await;
    let unsigned = push_image(client, &r("src/apps/plain:1"), b"unsigned image layer").await;
    let deep_ref = r(&format!("{LONG_PATH}:1"));
    let deep = push_image(client, &deep_ref, b"deep image layer").await;
    let nested_ref = r("src/nested/bundle:1");
    let nested_bundle = push_bundle(
        client,
        &nested_ref,
        &[deep_ref.with_digest(deep.clone()).to_string()],
    )
    .await;
    let root = r("src/root:v1");
    let root_digest = push_bundle(
        client,
        &root,
        &[
            signed_ref.with_digest(signed.clone()).to_string(),
            r("src/apps/plain:1").with_digest(unsigned.clone()).to_string(),
            nested_ref.with_digest(nested_bundle.clone()).to_string(),
        ],
    )
    .await;
    let mut signatures = Vec::new();
    for (at, digest) in [
        (&signed_ref, &signed),
        (&deep_ref, &deep),
        (&nested_ref, &nested_bundle),
        (&root, &root_digest),
    ] {
        let sig = push_signature(client, &at.with_digest(digest.clone())).await;
        signatures.push((digest.clone(), sig));
    }
    Graph {
        root,
        root_digest,
        signed,
        unsigned,
        nested_bundle,
        deep,
        signatures,
    }
}

impl Graph {
    /// The repository `subject` was pushed to (where its signature sits too).
    pub fn repo_of(&self, subject: &Digest) -> Reference {
        let path = if subject == &self.signed {
            "src/apps/signed"
        } else if subject == &self.deep {
            LONG_PATH
        } else if subject == &self.nested_bundle {
            "src/nested/bundle"
        } else {
            "src/root"
        };
        Reference::parse_repository(&format!("{}/{path}", self.root.registry())).unwrap()
    }
}

pub async fn copy(source: Source, destination: Destination, options: CopyOptions) -> CopySummary {
    relocate::copy(
        &clients(),
        &source,
        &destination,
        &options,
        Arc::new(Progress::quiet()),
    )
    .await
    .unwrap()
}

pub fn with_signatures() -> CopyOptions {
    CopyOptions {
        cosign_signatures: true,
        ..CopyOptions::default()
    }
}

pub fn sig_tag(digest: &Digest) -> String {
    format!("{}.sig", digest.dashed())
}

pub async fn digest_at(reference: &Reference) -> Option<Digest> {
    client().head_manifest(reference).await.unwrap().map(|h| h.digest)
}

pub async fn tags(repo: &Reference) -> Vec<String> {
    client().list_tags(repo).await.unwrap()
}
