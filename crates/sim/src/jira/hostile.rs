//! A Jira that misbehaves on purpose, for tests that a client is never wedged or fooled:
//! page tokens that loop or never end, and a `Date` header (and `serverInfo` time) that is
//! skewed or unreadable. Off by default; the `Date` then follows the fake's clock, as a real
//! server's follows its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::Shared;
pub use crate::PageTrap;

/// Misbehaviour switched on with [`super::FakeJira::set_hostile`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hostile {
    /// Cloud search: page tokens that never reach the last page.
    pub page_tokens: Option<PageTrap>,
    /// Cloud search: a page that is not the last says `isLast: false` but carries no
    /// `nextPageToken` (a proxy that drops fields, or a server bug).
    pub lost_page_token: bool,
    /// What the `Date` header and `serverInfo`'s `serverTime` say.
    pub date: DateHeader,
    /// The `self` link every webhook is listed with, instead of its own (another host, a
    /// link with a user-info part).
    pub webhook_self: Option<String>,
    /// Cloud search: every issue carries about this many bytes of `[0,0,…]` in a field nobody
    /// asked for (a site's huge custom fields, or a hostile server): a client that builds
    /// the whole answer into a JSON tree needs ~16 bytes of memory per byte of it.
    pub padding_per_issue: usize,
    /// Data Center search: pages without their `total` (a proxy or plugin that rewrites
    /// answers), so a client cannot tell how many remain.
    pub dc_no_total: bool,
    /// Cloud bulk fetch: the first issue asked for that exists is not returned but named in
    /// `issueErrors` (Jira's "retriable error or payload constraint").
    pub bulk_issue_errors: bool,
    /// `serverInfo` carries about this many bytes of `[0,0,…]` in a field nobody reads.
    pub server_info_padding: usize,
    /// A board's configuration carries about this many bytes of `[0,0,…]` in a field nobody
    /// reads.
    pub board_config_padding: usize,
}

/// The server's clock as its answers tell it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DateHeader {
    /// The fake's clock.
    #[default]
    Clock,
    /// The fake's clock plus this (a server whose clock is off).
    Skewed(chrono::TimeDelta),
    /// A `Date` no client can read (it cannot be left out: HTTP servers add it);
    /// `serverInfo` still tells the fake's clock.
    Garbage,
}

/// The token after a page that ended at `next` of `total`, or `None` on the last page. With
/// a trap there is no last page.
pub(super) fn next_token(
    trap: Option<PageTrap>,
    next: usize,
    total: usize,
    token: impl Fn(usize) -> String,
    nonce: &AtomicU64,
) -> Option<String> {
    let next = match trap {
        None if next >= total => return None,
        None => return Some(token(next)),
        Some(_) if next >= total => 0,
        Some(_) => next,
    };
    let t = token(next);
    Some(match trap {
        Some(PageTrap::EverNew) => format!("{t}~{}", nonce.fetch_add(1, Ordering::SeqCst)),
        _ => t,
    })
}

/// A search answer with `bytes` of junk in each issue (see [`Hostile::padding_per_issue`]),
/// spliced into its text (a JSON tree of it would cost the fake what it costs a client).
/// Its size is added to [`super::FakeJira::streamed_bytes`].
pub(super) fn padded(s: &Shared, body: &serde_json::Value, bytes: usize) -> Response {
    let junk = format!("{{\"customfield_19999\":[{}0],", "0,".repeat(bytes / 2));
    let text = body
        .to_string()
        .replace("{\"expand\":", &format!("{junk}\"expand\":"));
    streamed_json(s, text)
}

/// A page token without the never-ending trap's suffix.
pub(super) fn strip_nonce(token: &str) -> &str {
    token.split_once('~').map_or(token, |(t, _)| t)
}

/// The server's time as `serverInfo` tells it.
pub(super) fn server_time(s: &Shared) -> DateTime<Utc> {
    let now = s.opts.clock.now();
    match crate::lock(&s.hostile).date {
        DateHeader::Skewed(by) => now + by,
        DateHeader::Clock | DateHeader::Garbage => now,
    }
}

/// Middleware: every answer's `Date` is the server's time (see [`DateHeader`]).
pub(super) async fn set_date(State(s): State<Arc<Shared>>, mut resp: Response) -> Response {
    let mode = crate::lock(&s.hostile).date;
    let value = match mode {
        DateHeader::Garbage => "the day after tomorrow".to_string(),
        _ => server_time(&s)
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(header::DATE, v);
    }
    resp
}

/// `body` as JSON text with `bytes` of `[0,0,…]` in a first field nobody reads (spliced into
/// the text: a JSON tree of it would cost the fake what it costs a client), counted in
/// [`super::FakeJira::streamed_bytes`].
pub(super) fn padded_object(s: &Shared, body: &serde_json::Value, bytes: usize) -> Response {
    let junk = format!("{{\"junk\":[{}0],", "0,".repeat(bytes / 2));
    let text = body.to_string().replacen('{', &junk, 1);
    streamed_json(s, text)
}

/// `text` as a JSON answer, its size counted in [`super::FakeJira::streamed_bytes`].
fn streamed_json(s: &Shared, text: String) -> Response {
    s.streamed.fetch_add(text.len() as u64, Ordering::SeqCst);
    let mut resp = Response::new(axum::body::Body::from(text));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
