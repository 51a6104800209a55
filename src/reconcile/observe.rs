//! What is: where a pass starts, the GitLab project, the project's issues when markers must be
//! read, and per page of Jira issues the stored mirrors and GitLab issues the planner needs
//! (with the Automation recipe's slots of unmirrored issues). Reads only, apart from settling
//! creates an earlier run left unconfirmed.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Mode, Reconciler, Target};
use crate::config::Mapping;
use crate::domain::{GitlabIssue, IssueHistory, JiraIssue, Mirror, PassKind};
use crate::error::Result;
use crate::gitlab::Project;
use crate::plan::{needs_compare, Missing, PlanInput};
use crate::store::Store;

/// Facts about a GitLab project (its id, the token's role) are looked up again after this long,
/// after `check`, and after GitLab refuses the token, a permission or the project.
const PROJECT_FACTS_FOR: chrono::Duration = chrono::Duration::hours(24);

/// Where a pass starts.
pub(super) struct Start {
    /// `Full` when asked, or when there is no checkpoint yet (first pass, lost state file).
    pub kind: PassKind,
    pub checkpoint: Option<DateTime<Utc>>,
    /// A polled pass has succeeded before (with or without a checkpoint): events may be
    /// applied.
    pub reconciled: bool,
    /// Creates an earlier run recorded but never confirmed: Jira id → key.
    pub intents: HashMap<String, String>,
    /// Which of those Jira issues this pass has seen (a full pass forgets the others).
    seen_intents: HashSet<String>,
    /// A full pass over a mapping that had mirrors: the issues seen are noted in the state
    /// database, to find the mirrors whose Jira issue left (`deleted`).
    pub track_seen: bool,
    /// Some issue of the mapping is remembered as gone: each page looks for returns.
    pub any_gone: bool,
}

impl Start {
    /// Whether the whole GitLab project must be listed to read its markers.
    pub fn needs_scan(&self) -> bool {
        self.kind == PassKind::Full || !self.intents.is_empty()
    }

    /// The `updated` bound of the search: the checkpoint less the overlap, on an incremental
    /// pass.
    pub fn since(&self, overlap: Duration) -> Option<DateTime<Utc>> {
        match self.kind {
            PassKind::Full | PassKind::Targeted => None,
            // The overlap is validated to a few days, so this cannot leave chrono's range; if it
            // did, searching everything is the safe answer.
            PassKind::Incremental => self.checkpoint.and_then(|c| {
                chrono::Duration::from_std(overlap)
                    .ok()
                    .and_then(|o| c.checked_sub_signed(o))
            }),
        }
    }

    pub fn saw(&mut self, issues: &[JiraIssue]) {
        if self.intents.is_empty() {
            return;
        }
        for j in issues {
            if self.intents.contains_key(&j.id) {
                self.seen_intents.insert(j.id.clone());
            }
        }
    }
}

/// The GitLab side as the planner needs it.
#[derive(Default)]
pub(super) struct GitlabView {
    /// The project's issues (after a scan), or those of the page being worked on.
    pub issues: HashMap<u64, GitlabIssue>,
    /// Jira id → iid of the issue carrying its marker (only after a scan).
    pub by_marker: HashMap<String, u64>,
    /// Whether the whole project was listed (so `by_marker` is complete).
    pub scanned: bool,
    /// Things the scan noticed (two issues with one marker).
    pub notes: Vec<String>,
}

/// What the planner gets for one page, beyond the GitLab view: the Jira issues, their stored
/// mirrors, and (after a full pass) the mirrors whose Jira issue left the search.
pub(super) struct PageView<'a> {
    pub jira: &'a [JiraIssue],
    pub mirrors: HashMap<String, Mirror>,
    /// Recipe slots that stored mirrors of other Jira issues point at.
    pub claimed: HashSet<u64>,
    pub missing: Vec<Missing>,
    pub recheck_applied: bool,
}

impl PageView<'_> {
    pub fn input<'a>(
        &'a self,
        target: &'a Target<'_>,
        view: &'a GitlabView,
        jira_base_url: &'a str,
        history: &'a HashMap<String, IssueHistory>,
    ) -> PlanInput<'a> {
        PlanInput {
            jira: self.jira,
            mirrors: &self.mirrors,
            gitlab: &view.issues,
            by_marker: &view.by_marker,
            jira_base_url,
            recheck_applied: self.recheck_applied,
            claimed: &self.claimed,
            rules: &target.rules,
            backdate: target.project.can_backdate(),
            history,
            missing: &self.missing,
        }
    }
}

impl Reconciler {
    /// The GitLab project of `mapping`: from the state database when looked up within the last
    /// day, else from GitLab (and remembered, when the pass may write).
    pub(super) async fn project(&self, mode: Mode<'_>, mapping: &Mapping) -> Result<Project> {
        let url = &self.cfg.gitlab.identity();
        if let Some(store) = mode.store() {
            if let Some((project, at)) = store.cached_project(url, &mapping.gitlab_project)? {
                if Utc::now() - at < PROJECT_FACTS_FOR {
                    return Ok(project);
                }
            }
        }
        let project = self.gitlab.project(&mapping.gitlab_project).await?;
        if let Mode::Apply(store) = mode {
            store.cache_project(url, &mapping.gitlab_project, &project)?;
        }
        Ok(project)
    }

    /// After GitLab refused the token, a permission or the project: look it up again next time.
    pub(super) fn forget_project(&self, mode: Mode<'_>, mapping: &Mapping) {
        if let Mode::Apply(store) = mode {
            if let Err(e) =
                store.forget_project(&self.cfg.gitlab.identity(), &mapping.gitlab_project)
            {
                tracing::warn!("{}", e.report());
            }
        }
    }

    pub(super) fn start(
        &self,
        target: &Target<'_>,
        requested: PassKind,
        store: Option<&Store>,
    ) -> Result<Start> {
        let (checkpoint, reconciled, intents) = match store {
            Some(s) => (
                s.checkpoint(&target.name)?,
                s.reconciled(&target.name)?,
                s.intents(&target.name)?.into_iter().collect(),
            ),
            None => (None, false, HashMap::new()),
        };
        // Without a checkpoint everything is compared, and GitLab is scanned for markers so
        // that existing mirrors are adopted, not duplicated (a targeted pass waits for that).
        let kind = if checkpoint.is_none() && requested != PassKind::Targeted {
            PassKind::Full
        } else {
            requested
        };
        Ok(Start {
            kind,
            checkpoint,
            reconciled,
            intents,
            seen_intents: HashSet::new(),
            track_seen: false,
            any_gone: match store {
                Some(s) => s.has_gone(&target.name)?,
                None => false,
            },
        })
    }

    /// Creates recorded by an earlier run that never confirmed them: adopt those the scan found
    /// by marker. Returns how many were adopted.
    pub(super) fn adopt_earlier_creates(
        &self,
        store: &Store,
        target: &Target<'_>,
        view: &GitlabView,
        start: &mut Start,
    ) -> Result<u64> {
        if !view.scanned {
            return Ok(0);
        }
        let mut adopted = 0;
        start.intents.retain(|jira_id, jira_key| {
            let Some(&iid) = view.by_marker.get(jira_id) else {
                return true;
            };
            let mirror = Mirror {
                jira_id: jira_id.clone(),
                jira_key: jira_key.clone(),
                iid,
                applied: None,
            };
            match store.save_mirror(&target.name, &mirror) {
                Ok(()) => {
                    adopted += 1;
                    tracing::info!(jira = %jira_key, iid, "an earlier create did land; adopted it");
                    false
                }
                Err(e) => {
                    tracing::warn!("{}", e.report());
                    true
                }
            }
        });
        Ok(adopted)
    }

    /// After a full pass: unconfirmed creates whose Jira issue the mapping no longer has
    /// (deleted or moved) are forgotten, so they stop forcing scans.
    pub(super) fn forget_creates_that_left(
        &self,
        store: &Store,
        target: &Target<'_>,
        start: &Start,
    ) -> Result<()> {
        for jira_id in start.intents.keys() {
            if !start.seen_intents.contains(jira_id) {
                store.clear_intent(&target.name, jira_id)?;
            }
        }
        Ok(())
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
            issues: all.into_iter().map(|g| (g.iid, g)).collect(),
            by_marker,
            scanned: true,
            notes,
        })
    }

    /// The stored mirrors of one page's Jira issues, and their GitLab issues in `view`: read by
    /// iid (one request per page) unless the project was scanned. Issues whose Jira version is
    /// already applied (or older) need no GitLab read on an incremental pass. The Automation
    /// recipe's slots of unmirrored issues ride along in the same read.
    pub(super) async fn observe_page<'a>(
        &self,
        store: Option<&Store>,
        target: &Target<'_>,
        issues: &'a [JiraIssue],
        view: &mut GitlabView,
        recheck_applied: bool,
    ) -> Result<PageView<'a>> {
        let mirrors = match store {
            Some(s) => {
                let ids: Vec<&str> = issues.iter().map(|j| j.id.as_str()).collect();
                s.mirrors_for(&target.name, &target.siblings, &ids)?
            }
            None => HashMap::new(),
        };
        let slots = super::recipe::unmirrored_slots(&target.rules, issues, &mirrors);
        let claimed = match store {
            Some(s) if !slots.is_empty() => {
                s.claimed_iids(&target.name, &target.siblings, &slots)?
            }
            _ => HashSet::new(),
        };
        if !view.scanned {
            view.issues.clear();
        }
        // A scan pages by offset or keyset: an issue deleted meanwhile may shift the rest, and a
        // proxy may drop the paging headers. A linked issue missing from the view is fetched by
        // iid before the planner could take it for deleted and create a duplicate.
        let wanted: HashSet<u64> = issues
            .iter()
            .filter_map(|j| {
                let m = mirrors.get(&j.id)?;
                needs_compare(j, Some(m), recheck_applied).then_some(m.iid)
            })
            .chain(slots)
            .filter(|iid| !view.issues.contains_key(iid))
            .collect();
        if !wanted.is_empty() {
            let wanted: Vec<u64> = wanted.into_iter().collect();
            for g in self
                .gitlab
                .issues_by_iid(target.project.id, &wanted)
                .await?
            {
                if view.scanned {
                    if let Some(id) = g.jira_id() {
                        view.by_marker.entry(id.to_string()).or_insert(g.iid);
                    }
                }
                view.issues.insert(g.iid, g);
            }
        }
        Ok(PageView {
            jira: issues,
            mirrors,
            claimed,
            missing: Vec::new(),
            recheck_applied,
        })
    }
}
