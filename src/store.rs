//! The state database (SQLite), the only code that writes SQL. `Store` owns the connection and
//! hands out a small view per concern, each in its own file with its SQL and its tests:
//!
//! - [`Mirrors`] (`mirrors.rs`): the links Jira id → GitLab iid, with the Jira version each last
//!   applied;
//! - [`Intents`] (`intents.rs`): creates recorded before they are sent, until confirmed;
//! - [`Checkpoints`] (`checkpoints.rs`): where each mapping's next incremental search starts;
//! - [`Passes`] (`passes.rs`): the pass history `status` and the status page read;
//! - [`Facts`] (`facts.rs`): what Jira said about each issue, for `report`;
//! - [`Cache`] (`cache.rs`): facts about GitLab projects, and the create pacer's state;
//! - [`WebhookCounts`] (`webhook.rs`): issues carried to GitLab by webhook-triggered passes;
//! - [`Seen`] (`seen.rs`) and [`Listings`] (`listing.rs`): what a pass remembers of its own work
//!   (the mirrors a full pass saw, the GitLab project as it listed it), in temporary tables;
//! - `page.rs`: what one page of a pass changed, across those concerns, in one transaction;
//! - `migrations.rs`: the schema, as an append-only list; `codec.rs`: how ids and times are
//!   stored and decoded; `files.rs`: opening the files safely.

mod cache;
mod checkpoints;
mod codec;
mod facts;
mod files;
mod intents;
mod listing;
mod migrations;
mod mirrors;
mod page;
mod passes;
mod seen;
mod set_fields;
mod webhook;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};

use crate::domain::MappingId;
use crate::error::{Error, Result};

pub use cache::{Cache, KeptBoard};
pub use checkpoints::{Checkpoint, Checkpoints};
pub use facts::{Facts, JiraFact, KnownFact};
pub use intents::Intents;
pub use listing::{Listings, SharedMarker};
pub use mirrors::Mirrors;
pub use page::PageWrite;
pub use passes::{PassId, PassRecord, Passes};
pub use seen::Seen;
pub use webhook::WebhookCounts;

/// Never through a symlink (see `files`).
const NOFOLLOW: OpenFlags = OpenFlags::SQLITE_OPEN_NOFOLLOW;

/// What `status` and the status page show of one mapping.
#[derive(Clone, Debug)]
pub struct MappingStatus {
    /// The newest Jira `updated` mirrored (none yet, or never reconciled).
    pub checkpoint: Option<DateTime<Utc>>,
    pub mirrors: u64,
    pub pending_intents: u64,
    pub last_pass: Option<PassRecord>,
    pub last_success: Option<PassRecord>,
}

pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Store {
    /// Open (creating if needed) and migrate the database at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::io(
                        format!(
                            "cannot create the state directory {}; create it or set state.path",
                            dir.display()
                        ),
                        e,
                    )
                })?;
            }
        }
        let existed = path.exists();
        let real = files::open_path(path)?;
        let conn = Connection::open_with_flags(&real, OpenFlags::default() | NOFOLLOW)
            .map_err(|e| store_error(path, e))?;
        // A read opens the side files of a WAL database: check what was opened before the
        // migrations write (an error here is the migrations' to report, with their retries).
        let _ = conn.query_row("PRAGMA schema_version", [], |r| r.get::<_, i64>(0));
        files::check_opened(path, &real)?;
        let store = Store {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        };
        store.setup()?;
        // And the side files setup created (a new database switching to WAL).
        files::check_opened(path, &real)?;
        if !existed {
            // Right on a first run; after a typo in state.path, the reason history is gone.
            tracing::warn!(
                db = %path.display(),
                "created a new, empty state database: expected on a first run; if passes have \
                 run before, check state.path (this pass finds the mirrored GitLab issues by their \
                 markers and creates nothing twice)"
            );
        }
        // WAL mode keeps two side files next to the database while it is open.
        files::match_directory_owner(&real);
        Ok(store)
    }

    /// Open an existing database without changing it (for `status` and `--dry-run`).
    pub fn open_read_only(path: &Path) -> Result<Option<Store>> {
        if !path.exists() {
            return Ok(None);
        }
        let read = |conn: Connection| -> rusqlite::Result<(Connection, usize)> {
            let version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            Ok((conn, version))
        };
        let real = files::open_path(path)?;
        let opened =
            Connection::open_with_flags(&real, OpenFlags::SQLITE_OPEN_READ_ONLY | NOFOLLOW)
                .and_then(read);
        let (conn, version) = match opened {
            // A WAL database needs its `-shm` file, which a reader without write access to the
            // directory cannot create when no writer is running (the last writer removed it,
            // with its `-wal`). Then the database file holds every commit and can be read as it
            // stands. A `-wal` with content (a writer at work, or one that was killed) holds
            // commits such a read would miss: then the error stands.
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
                ) && wal_is_empty(path) =>
            {
                Connection::open_with_flags(
                    immutable_uri(&real),
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | NOFOLLOW,
                )
                .and_then(read)
                .map_err(|_| store_error(path, e))?
            }
            other => other.map_err(|e| store_error(path, e))?,
        };
        files::check_opened(path, &real)?;
        let store = Store {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        };
        if version > migrations::latest() {
            return Err(newer_schema(path, version));
        }
        if version < migrations::latest() {
            // An older file: reading it is fine once migrated, which a read-only open cannot do.
            return Ok(None);
        }
        Ok(Some(store))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn setup(&self) -> Result<()> {
        // Another process may be creating or migrating the same file right now (the service
        // and an on-demand run). SQLite answers BUSY without waiting in some of those cases
        // (switching to WAL, upgrading a read lock), so busy answers are retried here.
        let mut attempt = 0;
        let versions = loop {
            let outcome = {
                let mut conn = crate::lock_unpoisoned(&self.conn);
                migrations::migrate(&mut conn)
            };
            match outcome {
                Err(e) if is_busy(&e) && attempt < 100 => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => break other.map_err(|e| store_error(&self.path, e))?,
            }
        };
        let (from, to) = versions;
        if from > migrations::latest() {
            return Err(newer_schema(&self.path, from));
        }
        if from < to {
            tracing::info!(db = %self.path.display(), from, to, "state database migrated");
        }
        Ok(())
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = crate::lock_unpoisoned(&self.conn);
        f(&mut conn).map_err(|e| store_error(&self.path, e))
    }

    pub fn mirrors(&self) -> Mirrors<'_> {
        Mirrors::new(self)
    }

    pub fn intents(&self) -> Intents<'_> {
        Intents::new(self)
    }

    pub fn checkpoints(&self) -> Checkpoints<'_> {
        Checkpoints::new(self)
    }

    pub fn passes(&self) -> Passes<'_> {
        Passes::new(self)
    }

    pub fn facts(&self) -> Facts<'_> {
        Facts::new(self)
    }

    pub fn cache(&self) -> Cache<'_> {
        Cache::new(self)
    }

    pub fn webhook_counts(&self) -> WebhookCounts<'_> {
        WebhookCounts::new(self)
    }

    pub fn seen(&self) -> Seen<'_> {
        Seen::new(self)
    }

    /// What the reconciler last wrote of mirrors' Jira fields.
    pub fn set_fields(&self) -> set_fields::SetFieldsView<'_> {
        set_fields::SetFieldsView::new(self)
    }

    pub fn listings(&self) -> Listings<'_> {
        Listings::new(self)
    }

    /// One mapping as `status` shows it, from each concern's rows.
    pub fn status(&self, mapping: &MappingId) -> Result<MappingStatus> {
        let passes = self.passes();
        Ok(MappingStatus {
            checkpoint: self.checkpoints().get(mapping)?.at(),
            mirrors: self.mirrors().count(mapping)?,
            pending_intents: self.intents().count(mapping)?,
            last_pass: passes.last(mapping, None)?,
            last_success: passes.last(mapping, Some(crate::domain::PassOutcome::Ok))?,
        })
    }
}

/// Create what a pass remembers of its own work (`CREATE TEMP TABLE IF NOT EXISTS ...`): private
/// to this connection, gone with it, and beyond a small cache in SQLite's temporary file (in
/// `$SQLITE_TMPDIR`, `$TMPDIR`, `/var/tmp` or `/tmp`), so a large project costs disk, not memory.
fn create_temp_tables(c: &Connection, sql: &str) -> rusqlite::Result<()> {
    c.execute_batch("PRAGMA temp.cache_size = -256")?;
    c.execute_batch(sql)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Whether the database at `path` has no write-ahead log with content.
fn wal_is_empty(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(Path::new(&wal)).map_or(true, |m| m.len() == 0)
}

/// `file:<path>?mode=ro&immutable=1`, with the characters a URI path cannot carry escaped.
fn immutable_uri(path: &Path) -> String {
    // `file://` + an absolute path: a path starting with `//` must not read as a host.
    let mut uri = String::from(if path.is_absolute() {
        "file://"
    } else {
        "file:"
    });
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'?' | b'#' | b'%' | 0..=0x20 | 0x7f.. => uri.push_str(&format!("%{b:02X}")),
            _ => uri.push(*b as char),
        }
    }
    uri + "?mode=ro&immutable=1"
}

fn newer_schema(path: &Path, version: usize) -> Error {
    Error::store(
        path,
        format!(
            "schema version {version} is newer than this program knows ({}): \
             run the newer jira-gitlab-reconciler that wrote it",
            migrations::latest()
        ),
    )
}

fn store_error(path: &Path, e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode;
    let code = e.sqlite_error_code();
    let fix = match code {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
            "the file is not a SQLite database or is corrupt: move it aside; the next pass rebuilds \
             the mapping from the markers in GitLab and creates nothing twice"
        }
        Some(ErrorCode::ReadOnly) | Some(ErrorCode::PermissionDenied) | Some(ErrorCode::CannotOpen) => {
            "the file or its directory is not writable by this user: fix the permissions or set state.path"
        }
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            "another process keeps the database busy: is a second reconciler using the same state.path?"
        }
        Some(ErrorCode::DiskFull) => "the disk is full",
        _ => "see the SQLite message",
    };
    Error::Store {
        path: path.to_path_buf(),
        problem: format!("{e}; {fix}"),
        source: Some(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Counts, JiraId, Mirror, PassKind, PassOutcome};
    use chrono::TimeZone;

    /// A test's directory (removed when the test passes) and the database path in it, which
    /// the test creates.
    pub(super) fn temp_db(name: &str) -> (crate::TestDir, PathBuf) {
        let dir = crate::test_dir(&format!("store-{name}"));
        let path = dir.join("state.db");
        (dir, path)
    }

    #[test]
    fn a_mappings_rows_persist_and_add_up_to_its_status() {
        let (_dir, path) = temp_db("persist");
        let m = MappingId::from("A->b");
        let id = JiraId::new(10);
        let key = "A-1".parse().expect("key");
        let t = Utc
            .timestamp_millis_opt(1_700_000_000_123)
            .single()
            .expect("time");
        {
            let s = Store::open(&path).expect("open");
            s.intents().record(&m, &[(id, &key)]).expect("intent");
            let mirror = Mirror {
                jira_id: id,
                jira_key: key.clone(),
                iid: crate::domain::GitlabIid::new(7),
                applied: None,
            };
            s.mirrors().save(&m, &mirror).expect("save");
            s.checkpoints().advance(&m, t).expect("cp");
            let pass = s.passes().begin(&m, PassKind::Incremental).expect("pass");
            let counts = Counts {
                created: 1,
                ..Counts::default()
            };
            s.passes()
                .finish(pass, PassOutcome::Ok, &counts, None)
                .expect("finish");
        }
        let s = Store::open(&path).expect("reopen");
        let st = s.status(&m).expect("status");
        assert_eq!(
            (st.mirrors, st.pending_intents, st.checkpoint),
            (1, 0, Some(t))
        );
        assert_eq!(st.last_pass.expect("pass").counts.created, 1);
        assert!(st.last_success.is_some());
        let other = s.status(&MappingId::from("other")).expect("other");
        assert_eq!((other.mirrors, other.checkpoint), (0, None));
    }

    #[test]
    fn corrupt_file_gets_an_actionable_error() {
        let (_dir, path) = temp_db("corrupt");
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, b"this is not sqlite, it is a text file of some length....................................").expect("write");
        let e = Store::open(&path).err().expect("refused").to_string();
        assert!(e.contains("move it aside"), "{e}");
    }
}
