//! Finding a Jira issue's mirror by its key alone, for a developer's machine that has no state
//! database (`ref`): GitLab's issue search for the key, each hit confirmed by its description
//! (the "Mirrored from Jira issue" link ends in `/browse/<KEY>`, and the marker says it is a
//! mirror). GitLab's search matches word prefixes (`VSA-12` finds `VSA-120` too) and has a low
//! rate limit of its own, so the oldest issues come first and the pages read are bounded.

use serde::Deserialize;

use super::pages::header_u64;
use super::{GitlabClient, PAGE};
use crate::domain::{parse_link, parse_marker};
use crate::http::{percent_encode, ApiError, Request};
use crate::paging::at_most::List;

/// Pages of search hits read at most (100 hits a page): `VSA-1` also finds VSA-10…19,
/// VSA-100…199 and so on, but its own mirror is among the oldest.
const MAX_PAGES: u64 = 5;

/// A mirror found by its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundMirror {
    pub iid: u64,
    /// `acme/platform#57`.
    pub reference: String,
    pub web_url: String,
    pub open: bool,
}

#[derive(Deserialize)]
struct Hit {
    iid: u64,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    state: String,
    #[serde(default)]
    web_url: String,
    #[serde(default)]
    references: Option<References>,
}

#[derive(Deserialize)]
struct References {
    #[serde(default)]
    full: Option<String>,
}

impl GitlabClient {
    /// The mirrors of the Jira issue `key` (upper case) in `project` (a path or an id), oldest
    /// first: usually one, none when it has no mirror.
    pub async fn mirrors_of_key(
        &self,
        project: &str,
        key: &str,
    ) -> Result<Vec<FoundMirror>, ApiError> {
        let path = format!("/projects/{}/issues", percent_encode(project));
        let mut found = Vec::new();
        let mut page = 1;
        loop {
            let req = Request::get(&path)
                .query("search", key)
                .query("in", "description")
                .query("state", "all")
                .query("order_by", "created_at")
                .query("sort", "asc")
                .query("per_page", PAGE)
                .query("page", page);
            let reply = match self.api.send::<List<Hit>>(req).await {
                Ok(r) => r,
                Err(e) if e.status() == Some(404) => {
                    return Err(e.with_hint(format!(
                        "GitLab project {project:?} does not exist or the token cannot read \
                         it: check gitlab_project and the token"
                    )))
                }
                Err(e) => return Err(e),
            };
            found.extend(reply.body.0.into_iter().filter_map(|h| confirmed(h, key)));
            match header_u64(&reply.headers, "x-next-page") {
                Some(next) if next > page && next <= MAX_PAGES && found.is_empty() => page = next,
                _ => return Ok(found),
            }
        }
    }
}

/// The hit as a mirror of `key`, if its description links to that key and carries a marker.
fn confirmed(hit: Hit, key: &str) -> Option<FoundMirror> {
    let description = hit.description.as_deref().unwrap_or("");
    parse_marker(description)?;
    let linked = parse_link(description)?.rsplit_once("/browse/")?.1;
    if !linked.eq_ignore_ascii_case(key) {
        return None;
    }
    // It goes into commit messages: only what a reference looks like.
    let reference = hit
        .references
        .and_then(|r| r.full)
        .filter(|r| is_reference(r))?;
    Some(FoundMirror {
        iid: hit.iid,
        reference,
        web_url: crate::safe_text::safe_within(&hit.web_url, 2000),
        open: hit.state != "closed",
    })
}

/// `group/project#57`: a path of GitLab's characters, `#`, an iid.
fn is_reference(text: &str) -> bool {
    let Some((path, iid)) = text.rsplit_once('#') else {
        return false;
    };
    let path_ok = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
    !path.is_empty() && path_ok && !iid.is_empty() && iid.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(iid: u64, description: &str) -> Hit {
        Hit {
            iid,
            description: Some(description.to_string()),
            state: "opened".into(),
            web_url: format!("https://g/acme/p/-/issues/{iid}"),
            references: Some(References {
                full: Some(format!("acme/p#{iid}")),
            }),
        }
    }

    #[test]
    fn only_a_mirror_linking_that_very_key_counts() {
        let mirror = |key: &str| {
            format!(
                "Mirrored from Jira issue [{key}](https://j/browse/{key}) by x.\n\n\
                 <!-- jira-gitlab-reconciler:jira-id=100 -->\n"
            )
        };
        assert_eq!(
            confirmed(hit(3, &mirror("VSA-1")), "VSA-1").map(|m| m.reference),
            Some("acme/p#3".to_string())
        );
        assert!(confirmed(hit(4, &mirror("VSA-12")), "VSA-1").is_none());
        let no_marker = "Mirrored from Jira issue [VSA-1](https://j/browse/VSA-1) by hand";
        assert!(confirmed(hit(5, no_marker), "VSA-1").is_none());
        assert!(confirmed(hit(6, "see VSA-1"), "VSA-1").is_none());
        let mut odd = hit(7, &mirror("VSA-1"));
        odd.references = Some(References {
            full: Some("acme/p#7\nCloses #1".into()),
        });
        assert!(confirmed(odd, "VSA-1").is_none(), "nothing but a reference");
    }
}
