//! Per-status labels: exactly one `<scope>::<Jira status>` label on each mirror. Exclusive
//! scoped labels exist only on GitLab's paid tiers, so every change adds the new label and
//! removes the old ones in the same request.
//!
//! With a token that may backdate, a change replays the changelog: one request per status
//! the issue went through since the label GitLab shows, each stamped with the transition's
//! time, so GitLab's label events (what VSA custom stages measure) carry Jira's times. A new
//! mirror is created with the issue's first status and replays the rest.

use chrono::{DateTime, Utc};

use super::{LabelStep, PlanInput};
use crate::domain::{self, IssueHistory, JiraIssue};

pub(super) enum Labels {
    Unchanged,
    NeedHistory,
    Steps(Vec<LabelStep>),
}

/// The label changes an existing mirror with `current` labels needs.
pub(super) fn steps(input: &PlanInput<'_>, jira: &JiraIssue, current: &[String]) -> Labels {
    let Some((scope, desired)) = desired(input, jira) else {
        return Labels::Unchanged;
    };
    let prefix = format!("{scope}::");
    let scoped: Vec<&String> = current.iter().filter(|l| l.starts_with(&prefix)).collect();
    if scoped.len() == 1 && *scoped[0] == desired {
        return Labels::Unchanged;
    }
    // The changelog is read whenever the label changes, also without backdating: its
    // transitions are what `report` measures time in status with.
    let Some(history) = input.history.get(&jira.id) else {
        return Labels::NeedHistory;
    };
    let others = |add: &str| -> Vec<String> {
        scoped
            .iter()
            .filter(|l| l.as_str() != add)
            .map(|l| l.to_string())
            .collect()
    };
    if !input.backdate {
        return Labels::Steps(vec![LabelStep {
            remove: others(&desired),
            add: desired,
            at: None,
        }]);
    }
    let visited = visited(scope, jira, history, &desired);
    // Replay from the last status GitLab already shows (the whole history if none).
    let start = visited
        .iter()
        .rposition(|(label, _)| scoped.contains(&label))
        .map_or(0, |i| i + 1);
    if start >= visited.len() {
        // The newest status is there, next to labels that should not be.
        return Labels::Steps(vec![LabelStep {
            remove: others(&desired),
            add: desired,
            at: None,
        }]);
    }
    let mut out = Vec::new();
    for (i, (label, at)) in visited.iter().enumerate().skip(start) {
        let remove = if i == start {
            others(label)
        } else {
            vec![visited[i - 1].0.clone()]
        };
        out.push(LabelStep {
            add: label.clone(),
            remove,
            at: *at,
        });
    }
    Labels::Steps(out)
}

/// The status label to create a mirror with and the changes to replay after; `None` when the
/// changelog is needed first.
pub(super) fn for_create(
    input: &PlanInput<'_>,
    jira: &JiraIssue,
) -> Option<(Option<String>, Vec<LabelStep>)> {
    let Some((scope, desired)) = desired(input, jira) else {
        return Some((None, Vec::new()));
    };
    let history = input.history.get(&jira.id)?;
    if !input.backdate {
        return Some((Some(desired), Vec::new()));
    }
    let visited = visited(scope, jira, history, &desired);
    let first = visited
        .first()
        .map_or_else(|| desired.clone(), |(l, _)| l.clone());
    let steps = visited
        .windows(2)
        .map(|w| LabelStep {
            add: w[1].0.clone(),
            remove: vec![w[0].0.clone()],
            at: w[1].1,
        })
        .collect();
    Some((Some(first), steps))
}

/// The scope and the label the issue should carry now, when status labels are on and Jira
/// named the status.
fn desired<'a>(input: &'a PlanInput<'_>, jira: &JiraIssue) -> Option<(&'a str, String)> {
    let scope = input.rules.status_labels.as_deref()?;
    let status = jira.status.as_deref().filter(|s| !s.trim().is_empty())?;
    Some((scope, domain::status_label(scope, status)))
}

/// The status labels the issue went through, with when it entered each: its first status at
/// creation, then every transition. Repeats collapse; the list always ends at `desired`.
fn visited(
    scope: &str,
    jira: &JiraIssue,
    history: &IssueHistory,
    desired: &str,
) -> Vec<(String, Option<DateTime<Utc>>)> {
    let first = history
        .transitions
        .first()
        .and_then(|t| t.from.as_deref())
        .or(jira.status.as_deref())
        .map(|s| domain::status_label(scope, s))
        .unwrap_or_else(|| desired.to_string());
    let mut out: Vec<(String, Option<DateTime<Utc>>)> = vec![(first, Some(jira.created))];
    // The changelog is read fresh, the issue maybe from a lagging search: transitions after the
    // version being planned are that version's future, and are replayed when it arrives.
    for t in history.transitions.iter().filter(|t| t.at <= jira.updated) {
        let label = domain::status_label(scope, &t.to);
        if out.last().is_some_and(|(l, _)| *l == label) {
            continue;
        }
        out.push((label, Some(t.at)));
    }
    if out.last().is_none_or(|(l, _)| l != desired) {
        // The changelog does not end where Jira's status is (a renamed status): the change is
        // made now rather than guessed.
        out.push((desired.to_string(), None));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{StatusCategory, Transition};
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0)
            .single()
            .expect("time")
    }

    #[test]
    fn a_lagging_version_replays_only_the_transitions_it_had_seen() {
        // The search serves the issue as it was at t100 (In Progress); the changelog, read
        // fresh, already knows the move to Done at t200.
        let jira = JiraIssue {
            id: crate::domain::JiraId(1),
            key: "VSA-1".parse().expect("key"),
            summary: Some("x".into()),
            category: StatusCategory::InProgress,
            status: Some("In Progress".into()),
            issue_type: None,
            project: "VSA".into(),
            created: at(0),
            updated: at(100),
            resolved: None,
            planning: Default::default(),
        };
        let history = IssueHistory {
            transitions: vec![
                Transition {
                    at: at(100),
                    from: Some("To Do".into()),
                    to: "In Progress".into(),
                },
                Transition {
                    at: at(200),
                    from: Some("In Progress".into()),
                    to: "Done".into(),
                },
            ],
            earlier_summaries: vec![],
        };
        let desired = domain::status_label("s", "In Progress");
        let seen = visited("s", &jira, &history, &desired);
        assert_eq!(
            seen,
            vec![
                (domain::status_label("s", "To Do"), Some(at(0))),
                (desired, Some(at(100))),
            ],
            "not Done yet, and no step back to In Progress stamped now"
        );
    }
}
