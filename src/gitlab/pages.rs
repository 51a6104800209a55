//! Following GitLab's listings page by page: where the next page is, and what ends a chain
//! that loops or does not end.

use serde::Deserialize;

use crate::http::{ApiError, ApiErrorKind, Server};

/// A page chain that loops or does not end.
pub(super) fn endless(path: &str, cause: String) -> ApiError {
    ApiError {
        server: Server::Gitlab,
        what: format!("GET {}", crate::safe_text::safe_within(path, 512)),
        kind: ApiErrorKind::OutOfBounds { cause },
        hint: Some("the next pass reads the project again".into()),
        retry_after: None,
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
