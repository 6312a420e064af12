//! Registry credentials from a Secret in the controller's namespace (SPEC Reconcile 1).
//!
//! Values are never logged nor put in errors: only key names and the Secret's name are.
use super::error::ReconcileError;
use crate::registry::Credentials;
use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use std::collections::BTreeMap;

/// Credentials for one host, or for every registry when `host` is `None`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct AuthEntry {
    pub host: Option<String>,
    pub credentials: Credentials,
}

/// Everything a Secret says about registry authentication. `Debug` redacts secrets.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct RegistryAuth {
    pub entries: Vec<AuthEntry>,
}

const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
const KNOWN_KEYS: [&str; 4] = ["username", "password", "token", "hostname"];

/// Read registry credentials from `secret`.
pub fn read_secret(secret: &Secret) -> Result<RegistryAuth, ReconcileError> {
    let namespace = secret.metadata.namespace.clone().unwrap_or_default();
    let name = secret.metadata.name.clone().unwrap_or_default();
    let invalid = |reason: String| ReconcileError::SecretInvalid {
        namespace: namespace.clone(),
        name: name.clone(),
        reason,
    };
    let mut values: BTreeMap<&str, String> = BTreeMap::new();
    let data = secret.data.as_ref();
    if secret.type_.as_deref() == Some(DOCKER_CONFIG_JSON_TYPE) {
        let raw = data.and_then(|d| d.get(DOCKER_CONFIG_JSON_KEY)).ok_or_else(|| {
            invalid(format!(
                "type {DOCKER_CONFIG_JSON_TYPE} but no {DOCKER_CONFIG_JSON_KEY} key"
            ))
        })?;
        return docker_config(&raw.0).map_err(invalid);
    }
    for (key, value) in data.into_iter().flatten() {
        let Some(known) = KNOWN_KEYS.iter().find(|k| **k == key.as_str()) else {
            return Err(ReconcileError::SecretUnknownKey {
                namespace: namespace.clone(),
                name: name.clone(),
                key: key.clone(),
            });
        };
        let text = String::from_utf8(value.0.clone())
            .map_err(|_| invalid(format!("the value of key {key:?} is not UTF-8 text")))?;
        values.insert(known, text);
    }
    let credentials = match (
        values.get("username"),
        values.get("password"),
        values.get("token"),
    ) {
        (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
            return Err(invalid(
                "it has both token and username/password; keep one".into(),
            ));
        }
        (Some(u), Some(p), None) => Credentials::Basic {
            username: u.clone(),
            password: p.clone(),
        },
        (None, None, Some(t)) => Credentials::Bearer { token: t.clone() },
        (Some(_), None, None) => return Err(invalid("key username needs key password".into())),
        (None, Some(_), None) => return Err(invalid("key password needs key username".into())),
        (None, None, None) => {
            if values.contains_key("hostname") {
                return Err(invalid("key hostname needs username+password or token".into()));
            }
            return Err(invalid(
                "it has none of the keys username+password, token, or a .dockerconfigjson".into(),
            ));
        }
    };
    let host = values.get("hostname").map(|h| normalise_host(h));
    Ok(RegistryAuth {
        entries: vec![AuthEntry { host, credentials }],
    })
}

/// `https://index.docker.io/v1/` → `index.docker.io`; `r.example:5000/path` stays a host+path prefix.
fn normalise_host(raw: &str) -> String {
    let trimmed = raw.trim();
    let without_scheme = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .unwrap_or(trimmed);
    let without_slash = without_scheme.trim_end_matches('/');
    without_slash
        .strip_suffix("/v1")
        .or_else(|| without_slash.strip_suffix("/v2"))
        .unwrap_or(without_slash)
        .to_string()
}

#[derive(serde::Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(serde::Deserialize)]
struct DockerAuth {
    username: Option<String>,
    password: Option<String>,
    auth: Option<String>,
    identitytoken: Option<String>,
    registrytoken: Option<String>,
}

fn docker_config(raw: &[u8]) -> Result<RegistryAuth, String> {
    // serde_json's message can quote input; keep only its position so no secret leaks.
    let config: DockerConfig = serde_json::from_slice(raw).map_err(|e| {
        format!(
            "{DOCKER_CONFIG_JSON_KEY} is not valid Docker config JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let mut entries = Vec::new();
    for (host, auth) in config.auths {
        let credentials = if let Some(token) = auth.registrytoken.or(auth.identitytoken) {
            Credentials::Bearer { token }
        } else if let (Some(username), Some(password)) = (auth.username, auth.password) {
            Credentials::Basic { username, password }
        } else if let Some(encoded) = auth.auth {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| format!("the auth field for {host:?} is not base64"))?;
            let text = String::from_utf8(decoded)
                .map_err(|_| format!("the auth field for {host:?} is not UTF-8"))?;
            let (username, password) = text
                .split_once(':')
                .ok_or_else(|| format!("the auth field for {host:?} is not username:password"))?;
            Credentials::Basic {
                username: username.to_string(),
                password: password.to_string(),
            }
        } else {
            return Err(format!(
                "the entry for {host:?} has no username/password, auth or token"
            ));
        };
        entries.push(AuthEntry {
            host: Some(normalise_host(&host)),
            credentials,
        });
    }
    if entries.is_empty() {
        return Err(format!("{DOCKER_CONFIG_JSON_KEY} has no auths entries"));
    }
    Ok(RegistryAuth { entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(type_: Option<&str>, data: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("creds".into()),
                namespace: Some("kapp-controller".into()),
                ..Default::default()
            },
            type_: type_.map(str::to_string),
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn username_password_for_every_registry() {
        let auth = read_secret(&secret(None, &[("username", "u"), ("password", "hunter2")])).unwrap();
        assert_eq!(
            auth.entries,
            [AuthEntry {
                host: None,
                credentials: Credentials::Basic {
                    username: "u".into(),
                    password: "hunter2".into()
                }
            }]
        );
        assert!(
            !format!("{auth:?}").contains("hunter2"),
            "Debug must redact the password"
        );
    }

    #[test]
    fn token_and_hostname() {
        let auth = read_secret(&secret(
            None,
            &[("token", "t0k"), ("hostname", "https://r.example:5000/")],
        ))
        .unwrap();
        assert_eq!(
            auth.entries,
            [AuthEntry {
                host: Some("r.example:5000".into()),
                credentials: Credentials::Bearer { token: "t0k".into() }
            }]
        );
    }

    #[test]
    fn unknown_key_is_named_without_values() {
        let err = read_secret(&secret(
            None,
            &[("username", "u"), ("password", "hunter2"), ("pasword", "x")],
        ))
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\"pasword\"") && text.contains("kapp-controller/creds"),
            "{text}"
        );
        assert!(!text.contains("hunter2"));
    }

    #[test]
    fn incomplete_and_ambiguous_secrets_fail() {
        for data in [
            vec![("username", "u")],
            vec![("password", "p")],
            vec![("username", "u"), ("password", "p"), ("token", "t")],
            vec![("hostname", "h")],
            vec![],
        ] {
            let err = read_secret(&secret(None, &data)).unwrap_err();
            assert!(
                matches!(err, ReconcileError::SecretInvalid { .. }),
                "{data:?}: {err}"
            );
        }
    }

    #[test]
    fn docker_config_json() {
        let auth_b64 = base64::engine::general_purpose::STANDARD.encode("bob:s3cret");
        let json = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth_b64}"}},"r.example":{{"username":"a","password":"b"}}}}}}"#
        );
        let auth = read_secret(&secret(
            Some(DOCKER_CONFIG_JSON_TYPE),
            &[(".dockerconfigjson", &json)],
        ))
        .unwrap();
        assert_eq!(
            auth.entries,
            [
                AuthEntry {
                    host: Some("index.docker.io".into()),
                    credentials: Credentials::Basic {
                        username: "bob".into(),
                        password: "s3cret".into()
                    }
                },
                AuthEntry {
                    host: Some("r.example".into()),
                    credentials: Credentials::Basic {
                        username: "a".into(),
                        password: "b".into()
                    }
                },
            ]
        );
        let err = read_secret(&secret(
            Some(DOCKER_CONFIG_JSON_TYPE),
            &[(".dockerconfigjson", "{\"auths\": {\"h\": \"s3cret")],
        ))
        .unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
