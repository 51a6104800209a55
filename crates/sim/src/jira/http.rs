//! Routes, auth, faults and the search endpoints of the fake Jira.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::Duration;
use serde_json::{json, Value};

use super::jql::{self, Row};
use super::render::{Ctx, FieldSel};
use super::{lock, Deployment, Fault, Route, Shared};

type S = State<Arc<Shared>>;
type QueryPairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/rest/api/{v}/myself", get(myself))
        .route("/rest/api/{v}/serverInfo", get(server_info))
        .route("/rest/api/{v}/project/{key}", get(project))
        .route(
            "/rest/api/{v}/search",
            get(old_search_get).post(old_search_post),
        )
        .route(
            "/rest/api/{v}/search/jql",
            get(jql_search_get).post(jql_search_post),
        )
        .route(
            "/rest/api/{v}/search/approximate-count",
            post(approximate_count),
        )
        .route("/rest/api/{v}/issue/bulkfetch", post(bulkfetch))
        .route(
            "/rest/webhooks/1.0/webhook",
            get(list_webhooks).post(register_webhook),
        )
        .route("/rest/webhooks/1.0/webhook/{id}", put(update_webhook))
        .route(
            "/rest/api/{v}/changelog/bulkfetch",
            post(changelog_bulkfetch),
        )
        .route("/rest/api/{v}/issue/{id}", get(get_issue))
        .merge(super::planning::routes())
        .layer(axum::middleware::map_response_with_state(
            shared.clone(),
            super::hostile::set_date,
        ))
        .with_state(shared)
}

// ---------------------------------------------------------------------------------------------
// Common answers

pub(super) fn jira_error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({"errorMessages": [msg], "errors": {}}))).into_response()
}

pub(super) fn bad_request(msg: &str) -> Response {
    jira_error(StatusCode::BAD_REQUEST, msg)
}

/// A 400 found while reading a request, answered as a Jira error body.
#[derive(Debug)]
struct Invalid(String);

impl IntoResponse for Invalid {
    /// One `errorMessages` entry per line, as Jira lists each problem of a query.
    fn into_response(self) -> Response {
        let messages: Vec<&str> = self.0.lines().collect();
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"errorMessages": messages, "errors": {}})),
        )
            .into_response()
    }
}

pub(super) fn not_found() -> Response {
    jira_error(StatusCode::NOT_FOUND, "null for uri")
}

fn unauthorized() -> Response {
    jira_error(
        StatusCode::UNAUTHORIZED,
        "You are not authenticated. Authentication required to perform this operation.",
    )
}

const INVALID_PAYLOAD: &str =
    "Invalid request payload. Refer to the REST API documentation and try again.";

/// The API versions both deployments serve for the non-search endpoints.
pub(super) fn known_api(v: &str) -> bool {
    matches!(v, "2" | "3" | "latest")
}

// ---------------------------------------------------------------------------------------------
// Auth and faults

fn authorized(s: &Shared, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, cred)) = value.trim().split_once(' ') else {
        return false;
    };
    let cred = cred.trim();
    match s.opts.deployment {
        Deployment::Cloud if scheme.eq_ignore_ascii_case("basic") => {
            let expected = format!("{}:{}", s.opts.email, s.opts.token);
            decode_base64(cred).is_some_and(|raw| raw == expected.as_bytes())
        }
        Deployment::DataCenter if scheme.eq_ignore_ascii_case("bearer") => cred == s.opts.token,
        _ => false,
    }
}

/// Standard base64 (padding optional). No crate for it in this project, and Basic auth is the
/// only user.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let body = text.trim_end_matches('=').as_bytes();
    if body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= sextet(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::Status(n) | Fault::CommitThenStatus(n) => {
            let status = StatusCode::from_u16(n).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            jira_error(status, status.canonical_reason().unwrap_or("Error"))
        }
        Fault::RateLimited { retry_after } => {
            let mut resp = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({"errorMessages": ["Rate limit exceeded."]})),
            )
                .into_response();
            if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Fault::Html => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html;charset=UTF-8")],
            "<!DOCTYPE html><html><head><title>Log in with Atlassian account</title></head>\
             <body><form action=\"/login\" method=\"post\"><input name=\"username\"></form>\
             </body></html>",
        )
            .into_response(),
        Fault::MalformedJson => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
            "{\"issues\":[{\"id\":\"10001\",\"key\":\"",
        )
            .into_response(),
        Fault::Reset => crate::conn::dropped(crate::conn::ConnAction::Reset),
        Fault::Down(d) => crate::conn::dropped(crate::conn::ConnAction::Down(d)),
        Fault::Says { status, message } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            jira_error(status, &message)
        }
        Fault::Answer { status, headers } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
            let resp = jira_error(status, status.canonical_reason().unwrap_or("Error"));
            crate::with_headers(resp, &headers)
        }
        // Handled by the caller; answering normally is the safe fallback.
        Fault::Delay(_)
        | Fault::Hold(_)
        | Fault::CommitThenReset
        | Fault::WithHeaders(_)
        | Fault::Huge { .. } => StatusCode::OK.into_response(),
    }
}

/// Authenticates, applies any fault scripted for `route`, then runs `handle`.
pub(super) async fn guarded(
    s: &Shared,
    headers: &HeaderMap,
    route: Option<Route>,
    handle: impl FnOnce() -> Response,
) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    if let Some((lo, hi)) = s.opts.latency {
        let spread = hi.saturating_sub(lo).as_micros() as u64;
        let d = lo + std::time::Duration::from_micros(lock(&s.rng).next_u64() % (spread + 1));
        tokio::time::sleep(d).await;
    }
    if !authorized(s, headers) {
        return unauthorized();
    }
    let fault = route.and_then(|r| lock(&s.faults).take(r));
    match fault {
        None => handle(),
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            handle()
        }
        Some(Fault::Hold(gate)) => {
            gate.pass().await;
            let response = handle();
            gate.handled();
            response
        }
        Some(f @ Fault::CommitThenStatus(_)) => {
            let _ = handle();
            fault_response(f)
        }
        Some(Fault::CommitThenReset) => {
            let _ = handle();
            crate::conn::dropped(crate::conn::ConnAction::Reset)
        }
        Some(Fault::WithHeaders(extra)) => crate::with_headers(handle(), &extra),
        Some(Fault::Huge { bytes, declared }) => {
            crate::huge_body("{\"issues\":[", bytes, declared, s.streamed.clone())
        }
        Some(f) => fault_response(f),
    }
}

// ---------------------------------------------------------------------------------------------
// Simple endpoints

async fn myself(State(s): S, Path(v): Path<String>, headers: HeaderMap) -> Response {
    if !known_api(&v) {
        return not_found();
    }
    guarded(&s, &headers, Some(Route::Read), || {
        Json(json!({
            "self": format!("{}/rest/api/{v}/user?accountId=5b10a2844c20165700ede21g", s.base_url()),
            "accountId": "5b10a2844c20165700ede21g",
            "accountType": "atlassian",
            "emailAddress": s.opts.email,
            "displayName": "Reconciler Bot",
            "active": true,
            "timeZone": s.opts.time_zone,
            "locale": "en_US",
        }))
        .into_response()
    })
    .await
}

/// Anonymous and fault-free, like the real one: clients probe it before anything else.
async fn server_info(State(s): S, Path(v): Path<String>) -> Response {
    if !known_api(&v) {
        return not_found();
    }
    let (version, deployment) = match s.opts.deployment {
        Deployment::Cloud => ("1001.0.0-SNAPSHOT", "Cloud"),
        Deployment::DataCenter => ("9.12.0", "Server"),
    };
    let server_time = super::hostile::server_time(&s)
        .with_timezone(&s.opts.utc_offset)
        .format("%Y-%m-%dT%H:%M:%S%.3f%z")
        .to_string();
    let body = json!({
        "baseUrl": s.base_url(),
        "version": version,
        "deploymentType": deployment,
        "serverTitle": "Jira",
        "serverTime": server_time,
    });
    let padding = lock(&s.hostile).server_info_padding;
    if padding > 0 {
        // Spliced into the text: a JSON tree of it would cost the fake what it costs a client.
        let junk = format!("{{\"health\":[{}0],", "0,".repeat(padding / 2));
        let text = body.to_string().replacen('{', &junk, 1);
        s.streamed.fetch_add(text.len() as u64, Ordering::SeqCst);
        return ([(header::CONTENT_TYPE, "application/json")], text).into_response();
    }
    Json(body).into_response()
}

async fn project(
    State(s): S,
    Path((v, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !known_api(&v) {
        return not_found();
    }
    guarded(&s, &headers, Some(Route::Read), || {
        let st = lock(&s.state);
        let ctx = Ctx {
            base: s.base_url(),
            api: &v,
            offset: s.opts.utc_offset,
            state: &st,
        };
        match ctx.project(&key) {
            Value::Null => jira_error(
                StatusCode::NOT_FOUND,
                &format!("No project could be found with key '{key}'."),
            ),
            p => Json(p).into_response(),
        }
    })
    .await
}

async fn get_issue(
    State(s): S,
    Path((v, key)): Path<(String, String)>,
    query: QueryPairs,
    headers: HeaderMap,
) -> Response {
    if !known_api(&v) {
        return not_found();
    }
    let Ok(Query(pairs)) = query else {
        return bad_request(INVALID_PAYLOAD);
    };
    let requested: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "fields")
        .map(|(_, v)| v.as_str())
        .collect();
    let sel = if requested.is_empty() {
        FieldSel::everything()
    } else {
        FieldSel::parse(requested)
    };
    guarded(&s, &headers, Some(Route::Read), || {
        let st = lock(&s.state);
        let found = st
            .find(&key)
            .and_then(|id| Some((id, st.issues.get(&id)?.latest()?)));
        let Some((id, data)) = found else {
            return jira_error(
                StatusCode::NOT_FOUND,
                "Issue does not exist or you do not have permission to see it.",
            );
        };
        let ctx = Ctx {
            base: s.base_url(),
            api: &v,
            offset: s.opts.utc_offset,
            state: &st,
        };
        Json(ctx.issue(id, data, &sel)).into_response()
    })
    .await
}

/// Cloud only; consistent reads (no index lag), missing issues simply absent.
async fn bulkfetch(
    State(s): S,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.bulk_reads.fetch_add(1, Ordering::SeqCst);
    if s.opts.deployment != Deployment::Cloud || !matches!(v.as_str(), "2" | "3") {
        return not_found();
    }
    guarded(&s, &headers, Some(Route::Read), || {
        let Ok(req) = serde_json::from_slice::<Value>(&body) else {
            return bad_request(INVALID_PAYLOAD);
        };
        let Some(wanted) = string_list(req.get("issueIdsOrKeys")) else {
            return bad_request("issueIdsOrKeys must be a list of issue ids or keys.");
        };
        if wanted.is_empty() || wanted.len() > 100 {
            return bad_request("issueIdsOrKeys must contain between 1 and 100 entries.");
        }
        let sel = match string_list(req.get("fields")) {
            Some(f) if !f.is_empty() => FieldSel::parse(f.iter().map(String::as_str)),
            _ => FieldSel::everything(),
        };
        let st = lock(&s.state);
        let ctx = Ctx {
            base: s.base_url(),
            api: &v,
            offset: s.opts.utc_offset,
            state: &st,
        };
        let mut seen = Vec::new();
        let mut issues = Vec::new();
        let mut errors = Vec::new();
        let refuse_one = lock(&s.hostile).bulk_issue_errors;
        for id in wanted.iter().filter_map(|k| st.find(k)) {
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            if let Some(d) = st.issues.get(&id).and_then(|r| r.latest()) {
                if refuse_one && errors.is_empty() {
                    errors.push(json!({"id": id.to_string(),
                                       "errorMessage": "Retrieving this issue failed; retry."}));
                    continue;
                }
                issues.push(ctx.issue(id, d, &sel));
            }
        }
        Json(json!({"issues": issues, "issueErrors": errors})).into_response()
    })
    .await
}

/// Most issues one changelog bulk fetch may name, as on Cloud.
const CHANGELOG_ISSUES: usize = 1000;
/// Most histories per changelog page, whatever `maxResults` asks: small, so clients must page.
const CHANGELOG_PAGE: usize = 100;

/// `POST /rest/api/3/changelog/bulkfetch` (Cloud): the changelogs of up to 1000 issues,
/// optionally only the items of some fields, oldest history first, paged by token. Issues
/// that do not exist or cannot be seen are left out.
async fn changelog_bulkfetch(
    State(s): S,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.bulk_reads.fetch_add(1, Ordering::SeqCst);
    if s.opts.deployment != Deployment::Cloud || !matches!(v.as_str(), "2" | "3") {
        return not_found();
    }
    guarded(&s, &headers, Some(Route::Read), || {
        let Ok(req) = serde_json::from_slice::<Value>(&body) else {
            return bad_request(INVALID_PAYLOAD);
        };
        let Some(wanted) = string_list(req.get("issueIdsOrKeys")) else {
            return bad_request("issueIdsOrKeys must be a list of issue ids or keys.");
        };
        if wanted.is_empty() || wanted.len() > CHANGELOG_ISSUES {
            return bad_request("issueIdsOrKeys must contain between 1 and 1000 entries.");
        }
        let fields = string_list(req.get("fieldIds")).filter(|f| !f.is_empty());
        if fields.as_ref().is_some_and(|f| f.len() > 10) {
            return bad_request("fieldIds must contain at most 10 entries.");
        }
        let size = req
            .get("maxResults")
            .and_then(Value::as_u64)
            .unwrap_or(1000)
            .clamp(1, CHANGELOG_PAGE as u64) as usize;
        let st = lock(&s.state);
        let ctx = Ctx {
            base: s.base_url(),
            api: &v,
            offset: s.opts.utc_offset,
            state: &st,
        };
        // Every (issue, history) pair, oldest history first, then by issue id.
        let mut ids: Vec<u64> = wanted.iter().filter_map(|k| st.find(k)).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut entries: Vec<(u64, Value, chrono::DateTime<chrono::Utc>, u64)> = ids
            .iter()
            .filter_map(|id| Some((*id, st.issues.get(id)?)))
            .flat_map(|(id, r)| r.changelog.iter().map(move |h| (id, h)))
            .filter_map(|(id, h)| Some((id, ctx.history(h, fields.as_deref())?, h.created, h.id)))
            .collect();
        entries.sort_by_key(|a| (a.2, a.0, a.3));
        let scope = format!("changelog:{}:{:?}", wanted.join(","), fields);
        let offset = match req.get("nextPageToken").and_then(Value::as_str) {
            None | Some("") => 0,
            Some(t) => match read_token(t, &scope) {
                Some(o) => o,
                None => return bad_request(BAD_TOKEN),
            },
        };
        let page: Vec<_> = entries.iter().skip(offset).take(size).collect();
        let mut logs: Vec<Value> = Vec::new();
        for (id, history, _, _) in &page {
            let id = id.to_string();
            match logs.last_mut() {
                Some(last) if last["issueId"] == json!(id) => {
                    if let Some(list) = last["changeHistories"].as_array_mut() {
                        list.push(history.clone());
                    }
                }
                _ => logs.push(json!({"issueId": id, "changeHistories": [history]})),
            }
        }
        let next = offset + page.len();
        let mut out = json!({ "issueChangeLogs": logs });
        out["nextPageToken"] = if next < entries.len() {
            json!(page_token(next, &scope))
        } else {
            Value::Null
        };
        Json(out).into_response()
    })
    .await
}

/// A JSON array of strings, or a single comma-separated string.
fn string_list(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::String(s) => Some(s.split(',').map(|x| x.trim().to_string()).collect()),
        Value::Array(items) => items.iter().map(|i| i.as_str().map(String::from)).collect(),
        Value::Null => Some(Vec::new()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Search parameters

#[derive(Default, Debug)]
struct SearchParams {
    jql: Option<String>,
    max_results: Option<i64>,
    start_at: Option<i64>,
    next_page_token: Option<String>,
    fields: Vec<String>,
    /// Cloud's `reconcileIssues`: these ids are read at their latest version, index lag or not.
    reconcile: Vec<u64>,
    /// `expand=changelog` (Data Center) adds each issue's changelog.
    expand: Vec<String>,
}

impl SearchParams {
    fn from_query(query: QueryPairs) -> Result<SearchParams, Invalid> {
        let Query(pairs) = query.map_err(|_| Invalid(INVALID_PAYLOAD.into()))?;
        let mut p = SearchParams::default();
        for (k, v) in pairs {
            match k.as_str() {
                "jql" => p.jql = Some(v),
                "maxResults" => p.max_results = Some(parse_int(&k, &v)?),
                "startAt" => p.start_at = Some(parse_int(&k, &v)?),
                "nextPageToken" => p.next_page_token = Some(v),
                "fields" => p.fields.push(v),
                "expand" => p.expand.extend(v.split(',').map(|e| e.trim().to_string())),
                _ => {}
            }
        }
        Ok(p)
    }

    fn from_body(body: &[u8]) -> Result<SearchParams, Invalid> {
        let req: Value =
            serde_json::from_slice(body).map_err(|_| Invalid(INVALID_PAYLOAD.into()))?;
        let int = |name: &str| match req.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| Invalid(format!("The value for '{name}' must be an integer."))),
        };
        let text = |name: &str| match req.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Invalid(INVALID_PAYLOAD.into())),
        };
        Ok(SearchParams {
            jql: text("jql")?,
            next_page_token: text("nextPageToken")?,
            max_results: int("maxResults")?,
            start_at: int("startAt")?,
            fields: string_list(req.get("fields"))
                .ok_or_else(|| Invalid(INVALID_PAYLOAD.into()))?,
            reconcile: match req.get("reconcileIssues") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(ids)) if ids.len() <= 50 => ids
                    .iter()
                    .map(Value::as_u64)
                    .collect::<Option<Vec<u64>>>()
                    .ok_or_else(|| Invalid("reconcileIssues must be issue ids".into()))?,
                Some(_) => {
                    return Err(Invalid("reconcileIssues takes at most 50 issue ids".into()))
                }
            },
            expand: string_list(req.get("expand")).unwrap_or_default(),
        })
    }

    fn field_sel(&self) -> FieldSel {
        FieldSel::parse(self.fields.iter().map(String::as_str))
    }

    fn with_changelog(&self) -> bool {
        self.expand.iter().any(|e| e == "changelog")
    }
}

fn parse_int(name: &str, value: &str) -> Result<i64, Invalid> {
    value.trim().parse().map_err(|_| {
        Invalid(format!(
            "The value '{value}' is invalid for the parameter '{name}'."
        ))
    })
}

// ---------------------------------------------------------------------------------------------
// Search

/// One evaluated search page.
struct Page {
    issues: Vec<Value>,
    total: usize,
}

/// Runs `jql` against the search index: for each issue, its newest version written at least
/// `index_lag` ago. Issues whose every version is younger are absent, and a deletion hides
/// the issue only once it is old enough.
fn run_search(
    s: &Shared,
    api: &str,
    jql: &str,
    offset: usize,
    size: usize,
    sel: &FieldSel,
    with_changelog: bool,
) -> Result<Page, Invalid> {
    run_search_reconciling(s, api, jql, offset, size, sel, with_changelog, &[])
}

/// `run_search`, reading the `reconcile` ids at their latest version (Cloud's
/// `reconcileIssues`: read-after-write for issues the caller knows it just changed).
#[allow(clippy::too_many_arguments)] // one search request's parameters, as the API has them
fn run_search_reconciling(
    s: &Shared,
    api: &str,
    jql: &str,
    offset: usize,
    size: usize,
    sel: &FieldSel,
    with_changelog: bool,
    reconcile: &[u64],
) -> Result<Page, Invalid> {
    let st = lock(&s.state);
    let now = s.opts.clock.now();
    let lag = Duration::from_std(s.opts.index_lag).unwrap_or_else(|_| Duration::zero());
    let env = jql::Env {
        now,
        offset: s.opts.utc_offset,
        catalog: &*st,
    };
    let query = jql::compile(jql, &env).map_err(|e| Invalid(e.0))?;
    let horizon = now - lag;
    let as_of = |id: &u64| if reconcile.contains(id) { now } else { horizon };
    let cacheable = s.opts.cache_searches && lag.is_zero() && reconcile.is_empty();
    let generation = if cacheable { st.generation() } else { 0 };
    let cached = lock(&s.search_cache)
        .as_ref()
        .filter(|(q, g, _)| cacheable && q == jql && *g == generation)
        .map(|(_, _, ids)| ids.clone());
    let ids: Vec<u64> = match cached {
        Some(ids) => ids,
        None => {
            let mut hits: Vec<(Row, _)> = st
                .issues
                .iter()
                .filter_map(|(id, rec)| {
                    let d = rec.as_of(as_of(id))?;
                    Some((row(*id, d, &rec.old_keys), d))
                })
                .filter(|(r, _)| query.matches(r))
                .collect();
            hits.sort_by(|a, b| query.compare(&a.0, &b.0));
            let ids: Vec<u64> = hits.iter().map(|(r, _)| r.id).collect();
            if cacheable {
                *lock(&s.search_cache) = Some((jql.to_string(), generation, ids.clone()));
            }
            ids
        }
    };
    let hits: Vec<(Row, _, _)> = ids
        .iter()
        .skip(offset)
        .take(size)
        .filter_map(|id| {
            let rec = st.issues.get(id)?;
            let d = rec.as_of(as_of(id))?;
            Some((row(*id, d, &rec.old_keys), d, rec))
        })
        .collect();
    let ctx = Ctx {
        base: s.base_url(),
        api,
        offset: s.opts.utc_offset,
        state: &st,
    };
    let issues = hits
        .iter()
        .map(|(r, d, rec)| {
            let mut issue = ctx.issue(r.id, d, sel);
            if with_changelog {
                let histories: Vec<Value> = rec
                    .changelog
                    .iter()
                    .filter_map(|h| ctx.history(h, None))
                    .collect();
                issue["changelog"] = json!({
                    "startAt": 0,
                    "maxResults": histories.len(),
                    "total": histories.len(),
                    "histories": histories,
                });
            }
            issue
        })
        .collect();
    Ok(Page {
        issues,
        total: ids.len(),
    })
}

pub(super) fn row<'a>(id: u64, d: &'a super::IssueData, old_keys: &'a [String]) -> Row<'a> {
    Row {
        id,
        key: &d.key,
        old_keys,
        project: &d.project,
        summary: &d.summary,
        status: &d.status,
        category: &d.category,
        issue_type: &d.issue_type,
        labels: &d.labels,
        created: d.created,
        updated: d.updated,
        resolved: d.resolved,
        plan: &d.plan,
    }
}

const REMOVED_SEARCH: &str = "The requested API has been removed. Please migrate to the \
    /rest/api/3/search/jql API. A full migration guideline is available at \
    https://developer.atlassian.com/changelog/#CHANGE-2046";

const UNBOUNDED: &str = "Unbounded JQL queries are not allowed here. Please add a search \
    restriction to your query.";

const BAD_TOKEN: &str = "The provided next page token is invalid or expired.";

/// Cloud page tokens: the offset plus a check tied to the query, so a garbage or foreign
/// token is rejected instead of silently restarting. Pages are re-evaluated on each call, so
/// an issue edited between pages can move across them, as with any offset paging.
fn page_token(offset: usize, jql: &str) -> String {
    format!("{offset:x}.{:016x}", token_check(offset, jql))
}

fn token_check(offset: usize, jql: &str) -> u64 {
    let mut h = DefaultHasher::new();
    ("fake-jira-page", offset, jql).hash(&mut h);
    h.finish()
}

fn read_token(token: &str, jql: &str) -> Option<usize> {
    let (offset, check) = token.split_once('.')?;
    let offset = usize::from_str_radix(offset, 16).ok()?;
    let check = u64::from_str_radix(check, 16).ok()?;
    (check == token_check(offset, jql)).then_some(offset)
}

/// `GET|POST /rest/api/{2,3}/search`: removed on Cloud, the only search on Data Center.
async fn old_search(
    s: Arc<Shared>,
    v: String,
    headers: HeaderMap,
    p: Result<SearchParams, Invalid>,
) -> Response {
    s.searches.fetch_add(1, Ordering::SeqCst);
    match s.opts.deployment {
        Deployment::Cloud => {
            if !known_api(&v) {
                return not_found();
            }
            guarded(&s, &headers, None, || {
                jira_error(StatusCode::GONE, REMOVED_SEARCH)
            })
            .await
        }
        Deployment::DataCenter => {
            if !matches!(v.as_str(), "2" | "latest") {
                return not_found();
            }
            guarded(&s, &headers, Some(Route::Read), || match p {
                Ok(p) => dc_search(&s, &v, p),
                Err(e) => e.into_response(),
            })
            .await
        }
    }
}

fn dc_search(s: &Shared, api: &str, p: SearchParams) -> Response {
    let cap = s.opts.page_cap.clamp(1, 1000);
    let size = p.max_results.unwrap_or(50).clamp(0, cap as i64) as usize;
    let start = p.start_at.unwrap_or(0).max(0) as usize;
    let jql = p.jql.clone().unwrap_or_default();
    match run_search(
        s,
        api,
        &jql,
        start,
        size,
        &p.field_sel(),
        p.with_changelog(),
    ) {
        Ok(page) => {
            let mut body = json!({
                "expand": "schema,names",
                "startAt": start,
                "maxResults": size,
                "total": page.total,
                "issues": page.issues,
            });
            if lock(&s.hostile).dc_no_total {
                body.as_object_mut().map(|o| o.remove("total"));
            }
            Json(body).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `GET|POST /rest/api/{2,3}/search/jql`: Cloud's token-paged search; absent on Data Center.
async fn jql_search(
    s: Arc<Shared>,
    v: String,
    headers: HeaderMap,
    p: Result<SearchParams, Invalid>,
) -> Response {
    s.searches.fetch_add(1, Ordering::SeqCst);
    if s.opts.deployment != Deployment::Cloud || !matches!(v.as_str(), "2" | "3") {
        return not_found();
    }
    guarded(&s, &headers, Some(Route::Read), || match p {
        Ok(p) => cloud_search(&s, &v, p),
        Err(e) => e.into_response(),
    })
    .await
}

fn cloud_search(s: &Shared, api: &str, p: SearchParams) -> Response {
    let jql = p.jql.clone().unwrap_or_default();
    if jql.trim().is_empty() {
        return bad_request(UNBOUNDED);
    }
    let cap = s.opts.page_cap.clamp(1, 100);
    let size = p.max_results.unwrap_or(50).clamp(1, cap as i64) as usize;
    let offset = match p.next_page_token.as_deref() {
        None | Some("") => 0,
        Some(t) => match read_token(super::hostile::strip_nonce(t), &jql) {
            Some(o) => o,
            None => return bad_request(BAD_TOKEN),
        },
    };
    let page = match run_search_reconciling(
        s,
        api,
        &jql,
        offset,
        size,
        &p.field_sel(),
        false,
        &p.reconcile,
    ) {
        Ok(page) => page,
        Err(e) => return e.into_response(),
    };
    let next = offset + page.issues.len();
    let trap = lock(&s.hostile).page_tokens;
    let token =
        super::hostile::next_token(trap, next, page.total, |at| page_token(at, &jql), &s.nonce);
    let mut body = json!({"issues": page.issues, "isLast": token.is_none()});
    if let Some(t) = token.filter(|_| !lock(&s.hostile).lost_page_token) {
        body["nextPageToken"] = json!(t);
    }
    match lock(&s.hostile).padding_per_issue {
        0 => Json(body).into_response(),
        bytes => super::hostile::padded(s, &body, bytes),
    }
}

/// `POST /rest/api/3/search/approximate-count` (Cloud): `{"count": N}` for a JQL, as the
/// index sees it. Not a search call: `search_requests` does not count it.
async fn approximate_count(
    State(s): S,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if s.opts.deployment != Deployment::Cloud || v != "3" {
        return not_found();
    }
    // The body is `{"jql": "..."}` and nothing else.
    let jql = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("jql").and_then(Value::as_str).map(str::to_string));
    guarded(&s, &headers, Some(Route::Read), || {
        let Some(jql) = jql else {
            return bad_request(INVALID_PAYLOAD);
        };
        if jql.trim().is_empty() {
            return bad_request(UNBOUNDED);
        }
        match run_search(&s, &v, &jql, 0, 0, &FieldSel::default(), false) {
            Ok(page) => Json(json!({ "count": page.total })).into_response(),
            Err(e) => e.into_response(),
        }
    })
    .await
}

const NOT_ADMIN: &str =
    "You do not have the permission to manage webhooks: Jira administrators only.";

/// `GET /rest/webhooks/1.0/webhook`: every webhook, as `POST` answered (never the secret);
/// administrators only.
async fn list_webhooks(State(s): S, headers: HeaderMap) -> Response {
    guarded(&s, &headers, None, || {
        if !s.opts.admin {
            return jira_error(StatusCode::FORBIDDEN, NOT_ADMIN);
        }
        Json(super::webhooks::list(&s)).into_response()
    })
    .await
}

/// `PUT /rest/webhooks/1.0/webhook/{id}`: replace a webhook's definition; administrators only.
async fn update_webhook(
    State(s): S,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    guarded(&s, &headers, None, || {
        if !s.opts.admin {
            return jira_error(StatusCode::FORBIDDEN, NOT_ADMIN);
        }
        let Ok(value) = serde_json::from_slice::<Value>(&body) else {
            return bad_request(INVALID_PAYLOAD);
        };
        let Ok(id) = id.parse::<u64>() else {
            return jira_error(StatusCode::NOT_FOUND, "No webhook with this id.");
        };
        match super::webhooks::update_from_body(&s, id, &value) {
            Ok(Some(updated)) => Json(updated).into_response(),
            Ok(None) => jira_error(StatusCode::NOT_FOUND, "No webhook with this id."),
            Err(why) => bad_request(why),
        }
    })
    .await
}

/// `POST /rest/webhooks/1.0/webhook`: administrators only.
async fn register_webhook(State(s): S, headers: HeaderMap, body: Bytes) -> Response {
    guarded(&s, &headers, None, || {
        if !s.opts.admin {
            return jira_error(StatusCode::FORBIDDEN, NOT_ADMIN);
        }
        let Ok(value) = serde_json::from_slice::<Value>(&body) else {
            return bad_request(INVALID_PAYLOAD);
        };
        match super::webhooks::register_from_body(&s, &value) {
            Ok(created) => (StatusCode::CREATED, Json(created)).into_response(),
            Err(why) => bad_request(why),
        }
    })
    .await
}

async fn old_search_get(
    State(s): S,
    Path(v): Path<String>,
    query: QueryPairs,
    headers: HeaderMap,
) -> Response {
    old_search(s, v, headers, SearchParams::from_query(query)).await
}

async fn old_search_post(
    State(s): S,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    old_search(s, v, headers, SearchParams::from_body(&body)).await
}

async fn jql_search_get(
    State(s): S,
    Path(v): Path<String>,
    query: QueryPairs,
    headers: HeaderMap,
) -> Response {
    jql_search(s, v, headers, SearchParams::from_query(query)).await
}

async fn jql_search_post(
    State(s): S,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    jql_search(s, v, headers, SearchParams::from_body(&body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(
            decode_base64("Ym90QGV4YW1wbGUuY29tOmppcmEtdG9rZW4=").unwrap(),
            b"bot@example.com:jira-token"
        );
        assert_eq!(decode_base64("YQ").unwrap(), b"a");
        assert_eq!(decode_base64("YWI=").unwrap(), b"ab");
        assert_eq!(decode_base64("YWJj").unwrap(), b"abc");
        assert!(decode_base64("Y").is_none());
        assert!(decode_base64("a$b=").is_none());
    }

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let t = page_token(74, "project = A");
        assert_eq!(read_token(&t, "project = A"), Some(74));
        assert_eq!(read_token(&t, "project = B"), None);
        assert_eq!(read_token("garbage", "project = A"), None);
        assert_eq!(read_token("4a.zz", "project = A"), None);
    }
}
