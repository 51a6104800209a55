//! Checkpoints: where each mapping's next incremental search starts (the newest Jira `updated`
//! mirrored), and whether a polled pass has succeeded at all (an empty project has nothing to
//! mirror but has been read: webhook events for it may then be applied).

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::codec::now_text;
use super::Store;
use crate::domain::MappingId;
use crate::error::Result;

/// How far a mapping has been reconciled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checkpoint {
    /// No polled pass has succeeded: the next one runs full.
    Never,
    /// A polled pass succeeded without seeing an issue (an empty project).
    Reconciled,
    /// Every Jira issue updated up to here is mirrored.
    At(DateTime<Utc>),
}

impl Checkpoint {
    /// The newest Jira `updated` mirrored, if an issue has been.
    pub fn at(self) -> Option<DateTime<Utc>> {
        match self {
            Checkpoint::At(t) => Some(t),
            Checkpoint::Never | Checkpoint::Reconciled => None,
        }
    }

    /// Whether a polled pass has succeeded.
    pub fn reconciled(self) -> bool {
        self != Checkpoint::Never
    }
}

/// The stored form of [`Checkpoint::Reconciled`]: `updated_ms` 0, which any real checkpoint
/// replaces (they only move forward).
const RECONCILED_MS: i64 = 0;

pub struct Checkpoints<'s> {
    store: &'s Store,
}

impl<'s> Checkpoints<'s> {
    pub(super) fn new(store: &'s Store) -> Self {
        Checkpoints { store }
    }

    pub fn get(&self, mapping: &MappingId) -> Result<Checkpoint> {
        self.store.with(|c| {
            let ms: Option<i64> = c
                .query_row(
                    "SELECT updated_ms FROM checkpoint WHERE mapping = ?1",
                    [mapping],
                    |r| r.get(0),
                )
                .optional()?;
            match ms {
                None => Ok(Checkpoint::Never),
                Some(RECONCILED_MS) => Ok(Checkpoint::Reconciled),
                Some(ms) => chrono::TimeZone::timestamp_millis_opt(&Utc, ms)
                    .single()
                    .map(Checkpoint::At)
                    .ok_or(rusqlite::Error::IntegralValueOutOfRange(0, ms)),
            }
        })
    }

    /// Remember that a polled pass succeeded without seeing an issue (kept if a checkpoint is
    /// already there).
    pub fn mark_reconciled(&self, mapping: &MappingId) -> Result<()> {
        self.store.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO checkpoint (mapping, updated_ms, moved_at) VALUES (?1, ?2, ?3)",
                params![mapping, RECONCILED_MS, now_text()],
            )
            .map(|_| ())
        })
    }

    /// Move the checkpoint forward (never back: a pass that saw only old issues keeps it).
    pub fn advance(&self, mapping: &MappingId, to: DateTime<Utc>) -> Result<()> {
        self.store.with(|c| {
            c.execute(
                "INSERT INTO checkpoint (mapping, updated_ms, moved_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (mapping) DO UPDATE SET updated_ms = excluded.updated_ms,
                   moved_at = excluded.moved_at
                 WHERE excluded.updated_ms > checkpoint.updated_ms",
                params![mapping, to.timestamp_millis(), now_text()],
            )
            .map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_checkpoint_moves_only_forward_and_an_empty_mapping_is_reconciled_without_one() {
        let dir = crate::test_dir("store-checkpoints");
        let s = Store::open(&dir.join("state.db")).expect("open");
        let m = MappingId::from("A->b");
        let cp = || s.checkpoints().get(&m).expect("read");
        assert_eq!(cp(), Checkpoint::Never);
        assert!(!cp().reconciled());
        s.checkpoints().mark_reconciled(&m).expect("mark");
        assert_eq!(cp(), Checkpoint::Reconciled);
        assert_eq!(cp().at(), None, "no issue seen yet");
        let t = Utc
            .timestamp_millis_opt(1_700_000_000_123)
            .single()
            .expect("time");
        s.checkpoints().advance(&m, t).expect("advance");
        s.checkpoints()
            .advance(&m, t - chrono::Duration::hours(1))
            .expect("back");
        s.checkpoints().mark_reconciled(&m).expect("mark again");
        assert_eq!(cp(), Checkpoint::At(t), "kept");
        assert!(cp().reconciled());
    }
}
