//! A small HTTP server for `/metrics`, `/healthz` and `/readyz`.
use super::metrics::Metrics;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;

/// What the probes report.
#[derive(Default)]
pub struct Health {
    /// Startup checks passed and the controller is running (or waiting for leadership).
    pub ready: AtomicBool,
    /// Watches that are down (the API server is away): not ready until they are back.
    pub watches: Arc<super::watch::WatchHealth>,
}

/// Answer one request.
pub fn respond(path: &str, metrics: &Metrics, health: &Health) -> Response<String> {
    let (status, content_type, body) = match path {
        "/metrics" => (StatusCode::OK, "text/plain; version=0.0.4", metrics.render()),
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        "/readyz" if health.ready.load(Ordering::Relaxed) => match health.watches.down() {
            down if down.is_empty() => (StatusCode::OK, "text/plain", "ready\n".to_string()),
            down => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!(
                    "watches down (the API server is unreachable or refuses them): {}\n",
                    down.join(", ")
                ),
            ),
        },
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "starting\n".to_string(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics, /healthz or /readyz\n".to_string(),
        ),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

/// Bind `address`; the returned future serves until dropped.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

/// Serve connections from `listener` forever.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, health: Arc<Health>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "metrics server: accept failed");
                continue;
            }
        };
        let (metrics, health) = (metrics.clone(), health.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = respond(request.uri().path(), &metrics, &health);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "metrics server connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn routes() {
        let metrics = Metrics::default();
        let health = Health::default();
        assert_eq!(respond("/healthz", &metrics, &health).status(), StatusCode::OK);
        assert_eq!(
            respond("/readyz", &metrics, &health).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.ready.store(true, Ordering::Relaxed);
        assert_eq!(respond("/readyz", &metrics, &health).status(), StatusCode::OK);
        assert_eq!(
            respond("/nope", &metrics, &health).status(),
            StatusCode::NOT_FOUND
        );
        metrics.observe("succeeded", std::time::Duration::from_millis(5));
        assert!(
            respond("/metrics", &metrics, &health)
                .body()
                .contains("pkgr_reconciles_total")
        );
    }

    #[tokio::test]
    async fn serves_over_tcp() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let address = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        metrics.observe("failed", std::time::Duration::from_millis(5));
        let server = tokio::spawn(serve(listener, metrics, Arc::new(Health::default())));
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            response.contains("pkgr_reconciles_total{outcome=\"failed\"} 1"),
            "{response}"
        );
        server.abort();
    }
}
