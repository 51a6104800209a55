//! Create intents: a page's creates are recorded, in one transaction, before any of them is
//! sent. Until an intent is cleared (its mirror saved, or the create surely not made), its
//! issue may exist in GitLab without a mirror row: the next pass looks for it by marker before
//! creating, so a crash between GitLab's commit and ours never duplicates an issue.

use rusqlite::{params, Transaction};

use super::codec::now_text;
use super::{PageWrite, Store};
use crate::domain::{JiraId, JiraKey, MappingId};
use crate::error::Result;

pub struct Intents<'s> {
    store: &'s Store,
}

impl<'s> Intents<'s> {
    pub(super) fn new(store: &'s Store) -> Self {
        Intents { store }
    }

    /// Creates recorded but not confirmed.
    pub fn pending(&self, mapping: &MappingId) -> Result<Vec<(JiraId, JiraKey)>> {
        self.store.with(|c| {
            let mut stmt =
                c.prepare_cached("SELECT jira_id, jira_key FROM intent WHERE mapping = ?1")?;
            let rows = stmt.query_map([mapping], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    pub fn count(&self, mapping: &MappingId) -> Result<u64> {
        self.store
            .with(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM intent WHERE mapping = ?1",
                    [mapping],
                    |r| r.get::<_, i64>(0),
                )
            })
            .map(|n| n as u64)
    }

    /// Record that these creates are about to be sent, in one transaction.
    pub fn record(&self, mapping: &MappingId, creates: &[(JiraId, &JiraKey)]) -> Result<()> {
        if creates.is_empty() {
            return Ok(());
        }
        let now = now_text();
        self.store.with(|c| {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO intent (mapping, jira_id, jira_key, started_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (mapping, jira_id) DO UPDATE SET started_at = excluded.started_at",
                )?;
                for (id, key) in creates {
                    stmt.execute(params![mapping, id, key, now])?;
                }
            }
            tx.commit()
        })
    }

    /// Forget an intent whose create surely did not happen, or whose Jira issue left the mapping.
    pub fn clear(&self, mapping: &MappingId, jira_id: JiraId) -> Result<()> {
        self.store.commit_page(
            mapping,
            &PageWrite {
                cleared_intents: vec![jira_id],
                ..PageWrite::default()
            },
        )
    }
}

/// Clear these intents (inside a page's transaction).
pub(super) fn clear_in(
    tx: &Transaction<'_>,
    mapping: &MappingId,
    ids: impl IntoIterator<Item = JiraId>,
) -> rusqlite::Result<()> {
    let mut clear = tx.prepare_cached("DELETE FROM intent WHERE mapping = ?1 AND jira_id = ?2")?;
    for id in ids {
        clear.execute(params![mapping, id])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{GitlabIid, Mirror};

    #[test]
    fn an_intent_lasts_until_its_mirror_is_saved_or_it_is_cleared() {
        let dir = crate::test_dir("store-intents");
        let s = Store::open(&dir.join("state.db")).expect("open");
        let m = MappingId::from("A->b");
        let (a, b): (JiraKey, JiraKey) = ("A-1".parse().expect("key"), "A-2".parse().expect("key"));
        let (one, two) = (JiraId::new(10), JiraId::new(20));
        s.intents()
            .record(&m, &[(one, &a), (two, &b)])
            .expect("record");
        s.intents().record(&m, &[(one, &a)]).expect("again is once");
        assert_eq!(s.intents().count(&m).expect("count"), 2);
        let mirror = Mirror {
            jira_id: one,
            jira_key: a,
            iid: GitlabIid::new(7),
            applied: None,
        };
        s.mirrors().save(&m, &mirror).expect("save");
        assert_eq!(s.intents().pending(&m).expect("pending"), vec![(two, b)]);
        s.intents().clear(&m, two).expect("clear");
        assert_eq!(s.intents().count(&m).expect("count"), 0);
    }
}
