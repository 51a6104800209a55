//! Mirrored Jira issues that the mapping's search no longer returns. Only full passes look
//! (an incremental search returns only recent changes, so absence there means nothing): the
//! mapping's own mirrors missing from the complete search are read by id, and the planner
//! decides from what comes back (`plan/gone.rs`). Each is handled once, then remembered;
//! one that comes back in the search is forgotten again (and un-labelled, reopened).

use std::collections::HashSet;

use super::apply::Applied;
use super::observe::GitlabView;
use super::{Reconciler, Target};
use crate::domain::{GoneReason, IssueEdit, JiraIssue, Mirror, StateEvent};
use crate::error::{Error, Result};
use crate::plan::Missing;
use crate::store::Store;

impl Reconciler {
    /// This mapping's mirrors whose Jira issue the (complete) search did not return and that
    /// are not known to be gone, with what a look-up by id found. Their GitLab issues are
    /// added to `view` if the project listing missed them.
    pub(super) async fn missing_issues(
        &self,
        store: &Store,
        target: &Target<'_>,
        found: &[JiraIssue],
        view: &mut GitlabView,
    ) -> Result<Vec<Missing>> {
        let own = store.mirrors(&target.name)?;
        let gone = store.gone(&target.name)?;
        let seen: HashSet<&str> = found.iter().map(|j| j.id.as_str()).collect();
        let mut ids: Vec<String> = own
            .keys()
            .filter(|id| !seen.contains(id.as_str()) && !gone.contains_key(*id))
            .cloned()
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        ids.sort();
        // The search index may lag, but it held each of these issues when it was mirrored,
        // and serves that version until the new one: a missing issue is not a lagging one.
        let fetched = self.jira.fetch_by_id(&ids).await?;
        let mut out = Vec::new();
        for id in &ids {
            let Some(mirror) = own.get(id) else { continue };
            let hit = fetched.found.issues.iter().find(|j| &j.id == id);
            if hit.is_none() && !fetched.missing.contains(id) {
                continue; // returned but unreadable: not gone
            }
            out.push(Missing {
                mirror: mirror.clone(),
                found: hit.cloned(),
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
        if !out.is_empty() {
            tracing::info!(
                count = out.len(),
                "mirrored Jira issues left the mapping's search"
            );
        }
        Ok(out)
    }

    /// Apply a gone issue's edit (if any), then remember it. A failed edit is not remembered,
    /// so the next full pass tries again.
    pub(super) async fn mark_gone(
        &self,
        store: &Store,
        target: &Target<'_>,
        mirror: &Mirror,
        reason: GoneReason,
        edit: Option<&IssueEdit>,
        out: &mut Applied,
    ) -> Result<()> {
        let key = &mirror.jira_key;
        if let Some(edit) = edit {
            let result = match self.gitlab.edit(target.project.id, mirror.iid, edit).await {
                Ok(after) => self.verify(&target.project, mirror.iid, edit, &after),
                Err(e) => Err(Error::from(e)),
            };
            if let Err(e) = result {
                out.fail(key, format!("{key} (#{}): {e}", mirror.iid), Some(&e));
                return Ok(());
            }
            if edit.state_event == Some(StateEvent::Close) {
                out.counts.closed += 1;
            } else {
                out.counts.updated += 1;
            }
        }
        store.mark_gone(&target.name, &mirror.jira_id, reason)?;
        tracing::info!(jira = %key, iid = mirror.iid, reason = %reason, changed = edit.is_some(), "Jira issue left the mapping");
        Ok(())
    }
}
