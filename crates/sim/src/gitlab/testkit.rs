//! Shared set-up for the HTTP tests of issue 17's endpoints: a fake with a project in a group,
//! people with tokens at each role, and request helpers.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

use super::{FakeGitlab, GitlabOptions, Role, Tier};

pub(super) const PROJECT: &str = "acme/platform";
pub(super) const OWNER: &str = "owner-token";
pub(super) const REPORTER: &str = "reporter-token";
pub(super) const PLANNER: &str = "planner-token";
pub(super) const GUEST: &str = "guest-token";
pub(super) const OUTSIDER: &str = "outsider-token";
pub(super) const ADMIN: &str = "admin-token";

pub(super) struct Kit {
    pub(super) gl: FakeGitlab,
    http: reqwest::Client,
}

impl Kit {
    pub(super) async fn new(tier: Tier) -> Kit {
        let gl = FakeGitlab::start(GitlabOptions {
            tier,
            ..GitlabOptions::default()
        })
        .await
        .expect("start fake gitlab");
        gl.add_project(PROJECT);
        for (name, token, role) in [
            ("olga", OWNER, Some(Role::Owner)),
            ("rita", REPORTER, Some(Role::Reporter)),
            ("pia", PLANNER, Some(Role::Planner)),
            ("gus", GUEST, Some(Role::Guest)),
            ("otto", OUTSIDER, None),
        ] {
            gl.add_user(name, token);
            if let Some(role) = role {
                gl.grant(PROJECT, name, role);
            }
        }
        gl.add_admin("ada", ADMIN);
        Kit {
            gl,
            http: reqwest::Client::new(),
        }
    }

    /// A request to `/api/v4{path}` (or `/api/graphql`) with `PRIVATE-TOKEN: token`.
    pub(super) fn req(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        let url = if path.starts_with("/api/") {
            format!("{}{path}", self.gl.url())
        } else {
            format!("{}/api/v4{path}", self.gl.url())
        };
        self.http
            .request(method, url)
            .header("PRIVATE-TOKEN", token)
    }

    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.req(method, path, token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("send");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub(super) async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    pub(super) async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub(super) async fn put(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, token, Some(body)).await
    }

    /// An issue created by the Owner; returns its iid.
    pub(super) async fn issue(&self, body: Value) -> u64 {
        let (status, issue) = self.post("/projects/4/issues", OWNER, body).await;
        assert_eq!(status, StatusCode::CREATED, "{issue}");
        issue["iid"].as_u64().expect("iid")
    }

    /// A GraphQL request; returns the whole answer.
    pub(super) async fn graphql(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = serde_json::json!({ "query": query, "variables": variables });
        let (status, answer) = self.post("/api/graphql", token, body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }
}
