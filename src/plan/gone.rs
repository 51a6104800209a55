//! Mirrored Jira issues that the mapping's search no longer returns (full passes only): why,
//! and what their GitLab issue gets. A GitLab issue is never deleted, and one that does not
//! carry this issue's marker is never touched.

use super::{Action, Missing, Plan, PlanInput, Rules};
use crate::domain::{
    GitlabIssue, GitlabState, GonePolicy, GoneReason, IssueEdit, JiraIssue, StateEvent,
};

/// Why the issue left: not found at all, moved, or still in the project but filtered out.
pub fn classify(rules: &Rules, found: Option<&JiraIssue>) -> GoneReason {
    match found {
        None => GoneReason::Deleted,
        Some(j) if j.project.eq_ignore_ascii_case(&rules.jira_project) => GoneReason::FilteredOut,
        Some(j)
            if rules
                .sibling_projects
                .iter()
                .any(|p| p.eq_ignore_ascii_case(&j.project)) =>
        {
            GoneReason::TakenOver
        }
        Some(_) => GoneReason::Moved,
    }
}

pub(super) fn plan_missing(input: &PlanInput<'_>, missing: &Missing, out: &mut Plan) {
    let reason = classify(input.rules, missing.found.as_ref());
    let policy = match reason {
        GoneReason::FilteredOut => input.rules.on_filtered_out,
        GoneReason::Deleted | GoneReason::Moved => input.rules.on_deleted,
        GoneReason::TakenOver => GonePolicy::Ignore,
    };
    let ours = input
        .gitlab
        .get(&missing.mirror.iid)
        .filter(|g| g.jira_id() == Some(missing.mirror.jira_id));
    out.actions.push(Action::MarkGone {
        mirror: missing.mirror.clone(),
        reason,
        edit: ours.and_then(|g| edit(g, reason, policy)),
    });
}

/// The edit the policy asks for, if the issue does not have it already.
fn edit(g: &GitlabIssue, reason: GoneReason, policy: GonePolicy) -> Option<IssueEdit> {
    let label = reason.gitlab_label()?;
    let mut edit = IssueEdit::default();
    if policy == GonePolicy::Ignore {
        return None;
    }
    if !g.labels.iter().any(|l| l == label) {
        edit.add_labels.push(label.to_string());
    }
    if policy == GonePolicy::Close && g.state == GitlabState::Opened {
        edit.state_event = Some(StateEvent::Close);
    }
    (edit != IssueEdit::default()).then_some(edit)
}
