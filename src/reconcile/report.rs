//! What one pass over one mapping did, assembled from its phases' results, and the metrics it
//! feeds.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::apply::Applied;
use super::observe::{GitlabView, Start};
use crate::domain::Counts;
use crate::domain::{MappingId, PassKind, PassOutcome};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::plan::RecipeTally;

#[derive(Debug)]
pub struct PassReport {
    pub mapping: MappingId,
    pub kind: PassKind,
    pub counts: Counts,
    /// One line per action that failed, or the reason the whole pass failed.
    pub failures: Vec<String>,
    /// `--dry-run`: the actions that would be taken.
    pub planned: Vec<String>,
    pub notes: Vec<String>,
    pub checkpoint: Option<DateTime<Utc>>,
    pub duration: Duration,
    /// CPU time (user and system) the process spent during this pass; with mappings side by
    /// side, shared with the others running at the same time.
    pub cpu: Duration,
    /// The pass failed on something only the user can fix (credentials, a missing project).
    pub needs_user: bool,
    /// What the Automation recipe rule found (planned, in a dry run).
    pub recipe: RecipeTally,
    /// A stop (SIGTERM, SIGINT) came before the pass finished: not a failure, and not done.
    pub stopped: bool,
}

impl PassReport {
    fn new(mapping: &MappingId, kind: PassKind) -> Self {
        PassReport {
            mapping: mapping.clone(),
            kind,
            counts: Counts::default(),
            failures: Vec::new(),
            planned: Vec::new(),
            notes: Vec::new(),
            checkpoint: None,
            duration: Duration::ZERO,
            cpu: Duration::ZERO,
            needs_user: false,
            recipe: RecipeTally::default(),
            stopped: false,
        }
    }

    /// A pass that could not run at all (or, for a stop, did not get to).
    pub(super) fn failed(mapping: &MappingId, kind: PassKind, e: &Error) -> Self {
        let mut r = PassReport::new(mapping, kind);
        if e.cause() == crate::cause::Cause::Stopped {
            r.stopped = true;
            return r;
        }
        r.needs_user = e.needs_user();
        r.failures.push(e.report());
        r
    }

    /// A pass that ended for a reason that is not an [`Error`] (a panic).
    pub(super) fn failed_with(mapping: &MappingId, kind: PassKind, why: String) -> Self {
        let mut r = PassReport::new(mapping, kind);
        r.failures.push(why);
        r
    }

    /// The report of a pass that knows where it starts, before it reads Jira.
    pub(super) fn started(mapping: &MappingId, start: &Start, view: &GitlabView<'_>) -> Self {
        let mut r = PassReport::new(mapping, start.kind);
        r.checkpoint = start.checkpoint.at();
        r.notes.extend(view.notes.iter().cloned());
        r
    }

    pub(super) fn absorb(&mut self, applied: Applied) {
        self.counts += &applied.counts;
        self.needs_user |= applied.needs_user;
        self.notes.extend(applied.notes);
        self.failures.extend(applied.failures.into_values());
    }

    /// Every line made safe for terminals, logs and the pass history: they carry Jira keys,
    /// servers' messages and names (see `safe_text`).
    pub(super) fn make_safe(&mut self) {
        for line in self
            .failures
            .iter_mut()
            .chain(self.notes.iter_mut())
            .chain(self.planned.iter_mut())
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

pub(super) fn record_metrics(m: &Metrics, r: &PassReport) {
    let mapping = r.mapping.as_str();
    let outcome = r.outcome().label();
    m.inc(
        "jgr_passes_total",
        "Reconcile passes, by mapping, kind and outcome.",
        &[
            ("mapping", mapping),
            ("kind", r.kind.label()),
            ("outcome", outcome),
        ],
        1.0,
    );
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
            &[("mapping", mapping), ("kind", kind)],
            n as f64,
        );
    }
    m.set(
        "jgr_pass_duration_seconds",
        "Duration of the last pass, by mapping.",
        &[("mapping", mapping)],
        r.duration.as_secs_f64(),
    );
    m.set(
        "jgr_pass_cpu_seconds",
        "CPU time the process spent during the last pass, by mapping.",
        &[("mapping", mapping)],
        r.cpu.as_secs_f64(),
    );
    m.set(
        "jgr_needs_person",
        "1 when the mapping's last pass failed on something only a person can fix (a rejected token, a role too low, a missing project), by mapping.",
        &[("mapping", mapping)],
        if r.needs_user { 1.0 } else { 0.0 },
    );
    if r.ok() {
        m.set(
            "jgr_last_success_timestamp_seconds",
            "Unix time of the last successful pass, by mapping.",
            &[("mapping", mapping)],
            Utc::now().timestamp() as f64,
        );
    }
    if let Some(cp) = r.checkpoint {
        m.set(
            "jgr_checkpoint_timestamp_seconds",
            "The mapping's checkpoint (newest Jira `updated` mirrored), Unix time.",
            &[("mapping", mapping)],
            cp.timestamp() as f64,
        );
    }
}
