//! The people who may be assigned issues of a project, for `check` (`assignees`): Cloud's
//! `GET /rest/api/3/user/assignable/search?project=KEY&startAt&maxResults`, Data Center's
//! `/rest/api/2/user/assignable/search?project=KEY&username=` (`username` is required there;
//! empty asks for everyone — unverified on a live Data Center). Both answer a bare array.
//! Cloud documents that it reads `maxResults` users and then drops those who cannot be
//! assigned, so a short page is not the last: only an empty page ends the list.

use super::planning::UserWire;
use super::{Deployment, JiraClient};
use crate::domain::JiraUser;
use crate::http::{ApiError, Request};
use crate::paging::at_most::List;

/// Users asked for per page.
const PAGE: usize = 100;
/// At most this many users are read (a site-wide project can have tens of thousands).
pub const MAX_ASSIGNABLE: usize = 1_000;

/// The assignable users read, and whether more were left unread.
#[derive(Debug, Default)]
pub struct Assignable {
    pub users: Vec<JiraUser>,
    /// True when [`MAX_ASSIGNABLE`] users were read and Jira may hold more.
    pub truncated: bool,
}

impl JiraClient {
    /// The users who may be assigned issues of `project`, at most [`MAX_ASSIGNABLE`], each once.
    pub async fn assignable_users(&self, project: &str) -> Result<Assignable, ApiError> {
        let mut out = Assignable::default();
        let path = format!("{}/user/assignable/search", self.rest());
        // A page advances `startAt` by what Jira read, not what it returned; the page count
        // is bounded too, as pages may come back short or empty-handed.
        for page in 0..MAX_ASSIGNABLE.div_ceil(PAGE) {
            let mut req = Request::get(&path)
                .query("project", project)
                .query("startAt", page * PAGE)
                .query("maxResults", PAGE);
            if self.deployment == Deployment::Datacenter {
                req = req.query("username", "");
            }
            let list: List<UserWire> = self.api.send(req).await?.body;
            if list.0.is_empty() {
                return Ok(out);
            }
            for user in list.0.into_iter().map(UserWire::into_user) {
                if !out.users.iter().any(|u| u.identity() == user.identity()) {
                    out.users.push(user);
                }
            }
        }
        out.truncated = true;
        Ok(out)
    }
}
