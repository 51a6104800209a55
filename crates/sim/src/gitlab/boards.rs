//! Issue boards and their label lists (`/projects/:id/boards`, `/groups/:id/boards`).
//!
//! - `GET|POST .../boards` (`name` required; names need not be unique; `[]` until someone makes
//!   one), `GET .../boards/:board_id`. Free allows many project boards but **one group board**
//!   (a second: 400 "You don't have the permission to create a board for this resource.").
//! - Every board has hidden "Open" (backlog) and "Closed" lists: they take ids but are **never
//!   shown** by the lists API nor in a board's `lists`, have no position and cannot be moved.
//! - `GET|POST .../boards/:board_id/lists` (`label_id`: a label the project can use — its own or
//!   its groups' — else `400 {"message":{"error":"Label not found!"}}`; one list per label per
//!   board, else `{"message":{"error":"Label has already been taken"}}`). A new list goes last.
//!   Positions are 0-based among the label lists.
//! - `PUT .../lists/:list_id` with `position`: the lists in between shift by one; a move to the
//!   list's own position, or outside `0..n-1`, is `400 {"message":{"error":"List could not be
//!   moved!"}}`. `DELETE .../lists/:list_id` removes one.
//! - Roles: Planner and up manage boards and lists (in the group for group boards).
//! - Making a list **does not** stamp issues already carrying its label: that happens at each
//!   issue's next save (see `vsa.rs`).

use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::api::{ApiError, Request};
use super::labels::label_json;
use super::list::{page_of, paged};
use super::milestones::group_index_or_panic;
use super::params::query_pairs;
use super::routes::{method_not_allowed, owner_for, require_planner, Ext, Owner};
use super::{lock, FakeGitlab, Label, State, Tier};

#[derive(Clone, Debug)]
pub(super) struct Board {
    pub(super) id: u64,
    pub(super) owner: Owner,
    name: String,
    /// Label lists in position order (the position is the index).
    pub(super) lists: Vec<BoardList>,
}

#[derive(Clone, Debug)]
pub(super) struct BoardList {
    id: u64,
    pub(super) label: u64,
}

/// What a test sees of a board: its label lists' label names, in position order.
#[derive(Clone, Debug, PartialEq)]
pub struct BoardSnapshot {
    pub id: u64,
    pub name: String,
    pub lists: Vec<String>,
}

impl State {
    /// Ids of labels that have a list on any board: GitLab's `label.lists.present?`.
    pub(super) fn labels_with_lists(&self) -> HashSet<u64> {
        let boards = self.planning.boards.iter();
        boards
            .flat_map(|b| b.lists.iter().map(|l| l.label))
            .collect()
    }

    /// A label by id, and whether it is a project label.
    pub(super) fn label_by_id(&self, id: u64) -> Option<(&Label, bool)> {
        let project = self.projects.iter().flat_map(|p| p.labels.iter());
        if let Some(l) = project.into_iter().find(|l| l.id == id) {
            return Some((l, true));
        }
        let group = self.groups.iter().flat_map(|g| g.labels.iter());
        group.into_iter().find(|l| l.id == id).map(|l| (l, false))
    }

    /// The labels a board's owner can use.
    fn board_labels(&self, owner: Owner) -> Vec<&Label> {
        match owner {
            Owner::Project(pi) => self.visible_labels(pi).collect(),
            Owner::Group(gi) => {
                let groups = self.group_and_ancestors(gi);
                groups
                    .into_iter()
                    .flat_map(|g| self.groups[g].labels.iter())
                    .collect()
            }
        }
    }

    fn new_board(&mut self, owner: Owner, name: &str) -> Result<u64, ApiError> {
        let group_boards = |b: &&Board| matches!(owner, Owner::Group(_)) && b.owner == owner;
        if self.tier == Tier::Free && self.planning.boards.iter().any(|b| group_boards(&b)) {
            return Err(ApiError::bad_message(
                "You don't have the permission to create a board for this resource.",
            ));
        }
        let id = self.planning.next_id();
        // The hidden Open and Closed lists take ids too: list ids are never 1..n.
        self.planning.next_id();
        self.planning.next_id();
        self.planning.boards.push(Board {
            id,
            owner,
            name: name.to_owned(),
            lists: Vec::new(),
        });
        Ok(id)
    }

    fn add_list(&mut self, board: usize, label: u64) -> Result<u64, ApiError> {
        let owner = self.planning.boards[board].owner;
        if !self.board_labels(owner).iter().any(|l| l.id == label) {
            return Err(ApiError::list_error("Label not found!"));
        }
        if self.planning.boards[board]
            .lists
            .iter()
            .any(|l| l.label == label)
        {
            return Err(ApiError::list_error("Label has already been taken"));
        }
        let id = self.planning.next_id();
        self.planning.boards[board]
            .lists
            .push(BoardList { id, label });
        Ok(id)
    }
}

fn list_json(st: &State, list: &BoardList, position: usize) -> Value {
    let label = st
        .label_by_id(list.label)
        .map(|(l, is_project)| label_json(l, is_project));
    json!({
        "id": list.id,
        "label": label,
        "position": position,
        "max_issue_count": 0,
        "max_issue_weight": 0,
        "limit_metric": null,
    })
}

fn board_json(st: &State, b: &Board) -> Value {
    let lists: Vec<Value> = b
        .lists
        .iter()
        .enumerate()
        .map(|(i, l)| list_json(st, l, i))
        .collect();
    let (project, group) = match b.owner {
        Owner::Project(pi) => {
            let p = &st.projects[pi];
            let name = p.path.rsplit('/').next().unwrap_or(&p.path);
            let project = json!({
                "id": p.id,
                "name": name,
                "name_with_namespace": p.path.replace('/', " / "),
                "path": name,
                "path_with_namespace": p.path,
                "web_url": format!("{}/{}", st.base_url, p.path),
            });
            (project, Value::Null)
        }
        Owner::Group(gi) => {
            let g = &st.groups[gi];
            let url = format!("{}/groups/{}", st.base_url, g.path);
            (
                Value::Null,
                json!({ "id": g.id, "name": g.path, "web_url": url }),
            )
        }
    };
    json!({
        "id": b.id,
        "name": b.name,
        "hide_backlog_list": false,
        "hide_closed_list": false,
        "project": project,
        "group": group,
        "milestone": null,
        "assignee": null,
        "labels": [],
        "weight": null,
        "lists": lists,
    })
}

/// All of this module's endpoints.
pub(super) fn dispatch(
    st: &mut State,
    user: u64,
    ext: &Ext,
    req: &Request,
) -> Result<Response, ApiError> {
    let m = &req.method;
    match ext {
        Ext::Boards(parent) => {
            let (owner, role) = owner_for(st, user, parent)?;
            match *m {
                Method::GET => list_boards(st, owner, req),
                Method::POST => create_board(st, owner, role, req),
                _ => Err(method_not_allowed()),
            }
        }
        Ext::Board(parent, b) if m == Method::GET => {
            let (owner, _) = owner_for(st, user, parent)?;
            let bi = find_board(st, owner, b)?;
            Ok(Json(board_json(st, &st.planning.boards[bi])).into_response())
        }
        Ext::Lists(parent, b) => {
            let (owner, role) = owner_for(st, user, parent)?;
            let bi = find_board(st, owner, b)?;
            match *m {
                Method::GET => list_lists(st, bi, req),
                Method::POST => create_list(st, bi, role, req),
                _ => Err(method_not_allowed()),
            }
        }
        Ext::List(parent, b, l) => {
            let (owner, role) = owner_for(st, user, parent)?;
            let bi = find_board(st, owner, b)?;
            let li = find_list(st, bi, l)?;
            match *m {
                Method::GET => Ok(Json(list_at(st, bi, li)).into_response()),
                Method::PUT => move_list(st, bi, li, role, req),
                Method::DELETE => {
                    require_planner(role)?;
                    st.planning.boards[bi].lists.remove(li);
                    Ok(StatusCode::NO_CONTENT.into_response())
                }
                _ => Err(method_not_allowed()),
            }
        }
        _ => Err(method_not_allowed()),
    }
}

fn find_board(st: &State, owner: Owner, id: &str) -> Result<usize, ApiError> {
    let id: u64 = id.parse().map_err(|_| ApiError::invalid("board_id"))?;
    let boards = &st.planning.boards;
    boards
        .iter()
        .position(|b| b.id == id && b.owner == owner)
        .ok_or_else(|| ApiError::not_found("404 Board Not Found"))
}

/// A label list of the board; the hidden Open and Closed lists are not found.
fn find_list(st: &State, board: usize, id: &str) -> Result<usize, ApiError> {
    let id: u64 = id.parse().map_err(|_| ApiError::invalid("list_id"))?;
    let lists = &st.planning.boards[board].lists;
    lists
        .iter()
        .position(|l| l.id == id)
        .ok_or_else(|| ApiError::not_found("404 Not found"))
}

fn list_at(st: &State, board: usize, list: usize) -> Value {
    list_json(st, &st.planning.boards[board].lists[list], list)
}

/// Boards ordered by name, then id.
fn list_boards(st: &State, owner: Owner, req: &Request) -> Result<Response, ApiError> {
    let mut boards: Vec<&Board> = st
        .planning
        .boards
        .iter()
        .filter(|b| b.owner == owner)
        .collect();
    boards.sort_by_key(|b| (b.name.to_lowercase(), b.id));
    let pairs = query_pairs(&req.query);
    let page = page_of(&pairs, boards.len())?;
    let body = boards[page.range()]
        .iter()
        .map(|b| board_json(st, b))
        .collect();
    paged(st, req, page, body)
}

fn create_board(
    st: &mut State,
    owner: Owner,
    role: Option<super::Role>,
    req: &Request,
) -> Result<Response, ApiError> {
    let p = req.params()?;
    let name = p
        .text("name")?
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("name is missing"))?
        .to_owned();
    require_planner(role)?;
    let id = st.new_board(owner, &name)?;
    let board = st.planning.boards.iter().find(|b| b.id == id);
    let body = board.map(|b| board_json(st, b)).unwrap_or(Value::Null);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn list_lists(st: &State, board: usize, req: &Request) -> Result<Response, ApiError> {
    let lists = &st.planning.boards[board].lists;
    let pairs = query_pairs(&req.query);
    let page = page_of(&pairs, lists.len())?;
    let body = page.range().map(|i| list_at(st, board, i)).collect();
    paged(st, req, page, body)
}

fn create_list(
    st: &mut State,
    board: usize,
    role: Option<super::Role>,
    req: &Request,
) -> Result<Response, ApiError> {
    let p = req.params()?;
    let label: u64 = p
        .text("label_id")?
        .ok_or_else(|| ApiError::bad_request("label_id is missing"))?
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid("label_id"))?;
    require_planner(role)?;
    let id = st.add_list(board, label)?;
    let li = st.planning.boards[board]
        .lists
        .iter()
        .position(|l| l.id == id)
        .unwrap_or_default();
    Ok((StatusCode::CREATED, Json(list_at(st, board, li))).into_response())
}

/// `Boards::Lists::MoveService`: refuses a move in place or out of range.
fn move_list(
    st: &mut State,
    board: usize,
    list: usize,
    role: Option<super::Role>,
    req: &Request,
) -> Result<Response, ApiError> {
    let p = req.params()?;
    let position: i64 = p
        .text("position")?
        .ok_or_else(|| ApiError::bad_request("position is missing"))?
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid("position"))?;
    require_planner(role)?;
    let lists = &mut st.planning.boards[board].lists;
    let target = usize::try_from(position).ok().filter(|&t| t < lists.len());
    let Some(target) = target.filter(|&t| t != list) else {
        return Err(ApiError::list_error("List could not be moved!"));
    };
    let moved = lists.remove(list);
    lists.insert(target, moved);
    Ok(Json(list_at(st, board, target)).into_response())
}

fn snapshot(st: &State, b: &Board) -> BoardSnapshot {
    BoardSnapshot {
        id: b.id,
        name: b.name.clone(),
        lists: b
            .lists
            .iter()
            .filter_map(|l| st.label_by_id(l.label).map(|(l, _)| l.name.clone()))
            .collect(),
    }
}

impl FakeGitlab {
    /// A project's boards, oldest first.
    pub fn boards(&self, project: &str) -> Vec<BoardSnapshot> {
        let st = lock(&self.state);
        let owner = Owner::Project(st.project_index_or_panic(project));
        let boards = st.planning.boards.iter().filter(|b| b.owner == owner);
        boards.map(|b| snapshot(&st, b)).collect()
    }

    /// A group's boards, oldest first.
    pub fn group_boards(&self, group: &str) -> Vec<BoardSnapshot> {
        let st = lock(&self.state);
        let owner = Owner::Group(group_index_or_panic(&st, group));
        let boards = st.planning.boards.iter().filter(|b| b.owner == owner);
        boards.map(|b| snapshot(&st, b)).collect()
    }

    /// A person makes a project board; returns its id.
    pub fn add_board_by_hand(&self, project: &str, name: &str) -> u64 {
        let mut st = lock(&self.state);
        let owner = Owner::Project(st.project_index_or_panic(project));
        st.new_board(owner, name)
            .unwrap_or_else(|e| panic!("fake gitlab: board refused: {e:?}"))
    }

    /// A person makes a group board; returns its id.
    pub fn add_group_board_by_hand(&self, group: &str, name: &str) -> u64 {
        let mut st = lock(&self.state);
        let owner = Owner::Group(group_index_or_panic(&st, group));
        st.new_board(owner, name)
            .unwrap_or_else(|e| panic!("fake gitlab: board refused: {e:?}"))
    }

    /// A person adds a list for `label` (by name, a label the board's owner can use; a project
    /// board creates a missing label as a project label) at the end of a board.
    pub fn add_board_list_by_hand(&self, board: u64, label: &str) -> u64 {
        let mut st = lock(&self.state);
        let bi = board_index_or_panic(&st, board);
        let owner = st.planning.boards[bi].owner;
        let found = st
            .board_labels(owner)
            .iter()
            .find(|l| l.name == label)
            .map(|l| l.id);
        let id = match (found, owner) {
            (Some(id), _) => id,
            (None, Owner::Project(pi)) => {
                let l = st.new_label(label, "#6699cc", None);
                st.projects[pi].labels.push(l.clone());
                l.id
            }
            (None, Owner::Group(_)) => panic!("fake gitlab: no group label {label:?}"),
        };
        st.add_list(bi, id)
            .unwrap_or_else(|e| panic!("fake gitlab: list refused: {e:?}"))
    }

    /// A person removes the list of `label` from a board.
    pub fn remove_board_list_by_hand(&self, board: u64, label: &str) {
        let mut st = lock(&self.state);
        let bi = board_index_or_panic(&st, board);
        let id = st
            .board_labels(st.planning.boards[bi].owner)
            .iter()
            .find(|l| l.name == label)
            .map(|l| l.id);
        st.planning.boards[bi].lists.retain(|l| Some(l.label) != id);
    }
}

fn board_index_or_panic(st: &State, board: u64) -> usize {
    let boards = &st.planning.boards;
    boards
        .iter()
        .position(|b| b.id == board)
        .unwrap_or_else(|| panic!("fake gitlab: no board {board}"))
}

#[cfg(test)]
mod tests;
