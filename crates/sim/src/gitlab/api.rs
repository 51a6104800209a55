//! The HTTP side: routing, auth, faults and the endpoint handlers.
//!
//! Routing is done by hand in one fallback handler because project ids may be paths with
//! slashes (`acme%2Fplatform` or even `acme/platform`), and because every request must pass
//! through the same fault and counting step before it is handled.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::labels;
use super::list::{ListQuery, Page};
use super::metadata::{self, MetaEdit};
use super::params::{percent_decode, Params};
use super::routes::{self, Ext};
use super::{lock, render, Fault, Issue, NewIssue, Role, Route, Shared, State, Tier};

/// Large enough for a description just over GitLab's 1 MiB limit to reach our own check
/// (axum's default 2 MB would answer 413 for a few multi-byte descriptions).
const BODY_LIMIT: usize = 16 * 1024 * 1024;
const MAX_TITLE_CHARS: usize = 255;
const MAX_DESCRIPTION_CHARS: usize = 1_048_576;
const ISSUE_TYPES: [&str; 4] = ["issue", "incident", "test_case", "task"];

pub(super) fn router(state: Shared) -> Router {
    Router::new()
        .fallback(entry)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// An error answer with GitLab's body shape (`message` or `error`, depending on the layer
/// of GitLab that produces it).
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    body: Value,
}

impl ApiError {
    fn new(status: StatusCode, body: Value) -> Self {
        ApiError { status, body }
    }
    pub(super) fn message(status: StatusCode, message: &str) -> Self {
        Self::new(status, json!({ "message": message }))
    }
    /// Grape parameter errors use `error`.
    pub(super) fn bad_request(error: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, json!({ "error": error }))
    }
    pub(super) fn invalid(param: &str) -> Self {
        Self::bad_request(&format!("{param} is invalid"))
    }
    pub(super) fn not_valid(param: &str) -> Self {
        Self::bad_request(&format!("{param} does not have a valid value"))
    }
    /// Model validation errors: `{"message": {"title": ["is too long ..."]}}`.
    pub(super) fn validation(field: &str, problem: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            json!({ "message": { field: [problem] } }),
        )
    }
    /// Several model validation errors: `{"message": {"field": ["problem", ...], ...}}`.
    pub(super) fn validation_map(problems: Value) -> Self {
        Self::new(StatusCode::BAD_REQUEST, json!({ "message": problems }))
    }
    fn unauthorized() -> Self {
        Self::message(StatusCode::UNAUTHORIZED, "401 Unauthorized")
    }
    pub(super) fn forbidden() -> Self {
        Self::message(StatusCode::FORBIDDEN, "403 Forbidden")
    }
    fn project_not_found() -> Self {
        Self::message(StatusCode::NOT_FOUND, "404 Project Not Found")
    }
    pub(super) fn group_not_found() -> Self {
        Self::message(StatusCode::NOT_FOUND, "404 Group Not Found")
    }
    pub(super) fn not_found(message: &str) -> Self {
        Self::message(StatusCode::NOT_FOUND, message)
    }
    /// `render_api_error!({error: ...}, 400)`: `{"message": {"error": "..."}}`.
    pub(super) fn list_error(error: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            json!({ "message": { "error": error } }),
        )
    }
    /// A 400 with a plain `message` string.
    pub(super) fn bad_message(message: &str) -> Self {
        Self::message(StatusCode::BAD_REQUEST, message)
    }
    pub(super) fn issue_not_found() -> Self {
        Self::message(StatusCode::NOT_FOUND, "404 Not found")
    }
    pub(super) fn label_exists() -> Self {
        Self::message(StatusCode::CONFLICT, "Label already exists")
    }
    pub(super) fn duplicated_issue() -> Self {
        Self::message(StatusCode::CONFLICT, "Duplicated issue")
    }
    fn create_rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            json!({ "message": { "error":
                "This endpoint has been requested too many times. Try again later." } }),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

// ---------------------------------------------------------------------------------------
// Requests and routing
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Endpoint {
    User,
    Version,
    /// Project id or decoded path.
    Project(String),
    Issues(String),
    IssuesStatistics(String),
    /// Project and the raw iid segment (validated by the handler).
    Issue(String, String),
    LabelEvents(String, String),
    ProjectLabels(String),
    /// Group id or decoded path.
    GroupLabels(String),
    /// Users, members, milestones, boards and GraphQL (see `gitlab/routes.rs`).
    Planning(Ext),
    Unknown,
}

/// Map a raw path to an endpoint. The project part may contain unencoded slashes, so the
/// match anchors on a trailing `issues` or `issues/:iid`.
fn parse_endpoint(path: &str) -> Endpoint {
    if let Some(ext) = routes::parse(path) {
        return Endpoint::Planning(ext);
    }
    let Some(rest) = path.strip_prefix("/api/v4/") else {
        return Endpoint::Unknown;
    };
    let rest = rest.trim_end_matches('/');
    match rest {
        "user" => return Endpoint::User,
        "version" => return Endpoint::Version,
        _ => {}
    }
    if let Some(group) = rest
        .strip_prefix("groups/")
        .and_then(|g| g.strip_suffix("/labels"))
        .filter(|g| !g.is_empty())
    {
        return Endpoint::GroupLabels(percent_decode(group, false));
    }
    let Some(rest) = rest.strip_prefix("projects/") else {
        return Endpoint::Unknown;
    };
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Endpoint::Unknown;
    }
    let project = |p: &[&str]| percent_decode(&p.join("/"), false);
    match segs.as_slice() {
        [p @ .., "issues"] if !p.is_empty() => Endpoint::Issues(project(p)),
        [p @ .., "issues_statistics"] if !p.is_empty() => Endpoint::IssuesStatistics(project(p)),
        [p @ .., "issues", iid] if !p.is_empty() => {
            Endpoint::Issue(project(p), percent_decode(iid, false))
        }
        [p @ .., "issues", iid, "resource_label_events"] if !p.is_empty() => {
            Endpoint::LabelEvents(project(p), percent_decode(iid, false))
        }
        [p @ .., "labels"] if !p.is_empty() => Endpoint::ProjectLabels(project(p)),
        p => Endpoint::Project(project(p)),
    }
}

/// Everything a handler needs, owned so it can move into a task (see [`Fault::Delay`]).
pub(super) struct Request {
    pub(super) method: Method,
    endpoint: Endpoint,
    pub(super) path: String,
    pub(super) query: String,
    headers: HeaderMap,
    pub(super) body: Bytes,
}

impl Request {
    /// The project this request is about, as written in its path (id or path).
    fn project(&self) -> Option<&str> {
        match &self.endpoint {
            Endpoint::Project(p) | Endpoint::Issues(p) | Endpoint::Issue(p, _) => Some(p),
            _ => None,
        }
    }

    fn is_list(&self) -> bool {
        self.method == Method::GET && matches!(self.endpoint, Endpoint::Issues(_))
    }

    fn is_write(&self) -> bool {
        match self.endpoint {
            Endpoint::Issues(_) => self.method == Method::POST,
            Endpoint::Issue(..) => self.method == Method::PUT || self.method == Method::DELETE,
            _ => false,
        }
    }

    /// Label creation: a write, but not an issue write (`writes()` counts issue writes).
    fn is_label_write(&self) -> bool {
        self.method == Method::POST
            && matches!(
                self.endpoint,
                Endpoint::ProjectLabels(_) | Endpoint::GroupLabels(_)
            )
    }

    /// Which fault route this request falls under; `None` for unknown routes.
    fn fault_route(&self) -> Option<Route> {
        if self.endpoint == Endpoint::Unknown {
            None
        } else if let Endpoint::Planning(ext) = &self.endpoint {
            Some(routes::fault_route(ext, &self.method, &self.body))
        } else if self.method == Method::GET {
            Some(Route::Read)
        } else if self.is_write() && self.method == Method::POST {
            Some(Route::Create)
        } else if self.is_write() || self.is_label_write() {
            Some(Route::Update)
        } else {
            None
        }
    }

    pub(super) fn params(&self) -> Result<Params, ApiError> {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        Params::parse(&self.query, content_type, &self.body)
    }

    /// `PRIVATE-TOKEN: t` or `Authorization: Bearer t`.
    fn token(&self) -> Option<&str> {
        let header = |name: &str| self.headers.get(name).and_then(|v| v.to_str().ok());
        header("private-token").or_else(|| {
            header("authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::trim))
        })
    }
}

/// The single entry point: count, consult the fault plan, then handle.
async fn entry(
    AxumState(shared): AxumState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = Request {
        method,
        endpoint: parse_endpoint(uri.path()),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        headers,
        body,
    };
    let (fault, latency) = {
        let mut st = lock(&shared);
        st.counters.requests += 1;
        if let Some(arrivals) = st.arrivals.as_mut() {
            arrivals.push((Instant::now(), format!("{} {}", req.method, req.path)));
        }
        st.counters.in_flight += 1;
        st.counters.max_in_flight = st.counters.max_in_flight.max(st.counters.in_flight);
        if let Some(p) = req.project() {
            *st.counters
                .in_flight_by_project
                .entry(p.to_owned())
                .or_default() += 1;
            let busy = st
                .counters
                .in_flight_by_project
                .values()
                .filter(|n| **n > 0)
                .count();
            st.counters.max_projects_in_flight = st.counters.max_projects_in_flight.max(busy);
        }
        if req.is_list() {
            st.counters.lists += 1;
        }
        let latency = st.latency.map(|(lo, hi)| {
            let spread = hi.saturating_sub(lo).as_micros() as u64;
            lo + Duration::from_micros(st.rng.next_u64() % (spread + 1))
        });
        (
            req.fault_route().and_then(|route| st.faults.take(route)),
            latency,
        )
    };
    if let Some(d) = latency {
        tokio::time::sleep(d).await;
    }
    let project = req.project().map(str::to_owned);
    let response = answer(&shared, req, fault).await;
    let mut st = lock(&shared);
    st.counters.in_flight -= 1;
    if let Some(n) = project.and_then(|p| st.counters.in_flight_by_project.get_mut(&p)) {
        *n -= 1;
    }
    drop(st);
    response
}

async fn answer(shared: &Shared, req: Request, fault: Option<Fault>) -> Response {
    match fault {
        None => handle(shared, &req),
        Some(Fault::Delay(d)) => handle_later(shared.clone(), req, d).await,
        Some(Fault::Hold(gate)) => handle_when_open(shared.clone(), req, gate).await,
        Some(Fault::CommitThenStatus(code)) => {
            // The write happens (and is counted) but the client only sees the error.
            let _committed = handle(shared, &req);
            status_fault(code)
        }
        Some(Fault::CommitThenReset) => {
            let _committed = handle(shared, &req);
            crate::conn::dropped(crate::conn::ConnAction::Reset)
        }
        Some(Fault::WithHeaders(headers)) => crate::with_headers(handle(shared, &req), &headers),
        Some(Fault::Huge { bytes, declared }) => {
            let sent = lock(shared).streamed.clone();
            crate::huge_body("[", bytes, declared, sent)
        }
        Some(other) => fault_response(&other),
    }
}

/// A slow server finishes its work even if the client has hung up, so the request runs in
/// its own task: a client timeout leaves a committed write behind, as it would for real.
async fn handle_later(shared: Shared, req: Request, delay: Duration) -> Response {
    let task = tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        handle(&shared, &req)
    });
    task.await
        .unwrap_or_else(|_| status_fault(StatusCode::INTERNAL_SERVER_ERROR.as_u16()))
}

/// [`Fault::Hold`]: like `handle_later`, until the test opens the gate.
async fn handle_when_open(shared: Shared, req: Request, gate: crate::Gate) -> Response {
    let task = tokio::spawn(async move {
        gate.pass().await;
        let response = handle(&shared, &req);
        gate.handled();
        response
    });
    task.await
        .unwrap_or_else(|_| status_fault(StatusCode::INTERNAL_SERVER_ERROR.as_u16()))
}

fn handle(shared: &Shared, req: &Request) -> Response {
    let mut st = lock(shared);
    let resp = dispatch(&mut st, req).unwrap_or_else(IntoResponse::into_response);
    if req.is_write() && resp.status().is_success() {
        st.counters.writes += 1;
    }
    resp
}

fn dispatch(st: &mut State, req: &Request) -> Result<Response, ApiError> {
    if req.endpoint == Endpoint::Unknown {
        return Err(ApiError::message(StatusCode::NOT_FOUND, "404 Not Found"));
    }
    let user = authenticate(st, req)?;
    let m = &req.method;
    match &req.endpoint {
        Endpoint::User if m == Method::GET => current_user(st, user),
        Endpoint::Version if m == Method::GET => {
            Ok(Json(json!({ "version": "17.5.0-ee", "revision": "abc" })).into_response())
        }
        Endpoint::Project(p) if m == Method::GET => get_project(st, user, p),
        Endpoint::Issues(p) if m == Method::GET => list_issues(st, user, p, req),
        Endpoint::IssuesStatistics(p) if m == Method::GET => issue_statistics(st, user, p),
        Endpoint::Issues(p) if m == Method::POST => create_issue(st, user, p, req),
        Endpoint::Issue(p, iid) if m == Method::GET => get_issue(st, user, p, iid),
        Endpoint::Issue(p, iid) if m == Method::PUT => update_issue(st, user, p, iid, req),
        Endpoint::Issue(p, iid) if m == Method::DELETE => delete_issue(st, user, p, iid),
        Endpoint::LabelEvents(p, iid) if m == Method::GET => {
            labels::list_label_events(st, user, p, iid, req)
        }
        Endpoint::ProjectLabels(p) if m == Method::GET => {
            labels::list_project_labels(st, user, p, req)
        }
        Endpoint::ProjectLabels(p) if m == Method::POST => {
            labels::create_project_label(st, user, p, req)
        }
        Endpoint::GroupLabels(g) if m == Method::POST => {
            labels::create_group_label(st, user, g, req)
        }
        Endpoint::Planning(ext) => routes::dispatch(st, user, ext, req),
        _ => Err(ApiError::message(
            StatusCode::METHOD_NOT_ALLOWED,
            "405 Method Not Allowed",
        )),
    }
}

fn authenticate(st: &State, req: &Request) -> Result<u64, ApiError> {
    let token = req.token().ok_or_else(ApiError::unauthorized)?;
    st.users
        .iter()
        .find(|u| u.token.as_deref() == Some(token) && !u.profile.blocked)
        .map(|u| u.id)
        .ok_or_else(ApiError::unauthorized)
}

/// The project and the caller's role in it: the higher of its project and group membership
/// (an administrator acts as Owner). A project the caller is no member of is
/// indistinguishable from a missing one (GitLab does not leak private projects).
pub(super) fn member_project(st: &State, key: &str, user: u64) -> Result<(usize, Role), ApiError> {
    let index = st
        .project_index(key)
        .ok_or_else(ApiError::project_not_found)?;
    let is_admin = st.user(user).is_some_and(|u| u.admin);
    let project_role = st.projects[index].members.get(&user).copied();
    let group_role = group_role(st, index, user);
    let role = project_role
        .max(group_role)
        .or(is_admin.then_some(Role::Owner))
        .ok_or_else(ApiError::project_not_found)?;
    Ok((index, role))
}

/// The caller's highest role in the project's group and that group's ancestors, if any.
pub(super) fn group_role(st: &State, project: usize, user: u64) -> Option<Role> {
    st.group_chain(project)
        .into_iter()
        .filter_map(|g| st.groups[g].members.get(&user).copied())
        .max()
}

/// The iid path segment: GitLab declares it an integer, so junk is a 400.
pub(super) fn parse_iid(raw: &str) -> Result<u64, ApiError> {
    raw.parse().map_err(|_| ApiError::invalid("issue_iid"))
}

// ---------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------

fn current_user(st: &State, user: u64) -> Result<Response, ApiError> {
    let u = st.user(user).ok_or_else(ApiError::unauthorized)?;
    let mut body = render::user(u, &st.base_url);
    // GitLab shows `is_admin` only to administrators.
    if u.admin {
        body["is_admin"] = serde_json::Value::Bool(true);
    }
    Ok(Json(body).into_response())
}

fn get_project(st: &State, user: u64, key: &str) -> Result<Response, ApiError> {
    let (pi, _) = member_project(st, key, user)?;
    // An admin who is no member gets the project without a membership in `permissions`.
    let membership = st.projects[pi].members.get(&user).copied();
    let group_membership = group_role(st, pi, user);
    Ok(Json(render::project(
        st,
        &st.projects[pi],
        membership,
        group_membership,
    ))
    .into_response())
}

fn list_issues(st: &State, user: u64, key: &str, req: &Request) -> Result<Response, ApiError> {
    let (pi, _) = member_project(st, key, user)?;
    let query = ListQuery::parse(&req.query)?;
    let project = &st.projects[pi];
    let hits = match query.iids() {
        // By iid: straight from the table, not a scan (the benchmark asks this a lot).
        Some(iids) => query.select(iids.iter().filter_map(|iid| project.issues.get(iid))),
        None => query.select(project.issues.values()),
    };
    let url = format!("{}{}", st.base_url, req.path);
    if query.keyset() {
        let (slice, next) = query.keyset_page(&hits);
        let next = super::trapped_cursor(st, next);
        let body: Vec<Value> = slice
            .iter()
            .map(|issue| render::issue(st, project, issue))
            .collect();
        let mut resp = Json(body).into_response();
        query.write_keyset_headers(resp.headers_mut(), &url, &req.query, next);
        return Ok(resp);
    }
    let page = Page {
        page: query.page,
        per_page: query.per_page,
        total: hits.len(),
    };
    if let Some(max) = st.max_offset {
        if (page.page - 1).saturating_mul(page.per_page) > max {
            return Err(ApiError::message(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("Offset pagination has a maximum allowed offset of {max} for requests that return objects of type Issue. Remaining records can be retrieved using keyset pagination."),
            ));
        }
    }
    let body: Vec<Value> = hits[page.range()]
        .iter()
        .map(|issue| render::issue(st, project, issue))
        .collect();
    let mut resp = Json(body).into_response();
    page.write_headers(resp.headers_mut(), &url, &req.query);
    Ok(resp)
}

/// `GET /projects/:id/issues_statistics`: how many issues, by state.
fn issue_statistics(st: &State, user: u64, key: &str) -> Result<Response, ApiError> {
    let (pi, _) = member_project(st, key, user)?;
    let issues = &st.projects[pi].issues;
    let closed = issues
        .values()
        .filter(|i| i.state == super::IssueState::Closed)
        .count();
    Ok(Json(json!({ "statistics": { "counts": {
        "all": issues.len(), "closed": closed, "opened": issues.len() - closed,
    } } }))
    .into_response())
}

fn get_issue(st: &State, user: u64, key: &str, iid: &str) -> Result<Response, ApiError> {
    let (pi, _) = member_project(st, key, user)?;
    let iid = parse_iid(iid)?;
    let project = &st.projects[pi];
    let issue = project
        .issues
        .get(&iid)
        .ok_or_else(ApiError::issue_not_found)?;
    Ok(Json(render::issue(st, project, issue)).into_response())
}

fn create_issue(st: &mut State, user: u64, key: &str, req: &Request) -> Result<Response, ApiError> {
    let (pi, role) = member_project(st, key, user)?;
    let params = req.params()?;
    let mut new = new_issue_from(&params, role)?;
    // Any member may set a new issue's metadata (gitlab#300100), but only Planner and up
    // may create a label on the fly: a Guest's unknown label names are silently dropped.
    new.labels = metadata::creatable_labels(st, pi, role, new.labels);
    let meta = metadata::resolve(st, pi, &params, true, role)?;
    // Same order as GitLab: parameter checks, then the rate limiter, then model validation.
    admit_create(st, user)?;
    validate_text(Some(&new.title), new.description.as_deref())?;
    let iid = st.insert_issue(pi, new, user)?;
    st.apply_new_issue_meta(pi, iid, meta);
    let project = &st.projects[pi];
    let issue = project
        .issues
        .get(&iid)
        .ok_or_else(ApiError::issue_not_found)?;
    Ok((StatusCode::CREATED, Json(render::issue(st, project, issue))).into_response())
}

/// Read a create request, dropping what the caller's role may not set — silently, as GitLab
/// does: the answer is still 201, only the issue differs from the request.
fn new_issue_from(p: &Params, role: Role) -> Result<NewIssue, ApiError> {
    let title = p
        .text("title")?
        .ok_or_else(|| ApiError::bad_request("title is missing"))?;
    if title.is_empty() {
        return Err(ApiError::bad_request("title is empty"));
    }
    let issue_type = issue_type_for(p, role)?.unwrap_or("issue");
    let iid = p.positive_int("iid")?;
    let created_at = p.time("created_at")?;
    let owner = role >= Role::Owner;
    Ok(NewIssue {
        title: title.trim().to_owned(),
        description: p.text("description")?.map(str::to_owned),
        // Metadata of a new issue: any member may set it (filtered in `create_issue`).
        labels: p.labels("labels").unwrap_or_default(),
        issue_type: issue_type.to_owned(),
        iid: iid.filter(|_| owner),
        created_at: created_at.filter(|_| owner),
    })
}

/// `issue_type`, if given and valid. Incidents need Reporter; below that GitLab quietly
/// files a plain issue instead.
fn issue_type_for(p: &Params, role: Role) -> Result<Option<&'static str>, ApiError> {
    let Some(wanted) = p.text("issue_type")? else {
        return Ok(None);
    };
    let known = ISSUE_TYPES
        .iter()
        .find(|t| **t == wanted)
        .ok_or_else(|| ApiError::not_valid("issue_type"))?;
    if *known == "incident" && role < Role::Reporter {
        return Ok(Some("issue"));
    }
    Ok(Some(known))
}

/// Labels are issue "metadata": only Planner and up may set them; a Guest's are dropped.
fn labels_for(p: &Params, key: &str, role: Role) -> Option<Vec<String>> {
    p.labels(key).filter(|_| role >= Role::Planner)
}

/// Title and description limits, in characters (not bytes), as Rails counts them.
fn validate_text(title: Option<&str>, description: Option<&str>) -> Result<(), ApiError> {
    if let Some(title) = title {
        if title.trim().is_empty() {
            return Err(ApiError::validation("title", "can't be blank"));
        }
        if title.trim().chars().count() > MAX_TITLE_CHARS {
            return Err(ApiError::validation(
                "title",
                "is too long (maximum is 255 characters)",
            ));
        }
    }
    if description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS) {
        return Err(ApiError::validation(
            "description",
            "is too long (maximum is 1048576 characters)",
        ));
    }
    Ok(())
}

/// GitLab's per-user create limit (`ApplicationRateLimiter`): a fixed window that opens with
/// the first attempt after the last one expired; every attempt counts, refused ones included.
/// Real time, not the sim clock (tests advance that; a rate limiter cannot be fooled). The 429
/// deliberately has no `Retry-After`.
fn admit_create(st: &mut State, user: u64) -> Result<(), ApiError> {
    let Some(limit) = st.create_limit else {
        return Ok(());
    };
    let window = st.create_window;
    let now = Instant::now();
    let (opened, count) = st.create_windows.entry(user).or_insert((now, 0));
    if now.duration_since(*opened) >= window {
        *opened = now;
        *count = 0;
    }
    *count += 1;
    if *count > limit {
        st.counters.refused_creates += 1;
        return Err(ApiError::create_rate_limited());
    }
    Ok(())
}

/// A validated edit, after role filtering.
#[derive(Debug, Default)]
struct Edit {
    title: Option<String>,
    description: Option<String>,
    state_event: Option<StateEvent>,
    issue_type: Option<&'static str>,
    labels: Option<Vec<String>>,
    add_labels: Option<Vec<String>>,
    remove_labels: Option<Vec<String>>,
    /// Only ever `Some` for an Owner.
    updated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Assignees, milestone and due date, already checked against the project.
    meta: MetaEdit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateEvent {
    Close,
    Reopen,
}

fn edit_from(p: &Params, role: Role) -> Result<Edit, ApiError> {
    if p.is_empty() {
        return Err(ApiError::bad_request(
            "title, description, labels, add_labels, remove_labels, state_event, issue_type, \
             updated_at are missing, at least one parameter must be provided",
        ));
    }
    let state_event = match p.text("state_event")? {
        None => None,
        Some("close") => Some(StateEvent::Close),
        Some("reopen") => Some(StateEvent::Reopen),
        Some(_) => return Err(ApiError::not_valid("state_event")),
    };
    let updated_at = p.time("updated_at")?;
    Ok(Edit {
        title: p.text("title")?.map(|t| t.trim().to_owned()),
        description: p.text("description")?.map(str::to_owned),
        state_event,
        issue_type: issue_type_for(p, role)?,
        labels: labels_for(p, "labels", role),
        add_labels: labels_for(p, "add_labels", role),
        remove_labels: labels_for(p, "remove_labels", role),
        // Like iid and created_at on create: honoured for Owners, silently ignored otherwise.
        updated_at: updated_at.filter(|_| role >= Role::Owner),
        meta: MetaEdit::default(),
    })
}

fn update_issue(
    st: &mut State,
    user: u64,
    key: &str,
    iid: &str,
    req: &Request,
) -> Result<Response, ApiError> {
    let (pi, role) = member_project(st, key, user)?;
    let iid = parse_iid(iid)?;
    let author = st.projects[pi]
        .issues
        .get(&iid)
        .ok_or_else(ApiError::issue_not_found)?
        .author;
    let params = req.params()?;
    let mut edit = edit_from(&params, role)?;
    edit.meta = metadata::resolve(st, pi, &params, false, role)?;
    // Guests may edit only their own issues, and only Planner and up open or close issues.
    if role < Role::Planner && (author != user || edit.state_event.is_some()) {
        return Err(ApiError::forbidden());
    }
    validate_text(edit.title.as_deref(), edit.description.as_deref())?;
    let now = st.now();
    let tier = st.tier;
    let issue = st.projects[pi]
        .issues
        .get_mut(&iid)
        .ok_or_else(ApiError::issue_not_found)?;
    let labels_before = issue.labels.clone();
    let at = apply_edit(issue, edit, user, now, tier);
    st.record_label_changes(pi, iid, user, at, &labels_before);
    // Every save re-checks the VSA stamps, on GitLab's clock (not an Owner's `updated_at`).
    st.restamp(pi, iid);
    let project = &st.projects[pi];
    let issue = project
        .issues
        .get(&iid)
        .ok_or_else(ApiError::issue_not_found)?;
    Ok(Json(render::issue(st, project, issue)).into_response())
}

/// Apply an edit. `updated_at` moves only when something changed (Rails skips no-op saves),
/// or to the Owner-given value. Closing stamps `closed_at` with that value too. Returns the
/// system-note time of the edit (what its label events carry).
fn apply_edit(
    issue: &mut Issue,
    edit: Edit,
    actor: u64,
    now: chrono::DateTime<chrono::Utc>,
    tier: Tier,
) -> chrono::DateTime<chrono::Utc> {
    let before = issue.clone();
    let at = edit.updated_at.unwrap_or(now);
    if let Some(title) = edit.title {
        issue.title = title;
    }
    if let Some(description) = edit.description {
        issue.description = Some(description);
    }
    if let Some(t) = edit.issue_type {
        issue.issue_type = t.to_owned();
    }
    if let Some(labels) = edit.labels {
        issue.labels.clear();
        issue.add_labels(&labels, tier);
    }
    if let Some(labels) = edit.add_labels {
        issue.add_labels(&labels, tier);
    }
    if let Some(labels) = edit.remove_labels {
        issue.remove_labels(&labels);
    }
    edit.meta.apply(issue);
    match edit.state_event {
        Some(StateEvent::Close) => issue.close(at, actor),
        Some(StateEvent::Reopen) => issue.reopen(),
        None => {}
    }
    if *issue != before || edit.updated_at.is_some() {
        issue.updated_at = at;
    }
    at
}

fn delete_issue(st: &mut State, user: u64, key: &str, iid: &str) -> Result<Response, ApiError> {
    let (pi, role) = member_project(st, key, user)?;
    let iid = parse_iid(iid)?;
    if !st.projects[pi].issues.contains_key(&iid) {
        return Err(ApiError::issue_not_found());
    }
    if role < Role::Owner {
        return Err(ApiError::forbidden());
    }
    st.projects[pi].issues.remove(&iid);
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------------------
// Fault answers
// ---------------------------------------------------------------------------------------

/// `{"message": "502 Bad Gateway"}` with that status.
fn status_fault(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = status.canonical_reason().unwrap_or("Error");
    ApiError::message(status, &format!("{} {reason}", status.as_u16())).into_response()
}

fn fault_response(fault: &Fault) -> Response {
    match fault {
        Fault::Status(code) | Fault::CommitThenStatus(code) => status_fault(*code),
        Fault::RateLimited { retry_after } => throttled(retry_after.as_deref()),
        Fault::Html => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html>\n<html><head><title>Sign in · GitLab</title></head>\
             <body><form action=\"/users/sign_in\" method=\"post\"></form></body></html>\n",
        )
            .into_response(),
        Fault::MalformedJson => (
            [(header::CONTENT_TYPE, "application/json")],
            "[{\"id\":1001,\"iid\":1,\"title\":\"trunc",
        )
            .into_response(),
        Fault::Reset => crate::conn::dropped(crate::conn::ConnAction::Reset),
        Fault::Down(d) => crate::conn::dropped(crate::conn::ConnAction::Down(*d)),
        Fault::Answer { status, headers } => crate::with_headers(status_fault(*status), headers),
        Fault::Says { status, message } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST);
            ApiError::message(status, message).into_response()
        }
        // Handled in `answer`/`entry`; kept total so a new variant cannot slip through
        // unanswered.
        Fault::Delay(_)
        | Fault::Hold(_)
        | Fault::CommitThenReset
        | Fault::WithHeaders(_)
        | Fault::Huge { .. } => status_fault(StatusCode::INTERNAL_SERVER_ERROR.as_u16()),
    }
}

/// The general API throttle (Rack::Attack): plain-text body, `Retry-After` when configured,
/// and `RateLimit-*` headers with the reset as epoch seconds of real time.
fn throttled(retry_after: Option<&str>) -> Response {
    let wait = retry_after
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(60);
    let reset = chrono::Utc::now().timestamp() + wait;
    let mut resp = (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONTENT_TYPE, "text/plain")],
        "Retry later\n",
    )
        .into_response();
    let headers = resp.headers_mut();
    if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(header::RETRY_AFTER, v);
    }
    for (name, value) in [
        ("ratelimit-name", "throttle_authenticated_api".to_owned()),
        ("ratelimit-limit", "2000".to_owned()),
        ("ratelimit-observed", "2001".to_owned()),
        ("ratelimit-remaining", "0".to_owned()),
        ("ratelimit-reset", reset.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    resp
}

#[cfg(test)]
mod routing_tests {
    use super::*;

    #[test]
    fn endpoints_accept_encoded_and_plain_project_paths() {
        let e = |p: &str| parse_endpoint(p);
        assert_eq!(e("/api/v4/user"), Endpoint::User);
        assert_eq!(e("/api/v4/projects/4"), Endpoint::Project("4".into()));
        assert_eq!(
            e("/api/v4/projects/acme%2Fplatform/issues"),
            Endpoint::Issues("acme/platform".into())
        );
        assert_eq!(
            e("/api/v4/projects/acme/platform/issues/7"),
            Endpoint::Issue("acme/platform".into(), "7".into())
        );
        assert_eq!(e("/api/v4/projects/"), Endpoint::Unknown);
        assert_eq!(e("/other"), Endpoint::Unknown);
    }
}
