//! The milestone a mirror should carry (`milestones`, issue 17 item 4), from the Jira issue's
//! planning fields: `"fixVersion"` — its last fix version; `"sprint"` — its current sprint (the
//! active one, else the latest it was in: an issue carried over holds several). The milestone
//! takes the version's start and release dates, or the sprint's start and end, and is closed
//! once the version is released or the sprint closed.
//!
//! What is not ours stays: a milestone of that title that exists (a person's, or a group's) is
//! reused as it is, never retitled or re-dated; it is only closed when Jira says the version
//! or sprint is over.

use chrono::NaiveDate;

use crate::domain::{GitlabIssue, JiraIssue, MilestoneRef, Planning, Sprint, SprintState};

/// Which Jira field gives a mirror its milestone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MilestoneSource {
    FixVersion,
    Sprint,
}

/// Why `milestones = "sprint"` cannot work for the mapping `who` on a Jira without a sprint
/// field, and the fix: the pass refuses to start with it and `check` names it.
pub fn no_sprint_field(who: &str) -> String {
    format!(
        "{who}: milestones = \"sprint\", but this Jira has no sprint field (it comes with Jira \
         Software): use milestones = \"fixVersion\" or remove the key"
    )
}

/// The milestone a Jira issue asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedMilestone {
    pub title: String,
    pub start: Option<NaiveDate>,
    /// GitLab refuses a due date that is not after the start date: such a start is dropped.
    pub due: Option<NaiveDate>,
    /// The version is released, or the sprint closed.
    pub over: bool,
}

/// A milestone GitLab has, as far as the rule needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenMilestone {
    pub id: u64,
    pub title: String,
    pub closed: bool,
}

/// What to do about the milestone an issue asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MilestoneStep {
    /// It exists and is as it should be.
    Use(u64),
    /// It exists, open, and Jira says it is over.
    Close(u64),
    /// It does not exist yet.
    Create(WantedMilestone),
}

/// The milestone `planning` asks for, if any.
pub fn wanted_milestone(source: MilestoneSource, planning: &Planning) -> Option<WantedMilestone> {
    let wanted = match source {
        MilestoneSource::FixVersion => {
            let v = planning.fix_versions.last()?;
            WantedMilestone {
                title: v.name.trim().to_string(),
                start: v.start_date,
                due: v.release_date,
                over: v.released,
            }
        }
        MilestoneSource::Sprint => {
            let s = current_sprint(&planning.sprints)?;
            WantedMilestone {
                title: s.name.trim().to_string(),
                start: s.start.map(|t| t.date_naive()),
                due: s.end.map(|t| t.date_naive()),
                over: s.state == SprintState::Closed,
            }
        }
    };
    if wanted.title.is_empty() {
        return None;
    }
    let start = wanted.start;
    Some(wanted.with_start(start))
}

impl WantedMilestone {
    /// With this start date, unless it is on or after the due date (GitLab refuses that).
    pub fn with_start(self, start: Option<NaiveDate>) -> WantedMilestone {
        let start = match (start, self.due) {
            (Some(start), Some(due)) if due <= start => None,
            (start, _) => start,
        };
        WantedMilestone { start, ..self }
    }
}

/// The active sprint (the last listed if several), else the latest: by start, then end, then
/// id (a future sprint without dates comes after every dated one).
fn current_sprint(sprints: &[Sprint]) -> Option<&Sprint> {
    let active = sprints
        .iter()
        .rev()
        .find(|s| s.state == SprintState::Active);
    active.or_else(|| {
        sprints.iter().max_by_key(|s| {
            let undated = s.start.is_none() && s.end.is_none();
            (undated, s.start, s.end, s.id)
        })
    })
}

/// The milestone to give `gitlab` when it differs from the one `jira` asks for. An issue
/// that asks for none keeps what it has (a milestone a person gave it stays); closed mirrors
/// get theirs too (see the README: the milestone says which release or sprint the work was
/// in, which GitLab's milestone pages and filters show for closed issues as well).
pub(super) fn to_set(
    source: Option<MilestoneSource>,
    jira: &JiraIssue,
    gitlab: &GitlabIssue,
) -> Option<MilestoneRef> {
    let wanted = wanted_milestone(source?, &jira.planning)?;
    let differs = gitlab.milestone.as_deref() != Some(wanted.title.as_str());
    differs.then_some(MilestoneRef {
        title: wanted.title,
        id: None,
    })
}

/// What the milestone `wanted` takes, given GitLab's milestone of that title (`seen`).
pub fn milestone_step(wanted: &WantedMilestone, seen: Option<&SeenMilestone>) -> MilestoneStep {
    match seen {
        None => MilestoneStep::Create(wanted.clone()),
        Some(m) if wanted.over && !m.closed => MilestoneStep::Close(m.id),
        Some(m) => MilestoneStep::Use(m.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FixVersion;
    use chrono::{TimeZone, Utc};

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 3, d).expect("a day")
    }

    fn version(name: &str, released: bool, start: Option<u32>, due: Option<u32>) -> FixVersion {
        FixVersion {
            name: name.into(),
            released,
            release_date: due.map(day),
            start_date: start.map(day),
        }
    }

    fn sprint(id: u64, name: &str, state: SprintState, start: Option<u32>) -> Sprint {
        let at = |d: u32| Utc.with_ymd_and_hms(2025, 3, d, 9, 0, 0).single();
        Sprint {
            id,
            name: name.into(),
            state,
            start: start.and_then(at),
            end: start.and_then(|d| at(d + 14)),
            complete: None,
        }
    }

    #[test]
    fn the_last_fix_version_gives_the_milestone_with_its_dates() {
        let planning = Planning {
            fix_versions: vec![
                version("1.0", true, None, Some(1)),
                version(" 1.1 ", false, Some(2), Some(16)),
            ],
            ..Planning::default()
        };
        let wanted = wanted_milestone(MilestoneSource::FixVersion, &planning);
        assert_eq!(
            wanted,
            Some(WantedMilestone {
                title: "1.1".into(),
                start: Some(day(2)),
                due: Some(day(16)),
                over: false,
            })
        );
        assert_eq!(wanted_milestone(MilestoneSource::Sprint, &planning), None);
        assert_eq!(
            wanted_milestone(MilestoneSource::FixVersion, &Planning::default()),
            None
        );
        let same_day = Planning {
            fix_versions: vec![version("2.0", true, Some(5), Some(5))],
            ..Planning::default()
        };
        let wanted = wanted_milestone(MilestoneSource::FixVersion, &same_day).expect("2.0");
        assert_eq!(
            (wanted.start, wanted.due, wanted.over),
            (None, Some(day(5)), true)
        );
    }

    #[test]
    fn the_active_sprint_else_the_latest_gives_the_milestone() {
        use SprintState::*;
        let carried = vec![
            sprint(1, "Sprint 1", Closed, Some(1)),
            sprint(2, "Sprint 2", Active, Some(15)),
            sprint(3, "Sprint 3", Future, None),
        ];
        let planning = |sprints: Vec<Sprint>| Planning {
            sprints,
            ..Planning::default()
        };
        let title = |sprints: Vec<Sprint>| {
            wanted_milestone(MilestoneSource::Sprint, &planning(sprints)).map(|m| m.title)
        };
        assert_eq!(title(carried.clone()), Some("Sprint 2".into()));
        let wanted = wanted_milestone(MilestoneSource::Sprint, &planning(carried[..2].to_vec()));
        let wanted = wanted.expect("Sprint 2");
        assert_eq!(
            (wanted.start, wanted.due, wanted.over),
            (Some(day(15)), Some(day(29)), false)
        );
        let closed = vec![
            sprint(4, "Sprint 4", Closed, Some(15)),
            sprint(1, "Sprint 1", Closed, Some(1)),
        ];
        let wanted = wanted_milestone(MilestoneSource::Sprint, &planning(closed)).expect("latest");
        assert_eq!((wanted.title.as_str(), wanted.over), ("Sprint 4", true));
        assert_eq!(
            title(vec![
                sprint(9, "Next", Future, None),
                sprint(1, "Old", Closed, Some(1))
            ]),
            Some("Next".into())
        );
        assert_eq!(title(vec![]), None);
    }

    #[test]
    fn an_existing_milestone_is_reused_and_closed_only_when_jira_says_it_is_over() {
        let wanted = |over| WantedMilestone {
            title: "1.1".into(),
            start: None,
            due: None,
            over,
        };
        let seen = |closed| SeenMilestone {
            id: 7,
            title: "1.1".into(),
            closed,
        };
        assert_eq!(
            milestone_step(&wanted(false), None),
            MilestoneStep::Create(wanted(false))
        );
        assert_eq!(
            milestone_step(&wanted(false), Some(&seen(false))),
            MilestoneStep::Use(7)
        );
        assert_eq!(
            milestone_step(&wanted(true), Some(&seen(false))),
            MilestoneStep::Close(7)
        );
        assert_eq!(
            milestone_step(&wanted(true), Some(&seen(true))),
            MilestoneStep::Use(7)
        );
        // A milestone a person closed while Jira's version is still open stays closed.
        assert_eq!(
            milestone_step(&wanted(false), Some(&seen(true))),
            MilestoneStep::Use(7)
        );
    }
}
