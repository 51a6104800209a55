//! Milestones (`milestones`, the rule in `plan/milestone.rs`): before a batch's jobs run, the
//! milestones its creates and edits give are found by title (the project's or its groups'),
//! made when missing (with the version's or sprint's dates), and closed when Jira says the
//! version is released or the sprint closed; the edits then carry their ids. A full pass also
//! closes the milestones of finished versions and sprints that no edit touched (reads only,
//! when they are closed already). What a pass learned is kept for the pass, so each title is
//! looked up once. A milestone that cannot be had is a note: the issue is edited without it,
//! and its next change (or the next full pass) tries again.

use std::collections::HashMap;

use super::outcome::{Outcome, Tally};
use super::{Reconciler, Target};
use crate::domain::JiraIssue;
use crate::gitlab::Milestone;
use crate::plan::{
    milestone_step, wanted_milestone, Action, MilestoneSource, MilestoneStep, SeenMilestone,
    WantedMilestone,
};

/// The milestones of this pass, by title.
pub(super) type Known = std::sync::Mutex<HashMap<String, Milestone>>;

/// The milestones `actions` give (creates, and edits that set one), each title once.
fn wanted_by(source: MilestoneSource, actions: &[Action]) -> Vec<WantedMilestone> {
    let mut wanted: Vec<WantedMilestone> = Vec::new();
    for action in actions {
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
    wanted
}

impl Reconciler {
    /// A dry run: the milestones the page's actions give (and, on a full pass, those of its
    /// finished versions or sprints) that would be made or closed, each said once a pass.
    /// GitLab is only read; what was learned (or would be made) is kept for the pass, which,
    /// being a dry run, never applies an edit that could take its id.
    pub(super) async fn plan_milestones(
        &self,
        target: &Target<'_>,
        actions: &[Action],
        issues: &[JiraIssue],
        full: bool,
    ) -> Tally {
        let Some(source) = target.rules.milestones else {
            return Tally::default();
        };
        let mut wanted = wanted_by(source, actions);
        let finished = issues.iter().filter(|_| full);
        for w in finished.filter_map(|j| wanted_milestone(source, &j.planning)) {
            if w.over && !wanted.iter().any(|o| o.title == w.title) {
                wanted.push(w);
            }
        }
        let mut tally = Tally::default();
        for w in &wanted {
            if crate::lock_unpoisoned(&target.milestones).contains_key(&w.title) {
                continue;
            }
            match self
                .gitlab
                .milestone_titled(target.project.id, &w.title)
                .await
            {
                Ok(seen) => {
                    let w = &match seen {
                        Some(_) => w.clone(),
                        None => self.dated(target, w).await,
                    };
                    if let Some(line) = would(source, w, seen.as_ref()) {
                        tally += Outcome::Planned(line);
                    }
                    let kept = seen.unwrap_or_else(|| to_be_made(w));
                    crate::lock_unpoisoned(&target.milestones).insert(w.title.clone(), kept);
                }
                Err(e) => tally
                    .notes
                    .push(format!("milestone \"{}\" not checked: {e}", w.title)),
            }
        }
        tally
    }

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
        for w in &wanted_by(source, actions) {
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
        let milestone = match (step(wanted, seen.as_ref()), seen) {
            (MilestoneStep::Use(_), Some(m)) => m,
            (MilestoneStep::Close(_), Some(mut m)) => {
                self.close(project, &mut m).await?;
                tracing::info!(milestone = %m.title, "closed the milestone: done in Jira");
                m
            }
            _ => self.make_milestone(target, wanted).await?,
        };
        crate::lock_unpoisoned(&target.milestones).insert(wanted.title.clone(), milestone);
        Ok(())
    }

    /// `w` with its version's start date, which an issue's `fixVersions` leave out: the
    /// project's versions are read once a pass, and only when a milestone is to be made (an
    /// idle pass never is). Without them the milestone is made without a start date.
    async fn dated(&self, target: &Target<'_>, w: &WantedMilestone) -> WantedMilestone {
        if w.start.is_some() || target.rules.milestones != Some(MilestoneSource::FixVersion) {
            return w.clone();
        }
        let known = crate::lock_unpoisoned(&target.version_starts)
            .as_ref()
            .map(|starts| starts.get(&w.title).copied());
        let start = match known {
            Some(start) => start,
            None => {
                let key = &target.mapping.jira_project;
                let starts = self.jira.version_starts(key).await.unwrap_or_else(|e| {
                    tracing::warn!(project = %key, "milestones get no start date: the project's versions could not be read: {e}");
                    Default::default()
                });
                let start = starts.get(&w.title).copied();
                *crate::lock_unpoisoned(&target.version_starts) = Some(starts);
                start
            }
        };
        w.clone().with_start(start)
    }

    /// Make the milestone (closed at once when Jira says it is over).
    async fn make_milestone(
        &self,
        target: &Target<'_>,
        w: &WantedMilestone,
    ) -> Result<Milestone, String> {
        let project = target.project.id;
        let w = &self.dated(target, w).await;
        let made = self
            .gitlab
            .create_milestone(project, &w.title, w.start, w.due)
            .await;
        let mut m =
            made.map_err(|e| format!("could not create the milestone \"{}\": {e}", w.title))?;
        tracing::info!(milestone = %m.title, project = %target.project.path, "created a milestone");
        if w.over {
            self.close(project, &mut m).await?;
        }
        Ok(m)
    }

    /// Close `m` where it lives (its project or group); `m` then says it is closed.
    async fn close(&self, project: u64, m: &mut Milestone) -> Result<(), String> {
        let closed = self.gitlab.close_milestone(project, m).await;
        closed.map_err(|e| format!("could not close the milestone \"{}\": {e}", m.title))?;
        m.state = "closed".into();
        Ok(())
    }
}

/// A dry run's line for the milestone `w`, as GitLab has it (`seen`): to be made (and closed),
/// to be closed, or nothing.
fn would(source: MilestoneSource, w: &WantedMilestone, seen: Option<&Milestone>) -> Option<String> {
    let done = match source {
        MilestoneSource::FixVersion => "the version is released in Jira",
        MilestoneSource::Sprint => "the sprint is closed in Jira",
    };
    match step(w, seen) {
        MilestoneStep::Use(_) => None,
        MilestoneStep::Close(_) => {
            Some(format!("milestone \"{}\" would be closed: {done}", w.title))
        }
        MilestoneStep::Create(_) => {
            let dates: Vec<String> = [("start", w.start), ("due", w.due)]
                .into_iter()
                .filter_map(|(what, d)| d.map(|d| format!("{what} {d}")))
                .collect();
            let dates = if dates.is_empty() {
                String::new()
            } else {
                format!(" ({})", dates.join(", "))
            };
            let closed = if w.over {
                format!(", and closed: {done}")
            } else {
                String::new()
            };
            Some(format!(
                "milestone \"{}\" would be created{dates}{closed}",
                w.title
            ))
        }
    }
}

/// What the milestone `w` takes, given GitLab's milestone of that title (`seen`): the rule's
/// view of it, made in one place for the pass and the dry run alike.
fn step(w: &WantedMilestone, seen: Option<&Milestone>) -> MilestoneStep {
    let view = seen.map(|m| SeenMilestone {
        id: m.id,
        title: m.title.clone(),
        closed: m.closed(),
    });
    milestone_step(w, view.as_ref())
}

/// What a dry run keeps for a milestone it would make: its title and state, no id.
fn to_be_made(w: &WantedMilestone) -> Milestone {
    Milestone {
        id: 0,
        title: w.title.clone(),
        state: if w.over { "closed" } else { "active" }.into(),
        start_date: w.start,
        due_date: w.due,
        group_id: None,
    }
}
