//! Labels as GitLab keeps them: project labels and group labels (a project sees its group's),
//! created on first use when an issue gets an unknown name, or through the labels APIs by a
//! role that may manage them; and the resource label events every change leaves, stamped with
//! the issue's system-note time (an Owner's `created_at` or `updated_at`, else now).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::api::{member_project, parse_iid, ApiError, Request};
use super::list::{page_of, paged, Page};
use super::params::{last, query_pairs};
use super::{render, Label, LabelEvent, Role, State};

/// The colour GitLab gives a label it creates on first use.
const DEFAULT_COLOR: &str = "#6699cc";

impl State {
    /// The labels a project can use: its own, then its group's and that group's ancestors'.
    pub(super) fn visible_labels(&self, project: usize) -> impl Iterator<Item = &Label> {
        let groups = self.group_chain(project);
        self.projects[project].labels.iter().chain(
            groups
                .into_iter()
                .flat_map(|g| self.groups[g].labels.iter()),
        )
    }

    pub(super) fn label_named(&self, project: usize, name: &str) -> Option<Label> {
        self.visible_labels(project)
            .find(|l| l.name == name)
            .cloned()
    }

    pub(super) fn new_label(
        &mut self,
        name: &str,
        color: &str,
        description: Option<String>,
    ) -> Label {
        self.next_label_id += 1;
        Label {
            id: self.next_label_id,
            name: name.to_owned(),
            color: color.to_owned(),
            description,
        }
    }

    /// Record the label events of an issue whose labels were `before` (GitLab creates a
    /// project label for a name nobody defined yet).
    pub(super) fn record_label_changes(
        &mut self,
        project: usize,
        iid: u64,
        user: u64,
        at: DateTime<Utc>,
        before: &[String],
    ) {
        let Some(after) = self.projects[project]
            .issues
            .get(&iid)
            .map(|i| i.labels.clone())
        else {
            return;
        };
        let mut events = Vec::new();
        for name in after.iter().filter(|l| !before.contains(l)) {
            let label = match self.label_named(project, name) {
                Some(l) => l,
                None => {
                    let l = self.new_label(name, DEFAULT_COLOR, None);
                    self.projects[project].labels.push(l.clone());
                    l
                }
            };
            events.push((label, true));
        }
        for name in before.iter().filter(|l| !after.contains(l)) {
            let label = self
                .label_named(project, name)
                .unwrap_or_else(|| self.new_label(name, DEFAULT_COLOR, None));
            events.push((label, false));
        }
        for (label, add) in events {
            self.next_event_id += 1;
            let event = LabelEvent {
                id: self.next_event_id,
                user,
                created_at: at,
                label,
                add,
            };
            if let Some(issue) = self.projects[project].issues.get_mut(&iid) {
                issue.label_events.push(event);
            }
        }
    }
}

/// `GET /projects/:id/labels`: the project's labels and (unless
/// `include_ancestor_groups=false`) its group's, paged.
pub(super) fn list_project_labels(
    st: &State,
    user: u64,
    key: &str,
    req: &Request,
) -> Result<Response, ApiError> {
    let (pi, _) = member_project(st, key, user)?;
    let pairs = query_pairs(&req.query);
    let with_group = last(&pairs, "include_ancestor_groups") != Some("false");
    let labels: Vec<&Label> = if with_group {
        st.visible_labels(pi).collect()
    } else {
        st.projects[pi].labels.iter().collect()
    };
    let project_ids: Vec<u64> = st.projects[pi].labels.iter().map(|l| l.id).collect();
    let page = page_of(&pairs, labels.len())?;
    let body: Vec<Value> = labels[page.range()]
        .iter()
        .map(|l| label_json(l, project_ids.contains(&l.id)))
        .collect();
    paged(st, req, page, body)
}

/// `POST /projects/:id/labels` (`name`, `color`, `description`): Planner and up.
pub(super) fn create_project_label(
    st: &mut State,
    user: u64,
    key: &str,
    req: &Request,
) -> Result<Response, ApiError> {
    let (pi, role) = member_project(st, key, user)?;
    if role < Role::Planner {
        return Err(ApiError::forbidden());
    }
    let (name, color, description) = label_params(req)?;
    if st.label_named(pi, &name).is_some() {
        return Err(ApiError::label_exists());
    }
    let label = st.new_label(&name, &color, description);
    st.projects[pi].labels.push(label.clone());
    Ok((StatusCode::CREATED, Json(label_json(&label, true))).into_response())
}

/// `POST /groups/:id/labels`: needs Planner or up *in the group* (a project role is not
/// enough), or an administrator. A group the user cannot see is a 404.
pub(super) fn create_group_label(
    st: &mut State,
    user: u64,
    key: &str,
    req: &Request,
) -> Result<Response, ApiError> {
    let gi = st
        .groups
        .iter()
        .position(|g| g.path.eq_ignore_ascii_case(key) || g.id.to_string() == key)
        .ok_or_else(ApiError::group_not_found)?;
    let is_admin = st.user(user).is_some_and(|u| u.admin);
    let group_role = st.groups[gi].members.get(&user).copied();
    let sees_group = is_admin
        || group_role.is_some()
        || st
            .projects
            .iter()
            .any(|p| p.group == Some(gi) && p.members.contains_key(&user));
    if !sees_group {
        return Err(ApiError::group_not_found());
    }
    if !is_admin && group_role.is_none_or(|r| r < Role::Planner) {
        return Err(ApiError::forbidden());
    }
    let (name, color, description) = label_params(req)?;
    if st.groups[gi].labels.iter().any(|l| l.name == name) {
        return Err(ApiError::label_exists());
    }
    let label = st.new_label(&name, &color, description);
    st.groups[gi].labels.push(label.clone());
    Ok((StatusCode::CREATED, Json(label_json(&label, false))).into_response())
}

fn label_params(req: &Request) -> Result<(String, String, Option<String>), ApiError> {
    let p = req.params()?;
    let name = p
        .text("name")?
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("name is missing"))?;
    if name.contains(',') {
        return Err(ApiError::validation("title", "is invalid"));
    }
    let color = p
        .text("color")?
        .ok_or_else(|| ApiError::bad_request("color is missing"))?;
    Ok((
        name.to_owned(),
        color.to_owned(),
        p.text("description")?.map(str::to_owned),
    ))
}

/// `GET /projects/:id/issues/:iid/resource_label_events`, oldest first, paged.
pub(super) fn list_label_events(
    st: &State,
    user: u64,
    key: &str,
    iid: &str,
    req: &Request,
) -> Result<Response, ApiError> {
    let (pi, _) = member_project(st, key, user)?;
    let iid = parse_iid(iid)?;
    let project = &st.projects[pi];
    let issue = project
        .issues
        .get(&iid)
        .ok_or_else(ApiError::issue_not_found)?;
    let pairs = query_pairs(&req.query);
    let get = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
    };
    let page = Page {
        page: get("page").unwrap_or(1),
        per_page: get("per_page").unwrap_or(20).min(100),
        total: issue.label_events.len(),
    };
    let body: Vec<Value> = issue.label_events[page.range()]
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "user": st.user(e.user).map(|u| render::user(u, &st.base_url)),
                "created_at": render::timestamp(e.created_at),
                "resource_type": "Issue",
                "resource_id": issue.id,
                "label": {
                    "id": e.label.id,
                    "name": e.label.name,
                    "color": e.label.color,
                    "description": e.label.description.clone().unwrap_or_default(),
                },
                "action": if e.add { "add" } else { "remove" },
            })
        })
        .collect();
    let mut resp = Json(body).into_response();
    let url = format!("{}{}", st.base_url, req.path);
    page.write_headers(resp.headers_mut(), &url, &req.query);
    Ok(resp)
}

pub(super) fn label_json(l: &Label, is_project_label: bool) -> Value {
    json!({
        "id": l.id,
        "name": l.name,
        "color": l.color,
        "text_color": "#FFFFFF",
        "description": l.description,
        "description_html": l.description.clone().unwrap_or_default(),
        "open_issues_count": 0,
        "closed_issues_count": 0,
        "open_merge_requests_count": 0,
        "subscribed": false,
        "priority": null,
        "is_project_label": is_project_label,
    })
}
