//! Who is who in GitLab, for `assignees`: a user by username, users whose *public* e-mail is
//! exactly an address (GitLab's list shows no e-mails to non-admins, so each candidate's
//! profile is read), and whether a user is a member of a project (GitLab drops assignees who
//! are not, silently).

use serde::Deserialize;

use super::GitlabClient;
use crate::http::{ApiError, Request};
use crate::paging::at_most::List;

/// Candidates read per e-mail search: an exact address rarely matches more than one person,
/// and the search also matches names containing the text.
const CANDIDATES: usize = 20;

#[derive(Debug, Deserialize)]
pub(super) struct UserId {
    pub id: u64,
}

#[derive(Deserialize)]
struct UserWire {
    id: u64,
    #[serde(default)]
    username: String,
    #[serde(default)]
    public_email: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

impl GitlabClient {
    /// The id of the user called `username` (any case), if there is one.
    pub async fn user_id(&self, username: &str) -> Result<Option<u64>, ApiError> {
        let req = Request::get("/users").query("username", username);
        let list: List<UserWire> = self.api.send(req).await?.body;
        Ok(list
            .0
            .into_iter()
            .find(|u| u.username.eq_ignore_ascii_case(username))
            .map(|u| u.id))
    }

    /// The ids of users whose public e-mail (for an admin token: any e-mail) is `email`.
    pub async fn users_with_email(&self, email: &str) -> Result<Vec<u64>, ApiError> {
        let req = Request::get("/users").query("search", email);
        let list: List<UserWire> = self.api.send(req).await?.body;
        let mut out = Vec::new();
        for candidate in list.0.into_iter().take(CANDIDATES) {
            let profile: UserWire = self
                .api
                .send(Request::get(format!("/users/{}", candidate.id)))
                .await?
                .body;
            let shown = [profile.public_email, profile.email, candidate.email];
            if shown
                .iter()
                .flatten()
                .any(|m| m.trim().eq_ignore_ascii_case(email))
            {
                out.push(profile.id);
            }
        }
        Ok(out)
    }

    /// Whether the user is a member of the project (directly or through its groups).
    pub async fn is_member(&self, project_id: u64, user_id: u64) -> Result<bool, ApiError> {
        let path = format!("/projects/{project_id}/members/all/{user_id}");
        match self.api.send::<UserId>(Request::get(path)).await {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
