//! Sprints and boards (Jira Software), and the sprint field's values.
//!
//! - The issue's sprint field (see `fields.rs` for its id) holds **every** sprint the issue was
//!   in, closed ones included, in the order they were given (never rely on it). Cloud: objects
//!   `{id, name, state: "future"|"active"|"closed", boardId, goal, startDate, endDate,
//!   completeDate?}` (a future sprint may lack dates; `completeDate` only once closed). Data
//!   Center: strings `com.atlassian.greenhopper.service.sprint.Sprint@1a2b[id=7,rapidViewId=1,
//!   state=ACTIVE,name=...,startDate=...,endDate=...,completeDate=<null>,activatedDate=...,
//!   sequence=7,goal=<null>,synced=false,autoStartStop=false,incompleteIssuesDestinationId=<null>]`
//!   (or, with [`SprintStrings::Legacy`], the old order ending in `id=7` and dates with an
//!   offset). Names may hold `,` and `=`. `null` when the issue was never in a sprint.
//! - **Closing a sprint does not edit the issues that stay in it** (`updated` does not move);
//!   issues carried over to the next sprint get it appended: that is an edit (a Sprint
//!   changelog item, `updated` moves).
//! - `GET /rest/agile/1.0/board?projectKeyOrId=`, `/board/{id}`, `/board/{id}/configuration`
//!   (`columnConfig.columns[] {name, statuses[{id, self}]}` in column order — the workflow order
//!   a non-admin can read), `/board/{id}/sprint?state=future,active,closed` (paged, `isLast`),
//!   `/sprint/{id}`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::http::jira_error;
use super::planning::{page_json, read};
use super::render::{position_id, Ctx};
use super::{lock, FakeJira, Shared};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SprintState {
    Future,
    Active,
    Closed,
}

impl SprintState {
    fn as_str(self) -> &'static str {
        match self {
            SprintState::Future => "future",
            SprintState::Active => "active",
            SprintState::Closed => "closed",
        }
    }
}

/// How Data Center writes sprints into the sprint field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SprintStrings {
    /// Jira 8/9: `[id=...,rapidViewId=...,state=...,name=...,...]`, dates in UTC (`Z`).
    #[default]
    Current,
    /// Jira 6/7: `[rapidViewId=<null>,state=...,name=...,...,id=...]`, dates with an offset.
    Legacy,
}

#[derive(Clone, Debug)]
pub(super) struct Sprint {
    pub(super) id: u64,
    board: u64,
    pub(super) name: String,
    pub(super) state: SprintState,
    goal: Option<String>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    complete: Option<DateTime<Utc>>,
    activated: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub(super) struct Board {
    id: u64,
    project: String,
    name: String,
    /// (column name, status names), in column order.
    columns: Vec<(String, Vec<String>)>,
}

impl super::planning::Planning {
    /// Sprints with that id or name.
    pub(super) fn sprint_ids(&self, value: &str) -> Vec<u64> {
        let id = value.parse::<u64>().ok();
        let hits = self
            .sprints
            .iter()
            .filter(|s| Some(s.id) == id || s.name.eq_ignore_ascii_case(value));
        hits.map(|s| s.id).collect()
    }

    pub(super) fn sprint(&self, id: u64) -> Option<&Sprint> {
        self.sprints.iter().find(|s| s.id == id)
    }
}

fn iso(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        json!(t.to_rfc3339_opts(SecondsFormat::Millis, true))
    })
}

/// The sprint field's value for these sprint ids: objects on Cloud, strings on Data Center.
pub(super) fn sprint_field_value(ctx: &Ctx, ids: &[u64]) -> Value {
    let sprints: Vec<&Sprint> = ids
        .iter()
        .filter_map(|id| ctx.state.planning.sprint(*id))
        .collect();
    if sprints.is_empty() {
        return Value::Null;
    }
    let planning = &ctx.state.planning;
    let values = sprints.iter().map(|s| {
        if !planning.data_center {
            return cloud_sprint(s);
        }
        match planning.sprint_strings {
            SprintStrings::Current => json!(dc_string(s)),
            SprintStrings::Legacy => json!(legacy_string(ctx, s)),
        }
    });
    Value::Array(values.collect())
}

fn cloud_sprint(s: &Sprint) -> Value {
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "state": s.state.as_str(),
        "boardId": s.board,
        "goal": s.goal.clone().unwrap_or_default(),
    });
    for (key, t) in [
        ("startDate", s.start),
        ("endDate", s.end),
        ("completeDate", s.complete),
    ] {
        if t.is_some() {
            v[key] = iso(t);
        }
    }
    v
}

fn dc_value(t: Option<DateTime<Utc>>) -> String {
    t.map_or("<null>".to_owned(), |t| {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    })
}

fn dc_string(s: &Sprint) -> String {
    format!(
        "com.atlassian.greenhopper.service.sprint.Sprint@{:x}[id={},rapidViewId={},state={},name={},\
         startDate={},endDate={},completeDate={},activatedDate={},sequence={},goal={},synced=false,\
         autoStartStop=false,incompleteIssuesDestinationId=<null>]",
        0x5a1c_0de0_u64 + s.id * 7919,
        s.id,
        s.board,
        s.state.as_str().to_uppercase(),
        s.name,
        dc_value(s.start),
        dc_value(s.end),
        dc_value(s.complete),
        dc_value(s.activated),
        s.id,
        s.goal.as_deref().unwrap_or("<null>"),
    )
}

fn legacy_string(ctx: &Ctx, s: &Sprint) -> String {
    let local = |t: Option<DateTime<Utc>>| {
        t.map_or("<null>".to_owned(), |t| {
            t.with_timezone(&ctx.offset)
                .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
                .to_string()
        })
    };
    format!(
        "com.atlassian.greenhopper.service.sprint.Sprint@{:x}[rapidViewId=<null>,state={},name={},\
         startDate={},endDate={},completeDate={},id={}]",
        0xa29f07_u64 + s.id,
        s.state.as_str().to_uppercase(),
        s.name,
        local(s.start),
        local(s.end),
        local(s.complete),
        s.id,
    )
}

/// A sprint as the agile API shows it.
fn agile_sprint(ctx: &Ctx, s: &Sprint) -> Value {
    let mut v = json!({
        "id": s.id,
        "self": format!("{}/rest/agile/1.0/sprint/{}", ctx.base, s.id),
        "state": s.state.as_str(),
        "name": s.name,
        "originBoardId": s.board,
        "goal": s.goal.clone().unwrap_or_default(),
    });
    let dates = [
        ("startDate", s.start),
        ("endDate", s.end),
        ("completeDate", s.complete),
        ("activatedDate", s.activated),
    ];
    for (key, t) in dates {
        if t.is_some() {
            v[key] = iso(t);
        }
    }
    v
}

fn board_json(ctx: &Ctx, b: &Board) -> Value {
    let project = ctx.state.project(&b.project);
    json!({
        "id": b.id,
        "self": format!("{}/rest/agile/1.0/board/{}", ctx.base, b.id),
        "name": b.name,
        "type": "scrum",
        "location": {
            "projectId": project.map(|p| p.id),
            "projectKey": b.project,
            "projectName": project.map(|p| p.name.clone()),
            "displayName": format!("{} ({})", project.map_or("", |p| p.name.as_str()), b.project),
        },
    })
}

fn find_board<'a>(ctx: &'a Ctx, id: &str) -> Option<&'a Board> {
    let id: Option<u64> = id.parse().ok();
    ctx.state.planning.boards.iter().find(|b| Some(b.id) == id)
}

fn no_board() -> Response {
    jira_error(
        StatusCode::NOT_FOUND,
        "The requested board cannot be viewed because it either does not exist or you do not \
         have permission to view it.",
    )
}

/// `GET /rest/agile/1.0/board?projectKeyOrId=`.
pub(super) async fn list_boards(
    State(s): State<Arc<Shared>>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    read(&s, "agile", &headers, |ctx| {
        let project = q
            .iter()
            .find(|(k, _)| k == "projectKeyOrId")
            .map(|(_, v)| v.as_str());
        let wanted = project.and_then(|p| ctx.state.project(p).map(|p| p.key.clone()));
        let boards = ctx.state.planning.boards.iter();
        let all = boards
            .filter(|b| project.is_none() || wanted.as_deref() == Some(b.project.as_str()))
            .map(|b| board_json(ctx, b))
            .collect();
        Json(page_json(&q, all, true)).into_response()
    })
    .await
}

/// `GET /rest/agile/1.0/board/{id}`.
pub(super) async fn get_board(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    read(&s, "agile", &headers, |ctx| match find_board(ctx, &id) {
        Some(b) => Json(board_json(ctx, b)).into_response(),
        None => no_board(),
    })
    .await
}

/// `GET /rest/agile/1.0/board/{id}/configuration`: the columns, in order.
pub(super) async fn board_configuration(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    read(&s, "agile", &headers, |ctx| {
        let Some(b) = find_board(ctx, &id) else {
            return no_board();
        };
        let columns: Vec<Value> = b
            .columns
            .iter()
            .map(|(name, statuses)| {
                let statuses: Vec<Value> = statuses
                    .iter()
                    .map(|st| {
                        let id = position_id(&ctx.state.statuses, st);
                        json!({"id": id, "self": format!("{}/rest/api/2/status/{id}", ctx.base)})
                    })
                    .collect();
                json!({"name": name, "statuses": statuses})
            })
            .collect();
        let filter = 10_000 + b.id;
        let body = json!({
            "id": b.id,
            "name": b.name,
            "self": format!("{}/rest/agile/1.0/board/{}/configuration", ctx.base, b.id),
            "location": {"type": "project", "key": b.project},
            "filter": {"id": filter.to_string(),
                       "self": format!("{}/rest/api/2/filter/{filter}", ctx.base)},
            "columnConfig": {"columns": columns, "constraintType": "issueCount"},
            "estimation": {"type": "field",
                           "field": {"fieldId": "customfield_10016", "displayName": "Story Points"}},
            "ranking": {"rankCustomFieldId": 10019},
        });
        let padding = super::lock(&s.hostile).board_config_padding;
        if padding > 0 {
            return super::hostile::padded_object(&s, &body, padding);
        }
        Json(body).into_response()
    })
    .await
}

/// `GET /rest/agile/1.0/board/{id}/sprint?state=`.
pub(super) async fn board_sprints(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    read(&s, "agile", &headers, |ctx| {
        let Some(b) = find_board(ctx, &id) else {
            return no_board();
        };
        let states: Vec<String> = q
            .iter()
            .filter(|(k, _)| k == "state")
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_lowercase()))
            .collect();
        let sprints = ctx.state.planning.sprints.iter();
        let all = sprints
            .filter(|sp| sp.board == b.id)
            .filter(|sp| states.is_empty() || states.iter().any(|st| st == sp.state.as_str()))
            .map(|sp| agile_sprint(ctx, sp))
            .collect();
        Json(page_json(&q, all, false)).into_response()
    })
    .await
}

/// `GET /rest/agile/1.0/sprint/{id}`.
pub(super) async fn get_sprint(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    read(&s, "agile", &headers, |ctx| {
        let found = id.parse().ok().and_then(|id| ctx.state.planning.sprint(id));
        match found {
            Some(sp) => Json(agile_sprint(ctx, sp)).into_response(),
            None => jira_error(
                StatusCode::NOT_FOUND,
                "Sprint does not exist or you do not have permission to view it.",
            ),
        }
    })
    .await
}

impl FakeJira {
    /// Add a scrum board on a project with these columns (name, statuses), in order; returns
    /// its id. The statuses become known to the site.
    pub fn add_board(&self, project: &str, name: &str, columns: &[(&str, &[&str])]) -> u64 {
        let mut st = lock(&self.shared.state);
        let key = st
            .project(project)
            .map(|p| p.key.clone())
            .unwrap_or_else(|| panic!("fake Jira has no project {project}"));
        for (_, statuses) in columns {
            for status in *statuses {
                super::State::remember(&mut st.statuses, status);
            }
        }
        let id = st.planning.boards.len() as u64 + 1;
        st.planning.boards.push(Board {
            id,
            project: key,
            name: name.to_owned(),
            columns: columns
                .iter()
                .map(|(c, s)| (c.to_string(), s.iter().map(|s| s.to_string()).collect()))
                .collect(),
        });
        id
    }

    /// Add a future sprint (no dates) to a board; returns its id.
    pub fn add_sprint(&self, board: u64, name: &str) -> u64 {
        let mut st = lock(&self.shared.state);
        let id = st.planning.sprints.len() as u64 + 1;
        st.planning.sprints.push(Sprint {
            id,
            board,
            name: name.to_owned(),
            state: SprintState::Future,
            goal: None,
            start: None,
            end: None,
            complete: None,
            activated: None,
        });
        id
    }

    /// Start a sprint with its planned dates (activated now).
    pub fn start_sprint(&self, id: u64, start: DateTime<Utc>, end: DateTime<Utc>) {
        let now = self.now();
        self.edit_sprint(id, |s| {
            (s.state, s.start, s.end, s.activated) =
                (SprintState::Active, Some(start), Some(end), Some(now));
        });
    }

    pub fn set_sprint_goal(&self, id: u64, goal: Option<&str>) {
        self.edit_sprint(id, |s| s.goal = goal.map(str::to_owned));
    }

    /// Close a sprint now. Its issues are not edited — except those not done, which get
    /// `carry_to` added to their sprints when given (an edit, as in Jira).
    pub fn close_sprint(&self, id: u64, carry_to: Option<u64>) {
        let now = self.now();
        self.edit_sprint(id, |s| {
            (s.state, s.complete) = (SprintState::Closed, Some(now))
        });
        let Some(next) = carry_to else {
            return;
        };
        let open: Vec<u64> = {
            let st = lock(&self.shared.state);
            st.issues
                .iter()
                .filter_map(|(n, r)| r.latest().map(|d| (n, d)))
                .filter(|(_, d)| d.plan.sprints.contains(&id) && d.category != "done")
                .map(|(n, _)| *n)
                .collect()
        };
        for n in open {
            self.mutate(&n.to_string(), |_, d| {
                if !d.plan.sprints.contains(&next) {
                    d.plan.sprints.push(next);
                }
            });
        }
    }

    /// Data Center only: which string form the sprint field uses.
    pub fn set_sprint_strings(&self, style: SprintStrings) {
        lock(&self.shared.state).planning.sprint_strings = style;
    }

    pub fn sprint_state(&self, id: u64) -> Option<SprintState> {
        lock(&self.shared.state)
            .planning
            .sprint(id)
            .map(|s| s.state)
    }

    fn edit_sprint(&self, id: u64, edit: impl FnOnce(&mut Sprint)) {
        let mut st = lock(&self.shared.state);
        let s = st
            .planning
            .sprints
            .iter_mut()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("fake Jira has no sprint {id}"));
        edit(s);
    }
}
