//! GitLab client: project look-up (with the token's role), issue listing by iid batches or
//! whole project, create and edit, and project and group labels. Creates are paced to the
//! server's own limit (`pacer`).

mod boards;
mod graphql;
mod milestones;
mod pacer;
mod pacing_metrics;
mod pages;
mod people;
mod search;
mod value_streams;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::{GitlabIid, GitlabIssue, GitlabState, IssueEdit, StateEvent};
use crate::http::{
    percent_encode, Api, ApiError, ApiErrorKind, Auth, ClientOptions, Effect, Request, Server,
};
use crate::paging::at_most::List;
use crate::secret::Secret;

pub use boards::{Board, BoardList, LabelRef};
pub use graphql::{GitlabGraphql, GraphqlError};
pub use milestones::Milestone;
pub use pacer::{CreatePacer, NotAdmitted, Snapshot as PacerSnapshot};
pub use pages::IssueListing;
use pages::IssueStatistics;
pub use search::FoundMirror;
pub use value_streams::{StageEvent, StageInput, StreamNamespace, StreamStage, ValueStream};

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
    iid: GitlabIid,
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
    #[serde(default)]
    assignees: Vec<people::UserId>,
    #[serde(default)]
    milestone: Option<RawMilestone>,
}

#[derive(Deserialize)]
struct RawMilestone {
    #[serde(default)]
    title: String,
}

impl From<RawIssue> for GitlabIssue {
    /// Keeps what the planner needs; the description is read for its marker and link and then
    /// dropped.
    fn from(r: RawIssue) -> Self {
        let state = if r.state == "closed" {
            GitlabState::Closed
        } else {
            GitlabState::Opened
        };
        let mut issue = GitlabIssue::new(
            r.iid,
            r.title,
            state,
            r.description.as_deref().unwrap_or(""),
        );
        issue.created_at = r.created_at;
        issue.labels = r
            .labels
            .into_iter()
            .filter(|l| crate::domain::is_scoped_label(l))
            .collect();
        issue.issue_type = r.issue_type.map(crate::domain::gitlab_issue_type);
        issue.milestone = r.milestone.map(|m| m.title);
        issue.assignees = r.assignees.into_iter().map(|a| a.id).collect();
        issue
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
    pub due_date: Option<chrono::NaiveDate>,
    /// Empty: none.
    pub assignee_ids: Vec<u64>,
    /// `milestones`: the id of the milestone to create it in.
    pub milestone_id: Option<u64>,
}

impl GitlabClient {
    /// A client for the GitLab at `url` (without `/api/v4`).
    /// `creates_per_minute`: a hard cap on creates; `None` learns the server's limit.
    pub fn new(
        url: &str,
        token: Secret,
        creates_per_minute: Option<u32>,
        opts: &ClientOptions,
    ) -> Self {
        GitlabClient {
            api: Api::new(
                Server::Gitlab,
                &format!("{url}/api/v4"),
                Auth::Bearer(token),
                opts,
            ),
            pacer: CreatePacer::new(
                creates_per_minute,
                opts.retry.create_rate_limit_backoff,
                opts.retry.max_wait,
            ),
            admin: tokio::sync::OnceCell::new(),
        }
    }

    /// The token's user. `/user` is served by every GitLab, so a 404 says the base URL is
    /// wrong.
    pub async fn user(&self) -> Result<User, ApiError> {
        match self.api.send(Request::get("/user")).await {
            Ok(r) => Ok(r.body),
            Err(e) if e.status() == Some(404) => {
                let api = self.api.base_url();
                let base = api.strip_suffix("/api/v4").unwrap_or(api);
                Err(e.with_hint(format!(
                    "nothing answers at {api}/user: gitlab.url ({base}) is not GitLab's base URL; \
                     give the address GitLab opens at, without a group or project path \
                     (https://gitlab.com, https://git.example.com)"
                )))
            }
            Err(e) => Err(e),
        }
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
                // The project, or the whole base URL? `/user` tells (one request, on failure).
                return Err(match self.user().await {
                    Err(wrong_url) if wrong_url.status() == Some(404) => wrong_url,
                    _ => e.with_hint(format!(
                        "GitLab project {project:?} does not exist or the token's user is not a member: check gitlab_project"
                    )),
                });
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
        iids: &[GitlabIid],
    ) -> Result<Vec<GitlabIssue>, ApiError> {
        let mut out = Vec::with_capacity(iids.len());
        for chunk in iids.chunks(PAGE) {
            let mut req = Request::get(format!("/projects/{project_id}/issues"))
                .query("state", "all")
                .query("per_page", PAGE);
            for iid in chunk {
                req = req.query("iids[]", iid);
            }
            let batch: List<RawIssue> = self.api.send(req).await?.body;
            out.extend(batch.0.into_iter().map(GitlabIssue::from));
        }
        Ok(out)
    }

    /// Every issue of the project, a page at a time, oldest first (issues created while paging
    /// land on later pages instead of shifting earlier ones). Keyset paging is asked for and
    /// followed through the `Link: rel="next"` URL, so projects beyond GitLab's offset limits
    /// (no `x-total` past 10,000; GitLab.com refuses deep offsets) are read whole; a GitLab
    /// without keyset paging for issues answers with offset links, followed the same way.
    pub fn issue_listing(&self, project_id: u64) -> IssueListing<'_> {
        IssueListing::new(self, project_id)
    }

    /// How many issues the project has, in all states (`issues_statistics`).
    async fn issue_count(&self, project_id: u64) -> Result<u64, ApiError> {
        let req = Request::get(format!("/projects/{project_id}/issues_statistics"));
        let stats: IssueStatistics = self.api.send(req).await?.body;
        Ok(stats.all())
    }

    /// One issue's description as it is now (empty when it has none).
    pub async fn issue_description(
        &self,
        project_id: u64,
        iid: GitlabIid,
    ) -> Result<String, ApiError> {
        let req = Request::get(format!("/projects/{project_id}/issues/{iid}"));
        let raw: RawIssue = self.api.send(req).await?.body;
        Ok(raw.description.unwrap_or_default())
    }

    /// Create an issue when the pacer lets it through. A create the server refuses for its
    /// create limit (a bare 429) is sent again after the pacer's hold, up to
    /// `retry.max_attempts` times; other 429s are holds the HTTP layer keeps.
    pub async fn create(&self, project_id: u64, issue: &NewIssue) -> Result<GitlabIssue, ApiError> {
        let body = create_body(issue);
        let path = format!("/projects/{project_id}/issues");
        let mut refused: u32 = 0;
        let metrics = pacing_metrics::Creates(self.api.metrics());
        loop {
            let waiting = metrics.waiting();
            let admitted = self.pacer.admit(self.api.stop()).await;
            drop(waiting);
            let ticket = match admitted {
                Ok(ticket) => ticket,
                Err(NotAdmitted::Stopped) => return Err(stopped(&path)),
                Err(NotAdmitted::TooLong(wait)) => return Err(held_too_long(&path, wait, metrics)),
            };
            // The pacer counts the create from when it actually goes out.
            let sending = || self.pacer.sending(&ticket);
            let req = Request::get(&path)
                .json(Method::POST, body.clone(), Effect::Create)
                .caller_paces()
                .on_send(&sending);
            match self.api.send::<RawIssue>(req).await {
                Ok(reply) => {
                    self.pacer.done(ticket);
                    metrics.answered("created");
                    return Ok(reply.body.into());
                }
                Err(e) if matches!(e.kind, ApiErrorKind::Paced { .. }) => {
                    metrics.answered("refused");
                    refused += 1;
                    self.pacer.refused(ticket);
                    if refused >= self.api.policy().max_attempts {
                        return Err(e.with_hint(format!(
                            "GitLab refused this create for its rate limit {refused} times; the next pass continues"
                        )));
                    }
                }
                Err(e) => {
                    // Not sent (a stop came first, or GitLab's general throttle kept refusing
                    // it before its create limit saw it): it does not count. Anything else
                    // reached GitLab, whose limiter counts before it validates.
                    if matches!(e.kind, ApiErrorKind::Stopped) || e.status() == Some(429) {
                        self.pacer.not_sent(ticket);
                    } else {
                        self.pacer.done(ticket);
                    }
                    return Err(e);
                }
            }
        }
    }

    /// The create pacer, to save and restore its state between runs.
    pub fn pacer(&self) -> &CreatePacer {
        &self.pacer
    }

    pub async fn edit(
        &self,
        project_id: u64,
        iid: GitlabIid,
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
        if let Some(d) = edit.due_date {
            // `null` clears it.
            body.insert("due_date".into(), json!(d.map(|d| d.to_string())));
        }
        if let Some(ids) = &edit.assignee_ids {
            body.insert("assignee_ids".into(), json!(ids));
        }
        if let Some(id) = edit.milestone.as_ref().and_then(|m| m.id) {
            body.insert("milestone_id".into(), json!(id));
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

/// A create's request body: optional fields only when set.
fn create_body(issue: &NewIssue) -> Value {
    let mut body = json!({
        "title": issue.title,
        "description": issue.description,
        "labels": issue.labels.join(","),
        "issue_type": issue.issue_type,
    });
    if let Some(at) = issue.created_at {
        body["created_at"] = json!(at.to_rfc3339());
    }
    if let Some(d) = issue.due_date {
        body["due_date"] = json!(d.to_string());
    }
    if !issue.assignee_ids.is_empty() {
        body["assignee_ids"] = json!(issue.assignee_ids);
    }
    if let Some(id) = issue.milestone_id {
        body["milestone_id"] = json!(id);
    }
    body
}

/// The pacer would hold this create longer than `retry.max_wait` (a window configured longer).
/// A create not sent: the pacer's wait is longer than `retry.max_wait`. Counted as `held`
/// (the pass fails it at once, so it is never seen waiting).
fn held_too_long(
    path: &str,
    wait: std::time::Duration,
    metrics: pacing_metrics::Creates,
) -> ApiError {
    metrics.answered("held");
    ApiError {
        server: Server::Gitlab,
        what: format!("POST {path}"),
        kind: ApiErrorKind::OutOfBounds {
            cause: format!(
                "the create pacer would hold it {} ms for GitLab's create limit, longer than retry.max_wait",
                wait.as_millis()
            ),
        },
        hint: Some("the next pass continues".into()),
        source: None,
    }
}

fn stopped(path: &str) -> ApiError {
    ApiError {
        server: Server::Gitlab,
        what: format!("POST {path}"),
        kind: ApiErrorKind::Stopped,
        hint: None,
        source: None,
    }
}

impl GitlabClient {
    /// The names of every label the project can use: its own and its groups'.
    pub async fn labels(&self, project_id: u64) -> Result<Vec<String>, ApiError> {
        let labels = self.label_refs(project_id).await?;
        Ok(labels.into_iter().map(|l| l.name).collect())
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
        match self.api.send::<serde::de::IgnoredAny>(req).await {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(409) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pages::next_page;
    use super::*;

    #[test]
    fn issue_fixture_deserialises() {
        let text = include_str!("../tests/fixtures/gitlab-issue.json");
        let raw: RawIssue = serde_json::from_str(text).expect("fixture parses");
        let issue = GitlabIssue::from(raw);
        assert_eq!(issue.iid, GitlabIid::new(1));
        assert_eq!(issue.state, GitlabState::Closed);
        assert!(issue.created_at.is_some());
        assert!(issue.labels.is_empty());
    }

    #[test]
    fn arbitrary_listings_projects_and_labels_never_panic_the_decoders() {
        let fixture = include_bytes!("../tests/fixtures/gitlab-issue.json");
        let listing = format!("[{}]", String::from_utf8_lossy(fixture));
        let issues: &[&[u8]] = &[
            fixture,
            listing.as_bytes(),
            b"[{\"iid\":3,\"state\":\"opened\",\"title\":\"t\",\"labels\":[\"a::b\"],\"description\":\"x\\n\\n<!-- jira-gitlab-reconciler:jira-id=10014 -->\\n[VSA-5](https://j/browse/VSA-5)\",\"issue_type\":\"incident\",\"created_at\":\"2024-01-01T00:00:00Z\"}]",
        ];
        crate::rng::fuzz::check("GitLab issues", issues, 3000, |body| {
            if let Ok(list) = crate::http::decode_as::<List<RawIssue>>(body) {
                let _: Vec<GitlabIssue> = list.0.into_iter().map(GitlabIssue::from).collect();
            }
            if let Ok(one) = crate::http::decode_as::<RawIssue>(body) {
                let _ = GitlabIssue::from(one);
            }
        });
        let others: &[&[u8]] = &[
            br#"{"id":4,"path_with_namespace":"acme/platform","permissions":{"project_access":
                {"access_level":50},"group_access":null},"namespace":{"full_path":"acme","kind":"group"}}"#,
            br##"[{"id":3,"name":"status::Done","color":"#fff"}]"##,
            br#"[{"id":1,"name":"b","lists":[{"id":2,"label":{"id":3,"name":"x"}}]}]"#,
            br#"{"username":"bot","is_admin":true}"#,
            br#"{"statistics":{"counts":{"all":3,"closed":1,"opened":2}}}"#,
        ];
        crate::rng::fuzz::check("GitLab projects, labels, users", others, 3000, |body| {
            let _ = crate::http::decode_as::<RawProject>(body);
            let _ = crate::http::decode_as::<List<LabelRef>>(body);
            let _ = crate::http::decode_as::<List<Board>>(body);
            let _ = crate::http::decode_as::<User>(body);
            let _ = crate::http::decode_as::<IssueStatistics>(body);
        });
    }

    #[test]
    fn next_page_follows_links_and_offsets() {
        use reqwest::header::{HeaderMap, HeaderValue};
        let mut h = HeaderMap::new();
        h.insert(
            "link",
            HeaderValue::from_static(
                "<https://proxy.example/api/v4/projects/4/issues?cursor=abc&per_page=100>; rel=\"next\", <https://proxy.example/api/v4/projects/4/issues?per_page=100>; rel=\"first\"",
            ),
        );
        assert_eq!(
            next_page(&h, "/projects/4/issues?per_page=100", 100),
            Ok(Some(
                "/projects/4/issues?cursor=abc&per_page=100".to_string()
            ))
        );
        assert_eq!(next_page(&h, "/x", 0), Ok(None), "an empty page ends it");
        let mut odd = HeaderMap::new();
        odd.insert(
            "link",
            HeaderValue::from_static("<https://elsewhere.example/next?page=2>; rel=\"next\""),
        );
        assert!(next_page(&odd, "/x", 100).is_err(), "not silently the end");
        let mut h = HeaderMap::new();
        h.insert("x-next-page", HeaderValue::from_static("3"));
        assert_eq!(
            next_page(&h, "/projects/4/issues?state=all&page=2", 100),
            Ok(Some("/projects/4/issues?state=all&page=3".to_string()))
        );
        h.insert("x-next-page", HeaderValue::from_static(""));
        assert_eq!(next_page(&h, "/projects/4/issues?page=9", 100), Ok(None));
    }
}
