//! What a mirror carries beyond title and state: per-status labels (created once, at group
//! level when the token may, replayed with Jira's times) and the issue type. GitLab answers
//! 200 even when it ignores a field the token may not set, so every answer is checked.

use std::collections::{BTreeMap, HashSet};

use super::{Reconciler, Target};
use crate::domain::{
    GitlabIid, GitlabIssue, GitlabState, IssueEdit, JiraIssue, StateEvent, StatusCategory,
};
use crate::error::{Error, Result};
use crate::gitlab::Project;
use crate::plan::{Action, LabelStep};

impl Reconciler {
    /// Make sure the status labels these actions add exist, as group labels when the token
    /// has a Planner (or higher) role in the project's group, else as project labels. The
    /// project's labels are listed once per process (and only when a page adds a status label,
    /// so an idle pass asks nothing). Mappings into other projects may do the same at the same
    /// time: the cache's lock is never held across a request, and a label another pass created
    /// first answers 409, which counts as created. Problems are returned as notes: GitLab
    /// creates a missing label at project level on first use anyway.
    pub(super) async fn ensure_status_labels(
        &self,
        target: &Target<'_>,
        actions: &[Action],
    ) -> Vec<String> {
        let Some(scope) = target.rules.status_labels.as_deref() else {
            return Vec::new();
        };
        let wanted = status_labels_added(scope, actions);
        let project = &target.project;
        let all_known = |known: Option<HashSet<String>>| {
            known.is_some_and(|k| wanted.keys().all(|l| k.contains(l)))
        };
        if wanted.is_empty() || all_known(self.known_labels_of(project.id)) {
            return Vec::new();
        }
        if self.known_labels_of(project.id).is_none() {
            if let Err(note) = self.list_labels(project).await {
                return vec![note];
            }
        }
        let existing = self.known_labels_of(project.id).unwrap_or_default();
        let mut notes = Vec::new();
        for (label, color) in wanted.iter().filter(|(l, _)| !existing.contains(*l)) {
            if let Err(note) = self.create_status_label(project, scope, label, color).await {
                notes.push(note);
            }
        }
        notes
    }

    /// The labels of the project known to exist, if they were listed.
    fn known_labels_of(&self, project: u64) -> Option<HashSet<String>> {
        crate::lock_unpoisoned(&self.known_labels)
            .get(&project)
            .cloned()
    }

    /// Labels the project is known to have, from a listing (this one's, or the status
    /// board's, which lists them too: the pass then need not list them again).
    pub(super) fn remember_labels(&self, project: u64, names: impl IntoIterator<Item = String>) {
        crate::lock_unpoisoned(&self.known_labels)
            .entry(project)
            .or_default()
            .extend(names);
    }

    /// List the project's labels once; a note when GitLab would not.
    async fn list_labels(&self, project: &Project) -> Result<(), String> {
        match self.gitlab.labels(project.id).await {
            Ok(names) => {
                self.remember_labels(project.id, names);
                Ok(())
            }
            Err(e) => Err(format!(
                "could not list the labels of {}: {e}",
                project.path
            )),
        }
    }

    /// Create one status label, at group level when the token may (falling back to the
    /// project when the group refuses); a note when GitLab would not.
    pub(super) async fn create_status_label(
        &self,
        project: &Project,
        scope: &str,
        label: &str,
        color: &str,
    ) -> Result<(), String> {
        let status = label.strip_prefix(&format!("{scope}::")).unwrap_or(label);
        let description = format!("Jira status \"{status}\" (kept by jira-gitlab-reconciler)");
        let in_project = || {
            self.gitlab
                .create_project_label(project.id, label, color, &description)
        };
        let created = match project.group.as_deref() {
            Some(group) if project.can_create_group_labels() => {
                match self
                    .gitlab
                    .create_group_label(group, label, color, &description)
                    .await
                {
                    Err(e) if matches!(e.status(), Some(403 | 404)) => in_project().await,
                    other => other,
                }
            }
            _ => in_project().await,
        };
        match created {
            Ok(_) => {
                tracing::info!(label = %label, project = %project.path, "created status label");
                crate::lock_unpoisoned(&self.known_labels)
                    .entry(project.id)
                    .or_default()
                    .insert(label.to_string());
                Ok(())
            }
            Err(e) => Err(format!("could not create the label {label}: {e}")),
        }
    }

    /// After a create: check the issue type GitLab kept, then replay the status changes.
    pub(super) async fn finish_create(
        &self,
        project: &Project,
        created: &GitlabIssue,
        issue_type: &str,
        steps: &[LabelStep],
    ) -> Result<()> {
        if created
            .issue_type
            .as_deref()
            .is_some_and(|t| t != issue_type)
        {
            return Err(type_ignored(project, created.iid, issue_type, created));
        }
        self.relabel(project, created.iid, steps).await
    }

    /// Status label changes, one request each, stamped with Jira's times when the token may.
    pub(super) async fn relabel(
        &self,
        project: &Project,
        iid: GitlabIid,
        steps: &[LabelStep],
    ) -> Result<()> {
        for step in steps {
            let edit = IssueEdit {
                add_labels: vec![step.add.clone()],
                remove_labels: step.remove.clone(),
                updated_at: step.at.filter(|_| project.can_backdate()),
                ..IssueEdit::default()
            };
            let after = self.gitlab.edit(project.id, iid, &edit).await?;
            self.verify(project, iid, &edit, &after)?;
        }
        Ok(())
    }

    /// Whether GitLab did what `edit` asked (it answers 200 when it ignores a field).
    pub(super) fn verify(
        &self,
        project: &Project,
        iid: GitlabIid,
        edit: &IssueEdit,
        after: &GitlabIssue,
    ) -> Result<()> {
        let expected = match edit.state_event {
            Some(StateEvent::Close) => Some(GitlabState::Closed),
            Some(StateEvent::Reopen) => Some(GitlabState::Opened),
            None => None,
        };
        if expected.is_some_and(|s| s != after.state) {
            return Err(Error::NotApplied(format!(
                "GitLab answered 200 but #{iid} in {} did not change state: the token may lack the Planner or Reporter role, or someone changed the issue at the same moment; the next pass checks again",
                project.path
            )));
        }
        if let Some(want) = &edit.issue_type {
            if after.issue_type.as_deref().is_some_and(|t| t != want) {
                return Err(type_ignored(project, iid, want, after));
            }
        }
        if let Some(want) = edit.assignee_ids.as_ref().and_then(|ids| ids.first()) {
            if !after.assignees.contains(want) {
                return Err(Error::NotApplied(format!(
                    "GitLab answered 200 but did not assign user {want} to #{iid} in {}: GitLab drops assignees who are not project members, and ignores assignees from a role below Planner (the token's access level is {}); the next pass checks again",
                    project.path, project.access_level
                )));
            }
        }
        // GitLab's answer is kept with its scoped labels only: those are what can be checked
        // (a token that may not set labels has every label of the request ignored).
        let scoped = |l: &&String| crate::domain::is_scoped_label(l);
        let kept_out = (edit.add_labels.iter().filter(scoped)).find(|l| !after.labels.contains(l));
        let kept_in = (edit.remove_labels.iter().filter(scoped)).find(|l| after.labels.contains(l));
        if let Some(l) = kept_out.or(kept_in) {
            return Err(Error::RoleTooLow(format!(
                "GitLab answered 200 but did not change the label {l} on #{iid} in {}: setting labels needs the Planner or Reporter role (the token's access level is {})",
                project.path, project.access_level
            )));
        }
        Ok(())
    }
}

fn type_ignored(project: &Project, iid: GitlabIid, wanted: &str, got: &GitlabIssue) -> Error {
    Error::RoleTooLow(format!(
        "GitLab kept #{iid} in {} as {}, not {wanted}: incidents need the Reporter role or higher (the token's access level is {}); raise it, or remove the type from the mapping's issue_types",
        project.path,
        got.issue_type.as_deref().unwrap_or("?"),
        project.access_level
    ))
}

/// The status labels (with a colour by status category, where known) the actions add.
pub(super) fn status_labels_added(
    scope: &str,
    actions: &[Action],
) -> BTreeMap<String, &'static str> {
    let prefix = format!("{scope}::");
    let mut out = BTreeMap::new();
    let mut add = |label: &String, jira: &JiraIssue| {
        if !label.starts_with(&prefix) {
            return;
        }
        let current = jira
            .status
            .as_deref()
            .map(|s| crate::domain::status_label(scope, s));
        let color = match (&jira.category, current.as_ref() == Some(label)) {
            (StatusCategory::New, true) => "#42526E",
            (StatusCategory::InProgress, true) => "#0052CC",
            (StatusCategory::Done, true) => "#00875A",
            _ => "#6699cc",
        };
        let entry = out.entry(label.clone()).or_insert(color);
        if *entry == "#6699cc" {
            *entry = color;
        }
    };
    for action in actions {
        match action {
            Action::Create {
                jira,
                status_label,
                steps,
                ..
            } => {
                for l in status_label.iter().chain(steps.iter().map(|s| &s.add)) {
                    add(l, jira);
                }
            }
            Action::Relabel { jira, steps, .. } => {
                for s in steps {
                    add(&s.add, jira);
                }
            }
            Action::Update { jira, edit, .. } => {
                for l in &edit.add_labels {
                    add(l, jira);
                }
            }
            _ => {}
        }
    }
    out
}
