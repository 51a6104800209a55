//! Which of a Jira issue's planning fields a mapping mirrors, and so which its searches ask
//! Jira for (a mapping that mirrors none asks for what it always did).

use super::{Mode, Reconciler};
use crate::config::Mapping;
use crate::error::{Error, Result};
use crate::jira::{IssueFields, GH_SPRINT};
use crate::plan::{no_sprint_field, MilestoneSource};

impl Reconciler {
    /// The planning fields `mapping` mirrors. The sprint field's id is looked up in Jira
    /// (`GET /field`) only for a mapping that needs sprints, and kept in the state database.
    pub(super) async fn issue_fields(
        &self,
        mode: Mode<'_>,
        mapping: &Mapping,
    ) -> Result<IssueFields> {
        let mut fields = IssueFields {
            labels: mapping.labels_from.labels,
            components: mapping.labels_from.components,
            priority: mapping.labels_from.priority,
            due_date: mapping.due_date,
            assignee: mapping.assignees,
            ..IssueFields::default()
        };
        match mapping.milestones {
            None => {}
            Some(MilestoneSource::FixVersion) => fields.fix_versions = true,
            Some(MilestoneSource::Sprint) => {
                fields.sprint = self.sprint_field(mode).await?;
                if fields.sprint.is_none() {
                    return Err(Error::Config(no_sprint_field(&mapping.name())));
                }
            }
        }
        Ok(fields)
    }

    /// The sprint field's id: as kept, else asked of Jira (and kept when found).
    async fn sprint_field(&self, mode: Mode<'_>) -> Result<Option<String>> {
        let url = self.cfg.jira.url.as_str();
        if let Some(store) = mode.store() {
            if let Some(id) = store.cache().jira_field(url, GH_SPRINT)? {
                return Ok(Some(id));
            }
        }
        let found = self.jira.sprint_field().await?;
        if let (Some(id), Mode::Apply(store)) = (&found, mode) {
            store.cache().save_jira_field(url, GH_SPRINT, id)?;
        }
        Ok(found)
    }
}
