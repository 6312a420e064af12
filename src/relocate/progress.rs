//! Progress of a copy on stderr: a redrawn bytes/rate/ETA line on a terminal, one line per item
//! otherwise, and a final summary.
use super::{CopySummary, Plan};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ProgressMode {
    /// A single line redrawn in place (stderr is a terminal).
    Terminal,
    /// One line per transferred item, for logs and pipes.
    Lines,
    /// Nothing (library use, tests).
    Quiet,
}

impl ProgressMode {
    /// Terminal when stderr is one, else lines.
    pub fn detect() -> ProgressMode {
        if std::io::stderr().is_terminal() {
            ProgressMode::Terminal
        } else {
            ProgressMode::Lines
        }
    }
}

/// Milestones of a copy, for a caller that tells them in its own words (imgpkg's `copy | …`).
#[derive(Clone, Debug, PartialEq)]
pub enum Milestone {
    /// The graph is known; `images` are its top-level images (those of every ImagesLock, the
    /// root and the signatures found), each named where it was read, sorted as imgpkg lists them.
    Planned { images: Vec<String> },
    /// Transfers into the destination repository start.
    Importing { images: usize },
    /// Writing the tarball starts.
    Writing,
    /// Everything is in the destination repository.
    Uploaded,
    /// One file of the tarball (`manifest.json`, `sha256-<hex>.tar.gz`) was written, taking
    /// `elapsed`.
    FileWritten { name: String, elapsed: Duration },
    /// The copy is done; `images` lists each image (by where it was read, sorted) with the
    /// non-distributable layers it has, and `included` says whether they were copied.
    NonDistributable {
        included: bool,
        images: Vec<(String, Vec<String>)>,
    },
}

/// The caller's milestone handler.
pub struct Narrator(Box<dyn Fn(&Milestone) + Send + Sync>);

impl std::fmt::Debug for Narrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Narrator")
    }
}

/// Shared by every transfer task of a copy.
#[derive(Debug)]
pub struct Progress {
    narrator: Option<Narrator>,
    mode: ProgressMode,
    started: Instant,
    total: AtomicU64,
    done: AtomicU64,
    last_draw: Mutex<Option<Instant>>,
}

const REDRAW: Duration = Duration::from_millis(150);

impl Progress {
    pub fn new(mode: ProgressMode) -> Progress {
        Progress {
            narrator: None,
            mode,
            started: Instant::now(),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            last_draw: Mutex::new(None),
        }
    }

    pub fn quiet() -> Progress {
        Progress::new(ProgressMode::Quiet)
    }

    /// Also hand every [`Milestone`] to `narrate`.
    pub fn with_narrator(mut self, narrate: impl Fn(&Milestone) + Send + Sync + 'static) -> Progress {
        self.narrator = Some(Narrator(Box::new(narrate)));
        self
    }

    pub(crate) fn milestone(&self, milestone: Milestone) {
        if let Some(Narrator(narrate)) = &self.narrator {
            narrate(&milestone);
        }
    }

    /// Bytes moved so far.
    pub fn bytes_done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    pub(crate) fn planned(&self, plan: &Plan) {
        if self.mode == ProgressMode::Lines {
            self.line(&format!(
                "planned {} manifest(s), {} bundle(s), {} top-level image(s)",
                plan.nodes.len(),
                plan.bundles.len(),
                plan.tops.len()
            ));
        }
    }

    /// The most bytes the copy may move (blobs already present lower what really travels).
    pub(crate) fn set_total(&self, bytes: u64) {
        self.total.store(bytes, Ordering::Relaxed);
    }

    pub(crate) fn add(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
        self.redraw(false);
    }

    /// A blob that will not travel (present, mounted, resumed): it no longer counts in the total.
    pub(crate) fn skip(&self, bytes: u64) {
        let _ = self
            .total
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_sub(bytes))
            });
        self.redraw(false);
    }

    /// Bytes of a failed attempt that will be sent again.
    pub(crate) fn retract(&self, bytes: u64) {
        let _ = self.done.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
            Some(d.saturating_sub(bytes))
        });
    }

    /// One finished item (Lines mode only).
    pub(crate) fn item(&self, message: &str) {
        if self.mode == ProgressMode::Lines {
            self.line(message);
        }
    }

    /// Something the user should see whatever the mode (a retry, a warning).
    pub(crate) fn note(&self, message: &str) {
        if self.mode != ProgressMode::Quiet {
            self.line(message);
            self.redraw(true);
        }
    }

    pub(crate) fn finished(&self, summary: &CopySummary) {
        if self.mode == ProgressMode::Quiet {
            return;
        }
        self.redraw(true);
        let elapsed = self.started.elapsed();
        let mut msg = format!(
            "copied {} image(s)/index(es), {} bundle(s): blobs {} transferred, {} already present, {} mounted",
            summary.images,
            summary.bundles,
            summary.blobs_transferred,
            summary.blobs_skipped,
            summary.blobs_mounted
        );
        if summary.blobs_resumed > 0 {
            msg.push_str(&format!(
                ", {} re-used from the partial tarball",
                summary.blobs_resumed
            ));
        }
        msg.push_str(&format!(
            "; {} in {:.1}s ({}/s); manifests {} written, {} already present",
            human(summary.bytes_transferred),
            elapsed.as_secs_f64(),
            human(rate(summary.bytes_transferred, elapsed)),
            summary.manifests_written,
            summary.manifests_skipped
        ));
        if summary.non_distributable_skipped > 0 {
            msg.push_str(&format!(
                "\nwarning: {} non-distributable layer(s) were not copied (use --include-non-distributable-layers to copy them)",
                summary.non_distributable_skipped
            ));
        }
        if self.mode == ProgressMode::Terminal {
            eprint!("\r\x1b[K");
        }
        eprintln!("{msg}");
    }

    fn line(&self, message: &str) {
        let mut err = std::io::stderr().lock();
        if self.mode == ProgressMode::Terminal {
            let _ = write!(err, "\r\x1b[K");
        }
        let _ = writeln!(err, "{message}");
    }

    fn redraw(&self, force: bool) {
        if self.mode != ProgressMode::Terminal {
            return;
        }
        let now = Instant::now();
        {
            let Ok(mut last) = self.last_draw.lock() else {
                return;
            };
            if !force && last.is_some_and(|l| now.duration_since(l) < REDRAW) {
                return;
            }
            *last = Some(now);
        }
        let done = self.done.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed).max(done);
        let elapsed = self.started.elapsed();
        let speed = rate(done, elapsed);
        let eta = if speed > 0 && total > done {
            format!("ETA {}s", (total - done) / speed)
        } else {
            "ETA -".to_string()
        };
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        eprint!(
            "\r\x1b[K{} / {} ({pct}%)  {}/s  {eta}",
            human(done),
            human(total),
            human(speed)
        );
        let _ = std::io::stderr().flush();
    }
}

fn rate(bytes: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        0
    } else {
        (bytes as f64 / secs) as u64
    }
}

/// `12.3 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(12), "12 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(500 * 1024 * 1024), "500.0 MiB");
    }

    #[test]
    fn skipped_bytes_leave_the_total_and_retries_leave_done() {
        let p = Progress::quiet();
        p.set_total(100);
        p.add(40);
        p.retract(10);
        p.skip(30);
        assert_eq!(p.bytes_done(), 30);
        assert_eq!(p.total.load(Ordering::Relaxed), 70);
    }
}
