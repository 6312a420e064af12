//! Public keys as cosign's `--key` takes them: PEM `PUBLIC KEY` (X.509 SubjectPublicKeyInfo),
//! ECDSA P-256 / P-384, RSA (PKCS#1 v1.5 or PSS) or Ed25519. Parsing and verification are
//! aws-lc-rs's (the crypto rustls already links); the key type is whichever algorithm accepts it.
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject as _;
use std::path::Path;

/// A key that could not be used; names it (a file, or a Secret key).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the public key {name}: {reason}")]
    Read { name: String, reason: String },
    #[error(
        "the public key {name} is not a PEM public key: {reason} (expected a \"-----BEGIN PUBLIC KEY-----\" block, as `cosign generate-key-pair` or `openssl pkey -pubout` writes)"
    )]
    NotPem { name: String, reason: String },
    #[error(
        "the public key {name} is damaged or of an unsupported type (supported: ECDSA P-256, ECDSA P-384, RSA 2048-8192 bits, Ed25519)"
    )]
    Unsupported { name: String },
}

/// One public key, ready to verify.
pub struct PublicKey {
    name: String,
    kind: &'static str,
    /// The signature schemes tried with this key, in order.
    parsed: Vec<ParsedPublicKey>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({} {})", self.name, self.kind)
    }
}

/// Each supported key type and the schemes its signatures may use. cosign signs with SHA-256
/// (`--key` verification loads every key with crypto.SHA256); a P-384 key may also carry a
/// SHA-384 signature from signers that follow the curve.
fn kinds() -> [(&'static str, Vec<&'static dyn VerificationAlgorithm>); 4] {
    [
        ("ECDSA P-256", vec![&signature::ECDSA_P256_SHA256_ASN1]),
        (
            "ECDSA P-384",
            vec![
                &signature::ECDSA_P384_SHA256_ASN1,
                &signature::ECDSA_P384_SHA384_ASN1,
            ],
        ),
        ("Ed25519", vec![&signature::ED25519]),
        (
            "RSA",
            vec![
                &signature::RSA_PKCS1_2048_8192_SHA256,
                &signature::RSA_PSS_2048_8192_SHA256,
            ],
        ),
    ]
}

impl PublicKey {
    /// Parse a PEM public key; `name` says where it came from in errors and reports.
    pub fn from_pem(name: &str, pem: &[u8]) -> Result<PublicKey, KeyError> {
        let der = SubjectPublicKeyInfoDer::from_pem_slice(pem).map_err(|e| KeyError::NotPem {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        for (kind, algorithms) in kinds() {
            let parsed: Vec<ParsedPublicKey> = algorithms
                .into_iter()
                .filter_map(|a| ParsedPublicKey::new(a, der.as_ref()).ok())
                .collect();
            if !parsed.is_empty() {
                return Ok(PublicKey {
                    name: name.to_string(),
                    kind,
                    parsed,
                });
            }
        }
        Err(KeyError::Unsupported {
            name: name.to_string(),
        })
    }

    /// Read and parse a PEM file (its path names it).
    pub fn from_file(path: &Path) -> Result<PublicKey, KeyError> {
        let name = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| KeyError::Read {
            name: name.clone(),
            reason: e.to_string(),
        })?;
        PublicKey::from_pem(&name, &pem)
    }

    /// Where the key came from (a file, a Secret key).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ECDSA P-256`, `RSA`, ….
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Whether `signature` over `message` was made with this key's private half.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.parsed
            .iter()
            .any(|key| key.verify_sig(message, signature).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `openssl ecparam -name prime256v1 -genkey | openssl ec -pubout`, and likewise.
    const P256: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEyNx+Kq8vHp+wFnduE7Ro9iVMYg4p
EMGWh4VKGRsHhJkDwmb7hjG86Vs1MqBzvvl7gNq3zAr9yaR2yls3o1+sXg==
-----END PUBLIC KEY-----
";
    const ED25519: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAMbKQFlVYLunxLiIsc2Mn92SU1dk+M+B7hI/Lx+WDi+Q=
-----END PUBLIC KEY-----
";

    #[test]
    fn key_types_are_recognised() {
        assert_eq!(
            PublicKey::from_pem("p256.pub", P256.as_bytes()).unwrap().kind(),
            "ECDSA P-256"
        );
        assert_eq!(
            PublicKey::from_pem("ed.pub", ED25519.as_bytes()).unwrap().kind(),
            "Ed25519"
        );
    }

    #[test]
    fn malformed_pem_names_the_key() {
        let err = PublicKey::from_pem("keys/bad.pub", b"not a key")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("keys/bad.pub") && err.contains("not a PEM public key"),
            "{err}"
        );
        let broken = P256.replace("MFkw", "MFkx");
        let err = PublicKey::from_pem("keys/broken.pub", broken.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("keys/broken.pub"), "{err}");
    }
}
