//! Registry errors as someone at a shell reads them: what to change is a flag or an environment
//! variable of the command (imgpkg's, in both voices).
use crate::registry::{Audience, Fix};

/// The reader of a CLI command's errors.
pub struct CommandLine;

impl Audience for CommandLine {
    fn fix(&self, fix: &Fix) -> Option<String> {
        Some(match fix {
            Fix::TrustRegistryCa => {
                "If the registry uses a private CA, pass it with --registry-ca-cert-path; \
                                     --registry-verify-certs=false turns verification off (unsafe)"
                    .to_string()
            }
            Fix::SystemCaRoots => {
                "install the ca-certificates package, or pass the registry's CA with --registry-ca-cert-path"
                    .to_string()
            }
            Fix::Credentials { registry } => format!(
                "Give credentials with --registry-username/--registry-password (or --registry-token), \
                 the IMGPKG_REGISTRY_HOSTNAME/USERNAME/PASSWORD environment variables, or `docker login {registry}`"
            ),
            Fix::PlainHttp => "if it only serves plain HTTP, allow that with --registry-insecure".to_string(),
            Fix::ResponseTimeout => "--registry-response-header-timeout".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryError;

    #[test]
    fn the_cli_names_its_flags() {
        let tls = RegistryError::Tls {
            action: "fetching manifest reg.io/app:v1".into(),
            registry: "reg.io".into(),
            message: "invalid peer certificate: UnknownIssuer".into(),
        };
        assert_eq!(
            tls.worded(&CommandLine),
            "TLS error while fetching manifest reg.io/app:v1: could not establish a trusted connection \
             to registry reg.io: invalid peer certificate: UnknownIssuer. If the registry uses a private \
             CA, pass it with --registry-ca-cert-path; --registry-verify-certs=false turns verification \
             off (unsafe)"
        );
        let unauthorized = RegistryError::Unauthorized {
            action: "fetching manifest reg.io/app:v1".into(),
            registry: "reg.io".into(),
            repository: "app".into(),
            anonymous: false,
            message: String::new(),
            go_text: Default::default(),
        };
        assert_eq!(
            unauthorized.worded(&CommandLine),
            "unauthorized while fetching manifest reg.io/app:v1: registry reg.io rejected the credentials \
             for repository app. Give credentials with --registry-username/--registry-password (or \
             --registry-token), the IMGPKG_REGISTRY_HOSTNAME/USERNAME/PASSWORD environment variables, or \
             `docker login reg.io`"
        );
        let silent = RegistryError::NoResponse {
            action: "fetching manifest reg.io/app:v1".into(),
            registry: "reg.io".into(),
            message: "timed out".into(),
            go_text: Default::default(),
        };
        assert_eq!(
            silent.explanation(&CommandLine).as_deref(),
            Some(
                "registry reg.io sent nothing back within the response timeout \
                 (--registry-response-header-timeout); check that it is up and reachable"
            )
        );
        let reference = crate::registry::Reference::parse("http://reg.io/app").unwrap_err();
        assert!(
            reference.worded(&CommandLine).ends_with(
                "give host/repository (if it only serves plain HTTP, allow that with --registry-insecure)"
            ),
            "{}",
            reference.worded(&CommandLine)
        );
    }
}
