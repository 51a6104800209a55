//! The GitLab project's issues as a pass listed them (a full pass, or one with creates to look
//! up by marker): what the planner needs of each (no descriptions) and which Jira id each marker
//! names. They go to temporary tables page by page as the listing arrives, and each page of the
//! pass reads back just the issues it concerns, so a project of 100,000 issues costs no more
//! memory than one of 1,000. Nothing is written to the state database's own file (see
//! `create_temp_tables`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use chrono::DateTime;
use rusqlite::{params, Connection, Transaction};

use super::codec::json_list;
use super::{create_temp_tables, store_error, Store};
use crate::domain::{gitlab_issue_type, GitlabIid, GitlabIssue, GitlabState, JiraId, MappingId};
use crate::error::Result;

/// Two listed issues carrying the marker of one Jira issue (a copy made by hand, an older
/// tool): the lower iid is used, the other left alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedMarker {
    pub jira_id: JiraId,
    pub kept: GitlabIid,
    pub left: GitlabIid,
}

impl Store {
    /// A private database that SQLite deletes when it is closed: where a dry run without a
    /// state database keeps its listing. Only the listing's methods work on it.
    pub fn scratch() -> Result<Store> {
        let path = PathBuf::from("(a temporary database for this dry run)");
        // An empty file name: a private, temporary database on disk.
        let conn = Connection::open("").map_err(|e| store_error(&path, e))?;
        Ok(Store {
            conn: Mutex::new(conn),
            path,
        })
    }
}

/// The listings of the passes running now, one per mapping.
pub struct Listings<'s> {
    store: &'s Store,
}

impl<'s> Listings<'s> {
    pub(super) fn new(store: &'s Store) -> Self {
        Listings { store }
    }

    /// A listing of `mapping`'s GitLab project starts: forget an earlier one.
    pub fn begin(&self, mapping: &MappingId) -> Result<()> {
        self.store.with(|c| {
            create_temp_tables(
                c,
                "CREATE TEMP TABLE IF NOT EXISTS listed_issue (
                    mapping     TEXT NOT NULL,
                    iid         INTEGER NOT NULL,
                    title       TEXT NOT NULL,
                    closed      INTEGER NOT NULL,
                    marker      TEXT,
                    link        TEXT,
                    created_us  INTEGER,
                    labels      TEXT,
                    issue_type  TEXT,
                    lookalike   INTEGER NOT NULL,
                    milestone   TEXT,
                    assignees   TEXT,
                    PRIMARY KEY (mapping, iid)
                ) WITHOUT ROWID;
                CREATE TEMP TABLE IF NOT EXISTS listed_marker (
                    mapping     TEXT NOT NULL,
                    jira_id     TEXT NOT NULL,
                    iid         INTEGER NOT NULL,
                    PRIMARY KEY (mapping, jira_id)
                ) WITHOUT ROWID",
            )?;
            forget_listing(c, mapping)
        })
    }

    /// One page of the listing, in the listing's order. A marker already seen on another
    /// issue is reported; the lower iid keeps it.
    pub fn add_listed(
        &self,
        mapping: &MappingId,
        issues: &[GitlabIssue],
    ) -> Result<Vec<SharedMarker>> {
        self.store.with(|c| {
            let tx = c.transaction()?;
            let shared = add_issues(&tx, mapping, issues, true)?;
            tx.commit()?;
            Ok(shared)
        })
    }

    /// Issues read by iid that the listing missed (it pages by offset or keyset, and an issue
    /// deleted meanwhile shifts the rest): kept with it; a marker counts only where no listed
    /// issue carries it.
    pub fn add_read(&self, mapping: &MappingId, issues: &[GitlabIssue]) -> Result<()> {
        if issues.is_empty() {
            return Ok(());
        }
        self.store.with(|c| {
            let tx = c.transaction()?;
            add_issues(&tx, mapping, issues, false)?;
            tx.commit()
        })
    }

    /// Jira id → iid of the listed issue carrying its marker, for these Jira ids.
    pub fn markers(
        &self,
        mapping: &MappingId,
        jira_ids: &[JiraId],
    ) -> Result<HashMap<JiraId, GitlabIid>> {
        if jira_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let ids = json_list(jira_ids);
        self.store.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT jira_id, iid FROM temp.listed_marker
                 WHERE mapping = ?1 AND jira_id IN (SELECT value FROM json_each(?2))",
            )?;
            let rows = stmt.query_map(params![mapping, ids], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    /// The listed issues with these iids (those the listing has; the others are absent).
    pub fn issues(
        &self,
        mapping: &MappingId,
        iids: &[GitlabIid],
    ) -> Result<HashMap<GitlabIid, GitlabIssue>> {
        if iids.is_empty() {
            return Ok(HashMap::new());
        }
        let iids = json_list(iids);
        self.store.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT iid, title, closed, marker, link, created_us, labels, issue_type, lookalike,
                   milestone, assignees
                 FROM temp.listed_issue
                 WHERE mapping = ?1 AND iid IN (SELECT value FROM json_each(?2))",
            )?;
            let rows = stmt.query_map(params![mapping, iids], read_issue)?;
            rows.map(|r| r.map(|g| (g.iid, g))).collect()
        })
    }

    /// The pass is over: forget its listing.
    pub fn end(&self, mapping: &MappingId) -> Result<()> {
        self.store.with(|c| forget_listing(c, mapping))
    }
}

fn forget_listing(c: &Connection, mapping: &MappingId) -> rusqlite::Result<()> {
    // Usually the only listing: then the tables are emptied whole, which SQLite does without
    // visiting each row.
    let others: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM temp.listed_issue WHERE mapping < ?1)
             OR EXISTS (SELECT 1 FROM temp.listed_issue WHERE mapping > ?1)",
        [mapping],
        |r| r.get(0),
    )?;
    if others {
        c.execute(
            "DELETE FROM temp.listed_issue WHERE mapping = ?1",
            [mapping],
        )?;
        c.execute(
            "DELETE FROM temp.listed_marker WHERE mapping = ?1",
            [mapping],
        )?;
    } else {
        c.execute_batch("DELETE FROM temp.listed_issue; DELETE FROM temp.listed_marker")?;
    }
    Ok(())
}

/// Keep `issues` (a newer read of an iid replaces the older) and their markers: `listed`, the
/// lower iid keeps a marker two issues carry, reported; read by iid, only a marker nobody has.
fn add_issues(
    tx: &Transaction<'_>,
    mapping: &MappingId,
    issues: &[GitlabIssue],
    listed: bool,
) -> rusqlite::Result<Vec<SharedMarker>> {
    let mut shared = Vec::new();
    let mut keep = tx.prepare_cached(
        "INSERT OR REPLACE INTO temp.listed_issue
           (mapping, iid, title, closed, marker, link, created_us, labels, issue_type, lookalike,
            milestone, assignees)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    let mut claim = tx.prepare_cached(
        "INSERT OR IGNORE INTO temp.listed_marker (mapping, jira_id, iid) VALUES (?1, ?2, ?3)",
    )?;
    let mut holder = tx
        .prepare_cached("SELECT iid FROM temp.listed_marker WHERE mapping = ?1 AND jira_id = ?2")?;
    let mut hand_over = tx.prepare_cached(
        "UPDATE temp.listed_marker SET iid = ?3 WHERE mapping = ?1 AND jira_id = ?2",
    )?;
    for g in issues {
        let labels = (!g.labels.is_empty()).then(|| json_list(&g.labels));
        keep.execute(params![
            mapping,
            g.iid,
            g.title,
            g.state == GitlabState::Closed,
            g.marker,
            g.link,
            g.created_at.map(|t| t.timestamp_micros()),
            labels,
            g.issue_type.as_deref(),
            g.marker_lookalike,
            g.milestone,
            (!g.assignees.is_empty()).then(|| json_list(&g.assignees)),
        ])?;
        let Some(id) = g.jira_id() else { continue };
        if claim.execute(params![mapping, id, g.iid])? == 1 || !listed {
            continue;
        }
        let other: GitlabIid = holder.query_row(params![mapping, id], |r| r.get(0))?;
        if other == g.iid {
            continue; // the same issue on two pages (the listing shifted), not a copy
        }
        let (kept, left) = (other.min(g.iid), other.max(g.iid));
        hand_over.execute(params![mapping, id, kept])?;
        shared.push(SharedMarker {
            jira_id: id,
            kept,
            left,
        });
    }
    Ok(shared)
}

fn read_issue(r: &rusqlite::Row<'_>) -> rusqlite::Result<GitlabIssue> {
    let labels: Vec<String> = match r.get::<_, Option<String>>(6)? {
        Some(json) => serde_json::from_str(&json).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, Box::new(e))
        })?,
        None => Vec::new(),
    };
    Ok(GitlabIssue {
        iid: r.get(0)?,
        title: r.get(1)?,
        state: if r.get(2)? {
            GitlabState::Closed
        } else {
            GitlabState::Opened
        },
        marker: r.get(3)?,
        link: r.get(4)?,
        marker_lookalike: r.get(8)?,
        // To the microsecond: GitLab's own precision (it shows milliseconds).
        created_at: r
            .get::<_, Option<i64>>(5)?
            .and_then(DateTime::from_timestamp_micros),
        labels,
        issue_type: r.get::<_, Option<String>>(7)?.map(gitlab_issue_type),
        milestone: r.get(9)?,
        assignees: match r.get::<_, Option<String>>(10)? {
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    10,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?,
            None => Vec::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iid(n: u64) -> GitlabIid {
        GitlabIid::new(n)
    }

    fn id(n: u64) -> JiraId {
        JiraId::new(n)
    }

    fn issue(n: u64, marker: Option<u64>) -> GitlabIssue {
        let description = marker
            .map(|id| format!("<!-- jira-gitlab-reconciler:jira-id={id} -->"))
            .unwrap_or_default();
        let mut g = GitlabIssue::new(
            iid(n),
            format!("Issue {n}"),
            GitlabState::Opened,
            &description,
        );
        g.labels = vec!["jira-status::In Progress".into()];
        g.issue_type = Some("incident".into());
        g.created_at = DateTime::from_timestamp_micros(1_714_557_600_123_456);
        g
    }

    /// A store in a directory of its own, removed when the test passes (kept when it fails).
    fn store(name: &str) -> (crate::TestDir, Store) {
        let (dir, path) = crate::store::tests::temp_db(&format!("listing-{name}"));
        let store = Store::open(&path).expect("open");
        (dir, store)
    }

    #[test]
    fn a_passing_test_leaves_no_database_behind() {
        let (dir, s) = store("cleanup");
        let path = dir.to_path_buf();
        s.listings().begin(&MappingId::from("m")).expect("begin");
        assert!(path.join("state.db").exists());
        drop((s, dir));
        assert!(!path.exists(), "{} removed", path.display());
    }

    #[test]
    fn listed_issues_read_back_as_they_were_listed() {
        let (_dir, s) = store("roundtrip");
        let l = s.listings();
        let (m, other) = (MappingId::from("m"), MappingId::from("other"));
        l.begin(&m).expect("begin");
        let mut closed = issue(2, Some(20));
        closed.state = GitlabState::Closed;
        closed.labels.clear();
        closed.issue_type = None;
        closed.created_at = None;
        let listed = vec![issue(1, Some(10)), closed, issue(3, None)];
        assert!(l.add_listed(&m, &listed).expect("add").is_empty());
        let back = l.issues(&m, &[1, 2, 3, 4].map(iid)).expect("read");
        assert_eq!(back.len(), 3, "#4 was not listed");
        for g in &listed {
            assert_eq!(&back[&g.iid], g);
        }
        let markers = l.markers(&m, &[10, 20, 30].map(id)).expect("markers");
        assert_eq!(markers, HashMap::from([(id(10), iid(1)), (id(20), iid(2))]));
        assert!(l.markers(&other, &[id(10)]).expect("other").is_empty());
        // Another mapping's listing at the same time (another GitLab project) is its own.
        l.begin(&other).expect("begin");
        l.add_listed(&other, &[issue(1, Some(10))]).expect("add");
        l.end(&m).expect("end");
        assert!(
            l.issues(&m, &[iid(1)]).expect("read").is_empty(),
            "forgotten"
        );
        assert_eq!(l.markers(&other, &[id(10)]).expect("kept")[&id(10)], iid(1));
        l.end(&other).expect("end");
        assert!(l.issues(&other, &[iid(1)]).expect("read").is_empty());
    }

    #[test]
    fn a_marker_on_two_issues_is_reported_and_the_lower_iid_keeps_it() {
        let (_dir, s) = store("shared");
        let l = s.listings();
        let m = MappingId::from("m");
        l.begin(&m).expect("begin");
        let first = l
            .add_listed(&m, &[issue(5, Some(10)), issue(5, Some(10))])
            .expect("add");
        assert!(first.is_empty(), "one issue twice is no copy");
        let shared = l
            .add_listed(&m, &[issue(3, Some(10)), issue(9, Some(10))])
            .expect("add");
        let pair = |kept, left| SharedMarker {
            jira_id: id(10),
            kept: iid(kept),
            left: iid(left),
        };
        assert_eq!(shared, vec![pair(3, 5), pair(3, 9)]);
        // Read by iid later: a marker the listing has stays with the listed issue.
        l.add_read(&m, &[issue(1, Some(10)), issue(7, Some(70))])
            .expect("read");
        let markers = l.markers(&m, &[id(10), id(70)]).expect("markers");
        assert_eq!(markers, HashMap::from([(id(10), iid(3)), (id(70), iid(7))]));
        assert_eq!(l.issues(&m, &[iid(1), iid(7)]).expect("read").len(), 2);
        l.begin(&m).expect("a new listing");
        assert!(l.markers(&m, &[id(10)]).expect("markers").is_empty());
    }

    #[test]
    fn a_dry_run_without_a_state_database_lists_into_a_scratch_one() {
        let s = Store::scratch().expect("scratch");
        let m = MappingId::from("m");
        s.listings().begin(&m).expect("begin");
        s.listings()
            .add_listed(&m, &[issue(1, Some(10))])
            .expect("add");
        assert_eq!(
            s.listings().markers(&m, &[id(10)]).expect("markers")[&id(10)],
            iid(1)
        );
    }
}
