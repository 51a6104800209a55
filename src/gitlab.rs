//! GitLab client: project look-up (with the token's role), issue listing by iid batches or
//! whole project, create and edit, and project and group labels. Creates are paced below the
//! per-minute limit.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::{GitlabIssue, GitlabState, IssueEdit, StateEvent};
use crate::http::{percent_encode, Api, ApiError, Auth, Effect, Request, RetryPolicy, Server};
use crate::metrics::Metrics;
use crate::secret::Secret;

/// GitLab's maximum `per_page`, and the most iids worth putting in one URL.
pub const PAGE: usize = 100;

/// GitLab access levels (project members API).
pub const OWNER: u32 = 50;
pub const REPORTER: u32 = 20;
pub const PLANNER: u32 = 15;

pub struct GitlabClient {
    api: Api,
    pacer: CreatePacer,
    /// Whether the token's user is an instance admin, asked once and only when a project
    /// shows no membership (admins need none, and may set created_at like Owners).
    admin: tokio::sync::OnceCell<bool>,
}

#[derive(Clone, Debug)]
pub struct Project {
    pub id: u64,
    pub path: String,
    /// The token's effective access level on the project (the higher of project and group).
    pub access_level: u32,
    /// The group the project is in (`acme`), when its namespace is a group.
    pub group: Option<String>,
    /// The token's access level in that group (0 when it is no member); admins count as
    /// Owners.
    pub group_access_level: u32,
}

impl Project {
    /// Only Owners (and admins) may set `created_at`/`updated_at`; for anyone else GitLab
    /// silently ignores them.
    pub fn can_backdate(&self) -> bool {
        self.access_level >= OWNER
    }
    pub fn can_close(&self) -> bool {
        self.access_level >= PLANNER
    }
    /// Creating incidents needs Reporter; below that GitLab files a plain issue instead.
    pub fn can_create_incidents(&self) -> bool {
        self.access_level >= REPORTER
    }
    /// Group labels need a Planner (or higher) role in the group itself.
    pub fn can_create_group_labels(&self) -> bool {
        self.group.is_some() && self.group_access_level >= PLANNER
    }
}

#[derive(Debug, Deserialize)]
pub struct User {
    pub username: String,
    #[serde(default)]
    pub is_admin: Option<bool>,
}

#[derive(Deserialize)]
struct RawProject {
    id: u64,
    #[serde(default)]
    path_with_namespace: String,
    #[serde(default)]
    permissions: Option<Permissions>,
    #[serde(default)]
    namespace: Option<Namespace>,
}

#[derive(Deserialize)]
struct Namespace {
    #[serde(default)]
    full_path: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct RawLabel {
    name: String,
}

#[derive(Deserialize)]
struct Permissions {
    project_access: Option<Access>,
    group_access: Option<Access>,
}

#[derive(Deserialize)]
struct Access {
    access_level: u32,
}

#[derive(Deserialize)]
struct RawIssue {
    iid: u64,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: Option<String>,
    state: String,
    #[serde(default)]
    created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    issue_type: Option<String>,
}

impl From<RawIssue> for GitlabIssue {
    fn from(r: RawIssue) -> Self {
        GitlabIssue {
            iid: r.iid,
            title: r.title,
            description: r.description.unwrap_or_default(),
            state: if r.state == "closed" {
                GitlabState::Closed
            } else {
                GitlabState::Opened
            },
            created_at: r.created_at,
            labels: r.labels,
            issue_type: r.issue_type,
        }
    }
}

/// A new GitLab issue.
#[derive(Clone, Debug)]
pub struct NewIssue {
    pub title: String,
    pub description: String,
    pub labels: Vec<String>,
    /// Sent only when the token may set it (Owner); otherwise GitLab would drop it silently.
    /// It also stamps the label events of the create.
    pub created_at: Option<DateTime<Utc>>,
    /// `issue`, `incident`, ...
    pub issue_type: String,
}

impl GitlabClient {
    /// A client for the GitLab at `url` (without `/api/v4`).
    pub fn new(
        url: &str,
        token: Secret,
        creates_per_minute: u32,
        retry: RetryPolicy,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Self, ApiError> {
        Ok(GitlabClient {
            api: Api::new(
                Server::Gitlab,
                &format!("{url}/api/v4"),
                Auth::Bearer(token),
                retry,
                metrics,
            )?,
            pacer: CreatePacer::new(creates_per_minute),
            admin: tokio::sync::OnceCell::new(),
        })
    }

    pub async fn user(&self) -> Result<User, ApiError> {
        Ok(self.api.send(Request::get("/user")).await?.body)
    }

    async fn is_admin(&self) -> Result<bool, ApiError> {
        self.admin
            .get_or_try_init(|| async { Ok(self.user().await?.is_admin == Some(true)) })
            .await
            .copied()
    }

    /// The project by path or numeric id, with the token's role on it.
    pub async fn project(&self, project: &str) -> Result<Project, ApiError> {
        let path = format!("/projects/{}", percent_encode(project));
        let raw: RawProject = match self.api.send(Request::get(path)).await {
            Ok(r) => r.body,
            Err(e) if e.status() == Some(404) => {
                return Err(e.with_hint(format!(
                    "GitLab project {project:?} does not exist or the token's user is not a member: check gitlab_project"
                )))
            }
            Err(e) => return Err(e),
        };
        let level = |a: &Option<Access>| a.as_ref().map(|a| a.access_level).unwrap_or(0);
        let mut access_level = raw
            .permissions
            .as_ref()
            .map(|p| level(&p.project_access).max(level(&p.group_access)))
            .unwrap_or(0);
        let mut group_access_level = raw
            .permissions
            .as_ref()
            .map(|p| level(&p.group_access))
            .unwrap_or(0);
        if access_level == 0 && self.is_admin().await? {
            access_level = OWNER;
            group_access_level = OWNER;
        }
        let group = raw
            .namespace
            .filter(|n| n.kind.as_deref() == Some("group"))
            .and_then(|n| n.full_path)
            .filter(|p| !p.is_empty());
        Ok(Project {
            id: raw.id,
            path: if raw.path_with_namespace.is_empty() {
                project.to_string()
            } else {
                raw.path_with_namespace
            },
            access_level,
            group,
            group_access_level,
        })
    }

    /// The issues with these iids, in batches of 100 (never one request per issue). Iids that
    /// do not exist (deleted issues) are simply absent from the result.
    pub async fn issues_by_iid(
        &self,
        project_id: u64,
        iids: &[u64],
    ) -> Result<Vec<GitlabIssue>, ApiError> {
        let mut out = Vec::with_capacity(iids.len());
        for chunk in iids.chunks(PAGE) {
            let mut req = Request::get(format!("/projects/{project_id}/issues"))
                .query("state", "all")
                .query("per_page", PAGE);
            for iid in chunk {
                req = req.query("iids[]", iid);
            }
            let batch: Vec<RawIssue> = self.api.send(req).await?.body;
            out.extend(batch.into_iter().map(GitlabIssue::from));
        }
        Ok(out)
    }

    /// Every issue of the project, page by page (oldest first, so issues created while paging
    /// land on later pages instead of shifting earlier ones).
    pub async fn all_issues(&self, project_id: u64) -> Result<Vec<GitlabIssue>, ApiError> {
        let mut out = Vec::new();
        let mut page: u64 = 1;
        loop {
            let req = Request::get(format!("/projects/{project_id}/issues"))
                .query("state", "all")
                .query("order_by", "created_at")
                .query("sort", "asc")
                .query("per_page", PAGE)
                .query("page", page);
            let reply = self.api.send::<Vec<RawIssue>>(req).await?;
            let n = reply.body.len();
            out.extend(reply.body.into_iter().map(GitlabIssue::from));
            let next = reply
                .headers
                .get("x-next-page")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            match next {
                Some(p) if p > page && n > 0 => page = p,
                _ => break,
            }
        }
        Ok(out)
    }

    /// One issue's description as it is now (empty when it has none).
    pub async fn issue_description(&self, project_id: u64, iid: u64) -> Result<String, ApiError> {
        let req = Request::get(format!("/projects/{project_id}/issues/{iid}"));
        let raw: RawIssue = self.api.send(req).await?.body;
        Ok(raw.description.unwrap_or_default())
    }

    /// Create an issue, waiting first if the per-minute create budget is spent.
    pub async fn create(&self, project_id: u64, issue: &NewIssue) -> Result<GitlabIssue, ApiError> {
        self.pacer.wait_turn().await;
        let mut body = json!({
            "title": issue.title,
            "description": issue.description,
            "labels": issue.labels.join(","),
            "issue_type": issue.issue_type,
        });
        if let Some(at) = issue.created_at {
            body["created_at"] = json!(at.to_rfc3339());
        }
        let req = Request::get(format!("/projects/{project_id}/issues")).json(
            Method::POST,
            body,
            Effect::Create,
        );
        let raw: RawIssue = self.api.send(req).await?.body;
        Ok(raw.into())
    }

    pub async fn edit(
        &self,
        project_id: u64,
        iid: u64,
        edit: &IssueEdit,
    ) -> Result<GitlabIssue, ApiError> {
        let mut body = serde_json::Map::new();
        if let Some(t) = &edit.title {
            body.insert("title".into(), json!(t));
        }
        if let Some(d) = &edit.description {
            body.insert("description".into(), json!(d));
        }
        if let Some(e) = edit.state_event {
            let v = match e {
                StateEvent::Close => "close",
                StateEvent::Reopen => "reopen",
            };
            body.insert("state_event".into(), json!(v));
        }
        if let Some(at) = edit.updated_at {
            body.insert("updated_at".into(), json!(at.to_rfc3339()));
        }
        if !edit.add_labels.is_empty() {
            body.insert("add_labels".into(), json!(edit.add_labels.join(",")));
        }
        if !edit.remove_labels.is_empty() {
            body.insert("remove_labels".into(), json!(edit.remove_labels.join(",")));
        }
        if let Some(t) = &edit.issue_type {
            body.insert("issue_type".into(), json!(t));
        }
        let req = Request::get(format!("/projects/{project_id}/issues/{iid}")).json(
            Method::PUT,
            Value::Object(body),
            Effect::Idempotent,
        );
        let raw: RawIssue = self.api.send(req).await?.body;
        Ok(raw.into())
    }
}

impl GitlabClient {
    /// The names of every label the project can use: its own and its groups'.
    pub async fn labels(&self, project_id: u64) -> Result<Vec<String>, ApiError> {
        let mut out = Vec::new();
        let mut page: u64 = 1;
        loop {
            let req = Request::get(format!("/projects/{project_id}/labels"))
                .query("include_ancestor_groups", "true")
                .query("per_page", PAGE)
                .query("page", page);
            let reply = self.api.send::<Vec<RawLabel>>(req).await?;
            let n = reply.body.len();
            out.extend(reply.body.into_iter().map(|l| l.name));
            let next = reply
                .headers
                .get("x-next-page")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            match next {
                Some(p) if p > page && n > 0 => page = p,
                _ => return Ok(out),
            }
        }
    }

    /// Create a group label. `Ok(false)` when it exists already (409).
    pub async fn create_group_label(
        &self,
        group: &str,
        name: &str,
        color: &str,
        description: &str,
    ) -> Result<bool, ApiError> {
        let path = format!("/groups/{}/labels", percent_encode(group));
        self.create_label(path, name, color, description).await
    }

    /// Create a project label. `Ok(false)` when it exists already (409).
    pub async fn create_project_label(
        &self,
        project_id: u64,
        name: &str,
        color: &str,
        description: &str,
    ) -> Result<bool, ApiError> {
        let path = format!("/projects/{project_id}/labels");
        self.create_label(path, name, color, description).await
    }

    async fn create_label(
        &self,
        path: String,
        name: &str,
        color: &str,
        description: &str,
    ) -> Result<bool, ApiError> {
        let body = json!({ "name": name, "color": color, "description": description });
        // Creating a label twice is harmless (409), so a retry after a lost answer is safe.
        let req = Request::get(path).json(Method::POST, body, Effect::Idempotent);
        match self.api.send::<Value>(req).await {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(409) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Keeps creates under `limit` in any 60-second window, so a large backfill never meets
/// GitLab's issue-create limit (200/min on GitLab.com) instead of recovering from it.
struct CreatePacer {
    limit: usize,
    recent: Mutex<VecDeque<Instant>>,
}

impl CreatePacer {
    fn new(per_minute: u32) -> Self {
        CreatePacer {
            limit: per_minute.max(1) as usize,
            recent: Mutex::new(VecDeque::new()),
        }
    }

    async fn wait_turn(&self) {
        const WINDOW: Duration = Duration::from_secs(60);
        loop {
            let wait = {
                let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                while recent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= WINDOW)
                {
                    recent.pop_front();
                }
                if recent.len() < self.limit {
                    recent.push_back(now);
                    return;
                }
                recent
                    .front()
                    .map(|oldest| WINDOW.saturating_sub(now.duration_since(*oldest)))
                    .unwrap_or_default()
            };
            tracing::info!(
                wait_ms = wait.as_millis() as u64,
                "pacing GitLab issue creation below gitlab.creates_per_minute"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_fixture_deserialises() {
        let text = include_str!("../tests/fixtures/gitlab-issue.json");
        let raw: RawIssue = serde_json::from_str(text).expect("fixture parses");
        let issue = GitlabIssue::from(raw);
        assert_eq!(issue.iid, 1);
        assert_eq!(issue.state, GitlabState::Closed);
        assert!(issue.created_at.is_some());
        assert!(issue.labels.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn pacer_keeps_creates_under_the_limit() {
        let pacer = CreatePacer::new(3);
        let start = tokio::time::Instant::now();
        for _ in 0..3 {
            pacer.wait_turn().await;
        }
        assert!(start.elapsed() < Duration::from_secs(1));
        pacer.wait_turn().await;
        assert!(
            start.elapsed() >= Duration::from_secs(59),
            "{:?}",
            start.elapsed()
        );
    }
}
