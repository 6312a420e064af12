//! Test doubles for the controller: an in-memory API server behind `tower_test::mock` that
//! records every request and replies as the API server would, a fake registry that counts its
//! calls; the real `repository::build` makes the objects.
#![allow(dead_code)]

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use pkgr::api::{Package, PackageMetadata, PackageRepository};
use pkgr::controller::secret::RegistryAuth;
use pkgr::controller::source::{BoxFuture, Contents, Session, Source, SourceError};
use pkgr::controller::{Cached, Context, Settings};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One request the fake API server received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub body: Value,
}

impl Recorded {
    /// `METHOD path` for compact assertions.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
    pub fn is_write(&self) -> bool {
        self.method != Method::GET
    }
}

/// In-memory cluster state the fake API server serves.
#[derive(Default)]
pub struct ClusterState {
    pub secrets: HashMap<String, Value>,
    pub packages: BTreeMap<String, Value>,
    pub metadatas: BTreeMap<String, Value>,
    pub repository: Option<Value>,
    /// Other PackageRepositories, by name (read when an object is handed over to one).
    pub others: HashMap<String, Value>,
    pub log: Vec<Recorded>,
    resource_version: u64,
}

pub type Shared = Arc<Mutex<ClusterState>>;

fn status(code: u16, reason: &str, message: &str) -> (StatusCode, Value) {
    (
        StatusCode::from_u16(code).unwrap(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

fn matches_selector(object: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector else { return true };
    selector.split(',').all(|term| {
        let labels = object.pointer("/metadata/labels");
        match term.split_once('=') {
            Some((k, v)) => labels.and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v),
            None => labels.and_then(|l| l.get(term)).is_some(),
        }
    })
}

/// Answer one request from `state`, like the API server would.
fn answer(
    state: &mut ClusterState,
    method: &Method,
    path: &str,
    query: &BTreeMap<String, String>,
    body: &Value,
) -> (StatusCode, Value) {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["api", "v1", "namespaces", ns, "secrets", name]) => match state.secrets.get(*name) {
            Some(secret) => (StatusCode::OK, secret.clone()),
            None => status(404, "NotFound", &format!("secrets \"{name}\" not found in {ns}")),
        },
        ("GET", ["apis", "data.packaging.carvel.dev", "v1alpha1", plural, name]) => {
            let map = if *plural == "packages" {
                &state.packages
            } else {
                &state.metadatas
            };
            match map.get(*name) {
                Some(object) => (StatusCode::OK, object.clone()),
                None => status(404, "NotFound", &format!("{plural} \"{name}\" not found")),
            }
        }
        (
            "GET",
            [
                "apis",
                "install.package.carvel.dev",
                "v1alpha1",
                "packagerepositories",
                name,
            ],
        ) => match state.others.get(*name) {
            Some(repo) => (StatusCode::OK, repo.clone()),
            None => status(
                404,
                "NotFound",
                &format!("packagerepositories \"{name}\" not found"),
            ),
        },
        ("PATCH", ["apis", "data.packaging.carvel.dev", "v1alpha1", plural, name]) => {
            state.resource_version += 1;
            let mut object = body.clone();
            object["metadata"]["resourceVersion"] = json!(state.resource_version.to_string());
            object["metadata"]["uid"] = json!(format!("uid-{name}"));
            let map = if *plural == "packages" {
                &mut state.packages
            } else {
                &mut state.metadatas
            };
            map.insert(name.to_string(), object.clone());
            (StatusCode::OK, object)
        }
        ("GET", ["apis", "data.packaging.carvel.dev", "v1alpha1", plural]) => {
            let map = if *plural == "packages" {
                &state.packages
            } else {
                &state.metadatas
            };
            let items: Vec<Value> = map
                .values()
                .filter(|o| matches_selector(o, query.get("labelSelector")))
                .map(|o| json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": o["metadata"]}))
                .collect();
            (
                StatusCode::OK,
                json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {"resourceVersion": "1"}, "items": items}),
            )
        }
        ("DELETE", ["apis", "data.packaging.carvel.dev", "v1alpha1", plural, name]) => {
            let map = if *plural == "packages" {
                &mut state.packages
            } else {
                &mut state.metadatas
            };
            match map.remove(*name) {
                Some(object) => (StatusCode::OK, object),
                None => status(404, "NotFound", &format!("{plural} \"{name}\" not found")),
            }
        }
        (
            "PATCH",
            [
                "apis",
                "install.package.carvel.dev",
                "v1alpha1",
                "packagerepositories",
                _name,
                "status",
            ],
        ) => {
            let mut repo = state.repository.clone().unwrap_or_else(|| json!({}));
            repo["status"] = body["status"].clone();
            state.repository = Some(repo.clone());
            (StatusCode::OK, repo)
        }
        (
            "PATCH",
            [
                "apis",
                "install.package.carvel.dev",
                "v1alpha1",
                "packagerepositories",
                _name,
            ],
        ) => {
            // A JSON patch of metadata.finalizers: apply the add/remove operations.
            let mut repo = state.repository.clone().unwrap_or_else(|| json!({}));
            for op in body.as_array().into_iter().flatten() {
                match op["op"].as_str() {
                    Some("add") if op["path"] == "/metadata/finalizers" => {
                        repo["metadata"]["finalizers"] = op["value"].clone()
                    }
                    Some("add") => {
                        if let Some(list) = repo["metadata"]["finalizers"].as_array_mut() {
                            list.push(op["value"].clone());
                        }
                    }
                    Some("remove") => {
                        if let Some(list) = repo["metadata"]["finalizers"].as_array_mut() {
                            list.clear();
                        }
                    }
                    _ => {}
                }
            }
            state.repository = Some(repo.clone());
            (StatusCode::OK, repo)
        }
        ("POST", ["apis", "events.k8s.io", "v1", "namespaces", _, "events"]) => {
            (StatusCode::CREATED, body.clone())
        }
        _ => status(
            500,
            "InternalError",
            &format!("the fake API server does not expect {method} {path}"),
        ),
    }
}

/// A kube Client talking to the fake API server.
pub fn fake_api(state: Shared) -> kube::Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().clone();
            let path = request.uri().path().to_string();
            let query: BTreeMap<String, String> = request
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (k.to_string(), percent_decode(v))
                })
                .collect();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap()
            };
            let (code, reply) = {
                let mut state = state.lock().unwrap();
                let reply = answer(&mut state, &method, &path, &query, &body);
                state.log.push(Recorded {
                    method,
                    path,
                    query,
                    body,
                });
                reply
            };
            let response = Response::builder()
                .status(code)
                .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                .unwrap();
            send.send_response(response);
        }
    });
    kube::Client::new(service, "default")
}

fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&v[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// What the fake registry does.
#[derive(Clone, Default)]
pub struct Registry {
    /// `repository:tag` → digest.
    pub tags: BTreeMap<String, String>,
    /// `repository@digest` → contents.
    pub contents: BTreeMap<String, Contents>,
    /// Fail every call with this message (unreachable, 401 ...).
    pub fail_with: Option<String>,
    pub resolves: Arc<AtomicUsize>,
    pub list_tag_calls: Arc<AtomicUsize>,
    pub fetches: Arc<AtomicUsize>,
    pub sessions: Arc<Mutex<Vec<RegistryAuth>>>,
}

impl Registry {
    pub fn calls(&self) -> usize {
        self.resolves.load(Ordering::SeqCst)
            + self.list_tag_calls.load(Ordering::SeqCst)
            + self.fetches.load(Ordering::SeqCst)
    }
}

impl Source for Registry {
    fn session(&self, auth: &RegistryAuth) -> Result<Arc<dyn Session>, SourceError> {
        self.sessions.lock().unwrap().push(auth.clone());
        Ok(Arc::new(self.clone()))
    }
}

impl Session for Registry {
    fn resolve<'a>(&'a self, image: &'a str) -> BoxFuture<'a, Result<Option<String>, SourceError>> {
        Box::pin(async move {
            self.resolves.fetch_add(1, Ordering::SeqCst);
            if let Some(message) = &self.fail_with {
                return Err(SourceError::Other(message.clone().into()));
            }
            Ok(self.tags.get(image).cloned())
        })
    }
    fn list_tags<'a>(&'a self, repository: &'a str) -> BoxFuture<'a, Result<Vec<String>, SourceError>> {
        Box::pin(async move {
            self.list_tag_calls.fetch_add(1, Ordering::SeqCst);
            Ok(self
                .tags
                .keys()
                .filter_map(|k| k.strip_prefix(&format!("{repository}:")).map(str::to_string))
                .collect())
        })
    }
    fn fetch<'a>(
        &'a self,
        image: &'a str,
        _expect_bundle: bool,
    ) -> BoxFuture<'a, Result<Contents, SourceError>> {
        Box::pin(async move {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            self.contents
                .get(image)
                .cloned()
                .ok_or_else(|| SourceError::Other(format!("{image}: manifest unknown").into()))
        })
    }
}

/// The caches a context reads, with their writers.
pub struct Caches {
    pub packages: Writer<Cached<Package>>,
    pub metadatas: Writer<Cached<PackageMetadata>>,
}

/// An object as the metadata-only watch delivers it.
fn cached<K>(object: &Value) -> Cached<K> {
    serde_json::from_value(
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                                  "metadata": object["metadata"]}),
    )
    .unwrap()
}

impl Caches {
    /// Replace the caches with what the fake cluster holds (as a watch would deliver).
    pub fn sync_from(&mut self, state: &Shared) {
        let state = state.lock().unwrap();
        self.packages.apply_watcher_event(&watcher::Event::Init);
        for o in state.packages.values() {
            self.packages
                .apply_watcher_event(&watcher::Event::InitApply(cached(o)));
        }
        self.packages.apply_watcher_event(&watcher::Event::InitDone);
        self.metadatas.apply_watcher_event(&watcher::Event::Init);
        for o in state.metadatas.values() {
            self.metadatas
                .apply_watcher_event(&watcher::Event::InitApply(cached(o)));
        }
        self.metadatas.apply_watcher_event(&watcher::Event::InitDone);
    }
}

/// A context that reads Secrets from a watch cache filled with the fake cluster's Secrets, as `run` does.
pub fn context_with_secret_cache(
    state: &Shared,
    registry: &Registry,
) -> (Arc<Context>, Caches, Writer<k8s_openapi::api::core::v1::Secret>) {
    let (ctx, caches) = context(state, registry);
    let mut ctx = Arc::into_inner(ctx).expect("a fresh context");
    let (secrets, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for secret in state.lock().unwrap().secrets.values() {
        writer.apply_watcher_event(&watcher::Event::InitApply(
            serde_json::from_value(secret.clone()).unwrap(),
        ));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    ctx.secrets = Some(secrets);
    (Arc::new(ctx), caches, writer)
}

/// A context over the fake API and registry.
pub fn context(state: &Shared, registry: &Registry) -> (Arc<Context>, Caches) {
    let client = fake_api(state.clone());
    let (packages, package_writer) = reflector::store::<Cached<Package>>();
    let (metadatas, metadata_writer) = reflector::store::<Cached<PackageMetadata>>();
    let ctx = Context::new(
        client,
        Arc::new(registry.clone()),
        pkgr::controller::default_builder(),
        Settings {
            namespace: "kapp-controller".into(),
            apply_concurrency: 4,
            fetch_concurrency: 2,
            ..Default::default()
        },
        packages,
        metadatas,
    );
    let mut caches = Caches {
        packages: package_writer,
        metadatas: metadata_writer,
    };
    caches.sync_from(state);
    (Arc::new(ctx), caches)
}

/// A PackageRepository as the API server would hand it over (with our finalizer).
pub fn repository(name: &str, spec: Value) -> PackageRepository {
    serde_json::from_value(json!({
        "apiVersion": "install.package.carvel.dev/v1alpha1",
        "kind": "PackageRepository",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": 1, "resourceVersion": "10",
                     "finalizers": [pkgr::controller::FINALIZER]},
        "spec": spec,
    }))
    .unwrap()
}

pub fn package_yaml(ref_name: &str, version: &str, image: &str) -> String {
    format!(
        "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata:\n  name: {ref_name}.{version}\nspec:\n  refName: {ref_name}\n  version: {version}\n  template:\n    spec:\n      fetch:\n      - imgpkgBundle:\n          image: {image}\n"
    )
}

pub fn metadata_yaml(name: &str) -> String {
    format!(
        "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: PackageMetadata\nmetadata:\n  name: {name}\nspec:\n  displayName: {name}\n"
    )
}

pub fn bundle(files: &[(&str, String)]) -> Contents {
    Contents {
        is_bundle: true,
        files: files
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect(),
        images_lock: None,
    }
}

pub fn secret(name: &str, data: &[(&str, &str)]) -> Value {
    use base64::Engine;
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                json!(base64::engine::general_purpose::STANDARD.encode(v)),
            )
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "kapp-controller"}, "type": "Opaque", "data": data})
}
