//! Jira's labels, components, priority (`labels_from`) and due date (`due_date`) on the
//! mirror. The reconciler changes only what it set: the state database remembers, per mirror,
//! the labels and the due date it last wrote ([`SetFields`]). So a label a person adds in
//! GitLab stays, a label Jira drops goes, and an idle pass writes nothing.
//!
//! - Labels: add what Jira has and the record lacks, remove what the record has and Jira no
//!   longer has, in the same `add_labels`/`remove_labels` PUT as the rest of the edit. A mirror
//!   with no record yet (made before `labels_from` was switched on, or adopted) only gets
//!   labels added on its first pass.
//! - Due date: set when Jira's differs from the one last written; cleared when Jira clears it
//!   and a date was written. One set by hand in GitLab while Jira has none stays.
//! - A change made by hand to a label or date the reconciler wrote is not fought: it is
//!   overwritten only when that Jira field changes again.
//! - Assignee (`assignees`): Jira's assignee, when it maps to a GitLab project member
//!   (`people`), is set when GitLab shows another. When Jira unassigns (or its assignee maps to
//!   nobody), the mirror is unassigned only if GitLab still shows the user the reconciler
//!   assigned: someone a person assigned in GitLab stays.

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::domain::{GitlabIssue, IssueEdit, JiraIssue, SetFields};

use super::{PlanInput, Rules};

/// Which Jira fields become GitLab labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LabelSources {
    /// Jira labels, as GitLab labels of the same name.
    pub labels: bool,
    /// Components, as `component::<name>`.
    pub components: bool,
    /// The priority, as `priority::<name>`.
    pub priority: bool,
}

impl LabelSources {
    pub fn any(self) -> bool {
        self.labels || self.components || self.priority
    }
}

impl Rules {
    /// Whether the mapping mirrors any of these fields (and so keeps a record of them).
    pub fn mirrors_fields(&self) -> bool {
        self.labels_from.any() || self.due_date || self.assignees
    }
}

/// A label name GitLab keeps as one label: it splits `add_labels` on commas.
fn label_text(raw: &str) -> String {
    let name: String = raw
        .chars()
        .map(|c| if c == ',' || c.is_control() { ' ' } else { c })
        .collect();
    name.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The labels and due date `jira` wants on its mirror under `rules`: what is recorded once
/// written. Labels sorted, without repeats.
pub fn wanted(rules: &Rules, jira: &JiraIssue, people: &HashMap<String, u64>) -> SetFields {
    let p = &jira.planning;
    let src = rules.labels_from;
    let mut labels: Vec<String> = Vec::new();
    if src.labels {
        labels.extend(p.labels.iter().map(|l| label_text(l)));
    }
    if src.components {
        labels.extend(
            p.components
                .iter()
                .map(|c| format!("component::{}", label_text(c))),
        );
    }
    if src.priority {
        labels.extend(
            p.priority
                .iter()
                .map(|n| format!("priority::{}", label_text(n))),
        );
    }
    labels.retain(|l| !l.is_empty() && !l.ends_with("::"));
    labels.sort();
    labels.dedup();
    SetFields {
        labels,
        due: if rules.due_date { p.due } else { None },
        assignee: if rules.assignees {
            assignee(jira, people)
        } else {
            None
        },
    }
}

/// The GitLab user Jira's assignee maps to, if any.
pub fn assignee(jira: &JiraIssue, people: &HashMap<String, u64>) -> Option<u64> {
    let who = jira.planning.assignee.as_ref()?.identity()?;
    people.get(&who).copied()
}

/// Add to `edit` what makes the mirror's fields agree with `jira`, given what was last written
/// (`None`: nothing recorded yet). Whether anything was added.
pub fn add_changes(
    input: &PlanInput<'_>,
    jira: &JiraIssue,
    gitlab: &GitlabIssue,
    edit: &mut IssueEdit,
) -> bool {
    let set = input.set_fields.get(&jira.id);
    let current = &gitlab.assignees;
    apply(input.rules, jira, set, input.people, current, edit)
}

/// [`add_changes`], from its parts.
fn apply(
    rules: &Rules,
    jira: &JiraIssue,
    set: Option<&SetFields>,
    people: &HashMap<String, u64>,
    current: &[u64],
    edit: &mut IssueEdit,
) -> bool {
    if !rules.mirrors_fields() {
        return false;
    }
    let want = wanted(rules, jira, people);
    let none = SetFields::default();
    let had = set.unwrap_or(&none);
    let add: Vec<String> = want
        .labels
        .iter()
        .filter(|l| !had.labels.contains(l))
        .cloned()
        .collect();
    let remove: Vec<String> = had
        .labels
        .iter()
        .filter(|l| !want.labels.contains(l))
        .cloned()
        .collect();
    let due = due_change(rules, want.due, had.due);
    let assignees = assignee_change(rules, want.assignee, had.assignee, current);
    let changed = !add.is_empty() || !remove.is_empty() || due.is_some() || assignees.is_some();
    edit.assignee_ids = assignees;
    edit.add_labels.extend(add);
    edit.remove_labels.extend(remove);
    if due.is_some() {
        edit.due_date = due;
    }
    changed
}

/// `Some(new)` when the due date must be written (`Some(None)` clears it).
fn due_change(
    rules: &Rules,
    want: Option<NaiveDate>,
    had: Option<NaiveDate>,
) -> Option<Option<NaiveDate>> {
    (rules.due_date && want != had).then_some(want)
}

/// `Some(ids)` when the assignees must be written (`Some([])` unassigns).
fn assignee_change(
    rules: &Rules,
    want: Option<u64>,
    had: Option<u64>,
    current: &[u64],
) -> Option<Vec<u64>> {
    if !rules.assignees {
        return None;
    }
    match want {
        Some(u) if current != [u] => Some(vec![u]),
        Some(_) => None,
        // Only the user the reconciler assigned is taken off.
        None => had.filter(|h| current == [*h]).map(|_| Vec::new()),
    }
}

/// The due date and assignee parts of `edit` in words, for `--dry-run` and logs: `due
/// 2024-03-01`, `due date cleared`, `assign user 7`, `unassign` (labels are `action.rs`'s
/// `+label backend`, `-label priority::Low`).
pub fn describe(edit: &IssueEdit) -> Vec<String> {
    let due = edit.due_date.map(|d| match d {
        Some(d) => format!("due {d}"),
        None => "due date cleared".to_string(),
    });
    let assignee = edit.assignee_ids.as_ref().map(|ids| match ids.first() {
        Some(id) => format!("assign user {id}"),
        None => "unassign".to_string(),
    });
    due.into_iter().chain(assignee).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{JiraId, Planning, StatusCategory};
    use chrono::{TimeZone, Utc};

    fn jira(labels: &[&str], components: &[&str], priority: &str, due: Option<&str>) -> JiraIssue {
        let t = Utc.timestamp_opt(1_700_000_000, 0).single().expect("time");
        JiraIssue {
            id: JiraId::new(7),
            key: "VSA-7".parse().expect("key"),
            summary: Some("s".into()),
            category: StatusCategory::New,
            status: None,
            issue_type: None,
            project: "VSA".into(),
            created: t,
            updated: t,
            resolved: None,
            planning: Planning {
                labels: labels.iter().map(|s| s.to_string()).collect(),
                components: components.iter().map(|s| s.to_string()).collect(),
                priority: Some(priority.to_string()),
                due: due.map(|d| d.parse().expect("date")),
                ..Planning::default()
            },
        }
    }

    fn rules(labels: bool, components: bool, priority: bool, due_date: bool) -> Rules {
        Rules {
            labels_from: LabelSources {
                labels,
                components,
                priority,
            },
            due_date,
            ..Rules::default()
        }
    }

    #[test]
    fn labels_come_from_the_chosen_fields_only() {
        let j = jira(
            &["backend", "backend"],
            &["API, v2"],
            "High",
            Some("2024-03-01"),
        );
        let none = HashMap::new();
        let w = wanted(&rules(true, true, true, true), &j, &none);
        assert_eq!(w.labels, ["backend", "component::API v2", "priority::High"]);
        assert_eq!(w.due.map(|d| d.to_string()).as_deref(), Some("2024-03-01"));
        let w = wanted(&rules(false, false, true, false), &j, &none);
        assert_eq!(w.labels, ["priority::High"]);
        assert_eq!(w.due, None);
        let mut edit = IssueEdit::default();
        assert!(
            !apply(&Rules::default(), &j, None, &none, &[], &mut edit),
            "off by default"
        );
        assert_eq!(edit, IssueEdit::default());
    }

    #[test]
    fn an_assignee_is_set_when_mapped_and_only_the_reconcilers_is_taken_off() {
        let r = Rules {
            assignees: true,
            ..Rules::default()
        };
        let mut j = jira(&[], &[], "High", None);
        j.planning.assignee = Some(crate::domain::JiraUser {
            account_id: Some("5b10".into()),
            ..Default::default()
        });
        let people: HashMap<String, u64> = [("5b10".to_string(), 42)].into();
        let none = HashMap::new();
        let run =
            |j: &JiraIssue, people: &HashMap<String, u64>, had: Option<u64>, current: &[u64]| {
                let set = SetFields {
                    assignee: had,
                    ..SetFields::default()
                };
                let mut edit = IssueEdit::default();
                apply(&r, j, Some(&set), people, current, &mut edit);
                edit.assignee_ids
            };
        assert_eq!(run(&j, &people, None, &[]), Some(vec![42]));
        assert_eq!(
            run(&j, &people, None, &[7]),
            Some(vec![42]),
            "Jira's assignee wins"
        );
        assert_eq!(run(&j, &people, Some(42), &[42]), None, "idle");
        // Unmapped in GitLab: never guessed, and someone else's assignee stays.
        assert_eq!(run(&j, &none, None, &[7]), None);
        // Jira unassigns: the reconciler's assignee goes, a person's stays.
        j.planning.assignee = None;
        assert_eq!(run(&j, &people, Some(42), &[42]), Some(vec![]));
        assert_eq!(run(&j, &people, Some(42), &[7]), None);
        assert_eq!(run(&j, &people, None, &[]), None);
        assert_eq!(
            describe(&IssueEdit {
                assignee_ids: Some(vec![]),
                ..IssueEdit::default()
            }),
            ["unassign"]
        );
    }

    #[test]
    fn only_labels_the_reconciler_set_are_removed_and_an_idle_issue_changes_nothing() {
        let r = rules(true, false, true, true);
        let j = jira(&["backend"], &[], "High", Some("2024-03-01"));
        let none = HashMap::new();
        let add_changes = |j: &JiraIssue, set: Option<&SetFields>, edit: &mut IssueEdit| {
            apply(&r, j, set, &none, &[], edit)
        };
        // Nothing recorded (an existing or adopted mirror): only adds.
        let mut edit = IssueEdit::default();
        assert!(add_changes(&j, None, &mut edit));
        assert_eq!(edit.add_labels, ["backend", "priority::High"]);
        assert!(edit.remove_labels.is_empty());
        assert_eq!(
            edit.due_date,
            Some(Some("2024-03-01".parse().expect("date")))
        );
        // Recorded as written: nothing to do.
        let set = wanted(&r, &j, &none);
        let mut edit = IssueEdit::default();
        assert!(!add_changes(&j, Some(&set), &mut edit));
        assert_eq!(edit, IssueEdit::default());
        // Jira drops a label, changes the priority and clears the date: what was set goes.
        let later = jira(&[], &[], "Low", None);
        let mut edit = IssueEdit::default();
        assert!(add_changes(&later, Some(&set), &mut edit));
        assert_eq!(edit.add_labels, ["priority::Low"]);
        assert_eq!(edit.remove_labels, ["backend", "priority::High"]);
        assert_eq!(edit.due_date, Some(None));
        assert_eq!(describe(&edit), ["due date cleared"]);
        // No date in Jira and none written: a date set by hand in GitLab is left alone.
        let mut edit = IssueEdit::default();
        add_changes(&later, Some(&wanted(&r, &later, &none)), &mut edit);
        assert_eq!(edit.due_date, None);
    }
}
