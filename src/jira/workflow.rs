//! A project's workflow statuses, in the order a non-administrator can read: Jira keeps a
//! workflow as a graph that only administrators may read (`/workflow/search` answers 403 to
//! everyone else), so the order comes from the columns of the project's board
//! (`/rest/agile/1.0/board/{id}/configuration`, readable by anyone who can view the board).
//! Without a board (Jira without Jira Software, a project nobody made a board for), the
//! statuses are sorted by category (to do, in progress, done) and then as
//! `/project/{key}/statuses` lists them, and the caller is told so.
//!
//! Used by `vsa setup` (a stage per status) and meant for the status board (a list per status).

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::Value;

use super::JiraClient;
use crate::domain::StatusCategory;
use crate::http::{percent_encode, ApiError, ApiErrorKind, Request, Server};
use crate::paging::at_most;

/// Boards looked at for the column order: a project rarely has more than a handful, and each
/// costs a request.
const MAX_BOARDS: usize = 10;
/// Board listing pages followed (50 boards a page).
const MAX_BOARD_PAGES: usize = 4;
/// The most distinct statuses a project's workflows may have: far more than a workflow people
/// work in, and each "In Progress" one becomes a GitLab label and a board list. More is refused
/// (a server listing ever more would otherwise have thousands of them made).
pub const MAX_STATUSES: usize = 1_000;
/// The most status ids read from one board's columns (a board shows each status once).
const MAX_COLUMN_IDS: usize = 10 * MAX_STATUSES;

/// One status of the project's workflows (the same status shared by several issue types is
/// listed once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkflowStatus {
    pub id: String,
    pub name: String,
    pub category: StatusCategory,
}

/// Where the order of [`Workflow::statuses`] came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusOrder {
    /// The columns of this board, left to right (statuses on no column follow, by category).
    Board { id: u64, name: String },
    /// By category, then as Jira listed them; `why` says why no board gave the order.
    Categories { why: String },
}

impl StatusOrder {
    /// For output: "the columns of board 3 (VSA board)" or "by category (…)".
    pub fn describe(&self) -> String {
        match self {
            StatusOrder::Board { id, name } => format!(
                "the columns of Jira board {id} ({})",
                crate::safe_text::safe_within(name, 200)
            ),
            StatusOrder::Categories { why } => format!(
                "status category (to do, in progress, done), then as Jira lists them: {why}"
            ),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workflow {
    pub statuses: Vec<WorkflowStatus>,
    pub order: StatusOrder,
}

#[derive(Deserialize)]
struct IssueTypeStatuses {
    #[serde(default, deserialize_with = "at_most::deserialize")]
    statuses: Vec<Value>,
}

#[derive(Deserialize)]
struct BoardPage {
    #[serde(default, deserialize_with = "at_most::deserialize")]
    values: Vec<BoardRef>,
    #[serde(rename = "isLast", default)]
    is_last: Option<bool>,
}

#[derive(Clone, Deserialize)]
struct BoardRef {
    id: u64,
    #[serde(default)]
    name: String,
}

/// A board's columns, left to right, each with the ids of the statuses it holds.
type Columns = Vec<(String, Vec<String>)>;

impl JiraClient {
    /// The project's statuses, in workflow order as far as a non-administrator can tell.
    pub async fn workflow(&self, project: &str) -> Result<Workflow, ApiError> {
        let statuses = self.project_statuses(project).await?;
        let (columns, order) = match self.board_columns(project, &statuses).await {
            Ok(Some((board, columns))) => (
                columns,
                StatusOrder::Board {
                    id: board.id,
                    name: board.name,
                },
            ),
            Ok(None) => (
                Vec::new(),
                StatusOrder::Categories {
                    why: format!("project {project} has no Jira board"),
                },
            ),
            Err(e) => (
                Vec::new(),
                StatusOrder::Categories {
                    why: format!("its boards could not be read ({e})"),
                },
            ),
        };
        Ok(Workflow {
            statuses: in_column_order(statuses, &columns),
            order,
        })
    }

    /// `GET /project/{key}/statuses`: every issue type's statuses, each status once, in the
    /// order Jira first lists it (which is not the workflow's).
    pub async fn project_statuses(&self, project: &str) -> Result<Vec<WorkflowStatus>, ApiError> {
        let path = format!(
            "{}/project/{}/statuses",
            self.rest(),
            percent_encode(project)
        );
        let types: at_most::List<IssueTypeStatuses> = match self.api.send(Request::get(&path)).await
        {
            Ok(r) => r.body,
            Err(e) if e.status() == Some(404) => {
                return Err(e.with_hint(format!(
                    "Jira project {project} does not exist or this account cannot browse it: \
                     check jira_project"
                )))
            }
            Err(e) => return Err(e),
        };
        distinct_statuses(&types.0).map_err(|cause| ApiError {
            server: Server::Jira,
            what: format!("GET {}", crate::safe_text::safe_within(&path, 512)),
            kind: ApiErrorKind::OutOfBounds { cause },
            hint: Some(format!(
                "check the workflows of Jira project {project}; the next pass reads them again"
            )),
            source: None,
        })
    }

    /// The board of `project` whose columns hold the most of its statuses (the first listed
    /// on a tie), with its columns; `None` when the project has no board.
    async fn board_columns(
        &self,
        project: &str,
        statuses: &[WorkflowStatus],
    ) -> Result<Option<(BoardRef, Columns)>, ApiError> {
        let mut best: Option<(usize, BoardRef, Columns)> = None;
        for board in self.boards(project).await?.into_iter().take(MAX_BOARDS) {
            let columns = self.columns(board.id).await?;
            let on_columns: HashSet<&String> = columns.iter().flat_map(|(_, ids)| ids).collect();
            let covered = statuses
                .iter()
                .filter(|s| on_columns.contains(&s.id))
                .count();
            if best.as_ref().is_none_or(|(n, ..)| covered > *n) {
                best = Some((covered, board, columns));
            }
        }
        Ok(best.map(|(_, board, columns)| (board, columns)))
    }

    /// `GET /rest/agile/1.0/board?projectKeyOrId=`: the project's boards (a bounded number
    /// of pages).
    async fn boards(&self, project: &str) -> Result<Vec<BoardRef>, ApiError> {
        let mut out = Vec::new();
        for _ in 0..MAX_BOARD_PAGES {
            let req = Request::get("/rest/agile/1.0/board")
                .query("projectKeyOrId", project)
                .query("startAt", out.len())
                .query("maxResults", 50);
            let page: BoardPage = self.api.send(req).await?.body;
            let n = page.values.len();
            out.extend(page.values);
            if n == 0 || page.is_last != Some(false) || out.len() >= MAX_BOARDS {
                break;
            }
        }
        Ok(out)
    }

    /// `GET /rest/agile/1.0/board/{id}/configuration`: its columns, in order. Only the
    /// columns are decoded (the rest skipped unbuilt), each id as its own text.
    async fn columns(&self, board: u64) -> Result<Columns, ApiError> {
        let path = format!("/rest/agile/1.0/board/{board}/configuration");
        let config: BoardConfig = self.api.send(Request::get(path)).await?.body;
        let columns = config.column_config.map(|c| c.columns).unwrap_or_default();
        // At most `MAX_COLUMN_IDS` ids in all: the order of more statuses than a project may
        // have says nothing, and each is compared with each status.
        let mut room = MAX_COLUMN_IDS;
        Ok(columns
            .into_iter()
            .map(|c| {
                let ids: Vec<String> = c
                    .statuses
                    .iter()
                    .filter_map(|s| s.id.as_deref().and_then(raw_id))
                    .take(room)
                    .collect();
                room -= ids.len();
                let name = c.name.unwrap_or_default();
                (crate::safe_text::safe_within(&name, 200), ids)
            })
            .collect())
    }
}

#[derive(Deserialize)]
struct BoardConfig {
    #[serde(rename = "columnConfig", default)]
    column_config: Option<ColumnConfig>,
}

#[derive(Deserialize)]
struct ColumnConfig {
    #[serde(default, deserialize_with = "at_most::deserialize")]
    columns: Vec<ColumnWire>,
}

#[derive(Deserialize)]
struct ColumnWire {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "at_most::deserialize")]
    statuses: Vec<StatusRef>,
}

#[derive(Deserialize)]
struct StatusRef {
    #[serde(default)]
    id: Option<Box<serde_json::value::RawValue>>,
}

/// A status id as its JSON text says it: a non-empty string, or a number.
fn raw_id(raw: &serde_json::value::RawValue) -> Option<String> {
    let text = raw.get();
    if text.starts_with('"') {
        serde_json::from_str::<String>(text)
            .ok()
            .filter(|s| !s.is_empty())
    } else {
        text.parse::<serde_json::Number>()
            .ok()
            .map(|n| n.to_string())
    }
}

/// Each status of every issue type once (by id), in the order first listed; more than
/// [`MAX_STATUSES`] is an error naming the bound.
fn distinct_statuses(types: &[IssueTypeStatuses]) -> Result<Vec<WorkflowStatus>, String> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut out: Vec<WorkflowStatus> = Vec::new();
    for status in types.iter().flat_map(|t| &t.statuses) {
        let Some(s) = parse_status(status) else {
            continue;
        };
        if seen.insert(s.id.clone()) {
            if out.len() == MAX_STATUSES {
                return Err(format!(
                    "the project's workflows list more than {MAX_STATUSES} statuses, more than \
                     this tool makes labels and board lists for"
                ));
            }
            out.push(s);
        }
    }
    Ok(out)
}

/// A status object of `/statuses`: needs an id and a name.
fn parse_status(v: &Value) -> Option<WorkflowStatus> {
    let id = id_of(v.get("id"))?;
    let name = v.get("name").and_then(Value::as_str)?.trim();
    if name.is_empty() || name.chars().any(char::is_control) {
        return None;
    }
    let category = v.pointer("/statusCategory/key").and_then(Value::as_str);
    Some(WorkflowStatus {
        id,
        name: name.to_string(),
        category: StatusCategory::from_key(category),
    })
}

/// Jira sends status ids as strings; accept numbers too.
fn id_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The statuses in the board's column order; those on no column follow, by category (to do,
/// in progress, done, unknown) and then in their given order. Without columns, by category.
fn in_column_order(statuses: Vec<WorkflowStatus>, columns: &Columns) -> Vec<WorkflowStatus> {
    // Each id's first place on the board, looked up once per status (not a scan per
    // comparison of the sort).
    let mut places: HashMap<&str, usize> = HashMap::new();
    for (at, id) in columns.iter().flat_map(|(_, ids)| ids).enumerate() {
        places.entry(id.as_str()).or_insert(at);
    }
    let position = |s: &WorkflowStatus| places.get(s.id.as_str()).copied();
    let rank = |c: &StatusCategory| match c {
        StatusCategory::New => 0,
        StatusCategory::InProgress => 1,
        StatusCategory::Done => 2,
        StatusCategory::Unknown(_) => 3,
    };
    let mut indexed: Vec<(usize, WorkflowStatus)> = statuses.into_iter().enumerate().collect();
    // A stable sort: columns first (by position), then the rest by category, then as given.
    indexed.sort_by_key(|(i, s)| match position(s) {
        Some(p) => (0, p, 0, *i),
        None => (1, 0, rank(&s.category), *i),
    });
    indexed.into_iter().map(|(_, s)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(id: &str, name: &str, category: StatusCategory) -> WorkflowStatus {
        WorkflowStatus {
            id: id.into(),
            name: name.into(),
            category,
        }
    }

    #[test]
    fn board_columns_order_the_statuses_and_the_rest_follow_by_category() {
        use StatusCategory::*;
        let statuses = vec![
            status("1", "To Do", New),
            status("3", "Done", Done),
            status("4", "In Review", InProgress),
            status("5", "In Progress", InProgress),
            status("6", "Blocked", InProgress),
            status("7", "Backlog", New),
        ];
        let columns = vec![
            ("Todo".to_string(), vec!["1".to_string()]),
            ("Doing".to_string(), vec!["5".to_string(), "4".to_string()]),
            ("Done".to_string(), vec!["3".to_string()]),
        ];
        let names = |v: Vec<WorkflowStatus>| v.into_iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(
            names(in_column_order(statuses.clone(), &columns)),
            [
                "To Do",
                "In Progress",
                "In Review",
                "Done",
                "Backlog",
                "Blocked"
            ]
        );
        assert_eq!(
            names(in_column_order(statuses, &Vec::new())),
            [
                "To Do",
                "Backlog",
                "In Review",
                "In Progress",
                "Blocked",
                "Done"
            ]
        );
    }

    #[test]
    fn statuses_without_id_or_name_are_skipped() {
        let ok = serde_json::json!({"id": "3", "name": " In Review ",
                                    "statusCategory": {"key": "indeterminate"}});
        assert_eq!(
            parse_status(&ok),
            Some(status("3", "In Review", StatusCategory::InProgress))
        );
        assert_eq!(parse_status(&serde_json::json!({"name": "x"})), None);
        assert_eq!(
            parse_status(&serde_json::json!({"id": 4, "name": ""})),
            None
        );
        assert_eq!(
            parse_status(&serde_json::json!({"id": 4, "name": "a\u{1b}[2J"})),
            None
        );
    }

    /// Statuses repeated across issue types are kept once; past the bound the listing is
    /// refused, quickly (a pairwise check of 300,000 ids took minutes).
    #[test]
    fn statuses_are_kept_once_and_at_most_the_bound() {
        let types = |n: usize, repeat: usize| -> Vec<IssueTypeStatuses> {
            let statuses: Vec<Value> = (0..n)
                .map(|i| serde_json::json!({"id": i.to_string(), "name": format!("S{i}")}))
                .collect();
            (0..repeat)
                .map(|_| IssueTypeStatuses {
                    statuses: statuses.clone(),
                })
                .collect()
        };
        let kept = distinct_statuses(&types(MAX_STATUSES, 3)).expect("at the bound");
        assert_eq!(kept.len(), MAX_STATUSES);
        assert_eq!(kept[7].name, "S7");
        let started = std::time::Instant::now();
        let e = distinct_statuses(&types(300_000, 1)).expect_err("over the bound");
        assert!(e.contains("more than 1000 statuses"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    /// Ordering by a board of many column ids costs one look-up per status, not a scan.
    #[test]
    fn column_order_of_many_ids_is_quick() {
        let statuses: Vec<WorkflowStatus> = (0..MAX_STATUSES)
            .map(|i| status(&i.to_string(), &format!("S{i}"), StatusCategory::InProgress))
            .collect();
        let ids: Vec<String> = (0..MAX_COLUMN_IDS).rev().map(|i| i.to_string()).collect();
        let columns = vec![("All".to_string(), ids)];
        let started = std::time::Instant::now();
        let ordered = in_column_order(statuses, &columns);
        assert_eq!(ordered[0].id, (MAX_STATUSES - 1).to_string());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
