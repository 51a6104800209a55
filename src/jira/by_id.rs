//! Reading known issues by id, for what a search cannot say: where a mirrored issue went that
//! no longer matches the mapping's search, and the changelogs (status changes, earlier
//! summaries) of the few issues a pass needs them for.
//!
//! Cost, per deployment:
//! - Cloud: `POST /rest/api/3/issue/bulkfetch` (100 ids a request; missing ones are simply
//!   absent) and `POST /rest/api/3/changelog/bulkfetch` (1000 issues a request, filtered to the
//!   `status` and `summary` items, paged by token). One request for up to 1000 changelogs beats
//!   `GET /issue/{id}/changelog` (one request per issue) and the search's `expand=changelog`
//!   (not offered by `/search/jql` pages the same way, and it would ship every field's history).
//! - Data Center: the search by `id in (...)`, with `expand=changelog` for changelogs. Jira
//!   answers 400 for the whole query when one id no longer exists ("A value with ID '5' does
//!   not exist for the field 'id'."), so those ids are taken as gone and the rest asked again.

use std::collections::{HashMap, HashSet};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::decode::{dc_changelog, RawIssue};
use super::{
    parse_history, read_page, DcPage, Deployment, IssueFields, JiraClient, SearchResult, FIELDS,
};

/// The search's fields (with the planning fields asked for), and the project: where a moved
/// issue went.
fn fields_with_project(extra: &IssueFields) -> Vec<&str> {
    FIELDS
        .iter()
        .copied()
        .chain(extra.names())
        .chain(["project"])
        .collect()
}
use crate::domain::{IssueHistory, JiraId};
use crate::http::{ApiError, Effect, Request};

/// The changelog fields the reconciler reads.
pub const HISTORY_FIELDS: [&str; 2] = ["status", "summary"];
const CLOUD_BULK_ISSUES: usize = 100;
const CLOUD_BULK_CHANGELOGS: usize = 1000;
/// Ids per Data Center search: keeps the JQL short.
const DC_IDS: usize = 100;

/// Issues read by id: those Jira returned, and the ids it did not (deleted, or no longer
/// visible to the account: Jira does not tell the two apart).
#[derive(Debug, Default)]
pub struct FetchedById {
    pub found: SearchResult,
    pub missing: Vec<JiraId>,
}

#[derive(Deserialize)]
struct BulkIssues {
    #[serde(default, deserialize_with = "crate::paging::at_most::deserialize")]
    issues: Vec<RawIssue>,
    /// Issues Jira could not return now ("a retriable error or payload constraint"); those
    /// not found or not visible are simply absent.
    #[serde(
        rename = "issueErrors",
        default,
        deserialize_with = "crate::paging::at_most::deserialize"
    )]
    issue_errors: Vec<IssueError>,
}

#[derive(Deserialize)]
struct IssueError {
    #[serde(default)]
    id: Option<Value>,
    #[serde(rename = "errorMessage", default)]
    error_message: Option<String>,
}

/// A bulk fetch that named issues it could not return now: they are neither found nor gone
/// (taking them for deleted would close their mirrors), so the look-up fails and the next pass
/// asks again.
fn not_returned(errors: &[IssueError]) -> ApiError {
    let first = &errors[0];
    let id = first.id.as_ref().map_or("?".into(), Value::to_string);
    let message = first.error_message.as_deref().unwrap_or("no reason given");
    ApiError {
        server: crate::http::Server::Jira,
        what: "POST /rest/api/3/issue/bulkfetch".into(),
        kind: crate::http::ApiErrorKind::Transport {
            cause: format!(
                "Jira could not return {} of the issues asked for (issue {}: {})",
                errors.len(),
                crate::safe_text::safe_within(&id, 64),
                crate::safe_text::safe_within(message, 500)
            ),
        },
        hint: Some("the next pass asks again; until then they are not taken for deleted".into()),
        source: None,
    }
}

#[derive(Deserialize)]
struct BulkChangelogs {
    #[serde(
        rename = "issueChangeLogs",
        default,
        deserialize_with = "crate::paging::at_most::deserialize"
    )]
    logs: Vec<IssueChangelog>,
    #[serde(rename = "nextPageToken", default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct IssueChangelog {
    #[serde(rename = "issueId", default)]
    issue_id: Option<String>,
    #[serde(rename = "changeHistories", default)]
    histories: Vec<Value>,
}

impl JiraClient {
    /// The issues with these ids, wherever they are now (any project), and the ids Jira does
    /// not return; with the planning fields `fields` names.
    pub async fn fetch_by_id(
        &self,
        ids: &[JiraId],
        fields: &IssueFields,
    ) -> Result<FetchedById, ApiError> {
        let mut out = FetchedById::default();
        let mut returned: HashSet<JiraId> = HashSet::new();
        let mut take = |out: &mut FetchedById, issues: Vec<RawIssue>| {
            let (page, ids) = read_page(issues, fields.sprint.as_deref());
            // An issue Jira returned exists, even if it cannot be read.
            returned.extend(ids);
            out.found.issues.extend(page.issues);
            out.found.unreadable.extend(page.unreadable);
        };
        match self.deployment {
            Deployment::Cloud => {
                for chunk in ids.chunks(CLOUD_BULK_ISSUES) {
                    let body =
                        json!({ "issueIdsOrKeys": chunk, "fields": fields_with_project(fields) });
                    let req = Request::get("/rest/api/3/issue/bulkfetch").json(
                        Method::POST,
                        body,
                        Effect::Read,
                    );
                    let page: BulkIssues = self.api.send(req).await?.body;
                    if !page.issue_errors.is_empty() {
                        return Err(not_returned(&page.issue_errors));
                    }
                    take(&mut out, page.issues);
                }
            }
            Deployment::Datacenter => {
                for chunk in ids.chunks(DC_IDS) {
                    let (issues, _named_gone) = self.dc_by_ids(chunk, None, fields).await?;
                    take(&mut out, issues);
                }
            }
        }
        out.missing = ids
            .iter()
            .filter(|id| !returned.contains(*id))
            .copied()
            .collect();
        Ok(out)
    }

    /// The status changes and earlier summaries of these issues. Every id asked for gets an
    /// entry (empty when its changelog has nothing to say), so callers can tell "asked" from
    /// "not asked".
    pub async fn histories(
        &self,
        ids: &[JiraId],
    ) -> Result<HashMap<JiraId, IssueHistory>, ApiError> {
        let mut raw: HashMap<JiraId, Vec<Value>> = ids.iter().map(|id| (*id, Vec::new())).collect();
        match self.deployment {
            Deployment::Cloud => {
                for chunk in ids.chunks(CLOUD_BULK_CHANGELOGS) {
                    self.cloud_changelogs(chunk, &mut raw).await?;
                }
            }
            Deployment::Datacenter => {
                for chunk in ids.chunks(DC_IDS) {
                    let none = IssueFields::default();
                    let (issues, _gone) = self.dc_by_ids(chunk, Some("changelog"), &none).await?;
                    for (id, histories) in issues.iter().filter_map(|i| dc_changelog(i)) {
                        // Only the issues asked about have someone waiting for their changelog.
                        if let Some(wanted) = raw.get_mut(&id) {
                            wanted.extend(histories);
                        }
                    }
                }
            }
        }
        Ok(raw
            .into_iter()
            .map(|(id, histories)| (id, parse_history(&histories)))
            .collect())
    }

    async fn cloud_changelogs(
        &self,
        ids: &[JiraId],
        raw: &mut HashMap<JiraId, Vec<Value>>,
    ) -> Result<(), ApiError> {
        let mut token: Option<String> = None;
        // No count is given: ten pages an issue (of up to 1,000 histories each) is far more
        // than any changelog filtered to status and summary.
        let mut chain = crate::paging::PageChain::new();
        chain.expect(ids.len() as u64 * 10);
        loop {
            let mut body = json!({
                "issueIdsOrKeys": ids,
                "fieldIds": HISTORY_FIELDS,
                "maxResults": 1000,
            });
            if let Some(t) = &token {
                body["nextPageToken"] = json!(t);
            }
            let req = Request::get("/rest/api/3/changelog/bulkfetch").json(
                Method::POST,
                body,
                Effect::Read,
            );
            let page: BulkChangelogs = self.api.send(req).await?.body;
            let entries = page.logs.len();
            for log in page.logs {
                // Only the issues asked about have someone waiting for their changelog.
                let id = log.issue_id.and_then(|id| id.parse::<JiraId>().ok());
                if let Some(wanted) = id.and_then(|id| raw.get_mut(&id)) {
                    wanted.extend(log.histories);
                }
            }
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) => {
                    // Stopping early would plan with part of the history: fail instead.
                    chain.advance(entries, &next).map_err(|cause| {
                        super::pages::no_progress("POST /rest/api/3/changelog/bulkfetch", cause)
                    })?;
                    token = Some(next);
                }
                None => return Ok(()),
            }
        }
    }

    /// Data Center: the issues with these ids (`expand` as given), and the ids Jira said do
    /// not exist.
    async fn dc_by_ids(
        &self,
        ids: &[JiraId],
        expand: Option<&str>,
        fields: &IssueFields,
    ) -> Result<(Vec<RawIssue>, Vec<JiraId>), ApiError> {
        let mut asked: Vec<JiraId> = ids.to_vec();
        let mut gone = Vec::new();
        // Each round drops the ids Jira named; a round that names none it was asked for fails.
        while !asked.is_empty() {
            match self.dc_search_ids(&asked, expand, fields).await {
                Ok(issues) => return Ok((issues, gone)),
                Err(e) if e.status() == Some(400) => {
                    let named = missing_ids(&e.to_string());
                    let before = asked.len();
                    asked.retain(|id| !named.contains(id));
                    if asked.len() == before {
                        return Err(e);
                    }
                    gone.extend(named);
                }
                Err(e) => return Err(e),
            }
        }
        Ok((Vec::new(), gone))
    }

    async fn dc_search_ids(
        &self,
        ids: &[JiraId],
        expand: Option<&str>,
        fields: &IssueFields,
    ) -> Result<Vec<RawIssue>, ApiError> {
        let ids_text: Vec<String> = ids.iter().map(JiraId::to_string).collect();
        let jql = format!("id in ({}) ORDER BY id ASC", ids_text.join(", "));
        let mut out = Vec::new();
        loop {
            let mut req = Request::get("/rest/api/2/search")
                .query("jql", &jql)
                .query("startAt", out.len())
                .query("maxResults", ids.len())
                .query("fields", fields_with_project(fields).join(","));
            if let Some(expand) = expand {
                req = req.query("expand", expand);
            }
            let page: DcPage = self.api.send(req).await?.body;
            let n = page.issues.len();
            out.extend(page.issues);
            // At most `ids.len()` results, so offset paging stays far below DC's 10,000 cap.
            if out.len() > ids.len() {
                return Err(super::pages::no_progress(
                    "GET /rest/api/2/search",
                    format!(
                        "Jira returned {} issues for {} ids: the page chain does not end",
                        out.len(),
                        ids.len()
                    ),
                ));
            }
            // Without a total (or with one below what came), only an empty page ends: ids
            // not returned are taken for deleted or invisible.
            let told = page.total.filter(|total| *total >= out.len() as u64);
            if n == 0 || told.is_some_and(|total| out.len() as u64 >= total) {
                return Ok(out);
            }
        }
    }
}

/// The ids a refused search named as not existing (a 400 with Jira's "A value with ID '…' does
/// not exist" messages); none for any other error.
pub fn missing_ids_in(e: &ApiError) -> Vec<JiraId> {
    match &e.kind {
        crate::http::ApiErrorKind::Status {
            status: 400,
            message,
        } => missing_ids(message),
        _ => Vec::new(),
    }
}

/// The ids in Jira's "A value with ID '10042' does not exist for the field 'id'." messages.
/// Another value in the quotes is no id this program asked about.
fn missing_ids(message: &str) -> Vec<JiraId> {
    const START: &str = "A value with ID '";
    let mut out = Vec::new();
    let mut rest = message;
    while let Some(i) = rest.find(START) {
        rest = &rest[i + START.len()..];
        if let Some(end) = rest.find('\'') {
            out.extend(rest[..end].parse::<JiraId>());
            rest = &rest[end..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arbitrary_bulk_fetches_and_changelogs_never_panic_the_decoders() {
        let issues: &[&[u8]] = &[
            br#"{"issues":[{"id":"10001","key":"A-1","fields":{"updated":"2024-01-01T00:00:00.000+0000",
                "project":{"key":"B"}}}],"issueErrors":[]}"#,
        ];
        crate::rng::fuzz::check("bulk fetch", issues, 3000, |body| {
            if let Ok(page) = crate::http::decode_as::<BulkIssues>(body) {
                let _ = read_page(page.issues, Some("customfield_10020"));
            }
        });
        let logs: &[&[u8]] = &[
            br#"{"issueChangeLogs":[{"issueId":"10001","changeHistories":[{"id":"1",
                "created":"2023-11-03T09:58:19.762+0100","items":[{"fieldId":"status",
                "fromString":"To Do","toString":"In Progress"},{"field":"summary",
                "fromString":"Old"}]},{"created":1699000000}]}],"nextPageToken":null}"#,
            include_bytes!("../../tests/fixtures/jira-cloud-changelog.json"),
        ];
        crate::rng::fuzz::check("changelogs", logs, 3000, |body| {
            if let Ok(page) = crate::http::decode_as::<BulkChangelogs>(body) {
                for log in page.logs {
                    let _ = parse_history(&log.histories);
                }
            }
            if let Ok(v) = crate::http::decode_as::<Value>(body) {
                // Data Center: changelogs inside the search's issues.
                if let Some(h) = v.pointer("/changelog/histories").and_then(Value::as_array) {
                    let _ = parse_history(h);
                }
                if let Ok(raw) = serde_json::value::to_raw_value(&v) {
                    let _ = dc_changelog(&raw);
                }
                if let Some(values) = v.get("values").and_then(Value::as_array) {
                    let _ = parse_history(values);
                }
            }
            let _ = missing_ids(&String::from_utf8_lossy(body));
        });
    }

    #[test]
    fn missing_ids_are_read_from_every_message() {
        let msg = "Jira GET /rest/api/2/search: HTTP 400: A value with ID '10042' does not exist for the field 'id'.; A value with ID '7' does not exist for the field 'id'.";
        assert_eq!(missing_ids(msg), vec![JiraId::new(10042), JiraId::new(7)]);
        assert!(missing_ids("Field 'x' does not exist").is_empty());
    }
}
