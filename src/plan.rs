//! The planner: a pure function from what is (Jira issues, stored mirrors, GitLab issues) to
//! the actions that make GitLab agree with Jira. It holds the product's rules and does no I/O,
//! so it can be tested exhaustively; `apply` carries the actions out.
//!
//! Rules:
//! - one GitLab issue per Jira issue id; an existing one is found by the stored mirror, else by
//!   the marker in its description (adopted, never duplicated), else — with `seed_iid_prefix` —
//!   the Automation recipe's issue at iid `<prefix><number>` when it is recognisably the same
//!   (`recipe.rs`), else it is created;
//! - title = cleaned Jira summary; closed ⇔ status category `done`; an unknown category leaves
//!   the GitLab state alone;
//! - the description keeps the link to the issue's current key and the marker;
//! - with `status_labels`, exactly one `<scope>::<status>` label (`status.rs`); with
//!   `issue_types`, the mapped GitLab `issue_type`;
//! - a mirrored issue the search no longer returns is closed and/or labelled as configured
//!   (`gone.rs`), and un-labelled (and so reopened) when it comes back;
//! - a Jira version older than the one a mirror last applied is never applied (search is
//!   eventually consistent and may serve it late); the version last applied is compared again
//!   only on a full pass (which repairs hand edits in GitLab).
//!
//! When a rule needs an issue's changelog (status transition times, earlier summaries) and the
//! input has none for it, the plan says so in `wants_history`; the caller fetches those
//! changelogs and plans again. A changelog is wanted only for issues whose status label or
//! recipe match is in question, so an idle pass asks for none.

mod action;
mod board;
pub mod fields;
mod gone;
mod milestone;
mod recipe;
mod status;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::domain::{
    self, GitlabIid, GitlabIssue, GitlabState, GonePolicy, IssueEdit, IssueHistory, JiraId,
    JiraIssue, Mirror, SetFields, StateEvent,
};

pub use action::{describe_update, Action, LabelStep};
pub use board::{status_board, BoardChoice, BoardPlan, SeenBoard};
pub use fields::LabelSources;
pub use milestone::{
    milestone_step, no_sprint_field, wanted_milestone, MilestoneSource, MilestoneStep,
    SeenMilestone, WantedMilestone,
};
pub use recipe::slot_iid;

/// A mapping's rules beyond title and state (all off by default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// The mapping's Jira project key: recipe slots and "moved away" are judged by it.
    pub jira_project: String,
    /// The Automation recipe's iid prefix (`"1000"`: VSA-5 → #10005).
    pub seed_iid_prefix: Option<String>,
    /// The scope of per-status labels (`jira-status`).
    pub status_labels: Option<String>,
    /// Jira issue type name (any case) → GitLab `issue_type`.
    pub issue_types: BTreeMap<String, String>,
    pub on_deleted: GonePolicy,
    pub on_filtered_out: GonePolicy,
    /// Jira projects of the other mappings that feed the same GitLab project.
    pub sibling_projects: Vec<String>,
    /// Where a mirror's milestone comes from (`milestones`).
    pub milestones: Option<MilestoneSource>,
    /// Jira fields that become GitLab labels (`labels_from`).
    pub labels_from: LabelSources,
    /// Jira's due date as GitLab's `due_date`.
    pub due_date: bool,
    /// Jira's assignee as GitLab's.
    pub assignees: bool,
}

impl Rules {
    /// The GitLab `issue_type` a Jira issue should have; `None` when `issue_types` is not
    /// used (the type is then never changed).
    pub fn issue_type_for(&self, jira: &JiraIssue) -> Option<&str> {
        if self.issue_types.is_empty() {
            return None;
        }
        let name = jira.issue_type.as_deref().unwrap_or("");
        Some(
            self.issue_types
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map_or("issue", |(_, v)| v.as_str()),
        )
    }
}

/// A mirror of this mapping whose Jira issue the mapping's search no longer returns, with
/// what a look-up by id found (`None`: deleted, or invisible to the account).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    pub mirror: Mirror,
    pub found: Option<JiraIssue>,
}

pub struct PlanInput<'a> {
    pub jira: &'a [JiraIssue],
    pub mirrors: &'a HashMap<JiraId, Mirror>,
    /// GitLab issues by iid: those of the mirrors, markers and recipe slots in question.
    pub gitlab: &'a HashMap<GitlabIid, GitlabIssue>,
    /// Jira id → iid of GitLab issues that carry that id's marker (from a project scan), for the
    /// Jira issues in question.
    pub by_marker: &'a HashMap<JiraId, GitlabIid>,
    pub jira_base_url: &'a str,
    /// Compare issues whose version was already applied too: a full pass repairs drift.
    pub recheck_applied: bool,
    /// Iids that stored mirrors of other Jira issues point at, among the recipe slots asked
    /// about (the page's own mirrors are in `mirrors`): such a slot is not free.
    pub claimed: &'a HashSet<GitlabIid>,
    pub rules: &'a Rules,
    /// The token may backdate (Owner): status labels then replay the changelog with Jira's
    /// times, so GitLab's label events (and VSA stages built on them) carry Jira's times.
    pub backdate: bool,
    /// Changelogs fetched for this pass, by Jira id (an id absent was not fetched).
    pub history: &'a HashMap<JiraId, IssueHistory>,
    /// Full passes: mirrors whose Jira issue left the search.
    pub missing: &'a [Missing],
    /// What the reconciler last wrote of each mirror's Jira fields, by Jira id (absent: none
    /// recorded).
    pub set_fields: &'a HashMap<JiraId, SetFields>,
    /// GitLab user ids of the Jira assignees that map to a project member, by
    /// [`JiraUser::identity`](crate::domain::JiraUser::identity); others stay unassigned.
    pub people: &'a HashMap<String, u64>,
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

/// What the recipe rule decided, for `check` and the pass summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecipeTally {
    /// Recipe issues adopted.
    pub adopted: u64,
    /// Recipe slots holding someone else's issue: left alone, a new mirror is created.
    pub foreign: u64,
}

impl std::ops::AddAssign for RecipeTally {
    fn add_assign(&mut self, other: RecipeTally) {
        self.adopted += other.adopted;
        self.foreign += other.foreign;
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Jira issues whose GitLab issue already agrees.
    pub unchanged: u64,
    /// Mirrors found to agree with a Jira version they had not recorded as applied:
    /// (Jira id, that version's `updated`).
    pub settled: Vec<(JiraId, DateTime<Utc>)>,
    /// Things worth a warning that are not failures (an unknown status category).
    pub notes: Vec<String>,
    /// Jira ids whose changelog would decide something: fetch them and plan again.
    pub wants_history: BTreeSet<JiraId>,
    pub recipe: RecipeTally,
}

pub fn plan(input: &PlanInput<'_>) -> Plan {
    let mut out = Plan::default();
    // Iids some stored mirror already points at: a recipe slot among them is not free.
    let mut claimed: HashSet<GitlabIid> = input.mirrors.values().map(|m| m.iid).collect();
    claimed.extend(input.claimed);
    for jira in latest_by_id(input.jira) {
        plan_issue(input, &claimed, jira, &mut out);
    }
    for missing in input.missing {
        gone::plan_missing(input, missing, &mut out);
    }
    out
}

/// The overlap window returns issues more than once: keep each id's newest version, in the
/// order Jira created them (so GitLab iids follow Jira's order on a backfill).
fn latest_by_id(issues: &[JiraIssue]) -> Vec<&JiraIssue> {
    let mut by_id: HashMap<JiraId, &JiraIssue> = HashMap::with_capacity(issues.len());
    for i in issues {
        by_id
            .entry(i.id)
            .and_modify(|cur| {
                if i.updated >= cur.updated {
                    *cur = i;
                }
            })
            .or_insert(i);
    }
    let mut v: Vec<&JiraIssue> = by_id.into_values().collect();
    v.sort_by_key(|j| (j.created, j.id));
    v
}

/// What the GitLab issue of a Jira issue should show.
struct Wanted {
    title: String,
    /// `None`: the status category does not say (the state is left as it is).
    closed: Option<bool>,
}

/// The GitLab issue a Jira issue already has.
#[derive(Clone, Copy)]
struct Found {
    iid: GitlabIid,
    /// The Automation recipe's issue, to adopt.
    from_recipe: bool,
}

fn plan_issue(
    input: &PlanInput<'_>,
    claimed: &HashSet<GitlabIid>,
    jira: &JiraIssue,
    out: &mut Plan,
) {
    crate::test_fault(jira.summary.as_deref());
    let mirror = input.mirrors.get(&jira.id);
    if !needs_compare(jira, mirror, input.recheck_applied) {
        out.unchanged += 1;
        return;
    }
    let want = Wanted {
        title: domain::title(jira),
        closed: jira.category.wants_closed(),
    };
    if want.closed.is_none() {
        out.notes.push(format!(
            "{}: status category {:?} is not new/indeterminate/done; its GitLab state is left as it is",
            jira.key, jira.category
        ));
    }
    let Some(found) = find_issue(input, claimed, jira, mirror, &want, out) else {
        return;
    };
    let Some(gitlab) = input.gitlab.get(&found.iid) else {
        return;
    };
    let linked = plan_link(jira, mirror, found, out);
    let changed = plan_changes(input, jira, gitlab, found, want, out);
    if !linked && !changed {
        out.unchanged += 1;
        // Not settled while a changelog is still to decide the status label.
        if mirror.is_some_and(|m| m.applied != Some(jira.updated))
            && !out.wants_history.contains(&jira.id)
        {
            out.settled.push((jira.id, jira.updated));
        }
    }
}

/// The GitLab issue the Jira issue has: its mirror's, else the one carrying its marker, else
/// (with `seed_iid_prefix`) the recipe's. `None` when there is none: then a create is planned
/// (or the changelog asked for first).
fn find_issue(
    input: &PlanInput<'_>,
    claimed: &HashSet<GitlabIid>,
    jira: &JiraIssue,
    mirror: Option<&Mirror>,
    want: &Wanted,
    out: &mut Plan,
) -> Option<Found> {
    // A linked iid whose issue carries another Jira issue's marker is not ours any more (the
    // project was recreated, iids restarted): it is never edited.
    let is_ours = |iid: &GitlabIid| {
        input
            .gitlab
            .get(iid)
            .is_some_and(|g| g.jira_id().is_none_or(|id| id == jira.id))
    };
    let existing = mirror
        .map(|m| m.iid)
        .filter(is_ours)
        .or_else(|| input.by_marker.get(&jira.id).copied().filter(is_ours));
    if let Some(iid) = existing {
        return Some(Found {
            iid,
            from_recipe: false,
        });
    }
    let (iid, from_recipe) = match recipe::decide(input, claimed, jira) {
        recipe::Slot::Adopt(iid) => (iid, true),
        recipe::Slot::Ours(iid) => (iid, false),
        recipe::Slot::NeedHistory => {
            out.wants_history.insert(jira.id);
            return None;
        }
        recipe::Slot::Foreign(iid, why) => {
            out.recipe.foreign += 1;
            out.notes.push(format!(
                "{}: GitLab #{iid} is in the Automation recipe's slot but is not its issue ({why}); it is left alone and a new mirror is created",
                jira.key
            ));
            plan_create(input, jira, want, out);
            return None;
        }
        recipe::Slot::Free => {
            plan_create(input, jira, want, out);
            return None;
        }
    };
    Some(Found { iid, from_recipe })
}

/// Adopt the recipe's issue, or record the link when it is new (found by marker) or the key
/// changed. Whether an action was planned.
fn plan_link(jira: &JiraIssue, mirror: Option<&Mirror>, found: Found, out: &mut Plan) -> bool {
    let link = Mirror {
        jira_id: jira.id,
        jira_key: jira.key.clone(),
        iid: found.iid,
        applied: Some(jira.updated),
    };
    if found.from_recipe {
        out.actions.push(Action::AdoptRecipe {
            jira: jira.clone(),
            mirror: link,
        });
        out.recipe.adopted += 1;
        return true;
    }
    if mirror.is_none_or(|m| m.iid != found.iid || m.jira_key != jira.key) {
        out.actions.push(Action::Link {
            mirror: link,
            adopted: mirror.is_none_or(|m| m.iid != found.iid),
        });
        return true;
    }
    false
}

/// The edit (and status label replay) that makes `gitlab` agree with `jira`. Whether an
/// action was planned.
fn plan_changes(
    input: &PlanInput<'_>,
    jira: &JiraIssue,
    gitlab: &GitlabIssue,
    found: Found,
    want: Wanted,
    out: &mut Plan,
) -> bool {
    let mut edit = edit_for(input, jira, gitlab, found, want);
    fields::add_changes(input, jira, gitlab, &mut edit);
    let mut changed = false;
    match status::steps(input, jira, &gitlab.labels) {
        status::Labels::Unchanged => {}
        status::Labels::NeedHistory => {
            out.wants_history.insert(jira.id);
        }
        status::Labels::Steps(mut steps) if steps.len() == 1 => {
            // One change rides along with the rest of the edit: one request.
            let step = steps.remove(0);
            edit.add_labels.push(step.add);
            edit.remove_labels.extend(step.remove);
            edit.updated_at = step.at;
        }
        status::Labels::Steps(steps) => {
            out.actions.push(Action::Relabel {
                jira: jira.clone(),
                iid: found.iid,
                steps,
            });
            changed = true;
        }
    }
    if edit != IssueEdit::default() {
        out.actions.push(Action::Update {
            jira: jira.clone(),
            iid: found.iid,
            edit,
        });
        changed = true;
    }
    changed
}

/// Title, link, state, gone labels and type, where `gitlab` differs from what `jira` wants.
fn edit_for(
    input: &PlanInput<'_>,
    jira: &JiraIssue,
    gitlab: &GitlabIssue,
    found: Found,
    want: Wanted,
) -> IssueEdit {
    let current = domain::description_is_current(input.jira_base_url, jira, gitlab);
    IssueEdit {
        title: (gitlab.title != want.title).then_some(want.title),
        description: (!found.from_recipe && !current)
            .then(|| domain::description(input.jira_base_url, jira)),
        state_event: match (want.closed, gitlab.state) {
            (Some(true), GitlabState::Opened) => Some(StateEvent::Close),
            (Some(false), GitlabState::Closed) => Some(StateEvent::Reopen),
            _ => None,
        },
        // Back in the mapping (restored, visible again, matched again): the gone labels go,
        // and the state rule above reopens it.
        remove_labels: gitlab
            .labels
            .iter()
            .filter(|l| domain::GONE_LABELS.contains(&l.as_str()))
            .cloned()
            .collect(),
        issue_type: input
            .rules
            .issue_type_for(jira)
            .filter(|want| gitlab.issue_type.as_deref().is_some_and(|t| t != *want))
            .map(str::to_string),
        milestone: milestone::to_set(input.rules.milestones, jira, gitlab),
        ..IssueEdit::default()
    }
}

fn plan_create(input: &PlanInput<'_>, jira: &JiraIssue, want: &Wanted, out: &mut Plan) {
    let Some((status_label, steps)) = status::for_create(input, jira) else {
        out.wants_history.insert(jira.id);
        return;
    };
    out.actions.push(Action::Create {
        jira: jira.clone(),
        title: want.title.clone(),
        description: domain::description(input.jira_base_url, jira),
        close: want.closed == Some(true),
        status_label,
        issue_type: input
            .rules
            .issue_type_for(jira)
            .unwrap_or("issue")
            .to_string(),
        steps,
        milestone: input
            .rules
            .milestones
            .and_then(|source| wanted_milestone(source, &jira.planning))
            .map(|m| m.title),
        fields: fields::wanted(input.rules, jira, input.people),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{GoneReason, JiraKey, StatusCategory, Transition};
    use crate::rng::Xorshift;
    use chrono::{TimeZone, Utc};

    const BASE: &str = "https://acme.atlassian.net";

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0)
            .single()
            .expect("time")
    }

    fn key(k: &str) -> JiraKey {
        k.parse().expect("a key")
    }

    fn jira(id: u32, summary: &str, category: StatusCategory) -> JiraIssue {
        let t = at(i64::from(id));
        let status = match category {
            StatusCategory::New => "To Do",
            StatusCategory::InProgress => "In Progress",
            StatusCategory::Done => "Done",
            StatusCategory::Unknown(_) => "Limbo",
        };
        JiraIssue {
            id: JiraId(id.into()),
            key: key(&format!("VSA-{id}")),
            summary: Some(summary.to_string()),
            category,
            status: Some(status.to_string()),
            issue_type: Some("Task".to_string()),
            project: "VSA".to_string(),
            created: t,
            updated: t,
            resolved: None,
            planning: Default::default(),
        }
    }

    /// The description a mirror of `j` carries, written out here rather than made by
    /// `domain::description` (which is under test).
    fn ours(j: &JiraIssue) -> String {
        format!(
            "Mirrored from Jira issue [{key}]({BASE}/browse/{key}) by jira-gitlab-reconciler. \
             Jira is the source of truth: edit the title and status there.\n\n\
             <!-- jira-gitlab-reconciler:jira-id={id} -->\n",
            key = j.key,
            id = j.id
        )
    }

    /// A GitLab issue that agrees with `j` (whose summary is a plain title), and its link.
    fn mirrored(j: &JiraIssue, iid: u64, state: GitlabState) -> (Mirror, GitlabIssue) {
        let iid = GitlabIid(iid);
        (
            Mirror {
                jira_id: j.id,
                jira_key: j.key.clone(),
                iid,
                applied: None,
            },
            GitlabIssue {
                issue_type: Some("issue".into()),
                ..GitlabIssue::new(iid, j.summary.clone().unwrap_or_default(), state, &ours(j))
            },
        )
    }

    fn rules() -> Rules {
        Rules {
            jira_project: "VSA".into(),
            ..Rules::default()
        }
    }

    struct World {
        claimed: HashSet<GitlabIid>,
        mirrors: HashMap<JiraId, Mirror>,
        gitlab: HashMap<GitlabIid, GitlabIssue>,
        by_marker: HashMap<JiraId, GitlabIid>,
        rules: Rules,
        backdate: bool,
        /// Jira's changelogs: handed to the planner when it asks, as the reconciler does.
        histories: HashMap<JiraId, IssueHistory>,
        missing: Vec<Missing>,
        /// Changelog requests the planner caused (ids).
        history_asked: usize,
    }

    impl World {
        fn new() -> Self {
            World {
                claimed: HashSet::new(),
                mirrors: HashMap::new(),
                gitlab: HashMap::new(),
                by_marker: HashMap::new(),
                rules: rules(),
                backdate: false,
                histories: HashMap::new(),
                missing: Vec::new(),
                history_asked: 0,
            }
        }
        fn plan_with(&self, jira: &[JiraIssue], history: &HashMap<JiraId, IssueHistory>) -> Plan {
            plan(&PlanInput {
                jira,
                mirrors: &self.mirrors,
                gitlab: &self.gitlab,
                by_marker: &self.by_marker,
                jira_base_url: BASE,
                recheck_applied: true,
                claimed: &self.claimed,
                rules: &self.rules,
                backdate: self.backdate,
                history,
                missing: &self.missing,
                set_fields: &HashMap::new(),
                people: &HashMap::new(),
            })
        }
        /// Plan as the reconciler does: once, and again with the changelogs it asked for.
        fn plan(&mut self, jira: &[JiraIssue]) -> Plan {
            let first = self.plan_with(jira, &HashMap::new());
            if first.wants_history.is_empty() {
                return first;
            }
            self.history_asked += first.wants_history.len();
            let fetched: HashMap<JiraId, IssueHistory> = first
                .wants_history
                .iter()
                .map(|id| (*id, self.histories.get(id).cloned().unwrap_or_default()))
                .collect();
            let second = self.plan_with(jira, &fetched);
            assert!(
                second.wants_history.is_empty(),
                "asked twice: {:?}",
                second.wants_history
            );
            second
        }
        fn edit(&mut self, iid: GitlabIid, edit: &IssueEdit) {
            let g = self.gitlab.get_mut(&iid).expect("planned on a known issue");
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
            for l in &edit.add_labels {
                if !g.labels.contains(l) {
                    g.labels.push(l.clone());
                }
            }
            g.labels.retain(|l| !edit.remove_labels.contains(l));
            if let Some(t) = &edit.issue_type {
                g.issue_type = Some(t.clone().into());
            }
            if let Some(m) = &edit.milestone {
                g.milestone = Some(m.title.clone());
            }
        }
        fn step(&mut self, iid: GitlabIid, step: &LabelStep) {
            self.edit(
                iid,
                &IssueEdit {
                    add_labels: vec![step.add.clone()],
                    remove_labels: step.remove.clone(),
                    ..IssueEdit::default()
                },
            );
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
                        status_label,
                        issue_type,
                        steps,
                        milestone,
                        ..
                    } => {
                        let iid = GitlabIid(self.gitlab.keys().max().map_or(0, |i| i.0) + 1);
                        let state = if *close {
                            GitlabState::Closed
                        } else {
                            GitlabState::Opened
                        };
                        self.gitlab.insert(
                            iid,
                            GitlabIssue {
                                labels: status_label.iter().cloned().collect(),
                                issue_type: Some(issue_type.clone().into()),
                                milestone: milestone.clone(),
                                ..GitlabIssue::new(iid, title.clone(), state, description)
                            },
                        );
                        for s in steps {
                            self.step(iid, s);
                        }
                        self.mirrors.insert(
                            jira.id,
                            Mirror {
                                jira_id: jira.id,
                                jira_key: jira.key.clone(),
                                iid,
                                applied: Some(jira.updated),
                            },
                        );
                    }
                    Action::Link { mirror, .. } => {
                        self.mirrors.insert(mirror.jira_id, mirror.clone());
                    }
                    Action::AdoptRecipe { jira, mirror } => {
                        // The recipe's issue has no marker: its text is kept, ours appended.
                        let edit = IssueEdit {
                            description: Some(domain::adopted_description(
                                "Created by the recipe",
                                BASE,
                                jira,
                            )),
                            ..IssueEdit::default()
                        };
                        self.edit(mirror.iid, &edit);
                        self.mirrors.insert(mirror.jira_id, mirror.clone());
                    }
                    Action::Update { iid, edit, jira } => {
                        self.settle(jira);
                        self.edit(*iid, edit);
                    }
                    Action::Relabel { iid, steps, jira } => {
                        self.settle(jira);
                        for s in steps {
                            self.step(*iid, s);
                        }
                    }
                    Action::MarkGone { mirror, edit, .. } => {
                        if let Some(edit) = edit {
                            self.edit(mirror.iid, edit);
                        }
                        self.missing.retain(|m| m.mirror != *mirror);
                    }
                }
            }
            for (id, updated) in &plan.settled {
                if let Some(m) = self.mirrors.get_mut(id) {
                    m.applied = Some(*updated);
                }
            }
        }
        /// A mirror's version is applied once its changes are made.
        fn settle(&mut self, jira: &JiraIssue) {
            if let Some(m) = self.mirrors.get_mut(&jira.id) {
                m.applied = Some(jira.updated);
            }
        }
    }

    #[test]
    fn new_issue_is_created_and_done_one_is_created_closed() {
        let mut w = World::new();
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
        w.mirrors.insert(j.id, m);
        w.gitlab.insert(GitlabIid(5), g);
        let p = w.plan(std::slice::from_ref(&j));
        assert_eq!(
            p,
            Plan {
                actions: vec![],
                unchanged: 1,
                settled: vec![(j.id, j.updated)],
                ..Plan::default()
            }
        );
    }

    #[test]
    fn resolve_reopen_and_rename_become_one_update_each() {
        let mut w = World::new();
        let done = jira(1, "renamed", StatusCategory::Done);
        let (m, mut g) = mirrored(&done, 5, GitlabState::Opened);
        g.title = "old".into();
        w.mirrors.insert(done.id, m);
        w.gitlab.insert(GitlabIid(5), g);
        let reopened = jira(2, "b", StatusCategory::New);
        let (m, g) = mirrored(&reopened, 6, GitlabState::Closed);
        w.mirrors.insert(reopened.id, m);
        w.gitlab.insert(GitlabIid(6), g);
        let p = w.plan(&[done, reopened]);
        assert_eq!(p.actions.len(), 2);
        match &p.actions[0] {
            Action::Update {
                iid: GitlabIid(5),
                edit,
                ..
            } => {
                assert_eq!(edit.state_event, Some(StateEvent::Close));
                assert_eq!(edit.title.as_deref(), Some("renamed"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            matches!(&p.actions[1], Action::Update { iid: GitlabIid(6), edit, .. } if edit.state_event == Some(StateEvent::Reopen) && edit.title.is_none())
        );
    }

    #[test]
    fn marker_found_issue_is_adopted_not_duplicated() {
        let mut w = World::new();
        let j = jira(1, "a", StatusCategory::New);
        let (_, g) = mirrored(&j, 9, GitlabState::Opened);
        w.gitlab.insert(GitlabIid(9), g);
        w.by_marker.insert(j.id, GitlabIid(9));
        let p = w.plan(std::slice::from_ref(&j));
        assert_eq!(
            p.actions,
            vec![Action::Link {
                mirror: Mirror {
                    jira_id: JiraId(1),
                    jira_key: key("VSA-1"),
                    iid: GitlabIid(9),
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
        w.mirrors.insert(j.id, m);
        let p = w.plan(std::slice::from_ref(&j));
        assert!(matches!(&p.actions[..], [Action::Create { .. }]));

        let mut w = World::new();
        let (m, g) = mirrored(&j, 3, GitlabState::Opened);
        w.mirrors.insert(j.id, m);
        w.gitlab.insert(GitlabIid(3), g);
        let mut moved = j.clone();
        moved.key = key("OPS-7");
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
        w.mirrors.insert(j.id, m);
        w.gitlab.insert(GitlabIid(5), g);
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
        w.mirrors.insert(j.id, m);
        w.gitlab.insert(GitlabIid(2), g);
        let p = w.plan(std::slice::from_ref(&j));
        assert!(p.actions.is_empty());
        assert_eq!(p.notes.len(), 1);
    }

    #[test]
    fn overlap_duplicates_collapse_to_the_newest_version() {
        let mut w = World::new();
        let old = jira(1, "old", StatusCategory::New);
        let mut new = old.clone();
        new.summary = Some("new".into());
        new.updated += chrono::Duration::seconds(5);
        let p = w.plan(&[new, old]);
        assert!(matches!(&p.actions[..], [Action::Create { title, .. }] if title == "new"));
    }

    fn history(transitions: &[(i64, &str, &str)]) -> IssueHistory {
        IssueHistory {
            transitions: transitions
                .iter()
                .map(|(t, from, to)| Transition {
                    at: at(*t),
                    from: Some(from.to_string()),
                    to: to.to_string(),
                })
                .collect(),
            earlier_summaries: vec![],
        }
    }

    /// A GitLab issue as the Automation recipe left it: no description, no marker.
    fn recipe_issue(
        iid: u64,
        title: &str,
        created: DateTime<Utc>,
        state: GitlabState,
    ) -> GitlabIssue {
        GitlabIssue {
            created_at: Some(created),
            issue_type: Some("issue".into()),
            ..GitlabIssue::new(GitlabIid(iid), title.into(), state, "")
        }
    }

    fn recipe_world() -> World {
        let mut w = World::new();
        w.rules.seed_iid_prefix = Some("1000".into());
        w
    }

    #[test]
    fn recipe_issue_with_the_summary_as_title_is_adopted_and_reconciled() {
        let mut w = recipe_world();
        let mut j = jira(5, "Checkout fails", StatusCategory::InProgress);
        j.created = at(0);
        // Closed by the recipe's "Done" rule; reopened in Jira since.
        w.gitlab.insert(
            GitlabIid(10005),
            recipe_issue(10005, "Checkout fails", at(86_400 * 3), GitlabState::Closed),
        );
        let p = w.plan(std::slice::from_ref(&j));
        assert_eq!(
            p.recipe,
            RecipeTally {
                adopted: 1,
                foreign: 0
            }
        );
        assert!(
            matches!(&p.actions[0], Action::AdoptRecipe { mirror, .. } if mirror.iid == GitlabIid(10005))
        );
        assert!(
            matches!(&p.actions[1], Action::Update { iid: GitlabIid(10005), edit, .. }
            if edit.state_event == Some(StateEvent::Reopen) && edit.description.is_none())
        );
        assert_eq!(w.history_asked, 0, "the title decided: no changelog");
        w.apply(&p);
        assert_eq!(w.gitlab[&GitlabIid(10005)].jira_id(), Some(JiraId(5)));
        assert!(w.plan(&[j]).actions.is_empty());
    }

    #[test]
    fn recipe_issue_is_recognised_by_its_title_now_or_earlier_never_by_time() {
        // Created the minute after the Jira issue, with another title that was never its
        // summary: someone took the free slot in the UI. Time alone never adopts.
        let mut w = recipe_world();
        let mut j = jira(7, "New name", StatusCategory::New);
        j.created = at(0);
        w.gitlab.insert(
            GitlabIid(10007),
            recipe_issue(10007, "Old name", at(40), GitlabState::Opened),
        );
        let p = w.plan(std::slice::from_ref(&j));
        assert_eq!(w.history_asked, 1, "the changelog was consulted");
        assert!(
            matches!(&p.actions[..], [Action::Create { .. }]),
            "{:?}",
            p.actions
        );
        assert!(
            p.notes[0].contains("never the Jira summary"),
            "{:?}",
            p.notes
        );

        // Created days later (a re-run of the rule), renamed since: the changelog tells.
        let mut w = recipe_world();
        w.gitlab.insert(
            GitlabIid(10007),
            recipe_issue(10007, "  Old name ", at(86_400 * 2), GitlabState::Opened),
        );
        w.histories.insert(
            JiraId(7),
            IssueHistory {
                transitions: vec![],
                earlier_summaries: vec!["Old name".into()],
            },
        );
        let p = w.plan(std::slice::from_ref(&j));
        assert_eq!(w.history_asked, 1);
        assert!(
            matches!(&p.actions[0], Action::AdoptRecipe { .. }),
            "{:?}",
            p.actions
        );
        assert!(
            matches!(&p.actions[1], Action::Update { edit, .. } if edit.title.as_deref() == Some("New name"))
        );
    }

    /// A summary longer than GitLab's 255 characters: a title cut there counts, plainly or
    /// as this program cuts titles.
    #[test]
    fn a_recipe_title_cut_at_255_characters_is_the_summary() {
        let long = "word ".repeat(80);
        let plain: String = long.trim().chars().take(255).collect();
        for title in [plain.trim_end().to_string(), domain::cut_title(long.trim())] {
            let mut w = recipe_world();
            let j = jira(8, &long, StatusCategory::New);
            w.gitlab.insert(
                GitlabIid(10008),
                recipe_issue(10008, &title, at(86_400 * 9), GitlabState::Opened),
            );
            let p = w.plan(std::slice::from_ref(&j));
            assert!(
                matches!(&p.actions[0], Action::AdoptRecipe { .. }),
                "{title:?}: {:?}",
                p.actions
            );
            assert_eq!(w.history_asked, 0, "the title decided");
        }
    }

    /// A marker lookalike in the slot (`jira-id=abc`): left alone and said once, not adopted
    /// pass after pass.
    #[test]
    fn a_marker_lookalike_in_the_recipe_slot_is_left_alone_once() {
        let mut w = recipe_world();
        let j = jira(6, "Same title", StatusCategory::New);
        let mut g = recipe_issue(10006, "Same title", at(60), GitlabState::Opened);
        g.set_description("<!-- jira-gitlab-reconciler:jira-id=abc -->");
        w.gitlab.insert(GitlabIid(10006), g);
        let p = w.plan(std::slice::from_ref(&j));
        assert_eq!(p.recipe.foreign, 1);
        assert!(
            matches!(&p.actions[..], [Action::Create { .. }]),
            "{:?}",
            p.actions
        );
        assert!(p.notes[0].contains("not this program's"), "{:?}", p.notes);
        w.apply(&p);
        let again = w.plan(&[j]);
        assert!(again.actions.is_empty() && again.notes.is_empty(), "once");
        assert!(w.gitlab[&GitlabIid(10006)].marker_lookalike, "untouched");
    }

    #[test]
    fn a_foreign_issue_in_the_recipe_slot_is_left_alone() {
        let mut w = recipe_world();
        let mut j = jira(9, "Real work", StatusCategory::New);
        j.created = at(0);
        // Someone's UI issue took #10009.
        w.gitlab.insert(
            GitlabIid(10009),
            recipe_issue(
                10009,
                "Hotfix from the UI",
                at(86_400 * 30),
                GitlabState::Opened,
            ),
        );
        let p = w.plan(std::slice::from_ref(&j));
        assert_eq!(
            w.history_asked, 1,
            "the changelog was consulted before giving up"
        );
        assert_eq!(
            p.recipe,
            RecipeTally {
                adopted: 0,
                foreign: 1
            }
        );
        assert!(
            matches!(&p.actions[..], [Action::Create { .. }]),
            "{:?}",
            p.actions
        );
        assert_eq!(p.notes.len(), 1);
        w.apply(&p);
        assert_eq!(
            w.gitlab[&GitlabIid(10009)].title,
            "Hotfix from the UI",
            "untouched"
        );
        assert!(w.plan(&[j]).actions.is_empty());

        // Another Jira issue's mirror in the slot, or a slot a stored mirror points at.
        let mut w = recipe_world();
        let other = jira(3, "Other", StatusCategory::New);
        let (m, g) = mirrored(&other, 10009, GitlabState::Opened);
        w.gitlab.insert(GitlabIid(10009), g);
        w.mirrors.insert(JiraId(3), m);
        let j = jira(9, "Other", StatusCategory::New);
        let p = w.plan(&[j]);
        assert_eq!(p.recipe.foreign, 1);
    }

    #[test]
    fn recipe_slots_follow_the_key_and_fit_in_32_bits() {
        let mut r = rules();
        r.seed_iid_prefix = Some("1000".into());
        assert_eq!(
            slot_iid(&r, &jira(5, "x", StatusCategory::New)),
            Some(GitlabIid(10005))
        );
        let mut moved = jira(5, "x", StatusCategory::New);
        moved.key = key("OPS-5");
        assert_eq!(
            slot_iid(&r, &moved),
            None,
            "the recipe used the old project's key"
        );
        let mut big = jira(5, "x", StatusCategory::New);
        big.key = key("VSA-1234567");
        assert_eq!(
            slot_iid(&r, &big),
            None,
            "10001234567 overflows GitLab's iid"
        );
        r.seed_iid_prefix = None;
        assert_eq!(slot_iid(&r, &jira(5, "x", StatusCategory::New)), None);
    }

    fn status_world(backdate: bool) -> World {
        let mut w = World::new();
        w.rules.status_labels = Some("jira-status".into());
        w.backdate = backdate;
        w
    }

    fn scoped(g: &GitlabIssue) -> Vec<String> {
        g.labels
            .iter()
            .filter(|l| l.starts_with("jira-status::"))
            .cloned()
            .collect()
    }

    #[test]
    fn exactly_one_status_label_after_every_transition() {
        for backdate in [false, true] {
            let mut w = status_world(backdate);
            let mut j = jira(1, "a", StatusCategory::New);
            j.created = at(0);
            let path = [
                ("In Progress", StatusCategory::InProgress),
                ("In Review", StatusCategory::InProgress),
                ("In Progress", StatusCategory::InProgress),
                ("Done", StatusCategory::Done),
                ("Reopened", StatusCategory::InProgress),
                ("Done", StatusCategory::Done),
            ];
            let p = w.plan(std::slice::from_ref(&j));
            w.apply(&p);
            let iid = w.mirrors[&JiraId(1)].iid;
            assert_eq!(scoped(&w.gitlab[&iid]), vec!["jira-status::To Do"]);
            let mut transitions = Vec::new();
            let mut from = "To Do".to_string();
            for (n, (status, category)) in path.iter().enumerate() {
                let t = 1_000 * (n as i64 + 1);
                transitions.push((t, from.clone(), status.to_string()));
                from = status.to_string();
                j.status = Some(status.to_string());
                j.category = category.clone();
                j.updated = at(t);
                let list: Vec<(i64, &str, &str)> = transitions
                    .iter()
                    .map(|(t, f, to)| (*t, f.as_str(), to.as_str()))
                    .collect();
                w.histories.insert(JiraId(1), history(&list));
                let p = w.plan(std::slice::from_ref(&j));
                if backdate {
                    let stamped: Vec<Option<DateTime<Utc>>> = p
                        .actions
                        .iter()
                        .filter_map(|a| match a {
                            Action::Update { edit, .. } if !edit.add_labels.is_empty() => {
                                Some(edit.updated_at)
                            }
                            _ => None,
                        })
                        .collect();
                    assert_eq!(
                        stamped,
                        vec![Some(at(t))],
                        "Jira's time on the label change"
                    );
                }
                w.apply(&p);
                assert_eq!(
                    scoped(&w.gitlab[&iid]),
                    vec![format!("jira-status::{status}")],
                    "after {status} (backdate {backdate})"
                );
                assert!(w.plan(std::slice::from_ref(&j)).actions.is_empty());
            }
        }
    }

    #[test]
    fn a_backdated_backfill_replays_the_history_from_the_first_status() {
        let mut w = status_world(true);
        let mut j = jira(1, "a", StatusCategory::Done);
        j.status = Some("Done".into());
        j.created = at(0);
        // Jira's `updated` is never older than the issue's last transition.
        j.updated = at(250);
        w.histories.insert(
            JiraId(1),
            history(&[(100, "To Do", "In Progress"), (250, "In Progress", "Done")]),
        );
        let p = w.plan(std::slice::from_ref(&j));
        match &p.actions[..] {
            [Action::Create {
                status_label,
                steps,
                close: true,
                ..
            }] => {
                assert_eq!(status_label.as_deref(), Some("jira-status::To Do"));
                let step = |add: &str, remove: &str, t: i64| LabelStep {
                    add: add.into(),
                    remove: vec![remove.into()],
                    at: Some(at(t)),
                };
                assert_eq!(
                    *steps,
                    vec![
                        step("jira-status::In Progress", "jira-status::To Do", 100),
                        step("jira-status::Done", "jira-status::In Progress", 250),
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        // An existing mirror without a status label (status labels just turned on) replays
        // everything, starting with its first status at creation.
        let mut w = status_world(true);
        let (m, mut g) = mirrored(&j, 4, GitlabState::Closed);
        g.labels = vec!["jira".into(), "jira-status::Bogus".into()];
        w.mirrors.insert(JiraId(1), m);
        w.gitlab.insert(GitlabIid(4), g);
        w.histories.insert(
            JiraId(1),
            history(&[(100, "To Do", "In Progress"), (250, "In Progress", "Done")]),
        );
        let p = w.plan(std::slice::from_ref(&j));
        let Action::Relabel { steps, .. } = &p.actions[0] else {
            panic!("{:?}", p.actions)
        };
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[0].at, Some(at(0)));
        assert_eq!(steps[0].remove, vec!["jira-status::Bogus".to_string()]);
        w.apply(&p);
        assert_eq!(
            w.gitlab[&GitlabIid(4)].labels,
            vec!["jira".to_string(), "jira-status::Done".to_string()]
        );
    }

    #[test]
    fn no_changelog_is_asked_for_issues_whose_label_is_right() {
        let mut w = status_world(true);
        let j = jira(1, "a", StatusCategory::InProgress);
        let (m, mut g) = mirrored(&j, 4, GitlabState::Opened);
        g.labels = vec!["jira-status::In Progress".into()];
        w.mirrors.insert(JiraId(1), m);
        w.gitlab.insert(GitlabIid(4), g);
        let p = w.plan(&[j]);
        assert!(p.actions.is_empty());
        assert_eq!(w.history_asked, 0);
    }

    #[test]
    fn the_milestone_follows_the_last_fix_version_and_a_person_s_stays_without_one() {
        let version = |name: &str| crate::domain::FixVersion {
            name: name.into(),
            released: false,
            release_date: None,
            start_date: None,
        };
        let mut w = World::new();
        w.rules.milestones = Some(MilestoneSource::FixVersion);
        let mut j = jira(1, "Versioned", StatusCategory::Done);
        j.planning.fix_versions = vec![version("1.0"), version("1.1")];
        let p = w.plan(std::slice::from_ref(&j));
        assert!(
            matches!(&p.actions[..], [Action::Create { milestone: Some(m), close: true, .. }] if m == "1.1"),
            "{:?}",
            p.actions
        );
        assert!(p.actions[0]
            .describe()
            .ends_with("in milestone \"1.1\" (then close: done in Jira)"));
        w.apply(&p);
        assert!(
            w.plan(std::slice::from_ref(&j)).actions.is_empty(),
            "converged"
        );
        j.planning.fix_versions = vec![version("2.0")];
        j.updated = at(100);
        let p = w.plan(std::slice::from_ref(&j));
        assert!(
            matches!(&p.actions[..], [Action::Update { edit, .. }] if edit.milestone.as_ref().map(|m| m.title.as_str()) == Some("2.0") && edit.state_event.is_none()),
            "{:?}",
            p.actions
        );
        assert!(p.actions[0].describe().ends_with("milestone \"2.0\""));
        w.apply(&p);
        // No fix version any more: the milestone it has stays (a person's choice, or the
        // last one Jira named).
        j.planning.fix_versions.clear();
        j.updated = at(200);
        assert!(w.plan(std::slice::from_ref(&j)).actions.is_empty());
    }

    #[test]
    fn incident_type_follows_the_jira_issue_type() {
        let mut w = World::new();
        w.rules
            .issue_types
            .insert("incident".into(), "incident".into());
        let mut j = jira(1, "Outage", StatusCategory::New);
        j.issue_type = Some("Incident".into());
        let p = w.plan(std::slice::from_ref(&j));
        assert!(
            matches!(&p.actions[..], [Action::Create { issue_type, .. }] if issue_type == "incident")
        );
        w.apply(&p);
        j.issue_type = Some("Bug".into());
        let p = w.plan(std::slice::from_ref(&j));
        assert!(
            matches!(&p.actions[..], [Action::Update { edit, .. }] if edit.issue_type.as_deref() == Some("issue"))
        );
        // Without issue_types the type is never touched.
        let mut w = World::new();
        let (m, mut g) = mirrored(&j, 2, GitlabState::Opened);
        g.issue_type = Some("incident".into());
        w.mirrors.insert(JiraId(1), m);
        w.gitlab.insert(GitlabIid(2), g);
        assert!(w.plan(&[j]).actions.is_empty());
    }

    #[test]
    fn gone_issues_are_closed_labelled_or_left_by_policy_and_come_back() {
        let j = jira(1, "a", StatusCategory::InProgress);
        let (m, g) = mirrored(&j, 4, GitlabState::Opened);
        let mut moved = j.clone();
        moved.project = "OPS".into();
        moved.key = key("OPS-1");
        let mut sibling = j.clone();
        sibling.project = "SUP".into();
        let cases = [
            (
                None,
                GonePolicy::Close,
                GoneReason::Deleted,
                true,
                Some("jira::deleted"),
            ),
            (
                None,
                GonePolicy::Label,
                GoneReason::Deleted,
                false,
                Some("jira::deleted"),
            ),
            (None, GonePolicy::Ignore, GoneReason::Deleted, false, None),
            (
                Some(moved),
                GonePolicy::Close,
                GoneReason::Moved,
                true,
                Some("jira::moved"),
            ),
            (
                Some(j.clone()),
                GonePolicy::Close,
                GoneReason::FilteredOut,
                false,
                Some("jira::filtered-out"),
            ),
            (
                Some(sibling),
                GonePolicy::Close,
                GoneReason::TakenOver,
                false,
                None,
            ),
        ];
        for (found, policy, reason, closes, label) in cases {
            let mut w = World::new();
            w.rules.on_deleted = policy;
            w.rules.on_filtered_out = GonePolicy::Label;
            w.rules.sibling_projects = vec!["SUP".into()];
            w.mirrors.insert(JiraId(1), m.clone());
            w.gitlab.insert(GitlabIid(4), g.clone());
            w.missing = vec![Missing {
                mirror: m.clone(),
                found,
            }];
            let p = w.plan(&[]);
            let Action::MarkGone {
                reason: r, edit, ..
            } = &p.actions[0]
            else {
                panic!("{:?}", p.actions)
            };
            assert_eq!(*r, reason);
            assert_eq!(
                edit.as_ref()
                    .is_some_and(|e| e.state_event == Some(StateEvent::Close)),
                closes,
                "{reason:?} {policy:?}"
            );
            assert_eq!(
                edit.as_ref()
                    .and_then(|e| e.add_labels.first().map(String::as_str)),
                label
            );
            w.apply(&p);
            // Back in the search: the label goes and the issue reopens.
            let p = w.plan(std::slice::from_ref(&j));
            w.apply(&p);
            assert_eq!(w.gitlab[&GitlabIid(4)].state, GitlabState::Opened);
            assert!(
                w.gitlab[&GitlabIid(4)].labels.is_empty(),
                "{:?}",
                w.gitlab[&GitlabIid(4)].labels
            );
        }
        // Never an issue that does not carry this issue's marker.
        let mut w = World::new();
        let (_, mut foreign) = mirrored(&jira(2, "b", StatusCategory::New), 4, GitlabState::Opened);
        foreign.labels.clear();
        w.gitlab.insert(GitlabIid(4), foreign);
        w.missing = vec![Missing {
            mirror: m,
            found: None,
        }];
        let p = w.plan(&[]);
        assert!(matches!(
            &p.actions[..],
            [Action::MarkGone { edit: None, .. }]
        ));
    }

    #[test]
    fn an_older_version_than_the_one_applied_is_never_applied() {
        let mut w = World::new();
        let mut newer = jira(1, "Renamed", StatusCategory::Done);
        newer.updated += chrono::Duration::minutes(5);
        let (m, g) = mirrored(&newer, 1, GitlabState::Closed);
        w.mirrors.insert(
            newer.id,
            Mirror {
                applied: Some(newer.updated),
                ..m
            },
        );
        w.gitlab.insert(GitlabIid(1), g);
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
            j.id,
            Mirror {
                applied: Some(j.updated),
                ..m
            },
        );
        w.gitlab.insert(GitlabIid(1), g);
        let none = HashMap::new();
        let none_set = HashMap::new();
        let none_people = HashMap::new();
        let input = |recheck_applied| PlanInput {
            jira: std::slice::from_ref(&j),
            mirrors: &w.mirrors,
            gitlab: &w.gitlab,
            by_marker: &w.by_marker,
            jira_base_url: BASE,
            recheck_applied,
            claimed: &w.claimed,
            rules: &w.rules,
            backdate: false,
            history: &none,
            missing: &[],
            set_fields: &none_set,
            people: &none_people,
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
        w.mirrors.insert(j.id, m);
        w.gitlab.insert(GitlabIid(1), g);
        let p = w.plan(std::slice::from_ref(&j));
        assert!(p.actions.is_empty());
        assert_eq!(p.settled, vec![(j.id, j.updated)]);
        w.apply(&p);
        assert!(w.plan(&[j]).settled.is_empty(), "recorded once");
    }

    /// Property: from any state, applying the plan and planning again yields nothing to do,
    /// with one GitLab issue per Jira issue and, with status labels, exactly one of them.
    #[test]
    fn plan_is_a_fixpoint_after_apply() {
        let mut rng = Xorshift::new(20261125);
        let statuses = ["To Do", "In Progress", "In Review", "Done"];
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
            if rng.below(2) == 0 {
                w.rules.status_labels = Some("jira-status".into());
            }
            if rng.below(3) == 0 {
                w.rules
                    .issue_types
                    .insert("Incident".into(), "incident".into());
            }
            if rng.below(3) == 0 {
                w.rules.seed_iid_prefix = Some("9".into());
            }
            w.backdate = rng.below(2) == 0;
            for id in 1..=n {
                let mut s = summaries[rng.below(summaries.len() as u64) as usize].to_string();
                if s == "long" {
                    s = "x".repeat(300);
                }
                let mut j = jira(id, &s, cats[rng.below(cats.len() as u64) as usize].clone());
                if rng.below(4) == 0 {
                    j.issue_type = Some("Incident".into());
                }
                // A random changelog ending anywhere (even not at the current status).
                let hops = rng.below(4) as usize;
                let mut from = statuses[rng.below(4) as usize];
                let mut list = Vec::new();
                for h in 0..hops {
                    let to = statuses[rng.below(4) as usize];
                    list.push((100 * (h as i64 + 1), from, to));
                    from = to;
                }
                w.histories.insert(j.id, history(&list));
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
                        if rng.below(3) == 0 {
                            g.labels = vec![
                                "jira-status::Done".into(),
                                "jira::deleted".into(),
                                "team".into(),
                            ];
                        }
                        if rng.below(4) == 0 {
                            g.issue_type = Some("incident".into());
                        }
                        w.mirrors.insert(j.id, m);
                        w.gitlab.insert(g.iid, g);
                    }
                    3 => {
                        let (m, _) = mirrored(&j, u64::from(id) * 3, GitlabState::Opened);
                        w.mirrors.insert(j.id, m);
                        // A recipe issue (or a stranger) in its slot.
                        if let Some(slot) = slot_iid(&w.rules, &j) {
                            let (title, created) = if rng.below(2) == 0 {
                                (want_title(&j), j.created)
                            } else {
                                (
                                    "stranger".to_string(),
                                    j.created + chrono::Duration::days(10),
                                )
                            };
                            w.gitlab.insert(
                                slot,
                                recipe_issue(slot.0, &title, created, GitlabState::Closed),
                            );
                        }
                    }
                    _ => {
                        let (_, g) = mirrored(&j, u64::from(id) * 3, GitlabState::Opened);
                        w.by_marker.insert(j.id, g.iid);
                        w.gitlab.insert(g.iid, g);
                    }
                }
                if rng.below(4) == 0 {
                    issues.push(j.clone());
                }
                issues.push(j);
            }
            let before = w.gitlab.clone();
            let first = w.plan(&issues);
            w.apply(&first);
            let asked = w.history_asked;
            let second = w.plan(&issues);
            assert_eq!(
                w.history_asked, asked,
                "case {case}: an idle plan asks for no changelog"
            );
            assert!(
                second.actions.is_empty(),
                "case {case}: second plan {:?}",
                second.actions
            );
            assert_eq!(second.unchanged, u64::from(n), "case {case}");
            let iids: std::collections::HashSet<GitlabIid> =
                w.mirrors.values().map(|m| m.iid).collect();
            assert_eq!(
                iids.len(),
                n as usize,
                "case {case}: one GitLab issue per Jira issue"
            );
            for j in &issues {
                assert_agrees(&w, &before, j, case);
            }
        }
    }

    /// The title each summary of `plan_is_a_fixpoint_after_apply` must end as, worked out by
    /// hand from the README's rules (not by `domain::title`, which is under test).
    fn want_title(j: &JiraIssue) -> String {
        match j.summary.as_deref().unwrap_or("") {
            "a" => "a".into(),
            "é🚀 <b>x</b>" => "é🚀 <b>x</b>".into(),
            "" | "  \t" => format!("(Jira issue {} has no summary)", j.key),
            s if s == "x".repeat(300) => format!("{}…", "x".repeat(254)),
            other => panic!("no title worked out for {other:?}"),
        }
    }

    /// After the plan was applied, GitLab shows what Jira says of `j`: its title, its state,
    /// its status label (and the labels others put there), its type, the link and the marker.
    /// `before`: GitLab before the plan, for what the rules leave alone.
    fn assert_agrees(
        w: &World,
        before: &HashMap<GitlabIid, GitlabIssue>,
        j: &JiraIssue,
        case: u32,
    ) {
        let m = &w.mirrors[&j.id];
        let g = &w.gitlab[&m.iid];
        let was = before.get(&m.iid);
        let at = format!("case {case}, {} at #{}", j.key, m.iid);
        assert_eq!(g.title, want_title(j), "{at}: title");
        let state = match j.category {
            StatusCategory::Done => GitlabState::Closed,
            StatusCategory::New | StatusCategory::InProgress => GitlabState::Opened,
            // An unknown category leaves the state as it was (a new issue is open).
            StatusCategory::Unknown(_) => was.map_or(GitlabState::Opened, |old| old.state),
        };
        assert_eq!(g.state, state, "{at}: state");
        assert_eq!(g.marker, Some(j.id), "{at}: marker");
        let link = format!("{BASE}/browse/{}", j.key);
        assert_eq!(g.link.as_deref(), Some(link.as_str()), "{at}: link");
        let mut labels: BTreeSet<String> = was
            .map(|old| old.labels.iter().cloned().collect())
            .unwrap_or_default();
        labels.remove("jira::deleted");
        if w.rules.status_labels.is_some() {
            labels.retain(|l| !l.starts_with("jira-status::"));
            labels.insert(format!(
                "jira-status::{}",
                j.status.as_deref().expect("a status")
            ));
        }
        let got: BTreeSet<String> = g.labels.iter().cloned().collect();
        assert_eq!(got.len(), g.labels.len(), "{at}: a label twice");
        assert_eq!(got, labels, "{at}: labels");
        let issue_type = match (w.rules.issue_types.is_empty(), j.issue_type.as_deref()) {
            (false, Some("Incident")) => "incident".to_string(),
            (false, _) => "issue".to_string(),
            (true, _) => was
                .and_then(|old| old.issue_type.as_deref())
                .unwrap_or("issue")
                .to_string(),
        };
        assert_eq!(
            g.issue_type.as_deref(),
            Some(issue_type.as_str()),
            "{at}: type"
        );
    }
}
