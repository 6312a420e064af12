//! `kapp-controller-config`: registry CA certificates, TLS skips and proxies, read from the
//! Secret of that name or, when there is none, from the older ConfigMap form (as upstream does).
use crate::registry::ClientOptions;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use std::collections::BTreeMap;

/// The Secret's (and ConfigMap's) name in the controller namespace (upstream's).
pub const CONFIG_SECRET: &str = "kapp-controller-config";

/// Which object the settings came from, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigKind {
    Secret,
    ConfigMap,
}

impl std::fmt::Display for ConfigKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConfigKind::Secret => "Secret",
            ConfigKind::ConfigMap => "ConfigMap",
        })
    }
}

/// The keys of `kapp-controller-config`, whichever form held them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerConfig {
    pub kind: ConfigKind,
    pub namespace: String,
    pub data: BTreeMap<String, Vec<u8>>,
}

impl From<&Secret> for ControllerConfig {
    fn from(secret: &Secret) -> Self {
        let mut data: BTreeMap<String, Vec<u8>> = secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect();
        // stringData only exists in a request; a Secret read back has it merged into data.
        for (k, v) in secret.string_data.iter().flatten() {
            data.insert(k.clone(), v.clone().into_bytes());
        }
        ControllerConfig {
            kind: ConfigKind::Secret,
            namespace: secret.metadata.namespace.clone().unwrap_or_default(),
            data,
        }
    }
}

impl From<&ConfigMap> for ControllerConfig {
    fn from(map: &ConfigMap) -> Self {
        let mut data: BTreeMap<String, Vec<u8>> = map
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
            .collect();
        for (k, v) in map.binary_data.iter().flatten() {
            data.insert(k.clone(), v.0.clone());
        }
        ControllerConfig {
            kind: ConfigKind::ConfigMap,
            namespace: map.metadata.namespace.clone().unwrap_or_default(),
            data,
        }
    }
}

/// Upstream's precedence: the Secret when it exists, otherwise the ConfigMap.
pub fn effective(secret: Option<&Secret>, map: Option<&ConfigMap>) -> Option<ControllerConfig> {
    secret
        .map(ControllerConfig::from)
        .or_else(|| map.map(ControllerConfig::from))
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{kind} {namespace}/{CONFIG_SECRET}: the value of key {key:?} is not UTF-8 text")]
    NotText {
        kind: ConfigKind,
        namespace: String,
        key: String,
    },
    #[error(
        "{kind} {namespace}/{CONFIG_SECRET} makes unusable registry settings (fix its keys caCerts, \
         httpProxy, httpsProxy or noProxy)"
    )]
    Unusable {
        kind: ConfigKind,
        namespace: String,
        #[source]
        source: Box<crate::registry::RegistryError>,
    },
    #[error("reading {kind} {namespace}/{CONFIG_SECRET}")]
    Read {
        kind: ConfigKind,
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

/// Apply the config's keys to `options`; unknown keys (upstream has many unrelated ones) are
/// returned so the caller can log them.
pub fn apply_config(
    config: &ControllerConfig,
    options: &mut ClientOptions,
) -> Result<Vec<String>, ConfigError> {
    let mut ignored = Vec::new();
    for (key, value) in &config.data {
        let text = || {
            String::from_utf8(value.clone()).map_err(|_| ConfigError::NotText {
                kind: config.kind,
                namespace: config.namespace.clone(),
                key: key.clone(),
            })
        };
        let non_empty = |t: String| Some(t.trim().to_string()).filter(|t| !t.is_empty());
        match key.as_str() {
            "caCerts" => {
                let pem = text()?;
                if !pem.trim().is_empty() {
                    options.ca_certs_pem.push(pem.into_bytes());
                }
            }
            "dangerousSkipTLSVerify" => {
                options.skip_tls_verify_hosts.extend(
                    text()?
                        .split([',', '\n', ' '])
                        .map(str::trim)
                        .filter(|h| !h.is_empty())
                        .map(str::to_string),
                );
            }
            "httpProxy" => options.http_proxy = non_empty(text()?),
            "httpsProxy" => options.https_proxy = non_empty(text()?),
            "noProxy" => options.no_proxy = non_empty(text()?),
            _ => ignored.push(key.clone()),
        }
    }
    Ok(ignored)
}

/// Read the Secret from `namespace`, or the ConfigMap when there is no Secret.
pub async fn load(client: &kube::Client, namespace: &str) -> Result<Option<ControllerConfig>, ConfigError> {
    let read = |kind| {
        move |source| ConfigError::Read {
            kind,
            namespace: namespace.to_string(),
            source,
        }
    };
    let secrets: kube::Api<Secret> = kube::Api::namespaced(client.clone(), namespace);
    if let Some(secret) = secrets
        .get_opt(CONFIG_SECRET)
        .await
        .map_err(read(ConfigKind::Secret))?
    {
        return Ok(Some(ControllerConfig::from(&secret)));
    }
    let maps: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), namespace);
    Ok(maps
        .get_opt(CONFIG_SECRET)
        .await
        .map_err(read(ConfigKind::ConfigMap))?
        .as_ref()
        .map(ControllerConfig::from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    #[test]
    fn keys_map_to_client_options() {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                namespace: Some("kapp-controller".into()),
                ..Default::default()
            },
            data: Some(
                [
                    (
                        "caCerts",
                        "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
                    ),
                    ("dangerousSkipTLSVerify", "a.example, b.example:5000"),
                    ("httpProxy", "http://proxy:3128"),
                    ("httpsProxy", "http://proxy:3129"),
                    ("noProxy", "localhost,.svc"),
                    ("kappDeployRawOptions", "[]"),
                ]
                .iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
            ),
            ..Default::default()
        };
        let mut options = ClientOptions::default();
        let ignored = apply_config(&ControllerConfig::from(&secret), &mut options).unwrap();
        assert_eq!(ignored, ["kappDeployRawOptions"]);
        assert_eq!(options.ca_certs_pem.len(), 1);
        assert_eq!(options.skip_tls_verify_hosts, ["a.example", "b.example:5000"]);
        assert_eq!(options.http_proxy.as_deref(), Some("http://proxy:3128"));
        assert_eq!(options.https_proxy.as_deref(), Some("http://proxy:3129"));
        assert_eq!(options.no_proxy.as_deref(), Some("localhost,.svc"));
        assert!(
            options.verify_certs,
            "TLS verification stays on for every other registry"
        );
    }
}

#[cfg(test)]
mod precedence_tests {
    use super::*;

    #[test]
    fn the_secret_wins_over_the_config_map_and_the_config_map_is_read_alone() {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                namespace: Some("ns".into()),
                ..Default::default()
            },
            data: Some(
                [(
                    "httpProxy".to_string(),
                    k8s_openapi::ByteString(b"http://s:1".to_vec()),
                )]
                .into(),
            ),
            ..Default::default()
        };
        let map = ConfigMap {
            metadata: kube::api::ObjectMeta {
                namespace: Some("ns".into()),
                ..Default::default()
            },
            data: Some([("httpsProxy".to_string(), "http://c:2".to_string())].into()),
            ..Default::default()
        };
        let both = effective(Some(&secret), Some(&map)).unwrap();
        assert_eq!(both.kind, ConfigKind::Secret);
        assert!(both.data.contains_key("httpProxy") && !both.data.contains_key("httpsProxy"));
        let only_map = effective(None, Some(&map)).unwrap();
        assert_eq!(only_map.kind, ConfigKind::ConfigMap);
        let mut options = ClientOptions::default();
        apply_config(&only_map, &mut options).unwrap();
        assert_eq!(options.https_proxy.as_deref(), Some("http://c:2"));
        assert_eq!(effective(None, None), None);
    }
}
