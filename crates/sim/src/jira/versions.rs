//! Project versions ("fix versions") and components.
//!
//! - `GET /rest/api/{v}/project/{key}/versions`: every version, in sequence (UI) order, not
//!   paged. `GET .../project/{key}/version?startAt&maxResults&orderBy&status&query`: paged
//!   (`orderBy` `sequence`|`name`|`releaseDate`|`startDate`, `-` for descending; `status`
//!   `released,unreleased,archived`). `GET /rest/api/{v}/version/{id}`. Dates are `yyyy-mm-dd`.
//! - The issue field `fixVersions` shows `id, name, description, archived, released` and
//!   `releaseDate` when set (no `startDate`: UNVERIFIED whether Jira shows it there).
//! - **Releasing or archiving a version does not edit its issues**: their `updated` stays, so a
//!   poller watching `updated` never sees it — only their rendered `released` flag changes.
//! - `GET /rest/api/{v}/project/{key}/components`; components are made on first use.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde_json::{json, Value};

use super::http::jira_error;
use super::planning::{page_json, read, read_project, Planning};
use super::render::Ctx;
use super::{lock, FakeJira, Shared};

#[derive(Clone, Debug)]
pub(super) struct Version {
    pub(super) id: u64,
    pub(super) project: String,
    pub(super) name: String,
    description: String,
    archived: bool,
    released: bool,
    release_date: Option<NaiveDate>,
    start_date: Option<NaiveDate>,
}

#[derive(Clone, Debug)]
pub(super) struct Component {
    pub(super) id: u64,
    pub(super) project: String,
    pub(super) name: String,
}

/// What a test sees of a version.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionSnapshot {
    pub id: String,
    pub name: String,
    pub released: bool,
    pub archived: bool,
    pub start_date: Option<NaiveDate>,
    pub release_date: Option<NaiveDate>,
}

impl Planning {
    /// Versions named `value` (in any project) or with that id.
    pub(super) fn version_ids(&self, value: &str) -> Vec<u64> {
        let id = value.parse::<u64>().ok();
        let hits = self
            .versions
            .iter()
            .filter(|v| Some(v.id) == id || v.name.eq_ignore_ascii_case(value));
        hits.map(|v| v.id).collect()
    }

    pub(super) fn version(&self, id: u64) -> Option<&Version> {
        self.versions.iter().find(|v| v.id == id)
    }

    pub(super) fn component_exists(&self, name: &str) -> bool {
        self.components
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The component of that name in `project`, made if missing; returns its id.
    pub(super) fn component(&mut self, project: &str, name: &str) -> u64 {
        let found = self
            .components
            .iter()
            .find(|c| c.project == project && c.name == name);
        if let Some(c) = found {
            return c.id;
        }
        let id = self.next_id();
        self.components.push(Component {
            id,
            project: project.to_owned(),
            name: name.to_owned(),
        });
        id
    }
}

/// The short form issues carry in `fixVersions`.
pub(super) fn issue_version_json(ctx: &Ctx, v: &Version) -> Value {
    let mut body = json!({
        "self": format!("{}/rest/api/{}/version/{}", ctx.base, ctx.api, v.id),
        "id": v.id.to_string(),
        "description": v.description,
        "name": v.name,
        "archived": v.archived,
        "released": v.released,
    });
    if let Some(d) = v.release_date {
        body["releaseDate"] = json!(d.to_string());
    }
    body
}

/// The full `Version` of the versions endpoints.
fn version_json(ctx: &Ctx, v: &Version, today: NaiveDate) -> Value {
    let mut body = issue_version_json(ctx, v);
    let project_id = ctx.state.project(&v.project).map(|p| p.id);
    body["projectId"] = json!(project_id);
    let user_date = |d: NaiveDate| d.format("%-d/%b/%y").to_string();
    if let Some(d) = v.start_date {
        body["startDate"] = json!(d.to_string());
        body["userStartDate"] = json!(user_date(d));
    }
    if let Some(d) = v.release_date {
        body["userReleaseDate"] = json!(user_date(d));
        body["overdue"] = json!(!v.released && d < today);
    }
    body
}

/// Today on the sim clock, in the account's zone (for `overdue`).
fn today(s: &Shared) -> NaiveDate {
    s.opts
        .clock
        .now()
        .with_timezone(&s.opts.utc_offset)
        .date_naive()
}

pub(super) fn no_project(key: &str) -> Response {
    jira_error(
        StatusCode::NOT_FOUND,
        &format!("No project could be found with key '{key}'."),
    )
}

/// The project's versions in sequence order.
fn project_versions<'a>(ctx: &'a Ctx, project: &super::Project) -> Vec<&'a Version> {
    let all = ctx.state.planning.versions.iter();
    all.filter(|v| v.project == project.key).collect()
}

/// `GET /rest/api/{v}/project/{key}/versions`.
pub(super) async fn list_versions(
    State(s): State<Arc<Shared>>,
    Path((v, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let today = today(&s);
    s.version_lists
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    read_project(&s, &v, &key, &headers, |ctx, project| {
        let list = project_versions(ctx, project);
        let body: Vec<Value> = list.iter().map(|v| version_json(ctx, v, today)).collect();
        Json(body).into_response()
    })
    .await
}

/// `GET /rest/api/{v}/project/{key}/version`: the paged form.
pub(super) async fn page_versions(
    State(s): State<Arc<Shared>>,
    Path((v, key)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let today = today(&s);
    read_project(&s, &v, &key, &headers, |ctx, project| {
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let list = filtered_versions(project_versions(ctx, project), &get);
        let all = list.iter().map(|v| version_json(ctx, v, today)).collect();
        Json(page_json(&q, all, true)).into_response()
    })
    .await
}

/// `status`, `query` and `orderBy` of the paged versions endpoint.
fn filtered_versions<'a>(
    mut list: Vec<&'a Version>,
    get: &dyn Fn(&str) -> Option<&'a str>,
) -> Vec<&'a Version> {
    if let Some(status) = get("status") {
        list.retain(|v| status.split(',').any(|s| status_matches(v, s.trim())));
    }
    if let Some(text) = get("query").map(str::to_lowercase) {
        let has = |s: &str| s.to_lowercase().contains(&text);
        list.retain(|v| has(&v.name) || has(&v.description));
    }
    let order = get("orderBy").unwrap_or("sequence");
    let (desc, by) = match order.strip_prefix('-') {
        Some(by) => (true, by),
        None => (false, order.trim_start_matches('+')),
    };
    match by {
        "name" => list.sort_by_key(|v| v.name.to_lowercase()),
        "releaseDate" => list.sort_by_key(|v| (v.release_date.is_none(), v.release_date)),
        "startDate" => list.sort_by_key(|v| (v.start_date.is_none(), v.start_date)),
        _ => {}
    }
    if desc {
        list.reverse();
    }
    list
}

fn status_matches(v: &Version, status: &str) -> bool {
    match status {
        "released" => v.released && !v.archived,
        "unreleased" => !v.released && !v.archived,
        "archived" => v.archived,
        _ => false,
    }
}

/// `GET /rest/api/{v}/version/{id}`.
pub(super) async fn get_version(
    State(s): State<Arc<Shared>>,
    Path((v, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let today = today(&s);
    read(&s, &v, &headers, |ctx| {
        let found = id
            .parse()
            .ok()
            .and_then(|id| ctx.state.planning.version(id));
        match found {
            Some(version) => Json(version_json(ctx, version, today)).into_response(),
            None => jira_error(
                StatusCode::NOT_FOUND,
                &format!("Could not find version for id '{id}'"),
            ),
        }
    })
    .await
}

/// `GET /rest/api/{v}/project/{key}/components`.
pub(super) async fn list_components(
    State(s): State<Arc<Shared>>,
    Path((v, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    read_project(&s, &v, &key, &headers, |ctx, project| {
        let body: Vec<Value> = ctx
            .state
            .planning
            .components
            .iter()
            .filter(|c| c.project == project.key)
            .map(|c| component_json(ctx, c))
            .collect();
        Json(body).into_response()
    })
    .await
}

pub(super) fn component_json(ctx: &Ctx, c: &Component) -> Value {
    json!({
        "self": format!("{}/rest/api/{}/component/{}", ctx.base, ctx.api, c.id),
        "id": c.id.to_string(),
        "name": c.name,
    })
}

impl FakeJira {
    /// Add an unreleased version to a project; returns its id.
    pub fn add_version(
        &self,
        project: &str,
        name: &str,
        start: Option<NaiveDate>,
        release: Option<NaiveDate>,
    ) -> String {
        let mut st = lock(&self.shared.state);
        let project = st
            .project(project)
            .map(|p| p.key.clone())
            .unwrap_or_else(|| panic!("fake Jira has no project {project}"));
        let id = st.planning.next_id();
        st.planning.versions.push(Version {
            id,
            project,
            name: name.to_owned(),
            description: String::new(),
            archived: false,
            released: false,
            release_date: release,
            start_date: start,
        });
        id.to_string()
    }

    /// Release a version (its release date becomes `on`, else stays, else today). Its issues
    /// are not edited.
    pub fn release_version(&self, id: &str, on: Option<NaiveDate>) {
        let today = self
            .now()
            .with_timezone(&self.shared.opts.utc_offset)
            .date_naive();
        self.edit_version(id, |v| {
            v.released = true;
            v.release_date = on.or(v.release_date).or(Some(today));
        });
    }

    /// Archive a version. Its issues are not edited.
    pub fn archive_version(&self, id: &str) {
        self.edit_version(id, |v| v.archived = true);
    }

    /// A project's versions in sequence order.
    pub fn versions(&self, project: &str) -> Vec<VersionSnapshot> {
        let st = lock(&self.shared.state);
        let key = st
            .project(project)
            .map(|p| p.key.clone())
            .unwrap_or_default();
        let own = st.planning.versions.iter().filter(|v| v.project == key);
        own.map(|v| VersionSnapshot {
            id: v.id.to_string(),
            name: v.name.clone(),
            released: v.released,
            archived: v.archived,
            start_date: v.start_date,
            release_date: v.release_date,
        })
        .collect()
    }

    fn edit_version(&self, id: &str, edit: impl FnOnce(&mut Version)) {
        let mut st = lock(&self.shared.state);
        let v = st
            .planning
            .versions
            .iter_mut()
            .find(|v| v.id.to_string() == id)
            .unwrap_or_else(|| panic!("fake Jira has no version {id}"));
        edit(v);
    }
}
