//! People as GitLab shows them, and who may read a project.
//!
//! - `GET /users?username=` (exact, case-insensitive) and `GET /users?search=` (an exact
//!   *public* e-mail, or a name/username containing the text; administrators also match
//!   private e-mails). Lists show `UserBasic` — **no `public_email`** — unless the caller is an
//!   administrator; `GET /users/:id` adds `public_email` for everyone.
//! - `GET /projects/:id/members/all[/:user_id]`: direct members and members of the project's
//!   group and that group's ancestors, each once at the highest `access_level`.
//! - Groups nest by path (`acme/team` is inside `acme`); a project's roles and labels come from
//!   its whole group chain.
//! - Project visibility (private by default) decides who may be an assignee: in a private
//!   project only members (and administrators) can read issues.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::api::{group_role, member_project, ApiError, Request};
use super::list::{page_of, paged};
use super::params::{last, query_pairs};
use super::{lock, render, FakeGitlab, Role, State, User};

/// What GitLab keeps about a person beyond the username.
#[derive(Clone, Debug, Default)]
pub(super) struct Profile {
    /// `None`: derived from the username ("alice.smith" → "Alice Smith").
    pub(super) name: Option<String>,
    /// The primary e-mail: only administrators see or search it.
    pub(super) email: Option<String>,
    /// The e-mail shown on the profile, to everyone.
    pub(super) public_email: Option<String>,
    pub(super) blocked: bool,
}

/// Who may see a project's issues (and so be assigned to them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Visibility {
    /// Members and administrators only.
    #[default]
    Private,
    /// Every signed-in user.
    Internal,
    /// Everyone.
    Public,
}

impl Visibility {
    fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Internal => "internal",
            Visibility::Public => "public",
        }
    }
}

impl User {
    pub(super) fn display_name(&self) -> String {
        self.profile
            .name
            .clone()
            .unwrap_or_else(|| render::display_name(&self.username))
    }
}

impl FakeGitlab {
    /// Add a person who does not use the API (no token): `email` is their primary e-mail, made
    /// their public e-mail too when `public_email` is true. Returns the user id.
    pub fn add_person(&self, username: &str, name: &str, email: &str, public_email: bool) -> u64 {
        let mut st = lock(&self.state);
        let id = st.users.len() as u64 + 1;
        st.users.push(User {
            id,
            username: username.to_owned(),
            token: None,
            admin: false,
            profile: Profile {
                name: Some(name.to_owned()),
                email: Some(email.to_owned()),
                public_email: public_email.then(|| email.to_owned()),
                blocked: false,
            },
        });
        id
    }

    /// Block a user: GitLab drops them as an assignee, and their token stops working.
    pub fn block_user(&self, username: &str) {
        let mut st = lock(&self.state);
        let u = st
            .users
            .iter_mut()
            .find(|u| u.username == username)
            .unwrap_or_else(|| panic!("fake gitlab: no user {username:?}"));
        u.profile.blocked = true;
    }

    /// The id of a user, by username.
    pub fn user_id(&self, username: &str) -> Option<u64> {
        let st = lock(&self.state);
        st.users
            .iter()
            .find(|u| u.username == username)
            .map(|u| u.id)
    }

    /// Set who may read a project's issues (private by default).
    pub fn set_visibility(&self, project: &str, visibility: Visibility) {
        let mut st = lock(&self.state);
        let id = st.projects[st.project_index_or_panic(project)].id;
        st.planning.visibility.insert(id, visibility);
    }
}

impl State {
    /// The project's group and that group's ancestors, nearest first (groups nest by path).
    pub(super) fn group_chain(&self, project: usize) -> Vec<usize> {
        let Some(g) = self.projects[project].group else {
            return Vec::new();
        };
        self.group_and_ancestors(g)
    }

    pub(super) fn group_and_ancestors(&self, group: usize) -> Vec<usize> {
        let path = self.groups[group].path.to_ascii_lowercase();
        let mut chain: Vec<usize> = (0..self.groups.len())
            .filter(|&i| {
                let other = self.groups[i].path.to_ascii_lowercase();
                other == path || path.starts_with(&format!("{other}/"))
            })
            .collect();
        // Nearest first: the longest path is the group itself.
        chain.sort_by_key(|&i| std::cmp::Reverse(self.groups[i].path.len()));
        chain
    }

    /// Create `acme` and `acme/team` for a project `acme/team/platform`, as GitLab requires.
    pub(super) fn add_ancestor_groups(&mut self, project_path: &str) {
        let parts: Vec<&str> = project_path.split('/').collect();
        for n in 1..parts.len().saturating_sub(1) {
            self.group_index_or_add(&parts[..n].join("/"));
        }
    }

    /// The role a user holds in a project: direct or through its groups, the highest one.
    pub(super) fn member_role(&self, project: usize, user: u64) -> Option<Role> {
        self.projects[project]
            .members
            .get(&user)
            .copied()
            .max(group_role(self, project, user))
    }

    /// GitLab's `can?(user, :read_issue, project)` for a would-be assignee: active users who are
    /// members (or administrators) of a private project, any active user of an internal or
    /// public one. Unknown ids cannot.
    pub(super) fn can_read_issues(&self, project: usize, user: u64) -> bool {
        let Some(u) = self.user(user).filter(|u| !u.profile.blocked) else {
            return false;
        };
        u.admin
            || visibility_name(self, self.projects[project].id) != "private"
            || self.member_role(project, user).is_some()
    }
}

/// `visibility` as the project JSON shows it.
pub(super) fn visibility_name(st: &State, project_id: u64) -> &'static str {
    let v = st.planning.visibility.get(&project_id).copied();
    v.unwrap_or_default().as_str()
}

/// `UserBasic`, plus the private fields an administrator sees.
fn user_entity(st: &State, u: &User, caller_is_admin: bool, with_public_email: bool) -> Value {
    let mut body = render::user(u, &st.base_url);
    body["state"] = json!(if u.profile.blocked {
        "blocked"
    } else {
        "active"
    });
    if with_public_email || caller_is_admin {
        body["public_email"] = json!(u.profile.public_email);
        body["bot"] = json!(false);
    }
    if caller_is_admin {
        body["email"] = json!(u.profile.email);
        body["is_admin"] = json!(u.admin);
    }
    body
}

/// Why a user matched `search`: lower is listed first (e-mail, then username, then name).
fn search_rank(u: &User, q: &str, caller_is_admin: bool) -> Option<u8> {
    let eq = |v: &Option<String>| v.as_deref().is_some_and(|e| e.to_lowercase() == q);
    if eq(&u.profile.public_email) || (caller_is_admin && eq(&u.profile.email)) {
        return Some(0);
    }
    // Partial matching needs three characters; shorter text must match exactly.
    let fuzzy = |v: &str| {
        let v = v.to_lowercase();
        v == q || (q.chars().count() >= 3 && v.contains(q))
    };
    if fuzzy(&u.username) {
        Some(1)
    } else if fuzzy(&u.display_name()) {
        Some(2)
    } else {
        None
    }
}

/// `GET /users` with `username` or `search`, paged.
pub(super) fn list_users(st: &State, caller: u64, req: &Request) -> Result<Response, ApiError> {
    let pairs = query_pairs(&req.query);
    let get = |name: &str| last(&pairs, name).map(str::trim);
    let admin = st.user(caller).is_some_and(|u| u.admin);
    let mut hits: Vec<(u8, &User)> = st
        .users
        .iter()
        .filter_map(|u| match (get("username"), get("search")) {
            (Some(name), _) => u.username.eq_ignore_ascii_case(name).then_some((0, u)),
            (None, Some(q)) if !q.is_empty() => {
                search_rank(u, &q.to_lowercase(), admin).map(|r| (r, u))
            }
            _ => Some((0, u)),
        })
        .collect();
    hits.sort_by_key(|(rank, u)| (*rank, u.id));
    let page = page_of(&pairs, hits.len())?;
    let body: Vec<Value> = hits[page.range()]
        .iter()
        .map(|(_, u)| user_entity(st, u, admin, false))
        .collect();
    paged(st, req, page, body)
}

/// `GET /users/:id`: the full entity, with `public_email`.
pub(super) fn get_user(st: &State, caller: u64, id: &str) -> Result<Response, ApiError> {
    let id: u64 = id.parse().map_err(|_| ApiError::invalid("id"))?;
    let admin = st.user(caller).is_some_and(|u| u.admin);
    let u = st
        .user(id)
        .ok_or_else(|| ApiError::not_found("404 User Not Found"))?;
    Ok(Json(user_entity(st, u, admin, true)).into_response())
}

/// Everyone with a role in the project, directly or through its groups: (user, highest role).
fn all_members(st: &State, project: usize) -> Vec<(u64, Role)> {
    let mut ids: Vec<u64> = st.projects[project].members.keys().copied().collect();
    for g in st.group_chain(project) {
        ids.extend(st.groups[g].members.keys());
    }
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .filter_map(|id| Some((id, st.member_role(project, id)?)))
        .collect()
}

fn member_entity(st: &State, user: u64, role: Role) -> Option<Value> {
    let u = st.user(user)?;
    let mut body = user_entity(st, u, false, false);
    body["access_level"] = json!(role.access_level());
    body["expires_at"] = Value::Null;
    body["membership_state"] = json!("active");
    Some(body)
}

/// `GET /projects/:id/members/all` (`query`, `user_ids[]`, paged).
pub(super) fn list_members(
    st: &State,
    caller: u64,
    key: &str,
    req: &Request,
) -> Result<Response, ApiError> {
    let (pi, _) = member_project(st, key, caller)?;
    let pairs = query_pairs(&req.query);
    let query = last(&pairs, "query").map(str::to_lowercase);
    let wanted: Vec<u64> = pairs
        .iter()
        .filter(|(k, _)| k == "user_ids[]" || k == "user_ids")
        .map(|(_, v)| v.trim().parse().map_err(|_| ApiError::invalid("user_ids")))
        .collect::<Result<_, _>>()?;
    let hits: Vec<Value> = all_members(st, pi)
        .into_iter()
        .filter(|(id, _)| wanted.is_empty() || wanted.contains(id))
        .filter(|(id, _)| {
            let Some(q) = &query else { return true };
            st.user(*id).is_some_and(|u| {
                u.username.to_lowercase().contains(q) || u.display_name().to_lowercase().contains(q)
            })
        })
        .filter_map(|(id, role)| member_entity(st, id, role))
        .collect();
    let page = page_of(&pairs, hits.len())?;
    paged(st, req, page, hits[page.range()].to_vec())
}

/// `GET /projects/:id/members/all/:user_id`: 404 for anyone without a role.
pub(super) fn get_member(
    st: &State,
    caller: u64,
    key: &str,
    user: &str,
) -> Result<Response, ApiError> {
    let (pi, _) = member_project(st, key, caller)?;
    let user: u64 = user.parse().map_err(|_| ApiError::invalid("user_id"))?;
    st.member_role(pi, user)
        .and_then(|role| member_entity(st, user, role))
        .map(|body| Json(body).into_response())
        .ok_or_else(|| ApiError::not_found("404 Not found"))
}

#[cfg(test)]
mod tests;
