//! What Jira said about each issue, kept for `report` (lead time from the state database alone,
//! without asking either server): creation and done times per issue, status transitions (read
//! from changelogs when status labels are on), and the issues that left a mapping, which the
//! report leaves out. A pass reads and writes these one page at a time (the writes go with the
//! page's other outcomes, in `commit_page`); only `report` reads a whole mapping.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::{params, Transaction};

use super::codec::{from_ms, marks};
use super::Store;
use crate::domain::{GoneReason, JiraId, JiraKey, MappingId, Transition};
use crate::error::Result;

/// One Jira issue as the last pass saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JiraFact {
    pub jira_id: JiraId,
    pub jira_key: JiraKey,
    pub issue_type: Option<String>,
    pub status: Option<String>,
    /// Status category `done`.
    pub done: bool,
    pub created: DateTime<Utc>,
    /// When it was done (resolution date, else when first seen done); `None` while open.
    pub done_at: Option<DateTime<Utc>>,
    /// The Jira version these facts are from: a fact changes only with a new version.
    pub updated: DateTime<Utc>,
}

/// What a pass needs of a recorded fact to decide whether to write a new one: the Jira
/// version it is from, and when the issue was done (kept when a later version has no
/// resolution date).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownFact {
    pub updated: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
}

impl JiraFact {
    pub fn known(&self) -> KnownFact {
        KnownFact {
            updated: self.updated,
            done_at: self.done_at.filter(|_| self.done),
        }
    }
}

const FACT_COLUMNS: &str =
    "jira_id, jira_key, issue_type, status, done, created_ms, done_ms, updated_ms";

fn read_fact(r: &rusqlite::Row<'_>) -> rusqlite::Result<JiraFact> {
    Ok(JiraFact {
        jira_id: r.get(0)?,
        jira_key: r.get(1)?,
        issue_type: r.get(2)?,
        status: r.get(3)?,
        done: r.get::<_, i64>(4)? != 0,
        created: from_ms(r.get(5)?),
        done_at: r.get::<_, Option<i64>>(6)?.map(from_ms),
        updated: from_ms(r.get(7)?),
    })
}

pub struct Facts<'s> {
    store: &'s Store,
}

impl<'s> Facts<'s> {
    pub(super) fn new(store: &'s Store) -> Self {
        Facts { store }
    }

    /// What is recorded of these issues (one page of a pass), by Jira id.
    pub fn known(&self, mapping: &MappingId, ids: &[JiraId]) -> Result<HashMap<JiraId, KnownFact>> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT jira_id, updated_ms, done_ms FROM jira_fact
                 WHERE mapping = ? AND jira_id IN ({})",
                marks(chunk.len())
            );
            let rows: Vec<(JiraId, KnownFact)> = self.store.with(|c| {
                let mut stmt = c.prepare_cached(&sql)?;
                let params = std::iter::once(&mapping as &dyn rusqlite::ToSql)
                    .chain(chunk.iter().map(|id| id as &dyn rusqlite::ToSql));
                let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| {
                    Ok((
                        r.get(0)?,
                        KnownFact {
                            updated: from_ms(r.get(1)?),
                            done_at: r.get::<_, Option<i64>>(2)?.map(from_ms),
                        },
                    ))
                })?;
                rows.collect()
            })?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Whether any issue of `mapping` is remembered as having left it.
    pub fn has_gone(&self, mapping: &MappingId) -> Result<bool> {
        self.store.with(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM jira_gone WHERE mapping = ?1)",
                [mapping],
                |r| r.get(0),
            )
        })
    }

    /// Which of these issues (one page of a pass) are remembered as having left the mapping.
    pub fn gone_among(&self, mapping: &MappingId, ids: &[JiraId]) -> Result<HashSet<JiraId>> {
        let mut out = HashSet::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT jira_id FROM jira_gone WHERE mapping = ? AND jira_id IN ({})",
                marks(chunk.len())
            );
            let rows: Vec<JiraId> = self.store.with(|c| {
                let mut stmt = c.prepare_cached(&sql)?;
                let params = std::iter::once(&mapping as &dyn rusqlite::ToSql)
                    .chain(chunk.iter().map(|id| id as &dyn rusqlite::ToSql));
                let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| r.get(0))?;
                rows.collect()
            })?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Every fact recorded for `mapping`, by Jira id (for `report`).
    pub fn all(&self, mapping: &MappingId) -> Result<HashMap<JiraId, JiraFact>> {
        self.store.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {FACT_COLUMNS} FROM jira_fact WHERE mapping = ?1"
            ))?;
            let rows = stmt.query_map([mapping], read_fact)?;
            rows.map(|f| f.map(|f| (f.jira_id, f))).collect()
        })
    }

    /// Every recorded status transition of `mapping`, by Jira id, oldest first (for `report`).
    pub fn transitions(&self, mapping: &MappingId) -> Result<HashMap<JiraId, Vec<Transition>>> {
        self.store.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT jira_id, at_ms, from_status, to_status FROM jira_transition
                 WHERE mapping = ?1 ORDER BY jira_id, at_ms",
            )?;
            let mut out: HashMap<JiraId, Vec<Transition>> = HashMap::new();
            let rows = stmt.query_map([mapping], |r| {
                Ok((
                    r.get::<_, JiraId>(0)?,
                    Transition {
                        at: from_ms(r.get(1)?),
                        from: r.get(2)?,
                        to: r.get(3)?,
                    },
                ))
            })?;
            for row in rows {
                let (id, t) = row?;
                out.entry(id).or_default().push(t);
            }
            Ok(out)
        })
    }

    /// The issues that left `mapping`, and why (for `report`).
    pub fn gone(&self, mapping: &MappingId) -> Result<HashMap<JiraId, GoneReason>> {
        self.store.with(|c| {
            let mut stmt =
                c.prepare_cached("SELECT jira_id, reason FROM jira_gone WHERE mapping = ?1")?;
            let rows = stmt.query_map([mapping], |r| {
                Ok((r.get::<_, JiraId>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut out = HashMap::new();
            for row in rows {
                let (id, reason) = row?;
                // A word a newer version wrote reads as the most common reason.
                out.insert(
                    id,
                    GoneReason::from_label(&reason).unwrap_or(GoneReason::Deleted),
                );
            }
            Ok(out)
        })
    }
}

/// Record changed facts (inside a page's transaction).
pub(super) fn write_facts(
    tx: &Transaction<'_>,
    mapping: &MappingId,
    facts: &[JiraFact],
) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO jira_fact (mapping, jira_id, jira_key, issue_type, status, done,
           created_ms, done_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (mapping, jira_id) DO UPDATE SET jira_key = excluded.jira_key,
           issue_type = excluded.issue_type, status = excluded.status,
           done = excluded.done, created_ms = excluded.created_ms,
           done_ms = excluded.done_ms, updated_ms = excluded.updated_ms",
    )?;
    for f in facts {
        upsert.execute(params![
            mapping,
            f.jira_id,
            f.jira_key,
            f.issue_type,
            f.status,
            i64::from(f.done),
            f.created.timestamp_millis(),
            f.done_at.map(|t| t.timestamp_millis()),
            f.updated.timestamp_millis(),
        ])?;
    }
    Ok(())
}

/// Keep the status transitions read from changelogs (each once, however often read).
pub(super) fn write_transitions(
    tx: &Transaction<'_>,
    mapping: &MappingId,
    transitions: &[(JiraId, Transition)],
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO jira_transition (mapping, jira_id, at_ms, from_status, to_status)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (id, t) in transitions {
        insert.execute(params![mapping, id, t.at.timestamp_millis(), t.from, t.to])?;
    }
    Ok(())
}

/// Remember issues that left the mapping (their policy applied), and forget those that came
/// back. A mirror that left is compared again in full when it returns.
pub(super) fn write_gone(
    tx: &Transaction<'_>,
    mapping: &MappingId,
    gone: &[(JiraId, GoneReason)],
    back: &[JiraId],
    now: &str,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO jira_gone (mapping, jira_id, reason, noticed_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (mapping, jira_id) DO UPDATE SET reason = excluded.reason",
    )?;
    let mut unapply = tx.prepare_cached(
        "UPDATE mirror SET applied_ms = NULL WHERE mapping = ?1 AND jira_id = ?2",
    )?;
    for (id, reason) in gone {
        insert.execute(params![mapping, id, reason.label(), now])?;
        unapply.execute(params![mapping, id])?;
    }
    let mut delete =
        tx.prepare_cached("DELETE FROM jira_gone WHERE mapping = ?1 AND jira_id = ?2")?;
    for id in back {
        delete.execute(params![mapping, id])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PageWrite;

    #[test]
    fn facts_transitions_and_gone_round_trip() {
        let dir = crate::test_dir("store-facts");
        let s = Store::open(&dir.join("state.db")).expect("open");
        let m = MappingId::from("m");
        let (ten, eleven) = (JiraId::new(10), JiraId::new(11));
        let t = |ms: i64| from_ms(1_700_000_000_000 + ms);
        let fact = JiraFact {
            jira_id: ten,
            jira_key: "A-1".parse().expect("key"),
            issue_type: Some("Bug".into()),
            status: Some("Done".into()),
            done: true,
            created: t(0),
            done_at: Some(t(5_000)),
            updated: t(5_000),
        };
        let transition = Transition {
            at: t(1_000),
            from: Some("To Do".into()),
            to: "Done".into(),
        };
        let write = PageWrite {
            facts: vec![fact.clone()],
            transitions: vec![(ten, transition.clone())],
            ..PageWrite::default()
        };
        s.commit_page(&m, &write).expect("save");
        s.commit_page(&m, &write).expect("twice is once");
        let facts = s.facts();
        assert_eq!(facts.all(&m).expect("facts")[&ten], fact);
        let known = facts.known(&m, &[ten, eleven]).expect("page");
        assert_eq!((known.len(), known[&ten]), (1, fact.known()));
        assert_eq!(facts.transitions(&m).expect("read")[&ten], vec![transition]);
        let gone = PageWrite {
            gone: vec![(ten, GoneReason::Deleted)],
            ..PageWrite::default()
        };
        s.commit_page(&m, &gone).expect("gone");
        assert_eq!(facts.gone(&m).expect("gone")[&ten], GoneReason::Deleted);
        assert!(facts.has_gone(&m).expect("any"));
        assert_eq!(
            facts
                .gone_among(&m, &[ten, JiraId::new(12)])
                .expect("among"),
            HashSet::from([ten])
        );
        let back = PageWrite {
            back: vec![ten],
            ..PageWrite::default()
        };
        s.commit_page(&m, &back).expect("back");
        assert!(facts.gone(&m).expect("gone").is_empty());
        assert!(!facts.has_gone(&m).expect("none"));
        assert!(facts
            .all(&MappingId::from("other"))
            .expect("facts")
            .is_empty());
    }
}
