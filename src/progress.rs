//! Progress of long work (a backfill, a full resync): on a terminal, a bar with done/total,
//! rate and ETA; otherwise (the journal) a log line every 10 s or 1,000 issues. Log lines
//! written while a bar is shown go above it instead of through it ([`stderr`]).

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

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
        let bar = bars().add(new_bar(&self.mapping, total, ProgressDrawTarget::hidden()));
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
            // Jira's approximate count can lag: the bar grows rather than overflow.
            if self.total.is_some_and(|t| self.done > t) {
                bar.set_length(self.done);
            }
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
            per_second = rate.round() as u64,
            eta_s = eta,
            "progress"
        );
        self.logged_at = Instant::now();
        self.logged_done = self.done;
    }
}

/// A bar when the total is known; without one (an incremental pass's pages come without a
/// count), a count, not a bar that stays empty and a "600/600" that repeats the count. Rates
/// in whole issues a second.
fn new_bar(mapping: &str, total: Option<u64>, target: ProgressDrawTarget) -> ProgressBar {
    let template = match total {
        Some(_) => "{msg} [{bar:30}] {pos}/{len} issues, {rate}, ETA {eta}",
        None => "{msg} {spinner} {pos} issues, {rate}, {elapsed}",
    };
    let style = ProgressStyle::with_template(template)
        .map(|s| {
            s.progress_chars("=> ").with_key(
                "rate",
                |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} issues/s", state.per_sec());
                },
            )
        })
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::with_draw_target(total, target);
    bar.set_style(style);
    bar.set_message(mapping.to_string());
    bar
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A terminal that keeps the last line drawn.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<String>>);

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(s)
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            // The bar's line (padding and clearing are written apart).
            if s.contains("issues") {
                *crate::lock_unpoisoned(&self.0) = s.to_string();
            }
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn drawn(total: Option<u64>, done: u64) -> String {
        let screen = Screen::default();
        let bar = new_bar(
            "VSA->acme/platform",
            total,
            ProgressDrawTarget::term_like(Box::new(screen.clone())),
        );
        bar.set_position(done);
        bar.tick();
        let line = crate::lock_unpoisoned(&screen.0).clone();
        line
    }

    #[test]
    fn a_bar_only_with_a_total_and_rates_in_whole_issues() {
        let known = drawn(Some(600), 600);
        assert!(
            known.contains(&format!("[{}] 600/600 issues", "=".repeat(30))),
            "{known}"
        );
        let unknown = drawn(None, 600);
        assert!(unknown.contains(" 600 issues, "), "{unknown}");
        assert!(
            !unknown.contains('[') && !unknown.contains("600/600"),
            "{unknown}"
        );
        for line in [known, unknown] {
            let rate = line
                .split(", ")
                .find(|p| p.ends_with("issues/s"))
                .unwrap_or_else(|| panic!("a rate in {line}"));
            assert!(!rate.contains('.'), "whole issues a second: {line}");
        }
    }
}
