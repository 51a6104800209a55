//! How the state database writes and reads the domain's values: identifiers in the columns
//! they have always had (Jira ids and keys and mapping ids as text, iids as integers), decoded
//! when a row is read. A stored value that does not decode is an error naming the value, never
//! a row silently skipped. Times are stored as Unix milliseconds or RFC 3339 text.

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::domain::{GitlabIid, JiraId, JiraKey, MappingId};

impl ToSql for JiraId {
    /// As text, as Jira sends it: the `jira_id` columns have always held text.
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.to_string()))
    }
}

impl FromSql for JiraId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

impl ToSql for JiraKey {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for JiraKey {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value
            .as_str()?
            .parse()
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

impl ToSql for GitlabIid {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        i64::try_from(self.get())
            .map(ToSqlOutput::from)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
    }
}

impl FromSql for GitlabIid {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let n = value.as_i64()?;
        u64::try_from(n)
            .map(GitlabIid::new)
            .map_err(|_| FromSqlError::OutOfRange(n))
    }
}

impl ToSql for MappingId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for MappingId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value.as_str().map(MappingId::from)
    }
}

/// Now, as the text the `*_at` columns hold.
pub(super) fn now_text() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A `*_at` column's text; one that does not parse reads as the epoch (only shown, never
/// compared).
pub(super) fn parse_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// A `*_ms` column's Unix milliseconds.
pub(super) fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

pub(super) fn system_time(ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64)
}

/// `?,?,?` for an `IN` list of `n` values.
pub(super) fn marks(n: usize) -> String {
    vec!["?"; n].join(",")
}

/// A JSON array of the values (for `json_each`: one statement whatever their number).
pub(super) fn json_list<T: serde::Serialize>(values: &[T]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn ids_keep_their_columns_and_a_bad_stored_value_is_an_error() {
        let c = Connection::open_in_memory().expect("db");
        c.execute_batch("CREATE TABLE t (id TEXT, key TEXT, iid INTEGER)")
            .expect("table");
        let key: JiraKey = "VSA-5".parse().expect("key");
        c.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3)",
            rusqlite::params![JiraId::new(10014), key, GitlabIid::new(7)],
        )
        .expect("insert");
        let (id_type, id): (String, JiraId) = c
            .query_row("SELECT typeof(id), id FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("read");
        assert_eq!((id_type.as_str(), id), ("text", JiraId::new(10014)));
        let iid: GitlabIid = c
            .query_row("SELECT iid FROM t", [], |r| r.get(0))
            .expect("iid");
        assert_eq!(iid, GitlabIid::new(7));
        c.execute("UPDATE t SET id = 'abc', iid = -1", [])
            .expect("spoil");
        let bad = c
            .query_row("SELECT id FROM t", [], |r| r.get::<_, JiraId>(0))
            .expect_err("not an id");
        assert!(
            bad.to_string().contains("\"abc\" is not a Jira issue id"),
            "{bad}"
        );
        assert!(c
            .query_row("SELECT iid FROM t", [], |r| r.get::<_, GitlabIid>(0))
            .is_err());
    }
}
