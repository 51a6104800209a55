//! Jira's JSON turned into the domain's values: issues (an issue that cannot be read is
//! reported with why, never dropped and never fatal), changelogs, and timestamps.
//!
//! A search page is kept as one raw JSON text per issue ([`RawIssue`]), and each issue is
//! read from its text into the few typed fields the reconciler uses: every other field (a
//! site's hundred custom fields, or a hostile server's megabytes of them) is skipped without
//! being built into memory. A page of 59 MiB then costs about twice its size, not the
//! gigabyte a `serde_json::Value` tree of it takes.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::planning::read_planning;
use super::{SearchPage, Unreadable};
use crate::domain::{IssueHistory, JiraId, JiraIssue, JiraKey, StatusCategory, Transition};

/// One issue of a page, as the JSON text Jira sent: read on its own, so one odd issue is
/// reported without failing the page.
pub(super) type RawIssue = Box<RawValue>;

/// An issue's top level: only what is read.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    key: Option<&'a RawValue>,
    #[serde(borrow, default)]
    fields: Option<&'a RawValue>,
}

/// The issue's id, sent as a string of digits (or, by some proxies, a number).
fn numeric_id(raw: &RawValue) -> Option<JiraId> {
    let text = raw.get();
    if text.starts_with('"') {
        serde_json::from_str::<&str>(text).ok()?.parse().ok()
    } else {
        text.parse::<u64>().ok().map(JiraId::new)
    }
}

/// The page's issues read, and the id of every issue that has one (readable or not: a Data
/// Center search pages by id, and an issue Jira returned exists even if it cannot be read).
pub(super) fn read_page(
    raw: Vec<RawIssue>,
    sprint_field: Option<&str>,
) -> (SearchPage, Vec<JiraId>) {
    let mut out = SearchPage::default();
    let mut ids = Vec::with_capacity(raw.len());
    for text in raw {
        let wire = serde_json::from_str::<Wire>(text.get()).ok();
        ids.extend(wire.as_ref().and_then(|w| w.id).and_then(numeric_id));
        match parse_issue(text.get(), sprint_field) {
            Ok(issue) => out.issues.push(issue),
            Err(reason) => {
                let key = wire
                    .and_then(|w| w.key)
                    .and_then(|k| serde_json::from_str::<Cow<str>>(k.get()).ok());
                out.unreadable.push(Unreadable {
                    key: crate::safe_text::safe_within(key.as_deref().unwrap_or("(no key)"), 64),
                    reason: crate::safe_text::safe_within(&reason, 512),
                });
            }
        }
    }
    (out, ids)
}

/// One issue from its JSON text. `sprint_field` is the sprint custom field's id, when the
/// search asked for it. Jira ids are decimal numbers (`"10014"`), whatever the deployment.
pub fn parse_issue(text: &str, sprint_field: Option<&str>) -> Result<JiraIssue, String> {
    let wire: Wire =
        serde_json::from_str(text).map_err(|e| format!("it is not a Jira issue object ({e})"))?;
    let id: JiraId = match wire.id {
        None => return Err("it has no id".into()),
        Some(raw) => numeric_id(raw)
            .ok_or_else(|| format!("its id {} is not a Jira issue id", cut(raw.get())))?,
    };
    let key: JiraKey = wire
        .key
        .and_then(|k| serde_json::from_str::<Cow<str>>(k.get()).ok())
        .filter(|k| !k.is_empty())
        .ok_or("it has no key")?
        .parse()
        .map_err(|_| "its key is not a Jira issue key")?;
    let fields = match wire.fields {
        Some(raw) => {
            let mut de = serde_json::Deserializer::from_str(raw.get());
            FieldsSeed { sprint_field }
                .deserialize(&mut de)
                .map_err(|e| format!("its fields are not an object ({e})"))?
        }
        None => RawFields::default(),
    };
    fields.into_issue(id, key)
}

/// The fields the reconciler reads, each still as its JSON text.
#[derive(Default)]
pub(super) struct RawFields<'a> {
    summary: Option<&'a RawValue>,
    status: Option<&'a RawValue>,
    created: Option<&'a RawValue>,
    updated: Option<&'a RawValue>,
    resolutiondate: Option<&'a RawValue>,
    issuetype: Option<&'a RawValue>,
    project: Option<&'a RawValue>,
    pub(super) assignee: Option<&'a RawValue>,
    pub(super) labels: Option<&'a RawValue>,
    pub(super) components: Option<&'a RawValue>,
    pub(super) priority: Option<&'a RawValue>,
    pub(super) duedate: Option<&'a RawValue>,
    pub(super) fix_versions: Option<&'a RawValue>,
    pub(super) sprints: Option<&'a RawValue>,
}

impl<'a> RawFields<'a> {
    /// Where the field called `name` goes; `None` for a field nobody reads.
    fn slot(
        &mut self,
        name: &str,
        sprint_field: Option<&str>,
    ) -> Option<&mut Option<&'a RawValue>> {
        Some(match name {
            "summary" => &mut self.summary,
            "status" => &mut self.status,
            "created" => &mut self.created,
            "updated" => &mut self.updated,
            "resolutiondate" => &mut self.resolutiondate,
            "issuetype" => &mut self.issuetype,
            "project" => &mut self.project,
            "assignee" => &mut self.assignee,
            "labels" => &mut self.labels,
            "components" => &mut self.components,
            "priority" => &mut self.priority,
            "duedate" => &mut self.duedate,
            "fixVersions" => &mut self.fix_versions,
            other if Some(other) == sprint_field => &mut self.sprints,
            _ => return None,
        })
    }

    fn into_issue(self, id: JiraId, key: JiraKey) -> Result<JiraIssue, String> {
        let updated =
            timestamp(self.updated, "updated")?.ok_or("its `updated` field is missing")?;
        let created = timestamp(self.created, "created")?.unwrap_or(updated);
        let status = lenient::<Named>(self.status);
        let project = lenient::<Named>(self.project)
            .and_then(|p| p.key)
            .filter(|k| !k.is_empty())
            .or_else(|| key.project().map(str::to_string))
            .unwrap_or_default();
        Ok(JiraIssue {
            id,
            key,
            summary: lenient::<String>(self.summary),
            category: StatusCategory::from_key(
                status
                    .as_ref()
                    .and_then(|s| s.category.as_ref())
                    .and_then(|c| c.key.as_deref()),
            ),
            status: status.and_then(|s| s.name).filter(|n| !n.is_empty()),
            issue_type: lenient::<Named>(self.issuetype)
                .and_then(|t| t.name)
                .filter(|n| !n.is_empty()),
            project,
            created,
            updated,
            resolved: timestamp(self.resolutiondate, "resolutiondate")?,
            planning: read_planning(&self)?,
        })
    }
}

/// `status`, `issuetype`, `project`: an object with a name or key, read leniently (an odd
/// value reads as none, as before typed decoding).
#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(rename = "statusCategory", default)]
    category: Option<Box<Named>>,
}

/// A field the issue can do without: a value of another shape reads as none.
fn lenient<T: for<'de> Deserialize<'de>>(raw: Option<&RawValue>) -> Option<T> {
    serde_json::from_str::<Option<T>>(raw?.get()).ok().flatten()
}

/// The start of a value from outside, for an error message.
pub(super) fn cut(text: &str) -> String {
    crate::safe_text::safe_within(text, 40)
}

/// Decodes an issue's `fields` object keeping only the fields [`RawFields::slot`] knows
/// (the sprint field's id is known only at run time).
struct FieldsSeed<'s> {
    sprint_field: Option<&'s str>,
}

impl<'de> DeserializeSeed<'de> for FieldsSeed<'_> {
    type Value = RawFields<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldsSeed<'_> {
    type Value = RawFields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = RawFields::default();
        while let Some(name) = map.next_key::<Cow<'de, str>>()? {
            match out.slot(&name, self.sprint_field) {
                Some(slot) => *slot = Some(map.next_value::<&'de RawValue>()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

fn timestamp(raw: Option<&RawValue>, name: &str) -> Result<Option<DateTime<Utc>>, String> {
    let Some(raw) = raw else { return Ok(None) };
    match serde_json::from_str::<Option<Cow<str>>>(raw.get()) {
        Ok(None) => Ok(None),
        Ok(Some(s)) => parse_jira_time(&s)
            .map(Some)
            .ok_or_else(|| format!("its `{name}` value {:?} is not a Jira timestamp", cut(&s))),
        Err(_) => Err(format!(
            "its `{name}` value {} is not a timestamp",
            cut(raw.get())
        )),
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

/// The id of a raw issue and its Data Center changelog (`expand=changelog`), for the
/// histories of issues read by id.
pub(super) fn dc_changelog(raw: &RawValue) -> Option<(JiraId, Vec<Value>)> {
    #[derive(Deserialize)]
    struct WithChangelog<'a> {
        #[serde(borrow, default)]
        id: Option<&'a RawValue>,
        #[serde(default)]
        changelog: Option<Changelog>,
    }
    #[derive(Deserialize)]
    struct Changelog {
        #[serde(default)]
        histories: Vec<Value>,
    }
    let issue: WithChangelog = serde_json::from_str(raw.get()).ok()?;
    let id = numeric_id(issue.id?)?;
    Some((id, issue.changelog.map(|c| c.histories).unwrap_or_default()))
}

/// Jira writes `2023-11-07T09:46:08.304+0100` (offset without a colon, any offset).
pub fn parse_jira_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
