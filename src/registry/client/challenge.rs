//! Registry auth: the `WWW-Authenticate` challenge of each registry and the bearer tokens
//! fetched for it, cached per (registry, scopes, credentials).
use super::classify::{classify, distribution_error, go_status_text, unauthorized};
use super::wire::{authority, read_capped};
use super::{Client, MAX_SMALL_BODY, Op};
use crate::registry::{Credentials, RegistryError};
use base64::Engine as _;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Challenge {
    Basic,
    /// The challenge's `scope` is not kept: it names the repository of the request that was
    /// challenged, while the cached challenge serves every repository of the registry.
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) struct TokenKey {
    registry: String,
    scopes: String,
    credentials: Credentials,
}

pub(super) type TokenSlot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

pub(super) struct CachedToken {
    token: String,
    expires: Instant,
}

/// What an operation is about, to name it in errors.
impl Client {
    /// The Authorization header for a request, from the registry's last challenge.
    pub(super) async fn authorization(
        &self,
        op: &Op,
        credentials: &Credentials,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        if let Credentials::Bearer { token } = credentials {
            return Ok(Some(secret_header(&format!("Bearer {token}"))?));
        }
        let challenge = self
            .inner
            .challenges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&op.registry)
            .cloned();
        match (challenge, credentials) {
            (None, _) => Ok(None),
            (Some(Challenge::Basic), Credentials::Basic { username, password }) => {
                Ok(Some(secret_header(&basic(username, password))?))
            }
            (Some(Challenge::Basic), _) => Ok(None),
            (Some(Challenge::Bearer { realm, service }), _) => {
                let token = self.token(op, credentials, &realm, service.as_deref()).await?;
                Ok(Some(secret_header(&format!("Bearer {token}"))?))
            }
        }
    }

    pub(super) fn token_key(op: &Op, credentials: &Credentials) -> TokenKey {
        TokenKey {
            registry: op.registry.clone(),
            scopes: op.scopes.join(" "),
            credentials: credentials.clone(),
        }
    }

    /// Drop the cached token if it is the one the registry rejected (another task may
    /// already have replaced it with a good one).
    pub(super) async fn forget_token(&self, op: &Op, credentials: &Credentials, rejected: &HeaderValue) {
        let slot = self.token_slot(Self::token_key(op, credentials));
        let mut cached = slot.lock().await;
        if cached
            .as_ref()
            .is_some_and(|c| rejected.as_bytes() == format!("Bearer {}", c.token).as_bytes())
        {
            *cached = None;
        }
    }

    /// The cache slot for one key; its async lock makes concurrent requests for the same
    /// scopes wait for one fetch, while other registries and scopes go ahead.
    pub(super) fn token_slot(&self, key: TokenKey) -> TokenSlot {
        let mut tokens = self.inner.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.entry(key).or_default().clone()
    }

    /// A bearer token for the operation's scopes, from the cache or the token server.
    pub(super) async fn token(
        &self,
        op: &Op,
        credentials: &Credentials,
        realm: &str,
        service: Option<&str>,
    ) -> Result<String, RegistryError> {
        let slot = self.token_slot(Self::token_key(op, credentials));
        let mut cached = slot.lock().await;
        if let Some(cached) = cached.as_ref()
            && cached.expires > Instant::now()
        {
            return Ok(cached.token.clone());
        }
        let protocol = |message: String| RegistryError::Protocol {
            action: op.action.clone(),
            registry: op.registry.clone(),
            message,
            fix: None,
        };
        let mut url = Url::parse(realm)
            .map_err(|e| protocol(format!("the token realm {realm:?} is not a URL: {e}")))?;
        let realm_authority = authority(&url);
        match url.scheme() {
            "https" => {}
            "http" if self.plain_http_allowed(&realm_authority) => {}
            other => {
                return Err(RegistryError::Protocol {
                    action: op.action.clone(),
                    registry: op.registry.clone(),
                    message: format!(
                        "the token realm {realm} uses {other}, which is not allowed for this host"
                    ),
                    fix: Some(crate::registry::Fix::PlainHttp),
                });
            }
        }
        let scopes = &op.scopes;
        let http = self.http_for(&realm_authority);
        let request = match credentials {
            Credentials::IdentityToken { token } => {
                let mut form = Url::parse("http://form.invalid/").expect("static URL");
                {
                    let mut pairs = form.query_pairs_mut();
                    pairs.append_pair("grant_type", "refresh_token");
                    pairs.append_pair("refresh_token", token);
                    pairs.append_pair("client_id", "pkgr");
                    if let Some(service) = service {
                        pairs.append_pair("service", service);
                    }
                    pairs.append_pair("scope", &scopes.join(" "));
                }
                let body = form.query().unwrap_or_default().to_string();
                http.post(url.clone())
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body)
            }
            _ => {
                {
                    let mut pairs = url.query_pairs_mut();
                    if let Some(service) = service {
                        pairs.append_pair("service", service);
                    }
                    for scope in scopes {
                        pairs.append_pair("scope", scope);
                    }
                }
                let mut request = http.get(url.clone());
                if let Credentials::Basic { username, password } = credentials {
                    request =
                        request.header(header::AUTHORIZATION, secret_header(&basic(username, password))?);
                }
                request
            }
        };
        let request = request.build().map_err(|e| classify(&e, op))?;
        let sent = super::debug::Sent::new(&request);
        let mut resp = http.execute(request).await.map_err(|e| sent.classify(&e, op))?;
        sent.answered(&mut resp);
        let status = resp.status();
        if !status.is_success() {
            let line = resp.extensions().get::<super::debug::RequestLine>().cloned();
            let body = read_capped(resp, MAX_SMALL_BODY, op).await.unwrap_or_default();
            let (code, message) = distribution_error(&body);
            let go_text = line
                .map(|line| go_status_text(&line, status.as_u16(), &body))
                .unwrap_or_default();
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let anonymous = matches!(credentials, Credentials::Anonymous);
                return Err(unauthorized(op, anonymous, message, go_text));
            }
            return Err(RegistryError::Status {
                action: format!("{} (getting a token from {realm})", op.action),
                registry: op.registry.clone(),
                status: status.as_u16(),
                code,
                message,
                retry_after: None,
                go_text: go_text.into(),
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenReply {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let body = read_capped(resp, MAX_SMALL_BODY, op).await?;
        let reply: TokenReply = serde_json::from_slice(&body).map_err(|e| {
            protocol(format!(
                "the token server {realm} answered with unexpected JSON: {e}"
            ))
        })?;
        let token = reply
            .token
            .or(reply.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| protocol(format!("the token server {realm} returned no token")))?;
        // The distribution spec's default lifetime is 60 s; renew a little early.
        let lifetime = Duration::from_secs(reply.expires_in.unwrap_or(60).max(1));
        let margin = (lifetime / 10).min(Duration::from_secs(30));
        *cached = Some(CachedToken {
            token: token.clone(),
            expires: Instant::now() + lifetime - margin,
        });
        Ok(token)
    }
}

pub(super) fn basic(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
}

/// A header value marked sensitive so that it never shows in Debug output.
pub(super) fn secret_header(value: &str) -> Result<HeaderValue, RegistryError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| RegistryError::Config {
        what: "registry credentials".into(),
        reason: "they contain characters that cannot be sent in an HTTP header".into(),
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// Parse `WWW-Authenticate: Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
/// Quoted values may hold commas (the scope does), so the parameters are tokenised properly.
pub(super) fn parse_challenge(headers: &HeaderMap) -> Option<Challenge> {
    let value = headers.get(header::WWW_AUTHENTICATE)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let params = parse_auth_params(rest);
    if scheme.eq_ignore_ascii_case("basic") {
        Some(Challenge::Basic)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
        })
    } else {
        None
    }
}

/// `key="value", key2=value2` (quoted values may contain commas and escaped quotes).
pub(super) fn parse_auth_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            return out;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        out.insert(key.trim().to_ascii_lowercase(), value);
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let h = headers(&[(
            "www-authenticate",
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push""#,
        )]);
        assert_eq!(
            parse_challenge(&h),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
            })
        );
        assert_eq!(
            parse_challenge(&headers(&[(
                "www-authenticate",
                r#"Basic realm="Registry Realm""#
            )])),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(&headers(&[("www-authenticate", "Negotiate")])),
            None
        );
        assert_eq!(
            parse_challenge(&headers(&[("www-authenticate", "Bearer service=x")])),
            None,
            "realm is required"
        );
    }
}
