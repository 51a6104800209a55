//! Adopting the issues GitLab's Jira Automation recipe created. The recipe gave each Jira
//! issue the iid `<prefix><number>` (`key.replace("VSA-", "1000")`: VSA-5 → #10005), the
//! summary of the moment as title, no description, and no marker. Such an issue is this Jira
//! issue's only when it carries no marker and its title is the issue's summary, now or earlier
//! (the changelog tells), as titles are cleaned, whole or cut at GitLab's 255 characters. When
//! it was created proves nothing: someone may have taken the free slot in the UI within the
//! hour (when the recipe ran out of Automation runs, say), and a person's issue is not ours.
//! Anything else in the slot (another title, another issue's mirror, a marker lookalike) is
//! left alone.

use std::collections::HashSet;

use super::{PlanInput, Rules};
use crate::domain::{self, GitlabIid, GitlabIssue, JiraIssue, MAX_TITLE_CHARS};

/// GitLab keeps iids in a 32-bit column: a longer slot cannot exist.
const MAX_IID: u64 = i32::MAX as u64;

/// What the recipe slot of an unmirrored Jira issue holds.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Slot {
    /// No rule, no slot, or nothing there: create a mirror.
    Free,
    /// The recipe's issue for this Jira issue: adopt it.
    Adopt(GitlabIid),
    /// It already carries this issue's marker (found without a project scan).
    Ours(GitlabIid),
    /// Someone else's issue: leave it alone (why, in words), create a mirror.
    Foreign(GitlabIid, &'static str),
    /// Only the changelog (earlier summaries) can tell.
    NeedHistory,
}

/// The iid the recipe gave this Jira issue, if the mapping has a `seed_iid_prefix`, the issue
/// is in the mapping's project (a moved issue's old key is unknown) and the iid fits GitLab.
pub fn slot_iid(rules: &Rules, jira: &JiraIssue) -> Option<GitlabIid> {
    let prefix = rules.seed_iid_prefix.as_deref()?;
    if !jira
        .key
        .project()?
        .eq_ignore_ascii_case(&rules.jira_project)
    {
        return None;
    }
    // A prefix and number too long for 64 bits fit no slot either.
    let iid: u64 = format!("{prefix}{}", jira.key.number()?).parse().ok()?;
    (iid > 0 && iid <= MAX_IID).then_some(GitlabIid::new(iid))
}

pub(super) fn decide(
    input: &PlanInput<'_>,
    claimed: &HashSet<GitlabIid>,
    jira: &JiraIssue,
) -> Slot {
    let Some(iid) = slot_iid(input.rules, jira) else {
        return Slot::Free;
    };
    let Some(g) = input.gitlab.get(&iid) else {
        return Slot::Free;
    };
    match g.jira_id() {
        Some(id) if id == jira.id => return Slot::Ours(iid),
        Some(_) => return Slot::Foreign(iid, "it is another Jira issue's mirror"),
        None => {}
    }
    if g.marker_lookalike {
        return Slot::Foreign(
            iid,
            "its description holds a marker that is not this program's (not a number)",
        );
    }
    if claimed.contains(&iid) {
        return Slot::Foreign(iid, "another Jira issue of this page adopts it");
    }
    if titled_after(g, jira.summary.as_deref().unwrap_or("")) {
        return Slot::Adopt(iid);
    }
    match input.history.get(&jira.id) {
        None => Slot::NeedHistory,
        Some(h) if h.earlier_summaries.iter().any(|s| titled_after(g, s)) => Slot::Adopt(iid),
        Some(_) => Slot::Foreign(iid, "its title was never the Jira summary"),
    }
}

/// Whether the issue's title is `summary`: both cleaned (GitLab trims titles and the recipe
/// copied the raw summary), whole or cut at GitLab's 255 characters (plainly, or as this
/// program cuts titles, with an ellipsis).
fn titled_after(g: &GitlabIssue, summary: &str) -> bool {
    let summary = domain::clean_title(summary);
    if summary.is_empty() {
        return false;
    }
    let title = domain::clean_title(&g.title);
    if title == summary {
        return true;
    }
    if summary.chars().count() <= MAX_TITLE_CHARS {
        return false;
    }
    let cut: String = summary.chars().take(MAX_TITLE_CHARS).collect();
    title == cut.trim_end() || title == domain::cut_title(&summary)
}
