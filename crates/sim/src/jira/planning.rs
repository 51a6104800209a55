//! Issue 17's additions to the fake Jira, in one state struct and one router: people, versions
//! and components, sprints and agile boards, workflows, and the field catalogue. Each lives in
//! its own module (`people.rs`, `versions.rs`, `agile.rs`, `workflow.rs`, `fields.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::agile::{self, Board, Sprint, SprintStrings};
use super::http::{guarded, known_api, not_found};
use super::people::{self, Person};
use super::render::Ctx;
use super::versions::{self, Component, Version};
use super::{fields, lock, workflow, Route, Shared};

#[derive(Default)]
pub(super) struct Planning {
    /// Data Center renders people by name and key, and sprints as strings.
    pub(super) data_center: bool,
    pub(super) people: Vec<Person>,
    pub(super) versions: Vec<Version>,
    pub(super) components: Vec<Component>,
    pub(super) sprints: Vec<Sprint>,
    pub(super) boards: Vec<Board>,
    pub(super) sprint_strings: SprintStrings,
    /// Custom fields added by tests, after the site's usual ones.
    pub(super) custom_fields: Vec<fields::CustomField>,
    /// Where sprints are rendered; `None`: `customfield_10020`.
    pub(super) sprint_field: Option<String>,
    /// Project key → its workflow's statuses with their categories, in workflow order.
    pub(super) workflows: BTreeMap<String, Vec<(String, String)>>,
    /// (project key, issue type) → a workflow for that type only.
    pub(super) type_workflows: BTreeMap<(String, String), Vec<(String, String)>>,
    /// Priorities set on issues beyond the usual five.
    pub(super) priorities: Vec<String>,
    /// Ids for versions and components.
    last_id: u64,
}

impl Planning {
    pub(super) fn next_id(&mut self) -> u64 {
        self.last_id = self.last_id.max(10_000) + 1;
        self.last_id
    }

    pub(super) fn sprint_field_id(&self) -> String {
        self.sprint_field
            .clone()
            .unwrap_or_else(|| fields::SPRINT_FIELD.to_owned())
    }
}

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/rest/api/{v}/field", get(fields::list_fields))
        .route("/rest/api/{v}/user", get(people::get_user))
        .route(
            "/rest/api/{v}/user/assignable/search",
            get(people::assignable),
        )
        .route(
            "/rest/api/{v}/project/{key}/versions",
            get(versions::list_versions),
        )
        .route(
            "/rest/api/{v}/project/{key}/version",
            get(versions::page_versions),
        )
        .route(
            "/rest/api/{v}/project/{key}/components",
            get(versions::list_components),
        )
        .route("/rest/api/{v}/version/{id}", get(versions::get_version))
        .route(
            "/rest/api/{v}/project/{key}/statuses",
            get(workflow::project_statuses),
        )
        .route(
            "/rest/api/{v}/workflow/search",
            get(workflow::search_workflows),
        )
        .route("/rest/agile/1.0/board", get(agile::list_boards))
        .route("/rest/agile/1.0/board/{id}", get(agile::get_board))
        .route(
            "/rest/agile/1.0/board/{id}/configuration",
            get(agile::board_configuration),
        )
        .route(
            "/rest/agile/1.0/board/{id}/sprint",
            get(agile::board_sprints),
        )
        .route("/rest/agile/1.0/sprint/{id}", get(agile::get_sprint))
}

/// One page of a `startAt`/`maxResults` list (at most 50 a page), with `isLast`, and `total`
/// when the endpoint reports one.
pub(super) fn page_json(q: &[(String, String)], items: Vec<Value>, with_total: bool) -> Value {
    let number = |k: &str, d: usize| {
        let v = q
            .iter()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.parse().ok());
        v.unwrap_or(d)
    };
    let (start, max) = (number("startAt", 0), number("maxResults", 50).clamp(1, 50));
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start).take(max).collect();
    let is_last = start + page.len() >= total;
    let mut body = json!({"maxResults": max, "startAt": start, "isLast": is_last, "values": page});
    if with_total {
        body["total"] = json!(total);
    }
    body
}

/// A read about one project: a 404 naming the key when there is no such project.
pub(super) async fn read_project(
    s: &Shared,
    v: &str,
    key: &str,
    headers: &HeaderMap,
    handle: impl FnOnce(&Ctx, &super::Project) -> Response,
) -> Response {
    read(s, v, headers, |ctx| match ctx.state.project(key) {
        Some(p) => handle(ctx, p),
        None => super::versions::no_project(key),
    })
    .await
}

/// A read: known API version, auth and faults (`Route::Read`), then `handle` with the state.
/// Agile routes pass `"agile"` as the version.
pub(super) async fn read(
    s: &Shared,
    v: &str,
    headers: &HeaderMap,
    handle: impl FnOnce(&Ctx) -> Response,
) -> Response {
    if v != "agile" && !known_api(v) {
        return not_found();
    }
    guarded(s, headers, Some(Route::Read), || {
        let st = lock(&s.state);
        let ctx = Ctx {
            base: s.base_url(),
            api: if v == "agile" { "2" } else { v },
            offset: s.opts.utc_offset,
            state: &st,
        };
        handle(&ctx)
    })
    .await
}

#[cfg(test)]
mod tests;
