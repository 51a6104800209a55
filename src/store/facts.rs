//! What Jira said about each issue, kept for `report` (lead time from the state database alone,
//! without asking either server): creation and done times per issue, status transitions (read
//! from changelogs when status labels are on), and the issues that left a mapping, which the
//! report leaves out. A pass reads and writes these one page at a time (the writes go with the
//! page's other outcomes, in `commit_page`); only `report` reads a whole mapping.
//!
//! Also here: which mirrors a full pass has seen (a temporary table, so a dry run can use it
//! too and nothing is kept in memory or in the file), for finding the issues that left.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Transaction};

use super::{create_temp_tables, now_text, read_mirror, Store};
use crate::domain::{GoneReason, Mirror, Transition};
use crate::error::Result;

/// One Jira issue as the last pass saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JiraFact {
    pub jira_id: String,
    pub jira_key: String,
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

fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// `?,?,?` for an `IN` list of `n` values.
fn marks(n: usize) -> String {
    vec!["?"; n].join(",")
}

impl Store {
    /// What is recorded of these issues (one page of a pass), by Jira id.
    pub fn known_facts(&self, mapping: &str, ids: &[&str]) -> Result<HashMap<String, KnownFact>> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT jira_id, updated_ms, done_ms FROM jira_fact
                 WHERE mapping = ? AND jira_id IN ({})",
                marks(chunk.len())
            );
            let rows: Vec<(String, KnownFact)> = self.with(|c| {
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
    pub fn has_gone(&self, mapping: &str) -> Result<bool> {
        self.with(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM jira_gone WHERE mapping = ?1)",
                [mapping],
                |r| r.get(0),
            )
        })
    }

    /// Which of these issues (one page of a pass) are remembered as having left the mapping.
    pub fn gone_among(&self, mapping: &str, ids: &[&str]) -> Result<HashSet<String>> {
        let mut out = HashSet::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT jira_id FROM jira_gone WHERE mapping = ? AND jira_id IN ({})",
                marks(chunk.len())
            );
            let rows: Vec<String> = self.with(|c| {
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
    pub fn facts(&self, mapping: &str) -> Result<HashMap<String, JiraFact>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {FACT_COLUMNS} FROM jira_fact WHERE mapping = ?1"
            ))?;
            let rows = stmt.query_map([mapping], read_fact)?;
            rows.map(|f| f.map(|f| (f.jira_id.clone(), f))).collect()
        })
    }

    /// Every recorded status transition of `mapping`, by Jira id, oldest first (for `report`).
    pub fn transitions(&self, mapping: &str) -> Result<HashMap<String, Vec<Transition>>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT jira_id, at_ms, from_status, to_status FROM jira_transition
                 WHERE mapping = ?1 ORDER BY jira_id, at_ms",
            )?;
            let mut out: HashMap<String, Vec<Transition>> = HashMap::new();
            let rows = stmt.query_map([mapping], |r| {
                Ok((
                    r.get::<_, String>(0)?,
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
    pub fn gone(&self, mapping: &str) -> Result<HashMap<String, GoneReason>> {
        self.with(|c| {
            let mut stmt =
                c.prepare_cached("SELECT jira_id, reason FROM jira_gone WHERE mapping = ?1")?;
            let rows = stmt.query_map([mapping], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
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

    /// A full pass starts: nothing of `mapping` is seen yet (a temporary table: a large project
    /// costs no memory).
    pub fn begin_seen(&self, mapping: &str) -> Result<()> {
        self.with(|c| {
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
    pub fn note_seen(&self, mapping: &str, ids: &[&str]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.with(|c| {
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
    /// not known to have left, after the Jira id `after` (in id order, so the caller pages).
    pub fn unseen_mirrors(
        &self,
        mapping: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Mirror>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT m.jira_id, m.jira_key, m.gitlab_iid, m.applied_ms FROM mirror m
                 WHERE m.mapping = ?1 AND m.jira_id > ?2
                   AND NOT EXISTS (SELECT 1 FROM temp.seen_in_pass s
                                   WHERE s.mapping = ?1 AND s.jira_id = m.jira_id)
                   AND NOT EXISTS (SELECT 1 FROM jira_gone g
                                   WHERE g.mapping = ?1 AND g.jira_id = m.jira_id)
                 ORDER BY m.jira_id LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![mapping, after.unwrap_or(""), limit as i64],
                read_mirror,
            )?;
            rows.collect()
        })
    }

    /// The full pass is over: forget what it saw.
    pub fn end_seen(&self, mapping: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM temp.seen_in_pass WHERE mapping = ?1",
                [mapping],
            )
            .map(|_| ())
        })
    }
}

/// Record changed facts (inside a page's transaction).
pub(super) fn write_facts(
    tx: &Transaction<'_>,
    mapping: &str,
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
    mapping: &str,
    transitions: &[(String, Transition)],
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
    mapping: &str,
    gone: &[(String, GoneReason)],
    back: &[String],
) -> rusqlite::Result<()> {
    let now = now_text();
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
        let t = |ms: i64| from_ms(1_700_000_000_000 + ms);
        let fact = JiraFact {
            jira_id: "10".into(),
            jira_key: "A-1".into(),
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
            transitions: vec![("10".into(), transition.clone())],
            ..PageWrite::default()
        };
        s.commit_page("m", &write).expect("save");
        s.commit_page("m", &write).expect("twice is once");
        assert_eq!(s.facts("m").expect("facts")["10"], fact);
        let known = s.known_facts("m", &["10", "11"]).expect("page");
        assert_eq!((known.len(), known["10"]), (1, fact.known()));
        assert_eq!(s.transitions("m").expect("read")["10"], vec![transition]);
        let gone = PageWrite {
            gone: vec![("10".into(), GoneReason::Deleted)],
            ..PageWrite::default()
        };
        s.commit_page("m", &gone).expect("gone");
        assert_eq!(s.gone("m").expect("gone")["10"], GoneReason::Deleted);
        assert!(s.has_gone("m").expect("any"));
        assert_eq!(
            s.gone_among("m", &["10", "12"]).expect("among"),
            HashSet::from(["10".to_string()])
        );
        let back = PageWrite {
            back: vec!["10".into()],
            ..PageWrite::default()
        };
        s.commit_page("m", &back).expect("back");
        assert!(s.gone("m").expect("gone").is_empty());
        assert!(!s.has_gone("m").expect("none"));
        assert!(s.facts("other").expect("facts").is_empty());
    }

    #[test]
    fn unseen_mirrors_are_those_a_full_pass_did_not_see_and_not_gone() {
        let dir = crate::test_dir("store-seen");
        let s = Store::open(&dir.join("state.db")).expect("open");
        let mirror = |id: &str, iid: u64| Mirror {
            jira_id: id.into(),
            jira_key: format!("A-{id}"),
            iid,
            applied: None,
        };
        let write = PageWrite {
            mirrors: vec![
                mirror("1", 1),
                mirror("2", 2),
                mirror("3", 3),
                mirror("4", 4),
            ],
            gone: vec![("4".into(), GoneReason::Moved)],
            ..PageWrite::default()
        };
        s.commit_page("m", &write).expect("mirrors");
        s.begin_seen("m").expect("begin");
        s.note_seen("m", &["2"]).expect("seen");
        s.note_seen("other", &["1"])
            .expect("another mapping's pass");
        let ids = |after| -> Vec<String> {
            s.unseen_mirrors("m", after, 1)
                .expect("unseen")
                .into_iter()
                .map(|m| m.jira_id)
                .collect()
        };
        assert_eq!(ids(None), vec!["1"]);
        assert_eq!(ids(Some("1")), vec!["3"]);
        assert!(ids(Some("3")).is_empty());
        s.end_seen("m").expect("end");
        s.begin_seen("m").expect("a new pass has seen nothing");
        assert_eq!(s.unseen_mirrors("m", None, 10).expect("unseen").len(), 3);
    }
}
