//! How to reach registries: the client's options and the HTTP clients built from them.
use super::classify::error_chain;
use crate::registry::{Fix, Keychain, RegistryError};
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

/// The TLS set-up of every verifying connection a client makes: the system's CA roots plus the
/// `--registry-ca-cert-path` / `caCerts` bundles, checked with the verifier reqwest itself uses,
/// and reqwest's other defaults (TLS 1.2 and 1.3, SNI, ALPN `http/1.1`). Reading and parsing the
/// system roots is most of what building a client costs, so it is done once here and the
/// client's two verifying HTTP clients (requests, uploads) share the result.
pub(super) fn verified_tls(options: &ClientOptions) -> Result<rustls::ClientConfig, RegistryError> {
    #[cfg(test)]
    tests::ROOT_LOADS.with(|n| n.set(n.get() + 1));
    use rustls_pki_types::pem::PemObject;
    let mut extra_roots = Vec::new();
    for (i, pem) in options.ca_certs_pem.iter().enumerate() {
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
            extra_roots.push(cert.map_err(|e| RegistryError::ClientBuild {
                message: format!("CA certificate bundle #{} is not valid PEM: {e}", i + 1),
                fix: None,
            })?);
        }
    }
    // As reqwest: a process-wide default provider when one was installed, else aws-lc-rs.
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone())
        .map_err(|e| client_build_error(&e))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| client_build_error(&e))?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// One HTTP client: verifying with `tls` (from [`verified_tls`]), or without verification when
/// `tls` is `None`.
pub(super) fn build_http(
    options: &ClientOptions,
    tls: Option<&rustls::ClientConfig>,
    read_timeout: Option<Duration>,
) -> Result<reqwest::Client, RegistryError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .default_headers(default_headers());
    if let Some(t) = read_timeout {
        builder = builder.read_timeout(t);
    }
    builder = match tls {
        Some(tls) => builder.tls_backend_preconfigured(tls.clone()),
        None => builder.tls_danger_accept_invalid_certs(true),
    };
    let no_proxy = options
        .no_proxy
        .as_deref()
        .and_then(reqwest::NoProxy::from_string);
    let proxy_error = |which: &str, e: reqwest::Error| RegistryError::ClientBuild {
        message: format!("the {which} proxy URL is invalid: {}", e.without_url()),
        fix: None,
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
    builder.build().map_err(|e| client_build_error(&e))
}

fn client_build_error(e: &(dyn std::error::Error + 'static)) -> RegistryError {
    let message = error_chain(e);
    // rustls-platform-verifier's words when the system has no CA roots (an image without
    // ca-certificates, an SSL_CERT_FILE that names an empty file): the message says where they
    // come from, and each reader is told how to give some.
    let fix = message
        .contains("No CA certificates were loaded from the system")
        .then_some(Fix::SystemCaRoots);
    RegistryError::ClientBuild { message, fix }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// How often this thread loaded the system's CA roots (built a verifying TLS set-up).
        pub(crate) static ROOT_LOADS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    fn root_loads_building(options: ClientOptions) -> usize {
        let before = ROOT_LOADS.with(|n| n.get());
        crate::registry::Client::new(options).expect("client");
        ROOT_LOADS.with(|n| n.get()) - before
    }

    #[test]
    fn a_client_loads_the_ca_roots_once() {
        assert_eq!(root_loads_building(ClientOptions::default()), 1);
        let per_registry = ClientOptions {
            skip_tls_verify_hosts: vec!["reg.corp.xyz".into()],
            ..ClientOptions::default()
        };
        assert_eq!(root_loads_building(per_registry), 1);
        let unverified = ClientOptions {
            verify_certs: false,
            ..ClientOptions::default()
        };
        assert_eq!(root_loads_building(unverified), 0, "nothing is verified");
    }

    #[test]
    fn a_bundle_that_is_not_pem_is_named() {
        let options = ClientOptions {
            ca_certs_pem: vec![
                b"".to_vec(),
                b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".to_vec(),
            ],
            ..ClientOptions::default()
        };
        let err = crate::registry::Client::new(options).unwrap_err().to_string();
        assert!(err.contains("CA certificate bundle #2 is not valid PEM"), "{err}");
    }

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
