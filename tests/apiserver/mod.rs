//! A fake Kubernetes API server on a loopback port that speaks the protocol the real one does:
//! LIST with a resourceVersion, WATCH that replays from a resourceVersion and then streams
//! (bookmarks, `ERROR` events with 410 Gone after a compaction, or a plain HTTP 410), writes that
//! bump resourceVersions (server-side apply, JSON and merge patches, PUT with 409 Conflict, POST
//! with 409 AlreadyExists), finalizers and owner garbage collection. It can be stopped (connections
//! drop, new ones are refused), started again answering 503 for a while, and compacted, as a
//! control-plane restart does; or compacted while it runs, its watches ended as their
//! timeoutSeconds end them. Bookmarks carry the server's progress (the newest resourceVersion once
//! the stream has sent every change it owes), as the watch cache's do. kube-runtime's real watcher,
//! reflector and Controller run against it.
#![allow(dead_code)]
pub mod controller;
pub mod kapp;
pub mod patch;
mod route;
pub mod store;
mod streams;

use bytes::Bytes;
use hyper::body::{Body as _, Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use route::{collection, kind_of, matches, parse_query, route, shaped};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
pub use store::{Change, Key, Store};
use streams::watch_response;
use tokio::sync::{broadcast, mpsc, watch};

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Logged {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub status: u16,
    pub watch: bool,
    /// A watch answered with 410 Gone (in the stream or as the HTTP status).
    pub gone: bool,
    /// Who sent it: the bearer token of its Authorization header (empty without one), the
    /// identity the real server would authenticate.
    pub user: String,
}

impl Logged {
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }

    /// A LIST: a read of a whole collection, not a watch.
    pub fn is_list(&self) -> bool {
        self.method == "GET" && !self.watch && route(&self.path).is_some_and(|r| r.2.is_none())
    }

    /// The collection a LIST or WATCH reads: its path and selectors.
    pub fn collection(&self) -> String {
        collection(&self.path, &self.query)
    }
}

/// One watch stream the server has answered with 200, open or ended.
#[derive(Clone, Debug)]
pub struct WatchStream {
    /// The collection watched (see [`Logged::collection`]).
    pub collection: String,
    /// The resourceVersion it started from, as the client sent it.
    pub from: Option<String>,
    /// The client asked for bookmarks (allowWatchBookmarks=true).
    pub bookmarks_allowed: bool,
    /// The resourceVersion of the last BOOKMARK sent on it.
    pub last_bookmark: Option<u64>,
    /// The resourceVersion of the last change (ADDED, MODIFIED, DELETED) sent on it.
    pub last_change: Option<u64>,
    pub open: bool,
}

struct Shared {
    store: Mutex<Store>,
    changes: broadcast::Sender<Change>,
    /// Bumped on stop: every open connection (watches included) is dropped.
    killed: watch::Sender<u64>,
    /// Bumped on every state change, for waiters.
    revision: watch::Sender<u64>,
    /// Answer 503 to this many more requests (an API server that is starting).
    unready: AtomicUsize,
    /// Answer a watch from a compacted resourceVersion with HTTP 410 instead of an ERROR event.
    gone_as_http: AtomicBool,
    /// Send a BOOKMARK every this many milliseconds to watches that allow them (0: never).
    bookmark_ms: AtomicUsize,
    /// Changes of one resource held back from open watches (a slow watch), and that resource.
    held: Mutex<Option<(String, Vec<Change>)>>,
    log: Mutex<Vec<Logged>>,
    /// Bumped to end every open watch stream cleanly (their timeoutSeconds ran out).
    end_watches: watch::Sender<u64>,
    /// Every watch stream answered with 200, in the order they were opened.
    streams: Mutex<Vec<WatchStream>>,
}

/// The running fake API server.
pub struct FakeApiServer {
    shared: Arc<Shared>,
    pub url: String,
    port: u16,
    accept: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A channel-backed response body: whole replies and watch streams alike.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

fn whole(code: u16, body: &Value) -> Response<ChannelBody> {
    let (tx, rx) = mpsc::channel(1);
    let _ = tx.try_send(Bytes::from(serde_json::to_vec(body).unwrap()));
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(ChannelBody(rx))
        .unwrap()
}

impl FakeApiServer {
    /// A server on a free loopback port, with pkgr's CRDs installed.
    pub async fn start() -> FakeApiServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            changes: broadcast::channel(65_536).0,
            killed: watch::channel(0).0,
            revision: watch::channel(0).0,
            unready: AtomicUsize::new(0),
            gone_as_http: AtomicBool::new(false),
            bookmark_ms: AtomicUsize::new(500),
            held: Mutex::default(),
            log: Mutex::default(),
            end_watches: watch::channel(0).0,
            streams: Mutex::default(),
        });
        let server = FakeApiServer {
            shared,
            url: format!("http://127.0.0.1:{port}"),
            port,
            accept: Mutex::new(None),
        };
        for crd in pkgr::api::crds() {
            let value = serde_json::to_value(&crd).unwrap();
            let name = crd.metadata.name.clone().unwrap();
            server.create(
                "apiextensions.k8s.io/v1/customresourcedefinitions",
                None,
                &name,
                value,
            );
        }
        server.serve(listener);
        server
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let shared = self.shared.clone();
        let handle = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let shared = shared.clone();
                let mut killed = shared.killed.subscribe();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let shared = shared.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(shared, request).await) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::select! {
                        _ = connection => {}
                        _ = killed.changed() => {}
                    }
                });
            }
        });
        *self.accept.lock().unwrap() = Some(handle);
    }

    /// A kube client for this server.
    pub fn client(&self) -> kube::Client {
        let mut config = kube::Config::new(self.url.parse().unwrap());
        config.default_namespace = "default".into();
        kube::Client::try_from(config).unwrap()
    }

    /// A kubeconfig file for this server (for the `pkgr` binary).
    pub fn kubeconfig(&self) -> tempfile::NamedTempFile {
        self.kubeconfig_for("fake-token")
    }

    /// A kubeconfig whose requests the log attributes to `user` (its bearer token).
    pub fn kubeconfig_for(&self, user: &str) -> tempfile::NamedTempFile {
        use std::io::Write;
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write!(
            file,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n    token: {user}\n",
            self.url
        )
        .unwrap();
        file
    }

    /// Open watches of `resource` (e.g. `data.packaging.carvel.dev/v1alpha1/packages`) get no
    /// events until `release_watch_events`, as from an API server under load: writes succeed and
    /// reads see them, the watchers lag behind. (A watch opened meanwhile replays the held changes
    /// from history and then gets them again on release.)
    pub fn hold_watch_events(&self, resource: &str) {
        *self.shared.held.lock().unwrap() = Some((resource.to_string(), Vec::new()));
    }

    /// Deliver the held events, in order, and stop holding.
    pub fn release_watch_events(&self) {
        // With the store locked, as every publication: no bookmark passes them on their way.
        let _store = self.shared.store.lock().unwrap();
        let held = self.shared.held.lock().unwrap().take();
        for change in held.map(|(_, queue)| queue).unwrap_or_default() {
            let _ = self.shared.changes.send(change);
        }
    }

    /// The control plane goes away: open connections drop, new ones are refused.
    pub fn stop(&self) {
        if let Some(handle) = self.accept.lock().unwrap().take() {
            handle.abort();
        }
        self.shared.killed.send_modify(|g| *g += 1);
    }

    /// It comes back on the same port with its data, answering 503 to the first `unready`
    /// requests; its watch cache starts afresh, so every watch resumed from before gets 410.
    pub async fn restart(&self, unready: usize) {
        self.shared.unready.store(unready, Ordering::SeqCst);
        self.shared.store.lock().unwrap().compact();
        // The aborted accept task lets go of the port at its next poll.
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::task::yield_now().await;
                }
                Err(e) => panic!("cannot bind the fake API server's port again: {e}"),
            }
        };
        self.serve(listener);
    }

    pub fn set_gone_as_http(&self, yes: bool) {
        self.shared.gone_as_http.store(yes, Ordering::SeqCst);
    }

    pub fn set_bookmark_interval(&self, ms: usize) {
        self.shared.bookmark_ms.store(ms, Ordering::SeqCst);
    }

    /// Forget the watch history (as etcd compaction does) without a restart. Returns the
    /// resourceVersion compacted at: a watch resumed from an older one gets 410 Gone.
    pub fn compact(&self) -> u64 {
        let mut store = self.shared.store.lock().unwrap();
        store.compact();
        store.compacted_at
    }

    /// End every open watch stream cleanly, as the server does when a watch's timeoutSeconds
    /// run out (the connections stay up); the clients resume from their last resourceVersion.
    /// Returns the indices (in [`FakeApiServer::watch_streams`]) of the streams ended.
    pub fn end_watches(&self) -> Vec<usize> {
        let streams = self.shared.streams.lock().unwrap();
        let open = (0..streams.len()).filter(|&i| streams[i].open).collect();
        self.shared.end_watches.send_modify(|g| *g += 1);
        open
    }

    /// Every watch stream answered with 200 so far, open or ended, in the order they were opened.
    pub fn watch_streams(&self) -> Vec<WatchStream> {
        self.shared.streams.lock().unwrap().clone()
    }

    /// Every change since the last compaction: (event type, resource, name).
    pub fn history(&self) -> Vec<(String, String, String)> {
        let store = self.shared.store.lock().unwrap();
        store
            .history
            .iter()
            .map(|c| (c.kind.to_string(), c.key.resource.clone(), c.key.name.clone()))
            .collect()
    }

    pub fn log(&self) -> Vec<Logged> {
        self.shared.log.lock().unwrap().clone()
    }

    pub fn clear_log(&self) {
        self.shared.log.lock().unwrap().clear();
    }

    pub fn get(&self, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let key = Key {
            resource: resource.into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
        };
        self.shared.store.lock().unwrap().get(&key).cloned()
    }

    /// Every object of a resource.
    pub fn all(&self, resource: &str) -> Vec<Value> {
        let store = self.shared.store.lock().unwrap();
        store
            .objects
            .iter()
            .filter(|(k, _)| k.resource == resource)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Create an object as another client would (kubectl create), with watch events.
    pub fn create(&self, resource: &str, namespace: Option<&str>, name: &str, object: Value) -> Value {
        let key = Key {
            resource: resource.into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
        };
        let mut store = self.shared.store.lock().unwrap();
        let ((code, reply), changes) = store.create(&key, object, "kubectl-create");
        assert_eq!(code, 201, "{reply}");
        publish(&self.shared, changes);
        reply
    }

    /// Delete an object as another client would.
    pub fn delete(&self, resource: &str, namespace: Option<&str>, name: &str) {
        let key = Key {
            resource: resource.into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
        };
        let mut store = self.shared.store.lock().unwrap();
        let (_, changes) = store.delete(&key);
        publish(&self.shared, changes);
    }

    /// Merge-patch an object as another client would (kubectl edit).
    pub fn edit(&self, resource: &str, namespace: Option<&str>, name: &str, patch: Value) {
        let key = Key {
            resource: resource.into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
        };
        let mut store = self.shared.store.lock().unwrap();
        let ((code, reply), changes) = store.patch(
            &key,
            "application/merge-patch+json",
            &patch,
            None,
            "kubectl-edit",
            false,
        );
        assert_eq!(code, 200, "{reply}");
        publish(&self.shared, changes);
    }

    /// Wait (bounded by `timeout`, failing with `what`) until `check` finds something in the state.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&FakeApiServer) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut revision = self.shared.revision.subscribe();
        loop {
            if let Some(found) = check(self) {
                return found;
            }
            if tokio::time::timeout_at(deadline, revision.changed())
                .await
                .is_err()
            {
                panic!("timed out after {timeout:?} waiting for {what}");
            }
        }
    }
}

/// Send changes to the open watches; the caller holds the store's lock.
fn publish(shared: &Shared, changes: Vec<Change>) {
    let mut held = shared.held.lock().unwrap();
    for change in changes {
        match held.as_mut() {
            Some((resource, queue)) if change.key.resource == *resource => queue.push(change),
            _ => {
                let _ = shared.changes.send(change);
            }
        }
    }
    drop(held);
    shared.revision.send_modify(|r| *r += 1);
}

async fn read_body(mut body: Incoming) -> Value {
    let mut bytes = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame.map(|f| f.into_data()) {
            if let Ok(data) = data {
                bytes.extend_from_slice(&data);
            }
        } else {
            break;
        }
    }
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .or_else(|_| serde_saphyr::from_slice(&bytes))
            .unwrap_or(Value::Null)
    }
}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Response<ChannelBody> {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = parse_query(request.uri().query());
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let content_type = header("content-type");
    let user = header("authorization")
        .strip_prefix("Bearer ")
        .unwrap_or_default()
        .to_string();
    let metadata_only = header("accept").contains("as=PartialObjectMetadata");
    let is_watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    let body = read_body(request.into_body()).await;
    let log = |status: u16, gone: bool| {
        shared.log.lock().unwrap().push(Logged {
            at: Instant::now(),
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            status,
            watch: is_watch,
            gone,
            user: user.clone(),
        });
        shared.revision.send_modify(|r| *r += 1);
    };
    if shared
        .unready
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        log(503, false);
        let (code, body) = store::status(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        );
        return whole(code, &body);
    }
    let Some((resource, ns, name, sub)) = route(&path) else {
        log(404, false);
        let (code, body) = store::status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        return whole(code, &body);
    };
    if method == "GET" && !is_watch && name.is_none() {
        if let Some(list) = kapp::aggregated_list(&shared, &resource, ns.as_deref()) {
            log(200, false);
            return whole(200, &list);
        }
    }
    if is_watch {
        return watch_response(
            &shared,
            &path,
            &resource,
            ns.as_deref(),
            &query,
            metadata_only,
            log,
        );
    }
    let manager = query
        .get("fieldManager")
        .cloned()
        .unwrap_or_else(|| "anonymous".into());
    let force = query.get("force").is_some_and(|f| f == "true");
    let key = |name: String| Key {
        resource: resource.clone(),
        namespace: ns.clone(),
        name,
    };
    let (code, reply) = {
        let mut store = shared.store.lock().unwrap();
        let (reply, changes) = match (method.as_str(), name) {
            ("GET", Some(name)) => match store.get(&key(name.clone())) {
                Some(o) => ((200, shaped(o, metadata_only, false, &resource)), vec![]),
                None => (
                    store::status(
                        404,
                        "NotFound",
                        &format!("{} \"{name}\" not found", store::qualified(&resource)),
                    ),
                    vec![],
                ),
            },
            ("GET", None) => {
                let items: Vec<Value> = store
                    .objects
                    .iter()
                    .filter(|(k, o)| matches(o, k, &resource, ns.as_deref(), &query))
                    .map(|(_, o)| shaped(o, metadata_only, true, &resource))
                    .collect();
                let (kind, api_version) = kind_of(&resource);
                let (kind, api_version) = if metadata_only {
                    (
                        "PartialObjectMetadataList".to_string(),
                        "meta.k8s.io/v1".to_string(),
                    )
                } else {
                    (format!("{kind}List"), api_version)
                };
                (
                    (
                        200,
                        json!({"apiVersion": api_version, "kind": kind,
                                 "metadata": {"resourceVersion": store.rv.to_string()}, "items": items}),
                    ),
                    vec![],
                )
            }
            ("POST", _) => {
                let name = body["metadata"]["name"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        let prefix = body["metadata"]["generateName"].as_str().unwrap_or("object-");
                        format!("{prefix}{}", store.rv + 1)
                    });
                store.create(&key(name), body.clone(), &manager)
            }
            ("PUT", Some(name)) => store.replace(&key(name), body.clone(), &manager),
            ("PATCH", Some(name)) => {
                store.patch(&key(name), &content_type, &body, sub.as_deref(), &manager, force)
            }
            ("DELETE", Some(name)) => store.delete(&key(name)),
            _ => (
                store::status(405, "MethodNotAllowed", "method not allowed"),
                vec![],
            ),
        };
        // Published while the store is locked: watches get changes in resourceVersion order, as
        // from etcd (two writers publishing after unlocking could swap, and a watch that has
        // sent the later one would skip the earlier).
        publish(&shared, changes);
        reply
    };
    log(code, false);
    whole(code, &reply)
}
