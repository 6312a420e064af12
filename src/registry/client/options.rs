//! How to reach registries: the client's options and the HTTP clients built from them.
use super::classify::error_chain;
use crate::registry::{Keychain, RegistryError};
use std::time::Duration;

/// How to reach registries.
#[derive(Clone)]
pub struct ClientOptions {
    pub keychain: Keychain,
    /// Extra trusted CA certificates (PEM).
    pub ca_certs_pem: Vec<Vec<u8>>,
    /// `false` turns off TLS verification for every registry (explicit opt-in).
    pub verify_certs: bool,
    /// Hosts (`host` or `host:port`) reached without TLS verification.
    pub skip_tls_verify_hosts: Vec<String>,
    /// Allow plain HTTP to any registry (`--registry-insecure`). Loopback is always allowed.
    pub allow_plain_http: bool,
    /// Retries after the first attempt on 5xx, timeouts and dropped connections.
    pub retries: u32,
    /// Largest manifest accepted, in bytes.
    pub max_manifest_bytes: u64,
    /// Time to establish a connection.
    pub connect_timeout: std::time::Duration,
    /// Time to wait for response headers, and the longest silence while reading a body.
    pub read_timeout: std::time::Duration,
    /// Explicit proxies (the controller's `kapp-controller-config`); `None` uses the environment.
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub no_proxy: Option<String>,
}

/// CA bundles are summarised (they are long and not interesting in logs); the keychain
/// prints redacted credentials.
impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("keychain", &self.keychain)
            .field(
                "ca_certs_pem",
                &format_args!("{} bundle(s)", self.ca_certs_pem.len()),
            )
            .field("verify_certs", &self.verify_certs)
            .field("skip_tls_verify_hosts", &self.skip_tls_verify_hosts)
            .field("allow_plain_http", &self.allow_plain_http)
            .field("retries", &self.retries)
            .field("max_manifest_bytes", &self.max_manifest_bytes)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("http_proxy", &self.http_proxy.as_deref().map(redact_userinfo))
            .field("https_proxy", &self.https_proxy.as_deref().map(redact_userinfo))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// `http://user:pass@proxy:3128` → `http://<redacted>@proxy:3128`.
pub(super) fn redact_userinfo(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let prefix = if scheme.is_empty() {
                String::new()
            } else {
                format!("{scheme}://")
            };
            format!("{prefix}<redacted>{}", &rest[at..])
        }
        None => url.to_string(),
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            keychain: Keychain::anonymous(),
            ca_certs_pem: Vec::new(),
            verify_certs: true,
            skip_tls_verify_hosts: Vec::new(),
            allow_plain_http: false,
            retries: 3,
            max_manifest_bytes: 4 * 1024 * 1024,
            connect_timeout: std::time::Duration::from_secs(10),
            read_timeout: std::time::Duration::from_secs(30),
            http_proxy: None,
            https_proxy: None,
            no_proxy: None,
        }
    }
}

/// The headers every request carries unless it sets its own (`--debug` shows them too):
/// reqwest's `Accept: */*`, pkgr's `User-Agent`, and `Accept-Encoding: identity`, since pkgr
/// does not decode compressed transfers (blobs are checked against their digest as sent).
pub(super) fn default_headers() -> reqwest::header::HeaderMap {
    use reqwest::header::{ACCEPT, ACCEPT_ENCODING, HeaderMap, HeaderValue, USER_AGENT};
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("pkgr/", env!("CARGO_PKG_VERSION"))),
    );
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    headers
}

pub(super) fn build_http(
    options: &ClientOptions,
    verify: bool,
    read_timeout: Option<Duration>,
) -> Result<reqwest::Client, RegistryError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .default_headers(default_headers());
    if let Some(t) = read_timeout {
        builder = builder.read_timeout(t);
    }
    if verify {
        let mut certs = Vec::new();
        for (i, pem) in options.ca_certs_pem.iter().enumerate() {
            let parsed = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                RegistryError::ClientBuild(format!("CA certificate bundle #{} is not valid PEM: {e}", i + 1))
            })?;
            certs.extend(parsed);
        }
        builder = builder.tls_certs_merge(certs);
    } else {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    let no_proxy = options
        .no_proxy
        .as_deref()
        .and_then(reqwest::NoProxy::from_string);
    let proxy_error = |which: &str, e: reqwest::Error| {
        RegistryError::ClientBuild(format!("the {which} proxy URL is invalid: {}", e.without_url()))
    };
    if let Some(p) = options.http_proxy.as_deref().filter(|p| !p.is_empty()) {
        builder = builder.proxy(
            reqwest::Proxy::http(p)
                .map_err(|e| proxy_error("HTTP", e))?
                .no_proxy(no_proxy.clone()),
        );
    }
    if let Some(p) = options.https_proxy.as_deref().filter(|p| !p.is_empty()) {
        builder = builder.proxy(
            reqwest::Proxy::https(p)
                .map_err(|e| proxy_error("HTTPS", e))?
                .no_proxy(no_proxy),
        );
    }
    builder.build().map_err(|e| {
        let chain = error_chain(&e);
        // rustls-platform-verifier's words when the system has no CA roots (an image without
        // ca-certificates, an SSL_CERT_FILE that names an empty file): say where they come from.
        if chain.contains("No CA certificates were loaded from the system") {
            RegistryError::ClientBuild(format!(
                "{chain}. pkgr trusts the system's CA bundle (/etc/ssl/certs/ca-certificates.crt on \
                 Debian, or SSL_CERT_FILE / SSL_CERT_DIR when set) and found no certificate there: \
                 install the ca-certificates package, or pass the registry's CA with \
                 --registry-ca-cert-path"
            ))
        } else {
            RegistryError::ClientBuild(chain)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_credentials_are_redacted_in_debug() {
        let options = ClientOptions {
            http_proxy: Some("http://bob:pr0xy-pw@proxy.corp:3128".into()),
            https_proxy: Some("proxy.corp:3128".into()),
            ca_certs_pem: vec![b"-----BEGIN CERTIFICATE-----".to_vec()],
            ..ClientOptions::default()
        };
        let text = format!("{options:?}");
        assert!(!text.contains("pr0xy-pw") && !text.contains("bob"), "{text}");
        assert!(
            text.contains("http://<redacted>@proxy.corp:3128") && text.contains("proxy.corp:3128"),
            "{text}"
        );
        assert!(text.contains("1 bundle(s)"), "{text}");
    }
}
