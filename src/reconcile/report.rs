//! What one pass over one mapping did: its [`Tally`], with where and when, and the metrics it
//! feeds.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::observe::Start;
use super::outcome::{Failure, Outcome, Tally};
use crate::domain::{MappingId, PassKind, PassOutcome};
use crate::error::Error;
use crate::metrics::Metrics;

/// A mapping's pass: what it did (its tally, which the report reads as its own fields:
/// `report.counts`, `report.failures`...), of which kind, and how it ended.
#[derive(Debug)]
pub struct PassReport {
    pub mapping: MappingId,
    pub kind: PassKind,
    pub tally: Tally,
    /// Where the next incremental search starts (after this pass).
    pub checkpoint: Option<DateTime<Utc>>,
    pub duration: Duration,
    /// CPU time (user and system) the process spent during this pass; with mappings side by
    /// side, shared with the others running at the same time.
    pub cpu: Duration,
    /// A stop (SIGTERM, SIGINT) came before the pass finished: not a failure, and not done.
    pub stopped: bool,
}

impl Deref for PassReport {
    type Target = Tally;
    fn deref(&self) -> &Tally {
        &self.tally
    }
}

impl DerefMut for PassReport {
    fn deref_mut(&mut self) -> &mut Tally {
        &mut self.tally
    }
}

impl PassReport {
    fn new(mapping: &MappingId, kind: PassKind) -> Self {
        PassReport {
            mapping: mapping.clone(),
            kind,
            tally: Tally::default(),
            checkpoint: None,
            duration: Duration::ZERO,
            cpu: Duration::ZERO,
            stopped: false,
        }
    }

    /// A pass that could not run at all (or, for a stop, did not get to).
    pub(super) fn failed(mapping: &MappingId, kind: PassKind, e: Error) -> Self {
        let mut r = PassReport::new(mapping, kind);
        if e.cause() == crate::cause::Cause::Stopped {
            r.stopped = true;
        } else {
            r.tally += Outcome::Failed(Failure::Pass(e));
        }
        r
    }

    /// A pass that ended in a panic (a bug).
    pub(super) fn panicked(mapping: &MappingId, kind: PassKind, why: String) -> Self {
        let mut r = PassReport::new(mapping, kind);
        r.tally += Outcome::Failed(Failure::Panicked(why));
        r
    }

    /// The report of a pass that knows where it starts, before it reads Jira.
    pub(super) fn started(mapping: &MappingId, start: &Start) -> Self {
        let mut r = PassReport::new(mapping, start.kind);
        r.checkpoint = start.checkpoint.at();
        r
    }

    /// The pass is over: its failures settled (see [`Tally::settle`]) and its notes and plans
    /// made safe for terminals, logs and the pass history (they carry Jira keys, servers'
    /// messages and names; a failure is made safe when it is printed).
    pub(super) fn settle(&mut self) {
        self.tally.settle();
        for line in self
            .tally
            .notes
            .iter_mut()
            .chain(self.tally.planned.iter_mut())
        {
            *line = crate::safe_text::safe(line);
        }
    }

    /// Converged: nothing failed and nothing was left undone.
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && !self.stopped
    }

    /// How the pass ended: a failure counts before a stop.
    pub fn outcome(&self) -> PassOutcome {
        if !self.failures.is_empty() {
            PassOutcome::Failed
        } else if self.stopped {
            PassOutcome::Stopped
        } else {
            PassOutcome::Ok
        }
    }

    pub fn summary(&self) -> String {
        let c = &self.counts;
        let ended = if self.outcome() == PassOutcome::Stopped {
            " stopped before it finished (the next pass continues)"
        } else {
            ""
        };
        format!(
            "{}: {} pass{ended}: created {}, closed {}, reopened {}, updated {}, adopted {}, unchanged {}, failed {} ({} read) in {:.1}s",
            self.mapping,
            self.kind,
            c.created,
            c.closed,
            c.reopened,
            c.updated,
            c.adopted,
            c.unchanged,
            c.failed,
            crate::domain::plural(c.jira_seen, "Jira issue", "Jira issues"),
            self.duration.as_secs_f64()
        )
    }
}

/// CPU time (user and system) this process has used so far.
pub(super) fn process_cpu() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own; RUSAGE_SELF is always valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv =
        |t: libc::timeval| Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.max(0) as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The pass's series: how it ended, its actions by kind, its duration and CPU time, whether
/// it needs a person, and its last success and checkpoint.
pub(super) fn record_metrics(m: &Metrics, r: &PassReport) {
    let mapping = r.mapping.as_str();
    m.inc(
        "jgr_passes_total",
        "Reconcile passes, by mapping, kind and outcome.",
        &[
            ("mapping", mapping),
            ("kind", r.kind.label()),
            ("outcome", r.outcome().label()),
        ],
        1.0,
    );
    record_actions(m, r);
    record_time(m, r);
    m.set(
        "jgr_needs_person",
        "1 when the mapping's last pass failed on something only a person can fix (a rejected token, a role too low, a missing project), by mapping.",
        &[("mapping", mapping)],
        if r.needs_user() { 1.0 } else { 0.0 },
    );
    record_progress(m, r);
}

fn record_actions(m: &Metrics, r: &PassReport) {
    for (kind, n) in [
        ("create", r.counts.created),
        ("close", r.counts.closed),
        ("reopen", r.counts.reopened),
        ("update", r.counts.updated),
        ("adopt", r.counts.adopted),
        ("failed", r.counts.failed),
    ] {
        m.inc(
            "jgr_actions_total",
            "Actions applied to GitLab, by mapping and kind.",
            &[("mapping", r.mapping.as_str()), ("kind", kind)],
            n as f64,
        );
    }
}

fn record_time(m: &Metrics, r: &PassReport) {
    let labels = [("mapping", r.mapping.as_str())];
    m.set(
        "jgr_pass_duration_seconds",
        "Duration of the last pass, by mapping.",
        &labels,
        r.duration.as_secs_f64(),
    );
    m.set(
        "jgr_pass_cpu_seconds",
        "CPU time the process spent during the last pass, by mapping.",
        &labels,
        r.cpu.as_secs_f64(),
    );
}

/// When the mapping last converged, and how far its checkpoint has come.
fn record_progress(m: &Metrics, r: &PassReport) {
    let labels = [("mapping", r.mapping.as_str())];
    if r.ok() {
        m.set(
            "jgr_last_success_timestamp_seconds",
            "Unix time of the last successful pass, by mapping.",
            &labels,
            Utc::now().timestamp() as f64,
        );
    }
    if let Some(cp) = r.checkpoint {
        m.set(
            "jgr_checkpoint_timestamp_seconds",
            "The mapping's checkpoint (newest Jira `updated` mirrored), Unix time.",
            &labels,
            cp.timestamp() as f64,
        );
    }
}
