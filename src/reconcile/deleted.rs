//! Mirrored Jira issues that the mapping's search no longer returns. Only full passes look (an
//! incremental search returns only recent changes, so absence there means nothing): each page
//! of a full pass notes the issues it saw in the state database, and after the last page the
//! mapping's own mirrors it did not see are read by id, a page of them at a time, and the
//! planner decides from what comes back (`plan/gone.rs`). Each is handled once, then
//! remembered; one that comes back in the search is forgotten again (and un-labelled, reopened).

use std::collections::{HashMap, HashSet};

use super::observe::{GitlabView, PageView};
use super::outcome::Tally;
use super::{Mode, Reconciler, Target, BATCH};
use crate::domain::{GitlabIid, GoneReason, IssueEdit, JiraId, Mirror};
use crate::error::Result;
use crate::plan::{plan, Missing};
use crate::store::PageWrite;

impl Reconciler {
    /// After a complete full pass that noted what it saw: find, plan and (in `Mode::Apply`)
    /// handle the mirrors whose Jira issue the search did not return.
    pub(super) async fn settle_missing(
        &self,
        mode: Mode<'_>,
        target: &Target<'_>,
        view: &mut GitlabView<'_>,
    ) -> Result<Tally> {
        let mut out = Tally::default();
        let Some(store) = mode.store() else {
            return Ok(out);
        };
        let mut after: Option<JiraId> = None;
        let mut left = 0;
        while !self.stopping() {
            let unseen = store.seen().unseen(&target.name, after, BATCH)?;
            let Some(last) = unseen.last() else { break };
            after = Some(last.jira_id);
            let (settled, missing) = self.settle_mirrors(mode, target, view, unseen).await?;
            left += missing;
            out += settled;
        }
        if left > 0 {
            tracing::info!(
                count = left,
                "mirrored Jira issues left the mapping's search"
            );
        }
        Ok(out)
    }

    /// Issues webhook events named that Jira no longer has: their mirrors in this mapping are
    /// read by id and handled as gone (deleted, invisible, moved), as a full pass would.
    pub(super) async fn settle_vanished(
        &self,
        mode: Mode<'_>,
        target: &Target<'_>,
        view: &mut GitlabView<'_>,
        ids: &[JiraId],
    ) -> Result<Tally> {
        let Some(store) = mode.store() else {
            return Ok(Tally::default());
        };
        let own = [target.name.clone()];
        let mirrors: Vec<Mirror> = store
            .mirrors()
            .of(&target.name, &own, ids)?
            .into_values()
            .collect();
        if mirrors.is_empty() {
            return Ok(Tally::default());
        }
        Ok(self.settle_mirrors(mode, target, view, mirrors).await?.0)
    }

    /// Read these mirrors' Jira issues by id, and plan and (in `Mode::Apply`) apply what the
    /// mapping's policy says for those that are gone: what it did, and how many were gone.
    async fn settle_mirrors(
        &self,
        mode: Mode<'_>,
        target: &Target<'_>,
        view: &mut GitlabView<'_>,
        mirrors: Vec<Mirror>,
    ) -> Result<(Tally, usize)> {
        let missing = self.look_up_missing(target, mirrors, view).await?;
        let gone = missing.len();
        if missing.is_empty() {
            return Ok((Tally::default(), gone));
        }
        let page = PageView {
            jira: &[],
            mirrors: HashMap::new(),
            claimed: HashSet::new(),
            missing,
            recheck_applied: true,
            set_fields: HashMap::new(),
            people: HashMap::new(),
            notes: Vec::new(),
        };
        let none = HashMap::new();
        let planned = plan(&page.input(target, view, self.jira.base_url(), &none));
        let mut tally = Tally {
            notes: planned.notes.clone(),
            ..Tally::default()
        };
        tally += self
            .carry_out(mode, target, planned, PageWrite::default())
            .await?;
        Ok((tally, gone))
    }

    /// Read `unseen` mirrors' Jira issues by id: those Jira does not return (deleted or
    /// invisible) and those it returns from elsewhere are missing; one it returns but cannot
    /// read is not. Their GitLab issues are added to `view` if the project listing missed them.
    async fn look_up_missing(
        &self,
        target: &Target<'_>,
        unseen: Vec<Mirror>,
        view: &mut GitlabView<'_>,
    ) -> Result<Vec<Missing>> {
        let ids: Vec<JiraId> = unseen.iter().map(|m| m.jira_id).collect();
        // The search index may lag, but it held each of these issues when it was mirrored,
        // and serves that version until the new one: a missing issue is not a lagging one.
        let fetched = self.jira.fetch_by_id(&ids, &target.fields).await?;
        let gone: HashSet<JiraId> = fetched.missing.iter().copied().collect();
        let mut out = Vec::new();
        for mirror in unseen {
            let hit = fetched.found.issues.iter().find(|j| j.id == mirror.jira_id);
            if hit.is_none() && !gone.contains(&mirror.jira_id) {
                continue; // returned but unreadable: not gone
            }
            out.push(Missing {
                found: hit.cloned(),
                mirror,
            });
        }
        let iids: Vec<GitlabIid> = out.iter().map(|m| m.mirror.iid).collect();
        view.load_issues(&iids)?;
        let unlisted: Vec<GitlabIid> = iids
            .into_iter()
            .filter(|iid| !view.issues.contains_key(iid))
            .collect();
        if !unlisted.is_empty() {
            let read = self
                .gitlab
                .issues_by_iid(target.project.id, &unlisted)
                .await?;
            view.add_read(read)?;
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
        tracing::info!(jira = %mirror.jira_key, iid = mirror.iid.get(), reason = %reason, changed = edit.is_some(), "Jira issue left the mapping");
        Ok(())
    }
}
