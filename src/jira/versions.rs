//! A project's versions, for the start date of a fix version's milestone: an issue's
//! `fixVersions` carry `releaseDate` but not `startDate`, which `GET {rest}/project/{key}/versions`
//! has (`name`, unique in a project; `startDate` and `releaseDate` as `yyyy-mm-dd`; not paged).

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Deserialize;

use super::JiraClient;
use crate::http::{percent_encode, ApiError, Request};
use crate::paging::at_most::List;

#[derive(Deserialize)]
struct VersionWire {
    #[serde(default)]
    name: String,
    #[serde(rename = "startDate", default)]
    start_date: Option<String>,
}

impl JiraClient {
    /// The start dates of `project`'s versions, by name (trimmed). A version without one, or
    /// with one that is not a date, is left out: its milestone then has no start date.
    pub async fn version_starts(
        &self,
        project: &str,
    ) -> Result<HashMap<String, NaiveDate>, ApiError> {
        let path = format!(
            "{}/project/{}/versions",
            self.rest(),
            percent_encode(project)
        );
        let list: List<VersionWire> = self.api.send(Request::get(path)).await?.body;
        Ok(list
            .0
            .into_iter()
            .filter_map(|v| {
                let day = NaiveDate::parse_from_str(v.start_date.as_deref()?, "%Y-%m-%d").ok()?;
                Some((v.name.trim().to_string(), day))
            })
            .collect())
    }
}
