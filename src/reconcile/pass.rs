//! One mapping's pass, phase by phase (see the documentation of `reconcile`): where it starts,
//! reading Jira page by page, settling the issues that left, then finishing: creates without
//! a reliable answer looked up, and the checkpoint moved if everything succeeded.

use std::sync::atomic::AtomicBool;

use chrono::{DateTime, Utc};

use super::observe::{GitlabView, Start};
use super::outcome::{Failure, Outcome, Tally};
use super::scope::Scope;
use super::{Mode, PassReport, Reconciler, Target};
use crate::config::Mapping;
use crate::domain::{JiraId, PassKind};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::store::Store;

/// How far a pass read: the newest Jira `updated` it saw (where the checkpoint moves on
/// success), and Jira's clock as its search answers told it (the latest: the checkpoint never
/// passes it).
#[derive(Default)]
pub(super) struct Horizon {
    pub newest: Option<DateTime<Utc>>,
    pub server_clock: Option<DateTime<Utc>>,
}

/// One mapping's pass while it reads Jira: where it started, the GitLab side as far as it
/// knows it, and what it did so far.
pub(super) struct Walk<'w, 's> {
    pub mode: Mode<'s>,
    pub target: &'w Target<'w>,
    pub start: Start,
    pub view: GitlabView<'s>,
    pub progress: Progress,
    pub tally: Tally,
    pub horizon: Horizon,
}

impl Reconciler {
    /// The phases of one mapping's pass.
    pub(super) async fn run(
        &self,
        mode: Mode<'_>,
        mapping: &Mapping,
        scope: Scope<'_>,
    ) -> Result<PassReport> {
        let target = self.target(mode, mapping).await?;
        let start = self.start(&target, scope.kind(), mode.store())?;
        tracing::Span::current().record("kind", start.kind.label());
        if start.kind == PassKind::Targeted && !start.checkpoint.reconciled() {
            // Never reconciled: the first polled pass reads the GitLab project for markers
            // before anything is created; an event must not get ahead of it.
            tracing::info!("not reconciled yet; the event waits for the first scheduled pass");
            return Ok(PassReport::started(&target.name, &start));
        }
        // The status board's lists exist before any mirror gets their labels.
        let board = self.keep_status_board(mode, &target, start.kind).await;
        // A dry run without a state database lists the project into a scratch one: a listing
        // never lives in memory.
        let scratch = match mode.store() {
            None if start.needs_scan() => Some(Store::scratch()?),
            _ => None,
        };
        let view = match mode.store().or(scratch.as_ref()) {
            Some(db) if start.needs_scan() => self.scan_project(db, &target).await?,
            _ => GitlabView::default(),
        };
        let mut report = PassReport::started(&target.name, &start);
        let mut walk = Walk {
            mode,
            progress: Progress::new(target.name.as_str()),
            target: &target,
            start,
            view,
            tally: Tally::default(),
            horizon: Horizon::default(),
        };
        walk.tally.notes = std::mem::take(&mut walk.view.notes);
        walk.tally += board;
        self.prepare(&mut walk)?;
        let broke_off = self.read_jira(&mut walk, scope).await?;
        // The listing is forgotten now: a second look for lost creates lists the project again.
        let Walk {
            start,
            tally,
            horizon,
            view,
            ..
        } = walk;
        drop(view);
        report.tally = tally;
        match broke_off.filter(|e| e.cause() != crate::cause::Cause::Stopped) {
            Some(e) => Ok(self.broken_off(mode, mapping, report, e)),
            None => self.finish(mode, &target, &start, horizon, report).await,
        }
    }

    /// The mapping a pass works on, with its GitLab project.
    async fn target<'m>(&self, mode: Mode<'_>, mapping: &'m Mapping) -> Result<Target<'m>> {
        Ok(Target {
            mapping,
            name: mapping.id(),
            project: self.project(mode, mapping).await?,
            siblings: self.siblings(mapping),
            rules: self.cfg.rules(mapping),
            backdate_checked: AtomicBool::new(false),
            board: Default::default(),
            fields: self.issue_fields(mode, mapping).await?,
            milestones: Default::default(),
            version_starts: Default::default(),
            people: Default::default(),
        })
    }

    /// Before Jira is read: creates an earlier run left unconfirmed and the scan found are
    /// adopted, and a full pass over a mapping that had mirrors notes which ones its search
    /// returns (only such a mapping, not a backfill, can have lost some: `deleted`).
    fn prepare(&self, walk: &mut Walk<'_, '_>) -> Result<()> {
        if let Mode::Apply(store) = walk.mode {
            walk.tally +=
                self.adopt_earlier_creates(store, walk.target, &walk.view, &mut walk.start)?;
        }
        if let (PassKind::Full, Some(store)) = (walk.start.kind, walk.mode.store()) {
            walk.start.track_seen = store.mirrors().any(&walk.target.name)?;
            if walk.start.track_seen {
                store.seen().begin(&walk.target.name)?;
            }
        }
        Ok(())
    }

    /// Search Jira page by page, then settle the issues that left: the error that broke the
    /// pass off part-way, if one did (Jira or GitLab kept failing). What earlier batches did
    /// was done and committed: it stays in the tally and the history.
    async fn read_jira(&self, walk: &mut Walk<'_, '_>, scope: Scope<'_>) -> Result<Option<Error>> {
        // Ids events named that Jira no longer has (deleted, or invisible to the account).
        let mut vanished: Vec<JiraId> = Vec::new();
        let mut broke_off = self.search(walk, scope, &mut vanished).await.err();
        if !vanished.is_empty() && broke_off.is_none() {
            let settled = self
                .settle_vanished(walk.mode, walk.target, &mut walk.view, &vanished)
                .await;
            broke_off = walk.add(settled);
        }
        walk.progress.finish();
        if let (true, Some(store)) = (walk.start.track_seen, walk.mode.store()) {
            // On a full pass: the mapping's mirrors the search did not return (deleted,
            // invisible, moved, filtered out) are read by id and handled by its policy.
            if broke_off.is_none() && !self.stopping() {
                let settled = self
                    .settle_missing(walk.mode, walk.target, &mut walk.view)
                    .await;
                broke_off = walk.add(settled);
            }
            store.seen().end(&walk.target.name)?;
        }
        Ok(broke_off)
    }

    /// Every search of the scope, page by page. An `id in (...)` search naming an id Jira does
    /// not have is refused whole: it runs again without it, and the id goes to `vanished`.
    async fn search(
        &self,
        walk: &mut Walk<'_, '_>,
        scope: Scope<'_>,
        vanished: &mut Vec<JiraId>,
    ) -> Result<()> {
        for mut search in self.searches(walk.target, &walk.start, scope) {
            loop {
                tracing::debug!(jql = %search.jql, "searching Jira");
                let mut pages = self
                    .jira
                    .pages_reconciling(&search.jql, &search.reconcile)
                    .asking(&walk.target.fields);
                let Err(e) = self.work_pages(walk, &mut pages).await else {
                    break;
                };
                let gone = search.without_missing(&e).ok_or(e)?;
                vanished.extend(gone);
                if search.reconcile.is_empty() {
                    break;
                }
            }
            if self.stopping() {
                break;
            }
        }
        Ok(())
    }

    /// A pass that broke off: unconfirmed creates keep their intents (the next pass looks them
    /// up by marker), and the checkpoint stays.
    fn broken_off(
        &self,
        mode: Mode<'_>,
        mapping: &Mapping,
        mut report: PassReport,
        e: Error,
    ) -> PassReport {
        if e.is_gitlab_refusal() || report.gitlab_refused() {
            self.forget_project(mode, mapping);
        }
        report.tally += Outcome::Failed(Failure::Pass(e));
        report
    }

    /// After Jira was read: creates without a reliable answer are looked up by marker,
    /// unconfirmed creates whose Jira issue left are forgotten, and the checkpoint moves if
    /// every action succeeded (a stop that cut the pass short keeps it too).
    async fn finish(
        &self,
        mode: Mode<'_>,
        target: &Target<'_>,
        start: &Start,
        horizon: Horizon,
        mut report: PassReport,
    ) -> Result<PassReport> {
        report.stopped = self.stopping();
        let Mode::Apply(store) = mode else {
            return Ok(report);
        };
        let lost = std::mem::take(&mut report.tally.unanswered);
        report.tally += self.recover_lost_creates(store, target, lost).await?;
        if report.gitlab_refused() {
            self.forget_project(mode, target.mapping);
        }
        if start.kind == PassKind::Full && !self.stopping() {
            self.forget_creates_that_left(store, target, start)?;
        }
        report.stopped |= self.stopping();
        let newest = match horizon.newest {
            Some(n) if start.kind != PassKind::Targeted && report.ok() => {
                Some(self.within_server_clock(n, horizon.server_clock).await)
            }
            other => other,
        };
        report.checkpoint = self.commit(store, target, start, newest, &report)?;
        Ok(report)
    }

    /// `newest`, but never past Jira's own clock: an issue whose `updated` lies in the future
    /// (imported data) must not become the checkpoint, or incremental passes would miss every
    /// later change. The clock is the search answers' `Date`, else `serverInfo`, else ours.
    async fn within_server_clock(
        &self,
        newest: DateTime<Utc>,
        seen: Option<DateTime<Utc>>,
    ) -> DateTime<Utc> {
        let clock = match seen {
            Some(clock) => clock,
            None => match self.jira.server_time().await {
                Ok(Some(clock)) => clock,
                _ => Utc::now(),
            },
        };
        if newest > clock {
            tracing::warn!(
                newest = %newest.to_rfc3339(),
                jira_clock = %clock.to_rfc3339(),
                "an issue's `updated` lies after Jira's own clock (imported data?); the checkpoint \
                 stays at the clock, so later changes are still found"
            );
            return clock;
        }
        newest
    }

    /// Move the checkpoint to the newest Jira `updated` this pass saw, only if every action
    /// succeeded: a failure keeps the window open so the next pass retries it.
    fn commit(
        &self,
        store: &Store,
        target: &Target<'_>,
        start: &Start,
        newest: Option<DateTime<Utc>>,
        report: &PassReport,
    ) -> Result<Option<DateTime<Utc>>> {
        let before = start.checkpoint.at();
        if start.kind == PassKind::Targeted {
            // An event-triggered pass saw only some issues: the window stays the polls'.
            return Ok(before);
        }
        match newest {
            Some(newest) if report.ok() => {
                store.checkpoints().advance(&target.name, newest)?;
                Ok(Some(before.map_or(newest, |c| c.max(newest))))
            }
            // Nothing to mirror yet (an empty project): events for it may now be applied.
            None if report.ok() => {
                store.checkpoints().mark_reconciled(&target.name)?;
                Ok(before)
            }
            _ => Ok(before),
        }
    }
}

impl Walk<'_, '_> {
    /// Add what a phase did; its error, if it failed.
    fn add(&mut self, done: Result<Tally>) -> Option<Error> {
        match done {
            Ok(tally) => {
                self.tally += tally;
                None
            }
            Err(e) => Some(e),
        }
    }
}
