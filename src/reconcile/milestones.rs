//! Milestones (`milestones`, the rule in `plan/milestone.rs`): before a batch's jobs run, the
//! milestones its creates and edits give are found by title (the project's or its groups'),
//! made when missing (with the version's or sprint's dates), and closed when Jira says the
//! version is released or the sprint closed; the edits then carry their ids. A full pass also
//! closes the milestones of finished versions and sprints that no edit touched (reads only,
//! when they are closed already). What a pass learned is kept for the pass, so each title is
//! looked up once. A milestone that cannot be had is a note: the issue is edited without it,
//! and its next change (or the next full pass) tries again.

use std::collections::HashMap;

use super::outcome::Tally;
use super::{Reconciler, Target};
use crate::domain::JiraIssue;
use crate::gitlab::Milestone;
use crate::plan::{
    milestone_step, wanted_milestone, Action, MilestoneStep, SeenMilestone, WantedMilestone,
};

/// The milestones of this pass, by title.
pub(super) type Known = std::sync::Mutex<HashMap<String, Milestone>>;

impl Reconciler {
    /// The milestones `actions` give, found or made; their ids filled into the edits.
    pub(super) async fn resolve_milestones(
        &self,
        target: &Target<'_>,
        actions: &mut Vec<Action>,
    ) -> Tally {
        let Some(source) = target.rules.milestones else {
            return Tally::default();
        };
        let mut tally = Tally::default();
        let mut wanted: Vec<WantedMilestone> = Vec::new();
        for action in actions.iter() {
            let jira = match action {
                Action::Create { jira, .. } => jira,
                Action::Update { jira, edit, .. } if edit.milestone.is_some() => jira,
                _ => continue,
            };
            let w = wanted_milestone(source, &jira.planning);
            if let Some(w) = w.filter(|w| !wanted.iter().any(|o| o.title == w.title)) {
                wanted.push(w);
            }
        }
        for w in &wanted {
            if let Err(note) = self.milestone_for(target, w).await {
                tally.notes.push(note);
            }
        }
        let known = crate::lock_unpoisoned(&target.milestones);
        for action in actions.iter_mut() {
            if let Action::Update { edit, .. } = action {
                if let Some(m) = edit.milestone.as_mut() {
                    m.id = known.get(&m.title).map(|k| k.id);
                }
                if edit.milestone.as_ref().is_some_and(|m| m.id.is_none()) {
                    edit.milestone = None;
                }
            }
        }
        actions
            .retain(|a| !matches!(a, Action::Update { edit, .. } if *edit == Default::default()));
        tally
    }

    /// The id of the milestone a new mirror of `jira` is created in, if it was had.
    pub(super) fn milestone_id_for(&self, target: &Target<'_>, jira: &JiraIssue) -> Option<u64> {
        let w = wanted_milestone(target.rules.milestones?, &jira.planning)?;
        let known = crate::lock_unpoisoned(&target.milestones);
        known.get(&w.title).map(|m| m.id)
    }

    /// A full pass: the milestones of the batch's finished versions or sprints closed.
    pub(super) async fn close_finished_milestones(
        &self,
        target: &Target<'_>,
        issues: &[JiraIssue],
    ) -> Tally {
        let Some(source) = target.rules.milestones else {
            return Tally::default();
        };
        let mut tally = Tally::default();
        let mut done: Vec<String> = Vec::new();
        for jira in issues {
            let Some(w) = wanted_milestone(source, &jira.planning).filter(|w| w.over) else {
                continue;
            };
            if done.contains(&w.title) {
                continue;
            }
            done.push(w.title.clone());
            if let Err(note) = self.milestone_for(target, &w).await {
                tally.notes.push(note);
            }
        }
        tally
    }

    /// The milestone `wanted` names: as this pass knows it, else found, else made; closed
    /// when Jira says it is over. A note when GitLab would not.
    async fn milestone_for(
        &self,
        target: &Target<'_>,
        wanted: &WantedMilestone,
    ) -> Result<(), String> {
        let project = target.project.id;
        let known = crate::lock_unpoisoned(&target.milestones)
            .get(&wanted.title)
            .cloned();
        let seen = match known {
            Some(m) => Some(m),
            None => self
                .gitlab
                .milestone_titled(project, &wanted.title)
                .await
                .map_err(|e| format!("milestone \"{}\": {e}", wanted.title))?,
        };
        let view = seen.as_ref().map(|m| SeenMilestone {
            id: m.id,
            title: m.title.clone(),
            closed: m.closed(),
        });
        let milestone = match (milestone_step(wanted, view.as_ref()), seen) {
            (MilestoneStep::Use(_), Some(m)) => m,
            (MilestoneStep::Close(_), Some(mut m)) => {
                self.gitlab
                    .close_milestone(project, &m)
                    .await
                    .map_err(|e| {
                        format!("could not close the milestone \"{}\": {e}", wanted.title)
                    })?;
                tracing::info!(milestone = %m.title, "closed the milestone: done in Jira");
                m.state = "closed".into();
                m
            }
            _ => self.make_milestone(target, wanted).await?,
        };
        crate::lock_unpoisoned(&target.milestones).insert(wanted.title.clone(), milestone);
        Ok(())
    }

    /// Make the milestone (closed at once when Jira says it is over).
    async fn make_milestone(
        &self,
        target: &Target<'_>,
        w: &WantedMilestone,
    ) -> Result<Milestone, String> {
        let project = target.project.id;
        let made = self
            .gitlab
            .create_milestone(project, &w.title, w.start, w.due)
            .await;
        let mut m =
            made.map_err(|e| format!("could not create the milestone \"{}\": {e}", w.title))?;
        tracing::info!(milestone = %m.title, project = %target.project.path, "created a milestone");
        if w.over {
            self.gitlab
                .close_milestone(project, &m)
                .await
                .map_err(|e| format!("could not close the milestone \"{}\": {e}", w.title))?;
            m.state = "closed".into();
        }
        Ok(m)
    }
}
