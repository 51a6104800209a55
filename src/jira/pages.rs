//! A search read page by page: Cloud's `/rest/api/3/search/jql` pages by `nextPageToken`,
//! Data Center's `/rest/api/2/search` by id (`id > last ORDER BY id`, never deep offsets).
//! Each page's chain is bounded (`paging`), and each answer's `Date` says Jira's clock.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::json;

use super::decode::read_page;
use super::{
    CloudPage, DcPage, Deployment, IssueFields, JiraClient, Unreadable, CLOUD_PAGE, DC_PAGE, FIELDS,
};
use crate::domain::{JiraId, JiraIssue};
use crate::http::{ApiError, Effect, Request, Server};
use crate::paging::PageChain;

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
    /// The planning fields asked for besides [`FIELDS`].
    fields: IssueFields,
    /// Keeps the pages from looping or going on past the server's count.
    chain: PageChain,
}

impl<'c> Pages<'c> {
    pub(super) fn new(client: &'c JiraClient, filter: &str, reconcile: &[JiraId]) -> Self {
        let cursor = match client.deployment {
            Deployment::Cloud => Cursor::Cloud(None),
            Deployment::Datacenter => Cursor::Dc(None),
        };
        Pages {
            client,
            filter: filter.to_string(),
            reconcile: reconcile.iter().map(|id| id.get()).collect(),
            cursor,
            fields: IssueFields::default(),
            chain: PageChain::new(),
        }
    }

    /// Ask Jira for these planning fields too (the mapping mirrors them).
    pub fn asking(mut self, fields: &IssueFields) -> Self {
        self.fields = fields.clone();
        self
    }

    /// Every field name the search asks for.
    fn field_names(&self) -> Vec<&str> {
        FIELDS.iter().copied().chain(self.fields.names()).collect()
    }

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
            "fields": self.field_names(),
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
        let (mut page, _) = read_page(raw.issues, self.fields.sprint.as_deref());
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
            // "Not the last page", and no way to the next: stopping here would take the rest
            // for absent and move the checkpoint past it.
            None if raw.is_last == Some(false) => {
                return Err(no_progress(
                    "POST /rest/api/3/search/jql",
                    "Jira said the page was not the last (isLast: false) but sent no \
                     nextPageToken, so the rest of the search cannot be read"
                        .into(),
                ));
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
            .query("fields", self.field_names().join(","));
        let reply = self.client.api.send::<DcPage>(req).await?;
        let server_clock = date_header(&reply.headers);
        let raw = reply.body;
        let n = raw.issues.len() as u64;
        // Each page's total is what remains after it; the first is the whole search's. A page
        // without one (a proxy that rewrites answers), or with one below the page it came
        // with, cannot say whether more remain: only an empty page ends the search then, as
        // ending early would drop the rest silently and move the checkpoint past them.
        let told = raw.total.filter(|total| *total >= n);
        if let Some(total) = told {
            self.chain.expect(total);
        }
        let done = told.map_or(n == 0, |total| n >= total);
        let (mut page, ids) = read_page(raw.issues, self.fields.sprint.as_deref());
        let last_id = ids.into_iter().map(JiraId::get).max();
        page.total = raw.total;
        self.cursor = if done {
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
                            "Jira returned {n} issues without progress while {} remain",
                            told.map_or("more".into(), |t| t.to_string())
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

pub(super) fn no_progress(what: &str, cause: String) -> ApiError {
    ApiError {
        server: Server::Jira,
        what: what.into(),
        kind: crate::http::ApiErrorKind::OutOfBounds { cause },
        hint: Some("the next pass searches again from the same checkpoint".into()),
        source: None,
    }
}
