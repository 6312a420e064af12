//! Real cosign signatures made in the test: keys generated with the `openssl` CLI, the
//! simple-signing payload cosign writes, signed with `openssl` (DER ECDSA over SHA-256, RSA
//! PKCS#1 v1.5 / PSS, Ed25519), and pushed as cosign's `.sig` image (`pkg/oci/static` layout).
use bytes::Bytes;
use pkgr::registry::{Client, Digest, Reference};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeyKind {
    P256,
    P384,
    Rsa,
    RsaPss,
    Ed25519,
}

/// A key pair in files: the private key for openssl, the PEM public key for pkgr.
#[derive(Clone, Debug)]
pub struct KeyPair {
    pub kind: KeyKind,
    pub private: PathBuf,
    pub public: PathBuf,
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Generate a key pair `name` of `kind` in `dir`.
pub fn keypair(dir: &Path, name: &str, kind: KeyKind) -> KeyPair {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    match kind {
        KeyKind::P256 | KeyKind::P384 => {
            let curve = if kind == KeyKind::P256 {
                "prime256v1"
            } else {
                "secp384r1"
            };
            openssl(&[
                "ecparam",
                "-name",
                curve,
                "-genkey",
                "-noout",
                "-out",
                s(&private),
            ]);
        }
        KeyKind::Rsa | KeyKind::RsaPss => openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            s(&private),
        ]),
        KeyKind::Ed25519 => openssl(&["genpkey", "-algorithm", "ed25519", "-out", s(&private)]),
    }
    openssl(&["pkey", "-in", s(&private), "-pubout", "-out", s(&public)]);
    KeyPair {
        kind,
        private,
        public,
    }
}

/// The payload `cosign sign` writes for `subject` (a digest reference), with `optional`
/// annotations (`-a`), or `null`.
pub fn payload(subject: &Reference, optional: &[(&str, &str)]) -> Vec<u8> {
    payload_for(&subject.repository_name(), subject.digest().unwrap(), optional)
}

pub fn payload_for(repository: &str, digest: &Digest, optional: &[(&str, &str)]) -> Vec<u8> {
    let optional = if optional.is_empty() {
        "null".to_string()
    } else {
        let map: serde_json::Map<String, serde_json::Value> = optional
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect();
        serde_json::Value::Object(map).to_string()
    };
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{repository}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":{optional}}}"#
    )
    .into_bytes()
}

/// Sign `payload` with `key`, as cosign would: the raw signature bytes.
pub fn sign(key: &KeyPair, payload: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("payload");
    let output = dir.path().join("sig");
    std::fs::write(&input, payload).unwrap();
    let (inp, out, k) = (s(&input), s(&output), s(&key.private));
    match key.kind {
        KeyKind::P256 | KeyKind::P384 | KeyKind::Rsa => {
            openssl(&["dgst", "-sha256", "-sign", k, "-out", out, inp]);
        }
        KeyKind::RsaPss => openssl(&[
            "dgst",
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:digest",
            "-sign",
            k,
            "-out",
            out,
            inp,
        ]),
        KeyKind::Ed25519 => openssl(&["pkeyutl", "-sign", "-rawin", "-inkey", k, "-in", inp, "-out", out]),
    }
    std::fs::read(&output).unwrap()
}

/// One layer of a `.sig` image: a payload and the signature stored with it.
pub struct SigLayer {
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

impl SigLayer {
    /// `payload` signed by `key`.
    pub fn signed(key: &KeyPair, payload: Vec<u8>) -> SigLayer {
        SigLayer {
            signature: sign(key, &payload),
            payload,
        }
    }
}

/// Push cosign's signature image of `subject` (a digest reference) at `sha256-<hex>.sig` in its
/// repository, one layer per signature; returns its digest.
pub async fn push_sig(client: &Client, subject: &Reference, layers: &[SigLayer]) -> Digest {
    use base64::Engine as _;
    let digest = subject.digest().expect("a digest reference").clone();
    let repo = Reference::parse_repository(&subject.repository_name()).unwrap();
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in layers {
        let d = client
            .push_blob_bytes(&repo, Bytes::from(layer.payload.clone()))
            .await
            .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&layer.signature);
        descriptors.push(format!(
            r#"{{"mediaType":"{SIMPLE_SIGNING}","size":{},"digest":"{d}","annotations":{{"{SIGNATURE_ANNOTATION}":"{b64}"}}}}"#,
            layer.payload.len()
        ));
        diff_ids.push(format!("\"{d}\""));
    }
    let config = format!(
        r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{{"created":"0001-01-01T00:00:00Z"}}],"os":"","rootfs":{{"type":"layers","diff_ids":[{}]}},"config":{{}}}}"#,
        diff_ids.join(",")
    );
    let config_digest = client
        .push_blob_bytes(&repo, Bytes::from(config.clone()))
        .await
        .unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":{},"digest":"{config_digest}"}},"layers":[{}]}}"#,
        config.len(),
        descriptors.join(",")
    );
    let at = subject.with_tag(&format!("{}.sig", digest.dashed()));
    client
        .put_manifest(&at, OCI_MANIFEST, Bytes::from(manifest))
        .await
        .unwrap()
}
