//! `ref KEY...`: the GitLab reference (`acme/platform#57`) or web URL of each Jira issue's
//! mirror, so a commit can mention the mirror (GitLab's Plan stage ends at the first commit
//! that mentions an issue, and developers know the Jira key, not the GitLab iid).
//!
//! Asked of the state database first (no request at all), else of GitLab by searching the
//! mapped project for the key (`gitlab::search`). It needs only the GitLab side of the config
//! ([`crate::config::GitlabSide`]), so it runs on a developer's machine with a read token, and
//! the GitLab token only when the database does not answer. A commit hook calls it with every
//! key-like word it finds: keys of projects no mapping covers are passed over without a
//! request.

use crate::config::{GitlabSide, Mapping};
use crate::error::{Error, Result};
use crate::gitlab::GitlabClient;
use crate::http::ClientOptions;
use crate::store::Store;

/// Exit code when a key has no mirror (or its project is not mapped).
pub const NO_MIRROR: i32 = 1;

/// How a mirror was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// `acme/platform#57`.
    pub reference: String,
    pub web_url: String,
}

/// A Jira issue key as typed (`vsa-12` from a branch name), upper case; `None` when it is not
/// one (`PROJECT-NUMBER`, the project a letter followed by letters, digits or underscores).
pub fn normalise_key(text: &str) -> Option<String> {
    let key = text.trim().to_ascii_uppercase();
    let (project, number) = key.rsplit_once('-')?;
    let mut chars = project.chars();
    let project_ok = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    let number_ok =
        !number.is_empty() && number.len() <= 18 && number.bytes().all(|b| b.is_ascii_digit());
    (project_ok && number_ok).then_some(key)
}

/// `ref`: print one line per key that has a mirror (its reference, or its URL with `url`),
/// say on stderr why the others have none; 0 when every key has a mirror, else [`NO_MIRROR`].
pub async fn run(side: &GitlabSide, keys: &[String], url: bool) -> Result<i32> {
    let keys = keys
        .iter()
        .map(|k| {
            normalise_key(k).ok_or_else(|| {
                Error::Config(format!(
                    "{:?} is not a Jira issue key: give one such as VSA-12 (any case)",
                    crate::safe_text::safe_within(k, 100)
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut finder = Finder::new(side);
    let mut code = 0;
    for key in &keys {
        match finder.find(key).await? {
            Ok(found) if url => println!("{}", found.web_url),
            Ok(found) => println!("{}", found.reference),
            Err(why) => {
                eprintln!("{key}: {why}");
                code = NO_MIRROR;
            }
        }
    }
    Ok(code)
}

/// The mirror of one Jira issue `key` (any case), or why it has none.
pub async fn find(side: &GitlabSide, key: &str) -> Result<std::result::Result<Found, String>> {
    let Some(key) = normalise_key(key) else {
        return Ok(Err(format!("{key:?} is not a Jira issue key")));
    };
    Finder::new(side).find(&key).await
}

/// Looks keys up, opening the state database and the GitLab client once, when first needed.
struct Finder<'a> {
    side: &'a GitlabSide,
    store: Option<Option<Store>>,
    gitlab: Option<GitlabClient>,
}

impl<'a> Finder<'a> {
    fn new(side: &'a GitlabSide) -> Self {
        Finder {
            side,
            store: None,
            gitlab: None,
        }
    }

    /// The mirror of `key` (upper case), or why there is none. `Err` only for a failure to
    /// ask (no token, GitLab unreachable).
    async fn find(&mut self, key: &str) -> Result<std::result::Result<Found, String>> {
        let project = key.rsplit_once('-').map_or(key, |(p, _)| p);
        let mappings: Vec<&Mapping> = self
            .side
            .mappings
            .iter()
            .filter(|m| m.jira_project == project)
            .collect();
        if mappings.is_empty() {
            let mapped: Vec<&str> = self
                .side
                .mappings
                .iter()
                .map(|m| m.jira_project.as_str())
                .collect();
            return Ok(Err(format!(
                "no mapping mirrors Jira project {project} (mapped: {})",
                mapped.join(", ")
            )));
        }
        for m in &mappings {
            if let Some(found) = self.in_store(m, key)? {
                return Ok(Ok(found));
            }
        }
        for m in &mappings {
            let client = self.gitlab()?;
            let mirrors = client.mirrors_of_key(&m.gitlab_project, key).await?;
            if mirrors.len() > 1 {
                let iids: Vec<String> = mirrors.iter().map(|f| format!("#{}", f.iid)).collect();
                eprintln!(
                    "note: {key} has several GitLab issues that mirror it in {}: {}; the oldest is used",
                    m.gitlab_project,
                    iids.join(", ")
                );
            }
            if let Some(f) = mirrors.into_iter().next() {
                return Ok(Ok(Found {
                    reference: f.reference,
                    web_url: f.web_url,
                }));
            }
        }
        let projects: Vec<&str> = mappings.iter().map(|m| m.gitlab_project.as_str()).collect();
        Ok(Err(format!(
            "no GitLab issue mirrors it in {} (not mirrored yet, left out by the mapping's jql, \
             or its key changed since)",
            projects.join(", ")
        )))
    }

    /// The mirror as the state database knows it. A project given by numeric id is left to
    /// GitLab, which knows its path; a database that cannot be read is as good as none.
    fn in_store(&mut self, m: &Mapping, key: &str) -> Result<Option<Found>> {
        if m.gitlab_project.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        let path = &self.side.state_path;
        let store = self
            .store
            .get_or_insert_with(|| match Store::open_read_only(path) {
                Ok(store) => store,
                Err(e) => {
                    tracing::debug!(error = %e.report(), "state database not read; asking GitLab");
                    None
                }
            });
        let Some(store) = store else {
            return Ok(None);
        };
        let iid = match store.mirrors().iid_by_key(&m.id(), key) {
            Ok(iid) => iid,
            Err(e) => {
                tracing::debug!(error = %e.report(), "state database not read; asking GitLab");
                None
            }
        };
        Ok(iid.map(|iid| Found {
            reference: format!("{}#{iid}", m.gitlab_project),
            web_url: format!(
                "{}/{}/-/issues/{iid}",
                self.side.gitlab_url, m.gitlab_project
            ),
        }))
    }

    fn gitlab(&mut self) -> Result<&GitlabClient> {
        let client = match self.gitlab.take() {
            Some(client) => client,
            None => self.new_client()?,
        };
        Ok(self.gitlab.insert(client))
    }

    fn new_client(&self) -> Result<GitlabClient> {
        let token = self.side.token.as_ref().map_err(|e| {
            Error::Config(format!(
                "the state database does not know the key, so GitLab must be asked, and {}",
                e.report()
            ))
        })?;
        let url = &self.side.gitlab_url;
        let stop = crate::stop::Stop::new();
        let opts = ClientOptions::new(
            self.side.retry.clone(),
            4,
            stop,
            None,
            url.starts_with("https:"),
        )?;
        Ok(GitlabClient::new(url, token.clone(), None, &opts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_taken_in_any_case_and_nothing_else_is_a_key() {
        assert_eq!(normalise_key("vsa-12").as_deref(), Some("VSA-12"));
        assert_eq!(normalise_key(" OPS_2-7 ").as_deref(), Some("OPS_2-7"));
        for not_a_key in [
            "12", "VSA-", "-12", "VSA-1x", "2VSA-1", "V SA-1", "VSA–1", "",
        ] {
            assert_eq!(normalise_key(not_a_key), None, "{not_a_key}");
        }
    }
}
