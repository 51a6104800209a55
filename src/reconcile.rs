//! A reconcile pass: for each mapping, the phases
//!
//! 1. `observe` — the Jira window since the checkpoint (or everything), the stored mirrors and
//!    the GitLab issues they point at (the whole project when markers must be read);
//!    On a full pass, mirrors whose Jira issue the search no longer returns are read by id
//!    (`deleted`: deleted, invisible, moved, filtered out);
//! 2. `adopt_earlier_creates` — creates an earlier run recorded but never confirmed, found by
//!    their marker; `record_facts` — what Jira said about each issue, for `report` (the only
//!    store writes before planning);
//! 3. `plan` — pure: what is → the actions that make GitLab agree with Jira. When the plan
//!    wants changelogs (status transition times, earlier summaries), `read_history` fetches
//!    just those and the plan is made again;
//! 4. `apply` — the only code that writes to GitLab, intent before every create;
//! 5. `recover_lost_creates` — creates that got no reliable answer are looked up by marker
//!    instead of being sent again;
//! 6. `commit` — the checkpoint moves only if every action succeeded.
//!
//! Each phase returns what it found or did; the report is assembled from those values.

mod apply;
mod deleted;
mod facts;
mod fields;
mod history;
mod observe;
mod recipe;
mod report;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::Instrument;

use crate::config::{Config, Mapping};
use crate::domain::{JiraIssue, PassKind, PassOutcome};
use crate::error::Result;
use crate::gitlab::{GitlabClient, Project};
use crate::jira::JiraClient;
use crate::lock::InstanceLock;
use crate::metrics::Metrics;
use crate::plan::{plan, Action, PlanInput, Rules};
use crate::store::Store;

use apply::Applied;
use observe::Observation;
pub use report::PassReport;

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
    stopping: Arc<AtomicBool>,
    /// Labels known to exist, by GitLab project id (listed once per process).
    known_labels: std::sync::Mutex<std::collections::HashMap<u64, HashSet<String>>>,
}

/// The mapping a pass works on, with the GitLab project it resolved to.
struct Target<'a> {
    mapping: &'a Mapping,
    name: String,
    project: Project,
    rules: Rules,
}

impl Reconciler {
    pub fn new(cfg: Config, metrics: Arc<Metrics>) -> Result<Self> {
        let jira = cfg.jira_client(Some(metrics.clone()))?;
        let gitlab = cfg.gitlab_client(Some(metrics.clone()))?;
        Ok(Reconciler {
            cfg,
            jira,
            gitlab,
            metrics,
            stopping: Arc::new(AtomicBool::new(false)),
            known_labels: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Share a stop flag (the service's, set on SIGTERM) instead of this reconciler's own.
    pub fn with_stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stopping = flag;
        self
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

    /// Set when the service is asked to stop: the write in flight finishes and is recorded,
    /// no further action starts.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stopping.clone()
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
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
        let _lock = InstanceLock::acquire(store.path(), lock_wait).await?;
        let abandoned = store.close_abandoned_passes()?;
        if abandoned > 0 {
            tracing::warn!(
                passes = abandoned,
                "found passes interrupted by an earlier crash; this pass redoes their work"
            );
        }
        Ok(self.pass(Mode::Apply(store), kind).await)
    }

    /// One pass over every mapping. A failing mapping does not stop the others.
    pub async fn pass(&self, mode: Mode<'_>, kind: PassKind) -> Vec<PassReport> {
        let mut reports = Vec::with_capacity(self.cfg.mappings.len());
        for mapping in &self.cfg.mappings {
            if self.stopping() {
                break;
            }
            reports.push(self.pass_mapping(mode, mapping, kind).await);
        }
        reports
    }

    /// One mapping's pass, in its own log span, recorded in the pass history and the metrics.
    pub async fn pass_mapping(
        &self,
        mode: Mode<'_>,
        mapping: &Mapping,
        kind: PassKind,
    ) -> PassReport {
        let name = mapping.name();
        let span = tracing::info_span!("pass", mapping = %name, kind = %kind);
        async {
            let started = Instant::now();
            let history = match mode {
                Mode::Apply(store) => match store.begin_pass(&name, kind) {
                    Ok(id) => Some((store, id)),
                    Err(e) => return PassReport::failed(&name, kind, &e),
                },
                Mode::DryRun(_) => None,
            };
            let mut report = match self.run(mode, mapping, kind).await {
                Ok(report) => report,
                Err(e) => PassReport::failed(&name, kind, &e),
            };
            report.counts.failed = report.failures.len() as u64;
            report.duration = started.elapsed();
            if let Some((store, id)) = history {
                let outcome = if report.ok() {
                    PassOutcome::Ok
                } else {
                    PassOutcome::Failed
                };
                let error = report.failures.first().map(String::as_str);
                if let Err(e) = store.finish_pass(id, outcome, &report.counts, error) {
                    report.failures.push(e.report());
                }
                report::record_metrics(&self.metrics, &report);
            }
            report
        }
        .instrument(span)
        .await
    }

    /// The phases of one mapping's pass (see the module documentation).
    async fn run(
        &self,
        mode: Mode<'_>,
        mapping: &Mapping,
        requested: PassKind,
    ) -> Result<PassReport> {
        let project = self.gitlab.project(&mapping.gitlab_project).await?;
        let target = Target {
            mapping,
            name: mapping.name(),
            rules: self.cfg.rules(mapping),
            project,
        };
        let mut seen = self.observe(&target, requested, mode.store()).await?;
        let mut report = PassReport::observed(&target.name, &seen);
        if let Mode::Apply(store) = mode {
            report.counts.adopted += self.adopt_earlier_creates(store, &target, &mut seen)?;
            self.record_facts(store, &target, &seen)?;
        }
        let mut planned = plan(&seen.plan_input(self.jira.base_url(), &target));
        if !planned.wants_history.is_empty() {
            let writable = matches!(mode, Mode::Apply(_))
                .then(|| mode.store())
                .flatten();
            seen.history = self
                .read_history(writable, &target, &planned.wants_history)
                .await?;
            planned = plan(&seen.plan_input(self.jira.base_url(), &target));
        }
        report.recipe = planned.recipe;
        report.counts.unchanged = planned.unchanged;
        report.notes.extend(planned.notes);
        let store = match mode {
            Mode::DryRun(_) => {
                report.planned = planned.actions.iter().map(Action::describe).collect();
                return Ok(report);
            }
            Mode::Apply(store) => store,
        };
        let applied = self.apply(store, &target, &planned.actions, false).await?;
        let applied = self
            .recover_lost_creates(store, &target, &seen, applied)
            .await?;
        report.absorb(applied);
        if self.stopping() && report.ok() {
            report.failures.push(
                "stopped by a signal before the pass finished; the next pass continues".into(),
            );
        }
        report.checkpoint = self.commit(store, &target, &seen, &report)?;
        Ok(report)
    }

    /// Creates whose answer was lost are looked up by their marker before anything is created
    /// again: the project is listed once more and only those issues are planned and applied.
    async fn recover_lost_creates(
        &self,
        store: &Store,
        target: &Target<'_>,
        seen: &Observation,
        mut applied: Applied,
    ) -> Result<Applied> {
        if applied.ambiguous.is_empty() || self.stopping() {
            return Ok(applied);
        }
        tracing::warn!(
            count = applied.ambiguous.len(),
            "creates without a reliable answer; looking them up by marker"
        );
        let lost: Vec<JiraIssue> = seen
            .jira
            .iter()
            .filter(|j| applied.ambiguous.contains(&j.id))
            .cloned()
            .collect();
        let keys: HashSet<&str> = lost.iter().map(|j| j.key.as_str()).collect();
        let view = self.scan_project(&target.project).await?;
        let mirrors = self.mirrors(store, target.mapping)?;
        let no_history = std::collections::HashMap::new();
        let planned = plan(&PlanInput {
            jira: &lost,
            mirrors: &mirrors,
            gitlab: &view.issues,
            by_marker: &view.by_marker,
            jira_base_url: self.jira.base_url(),
            rules: &target.rules,
            backdate: target.project.can_backdate(),
            history: &no_history,
            missing: &[],
        });
        let second = self.apply(store, target, &planned.actions, true).await?;
        // The second look decides for the issues it covered.
        applied
            .failures
            .retain(|key, _| !keys.contains(key.as_str()));
        applied.notes.extend(view.notes);
        applied.absorb(second);
        Ok(applied)
    }

    /// Move the checkpoint to the newest Jira `updated` this pass saw, only if every action
    /// succeeded: a failure keeps the window open so the next pass retries it.
    fn commit(
        &self,
        store: &Store,
        target: &Target<'_>,
        seen: &Observation,
        report: &PassReport,
    ) -> Result<Option<DateTime<Utc>>> {
        match seen.newest {
            Some(newest) if report.ok() => {
                store.advance_checkpoint(&target.name, newest)?;
                Ok(Some(seen.checkpoint.map_or(newest, |c| c.max(newest))))
            }
            _ => Ok(seen.checkpoint),
        }
    }

    /// The stored mirrors of this mapping and of the mappings that feed the same GitLab
    /// project (an issue moved in Jira between them keeps its GitLab issue).
    fn mirrors(
        &self,
        store: &Store,
        mapping: &Mapping,
    ) -> Result<std::collections::HashMap<String, crate::domain::Mirror>> {
        let siblings: Vec<String> = self
            .cfg
            .mappings
            .iter()
            .filter(|m| m.gitlab_project == mapping.gitlab_project)
            .map(Mapping::name)
            .collect();
        store.mirrors_with_siblings(&mapping.name(), &siblings)
    }
}
