//! The state database (SQLite): mirrors (Jira id → GitLab iid), checkpoints, create intents and
//! pass history; and, for `report`, what Jira said about each mirrored issue (`store/facts.rs`);
//! and, while a pass runs, the GitLab project's issues as it listed them (`store/listing.rs`).
//! Nothing else in the program writes SQL.
//!
//! Migrations follow cargo's scheme: an append-only list, `PRAGMA user_version` = how many ran.
//! Never edit or drop a shipped migration; add a new one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::domain::{GoneReason, Mirror, PassKind, PassOutcome, Transition};
use crate::error::{Error, Result};
use crate::gitlab::{PacerSnapshot, Project};

/// What one page of a pass changed in the mapping, written in one transaction.
#[derive(Debug, Default)]
pub struct PageWrite {
    /// Links to save (created, adopted or moved issues), with the Jira version applied.
    pub mirrors: Vec<Mirror>,
    /// Existing mirrors that now agree with this Jira version: (Jira id, its `updated`).
    pub applied: Vec<(String, DateTime<Utc>)>,
    /// Creates that surely did not happen (refused, or never sent): their intents go.
    pub cleared_intents: Vec<String>,
    /// What Jira said about the page's issues, for those whose version is new to the store.
    pub facts: Vec<JiraFact>,
    /// Status transitions read from changelogs: (Jira id, transition).
    pub transitions: Vec<(String, Transition)>,
    /// Mirrored issues that left the mapping, their policy applied: (Jira id, why).
    pub gone: Vec<(String, GoneReason)>,
    /// Issues remembered as gone that the search returned again.
    pub back: Vec<String>,
}

impl PageWrite {
    pub fn is_empty(&self) -> bool {
        self.mirrors.is_empty()
            && self.applied.is_empty()
            && self.cleared_intents.is_empty()
            && self.facts.is_empty()
            && self.transitions.is_empty()
            && self.gone.is_empty()
            && self.back.is_empty()
    }
}

/// Passes remembered per mapping: a week of passes once a minute (the pass table holds a few
/// hundred bytes per row).
const PASS_HISTORY: u32 = 10_000;

const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "CREATE TABLE mirror (
        mapping     TEXT NOT NULL,
        jira_id     TEXT NOT NULL,
        jira_key    TEXT NOT NULL,
        gitlab_iid  INTEGER NOT NULL,
        linked_at   TEXT NOT NULL,
        PRIMARY KEY (mapping, jira_id)
    );
    CREATE INDEX mirror_by_iid ON mirror (mapping, gitlab_iid);
    CREATE TABLE checkpoint (
        mapping     TEXT PRIMARY KEY,
        updated_ms  INTEGER NOT NULL,
        moved_at    TEXT NOT NULL
    );
    CREATE TABLE intent (
        mapping     TEXT NOT NULL,
        jira_id     TEXT NOT NULL,
        jira_key    TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        PRIMARY KEY (mapping, jira_id)
    );
    CREATE TABLE pass (
        id          INTEGER PRIMARY KEY,
        mapping     TEXT NOT NULL,
        kind        TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        outcome     TEXT NOT NULL,
        created     INTEGER NOT NULL DEFAULT 0,
        closed      INTEGER NOT NULL DEFAULT 0,
        reopened    INTEGER NOT NULL DEFAULT 0,
        updated     INTEGER NOT NULL DEFAULT 0,
        adopted     INTEGER NOT NULL DEFAULT 0,
        unchanged   INTEGER NOT NULL DEFAULT 0,
        failed      INTEGER NOT NULL DEFAULT 0,
        jira_seen   INTEGER NOT NULL DEFAULT 0,
        error       TEXT
    );
    CREATE INDEX pass_by_mapping ON pass (mapping, id);",
    // 2: the Jira version each mirror last applied (never step back to an older one); facts
    // about GitLab projects that do not change between passes; the create pacer's state.
    "ALTER TABLE mirror ADD COLUMN applied_ms INTEGER;
    CREATE TABLE gitlab_project (
        gitlab_url   TEXT NOT NULL,
        project      TEXT NOT NULL,
        id           INTEGER NOT NULL,
        path         TEXT NOT NULL,
        access_level INTEGER NOT NULL,
        fetched_at   TEXT NOT NULL,
        PRIMARY KEY (gitlab_url, project)
    );
    CREATE TABLE create_pacing (
        gitlab_url  TEXT PRIMARY KEY,
        learned     INTEGER,
        learned_ms  INTEGER,
        recent_ms   TEXT NOT NULL
    );
    CREATE TABLE webhook_events (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        issues      INTEGER NOT NULL,
        last_at     TEXT NOT NULL
    );",
    // 3: what Jira said about each issue (for `report`), its status transitions (with status
    // labels), and the issues that left a mapping (deleted, moved, filtered out); the project's
    // group and the token's role in it (for group labels): the cached projects are dropped so
    // the next pass looks them up with it. The new tables are keyed by their primary key alone
    // (WITHOUT ROWID): no second b-tree to write and cache.
    "CREATE TABLE jira_fact (
        mapping     TEXT NOT NULL,
        jira_id     TEXT NOT NULL,
        jira_key    TEXT NOT NULL,
        issue_type  TEXT,
        status      TEXT,
        done        INTEGER NOT NULL,
        created_ms  INTEGER NOT NULL,
        done_ms     INTEGER,
        updated_ms  INTEGER NOT NULL,
        PRIMARY KEY (mapping, jira_id)
    ) WITHOUT ROWID;
    CREATE TABLE jira_transition (
        mapping     TEXT NOT NULL,
        jira_id     TEXT NOT NULL,
        at_ms       INTEGER NOT NULL,
        from_status TEXT,
        to_status   TEXT NOT NULL,
        PRIMARY KEY (mapping, jira_id, at_ms, to_status)
    ) WITHOUT ROWID;
    CREATE TABLE jira_gone (
        mapping     TEXT NOT NULL,
        jira_id     TEXT NOT NULL,
        reason      TEXT NOT NULL,
        noticed_at  TEXT NOT NULL,
        PRIMARY KEY (mapping, jira_id)
    ) WITHOUT ROWID;
    ALTER TABLE gitlab_project ADD COLUMN group_path TEXT;
    ALTER TABLE gitlab_project ADD COLUMN group_access_level INTEGER NOT NULL DEFAULT 0;
    DELETE FROM gitlab_project;",
    // 4: Jira project keys are upper case, and the config now says so: a mapping written as
    // "vsa" is "VSA". History recorded under "vsa->acme/vsa" joins "VSA->acme/vsa" (the config
    // read either way is one mapping), so a change of case orphans nothing. Where both names
    // hold a row for the same key, the upper-case row stays, and the mapping keeps the older
    // of the two checkpoints (a wider window re-reads; it never skips).
    "CREATE TEMP TABLE renamed AS
        SELECT DISTINCT mapping AS old,
            upper(substr(mapping, 1, instr(mapping, '->') - 1)) || substr(mapping, instr(mapping, '->')) AS new
        FROM (SELECT mapping FROM mirror UNION SELECT mapping FROM checkpoint
            UNION SELECT mapping FROM intent UNION SELECT mapping FROM pass
            UNION SELECT mapping FROM jira_fact UNION SELECT mapping FROM jira_transition
            UNION SELECT mapping FROM jira_gone)
        WHERE instr(mapping, '->') > 1;
    DELETE FROM temp.renamed WHERE old = new;
    UPDATE checkpoint SET updated_ms = min(updated_ms, coalesce((SELECT min(c.updated_ms)
        FROM checkpoint AS c JOIN temp.renamed AS r ON r.old = c.mapping
        WHERE r.new = checkpoint.mapping), updated_ms));
    UPDATE OR IGNORE checkpoint SET mapping = (SELECT new FROM temp.renamed WHERE old = mapping)
        WHERE mapping IN (SELECT old FROM temp.renamed);
    DELETE FROM checkpoint WHERE mapping IN (SELECT old FROM temp.renamed);
    UPDATE OR IGNORE mirror SET mapping = (SELECT new FROM temp.renamed WHERE old = mapping)
        WHERE mapping IN (SELECT old FROM temp.renamed);
    DELETE FROM mirror WHERE mapping IN (SELECT old FROM temp.renamed);
    UPDATE OR IGNORE intent SET mapping = (SELECT new FROM temp.renamed WHERE old = mapping)
        WHERE mapping IN (SELECT old FROM temp.renamed);
    DELETE FROM intent WHERE mapping IN (SELECT old FROM temp.renamed);
    UPDATE pass SET mapping = (SELECT new FROM temp.renamed WHERE old = mapping)
        WHERE mapping IN (SELECT old FROM temp.renamed);
    UPDATE OR IGNORE jira_fact SET mapping = (SELECT new FROM temp.renamed WHERE old = mapping)
        WHERE mapping IN (SELECT old FROM temp.renamed);
    DELETE FROM jira_fact WHERE mapping IN (SELECT old FROM temp.renamed);
    UPDATE OR IGNORE jira_transition SET mapping = (SELECT new FROM temp.renamed WHERE old = mapping)
        WHERE mapping IN (SELECT old FROM temp.renamed);
    DELETE FROM jira_transition WHERE mapping IN (SELECT old FROM temp.renamed);
    UPDATE OR IGNORE jira_gone SET mapping = (SELECT new FROM temp.renamed WHERE old = mapping)
        WHERE mapping IN (SELECT old FROM temp.renamed);
    DELETE FROM jira_gone WHERE mapping IN (SELECT old FROM temp.renamed);
    DROP TABLE temp.renamed;",
];

mod by_key;
mod facts;
mod files;
mod listing;

/// Never through a symlink (see `files`).
const NOFOLLOW: OpenFlags = OpenFlags::SQLITE_OPEN_NOFOLLOW;

pub use facts::{JiraFact, KnownFact};
pub use listing::SharedMarker;

/// Counts of what a pass did, by kind of action.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub created: u64,
    pub closed: u64,
    pub reopened: u64,
    pub updated: u64,
    pub adopted: u64,
    pub unchanged: u64,
    pub failed: u64,
    pub jira_seen: u64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.created += other.created;
        self.closed += other.closed;
        self.reopened += other.reopened;
        self.updated += other.updated;
        self.adopted += other.adopted;
        self.unchanged += other.unchanged;
        self.failed += other.failed;
        self.jira_seen += other.jira_seen;
    }
}

#[derive(Clone, Debug)]
pub struct PassRecord {
    pub kind: PassKind,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: PassOutcome,
    pub counts: Counts,
    pub error: Option<String>,
}

#[derive(Clone, Debug)]
pub struct MappingStatus {
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
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            crate::match_directory_owner(Path::new(&file));
        }
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
        if version > MIGRATIONS.len() {
            return Err(newer_schema(path, version));
        }
        if version < MIGRATIONS.len() {
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
                migrate(&mut conn)
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
        if from > MIGRATIONS.len() {
            return Err(newer_schema(&self.path, from));
        }
        if from < to {
            tracing::info!(db = %self.path.display(), from, to, "state database migrated");
        }
        Ok(())
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut conn).map_err(|e| store_error(&self.path, e))
    }

    /// The mirrors of these Jira ids in `mapping` or in its `siblings` (mappings into the same
    /// GitLab project: an issue moved in Jira from one to the other keeps its GitLab issue).
    /// The mapping's own rows win. One page of a pass at a time, so memory stays flat.
    pub fn mirrors_for(
        &self,
        mapping: &str,
        siblings: &[String],
        jira_ids: &[&str],
    ) -> Result<HashMap<String, Mirror>> {
        let mut found: HashMap<String, Mirror> = HashMap::with_capacity(jira_ids.len());
        let mut owners = vec![mapping];
        owners.extend(
            siblings
                .iter()
                .map(String::as_str)
                .filter(|s| *s != mapping),
        );
        // Siblings first, so the mapping's own rows overwrite theirs.
        for owner in owners.iter().rev() {
            for chunk in jira_ids.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(",");
                let sql = format!(
                    "SELECT jira_id, jira_key, gitlab_iid, applied_ms FROM mirror
                     WHERE mapping = ? AND jira_id IN ({marks})"
                );
                let rows: Vec<Mirror> = self.with(|c| {
                    let mut stmt = c.prepare_cached(&sql)?;
                    let params = std::iter::once(owner as &dyn rusqlite::ToSql)
                        .chain(chunk.iter().map(|id| id as &dyn rusqlite::ToSql));
                    let rows = stmt.query_map(rusqlite::params_from_iter(params), read_mirror)?;
                    rows.collect()
                })?;
                found.extend(rows.into_iter().map(|m| (m.jira_id.clone(), m)));
            }
        }
        Ok(found)
    }

    /// Which of these GitLab iids a mirror of `mapping` or its `siblings` points at (the
    /// Automation recipe's slots: one a mirror holds is not free to adopt).
    pub fn claimed_iids(
        &self,
        mapping: &str,
        siblings: &[String],
        iids: &[u64],
    ) -> Result<std::collections::HashSet<u64>> {
        let mut owners = vec![mapping];
        owners.extend(
            siblings
                .iter()
                .map(String::as_str)
                .filter(|s| *s != mapping),
        );
        let mut out = std::collections::HashSet::new();
        for owner in owners {
            for chunk in iids.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(",");
                let sql = format!(
                    "SELECT gitlab_iid FROM mirror WHERE mapping = ? AND gitlab_iid IN ({marks})"
                );
                let rows: Vec<i64> = self.with(|c| {
                    let mut stmt = c.prepare_cached(&sql)?;
                    let iids: Vec<i64> = chunk.iter().map(|&i| i as i64).collect();
                    let params = std::iter::once(&owner as &dyn rusqlite::ToSql)
                        .chain(iids.iter().map(|i| i as &dyn rusqlite::ToSql));
                    let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| r.get(0))?;
                    rows.collect()
                })?;
                out.extend(rows.into_iter().map(|i| i as u64));
            }
        }
        Ok(out)
    }

    /// Creates recorded but not confirmed: (Jira id, Jira key).
    pub fn intents(&self, mapping: &str) -> Result<Vec<(String, String)>> {
        self.with(|c| {
            let mut stmt =
                c.prepare_cached("SELECT jira_id, jira_key FROM intent WHERE mapping = ?1")?;
            let rows = stmt.query_map([mapping], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    /// Whether `mapping` has any mirror (one index probe, not a count of them all).
    pub fn has_mirrors(&self, mapping: &str) -> Result<bool> {
        self.with(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM mirror WHERE mapping = ?1)",
                [mapping],
                |r| r.get(0),
            )
        })
    }

    pub fn mirror_count(&self, mapping: &str) -> Result<u64> {
        self.count_of(mapping, "SELECT COUNT(*) FROM mirror WHERE mapping = ?1")
    }

    /// A `COUNT(*)` query over one mapping's rows.
    fn count_of(&self, mapping: &str, sql: &str) -> Result<u64> {
        self.with(|c| c.query_row(sql, [mapping], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
    }

    /// Link a Jira issue to a GitLab issue, and clear its create intent in the same transaction.
    pub fn save_mirror(&self, mapping: &str, m: &Mirror) -> Result<()> {
        self.commit_page(
            mapping,
            &PageWrite {
                mirrors: vec![m.clone()],
                ..PageWrite::default()
            },
        )
    }

    /// Write what one page of a pass changed, in one transaction: saved mirrors (their intents
    /// cleared with them), versions applied, intents of creates that surely did not happen, and
    /// what Jira said (facts, transitions, issues that left or came back).
    pub fn commit_page(&self, mapping: &str, w: &PageWrite) -> Result<()> {
        if w.is_empty() {
            return Ok(());
        }
        let now = now_text();
        self.with(|c| {
            let tx = c.transaction()?;
            {
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
                let mut clear =
                    tx.prepare_cached("DELETE FROM intent WHERE mapping = ?1 AND jira_id = ?2")?;
                for m in &w.mirrors {
                    let applied = m.applied.map(|t| t.timestamp_millis());
                    save.execute(params![mapping, m.jira_id, m.jira_key, m.iid as i64, now, applied])?;
                    clear.execute(params![mapping, m.jira_id])?;
                }
                for id in &w.cleared_intents {
                    clear.execute(params![mapping, id])?;
                }
                let mut applied = tx.prepare_cached(
                    "UPDATE mirror SET applied_ms = ?3 WHERE mapping = ?1 AND jira_id = ?2",
                )?;
                for (id, at) in &w.applied {
                    applied.execute(params![mapping, id, at.timestamp_millis()])?;
                }
            }
            facts::write_facts(&tx, mapping, &w.facts)?;
            facts::write_transitions(&tx, mapping, &w.transitions)?;
            facts::write_gone(&tx, mapping, &w.gone, &w.back)?;
            tx.commit()
        })
    }

    /// Record that these creates are about to be sent, in one transaction. Until an intent is
    /// cleared, its issue may exist in GitLab without a mirror row: the next pass looks for it
    /// by marker before creating.
    pub fn record_intents(&self, mapping: &str, creates: &[(&str, &str)]) -> Result<()> {
        if creates.is_empty() {
            return Ok(());
        }
        let now = now_text();
        self.with(|c| {
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
    pub fn clear_intent(&self, mapping: &str, jira_id: &str) -> Result<()> {
        self.commit_page(
            mapping,
            &PageWrite {
                cleared_intents: vec![jira_id.to_string()],
                ..PageWrite::default()
            },
        )
    }

    /// The GitLab project as last looked up (id, path, group, the token's roles), and when.
    pub fn cached_project(
        &self,
        gitlab_url: &str,
        project: &str,
    ) -> Result<Option<(Project, DateTime<Utc>)>> {
        self.with(|c| {
            c.query_row(
                "SELECT id, path, access_level, fetched_at, group_path, group_access_level
                 FROM gitlab_project WHERE gitlab_url = ?1 AND project = ?2",
                params![gitlab_url, project],
                |r| {
                    Ok((
                        Project {
                            id: r.get::<_, i64>(0)? as u64,
                            path: r.get(1)?,
                            access_level: r.get::<_, i64>(2)? as u32,
                            group: r.get(4)?,
                            group_access_level: r.get::<_, i64>(5)? as u32,
                        },
                        parse_time(&r.get::<_, String>(3)?),
                    ))
                },
            )
            .optional()
        })
    }

    pub fn cache_project(&self, gitlab_url: &str, project: &str, p: &Project) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO gitlab_project (gitlab_url, project, id, path, access_level, fetched_at,
                   group_path, group_access_level)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (gitlab_url, project) DO UPDATE SET id = excluded.id,
                   path = excluded.path, access_level = excluded.access_level,
                   fetched_at = excluded.fetched_at, group_path = excluded.group_path,
                   group_access_level = excluded.group_access_level",
                params![
                    gitlab_url,
                    project,
                    p.id as i64,
                    p.path,
                    i64::from(p.access_level),
                    now_text(),
                    p.group,
                    i64::from(p.group_access_level)
                ],
            )
            .map(|_| ())
        })
    }

    /// Forget a project's cached facts (after a 401, 403 or 404: the role or the project
    /// changed), so the next pass looks it up again.
    pub fn forget_project(&self, gitlab_url: &str, project: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM gitlab_project WHERE gitlab_url = ?1 AND project = ?2",
                params![gitlab_url, project],
            )
            .map(|_| ())
        })
    }

    /// `n` issues reached GitLab through a webhook-triggered pass (for `check` and `status`).
    pub fn record_webhook_events(&self, n: u64) -> Result<()> {
        self.with(|c| {
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
    pub fn webhook_events(&self) -> Result<Option<(u64, DateTime<Utc>)>> {
        self.with(|c| {
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

    pub fn pacer_state(&self, gitlab_url: &str) -> Result<Option<PacerSnapshot>> {
        let row: Option<(Option<i64>, Option<i64>, String)> = self.with(|c| {
            c.query_row(
                "SELECT learned, learned_ms, recent_ms FROM create_pacing WHERE gitlab_url = ?1",
                [gitlab_url],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
        })?;
        Ok(row.map(|(learned, learned_ms, recent)| PacerSnapshot {
            learned: learned
                .zip(learned_ms)
                .map(|(n, ms)| (n.max(1) as u32, system_time(ms))),
            recent: recent
                .split(',')
                .filter_map(|v| v.trim().parse().ok())
                .map(system_time)
                .collect(),
        }))
    }

    pub fn save_pacer_state(&self, gitlab_url: &str, s: &PacerSnapshot) -> Result<()> {
        let ms = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0)
        };
        let recent: Vec<String> = s.recent.iter().map(|t| ms(*t).to_string()).collect();
        self.with(|c| {
            c.execute(
                "INSERT INTO create_pacing (gitlab_url, learned, learned_ms, recent_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (gitlab_url) DO UPDATE SET learned = excluded.learned,
                   learned_ms = excluded.learned_ms, recent_ms = excluded.recent_ms",
                params![
                    gitlab_url,
                    s.learned.map(|(n, _)| i64::from(n)),
                    s.learned.map(|(_, at)| ms(at)),
                    recent.join(",")
                ],
            )
            .map(|_| ())
        })
    }

    pub fn pending_intents(&self, mapping: &str) -> Result<u64> {
        self.count_of(mapping, "SELECT COUNT(*) FROM intent WHERE mapping = ?1")
    }

    pub fn checkpoint(&self, mapping: &str) -> Result<Option<DateTime<Utc>>> {
        let ms: Option<i64> = self.with(|c| {
            c.query_row(
                "SELECT updated_ms FROM checkpoint WHERE mapping = ?1",
                [mapping],
                |r| r.get(0),
            )
            .optional()
        })?;
        // 0: reconciled, but no issue seen yet (`mark_reconciled`).
        Ok(ms
            .filter(|&ms| ms > 0)
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()))
    }

    /// Whether a polled pass of the mapping has succeeded, even one that found no issue (an
    /// empty project has no checkpoint, but its GitLab project has been read).
    pub fn reconciled(&self, mapping: &str) -> Result<bool> {
        self.with(|c| {
            c.query_row(
                "SELECT 1 FROM checkpoint WHERE mapping = ?1",
                [mapping],
                |_| Ok(()),
            )
            .optional()
        })
        .map(|row| row.is_some())
    }

    /// Remember that a polled pass succeeded without seeing an issue (a checkpoint of 0, which
    /// `checkpoint` reads as none and any real checkpoint replaces).
    pub fn mark_reconciled(&self, mapping: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO checkpoint (mapping, updated_ms, moved_at) VALUES (?1, 0, ?2)",
                params![mapping, now_text()],
            )
            .map(|_| ())
        })
    }

    /// Move the checkpoint forward (never back: a pass that saw only old issues keeps it).
    pub fn advance_checkpoint(&self, mapping: &str, to: DateTime<Utc>) -> Result<()> {
        self.with(|c| {
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

    pub fn begin_pass(&self, mapping: &str, kind: PassKind) -> Result<i64> {
        self.begin_pass_keeping(mapping, kind, PASS_HISTORY)
    }

    /// Record a pass as running, and forget the mapping's passes older than the newest `keep`
    /// (but never its last successful one, which `status` shows): webhooks can start a pass
    /// every second, and the history must not grow without end.
    fn begin_pass_keeping(&self, mapping: &str, kind: PassKind, keep: u32) -> Result<i64> {
        self.with(|c| {
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
            Ok(id)
        })
    }

    pub fn finish_pass(
        &self,
        id: i64,
        outcome: PassOutcome,
        n: &Counts,
        error: Option<&str>,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE pass SET finished_at = ?2, outcome = ?3, created = ?4, closed = ?5,
                   reopened = ?6, updated = ?7, adopted = ?8, unchanged = ?9, failed = ?10,
                   jira_seen = ?11, error = ?12
                 WHERE id = ?1",
                params![
                    id,
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

    pub fn status(&self, mapping: &str) -> Result<MappingStatus> {
        // `?2 IS NULL`: the last pass of any outcome.
        let last = |outcome: Option<PassOutcome>| -> Result<Option<PassRecord>> {
            let sql = "SELECT kind, started_at, finished_at, outcome, created, closed, reopened,
                        updated, adopted, unchanged, failed, jira_seen, error
                 FROM pass WHERE mapping = ?1 AND (?2 IS NULL OR outcome = ?2)
                 ORDER BY id DESC LIMIT 1";
            let outcome = outcome.map(PassOutcome::label);
            self.with(|c| {
                c.query_row(sql, params![mapping, outcome], read_pass)
                    .optional()
            })
        };
        Ok(MappingStatus {
            checkpoint: self.checkpoint(mapping)?,
            mirrors: self.mirror_count(mapping)?,
            pending_intents: self.pending_intents(mapping)?,
            last_pass: last(None)?,
            last_success: last(Some(PassOutcome::Ok))?,
        })
    }

    /// The mapping's newest pass that has ended (a pass running now hides it from `status`).
    pub fn last_finished_pass(&self, mapping: &str) -> Result<Option<PassRecord>> {
        let sql = "SELECT kind, started_at, finished_at, outcome, created, closed, reopened,
                    updated, adopted, unchanged, failed, jira_seen, error
             FROM pass WHERE mapping = ?1 AND outcome != ?2 ORDER BY id DESC LIMIT 1";
        self.with(|c| {
            c.query_row(
                sql,
                params![mapping, PassOutcome::Running.label()],
                read_pass,
            )
            .optional()
        })
    }

    /// Passes left running by a process that died: mark them so `status` does not lie.
    pub fn close_abandoned_passes(&self) -> Result<u64> {
        self.with(|c| {
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

/// Pragmas and migrations; returns the schema version before and after.
fn migrate(c: &mut Connection) -> rusqlite::Result<(usize, usize)> {
    c.busy_timeout(std::time::Duration::from_secs(10))?;
    // WAL lets `status` read while a pass writes; FULL makes every commit (an intent recorded
    // before a create, a mirror after it) durable before the next request.
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    // A pass touches each page of the state database about once (a batch's mirrors and facts,
    // read by key), so SQLite's default 2 MiB page cache mostly holds pages that are not read
    // again; 1 MiB keeps the hot b-tree interior pages and lowers peak memory (the operating
    // system's file cache serves the rest).
    c.pragma_update(None, "cache_size", -1024)?;
    // One IMMEDIATE transaction that re-reads the version: two processes opening a new file
    // at the same moment cannot both run the same migration.
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < MIGRATIONS.len() {
        for sql in &MIGRATIONS[version..] {
            tx.execute_batch(sql)?;
        }
        tx.pragma_update(None, "user_version", MIGRATIONS.len())?;
    }
    tx.commit()?;
    Ok((version, MIGRATIONS.len().max(version)))
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

fn read_mirror(r: &rusqlite::Row<'_>) -> rusqlite::Result<Mirror> {
    Ok(Mirror {
        jira_id: r.get(0)?,
        jira_key: r.get(1)?,
        iid: r.get::<_, i64>(2)? as u64,
        applied: r
            .get::<_, Option<i64>>(3)?
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
    })
}

fn system_time(ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64)
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
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
            MIGRATIONS.len()
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

    /// A test's directory (removed when the test passes) and the database path in it, which
    /// the test creates.
    fn temp_db(name: &str) -> (crate::TestDir, PathBuf) {
        let dir = crate::test_dir(&format!("store-{name}"));
        let path = dir.join("state.db");
        (dir, path)
    }

    #[test]
    fn mirrors_checkpoints_intents_and_passes_persist() {
        let (_dir, path) = temp_db("persist");
        {
            let s = Store::open(&path).expect("open");
            s.record_intents("A->b", &[("10", "A-1")]).expect("intent");
            assert_eq!(s.pending_intents("A->b").expect("count"), 1);
            s.save_mirror(
                "A->b",
                &Mirror {
                    jira_id: "10".into(),
                    jira_key: "A-1".into(),
                    iid: 7,
                    applied: None,
                },
            )
            .expect("save");
            assert_eq!(s.pending_intents("A->b").expect("count"), 0);
            let t = Utc
                .timestamp_millis_opt(1_700_000_000_123)
                .single()
                .expect("time");
            s.advance_checkpoint("A->b", t).expect("cp");
            s.advance_checkpoint("A->b", t - chrono::Duration::hours(1))
                .expect("cp back");
            let id = s.begin_pass("A->b", PassKind::Incremental).expect("pass");
            s.finish_pass(
                id,
                PassOutcome::Ok,
                &Counts {
                    created: 1,
                    ..Counts::default()
                },
                None,
            )
            .expect("finish");
        }
        let s = Store::open(&path).expect("reopen");
        let m = s.mirrors_for("A->b", &[], &["10"]).expect("mirrors");
        assert_eq!(m["10"].iid, 7);
        assert_eq!(
            s.checkpoint("A->b")
                .expect("cp")
                .map(|t| t.timestamp_millis()),
            Some(1_700_000_000_123)
        );
        let st = s.status("A->b").expect("status");
        assert_eq!(st.mirrors, 1);
        assert_eq!(st.last_pass.expect("pass").counts.created, 1);
        assert!(s
            .mirrors_for("other", &[], &["10"])
            .expect("empty")
            .is_empty());
    }

    /// A database of schema 3 (before mapping names were upper-cased) with history under
    /// "vsa->acme/vsa" and some under "VSA->acme/vsa": after the migration it is all found
    /// under "VSA->acme/vsa", once.
    #[test]
    fn a_lower_case_jira_key_in_mapping_names_joins_the_upper_case_mapping() {
        let (_dir, path) = temp_db("case");
        {
            let mut c = Connection::open(&path).expect("open");
            let tx = c.transaction().expect("tx");
            for sql in &MIGRATIONS[..3] {
                tx.execute_batch(sql).expect("migration");
            }
            tx.pragma_update(None, "user_version", 3).expect("version");
            tx.execute_batch(
                "INSERT INTO mirror (mapping, jira_id, jira_key, gitlab_iid, linked_at) VALUES
                    ('vsa->acme/vsa', '1', 'VSA-1', 1, 'x'), ('vsa->acme/vsa', '2', 'VSA-2', 2, 'x'),
                    ('VSA->acme/vsa', '2', 'VSA-2', 2, 'y'), ('OPS->acme/vsa', '9', 'OPS-1', 9, 'x');
                INSERT INTO checkpoint (mapping, updated_ms, moved_at) VALUES
                    ('vsa->acme/vsa', 2000, 'x'), ('VSA->acme/vsa', 3000, 'y');
                INSERT INTO pass (mapping, kind, started_at, outcome) VALUES
                    ('vsa->acme/vsa', 'full', '2026-01-01T00:00:00Z', 'ok');
                INSERT INTO jira_fact (mapping, jira_id, jira_key, done, created_ms, updated_ms)
                    VALUES ('vsa->acme/vsa', '1', 'VSA-1', 0, 1, 1);",
            )
            .expect("history");
            tx.commit().expect("commit");
        }
        let s = Store::open(&path).expect("migrates");
        let st = s.status("VSA->acme/vsa").expect("status");
        assert_eq!(st.mirrors, 2, "one row per Jira issue");
        assert_eq!(
            st.checkpoint.map(|t| t.timestamp_millis()),
            Some(2000),
            "the older checkpoint: nothing skipped"
        );
        assert!(st.last_success.is_some(), "the pass history follows");
        assert_eq!(s.facts("VSA->acme/vsa").expect("facts").len(), 1);
        let left: i64 = s
            .with(|c| {
                c.query_row(
                    "SELECT count(*) FROM mirror WHERE mapping = 'vsa->acme/vsa'",
                    [],
                    |r| r.get(0),
                )
            })
            .expect("count");
        assert_eq!(left, 0);
        assert_eq!(s.status("OPS->acme/vsa").expect("other").mirrors, 1);
    }

    #[test]
    fn pass_history_keeps_the_newest_and_the_last_success() {
        let (_dir, path) = temp_db("history");
        let s = Store::open(&path).expect("open");
        let ok = s
            .begin_pass_keeping("A->b", PassKind::Incremental, 3)
            .expect("pass");
        s.finish_pass(ok, PassOutcome::Ok, &Counts::default(), None)
            .expect("finish");
        for _ in 0..5 {
            let id = s
                .begin_pass_keeping("A->b", PassKind::Targeted, 3)
                .expect("pass");
            s.finish_pass(id, PassOutcome::Failed, &Counts::default(), Some("down"))
                .expect("finish");
        }
        let other = s
            .begin_pass_keeping("C->d", PassKind::Full, 3)
            .expect("pass");
        let rows = |mapping: &str| -> i64 {
            s.with(|c| {
                c.query_row(
                    "SELECT count(*) FROM pass WHERE mapping = ?1",
                    params![mapping],
                    |r| r.get(0),
                )
            })
            .expect("count")
        };
        assert_eq!(rows("A->b"), 4, "the newest three and the last success");
        assert_eq!(rows("C->d"), 1, "other mappings keep theirs");
        let status = s.status("A->b").expect("status");
        assert!(status.last_success.is_some(), "the last success is kept");
        assert_eq!(status.last_pass.expect("last").outcome, PassOutcome::Failed);
        assert!(other > ok);
        let running = s
            .begin_pass_keeping("A->b", PassKind::Full, 10)
            .expect("pass");
        let shown = s.last_finished_pass("A->b").expect("read").expect("one");
        assert_eq!(
            (shown.kind, shown.error.as_deref()),
            (PassKind::Targeted, Some("down")),
            "the pass running now ({running}) hides nothing"
        );
    }

    #[test]
    fn an_empty_mapping_is_reconciled_without_a_checkpoint() {
        let (_dir, path) = temp_db("empty");
        let s = Store::open(&path).expect("open");
        assert!(!s.reconciled("A->b").expect("read"));
        s.mark_reconciled("A->b").expect("mark");
        assert!(s.reconciled("A->b").expect("read"));
        assert_eq!(
            s.checkpoint("A->b").expect("read"),
            None,
            "no issue seen yet"
        );
        let t = Utc
            .timestamp_millis_opt(1_700_000_000_000)
            .single()
            .expect("time");
        s.advance_checkpoint("A->b", t).expect("advance");
        s.mark_reconciled("A->b").expect("mark again");
        assert_eq!(s.checkpoint("A->b").expect("read"), Some(t), "kept");
    }

    #[test]
    fn relinking_the_same_issue_keeps_the_version_applied_to_it() {
        let (_dir, path) = temp_db("relink");
        let s = Store::open(&path).expect("open");
        let t = Utc
            .timestamp_millis_opt(1_700_000_000_000)
            .single()
            .expect("time");
        let link = |iid: u64, applied: Option<DateTime<Utc>>| Mirror {
            jira_id: "10".into(),
            jira_key: "A-1".into(),
            iid,
            applied,
        };
        let applied = || s.mirrors_for("A->b", &[], &["10"]).expect("mirrors")["10"].applied;
        s.save_mirror("A->b", &link(7, Some(t))).expect("save");
        s.save_mirror("A->b", &link(7, None)).expect("adopt again");
        assert_eq!(applied(), Some(t), "same issue: its version stands");
        s.save_mirror("A->b", &link(8, None)).expect("relink");
        assert_eq!(applied(), None, "another issue has had nothing applied");
    }

    #[test]
    fn corrupt_file_gets_an_actionable_error() {
        let (_dir, path) = temp_db("corrupt");
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, b"this is not sqlite, it is a text file of some length....................................").expect("write");
        let e = Store::open(&path).err().expect("refused").to_string();
        assert!(e.contains("move it aside"), "{e}");
    }

    /// Set for the child processes of the test below: the database they open at once.
    const RACE_DB: &str = "JGR_TEST_MIGRATION_RACE_DB";

    /// Not a test of its own: the body of each child process that
    /// `two_processes_opening_a_new_file_at_once_migrate_it_once` starts (a normal run, without
    /// the variable, returns at once). It logs as the product does, to its stderr.
    #[test]
    fn migration_race_child() {
        let Some(path) = std::env::var_os(RACE_DB).map(PathBuf::from) else {
            return;
        };
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
        // Ready; then all open together when the parent says go.
        let ready = path.with_extension(format!("ready-{}", std::process::id()));
        std::fs::write(ready, b"").expect("ready");
        let go = path.with_extension("go");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !go.exists() {
            assert!(std::time::Instant::now() < deadline, "never told to go");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Store::open(&path).expect("every opener succeeds");
    }

    /// Separate processes (this test binary, run again as `migration_race_child`) open a new
    /// file at the same moment: each succeeds, and exactly one of them migrated it.
    #[test]
    fn two_processes_opening_a_new_file_at_once_migrate_it_once() {
        use std::process::{Command, Stdio};
        let exe = std::env::current_exe().expect("the test binary");
        for round in 0..4 {
            let (dir, path) = temp_db(&format!("race-{round}"));
            let children: Vec<_> = (0..3)
                .map(|_| {
                    Command::new(&exe)
                        .args(["--exact", "store::tests::migration_race_child"])
                        .args(["--nocapture", "--test-threads=1"])
                        .env(RACE_DB, &path)
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .expect("a child process")
                })
                .collect();
            let ready = || {
                std::fs::read_dir(&dir)
                    .map(|d| {
                        d.filter_map(|e| e.ok())
                            .filter(|e| e.file_name().to_string_lossy().contains(".ready-"))
                            .count()
                    })
                    .unwrap_or(0)
            };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while ready() < children.len() {
                assert!(std::time::Instant::now() < deadline, "children not ready");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            std::fs::write(path.with_extension("go"), b"").expect("go");
            let logs: Vec<String> = children
                .into_iter()
                .map(|c| {
                    let out = c.wait_with_output().expect("child ends");
                    let log = String::from_utf8_lossy(&out.stderr).into_owned();
                    assert!(out.status.success(), "a child failed: {log}");
                    log
                })
                .collect();
            let migrated: usize = logs
                .iter()
                .map(|l| l.matches("state database migrated").count())
                .sum();
            assert_eq!(migrated, 1, "round {round}: {logs:#?}");
            let version: usize = Connection::open(&path)
                .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
                .expect("version");
            assert_eq!(version, MIGRATIONS.len());
        }
    }

    #[test]
    fn abandoned_passes_are_marked() {
        let (_dir, path) = temp_db("abandoned");
        let s = Store::open(&path).expect("open");
        s.begin_pass("A->b", PassKind::Full).expect("pass");
        assert_eq!(s.close_abandoned_passes().expect("close"), 1);
        assert_eq!(
            s.status("A->b")
                .expect("status")
                .last_pass
                .expect("pass")
                .outcome,
            PassOutcome::Interrupted
        );
    }
}
