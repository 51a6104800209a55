//! Jira client: searches (Cloud's `/rest/api/3/search/jql` with `nextPageToken`, Data Center's
//! `/rest/api/2/search` with `startAt`), look-ups by id, changelogs, account and project
//! look-ups. It turns Jira's JSON into `JiraIssue`s and histories and knows nothing about GitLab.
//! Look-ups by id and changelogs live in `jira/by_id.rs`.

mod by_id;

pub use by_id::{missing_ids_in, FetchedById, HISTORY_FIELDS};

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::{IssueHistory, JiraId, JiraIssue, JiraKey, StatusCategory, Transition};
use crate::http::{
    percent_encode, Api, ApiError, ApiErrorKind, Auth, ClientOptions, Effect, Request, Server,
};
use crate::paging::PageChain;

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
    issues: Vec<Value>,
    #[serde(rename = "nextPageToken", default)]
    next_page_token: Option<String>,
    #[serde(rename = "isLast", default)]
    is_last: Option<bool>,
}

/// A Data Center search page (`/rest/api/2/search`).
#[derive(Deserialize)]
struct DcPage {
    #[serde(default, deserialize_with = "crate::paging::at_most::deserialize")]
    issues: Vec<Value>,
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
        let r = self
            .api
            .send::<Value>(Request::get(format!("{}/serverInfo", self.rest())))
            .await?;
        Ok(r.body
            .get("serverTime")
            .and_then(Value::as_str)
            .and_then(parse_jira_time))
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

    /// Every issue the JQL `filter` matches, all pages at once (for small searches; a pass
    /// reads page by page with [`JiraClient::pages`]).
    pub async fn search(&self, filter: &str) -> Result<SearchResult, ApiError> {
        let mut out = SearchResult::default();
        let mut pages = self.pages(filter);
        while let Some(page) = pages.next_page().await? {
            out.pages += 1;
            out.issues.extend(page.issues);
            out.unreadable.extend(page.unreadable);
        }
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
        let cursor = match self.deployment {
            Deployment::Cloud => Cursor::Cloud(None),
            Deployment::Datacenter => Cursor::Dc(None),
        };
        Pages {
            client: self,
            filter: filter.to_string(),
            reconcile: reconcile
                .iter()
                .take(MAX_RECONCILE_IDS)
                .map(|id| id.get())
                .collect(),
            cursor,
            chain: PageChain::new(),
        }
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

    /// Register an admin webhook (`POST /rest/webhooks/1.0/webhook`): Jira administrators only.
    /// `secret` makes Cloud sign each delivery (`X-Hub-Signature`); Data Center ignores it.
    /// The admin webhooks already registered (`GET /rest/webhooks/1.0/webhook`).
    pub async fn webhooks(&self) -> Result<Vec<RegisteredWebhook>, ApiError> {
        let req = Request::get("/rest/webhooks/1.0/webhook");
        match self.api.send::<Vec<RegisteredWebhook>>(req).await {
            Ok(reply) => Ok(reply.body),
            Err(e) => Err(admin_hint(e)),
        }
    }

    /// Register an admin webhook for issue events, or with `existing` (its `self` link)
    /// replace that one's definition.
    pub async fn register_webhook(
        &self,
        existing: Option<&str>,
        name: &str,
        url: &str,
        jql: &str,
        secret: Option<&str>,
    ) -> Result<Value, ApiError> {
        let mut body = json!({
            "name": name,
            "url": url,
            "events": ["jira:issue_created", "jira:issue_updated", "jira:issue_deleted"],
            "filters": { "issue-related-events-section": jql },
            "excludeBody": false,
        });
        if let Some(secret) = secret {
            body["secret"] = json!(secret);
        }
        let req = match existing {
            // The `self` link is absolute; the client wants the path under the base URL, and
            // sends the token only there.
            Some(link) => {
                let path = webhook_path(self.base_url(), link).map_err(|cause| ApiError {
                    server: Server::Jira,
                    what: "PUT (the webhook's self link)".into(),
                    kind: crate::http::ApiErrorKind::OutOfBounds { cause },
                    hint: Some(format!(
                        "the Jira token goes only to jira.url ({}); if Jira's base URL (System → \
                         General configuration) is another address of the same Jira, set jira.url \
                         to it, else update the webhook on Jira's WebHooks admin page",
                        self.base_url()
                    )),
                    retry_after: None,
                })?;
                Request::get(path).json(Method::PUT, body, Effect::Idempotent)
            }
            None => {
                Request::get("/rest/webhooks/1.0/webhook").json(Method::POST, body, Effect::Create)
            }
        };
        match self.api.send::<Value>(req).await {
            Ok(reply) => Ok(reply.body),
            Err(e) => Err(admin_hint(e)),
        }
    }

    fn search_hint(&self, filter: &str, e: ApiError) -> ApiError {
        match e.status() {
            // The mapping's project is the first the search names; its own `jql` may name more.
            Some(400) => match unknown_project(&e) {
                Some(key) => {
                    let hint = format!("Jira project {key} does not exist or this account cannot browse it: check jira_project (and any project the mapping's jql names)");
                    e.with_hint(hint)
                }
                None => e.with_hint(format!("Jira refused the search `{filter}`: check the mapping's jql")),
            },
            Some(404) => e.with_hint("this Jira has no such search API: check jira.url (the site's base URL, without a path) and jira.deployment (\"cloud\" or \"datacenter\")"),
            _ => e,
        }
    }
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

/// An admin webhook as Jira lists it (the secret is never listed).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RegisteredWebhook {
    /// `…/rest/webhooks/1.0/webhook/{id}`.
    #[serde(rename = "self")]
    pub link: String,
    #[serde(default)]
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub filters: WebhookFilters,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct WebhookFilters {
    #[serde(rename = "issue-related-events-section", default)]
    pub jql: String,
}

/// The path of a webhook's `self` link (from `/rest/webhooks/`), below the configured Jira.
/// A link to another origin (scheme, host, port), or one that is no webhook link at all
/// (a user-info part that would send the request elsewhere), is refused: the Jira token goes
/// only to the configured Jira.
fn webhook_path(base: &str, link: &str) -> Result<String, String> {
    let shown = crate::safe_text::safe_within(link, 300);
    let refuse = |why: &str| format!("Jira lists the webhook at {shown:?}: {why}");
    let base = reqwest::Url::parse(base).map_err(|_| refuse("jira.url is not a URL"))?;
    let url = if link.starts_with('/') {
        base.join(link)
    } else {
        reqwest::Url::parse(link)
    }
    .map_err(|_| refuse("not a URL"))?;
    if url.origin() != base.origin() || !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("another host than jira.url"));
    }
    let path = url.path();
    let at = path
        .find("/rest/webhooks/")
        .ok_or_else(|| refuse("not a webhook link"))?;
    Ok(path[at..].to_string())
}

fn admin_hint(e: ApiError) -> ApiError {
    if matches!(e.status(), Some(401 | 403)) {
        e.with_hint(
            "only Jira administrators may manage webhooks: ask one to create it on the \
             WebHooks admin page with what `jira-gitlab-reconciler webhook url` prints",
        )
    } else {
        e
    }
}

/// One page of a search.
#[derive(Debug, Default)]
pub struct SearchPage {
    pub issues: Vec<JiraIssue>,
    pub unreadable: Vec<Unreadable>,
    /// Data Center: how many issues the whole search matches (as of this page).
    pub total: Option<u64>,
    /// Whether this is the last page.
    pub last: bool,
    /// Jira's own clock when it answered (its `Date`, rounded up to the next second): no
    /// issue's real `updated` can be later.
    pub server_clock: Option<DateTime<Utc>>,
}

/// Where a search is: Cloud's page token, or Data Center's moving `id >` bound.
enum Cursor {
    Cloud(Option<String>),
    Dc(Option<u64>),
    Done,
}

/// A search read one page at a time.
pub struct Pages<'c> {
    client: &'c JiraClient,
    filter: String,
    reconcile: Vec<u64>,
    cursor: Cursor,
    /// Keeps the pages from looping or going on past the server's count.
    chain: PageChain,
}

impl Pages<'_> {
    /// The JQL filter this search reads.
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// How many issues the search matches, as the server counted them (for a progress
    /// display): the page chain may not run far past it.
    pub fn expect(&mut self, count: u64) {
        self.chain.expect(count);
    }

    /// The next page, or `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<SearchPage>, ApiError> {
        let page = match &self.cursor {
            Cursor::Done => return Ok(None),
            Cursor::Cloud(token) => self.cloud_page(token.clone()).await,
            Cursor::Dc(after) => self.dc_page(*after).await,
        };
        page.map(Some)
            .map_err(|e| self.client.search_hint(&self.filter, e))
    }

    async fn cloud_page(&mut self, token: Option<String>) -> Result<SearchPage, ApiError> {
        let mut body = json!({
            "jql": format!("{} ORDER BY key ASC", self.filter),
            "maxResults": CLOUD_PAGE,
            "fields": FIELDS,
        });
        if let Some(t) = &token {
            body["nextPageToken"] = json!(t);
        }
        if !self.reconcile.is_empty() {
            body["reconcileIssues"] = json!(self.reconcile);
        }
        let req = Request::get("/rest/api/3/search/jql").json(Method::POST, body, Effect::Read);
        let reply = self.client.api.send::<CloudPage>(req).await?;
        let server_clock = date_header(&reply.headers);
        let raw = reply.body;
        let n = raw.issues.len();
        let mut page = read_page(raw.issues);
        // The token is absent (or null) on the last page; `isLast` says so too. Page size says
        // nothing: pages are often shorter than asked.
        self.cursor = match raw.next_page_token.filter(|t| !t.is_empty()) {
            Some(next) if raw.is_last != Some(true) => {
                // A loop or an endless chain would keep the pass busy forever; stopping would
                // drop the rest silently: the pass fails instead and keeps its checkpoint.
                self.chain
                    .advance(n, &next)
                    .map_err(|cause| no_progress("POST /rest/api/3/search/jql", cause))?;
                if self.chain.wants_count() {
                    let count = self.client.approximate_count(&self.filter).await?;
                    self.chain.expect(count.unwrap_or(0));
                }
                Cursor::Cloud(Some(next))
            }
            _ => {
                self.chain.finish(n);
                Cursor::Done
            }
        };
        page.total = self.chain.expected();
        page.last = matches!(self.cursor, Cursor::Done);
        page.server_clock = server_clock;
        Ok(page)
    }

    /// Data Center: `startAt` paging stops at 10,000 results on newer versions, so every page
    /// starts at 0 and moves a JQL bound instead: `AND id > <last id> ORDER BY id`.
    async fn dc_page(&mut self, after: Option<u64>) -> Result<SearchPage, ApiError> {
        let jql = match after {
            Some(id) => format!("{} AND id > {id} ORDER BY id ASC", self.filter),
            None => format!("{} ORDER BY id ASC", self.filter),
        };
        let req = Request::get("/rest/api/2/search")
            .query("jql", &jql)
            .query("startAt", 0)
            .query("maxResults", DC_PAGE)
            .query("fields", FIELDS.join(","));
        let reply = self.client.api.send::<DcPage>(req).await?;
        let server_clock = date_header(&reply.headers);
        let raw = reply.body;
        let n = raw.issues.len() as u64;
        let last_id = raw
            .issues
            .iter()
            .filter_map(numeric_id)
            .map(JiraId::get)
            .max();
        let remaining = raw.total.unwrap_or(0);
        // Each page's total is what remains after it; the first is the whole search's.
        self.chain.expect(remaining);
        let mut page = read_page(raw.issues);
        page.total = raw.total;
        self.cursor = if n >= remaining {
            self.chain.finish(n as usize);
            Cursor::Done
        } else {
            match last_id {
                Some(id) if after.is_none_or(|prev| id > prev) => {
                    self.chain
                        .advance(n as usize, &id.to_string())
                        .map_err(|cause| no_progress("GET /rest/api/2/search", cause))?;
                    Cursor::Dc(Some(id))
                }
                // An empty or id-less page while Jira says more remain: stopping would drop
                // them silently, so the pass fails instead (and keeps its checkpoint).
                _ => {
                    return Err(no_progress(
                        "GET /rest/api/2/search",
                        format!(
                            "Jira returned {n} issues without progress while {remaining} remain"
                        ),
                    ))
                }
            }
        };
        page.last = matches!(self.cursor, Cursor::Done);
        page.server_clock = server_clock;
        Ok(page)
    }
}

/// The server's clock from an answer's `Date` (second precision: the true time is before the
/// next second).
fn date_header(headers: &reqwest::header::HeaderMap) -> Option<DateTime<Utc>> {
    let date = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    let at = httpdate::parse_http_date(date.trim()).ok()?;
    Some(DateTime::<Utc>::from(at) + chrono::Duration::milliseconds(999))
}

fn no_progress(what: &str, cause: String) -> ApiError {
    ApiError {
        server: Server::Jira,
        what: what.into(),
        kind: crate::http::ApiErrorKind::OutOfBounds { cause },
        hint: Some("the next pass searches again from the same checkpoint".into()),
        retry_after: None,
    }
}

#[derive(Deserialize)]
struct ApproximateCount {
    count: u64,
}

/// The issue's id, sent as a string of digits (or, by some proxies, a number).
fn numeric_id(v: &Value) -> Option<JiraId> {
    match v.get("id")? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64().map(JiraId::new),
        _ => None,
    }
}

fn read_page(raw: Vec<Value>) -> SearchPage {
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

    /// Every issue of a decoded page read, as a pass reads it: (readable, unreadable).
    fn read_issues(issues: Vec<Value>) -> (usize, usize) {
        let _ = issues.iter().filter_map(numeric_id).max();
        let page = read_page(issues);
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

    #[test]
    fn ids_and_keys_that_are_not_jiras_are_unreadable_and_reported_safely() {
        let updated = json!({"updated": "2024-01-01T00:00:00.000+0000"});
        let bad = [
            json!({"id": "1\u{1b}[2J", "key": "A-1", "fields": updated}),
            json!({"id": "-5", "key": "A-1", "fields": updated}),
            json!({"id": 7, "key": "A-\u{1b}]0;owned\u{7}", "fields": updated}),
            json!({"id": 7, "key": "A".repeat(10_000), "fields": updated}),
        ];
        for v in &bad {
            assert!(parse_issue(v).is_err(), "{v}");
        }
        let page = read_page(bad.to_vec());
        assert_eq!(page.unreadable.len(), 4);
        for u in &page.unreadable {
            assert!(!u.key.chars().any(char::is_control), "{u:?}");
            assert!(u.key.len() < 100 && u.reason.len() < 600, "{u:?}");
        }
        let ok = json!({"id": 10014, "key": "VSA-5", "fields": updated});
        assert_eq!(parse_issue(&ok).expect("readable").id, JiraId(10014));
    }
}
