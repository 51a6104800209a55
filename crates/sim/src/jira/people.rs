//! People in the fake Jira, as issues show them (`assignee`) and `GET /rest/api/{v}/user`.
//!
//! - Cloud: `accountId`, `displayName`, `active`, `timeZone`, `accountType: "atlassian"`; no
//!   `name` or `key`. `emailAddress` appears only for people whose profile shows it (most Cloud
//!   sites hide it): when hidden the key is **left out** (Cloud may also send `null`).
//! - Data Center: `name` (the username, which a rename changes), `key` (`JIRAUSER10101`, stable),
//!   `emailAddress` unless hidden, `displayName`, `active`, `timeZone`.
//! - `GET /rest/api/{v}/user?accountId=` (Cloud) or `?username=` / `?key=` (Data Center); 404
//!   when unknown.
//! - `GET /rest/api/{v}/user/assignable/search?project=KEY&startAt&maxResults` (Cloud; `query`
//!   optional) or `...&username=` (Data Center, where `username` is required; empty matches
//!   everyone): a bare JSON array of users. As Cloud documents, Jira reads `maxResults` users
//!   and *then* drops those who cannot be assigned (here: the inactive), so a page may be
//!   short while more follow; only an empty page ends the list. `maxResults` capped at 1000.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::http::jira_error;
use super::planning::{read, read_project, Planning};
use super::render::Ctx;
use super::{lock, FakeJira, Shared};

#[derive(Clone, Debug)]
pub(super) struct Person {
    /// Internal number (1, 2, ...): what issues store.
    pub(super) number: u64,
    account_id: String,
    name: String,
    key: String,
    pub(super) display_name: String,
    email: String,
    email_visible: bool,
    active: bool,
}

/// A person as a test sees them: every identifier either deployment uses.
#[derive(Clone, Debug, PartialEq)]
pub struct JiraUser {
    /// Cloud's id (`5b10ac8d82e05b22cc7d4d01`).
    pub account_id: String,
    /// Data Center's username.
    pub name: String,
    /// Data Center's stable key.
    pub key: String,
    pub display_name: String,
    pub email: String,
}

impl Person {
    fn public(&self) -> JiraUser {
        JiraUser {
            account_id: self.account_id.clone(),
            name: self.name.clone(),
            key: self.key.clone(),
            display_name: self.display_name.clone(),
            email: self.email.clone(),
        }
    }

    /// The id this deployment's changelogs and JQL use: accountId on Cloud, key on DC.
    pub(super) fn reference(&self, data_center: bool) -> String {
        if data_center {
            self.key.clone()
        } else {
            self.account_id.clone()
        }
    }
}

impl Planning {
    /// A person by accountId, username, key or e-mail.
    pub(super) fn user_by_any(&self, value: &str) -> Option<&Person> {
        self.people.iter().find(|p| {
            p.account_id == value
                || p.name.eq_ignore_ascii_case(value)
                || p.key.eq_ignore_ascii_case(value)
                || p.email.eq_ignore_ascii_case(value)
        })
    }

    pub(super) fn person(&self, number: u64) -> Option<&Person> {
        self.people.iter().find(|p| p.number == number)
    }
}

/// The user object of this deployment.
pub(super) fn user_json(ctx: &Ctx, p: &Person) -> Value {
    let avatar = format!("{}/secure/useravatar?ownerId={}", ctx.base, p.key);
    let mut body = json!({
        "avatarUrls": {"48x48": avatar, "24x24": avatar, "16x16": avatar, "32x32": avatar},
        "displayName": p.display_name,
        "active": p.active,
        "timeZone": "Europe/Berlin",
    });
    if ctx.state.planning.data_center {
        body["self"] = json!(format!("{}/rest/api/2/user?username={}", ctx.base, p.name));
        body["name"] = json!(p.name);
        body["key"] = json!(p.key);
    } else {
        let link = format!(
            "{}/rest/api/{}/user?accountId={}",
            ctx.base, ctx.api, p.account_id
        );
        body["self"] = json!(link);
        body["accountId"] = json!(p.account_id);
        body["accountType"] = json!("atlassian");
    }
    if p.email_visible {
        body["emailAddress"] = json!(p.email);
    }
    body
}

impl FakeJira {
    /// Add a person. `email_visible`: whether their profile shows the e-mail to the API
    /// (Cloud's profile visibility; Data Center's e-mail visibility setting).
    pub fn add_user(&self, display_name: &str, email: &str, email_visible: bool) -> JiraUser {
        let mut st = lock(&self.shared.state);
        let number = st.planning.people.len() as u64 + 1;
        let name = email.split('@').next().unwrap_or(email).to_lowercase();
        let person = Person {
            number,
            account_id: format!("5b10ac8d82e05b22cc7d{:04x}", 0x4d00 + number),
            name,
            key: format!("JIRAUSER{}", 10_100 + number),
            display_name: display_name.to_owned(),
            email: email.to_owned(),
            email_visible,
            active: true,
        };
        let public = person.public();
        st.planning.people.push(person);
        public
    }

    /// Deactivate (or reactivate) a person, by any of their identifiers.
    pub fn set_user_active(&self, who: &str, active: bool) {
        let mut st = lock(&self.shared.state);
        let p = st
            .planning
            .people
            .iter_mut()
            .find(|p| p.account_id == who || p.key == who || p.name == who || p.email == who)
            .unwrap_or_else(|| panic!("fake Jira has no user {who}"));
        p.active = active;
    }
}

/// `GET /rest/api/{v}/user`.
pub(super) async fn get_user(
    State(s): State<Arc<Shared>>,
    Path(v): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    read(&s, &v, &headers, |ctx| {
        let dc = ctx.state.planning.data_center;
        let wanted: Vec<&str> = if dc {
            vec!["username", "key"]
        } else {
            vec!["accountId"]
        };
        let value = q.iter().find(|(k, _)| wanted.contains(&k.as_str()));
        let Some((kind, value)) = value else {
            let msg = format!("The {} query parameter is required.", wanted[0]);
            return jira_error(StatusCode::BAD_REQUEST, &msg);
        };
        let found = ctx
            .state
            .planning
            .people
            .iter()
            .find(|p| match kind.as_str() {
                "accountId" => p.account_id == *value,
                "username" => p.name.eq_ignore_ascii_case(value),
                _ => p.key.eq_ignore_ascii_case(value),
            });
        match found {
            Some(p) => Json(user_json(ctx, p)).into_response(),
            None => jira_error(
                StatusCode::NOT_FOUND,
                "Specified user does not exist or you do not have required permissions",
            ),
        }
    })
    .await
}

/// `GET /rest/api/{v}/user/assignable/search`, for a project.
pub(super) async fn assignable(
    State(s): State<Arc<Shared>>,
    Path(v): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let Some(key) = get("project") else {
        return jira_error(
            StatusCode::BAD_REQUEST,
            "The issueKey, issueId or project query parameter is required.",
        );
    };
    let number = |k: &str, d: usize| get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    let (start, max) = (
        number("startAt", 0),
        number("maxResults", 50).clamp(1, 1000),
    );
    read_project(&s, &v, &key, &headers, |ctx, _| {
        let dc = ctx.state.planning.data_center;
        let text = if dc { get("username") } else { get("query") };
        if dc && text.is_none() {
            let msg = "The username query parameter was not provided";
            return jira_error(StatusCode::BAD_REQUEST, msg);
        }
        let text = text.unwrap_or_default().to_lowercase();
        let matches = |p: &&Person| {
            [&p.display_name, &p.email, &p.name]
                .iter()
                .any(|f| f.to_lowercase().starts_with(&text))
        };
        let people = ctx.state.planning.people.iter().filter(matches);
        let page = people.skip(start).take(max).filter(|p| p.active);
        let body: Vec<Value> = page.map(|p| user_json(ctx, p)).collect();
        Json(body).into_response()
    })
    .await
}
