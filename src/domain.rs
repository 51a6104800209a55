//! The things the reconciler reasons about, independent of HTTP and SQL: a Jira issue as read,
//! a GitLab issue as read, the stored `Mirror` linking them, and the rules that turn a Jira
//! issue into the GitLab issue it should have (title, state, description marker).

mod ids;
mod planning;

use std::borrow::Cow;

use chrono::{DateTime, Utc};

pub use ids::{GitlabIid, IdError, JiraId, JiraKey, MappingId};
pub use planning::{FixVersion, JiraUser, Planning, SetFields, Sprint, SprintState};

/// GitLab rejects titles over 255 characters (Ruby counts characters, not bytes).
pub const MAX_TITLE_CHARS: usize = 255;

/// Jira's `status.statusCategory.key`. Open/closed follows the category, never `resolution`:
/// many workflows reach Done without a resolution and some resolve open issues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusCategory {
    New,
    InProgress,
    Done,
    /// `undefined`, missing, or a key this version does not know: the GitLab state is left as
    /// it is rather than guessed.
    Unknown(String),
}

impl StatusCategory {
    pub fn from_key(key: Option<&str>) -> Self {
        match key {
            Some("new") => StatusCategory::New,
            Some("indeterminate") => StatusCategory::InProgress,
            Some("done") => StatusCategory::Done,
            Some(other) => StatusCategory::Unknown(other.to_string()),
            None => StatusCategory::Unknown("missing".into()),
        }
    }

    /// Whether the GitLab issue should be closed; `None` when the category does not say.
    pub fn wants_closed(&self) -> Option<bool> {
        match self {
            StatusCategory::Done => Some(true),
            StatusCategory::New | StatusCategory::InProgress => Some(false),
            StatusCategory::Unknown(_) => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JiraIssue {
    /// Stable across moves and project-key renames: the mirror is keyed on it.
    pub id: JiraId,
    /// `VSA-5`; changes when the issue moves.
    pub key: JiraKey,
    pub summary: Option<String>,
    pub category: StatusCategory,
    /// The status's name (`In Review`), for per-status labels; `None` when Jira sent none.
    pub status: Option<String>,
    /// The issue type's name (`Incident`), for `issue_types`.
    pub issue_type: Option<String>,
    /// The key of the project the issue is in now (from `fields.project`, else the key).
    pub project: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub resolved: Option<DateTime<Utc>>,
    /// Assignee, labels, components, priority, due date, versions, sprints: filled only with
    /// what the search asked for (see `jira::IssueFields`).
    pub planning: Planning,
}

impl JiraIssue {
    /// When the work was done, for lead time: the resolution date, else the last update (a
    /// workflow that reaches Done without setting a resolution). `None` while not done.
    pub fn done_at(&self) -> Option<DateTime<Utc>> {
        (self.category == StatusCategory::Done).then(|| self.resolved.unwrap_or(self.updated))
    }
}

/// One status change of a Jira issue, from its changelog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub at: DateTime<Utc>,
    /// The status left (`None` when the changelog does not say).
    pub from: Option<String>,
    pub to: String,
}

/// What a Jira issue's changelog says about the fields the reconciler cares for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IssueHistory {
    /// Status changes, oldest first.
    pub transitions: Vec<Transition>,
    /// Every summary the issue had before its current one, oldest first.
    pub earlier_summaries: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GitlabState {
    Opened,
    Closed,
}

/// A GitLab issue as the planner needs it. The description itself is not kept (it may be up to
/// 1 MiB, and a project may hold 100,000 issues): only what it says about the mirror.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitlabIssue {
    pub iid: GitlabIid,
    pub title: String,
    pub state: GitlabState,
    /// The Jira id named by the description's marker.
    pub marker: Option<JiraId>,
    /// Where the description's "Mirrored from Jira issue" line links.
    pub link: Option<String>,
    /// The description holds something that starts like the marker but is not one (no
    /// well-formed marker at all): someone else's text or tool, never an issue to adopt.
    pub marker_lookalike: bool,
    pub created_at: Option<DateTime<Utc>>,
    /// Its scoped labels (`scope::value`): the only ones the planner reads (status labels,
    /// `jira::deleted`...). Others are not kept: a full pass lists every issue of the project.
    pub labels: Vec<String>,
    /// `issue`, `incident`, ...; `None` when the server did not say. GitLab's own types are
    /// kept without an allocation each (see [`gitlab_issue_type`]).
    pub issue_type: Option<Cow<'static, str>>,
    /// The title of its milestone, if it has one (read for `milestones`).
    pub milestone: Option<String>,
    /// The assignees' user ids.
    pub assignees: Vec<u64>,
}

impl GitlabIssue {
    pub fn new(iid: GitlabIid, title: String, state: GitlabState, description: &str) -> Self {
        let mut issue = GitlabIssue {
            iid,
            title,
            state,
            marker: None,
            link: None,
            marker_lookalike: false,
            created_at: None,
            labels: Vec::new(),
            issue_type: None,
            milestone: None,
            assignees: Vec::new(),
        };
        issue.set_description(description);
        issue
    }

    /// Keep what `description` says about the mirror.
    pub fn set_description(&mut self, description: &str) {
        self.marker = parse_marker(description);
        self.marker_lookalike = self.marker.is_none() && description.contains(MARKER_PREFIX);
        self.link = parse_link(description).map(str::to_string);
    }

    /// The Jira id this issue mirrors, from the marker in its description.
    pub fn jira_id(&self) -> Option<JiraId> {
        self.marker
    }
}

/// GitLab's issue types as static strings (a project's issues are mostly `issue`); another
/// value is kept as sent.
pub fn gitlab_issue_type(t: String) -> Cow<'static, str> {
    const KNOWN: [&str; 6] = [
        "issue",
        "incident",
        "test_case",
        "task",
        "requirement",
        "ticket",
    ];
    match KNOWN.iter().find(|k| **k == t) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(t),
    }
}

/// Whether GitLab keeps a label in [`GitlabIssue::labels`]: scoped labels only.
pub fn is_scoped_label(label: &str) -> bool {
    label.contains("::")
}

/// Changes to an existing issue; `None` leaves a field alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IssueEdit {
    pub title: Option<String>,
    pub description: Option<String>,
    pub state_event: Option<StateEvent>,
    /// Owner only: backdates the edit (closing then sets `closed_at` to it, and the label
    /// events of the same edit carry it).
    pub updated_at: Option<DateTime<Utc>>,
    /// Labels added and removed in the same request: exclusive scoped labels exist only on
    /// paid tiers, so a status label is swapped explicitly, never by relying on them.
    pub add_labels: Vec<String>,
    pub remove_labels: Vec<String>,
    pub issue_type: Option<String>,
    /// `Some(None)` clears it.
    pub due_date: Option<Option<chrono::NaiveDate>>,
    /// `Some([])` unassigns.
    pub assignee_ids: Option<Vec<u64>>,
    /// The milestone to give it (`milestones`): the planner names it by title, `apply` finds
    /// or makes it and fills in its id.
    pub milestone: Option<MilestoneRef>,
}

/// A milestone to set on an issue: by title, with GitLab's id once known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MilestoneRef {
    pub title: String,
    pub id: Option<u64>,
}

impl IssueEdit {
    /// The fields this edit changes, in a fixed order (for logs and outcomes).
    pub fn fields(&self) -> Vec<Field> {
        let changes = [
            (self.state_event.is_some(), Field::State),
            (self.title.is_some(), Field::Title),
            (self.description.is_some(), Field::Description),
            (
                !self.add_labels.is_empty() || !self.remove_labels.is_empty(),
                Field::Labels,
            ),
            (self.issue_type.is_some(), Field::Type),
            (self.milestone.is_some(), Field::Milestone),
            (self.due_date.is_some(), Field::DueDate),
            (self.assignee_ids.is_some(), Field::Assignee),
        ];
        changes
            .into_iter()
            .filter_map(|(changed, field)| changed.then_some(field))
            .collect()
    }
}

/// A field of a GitLab issue the reconciler keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    State,
    Title,
    /// The link to Jira and the marker.
    Description,
    Labels,
    Type,
    Milestone,
    DueDate,
    Assignee,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateEvent {
    Close,
    Reopen,
}

/// What to do with the GitLab issue of a Jira issue that left the mapping (`on_deleted`,
/// `on_filtered_out`). A GitLab issue is never deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GonePolicy {
    /// Close it and add the reason's label (`jira::deleted`...).
    #[default]
    Close,
    /// Add the reason's label, leave its state.
    Label,
    /// Leave it as it is.
    Ignore,
}

/// Why a mirrored Jira issue no longer comes back from the mapping's search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoneReason {
    /// Deleted, or the account may no longer see it.
    Deleted,
    /// Moved to a project no mapping of this GitLab project covers.
    Moved,
    /// Still in the project, but the mapping's `jql` no longer matches it.
    FilteredOut,
    /// Moved to another mapping that feeds the same GitLab project: that mapping keeps it.
    TakenOver,
}

impl GoneReason {
    /// The label the GitLab issue gets (`None`: nothing is written).
    pub fn gitlab_label(self) -> Option<&'static str> {
        match self {
            GoneReason::Deleted => Some("jira::deleted"),
            GoneReason::Moved => Some("jira::moved"),
            GoneReason::FilteredOut => Some("jira::filtered-out"),
            GoneReason::TakenOver => None,
        }
    }
}

/// The labels the reconciler adds to issues whose Jira issue left the mapping; removed again
/// when it comes back.
pub const GONE_LABELS: [&str; 3] = ["jira::deleted", "jira::moved", "jira::filtered-out"];

/// The stored link between one Jira issue and its GitLab issue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    pub jira_id: JiraId,
    pub jira_key: JiraKey,
    pub iid: GitlabIid,
    /// The Jira `updated` of the version last made true in GitLab. Search is eventually
    /// consistent and may serve an older version later: that one is never applied.
    pub applied: Option<DateTime<Utc>>,
}

/// What a pass compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassKind {
    /// Issues updated since the checkpoint (minus the overlap window).
    Incremental,
    /// Every issue of the mapping against everything GitLab holds: repairs drift.
    Full,
    /// Only the issues webhook events named; never moves the checkpoint.
    Targeted,
}

/// How a pass ended, as recorded in the pass history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassOutcome {
    /// Still going (or the process died during it, until the next start says so).
    Running,
    /// Every action succeeded; the checkpoint moved.
    Ok,
    /// Something failed; the checkpoint stayed.
    Failed,
    /// The process stopped during the pass (crash, kill, power loss).
    Interrupted,
    /// Asked to stop (SIGTERM, SIGINT) before it finished: what it did is recorded, the
    /// checkpoint stayed, and the next pass continues. Not a failure.
    Stopped,
}

/// How many Jira issues a pass read, and how many of its actions ended each way: the numbers
/// its history keeps (`status`, the status page) and its summary prints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub created: u64,
    pub closed: u64,
    pub reopened: u64,
    /// Edited otherwise: retitled, relinked, relabelled, retyped, labelled as gone.
    pub updated: u64,
    pub adopted: u64,
    pub unchanged: u64,
    pub failed: u64,
    pub jira_seen: u64,
}

impl std::ops::AddAssign<&Counts> for Counts {
    fn add_assign(&mut self, other: &Counts) {
        self.created += other.created;
        self.closed += other.closed;
        self.reopened += other.reopened;
        self.updated += other.updated;
        self.adopted += other.adopted;
        self.unchanged += other.unchanged;
        self.failed += other.failed;
        self.jira_seen += other.jira_seen;
    }
}

/// "1 issue", "2 issues": a count with its noun.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The one mapping between these enums and the words stored, logged and shown.
macro_rules! labels {
    ($ty:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub fn label(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
            pub fn from_label(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.label())
            }
        }
    };
}
labels!(PassKind { Incremental => "incremental", Full => "full", Targeted => "targeted" });
labels!(PassOutcome { Running => "running", Ok => "ok", Failed => "failed", Interrupted => "interrupted", Stopped => "stopped" });
labels!(GonePolicy { Close => "close", Label => "label", Ignore => "ignore" });
labels!(GoneReason { Deleted => "deleted", Moved => "moved", FilteredOut => "filtered-out", TakenOver => "taken-over" });

const LINK_PREFIX: &str = "Mirrored from Jira issue [";
const MARKER_PREFIX: &str = "<!-- jira-gitlab-reconciler:jira-id=";
const MARKER_SUFFIX: &str = " -->";

/// The machine-readable marker put in every mirrored issue's description. It is an HTML
/// comment, so GitLab does not render it, and it lets the mapping be rebuilt from GitLab alone.
pub fn marker(jira_id: JiraId) -> String {
    format!("{MARKER_PREFIX}{jira_id}{MARKER_SUFFIX}")
}

/// The Jira id in a description's marker: the first well-formed one (a lookalike before it,
/// such as `jira-id=abc`, or a number no Jira id can be, is not ours and is passed over).
pub fn parse_marker(description: &str) -> Option<JiraId> {
    description
        .match_indices(MARKER_PREFIX)
        .find_map(|(at, _)| well_formed_id(&description[at + MARKER_PREFIX.len()..]))
        .map(|(id, _)| id)
}

/// The id of a marker whose prefix `rest` follows: a Jira id, then the suffix; and how long
/// its text is.
fn well_formed_id(rest: &str) -> Option<(JiraId, usize)> {
    let text = &rest[..rest.find(MARKER_SUFFIX)?];
    Some((text.parse().ok()?, text.len()))
}

/// Whether a line is one this program writes into descriptions: the link line or a marker.
fn is_our_line(line: &str) -> bool {
    let line = line.trim();
    line.starts_with(LINK_PREFIX)
        || line
            .strip_prefix(MARKER_PREFIX)
            .and_then(well_formed_id)
            .is_some_and(|(_, n)| line.len() == MARKER_PREFIX.len() + n + MARKER_SUFFIX.len())
}

/// The URL of the "Mirrored from Jira issue [KEY](URL)" line, if the description has one.
pub fn parse_link(description: &str) -> Option<&str> {
    let start = description.find(LINK_PREFIX)? + LINK_PREFIX.len();
    let rest = &description[start..];
    let open = rest.find("](")? + 2;
    let rest = &rest[open..];
    let end = rest.find(')')?;
    Some(&rest[..end])
}

/// The description of a mirrored issue: a link back to Jira and the marker. The summary is not
/// repeated here, so nothing a Jira user types ends up rendered as Markdown or HTML in GitLab.
pub fn description(jira_base_url: &str, issue: &JiraIssue) -> String {
    format!(
        "{LINK_PREFIX}{key}]({base}/browse/{key}) by jira-gitlab-reconciler. \
         Jira is the source of truth: edit the title and status there.\n\n{marker}\n",
        key = issue.key,
        base = jira_base_url,
        marker = marker(issue.id)
    )
}

/// The description of an issue that has text of its own (an Automation recipe issue being
/// adopted, a mirror someone wrote notes in whose link must change): that text kept, without
/// the link line and markers this program wrote before, and the current link and marker
/// appended.
pub fn adopted_description(existing: &str, jira_base_url: &str, issue: &JiraIssue) -> String {
    let ours = description(jira_base_url, issue);
    let kept: Vec<&str> = existing.lines().filter(|l| !is_our_line(l)).collect();
    let kept = kept.join("\n");
    let kept = kept.trim_end();
    if kept.trim().is_empty() {
        ours
    } else {
        format!("{kept}\n\n{ours}")
    }
}

/// Whether `actual` still carries the link to `issue` and its marker (a moved issue has a new key).
pub fn description_is_current(
    jira_base_url: &str,
    issue: &JiraIssue,
    actual: &GitlabIssue,
) -> bool {
    actual.marker == Some(issue.id)
        && actual
            .link
            .as_deref()
            .and_then(|l| l.strip_prefix(jira_base_url))
            .is_some_and(|rest| rest.strip_prefix("/browse/") == Some(issue.key.as_str()))
}

/// The GitLab title for a Jira summary: control characters removed (line breaks and tabs become
/// spaces), whitespace trimmed, at most 255 characters cut on a character boundary with an
/// ellipsis, and a placeholder naming the key when nothing is left.
pub fn title(issue: &JiraIssue) -> String {
    let cleaned = clean_title(issue.summary.as_deref().unwrap_or(""));
    if cleaned.is_empty() {
        return format!("(Jira issue {} has no summary)", issue.key);
    }
    cut_title(&cleaned)
}

/// A cleaned summary as a title: as it is up to 255 characters, else cut on a character
/// boundary with an ellipsis.
pub fn cut_title(cleaned: &str) -> String {
    if cleaned.chars().count() <= MAX_TITLE_CHARS {
        return cleaned.to_string();
    }
    let mut cut: String = cleaned.chars().take(MAX_TITLE_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// A summary as a title, before the length rule: control characters removed (line breaks
/// and tabs become one space), invisible overrides removed, whitespace trimmed.
pub fn clean_title(raw: &str) -> String {
    let mut cleaned = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_control() || is_invisible_format(c) {
            if c.is_whitespace() && !cleaned.ends_with(' ') {
                cleaned.push(' ');
            }
        } else {
            cleaned.push(c);
        }
    }
    cleaned.trim().to_string()
}

/// Bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) can make a title
/// display as something else than it says, and U+200B/U+FEFF are invisible: GitLab keeps
/// them, so they are dropped here. Kept, because text needs them: U+200C ZERO WIDTH
/// NON-JOINER and U+200D ZERO WIDTH JOINER (emoji sequences such as 👩‍💻, Persian and Indic
/// spelling) and the U+200E/U+200F direction marks (mixed-direction text).
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// The GitLab label that stands for a Jira status: `<scope>::<status>`. GitLab reads a comma
/// as a label separator, so commas in a status name become spaces.
pub fn status_label(scope: &str, status: &str) -> String {
    let name: String = status
        .chars()
        .map(|c| if c == ',' || c.is_control() { ' ' } else { c })
        .collect();
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("{scope}::{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> JiraKey {
        k.parse().expect("a key")
    }

    fn issue(summary: Option<&str>) -> JiraIssue {
        JiraIssue {
            id: JiraId::new(10014),
            key: key("VSA-5"),
            summary: summary.map(str::to_string),
            category: StatusCategory::New,
            status: None,
            issue_type: None,
            project: "VSA".into(),
            created: Utc::now(),
            updated: Utc::now(),
            resolved: None,
            planning: Planning::default(),
        }
    }

    #[test]
    fn marker_round_trips_and_rejects_lookalikes() {
        let d = description("https://acme.atlassian.net", &issue(Some("x")));
        assert_eq!(parse_marker(&d), Some(JiraId::new(10014)));
        assert!(d.contains("https://acme.atlassian.net/browse/VSA-5"));
        assert_eq!(
            parse_marker("<!-- jira-gitlab-reconciler:jira-id= -->"),
            None
        );
        assert_eq!(
            parse_marker("<!-- jira-gitlab-reconciler:jira-id=1; drop -->"),
            None
        );
        assert_eq!(parse_marker("no marker"), None);
    }

    #[test]
    fn description_currency_follows_key_changes() {
        let base = "https://j";
        let mut i = issue(Some("x"));
        let g = GitlabIssue::new(
            GitlabIid::new(1),
            "x".into(),
            GitlabState::Opened,
            &description(base, &i),
        );
        assert_eq!(g.link.as_deref(), Some("https://j/browse/VSA-5"));
        assert!(description_is_current(base, &i, &g));
        i.key = key("OPS-1");
        assert!(!description_is_current(base, &i, &g));
        let by_hand = GitlabIssue::new(
            GitlabIid::new(2),
            "x".into(),
            GitlabState::Opened,
            "edited by hand",
        );
        assert!(!description_is_current(base, &i, &by_hand));
    }

    #[test]
    fn titles_are_cleaned_and_cut_on_char_boundaries() {
        assert_eq!(title(&issue(Some("  a\tb\n\nc\u{7}  "))), "a b c");
        assert_eq!(title(&issue(Some("x\u{202E}y"))), "xy");
        assert_eq!(title(&issue(Some(""))), "(Jira issue VSA-5 has no summary)");
        assert_eq!(title(&issue(None)), "(Jira issue VSA-5 has no summary)");
        let long = "é".repeat(300);
        let t = title(&issue(Some(&long)));
        assert_eq!(t.chars().count(), MAX_TITLE_CHARS);
        assert!(t.ends_with('…'));
        let emoji = "🚀".repeat(300);
        assert_eq!(title(&issue(Some(&emoji))).chars().count(), MAX_TITLE_CHARS);
        assert_eq!(title(&issue(Some("שלום <b>x</b>"))), "שלום <b>x</b>");
    }

    #[test]
    fn titles_keep_joiners_and_direction_marks_but_drop_overrides() {
        // 👩‍💻 is WOMAN + ZWJ + LAPTOP; without the joiner it shows as two emoji.
        let coder = "\u{1F469}\u{200D}\u{1F4BB} pairing";
        assert_eq!(title(&issue(Some(coder))), coder);
        // Persian "می‌خواهم" needs its ZERO WIDTH NON-JOINER.
        let persian = "\u{645}\u{6CC}\u{200C}\u{62E}\u{648}\u{627}\u{647}\u{645}";
        assert_eq!(title(&issue(Some(persian))), persian);
        let marks = "abc \u{200E}123\u{200F} \u{5D0}";
        assert_eq!(title(&issue(Some(marks))), marks);
        // Overrides, embeddings, isolates, zero width space and BOM go; C0 and C1 controls too.
        let hostile = "\u{FEFF}a\u{202A}b\u{202B}c\u{202C}d\u{202D}e\u{202E}f\u{2066}g\u{2067}h\u{2068}i\u{2069}j\u{200B}k\u{85}l\u{9F}m\u{1}";
        assert_eq!(title(&issue(Some(hostile))), "abcdefghijk lm");
    }

    #[test]
    fn gitlab_types_are_static_and_only_scoped_labels_are_kept() {
        assert!(matches!(
            gitlab_issue_type("incident".into()),
            Cow::Borrowed("incident")
        ));
        assert!(matches!(gitlab_issue_type("epic".into()), Cow::Owned(t) if t == "epic"));
        assert!(is_scoped_label("jira-status::In Review"));
        assert!(is_scoped_label("jira::deleted"));
        assert!(!is_scoped_label("jira"));
    }

    #[test]
    fn status_labels_are_scoped_and_comma_free() {
        assert_eq!(
            status_label("jira-status", "In Review"),
            "jira-status::In Review"
        );
        assert_eq!(status_label("s", "Done, really\n"), "s::Done really");
    }

    #[test]
    fn adopted_descriptions_keep_their_text() {
        let base = "https://j";
        let i = issue(Some("x"));
        assert_eq!(adopted_description("", base, &i), description(base, &i));
        let d = adopted_description("Notes from the recipe era\n", base, &i);
        assert!(d.starts_with("Notes from the recipe era\n\nMirrored from Jira issue [VSA-5]"));
        let g = GitlabIssue::new(GitlabIid::new(1), "x".into(), GitlabState::Opened, &d);
        assert!(description_is_current(base, &i, &g));
    }

    #[test]
    fn a_new_link_keeps_the_text_and_drops_the_old_link_and_markers() {
        let base = "https://j";
        let mut i = issue(Some("x"));
        let before = adopted_description("Created by Jira Automation for VSA-5.\n", base, &i);
        // A key change (VSA-5 → VSA-77): the text stays, the link is the new one, once.
        i.key = key("VSA-77");
        let after = adopted_description(&format!("{before}\n{}", marker(i.id)), base, &i);
        assert!(
            after.starts_with(
                "Created by Jira Automation for VSA-5.\n\nMirrored from Jira issue [VSA-77]"
            ),
            "{after}"
        );
        assert_eq!(after.matches(MARKER_PREFIX).count(), 1, "{after}");
        assert_eq!(after.matches(LINK_PREFIX).count(), 1, "{after}");
        assert_eq!(adopted_description(&after, base, &i), after, "a fixpoint");
        // Someone else's lookalike is their text: kept, and never taken for the marker.
        let theirs = "<!-- jira-gitlab-reconciler:jira-id=abc -->";
        let d = adopted_description(theirs, base, &i);
        assert!(d.starts_with(theirs), "{d}");
        assert_eq!(parse_marker(&d), Some(i.id));
        let one = GitlabIid::new(1);
        assert!(GitlabIssue::new(one, "t".into(), GitlabState::Opened, theirs).marker_lookalike);
        assert!(!GitlabIssue::new(one, "t".into(), GitlabState::Opened, &d).marker_lookalike);
        // A number no Jira id can be is not this program's marker either.
        let huge = "<!-- jira-gitlab-reconciler:jira-id=99999999999999999999999 -->";
        assert_eq!(parse_marker(huge), None);
        assert!(GitlabIssue::new(one, "t".into(), GitlabState::Opened, huge).marker_lookalike);
    }

    #[test]
    fn pass_labels_round_trip() {
        for k in [PassKind::Incremental, PassKind::Full, PassKind::Targeted] {
            assert_eq!(PassKind::from_label(k.label()), Some(k));
        }
        for o in [
            PassOutcome::Running,
            PassOutcome::Ok,
            PassOutcome::Failed,
            PassOutcome::Interrupted,
        ] {
            assert_eq!(PassOutcome::from_label(&o.to_string()), Some(o));
        }
        assert_eq!(PassOutcome::from_label("done"), None);
    }

    #[test]
    fn status_categories() {
        assert_eq!(
            StatusCategory::from_key(Some("done")).wants_closed(),
            Some(true)
        );
        assert_eq!(
            StatusCategory::from_key(Some("new")).wants_closed(),
            Some(false)
        );
        assert_eq!(
            StatusCategory::from_key(Some("indeterminate")).wants_closed(),
            Some(false)
        );
        assert_eq!(
            StatusCategory::from_key(Some("undefined")).wants_closed(),
            None
        );
        assert_eq!(StatusCategory::from_key(None).wants_closed(), None);
    }
}
