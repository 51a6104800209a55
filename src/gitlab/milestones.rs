//! Milestones, for `milestones`: the one of a title the project can use (its own or its
//! groups', `include_ancestors=true`; titles are unique across a project and its groups), a
//! new project milestone with its dates, and closing one (in the project or group that owns it).
//! Milestones work on GitLab Free.

use chrono::NaiveDate;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::GitlabClient;
use crate::http::{percent_encode, ApiError, Effect, Request};
use crate::paging::at_most::List;

/// A milestone as GitLab lists it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Milestone {
    /// The global id: what `milestone_id` and the paths take.
    pub id: u64,
    pub title: String,
    /// `active` or `closed`.
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub start_date: Option<NaiveDate>,
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
    /// Set for a group's milestone.
    #[serde(default)]
    pub group_id: Option<u64>,
}

impl Milestone {
    pub fn closed(&self) -> bool {
        self.state == "closed"
    }
}

impl GitlabClient {
    /// The milestone titled exactly `title` that the project's issues can take, if any.
    pub async fn milestone_titled(
        &self,
        project_id: u64,
        title: &str,
    ) -> Result<Option<Milestone>, ApiError> {
        let req = Request::get(format!("/projects/{project_id}/milestones"))
            .query("title", title)
            .query("include_ancestors", "true")
            .query("per_page", 20);
        let found: List<Milestone> = self.api.send(req).await?.body;
        Ok(found.0.into_iter().find(|m| m.title == title))
    }

    /// Make a project milestone. A create whose answer is lost is not sent again: the next
    /// look-up by title finds it.
    pub async fn create_milestone(
        &self,
        project_id: u64,
        title: &str,
        start: Option<NaiveDate>,
        due: Option<NaiveDate>,
    ) -> Result<Milestone, ApiError> {
        let mut body = Map::new();
        body.insert("title".into(), json!(title));
        if let Some(d) = start {
            body.insert("start_date".into(), json!(d.to_string()));
        }
        if let Some(d) = due {
            body.insert("due_date".into(), json!(d.to_string()));
        }
        let path = format!("/projects/{project_id}/milestones");
        let req = Request::get(path).json(Method::POST, Value::Object(body), Effect::Create);
        Ok(self.api.send::<Milestone>(req).await?.body)
    }

    /// Close a milestone where it lives (the project, or its group).
    pub async fn close_milestone(&self, project_id: u64, m: &Milestone) -> Result<(), ApiError> {
        let owner = match m.group_id {
            Some(group) => format!("/groups/{}", percent_encode(&group.to_string())),
            None => format!("/projects/{project_id}"),
        };
        let path = format!("{owner}/milestones/{}", m.id);
        let body = json!({ "state_event": "close" });
        let req = Request::get(path).json(Method::PUT, body, Effect::Idempotent);
        self.api.send::<Value>(req).await.map(|_| ())
    }
}
