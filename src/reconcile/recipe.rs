//! Adopting the Automation recipe's issues (the rule itself is the planner's, in
//! `plan/recipe.rs`): their slots are read along with the mirrors on incremental passes, and
//! an adoption writes the marker before it records the link, so a crash between the two is
//! found again by the marker.

use std::collections::HashMap;

use super::apply::Applied;
use super::{Reconciler, Target};
use crate::domain::{self, IssueEdit, JiraIssue, Mirror};
use crate::error::{Error, Result};
use crate::plan::{slot_iid, Rules};
use crate::store::Store;

/// The recipe iids of Jira issues that have no mirror yet (none without `seed_iid_prefix`).
pub(super) fn unmirrored_slots(
    rules: &Rules,
    jira: &[JiraIssue],
    mirrors: &HashMap<String, Mirror>,
) -> Vec<u64> {
    jira.iter()
        .filter(|j| !mirrors.contains_key(&j.id))
        .filter_map(|j| slot_iid(rules, j))
        .collect()
}

impl Reconciler {
    /// Put the link and marker in the recipe issue's description (after the text it has, read
    /// just now: the plan does not carry descriptions), then record the mirror.
    pub(super) async fn adopt_recipe(
        &self,
        store: &Store,
        target: &Target<'_>,
        jira: &JiraIssue,
        mirror: &Mirror,
        out: &mut Applied,
    ) -> Result<()> {
        let key = &mirror.jira_key;
        let project = target.project.id;
        let edited = async {
            let existing = self.gitlab.issue_description(project, mirror.iid).await?;
            let edit = IssueEdit {
                description: Some(domain::adopted_description(
                    &existing,
                    self.jira.base_url(),
                    jira,
                )),
                ..IssueEdit::default()
            };
            self.gitlab.edit(project, mirror.iid, &edit).await
        };
        let after = match edited.await {
            Ok(after) => after,
            Err(e) => {
                let e = Error::from(e);
                out.fail(
                    key,
                    format!(
                        "{key} (#{}): adopting the recipe's issue failed: {e}",
                        mirror.iid
                    ),
                    Some(&e),
                );
                return Ok(());
            }
        };
        if after.jira_id() != Some(mirror.jira_id.as_str()) {
            let e = Error::NotApplied(format!(
                "GitLab answered 200 but #{} in {} does not carry the marker: the token may not edit issues it did not author (Guest); give it the Planner or Reporter role",
                mirror.iid, target.project.path
            ));
            out.fail(key, format!("{key} (#{}): {e}", mirror.iid), Some(&e));
            return Ok(());
        }
        store.save_mirror(&target.name, mirror)?;
        out.counts.adopted += 1;
        tracing::info!(jira = %key, iid = mirror.iid, "adopted the Automation recipe's issue");
        Ok(())
    }
}
