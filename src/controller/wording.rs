//! The controller's reader is a cluster user: registry errors name the CLI flags that fix them
//! for `pkgr copy`, which mean nothing in a PackageRepository's status. Here those hints become
//! what the cluster user can change: the credential Secret and the `kapp-controller-config` keys.

/// CLI wording → the controller's, in the order the registry errors use them.
const REPLACEMENTS: [(&str, &str); 4] = [
    (
        "If the registry uses a private CA, pass it with --registry-ca-cert-path; \
         --registry-verify-certs=false turns verification off (unsafe)",
        "If the registry uses a private CA, add it (PEM) under the key caCerts of the Secret \
         kapp-controller-config in the controller's namespace; listing the registry's host under \
         its key dangerousSkipTLSVerify turns verification off for it (unsafe)",
    ),
    (
        "Give credentials with --registry-username/--registry-password (or --registry-token), \
         the IMGPKG_REGISTRY_HOSTNAME/USERNAME/PASSWORD environment variables, or `docker login ",
        "Name a Secret in spec.fetch (secretRef) with the keys username and password (or token), \
         or of type kubernetes.io/dockerconfigjson, and check its values for `",
    ),
    (" (--registry-response-header-timeout)", ""),
    (
        " (plain HTTP is chosen with --registry-insecure)",
        " (the controller speaks HTTPS to every registry but loopback ones)",
    ),
];

/// `text` as a cluster user should read it.
pub fn for_cluster_user(text: &str) -> String {
    let mut out = text.to_string();
    for (cli, cluster) in REPLACEMENTS {
        out = out.replace(cli, cluster);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RegistryError;

    #[test]
    fn registry_hints_speak_of_secrets_and_config_keys_not_flags() {
        let tls = RegistryError::Tls {
            action: "fetching manifest reg.corp.xyz/repo:1".into(),
            registry: "reg.corp.xyz".into(),
            message: "invalid peer certificate: UnknownIssuer".into(),
        };
        let unauthorized = RegistryError::Unauthorized {
            action: "fetching manifest reg.corp.xyz/repo:1".into(),
            registry: "reg.corp.xyz".into(),
            repository: "repo".into(),
            anonymous: false,
            message: String::new(),
            go_text: Default::default(),
        };
        for error in [tls, unauthorized] {
            let text = for_cluster_user(&error.to_string());
            assert!(!text.contains("--registry"), "{text}");
            assert!(!text.contains("IMGPKG_"), "{text}");
            assert!(text.contains("Secret"), "{text}");
        }
        let tls = for_cluster_user(
            &RegistryError::Tls {
                action: "a".into(),
                registry: "r".into(),
                message: "m".into(),
            }
            .to_string(),
        );
        assert!(
            tls.contains("caCerts") && tls.contains("dangerousSkipTLSVerify"),
            "{tls}"
        );
    }
}
