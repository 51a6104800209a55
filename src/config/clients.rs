//! What a loaded config builds: the two API clients (sharing one HTTP client and the stop),
//! the planner's rules for each mapping, and the identity what is cached about GitLab is kept
//! under.

use std::sync::Arc;

use super::{Config, Deployment, GitlabConfig, Mapping};
use crate::gitlab::GitlabClient;
use crate::http::{ApiError, Auth, ClientOptions};
use crate::jira::JiraClient;
use crate::metrics::Metrics;
use crate::plan::Rules;
use crate::stop::Stop;

impl Config {
    /// The Jira and GitLab clients this configuration describes, sharing one HTTP client.
    pub fn clients(
        &self,
        metrics: Option<Arc<Metrics>>,
        stop: &Stop,
    ) -> Result<(JiraClient, GitlabClient), ApiError> {
        let https = self.jira.url.is_https() || self.gitlab.url.is_https();
        let opts = ClientOptions::new(
            self.retry.clone(),
            self.gitlab.concurrency,
            stop.clone(),
            metrics,
            https,
        )?;
        let auth = match self.jira.deployment {
            Deployment::Cloud => Auth::Basic {
                user: self.jira.email.clone().unwrap_or_default(),
                token: self.jira.token.clone(),
            },
            Deployment::Datacenter => Auth::Bearer(self.jira.token.clone()),
        };
        let jira = JiraClient::new(&self.jira.url, self.jira.deployment, auth, &opts);
        let gitlab = GitlabClient::new(
            &self.gitlab.url,
            self.gitlab.token.clone(),
            self.gitlab.creates_per_minute,
            &opts,
        );
        Ok((jira, gitlab))
    }

    /// The planner's rules for `mapping`, with the Jira projects of the other mappings that
    /// feed the same GitLab project (an issue moved there keeps its GitLab issue).
    pub fn rules(&self, mapping: &Mapping) -> Rules {
        let mut sibling_projects: Vec<String> = self
            .mappings
            .iter()
            .filter(|m| m.gitlab_project == mapping.gitlab_project && m.name() != mapping.name())
            .map(|m| m.jira_project.clone())
            .collect();
        sibling_projects.dedup();
        Rules {
            jira_project: mapping.jira_project.clone(),
            seed_iid_prefix: mapping.seed_iid_prefix.clone(),
            status_labels: mapping.status_labels.clone(),
            issue_types: mapping.issue_types.clone(),
            on_deleted: mapping.on_deleted,
            on_filtered_out: mapping.on_filtered_out,
            sibling_projects,
            milestones: mapping.milestones,
            labels_from: mapping.labels_from,
            due_date: mapping.due_date,
            assignees: mapping.assignees,
        }
    }
}

impl GitlabConfig {
    /// Which GitLab, as whom: the URL and a fingerprint of the token (never the token), so what
    /// is cached about a project (its id, the token's role) is not reused for another token.
    pub fn identity(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(self.token.expose().as_bytes());
        let fingerprint = base16ct::lower::encode_string(&digest[..8]);
        format!("{} token {fingerprint}", self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parse, MINIMAL};
    use crate::secret::Secret;

    #[test]
    fn the_cache_identity_is_the_url_and_a_fingerprint_of_the_token() {
        let mut c = parse(MINIMAL).expect("valid");
        let identity = c.gitlab.identity();
        let fingerprint = identity
            .strip_prefix("https://gitlab.example.com token ")
            .expect("the URL first");
        assert!(
            fingerprint.len() == 16 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit()),
            "{identity}"
        );
        assert!(!identity.contains("gl-secret"));
        c.gitlab.token = Secret::new("another");
        assert_ne!(
            c.gitlab.identity(),
            identity,
            "another token, another cache"
        );
    }

    #[test]
    fn mappings_into_one_gitlab_project_are_siblings() {
        let text = format!(
            "{MINIMAL}\n[[mapping]]\njira_project = \"OPS\"\ngitlab_project = \"acme/platform\"\n"
        );
        let c = parse(&text).expect("valid");
        assert_eq!(c.rules(&c.mappings[0]).sibling_projects, vec!["OPS"]);
        assert_eq!(c.rules(&c.mappings[1]).sibling_projects, vec!["VSA"]);
    }
}
