//! Two `pkgr controller --leader-elect` processes against the fake API server: the leader is
//! killed with SIGKILL, and the standby that takes the Lease reconciles everything the cluster
//! holds, as a fresh start does: a deletion left pending and a repository created meanwhile.
mod apiserver;

use apiserver::FakeApiServer;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const REPOS: &str = "install.package.carvel.dev/v1alpha1/packagerepositories";
const PACKAGES: &str = "data.packaging.carvel.dev/v1alpha1/packages";
const LEASES: &str = "coordination.k8s.io/v1/leases";

/// A controller process, killed when the test ends.
struct Replica(Child);

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A replica named `identity`, with credentials of its own: the API server's log tells its
/// requests from the other replica's.
fn replica(api: &FakeApiServer, identity: &str) -> (Replica, tempfile::NamedTempFile) {
    let kubeconfig = api.kubeconfig_for(identity);
    let replica = Replica(
        Command::new(env!("CARGO_BIN_EXE_pkgr"))
            .args(["controller", "--leader-elect", "--metrics-address", "127.0.0.1:0"])
            .env("KUBECONFIG", kubeconfig.path())
            .env("POD_NAME", identity)
            .env("PKGR_LOG", "info,pkgr=debug")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    (replica, kubeconfig)
}

fn repository(name: &str, ref_name: &str) -> Value {
    let package = format!(
        "apiVersion: data.packaging.carvel.dev/v1alpha1\nkind: Package\nmetadata:\n  name: {ref_name}.1.0.0\nspec:\n  refName: {ref_name}\n  version: 1.0.0\n"
    );
    json!({"apiVersion": "install.package.carvel.dev/v1alpha1", "kind": "PackageRepository",
           "metadata": {"name": name},
           "spec": {"fetch": {"inline": {"paths": {"packages/p.yml": package}}}}})
}

fn succeeded(api: &FakeApiServer, name: &str) -> bool {
    api.get(REPOS, None, name)
        .and_then(|r| r.pointer("/status/friendlyDescription").cloned())
        == Some(json!("ReconcileSucceeded"))
}

fn holder(api: &FakeApiServer) -> Option<String> {
    api.get(LEASES, Some("kapp-controller"), "pkgr-controller")
        .and_then(|l| {
            l.pointer("/spec/holderIdentity")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
}

#[tokio::test]
async fn the_standby_that_takes_over_reconciles_what_happened_while_nobody_led() {
    let api = FakeApiServer::start().await;
    api.create(REPOS, None, "early", repository("early", "early.corp.com"));
    let (mut first, _first_config) = replica(&api, "first");
    api.wait_for(
        "the first replica to lead and reconcile",
        Duration::from_secs(30),
        |api| (holder(api).as_deref() == Some("first") && succeeded(api, "early")).then_some(()),
    )
    .await;
    let (standby, _standby_config) = replica(&api, "second");
    // The standby is running once it has read the Lease (the leader's own reads and renewals
    // come with the leader's credentials) and found it held: it has not written it.
    api.wait_for("the standby to read the Lease", Duration::from_secs(30), |api| {
        api.log()
            .iter()
            .any(|l| {
                l.user == "second"
                    && l.method == "GET"
                    && l.path.ends_with("/leases/pkgr-controller")
                    && l.status == 200
            })
            .then_some(())
    })
    .await;
    let standby_writes: Vec<String> = api
        .log()
        .iter()
        .filter(|l| l.user == "second" && l.is_write() && l.path.contains("/leases/"))
        .map(|l| format!("{} {} {}", l.method, l.path, l.status))
        .collect();
    assert!(
        standby_writes.is_empty(),
        "the standby found the Lease held and left it: {standby_writes:?}"
    );
    assert_eq!(holder(&api).as_deref(), Some("first"));

    // The leader dies without a word (no Lease release).
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    // Meanwhile: a repository is deleted (its finalizer keeps it until a controller cleans up)
    // and another one is created.
    api.delete(REPOS, None, "early");
    // Several at once: at start-up every reconcile waits for the caches together, and each must
    // be woken (kube-runtime's own readiness wait wakes only the last of them).
    let late: Vec<String> = (0..4).map(|i| format!("late{i}")).collect();
    for name in &late {
        api.create(REPOS, None, name, repository(name, &format!("{name}.corp.com")));
    }

    api.wait_for(
        "the standby to take over and reconcile both",
        Duration::from_secs(60),
        |api| {
            let early_gone = api.get(REPOS, None, "early").is_none();
            (holder(api).as_deref() == Some("second") && early_gone && late.iter().all(|n| succeeded(api, n)))
                .then_some(())
        },
    )
    .await;
    let names: Vec<String> = api
        .all(PACKAGES)
        .iter()
        .filter_map(|p| {
            p.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    let expected: Vec<String> = late.iter().map(|n| format!("{n}.corp.com.1.0.0")).collect();
    assert_eq!(names, expected, "the deleted repository's Package went with it");
    drop(standby);
}
