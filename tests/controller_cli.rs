//! The `pkgr controller` and `pkgr crd` binaries: startup refusal without CRDs, CRD output; the
//! root `--version` flag that the image check runs.
mod apiserver;

use std::io::Write;
use std::process::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A loopback "API server" that answers 404 NotFound to everything.
async fn api_without_crds() -> (String, tokio::task::JoinHandle<()>) {
    api_answering(|_path| None).await
}

/// A loopback "API server": `answer(path)` gives a 200 body, or `None` for 404 NotFound.
async fn api_answering(
    answer: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> (String, tokio::task::JoinHandle<()>) {
    let answer = std::sync::Arc::new(answer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 16 * 1024];
                // One request per connection is enough for the checks under test.
                let n = stream.read(&mut buffer).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buffer[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let (status, body) = match answer(&path) {
                    Some(body) => ("200 OK", body),
                    None => ("404 Not Found", not_found()),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (format!("http://{address}"), server)
}

/// A kubeconfig pointing at the fake API server `server` with a made-up token.
fn kubeconfig_for(server: &str) -> tempfile::NamedTempFile {
    let mut kubeconfig = tempfile::NamedTempFile::new().unwrap();
    write!(
        kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {server}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n    token: not-a-real-token\n"
    )
    .unwrap();
    kubeconfig
}

/// `pkgr controller` with `kubeconfig`, for a start that is expected to end by itself.
async fn run_controller_to_exit(kubeconfig: &tempfile::NamedTempFile) -> std::process::Output {
    let path = kubeconfig.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pkgr"))
            .args(["controller", "--metrics-address", "127.0.0.1:0"])
            .env("KUBECONFIG", path)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn controller_refuses_to_start_without_crds_and_says_how_to_install_them() {
    let (server, handle) = api_without_crds().await;
    let kubeconfig = kubeconfig_for(&server);
    let output = run_controller_to_exit(&kubeconfig).await;
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

#[tokio::test]
async fn controller_refuses_to_start_where_kapp_controller_api_has_no_crds() {
    // kapp-controller's API server is registered for the packaging group, but the CRDs it
    // stores Packages in are gone: pkgr cannot deliver anywhere PackageInstall would read.
    let (server, handle) = api_answering(|path| {
        (path == "/apis/apiregistration.k8s.io/v1/apiservices/v1alpha1.data.packaging.carvel.dev").then(
            || {
                serde_json::json!({
                "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": "v1alpha1.data.packaging.carvel.dev"},
                "spec": {"group": "data.packaging.carvel.dev", "version": "v1alpha1",
                         "groupPriorityMinimum": 100, "versionPriority": 100,
                         "service": {"namespace": "kapp-controller", "name": "packaging-api", "port": 443}}
            })
            .to_string()
            },
        )
    })
    .await;
    let kubeconfig = kubeconfig_for(&server);
    let output = run_controller_to_exit(&kubeconfig).await;
    handle.abort();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(
            "kapp-controller's packaging API (APIService v1alpha1.data.packaging.carvel.dev, Service kapp-controller/packaging-api) is registered, but its CustomResourceDefinitions internalpackages.internal.packaging.carvel.dev and internalpackagemetadatas.internal.packaging.carvel.dev are not both installed"
        ),
        "{stderr}"
    );
}

fn crd_command(args: &[&str], kubeconfig: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .arg("crd")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap()
}

fn committed(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn crd_command_prints_the_committed_crds_for_each_kind_of_cluster() {
    let nowhere = std::path::Path::new("/nonexistent/kubeconfig");
    let repository = committed("crds/packagerepository.yaml");
    let standalone = format!("{repository}{}", committed("crds/standalone/packages.yaml"));
    let output = crd_command(&["--standalone"], nowhere);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8(output.stdout).unwrap(), standalone);
    let output = crd_command(&["--beside-kapp-controller"], nowhere);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8(output.stdout).unwrap(), repository);
    // Without a flag and without a cluster to ask: no guess, both choices named.
    let output = crd_command(&[], nowhere);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("pkgr crd --standalone") && stderr.contains("pkgr crd --beside-kapp-controller"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

/// Without a flag, `pkgr crd` asks the cluster: `pkgr crd | kubectl apply -f -` installs nothing
/// beside kapp-controller that would take its packaging API group over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_command_asks_the_cluster_which_crds_it_needs() {
    let api = apiserver::FakeApiServer::start().await;
    let kubeconfig = api.kubeconfig();
    let path = kubeconfig.path().to_path_buf();
    let run = move || crd_command(&[], &path);
    let output = tokio::task::spawn_blocking(run.clone()).await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!(
            "{}{}",
            committed("crds/packagerepository.yaml"),
            committed("crds/standalone/packages.yaml")
        )
    );
    api.install_kapp_controller(None, true, true);
    let output = tokio::task::spawn_blocking(run).await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        committed("crds/packagerepository.yaml")
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("kapp-controller serves Packages"));
}

/// `scripts/image-check` runs `pkgr --version` inside the image: it must print the crate version.
#[test]
fn version_flag_prints_the_crate_version() {
    let output = Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with(&format!("pkgr version {}\n", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    // The flag and the command say the same (imgpkg's cobra root does the same).
    let command = Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .arg("version")
        .output()
        .unwrap();
    assert_eq!(text, String::from_utf8(command.stdout).unwrap());
}

/// A loopback "API server" with the CRDs installed and nothing else: GETs of the CRDs answer
/// them, lists answer empty, watches stay open. Each watch request is reported on `watches`; a
/// watch of the controller namespace's Secrets first streams `secret_events` (watch event JSON).
/// With `forbid_secrets`, listing Secrets answers 403 as a missing Role would.
async fn api_with_crds(
    secret_events: Vec<String>,
    forbid_secrets: bool,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<String>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (watches, watched) = tokio::sync::mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let watches = watches.clone();
            let secret_events = secret_events.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 16 * 1024];
                let n = stream.read(&mut buffer).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buffer[..n]).to_string();
                let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                let reply = |status: &str, body: String| {
                    format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                if query.split('&').any(|p| p == "watch=true" || p == "watch=1") {
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                        )
                        .await;
                    if path == "/api/v1/namespaces/kapp-controller/secrets" {
                        for event in &secret_events {
                            let chunk = format!("{:x}\r\n{event}\n\r\n", event.len() + 1);
                            let _ = stream.write_all(chunk.as_bytes()).await;
                        }
                    }
                    let _ = watches.send(path.to_string());
                    // Hold the watch open until the client goes away.
                    let _ = stream.read(&mut buffer).await;
                    return;
                }
                let response = if let Some(name) =
                    path.strip_prefix("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/")
                {
                    match pkgr::api::crds()
                        .into_iter()
                        .find(|c| c.metadata.name.as_deref() == Some(name))
                    {
                        Some(crd) => reply("200 OK", serde_json::to_string(&crd).unwrap()),
                        None => reply("404 Not Found", not_found()),
                    }
                } else if forbid_secrets && path == "/api/v1/namespaces/kapp-controller/secrets" {
                    reply(
                        "403 Forbidden",
                        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"secrets is forbidden","reason":"Forbidden","code":403}"#.into(),
                    )
                } else if path.ends_with("/secrets/kapp-controller-config")
                    || path.ends_with("/configmaps/kapp-controller-config")
                    || path.starts_with("/apis/apiregistration.k8s.io/v1/apiservices/")
                {
                    reply("404 Not Found", not_found())
                } else {
                    reply(
                        "200 OK",
                        r#"{"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}"#
                            .into(),
                    )
                };
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (format!("http://{address}"), watched, server)
}

fn not_found() -> String {
    r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"not found","reason":"NotFound","code":404}"#.into()
}

#[tokio::test]
async fn controller_stops_cleanly_on_sigterm() {
    let (server, mut watched, handle) = api_with_crds(Vec::new(), false).await;
    let kubeconfig = kubeconfig_for(&server);
    let child = Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .args(["controller", "--metrics-address", "127.0.0.1:0"])
        .env("KUBECONFIG", kubeconfig.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Running means watching: PackageRepositories, Packages, PackageMetadatas, Secrets and the
    // ConfigMap form of kapp-controller-config.
    let mut paths = Vec::new();
    while paths.len() < 5 {
        let path = tokio::time::timeout(std::time::Duration::from_secs(60), watched.recv())
            .await
            .expect("the controller starts its five watches")
            .unwrap();
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    paths.sort();
    assert_eq!(
        paths,
        [
            "/api/v1/namespaces/kapp-controller/configmaps",
            "/api/v1/namespaces/kapp-controller/secrets",
            "/apis/data.packaging.carvel.dev/v1alpha1/packagemetadatas",
            "/apis/data.packaging.carvel.dev/v1alpha1/packages",
            "/apis/install.package.carvel.dev/v1alpha1/packagerepositories",
        ]
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()),
    )
    .await
    .expect("the controller exits after SIGTERM")
    .unwrap();
    handle.abort();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}: {stderr}", output.status);
    assert!(stderr.contains("shutdown requested"), "{stderr}");
}

#[tokio::test]
async fn controller_reloads_kapp_controller_config_while_running() {
    use base64::Engine as _;
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let api = apiserver::FakeApiServer::start().await;
    let kubeconfig = api.kubeconfig();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_pkgr"))
            .args(["controller", "--metrics-address", "127.0.0.1:0"])
            .env("KUBECONFIG", kubeconfig.path())
            .env("PKGR_LOG", "info")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stderr = child.0.stderr.take().unwrap();
    let reader = tokio::task::spawn_blocking(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut log = Vec::new();
    let mut wait_line = async |needle: &str| -> String {
        loop {
            let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.recv())
                .await
                .unwrap_or_else(|_| panic!("no log line with {needle:?} in:\n{}", log.join("\n")))
                .unwrap_or_else(|| panic!("the controller exited:\n{}", log.join("\n")));
            log.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    };
    wait_line("pkgr controller starting").await;
    // Both watches of the config have listed once the Secret watch is open.
    api.wait_for("the config watches", std::time::Duration::from_secs(30), |api| {
        let log = api.log();
        let open = |p: &str| log.iter().any(|l| l.watch && l.path.ends_with(p));
        (open("/secrets") && open("/configmaps")).then_some(())
    })
    .await;
    api.create(
        "v1/secrets",
        Some("kapp-controller"),
        "kapp-controller-config",
        serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "kapp-controller-config", "namespace": "kapp-controller"},
        "data": {"dangerousSkipTLSVerify": b64(b"reg.corp.xyz")}}),
    );
    wait_line("kapp-controller-config changed: registry settings reloaded").await;
    // Not UTF-8: unusable, the previous settings stay.
    api.edit(
        "v1/secrets",
        Some("kapp-controller"),
        "kapp-controller-config",
        serde_json::json!({"data": {"noProxy": b64(&[0xff, 0xfe])}}),
    );
    let refused =
        wait_line("kapp-controller-config is not usable; keeping the previous registry settings").await;
    assert!(
        refused.contains("the value of key \"noProxy\" is not UTF-8 text"),
        "{refused}"
    );
    drop(child);
    let _ = reader.await;
}

/// A child process killed (and reaped) when the test ends, even by a panic: its output reader
/// on the blocking pool would otherwise keep the test's runtime from shutting down.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_failing_watch_is_logged_as_a_warning_with_a_hint() {
    let (server, _watched, handle) = api_with_crds(Vec::new(), true).await;
    let kubeconfig = kubeconfig_for(&server);
    let mut child = Command::new(env!("CARGO_BIN_EXE_pkgr"))
        .args(["controller", "--metrics-address", "127.0.0.1:0"])
        .env("KUBECONFIG", kubeconfig.path())
        .env("PKGR_LOG", "info")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        use std::io::BufRead as _;
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("watch failed"))
    });
    let waited = tokio::time::timeout(std::time::Duration::from_secs(60), line).await;
    let _ = child.kill();
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    handle.abort();
    let line = waited
        .expect("the failing Secret watch is reported")
        .unwrap()
        .expect("a warning line");
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("secrets"), "names the watch: {line}");
    assert!(line.contains("check its RBAC"), "{line}");
}
