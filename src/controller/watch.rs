//! Watches that survive an API server restart the way client-go's reflector does.
//!
//! kube-runtime's watcher turns every failure into an error item and leaves the retry policy to
//! the caller. Its stock backoff grows to 30 s and only forgets after two quiet minutes, and a
//! watch *start* refused with HTTP 410 retries the same expired resourceVersion forever. Here:
//! - 410 Gone (`Expired`, in the stream or as the reply to the watch request) means "list again",
//!   at once and without backoff: the watcher is rebuilt when it would not re-list by itself;
//! - other errors (connection refused, 503 while the server starts, 403) back off briefly
//!   (250 ms doubling to 2 s), and the backoff resets with the first event after recovery;
//! - an outage is logged once when it starts (with its cause and, for 403 only, the RBAC hint) and
//!   once when it is over, and `/readyz` reports not-ready while any watch is down;
//! - each watch keeps a short journal of what it did ([`Step`]: failures, backoffs, lists), so
//!   that what happened after a 410 can be checked without timing it.
use futures_util::{Stream, StreamExt};
use kube::Resource;
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::{self, Event};
use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One thing a watch did, as its journal in [`WatchHealth`] records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A request or the stream failed: the API's status code when it answered with one (410:
    /// the resourceVersion expired), `None` when there was no answer (connection refused,
    /// dropped stream).
    Failed(Option<u16>),
    /// Waited (a backoff) before trying again.
    BackedOff,
    /// A list completed: the first one, or a re-list.
    Listed,
}

/// How many of its latest steps each watch's journal keeps.
pub const JOURNAL_STEPS: usize = 64;

/// Which watches are down, and since when: what `/readyz` reports. Also which watches have
/// completed their first list, for reconciles that must not start on an empty cache, and each
/// watch's latest [`Step`]s.
#[derive(Debug)]
pub struct WatchHealth {
    down: Mutex<BTreeMap<String, Instant>>,
    listed: tokio::sync::watch::Sender<std::collections::BTreeSet<String>>,
    journal: Mutex<BTreeMap<String, VecDeque<Step>>>,
}

impl Default for WatchHealth {
    fn default() -> Self {
        WatchHealth {
            down: Mutex::default(),
            listed: tokio::sync::watch::channel(Default::default()).0,
            journal: Mutex::default(),
        }
    }
}

impl WatchHealth {
    /// Wait until every named watch has completed its first list.
    ///
    /// Any number of tasks may wait at once. (kube-runtime's `Store::wait_until_ready` may not be
    /// awaited by several tasks: its one-shot channel keeps only the last waiter's waker, so every
    /// other reconcile waiting at start-up would hang for good.)
    pub async fn wait_listed(&self, names: &[&str]) {
        let mut listed = self.listed.subscribe();
        let _ = listed
            .wait_for(|done| names.iter().all(|n| done.contains(*n)))
            .await;
    }

    fn mark_listed(&self, name: &str) {
        self.listed.send_if_modified(|done| done.insert(name.to_string()));
    }

    /// Names of the watches that are failing now.
    pub fn down(&self) -> Vec<String> {
        self.down
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    fn mark_down(&self, name: &str) {
        self.down
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_insert_with(Instant::now);
    }

    fn mark_up(&self, name: &str) {
        self.down.lock().unwrap_or_else(|p| p.into_inner()).remove(name);
    }

    /// The latest steps (at most [`JOURNAL_STEPS`]) of every watch, oldest first, by name.
    pub fn journal(&self) -> BTreeMap<String, Vec<Step>> {
        self.journal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(name, steps)| (name.clone(), steps.iter().copied().collect()))
            .collect()
    }

    fn record(&self, name: &str, step: Step) {
        let mut journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        let steps = journal.entry(name.to_string()).or_default();
        if steps.len() == JOURNAL_STEPS {
            steps.pop_front();
        }
        steps.push_back(step);
    }
}

/// How a watch error is handled.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// The resourceVersion expired: list again now. `rebuild` when the watcher would retry the
    /// same resourceVersion instead (a watch request answered with HTTP 410).
    Expired { rebuild: bool },
    /// Forbidden: RBAC does not let the controller list or watch this.
    Forbidden,
    /// Anything else (unreachable, 5xx, a dropped stream): retry after a short backoff.
    Unavailable,
}

fn api_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// The API's status code in a watcher error, if the API server answered with one.
pub fn status_code(error: &watcher::Error) -> Option<u16> {
    match error {
        watcher::Error::WatchError(status) => Some(status.code),
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => api_code(e),
        watcher::Error::NoResourceVersion => None,
    }
}

/// Sort a watcher error into what to do about it.
pub fn classify(error: &watcher::Error) -> Failure {
    match status_code(error) {
        Some(410) => Failure::Expired {
            rebuild: matches!(error, watcher::Error::WatchStartFailed(_)),
        },
        Some(403) => Failure::Forbidden,
        _ => Failure::Unavailable,
    }
}

/// Backoff for an unreachable API server: short, because the server is usually back in seconds.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

pub const BACKOFF_MIN: Duration = Duration::from_millis(250);
pub const BACKOFF_MAX: Duration = Duration::from_secs(2);

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// The next delay, with up to 20 % jitter so many watches do not retry in lockstep.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        base + base.mul_f64(f64::from(nanos % 200) / 1000.0)
    }

    pub fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// A watcher's event stream, as `resilient` (re)builds it.
pub type EventStream<K> = Pin<Box<dyn Stream<Item = watcher::Result<Event<K>>> + Send>>;

struct State<K: Resource<DynamicType = ()> + Clone + 'static, F> {
    name: String,
    make: F,
    inner: Option<EventStream<K>>,
    writer: Writer<K>,
    backoff: Backoff,
    outage: Option<(Instant, String)>,
    health: Arc<WatchHealth>,
}

/// The events of the watch `make` builds, applied to `writer`'s store first (as
/// `reflector::reflector` does), with errors handled here rather than passed on: the stream
/// only yields events.
pub fn resilient<K, F>(
    name: &str,
    make: F,
    writer: Writer<K>,
    health: Arc<WatchHealth>,
) -> impl Stream<Item = Event<K>> + Send
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    F: FnMut() -> EventStream<K> + Send + 'static,
{
    let state = State {
        name: name.to_string(),
        make,
        inner: None,
        writer,
        backoff: Backoff::default(),
        outage: None,
        health,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        loop {
            let inner = match &mut state.inner {
                Some(inner) => inner,
                None => state.inner.insert((state.make)()),
            };
            match inner.next().await {
                Some(Ok(event)) => {
                    state.writer.apply_watcher_event(&event);
                    if matches!(event, Event::InitDone) {
                        state.health.record(&state.name, Step::Listed);
                        state.health.mark_listed(&state.name);
                    }
                    // A list that completed or a live event: the watch works again.
                    if matches!(event, Event::InitDone | Event::Apply(_) | Event::Delete(_)) {
                        state.backoff.reset();
                        if let Some((since, _)) = state.outage.take() {
                            state.health.mark_up(&state.name);
                            tracing::info!(
                                watch = %state.name,
                                after_seconds = since.elapsed().as_secs_f32(),
                                "watch restored"
                            );
                        }
                    }
                    return Some((event, state));
                }
                Some(Err(error)) => handle_error(&mut state, &error).await,
                // The watcher never ends by itself; if it does, start a new one.
                None => state.inner = None,
            }
        }
    })
}

async fn handle_error<K: Resource<DynamicType = ()> + Clone + 'static, F>(
    state: &mut State<K, F>,
    error: &watcher::Error,
) {
    // Recorded as the server answered, whatever `classify` makes of it.
    state.health.record(&state.name, Step::Failed(status_code(error)));
    match classify(error) {
        Failure::Expired { rebuild } => {
            tracing::debug!(watch = %state.name, %error, "resourceVersion expired: listing again");
            if rebuild {
                state.inner = None;
            }
        }
        failure => {
            if state.outage.is_none() {
                let hint = if failure == Failure::Forbidden {
                    "; the controller's ServiceAccount may not list or watch this: check its RBAC \
                     and that --namespace names the namespace its Role covers"
                } else {
                    ""
                };
                tracing::warn!(watch = %state.name, cause = %error, "watch failed, retrying{hint}");
                state.outage = Some((Instant::now(), error.to_string()));
                state.health.mark_down(&state.name);
            } else {
                tracing::debug!(watch = %state.name, %error, "watch still failing");
            }
            state.health.record(&state.name, Step::BackedOff);
            tokio::time::sleep(state.backoff.next_delay()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> kube::core::Status {
        kube::core::Status::failure("m", "r").with_code(code)
    }

    #[test]
    fn classification() {
        let gone_in_stream = watcher::Error::WatchError(Box::new(status(410)));
        assert_eq!(classify(&gone_in_stream), Failure::Expired { rebuild: false });
        let gone_on_start = watcher::Error::WatchStartFailed(kube::Error::Api(Box::new(status(410))));
        assert_eq!(classify(&gone_on_start), Failure::Expired { rebuild: true });
        let forbidden = watcher::Error::InitialListFailed(kube::Error::Api(Box::new(status(403))));
        assert_eq!(classify(&forbidden), Failure::Forbidden);
        let unavailable = watcher::Error::InitialListFailed(kube::Error::Api(Box::new(status(503))));
        assert_eq!(classify(&unavailable), Failure::Unavailable);
    }

    #[tokio::test]
    async fn every_waiter_wakes_when_the_caches_are_listed() {
        let health = Arc::new(WatchHealth::default());
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let health = health.clone();
                tokio::spawn(async move { health.wait_listed(&["a", "b"]).await })
            })
            .collect();
        tokio::task::yield_now().await;
        health.mark_listed("a");
        health.mark_listed("b");
        for waiter in waiters {
            tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("every waiter is woken")
                .unwrap();
        }
    }

    #[test]
    fn the_journal_keeps_each_watch_latest_steps() {
        let health = WatchHealth::default();
        health.record("a", Step::Failed(Some(410)));
        health.record("a", Step::Listed);
        for _ in 0..JOURNAL_STEPS {
            health.record("b", Step::Failed(None));
        }
        health.record("b", Step::BackedOff);
        let journal = health.journal();
        assert_eq!(journal["a"], [Step::Failed(Some(410)), Step::Listed]);
        assert_eq!(journal["b"].len(), JOURNAL_STEPS);
        assert_eq!(journal["b"].last(), Some(&Step::BackedOff));
    }

    #[test]
    fn backoff_is_short_and_resets() {
        let mut backoff = Backoff::default();
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] >= BACKOFF_MIN && delays[0] < BACKOFF_MIN * 2);
        assert!(
            delays.iter().all(|d| *d <= BACKOFF_MAX.mul_f64(1.2)),
            "{delays:?}"
        );
        backoff.reset();
        assert!(backoff.next_delay() < BACKOFF_MIN * 2);
    }
}
