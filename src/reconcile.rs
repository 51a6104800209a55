//! A reconcile pass: for each mapping, the phases
//!
//! 1. `observe` — where the pass starts (checkpoint, kind, unconfirmed creates), the GitLab
//!    project (from the state database's cache), and the whole project's issues when markers
//!    must be read (a first or full pass, or a create an earlier run never confirmed), listed
//!    page by page into the state database (`store/listing.rs`), never held in memory;
//! 2. `adopt_earlier_creates` — creates an earlier run recorded but never confirmed, found by
//!    their marker;
//! 3. then page by page, as Jira's search returns them (the next page is fetched while this one
//!    is worked on, and memory holds one page, not the project): the stored mirrors, the
//!    GitLab issues of the page (read by iid, or from the listing; and the Automation recipe's
//!    slots, `recipe`), what the store knows of the page's Jira facts (`facts`, for `report`),
//!    `plan` (pure; when it wants changelogs, `history` fetches just those and the page is
//!    planned again), and `apply`
//!    (the only code that writes to GitLab, with bounded concurrency; intents before creates,
//!    outcomes and facts in one transaction; status labels and issue types in `fields`);
//! 4. `recover_lost_creates` — creates that got no reliable answer are looked up by marker
//!    instead of being sent again;
//! 5. on a full pass, `deleted` — the mapping's mirrors the search did not return are read by
//!    id (deleted, invisible, moved, filtered out) and handled by the mapping's policy;
//! 6. `commit` — the checkpoint moves only if every action succeeded.

mod apply;
mod deleted;
mod facts;
mod fields;
mod history;
mod observe;
mod recipe;
mod report;

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use futures_util::FutureExt;
use tracing::Instrument;

use crate::config::{Config, Mapping};
use crate::domain::{IssueHistory, JiraId, JiraIssue, JiraKey, MappingId, PassKind};
use crate::error::Result;
use crate::gitlab::{GitlabClient, Project};
use crate::jira::{JiraClient, Pages, SearchPage};
use crate::lock::InstanceLock;
use crate::metrics::Metrics;
use crate::plan::{plan, Action, Plan, Rules};
use crate::progress::Progress;
use crate::stop::Stop;
use crate::store::{PageWrite, Store};

use apply::Applied;
use observe::{GitlabView, PageView, Start};
pub use report::PassReport;

/// Jira issues worked on together: one GitLab read by iid (`iids[]`, at most 100) covers them.
const BATCH: usize = crate::gitlab::PAGE;

/// Whether a pass may write.
#[derive(Clone, Copy)]
pub enum Mode<'a> {
    /// Plan only: read the state database if there is one, write nothing anywhere.
    DryRun(Option<&'a Store>),
    /// Apply the plan to GitLab and record it in the state database.
    Apply(&'a Store),
}

impl<'a> Mode<'a> {
    fn store(self) -> Option<&'a Store> {
        match self {
            Mode::DryRun(store) => store,
            Mode::Apply(store) => Some(store),
        }
    }
}

pub struct Reconciler {
    cfg: Config,
    jira: JiraClient,
    gitlab: GitlabClient,
    metrics: Arc<Metrics>,
    stop: Stop,
    /// Labels known to exist, by GitLab project id (listed once per process). Mappings into
    /// different projects run side by side: the lock is never held across a request.
    known_labels: std::sync::Mutex<HashMap<u64, HashSet<String>>>,
}

/// The mapping a pass works on, with the GitLab project it resolved to.
struct Target<'a> {
    mapping: &'a Mapping,
    name: MappingId,
    project: Project,
    /// Mappings that feed the same GitLab project (this one included).
    siblings: Vec<MappingId>,
    /// The mapping's rules beyond title and state (recipe, status labels, types, gone issues).
    rules: Rules,
    /// Warn once per pass when GitLab ignores `created_at`.
    backdate_checked: AtomicBool,
}

impl Reconciler {
    pub fn new(cfg: Config, metrics: Arc<Metrics>) -> Result<Self> {
        Reconciler::with_stop(cfg, metrics, Stop::new())
    }

    /// A reconciler whose waits end when `stop` is requested (the service's, on SIGTERM).
    pub fn with_stop(cfg: Config, metrics: Arc<Metrics>, stop: Stop) -> Result<Self> {
        let (jira, gitlab) = cfg.clients(Some(metrics.clone()), &stop)?;
        Ok(Reconciler {
            cfg,
            jira,
            gitlab,
            metrics,
            stop,
            known_labels: std::sync::Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn jira(&self) -> &JiraClient {
        &self.jira
    }
    pub fn gitlab(&self) -> &GitlabClient {
        &self.gitlab
    }

    /// Requested when the service is asked to stop: the writes in flight finish and are
    /// recorded, no further action starts, and every wait ends at once.
    pub fn stop(&self) -> &Stop {
        &self.stop
    }

    fn stopping(&self) -> bool {
        self.stop.requested()
    }

    /// The one way a pass runs for real, for `reconcile` and the service alike: take the state
    /// database's lock (waiting up to `lock_wait` for another instance's pass), mark the
    /// passes a crashed process left running, then pass over every mapping.
    pub async fn exclusive_pass(
        &self,
        store: &Store,
        kind: PassKind,
        lock_wait: Duration,
    ) -> Result<Vec<PassReport>> {
        let _lock = InstanceLock::acquire(store.path(), lock_wait, &self.stop).await?;
        let abandoned = store.passes().close_abandoned()?;
        if abandoned > 0 {
            tracing::warn!(
                passes = abandoned,
                "found passes interrupted by an earlier crash; this pass redoes their work"
            );
        }
        Ok(self.pass(Mode::Apply(store), kind).await)
    }

    /// A pass over just these Jira issues (ids from webhook events), under the same lock and
    /// rules as every pass. It never moves a checkpoint: the polls do.
    pub async fn targeted_pass(
        &self,
        store: &Store,
        ids: &[JiraId],
        projects: Option<&HashSet<String>>,
        lock_wait: Duration,
    ) -> Result<Vec<PassReport>> {
        let _lock = InstanceLock::acquire(store.path(), lock_wait, &self.stop).await?;
        let scope = Scope::Ids { ids, projects };
        Ok(self.pass_scope(Mode::Apply(store), scope).await)
    }

    /// One pass over every mapping. Mappings that feed different GitLab projects run side by
    /// side (GitLab's requests stay bounded by `gitlab.concurrency` in total); mappings into
    /// one project run one after the other, so an issue moved between them is seen once.
    /// A failing mapping does not stop the others. Reports come in the config's order.
    pub async fn pass(&self, mode: Mode<'_>, kind: PassKind) -> Vec<PassReport> {
        self.pass_scope(mode, Scope::Window(kind)).await
    }

    async fn pass_scope(&self, mode: Mode<'_>, scope: Scope<'_>) -> Vec<PassReport> {
        if let Some(store) = mode.store() {
            self.restore_pacer(store);
        }
        let mut groups: Vec<Vec<(usize, &Mapping)>> = Vec::new();
        for (i, m) in self.cfg.mappings.iter().enumerate() {
            if !scope.concerns(m) {
                continue;
            }
            match groups
                .iter_mut()
                .find(|g| g[0].1.gitlab_project == m.gitlab_project)
            {
                Some(g) => g.push((i, m)),
                None => groups.push(vec![(i, m)]),
            }
        }
        // The futures are made first and then driven a few at a time (a closure inside the
        // stream would trip rustc's `Send` inference for the service's spawned task).
        let runs: Vec<_> = groups
            .into_iter()
            .map(|group| async move {
                let mut out = Vec::with_capacity(group.len());
                for (i, mapping) in group {
                    if self.stopping() {
                        break;
                    }
                    out.push((i, self.pass_mapping_scope(mode, mapping, scope).await));
                }
                out
            })
            .collect();
        let runs = stream::iter(runs).buffer_unordered(self.cfg.gitlab.concurrency.max(1));
        let mut reports: Vec<(usize, PassReport)> = runs
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .flatten()
            .collect();
        reports.sort_by_key(|(i, _)| *i);
        if let Mode::Apply(store) = mode {
            self.save_pacer(store);
        }
        reports.into_iter().map(|(_, r)| r).collect()
    }

    /// One mapping's pass, in its own log span, recorded in the pass history and the metrics.
    pub async fn pass_mapping(
        &self,
        mode: Mode<'_>,
        mapping: &Mapping,
        kind: PassKind,
    ) -> PassReport {
        self.pass_mapping_scope(mode, mapping, Scope::Window(kind))
            .await
    }

    async fn pass_mapping_scope(
        &self,
        mode: Mode<'_>,
        mapping: &Mapping,
        scope: Scope<'_>,
    ) -> PassReport {
        let name = mapping.id();
        // A polled pass without a checkpoint runs full (see `observe`): say so from the start,
        // so a first pass that fails early is not recorded as an incremental one.
        let kind = match (scope.kind(), mode.store()) {
            (PassKind::Incremental, Some(store))
                if matches!(store.checkpoints().get(&name).map(|c| c.at()), Ok(None)) =>
            {
                PassKind::Full
            }
            (PassKind::Incremental, None) => PassKind::Full,
            (kind, _) => kind,
        };
        // `kind` is recorded once the pass knows it (a first pass runs full whatever was asked):
        // recording a field twice would print it twice.
        let span = tracing::info_span!("pass", mapping = %name, kind = tracing::field::Empty);
        async {
            let started = Instant::now();
            let cpu_before = report::process_cpu();
            let history = match mode {
                Mode::Apply(store) => match store.passes().begin(&name, kind) {
                    Ok(id) => Some((store, id)),
                    Err(e) => return PassReport::failed(&name, kind, &e),
                },
                Mode::DryRun(_) => None,
            };
            let mut report = self.run_caught(mode, mapping, scope, kind).await;
            report.counts.failed = report.failures.len() as u64;
            report.make_safe();
            report.duration = started.elapsed();
            report.cpu = report::process_cpu().saturating_sub(cpu_before);
            if let Some((store, id)) = history {
                let error = report.failures.first().map(String::as_str);
                if let Err(e) = store
                    .passes()
                    .finish(id, report.outcome(), &report.counts, error)
                {
                    report.failures.push(e.report());
                }
                report::record_metrics(&self.metrics, &report);
            }
            report
        }
        .instrument(span)
        .await
    }

    /// The mapping's phases, their error or panic made a failed report. A panic is a bug;
    /// caught here, it fails this mapping's pass (recorded, counted, logged with the mapping)
    /// instead of the process: the state it leaves is sound (locks tolerate poisoning,
    /// transactions roll back, permits are released), the other mappings go on, and the next
    /// tick retries.
    async fn run_caught(
        &self,
        mode: Mode<'_>,
        mapping: &Mapping,
        scope: Scope<'_>,
        kind: PassKind,
    ) -> PassReport {
        let run = AssertUnwindSafe(self.run(mode, mapping, scope)).catch_unwind();
        match run.await {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => {
                if e.is_gitlab_refusal() {
                    self.forget_project(mode, mapping);
                }
                PassReport::failed(&mapping.id(), kind, &e)
            }
            Err(panic) => self.panicked(&mapping.id(), kind, panic.as_ref()),
        }
    }

    fn panicked(&self, name: &MappingId, kind: PassKind, panic: &(dyn Any + Send)) -> PassReport {
        let why = crate::panic_message(panic);
        tracing::error!(mapping = %name, "the pass panicked, a bug (please report it with this log): {why}; the next pass retries");
        self.metrics.inc(
            "jgr_pass_panics_total",
            "Passes that ended in a panic (a bug), by mapping.",
            &[("mapping", name.as_str())],
            1.0,
        );
        PassReport::failed_with(name, kind, format!("the pass panicked (a bug): {why}"))
    }

    /// The phases of one mapping's pass (see the module documentation).
    async fn run(&self, mode: Mode<'_>, mapping: &Mapping, scope: Scope<'_>) -> Result<PassReport> {
        let target = Target {
            mapping,
            name: mapping.id(),
            project: self.project(mode, mapping).await?,
            siblings: self.siblings(mapping),
            rules: self.cfg.rules(mapping),
            backdate_checked: AtomicBool::new(false),
        };
        let mut start = self.start(&target, scope.kind(), mode.store())?;
        tracing::Span::current().record("kind", start.kind.label());
        if start.kind == PassKind::Targeted && !start.checkpoint.reconciled() {
            // Never reconciled: the first polled pass reads the GitLab project for markers
            // before anything is created; an event must not get ahead of it.
            tracing::info!("not reconciled yet; the event waits for the first scheduled pass");
            return Ok(PassReport::started(
                &target.name,
                &start,
                &GitlabView::default(),
            ));
        }
        // A dry run without a state database lists the project into a scratch one: a listing
        // never lives in memory.
        let scratch = match mode.store() {
            None if start.needs_scan() => Some(Store::scratch()?),
            _ => None,
        };
        let mut view = match mode.store().or(scratch.as_ref()) {
            Some(db) if start.needs_scan() => self.scan_project(db, &target).await?,
            _ => GitlabView::default(),
        };
        let mut report = PassReport::started(&target.name, &start, &view);
        if let Mode::Apply(store) = mode {
            report.counts.adopted +=
                self.adopt_earlier_creates(store, &target, &view, &mut start)?;
        }
        if let (PassKind::Full, Some(store)) = (start.kind, mode.store()) {
            // Which mirrors the search returns, for the issues that left (`deleted`). Only a
            // mapping that had mirrors before this pass (not a backfill) can have lost some.
            start.track_seen = store.mirrors().any(&target.name)?;
            if start.track_seen {
                store.seen().begin(&target.name)?;
            }
        }

        let mut work = Worked::default();
        let mut progress = Progress::new(target.name.as_str());
        // A failure part-way (Jira or GitLab kept failing) ends the pass, but what earlier
        // batches did was done and committed: it stays in the report and the history.
        let mut broke_off = None;
        // Ids events named that Jira no longer has (deleted, or invisible to the account).
        let mut vanished: Vec<JiraId> = Vec::new();
        'searches: for mut search in self.searches(&target, &start, scope) {
            loop {
                tracing::debug!(jql = %search.jql, "searching Jira");
                let mut pages = self.jira.pages_reconciling(&search.jql, &search.reconcile);
                let worked = self
                    .work_pages(
                        mode,
                        &target,
                        &mut start,
                        &mut view,
                        &mut pages,
                        &mut progress,
                        &mut work,
                    )
                    .await;
                match worked {
                    Ok(()) => break,
                    // `id in (...)` naming an id Jira does not have is refused whole: search
                    // again without it, and handle it as gone below.
                    Err(e) => match search.without_missing(&e) {
                        Some(gone) => {
                            vanished.extend(gone);
                            if search.reconcile.is_empty() {
                                break;
                            }
                        }
                        None => {
                            broke_off = Some(e);
                            break 'searches;
                        }
                    },
                }
            }
            if self.stopping() {
                break;
            }
        }
        if !vanished.is_empty() && broke_off.is_none() {
            match self
                .settle_vanished(mode, &target, &mut view, &vanished)
                .await
            {
                Ok(gone) => gone.add_to(&mut work),
                Err(e) => broke_off = Some(e),
            }
        }
        progress.finish();
        if let (true, Some(store)) = (start.track_seen, mode.store()) {
            // On a full pass: the mapping's mirrors the search did not return (deleted,
            // invisible, moved, filtered out) are read by id and handled by its policy.
            if broke_off.is_none() && !self.stopping() {
                match self.settle_missing(mode, &target, &mut view).await {
                    Ok(left) => left.add_to(&mut work),
                    Err(e) => broke_off = Some(e),
                }
            }
            store.seen().end(&target.name)?;
        }
        // The listing is forgotten now: a second look for lost creates lists the project again.
        drop(view);
        report.counts.jira_seen += work.jira_seen;
        report.counts.unchanged += work.unchanged;
        report.notes.append(&mut work.notes);
        report.planned.append(&mut work.planned);
        report.recipe.adopted += work.recipe.adopted;
        report.recipe.foreign += work.recipe.foreign;
        let mut applied = work.applied;
        if let Some(e) = broke_off.filter(|e| e.cause() != crate::cause::Cause::Stopped) {
            if e.is_gitlab_refusal() || applied.gitlab_refused {
                self.forget_project(mode, mapping);
            }
            report.absorb(applied);
            report.needs_user |= e.needs_user();
            report.failures.push(e.report());
            // Unconfirmed creates keep their intents: the next pass looks them up by marker.
            return Ok(report);
        }
        report.stopped = self.stopping();
        let Mode::Apply(store) = mode else {
            return Ok(report);
        };
        let lost = std::mem::take(&mut applied.lost);
        let applied = self
            .recover_lost_creates(store, &target, &lost, applied)
            .await?;
        if applied.gitlab_refused {
            self.forget_project(mode, mapping);
        }
        report.absorb(applied);
        if start.kind == PassKind::Full && !self.stopping() {
            self.forget_creates_that_left(store, &target, &start)?;
        }
        // A stop may have cut the pass short: the checkpoint stays (commit needs `ok`).
        report.stopped |= self.stopping();
        let newest = match work.newest {
            Some(n) if start.kind != PassKind::Targeted && report.ok() => {
                Some(self.within_server_clock(n, work.server_clock).await)
            }
            other => other,
        };
        report.checkpoint = self.commit(store, &target, &start, newest, &report)?;
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

    /// The Jira searches of a pass: the mapping's window (everything on a full pass), or its
    /// issues among the ids events named, 50 at a time (with Cloud's `reconcileIssues`, so the
    /// search sees the write that caused the event however far its index lags).
    fn searches(&self, target: &Target<'_>, start: &Start, scope: Scope<'_>) -> Vec<Search> {
        match scope {
            Scope::Window(_) => vec![Search {
                jql: target.mapping.search_filter(start.since(self.cfg.overlap)),
                reconcile: Vec::new(),
                filter: None,
            }],
            Scope::Ids { ids, .. } => ids
                .chunks(crate::jira::MAX_RECONCILE_IDS)
                .map(|chunk| Search::of_ids(target.mapping.search_filter(None), chunk.to_vec()))
                .filter(|s| !s.reconcile.is_empty())
                .collect(),
        }
    }

    /// Read one search page by page and work it in batches of one GitLab read's worth.
    #[allow(clippy::too_many_arguments)]
    async fn work_pages(
        &self,
        mode: Mode<'_>,
        target: &Target<'_>,
        start: &mut Start,
        view: &mut GitlabView<'_>,
        pages: &mut Pages<'_>,
        progress: &mut Progress,
        work: &mut Worked,
    ) -> Result<()> {
        let mut next: Option<SearchPage> = None;
        let mut exhausted = false;
        let mut first = true;
        let mut batch = SearchPage::default();
        loop {
            // Gather pages until one GitLab read's worth of issues (pages can be short: Jira
            // decides their size).
            while batch.issues.len() < BATCH && !exhausted {
                let page = match next.take() {
                    Some(page) => page,
                    None => match pages.next_page().await? {
                        Some(page) => page,
                        None => {
                            exhausted = true;
                            break;
                        }
                    },
                };
                if first && !page.last {
                    // Long work ahead: a total for the progress display (one request, on the
                    // passes that read everything).
                    let total = match page.total {
                        Some(t) => Some(t),
                        None if start.kind == PassKind::Full => self
                            .jira
                            .approximate_count(pages.filter())
                            .await
                            .ok()
                            .flatten(),
                        None => None,
                    };
                    if let Some(t) = total {
                        // The server's count also bounds how far its page chain may go.
                        pages.expect(t);
                    }
                    progress.set_total(total);
                }
                first = false;
                exhausted = page.last;
                work.newest = work.newest.max(page.issues.iter().map(|j| j.updated).max());
                work.server_clock = work.server_clock.max(page.server_clock);
                batch.issues.extend(page.issues);
                batch.unreadable.extend(page.unreadable);
            }
            if batch.issues.is_empty() && batch.unreadable.is_empty() {
                return Ok(());
            }
            let rest = batch.issues.split_off(batch.issues.len().min(BATCH));
            let this = std::mem::replace(
                &mut batch,
                SearchPage {
                    issues: rest,
                    ..SearchPage::default()
                },
            );
            let issues_in_batch = this.issues.len() as u64;
            // Fetch the next page while this batch is worked on.
            let (worked, fetched) = if !exhausted && next.is_none() {
                tokio::join!(
                    self.work_page(mode, target, start, view, this),
                    pages.next_page()
                )
            } else {
                (
                    self.work_page(mode, target, start, view, this).await,
                    Ok(None),
                )
            };
            let worked = worked?;
            work.jira_seen += issues_in_batch;
            worked.add_to(work);
            progress.advance(issues_in_batch);
            // The batch is recorded before a failed fetch of the next page ends the pass.
            if next.is_none() && !exhausted {
                next = fetched?;
                exhausted |= next.is_none();
            }
            if self.stopping() {
                return Ok(());
            }
        }
    }

    /// Plan one page of Jira issues against their mirrors and GitLab issues, and apply it.
    async fn work_page(
        &self,
        mode: Mode<'_>,
        target: &Target<'_>,
        start: &mut Start,
        view: &mut GitlabView<'_>,
        page: SearchPage,
    ) -> Result<PageWork> {
        let mut out = PageWork {
            notes: page
                .unreadable
                .iter()
                .map(|u| format!("{}: skipped, {}", u.key, u.reason))
                .collect(),
            ..PageWork::default()
        };
        start.saw(&page.issues);
        let recheck_applied = start.kind == PassKind::Full;
        if let (true, Some(store)) = (start.track_seen, mode.store()) {
            let ids: Vec<JiraId> = page.issues.iter().map(|j| j.id).collect();
            store.seen().note(&target.name, &ids)?;
        }
        let seen = self
            .observe_page(mode.store(), target, &page.issues, view, recheck_applied)
            .await?;
        let mut recorded = match mode {
            Mode::Apply(store) => self.page_facts(store, target, &page.issues, start.any_gone)?,
            Mode::DryRun(_) => PageWrite::default(),
        };
        let planned = self.plan_page(target, view, &seen, &mut recorded).await?;
        out.unchanged = planned.unchanged;
        out.recipe = planned.recipe;
        out.notes.extend(planned.notes.iter().cloned());
        match mode {
            Mode::DryRun(_) => {
                out.planned = planned.actions.iter().map(Action::describe).collect();
            }
            Mode::Apply(store) => {
                out.applied = Some(self.apply(store, target, planned, recorded, false).await?);
                // After every batch: a crash or kill mid-backfill keeps what the pacer knows.
                self.save_pacer(store);
            }
        }
        Ok(out)
    }

    /// Plan a page; when the plan wants changelogs (status transition times, earlier
    /// summaries), fetch just those, keep their transitions in `recorded`, and plan again.
    async fn plan_page(
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

    /// Creates whose answer was lost are looked up by their marker before anything is created
    /// again: the project is listed once more and only those issues are planned and applied.
    async fn recover_lost_creates(
        &self,
        store: &Store,
        target: &Target<'_>,
        lost: &[JiraIssue],
        mut applied: Applied,
    ) -> Result<Applied> {
        if lost.is_empty() || self.stopping() {
            return Ok(applied);
        }
        tracing::warn!(
            count = lost.len(),
            "creates without a reliable answer; looking them up by marker"
        );
        let keys: HashSet<&JiraKey> = lost.iter().map(|j| &j.key).collect();
        let mut view = self.scan_project(store, target).await?;
        let ids: Vec<JiraId> = lost.iter().map(|j| j.id).collect();
        let mirrors = store.mirrors().of(&target.name, &target.siblings, &ids)?;
        view.load_page(&target.rules, lost, &mirrors)?;
        let page = PageView {
            jira: lost,
            mirrors,
            claimed: HashSet::new(),
            missing: Vec::new(),
            recheck_applied: true,
        };
        let mut recorded = PageWrite::default();
        let planned = self.plan_page(target, &view, &page, &mut recorded).await?;
        let second = self.apply(store, target, planned, recorded, true).await?;
        // The second look decides for the issues it covered.
        applied.failures.retain(|key, _| !keys.contains(key));
        applied.notes.append(&mut view.notes);
        applied.absorb(second);
        Ok(applied)
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

    /// Mappings that feed the same GitLab project as `mapping`, itself included.
    fn siblings(&self, mapping: &Mapping) -> Vec<MappingId> {
        self.cfg
            .mappings
            .iter()
            .filter(|m| m.gitlab_project == mapping.gitlab_project)
            .map(Mapping::id)
            .collect()
    }

    /// Take over the create pacer's state as saved (by an earlier run, or by another process
    /// using the same state, such as an on-demand `reconcile` beside the service), so neither a
    /// restart nor a second process can burst past GitLab's create limit.
    fn restore_pacer(&self, store: &Store) {
        match store.cache().pacer(&self.cfg.gitlab.url) {
            Ok(Some(saved)) => self.gitlab.pacer().restore(&saved),
            Ok(None) => {}
            Err(e) => tracing::warn!(
                "the create pacer's saved state is unreadable: {}",
                e.report()
            ),
        }
    }

    fn save_pacer(&self, store: &Store) {
        let snapshot = self.gitlab.pacer().snapshot();
        if snapshot.learned.is_none() && snapshot.recent.is_empty() {
            return;
        }
        if let Err(e) = store.cache().save_pacer(&self.cfg.gitlab.url, &snapshot) {
            tracing::warn!("the create pacer's state was not saved: {}", e.report());
        }
    }
}

/// What a pass covers: the mapping's window (incremental or full), or the issues events named.
#[derive(Clone, Copy)]
enum Scope<'a> {
    Window(PassKind),
    /// The issues events named; `projects`, when known, are their Jira projects (only their
    /// mappings look).
    Ids {
        ids: &'a [JiraId],
        projects: Option<&'a HashSet<String>>,
    },
}

impl Scope<'_> {
    fn kind(self) -> PassKind {
        match self {
            Scope::Window(kind) => kind,
            Scope::Ids { .. } => PassKind::Targeted,
        }
    }

    fn concerns(self, mapping: &Mapping) -> bool {
        match self {
            Scope::Ids {
                projects: Some(projects),
                ..
            } => projects.contains(&mapping.jira_project.to_ascii_uppercase()),
            _ => true,
        }
    }
}

/// One Jira search of a pass.
struct Search {
    jql: String,
    /// Cloud's `reconcileIssues`: ids whose latest version the search must see.
    reconcile: Vec<JiraId>,
    /// For a search of ids: the mapping's filter, to search again without some of them.
    filter: Option<String>,
}

impl Search {
    /// `<filter> AND id in (ids)`, reading those ids at their latest version.
    fn of_ids(filter: String, ids: Vec<JiraId>) -> Search {
        let list: Vec<String> = ids.iter().map(JiraId::to_string).collect();
        Search {
            jql: format!("{filter} AND id in ({})", list.join(", ")),
            reconcile: ids,
            filter: Some(filter),
        }
    }

    /// After Jira refused this search of ids because some do not exist: the search without
    /// them, and which they were. `None` when the error is anything else.
    fn without_missing(&mut self, e: &crate::error::Error) -> Option<Vec<JiraId>> {
        let filter = self.filter.clone()?;
        let crate::error::Error::Api(api) = e else {
            return None;
        };
        let gone: Vec<JiraId> = crate::jira::missing_ids_in(api)
            .into_iter()
            .filter(|id| self.reconcile.contains(id))
            .collect();
        if gone.is_empty() {
            return None;
        }
        let rest: Vec<JiraId> = self
            .reconcile
            .iter()
            .copied()
            .filter(|id| !gone.contains(id))
            .collect();
        *self = Search::of_ids(filter, rest);
        Some(gone)
    }
}

/// What the searches of a pass produced, batch by batch.
#[derive(Default)]
struct Worked {
    jira_seen: u64,
    unchanged: u64,
    notes: Vec<String>,
    planned: Vec<String>,
    applied: Applied,
    /// What the Automation recipe rule found.
    recipe: crate::plan::RecipeTally,
    /// The newest Jira `updated` seen: where the checkpoint moves on success.
    newest: Option<DateTime<Utc>>,
    /// Jira's clock as its search answers told it (the latest): the checkpoint never passes it.
    server_clock: Option<DateTime<Utc>>,
}

/// What working one page produced.
#[derive(Default)]
struct PageWork {
    unchanged: u64,
    notes: Vec<String>,
    /// Dry run: the actions that would be taken.
    planned: Vec<String>,
    /// Apply: what was done.
    applied: Option<Applied>,
    /// What the Automation recipe rule found.
    recipe: crate::plan::RecipeTally,
}

impl PageWork {
    /// Add this page's results to what the pass has done so far.
    fn add_to(self, work: &mut Worked) {
        work.unchanged += self.unchanged;
        work.notes.extend(self.notes);
        work.planned.extend(self.planned);
        work.recipe.adopted += self.recipe.adopted;
        work.recipe.foreign += self.recipe.foreign;
        if let Some(page_applied) = self.applied {
            work.applied.absorb(page_applied);
        }
    }
}
