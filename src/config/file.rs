//! The config file's shape: what serde reads, section by section, before any value is checked.
//! Unknown keys are errors (a misspelt key that is silently ignored is how a mirror ends up
//! syncing the wrong project); TOML's own errors name the line and column. Values stay as the
//! file wrote them (durations as any TOML value, so a bare number gets a helpful message):
//! `values.rs` and `mapping.rs` read them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::trust;
use crate::error::{Error, Result};
use crate::jira::Deployment;
use crate::logging::LogFormat;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub jira: RawJira,
    pub gitlab: RawGitlab,
    #[serde(default)]
    pub state: RawState,
    #[serde(default)]
    pub sync: RawSync,
    #[serde(default)]
    pub retry: RawRetry,
    #[serde(default)]
    pub schedule: RawSchedule,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub metrics: RawMetrics,
    pub webhook: Option<RawWebhook>,
    #[serde(default)]
    pub mapping: Vec<RawMapping>,
    /// Jira accountId or e-mail -> GitLab username, for `assignees`.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub listen: String,
    pub path: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub public_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJira {
    pub url: String,
    #[serde(default)]
    pub deployment: Deployment,
    pub email: Option<String>,
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGitlab {
    pub url: String,
    pub token_file: Option<PathBuf>,
    pub creates_per_minute: Option<u32>,
    pub concurrency: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    pub path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSync {
    pub overlap: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    pub max_attempts: Option<u32>,
    pub base_delay: Option<toml::Value>,
    pub max_delay: Option<toml::Value>,
    pub create_rate_limit_backoff: Option<toml::Value>,
    pub timeout: Option<toml::Value>,
    pub max_wait: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    pub reconcile: Option<String>,
    pub full_resync: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub level: Option<String>,
    pub format: Option<LogFormat>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub listen: Option<String>,
    pub unhealthy_after: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMapping {
    pub jira_project: String,
    pub gitlab_project: String,
    pub jql: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    pub seed_iid_prefix: Option<String>,
    pub on_deleted: Option<String>,
    pub on_filtered_out: Option<String>,
    pub status_labels: Option<String>,
    pub status_board: Option<String>,
    pub milestones: Option<String>,
    #[serde(default)]
    pub issue_types: BTreeMap<String, String>,
    /// Jira fields that become GitLab labels: "labels", "components", "priority".
    #[serde(default)]
    pub labels_from: Vec<String>,
    pub due_date: Option<bool>,
    pub assignees: Option<bool>,
}

/// Only `[state]` and `[[mapping]]`: what `status` and `report` need, read when another part
/// of the file is wrong.
#[derive(Deserialize)]
pub(super) struct StateParts {
    #[serde(default)]
    pub state: RawState,
    #[serde(default)]
    pub mapping: Vec<RawMapping>,
}

/// The text of the config file at `path` (read as root only when it is trustworthy).
pub(super) fn read(path: &Path) -> Result<String> {
    trust::read(path, "config file")?.map_err(|e| {
        let fix = match e.kind() {
            std::io::ErrorKind::NotFound => {
                "create it (the repository's config.toml is a commented example) or pass --config PATH"
            }
            std::io::ErrorKind::IsADirectory => "name the config file itself, not its directory",
            std::io::ErrorKind::InvalidData => "the file is not UTF-8 text: save it as UTF-8",
            std::io::ErrorKind::PermissionDenied => {
                "check the file's permissions (the package installs it 0640, readable by root \
                 and the service's group)"
            }
            _ => "check the file",
        };
        Error::Config(format!(
            "cannot read config file {}: {e}; {fix}",
            path.display()
        ))
    })
}

/// The whole file's shape.
pub(super) fn parse(text: &str, path: &Path) -> Result<RawConfig> {
    toml::from_str(text).map_err(|e| invalid(path, e))
}

/// Only the state and the mappings, whatever else the file holds.
pub(super) fn parse_state_parts(text: &str, path: &Path) -> Result<StateParts> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| invalid(path, e))?;
    table.retain(|key, _| key == "state" || key == "mapping");
    toml::Value::Table(table)
        .try_into()
        .map_err(|e| invalid(path, e))
}

pub(super) fn invalid(path: &Path, e: toml::de::Error) -> Error {
    Error::Config(format!(
        "config file {} is not valid: {}",
        path.display(),
        e.to_string().trim_end()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_broken_toml_name_the_file_and_line() {
        let path = Path::new("/etc/jgr/config.toml");
        let e = parse("[jira]\nurl = \"x\"\nemial = \"y\"\n", path)
            .expect_err("unknown key")
            .to_string();
        assert!(
            e.starts_with("config file /etc/jgr/config.toml is not valid: ")
                && e.contains("emial")
                && e.contains("line 3"),
            "{e}"
        );
        // The state and mappings are read even when another section is wrong.
        let parts = parse_state_parts(
            "[jira]\nemial = 1\n[state]\npath = \"s.db\"\n[[mapping]]\njira_project = \"A\"\ngitlab_project = \"a/b\"\n",
            path,
        )
        .expect("state parts");
        assert_eq!(parts.state.path, Some(PathBuf::from("s.db")));
        assert_eq!(parts.mapping.len(), 1);
    }
}
