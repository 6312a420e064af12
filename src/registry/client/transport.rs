//! One authorised request: the registry's scheme (HTTPS, or plain HTTP where allowed), the
//! credentials, the Authorization header, and one answer to a 401 challenge.
use super::challenge::parse_challenge;
use super::classify::{classify, unauthorized};
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
    pub(super) async fn send(
        &self,
        op: &Op,
        build: &(dyn Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Sync),
    ) -> Result<reqwest::Response, RegistryError> {
        let credentials = self.credentials(op).await;
        let mut answered_challenge = false;
        loop {
            let auth = self.authorization(op, &credentials).await?;
            let scheme = self.scheme(op).await?;
            let http = self.http_for(&op.registry);
            let base = format!("{scheme}://{}", op.registry);
            let mut request = build(http, &base).build().map_err(|e| classify(&e, op))?;
            let sent_auth = auth.clone();
            if let Some(auth) = auth
                && same_authority(request.url(), &op.registry)
            {
                request.headers_mut().insert(header::AUTHORIZATION, auth);
            }
            let resp = http.execute(request).await.map_err(|e| classify(&e, op))?;
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
                    return Err(unauthorized(op));
                };
                if let Some(rejected) = &sent_auth {
                    self.forget_token(op, &credentials, rejected).await;
                }
                self.inner
                    .challenges
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(op.registry.clone(), challenge);
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

    /// `https`, or `http` for a registry allowed plain HTTP that does not speak TLS.
    ///
    /// Falls back only when the TLS attempt failed for a reason other than certificate
    /// verification or a timeout: a bad certificate is never "solved" by dropping TLS.
    pub(super) async fn scheme(&self, op: &Op) -> Result<&'static str, RegistryError> {
        let registry = &op.registry;
        let slot = {
            let mut schemes = self.inner.schemes.lock().unwrap_or_else(|p| p.into_inner());
            schemes.entry(registry.clone()).or_default().clone()
        };
        let mut known = slot.lock().await;
        if let Some(s) = *known {
            return Ok(s);
        }
        let scheme = if !self.plain_http_allowed(registry) {
            "https"
        } else {
            let http = self.http_for(registry);
            match http.get(format!("https://{registry}/v2/")).send().await {
                Ok(_) => "https",
                Err(e) => match classify(&e, op) {
                    err @ (RegistryError::Tls { .. } | RegistryError::Timeout { .. }) => return Err(err),
                    tls_failure => match http.get(format!("http://{registry}/v2/")).send().await {
                        // A TLS server answers plain HTTP with 400 ("Client sent an HTTP request
                        // to an HTTPS server"): the TLS attempt failed for another reason, so
                        // report that instead of settling on plain HTTP for good.
                        Ok(resp) if resp.status() == StatusCode::BAD_REQUEST => return Err(tls_failure),
                        Ok(_) => {
                            tracing::debug!(registry, error = %tls_failure, "registry does not speak TLS; using plain HTTP");
                            "http"
                        }
                        Err(e) => return Err(classify(&e, op)),
                    },
                },
            }
        };
        *known = Some(scheme);
        Ok(scheme)
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
            matches!(classified, RegistryError::Connection { .. }),
            "{classified:?}"
        );
        assert!(
            classified.to_string().contains("--registry-insecure"),
            "{classified}"
        );
    }
}
