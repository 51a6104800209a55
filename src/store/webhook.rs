//! How many issues webhook events carried to GitLab (through event-triggered passes that
//! succeeded), and when the last was: `check` and the status page show it.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::codec::{now_text, parse_time};
use super::Store;
use crate::error::Result;

pub struct WebhookCounts<'s> {
    store: &'s Store,
}

impl<'s> WebhookCounts<'s> {
    pub(super) fn new(store: &'s Store) -> Self {
        WebhookCounts { store }
    }

    /// `n` issues reached GitLab through a webhook-triggered pass.
    pub fn record(&self, n: u64) -> Result<()> {
        self.store.with(|c| {
            c.execute(
                "INSERT INTO webhook_events (id, issues, last_at) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET issues = issues + excluded.issues,
                   last_at = excluded.last_at",
                params![n as i64, now_text()],
            )
            .map(|_| ())
        })
    }

    /// How many event-named issues were passed, and when the last was.
    pub fn read(&self) -> Result<Option<(u64, DateTime<Utc>)>> {
        self.store.with(|c| {
            c.query_row(
                "SELECT issues, last_at FROM webhook_events WHERE id = 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)? as u64,
                        parse_time(&r.get::<_, String>(1)?),
                    ))
                },
            )
            .optional()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_counts_add_up() {
        let dir = crate::test_dir("store-webhook");
        let s = Store::open(&dir.join("state.db")).expect("open");
        assert_eq!(s.webhook_counts().read().expect("read"), None);
        s.webhook_counts().record(2).expect("record");
        s.webhook_counts().record(3).expect("record");
        assert_eq!(
            s.webhook_counts().read().expect("read").map(|(n, _)| n),
            Some(5)
        );
    }
}
