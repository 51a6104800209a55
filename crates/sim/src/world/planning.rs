//! Issue 17's set-up helpers: one person on both sites, and a Jira workflow with its board.
//!
//! ```no_run
//! # async fn demo(w: jgr_sim::world::SimWorld) {
//! use jgr_sim::world::PersonSpec;
//! // Alice: Jira hides her e-mail; GitLab shows it publicly; a Developer of every project.
//! let alice = w.add_person(&PersonSpec::new("alice", "Alice Liddell").jira_email_hidden());
//! // Carol exists in Jira only.
//! let carol = w.add_person(&PersonSpec::new("carol", "Carol").jira_only());
//! let workflow = [("To Do", "new"), ("In Review", "indeterminate"), ("Done", "done")];
//! let boards = w.jira_workflow(&workflow);
//! w.jira.set_assignee("VSA-1", Some(&alice.jira.account_id));
//! # }
//! ```

use crate::gitlab::Role;
use crate::jira::JiraUser;

use super::SimWorld;

/// Who a test person is on each site.
#[derive(Clone, Debug)]
pub struct PersonSpec {
    pub username: String,
    pub display_name: String,
    /// Default: `<username>@example.com`.
    pub email: String,
    /// Jira shows the e-mail (Cloud: profile visibility "Anyone"). Default: true.
    pub jira_email_visible: bool,
    /// The GitLab profile's public e-mail is set. Default: true.
    pub gitlab_public_email: bool,
    /// The GitLab user exists. Default: true.
    pub on_gitlab: bool,
    /// Their role in every mapped GitLab project; `None`: no member. Default: Developer.
    pub gitlab_role: Option<Role>,
}

impl PersonSpec {
    pub fn new(username: &str, display_name: &str) -> PersonSpec {
        PersonSpec {
            username: username.to_owned(),
            display_name: display_name.to_owned(),
            email: format!("{username}@example.com"),
            jira_email_visible: true,
            gitlab_public_email: true,
            on_gitlab: true,
            gitlab_role: Some(Role::Developer),
        }
    }
    pub fn email(mut self, email: &str) -> Self {
        self.email = email.to_owned();
        self
    }
    pub fn jira_email_hidden(mut self) -> Self {
        self.jira_email_visible = false;
        self
    }
    pub fn gitlab_email_private(mut self) -> Self {
        self.gitlab_public_email = false;
        self
    }
    pub fn jira_only(mut self) -> Self {
        self.on_gitlab = false;
        self.gitlab_role = None;
        self
    }
    /// A GitLab user who is no member of the mapped projects.
    pub fn not_member(mut self) -> Self {
        self.gitlab_role = None;
        self
    }
    pub fn role(mut self, role: Role) -> Self {
        self.gitlab_role = Some(role);
        self
    }
}

/// A person as created on both sites.
#[derive(Clone, Debug)]
pub struct SimPerson {
    /// Their Jira identity (accountId, DC name and key, display name, e-mail).
    pub jira: JiraUser,
    /// Their GitLab user id, if they are on GitLab.
    pub gitlab_id: Option<u64>,
    pub username: String,
    pub email: String,
}

impl SimWorld {
    /// Create a person in Jira and (unless `jira_only`) in GitLab, a member of every mapped
    /// GitLab project with `gitlab_role`.
    pub fn add_person(&self, spec: &PersonSpec) -> SimPerson {
        let jira = self
            .jira
            .add_user(&spec.display_name, &spec.email, spec.jira_email_visible);
        let gitlab_id = spec.on_gitlab.then(|| {
            self.gitlab.add_person(
                &spec.username,
                &spec.display_name,
                &spec.email,
                spec.gitlab_public_email,
            )
        });
        if let (Some(role), true) = (spec.gitlab_role, spec.on_gitlab) {
            for m in &self.opts.mappings {
                self.gitlab.grant(&m.gitlab_project, &spec.username, role);
            }
        }
        SimPerson {
            jira,
            gitlab_id,
            username: spec.username.clone(),
            email: spec.email.clone(),
        }
    }

    /// Give every mapped Jira project this workflow (status, category), and a scrum board
    /// with one column per status in that order. Returns the board ids, one per mapping.
    pub fn jira_workflow(&self, statuses: &[(&str, &str)]) -> Vec<u64> {
        let columns: Vec<(&str, [&str; 1])> = statuses.iter().map(|(s, _)| (*s, [*s])).collect();
        let columns: Vec<(&str, &[&str])> = columns.iter().map(|(c, s)| (*c, &s[..])).collect();
        self.opts
            .mappings
            .iter()
            .map(|m| {
                self.jira.set_workflow(&m.jira_project, statuses);
                let name = format!("{} board", m.jira_project);
                self.jira.add_board(&m.jira_project, &name, &columns)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{SimMapping, WorldOptions};

    #[tokio::test]
    async fn people_workflows_and_raw_config_in_a_few_lines() {
        let dir = std::env::temp_dir().join(format!("jgr-sim-world-{}", std::process::id()));
        let mut opts = WorldOptions::new(&dir);
        let mut mapping = SimMapping::new("VSA", "acme/platform");
        mapping.extra_config = "assignees = true\n".into();
        opts.mappings = vec![mapping];
        opts.extra_config = "[users]\n\"dave@example.com\" = \"dave\"\n".into();
        let w = SimWorld::start(opts).await.expect("world starts");
        let alice = w.add_person(&PersonSpec::new("alice", "Alice").jira_email_hidden());
        let carol = w.add_person(&PersonSpec::new("carol", "Carol").jira_only());
        assert!(alice.gitlab_id.is_some() && carol.gitlab_id.is_none());
        assert!(w.gitlab.user_id("carol").is_none());
        let boards = w.jira_workflow(&[
            ("To Do", "new"),
            ("Review", "indeterminate"),
            ("Done", "done"),
        ]);
        assert_eq!(boards.len(), 1);
        let key = w.jira.create_issue("VSA", "t", "Task").key;
        w.jira.set_assignee(&key, Some(&alice.jira.account_id));
        w.jira.transition(&key, "Review", "indeterminate");
        let config = w.config_toml();
        assert!(
            config.contains("gitlab_project = \"acme/platform\"\nassignees = true\n"),
            "{config}"
        );
        assert!(
            config.ends_with("[users]\n\"dave@example.com\" = \"dave\"\n"),
            "{config}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
