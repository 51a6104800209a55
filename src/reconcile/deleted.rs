//! Mirrored Jira issues that the mapping's search no longer returns. Only full passes look (an
//! incremental search returns only recent changes, so absence there means nothing): each page
//! of a full pass notes the issues it saw in the state database, and after the last page the
//! mapping's own mirrors it did not see are read by id, a page of them at a time, and the
//! planner decides from what comes back (`plan/gone.rs`). Each is handled once, then
//! remembered; one that comes back in the search is forgotten again (and un-labelled, reopened).

use std::collections::{HashMap, HashSet};

use super::observe::{GitlabView, PageView};
use super::{Mode, PageWork, Reconciler, Target, BATCH};
use crate::domain::{GoneReason, IssueEdit, Mirror};
use crate::error::Result;
use crate::plan::{plan, Action, Missing};
use crate::store::PageWrite;

impl Reconciler {
    /// After a complete full pass that noted what it saw: find, plan and (in `Mode::Apply`)
    /// handle the mirrors whose Jira issue the search did not return.
    pub(super) async fn settle_missing(
        &self,
        mode: Mode<'_>,
        target: &Target<'_>,
        view: &mut GitlabView,
    ) -> Result<PageWork> {
        let mut out = PageWork::default();
        let Some(store) = mode.store() else {
            return Ok(out);
        };
        let mut after: Option<String> = None;
        let mut left = 0;
        while !self.stopping() {
            let unseen = store.unseen_mirrors(&target.name, after.as_deref(), BATCH)?;
            let Some(last) = unseen.last() else { break };
            after = Some(last.jira_id.clone());
            let missing = self.look_up_missing(target, unseen, view).await?;
            left += missing.len();
            if missing.is_empty() {
                continue;
            }
            let page = PageView {
                jira: &[],
                mirrors: HashMap::new(),
                claimed: HashSet::new(),
                missing,
                recheck_applied: true,
            };
            let none = HashMap::new();
            let planned = plan(&page.input(target, view, self.jira.base_url(), &none));
            out.notes.extend(planned.notes.iter().cloned());
            match mode {
                Mode::DryRun(_) => {
                    out.planned
                        .extend(planned.actions.iter().map(Action::describe));
                }
                Mode::Apply(store) => {
                    let applied = self
                        .apply(store, target, planned, PageWrite::default(), false)
                        .await?;
                    match &mut out.applied {
                        Some(all) => all.absorb(applied),
                        None => out.applied = Some(applied),
                    }
                }
            }
        }
        if left > 0 {
            tracing::info!(
                count = left,
                "mirrored Jira issues left the mapping's search"
            );
        }
        Ok(out)
    }

    /// Read `unseen` mirrors' Jira issues by id: those Jira does not return (deleted or
    /// invisible) and those it returns from elsewhere are missing; one it returns but cannot
    /// read is not. Their GitLab issues are added to `view` if the project listing missed them.
    async fn look_up_missing(
        &self,
        target: &Target<'_>,
        unseen: Vec<Mirror>,
        view: &mut GitlabView,
    ) -> Result<Vec<Missing>> {
        let ids: Vec<String> = unseen.iter().map(|m| m.jira_id.clone()).collect();
        // The search index may lag, but it held each of these issues when it was mirrored,
        // and serves that version until the new one: a missing issue is not a lagging one.
        let fetched = self.jira.fetch_by_id(&ids).await?;
        let gone: HashSet<&str> = fetched.missing.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        for mirror in unseen {
            let hit = fetched.found.issues.iter().find(|j| j.id == mirror.jira_id);
            if hit.is_none() && !gone.contains(mirror.jira_id.as_str()) {
                continue; // returned but unreadable: not gone
            }
            out.push(Missing {
                found: hit.cloned(),
                mirror,
            });
        }
        let unlisted: Vec<u64> = out
            .iter()
            .map(|m| m.mirror.iid)
            .filter(|iid| !view.issues.contains_key(iid))
            .collect();
        if !unlisted.is_empty() {
            for g in self
                .gitlab
                .issues_by_iid(target.project.id, &unlisted)
                .await?
            {
                view.issues.insert(g.iid, g);
            }
        }
        Ok(out)
    }

    /// Apply a gone issue's edit, if any (it carries no Jira time: the issue is gone).
    pub(super) async fn mark_gone(
        &self,
        target: &Target<'_>,
        mirror: &Mirror,
        reason: GoneReason,
        edit: Option<&IssueEdit>,
    ) -> Result<()> {
        if let Some(edit) = edit {
            let after = self
                .gitlab
                .edit(target.project.id, mirror.iid, edit)
                .await?;
            self.verify(&target.project, mirror.iid, edit, &after)?;
        }
        tracing::info!(jira = %mirror.jira_key, iid = mirror.iid, reason = %reason, changed = edit.is_some(), "Jira issue left the mapping");
        Ok(())
    }
}
