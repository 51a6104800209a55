//! Routing for issue 17's endpoints: users, members, milestones, boards and GraphQL. The core
//! router (`api.rs`) hands every path it recognises here over in one `Endpoint::Planning`.

use axum::http::{Method, StatusCode};
use axum::response::Response;

use super::api::{member_project, ApiError, Request};
use super::params::percent_decode;
use super::{boards, graphql, milestones, users, Role, Route, State};

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Ext {
    Graphql,
    Users,
    User(String),
    Members(String),
    Member(String, String),
    Milestones(ParentRef),
    Milestone(ParentRef, String),
    Boards(ParentRef),
    Board(ParentRef, String),
    Lists(ParentRef, String),
    List(ParentRef, String, String),
}

/// `projects/:id/...` or `groups/:id/...`, the id or path decoded.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum ParentRef {
    Project(String),
    Group(String),
}

/// What a milestone, board or value stream belongs to (indices into the state's tables).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Owner {
    Project(usize),
    Group(usize),
}

/// Recognise one of this module's paths.
pub(super) fn parse(path: &str) -> Option<Ext> {
    if path.trim_end_matches('/') == "/api/graphql" {
        return Some(Ext::Graphql);
    }
    let rest = path.strip_prefix("/api/v4/")?.trim_end_matches('/');
    if rest == "users" {
        return Some(Ext::Users);
    }
    if let Some(id) = rest.strip_prefix("users/").filter(|id| !id.contains('/')) {
        return Some(Ext::User(percent_decode(id, false)));
    }
    let (is_project, rest) = match (rest.strip_prefix("projects/"), rest.strip_prefix("groups/")) {
        (Some(r), _) => (true, r),
        (None, Some(r)) => (false, r),
        _ => return None,
    };
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    let parent = |p: &[&str]| {
        let key = percent_decode(&p.join("/"), false);
        if is_project {
            ParentRef::Project(key)
        } else {
            ParentRef::Group(key)
        }
    };
    let dec = |s: &str| percent_decode(s, false);
    Some(match segs.as_slice() {
        [p @ .., "members", "all"] if is_project && !p.is_empty() => {
            Ext::Members(percent_decode(&p.join("/"), false))
        }
        [p @ .., "members", "all", u] if is_project && !p.is_empty() => {
            Ext::Member(percent_decode(&p.join("/"), false), dec(u))
        }
        [p @ .., "milestones"] if !p.is_empty() => Ext::Milestones(parent(p)),
        [p @ .., "milestones", id] if !p.is_empty() => Ext::Milestone(parent(p), dec(id)),
        [p @ .., "boards"] if !p.is_empty() => Ext::Boards(parent(p)),
        [p @ .., "boards", b] if !p.is_empty() => Ext::Board(parent(p), dec(b)),
        [p @ .., "boards", b, "lists"] if !p.is_empty() => Ext::Lists(parent(p), dec(b)),
        [p @ .., "boards", b, "lists", l] if !p.is_empty() => Ext::List(parent(p), dec(b), dec(l)),
        _ => return None,
    })
}

/// Reads are `Route::Read`; writes (GraphQL mutations included) are `Route::Update`, like
/// label creation: a scripted `Update` fault hits the next of these or of the issue edits.
pub(super) fn fault_route(ext: &Ext, method: &Method, body: &[u8]) -> Route {
    let write = match ext {
        Ext::Graphql => graphql::is_mutation(body),
        _ => method != Method::GET,
    };
    if write {
        Route::Update
    } else {
        Route::Read
    }
}

pub(super) fn dispatch(
    st: &mut State,
    user: u64,
    ext: &Ext,
    req: &Request,
) -> Result<Response, ApiError> {
    let m = &req.method;
    let get = m == Method::GET;
    match ext {
        Ext::Graphql if m == Method::POST => graphql::handle(st, user, req),
        Ext::Users if get => users::list_users(st, user, req),
        Ext::User(id) if get => users::get_user(st, user, id),
        Ext::Members(p) if get => users::list_members(st, user, p, req),
        Ext::Member(p, u) if get => users::get_member(st, user, p, u),
        Ext::Milestones(parent) if get => milestones::list(st, user, parent, req),
        Ext::Milestones(parent) if m == Method::POST => milestones::create(st, user, parent, req),
        Ext::Milestone(parent, id) if get => milestones::get(st, user, parent, id),
        Ext::Milestone(parent, id) if m == Method::PUT => {
            milestones::update(st, user, parent, id, req)
        }
        Ext::Boards(..) | Ext::Board(..) | Ext::Lists(..) | Ext::List(..) => {
            boards::dispatch(st, user, ext, req)
        }
        _ => Err(method_not_allowed()),
    }
}

pub(super) fn method_not_allowed() -> ApiError {
    ApiError::message(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed")
}

/// The owner a path names and the caller's role there (`None`: may look, holds no role).
/// Projects the caller cannot see are 404s, as are groups they have no way into.
pub(super) fn owner_for(
    st: &State,
    user: u64,
    parent: &ParentRef,
) -> Result<(Owner, Option<Role>), ApiError> {
    match parent {
        ParentRef::Project(key) => {
            let (pi, role) = member_project(st, key, user)?;
            Ok((Owner::Project(pi), Some(role)))
        }
        ParentRef::Group(key) => {
            let gi = st
                .groups
                .iter()
                .position(|g| g.path.eq_ignore_ascii_case(key) || g.id.to_string() == *key)
                .ok_or_else(ApiError::group_not_found)?;
            let role = group_role_of(st, gi, user);
            let inside = |p: &super::Project| {
                p.group
                    .is_some_and(|g| st.group_and_ancestors(g).contains(&gi))
                    && p.members.contains_key(&user)
            };
            if role.is_none() && !st.projects.iter().any(inside) {
                return Err(ApiError::group_not_found());
            }
            Ok((Owner::Group(gi), role))
        }
    }
}

/// A user's role in a group: its own or inherited from an ancestor; administrators are Owners.
pub(super) fn group_role_of(st: &State, group: usize, user: u64) -> Option<Role> {
    if st.user(user).is_some_and(|u| u.admin) {
        return Some(Role::Owner);
    }
    st.group_and_ancestors(group)
        .into_iter()
        .filter_map(|g| st.groups[g].members.get(&user).copied())
        .max()
}

/// Planner and up manage milestones, boards and lists; others get a 403.
pub(super) fn require_planner(role: Option<Role>) -> Result<(), ApiError> {
    if role.is_some_and(|r| r >= Role::Planner) {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// Project or group web path, for `web_url`s.
pub(super) fn owner_web_path(st: &State, owner: Owner) -> String {
    match owner {
        Owner::Project(pi) => st.projects[pi].path.clone(),
        Owner::Group(gi) => format!("groups/{}", st.groups[gi].path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_for_projects_groups_users_and_graphql() {
        let project = |s: &str| ParentRef::Project(s.into());
        let group = |s: &str| ParentRef::Group(s.into());
        assert_eq!(parse("/api/graphql"), Some(Ext::Graphql));
        assert_eq!(parse("/api/v4/users"), Some(Ext::Users));
        assert_eq!(parse("/api/v4/users/7"), Some(Ext::User("7".into())));
        assert_eq!(
            parse("/api/v4/projects/acme%2Fplatform/members/all/9"),
            Some(Ext::Member("acme/platform".into(), "9".into()))
        );
        assert_eq!(
            parse("/api/v4/projects/acme/platform/milestones"),
            Some(Ext::Milestones(project("acme/platform")))
        );
        assert_eq!(
            parse("/api/v4/groups/acme/team/milestones/12"),
            Some(Ext::Milestone(group("acme/team"), "12".into()))
        );
        assert_eq!(
            parse("/api/v4/projects/4/boards/301/lists/305"),
            Some(Ext::List(project("4"), "301".into(), "305".into()))
        );
        assert_eq!(parse("/api/v4/groups/acme/members/all"), None);
        assert_eq!(parse("/api/v4/projects/4/issues"), None);
        assert_eq!(parse("/api/v4/groups/acme/labels"), None);
    }
}
