//! Project and group milestones (`/projects/:id/milestones`, `/groups/:id/milestones`).
//!
//! - List with `title` (exact), `state` (`active`|`closed`), `search` (title or description,
//!   case-insensitive), `iids[]`, `include_ancestors=true` (the milestones of the project's
//!   groups too; `iids[]` is then ignored), `updated_after`/`updated_before`; paged; ordered by
//!   due date (none last), then title.
//! - Create with `title` (required), `description`, `start_date`, `due_date`; edit the same plus
//!   `state_event=close|activate`. `:milestone_id` in paths is the global `id`.
//! - Validation as GitLab's model: a title must be unique across the project **and its
//!   ancestor groups** (a group's: across its ancestors, descendants and their projects) →
//!   `400 {"message":{"title":["already being used for another group or project milestone."]}}`;
//!   `due_date` must be **strictly after** `start_date` → `{"message":{"due_date":["must be
//!   greater than start date"]}}`; dates after 9999-12-31 are refused.
//! - Roles: Planner and up in the project (for group milestones: in the group — a project
//!   role is not enough) create and edit; others get 403.
//! - Closing a milestone does not touch its issues, and a closed milestone may still be given
//!   to an issue.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::{json, Map, Value};

use super::api::{ApiError, Request};
use super::list::{page_of, paged};
use super::params::{last, query_pairs, Params};
use super::render::timestamp;
use super::routes::{owner_for, owner_web_path, require_planner, Owner, ParentRef};
use super::{lock, FakeGitlab, State};

#[derive(Clone, Debug, PartialEq)]
pub(super) struct Milestone {
    pub(super) id: u64,
    iid: u64,
    pub(super) owner: Owner,
    pub(super) title: String,
    description: Option<String>,
    start_date: Option<NaiveDate>,
    due_date: Option<NaiveDate>,
    closed: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// What a test sees of a milestone.
#[derive(Clone, Debug, PartialEq)]
pub struct MilestoneSnapshot {
    pub id: u64,
    pub title: String,
    /// "active" or "closed".
    pub state: String,
    pub start_date: Option<NaiveDate>,
    pub due_date: Option<NaiveDate>,
}

impl State {
    pub(super) fn milestone(&self, id: u64) -> Option<&Milestone> {
        self.planning.milestones.iter().find(|m| m.id == id)
    }

    /// The milestones an issue of `project` may take: its own and its groups'.
    pub(super) fn visible_milestones(&self, project: usize) -> impl Iterator<Item = &Milestone> {
        let groups = self.group_chain(project);
        self.planning
            .milestones
            .iter()
            .filter(move |m| match m.owner {
                Owner::Project(p) => p == project,
                Owner::Group(g) => groups.contains(&g),
            })
    }

    pub(super) fn milestone_visible(&self, project: usize, id: u64) -> bool {
        self.visible_milestones(project).any(|m| m.id == id)
    }

    /// Whether a milestone of `other` shares the title namespace of `owner`'s milestones.
    fn same_title_space(&self, owner: Owner, other: Owner) -> bool {
        let under = |g: usize, top: usize| self.group_and_ancestors(g).contains(&top);
        match (owner, other) {
            (Owner::Project(p), Owner::Project(q)) => p == q,
            (Owner::Project(p), Owner::Group(g)) | (Owner::Group(g), Owner::Project(p)) => {
                let chain = self.group_chain(p);
                chain.contains(&g) || self.projects[p].group.is_some_and(|pg| under(pg, g))
            }
            (Owner::Group(g), Owner::Group(h)) => under(g, h) || under(h, g),
        }
    }

    fn title_taken(&self, owner: Owner, title: &str, except: Option<u64>) -> bool {
        self.planning.milestones.iter().any(|m| {
            Some(m.id) != except && m.title == title && self.same_title_space(owner, m.owner)
        })
    }

    fn add_milestone(&mut self, owner: Owner, fields: Fields) -> Result<u64, ApiError> {
        let title = fields.title.clone().unwrap_or_default();
        validate(
            self,
            owner,
            None,
            &title,
            fields.start_date,
            fields.due_date,
        )?;
        let now = self.now();
        let iid = 1 + self
            .planning
            .milestones
            .iter()
            .filter(|m| m.owner == owner)
            .count() as u64;
        let id = self.planning.next_id();
        self.planning.milestones.push(Milestone {
            id,
            iid,
            owner,
            title,
            description: fields.description.flatten(),
            start_date: fields.start_date.flatten(),
            due_date: fields.due_date.flatten(),
            closed: false,
            created_at: now,
            updated_at: now,
        });
        Ok(id)
    }
}

/// The writable fields of a request; `Some(None)` clears a date.
#[derive(Default)]
struct Fields {
    title: Option<String>,
    description: Option<Option<String>>,
    start_date: Option<Option<NaiveDate>>,
    due_date: Option<Option<NaiveDate>>,
    state_event: Option<bool>,
}

fn fields_from(p: &Params) -> Result<Fields, ApiError> {
    let date = |name: &str| -> Result<Option<Option<NaiveDate>>, ApiError> {
        match p.text(name)? {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(Some(None)),
            Some(v) => date_value(v)
                .map(|d| Some(Some(d)))
                .ok_or_else(|| ApiError::invalid(name)),
        }
    };
    let state_event = match p.text("state_event")? {
        None => None,
        Some("close") => Some(true),
        Some("activate") => Some(false),
        Some(_) => return Err(ApiError::not_valid("state_event")),
    };
    Ok(Fields {
        title: p.text("title")?.map(|t| t.trim().to_owned()),
        description: p.text("description")?.map(|d| Some(d.to_owned())),
        start_date: date("start_date")?,
        due_date: date("due_date")?,
        state_event,
    })
}

/// `YYYY-MM-DD`, years beyond 9999 included (the model refuses those, not the parser).
fn date_value(v: &str) -> Option<NaiveDate> {
    let mut parts = v.trim().splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// The model's validations, all problems at once, as GitLab reports them.
fn validate(
    st: &State,
    owner: Owner,
    except: Option<u64>,
    title: &str,
    start: Option<Option<NaiveDate>>,
    due: Option<Option<NaiveDate>>,
) -> Result<(), ApiError> {
    let mut problems = Map::new();
    let mut add = |field: &str, problem: &str| {
        let list = problems.entry(field).or_insert_with(|| json!([]));
        if let Some(items) = list.as_array_mut() {
            items.push(json!(problem));
        }
    };
    if title.is_empty() {
        add("title", "can't be blank");
    } else if st.title_taken(owner, title, except) {
        add(
            "title",
            "already being used for another group or project milestone.",
        );
    }
    let (start, due) = (start.flatten(), due.flatten());
    for (name, date) in [("start_date", start), ("due_date", due)] {
        if date.is_some_and(|d| d.year() > 9999) {
            add(name, "date must not be after 9999-12-31");
        }
    }
    if let (Some(s), Some(d)) = (start, due) {
        if d <= s {
            add("due_date", "must be greater than start date");
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(ApiError::validation_map(Value::Object(problems)))
}

pub(super) fn milestone_json(st: &State, m: &Milestone) -> Value {
    let today = st.now().date_naive();
    let path = owner_web_path(st, m.owner);
    let mut body = json!({
        "id": m.id,
        "iid": m.iid,
        "title": m.title,
        "description": m.description,
        "state": if m.closed { "closed" } else { "active" },
        "created_at": timestamp(m.created_at),
        "updated_at": timestamp(m.updated_at),
        "due_date": m.due_date.map(|d| d.to_string()),
        "start_date": m.start_date.map(|d| d.to_string()),
        "expired": m.due_date.is_some_and(|d| d < today),
        "web_url": format!("{}/{path}/-/milestones/{}", st.base_url, m.iid),
    });
    match m.owner {
        Owner::Project(pi) => body["project_id"] = json!(st.projects[pi].id),
        Owner::Group(gi) => body["group_id"] = json!(st.groups[gi].id),
    }
    body
}

/// Filters of the list endpoint.
struct ListFilter {
    title: Option<String>,
    closed: Option<bool>,
    search: Option<String>,
    iids: Vec<u64>,
    ancestors: bool,
    updated_after: Option<DateTime<Utc>>,
    updated_before: Option<DateTime<Utc>>,
}

fn list_filter(pairs: &[(String, String)]) -> Result<ListFilter, ApiError> {
    let get = |k: &str| last(pairs, k);
    let time = |k: &str| {
        get(k)
            .map(|v| super::params::parse_time(v).ok_or_else(|| ApiError::invalid(k)))
            .transpose()
    };
    Ok(ListFilter {
        title: get("title").map(str::to_owned),
        closed: match get("state") {
            None | Some("") => None,
            Some("active") => Some(false),
            Some("closed") => Some(true),
            Some(_) => return Err(ApiError::not_valid("state")),
        },
        search: get("search").map(|s| s.to_lowercase()),
        iids: pairs
            .iter()
            .filter(|(k, _)| k == "iids[]" || k == "iids")
            .map(|(_, v)| v.trim().parse().map_err(|_| ApiError::invalid("iids")))
            .collect::<Result<_, _>>()?,
        ancestors: matches!(
            get("include_ancestors").or(get("include_parent_milestones")),
            Some(v) if v == "true"
        ),
        updated_after: time("updated_after")?,
        updated_before: time("updated_before")?,
    })
}

impl ListFilter {
    fn matches(&self, m: &Milestone) -> bool {
        let text = |t: &Option<String>| t.as_deref().unwrap_or("").to_lowercase();
        self.title.as_ref().is_none_or(|t| *t == m.title)
            && self.closed.is_none_or(|c| c == m.closed)
            && self.search.as_ref().is_none_or(|q| {
                m.title.to_lowercase().contains(q) || text(&m.description).contains(q)
            })
            && (self.ancestors || self.iids.is_empty() || self.iids.contains(&m.iid))
            && self.updated_after.is_none_or(|t| m.updated_at >= t)
            && self.updated_before.is_none_or(|t| m.updated_at <= t)
    }
}

/// `GET .../milestones`.
pub(super) fn list(
    st: &State,
    user: u64,
    parent: &ParentRef,
    req: &Request,
) -> Result<Response, ApiError> {
    let (owner, _) = owner_for(st, user, parent)?;
    let pairs = query_pairs(&req.query);
    let filter = list_filter(&pairs)?;
    let ancestors = match owner {
        Owner::Project(pi) => st.group_chain(pi),
        Owner::Group(gi) => st.group_and_ancestors(gi),
    };
    let mut hits: Vec<&Milestone> = st
        .planning
        .milestones
        .iter()
        .filter(|m| {
            m.owner == owner
                || (filter.ancestors
                    && matches!(m.owner, Owner::Group(g) if ancestors.contains(&g)))
        })
        .filter(|m| filter.matches(m))
        .collect();
    hits.sort_by(|a, b| {
        (a.due_date.is_none(), a.due_date, &a.title, a.id).cmp(&(
            b.due_date.is_none(),
            b.due_date,
            &b.title,
            b.id,
        ))
    });
    let page = page_of(&pairs, hits.len())?;
    let body = hits[page.range()]
        .iter()
        .map(|m| milestone_json(st, m))
        .collect();
    paged(st, req, page, body)
}

fn find(st: &State, owner: Owner, id: &str) -> Result<usize, ApiError> {
    let id: u64 = id.parse().map_err(|_| ApiError::invalid("milestone_id"))?;
    st.planning
        .milestones
        .iter()
        .position(|m| m.id == id && m.owner == owner)
        .ok_or_else(|| ApiError::not_found("404 Milestone Not Found"))
}

/// `GET .../milestones/:milestone_id`.
pub(super) fn get(
    st: &State,
    user: u64,
    parent: &ParentRef,
    id: &str,
) -> Result<Response, ApiError> {
    let (owner, _) = owner_for(st, user, parent)?;
    let i = find(st, owner, id)?;
    Ok(Json(milestone_json(st, &st.planning.milestones[i])).into_response())
}

/// `POST .../milestones`.
pub(super) fn create(
    st: &mut State,
    user: u64,
    parent: &ParentRef,
    req: &Request,
) -> Result<Response, ApiError> {
    let (owner, role) = owner_for(st, user, parent)?;
    let p = req.params()?;
    let fields = fields_from(&p)?;
    if fields.title.is_none() {
        return Err(ApiError::bad_request("title is missing"));
    }
    require_planner(role)?;
    let id = st.add_milestone(owner, fields)?;
    let m = st
        .milestone(id)
        .ok_or_else(|| ApiError::not_found("404 Milestone Not Found"))?;
    Ok((StatusCode::CREATED, Json(milestone_json(st, m))).into_response())
}

/// `PUT .../milestones/:milestone_id`.
pub(super) fn update(
    st: &mut State,
    user: u64,
    parent: &ParentRef,
    id: &str,
    req: &Request,
) -> Result<Response, ApiError> {
    let (owner, role) = owner_for(st, user, parent)?;
    let i = find(st, owner, id)?;
    let p = req.params()?;
    if p.is_empty() {
        return Err(ApiError::bad_request(
            "title, description, due_date, start_date, state_event are missing, at least one \
             parameter must be provided",
        ));
    }
    let f = fields_from(&p)?;
    require_planner(role)?;
    let m = &st.planning.milestones[i];
    let title = f.title.clone().unwrap_or_else(|| m.title.clone());
    let start = f.start_date.unwrap_or(m.start_date);
    let due = f.due_date.unwrap_or(m.due_date);
    validate(st, owner, Some(m.id), &title, Some(start), Some(due))?;
    let now = st.now();
    let m = &mut st.planning.milestones[i];
    let before = m.clone();
    m.title = title;
    if let Some(d) = f.description {
        m.description = d;
    }
    (m.start_date, m.due_date) = (start, due);
    if let Some(close) = f.state_event {
        m.closed = close;
    }
    if *m != before {
        m.updated_at = now;
    }
    Ok(Json(milestone_json(st, &st.planning.milestones[i])).into_response())
}

fn snapshot(m: &Milestone) -> MilestoneSnapshot {
    MilestoneSnapshot {
        id: m.id,
        title: m.title.clone(),
        state: if m.closed { "closed" } else { "active" }.to_owned(),
        start_date: m.start_date,
        due_date: m.due_date,
    }
}

impl FakeGitlab {
    /// A project's own milestones, oldest first.
    pub fn milestones(&self, project: &str) -> Vec<MilestoneSnapshot> {
        let st = lock(&self.state);
        let owner = Owner::Project(st.project_index_or_panic(project));
        let own = st.planning.milestones.iter().filter(|m| m.owner == owner);
        own.map(snapshot).collect()
    }

    /// A group's own milestones, oldest first.
    pub fn group_milestones(&self, group: &str) -> Vec<MilestoneSnapshot> {
        let st = lock(&self.state);
        let gi = group_index_or_panic(&st, group);
        let own = st.planning.milestones.iter();
        own.filter(|m| m.owner == Owner::Group(gi))
            .map(snapshot)
            .collect()
    }

    /// A person creates a project milestone; returns its id. Panics if GitLab would refuse it.
    pub fn add_milestone(
        &self,
        project: &str,
        title: &str,
        start: Option<NaiveDate>,
        due: Option<NaiveDate>,
    ) -> u64 {
        let mut st = lock(&self.state);
        let owner = Owner::Project(st.project_index_or_panic(project));
        by_hand(&mut st, owner, title, start, due)
    }

    /// A person creates a group milestone (e.g. in `acme`); returns its id.
    pub fn add_group_milestone(
        &self,
        group: &str,
        title: &str,
        start: Option<NaiveDate>,
        due: Option<NaiveDate>,
    ) -> u64 {
        let mut st = lock(&self.state);
        let owner = Owner::Group(group_index_or_panic(&st, group));
        by_hand(&mut st, owner, title, start, due)
    }

    /// A person closes (or, with `false`, reopens) a milestone by id.
    pub fn close_milestone_by_hand(&self, id: u64, closed: bool) {
        let mut st = lock(&self.state);
        let now = st.now();
        let m = st
            .planning
            .milestones
            .iter_mut()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("fake gitlab: no milestone {id}"));
        if m.closed != closed {
            m.closed = closed;
            m.updated_at = now;
        }
    }
}

fn by_hand(
    st: &mut State,
    owner: Owner,
    title: &str,
    start: Option<NaiveDate>,
    due: Option<NaiveDate>,
) -> u64 {
    let fields = Fields {
        title: Some(title.to_owned()),
        start_date: Some(start),
        due_date: Some(due),
        ..Fields::default()
    };
    st.add_milestone(owner, fields)
        .unwrap_or_else(|e| panic!("fake gitlab: GitLab would refuse this milestone: {e:?}"))
}

pub(super) fn group_index_or_panic(st: &State, group: &str) -> usize {
    st.groups
        .iter()
        .position(|g| g.path.eq_ignore_ascii_case(group))
        .unwrap_or_else(|| panic!("fake gitlab: no group {group:?}"))
}

#[cfg(test)]
mod tests;
