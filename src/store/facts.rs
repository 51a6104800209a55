//! What Jira said about each mirrored issue, kept for `report` (lead time from the state
//! database alone, without asking either server): creation and done times per issue, status
//! transitions (read from changelogs when status labels are on), and the issues that left a
//! mapping, which the report leaves out.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::params;

use super::{now_text, Store};
use crate::domain::{GoneReason, IssueHistory, Transition};
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
    pub updated: DateTime<Utc>,
}

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

impl Store {
    /// The Jira `updated` (ms) of every fact recorded for `mapping`: a fact changes only with
    /// a new Jira version, so comparing these is enough to find what to write.
    pub fn fact_versions(&self, mapping: &str) -> Result<HashMap<String, i64>> {
        self.with(|c| {
            let mut stmt =
                c.prepare_cached("SELECT jira_id, updated_ms FROM jira_fact WHERE mapping = ?1")?;
            let rows = stmt.query_map([mapping], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    /// The recorded facts of these issues, by Jira id.
    pub fn facts_for(&self, mapping: &str, ids: &[&str]) -> Result<HashMap<String, JiraFact>> {
        let mut out = HashMap::new();
        for id in ids {
            if let Some(f) = self.fact(mapping, id)? {
                out.insert(f.jira_id.clone(), f);
            }
        }
        Ok(out)
    }

    fn fact(&self, mapping: &str, id: &str) -> Result<Option<JiraFact>> {
        use rusqlite::OptionalExtension;
        self.with(|c| {
            c.prepare_cached(
                "SELECT jira_id, jira_key, issue_type, status, done, created_ms, done_ms, updated_ms
                 FROM jira_fact WHERE mapping = ?1 AND jira_id = ?2",
            )?
            .query_row(params![mapping, id], read_fact)
            .optional()
        })
    }

    /// Every fact recorded for `mapping`, by Jira id.
    pub fn facts(&self, mapping: &str) -> Result<HashMap<String, JiraFact>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT jira_id, jira_key, issue_type, status, done, created_ms, done_ms, updated_ms
                 FROM jira_fact WHERE mapping = ?1",
            )?;
            let rows = stmt.query_map([mapping], read_fact)?;
            rows.map(|f| f.map(|f| (f.jira_id.clone(), f))).collect()
        })
    }

    /// Record changed facts, and forget that the issues `seen` had left the mapping (they
    /// came back), in one transaction.
    pub fn save_facts(&self, mapping: &str, facts: &[JiraFact], seen: &[&str]) -> Result<()> {
        if facts.is_empty() && seen.is_empty() {
            return Ok(());
        }
        self.with(|c| {
            let tx = c.transaction()?;
            {
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
                let mut back =
                    tx.prepare_cached("DELETE FROM jira_gone WHERE mapping = ?1 AND jira_id = ?2")?;
                for id in seen {
                    back.execute(params![mapping, id])?;
                }
            }
            tx.commit()
        })
    }

    /// Keep the status transitions these changelogs list (each once, however often read).
    pub fn record_transitions(
        &self,
        mapping: &str,
        histories: &HashMap<String, IssueHistory>,
    ) -> Result<()> {
        if histories.values().all(|h| h.transitions.is_empty()) {
            return Ok(());
        }
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO jira_transition (mapping, jira_id, at_ms, from_status, to_status)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for (id, h) in histories {
                    for t in &h.transitions {
                        insert.execute(params![mapping, id, t.at.timestamp_millis(), t.from, t.to])?;
                    }
                }
            }
            tx.commit()
        })
    }

    /// Every recorded status transition of `mapping`, by Jira id, oldest first.
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

    /// Remember that a mirrored issue left the mapping (and its policy was applied).
    pub fn mark_gone(&self, mapping: &str, jira_id: &str, reason: GoneReason) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO jira_gone (mapping, jira_id, reason, noticed_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (mapping, jira_id) DO UPDATE SET reason = excluded.reason",
                params![mapping, jira_id, reason.label(), now_text()],
            )
            .map(|_| ())
        })
    }

    /// The issues that left `mapping`, and why.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_transitions_and_gone_round_trip() {
        let dir = std::env::temp_dir().join(format!("jgr-store-facts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
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
        s.save_facts("m", std::slice::from_ref(&fact), &[])
            .expect("save");
        assert_eq!(s.facts("m").expect("facts")["10"], fact);
        let h = IssueHistory {
            transitions: vec![Transition {
                at: t(1_000),
                from: Some("To Do".into()),
                to: "Done".into(),
            }],
            earlier_summaries: vec![],
        };
        let histories: HashMap<String, IssueHistory> = [("10".to_string(), h)].into();
        s.record_transitions("m", &histories).expect("record");
        s.record_transitions("m", &histories)
            .expect("twice is once");
        assert_eq!(s.transitions("m").expect("read")["10"].len(), 1);
        s.mark_gone("m", "10", GoneReason::Deleted).expect("gone");
        assert_eq!(s.gone("m").expect("gone")["10"], GoneReason::Deleted);
        s.save_facts("m", &[], &["10"]).expect("back");
        assert!(s.gone("m").expect("gone").is_empty());
        assert!(s.facts("other").expect("facts").is_empty());
    }
}
