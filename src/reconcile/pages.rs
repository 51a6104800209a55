//! Reading Jira's search page by page and working it in batches of one GitLab read's worth
//! (the next page is fetched while a batch is worked on, and memory holds a batch, not the
//! project): per batch, what is (`observe`), the Jira facts for `report` (`facts`), the plan
//! (pure; when it wants changelogs, `history` fetches just those and the batch is planned
//! again), and `apply`.

use std::collections::HashMap;

use super::observe::{GitlabView, PageView};
use super::outcome::{Outcome, Tally};
use super::pass::Walk;
use super::{Mode, Reconciler, Target, BATCH};
use crate::domain::{IssueHistory, JiraId, PassKind};
use crate::error::Result;
use crate::jira::{Pages, SearchPage};
use crate::plan::{plan, Plan};
use crate::store::PageWrite;

/// Jira's pages gathered into batches of one GitLab read's worth: pages can be short (Jira
/// decides their size).
struct Batches<'p, 'c> {
    pages: &'p mut Pages<'c>,
    /// A page fetched ahead, not gathered yet.
    next: Option<SearchPage>,
    exhausted: bool,
    first: bool,
    /// Issues gathered beyond the last batch.
    rest: SearchPage,
}

impl Batches<'_, '_> {
    /// Whether the next page is to be fetched while this batch is worked on.
    fn wants_next(&self) -> bool {
        !self.exhausted && self.next.is_none()
    }
}

impl Reconciler {
    /// Read one search page by page and work it in batches.
    pub(super) async fn work_pages(
        &self,
        walk: &mut Walk<'_, '_>,
        pages: &mut Pages<'_>,
    ) -> Result<()> {
        let mut batches = Batches {
            pages,
            next: None,
            exhausted: false,
            first: true,
            rest: SearchPage::default(),
        };
        while let Some(batch) = self.next_batch(walk, &mut batches).await? {
            let issues = batch.issues.len() as u64;
            let fetching = batches.wants_next();
            let (worked, fetched) = if fetching {
                tokio::join!(self.work_page(walk, batch), batches.pages.next_page())
            } else {
                (self.work_page(walk, batch).await, Ok(None))
            };
            let mut tally = worked?;
            tally.counts.jira_seen += issues;
            walk.tally += tally;
            walk.progress.advance(issues);
            // The batch is recorded before a failed fetch of the next page ends the pass.
            if fetching {
                batches.next = fetched?;
                batches.exhausted |= batches.next.is_none();
            }
            if self.stopping() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Gather pages until one GitLab read's worth of issues: the next batch, `None` when the
    /// search is done.
    async fn next_batch(
        &self,
        walk: &mut Walk<'_, '_>,
        b: &mut Batches<'_, '_>,
    ) -> Result<Option<SearchPage>> {
        while b.rest.issues.len() < BATCH && !b.exhausted {
            let page = match b.next.take() {
                Some(page) => page,
                None => match b.pages.next_page().await? {
                    Some(page) => page,
                    None => {
                        b.exhausted = true;
                        break;
                    }
                },
            };
            if b.first && !page.last {
                self.expect_long_work(walk, b.pages, &page).await;
            }
            b.first = false;
            b.exhausted = page.last;
            let h = &mut walk.horizon;
            h.newest = h.newest.max(page.issues.iter().map(|j| j.updated).max());
            h.server_clock = h.server_clock.max(page.server_clock);
            b.rest.issues.extend(page.issues);
            b.rest.unreadable.extend(page.unreadable);
        }
        if b.rest.issues.is_empty() && b.rest.unreadable.is_empty() {
            return Ok(None);
        }
        let rest = b.rest.issues.split_off(b.rest.issues.len().min(BATCH));
        let batch = SearchPage {
            issues: rest,
            ..SearchPage::default()
        };
        Ok(Some(std::mem::replace(&mut b.rest, batch)))
    }

    /// Long work ahead: a total for the progress display (one request, on the passes that read
    /// everything), which also bounds how far the search's page chain may go.
    async fn expect_long_work(
        &self,
        walk: &mut Walk<'_, '_>,
        pages: &mut Pages<'_>,
        first: &SearchPage,
    ) {
        let total = match first.total {
            Some(t) => Some(t),
            None if walk.start.kind == PassKind::Full => self
                .jira
                .approximate_count(pages.filter())
                .await
                .ok()
                .flatten(),
            None => None,
        };
        if let Some(t) = total {
            pages.expect(t);
        }
        walk.progress.set_total(total);
    }

    /// Plan one batch of Jira issues against their mirrors and GitLab issues, and apply it.
    async fn work_page(&self, walk: &mut Walk<'_, '_>, page: SearchPage) -> Result<Tally> {
        let (mode, target) = (walk.mode, walk.target);
        let mut tally = Tally {
            notes: page
                .unreadable
                .iter()
                .map(|u| format!("{}: skipped, {}", u.key, u.reason))
                .collect(),
            ..Tally::default()
        };
        walk.start.saw(&page.issues);
        if let (true, Some(store)) = (walk.start.track_seen, mode.store()) {
            let ids: Vec<JiraId> = page.issues.iter().map(|j| j.id).collect();
            store.seen().note(&target.name, &ids)?;
        }
        let recheck_applied = walk.start.kind == PassKind::Full;
        let mut seen = self
            .observe_page(
                mode.store(),
                target,
                &page.issues,
                &mut walk.view,
                recheck_applied,
            )
            .await?;
        tally.notes.append(&mut seen.notes);
        let mut recorded = match mode {
            Mode::Apply(store) => {
                self.page_facts(store, target, &page.issues, walk.start.any_gone)?
            }
            Mode::DryRun(_) => PageWrite::default(),
        };
        let planned = self
            .plan_page(target, &walk.view, &seen, &mut recorded)
            .await?;
        tally += Tally::of_plan(&planned);
        if let Mode::DryRun(_) = mode {
            let full = walk.start.kind == PassKind::Full;
            tally += self
                .plan_milestones(target, &planned.actions, &page.issues, full)
                .await;
        }
        tally += self.carry_out(mode, target, planned, recorded).await?;
        if let (Mode::Apply(_), PassKind::Full) = (mode, walk.start.kind) {
            tally += self.close_finished_milestones(target, &page.issues).await;
        }
        Ok(tally)
    }

    /// A dry run says what it would do; a real pass applies the plan and records it.
    pub(super) async fn carry_out(
        &self,
        mode: Mode<'_>,
        target: &Target<'_>,
        planned: Plan,
        recorded: PageWrite,
    ) -> Result<Tally> {
        let mut tally = Tally::default();
        match mode {
            Mode::DryRun(_) => {
                for action in &planned.actions {
                    tally += Outcome::Planned(action.describe());
                }
            }
            Mode::Apply(store) => {
                tally += self.apply(store, target, planned, recorded, false).await?;
                // After every batch: a crash or kill mid-backfill keeps what the pacer knows.
                self.save_pacer(store);
            }
        }
        Ok(tally)
    }

    /// Plan a page; when the plan wants changelogs (status transition times, earlier
    /// summaries), fetch just those, keep their transitions in `recorded`, and plan again.
    pub(super) async fn plan_page(
        &self,
        target: &Target<'_>,
        view: &GitlabView<'_>,
        page: &PageView<'_>,
        recorded: &mut PageWrite,
    ) -> Result<Plan> {
        let none = HashMap::new();
        let first = plan(&page.input(target, view, self.jira.base_url(), &none));
        if first.wants_history.is_empty() {
            return Ok(first);
        }
        let history: HashMap<JiraId, IssueHistory> =
            self.read_history(&first.wants_history).await?;
        recorded.transitions.extend(
            history
                .iter()
                .flat_map(|(id, h)| h.transitions.iter().map(move |t| (*id, t.clone()))),
        );
        Ok(plan(&page.input(
            target,
            view,
            self.jira.base_url(),
            &history,
        )))
    }
}
