//! Adopting the Automation recipe's issues (the rule itself is the planner's, in
//! `plan/recipe.rs`): their slots are read along with the page's mirrors, and an adoption
//! writes the marker before the link is recorded (with the page's outcomes), so a crash
//! between the two is found again by the marker (in the slot, or by a scan).

use std::collections::HashMap;

use super::{Reconciler, Target};
use crate::domain::{self, GitlabIid, IssueEdit, JiraId, JiraIssue, Mirror};
use crate::error::{Error, Result};
use crate::plan::{slot_iid, Rules};

/// The recipe iids of Jira issues that have no mirror yet (none without `seed_iid_prefix`).
pub(super) fn unmirrored_slots(
    rules: &Rules,
    jira: &[JiraIssue],
    mirrors: &HashMap<JiraId, Mirror>,
) -> Vec<GitlabIid> {
    jira.iter()
        .filter(|j| !mirrors.contains_key(&j.id))
        .filter_map(|j| slot_iid(rules, j))
        .collect()
}

impl Reconciler {
    /// Put the link and marker in the recipe issue's description (after the text it has, read
    /// just now: the plan does not carry descriptions) and check GitLab kept them.
    pub(super) async fn adopt_recipe(
        &self,
        target: &Target<'_>,
        jira: &JiraIssue,
        mirror: &Mirror,
    ) -> Result<()> {
        let project = target.project.id;
        let existing = self.gitlab.issue_description(project, mirror.iid).await?;
        let edit = IssueEdit {
            description: Some(domain::adopted_description(
                &existing,
                self.jira.base_url(),
                jira,
            )),
            ..IssueEdit::default()
        };
        let after = self.gitlab.edit(project, mirror.iid, &edit).await?;
        if after.jira_id() != Some(mirror.jira_id) {
            return Err(Error::RoleTooLow(format!(
                "GitLab answered 200 but #{} in {} does not carry the marker: the token may not edit issues it did not author (Guest); give it the Planner or Reporter role",
                mirror.iid, target.project.path
            )));
        }
        tracing::info!(jira = %mirror.jira_key, iid = mirror.iid.get(), "adopted the Automation recipe's issue");
        Ok(())
    }
}
