//! Mirrors: which GitLab issue mirrors each Jira issue of a mapping, and the Jira version
//! (`updated`) last made true in it. A pass reads them one page of Jira issues at a time, so
//! memory stays flat; they are written with the page's other outcomes (`page.rs`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::{params, Transaction};

use super::codec::{from_ms, marks};
use super::{PageWrite, Store};
use crate::domain::{GitlabIid, JiraId, MappingId, Mirror};
use crate::error::Result;

/// The most values one `IN (...)` list carries.
const CHUNK: usize = 500;

pub struct Mirrors<'s> {
    store: &'s Store,
}

impl<'s> Mirrors<'s> {
    pub(super) fn new(store: &'s Store) -> Self {
        Mirrors { store }
    }

    /// The mirrors of these Jira ids in `mapping` or in its `siblings` (mappings into the same
    /// GitLab project: an issue moved in Jira from one to the other keeps its GitLab issue).
    /// The mapping's own rows win.
    pub fn of(
        &self,
        mapping: &MappingId,
        siblings: &[MappingId],
        jira_ids: &[JiraId],
    ) -> Result<HashMap<JiraId, Mirror>> {
        let mut found: HashMap<JiraId, Mirror> = HashMap::with_capacity(jira_ids.len());
        // Siblings first, so the mapping's own rows overwrite theirs.
        for owner in owners(mapping, siblings).into_iter().rev() {
            for chunk in jira_ids.chunks(CHUNK) {
                let sql = format!(
                    "SELECT jira_id, jira_key, gitlab_iid, applied_ms FROM mirror
                     WHERE mapping = ? AND jira_id IN ({})",
                    marks(chunk.len())
                );
                let rows: Vec<Mirror> = self.store.with(|c| {
                    let mut stmt = c.prepare_cached(&sql)?;
                    let params = std::iter::once(owner as &dyn rusqlite::ToSql)
                        .chain(chunk.iter().map(|id| id as &dyn rusqlite::ToSql));
                    let rows = stmt.query_map(rusqlite::params_from_iter(params), read_mirror)?;
                    rows.collect()
                })?;
                found.extend(rows.into_iter().map(|m| (m.jira_id, m)));
            }
        }
        Ok(found)
    }

    /// Which of these GitLab iids a mirror of `mapping` or its `siblings` points at (the
    /// Automation recipe's slots: one a mirror holds is not free to adopt).
    pub fn claimed(
        &self,
        mapping: &MappingId,
        siblings: &[MappingId],
        iids: &[GitlabIid],
    ) -> Result<HashSet<GitlabIid>> {
        let mut out = HashSet::new();
        for owner in owners(mapping, siblings) {
            for chunk in iids.chunks(CHUNK) {
                let sql = format!(
                    "SELECT gitlab_iid FROM mirror WHERE mapping = ? AND gitlab_iid IN ({})",
                    marks(chunk.len())
                );
                let rows: Vec<GitlabIid> = self.store.with(|c| {
                    let mut stmt = c.prepare_cached(&sql)?;
                    let params = std::iter::once(owner as &dyn rusqlite::ToSql)
                        .chain(chunk.iter().map(|i| i as &dyn rusqlite::ToSql));
                    let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| r.get(0))?;
                    rows.collect()
                })?;
                out.extend(rows);
            }
        }
        Ok(out)
    }

    /// Whether `mapping` has any mirror (one index probe, not a count of them all).
    pub fn any(&self, mapping: &MappingId) -> Result<bool> {
        self.store.with(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM mirror WHERE mapping = ?1)",
                [mapping],
                |r| r.get(0),
            )
        })
    }

    pub fn count(&self, mapping: &MappingId) -> Result<u64> {
        self.store
            .with(|c| {
                c.query_row(
                    "SELECT COUNT(*) FROM mirror WHERE mapping = ?1",
                    [mapping],
                    |r| r.get::<_, i64>(0),
                )
            })
            .map(|n| n as u64)
    }

    /// The GitLab iid of the mirror of the Jira issue `key` (compared in upper case, as Jira
    /// writes keys) in `mapping`, if it has one: for `ref`, which a developer's commit hook
    /// calls with the key of a branch name. The table is keyed on the Jira id and has no index
    /// on the key: a scan of one mapping's rows takes 13–25 ms for 100,000 mirrors (measured on
    /// a loaded 2-core machine), so no migration is added for one look-up per commit.
    pub fn iid_by_key(&self, mapping: &MappingId, key: &str) -> Result<Option<GitlabIid>> {
        use rusqlite::OptionalExtension;
        self.store
            .with(|c| {
                c.query_row(
                    "SELECT gitlab_iid FROM mirror WHERE mapping = ?1 AND upper(jira_key) = ?2
                     ORDER BY linked_at DESC LIMIT 1",
                    params![mapping, key.to_ascii_uppercase()],
                    |r| r.get::<_, i64>(0),
                )
                .optional()
            })
            .map(|iid| iid.map(|i| GitlabIid::new(i as u64)))
    }

    /// Link a Jira issue to a GitLab issue, and clear its create intent in the same transaction.
    pub fn save(&self, mapping: &MappingId, m: &Mirror) -> Result<()> {
        self.store.commit_page(
            mapping,
            &PageWrite {
                mirrors: vec![m.clone()],
                ..PageWrite::default()
            },
        )
    }
}

/// The mapping and its siblings, the mapping first, each once.
fn owners<'a>(mapping: &'a MappingId, siblings: &'a [MappingId]) -> Vec<&'a MappingId> {
    let mut owners = vec![mapping];
    owners.extend(siblings.iter().filter(|s| *s != mapping));
    owners
}

/// Save links (inside a page's transaction), clearing their intents. `now`: when linked.
pub(super) fn write_links(
    tx: &Transaction<'_>,
    mapping: &MappingId,
    mirrors: &[Mirror],
    now: &str,
) -> rusqlite::Result<()> {
    let mut save = tx.prepare_cached(
        "INSERT INTO mirror (mapping, jira_id, jira_key, gitlab_iid, linked_at, applied_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (mapping, jira_id) DO UPDATE SET
           jira_key = excluded.jira_key, gitlab_iid = excluded.gitlab_iid,
           -- Re-linking the same GitLab issue without a version (an adopted
           -- create) keeps the version already applied to it: forgetting it
           -- would let a lagging search undo a newer change.
           applied_ms = CASE WHEN excluded.applied_ms IS NULL
                              AND mirror.gitlab_iid = excluded.gitlab_iid
                             THEN mirror.applied_ms ELSE excluded.applied_ms END,
           linked_at = CASE WHEN mirror.gitlab_iid = excluded.gitlab_iid
                            THEN mirror.linked_at ELSE excluded.linked_at END",
    )?;
    for m in mirrors {
        let applied = m.applied.map(|t| t.timestamp_millis());
        save.execute(params![mapping, m.jira_id, m.jira_key, m.iid, now, applied])?;
    }
    super::intents::clear_in(tx, mapping, mirrors.iter().map(|m| m.jira_id))
}

/// Existing mirrors that now agree with these Jira versions.
pub(super) fn write_applied(
    tx: &Transaction<'_>,
    mapping: &MappingId,
    applied: &[(JiraId, DateTime<Utc>)],
) -> rusqlite::Result<()> {
    let mut stmt =
        tx.prepare_cached("UPDATE mirror SET applied_ms = ?3 WHERE mapping = ?1 AND jira_id = ?2")?;
    for (id, at) in applied {
        stmt.execute(params![mapping, id, at.timestamp_millis()])?;
    }
    Ok(())
}

pub(super) fn read_mirror(r: &rusqlite::Row<'_>) -> rusqlite::Result<Mirror> {
    Ok(Mirror {
        jira_id: r.get(0)?,
        jira_key: r.get(1)?,
        iid: r.get(2)?,
        applied: r.get::<_, Option<i64>>(3)?.map(from_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn mirror(id: u64, iid: u64, applied: Option<DateTime<Utc>>) -> Mirror {
        Mirror {
            jira_id: JiraId::new(id),
            jira_key: format!("A-{id}").parse().expect("key"),
            iid: GitlabIid::new(iid),
            applied,
        }
    }

    #[test]
    fn a_key_finds_its_mirror_in_any_case_and_only_in_its_mapping() {
        let dir = crate::test_dir("store-by-key");
        let s = Store::open(&dir.join("s.db")).expect("store");
        let m = MappingId::from("VSA->a/p");
        let keyed = |id: u64, key: &str, iid: u64| Mirror {
            jira_key: key.parse().expect("key"),
            ..mirror(id, iid, None)
        };
        s.mirrors().save(&m, &keyed(10, "VSA-1", 7)).expect("save");
        s.mirrors().save(&m, &keyed(11, "VSA-12", 9)).expect("save");
        let iid = |mapping: &str, key: &str| {
            s.mirrors()
                .iid_by_key(&MappingId::from(mapping), key)
                .expect("read")
                .map(|i| i.get())
        };
        assert_eq!(iid("VSA->a/p", "vsa-1"), Some(7));
        assert_eq!(iid("VSA->a/p", "VSA-12"), Some(9));
        assert_eq!(iid("VSA->a/p", "VSA-2"), None);
        assert_eq!(iid("VSA->b/q", "VSA-1"), None);
    }

    #[test]
    fn relinking_the_same_issue_keeps_the_version_applied_to_it() {
        let dir = crate::test_dir("store-relink");
        let s = Store::open(&dir.join("state.db")).expect("open");
        let m = MappingId::from("A->b");
        let t = Utc
            .timestamp_millis_opt(1_700_000_000_000)
            .single()
            .expect("time");
        let id = JiraId::new(10);
        let applied = || s.mirrors().of(&m, &[], &[id]).expect("mirrors")[&id].applied;
        s.mirrors().save(&m, &mirror(10, 7, Some(t))).expect("save");
        s.mirrors()
            .save(&m, &mirror(10, 7, None))
            .expect("adopt again");
        assert_eq!(applied(), Some(t), "same issue: its version stands");
        s.mirrors().save(&m, &mirror(10, 8, None)).expect("relink");
        assert_eq!(applied(), None, "another issue has had nothing applied");
    }

    #[test]
    fn a_mappings_own_rows_win_over_its_siblings_and_claim_their_iids() {
        let dir = crate::test_dir("store-siblings");
        let s = Store::open(&dir.join("state.db")).expect("open");
        let (own, sibling) = (MappingId::from("A->p"), MappingId::from("B->p"));
        s.mirrors()
            .save(&sibling, &mirror(1, 11, None))
            .expect("save");
        s.mirrors()
            .save(&sibling, &mirror(2, 12, None))
            .expect("save");
        s.mirrors().save(&own, &mirror(2, 22, None)).expect("save");
        let ids = [JiraId::new(1), JiraId::new(2), JiraId::new(3)];
        let found = s
            .mirrors()
            .of(&own, &[own.clone(), sibling.clone()], &ids)
            .expect("read");
        assert_eq!(found.len(), 2);
        assert_eq!(found[&JiraId::new(1)].iid, GitlabIid::new(11));
        assert_eq!(
            found[&JiraId::new(2)].iid,
            GitlabIid::new(22),
            "its own row"
        );
        assert!(s
            .mirrors()
            .of(&own, &[], &ids[..1])
            .expect("own")
            .is_empty());
        let iids = [11, 12, 13, 22].map(GitlabIid::new);
        let claimed = s
            .mirrors()
            .claimed(&own, std::slice::from_ref(&sibling), &iids)
            .expect("claimed");
        assert_eq!(claimed, HashSet::from([11, 12, 22].map(GitlabIid::new)));
        assert!(s.mirrors().any(&own).expect("any"));
        assert_eq!(s.mirrors().count(&sibling).expect("count"), 2);
        assert!(!s.mirrors().any(&MappingId::from("C->p")).expect("none"));
    }
}
