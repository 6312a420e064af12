//! Credentials and where they come from: imgpkg flags and env vars, Docker config, Secrets.
mod flags;
mod gce_metadata;
mod helpers;
mod iaas;
mod keychain;
mod keychain_names;

pub use flags::{RegistryAuthFlags, parse_go_duration};
pub use keychain::Keychain;
pub use keychain_names::{IaasKeychainKind, UnknownKeychain, active_keychains};

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Credentials for one registry. `Debug` never prints secrets.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub enum Credentials {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// A registry bearer token, sent as is.
    Bearer {
        token: String,
    },
    /// An OAuth2 refresh token (`identitytoken` in Docker config, `IMGPKG_REGISTRY_IDENTITY_TOKEN`),
    /// exchanged at the registry's token server for access tokens.
    IdentityToken {
        token: String,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => {
                write!(f, "Basic {{ username: {username:?}, password: <redacted> }}")
            }
            Credentials::Bearer { .. } => f.write_str("Bearer { token: <redacted> }"),
            Credentials::IdentityToken { .. } => f.write_str("IdentityToken { token: <redacted> }"),
        }
    }
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub fn docker_config_path(env: &HashMap<String, String>) -> Option<PathBuf> {
    if let Some(dir) = env.get("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(Path::new(dir).join("config.json"));
    }
    env.get("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| Path::new(h).join(".docker").join("config.json"))
}
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An environment from pairs (the auth code reads variables through a map, for tests).
    pub(crate) fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn debug_output_is_redacted() {
        let c = Credentials::Basic {
            username: "alice".into(),
            password: "hunter2".into(),
        };
        let k = Keychain::for_all(c.clone())
            .then(Keychain::anonymous().with_host(
                "r.io",
                Credentials::Bearer {
                    token: "tok-secret".into(),
                },
            ))
            .then(Keychain::anonymous().with_host(
                "s.io",
                Credentials::IdentityToken {
                    token: "refresh-secret".into(),
                },
            ));
        let flags = RegistryAuthFlags {
            username: Some("alice".into()),
            password: Some("hunter2".into()),
            token: Some("tok-secret".into()),
            ..RegistryAuthFlags::default()
        };
        let options = crate::registry::ClientOptions {
            keychain: k.clone(),
            ..Default::default()
        };
        for text in [
            format!("{c:?}"),
            format!("{k:?}"),
            format!("{flags:?}"),
            format!("{options:?}"),
        ] {
            for secret in ["hunter2", "tok-secret", "refresh-secret"] {
                assert!(!text.contains(secret), "{secret} leaked in {text}");
            }
            assert!(text.contains("redacted") || text.contains("Anonymous"), "{text}");
        }
        assert!(format!("{c:?}").contains("alice"), "the username is not a secret");
    }

    #[test]
    fn docker_config_location() {
        assert_eq!(
            docker_config_path(&env(&[("DOCKER_CONFIG", "/cfg"), ("HOME", "/home/u")])),
            Some(PathBuf::from("/cfg/config.json"))
        );
        assert_eq!(
            docker_config_path(&env(&[("HOME", "/home/u")])),
            Some(PathBuf::from("/home/u/.docker/config.json"))
        );
        assert_eq!(docker_config_path(&env(&[])), None);
    }
}
