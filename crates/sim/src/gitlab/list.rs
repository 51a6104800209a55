//! `GET /projects/:id/issues`: filters, ordering and offset paging with GitLab's headers.

use std::ops::Range;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::api::ApiError;
use super::params::{parse_time, percent_decode, query_pairs, split_labels};
use super::{Issue, IssueState};

const DEFAULT_PER_PAGE: usize = 20;
const MAX_PER_PAGE: usize = 100;
/// Above this many results GitLab stops counting: no `x-total`, `x-total-pages` or
/// `rel="last"`. Clients that need a total break here.
const COUNT_LIMIT: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OrderBy {
    CreatedAt,
    UpdatedAt,
    Title,
}

#[derive(Debug, PartialEq)]
enum LabelFilter {
    /// No `labels` parameter.
    Anything,
    /// `labels=None`: issues without labels.
    NoLabels,
    /// `labels=Any`: issues with at least one label.
    AnyLabel,
    /// Issues carrying all of these.
    All(Vec<String>),
}

#[derive(Debug)]
pub(super) struct ListQuery {
    iids: Option<Vec<u64>>,
    state: Option<IssueState>,
    pub(super) per_page: usize,
    pub(super) page: usize,
    order_by: OrderBy,
    ascending: bool,
    updated_after: Option<DateTime<Utc>>,
    updated_before: Option<DateTime<Utc>>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
    labels: LabelFilter,
    search: Option<String>,
    issue_type: Option<String>,
    /// `pagination=keyset`: pages follow a `cursor` instead of a page number.
    keyset: bool,
    cursor: Option<String>,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            iids: None,
            state: None,
            per_page: DEFAULT_PER_PAGE,
            page: 1,
            order_by: OrderBy::CreatedAt,
            ascending: false,
            updated_after: None,
            updated_before: None,
            created_after: None,
            created_before: None,
            labels: LabelFilter::Anything,
            search: None,
            issue_type: None,
            keyset: false,
            cursor: None,
        }
    }
}

impl ListQuery {
    /// Parse the raw query string. Unknown parameters are ignored, as Grape does; known ones
    /// with bad values are a 400 naming the parameter.
    pub(super) fn parse(raw: &str) -> Result<ListQuery, ApiError> {
        let mut q = ListQuery::default();
        for (key, value) in query_pairs(raw) {
            match key.as_str() {
                "iids[]" | "iids" => {
                    let iid = value
                        .trim()
                        .parse()
                        .map_err(|_| ApiError::invalid("iids"))?;
                    q.iids.get_or_insert_with(Vec::new).push(iid);
                }
                "state" => q.state = parse_state(&value)?,
                "per_page" => q.per_page = parse_count(&value, "per_page", DEFAULT_PER_PAGE)?,
                "page" => q.page = parse_count(&value, "page", 1)?,
                "order_by" => q.order_by = parse_order_by(&value)?,
                "sort" => q.ascending = parse_sort(&value)?,
                "updated_after" => q.updated_after = Some(time(&value, "updated_after")?),
                "updated_before" => q.updated_before = Some(time(&value, "updated_before")?),
                "created_after" => q.created_after = Some(time(&value, "created_after")?),
                "created_before" => q.created_before = Some(time(&value, "created_before")?),
                "labels" => q.labels = parse_label_filter(&value),
                "search" if !value.is_empty() => q.search = Some(value.to_lowercase()),
                "issue_type" => q.issue_type = Some(value),
                "pagination" => q.keyset = value == "keyset",
                "cursor" => q.cursor = Some(value),
                _ => {}
            }
        }
        q.per_page = q.per_page.min(MAX_PER_PAGE);
        Ok(q)
    }

    pub(super) fn iids(&self) -> Option<&[u64]> {
        self.iids.as_deref()
    }

    /// Keyset paging, as GitLab serves it for project issues ordered by a column it can seek on.
    pub(super) fn keyset(&self) -> bool {
        self.keyset
    }

    /// The page after `cursor` (the first page without one), and the cursor of the next page if
    /// more issues follow.
    pub(super) fn keyset_page<'a>(
        &self,
        hits: &'a [&'a Issue],
    ) -> (&'a [&'a Issue], Option<String>) {
        // A never-ending chain's cursors carry a suffix that makes each one new.
        let cursor = self
            .cursor
            .as_deref()
            .map(|c| c.split('~').next().unwrap_or(c));
        let start = match cursor.and_then(|c| c.parse::<u64>().ok()) {
            None => 0,
            // The cursor names the last issue of the previous page; if it was deleted since,
            // the page starts where its id would sort among the rest.
            Some(after) => hits
                .iter()
                .position(|i| i.id == after)
                .map(|p| p + 1)
                .unwrap_or_else(|| hits.iter().take_while(|i| i.id < after).count()),
        };
        let end = (start + self.per_page).min(hits.len());
        let slice = &hits[start.min(end)..end];
        let next = (end < hits.len())
            .then(|| slice.last().map(|i| i.id.to_string()))
            .flatten();
        (slice, next)
    }

    /// `Link: <...cursor=...>; rel="next"` when more follow; keyset answers carry no totals.
    pub(super) fn write_keyset_headers(
        &self,
        headers: &mut HeaderMap,
        url: &str,
        raw_query: &str,
        next: Option<String>,
    ) {
        if let Ok(v) = HeaderValue::from_str(&self.per_page.to_string()) {
            headers.insert("x-per-page", v);
        }
        let Some(cursor) = next else { return };
        let mut kept: Vec<&str> = raw_query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| percent_decode(p.split('=').next().unwrap_or(""), true) != "cursor")
            .collect();
        let cursor = format!("cursor={cursor}");
        kept.push(&cursor);
        let link = format!("<{url}?{}>; rel=\"next\"", kept.join("&"));
        if let Ok(v) = HeaderValue::from_str(&link) {
            headers.insert("link", v);
        }
    }

    fn matches(&self, i: &Issue) -> bool {
        let after = |t: DateTime<Utc>, bound: Option<DateTime<Utc>>| bound.is_none_or(|b| t >= b);
        let before = |t: DateTime<Utc>, bound: Option<DateTime<Utc>>| bound.is_none_or(|b| t <= b);
        self.iids.as_ref().is_none_or(|iids| iids.contains(&i.iid))
            && self.state.is_none_or(|s| s == i.state)
            && after(i.updated_at, self.updated_after)
            && before(i.updated_at, self.updated_before)
            && after(i.created_at, self.created_after)
            && before(i.created_at, self.created_before)
            && self.labels_match(i)
            && self.search_matches(i)
            && self.issue_type.as_ref().is_none_or(|t| *t == i.issue_type)
    }

    fn labels_match(&self, i: &Issue) -> bool {
        match &self.labels {
            LabelFilter::Anything => true,
            LabelFilter::NoLabels => i.labels.is_empty(),
            LabelFilter::AnyLabel => !i.labels.is_empty(),
            LabelFilter::All(wanted) => wanted.iter().all(|l| i.labels.contains(l)),
        }
    }

    fn search_matches(&self, i: &Issue) -> bool {
        let Some(needle) = &self.search else {
            return true;
        };
        i.title.to_lowercase().contains(needle)
            || i.description
                .as_ref()
                .is_some_and(|d| d.to_lowercase().contains(needle))
    }

    /// Matching issues in response order. Ties break on the global id, like GitLab's
    /// `ORDER BY created_at DESC, id DESC`, so pages are stable.
    pub(super) fn select<'a>(&self, issues: impl Iterator<Item = &'a Issue>) -> Vec<&'a Issue> {
        let mut hits: Vec<&Issue> = issues.filter(|i| self.matches(i)).collect();
        hits.sort_by(|a, b| {
            let ord = match self.order_by {
                OrderBy::CreatedAt => a.created_at.cmp(&b.created_at),
                OrderBy::UpdatedAt => a.updated_at.cmp(&b.updated_at),
                OrderBy::Title => a.title.cmp(&b.title),
            }
            .then(a.id.cmp(&b.id));
            if self.ascending {
                ord
            } else {
                ord.reverse()
            }
        });
        hits
    }
}

fn parse_state(v: &str) -> Result<Option<IssueState>, ApiError> {
    match v {
        "opened" => Ok(Some(IssueState::Opened)),
        "closed" => Ok(Some(IssueState::Closed)),
        "all" => Ok(None),
        _ => Err(ApiError::not_valid("state")),
    }
}

/// Paging numbers: not a number is a 400; zero or negative falls back to the default.
fn parse_count(v: &str, name: &str, default: usize) -> Result<usize, ApiError> {
    let n: i64 = v.trim().parse().map_err(|_| ApiError::invalid(name))?;
    Ok(usize::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or(default))
}

fn parse_order_by(v: &str) -> Result<OrderBy, ApiError> {
    match v {
        "created_at" => Ok(OrderBy::CreatedAt),
        "updated_at" => Ok(OrderBy::UpdatedAt),
        "title" => Ok(OrderBy::Title),
        _ => Err(ApiError::not_valid("order_by")),
    }
}

/// `true` for ascending.
fn parse_sort(v: &str) -> Result<bool, ApiError> {
    match v {
        "asc" => Ok(true),
        "desc" => Ok(false),
        _ => Err(ApiError::not_valid("sort")),
    }
}

fn time(v: &str, name: &str) -> Result<DateTime<Utc>, ApiError> {
    parse_time(v).ok_or_else(|| ApiError::invalid(name))
}

fn parse_label_filter(v: &str) -> LabelFilter {
    match v.trim() {
        "" => LabelFilter::Anything,
        t if t.eq_ignore_ascii_case("none") => LabelFilter::NoLabels,
        t if t.eq_ignore_ascii_case("any") => LabelFilter::AnyLabel,
        _ => LabelFilter::All(split_labels([v])),
    }
}

/// One page of an offset-paged result.
#[derive(Debug, Clone, Copy)]
pub(super) struct Page {
    pub(super) page: usize,
    pub(super) per_page: usize,
    pub(super) total: usize,
}

impl Page {
    /// GitLab reports at least one page, even for an empty result.
    fn total_pages(&self) -> usize {
        self.total.div_ceil(self.per_page).max(1)
    }

    pub(super) fn range(&self) -> Range<usize> {
        let start = (self.page - 1)
            .saturating_mul(self.per_page)
            .min(self.total);
        start..(start + self.per_page).min(self.total)
    }

    fn next(&self) -> Option<usize> {
        (self.page < self.total_pages()).then_some(self.page + 1)
    }

    fn prev(&self) -> Option<usize> {
        (self.page > 1).then_some(self.page - 1)
    }

    /// `x-page`, `x-per-page`, `x-next-page` / `x-prev-page` (empty strings when there is
    /// none), `x-total`, `x-total-pages` and `Link`. `url` is the request URL without query;
    /// `raw_query` is kept except for `page`.
    pub(super) fn write_headers(&self, headers: &mut HeaderMap, url: &str, raw_query: &str) {
        let counted = self.total <= COUNT_LIMIT;
        let opt = |n: Option<usize>| n.map(|n| n.to_string()).unwrap_or_default();
        let mut set = |name: &'static str, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        };
        set("x-page", self.page.to_string());
        set("x-per-page", self.per_page.to_string());
        set("x-next-page", opt(self.next()));
        set("x-prev-page", opt(self.prev()));
        if counted {
            set("x-total", self.total.to_string());
            set("x-total-pages", self.total_pages().to_string());
        }
        let link = self.link_header(url, raw_query, counted);
        set("link", link);
    }

    fn link_header(&self, url: &str, raw_query: &str, counted: bool) -> String {
        let kept: Vec<&str> = raw_query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| percent_decode(p.split('=').next().unwrap_or(""), true) != "page")
            .collect();
        let page_url = |n: usize| {
            let mut q = kept.clone();
            let page = format!("page={n}");
            q.insert(0, &page);
            format!("<{url}?{}>", q.join("&"))
        };
        let mut links = Vec::new();
        if let Some(p) = self.prev() {
            links.push(format!("{}; rel=\"prev\"", page_url(p)));
        }
        if let Some(n) = self.next() {
            links.push(format!("{}; rel=\"next\"", page_url(n)));
        }
        links.push(format!("{}; rel=\"first\"", page_url(1)));
        if counted {
            links.push(format!("{}; rel=\"last\"", page_url(self.total_pages())));
        }
        links.join(", ")
    }
}

/// `page` and `per_page` (at most 100) from a query string.
pub(super) fn page_of(pairs: &[(String, String)], total: usize) -> Result<Page, ApiError> {
    let number = |name: &str, default: usize| -> Result<usize, ApiError> {
        match pairs.iter().rev().find(|(k, _)| k == name) {
            None => Ok(default),
            Some((_, v)) => v
                .trim()
                .parse::<usize>()
                .map(|n| if n == 0 { default } else { n })
                .map_err(|_| ApiError::invalid(name)),
        }
    };
    Ok(Page {
        page: number("page", 1)?,
        per_page: number("per_page", 20)?.min(100),
        total,
    })
}

/// A JSON array answer with GitLab's paging headers.
pub(super) fn paged(
    st: &super::State,
    req: &super::api::Request,
    page: Page,
    body: Vec<Value>,
) -> Result<Response, ApiError> {
    let mut resp = Json(body).into_response();
    let url = format!("{}{}", st.base_url, req.path);
    page.write_headers(resp.headers_mut(), &url, &req.query);
    Ok(resp)
}
