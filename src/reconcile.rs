//! One reconcile pass over one mapping: read Jira (the window since the checkpoint, or
//! everything), read the matching GitLab issues, plan, apply, and move the checkpoint only if
//! every action succeeded. `apply` is the only code that writes to GitLab; it records a create's
//! intent before sending it, so a crash or a lost response never turns into a duplicate.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::config::{Config, Mapping};
use crate::domain::{GitlabIssue, JiraIssue, Mirror};
use crate::error::Result;
use crate::gitlab::{GitlabClient, Project};
use crate::jira::{mapping_filter, JiraClient};
use crate::metrics::Metrics;
use crate::plan::{plan, Action, PlanInput};

mod apply;
use crate::store::{Counts, Store};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassKind {
    /// Issues updated since the checkpoint (minus the overlap window).
    Incremental,
    /// Every issue of the mapping against everything GitLab holds: repairs drift.
    Full,
}

impl PassKind {
    pub fn label(self) -> &'static str {
        match self {
            PassKind::Incremental => "incremental",
            PassKind::Full => "full",
        }
    }
}

/// What one pass over one mapping did.
#[derive(Debug, Default)]
pub struct PassReport {
    pub mapping: String,
    pub kind: &'static str,
    pub counts: Counts,
    /// One line per action that failed, or the reason the whole pass failed.
    pub failures: Vec<String>,
    /// `--dry-run`: the actions that would be taken.
    pub planned: Vec<String>,
    pub notes: Vec<String>,
    pub checkpoint: Option<DateTime<Utc>>,
    pub duration: Duration,
    /// The pass failed on something only the user can fix (credentials, a missing project).
    pub needs_user: bool,
}

impl PassReport {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    pub fn summary(&self) -> String {
        let c = &self.counts;
        format!(
            "{}: {} pass: created {}, closed {}, reopened {}, updated {}, adopted {}, unchanged {}, failed {} ({} Jira issues read) in {:.1}s",
            self.mapping,
            self.kind,
            c.created,
            c.closed,
            c.reopened,
            c.updated,
            c.adopted,
            c.unchanged,
            c.failed,
            c.jira_seen,
            self.duration.as_secs_f64()
        )
    }
}

pub struct Reconciler {
    cfg: Config,
    jira: JiraClient,
    gitlab: GitlabClient,
    metrics: Arc<Metrics>,
    stopping: Arc<AtomicBool>,
}

/// The GitLab side as the planner needs it.
struct GitlabView {
    issues: HashMap<u64, GitlabIssue>,
    by_marker: HashMap<String, u64>,
}

impl Reconciler {
    pub fn new(cfg: Config, metrics: Arc<Metrics>) -> Result<Self> {
        let jira = JiraClient::new(&cfg.jira, cfg.retry.clone(), Some(metrics.clone()))?;
        let gitlab = GitlabClient::new(&cfg.gitlab, cfg.retry.clone(), Some(metrics.clone()))?;
        Ok(Reconciler {
            cfg,
            jira,
            gitlab,
            metrics,
            stopping: Arc::new(AtomicBool::new(false)),
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

    /// One pass over every mapping. A failing mapping does not stop the others.
    /// `store` is `None` only for a dry run without a state database yet.
    pub async fn pass(
        &self,
        store: Option<&Store>,
        kind: PassKind,
        dry_run: bool,
    ) -> Vec<PassReport> {
        let mut reports = Vec::with_capacity(self.cfg.mappings.len());
        for mapping in &self.cfg.mappings {
            if self.stopping() {
                break;
            }
            reports.push(self.pass_mapping(store, mapping, kind, dry_run).await);
        }
        reports
    }

    pub async fn pass_mapping(
        &self,
        store: Option<&Store>,
        mapping: &Mapping,
        kind: PassKind,
        dry_run: bool,
    ) -> PassReport {
        let started = Instant::now();
        let name = mapping.name();
        let mut report = PassReport {
            mapping: name.clone(),
            kind: kind.label(),
            ..PassReport::default()
        };
        let writable = store.filter(|_| !dry_run);
        let pass_id = match writable
            .map(|s| s.begin_pass(&name, kind.label()))
            .transpose()
        {
            Ok(id) => id,
            Err(e) => {
                report.failures.push(e.to_string());
                return report;
            }
        };
        if let Err(e) = self.run(store, writable, mapping, kind, &mut report).await {
            report.needs_user = e.exit_code() == 2;
            report.failures.push(e.to_string());
        }
        report.counts.failed = report.failures.len() as u64;
        report.duration = started.elapsed();
        if let (Some(s), Some(id)) = (writable, pass_id) {
            let outcome = if report.ok() { "ok" } else { "failed" };
            let error = report.failures.first().map(String::as_str);
            if let Err(e) = s.finish_pass(id, outcome, &report.counts, error) {
                report.failures.push(e.to_string());
            }
        }
        if !dry_run {
            self.record_metrics(&report);
        }
        report
    }

    async fn run(
        &self,
        store: Option<&Store>,
        writable: Option<&Store>,
        mapping: &Mapping,
        requested: PassKind,
        report: &mut PassReport,
    ) -> Result<()> {
        let name = mapping.name();
        let siblings: Vec<String> = self
            .cfg
            .mappings
            .iter()
            .filter(|m| m.gitlab_project == mapping.gitlab_project)
            .map(Mapping::name)
            .collect();
        let mut mirrors = match store {
            Some(s) => s.mirrors_with_siblings(&name, &siblings)?,
            None => HashMap::new(),
        };
        let checkpoint = store.map(|s| s.checkpoint(&name)).transpose()?.flatten();
        let pending = store
            .map(|s| s.pending_intents(&name))
            .transpose()?
            .unwrap_or(0);
        // Without a checkpoint (first pass, or a lost state file) everything is compared, and
        // GitLab is scanned for markers so that existing mirrors are adopted, not duplicated.
        let kind = if checkpoint.is_none() {
            PassKind::Full
        } else {
            requested
        };
        report.kind = kind.label();
        report.checkpoint = checkpoint;

        let project = self.gitlab.project(&mapping.gitlab_project).await?;
        let since = match kind {
            PassKind::Full => None,
            // The overlap is validated to a few days, so this cannot leave chrono's range;
            // if it did, searching everything is the safe answer.
            PassKind::Incremental => checkpoint.and_then(|c| {
                chrono::Duration::from_std(self.cfg.overlap)
                    .ok()
                    .and_then(|o| c.checked_sub_signed(o))
            }),
        };
        let jql = mapping_filter(mapping, since);
        tracing::debug!(mapping = %name, %jql, "searching Jira");
        let found = self.jira.search(&jql).await?;
        report.counts.jira_seen = found.issues.len() as u64;
        for u in &found.unreadable {
            report
                .notes
                .push(format!("{}: skipped, {}", u.key, u.reason));
        }

        let scan = kind == PassKind::Full || pending > 0;
        let mut view = if scan {
            let mut view = self.scan_project(&project, report).await?;
            self.fill_listing_gaps(&project, &found.issues, &mirrors, &mut view)
                .await?;
            if let Some(store) = writable {
                if self.settle_intents(store, &name, kind, &found.issues, &view, report)? {
                    mirrors = store.mirrors_with_siblings(&name, &siblings)?;
                }
            }
            view
        } else {
            let iids: Vec<u64> = found
                .issues
                .iter()
                .filter_map(|j| mirrors.get(&j.id).map(|m| m.iid))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            GitlabView {
                issues: by_iid(self.gitlab.issues_by_iid(project.id, &iids).await?),
                by_marker: HashMap::new(),
            }
        };

        let mut todo: Vec<JiraIssue> = found.issues;
        let newest = todo.iter().map(|j| j.updated).max();
        let mut failures: BTreeMap<String, String> = BTreeMap::new();
        // Round 2 exists only for creates whose answer was lost: the issue is looked up by its
        // marker before anything is created again.
        for round in 0..2 {
            let planned = plan(&PlanInput {
                jira: &todo,
                mirrors: &mirrors,
                gitlab: &view.issues,
                by_marker: &view.by_marker,
                jira_base_url: self.jira.base_url(),
            });
            if round == 0 {
                report.counts.unchanged = planned.unchanged;
                report.notes.extend(planned.notes.iter().cloned());
            }
            if writable.is_none() {
                report.planned = planned.actions.iter().map(Action::describe).collect();
                return Ok(());
            }
            let Some(store) = writable else { return Ok(()) };
            let ambiguous = self
                .apply(
                    store,
                    mapping,
                    &project,
                    &planned.actions,
                    round > 0,
                    report,
                    &mut failures,
                )
                .await?;
            if ambiguous.is_empty() || self.stopping() {
                break;
            }
            tracing::warn!(mapping = %name, count = ambiguous.len(), "creates without a reliable answer; looking them up by marker");
            todo.retain(|j| ambiguous.contains(&j.id));
            view = self.scan_project(&project, report).await?;
            mirrors = store.mirrors_with_siblings(&name, &siblings)?;
        }
        report.failures.extend(failures.into_values());
        if self.stopping() && report.failures.is_empty() {
            report.failures.push(
                "stopped by a signal before the pass finished; the next pass continues".into(),
            );
        }
        if report.ok() {
            if let (Some(store), Some(newest)) = (writable, newest) {
                store.advance_checkpoint(&name, newest)?;
                report.checkpoint = Some(newest.max(checkpoint.unwrap_or(newest)));
            }
        }
        Ok(())
    }

    /// A listing pages by offset: an issue deleted meanwhile shifts the rest, and a proxy may
    /// drop the paging headers. A linked issue missing from the listing is fetched by iid
    /// before the planner could take it for deleted and create a duplicate.
    async fn fill_listing_gaps(
        &self,
        project: &Project,
        jira: &[JiraIssue],
        mirrors: &HashMap<String, Mirror>,
        view: &mut GitlabView,
    ) -> Result<()> {
        let missing: Vec<u64> = jira
            .iter()
            .filter_map(|j| mirrors.get(&j.id).map(|m| m.iid))
            .filter(|iid| !view.issues.contains_key(iid))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !missing.is_empty() {
            for g in self.gitlab.issues_by_iid(project.id, &missing).await? {
                if let Some(id) = g.jira_id() {
                    view.by_marker.entry(id.to_string()).or_insert(g.iid);
                }
                view.issues.insert(g.iid, g);
            }
        }
        Ok(())
    }

    /// Creates recorded by an earlier run that never confirmed them: adopt those the scan
    /// found by marker; on a full pass, forget those whose Jira issue is no longer in the
    /// mapping (deleted or moved), so they stop forcing scans. Returns whether any was adopted.
    fn settle_intents(
        &self,
        store: &Store,
        name: &str,
        kind: PassKind,
        jira: &[JiraIssue],
        view: &GitlabView,
        report: &mut PassReport,
    ) -> Result<bool> {
        let mut adopted = false;
        for (jira_id, jira_key) in store.intents(name)? {
            if let Some(&iid) = view.by_marker.get(&jira_id) {
                let mirror = Mirror {
                    jira_id,
                    jira_key,
                    iid,
                };
                store.save_mirror(name, &mirror)?;
                report.counts.adopted += 1;
                adopted = true;
                tracing::info!(mapping = %name, jira = %mirror.jira_key, iid, "an earlier create did land; adopted it");
            } else if kind == PassKind::Full && !jira.iter().any(|j| j.id == jira_id) {
                store.clear_intent(name, &jira_id)?;
            }
        }
        Ok(adopted)
    }

    /// Every issue of the GitLab project, and which Jira id each marker names. Two issues with
    /// the same marker (a copy made by hand, an older tool) are reported; the lower iid wins.
    async fn scan_project(&self, project: &Project, report: &mut PassReport) -> Result<GitlabView> {
        let all = self.gitlab.all_issues(project.id).await?;
        let mut by_marker: HashMap<String, u64> = HashMap::new();
        for issue in &all {
            if let Some(id) = issue.jira_id() {
                match by_marker.get(id) {
                    Some(&other) => {
                        let (keep, dup) = (other.min(issue.iid), other.max(issue.iid));
                        report.notes.push(format!(
                            "GitLab issues #{keep} and #{dup} both carry the marker of Jira issue {id}; #{keep} is used, #{dup} is left alone"
                        ));
                        by_marker.insert(id.to_string(), keep);
                    }
                    None => {
                        by_marker.insert(id.to_string(), issue.iid);
                    }
                }
            }
        }
        Ok(GitlabView {
            issues: by_iid(all),
            by_marker,
        })
    }

    fn record_metrics(&self, r: &PassReport) {
        let m = &self.metrics;
        let mapping = r.mapping.as_str();
        let outcome = if r.ok() { "ok" } else { "failed" };
        m.inc(
            "jgr_passes_total",
            "Reconcile passes, by mapping, kind and outcome.",
            &[("mapping", mapping), ("kind", r.kind), ("outcome", outcome)],
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
}

fn by_iid(issues: Vec<GitlabIssue>) -> HashMap<u64, GitlabIssue> {
    issues.into_iter().map(|g| (g.iid, g)).collect()
}
