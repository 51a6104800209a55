//! Changelogs, read only for the issues the plan asked about (a status label to change, a
//! recipe issue whose title is an earlier summary), never one request per issue: see
//! `jira/by_id.rs` for what each deployment costs. Their status transitions are kept for
//! `report` (with the page's outcomes).

use std::collections::{BTreeSet, HashMap};

use super::Reconciler;
use crate::domain::IssueHistory;
use crate::error::Result;

impl Reconciler {
    /// The changelogs of `ids` (every id gets an entry, empty when there is nothing to say).
    pub(super) async fn read_history(
        &self,
        ids: &BTreeSet<String>,
    ) -> Result<HashMap<String, IssueHistory>> {
        let ids: Vec<String> = ids.iter().cloned().collect();
        let histories = self.jira.histories(&ids).await?;
        tracing::debug!(issues = ids.len(), "read Jira changelogs");
        Ok(histories)
    }
}
