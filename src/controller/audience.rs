//! Registry errors as a cluster user reads them in a PackageRepository's status and Events: what
//! to change is a Secret, a key of `kapp-controller-config` or the registry itself, never a CLI
//! flag or environment variable (the controller takes neither from them).
use super::source::SourceError;
use crate::registry::{Audience, Fix, RegistryError};

/// The reader of the controller's statuses, Events and logs.
pub struct ClusterUser;

/// Where the registry settings of the controller live, as the hints name it.
const CONFIG: &str = "the Secret kapp-controller-config in the controller's namespace";

impl Audience for ClusterUser {
    fn fix(&self, fix: &Fix) -> Option<String> {
        Some(match fix {
            Fix::TrustRegistryCa => format!(
                "If the registry uses a private CA, add it (PEM) under the key caCerts of {CONFIG}; \
                 listing the registry's host under its key dangerousSkipTLSVerify turns verification \
                 off for it (unsafe)"
            ),
            Fix::SystemCaRoots => format!(
                "run an image with the ca-certificates package, or add the registry's CA (PEM) under \
                 the key caCerts of {CONFIG}"
            ),
            Fix::Credentials { registry } => format!(
                "Name a Secret in spec.fetch (secretRef) with the keys username and password (or \
                 token), or of type kubernetes.io/dockerconfigjson, and check its values for `{registry}`"
            ),
            Fix::PlainHttp => "the controller speaks plain HTTP to loopback registries only, so serve \
                               this one over HTTPS"
                .to_string(),
            // The controller waits the default time; there is no setting to change.
            Fix::ResponseTimeout => return None,
        })
    }
}

/// `error: cause: cause`, each registry error in it worded for a cluster user. A registry error
/// behind [`SourceError`] (which shows it as its own message) is found there too.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = link_text(error);
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&link_text(cause));
        source = cause.source();
    }
    text
}

/// The root cause of `error` (itself when it has none), worded for a cluster user.
pub fn root(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut root = None;
    let mut source = error.source();
    while let Some(cause) = source {
        root = Some(cause);
        source = cause.source();
    }
    root.map(link_text)
}

/// One link, worded for a cluster user.
pub fn link_text(link: &(dyn std::error::Error + 'static)) -> String {
    if let Some(SourceError::Registry(registry)) = link.downcast_ref::<SourceError>() {
        return registry.worded(&ClusterUser);
    }
    RegistryError::link_text(link, &ClusterUser)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::BundleError;
    use crate::controller::ReconcileError;
    use crate::controller::config::{ConfigError, ConfigKind};
    use crate::controller::status;

    fn rebuild(index: usize) -> RegistryError {
        crate::registry::every_variant().swap_remove(index)
    }

    /// Each variant in every wrapper the controller puts one in on its way to a status, an
    /// Event or a log line.
    fn paths(index: usize) -> Vec<(&'static str, Box<dyn std::error::Error + Send + Sync>)> {
        let source = |e: RegistryError| SourceError::from(e);
        let image = || "reg.corp.xyz/repo@sha256:1".to_string();
        let verify_failure = crate::verify::VerifyError::Source {
            subject: crate::verify::Subject::in_registry(
                &crate::registry::Reference::parse("reg.corp.xyz/repo").unwrap(),
                crate::registry::Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap(),
            ),
            source: crate::verify::SourceError::Registry {
                subject: "reg.corp.xyz/repo".into(),
                tag: "sha256-aa.sig".into(),
                source: Box::new(rebuild(index)),
            },
        };
        vec![
            (
                "resolve",
                Box::new(ReconcileError::Resolve {
                    image: image(),
                    credentials: String::new(),
                    source: source(rebuild(index)),
                }),
            ),
            (
                "list tags",
                Box::new(ReconcileError::ListTags {
                    repository: "reg.corp.xyz/repo".into(),
                    credentials: String::new(),
                    source: source(rebuild(index)),
                }),
            ),
            (
                "session",
                Box::new(ReconcileError::Session(source(rebuild(index)))),
            ),
            (
                "fetch through the bundle layer",
                Box::new(ReconcileError::Fetch {
                    image: image(),
                    credentials: String::new(),
                    source: SourceError::from(BundleError::registry(
                        "fetching the manifest of",
                        image(),
                        rebuild(index),
                    )),
                }),
            ),
            (
                "a layer stream (io::Error)",
                Box::new(ReconcileError::Fetch {
                    image: image(),
                    credentials: String::new(),
                    source: SourceError::from(
                        BundleError::Corrupt {
                            entry: None,
                            source: std::io::Error::other(rebuild(index)),
                        }
                        .context("reading layer 1 of reg.corp.xyz/repo"),
                    ),
                }),
            ),
            (
                "verify",
                Box::new(ReconcileError::NotVerified {
                    image: image(),
                    namespace: "default".into(),
                    name: "signing-keys".into(),
                    reason: chain(&verify_failure),
                }),
            ),
            (
                "kapp-controller-config",
                Box::new(ConfigError::Unusable {
                    kind: ConfigKind::Secret,
                    namespace: "kapp-controller".into(),
                    source: Box::new(rebuild(index)),
                }),
            ),
        ]
    }

    #[test]
    fn no_registry_error_tells_a_cluster_user_of_cli_flags_and_each_names_what_to_edit() {
        for (index, variant) in crate::registry::every_variant().into_iter().enumerate() {
            for (path, error) in paths(index) {
                let error: &(dyn std::error::Error + 'static) = error.as_ref();
                let failed = status::failed(None, Some(1), error, "2026-01-01T00:00:00Z");
                let condition = failed.conditions[0].message.clone().unwrap_or_default();
                let description = failed.friendly_description.clone().unwrap_or_default();
                let useful = failed.useful_error_message.clone().unwrap_or_default();
                for text in [&condition, &description, &useful] {
                    for cli in ["--registry", "IMGPKG_", "docker login", "--"] {
                        assert!(!text.contains(cli), "{path}, {variant:?}: {cli} in {text}");
                    }
                }
                let wanted: &[&str] = match variant.fix() {
                    Some(Fix::TrustRegistryCa) => {
                        &["caCerts", "kapp-controller-config", "dangerousSkipTLSVerify"]
                    }
                    Some(Fix::SystemCaRoots) => &["ca-certificates", "caCerts", "kapp-controller-config"],
                    Some(Fix::Credentials { .. }) => &["spec.fetch (secretRef)", "`reg.corp.xyz`"],
                    Some(Fix::PlainHttp) => &["plain HTTP to loopback registries only", "HTTPS"],
                    Some(Fix::ResponseTimeout) => &["within the response timeout; check that it is up"],
                    None => &[],
                };
                for want in wanted {
                    assert!(
                        useful.contains(want),
                        "{path}, {variant:?}: no {want} in {useful}"
                    );
                }
                // What the registry error says is there, whole, worded for the cluster user.
                let worded = variant.worded(&ClusterUser);
                assert!(useful.contains(&worded), "{path}: {worded} not in {useful}");
            }
        }
    }
}
