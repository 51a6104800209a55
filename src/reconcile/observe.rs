//! Phase 1 of a pass: what is. The Jira window, the stored mirrors, and the GitLab issues they
//! point at — or the whole project when markers must be read (a first or full pass, or a create
//! an earlier run never confirmed). Reads only, apart from `adopt_earlier_creates`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{Reconciler, Target};
use crate::domain::{GitlabIssue, IssueHistory, JiraIssue, Mirror, PassKind};
use crate::error::Result;
use crate::gitlab::Project;
use crate::jira::Unreadable;
use crate::plan::{Missing, PlanInput};
use crate::store::Store;

/// What a pass saw before planning.
pub(super) struct Observation {
    /// `Full` when asked, or when there is no checkpoint yet (first pass, lost state file).
    pub kind: PassKind,
    pub checkpoint: Option<DateTime<Utc>>,
    pub jira: Vec<JiraIssue>,
    pub unreadable: Vec<Unreadable>,
    /// The newest Jira `updated` in the window: where the checkpoint moves on success.
    pub newest: Option<DateTime<Utc>>,
    pub mirrors: HashMap<String, Mirror>,
    pub gitlab: GitlabView,
    /// Full passes: this mapping's mirrors whose Jira issue left the search.
    pub missing: Vec<Missing>,
    /// Changelogs the plan asked for (filled by `read_history`).
    pub history: HashMap<String, IssueHistory>,
}

/// The GitLab side as the planner needs it.
pub(super) struct GitlabView {
    pub issues: HashMap<u64, GitlabIssue>,
    /// Jira id → iid of the issue carrying its marker (only after a project scan).
    pub by_marker: HashMap<String, u64>,
    /// Whether the whole project was listed (so `by_marker` is complete).
    pub scanned: bool,
    /// Things the scan noticed (two issues with one marker).
    pub notes: Vec<String>,
}

impl Observation {
    pub fn plan_input<'a>(
        &'a self,
        jira_base_url: &'a str,
        target: &'a Target<'_>,
    ) -> PlanInput<'a> {
        PlanInput {
            jira: &self.jira,
            mirrors: &self.mirrors,
            gitlab: &self.gitlab.issues,
            by_marker: &self.gitlab.by_marker,
            jira_base_url,
            rules: &target.rules,
            backdate: target.project.can_backdate(),
            history: &self.history,
            missing: &self.missing,
        }
    }
}

impl Reconciler {
    pub(super) async fn observe(
        &self,
        target: &Target<'_>,
        requested: PassKind,
        store: Option<&Store>,
    ) -> Result<Observation> {
        let (mirrors, checkpoint, pending) = match store {
            Some(s) => (
                self.mirrors(s, target.mapping)?,
                s.checkpoint(&target.name)?,
                s.pending_intents(&target.name)?,
            ),
            None => (HashMap::new(), None, 0),
        };
        // Without a checkpoint everything is compared, and GitLab is scanned for markers so
        // that existing mirrors are adopted, not duplicated.
        let kind = if checkpoint.is_none() {
            PassKind::Full
        } else {
            requested
        };
        let since = match kind {
            PassKind::Full => None,
            // The overlap is validated to a few days, so this cannot leave chrono's range; if it
            // did, searching everything is the safe answer.
            PassKind::Incremental => checkpoint.and_then(|c| {
                chrono::Duration::from_std(self.cfg.overlap)
                    .ok()
                    .and_then(|o| c.checked_sub_signed(o))
            }),
        };
        let jql = target.mapping.search_filter(since);
        tracing::debug!(%jql, "searching Jira");
        let found = self.jira.search(&jql).await?;
        let mut gitlab = if kind == PassKind::Full || pending > 0 {
            let mut view = self.scan_project(&target.project).await?;
            self.fill_listing_gaps(&target.project, &found.issues, &mirrors, &mut view)
                .await?;
            view
        } else {
            let mut iids = linked_iids(&found.issues, &mirrors, |_| true);
            // The Automation recipe's slots of unmirrored issues ride along in the same batch.
            iids.extend(super::recipe::unmirrored_slots(
                &target.rules,
                &found.issues,
                &mirrors,
            ));
            GitlabView {
                issues: by_iid(self.gitlab.issues_by_iid(target.project.id, &iids).await?),
                by_marker: HashMap::new(),
                scanned: false,
                notes: Vec::new(),
            }
        };
        let missing = match (kind, store) {
            (PassKind::Full, Some(store)) => {
                self.missing_issues(store, target, &found.issues, &mut gitlab)
                    .await?
            }
            _ => Vec::new(),
        };
        Ok(Observation {
            kind,
            checkpoint,
            newest: found.issues.iter().map(|j| j.updated).max(),
            jira: found.issues,
            unreadable: found.unreadable,
            mirrors,
            gitlab,
            missing,
            history: HashMap::new(),
        })
    }

    /// Creates recorded by an earlier run that never confirmed them: adopt those the scan found
    /// by marker; on a full pass, forget those whose Jira issue is no longer in the mapping
    /// (deleted or moved), so they stop forcing scans. Returns how many were adopted.
    pub(super) fn adopt_earlier_creates(
        &self,
        store: &Store,
        target: &Target<'_>,
        seen: &mut Observation,
    ) -> Result<u64> {
        if !seen.gitlab.scanned {
            // Pending intents force a scan, so without one there is nothing to settle.
            return Ok(0);
        }
        let mut adopted = 0;
        for (jira_id, jira_key) in store.intents(&target.name)? {
            if let Some(&iid) = seen.gitlab.by_marker.get(&jira_id) {
                let mirror = Mirror {
                    jira_id,
                    jira_key,
                    iid,
                };
                store.save_mirror(&target.name, &mirror)?;
                adopted += 1;
                tracing::info!(jira = %mirror.jira_key, iid, "an earlier create did land; adopted it");
            } else if seen.kind == PassKind::Full && !seen.jira.iter().any(|j| j.id == jira_id) {
                store.clear_intent(&target.name, &jira_id)?;
            }
        }
        if adopted > 0 {
            seen.mirrors = self.mirrors(store, target.mapping)?;
        }
        Ok(adopted)
    }

    /// Every issue of the GitLab project, and which Jira id each marker names. Two issues with
    /// the same marker (a copy made by hand, an older tool) are reported; the lower iid wins.
    pub(super) async fn scan_project(&self, project: &Project) -> Result<GitlabView> {
        let all = self.gitlab.all_issues(project.id).await?;
        let mut by_marker: HashMap<String, u64> = HashMap::new();
        let mut notes = Vec::new();
        for issue in &all {
            let Some(id) = issue.jira_id() else { continue };
            match by_marker.get(id) {
                Some(&other) => {
                    let (keep, dup) = (other.min(issue.iid), other.max(issue.iid));
                    notes.push(format!(
                        "GitLab issues #{keep} and #{dup} both carry the marker of Jira issue {id}; #{keep} is used, #{dup} is left alone"
                    ));
                    by_marker.insert(id.to_string(), keep);
                }
                None => {
                    by_marker.insert(id.to_string(), issue.iid);
                }
            }
        }
        Ok(GitlabView {
            issues: by_iid(all),
            by_marker,
            scanned: true,
            notes,
        })
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
        let missing = linked_iids(jira, mirrors, |iid| !view.issues.contains_key(&iid));
        if missing.is_empty() {
            return Ok(());
        }
        for g in self.gitlab.issues_by_iid(project.id, &missing).await? {
            if let Some(id) = g.jira_id() {
                view.by_marker.entry(id.to_string()).or_insert(g.iid);
            }
            view.issues.insert(g.iid, g);
        }
        Ok(())
    }
}

/// The distinct iids the stored mirrors give these Jira issues, those `keep` accepts.
fn linked_iids(
    jira: &[JiraIssue],
    mirrors: &HashMap<String, Mirror>,
    keep: impl Fn(u64) -> bool,
) -> Vec<u64> {
    let iids: HashSet<u64> = jira
        .iter()
        .filter_map(|j| mirrors.get(&j.id).map(|m| m.iid))
        .filter(|&iid| keep(iid))
        .collect();
    iids.into_iter().collect()
}

fn by_iid(issues: Vec<GitlabIssue>) -> HashMap<u64, GitlabIssue> {
    issues.into_iter().map(|g| (g.iid, g)).collect()
}
