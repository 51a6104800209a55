//! The planner: a pure function from what is (Jira issues, stored mirrors, GitLab issues) to
//! the actions that make GitLab agree with Jira. It holds the product's rules and does no I/O,
//! so it can be tested exhaustively; `apply` carries the actions out.
//!
//! Rules:
//! - one GitLab issue per Jira issue id; an existing one is found by the stored mirror, else by
//!   the marker in its description (adopted, never duplicated), else it is created;
//! - title = cleaned Jira summary; closed ⇔ status category `done`; an unknown category leaves
//!   the GitLab state alone;
//! - the description keeps the link to the issue's current key and the marker;
//! - a Jira version older than the one a mirror last applied is never applied (search is
//!   eventually consistent and may serve it late); the version last applied is compared again
//!   only on a full pass (which repairs hand edits in GitLab).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::domain::{self, GitlabIssue, GitlabState, IssueEdit, JiraIssue, Mirror, StateEvent};

pub struct PlanInput<'a> {
    pub jira: &'a [JiraIssue],
    pub mirrors: &'a HashMap<String, Mirror>,
    /// GitLab issues by iid: those of the mirrors in question, or the whole project.
    pub gitlab: &'a HashMap<u64, GitlabIssue>,
    /// Jira id → iid of GitLab issues that carry that id's marker (from a project scan).
    pub by_marker: &'a HashMap<String, u64>,
    pub jira_base_url: &'a str,
    /// Compare issues whose version was already applied too: a full pass repairs drift.
    pub recheck_applied: bool,
}

/// How a Jira version relates to what its mirror last applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Not applied yet (or no mirror): compare with GitLab.
    New,
    /// This very version was applied: GitLab agreed with it then.
    Applied,
    /// Older than the version applied: a late answer from the search index, never applied.
    Stale,
}

pub fn freshness(jira: &JiraIssue, mirror: Option<&Mirror>) -> Freshness {
    match mirror.and_then(|m| m.applied) {
        Some(applied) if jira.updated < applied => Freshness::Stale,
        Some(applied) if jira.updated == applied => Freshness::Applied,
        _ => Freshness::New,
    }
}

/// Whether a Jira version must be compared with its GitLab issue (and so the GitLab issue read).
pub fn needs_compare(jira: &JiraIssue, mirror: Option<&Mirror>, recheck_applied: bool) -> bool {
    match freshness(jira, mirror) {
        Freshness::New => true,
        Freshness::Applied => recheck_applied,
        Freshness::Stale => false,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// No GitLab issue exists for this Jira issue: create one (and close it if Jira says done).
    Create {
        jira: JiraIssue,
        title: String,
        description: String,
        close: bool,
    },
    /// Record the link to an existing GitLab issue: found by its marker (`adopted`), or the
    /// Jira key changed.
    Link { mirror: Mirror, adopted: bool },
    /// Change an existing GitLab issue.
    Update {
        jira: JiraIssue,
        iid: u64,
        edit: IssueEdit,
    },
}

impl Action {
    pub fn jira_key(&self) -> &str {
        match self {
            Action::Create { jira, .. } | Action::Update { jira, .. } => &jira.key,
            Action::Link { mirror, .. } => &mirror.jira_key,
        }
    }

    /// One line for `--dry-run` and logs.
    pub fn describe(&self) -> String {
        match self {
            Action::Create {
                jira, title, close, ..
            } => format!(
                "create  {} \"{}\"{}",
                jira.key,
                title,
                if *close {
                    " (then close: done in Jira)"
                } else {
                    ""
                }
            ),
            Action::Link {
                mirror,
                adopted: true,
            } => {
                format!(
                    "adopt   {} → #{} (found by its marker)",
                    mirror.jira_key, mirror.iid
                )
            }
            Action::Link {
                mirror,
                adopted: false,
            } => {
                format!(
                    "relink  {} → #{} (Jira key changed)",
                    mirror.jira_key, mirror.iid
                )
            }
            Action::Update { jira, iid, edit } => {
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
                format!("update  {} #{iid}: {}", jira.key, parts.join(", "))
            }
        }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Jira issues whose GitLab issue already agrees.
    pub unchanged: u64,
    /// Mirrors found to agree with a Jira version they had not recorded as applied:
    /// (Jira id, that version's `updated`).
    pub settled: Vec<(String, DateTime<Utc>)>,
    /// Things worth a warning that are not failures (an unknown status category).
    pub notes: Vec<String>,
}

pub fn plan(input: &PlanInput<'_>) -> Plan {
    let mut out = Plan::default();
    for jira in latest_by_id(input.jira) {
        plan_issue(input, jira, &mut out);
    }
    out
}

/// The overlap window returns issues more than once: keep each id's newest version, in the
/// order Jira created them (so GitLab iids follow Jira's order on a backfill).
fn latest_by_id(issues: &[JiraIssue]) -> Vec<&JiraIssue> {
    let mut by_id: HashMap<&str, &JiraIssue> = HashMap::with_capacity(issues.len());
    for i in issues {
        by_id
            .entry(i.id.as_str())
            .and_modify(|cur| {
                if i.updated >= cur.updated {
                    *cur = i;
                }
            })
            .or_insert(i);
    }
    let mut v: Vec<&JiraIssue> = by_id.into_values().collect();
    v.sort_by(|a, b| (a.created, a.id.len(), &a.id).cmp(&(b.created, b.id.len(), &b.id)));
    v
}

fn plan_issue(input: &PlanInput<'_>, jira: &JiraIssue, out: &mut Plan) {
    let mirror = input.mirrors.get(&jira.id);
    if !needs_compare(jira, mirror, input.recheck_applied) {
        out.unchanged += 1;
        return;
    }
    let title = domain::title(jira);
    let wants_closed = jira.category.wants_closed();
    if wants_closed.is_none() {
        out.notes.push(format!(
            "{}: status category {:?} is not new/indeterminate/done; its GitLab state is left as it is",
            jira.key, jira.category
        ));
    }
    // A linked iid whose issue carries another Jira issue's marker is not ours any more (the
    // project was recreated, iids restarted): it is never edited.
    let is_ours = |iid: &u64| {
        input
            .gitlab
            .get(iid)
            .is_some_and(|g| g.jira_id().is_none_or(|id| id == jira.id))
    };
    let existing = mirror
        .map(|m| m.iid)
        .filter(is_ours)
        .or_else(|| input.by_marker.get(&jira.id).copied().filter(is_ours));
    let Some(iid) = existing else {
        out.actions.push(Action::Create {
            jira: jira.clone(),
            title,
            description: domain::description(input.jira_base_url, jira),
            close: wants_closed == Some(true),
        });
        return;
    };
    let Some(gitlab) = input.gitlab.get(&iid) else {
        return;
    };
    let mut changed = false;
    if mirror.is_none_or(|m| m.iid != iid || m.jira_key != jira.key) {
        out.actions.push(Action::Link {
            mirror: Mirror {
                jira_id: jira.id.clone(),
                jira_key: jira.key.clone(),
                iid,
                applied: Some(jira.updated),
            },
            adopted: mirror.is_none_or(|m| m.iid != iid),
        });
        changed = true;
    }
    let edit = IssueEdit {
        title: (gitlab.title != title).then_some(title),
        description: (!domain::description_is_current(input.jira_base_url, jira, gitlab))
            .then(|| domain::description(input.jira_base_url, jira)),
        state_event: match (wants_closed, gitlab.state) {
            (Some(true), GitlabState::Opened) => Some(StateEvent::Close),
            (Some(false), GitlabState::Closed) => Some(StateEvent::Reopen),
            _ => None,
        },
        updated_at: None,
    };
    if edit != IssueEdit::default() {
        out.actions.push(Action::Update {
            jira: jira.clone(),
            iid,
            edit,
        });
        changed = true;
    }
    if !changed {
        out.unchanged += 1;
        if mirror.is_some_and(|m| m.applied != Some(jira.updated)) {
            out.settled.push((jira.id.clone(), jira.updated));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::StatusCategory;
    use crate::rng::Xorshift;
    use chrono::{TimeZone, Utc};

    const BASE: &str = "https://acme.atlassian.net";

    fn jira(id: u32, summary: &str, category: StatusCategory) -> JiraIssue {
        let t = Utc
            .timestamp_opt(1_700_000_000 + i64::from(id), 0)
            .single()
            .expect("time");
        JiraIssue {
            id: id.to_string(),
            key: format!("VSA-{id}"),
            summary: Some(summary.to_string()),
            category,
            created: t,
            updated: t,
            resolved: None,
        }
    }

    fn mirrored(j: &JiraIssue, iid: u64, state: GitlabState) -> (Mirror, GitlabIssue) {
        (
            Mirror {
                jira_id: j.id.clone(),
                jira_key: j.key.clone(),
                iid,
                applied: None,
            },
            GitlabIssue::new(iid, domain::title(j), state, &domain::description(BASE, j)),
        )
    }

    struct World {
        mirrors: HashMap<String, Mirror>,
        gitlab: HashMap<u64, GitlabIssue>,
        by_marker: HashMap<String, u64>,
    }

    impl World {
        fn new() -> Self {
            World {
                mirrors: HashMap::new(),
                gitlab: HashMap::new(),
                by_marker: HashMap::new(),
            }
        }
        fn plan(&self, jira: &[JiraIssue]) -> Plan {
            plan(&PlanInput {
                jira,
                mirrors: &self.mirrors,
                gitlab: &self.gitlab,
                by_marker: &self.by_marker,
                jira_base_url: BASE,
                recheck_applied: true,
            })
        }
        /// What `apply` does, on the model.
        fn apply(&mut self, plan: &Plan) {
            for a in &plan.actions {
                match a {
                    Action::Create {
                        jira,
                        title,
                        description,
                        close,
                    } => {
                        let iid = self.gitlab.keys().max().copied().unwrap_or(0) + 1;
                        let state = if *close {
                            GitlabState::Closed
                        } else {
                            GitlabState::Opened
                        };
                        self.gitlab.insert(
                            iid,
                            GitlabIssue::new(iid, title.clone(), state, description),
                        );
                        self.mirrors.insert(
                            jira.id.clone(),
                            Mirror {
                                jira_id: jira.id.clone(),
                                jira_key: jira.key.clone(),
                                iid,
                                applied: Some(jira.updated),
                            },
                        );
                    }
                    Action::Link { mirror, .. } => {
                        self.mirrors.insert(mirror.jira_id.clone(), mirror.clone());
                    }
                    Action::Update { iid, edit, jira } => {
                        if let Some(m) = self.mirrors.get_mut(&jira.id) {
                            m.applied = Some(jira.updated);
                        }
                        let g = self.gitlab.get_mut(iid).expect("planned on a known issue");
                        if let Some(t) = &edit.title {
                            g.title = t.clone();
                        }
                        if let Some(d) = &edit.description {
                            g.set_description(d);
                        }
                        match edit.state_event {
                            Some(StateEvent::Close) => g.state = GitlabState::Closed,
                            Some(StateEvent::Reopen) => g.state = GitlabState::Opened,
                            None => {}
                        }
                    }
                }
            }
            for (id, updated) in &plan.settled {
                if let Some(m) = self.mirrors.get_mut(id) {
                    m.applied = Some(*updated);
                }
            }
        }
    }

    #[test]
    fn new_issue_is_created_and_done_one_is_created_closed() {
        let w = World::new();
        let p = w.plan(&[
            jira(1, "a", StatusCategory::New),
            jira(2, "b", StatusCategory::Done),
        ]);
        assert_eq!(p.actions.len(), 2);
        assert!(
            matches!(&p.actions[0], Action::Create { close: false, title, .. } if title == "a")
        );
        assert!(matches!(&p.actions[1], Action::Create { close: true, .. }));
    }

    #[test]
    fn agreeing_issue_needs_nothing() {
        let mut w = World::new();
        let j = jira(1, "a", StatusCategory::InProgress);
        let (m, g) = mirrored(&j, 5, GitlabState::Opened);
        w.mirrors.insert(j.id.clone(), m);
        w.gitlab.insert(5, g);
        let p = w.plan(std::slice::from_ref(&j));
        assert_eq!(
            p,
            Plan {
                actions: vec![],
                unchanged: 1,
                settled: vec![(j.id.clone(), j.updated)],
                notes: vec![]
            }
        );
    }

    #[test]
    fn resolve_reopen_and_rename_become_one_update_each() {
        let mut w = World::new();
        let done = jira(1, "renamed", StatusCategory::Done);
        let (m, mut g) = mirrored(&done, 5, GitlabState::Opened);
        g.title = "old".into();
        w.mirrors.insert(done.id.clone(), m);
        w.gitlab.insert(5, g);
        let reopened = jira(2, "b", StatusCategory::New);
        let (m, g) = mirrored(&reopened, 6, GitlabState::Closed);
        w.mirrors.insert(reopened.id.clone(), m);
        w.gitlab.insert(6, g);
        let p = w.plan(&[done, reopened]);
        assert_eq!(p.actions.len(), 2);
        match &p.actions[0] {
            Action::Update { iid: 5, edit, .. } => {
                assert_eq!(edit.state_event, Some(StateEvent::Close));
                assert_eq!(edit.title.as_deref(), Some("renamed"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            matches!(&p.actions[1], Action::Update { iid: 6, edit, .. } if edit.state_event == Some(StateEvent::Reopen) && edit.title.is_none())
        );
    }

    #[test]
    fn marker_found_issue_is_adopted_not_duplicated() {
        let mut w = World::new();
        let j = jira(1, "a", StatusCategory::New);
        let (_, g) = mirrored(&j, 9, GitlabState::Opened);
        w.gitlab.insert(9, g);
        w.by_marker.insert(j.id.clone(), 9);
        let p = w.plan(std::slice::from_ref(&j));
        assert_eq!(
            p.actions,
            vec![Action::Link {
                mirror: Mirror {
                    jira_id: "1".into(),
                    jira_key: "VSA-1".into(),
                    iid: 9,
                    applied: Some(j.updated),
                },
                adopted: true
            }]
        );
    }

    #[test]
    fn deleted_gitlab_issue_is_recreated_and_moved_key_relinked() {
        let mut w = World::new();
        let j = jira(1, "a", StatusCategory::New);
        let (m, _) = mirrored(&j, 9, GitlabState::Opened);
        w.mirrors.insert(j.id.clone(), m);
        let p = w.plan(std::slice::from_ref(&j));
        assert!(matches!(&p.actions[..], [Action::Create { .. }]));

        let mut w = World::new();
        let (m, g) = mirrored(&j, 3, GitlabState::Opened);
        w.mirrors.insert(j.id.clone(), m);
        w.gitlab.insert(3, g);
        let mut moved = j.clone();
        moved.key = "OPS-7".into();
        let p = w.plan(&[moved]);
        assert!(
            matches!(&p.actions[0], Action::Link { adopted: false, mirror } if mirror.jira_key == "OPS-7")
        );
        assert!(
            matches!(&p.actions[1], Action::Update { edit, .. } if edit.description.as_deref().is_some_and(|d| d.contains("OPS-7")))
        );
    }

    #[test]
    fn linked_iid_with_another_issues_marker_is_left_alone() {
        let mut w = World::new();
        let j = jira(1, "a", StatusCategory::New);
        let other = jira(2, "someone else's", StatusCategory::New);
        let (m, _) = mirrored(&j, 5, GitlabState::Opened);
        let (_, g) = mirrored(&other, 5, GitlabState::Opened);
        w.mirrors.insert(j.id.clone(), m);
        w.gitlab.insert(5, g);
        let p = w.plan(std::slice::from_ref(&j));
        assert!(
            matches!(&p.actions[..], [Action::Create { .. }]),
            "{:?}",
            p.actions
        );
    }

    #[test]
    fn unknown_category_keeps_state_and_is_noted() {
        let mut w = World::new();
        let j = jira(1, "a", StatusCategory::Unknown("undefined".into()));
        let (m, g) = mirrored(&j, 2, GitlabState::Closed);
        w.mirrors.insert(j.id.clone(), m);
        w.gitlab.insert(2, g);
        let p = w.plan(std::slice::from_ref(&j));
        assert!(p.actions.is_empty());
        assert_eq!(p.notes.len(), 1);
    }

    #[test]
    fn overlap_duplicates_collapse_to_the_newest_version() {
        let w = World::new();
        let old = jira(1, "old", StatusCategory::New);
        let mut new = old.clone();
        new.summary = Some("new".into());
        new.updated += chrono::Duration::seconds(5);
        let p = w.plan(&[new, old]);
        assert!(matches!(&p.actions[..], [Action::Create { title, .. }] if title == "new"));
    }

    /// Property: from any state, applying the plan and planning again yields nothing to do.
    #[test]
    fn an_older_version_than_the_one_applied_is_never_applied() {
        let mut w = World::new();
        let mut newer = jira(1, "Renamed", StatusCategory::Done);
        newer.updated += chrono::Duration::minutes(5);
        let (m, g) = mirrored(&newer, 1, GitlabState::Closed);
        w.mirrors.insert(
            newer.id.clone(),
            Mirror {
                applied: Some(newer.updated),
                ..m
            },
        );
        w.gitlab.insert(1, g);
        // The search index still serves the version before the rename and the close.
        let stale = jira(1, "Original", StatusCategory::New);
        let p = w.plan(&[stale]);
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert_eq!(p.unchanged, 1);
    }

    #[test]
    fn the_version_applied_is_compared_again_only_on_a_full_pass() {
        let mut w = World::new();
        let j = jira(1, "Same", StatusCategory::New);
        let (m, mut g) = mirrored(&j, 1, GitlabState::Opened);
        g.title = "edited by hand in GitLab".into();
        w.mirrors.insert(
            j.id.clone(),
            Mirror {
                applied: Some(j.updated),
                ..m
            },
        );
        w.gitlab.insert(1, g);
        let input = |recheck_applied| PlanInput {
            jira: std::slice::from_ref(&j),
            mirrors: &w.mirrors,
            gitlab: &w.gitlab,
            by_marker: &w.by_marker,
            jira_base_url: BASE,
            recheck_applied,
        };
        assert!(
            plan(&input(false)).actions.is_empty(),
            "incremental: nothing changed in Jira"
        );
        let full = plan(&input(true));
        assert!(
            matches!(&full.actions[..], [Action::Update { edit, .. }] if edit.title.as_deref() == Some("Same")),
            "{:?}",
            full.actions
        );
    }

    #[test]
    fn an_agreeing_mirror_records_the_version_it_agrees_with() {
        let mut w = World::new();
        let j = jira(1, "Agrees", StatusCategory::New);
        let (m, g) = mirrored(&j, 1, GitlabState::Opened);
        w.mirrors.insert(j.id.clone(), m);
        w.gitlab.insert(1, g);
        let p = w.plan(std::slice::from_ref(&j));
        assert!(p.actions.is_empty());
        assert_eq!(p.settled, vec![(j.id.clone(), j.updated)]);
        w.apply(&p);
        assert!(w.plan(&[j]).settled.is_empty(), "recorded once");
    }

    #[test]
    fn plan_is_a_fixpoint_after_apply() {
        let mut rng = Xorshift::new(20261125);
        let cats = [
            StatusCategory::New,
            StatusCategory::InProgress,
            StatusCategory::Done,
            StatusCategory::Unknown("undefined".into()),
        ];
        let summaries = ["a", "", "  \t", "é🚀 <b>x</b>", "long"];
        for case in 0..2000 {
            let n = 1 + rng.below(12) as u32;
            let mut issues = Vec::new();
            let mut w = World::new();
            for id in 1..=n {
                let mut s = summaries[rng.below(summaries.len() as u64) as usize].to_string();
                if s == "long" {
                    s = "x".repeat(300);
                }
                let j = jira(id, &s, cats[rng.below(cats.len() as u64) as usize].clone());
                // Arbitrary starting point: unmirrored, mirrored and drifted, mirrored but
                // deleted in GitLab, or only findable by marker.
                match rng.below(5) {
                    0 => {}
                    1 | 2 => {
                        let state = if rng.below(2) == 0 {
                            GitlabState::Opened
                        } else {
                            GitlabState::Closed
                        };
                        let (m, mut g) = mirrored(&j, u64::from(id) * 3, state);
                        if rng.below(2) == 0 {
                            g.title = "drifted".into();
                        }
                        if rng.below(4) == 0 {
                            g.set_description("edited by hand");
                        }
                        w.mirrors.insert(j.id.clone(), m);
                        w.gitlab.insert(g.iid, g);
                    }
                    3 => {
                        let (m, _) = mirrored(&j, u64::from(id) * 3, GitlabState::Opened);
                        w.mirrors.insert(j.id.clone(), m);
                    }
                    _ => {
                        let (_, g) = mirrored(&j, u64::from(id) * 3, GitlabState::Opened);
                        w.by_marker.insert(j.id.clone(), g.iid);
                        w.gitlab.insert(g.iid, g);
                    }
                }
                if rng.below(4) == 0 {
                    issues.push(j.clone());
                }
                issues.push(j);
            }
            let first = w.plan(&issues);
            w.apply(&first);
            let second = w.plan(&issues);
            assert!(
                second.actions.is_empty(),
                "case {case}: second plan {:?}",
                second.actions
            );
            assert_eq!(second.unchanged, u64::from(n), "case {case}");
            let iids: std::collections::HashSet<u64> = w.mirrors.values().map(|m| m.iid).collect();
            assert_eq!(
                iids.len(),
                n as usize,
                "case {case}: one GitLab issue per Jira issue"
            );
        }
    }
}
