//! WATCH streams: the replay from a resourceVersion (or a 410 after a compaction), then live
//! changes, bookmarks carrying the server's progress, and the end at timeoutSeconds or when the
//! test ends every watch.
use super::route::{collection, kind_of, matches, shaped};
use super::store::{self, Change};
use super::{ChannelBody, Shared, WatchStream, whole};
use bytes::Bytes;
use hyper::Response;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// How far a watch of `resource` has been told everything, for its next bookmark: the newest
/// resourceVersion when the stream has taken every change published so far and none of its
/// resource's are held back; otherwise only as far as it has sent (a change is on its way).
fn progress(shared: &Shared, resource: &str, live: &broadcast::Receiver<Change>, sent_up_to: u64) -> u64 {
    // Changes are published with the store locked: holding it, every change up to `rv` is in the
    // channel already.
    let store = shared.store.lock().unwrap();
    let held = shared.held.lock().unwrap();
    let holding = held
        .as_ref()
        .is_some_and(|(r, queue)| r == resource && !queue.is_empty());
    if live.is_empty() && !holding {
        store.rv
    } else {
        sent_up_to
    }
}

fn watch_line(kind: &str, object: Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap();
    line.push(b'\n');
    Bytes::from(line)
}

/// Marks its watch stream ended when the stream's task ends, however it ends.
struct StreamTask(Arc<Shared>, usize);

impl StreamTask {
    fn note(&self, update: impl FnOnce(&mut WatchStream)) {
        update(&mut self.0.streams.lock().unwrap()[self.1]);
        self.0.revision.send_modify(|r| *r += 1);
    }
}

impl Drop for StreamTask {
    fn drop(&mut self) {
        self.note(|s| s.open = false);
    }
}

pub(super) fn watch_response(
    shared: &Arc<Shared>,
    path: &str,
    resource: &str,
    ns: Option<&str>,
    query: &BTreeMap<String, String>,
    metadata_only: bool,
    log: impl Fn(u16, bool),
) -> Response<ChannelBody> {
    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    let since: Option<u64> = query
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
        .and_then(|v| v.parse().ok());
    let store = shared.store.lock().unwrap();
    if let Some(since) = since
        && since < store.compacted_at
    {
        let message = format!("too old resource version: {since} ({})", store.compacted_at);
        let (code, status) = store::status(410, "Expired", &message);
        if shared.gone_as_http.load(Ordering::SeqCst) {
            log(code, true);
            return whole(code, &status);
        }
        log(200, true);
        let _ = tx.try_send(watch_line("ERROR", status));
        return Response::builder().status(200).body(ChannelBody(rx)).unwrap();
    }
    log(200, false);
    let (index, mut ended) = {
        let mut streams = shared.streams.lock().unwrap();
        streams.push(WatchStream {
            collection: collection(path, query),
            from: query.get("resourceVersion").cloned(),
            bookmarks_allowed: query.get("allowWatchBookmarks").is_some_and(|b| b == "true"),
            last_bookmark: None,
            last_change: None,
            open: true,
        });
        (streams.len() - 1, shared.end_watches.subscribe())
    };
    let mut live = shared.changes.subscribe();
    let wanted = |c: &Change| matches(&c.object, &c.key, resource, ns, query);
    let replay: Vec<Bytes> = match since {
        Some(since) => store
            .history
            .iter()
            .filter(|c| c.rv > since && wanted(c))
            .map(|c| watch_line(c.kind, shaped(&c.object, metadata_only, false, resource)))
            .collect(),
        None => store
            .objects
            .iter()
            .filter(|(k, o)| matches(o, k, resource, ns, query))
            .map(|(_, o)| watch_line("ADDED", shaped(o, metadata_only, false, resource)))
            .collect(),
    };
    let mut sent_up_to = store.rv;
    drop(store);
    let (kind, api_version) = if metadata_only {
        ("PartialObjectMetadata".to_string(), "meta.k8s.io/v1".to_string())
    } else {
        kind_of(resource)
    };
    let bookmarks = query.get("allowWatchBookmarks").is_some_and(|b| b == "true");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(Duration::from_secs(3600), Duration::from_secs);
    let (shared, resource, ns, query) = (
        shared.clone(),
        resource.to_string(),
        ns.map(str::to_string),
        query.clone(),
    );
    tokio::spawn(async move {
        let stream = StreamTask(shared.clone(), index);
        for line in replay {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let interval = shared.bookmark_ms.load(Ordering::SeqCst);
        let mut ticker = tokio::time::interval(Duration::from_millis(interval.max(1) as u64));
        loop {
            tokio::select! {
                change = live.recv() => match change {
                    Ok(c) if c.rv > sent_up_to && matches(&c.object, &c.key, &resource, ns.as_deref(), &query) => {
                        sent_up_to = c.rv;
                        if tx.send(watch_line(c.kind, shaped(&c.object, metadata_only, false, &resource))).await.is_err() {
                            return;
                        }
                        stream.note(|s| s.last_change = Some(c.rv));
                    }
                    Ok(_) => {}
                    Err(_) => return,
                },
                _ = ticker.tick(), if bookmarks && interval > 0 => {
                    let progress = progress(&shared, &resource, &live, sent_up_to);
                    let mark = json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": progress.to_string()}});
                    if tx.send(watch_line("BOOKMARK", mark)).await.is_err() {
                        return;
                    }
                    stream.note(|s| s.last_bookmark = Some(progress));
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = ended.changed() => return,
            }
        }
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(ChannelBody(rx))
        .unwrap()
}
