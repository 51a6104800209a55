//! Following GitLab's listings page by page: where the next page is, and what ends a chain
//! that loops or does not end.

use serde::Deserialize;

use crate::domain::GitlabIssue;
use crate::http::{ApiError, ApiErrorKind, Request, Server};
use crate::paging::{at_most::List, PageChain};

use super::{GitlabClient, RawIssue, PAGE};

/// A page chain that loops or does not end.
pub(super) fn endless(path: &str, cause: String) -> ApiError {
    ApiError {
        server: Server::Gitlab,
        what: format!("GET {}", crate::safe_text::safe_within(path, 512)),
        kind: ApiErrorKind::OutOfBounds { cause },
        hint: Some("the next pass reads the project again".into()),
        source: None,
    }
}

pub(super) fn header_u64(headers: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// `GET /projects/:id/issues_statistics`: the count a keyset listing lacks.
#[derive(Deserialize)]
pub(super) struct IssueStatistics {
    statistics: IssueStatisticsBody,
}

#[derive(Deserialize)]
struct IssueStatisticsBody {
    counts: IssueCounts,
}

#[derive(Deserialize)]
struct IssueCounts {
    #[serde(default)]
    all: u64,
}

impl IssueStatistics {
    /// Issues in all states.
    pub(super) fn all(&self) -> u64 {
        self.statistics.counts.all
    }
}

/// Where the next page of a listing is: the `Link: <...>; rel="next"` URL (keyset or offset),
/// made relative to the API base; else GitLab's `x-next-page` for offset paging. An empty page
/// ends the listing either way. A next link that cannot be followed is an error: stopping there
/// would leave the rest unread and their markers unseen.
pub(super) fn next_page(
    headers: &reqwest::header::HeaderMap,
    current: &str,
    items: usize,
) -> Result<Option<String>, String> {
    if items == 0 {
        return Ok(None);
    }
    let link = headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find(|part| part.contains("rel=\"next\""))
        .and_then(|part| {
            let start = part.find('<')? + 1;
            let end = part.find('>')?;
            part.get(start..end)
        });
    if let Some(url) = link {
        // Absolute, possibly with another host name than ours (a proxy): keep only the part
        // after `/api/v4`, so the request goes to the configured server with our token.
        return url
            .find("/api/v4/")
            .map(|i| Some(url[i + "/api/v4".len()..].to_string()))
            .ok_or_else(|| {
                format!(
                    "the next-page link {} is not an API v4 URL",
                    crate::safe_text::safe_within(url, 512)
                )
            });
    }
    let Some(next) = headers
        .get("x-next-page")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return Ok(None);
    };
    let without_page: Vec<&str> = current
        .split(['?', '&'])
        .skip(1)
        .filter(|p| !p.starts_with("page="))
        .collect();
    let base = current.split('?').next().unwrap_or(current);
    Ok(Some(format!(
        "{base}?{}&page={next}",
        without_page.join("&")
    )))
}

/// A project's issues as [`GitlabClient::issue_listing`] reads them: one page per request, so
/// the caller keeps what it needs of each page and memory holds one page, not the project.
pub struct IssueListing<'a> {
    client: &'a GitlabClient,
    project_id: u64,
    /// The next page's path; `None` once the last page was read.
    next: Option<String>,
    /// What ends a listing that loops or does not end.
    chain: PageChain,
}

impl<'a> IssueListing<'a> {
    pub(super) fn new(client: &'a GitlabClient, project_id: u64) -> Self {
        IssueListing {
            client,
            project_id,
            next: Some(format!(
                "/projects/{project_id}/issues?state=all&order_by=created_at&sort=asc&per_page={PAGE}&pagination=keyset"
            )),
            chain: PageChain::new(),
        }
    }

    /// About how many issues the project holds, as the caller knows (the mirrors it keeps):
    /// GitLab's count (a request of its own: keyset pages carry no total) is asked only for a
    /// listing that goes past them. A full resync of a project of mirrors makes no request
    /// but the listing's pages.
    pub fn expect_about(mut self, issues: u64) -> Self {
        self.chain.expect_about(issues, PAGE as u64);
        self
    }

    /// The next page of issues; `None` after the last one.
    pub async fn next_page(&mut self) -> Result<Option<Vec<GitlabIssue>>, ApiError> {
        let Some(path) = self.next.take() else {
            return Ok(None);
        };
        let reply = self
            .client
            .api
            .send::<List<RawIssue>>(Request::get(&path))
            .await?;
        let n = reply.body.0.len();
        if let Some(total) = header_u64(&reply.headers, "x-total") {
            self.chain.expect(total);
        }
        let next = next_page(&reply.headers, &path, n).map_err(|cause| ApiError {
            server: Server::Gitlab,
            what: format!("GET {}", crate::safe_text::safe_within(&path, 512)),
            kind: ApiErrorKind::Transport { cause },
            hint: Some("check gitlab.url: the next-page link must point at the same API".into()),
            source: None,
        })?;
        if let Some(following) = next.as_deref() {
            // A loop or an endless chain would keep the pass busy forever; stopping would
            // leave the rest unread and the pass would take them for missing: fail instead.
            self.chain
                .advance(n, following)
                .map_err(|cause| endless(&path, cause))?;
            if self.chain.wants_count() {
                // Keyset pages carry no total: ask for the project's count once.
                let count = self.client.issue_count(self.project_id).await?;
                self.chain.expect(count);
            }
        }
        self.next = next;
        Ok(Some(
            reply.body.0.into_iter().map(GitlabIssue::from).collect(),
        ))
    }
}
