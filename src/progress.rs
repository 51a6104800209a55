//! Progress of long work (a backfill, a full resync): on a terminal, a bar with done/total,
//! rate and ETA; otherwise (the journal) a log line every 10 s or 1,000 issues. Log lines
//! written while a bar is shown go above it instead of through it ([`stderr`]).

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bars on screen (one per mapping at work; mappings run side by side): log lines suspend
/// them while they are written.
static BARS: OnceLock<MultiProgress> = OnceLock::new();
static SHOWN: AtomicUsize = AtomicUsize::new(0);

fn bars() -> &'static MultiProgress {
    BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

const LOG_EVERY: Duration = Duration::from_secs(10);
const LOG_EVERY_ISSUES: u64 = 1_000;

pub struct Progress {
    mapping: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
    logged_at: Instant,
    logged_done: u64,
    bar: Option<ProgressBar>,
    /// Whether this is long work worth showing (more than one page of Jira issues).
    active: bool,
}

impl Progress {
    pub fn new(mapping: &str) -> Self {
        Progress {
            mapping: mapping.to_string(),
            total: None,
            done: 0,
            started: Instant::now(),
            logged_at: Instant::now(),
            logged_done: 0,
            bar: None,
            active: false,
        }
    }

    /// Long work starts: `total` issues, if known.
    pub fn set_total(&mut self, total: Option<u64>) {
        self.active = true;
        self.total = total;
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return;
        }
        let bar = bars().add(ProgressBar::with_draw_target(
            total,
            ProgressDrawTarget::hidden(),
        ));
        let style = ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} issues, {per_sec}, ETA {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(self.mapping.clone());
        bar.enable_steady_tick(Duration::from_millis(200));
        SHOWN.fetch_add(1, Ordering::SeqCst);
        self.bar = Some(bar);
    }

    /// `n` more Jira issues were worked on.
    pub fn advance(&mut self, n: u64) {
        self.done += n;
        if !self.active {
            return;
        }
        if let Some(bar) = &self.bar {
            bar.set_position(self.done);
            return;
        }
        if self.logged_at.elapsed() >= LOG_EVERY || self.done - self.logged_done >= LOG_EVERY_ISSUES
        {
            self.log();
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            bars().remove(&bar);
            SHOWN.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn log(&mut self) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.done as f64 / secs;
        let eta = self
            .total
            .filter(|t| *t > self.done && rate > 0.0)
            .map(|t| ((t - self.done) as f64 / rate).round() as u64);
        tracing::info!(
            done = self.done,
            total = self.total,
            per_second = format!("{rate:.0}"),
            eta_s = eta,
            "progress"
        );
        self.logged_at = Instant::now();
        self.logged_done = self.done;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Standard error for log lines: while a progress bar is shown, a line is written above it.
pub fn stderr() -> Stderr {
    Stderr
}

pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if SHOWN.load(Ordering::SeqCst) > 0 {
            bars().suspend(|| std::io::stderr().write_all(buf).map(|()| buf.len()))
        } else {
            std::io::stderr().write(buf)
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
