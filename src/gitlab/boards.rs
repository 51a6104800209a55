//! Issue boards and their label lists, for the status board: a project's boards with their
//! lists (`GET /projects/:id/boards`), a new board (`POST .../boards`), a new label list
//! (`POST .../boards/:board_id/lists`), and the ids of the labels a project can use (a list is
//! made from a label id). Label lists and several boards per project work on GitLab Free.

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use super::pages::{endless, header_u64};
use super::{GitlabClient, PAGE};
use crate::http::{ApiError, Effect, Request};
use crate::paging::{at_most::List, PageChain};

/// Pages of boards or labels read at most (100 a page): a project with more than 10,000 of
/// either is not one a person works in.
const MAX_PAGES: u64 = 100;

/// A project board as GitLab lists it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Board {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "crate::paging::at_most::deserialize")]
    pub lists: Vec<BoardList>,
}

/// One list of a board: a label list has its label; assignee, milestone and iteration lists
/// (paid tiers) have none.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct BoardList {
    pub id: u64,
    #[serde(default)]
    pub label: Option<LabelRef>,
}

/// A label the project can use, with the id a list is made from.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct LabelRef {
    pub id: u64,
    pub name: String,
}

impl Board {
    /// The names of the labels of its label lists, in position order.
    pub fn list_labels(&self) -> Vec<String> {
        let labels = self.lists.iter().filter_map(|l| l.label.as_ref());
        labels.map(|l| l.name.clone()).collect()
    }
}

impl GitlabClient {
    /// The project's boards, each with its lists.
    pub async fn project_boards(&self, project_id: u64) -> Result<Vec<Board>, ApiError> {
        self.every_page(&format!("/projects/{project_id}/boards"), &[])
            .await
    }

    /// Every label the project can use, its own and its groups', with their ids.
    pub async fn label_refs(&self, project_id: u64) -> Result<Vec<LabelRef>, ApiError> {
        let query = [("include_ancestor_groups", "true")];
        self.every_page(&format!("/projects/{project_id}/labels"), &query)
            .await
    }

    /// Make a board. A create whose answer is lost is not sent again: the next pass finds the
    /// board by its name.
    pub async fn create_board(&self, project_id: u64, name: &str) -> Result<Board, ApiError> {
        let path = format!("/projects/{project_id}/boards");
        let req = Request::get(path).json(Method::POST, json!({ "name": name }), Effect::Create);
        Ok(self.api.send::<Board>(req).await?.body)
    }

    /// Add a list for the label `label_id` at the end of a board. `Ok(false)` when the board
    /// has one already ("Label has already been taken"), so a retry after a lost answer is safe.
    pub async fn create_board_list(
        &self,
        project_id: u64,
        board_id: u64,
        label_id: u64,
    ) -> Result<bool, ApiError> {
        let path = format!("/projects/{project_id}/boards/{board_id}/lists");
        let body = json!({ "label_id": label_id });
        let req = Request::get(path).json(Method::POST, body, Effect::Idempotent);
        match self.api.send::<serde::de::IgnoredAny>(req).await {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(400) && e.to_string().contains("already been taken") => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Every page of a GitLab list, followed by `x-next-page` and bounded.
    async fn every_page<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&'static str, &'static str)],
    ) -> Result<Vec<T>, ApiError> {
        let mut out = Vec::new();
        let mut page: u64 = 1;
        let mut chain = PageChain::new();
        loop {
            let mut req = Request::get(path)
                .query("per_page", PAGE)
                .query("page", page);
            for (k, v) in query {
                req = req.query(k, v);
            }
            let reply = self.api.send::<List<T>>(req).await?;
            let n = reply.body.0.len();
            chain.expect(header_u64(&reply.headers, "x-total").unwrap_or(MAX_PAGES * PAGE as u64));
            out.extend(reply.body.0);
            match header_u64(&reply.headers, "x-next-page") {
                Some(p) if p > page && p <= MAX_PAGES && n > 0 => {
                    chain
                        .advance(n, &p.to_string())
                        .map_err(|cause| endless(path, cause))?;
                    page = p;
                }
                Some(p) if p > MAX_PAGES => {
                    return Err(endless(path, format!("more than {MAX_PAGES} pages")))
                }
                _ => return Ok(out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_board_keeps_its_label_lists_in_order_and_skips_other_lists() {
        let board: Board = serde_json::from_value(json!({
            "id": 7, "name": "Jira workflow",
            "lists": [
                {"id": 1, "label": {"id": 5, "name": "jira-status::In Progress"}, "position": 0},
                {"id": 2, "label": null, "assignee": {"id": 3}, "position": 1},
                {"id": 3, "label": {"id": 6, "name": "Doing"}, "position": 2}
            ]
        }))
        .expect("a board");
        assert_eq!(board.list_labels(), ["jira-status::In Progress", "Doing"]);
    }
}
