//! Which Jira issues a full pass's search has returned, noted page by page, so that after the
//! last page the mapping's mirrors it did not see (deleted, invisible, moved, filtered out) can
//! be read in pages too. A temporary table: private to the connection, so a dry run can use it,
//! and nothing is kept in memory or in the state database's file.

use rusqlite::params;

use super::mirrors::read_mirror;
use super::{create_temp_tables, Store};
use crate::domain::{JiraId, MappingId, Mirror};
use crate::error::Result;

pub struct Seen<'s> {
    store: &'s Store,
}

impl<'s> Seen<'s> {
    pub(super) fn new(store: &'s Store) -> Self {
        Seen { store }
    }

    /// A full pass starts: nothing of `mapping` is seen yet.
    pub fn begin(&self, mapping: &MappingId) -> Result<()> {
        self.store.with(|c| {
            create_temp_tables(
                c,
                "CREATE TEMP TABLE IF NOT EXISTS seen_in_pass (
                    mapping TEXT NOT NULL,
                    jira_id TEXT NOT NULL,
                    PRIMARY KEY (mapping, jira_id)
                ) WITHOUT ROWID",
            )?;
            c.execute(
                "DELETE FROM temp.seen_in_pass WHERE mapping = ?1",
                [mapping],
            )
            .map(|_| ())
        })
    }

    /// The full pass's search returned these Jira issues.
    pub fn note(&self, mapping: &MappingId, ids: &[JiraId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.store.with(|c| {
            let tx = c.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO temp.seen_in_pass (mapping, jira_id) VALUES (?1, ?2)",
                )?;
                for id in ids {
                    insert.execute(params![mapping, id])?;
                }
            }
            tx.commit()
        })
    }

    /// Up to `limit` of the mapping's own mirrors that the full pass did not see and that are
    /// not known to have left, after the Jira id `after` (in the order of the stored ids, so the
    /// caller pages).
    pub fn unseen(
        &self,
        mapping: &MappingId,
        after: Option<JiraId>,
        limit: usize,
    ) -> Result<Vec<Mirror>> {
        let after = after.map(|id| id.to_string()).unwrap_or_default();
        self.store.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT m.jira_id, m.jira_key, m.gitlab_iid, m.applied_ms FROM mirror m
                 WHERE m.mapping = ?1 AND m.jira_id > ?2
                   AND NOT EXISTS (SELECT 1 FROM temp.seen_in_pass s
                                   WHERE s.mapping = ?1 AND s.jira_id = m.jira_id)
                   AND NOT EXISTS (SELECT 1 FROM jira_gone g
                                   WHERE g.mapping = ?1 AND g.jira_id = m.jira_id)
                 ORDER BY m.jira_id LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![mapping, after, limit as i64], read_mirror)?;
            rows.collect()
        })
    }

    /// The full pass is over: forget what it saw.
    pub fn end(&self, mapping: &MappingId) -> Result<()> {
        self.store.with(|c| {
            c.execute(
                "DELETE FROM temp.seen_in_pass WHERE mapping = ?1",
                [mapping],
            )
            .map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{GitlabIid, GoneReason};
    use crate::store::PageWrite;

    #[test]
    fn unseen_mirrors_are_those_a_full_pass_did_not_see_and_not_gone() {
        let dir = crate::test_dir("store-seen");
        let s = Store::open(&dir.join("state.db")).expect("open");
        let m = MappingId::from("m");
        let mirror = |id: u64| Mirror {
            jira_id: JiraId::new(id),
            jira_key: format!("A-{id}").parse().expect("key"),
            iid: GitlabIid::new(id),
            applied: None,
        };
        let write = PageWrite {
            mirrors: vec![mirror(1), mirror(2), mirror(3), mirror(4)],
            gone: vec![(JiraId::new(4), GoneReason::Moved)],
            ..PageWrite::default()
        };
        s.commit_page(&m, &write).expect("mirrors");
        let seen = s.seen();
        seen.begin(&m).expect("begin");
        seen.note(&m, &[JiraId::new(2)]).expect("seen");
        seen.note(&MappingId::from("other"), &[JiraId::new(1)])
            .expect("another mapping's pass");
        let ids = |after: Option<u64>| -> Vec<u64> {
            seen.unseen(&m, after.map(JiraId::new), 1)
                .expect("unseen")
                .into_iter()
                .map(|m| m.jira_id.get())
                .collect()
        };
        assert_eq!(ids(None), vec![1]);
        assert_eq!(ids(Some(1)), vec![3]);
        assert!(ids(Some(3)).is_empty());
        seen.end(&m).expect("end");
        seen.begin(&m).expect("a new pass has seen nothing");
        assert_eq!(seen.unseen(&m, None, 10).expect("unseen").len(), 3);
    }
}
