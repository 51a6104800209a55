//! The pass history: each mapping's passes, from when they began to how they ended and what
//! they did (`status`, the status page and the service's gauges read it). It is bounded: a
//! mapping keeps its newest passes and its last successful one.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::codec::{now_text, parse_time};
use super::Store;
use crate::domain::{Counts, MappingId, PassKind, PassOutcome};
use crate::error::Result;

/// Passes remembered per mapping: a week of passes once a minute (the pass table holds a few
/// hundred bytes per row).
const PASS_HISTORY: u32 = 10_000;

const PASS_COLUMNS: &str = "kind, started_at, finished_at, outcome, created, closed, reopened,
    updated, adopted, unchanged, failed, jira_seen, error";

/// One pass in the history.
#[derive(Clone, Debug)]
pub struct PassRecord {
    pub kind: PassKind,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: PassOutcome,
    pub counts: Counts,
    pub error: Option<String>,
}

/// A pass recorded as running, to finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PassId(i64);

pub struct Passes<'s> {
    store: &'s Store,
}

impl<'s> Passes<'s> {
    pub(super) fn new(store: &'s Store) -> Self {
        Passes { store }
    }

    pub fn begin(&self, mapping: &MappingId, kind: PassKind) -> Result<PassId> {
        self.begin_keeping(mapping, kind, PASS_HISTORY)
    }

    /// Record a pass as running, and forget the mapping's passes older than the newest `keep`
    /// (but never its last successful one, which `status` shows): webhooks can start a pass
    /// every second, and the history must not grow without end.
    fn begin_keeping(&self, mapping: &MappingId, kind: PassKind, keep: u32) -> Result<PassId> {
        self.store.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO pass (mapping, kind, started_at, outcome) VALUES (?1, ?2, ?3, ?4)",
                params![
                    mapping,
                    kind.label(),
                    now_text(),
                    PassOutcome::Running.label()
                ],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "DELETE FROM pass WHERE mapping = ?1
                   AND id < (SELECT id FROM pass WHERE mapping = ?1
                             ORDER BY id DESC LIMIT 1 OFFSET ?2)
                   AND id IS NOT (SELECT max(id) FROM pass WHERE mapping = ?1 AND outcome = ?3)",
                params![mapping, keep.saturating_sub(1), PassOutcome::Ok.label()],
            )?;
            tx.commit()?;
            Ok(PassId(id))
        })
    }

    /// How the pass ended, what it did, and its first error (made safe for terminals).
    pub fn finish(
        &self,
        id: PassId,
        outcome: PassOutcome,
        n: &Counts,
        error: Option<&str>,
    ) -> Result<()> {
        self.store.with(|c| {
            c.execute(
                "UPDATE pass SET finished_at = ?2, outcome = ?3, created = ?4, closed = ?5,
                   reopened = ?6, updated = ?7, adopted = ?8, unchanged = ?9, failed = ?10,
                   jira_seen = ?11, error = ?12
                 WHERE id = ?1",
                params![
                    id.0,
                    now_text(),
                    outcome.label(),
                    n.created as i64,
                    n.closed as i64,
                    n.reopened as i64,
                    n.updated as i64,
                    n.adopted as i64,
                    n.unchanged as i64,
                    n.failed as i64,
                    n.jira_seen as i64,
                    error.map(crate::safe_text::safe)
                ],
            )
            .map(|_| ())
        })
    }

    /// The mapping's last pass with this outcome (`None`: of any outcome).
    pub fn last(
        &self,
        mapping: &MappingId,
        outcome: Option<PassOutcome>,
    ) -> Result<Option<PassRecord>> {
        // `?2 IS NULL`: the last pass of any outcome.
        let sql = format!(
            "SELECT {PASS_COLUMNS} FROM pass WHERE mapping = ?1 AND (?2 IS NULL OR outcome = ?2)
             ORDER BY id DESC LIMIT 1"
        );
        let outcome = outcome.map(PassOutcome::label);
        self.store.with(|c| {
            c.query_row(&sql, params![mapping, outcome], read_pass)
                .optional()
        })
    }

    /// The mapping's newest pass that has ended (a pass running now hides it from `status`).
    pub fn last_finished(&self, mapping: &MappingId) -> Result<Option<PassRecord>> {
        let sql = format!(
            "SELECT {PASS_COLUMNS} FROM pass WHERE mapping = ?1 AND outcome != ?2
             ORDER BY id DESC LIMIT 1"
        );
        self.store.with(|c| {
            c.query_row(
                &sql,
                params![mapping, PassOutcome::Running.label()],
                read_pass,
            )
            .optional()
        })
    }

    /// Passes left running by a process that died: mark them so `status` does not lie.
    pub fn close_abandoned(&self) -> Result<u64> {
        self.store
            .with(|c| {
                c.execute(
                    "UPDATE pass SET outcome = ?2, finished_at = ?1,
                       error = 'the process stopped during this pass (crash, kill or power loss)'
                     WHERE outcome = ?3",
                    params![
                        now_text(),
                        PassOutcome::Interrupted.label(),
                        PassOutcome::Running.label()
                    ],
                )
            })
            .map(|n| n as u64)
    }
}

fn read_pass(r: &rusqlite::Row<'_>) -> rusqlite::Result<PassRecord> {
    let n = |i: usize| r.get::<_, i64>(i).map(|v| v as u64);
    // A word this version does not know (written by a newer one) reads as the nearest truth.
    let kind: String = r.get(0)?;
    let outcome: String = r.get(3)?;
    Ok(PassRecord {
        kind: PassKind::from_label(&kind).unwrap_or(PassKind::Incremental),
        started_at: parse_time(&r.get::<_, String>(1)?),
        finished_at: r.get::<_, Option<String>>(2)?.map(|s| parse_time(&s)),
        outcome: PassOutcome::from_label(&outcome).unwrap_or(PassOutcome::Failed),
        counts: Counts {
            created: n(4)?,
            closed: n(5)?,
            reopened: n(6)?,
            updated: n(7)?,
            adopted: n(8)?,
            unchanged: n(9)?,
            failed: n(10)?,
            jira_seen: n(11)?,
        },
        // Made safe again when read: a database written by an older version may hold a
        // server's text as it came.
        error: r
            .get::<_, Option<String>>(12)?
            .map(|e| crate::safe_text::safe(&e)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_history_keeps_the_newest_and_the_last_success() {
        let dir = crate::test_dir("store-history");
        let s = Store::open(&dir.join("state.db")).expect("open");
        let (a, c) = (MappingId::from("A->b"), MappingId::from("C->d"));
        let passes = s.passes();
        let ok = passes
            .begin_keeping(&a, PassKind::Incremental, 3)
            .expect("pass");
        passes
            .finish(ok, PassOutcome::Ok, &Counts::default(), None)
            .expect("finish");
        for _ in 0..5 {
            let id = passes
                .begin_keeping(&a, PassKind::Targeted, 3)
                .expect("pass");
            passes
                .finish(id, PassOutcome::Failed, &Counts::default(), Some("down"))
                .expect("finish");
        }
        let other = passes.begin_keeping(&c, PassKind::Full, 3).expect("pass");
        let rows = |mapping: &MappingId| -> i64 {
            s.with(|c| {
                c.query_row(
                    "SELECT count(*) FROM pass WHERE mapping = ?1",
                    params![mapping],
                    |r| r.get(0),
                )
            })
            .expect("count")
        };
        assert_eq!(rows(&a), 4, "the newest three and the last success");
        assert_eq!(rows(&c), 1, "other mappings keep theirs");
        let status = s.status(&a).expect("status");
        assert!(status.last_success.is_some(), "the last success is kept");
        assert_eq!(status.last_pass.expect("last").outcome, PassOutcome::Failed);
        assert!(other > ok);
        let running = passes.begin_keeping(&a, PassKind::Full, 10).expect("pass");
        let shown = passes.last_finished(&a).expect("read").expect("one");
        assert_eq!(
            (shown.kind, shown.error.as_deref()),
            (PassKind::Targeted, Some("down")),
            "the pass running now ({running:?}) hides nothing"
        );
    }

    #[test]
    fn abandoned_passes_are_marked() {
        let dir = crate::test_dir("store-abandoned");
        let s = Store::open(&dir.join("state.db")).expect("open");
        let a = MappingId::from("A->b");
        s.passes().begin(&a, PassKind::Full).expect("pass");
        assert_eq!(s.passes().close_abandoned().expect("close"), 1);
        assert_eq!(
            s.passes()
                .last(&a, None)
                .expect("read")
                .expect("pass")
                .outcome,
            PassOutcome::Interrupted
        );
    }
}
