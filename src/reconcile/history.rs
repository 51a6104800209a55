//! Changelogs, read only for the issues the plan asked about (a status label to change, a
//! recipe issue whose title is an earlier summary), never one request per issue: see
//! `jira/by_id.rs` for what each deployment costs. Their status transitions are kept for
//! `report`.

use std::collections::{BTreeSet, HashMap};

use super::{Reconciler, Target};
use crate::domain::IssueHistory;
use crate::error::Result;
use crate::store::Store;

impl Reconciler {
    /// The changelogs of `ids`; with a writable `store`, their transitions are recorded.
    pub(super) async fn read_history(
        &self,
        store: Option<&Store>,
        target: &Target<'_>,
        ids: &BTreeSet<String>,
    ) -> Result<HashMap<String, IssueHistory>> {
        let ids: Vec<String> = ids.iter().cloned().collect();
        let histories = self.jira.histories(&ids).await?;
        tracing::debug!(issues = ids.len(), "read Jira changelogs");
        if let Some(store) = store {
            store.record_transitions(&target.name, &histories)?;
        }
        Ok(histories)
    }
}
