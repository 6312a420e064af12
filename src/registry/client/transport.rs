//! One authorised request: the `/v2/` ping (scheme, HTTPS or plain HTTP where allowed, and the
//! auth challenge), the credentials, the Authorization header, and one answer to a 401 challenge.
use super::challenge::parse_challenge;
use super::classify::classify;
use super::debug::{GO_HEADER_TIMEOUT, Sent};
use super::wire::same_authority;
use super::{Challenge, Client, Op, is_loopback};
use crate::registry::{Credentials, RegistryError};
use reqwest::StatusCode;
use reqwest::header;
use std::sync::Arc;

/// A registry's scheme once known; the async lock makes concurrent first requests share one probe.
pub(super) type SchemeSlot = Arc<tokio::sync::Mutex<Option<&'static str>>>;

impl Client {
    /// One request with authentication: answers a 401 challenge once, and turns retryable
    /// statuses (5xx, 408, 429) into errors so that [`retrying`](Self::retrying) sees them.
    ///
    /// The registry is pinged first (once), so credentials go out with the first request
    /// whenever its `/v2/` challenge asked for them.
    pub(super) async fn send(
        &self,
        op: &Op,
        build: &(dyn Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Sync),
    ) -> Result<reqwest::Response, RegistryError> {
        let credentials = self.credentials(op).await;
        let mut answered_challenge = false;
        loop {
            let scheme = self.ping(op).await?;
            let auth = self.authorization(op, &credentials).await?;
            let http = self.http_for(&op.registry);
            let base = format!("{scheme}://{}", op.registry);
            let mut request = build(http, &base).build().map_err(|e| classify(&e, op))?;
            let sent_auth = auth.clone();
            if let Some(auth) = auth
                && same_authority(request.url(), &op.registry)
            {
                request.headers_mut().insert(header::AUTHORIZATION, auth);
            }
            let sent = Sent::new(&request);
            let mut resp = http.execute(request).await.map_err(|e| sent.classify(&e, op))?;
            sent.answered(&mut resp);
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED {
                // Retry once with what the challenge asks for, when we have something better to send.
                let challenge = match (parse_challenge(resp.headers()), &credentials) {
                    (_, _) if answered_challenge => None,
                    (_, Credentials::Bearer { .. }) | (Some(Challenge::Basic), Credentials::Anonymous) => {
                        None
                    }
                    (challenge, _) => challenge,
                };
                let Some(challenge) = challenge else {
                    return Err(match self.status_error(resp, op).await {
                        RegistryError::Unauthorized {
                            action,
                            registry,
                            repository,
                            message,
                            go_text,
                            ..
                        } => RegistryError::Unauthorized {
                            action,
                            registry,
                            repository,
                            anonymous: sent_auth.is_none(),
                            message,
                            go_text,
                        },
                        other => other,
                    });
                };
                if let Some(rejected) = &sent_auth {
                    self.forget_token(op, &credentials, rejected).await;
                }
                self.learn_challenge(&op.registry, challenge);
                answered_challenge = true;
                continue;
            }
            if status.is_server_error()
                || status == StatusCode::REQUEST_TIMEOUT
                || status == StatusCode::TOO_MANY_REQUESTS
            {
                return Err(self.status_error(resp, op).await);
            }
            return Ok(resp);
        }
    }

    fn learn_challenge(&self, registry: &str, challenge: Challenge) {
        self.inner
            .challenges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(registry.to_string(), challenge);
    }

    /// The keychain's answer; a Docker credential helper runs on the blocking pool.
    pub(super) async fn credentials(&self, op: &Op) -> Credentials {
        let keychain = &self.inner.options.keychain;
        if !keychain.runs_programs() {
            return keychain.resolve(&op.registry, &op.repository);
        }
        let (keychain, registry, repository) = (keychain.clone(), op.registry.clone(), op.repository.clone());
        match tokio::task::spawn_blocking(move || keychain.resolve(&registry, &repository)).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "credential lookup failed; continuing anonymously");
                Credentials::Anonymous
            }
        }
    }

    pub(super) fn skip_verify(&self, registry: &str) -> bool {
        !self.inner.options.verify_certs
            || self
                .inner
                .options
                .skip_tls_verify_hosts
                .iter()
                .any(|h| h == registry || registry.rsplit_once(':').is_some_and(|(host, _)| host == h))
    }

    pub(super) fn http_for(&self, registry: &str) -> &reqwest::Client {
        match (&self.inner.unverified, self.skip_verify(registry)) {
            (Some(unverified), true) => unverified,
            _ => &self.inner.verified,
        }
    }

    pub(super) fn upload_http_for(&self, registry: &str) -> &reqwest::Client {
        match (&self.inner.upload_unverified, self.skip_verify(registry)) {
            (Some(unverified), true) => unverified,
            _ => &self.inner.upload_verified,
        }
    }

    pub(super) fn plain_http_allowed(&self, registry: &str) -> bool {
        self.inner.options.allow_plain_http || is_loopback(registry)
    }

    /// `GET /v2/`, once per registry, as Docker clients do: it tells the scheme (`https`, or
    /// `http` for a registry allowed plain HTTP that does not speak TLS) and the auth challenge,
    /// which many registries send only there (a bare 401 elsewhere).
    ///
    /// Falls back to plain HTTP only when the TLS attempt failed for a reason other than
    /// certificate verification or silence: a bad certificate is never "solved" by dropping TLS.
    /// The ping is bounded by the response timeout as a whole, so a registry that accepts
    /// connections and never answers fails within that time.
    pub(super) async fn ping(&self, op: &Op) -> Result<&'static str, RegistryError> {
        let registry = &op.registry;
        let slot = {
            let mut schemes = self.inner.schemes.lock().unwrap_or_else(|p| p.into_inner());
            schemes.entry(registry.clone()).or_default().clone()
        };
        let mut known = slot.lock().await;
        if let Some(s) = *known {
            return Ok(s);
        }
        let scheme = match self.ping_once("https", op).await {
            Ok(resp) => {
                self.learn_from_ping(registry, &resp);
                "https"
            }
            Err(e) if !self.plain_http_allowed(registry) => return Err(e),
            Err(err @ (RegistryError::Tls { .. } | RegistryError::NoResponse { .. })) => return Err(err),
            Err(tls_failure) => match self.ping_once("http", op).await? {
                // A TLS server answers plain HTTP with 400 ("Client sent an HTTP request to an
                // HTTPS server"): the TLS attempt failed for another reason, so report that
                // instead of settling on plain HTTP for good.
                resp if resp.status() == StatusCode::BAD_REQUEST => return Err(tls_failure),
                resp => {
                    tracing::debug!(registry, error = %tls_failure, "registry does not speak TLS; using plain HTTP");
                    self.learn_from_ping(registry, &resp);
                    "http"
                }
            },
        };
        *known = Some(scheme);
        Ok(scheme)
    }

    async fn ping_once(&self, scheme: &str, op: &Op) -> Result<reqwest::Response, RegistryError> {
        let http = self.http_for(&op.registry);
        let request = http
            .get(format!("{scheme}://{}/v2/", op.registry))
            .timeout(self.inner.options.read_timeout)
            .build()
            .map_err(|e| classify(&e, op))?;
        let sent = Sent::new(&request);
        let mut resp = http.execute(request).await.map_err(|e| {
            if e.is_timeout() {
                sent.failed(&e);
                RegistryError::NoResponse {
                    action: op.action.clone(),
                    registry: op.registry.clone(),
                    message: format!("GET {scheme}://{}/v2/ timed out", op.registry),
                    go_text: sent.go_error(GO_HEADER_TIMEOUT).into(),
                }
            } else {
                sent.classify(&e, op)
            }
        })?;
        sent.answered(&mut resp);
        Ok(resp)
    }

    fn learn_from_ping(&self, registry: &str, resp: &reqwest::Response) {
        if resp.status() == StatusCode::UNAUTHORIZED
            && let Some(challenge) = parse_challenge(resp.headers())
        {
            self.learn_challenge(registry, challenge);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Subject;
    use super::*;
    use crate::registry::Reference;

    #[tokio::test]
    async fn plain_http_answer_to_tls_gets_a_hint() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut hello = [0u8; 512];
            let _ = stream.read(&mut hello).await;
            let _ = stream
                .write_all(
                    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
                )
                .await;
        });
        let err = reqwest::Client::new()
            .get(format!("https://{addr}/v2/"))
            .send()
            .await
            .unwrap_err();
        server.await.unwrap();
        let reference = Reference::parse(&format!("{addr}/app:v1")).unwrap();
        let op = Op::new("fetching manifest".into(), &reference, false, Subject::Repository);
        let classified = classify(&err, &op);
        assert!(
            matches!(
                classified,
                RegistryError::Connection {
                    fix: Some(crate::registry::Fix::PlainHttp),
                    ..
                }
            ),
            "{classified:?}"
        );
        assert!(
            classified.to_string().contains("does not seem to speak TLS"),
            "{classified}"
        );
    }
}
