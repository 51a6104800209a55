//! An issue's metadata beyond labels: assignees, milestone and due date, as GitLab filters them.
//!
//! - `assignee_ids` (a list, or a comma string) or the older `assignee_id`. On **Free only the
//!   first id is kept** (Premium keeps all). Ids of users who cannot read the project's issues
//!   (non-members of a private project, blocked or unknown users) are **silently dropped**; if
//!   every id is dropped, the assignees stay **as they were**. `[]`, `[0]`, `0`, `""` and `null`
//!   unassign everyone.
//! - `milestone_id`: a milestone of the project or of its groups; any other id is **silently
//!   ignored** (the milestone stays). `0`, `""` and `null` remove it. Closed milestones count.
//! - `due_date`: `YYYY-MM-DD`; `""`/`null` clear it. A string that is no date also clears it:
//!   Rails casts it to nil (UNVERIFIED on a live server; the API declares the field a String).
//! - Who: below Planner these fields (and labels) are **silently ignored on edit** — 200 with
//!   the old values. On create any member may set them (gitlab#300100), but only Planner and up
//!   create a label on the fly: a Guest's unknown label names are dropped.
//! - Malformed ids are a 400 whatever the role (Grape checks types first).

use chrono::NaiveDate;
use serde_json::Value;

use super::api::ApiError;
use super::params::Params;
use super::vsa::VsaStamps;
use super::{lock, render, FakeGitlab, Issue, Role, State, Tier, ROOT_USER_ID};

/// What an issue carries besides the core fields.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct IssuePlan {
    /// User ids, in the order given.
    pub(super) assignees: Vec<u64>,
    /// Global milestone id.
    pub(super) milestone: Option<u64>,
    pub(super) due_date: Option<NaiveDate>,
    /// `Issue::Metrics`: set on saves, never part of "did this edit change anything".
    pub(super) stamps: VsaStamps,
}

/// A request's metadata changes, already filtered by role and checked against the project.
#[derive(Debug, Default)]
pub(super) struct MetaEdit {
    assignees: Option<Vec<u64>>,
    milestone: Option<Option<u64>>,
    due_date: Option<Option<NaiveDate>>,
}

impl MetaEdit {
    pub(super) fn apply(self, issue: &mut Issue) {
        if let Some(a) = self.assignees {
            issue.plan.assignees = a;
        }
        if let Some(m) = self.milestone {
            issue.plan.milestone = m;
        }
        if let Some(d) = self.due_date {
            issue.plan.due_date = d;
        }
    }
}

/// What a test sees of an issue's metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct IssueMetadata {
    /// Usernames, in GitLab's order.
    pub assignees: Vec<String>,
    /// The milestone's title.
    pub milestone: Option<String>,
    pub due_date: Option<NaiveDate>,
}

/// Read and filter the metadata parameters of a create (`new`) or an edit.
pub(super) fn resolve(
    st: &State,
    project: usize,
    p: &Params,
    new: bool,
    role: Role,
) -> Result<MetaEdit, ApiError> {
    let assignees = match p.values("assignee_ids") {
        Some(v) => Some(ids(&v, "assignee_ids")?),
        None => p
            .values("assignee_id")
            .map(|v| ids(&v, "assignee_id"))
            .transpose()?,
    };
    let milestone = p
        .values("milestone_id")
        .map(|v| milestone_param(&v))
        .transpose()?;
    let due_date = p
        .values("due_date")
        .map(|v| due_date_param(&v))
        .transpose()?;
    // `set_issue_metadata`: Planner and up, or any member on a new issue.
    if !new && role < Role::Planner {
        return Ok(MetaEdit::default());
    }
    Ok(MetaEdit {
        assignees: assignees.and_then(|a| filter_assignees(st, project, a)),
        milestone: milestone.filter(|m| m.is_none_or(|id| st.milestone_visible(project, id))),
        due_date,
    })
}

/// Integers from a list or a comma string; blanks skipped.
fn ids(values: &[String], name: &str) -> Result<Vec<u64>, ApiError> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| v.parse::<u64>().map_err(|_| ApiError::invalid(name)))
        .collect()
}

/// GitLab's `filter_assignees_using_checks`; `None` leaves the assignees unchanged.
fn filter_assignees(st: &State, project: usize, mut wanted: Vec<u64>) -> Option<Vec<u64>> {
    if wanted.is_empty() {
        return Some(wanted);
    }
    if st.tier == Tier::Free {
        wanted.truncate(1);
    }
    if wanted == [0] {
        return Some(Vec::new());
    }
    let mut readable: Vec<u64> = Vec::new();
    for id in wanted {
        if st.can_read_issues(project, id) && !readable.contains(&id) {
            readable.push(id);
        }
    }
    (!readable.is_empty()).then_some(readable)
}

/// `Some(None)` removes the milestone.
fn milestone_param(values: &[String]) -> Result<Option<u64>, ApiError> {
    match values {
        [] => Ok(None),
        [one] if one.trim().is_empty() || one.trim() == "0" => Ok(None),
        [one] => one
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::invalid("milestone_id")),
        _ => Err(ApiError::invalid("milestone_id")),
    }
}

fn due_date_param(values: &[String]) -> Result<Option<NaiveDate>, ApiError> {
    match values {
        [] => Ok(None),
        [one] => Ok(parse_date(one)),
        _ => Err(ApiError::invalid("due_date")),
    }
}

/// A date as Rails casts it: ISO, or a slashed form; anything else is nil.
pub(super) fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    ["%Y-%m-%d", "%Y/%m/%d"]
        .iter()
        .find_map(|fmt| NaiveDate::parse_from_str(text, fmt).ok())
}

/// Labels a create may keep: all for Planner and up, only existing ones below.
pub(super) fn creatable_labels(
    st: &State,
    project: usize,
    role: Role,
    labels: Vec<String>,
) -> Vec<String> {
    if role >= Role::Planner {
        return labels;
    }
    labels
        .into_iter()
        .filter(|l| st.label_named(project, l).is_some())
        .collect()
}

impl State {
    /// Apply a create's metadata, then run the save's stamp check.
    pub(super) fn apply_new_issue_meta(&mut self, project: usize, iid: u64, meta: MetaEdit) {
        if let Some(issue) = self.projects[project].issues.get_mut(&iid) {
            meta.apply(issue);
        }
        self.restamp(project, iid);
    }
}

/// The issue's `milestone` object, or null.
pub(super) fn milestone_json(st: &State, issue: &Issue) -> Value {
    issue
        .plan
        .milestone
        .and_then(|id| st.milestone(id))
        .map(|m| super::milestones::milestone_json(st, m))
        .unwrap_or(Value::Null)
}

/// The issue's `assignees` (each a `UserBasic`).
pub(super) fn assignees_json(st: &State, issue: &Issue) -> Vec<Value> {
    issue
        .plan
        .assignees
        .iter()
        .map(|id| render::user_by_id(st, *id))
        .collect()
}

impl FakeGitlab {
    /// An issue's assignees, milestone and due date, as stored.
    pub fn issue_metadata(&self, project: &str, iid: u64) -> Option<IssueMetadata> {
        let st = lock(&self.state);
        let pi = st.project_index_or_panic(project);
        let issue = st.projects[pi].issues.get(&iid)?;
        Some(IssueMetadata {
            assignees: issue
                .plan
                .assignees
                .iter()
                .map(|id| super::username(&st.users, *id))
                .collect(),
            milestone: issue
                .plan
                .milestone
                .and_then(|id| st.milestone(id))
                .map(|m| m.title.clone()),
            due_date: issue.plan.due_date,
        })
    }

    /// A person sets the assignees in the UI (no filtering: the UI offers members only).
    pub fn assign_by_hand(&self, project: &str, iid: u64, usernames: &[&str]) {
        let ids: Vec<u64> = usernames
            .iter()
            .map(|u| {
                self.user_id(u)
                    .unwrap_or_else(|| panic!("fake gitlab: no user {u:?}"))
            })
            .collect();
        self.edit_by_hand(project, iid, |issue, _| issue.plan.assignees = ids);
    }

    /// A person sets (or, with `None`, removes) the milestone by title, among those the
    /// project can use.
    pub fn set_milestone_by_hand(&self, project: &str, iid: u64, title: Option<&str>) {
        let id = title.map(|t| {
            let st = lock(&self.state);
            let pi = st.project_index_or_panic(project);
            let found = st
                .visible_milestones(pi)
                .find(|m| m.title == t)
                .map(|m| m.id);
            found.unwrap_or_else(|| panic!("fake gitlab: no milestone {t:?} for {project}"))
        });
        self.edit_by_hand(project, iid, |issue, _| issue.plan.milestone = id);
    }

    pub fn set_due_date_by_hand(&self, project: &str, iid: u64, due: Option<NaiveDate>) {
        self.edit_by_hand(project, iid, |issue, _| issue.plan.due_date = due);
    }

    /// A person adds and removes labels in the UI (as `root`): label events are recorded, a
    /// label nobody defined is created, and the save re-checks the VSA stamps.
    pub fn label_by_hand(&self, project: &str, iid: u64, add: &[&str], remove: &[&str]) {
        let mut st = lock(&self.state);
        let now = st.now();
        let tier = st.tier;
        let pi = st.project_index_or_panic(project);
        let issue = st.projects[pi]
            .issues
            .get_mut(&iid)
            .unwrap_or_else(|| panic!("fake gitlab: no issue #{iid} in {project}"));
        let before = issue.labels.clone();
        let owned = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        issue.add_labels(&owned(add), tier);
        issue.remove_labels(&owned(remove));
        if issue.labels != before {
            issue.updated_at = now;
        }
        st.record_label_changes(pi, iid, ROOT_USER_ID, now, &before);
        st.restamp(pi, iid);
    }
}

#[cfg(test)]
mod tests;
