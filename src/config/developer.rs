//! What `ref` needs of the config: `[gitlab]` (its URL, and its token only when the state
//! database cannot answer), the mappings, `[state]` and `[retry]`. A developer's machine has a
//! config with just `[gitlab]` and the mappings, and a read token: no `[jira]`, no Jira token,
//! no state database. The other sections are not read, so a mistake there does not stop a
//! commit hook either.

use std::path::{Path, PathBuf};

use super::file::{self, RawConfig};
use super::tokens::{Token, TokenSpec};
use super::values::LogLevel;
use super::{base_dir, sections, ConfigFile, Context, Mapping, GITLAB_TOKEN_ENV};
use crate::error::Result;
use crate::http::RetryPolicy;
use crate::secret::Secret;

/// The sections `ref` reads; the rest of the file is ignored.
const SECTIONS: [&str; 5] = ["gitlab", "mapping", "state", "retry", "log"];

/// The GitLab side of a config.
#[derive(Debug)]
pub struct GitlabSide {
    /// Without `/api/v4`.
    pub gitlab_url: String,
    /// The GitLab token, or why it could not be read (needed only to ask GitLab).
    pub token: Result<Secret>,
    pub retry: RetryPolicy,
    pub state_path: PathBuf,
    pub mappings: Vec<Mapping>,
    pub log_level: Option<LogLevel>,
}

impl ConfigFile {
    /// Load the GitLab side of the config (see the module docs).
    pub fn load_gitlab_side(&self) -> Result<GitlabSide> {
        self.must_exist()?;
        let text = file::read(&self.path)?;
        gitlab_side(&text, &self.path, &|name| std::env::var(name).ok())
    }
}

/// `text` (the file at `path`) read as [`ConfigFile::load_gitlab_side`] does.
fn gitlab_side(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<GitlabSide> {
    let invalid = |e| file::invalid(path, e);
    let mut table: toml::Table = toml::from_str(text).map_err(invalid)?;
    table.retain(|key, _| SECTIONS.contains(&key));
    let token_file = table
        .get("gitlab")
        .and_then(|g| g.get("token_file"))
        .and_then(|f| f.as_str())
        .map(PathBuf::from);
    // `[jira]` is not read: a stand-in lets the shared validation build the rest.
    let mut stand_in = toml::Table::new();
    stand_in.insert("url".into(), "https://jira.invalid".into());
    stand_in.insert("deployment".into(), "datacenter".into());
    table.insert("jira".into(), toml::Value::Table(stand_in));
    let raw: RawConfig = toml::Value::Table(table).try_into().map_err(invalid)?;
    let base = base_dir(path);
    let unread = Context {
        env,
        need_tokens: false,
        base,
    };
    let cfg = sections::build(raw, &unread)?;
    let spec = TokenSpec {
        section: "gitlab",
        file_key: "gitlab.token_file",
        file: token_file.as_deref(),
        env_name: GITLAB_TOKEN_ENV,
    };
    let read = Context {
        env,
        need_tokens: true,
        base,
    };
    let token = Token::read(&spec, &read).map(|t| t.secret);
    Ok(GitlabSide {
        gitlab_url: cfg.gitlab.url.to_string(),
        token,
        retry: cfg.retry,
        state_path: cfg.state_path,
        mappings: cfg.mappings,
        log_level: cfg.log_level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVELOPER: &str = "[gitlab]\nurl = \"https://gitlab.example.com/\"\n\n\
        [[mapping]]\njira_project = \"vsa\"\ngitlab_project = \"acme/platform\"\n";

    #[test]
    fn a_config_with_only_gitlab_and_the_mappings_is_enough() {
        let path = Path::new("/home/dev/.config/jgr/config.toml");
        let side = gitlab_side(DEVELOPER, path, &|name| {
            (name == "GITLAB_TOKEN").then(|| "glpat-read".to_string())
        })
        .expect("loads");
        assert_eq!(side.gitlab_url, "https://gitlab.example.com");
        assert_eq!(side.mappings[0].name(), "VSA->acme/platform");
        assert_eq!(side.token.expect("token").expose(), "glpat-read");
        assert_eq!(
            side.state_path,
            Path::new("/home/dev/.config/jgr/jira-gitlab-reconciler.db")
        );
    }

    #[test]
    fn the_token_is_needed_only_when_used_and_jira_is_never_read() {
        let path = Path::new("/c/config.toml");
        let text = format!("[jira]\nurl = 3\n{DEVELOPER}[schedule]\nreconcile = \"bad\"\n");
        let side = gitlab_side(&text, path, &|_| None).expect("loads without a token");
        let e = side.token.expect_err("no token").report();
        assert!(e.contains("GITLAB_TOKEN is not set"), "{e}");
    }

    #[test]
    fn what_it_reads_is_still_checked() {
        let path = Path::new("/c/config.toml");
        let e = gitlab_side("[[mapping]]\njira_project = \"VSA\"\n", path, &|_| None)
            .expect_err("no gitlab section")
            .report();
        assert!(e.contains("gitlab"), "{e}");
        let text = DEVELOPER.replace("[gitlab]", "[gitlab]\ncolour = 1");
        let e = gitlab_side(&text, path, &|_| None)
            .expect_err("unknown key")
            .report();
        assert!(e.contains("colour"), "{e}");
    }
}
