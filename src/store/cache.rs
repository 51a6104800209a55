//! What the reconciler remembers between passes so it need not ask again: facts about GitLab
//! projects (id, path, group, the token's roles; looked up again after a day, after `check`,
//! and after GitLab refuses the token), the create pacer's state (so neither a restart
//! nor a second process bursts past GitLab's create limit), and each mapping's status board
//! (checked again on a full pass, or when a status shows up that the workflow did not have).

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::codec::{now_text, parse_time, system_time};
use super::Store;
use crate::domain::MappingId;
use crate::error::Result;
use crate::gitlab::{PacerSnapshot, Project};

/// A mapping's status board as a pass last made sure of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptBoard {
    pub board_id: u64,
    /// The status labels the board has our lists for, in workflow order.
    pub lists: Vec<String>,
    /// Every status label of the Jira workflow when it was read (all categories).
    pub statuses: Vec<String>,
}

pub struct Cache<'s> {
    store: &'s Store,
}

impl<'s> Cache<'s> {
    pub(super) fn new(store: &'s Store) -> Self {
        Cache { store }
    }

    /// The GitLab project as last looked up (id, path, group, the token's roles), and when.
    pub fn project(
        &self,
        gitlab_url: &str,
        project: &str,
    ) -> Result<Option<(Project, DateTime<Utc>)>> {
        self.store.with(|c| {
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

    pub fn save_project(&self, gitlab_url: &str, project: &str, p: &Project) -> Result<()> {
        self.store.with(|c| {
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
        self.store.with(|c| {
            c.execute(
                "DELETE FROM gitlab_project WHERE gitlab_url = ?1 AND project = ?2",
                params![gitlab_url, project],
            )
            .map(|_| ())
        })
    }

    /// The status board `name` of `mapping`, as a pass last made sure of it.
    pub fn status_board(
        &self,
        mapping: &MappingId,
        gitlab_url: &str,
        name: &str,
    ) -> Result<Option<KeptBoard>> {
        let lines = |t: String| -> Vec<String> { t.lines().map(str::to_string).collect() };
        self.store.with(|c| {
            c.query_row(
                "SELECT board_id, lists, statuses FROM status_board
                 WHERE mapping = ?1 AND gitlab_url = ?2 AND name = ?3",
                params![mapping.as_str(), gitlab_url, name],
                |r| {
                    Ok(KeptBoard {
                        board_id: r.get::<_, i64>(0)? as u64,
                        lists: lines(r.get(1)?),
                        statuses: lines(r.get(2)?),
                    })
                },
            )
            .optional()
        })
    }

    pub fn save_status_board(
        &self,
        mapping: &MappingId,
        gitlab_url: &str,
        name: &str,
        kept: &KeptBoard,
    ) -> Result<()> {
        self.store.with(|c| {
            c.execute(
                "INSERT INTO status_board (mapping, gitlab_url, name, board_id, lists, statuses,
                   checked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (mapping, gitlab_url, name) DO UPDATE SET
                   board_id = excluded.board_id, lists = excluded.lists,
                   statuses = excluded.statuses, checked_at = excluded.checked_at",
                params![
                    mapping.as_str(),
                    gitlab_url,
                    name,
                    kept.board_id as i64,
                    kept.lists.join("\n"),
                    kept.statuses.join("\n"),
                    now_text()
                ],
            )
            .map(|_| ())
        })
    }

    /// The id of the Jira field whose `schema.custom` is `schema`, as last looked up.
    pub fn jira_field(&self, jira_url: &str, schema: &str) -> Result<Option<String>> {
        self.store.with(|c| {
            c.query_row(
                "SELECT field_id FROM jira_field WHERE jira_url = ?1 AND schema = ?2",
                params![jira_url, schema],
                |r| r.get(0),
            )
            .optional()
        })
    }

    pub fn save_jira_field(&self, jira_url: &str, schema: &str, id: &str) -> Result<()> {
        self.store.with(|c| {
            c.execute(
                "INSERT INTO jira_field (jira_url, schema, field_id, fetched_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (jira_url, schema) DO UPDATE SET field_id = excluded.field_id,
                   fetched_at = excluded.fetched_at",
                params![jira_url, schema, id, now_text()],
            )
            .map(|_| ())
        })
    }

    pub fn pacer(&self, gitlab_url: &str) -> Result<Option<PacerSnapshot>> {
        self.store.with(|c| {
            c.query_row(
                "SELECT learned, learned_ms, recent_ms FROM create_pacing WHERE gitlab_url = ?1",
                [gitlab_url],
                |r| {
                    let learned: Option<i64> = r.get(0)?;
                    let learned_ms: Option<i64> = r.get(1)?;
                    Ok(PacerSnapshot {
                        learned: learned
                            .zip(learned_ms)
                            // A count too large for the pacer is its largest, not a wrapped one.
                            .map(|(n, ms)| {
                                let n = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
                                (n, system_time(ms))
                            }),
                        recent: recent_times(&r.get::<_, String>(2)?)?,
                    })
                },
            )
            .optional()
        })
    }

    pub fn save_pacer(&self, gitlab_url: &str, s: &PacerSnapshot) -> Result<()> {
        let ms = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0)
        };
        // `ms` for one create, `ms*count` for several in one slot of the pacer's log.
        let recent: Vec<String> = s
            .recent
            .iter()
            .map(|(t, n)| match n {
                1 => ms(*t).to_string(),
                n => format!("{}*{n}", ms(*t)),
            })
            .collect();
        self.store.with(|c| {
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
}

/// The creates of the pacer's last window: comma-separated milliseconds, each with `*count`
/// when several went out in one slot (a single create, as older versions wrote every one, has
/// none).
fn recent_times(text: &str) -> rusqlite::Result<Vec<(std::time::SystemTime, u32)>> {
    let bad = |e: std::num::ParseIntError| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    };
    text.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            let (at, count) = v.split_once('*').unwrap_or((v, "1"));
            let count = count.trim().parse::<u32>().map_err(bad)?;
            Ok((system_time(at.trim().parse().map_err(bad)?), count))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn projects_and_pacer_state_round_trip_per_gitlab() {
        let dir = crate::test_dir("store-cache");
        let s = Store::open(&dir.join("state.db")).expect("open");
        let p = Project {
            id: 42,
            path: "acme/vsa".into(),
            access_level: 50,
            group: Some("acme".into()),
            group_access_level: 30,
        };
        s.cache()
            .save_project("https://g", "acme/vsa", &p)
            .expect("save");
        let (back, _) = s
            .cache()
            .project("https://g", "acme/vsa")
            .expect("read")
            .expect("cached");
        assert_eq!((back.id, back.group), (42, Some("acme".into())));
        assert!(s
            .cache()
            .project("https://other", "acme/vsa")
            .expect("read")
            .is_none());
        s.cache()
            .forget_project("https://g", "acme/vsa")
            .expect("forget");
        assert!(s
            .cache()
            .project("https://g", "acme/vsa")
            .expect("read")
            .is_none());
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        let snapshot = PacerSnapshot {
            learned: Some((600, at(1_000))),
            recent: vec![(at(2_000), 1), (at(3_000), 40)],
        };
        s.cache().save_pacer("https://g", &snapshot).expect("save");
        let back = s.cache().pacer("https://g").expect("read").expect("saved");
        assert_eq!(
            (back.learned, back.recent),
            (snapshot.learned, snapshot.recent)
        );
        // A stored count beyond u32 (a hand-edited or corrupted row) is the largest, not
        // wrapped round to a tiny limit.
        s.with(|c| {
            c.execute(
                "UPDATE create_pacing SET learned = ?1",
                [i64::from(u32::MAX) + 6],
            )
        })
        .expect("update");
        let back = s.cache().pacer("https://g").expect("read").expect("saved");
        assert_eq!(back.learned.map(|l| l.0), Some(u32::MAX));
    }

    #[test]
    fn a_status_board_round_trips_per_mapping_and_gitlab() {
        let dir = crate::test_dir("store-board");
        let s = Store::open(&dir.join("state.db")).expect("open");
        let m = MappingId::from("VSA->acme/vsa");
        let kept = KeptBoard {
            board_id: 12,
            lists: vec!["s::In Progress".into(), "s::In Review".into()],
            statuses: vec!["s::To Do".into(), "s::In Progress".into()],
        };
        let cache = s.cache();
        assert_eq!(
            cache.status_board(&m, "https://g", "B").expect("read"),
            None
        );
        cache
            .save_status_board(&m, "https://g", "B", &kept)
            .expect("save");
        let back = cache.status_board(&m, "https://g", "B").expect("read");
        assert_eq!(back.as_ref(), Some(&kept));
        let other = MappingId::from("OPS->acme/vsa");
        assert_eq!(
            cache.status_board(&other, "https://g", "B").expect("read"),
            None
        );
        let empty = KeptBoard {
            lists: vec![],
            statuses: vec![],
            ..kept
        };
        cache
            .save_status_board(&m, "https://g", "B", &empty)
            .expect("save");
        let back = cache.status_board(&m, "https://g", "B").expect("read");
        assert_eq!(back, Some(empty));
    }
}
