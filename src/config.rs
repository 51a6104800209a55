//! The TOML configuration, read in three steps, each a part of this module:
//!
//! 1. the file's shape (`file`): serde's reading of each section, unknown keys refused, TOML
//!    mistakes named by line and column;
//! 2. values that check themselves as they are read (`values`, `mapping`, `tokens`; parse,
//!    don't validate), assembled section by section into a [`Config`] (`sections`), every
//!    mistake reported as "what is wrong, where, and how to fix it";
//! 3. what a `Config` builds (`clients`): the API clients and the planner's rules.
//!
//! `locate` finds the file a command uses; `trust` reads files root is asked to read only when
//! they are trustworthy.

mod clients;
mod developer;
mod file;
mod locate;
mod mapping;
mod sections;
mod tokens;
mod trust;
mod values;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Result;
use crate::http::RetryPolicy;
pub use crate::jira::Deployment;
pub use crate::logging::LogFormat;
use crate::schedule::CronSchedule;
use crate::secret::Secret;

pub use developer::GitlabSide;
pub use locate::{ConfigFile, ConfigSource, StateConfig};
pub use mapping::{Mapping, GITLAB_ISSUE_TYPES};
pub use tokens::{checked_secret, TokenSource};
pub use values::{parse_duration, ConfigPath, ConfigValue, Key, LogLevel, ServerUrl, WebhookPath};

pub const JIRA_TOKEN_ENV: &str = "JIRA_API_TOKEN";
pub const WEBHOOK_SECRET_ENV: &str = "JIRA_WEBHOOK_SECRET";
/// Shorter webhook secrets are refused: anyone who guesses one can trigger passes.
pub const MIN_WEBHOOK_SECRET: usize = 16;
pub const GITLAB_TOKEN_ENV: &str = "GITLAB_TOKEN";
/// Names the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "JGR_CONFIG";
/// Where the Debian package installs the config, and the last place looked.
pub const SYSTEM_CONFIG: &str = "/etc/jira-gitlab-reconciler/config.toml";
/// Requests in flight per server by default: see the README's Performance section for the
/// measurement behind it.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// More than this many requests at once is refused: it only multiplies 429s.
pub const MAX_CONCURRENCY: usize = 64;
pub const DEFAULT_RECONCILE_SCHEDULE: &str = "0 * * * * *";
pub const DEFAULT_FULL_RESYNC_SCHEDULE: &str = "0 30 3 * * *";

#[derive(Clone, Debug)]
pub struct Config {
    pub jira: JiraConfig,
    pub gitlab: GitlabConfig,
    pub state_path: PathBuf,
    /// How far before the checkpoint each incremental search starts: covers Jira's search
    /// index lag and its minute-precision dates.
    pub overlap: Duration,
    pub retry: RetryPolicy,
    pub schedule: ScheduleConfig,
    pub log_level: Option<LogLevel>,
    pub log_format: LogFormat,
    pub metrics: Option<MetricsConfig>,
    pub webhook: Option<WebhookConfig>,
    pub mappings: Vec<Mapping>,
    /// `[users]`: Jira accountId or e-mail (lower case) -> GitLab username, for `assignees`.
    pub users: std::collections::BTreeMap<String, String>,
}

/// `[webhook]`: Jira's issue events trigger targeted passes (`run` only).
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub listen: SocketAddr,
    /// The URL path events are posted to.
    pub path: WebhookPath,
    /// Signs events (`X-Hub-Signature`) or rides in the URL (`?secret=`, Data Center).
    pub secret: Secret,
    /// How Jira reaches `listen` (a reverse proxy's https URL), for `webhook url`/`register`.
    pub public_url: Option<ServerUrl>,
}

#[derive(Clone, Debug)]
pub struct JiraConfig {
    pub url: ServerUrl,
    pub deployment: Deployment,
    pub email: Option<String>,
    pub token: Secret,
    pub token_source: TokenSource,
}

#[derive(Clone, Debug)]
pub struct GitlabConfig {
    pub url: ServerUrl,
    pub token: Secret,
    pub token_source: TokenSource,
    /// A hard cap on creates per minute; `None` (the default) learns GitLab's own limit.
    pub creates_per_minute: Option<u32>,
    /// GitLab requests in flight at once (creates, edits, reads), for all mappings together.
    pub concurrency: usize,
}

#[derive(Clone, Debug)]
pub struct ScheduleConfig {
    pub reconcile: CronSchedule,
    pub full_resync: CronSchedule,
}

#[derive(Clone, Debug)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
    pub unhealthy_after: Duration,
}

/// What a config is read with: the environment (injected, so tests need not touch the
/// process's), whether tokens are read, and the directory relative paths start from.
struct Context<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    need_tokens: bool,
    base: &'a Path,
}

impl Config {
    /// Read, parse and validate the file at `path`, taking tokens from the environment or from
    /// the token files it names.
    pub fn load(path: &Path) -> Result<Config> {
        let text = file::read(path)?;
        Config::parse(&text, path, &|name| std::env::var(name).ok())
    }

    /// Like `load`, for commands that never contact a server (`status`): tokens are not read,
    /// so an operator can look at the state without the service's credentials.
    pub fn load_without_tokens(path: &Path) -> Result<Config> {
        let text = file::read(path)?;
        let ctx = Context {
            env: &|name| std::env::var(name).ok(),
            need_tokens: false,
            base: base_dir(path),
        };
        sections::build(file::parse(&text, path)?, &ctx)
    }

    /// Parse `text`, the contents of the file at `path` (relative paths in it are resolved
    /// against its directory); `env` looks up environment variables (injected so tests need
    /// not touch the process environment).
    pub fn parse(text: &str, path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
        let ctx = Context {
            env,
            need_tokens: true,
            base: base_dir(path),
        };
        sections::build(file::parse(text, path)?, &ctx)
    }

    pub fn state_config(&self) -> StateConfig {
        StateConfig {
            state_path: self.state_path.clone(),
            mappings: self.mappings.clone(),
        }
    }
}

/// The directory relative paths in the config file at `path` are resolved against.
fn base_dir(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}

/// A config with `[webhook]` at `path`, for the router's tests.
#[cfg(test)]
pub(crate) use tests::with_webhook_path;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::GonePolicy;

    pub(super) const MINIMAL: &str = r#"
[jira]
url = "https://acme.atlassian.net/"
email = "bot@acme.com"

[gitlab]
url = "https://gitlab.example.com/api/v4"

[[mapping]]
jira_project = "VSA"
gitlab_project = "acme/platform"
"#;

    fn env_with_tokens(name: &str) -> Option<String> {
        match name {
            JIRA_TOKEN_ENV => Some("jira-secret".into()),
            GITLAB_TOKEN_ENV => Some("gl-secret".into()),
            _ => None,
        }
    }

    pub(super) fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("test.toml"), &env_with_tokens)
    }

    fn err(text: &str) -> String {
        parse(text)
            .expect_err("config should be refused")
            .to_string()
    }

    #[test]
    fn minimal_config_gets_defaults_and_normalised_urls() {
        let c = parse(MINIMAL).expect("valid");
        assert_eq!(c.jira.url, "https://acme.atlassian.net");
        assert_eq!(c.gitlab.url, "https://gitlab.example.com");
        assert_eq!(c.overlap, Duration::from_secs(600));
        assert_eq!(c.gitlab.creates_per_minute, None, "learned from GitLab");
        assert_eq!(c.gitlab.concurrency, DEFAULT_CONCURRENCY);
        assert_eq!(c.mappings[0].name(), "VSA->acme/platform");
        assert_eq!(c.schedule.reconcile, DEFAULT_RECONCILE_SCHEDULE);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let e = err(&MINIMAL.replace("email =", "emial ="));
        assert!(e.contains("emial"), "{e}");
        assert!(e.contains("line"), "{e}");
    }

    #[test]
    fn invalid_toml_names_line_and_column() {
        let e = err("[jira\nurl = 1");
        assert!(e.contains("line 1"), "{e}");
        assert!(e.contains("column"), "{e}");
    }

    #[test]
    fn missing_token_names_the_variable() {
        let e = Config::parse(MINIMAL, Path::new("x.toml"), &|_| None)
            .expect_err("no tokens")
            .to_string();
        assert!(e.contains("JIRA_API_TOKEN is not set"), "{e}");
    }

    /// A config with `[webhook]` at `path` (the router's side: `webhook::tests`).
    pub(crate) fn with_webhook_path(path: &str) -> Result<Config> {
        let text = format!("{MINIMAL}\n[webhook]\nlisten = \"127.0.0.1:8089\"\npath = {path:?}\n");
        Config::parse(&text, Path::new("test.toml"), &|name| match name {
            WEBHOOK_SECRET_ENV => Some("a-webhook-secret-of-length".into()),
            other => env_with_tokens(other),
        })
    }

    /// axum panics at start-up on a route segment starting with `:` or `*` (its old capture
    /// syntax) and reads `{...}` as a capture: such paths are refused.
    #[test]
    fn webhook_paths_the_router_cannot_take_are_refused() {
        for bad in [
            "/hooks/:id",
            "/:jira",
            "/hooks/*rest",
            "/hooks/{id}",
            "/hooks/}",
            "/with space",
            "hooks",
            "/a?b",
        ] {
            let e = with_webhook_path(bad).expect_err(bad).to_string();
            assert!(
                e.contains("webhook.path") && e.contains("/webhook/jira"),
                "{e}"
            );
        }
    }

    #[test]
    fn bad_url_and_missing_email_and_order_by_are_refused() {
        assert!(err(&MINIMAL.replace("https://acme.atlassian.net/", "acme")).contains("jira.url"));
        assert!(err(&MINIMAL.replace("email = \"bot@acme.com\"", "")).contains("jira.email"));
        let with_jql = format!("{MINIMAL}jql = \"type = Bug ORDER BY key\"\n");
        assert!(err(&with_jql).contains("ORDER BY"));
        let e = err(&MINIMAL.replace(
            "https://acme.atlassian.net/",
            "https://bot:s3cret@acme.atlassian.net/",
        ));
        assert!(
            e.contains("user name or password") && !e.contains("s3cret"),
            "{e}"
        );
        let no_mapping = MINIMAL.split("[[mapping]]").next().unwrap_or_default();
        assert!(err(no_mapping).contains("[[mapping]]"));
    }

    #[test]
    fn vsa_mapping_keys_are_read_and_checked() {
        let full = format!(
            "{MINIMAL}seed_iid_prefix = \"1000\"\non_deleted = \"label\"\nstatus_labels = \"jira-status\"\nissue_types = {{ Incident = \"incident\" }}\n"
        );
        let c = parse(&full).expect("valid");
        let m = &c.mappings[0];
        assert_eq!(m.seed_iid_prefix.as_deref(), Some("1000"));
        assert_eq!(m.on_deleted, GonePolicy::Label);
        assert_eq!(m.on_filtered_out, GonePolicy::Label, "default");
        assert_eq!(m.status_labels.as_deref(), Some("jira-status"));
        assert_eq!(
            m.issue_types.get("Incident").map(String::as_str),
            Some("incident")
        );
        let defaults = parse(MINIMAL).expect("valid");
        assert_eq!(defaults.mappings[0].on_deleted, GonePolicy::Close);
        assert!(defaults
            .rules(&defaults.mappings[0])
            .sibling_projects
            .is_empty());

        let e = err(&format!("{MINIMAL}seed_iid_prefix = \"2311071210\"\n"));
        assert!(e.contains("32-bit") && e.contains("timestamp"), "{e}");
        assert!(err(&format!("{MINIMAL}seed_iid_prefix = \"VSA\"\n")).contains("digits"));
        assert!(err(&format!("{MINIMAL}on_deleted = \"delete\"\n")).contains("\"ignore\""));
        assert!(err(&format!("{MINIMAL}status_labels = \"a,b\"\n")).contains("label scope"));
        let board = format!(
            "{MINIMAL}status_labels = \"jira-status\"\nstatus_board = \" Jira workflow \"\n"
        );
        assert_eq!(
            parse(&board).expect("valid").mappings[0]
                .status_board
                .as_deref(),
            Some("Jira workflow")
        );
        let e = err(&format!("{MINIMAL}status_board = \"Jira workflow\"\n"));
        assert!(
            e.starts_with("mapping #1: status_board = \"Jira workflow\" needs status_labels")
                && e.contains("add status_labels = \"jira-status\""),
            "{e}"
        );
        let e = err(&format!(
            "{MINIMAL}status_labels = \"s\"\nstatus_board = \" \"\n"
        ));
        assert!(e.contains("must be a board name"), "{e}");
        let e = err(&format!(
            "{MINIMAL}issue_types = {{ Incident = \"outage\" }}\n"
        ));
        assert!(e.contains("incident, test_case"), "{e}");
    }

    #[test]
    fn field_mirroring_keys_are_off_by_default_and_checked() {
        let defaults = parse(MINIMAL).expect("valid");
        let r = defaults.rules(&defaults.mappings[0]);
        assert!(!r.mirrors_fields());
        let c = parse(&format!(
            "{MINIMAL}labels_from = [\"components\", \"priority\"]\ndue_date = true\n"
        ))
        .expect("valid");
        let r = c.rules(&c.mappings[0]);
        assert!(!r.labels_from.labels && r.labels_from.components && r.labels_from.priority);
        assert!(r.due_date && r.mirrors_fields());
        let e = err(&format!("{MINIMAL}labels_from = [\"fixVersions\"]\n"));
        assert!(
            e.contains("labels_from") && e.contains("\"components\""),
            "{e}"
        );
    }

    #[test]
    fn five_field_cron_is_refused_with_the_fix() {
        let e = err(&format!(
            "{MINIMAL}\n[schedule]\nreconcile = \"*/5 * * * *\"\n"
        ));
        assert!(e.contains("schedule.reconcile"), "{e}");
        assert!(e.contains("6 fields"), "{e}");
    }

    #[test]
    fn a_duration_that_does_not_parse_names_the_key_and_the_fix() {
        let e = err(&format!(
            "{MINIMAL}\n[sync]\noverlap = \"10 minutes or so\"\n"
        ));
        assert!(e.contains("sync.overlap") && e.contains("1h30m"), "{e}");
    }

    #[test]
    fn a_bare_number_for_a_duration_names_the_key_and_the_fix() {
        let e = err(&format!("{MINIMAL}\n[sync]\noverlap = 600\n"));
        assert!(
            e.contains("sync.overlap = 600 is a bare number") && e.contains("\"600s\""),
            "{e}"
        );
        assert!(!e.contains("invalid type"), "{e}");
        let e = err(&format!("[retry]\ntimeout = 1.5\n{MINIMAL}"));
        assert!(e.contains("retry.timeout = 1.5 is not a duration"), "{e}");
        let e = err(&format!(
            "{MINIMAL}\n[metrics]\nlisten = \"127.0.0.1:9\"\nunhealthy_after = 900\n"
        ));
        assert!(
            e.contains("metrics.unhealthy_after = 900 is a bare number"),
            "{e}"
        );
    }

    /// Documented: "server" is Jira Data Center / Server, which needs no e-mail.
    #[test]
    fn deployment_server_is_datacenter() {
        let text = MINIMAL.replace("email = \"bot@acme.com\"", "deployment = \"server\"");
        assert_eq!(
            parse(&text).expect("valid").jira.deployment,
            Deployment::Datacenter
        );
    }

    #[test]
    fn an_empty_email_is_refused_at_load() {
        let e = err(&MINIMAL.replace("\"bot@acme.com\"", "\"  \""));
        assert!(e.contains("jira.email is empty"), "{e}");
        let c = parse(&MINIMAL.replace("\"bot@acme.com\"", "\" bot@acme.com \"")).expect("valid");
        assert_eq!(c.jira.email.as_deref(), Some("bot@acme.com"));
    }

    #[test]
    fn jira_project_keys_are_upper_case_so_a_mapping_has_one_name() {
        let c = parse(&MINIMAL.replace("\"VSA\"", "\" vsa \"")).expect("valid");
        assert_eq!(c.mappings[0].jira_project, "VSA");
        assert_eq!(c.mappings[0].name(), "VSA->acme/platform");
        // Two spellings of one project into one GitLab project are one mapping, mapped twice.
        let twice = format!(
            "{MINIMAL}\n[[mapping]]\njira_project = \"vsa\"\ngitlab_project = \"acme/platform\"\n"
        );
        assert!(err(&twice).contains("mapped twice"));
    }

    #[test]
    fn each_token_says_where_it_came_from() {
        let dir = std::env::temp_dir().join(format!("jgr-sources-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("gitlab.token"), "gl-from-file").expect("write");
        let text = MINIMAL
            .replace("[gitlab]\n", "[gitlab]\ntoken_file = \"gitlab.token\"\n")
            .replace(
                "email = \"bot@acme.com\"\n",
                "email = \"bot@acme.com\"\ntoken_file = \"$CREDENTIALS_DIRECTORY/jira\"\n",
            );
        let c = Config::parse(&text, &dir.join("config.toml"), &env_with_tokens).expect("valid");
        assert_eq!(
            c.jira.token_source,
            TokenSource::Env {
                var: JIRA_TOKEN_ENV,
                credential: Some("jira".into())
            }
        );
        assert_eq!(
            c.gitlab.token_source,
            TokenSource::File(dir.join("gitlab.token"))
        );
        let c = parse(MINIMAL).expect("valid");
        assert_eq!(
            c.gitlab.token_source,
            TokenSource::Env {
                var: GITLAB_TOKEN_ENV,
                credential: None
            }
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn relative_paths_are_read_from_the_config_files_directory() {
        let dir = crate::test_dir("relative");
        std::fs::create_dir_all(dir.join("secrets")).expect("dir");
        std::fs::write(dir.join("secrets/gitlab"), "gl-from-file\n").expect("write");
        let text = MINIMAL
            .replace("[gitlab]\n", "[gitlab]\ntoken_file = \"secrets/gitlab\"\n")
            .replace(
                "[[mapping]]",
                "[state]\npath = \"data/state.db\"\n\n[[mapping]]",
            );
        let c = Config::parse(&text, &dir.join("config.toml"), &env_with_tokens).expect("valid");
        assert_eq!(c.state_path, dir.join("data/state.db"));
        assert_eq!(c.gitlab.token.expose(), "gl-from-file");
        // Absolute paths stay as written; without state.path the file sits next to the config.
        let abs = text.replace("data/state.db", "/var/lib/jgr/state.db");
        let c = Config::parse(&abs, &dir.join("config.toml"), &env_with_tokens).expect("valid");
        assert_eq!(c.state_path, PathBuf::from("/var/lib/jgr/state.db"));
        let c = Config::parse(MINIMAL, &dir.join("config.toml"), &env_with_tokens).expect("valid");
        assert_eq!(c.state_path, dir.join("jira-gitlab-reconciler.db"));
        // Under systemd, StateDirectory= decides.
        let systemd = |name: &str| match name {
            "STATE_DIRECTORY" => Some("/var/lib/jira-gitlab-reconciler".to_string()),
            other => env_with_tokens(other),
        };
        let c = Config::parse(MINIMAL, &dir.join("config.toml"), &systemd).expect("valid");
        assert_eq!(
            c.state_path,
            PathBuf::from("/var/lib/jira-gitlab-reconciler/state.db")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn credentials_directory_under_systemd_and_the_environment_outside_it() {
        let dir = crate::test_dir("creds");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("jira"), "jira-from-credential").expect("write");
        let text = MINIMAL.replace(
            "email = \"bot@acme.com\"\n",
            "email = \"bot@acme.com\"\ntoken_file = \"$CREDENTIALS_DIRECTORY/jira\"\n",
        );
        let creds = dir.display().to_string();
        let under_systemd = |name: &str| match name {
            "CREDENTIALS_DIRECTORY" => Some(creds.clone()),
            other => env_with_tokens(other),
        };
        let c =
            Config::parse(&text, Path::new("/etc/x/config.toml"), &under_systemd).expect("valid");
        assert_eq!(c.jira.token.expose(), "jira-from-credential");
        // An operator's shell: no credentials directory, so the environment variable.
        let c = parse(&text).expect("valid");
        assert_eq!(c.jira.token.expose(), "jira-secret");
        let e = Config::parse(&text, Path::new("x.toml"), &|_| None)
            .expect_err("no token anywhere")
            .to_string();
        assert!(
            e.contains("JIRA_API_TOKEN is not set") && e.contains("LoadCredential"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn shipped_example_config_is_valid() {
        let text = include_str!("../config.toml");
        let c = parse(text).expect("config.toml at the top level must stay valid");
        // The packaged conffile: `status` from any directory must find the service's state.
        assert_eq!(
            c.state_path,
            PathBuf::from("/var/lib/jira-gitlab-reconciler/state.db")
        );
        // Outside systemd its $CREDENTIALS_DIRECTORY token files fall back to the environment.
        assert_eq!(c.jira.token.expose(), "jira-secret");
    }

    /// Values that parse but would break every pass, or silence the logs, are refused.
    #[test]
    fn values_that_would_break_every_pass_are_refused() {
        let with = |extra: &str| err(&format!("{extra}\n{MINIMAL}"));
        let e = with("[log]\nlevel = \"inf\"");
        assert!(
            e.contains("log.level") && e.contains("\"inf\" is not a level"),
            "{e}"
        );
        assert!(with("[log]\nlevel = \"jira_gitlab_reconciler=verbose\"").contains("log.level"));
        for good in [
            "info",
            "WARN",
            "info,jira_gitlab_reconciler::http=debug",
            "off",
        ] {
            let text = format!("[log]\nlevel = \"{good}\"\n{MINIMAL}");
            assert!(parse(&text).is_ok(), "{good} refused");
        }
        assert!(with("[retry]\nmax_attempts = 0").contains("use 1 for no retries"));
        assert!(with("[retry]\ntimeout = \"0s\"").contains("retry.timeout is 0"));
        assert!(with("[retry]\nmax_wait = \"0s\"").contains("retry.max_wait is 0"));
        assert!(with("[retry]\nmax_wait = \"1000years\"")
            .contains("is out of range: it must be between 0s and 1day"));
        assert!(with("[retry]\ncreate_rate_limit_backoff = \"10m\"")
            .contains("retry.create_rate_limit_backoff (10m) is longer than retry.max_wait (5m)"));
        let e = with("[retry]\nbase_delay = \"1m\"\nmax_delay = \"10s\"");
        assert!(
            e.contains("retry.base_delay (1m) is longer than retry.max_delay (10s)"),
            "{e}"
        );
        let e = with("[state]\npath = \"~/jgr/state.db\"");
        assert!(
            e.contains("state.path") && e.contains("starts with ~"),
            "{e}"
        );
        assert!(with("[state]\npath = \"\"").contains("state.path is empty"));
        let e = err(&MINIMAL.replace(
            "\"acme/platform\"",
            "\"https://gitlab.example.com/acme/platform\"",
        ));
        assert!(e.contains("is not a project path"), "{e}");
        let e = err(&MINIMAL.replace(
            "email = \"bot@acme.com\"",
            "email = \"bot@acme.com\"\ntoken_file = \"~/.jira\"",
        ));
        assert!(
            e.contains("jira.token_file") && e.contains("starts with ~"),
            "{e}"
        );
    }

    #[test]
    fn a_token_a_header_cannot_carry_is_refused_without_showing_it() {
        let env = |name: &str| match name {
            JIRA_TOKEN_ENV => Some("jira-secret".into()),
            GITLAB_TOKEN_ENV => Some("glpat-AB\u{1}CD".into()),
            _ => None,
        };
        let e = Config::parse(MINIMAL, Path::new("test.toml"), &env)
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("GITLAB_TOKEN") && e.contains("position 9"),
            "{e}"
        );
        assert!(!e.contains("glpat"), "the token must not be shown: {e}");
    }
}
