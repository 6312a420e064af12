//! Leader election against a fake API server that enforces optimistic concurrency on the Lease.
use http::{Request, Response};
use kube::client::Body;
use pkgr::controller::leader::{Elector, LeaseTimings};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct LeaseStore {
    lease: Option<Value>,
    version: u64,
    requests: Vec<String>,
}

fn fake(store: Arc<Mutex<LeaseStore>>) -> kube::Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().to_string();
            let path = request.uri().path().to_string();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap()
            };
            let mut s = store.lock().unwrap();
            s.requests.push(format!("{method} {path}"));
            let conflict = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409, "message": "conflict"});
            let (code, reply) = match method.as_str() {
                "GET" => match &s.lease {
                    Some(l) => (200, l.clone()),
                    None => (
                        404,
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
                    ),
                },
                "POST" if s.lease.is_some() => (409, conflict),
                "PUT"
                    if s.lease.as_ref().map(|l| &l["metadata"]["resourceVersion"])
                        != Some(&body["metadata"]["resourceVersion"]) =>
                {
                    (409, conflict)
                }
                "POST" | "PUT" => {
                    s.version += 1;
                    let mut lease = body.clone();
                    lease["metadata"]["resourceVersion"] = json!(s.version.to_string());
                    s.lease = Some(lease.clone());
                    (if method == "POST" { 201 } else { 200 }, lease)
                }
                _ => (405, Value::Null),
            };
            send.send_response(
                Response::builder()
                    .status(code)
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap(),
            );
        }
    });
    kube::Client::new(service, "default")
}

fn elector(store: &Arc<Mutex<LeaseStore>>, identity: &str) -> Elector {
    Elector::new(
        fake(store.clone()),
        "kapp-controller",
        "pkgr-controller",
        identity,
        LeaseTimings::default(),
    )
}

fn holder(store: &Arc<Mutex<LeaseStore>>) -> Value {
    store.lock().unwrap().lease.as_ref().unwrap()["spec"]["holderIdentity"].clone()
}

#[tokio::test]
async fn one_leader_at_a_time_with_renewal_release_and_takeover() {
    let store = Arc::new(Mutex::new(LeaseStore::default()));
    let a = elector(&store, "a");
    let b = elector(&store, "b");

    assert!(a.try_acquire_or_renew().await.unwrap(), "a creates the Lease");
    assert_eq!(holder(&store), "a");
    assert!(
        !b.try_acquire_or_renew().await.unwrap(),
        "b waits while a holds a fresh Lease"
    );
    assert!(a.try_acquire_or_renew().await.unwrap(), "a renews");
    assert_eq!(
        store.lock().unwrap().lease.as_ref().unwrap()["spec"]["leaseTransitions"],
        0
    );
    assert_eq!(
        store.lock().unwrap().requests[..2],
        [
            "GET /apis/coordination.k8s.io/v1/namespaces/kapp-controller/leases/pkgr-controller",
            "POST /apis/coordination.k8s.io/v1/namespaces/kapp-controller/leases"
        ]
    );

    a.release().await.unwrap();
    assert_eq!(holder(&store), Value::Null);
    assert!(
        b.try_acquire_or_renew().await.unwrap(),
        "b takes a released Lease"
    );
    assert_eq!(holder(&store), "b");
    assert_eq!(
        store.lock().unwrap().lease.as_ref().unwrap()["spec"]["leaseTransitions"],
        1
    );

    // b stops renewing: once the Lease expired, a takes over.
    {
        let mut s = store.lock().unwrap();
        let lease = s.lease.as_mut().unwrap();
        lease["spec"]["renewTime"] = json!("2020-01-01T00:00:00.000000Z");
    }
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert_eq!(holder(&store), "a");
    assert!(
        !b.try_acquire_or_renew().await.unwrap(),
        "b sees it lost the Lease"
    );
}

#[tokio::test]
async fn hold_returns_when_another_replica_took_the_lease() {
    let store = Arc::new(Mutex::new(LeaseStore::default()));
    let timings = LeaseTimings {
        duration: Duration::from_secs(15),
        renew_every: Duration::from_millis(10),
    };
    let a = Elector::new(
        fake(store.clone()),
        "kapp-controller",
        "pkgr-controller",
        "a",
        timings,
    );
    assert!(a.try_acquire_or_renew().await.unwrap());
    {
        let mut s = store.lock().unwrap();
        s.lease.as_mut().unwrap()["spec"]["holderIdentity"] = json!("intruder");
    }
    tokio::time::timeout(Duration::from_secs(10), a.hold())
        .await
        .expect("hold notices the loss");
}
