//! What the reconciler last wrote of each mirror's Jira fields (`labels_from`, `due_date`):
//! the labels and due date it may change or remove, and nothing else (a label a person added
//! in GitLab is not in it). Written with the page that wrote them, in the same transaction.

use std::collections::HashMap;

use rusqlite::{params, Transaction};

use super::codec::json_list;
use super::Store;
use crate::domain::{JiraId, MappingId, SetFields};
use crate::error::Result;

pub struct SetFieldsView<'s> {
    store: &'s Store,
}

impl<'s> SetFieldsView<'s> {
    pub(super) fn new(store: &'s Store) -> Self {
        SetFieldsView { store }
    }

    /// The records of these Jira issues' mirrors (absent: nothing recorded).
    pub fn of(&self, mapping: &MappingId, ids: &[JiraId]) -> Result<HashMap<JiraId, SetFields>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<String> = ids.iter().map(JiraId::to_string).collect();
        self.store.with(|c| {
            let mut q = c.prepare_cached(
                "SELECT jira_id, labels, due, assignee FROM mirror_field
                 WHERE mapping = ?1 AND jira_id IN (SELECT value FROM json_each(?2))",
            )?;
            let rows = q.query_map(params![mapping, json_list(&ids)], |r| {
                let labels: String = r.get(1)?;
                let due: Option<String> = r.get(2)?;
                Ok((
                    r.get::<_, JiraId>(0)?,
                    SetFields {
                        // A record that does not read is no record: the next write replaces it.
                        labels: serde_json::from_str(&labels).unwrap_or_default(),
                        due: due.and_then(|d| d.parse().ok()),
                        assignee: r.get(3)?,
                    },
                ))
            })?;
            rows.collect()
        })
    }
}

pub(super) fn write(
    tx: &Transaction<'_>,
    mapping: &MappingId,
    rows: &[(JiraId, SetFields)],
) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO mirror_field (mapping, jira_id, labels, due, assignee)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (mapping, jira_id) DO UPDATE
         SET labels = excluded.labels, due = excluded.due, assignee = excluded.assignee",
    )?;
    for (id, set) in rows {
        let due = set.due.map(|d| d.to_string());
        upsert.execute(params![
            mapping,
            id,
            json_list(&set.labels),
            due,
            set.assignee
        ])?;
    }
    Ok(())
}
