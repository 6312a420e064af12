//! Credentials and where they come from: imgpkg flags and env vars, Docker config, Secrets.
use std::fmt;

/// Credentials for one registry. `Debug` never prints secrets.
#[derive(Clone, PartialEq, Eq, Default)]
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
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => {
                write!(f, "Basic {{ username: {username:?}, password: <redacted> }}")
            }
            Credentials::Bearer { .. } => f.write_str("Bearer { token: <redacted> }"),
        }
    }
}

/// imgpkg-compatible auth flags (`--registry-username` ...), shared by every CLI subcommand.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct RegistryAuthFlags {}

/// Resolves credentials for a (registry, repository), most specific match first.
#[derive(Clone, Debug, Default)]
pub struct Keychain {}

impl Keychain {
    /// Anonymous for every registry.
    pub fn anonymous() -> Keychain {
        Keychain::default()
    }
    /// One set of credentials for every registry.
    pub fn for_all(credentials: Credentials) -> Keychain {
        todo!("{credentials:?}")
    }
    /// Add credentials for one host pattern (`host[:port]`, optional path prefix, `*.` globs).
    pub fn with_host(self, host: &str, credentials: Credentials) -> Keychain {
        todo!("{host} {credentials:?}")
    }
    /// Credentials to use for `registry` / `repository`.
    pub fn resolve(&self, registry: &str, repository: &str) -> Credentials {
        todo!("{registry} {repository}")
    }
}
