//! What the create pacer does, as metrics: creates waiting for it right now, the seconds they
//! spent waiting, and how GitLab answered the creates it let through (a refusal is its rate
//! limit). Alerts fire on creates held for long or refused in bulk.

use std::time::Instant;

use crate::metrics::Metrics;

const WAITING: &str = "jgr_creates_waiting";
const WAITING_HELP: &str = "Issue creates waiting for the create pacer right now (GitLab's create limit, or a wait GitLab asked for).";

/// The creates of one client (no metrics: counted nowhere).
#[derive(Clone, Copy)]
pub(super) struct Creates<'a>(pub Option<&'a Metrics>);

impl<'a> Creates<'a> {
    /// One create starts waiting for the pacer; it stops when the guard is dropped.
    pub fn waiting(self) -> Waiting<'a> {
        if let Some(m) = self.0 {
            m.add(WAITING, WAITING_HELP, &[], 1.0);
        }
        Waiting {
            metrics: self.0,
            since: Instant::now(),
        }
    }

    /// What became of a create: `created`; `refused` by GitLab for its rate limit (429); or
    /// `held`, not sent because the pacer's wait was longer than `retry.max_wait` (the pass
    /// fails it at once, so no create is seen waiting: this is what "held for long" counts).
    pub fn answered(self, outcome: &str) {
        if let Some(m) = self.0 {
            m.inc(
                "jgr_create_requests_total",
                "Issue creates by outcome: created; refused by GitLab for its rate limit; held (not sent: the wait was longer than retry.max_wait).",
                &[("outcome", outcome)],
                1.0,
            );
        }
    }
}

pub(super) struct Waiting<'a> {
    metrics: Option<&'a Metrics>,
    since: Instant,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(m) = self.metrics {
            m.add(WAITING, WAITING_HELP, &[], -1.0);
            m.inc(
                "jgr_create_hold_seconds_total",
                "Seconds issue creates spent waiting for the create pacer, summed over creates.",
                &[],
                self.since.elapsed().as_secs_f64(),
            );
        }
    }
}
