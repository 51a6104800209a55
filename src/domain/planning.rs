//! What a Jira issue says about who works on it and when: its assignee, labels, components,
//! priority, due date, fix versions and sprints. A search asks Jira for these fields only when
//! a mapping mirrors them (see `jira::IssueFields`); otherwise they stay empty.

use chrono::{DateTime, NaiveDate, Utc};

/// The planning fields of one version of a Jira issue. Empty (the default) when the search did
/// not ask for them or Jira sent none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Planning {
    pub assignee: Option<JiraUser>,
    /// Jira's labels, as written there (Jira labels have no spaces).
    pub labels: Vec<String>,
    /// The components' names.
    pub components: Vec<String>,
    /// The priority's name (`High`).
    pub priority: Option<String>,
    /// `duedate`: a day, without a time.
    pub due: Option<NaiveDate>,
    /// `fixVersions`, in Jira's order.
    pub fix_versions: Vec<FixVersion>,
    /// The sprint field's sprints, in Jira's order: an issue carried over from sprint to
    /// sprint holds every one it was in.
    pub sprints: Vec<Sprint>,
}

/// What the reconciler last wrote of a mirror's Jira fields (`labels_from`, `due_date`), as
/// the state database remembers it: the only labels and date it may change or remove.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetFields {
    /// Sorted, without repeats.
    pub labels: Vec<String>,
    pub due: Option<NaiveDate>,
    /// The GitLab user id it assigned (`assignees`).
    pub assignee: Option<u64>,
}

/// A Jira user as an issue names them. Cloud sends `accountId` (Data Center `name`/`key`
/// instead); `emailAddress` only when the user's profile lets this account see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JiraUser {
    /// Cloud's `accountId`; on Data Center the user's `key` (else `name`).
    pub account_id: Option<String>,
    pub display_name: Option<String>,
    /// `None` when Jira hides it (most Cloud profiles).
    pub email: Option<String>,
    /// `account_id` holds Data Center's user key or login, not Cloud's accountId: named so in
    /// reports, where "accountId JIRAUSER10103" would send an admin looking for the wrong thing.
    pub data_center_key: bool,
}

impl JiraUser {
    /// Who this is, for `[users]` and caches: the accountId, else the e-mail (lower case).
    pub fn identity(&self) -> Option<String> {
        self.account_id
            .clone()
            .or_else(|| self.email.as_ref().map(|m| m.to_lowercase()))
    }

    /// "Carol (accountId 5b10…)": how a person is named in reports (never guessed further).
    pub fn describe(&self) -> String {
        let name = self.display_name.as_deref().unwrap_or("(no name)");
        match (&self.account_id, &self.email) {
            (Some(id), _) if self.data_center_key => format!("{name} (user key {id})"),
            (Some(id), _) => format!("{name} (accountId {id})"),
            (None, Some(mail)) => format!("{name} ({mail})"),
            (None, None) => name.to_string(),
        }
    }
}

/// One of an issue's `fixVersions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixVersion {
    pub name: String,
    pub released: bool,
    pub release_date: Option<NaiveDate>,
    /// Sent on an issue's versions by some Jiras only (the versions endpoint always has it).
    pub start_date: Option<NaiveDate>,
}

/// A sprint from the sprint custom field (Cloud: an object; Data Center: a
/// `…Sprint@1a2b[id=1,state=ACTIVE,name=…,…]` string).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sprint {
    pub id: u64,
    pub name: String,
    pub state: SprintState,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub complete: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SprintState {
    Future,
    Active,
    Closed,
    /// A state this version does not know, as sent.
    Other(String),
}

impl SprintState {
    /// Cloud writes `active`, Data Center `ACTIVE`.
    pub fn parse(text: &str) -> SprintState {
        match text.to_ascii_lowercase().as_str() {
            "future" => SprintState::Future,
            "active" => SprintState::Active,
            "closed" => SprintState::Closed,
            _ => SprintState::Other(text.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_are_named_by_what_jira_showed() {
        let carol = JiraUser {
            account_id: Some("5b10".into()),
            display_name: Some("Carol".into()),
            email: None,
            data_center_key: false,
        };
        assert_eq!(carol.describe(), "Carol (accountId 5b10)");
        let erin = JiraUser {
            account_id: Some("JIRAUSER10103".into()),
            display_name: Some("Erin".into()),
            email: None,
            data_center_key: true,
        };
        assert_eq!(erin.describe(), "Erin (user key JIRAUSER10103)");
        let dave = JiraUser {
            email: Some("dave@example.com".into()),
            ..JiraUser::default()
        };
        assert_eq!(dave.describe(), "(no name) (dave@example.com)");
        assert_eq!(SprintState::parse("ACTIVE"), SprintState::Active);
        assert_eq!(SprintState::parse("odd"), SprintState::Other("odd".into()));
    }
}
