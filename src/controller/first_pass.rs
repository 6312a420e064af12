//! Which repositories this process has reconciled since it started.
//!
//! What a repository leaves to another one (an identical Package both supply, kept by the first)
//! is known only once it has been reconciled. A deletion processed before that (at start-up, or
//! by a replica that just took the lead while a deletion was pending) would delete the shared
//! object and let the other repository create it again at its next sync: the object would be
//! gone for a while. So a deletion first waits, for a bounded time, until every other
//! repository has been reconciled once.
use crate::api::PackageRepository;
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

/// How long a deletion waits for the other repositories' first reconcile before it goes ahead.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct FirstPass {
    done: Mutex<HashSet<String>>,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for FirstPass {
    fn default() -> FirstPass {
        FirstPass {
            done: Mutex::default(),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl FirstPass {
    /// `repository` was reconciled (whatever the outcome).
    pub fn mark(&self, repository: &str) {
        let new = self
            .done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(repository.to_string());
        if new {
            self.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Repositories in `repositories`, other than `deleting` and not being deleted themselves,
    /// that have not been reconciled yet.
    pub fn pending(&self, repositories: &Store<PackageRepository>, deleting: &str) -> Vec<String> {
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        let mut pending: Vec<String> = repositories
            .state()
            .iter()
            .filter(|r| r.metadata.deletion_timestamp.is_none())
            .map(|r| r.name_any())
            .filter(|name| name != deleting && !done.contains(name))
            .collect();
        pending.sort();
        pending
    }

    /// Wait until every other repository has been reconciled once, or `limit` has passed.
    /// Returns those still not reconciled (empty when all were).
    pub async fn wait_for_others(
        &self,
        repositories: &Store<PackageRepository>,
        deleting: &str,
        limit: Duration,
    ) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut changed = self.changed.subscribe();
        loop {
            changed.mark_unchanged();
            let pending = self.pending(repositories, deleting);
            if pending.is_empty() {
                return pending;
            }
            tracing::debug!(repository = deleting, waiting_for = ?pending, "deletion waits for the other repositories' first reconcile");
            // Repositories created or deleted meanwhile reach the store without a signal here:
            // look again at least once a second.
            let tick = (tokio::time::Instant::now() + Duration::from_secs(1)).min(deadline);
            let _ = tokio::time::timeout_at(tick, changed.changed()).await;
            if tokio::time::Instant::now() >= deadline {
                return self.pending(repositories, deleting);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::store;
    use kube::runtime::watcher::Event;

    fn repository(name: &str, deleting: bool) -> PackageRepository {
        let mut repo = PackageRepository::new(name, Default::default());
        if deleting {
            repo.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                Default::default(),
            ));
        }
        repo
    }

    #[tokio::test]
    async fn a_deletion_waits_for_the_other_repositories_first_reconcile() {
        let (reader, mut writer) = store::<PackageRepository>();
        for repo in [
            repository("a", true),
            repository("b", false),
            repository("c", false),
            repository("gone", true),
        ] {
            writer.apply_watcher_event(&Event::Apply(repo));
        }
        let first = std::sync::Arc::new(FirstPass::default());
        assert_eq!(first.pending(&reader, "a"), vec!["b", "c"]);
        first.mark("b");
        let waiting = {
            let (first, reader) = (first.clone(), reader.clone());
            tokio::spawn(async move { first.wait_for_others(&reader, "a", Duration::from_secs(60)).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "c has not been reconciled yet");
        first.mark("c");
        assert_eq!(waiting.await.unwrap(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn the_wait_is_bounded() {
        let (reader, mut writer) = store::<PackageRepository>();
        writer.apply_watcher_event(&Event::Apply(repository("b", false)));
        let first = FirstPass::default();
        let left = first
            .wait_for_others(&reader, "a", Duration::from_millis(50))
            .await;
        assert_eq!(left, vec!["b"]);
    }
}
