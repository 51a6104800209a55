//! What the planner asks for: one [`Action`] per change to make in GitLab, and how each reads
//! in a dry run and in logs.

use chrono::{DateTime, Utc};

use crate::domain::{
    GitlabIid, GoneReason, IssueEdit, JiraIssue, JiraKey, Mirror, SetFields, StateEvent,
};

/// One label change, one request: add `add`, remove `remove`, stamped `at` (Owner only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelStep {
    pub add: String,
    pub remove: Vec<String>,
    pub at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// No GitLab issue exists for this Jira issue: create one (and close it if Jira says done).
    Create {
        jira: JiraIssue,
        title: String,
        description: String,
        close: bool,
        /// The status label to create it with (its first status when the history is
        /// replayed).
        status_label: Option<String>,
        issue_type: String,
        /// Status label changes to replay after the create, oldest first.
        steps: Vec<LabelStep>,
        /// The title of the milestone to create it in (`milestones`); `apply` finds its id.
        milestone: Option<String>,
        /// The labels and due date from Jira's fields to create it with (`labels_from`,
        /// `due_date`): recorded as set once it exists.
        fields: SetFields,
    },
    /// Record the link to an existing GitLab issue: found by its marker (`adopted`), or the
    /// Jira key changed.
    Link { mirror: Mirror, adopted: bool },
    /// The Automation recipe created this GitLab issue for this Jira issue: add the link and
    /// marker to its description (keeping its text, read when applying: the planner does not
    /// need descriptions), then record the link.
    AdoptRecipe { jira: JiraIssue, mirror: Mirror },
    /// Change an existing GitLab issue.
    Update {
        jira: JiraIssue,
        iid: GitlabIid,
        edit: IssueEdit,
    },
    /// Several status label changes, replayed one request each with Jira's times.
    Relabel {
        jira: JiraIssue,
        iid: GitlabIid,
        steps: Vec<LabelStep>,
    },
    /// The Jira issue left the mapping: apply the policy's edit (if any), then remember it so
    /// later full passes do not ask again.
    MarkGone {
        mirror: Mirror,
        reason: GoneReason,
        edit: Option<IssueEdit>,
    },
}

impl Action {
    pub fn jira_key(&self) -> &JiraKey {
        match self {
            Action::Create { jira, .. }
            | Action::Update { jira, .. }
            | Action::Relabel { jira, .. }
            | Action::AdoptRecipe { jira, .. } => &jira.key,
            Action::Link { mirror, .. } | Action::MarkGone { mirror, .. } => &mirror.jira_key,
        }
    }

    /// One line for `--dry-run` and logs.
    pub fn describe(&self) -> String {
        match self {
            Action::Create { .. } => self.describe_create(),
            Action::Link {
                mirror,
                adopted: true,
            } => format!(
                "adopt   {} → #{} (found by its marker)",
                mirror.jira_key, mirror.iid
            ),
            Action::Link {
                mirror,
                adopted: false,
            } => format!(
                "relink  {} → #{} (Jira key changed)",
                mirror.jira_key, mirror.iid
            ),
            Action::AdoptRecipe { mirror, .. } => format!(
                "adopt   {} → #{} (created by the Automation recipe; link and marker added to its description)",
                mirror.jira_key, mirror.iid
            ),
            Action::Update { jira, iid, edit } => describe_update(&jira.key, *iid, edit),
            Action::Relabel { jira, iid, steps } => format!(
                "relabel {} #{iid}: {} status change(s) replayed at Jira's times, ending at {}",
                jira.key,
                steps.len(),
                steps.last().map_or("-", |s| s.add.as_str())
            ),
            Action::MarkGone {
                mirror,
                reason,
                edit,
            } => describe_gone(mirror, *reason, edit.as_ref()),
        }
    }

    fn describe_create(&self) -> String {
        let Action::Create {
            jira,
            title,
            close,
            status_label,
            issue_type,
            steps,
            milestone,
            fields,
            ..
        } = self
        else {
            return String::new();
        };
        let mut extra = String::new();
        if issue_type != "issue" {
            extra.push_str(&format!(" as {issue_type}"));
        }
        if let Some(l) = status_label {
            extra.push_str(&format!(" [{l}]"));
        }
        if let Some(m) = milestone {
            extra.push_str(&format!(" in milestone \"{m}\""));
        }
        for l in &fields.labels {
            extra.push_str(&format!(" +label {l}"));
        }
        if let Some(d) = fields.due {
            extra.push_str(&format!(" due {d}"));
        }
        if let Some(id) = fields.assignee {
            extra.push_str(&format!(" assign user {id}"));
        }
        if !steps.is_empty() {
            extra.push_str(&format!(
                " then {} status change(s) at Jira's times",
                steps.len()
            ));
        }
        if *close {
            extra.push_str(" (then close: done in Jira)");
        }
        format!("create  {} \"{}\"{extra}", jira.key, title)
    }
}

/// An update's line for `--dry-run` and logs.
pub fn describe_update(key: &JiraKey, iid: GitlabIid, edit: &IssueEdit) -> String {
    format!("update  {key} #{iid}: {}", describe_edit(edit))
}

fn describe_gone(mirror: &Mirror, reason: GoneReason, edit: Option<&IssueEdit>) -> String {
    let what = match reason {
        GoneReason::Deleted => "deleted in Jira or no longer visible",
        GoneReason::Moved => "moved to a project no mapping of this GitLab project covers",
        GoneReason::FilteredOut => "no longer matched by the mapping's jql",
        GoneReason::TakenOver => "moved to another mapping of this GitLab project, which keeps it",
    };
    let change = edit.map_or("GitLab issue left as it is".to_string(), describe_edit);
    format!(
        "gone    {} #{}: {what}; {change}",
        mirror.jira_key, mirror.iid
    )
}

fn describe_edit(edit: &IssueEdit) -> String {
    let mut parts = Vec::new();
    match edit.state_event {
        Some(StateEvent::Close) => parts.push("close".to_string()),
        Some(StateEvent::Reopen) => parts.push("reopen".to_string()),
        None => {}
    }
    if let Some(t) = &edit.title {
        parts.push(format!("retitle \"{t}\""));
    }
    if edit.description.is_some() {
        parts.push("relink description".to_string());
    }
    for l in &edit.add_labels {
        parts.push(format!("+label {l}"));
    }
    for l in &edit.remove_labels {
        parts.push(format!("-label {l}"));
    }
    if let Some(t) = &edit.issue_type {
        parts.push(format!("type {t}"));
    }
    parts.extend(super::fields::describe(edit));
    if let Some(m) = &edit.milestone {
        parts.push(format!("milestone \"{}\"", m.title));
    }
    parts.join(", ")
}
