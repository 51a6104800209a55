//! `[[mapping]]`: one Jira project mirrored into one GitLab project. Each key is a value that
//! checks itself as it is read ([`ConfigValue`]); its errors start with the mapping's place in
//! the file (`mapping #2: ...`).
//!
//! A new mapping key: a field in `RawMapping` (`file.rs`), a type here with `impl ConfigValue`,
//! a field in [`Mapping`], and one line in [`read_mapping`].

use std::collections::BTreeMap;

use super::file::RawMapping;
use super::values::{optional, ConfigValue, Key};
use crate::domain::{GonePolicy, MappingId};
use crate::error::{Error, Result};
use crate::plan::{LabelSources, MilestoneSource};

/// The GitLab `issue_type` values an `issue_types` entry may name.
pub const GITLAB_ISSUE_TYPES: [&str; 4] = ["issue", "incident", "test_case", "task"];
/// GitLab keeps iids in a 32-bit column.
const MAX_IID: u64 = i32::MAX as u64;

/// One Jira project mirrored into one GitLab project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub jira_project: String,
    pub gitlab_project: String,
    pub jql: Option<String>,
    pub labels: Vec<String>,
    /// The Automation recipe's iid prefix (`"1000"`: VSA-5 was created as #10005).
    pub seed_iid_prefix: Option<String>,
    /// Deleted, invisible, or moved away from this GitLab project's mappings.
    pub on_deleted: GonePolicy,
    /// Still in the Jira project but no longer matched by `jql`.
    pub on_filtered_out: GonePolicy,
    /// The scope of per-status labels (`"jira-status"` → `jira-status::In Review`).
    pub status_labels: Option<String>,
    /// The GitLab issue board kept with a list per Jira status of the "In Progress" category
    /// (`"Jira workflow"`); needs `status_labels`.
    pub status_board: Option<String>,
    /// Where a mirror's milestone comes from: the last fix version or the current sprint.
    pub milestones: Option<MilestoneSource>,
    /// Jira issue type name → GitLab `issue_type`.
    pub issue_types: BTreeMap<String, String>,
    /// Jira labels, components and priority as GitLab labels (`labels_from`).
    pub labels_from: LabelSources,
    /// Jira's due date as GitLab's `due_date`.
    pub due_date: bool,
    /// Jira's assignee as GitLab's (`[users]`, else a visible e-mail).
    pub assignees: bool,
}

impl Mapping {
    /// The name this mapping has in the state database, logs and metrics.
    pub fn name(&self) -> String {
        format!("{}->{}", self.jira_project, self.gitlab_project)
    }

    /// The same name, typed: what the state database keys the mapping's rows on.
    pub fn id(&self) -> MappingId {
        MappingId::new(&self.jira_project, &self.gitlab_project)
    }

    /// A mapping's name as a user may type it (`report --mapping "vsa->acme/vsa"`), spelt as
    /// the config reads it: the Jira key upper case.
    pub fn normalise_name(name: &str) -> String {
        match name.trim().split_once("->") {
            Some((key, project)) => format!("{}->{project}", key.trim().to_ascii_uppercase()),
            None => name.trim().to_string(),
        }
    }

    /// The JQL for this mapping's issues (updated since `since`, when given).
    pub fn search_filter(&self, since: Option<chrono::DateTime<chrono::Utc>>) -> String {
        crate::jira::search_filter(&self.jira_project, self.jql.as_deref(), since)
    }
}

/// Every `[[mapping]]`: at least one, none twice.
pub(super) fn read_mappings(raw: Vec<RawMapping>) -> Result<Vec<Mapping>> {
    if raw.is_empty() {
        return Err(Error::Config(
            "no [[mapping]] in the config: add at least one with jira_project and gitlab_project"
                .into(),
        ));
    }
    let mut out: Vec<Mapping> = Vec::with_capacity(raw.len());
    for (i, m) in raw.into_iter().enumerate() {
        let at = format!("mapping #{}", i + 1);
        let mapping = read_mapping(&at, m)?;
        if out.iter().any(|o| o.name() == mapping.name()) {
            return Err(Error::Config(format!(
                "{at}: {} is mapped twice; remove one of them",
                mapping.name()
            )));
        }
        out.push(mapping);
    }
    Ok(out)
}

/// One mapping, each key read as its value; `at` is its place in the file.
fn read_mapping(at: &str, m: RawMapping) -> Result<Mapping> {
    let key = |name| Key {
        mapping: Some(at),
        name,
    };
    let labels = m.labels.into_iter().map(|l| Label::parse(key("labels"), l));
    let status_labels =
        optional::<StatusScope>(key("status_labels"), m.status_labels)?.map(|s| s.0);
    let status_board = optional::<BoardName>(key("status_board"), m.status_board)?.map(|b| b.0);
    if let (Some(board), None) = (&status_board, &status_labels) {
        return Err(key("status_board").wrong(format_args!(
            "status_board = {board:?} needs status_labels: the board's lists are the status \
             labels; add status_labels = \"jira-status\" to the mapping, or remove status_board"
        )));
    }
    Ok(Mapping {
        jira_project: ProjectKey::parse(key("jira_project"), m.jira_project)?.0,
        gitlab_project: ProjectPath::parse(key("gitlab_project"), m.gitlab_project)?.0,
        jql: optional::<Jql>(key("jql"), m.jql)?.and_then(|q| q.0),
        labels: labels.map(|l| l.map(|l| l.0)).collect::<Result<_>>()?,
        seed_iid_prefix: optional::<SeedIidPrefix>(key("seed_iid_prefix"), m.seed_iid_prefix)?
            .map(|p| p.0),
        on_deleted: optional(key("on_deleted"), m.on_deleted)?.unwrap_or(GonePolicy::Close),
        on_filtered_out: optional(key("on_filtered_out"), m.on_filtered_out)?
            .unwrap_or(GonePolicy::Label),
        status_labels,
        status_board,
        milestones: optional(key("milestones"), m.milestones)?,
        issue_types: IssueTypes::parse(key("issue_types"), m.issue_types)?.0,
        labels_from: LabelSources::parse(key("labels_from"), m.labels_from)?,
        due_date: m.due_date.unwrap_or(false),
        assignees: m.assignees.unwrap_or(false),
    })
}

impl ConfigValue for LabelSources {
    type Raw = Vec<String>;

    fn parse(key: Key<'_>, raw: Vec<String>) -> Result<Self> {
        let mut out = LabelSources::default();
        for source in raw {
            match source.trim() {
                "labels" => out.labels = true,
                "components" => out.components = true,
                "priority" => out.priority = true,
                other => {
                    return Err(key.wrong(format_args!(
                        "{} names {other:?}: it takes any of \"labels\", \"components\" and \"priority\"",
                        key.name
                    )))
                }
            }
        }
        Ok(out)
    }
}

/// A Jira project key, upper case: "vsa" and "VSA" are one project, and must be one mapping
/// with one name in the state database.
struct ProjectKey(String);

impl ConfigValue for ProjectKey {
    type Raw = String;

    fn parse(key: Key<'_>, raw: String) -> Result<Self> {
        let project = raw.trim().to_ascii_uppercase();
        if project.is_empty()
            || !project
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(key.wrong(format_args!(
                "{} = {raw:?} is not a Jira project key (letters, digits, underscore)",
                key.name
            )));
        }
        Ok(ProjectKey(project))
    }
}

/// A GitLab project: its path after the GitLab URL, or its numeric id.
struct ProjectPath(String);

impl ConfigValue for ProjectPath {
    type Raw = String;

    fn parse(key: Key<'_>, raw: String) -> Result<Self> {
        let path = raw.trim().trim_matches('/').to_string();
        if path.is_empty() {
            return Err(key.wrong(format_args!(
                "{} is empty: give a path such as \"acme/platform\" or a numeric id",
                key.name
            )));
        }
        if path.contains("://") || path.contains(char::is_whitespace) {
            return Err(key.wrong(format_args!(
                "{} = {path:?} is not a project path: give the path after the GitLab URL, such \
                 as \"acme/platform\", or the project's numeric id",
                key.name
            )));
        }
        Ok(ProjectPath(path))
    }
}

/// The mapping's JQL filter, without ORDER BY; blank is no filter (`None`).
struct Jql(Option<String>);

impl ConfigValue for Jql {
    type Raw = String;

    fn parse(key: Key<'_>, raw: String) -> Result<Self> {
        let jql = raw.trim().to_string();
        if jql.to_ascii_lowercase().contains("order by") {
            return Err(key.wrong(format_args!(
                "{} must not contain ORDER BY: the reconciler orders its own searches; keep only \
                 the filter (e.g. \"issuetype != Epic\")",
                key.name
            )));
        }
        Ok(Jql(Some(jql).filter(|q| !q.is_empty())))
    }
}

/// A label every mirror carries: GitLab reads a comma as a separator.
struct Label(String);

impl ConfigValue for Label {
    type Raw = String;

    fn parse(key: Key<'_>, label: String) -> Result<Self> {
        if label.trim().is_empty() || label.contains(',') {
            return Err(key.wrong(format_args!(
                "label {label:?} is empty or contains a comma, which GitLab reads as a separator"
            )));
        }
        Ok(Label(label))
    }
}

/// What to do with a mirror whose Jira issue left the mapping.
impl ConfigValue for GonePolicy {
    type Raw = String;

    fn parse(key: Key<'_>, raw: String) -> Result<Self> {
        GonePolicy::from_label(raw.trim()).ok_or_else(|| {
            key.wrong(format_args!(
                "{} = {raw:?} is not one of \"close\" (close the GitLab issue and label it), \"label\" (label it only) or \"ignore\"",
                key.name
            ))
        })
    }
}

/// The recipe's `key.replace("VSA-", "1000")`: digits only, short enough that prefix + issue
/// number fits GitLab's 32-bit iid.
struct SeedIidPrefix(String);

impl ConfigValue for SeedIidPrefix {
    type Raw = String;

    fn parse(key: Key<'_>, raw: String) -> Result<Self> {
        let prefix = raw.trim().to_string();
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(key.wrong(format_args!(
                "{} = {prefix:?} must be the digits the Automation recipe put before the issue number (\"1000\" for VSA-5 → #10005)",
                key.name
            )));
        }
        let fits = format!("{prefix}1")
            .parse::<u64>()
            .is_ok_and(|n| n <= MAX_IID);
        if prefix.len() > 9 || !fits {
            return Err(key.wrong(format_args!(
                "{} = {prefix:?} is too long: GitLab's iids are 32-bit (at most {MAX_IID}), so the recipe's timestamp-iid variant never created issues and there is nothing to adopt; remove the key",
                key.name
            )));
        }
        Ok(SeedIidPrefix(prefix))
    }
}

/// The scope of per-status labels: `jira-status` makes `jira-status::In Review`.
struct StatusScope(String);

impl ConfigValue for StatusScope {
    type Raw = String;

    fn parse(key: Key<'_>, raw: String) -> Result<Self> {
        let scope = raw.trim().to_string();
        if scope.is_empty() || scope.contains(',') || scope.ends_with(':') {
            return Err(key.wrong(format_args!(
                "{} = {scope:?} must be a label scope such as \"jira-status\" (no comma, no trailing colon): labels become \"jira-status::In Review\"",
                key.name
            )));
        }
        Ok(StatusScope(scope))
    }
}

/// `"fixVersion"` or `"sprint"` (any case).
impl ConfigValue for MilestoneSource {
    type Raw = String;

    fn parse(key: Key<'_>, raw: String) -> Result<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "fixversion" | "fixversions" => Ok(MilestoneSource::FixVersion),
            "sprint" => Ok(MilestoneSource::Sprint),
            _ => Err(key.wrong(format_args!(
                "{} = {raw:?} is not \"fixVersion\" (the issue's last fix version) or \
                 \"sprint\" (its current sprint)",
                key.name
            ))),
        }
    }
}

/// The name of the status board: GitLab takes any name up to 255 characters.
struct BoardName(String);

impl ConfigValue for BoardName {
    type Raw = String;

    fn parse(key: Key<'_>, raw: String) -> Result<Self> {
        let name = raw.trim().to_string();
        if name.is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
            return Err(key.wrong(format_args!(
                "{} = {raw:?} must be a board name of 1 to 255 characters without control \
                 characters, such as \"Jira workflow\"",
                key.name
            )));
        }
        Ok(BoardName(name))
    }
}

/// Jira issue type name → a GitLab `issue_type` GitLab has.
struct IssueTypes(BTreeMap<String, String>);

impl ConfigValue for IssueTypes {
    type Raw = BTreeMap<String, String>;

    fn parse(key: Key<'_>, raw: BTreeMap<String, String>) -> Result<Self> {
        for (jira, gitlab) in &raw {
            if jira.trim().is_empty() {
                return Err(key.wrong(format_args!(
                    "{} has an empty Jira issue type name",
                    key.name
                )));
            }
            if !GITLAB_ISSUE_TYPES.contains(&gitlab.as_str()) {
                return Err(key.wrong(format_args!(
                    "{} maps {jira:?} to {gitlab:?}, which is not a GitLab issue_type; use one of {}",
                    key.name,
                    GITLAB_ISSUE_TYPES.join(", ")
                )));
            }
        }
        Ok(IssueTypes(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Key<'_> {
        Key {
            mapping: Some("mapping #3"),
            name,
        }
    }

    fn refused<T: ConfigValue>(name: &str, raw: T::Raw) -> String {
        match T::parse(key(name), raw) {
            Ok(_) => panic!("{name} accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn each_key_names_its_mapping_and_the_fix() {
        assert_eq!(
            refused::<ProjectKey>("jira_project", "VS-A".into()),
            "mapping #3: jira_project = \"VS-A\" is not a Jira project key (letters, digits, underscore)"
        );
        assert_eq!(
            ProjectKey::parse(key("jira_project"), " vsa ".into())
                .expect("valid")
                .0,
            "VSA"
        );
        assert!(refused::<ProjectPath>("gitlab_project", " / ".into())
            .starts_with("mapping #3: gitlab_project is empty"));
        assert_eq!(
            ProjectPath::parse(key("gitlab_project"), "/acme/x/".into())
                .expect("valid")
                .0,
            "acme/x"
        );
        assert_eq!(Jql::parse(key("jql"), "  ".into()).expect("blank").0, None);
        assert!(refused::<Jql>("jql", "a ORDER BY b".into()).contains("ORDER BY"));
        assert_eq!(
            refused::<Label>("labels", "a,b".into()),
            "mapping #3: label \"a,b\" is empty or contains a comma, which GitLab reads as a separator"
        );
        assert!(refused::<GonePolicy>("on_deleted", "delete".into())
            .starts_with("mapping #3: on_deleted = \"delete\" is not one of"));
    }

    #[test]
    fn the_recipe_prefix_must_leave_room_in_a_32_bit_iid() {
        let ok = |p: &str| SeedIidPrefix::parse(key("seed_iid_prefix"), p.into()).map(|p| p.0);
        assert_eq!(ok(" 1000 ").expect("valid"), "1000");
        assert_eq!(ok("214748364").expect("room for one digit"), "214748364");
        assert!(ok("214748365").is_err(), "2147483651 is over i32::MAX");
        assert!(refused::<SeedIidPrefix>("seed_iid_prefix", "10a".into()).contains("digits"));
        let e = refused::<SeedIidPrefix>("seed_iid_prefix", "2311071210".into());
        assert!(e.contains("32-bit") && e.contains("timestamp"), "{e}");
        assert!(
            refused::<StatusScope>("status_labels", "jira-status:".into()).contains("label scope")
        );
        let types = BTreeMap::from([(" ".to_string(), "issue".to_string())]);
        assert_eq!(
            refused::<IssueTypes>("issue_types", types),
            "mapping #3: issue_types has an empty Jira issue type name"
        );
    }
}
