//! Jira client: searches (Cloud's `/rest/api/3/search/jql` with `nextPageToken`, Data Center's
//! `/rest/api/2/search` with `startAt`), look-ups by id, changelogs, account and project
//! look-ups. It turns Jira's JSON into `JiraIssue`s and histories and knows nothing about GitLab.
//! Look-ups by id and changelogs live in `jira/by_id.rs`.

mod by_id;
mod decode;
mod pages;
mod people;
mod planning;
mod versions;
mod webhooks;
mod workflow;

pub use by_id::{missing_ids_in, FetchedById, HISTORY_FIELDS};
pub use decode::{parse_history, parse_issue, parse_jira_time};
pub use pages::{Pages, SearchPage};
pub use people::{Assignable, MAX_ASSIGNABLE};
pub use planning::{IssueFields, GH_SPRINT};
pub use webhooks::{RegisteredWebhook, WebhookFilters};
pub use workflow::{StatusOrder, Workflow, WorkflowStatus};

use decode::{read_page, RawIssue};
#[cfg(test)]
use webhooks::webhook_path;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::json;

use crate::domain::{JiraId, JiraIssue};
use crate::http::{
    percent_encode, Api, ApiError, ApiErrorKind, Auth, ClientOptions, Effect, Request, Server,
};

/// The fields every search asks for; Jira returns just `id` unless told. `issuetype` is for
/// `issue_types` (the status's name comes with `status`). A search's project is the
/// mapping's: its issues' keys say so. A mapping that mirrors more adds [`IssueFields`].
const FIELDS: [&str; 6] = [
    "summary",
    "status",
    "created",
    "updated",
    "resolutiondate",
    "issuetype",
];
/// Cloud's `reconcileIssues` takes at most this many ids.
pub const MAX_RECONCILE_IDS: usize = 50;
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
    #[serde(default, deserialize_with = "crate::paging::at_most::deserialize")]
    issues: Vec<RawIssue>,
    #[serde(rename = "nextPageToken", default)]
    next_page_token: Option<String>,
    #[serde(rename = "isLast", default)]
    is_last: Option<bool>,
}

#[derive(Deserialize)]
struct ApproximateCount {
    count: u64,
}

/// A Data Center search page (`/rest/api/2/search`).
#[derive(Deserialize)]
struct DcPage {
    #[serde(default, deserialize_with = "crate::paging::at_most::deserialize")]
    issues: Vec<RawIssue>,
    #[serde(default)]
    total: Option<u64>,
}

impl JiraClient {
    /// A client for the Jira at `url`; `auth` is Basic (Cloud) or Bearer (Data Center).
    pub fn new(url: &str, deployment: Deployment, auth: Auth, opts: &ClientOptions) -> Self {
        JiraClient {
            api: Api::new(Server::Jira, url, auth, opts),
            deployment,
        }
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

    /// Jira's own clock (`serverInfo`'s `serverTime`), for when its answers carry no readable
    /// `Date`.
    pub async fn server_time(&self) -> Result<Option<DateTime<Utc>>, ApiError> {
        // Only `serverTime` is read; the rest is skipped as it is decoded, never built into a
        // JSON tree (one of 60 MiB would take a GiB).
        #[derive(Deserialize)]
        struct ServerInfo {
            #[serde(rename = "serverTime", default)]
            server_time: Option<String>,
        }
        let r = self
            .api
            .send::<ServerInfo>(Request::get(format!("{}/serverInfo", self.rest())))
            .await?;
        Ok(r.body.server_time.as_deref().and_then(parse_jira_time))
    }

    /// The account the token belongs to (checks the credentials). Its path is fixed, so a 404
    /// says the base URL is wrong (or, on Cloud's path, that this is Data Center).
    pub async fn myself(&self) -> Result<Myself, ApiError> {
        let path = format!("{}/myself", self.rest());
        match self.api.send(Request::get(&path)).await {
            Ok(r) => Ok(r.body),
            Err(e) if e.status() == Some(404) => Err(self.base_url_hint(e, &path)),
            Err(e) => Err(e),
        }
    }

    /// A 404 on a path every Jira serves: the base URL is not Jira's.
    fn base_url_hint(&self, e: ApiError, path: &str) -> ApiError {
        let datacenter = match self.deployment {
            Deployment::Cloud => ", or this is Jira Data Center (set deployment = \"datacenter\")",
            Deployment::Datacenter => "",
        };
        let base = self.api.base_url();
        e.with_hint(format!(
            "nothing answers at {base}{path}: jira.url ({base}) is not the Jira site's base \
             URL{datacenter}; give the address Jira opens at, without a path (https://acme.atlassian.net; \
             Data Center: with its context path, if any)"
        ))
    }

    /// The id of the sprint custom field (`customfield_10020` on most Cloud sites), found in
    /// `GET /field` by its `schema.custom`; `None` when this Jira has no sprints (no Jira
    /// Software). With several, the first: Jira Software creates exactly one.
    pub async fn sprint_field(&self) -> Result<Option<String>, ApiError> {
        #[derive(Deserialize)]
        struct FieldWire {
            #[serde(default)]
            id: Option<String>,
            #[serde(default)]
            schema: Option<Schema>,
        }
        #[derive(Deserialize)]
        struct Schema {
            #[serde(default)]
            custom: Option<String>,
        }
        let path = format!("{}/field", self.rest());
        let list: crate::paging::at_most::List<FieldWire> =
            self.api.send(Request::get(path)).await?.body;
        Ok(list
            .0
            .into_iter()
            .filter(|f| f.schema.as_ref().and_then(|s| s.custom.as_deref()) == Some(GH_SPRINT))
            .find_map(|f| f.id.filter(|id| !id.is_empty())))
    }

    /// Fails with a clear message when the project does not exist or cannot be browsed.
    pub async fn check_project(&self, key: &str) -> Result<(), ApiError> {
        let path = format!("{}/project/{}", self.rest(), percent_encode(key));
        match self.api.send::<IgnoredAny>(Request::get(path)).await {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) => Err(e.with_hint(format!(
                "Jira project {key} does not exist or this account cannot browse it: check jira_project"
            ))),
            Err(e) => Err(e),
        }
    }

    /// Every issue the JQL `filter` matches, all pages at once (for small searches; a pass
    /// reads page by page with [`JiraClient::pages`]).
    pub async fn search(&self, filter: &str) -> Result<SearchResult, ApiError> {
        let mut out = SearchResult::default();
        let mut pages = self.pages(filter);
        drain(&mut pages, &mut out).await?;
        Ok(out)
    }

    /// `search`, asking for the planning fields `fields` names as well.
    pub async fn search_with(
        &self,
        filter: &str,
        fields: &IssueFields,
    ) -> Result<SearchResult, ApiError> {
        let mut out = SearchResult::default();
        let mut pages = self.pages(filter).asking(fields);
        drain(&mut pages, &mut out).await?;
        Ok(out)
    }

    /// The issues the JQL `filter` (no `ORDER BY`: each deployment pages in its own order)
    /// matches, one page at a time, so a pass holds one page in memory, not the project.
    pub fn pages(&self, filter: &str) -> Pages<'_> {
        self.pages_reconciling(filter, &[])
    }

    /// `pages`, with Cloud's `reconcileIssues`: the search answers for these ids (at most 50)
    /// with their latest version, even while its index still lags behind the write. Data
    /// Center's search reads the database and needs no such help.
    pub fn pages_reconciling(&self, filter: &str, reconcile: &[JiraId]) -> Pages<'_> {
        Pages::new(
            self,
            filter,
            &reconcile[..reconcile.len().min(MAX_RECONCILE_IDS)],
        )
    }

    /// How many issues `filter` matches, for a progress bar. Cloud answers from
    /// `approximate-count` (one request; the count may lag the index); Data Center has no such
    /// call (its first page carries `total`), so `None`.
    pub async fn approximate_count(&self, filter: &str) -> Result<Option<u64>, ApiError> {
        if self.deployment != Deployment::Cloud {
            return Ok(None);
        }
        let req = Request::get("/rest/api/3/search/approximate-count").json(
            Method::POST,
            json!({ "jql": filter }),
            Effect::Read,
        );
        let reply: ApproximateCount = self.api.send(req).await?.body;
        Ok(Some(reply.count))
    }

    /// A 404 on the search, whose path every Jira of the configured deployment serves: the
    /// base URL is most likely wrong (Data Center's context path missing, or one too many).
    fn not_found_hint(&self, path: &str) -> String {
        let base = self.api.base_url();
        let deployment = match self.deployment {
            Deployment::Cloud => "cloud",
            Deployment::Datacenter => "datacenter",
        };
        format!(
            "Jira answered 404 at {base}{path}: is jira.url the site's base URL ({base})? Give \
             the address Jira opens at: https://acme.atlassian.net on Cloud; on Data Center with \
             its context path, if it has one (https://jira.example.com/jira). And jira.deployment \
             (\"{deployment}\" here) must match the site: Cloud and Data Center search at \
             different paths"
        )
    }

    fn search_hint(&self, filter: &str, e: ApiError) -> ApiError {
        match e.status() {
            // The mapping's project is the first the search names; its own `jql` may name more.
            Some(400) => match unknown_project(&e) {
                Some(key) => {
                    let hint = format!("Jira project {key} does not exist or this account cannot browse it: check jira_project (and any project the mapping's jql names)");
                    e.with_hint(hint)
                }
                None => e.with_hint(format!(
                    "Jira refused the search `{filter}`: check the mapping's jql"
                )),
            },
            Some(404) => {
                let path = match self.deployment {
                    Deployment::Cloud => "/rest/api/3/search/jql",
                    Deployment::Datacenter => "/rest/api/2/search",
                };
                let hint = self.not_found_hint(path);
                e.with_hint(hint)
            }
            _ => e,
        }
    }
}

/// Every page of a search, added up.
async fn drain(pages: &mut Pages<'_>, out: &mut SearchResult) -> Result<(), ApiError> {
    while let Some(page) = pages.next_page().await? {
        out.pages += 1;
        out.issues.extend(page.issues);
        out.unreadable.extend(page.unreadable);
    }
    Ok(())
}

/// The project key of Jira's "The value 'KEY' does not exist for the field 'project'." (its
/// answer when a search names a project that does not exist or that the account cannot see).
fn unknown_project(e: &ApiError) -> Option<String> {
    let ApiErrorKind::Status { message, .. } = &e.kind else {
        return None;
    };
    let at = message.find("' does not exist for the field 'project'")?;
    let start = message[..at].rfind("The value '")? + "The value '".len();
    Some(message[start..at].to_string())
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
    use crate::domain::StatusCategory;
    use serde_json::Value;

    /// Every issue of a decoded page read, as a pass reads it: (readable, unreadable).
    fn read_issues(issues: Vec<RawIssue>) -> (usize, usize) {
        let (page, _) = read_page(issues, Some("customfield_10020"));
        for u in &page.unreadable {
            assert!(!u.reason.is_empty() && !u.key.chars().any(char::is_control));
        }
        (page.issues.len(), page.unreadable.len())
    }

    #[test]
    fn arbitrary_search_pages_and_answers_never_panic_the_decoders() {
        let cloud: &[&[u8]] = &[
            include_bytes!("../tests/fixtures/jira-search-jql-page.json"),
            br#"{"issues":[{"id":"7","key":"A-1","fields":{"updated":"2024-01-01T00:00:00.000+0000",
                "created":"2024-01-01T00:00:00.000+0000","resolutiondate":null,"summary":"s",
                "status":{"name":"Done","statusCategory":{"key":"done"}},"issuetype":{"name":"Bug"},
                "project":{"key":"A"}}}],"nextPageToken":"t","isLast":false}"#,
        ];
        // How far the inputs got: decoded pages, readable and unreadable issues.
        let reached = std::cell::Cell::new((0, 0, 0));
        let note = |(read, unread): (usize, usize)| {
            let (p, r, u) = reached.get();
            reached.set((p + 1, r + read, u + unread));
        };
        crate::rng::fuzz::check("Cloud search page", cloud, 3000, |body| {
            if let Ok(page) = crate::http::decode_as::<CloudPage>(body) {
                note(read_issues(page.issues));
            }
        });
        let dc: &[&[u8]] = &[include_bytes!("../tests/fixtures/jira-cloud-issues.json")];
        crate::rng::fuzz::check("Data Center search page", dc, 3000, |body| {
            if let Ok(page) = crate::http::decode_as::<DcPage>(body) {
                note(read_issues(page.issues));
            }
        });
        // Not vacuous: many inputs decode, and reach both outcomes of reading an issue.
        let (pages, readable, unreadable) = reached.get();
        assert!(
            pages >= 300 && readable >= 100 && unreadable >= 50,
            "{:?}",
            reached.get()
        );
        let small: &[&[u8]] = &[
            br#"{"displayName":"Bot","emailAddress":"b@x","timeZone":"Pacific/Chatham"}"#,
            br#"{"count":12}"#,
            br#"[{"self":"https://j/rest/webhooks/1.0/webhook/1","name":"n","url":"u",
                "filters":{"issue-related-events-section":"project = A"}}]"#,
            br#"{"serverTime":"2024-01-01T00:00:00.000+0000","baseUrl":"https://j"}"#,
        ];
        crate::rng::fuzz::check(
            "account, count, webhooks, server info",
            small,
            3000,
            |body| {
                let _ = crate::http::decode_as::<Myself>(body);
                let _ = crate::http::decode_as::<ApproximateCount>(body);
                if let Ok(hooks) = crate::http::decode_as::<Vec<RegisteredWebhook>>(body) {
                    for h in hooks {
                        let _ = webhook_path("https://j", &h.link);
                    }
                }
                if let Ok(v) = crate::http::decode_as::<Value>(body) {
                    let _ = v
                        .get("serverTime")
                        .and_then(Value::as_str)
                        .and_then(parse_jira_time);
                }
            },
        );
    }

    #[test]
    fn a_webhook_link_leads_only_to_the_configured_jira() {
        let base = "https://jira.example.com/jira";
        let ok = |link: &str| webhook_path(base, link).expect(link);
        assert_eq!(
            ok("https://jira.example.com/jira/rest/webhooks/1.0/webhook/7"),
            "/rest/webhooks/1.0/webhook/7"
        );
        assert_eq!(
            ok("/jira/rest/webhooks/1.0/webhook/7"),
            "/rest/webhooks/1.0/webhook/7"
        );
        for link in [
            "https://evil.example/rest/webhooks/1.0/webhook/7",
            "http://jira.example.com/jira/rest/webhooks/1.0/webhook/7",
            "https://jira.example.com:8443/rest/webhooks/1.0/webhook/7",
            "https://user@jira.example.com/rest/webhooks/1.0/webhook/7",
            "@evil.example/x",
            "//evil.example/rest/webhooks/1.0/webhook/7",
            "https://jira.example.com/jira/secure/Dashboard.jspa",
            "\u{1b}[2J",
        ] {
            let e = webhook_path(base, link).expect_err(link);
            assert!(!e.contains('\u{1b}'), "{e}");
        }
    }

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
        let i = parse_issue(&v.to_string(), None).expect("readable");
        assert_eq!(i.status.as_deref(), Some("In Review"));
        assert_eq!(i.issue_type.as_deref(), Some("Incident"));
        assert_eq!(i.project, "OPS");
        let no_project =
            json!({"id":"8","key":"VSA-12","fields":{"updated":"2024-01-01T00:00:00.000+0000"}});
        assert_eq!(
            parse_issue(&no_project.to_string(), None)
                .expect("readable")
                .project,
            "VSA"
        );
    }

    #[test]
    fn odd_issues_are_kept_or_reported_not_fatal() {
        let ok = json!({"id":"1","key":"A-1","fields":{"summary":null,"updated":"2024-01-01T00:00:00.000+0000","status":null}});
        let i = parse_issue(&ok.to_string(), None).expect("readable");
        assert_eq!(i.summary, None);
        assert_eq!(i.category, StatusCategory::Unknown("missing".into()));
        let bad = json!({"id":"2","key":"A-2","fields":{"updated":"soon"}});
        assert!(parse_issue(&bad.to_string(), None)
            .expect_err("unreadable")
            .contains("updated"));
        assert!(parse_issue(&json!({"key":"A-3"}).to_string(), None).is_err());
        assert!(parse_issue("5", None).is_err());
    }

    #[test]
    fn ids_and_keys_that_are_not_jiras_are_unreadable_and_reported_safely() {
        let updated = json!({"updated": "2024-01-01T00:00:00.000+0000"});
        let bad = [
            json!({"id": "1\u{1b}[2J", "key": "A-1", "fields": updated}),
            json!({"id": "-5", "key": "A-1", "fields": updated}),
            json!({"id": 7, "key": "A-\u{1b}]0;owned\u{7}", "fields": updated}),
            json!({"id": 7, "key": "A".repeat(10_000), "fields": updated}),
            // Digits, but more than any Jira id (64 bits) can hold.
            json!({"id": "99999999999999999999", "key": "A-1", "fields": updated}),
        ];
        for v in &bad {
            assert!(parse_issue(&v.to_string(), None).is_err(), "{v}");
        }
        let raw = bad
            .iter()
            .map(|v| serde_json::value::to_raw_value(v).expect("raw"));
        let (page, ids) = read_page(raw.collect(), None);
        // Only the ids that are Jira's count as returned.
        assert_eq!(ids, vec![JiraId(7), JiraId(7)]);
        assert_eq!(page.unreadable.len(), bad.len());
        for u in &page.unreadable {
            assert!(!u.key.chars().any(char::is_control), "{u:?}");
            assert!(u.key.len() < 100 && u.reason.len() < 600, "{u:?}");
        }
        let ok = json!({"id": 10014, "key": "VSA-5", "fields": updated});
        assert_eq!(
            parse_issue(&ok.to_string(), None).expect("readable").id,
            JiraId(10014)
        );
    }
}
