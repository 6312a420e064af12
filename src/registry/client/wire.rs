//! The distribution API's small print: URL paths, headers (digest, type, Location, Link) and
//! bounded body reads.
use super::Op;
use super::classify::classify;
use crate::registry::{Digest, Reference, RegistryError};
use bytes::{Bytes, BytesMut};
use reqwest::Url;
use reqwest::header::{self, HeaderMap};

pub(super) fn manifest_path(reference: &Reference) -> String {
    format!(
        "/v2/{}/manifests/{}",
        reference.repository(),
        reference.manifest_selector()
    )
}

pub(super) fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// Credentials go only to the registry itself, not to a storage backend it redirects to.
pub(super) fn same_authority(url: &Url, registry: &str) -> bool {
    let host = url.host_str().unwrap_or_default();
    let with_port = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    with_port == registry
        || url
            .port_or_known_default()
            .is_some_and(|p| format!("{host}:{p}") == registry)
        || (url.port().is_none() && host == registry)
}

/// Loopback registries may use plain HTTP without an opt-in.
pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        registry.rsplit_once(':').map_or(registry, |(h, _)| h)
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub(super) fn content_digest(headers: &HeaderMap) -> Option<Digest> {
    let value = headers.get("docker-content-digest")?.to_str().ok()?;
    Digest::parse(value.trim()).ok()
}

pub(super) fn content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or_default().trim().to_string())
}

pub(super) fn is_generic(media_type: &str) -> bool {
    media_type.is_empty() || media_type == "application/json" || media_type == "text/plain"
}

pub(super) fn upload_location(resp: &reqwest::Response, op: &Op) -> Result<Url, RegistryError> {
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Protocol {
            action: op.action.clone(),
            registry: op.registry.clone(),
            message: format!(
                "the upload response (HTTP {}) has no Location header",
                resp.status().as_u16()
            ),
            fix: None,
        })?;
    resp.url().join(location).map_err(|e| RegistryError::Protocol {
        action: op.action.clone(),
        registry: op.registry.clone(),
        message: format!("the upload Location {location:?} is not a valid URL: {e}"),
        fix: None,
    })
}

/// `Link: </v2/x/tags/list?last=a&n=100>; rel="next"` → the absolute next URL.
pub(super) fn next_link(headers: &HeaderMap, current: &Url) -> Option<Url> {
    for value in headers.get_all(header::LINK) {
        let value = value.to_str().ok()?;
        for part in value.split(',') {
            let (target, params) = part.split_once(';')?;
            if !params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            }) {
                continue;
            }
            let target = target.trim().trim_start_matches('<').trim_end_matches('>');
            return current.join(target).ok();
        }
    }
    None
}

/// Read a body whole, refusing (without reading on) once it passes `limit`.
pub(super) async fn read_capped(
    mut resp: reqwest::Response,
    limit: u64,
    op: &Op,
) -> Result<Bytes, RegistryError> {
    let too_large = || RegistryError::TooLarge {
        action: op.action.clone(),
        limit,
    };
    if resp.content_length().is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| classify(&e, op))? {
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn follows_link_headers() {
        let current = Url::parse("https://reg.io/v2/a/tags/list").unwrap();
        let h = headers(&[("link", r#"</v2/a/tags/list?last=t2&n=2>; rel="next""#)]);
        assert_eq!(
            next_link(&h, &current).unwrap().as_str(),
            "https://reg.io/v2/a/tags/list?last=t2&n=2"
        );
        assert_eq!(next_link(&HeaderMap::new(), &current), None);
    }

    #[test]
    fn loopback_detection() {
        for r in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in ["10.0.0.1:5000", "reg.io", "localhost.evil.com", "[::2]:1"] {
            assert!(!is_loopback(r), "{r}");
        }
    }
}
