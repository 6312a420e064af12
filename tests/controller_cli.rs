//! The `pkgr controller` and `pkgr crd` binaries: startup refusal without CRDs, CRD output.
use std::io::Write;
use std::process::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A loopback "API server" that answers 404 NotFound to everything and counts requests.
async fn api_without_crds() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 16 * 1024];
                // One request per connection is enough for the checks under test.
                let _ = stream.read(&mut buffer).await;
                let body = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"not found","reason":"NotFound","code":404}"#;
                let response = format!(
                    "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (format!("http://{address}"), server)
}

#[tokio::test]
async fn controller_refuses_to_start_without_crds_and_says_how_to_install_them() {
    let (server, handle) = api_without_crds().await;
    let mut kubeconfig = tempfile::NamedTempFile::new().unwrap();
    write!(
        kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {server}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n    token: not-a-real-token\n"
    )
    .unwrap();
    let output = tokio::task::spawn_blocking({
        let path = kubeconfig.path().to_path_buf();
        move || {
            Command::new(env!("CARGO_BIN_EXE_pkgr"))
                .args(["controller", "--metrics-address", "127.0.0.1:0"])
                .env("KUBECONFIG", path)
                .env_remove("KUBERNETES_SERVICE_HOST")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    handle.abort();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(
            "the CustomResourceDefinition packagerepositories.install.package.carvel.dev is not installed; install them with `pkgr crd | kubectl apply -f -`"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("not-a-real-token"),
        "credentials never appear: {stderr}"
    );
}

#[test]
fn crd_command_prints_the_committed_crds() {
    let output = Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/crds.yaml")).unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), committed);
}
