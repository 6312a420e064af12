//! What pkgr itself last wrote to each Package and PackageMetadata, and whether the watch has
//! delivered it back yet.
//!
//! Two uses: a watch event that only echoes pkgr's own write is not worth a reconcile; and the
//! digest short-cut must not take a cache that has not caught up with pkgr's last apply for a
//! change made by someone else (a reconcile that runs right after another one, say because its
//! credential Secret was touched, would otherwise re-fetch and re-apply everything).
use super::apply::Kind;
use std::collections::HashMap;
use std::sync::Mutex;

/// At most this many early deliveries are remembered.
const EARLY_LIMIT: usize = 4096;

/// Whether a watch event reports an object's change or its deletion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Applied,
    Deleted,
}

/// One object's last write by pkgr.
#[derive(Clone, Debug)]
struct Written {
    /// `Some(rv)`: applied, the server answered with that resourceVersion; `None`: deleted.
    version: Option<String>,
    /// The watch has delivered this write (so the caches hold it).
    seen: bool,
}

/// pkgr's own writes, and a signal each time the watch delivers one of them.
pub struct OwnWrites {
    writes: Mutex<HashMap<(Kind, String), Written>>,
    /// The watch can deliver a write before its reply arrives: the versions of pkgr-only objects
    /// seen with no write recorded yet, so that `record` knows its write is already delivered.
    early: Mutex<HashMap<(Kind, String), String>>,
    seen: tokio::sync::watch::Sender<u64>,
}

impl Default for OwnWrites {
    fn default() -> OwnWrites {
        OwnWrites {
            writes: Mutex::default(),
            early: Mutex::default(),
            seen: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl OwnWrites {
    /// pkgr wrote `name`: `Some(rv)` applied, the server answered with that resourceVersion;
    /// `None` deleted.
    pub fn record(&self, kind: Kind, name: &str, version: Option<String>) {
        let key = (kind, name.to_string());
        let early = self.early.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        // The watch delivered this very write before its reply came back.
        let seen = early.is_some() && early == version;
        tracing::trace!(object = name, ?version, ?early, "pkgr wrote");
        self.writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, Written { version, seen });
    }

    /// A watch event arrived (after the cache took it in). Returns whether it is the echo of
    /// pkgr's own write, and marks that write as delivered. `pkgr_only`: the object's fields were
    /// all written by pkgr (its write may be in flight).
    pub fn observe(
        &self,
        kind: Kind,
        name: &str,
        version: Option<&str>,
        change: Change,
        pkgr_only: bool,
    ) -> bool {
        let mut writes = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let key = (kind, name.to_string());
        if change == Change::Applied
            && pkgr_only
            && let Some(version) = version
        {
            let in_flight = writes
                .get(&key)
                .is_none_or(|w| w.version.as_deref() != Some(version));
            if in_flight {
                let mut early = self.early.lock().unwrap_or_else(|p| p.into_inner());
                // Another process's writes (a leader's, seen by a standby) are never recorded
                // here: keep the map small. Forgetting costs at most one wait and a full pass.
                if early.len() >= EARLY_LIMIT {
                    early.clear();
                }
                early.insert(key.clone(), version.to_string());
            }
        }
        let Some(written) = writes.get_mut(&key) else {
            tracing::trace!(
                object = name,
                ?version,
                ?change,
                pkgr_only,
                "watch event, no write of pkgr's recorded"
            );
            return false;
        };
        tracing::trace!(object = name, ?version, ?change, pkgr_only, written = ?written.version, seen = written.seen, "watch event");
        let echo = match (&written.version, change) {
            (Some(v), Change::Applied) => Some(v.as_str()) == version,
            (None, Change::Deleted) => true,
            _ => false,
        };
        if echo && !written.seen {
            written.seen = true;
            drop(writes);
            self.seen.send_modify(|n| *n = n.wrapping_add(1));
        }
        echo
    }

    /// pkgr applied `name` at `version` and the watch has not delivered it yet: a cache that
    /// shows something else is behind, not changed by someone else.
    pub fn awaiting(&self, kind: Kind, name: &str, version: &str) -> bool {
        self.writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(kind, name.to_string()))
            .is_some_and(|w| !w.seen && w.version.as_deref() == Some(version))
    }

    /// pkgr wrote (or deleted) `name` and the watch has not delivered that write yet: the cache
    /// may not show it.
    pub fn unseen(&self, kind: Kind, name: &str) -> bool {
        self.writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(kind, name.to_string()))
            .is_some_and(|w| !w.seen)
    }

    /// A receiver that wakes each time the watch delivers one of pkgr's writes.
    pub fn deliveries(&self) -> tokio::sync::watch::Receiver<u64> {
        self.seen.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_writes_are_recognised_as_echoes() {
        let own = OwnWrites::default();
        own.record(Kind::Package, "p", Some("7".into()));
        own.record(Kind::Package, "gone", None);
        assert!(own.observe(Kind::Package, "p", Some("7"), Change::Applied, false));
        assert!(
            !own.observe(Kind::Package, "p", Some("8"), Change::Applied, false),
            "someone else changed it"
        );
        assert!(
            !own.observe(Kind::Package, "p", Some("7"), Change::Deleted, false),
            "someone else deleted it"
        );
        assert!(!own.observe(Kind::PackageMetadata, "p", Some("7"), Change::Applied, false));
        assert!(own.observe(Kind::Package, "gone", Some("3"), Change::Deleted, false));
        assert!(!own.observe(Kind::Package, "unknown", Some("1"), Change::Applied, false));
    }

    #[test]
    fn a_write_is_awaited_until_its_echo_arrives_and_the_arrival_wakes_waiters() {
        let own = OwnWrites::default();
        let mut deliveries = own.deliveries();
        own.record(Kind::Package, "p", Some("7".into()));
        assert!(own.awaiting(Kind::Package, "p", "7"));
        assert!(!own.awaiting(Kind::Package, "p", "6"), "another version");
        assert!(!own.awaiting(Kind::PackageMetadata, "p", "7"));
        assert!(!deliveries.has_changed().unwrap());
        // Someone else's version first: still waiting for ours.
        own.observe(Kind::Package, "p", Some("5"), Change::Applied, false);
        assert!(own.awaiting(Kind::Package, "p", "7"));
        assert!(!deliveries.has_changed().unwrap());
        own.observe(Kind::Package, "p", Some("7"), Change::Applied, false);
        assert!(!own.awaiting(Kind::Package, "p", "7"));
        assert!(deliveries.has_changed().unwrap());
        deliveries.mark_unchanged();
        // The same echo twice (a re-list) wakes nobody again.
        own.observe(Kind::Package, "p", Some("7"), Change::Applied, false);
        assert!(!deliveries.has_changed().unwrap());
        // A new write is awaited again.
        own.record(Kind::Package, "p", Some("9".into()));
        assert!(own.awaiting(Kind::Package, "p", "9"));
    }

    #[test]
    fn a_write_delivered_before_its_reply_is_not_awaited() {
        let own = OwnWrites::default();
        // The watch delivers pkgr's apply (all fields pkgr's) before the apply call returns.
        assert!(!own.observe(Kind::Package, "p", Some("4"), Change::Applied, true));
        own.record(Kind::Package, "p", Some("4".into()));
        assert!(!own.awaiting(Kind::Package, "p", "4"), "already in the cache");
        // Someone else's edit seen early is not taken for pkgr's write.
        own.observe(Kind::Package, "q", Some("5"), Change::Applied, false);
        own.record(Kind::Package, "q", Some("6".into()));
        assert!(own.awaiting(Kind::Package, "q", "6"));
        // An early delivery of another version does not count either.
        own.observe(Kind::Package, "r", Some("7"), Change::Applied, true);
        own.record(Kind::Package, "r", Some("8".into()));
        assert!(own.awaiting(Kind::Package, "r", "8"));
    }
}
