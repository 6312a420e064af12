//! The `kapp-controller-config` Secret: registry CA certificates, TLS skips and proxies.
use crate::registry::ClientOptions;
use k8s_openapi::api::core::v1::Secret;

/// The Secret's name in the controller namespace (upstream's).
pub const CONFIG_SECRET: &str = "kapp-controller-config";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Secret {namespace}/{CONFIG_SECRET}: the value of key {key:?} is not UTF-8 text")]
    NotText { namespace: String, key: String },
    #[error(
        "Secret {namespace}/{CONFIG_SECRET} makes unusable registry settings (fix caCerts, httpProxy, \
         httpsProxy or noProxy)"
    )]
    Unusable {
        namespace: String,
        #[source]
        source: Box<crate::registry::RegistryError>,
    },
    #[error("reading Secret {namespace}/{CONFIG_SECRET}")]
    Read {
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

/// Apply the Secret's keys to `options`; unknown keys (upstream has many unrelated ones) are returned
/// so the caller can log them.
pub fn apply_config_secret(secret: &Secret, options: &mut ClientOptions) -> Result<Vec<String>, ConfigError> {
    let namespace = secret.metadata.namespace.clone().unwrap_or_default();
    let mut ignored = Vec::new();
    for (key, value) in secret.data.iter().flatten() {
        let text = || {
            String::from_utf8(value.0.clone()).map_err(|_| ConfigError::NotText {
                namespace: namespace.clone(),
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

/// Read the Secret from `namespace`, if it exists.
pub async fn load(client: &kube::Client, namespace: &str) -> Result<Option<Secret>, ConfigError> {
    let api: kube::Api<Secret> = kube::Api::namespaced(client.clone(), namespace);
    api.get_opt(CONFIG_SECRET)
        .await
        .map_err(|source| ConfigError::Read {
            namespace: namespace.to_string(),
            source,
        })
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
        let ignored = apply_config_secret(&secret, &mut options).unwrap();
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
