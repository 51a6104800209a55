//! The state database's schema, as cargo keeps its own (`src/cargo/util/sqlite.rs`): an
//! append-only list of migrations, `PRAGMA user_version` = how many ran. Never edit or drop a
//! shipped migration; add a new one at the end. Migrations keep stored forms as they are (a
//! checkpoint of 0 still means "reconciled, no issue seen yet": `checkpoints.rs` decodes it).

use rusqlite::Connection;

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
    // 5: what the reconciler last wrote of each mirror's Jira fields (labels_from, due_date,
    // assignees): the only labels, date and assignee it may change or remove.
    "CREATE TABLE mirror_field (
        mapping     TEXT NOT NULL,
        jira_id     TEXT NOT NULL,
        labels      TEXT NOT NULL,
        due         TEXT,
        assignee    INTEGER,
        PRIMARY KEY (mapping, jira_id)
    ) WITHOUT ROWID;",
    // 6: the status board each mapping keeps (`status_board`): the board, the status labels
    // it has our lists for, and every status label of the Jira workflow as last read, so an
    // idle pass asks GitLab nothing and a status the workflow did not have makes a pass look
    // again. The id of Jira's sprint field (`milestones = "sprint"`), so a pass need not ask.
    "CREATE TABLE status_board (
        mapping     TEXT NOT NULL,
        gitlab_url  TEXT NOT NULL,
        name        TEXT NOT NULL,
        board_id    INTEGER NOT NULL,
        lists       TEXT NOT NULL,
        statuses    TEXT NOT NULL,
        checked_at  TEXT NOT NULL,
        PRIMARY KEY (mapping, gitlab_url, name)
    ) WITHOUT ROWID;
    CREATE TABLE jira_field (
        jira_url    TEXT NOT NULL,
        schema      TEXT NOT NULL,
        field_id    TEXT NOT NULL,
        fetched_at  TEXT NOT NULL,
        PRIMARY KEY (jira_url, schema)
    ) WITHOUT ROWID;",
];

/// How many migrations this program knows: the schema version it writes.
pub(super) fn latest() -> usize {
    MIGRATIONS.len()
}

/// Pragmas and migrations; returns the schema version before and after.
pub(super) fn migrate(c: &mut Connection) -> rusqlite::Result<(usize, usize)> {
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
    #[cfg(test)]
    tests::hold_while_racing(version);
    if version < MIGRATIONS.len() {
        for sql in &MIGRATIONS[version..] {
            tx.execute_batch(sql)?;
        }
        tx.pragma_update(None, "user_version", MIGRATIONS.len())?;
    }
    tx.commit()?;
    Ok((version, MIGRATIONS.len().max(version)))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::domain::MappingId;
    use crate::store::tests::temp_db;
    use crate::store::Store;

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
        let upper = MappingId::from("VSA->acme/vsa");
        let st = s.status(&upper).expect("status");
        assert_eq!(st.mirrors, 2, "one row per Jira issue");
        assert_eq!(
            st.checkpoint.map(|t| t.timestamp_millis()),
            Some(2000),
            "the older checkpoint: nothing skipped"
        );
        assert!(st.last_success.is_some(), "the pass history follows");
        assert_eq!(s.facts().all(&upper).expect("facts").len(), 1);
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
        let other = MappingId::from("OPS->acme/vsa");
        assert_eq!(s.status(&other).expect("other").mirrors, 1);
    }

    /// Set for the child processes of the test below: the database they open at once.
    const RACE_DB: &str = "JGR_TEST_MIGRATION_RACE_DB";
    /// How many child processes race.
    const RACE_CHILDREN: usize = 3;

    /// How many children have begun to open the database (each marks it just before).
    fn opening(path: &std::path::Path) -> usize {
        let Some(dir) = path.parent() else { return 0 };
        std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().contains(".opening-"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// In a racing child: the one that found the file unmigrated holds, inside its
    /// transaction, until every child has begun to open the file. So the race is real every
    /// round: the others open while it has not migrated yet, and a migration that did not keep
    /// them out (a deferred transaction) would be run twice or fail one of them.
    pub(super) fn hold_while_racing(version: usize) {
        let Some(path) = std::env::var_os(RACE_DB).map(PathBuf::from) else {
            return;
        };
        if version >= MIGRATIONS.len() {
            return;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while opening(&path) < RACE_CHILDREN {
            assert!(
                std::time::Instant::now() < deadline,
                "the others never opened"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Not a test of its own (ignored in a normal run): the body of each child process that
    /// `two_processes_opening_a_new_file_at_once_migrate_it_once` starts with `--ignored`. It
    /// logs as the product does, to its stderr.
    #[test]
    #[ignore = "a child process of two_processes_opening_a_new_file_at_once_migrate_it_once"]
    fn migration_race_child() {
        let path = std::env::var_os(RACE_DB)
            .map(PathBuf::from)
            .expect("started by the race test, which names the database");
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
        let me = path.with_extension(format!("opening-{}", std::process::id()));
        std::fs::write(me, b"").expect("opening");
        Store::open(&path).expect("every opener succeeds");
    }

    /// Separate processes (this test binary, run again as `migration_race_child`) open a new
    /// file while one of them holds its migration open (`hold_while_racing`): each succeeds,
    /// and exactly one of them migrated it.
    #[test]
    fn two_processes_opening_a_new_file_at_once_migrate_it_once() {
        use std::process::{Command, Stdio};
        let exe = std::env::current_exe().expect("the test binary");
        for round in 0..4 {
            let (dir, path) = temp_db(&format!("race-{round}"));
            let children: Vec<_> = (0..RACE_CHILDREN)
                .map(|_| {
                    Command::new(&exe)
                        .args(["--exact", "store::migrations::tests::migration_race_child"])
                        .args(["--ignored", "--nocapture", "--test-threads=1"])
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
}
