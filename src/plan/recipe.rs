//! Adopting the issues GitLab's Jira Automation recipe created. The recipe gave each Jira
//! issue the iid `<prefix><number>` (`key.replace("VSA-", "1000")`: VSA-5 → #10005), the
//! summary of the moment as title, no description, and no marker. Such an issue is this Jira
//! issue's when it carries no marker and either its title is the issue's summary (now or
//! earlier: the changelog tells) or it was created within an hour after the Jira issue (the
//! rule ran on "issue created"). Anything else in the slot (an issue someone made in the UI
//! that took the iid, another issue's mirror) is left alone.

use std::collections::HashSet;

use chrono::Duration;

use super::{PlanInput, Rules};
use crate::domain::{self, GitlabIssue, JiraIssue};

/// GitLab keeps iids in a 32-bit column: a longer slot cannot exist.
const MAX_IID: u64 = i32::MAX as u64;

/// What the recipe slot of an unmirrored Jira issue holds.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Slot {
    /// No rule, no slot, or nothing there: create a mirror.
    Free,
    /// The recipe's issue for this Jira issue: adopt it.
    Adopt(u64),
    /// It already carries this issue's marker (found without a project scan).
    Ours(u64),
    /// Someone else's issue: leave it alone, create a mirror.
    Foreign(u64),
    /// Only the changelog (earlier summaries) can tell.
    NeedHistory,
}

/// The iid the recipe gave this Jira issue, if the mapping has a `seed_iid_prefix`, the issue
/// is in the mapping's project (a moved issue's old key is unknown) and the iid fits GitLab.
pub fn slot_iid(rules: &Rules, jira: &JiraIssue) -> Option<u64> {
    let prefix = rules.seed_iid_prefix.as_deref()?;
    let (project, _) = jira.key.rsplit_once('-')?;
    if !project.eq_ignore_ascii_case(&rules.jira_project) {
        return None;
    }
    let iid: u64 = format!("{prefix}{}", jira.key_number()?).parse().ok()?;
    (iid > 0 && iid <= MAX_IID).then_some(iid)
}

pub(super) fn decide(input: &PlanInput<'_>, claimed: &HashSet<u64>, jira: &JiraIssue) -> Slot {
    let Some(iid) = slot_iid(input.rules, jira) else {
        return Slot::Free;
    };
    let Some(g) = input.gitlab.get(&iid) else {
        return Slot::Free;
    };
    match g.jira_id() {
        Some(id) if id == jira.id => return Slot::Ours(iid),
        Some(_) => return Slot::Foreign(iid),
        None => {}
    }
    if claimed.contains(&iid) {
        return Slot::Foreign(iid);
    }
    let summary = domain::clean_title(jira.summary.as_deref().unwrap_or(""));
    if same_title(g, &summary) || created_by_the_rule(g, jira) {
        return Slot::Adopt(iid);
    }
    match input.history.get(&jira.id) {
        None => Slot::NeedHistory,
        Some(h)
            if h.earlier_summaries
                .iter()
                .any(|s| same_title(g, &domain::clean_title(s))) =>
        {
            Slot::Adopt(iid)
        }
        Some(_) => Slot::Foreign(iid),
    }
}

/// GitLab trims titles and the recipe copied the raw summary: compare both cleaned.
fn same_title(g: &GitlabIssue, cleaned_summary: &str) -> bool {
    !cleaned_summary.is_empty() && domain::clean_title(&g.title) == cleaned_summary
}

/// The rule runs on "issue created": its issue appears within the hour after the Jira issue
/// (a few minutes before are allowed for clock skew between the two servers).
fn created_by_the_rule(g: &GitlabIssue, jira: &JiraIssue) -> bool {
    g.created_at.is_some_and(|at| {
        at >= jira.created - Duration::minutes(5) && at <= jira.created + Duration::hours(1)
    })
}
