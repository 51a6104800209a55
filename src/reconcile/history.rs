//! Changelogs, read only for the issues the plan asked about (a status label to change, a
//! recipe issue whose title is an earlier summary), never one request per issue: see
//! `jira/by_id.rs` for what each deployment costs. Their status transitions are kept for
//! `report` (with the page's outcomes).

use std::collections::{BTreeSet, HashMap};

use super::Reconciler;
use crate::domain::{IssueHistory, JiraId};
use crate::error::Result;

impl Reconciler {
    /// The changelogs of `ids` (every id gets an entry, empty when there is nothing to say).
    pub(super) async fn read_history(
        &self,
        ids: &BTreeSet<JiraId>,
    ) -> Result<HashMap<JiraId, IssueHistory>> {
        let ids: Vec<JiraId> = ids.iter().copied().collect();
        let histories = self.jira.histories(&ids).await?;
        tracing::debug!(issues = ids.len(), "read Jira changelogs");
        Ok(histories)
    }
}
