//! Which of a Jira issue's planning fields a mapping mirrors, and so which its searches ask
//! Jira for (a mapping that mirrors none asks for what it always did).

use super::Reconciler;
use crate::config::Mapping;
use crate::error::Result;
use crate::jira::IssueFields;

impl Reconciler {
    /// The planning fields `mapping` mirrors. The sprint field's id is looked up in Jira
    /// (`GET /field`) only for a mapping that needs sprints.
    pub(super) async fn issue_fields(&self, mapping: &Mapping) -> Result<IssueFields> {
        Ok(IssueFields {
            labels: mapping.labels_from.labels,
            components: mapping.labels_from.components,
            priority: mapping.labels_from.priority,
            due_date: mapping.due_date,
            assignee: mapping.assignees,
            ..IssueFields::default()
        })
    }
}
