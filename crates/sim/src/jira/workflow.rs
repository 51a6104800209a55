//! A project's workflow statuses, as a non-administrator can (and cannot) read them.
//!
//! - `GET /rest/api/{v}/project/{key}/statuses` (v2 on Data Center, same shape): one entry per
//!   issue type, each with its workflow's statuses and their `statusCategory`. The statuses are
//!   listed **by status id, not in workflow order** (Jira documents no order), so the same
//!   status repeats across types and a client must deduplicate by id.
//! - The workflow order a non-admin can read is a board's columns (see `agile.rs`).
//! - `GET /rest/api/{v}/workflow/search`: 403 "Only Jira administrators can access workflows."
//!   unless the account is an administrator; administrators get each project's workflow
//!   statuses (transitions are not modelled).
//! - A project without a workflow set uses To Do, In Progress, Done plus any status its issues
//!   have been moved to.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::http::jira_error;
use super::planning::{read, read_project};
use super::render::{category_info, position_id, Ctx};
use super::{lock, FakeJira, Shared, State as JiraState};

const DEFAULT_WORKFLOW: [(&str, &str); 3] = [
    ("To Do", "new"),
    ("In Progress", "indeterminate"),
    ("Done", "done"),
];

impl FakeJira {
    /// Set a project's workflow: its statuses and their categories (`new`, `indeterminate`,
    /// `done`), in workflow order. The statuses become known to the site (and to JQL).
    pub fn set_workflow(&self, project: &str, statuses: &[(&str, &str)]) {
        let mut st = lock(&self.shared.state);
        let key = project_key(&st, project);
        let list = remember(&mut st, statuses);
        st.planning.workflows.insert(key, list);
    }

    /// Give one issue type of a project its own workflow.
    pub fn set_issue_type_workflow(
        &self,
        project: &str,
        issue_type: &str,
        statuses: &[(&str, &str)],
    ) {
        let mut st = lock(&self.shared.state);
        let key = project_key(&st, project);
        JiraState::remember(&mut st.issue_types, issue_type);
        let list = remember(&mut st, statuses);
        st.planning
            .type_workflows
            .insert((key, issue_type.to_lowercase()), list);
    }
}

fn project_key(st: &JiraState, project: &str) -> String {
    st.project(project)
        .map(|p| p.key.clone())
        .unwrap_or_else(|| panic!("fake Jira has no project {project}"))
}

fn remember(st: &mut JiraState, statuses: &[(&str, &str)]) -> Vec<(String, String)> {
    for (name, _) in statuses {
        JiraState::remember(&mut st.statuses, name);
    }
    statuses
        .iter()
        .map(|(n, c)| (n.to_string(), c.to_string()))
        .collect()
}

/// The statuses of a project's workflow for one issue type, in workflow order.
fn workflow_of(st: &JiraState, project: &str, issue_type: &str) -> Vec<(String, String)> {
    let planning = &st.planning;
    if let Some(w) = planning
        .type_workflows
        .get(&(project.to_owned(), issue_type.to_lowercase()))
    {
        return w.clone();
    }
    if let Some(w) = planning.workflows.get(project) {
        return w.clone();
    }
    let mut list: Vec<(String, String)> = DEFAULT_WORKFLOW
        .iter()
        .map(|(n, c)| (n.to_string(), c.to_string()))
        .collect();
    let used = st
        .issues
        .values()
        .filter_map(|r| r.latest())
        .filter(|d| d.project == project);
    for d in used {
        if !list.iter().any(|(n, _)| n.eq_ignore_ascii_case(&d.status)) {
            list.push((d.status.clone(), d.category.clone()));
        }
    }
    list
}

fn status_json(ctx: &Ctx, name: &str, category: &str) -> Value {
    let id = position_id(&ctx.state.statuses, name);
    let (cat_id, color, cat_name) = category_info(category);
    json!({
        "self": ctx.link(&format!("status/{id}")),
        "description": "",
        "iconUrl": format!("{}/images/icons/statuses/generic.png", ctx.base),
        "name": name,
        "untranslatedName": name,
        "id": id,
        "statusCategory": {
            "self": ctx.link(&format!("statuscategory/{cat_id}")),
            "id": cat_id, "key": category, "colorName": color, "name": cat_name,
        },
    })
}

/// A workflow's statuses as JSON, ordered by status id.
fn statuses_by_id(ctx: &Ctx, workflow: &[(String, String)]) -> Vec<Value> {
    let mut list: Vec<&(String, String)> = workflow.iter().collect();
    list.sort_by_key(|(n, _)| {
        position_id(&ctx.state.statuses, n)
            .parse::<u64>()
            .unwrap_or(0)
    });
    list.iter().map(|(n, c)| status_json(ctx, n, c)).collect()
}

/// `GET /rest/api/{v}/project/{key}/statuses`.
pub(super) async fn project_statuses(
    State(s): State<Arc<Shared>>,
    Path((v, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    read_project(&s, &v, &key, &headers, |ctx, project| {
        let types: Vec<Value> = ctx
            .state
            .issue_types
            .iter()
            .map(|t| {
                let id = position_id(&ctx.state.issue_types, t);
                let workflow = workflow_of(ctx.state, &project.key, t);
                json!({"self": ctx.link(&format!("issuetype/{id}")), "id": id, "name": t,
                       "subtask": t.eq_ignore_ascii_case("subtask"),
                       "statuses": statuses_by_id(ctx, &workflow)})
            })
            .collect();
        Json(types).into_response()
    })
    .await
}

/// `GET /rest/api/{v}/workflow/search`: administrators only.
pub(super) async fn search_workflows(
    State(s): State<Arc<Shared>>,
    Path(v): Path<String>,
    headers: HeaderMap,
) -> Response {
    let admin = s.opts.admin;
    read(&s, &v, &headers, |ctx| {
        if !admin {
            let only_admins = "Only Jira administrators can access workflows.";
            return jira_error(StatusCode::FORBIDDEN, only_admins);
        }
        let values: Vec<Value> = ctx
            .state
            .projects
            .iter()
            .map(|p| {
                let workflow = workflow_of(ctx.state, &p.key, "");
                json!({"id": {"name": format!("{} workflow", p.key)}, "description": "",
                       "statuses": statuses_by_id(ctx, &workflow), "transitions": []})
            })
            .collect();
        let total = values.len();
        let body = json!({"maxResults": 50, "startAt": 0, "total": total, "isLast": true,
                          "values": values});
        Json(body).into_response()
    })
    .await
}
