//! Jira client: searches (Cloud's `/rest/api/3/search/jql` with `nextPageToken`, Data Center's
//! `/rest/api/2/search` with `startAt`), look-ups by id, changelogs, account and project
//! look-ups. It turns Jira's JSON into `JiraIssue`s and histories and knows nothing about GitLab.
//! Look-ups by id and changelogs live in `jira/by_id.rs`.

mod by_id;

pub use by_id::{FetchedById, HISTORY_FIELDS};

use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::{IssueHistory, JiraIssue, StatusCategory, Transition};
use crate::http::{percent_encode, Api, ApiError, Auth, Effect, Request, RetryPolicy, Server};
use crate::metrics::Metrics;

/// The only fields the reconciler reads; Jira returns just `id` unless told. `issuetype` is
/// for `issue_types` (the status's name comes with `status`). A search's project is the
/// mapping's: its issues' keys say so.
const FIELDS: [&str; 6] = [
    "summary",
    "status",
    "created",
    "updated",
    "resolutiondate",
    "issuetype",
];
/// Cloud caps pages with fields near 100; asking for more only makes the cap implicit.
const CLOUD_PAGE: u32 = 100;
const DC_PAGE: u32 = 1000;

/// Which Jira: they differ in search API, paging and authentication.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Deployment {
    /// Atlassian Cloud: `/rest/api/3/search/jql`, Basic auth with e-mail and API token.
    #[default]
    Cloud,
    /// Data Center / Server: `/rest/api/2/search`, Bearer personal access token.
    #[serde(alias = "server")]
    Datacenter,
}

pub struct JiraClient {
    api: Api,
    deployment: Deployment,
}

/// An issue the search returned that could not be read (reported, not fatal for the pass).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    pub key: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct SearchResult {
    pub issues: Vec<JiraIssue>,
    pub unreadable: Vec<Unreadable>,
    pub pages: usize,
}

#[derive(Debug, Deserialize)]
pub struct Myself {
    #[serde(rename = "displayName", default)]
    pub display_name: Option<String>,
    #[serde(rename = "emailAddress", default)]
    pub email: Option<String>,
    #[serde(rename = "timeZone", default)]
    pub time_zone: Option<String>,
}

#[derive(Deserialize)]
struct CloudPage {
    #[serde(default)]
    issues: Vec<Value>,
    #[serde(rename = "nextPageToken", default)]
    next_page_token: Option<String>,
    #[serde(rename = "isLast", default)]
    is_last: Option<bool>,
}

#[derive(Deserialize)]
struct DcPage {
    #[serde(default)]
    issues: Vec<Value>,
    #[serde(default)]
    total: Option<u64>,
}

impl JiraClient {
    /// A client for the Jira at `url`; `auth` is Basic (Cloud) or Bearer (Data Center).
    pub fn new(
        url: &str,
        deployment: Deployment,
        auth: Auth,
        retry: RetryPolicy,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Self, ApiError> {
        Ok(JiraClient {
            api: Api::new(Server::Jira, url, auth, retry, metrics)?,
            deployment,
        })
    }

    pub fn deployment(&self) -> Deployment {
        self.deployment
    }

    pub fn base_url(&self) -> &str {
        self.api.base_url()
    }

    fn rest(&self) -> &'static str {
        match self.deployment {
            Deployment::Cloud => "/rest/api/3",
            Deployment::Datacenter => "/rest/api/2",
        }
    }

    /// The account the token belongs to (checks the credentials).
    pub async fn myself(&self) -> Result<Myself, ApiError> {
        let r = self
            .api
            .send(Request::get(format!("{}/myself", self.rest())))
            .await?;
        Ok(r.body)
    }

    /// Fails with a clear message when the project does not exist or cannot be browsed.
    pub async fn check_project(&self, key: &str) -> Result<(), ApiError> {
        let path = format!("{}/project/{}", self.rest(), percent_encode(key));
        match self.api.send::<Value>(Request::get(path)).await {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) => Err(e.with_hint(format!(
                "Jira project {key} does not exist or this account cannot browse it: check jira_project"
            ))),
            Err(e) => Err(e),
        }
    }

    /// Every issue the JQL `filter` (no `ORDER BY`: each deployment pages in its own order)
    /// matches, all pages.
    pub async fn search(&self, filter: &str) -> Result<SearchResult, ApiError> {
        let result = match self.deployment {
            Deployment::Cloud => self.search_cloud(filter).await,
            Deployment::Datacenter => self.search_dc(filter).await,
        };
        result.map_err(|e| {
            match e.status() {
                Some(400) => e.with_hint(format!("Jira refused the search `{filter}`: check the mapping's jql")),
                Some(404) => e.with_hint("this Jira has no such search API: check jira.deployment (\"cloud\" or \"datacenter\")"),
                _ => e,
            }
        })
    }

    async fn search_cloud(&self, filter: &str) -> Result<SearchResult, ApiError> {
        let mut out = SearchResult::default();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({ "jql": format!("{filter} ORDER BY key ASC"), "maxResults": CLOUD_PAGE, "fields": FIELDS });
            if let Some(t) = &token {
                body["nextPageToken"] = json!(t);
            }
            let req = Request::get("/rest/api/3/search/jql").json(Method::POST, body, Effect::Read);
            let page: CloudPage = self.api.send(req).await?.body;
            out.pages += 1;
            collect(&mut out, page.issues);
            // The token is absent (or null) on the last page; `isLast` says so too. Page size
            // says nothing: pages are often shorter than asked.
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) if page.is_last != Some(true) => {
                    if token.as_deref() == Some(next.as_str()) {
                        tracing::warn!(
                            "Jira returned the same nextPageToken twice; stopping this search"
                        );
                        break;
                    }
                    token = Some(next);
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// Data Center: `startAt` paging stops at 10,000 results on newer versions, so every page
    /// starts at 0 and moves a JQL bound instead: `AND id > <last id> ORDER BY id`.
    async fn search_dc(&self, filter: &str) -> Result<SearchResult, ApiError> {
        let mut out = SearchResult::default();
        let mut after: Option<u64> = None;
        loop {
            let jql = match after {
                Some(id) => format!("{filter} AND id > {id} ORDER BY id ASC"),
                None => format!("{filter} ORDER BY id ASC"),
            };
            let req = Request::get("/rest/api/2/search")
                .query("jql", &jql)
                .query("startAt", 0)
                .query("maxResults", DC_PAGE)
                .query("fields", FIELDS.join(","));
            let page: DcPage = self.api.send(req).await?.body;
            out.pages += 1;
            let n = page.issues.len() as u64;
            let last = page.issues.iter().filter_map(numeric_id).max();
            collect(&mut out, page.issues);
            let remaining = page.total.unwrap_or(0);
            if n >= remaining {
                break;
            }
            match last {
                Some(id) if after.is_none_or(|prev| id > prev) => after = Some(id),
                // An empty or id-less page while Jira says more remain: stopping would drop
                // them silently, so the pass fails instead (and keeps its checkpoint).
                _ => {
                    return Err(ApiError {
                        server: Server::Jira,
                        what: "GET /rest/api/2/search".into(),
                        kind: crate::http::ApiErrorKind::Transport {
                            cause: format!(
                            "Jira returned {n} issues without progress while {remaining} remain"
                        ),
                        },
                        hint: None,
                    })
                }
            }
        }
        Ok(out)
    }
}

fn numeric_id(v: &Value) -> Option<u64> {
    match v.get("id")? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn collect(out: &mut SearchResult, raw: Vec<Value>) {
    for v in raw {
        match parse_issue(&v) {
            Ok(issue) => out.issues.push(issue),
            Err(reason) => out.unreadable.push(Unreadable {
                key: v
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or("(no key)")
                    .to_string(),
                reason,
            }),
        }
    }
}

/// Read one issue object. Only a missing id, key or `updated` makes it unreadable; odd values
/// elsewhere (null summary, unknown status category, no resolution date) are kept as such.
pub fn parse_issue(v: &Value) -> Result<JiraIssue, String> {
    let id = match v.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("it has no id".into()),
    };
    let key = v
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or("it has no key")?
        .to_string();
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
        .or_else(|| key.rsplit_once('-').map(|(p, _)| p.to_string()))
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

/// The JQL filter for one mapping (without `ORDER BY`): its project, its optional filter, and
/// for incremental passes an `updated` bound in epoch milliseconds. An unquoted number is read
/// as an instant, so the account's time zone and this machine's never shift the window (a date
/// literal would be read in the account's zone at minute precision).
pub fn search_filter(
    project: &str,
    filter: Option<&str>,
    updated_since: Option<DateTime<Utc>>,
) -> String {
    let mut jql = format!("project = \"{project}\"");
    if let Some(filter) = filter {
        jql.push_str(&format!(" AND ({filter})"));
    }
    if let Some(since) = updated_since {
        jql.push_str(&format!(
            " AND updated >= {}",
            since.timestamp_millis().max(0)
        ));
    }
    jql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jira_timestamps_with_any_offset() {
        let t = parse_jira_time("2023-11-07T09:46:08.304+0100").expect("parses");
        assert_eq!(t.to_rfc3339(), "2023-11-07T08:46:08.304+00:00");
        let t = parse_jira_time("2023-11-07T09:46:08.304+1345").expect("parses");
        assert_eq!(t.to_rfc3339(), "2023-11-06T20:01:08.304+00:00");
        let t = parse_jira_time("2023-11-07T09:46:08.304-0330").expect("parses");
        assert_eq!(t.to_rfc3339(), "2023-11-07T13:16:08.304+00:00");
        assert!(parse_jira_time("yesterday").is_none());
    }

    #[test]
    fn jql_uses_epoch_millis_and_wraps_the_filter() {
        let since = DateTime::parse_from_rfc3339("2025-02-15T09:45:32.700Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(
            search_filter("VSA", Some("issuetype != Epic OR labels = x"), Some(since)),
            "project = \"VSA\" AND (issuetype != Epic OR labels = x) AND updated >= 1739612732700"
        );
    }

    #[test]
    fn captured_changelog_gives_transitions_in_order() {
        let page: Value =
            serde_json::from_str(include_str!("../tests/fixtures/jira-cloud-changelog.json"))
                .expect("fixture parses");
        let values = page["values"].as_array().expect("values");
        let h = parse_history(values);
        let steps: Vec<(String, Option<String>, String)> = h
            .transitions
            .iter()
            .map(|t| (t.at.to_rfc3339(), t.from.clone(), t.to.clone()))
            .collect();
        assert_eq!(
            steps,
            vec![
                (
                    "2023-11-03T08:58:19.762+00:00".to_string(),
                    Some("To Do".to_string()),
                    "In Progress".to_string()
                ),
                (
                    "2023-11-07T08:46:08.367+00:00".to_string(),
                    Some("In Progress".to_string()),
                    "Done".to_string()
                ),
            ]
        );
        assert!(h.earlier_summaries.is_empty());
    }

    #[test]
    fn issue_fields_give_status_type_and_project() {
        let v = json!({"id":"7","key":"OPS-3","fields":{"updated":"2024-01-01T00:00:00.000+0000",
            "status":{"name":"In Review","statusCategory":{"key":"indeterminate"}},
            "issuetype":{"name":"Incident"},"project":{"key":"OPS"}}});
        let i = parse_issue(&v).expect("readable");
        assert_eq!(i.status.as_deref(), Some("In Review"));
        assert_eq!(i.issue_type.as_deref(), Some("Incident"));
        assert_eq!(i.project, "OPS");
        let no_project =
            json!({"id":"8","key":"VSA-12","fields":{"updated":"2024-01-01T00:00:00.000+0000"}});
        assert_eq!(parse_issue(&no_project).expect("readable").project, "VSA");
    }

    #[test]
    fn odd_issues_are_kept_or_reported_not_fatal() {
        let ok = json!({"id":"1","key":"A-1","fields":{"summary":null,"updated":"2024-01-01T00:00:00.000+0000","status":null}});
        let i = parse_issue(&ok).expect("readable");
        assert_eq!(i.summary, None);
        assert_eq!(i.category, StatusCategory::Unknown("missing".into()));
        let bad = json!({"id":"2","key":"A-2","fields":{"updated":"soon"}});
        assert!(parse_issue(&bad)
            .expect_err("unreadable")
            .contains("updated"));
        assert!(parse_issue(&json!({"key":"A-3"})).is_err());
    }
}
