//! Jira's JSON turned into the domain's values: issues (an issue that cannot be read is
//! reported with why, never dropped and never fatal), changelogs, and timestamps.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{SearchPage, Unreadable};
use crate::domain::{IssueHistory, JiraId, JiraIssue, JiraKey, StatusCategory, Transition};

/// The issue's id, sent as a string of digits (or, by some proxies, a number).
pub(super) fn numeric_id(v: &Value) -> Option<JiraId> {
    match v.get("id")? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64().map(JiraId::new),
        _ => None,
    }
}

pub(super) fn read_page(raw: Vec<Value>) -> SearchPage {
    let mut out = SearchPage::default();
    for v in raw {
        match parse_issue(&v) {
            Ok(issue) => out.issues.push(issue),
            Err(reason) => out.unreadable.push(Unreadable {
                key: crate::safe_text::safe_within(
                    v.get("key").and_then(Value::as_str).unwrap_or("(no key)"),
                    64,
                ),
                reason: crate::safe_text::safe_within(&reason, 512),
            }),
        }
    }
    out
}

/// Jira ids are decimal numbers (`"10014"`), whatever the deployment.
pub fn parse_issue(v: &Value) -> Result<JiraIssue, String> {
    let id: JiraId = match v.get("id") {
        None => return Err("it has no id".into()),
        Some(raw) => numeric_id(v).ok_or_else(|| format!("its id {raw} is not a Jira issue id"))?,
    };
    let key: JiraKey = v
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or("it has no key")?
        .parse()
        .map_err(|_| "its key is not a Jira issue key")?;
    let fields = v.get("fields").cloned().unwrap_or(Value::Null);
    let updated = timestamp(&fields, "updated")?.ok_or("its `updated` field is missing")?;
    let created = timestamp(&fields, "created")?.unwrap_or(updated);
    let category = fields
        .pointer("/status/statusCategory/key")
        .and_then(Value::as_str);
    let text = |pointer: &str| {
        fields
            .pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let project = text("/project/key")
        .or_else(|| key.project().map(str::to_string))
        .unwrap_or_default();
    Ok(JiraIssue {
        id,
        key,
        summary: fields
            .get("summary")
            .and_then(Value::as_str)
            .map(str::to_string),
        category: StatusCategory::from_key(category),
        status: text("/status/name"),
        issue_type: text("/issuetype/name"),
        project,
        created,
        updated,
        resolved: timestamp(&fields, "resolutiondate")?,
    })
}

fn timestamp(fields: &Value, name: &str) -> Result<Option<DateTime<Utc>>, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_jira_time(s)
            .map(Some)
            .ok_or_else(|| format!("its `{name}` value {s:?} is not a Jira timestamp")),
        Some(other) => Err(format!("its `{name}` value {other} is not a timestamp")),
    }
}

/// The status changes and earlier summaries in changelog entries (Cloud's `changeHistories`,
/// Data Center's `changelog.histories`): entries without a readable time are skipped.
pub fn parse_history(histories: &[Value]) -> IssueHistory {
    let mut entries: Vec<(DateTime<Utc>, &Value)> = histories
        .iter()
        .filter_map(|h| {
            let at = h
                .get("created")
                .and_then(Value::as_str)
                .and_then(parse_jira_time)?;
            Some((at, h))
        })
        .collect();
    entries.sort_by_key(|(at, _)| *at);
    let mut out = IssueHistory::default();
    for (at, h) in entries {
        for item in h
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let field = item
                .get("fieldId")
                .or_else(|| item.get("field"))
                .and_then(Value::as_str);
            let text = |k: &str| item.get(k).and_then(Value::as_str).map(str::to_string);
            match field {
                Some("status") => {
                    if let Some(to) = text("toString") {
                        out.transitions.push(Transition {
                            at,
                            from: text("fromString"),
                            to,
                        });
                    }
                }
                Some("summary") => {
                    if let Some(from) = text("fromString") {
                        out.earlier_summaries.push(from);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// Jira writes `2023-11-07T09:46:08.304+0100` (offset without a colon, any offset).
pub fn parse_jira_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
