//! A reconcile pass. For each mapping (mappings into different GitLab projects side by side,
//! those into one project one after the other), the phases of `pass.rs`:
//!
//! 1. where it starts (`observe`): the checkpoint, the kind, unconfirmed creates, the GitLab
//!    project (cached in the state database), and the whole project's issues when markers
//!    must be read (a first or full pass, or a create an earlier run never confirmed), listed
//!    page by page into the state database (`store/listing.rs`), never held in memory; creates
//!    an earlier run never confirmed are adopted when the listing has them;
//! 2. Jira's search, page by page (`pages`, with `scope` saying which searches): per batch of
//!    one GitLab read's worth, the stored mirrors and GitLab issues (`observe`, with the
//!    Automation recipe's slots, `recipe`), the Jira facts for `report` (`facts`), `plan`
//!    (pure; when it wants changelogs, `history` fetches just those and the batch is planned
//!    again), and `apply`, the only code that writes to GitLab (`create`, and `fields` for
//!    status labels and issue types), with bounded concurrency: intents before creates, what
//!    was done and the facts after, in one transaction;
//! 3. the issues that left (`deleted`): on a full pass, the mapping's mirrors the search did not
//!    return, read by id and handled by the mapping's policy (and ids events named that Jira no
//!    longer has);
//! 4. the finish: creates that got no reliable answer are looked up by marker instead of being
//!    sent again (`lost`), and the checkpoint moves only if every action succeeded.
//!
//! Every action ends as an [`Outcome`]; outcomes add up with `+=` into a [`Tally`] per job,
//! batch and mapping, and the mapping's [`PassReport`] is its tally with where and when
//! (`outcome`, `report`): what `reconcile` prints, the pass history records and the metrics
//! count.

mod apply;
mod board;
mod create;
mod deleted;
mod facts;
mod fields;
mod history;
mod lost;
mod milestones;
mod observe;
mod outcome;
mod pages;
mod pass;
mod people;
mod recipe;
mod report;
mod scope;
mod wanted;

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use futures_util::FutureExt;
use tracing::Instrument;

use crate::config::{Config, Mapping};
use crate::domain::{JiraId, MappingId, PassKind};
use crate::error::Result;
use crate::gitlab::{GitlabClient, Project};
use crate::jira::{IssueFields, JiraClient};
use crate::lock::InstanceLock;
use crate::metrics::Metrics;
use crate::plan::Rules;
use crate::stop::Stop;
use crate::store::{PassId, Store};

pub use outcome::{ActionFailure, Failure, Outcome, Tally, Unanswered};
pub use report::PassReport;
use scope::Scope;

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
    /// What this pass knows of the mapping's status board (`board.rs`).
    board: std::sync::Mutex<board::BoardState>,
    /// The planning fields the mapping mirrors, which its searches ask Jira for.
    fields: IssueFields,
    /// The milestones this pass found or made, by title (`milestones.rs`).
    milestones: milestones::Known,
    /// The start dates of the Jira project's versions, by name, once read in this pass: only
    /// when a version's milestone is to be made (`milestones.rs`).
    version_starts: std::sync::Mutex<Option<HashMap<String, chrono::NaiveDate>>>,
    /// Jira assignees resolved to GitLab users in this pass, by Jira identity.
    people: std::sync::Mutex<HashMap<String, people::Resolved>>,
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
        let kind = first_kind(mode, &name, scope);
        // `kind` is recorded once the pass knows it (a first pass runs full whatever was asked):
        // recording a field twice would print it twice.
        let span = tracing::info_span!("pass", mapping = %name, kind = tracing::field::Empty);
        async {
            let started = Instant::now();
            let cpu_before = report::process_cpu();
            let history = match mode {
                Mode::Apply(store) => match store.passes().begin(&name, kind) {
                    Ok(id) => Some((store, id)),
                    Err(e) => return PassReport::failed(&name, kind, e),
                },
                Mode::DryRun(_) => None,
            };
            let mut report = self.run_caught(mode, mapping, scope, kind).await;
            report.settle();
            report.duration = started.elapsed();
            report.cpu = report::process_cpu().saturating_sub(cpu_before);
            if let Some((store, id)) = history {
                self.record(store, id, &mut report);
            }
            report
        }
        .instrument(span)
        .await
    }

    /// The pass in its history and the metrics. A history that cannot be written fails the
    /// pass (it is reported), but is not counted in what the history was to hold.
    fn record(&self, store: &Store, id: PassId, report: &mut PassReport) {
        let error = report.failures.first().map(ToString::to_string);
        let finished =
            store
                .passes()
                .finish(id, report.outcome(), &report.counts, error.as_deref());
        if let Err(e) = finished {
            report.failures.push(Failure::History(e));
        }
        report::record_metrics(&self.metrics, report);
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
                PassReport::failed(&mapping.id(), kind, e)
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
        PassReport::panicked(name, kind, why)
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

/// The kind a mapping's pass runs as: a polled pass without a checkpoint runs full (see
/// `observe`), said from the start, so a first pass that fails early is not recorded as an
/// incremental one.
fn first_kind(mode: Mode<'_>, name: &MappingId, scope: Scope<'_>) -> PassKind {
    match (scope.kind(), mode.store()) {
        (PassKind::Incremental, Some(store))
            if matches!(store.checkpoints().get(name).map(|c| c.at()), Ok(None)) =>
        {
            PassKind::Full
        }
        (PassKind::Incremental, None) => PassKind::Full,
        (kind, _) => kind,
    }
}
