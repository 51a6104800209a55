//! The TOML configuration: typed, validated once at start-up, with every mistake reported as
//! "what is wrong, where, and how to fix it". Unknown keys are errors (a misspelt key that is
//! silently ignored is how a mirror ends up syncing the wrong project).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::domain::{GonePolicy, MappingId};
use crate::error::{Error, Result};
use crate::gitlab::GitlabClient;
use crate::http::{ApiError, Auth, ClientOptions, RetryPolicy};
pub use crate::jira::Deployment;
use crate::jira::JiraClient;
pub use crate::logging::LogFormat;
use crate::metrics::Metrics;
use crate::plan::Rules;
use crate::secret::Secret;
use crate::stop::Stop;

mod trust;

pub const JIRA_TOKEN_ENV: &str = "JIRA_API_TOKEN";
pub const WEBHOOK_SECRET_ENV: &str = "JIRA_WEBHOOK_SECRET";
/// Shorter webhook secrets are refused: anyone who guesses one can trigger passes.
pub const MIN_WEBHOOK_SECRET: usize = 16;
pub const GITLAB_TOKEN_ENV: &str = "GITLAB_TOKEN";
/// Names the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "JGR_CONFIG";
/// Where the Debian package installs the config, and the last place looked.
pub const SYSTEM_CONFIG: &str = "/etc/jira-gitlab-reconciler/config.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    jira: RawJira,
    gitlab: RawGitlab,
    #[serde(default)]
    state: RawState,
    #[serde(default)]
    sync: RawSync,
    #[serde(default)]
    retry: RawRetry,
    #[serde(default)]
    schedule: RawSchedule,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    metrics: RawMetrics,
    webhook: Option<RawWebhook>,
    #[serde(default)]
    mapping: Vec<RawMapping>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    listen: String,
    path: Option<String>,
    secret_file: Option<PathBuf>,
    public_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJira {
    url: String,
    #[serde(default)]
    deployment: Deployment,
    email: Option<String>,
    token_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGitlab {
    url: String,
    token_file: Option<PathBuf>,
    creates_per_minute: Option<u32>,
    concurrency: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSync {
    overlap: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    max_attempts: Option<u32>,
    base_delay: Option<toml::Value>,
    max_delay: Option<toml::Value>,
    create_rate_limit_backoff: Option<toml::Value>,
    timeout: Option<toml::Value>,
    max_wait: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    reconcile: Option<String>,
    full_resync: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<String>,
    format: Option<LogFormat>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<String>,
    unhealthy_after: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    jira_project: String,
    gitlab_project: String,
    jql: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
    seed_iid_prefix: Option<String>,
    on_deleted: Option<String>,
    on_filtered_out: Option<String>,
    status_labels: Option<String>,
    #[serde(default)]
    issue_types: std::collections::BTreeMap<String, String>,
}

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
    pub log_level: Option<String>,
    pub log_format: LogFormat,
    pub metrics: Option<MetricsConfig>,
    pub webhook: Option<WebhookConfig>,
    pub mappings: Vec<Mapping>,
}

/// `[webhook]`: Jira's issue events trigger targeted passes (`run` only).
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    pub listen: std::net::SocketAddr,
    /// The URL path events are posted to.
    pub path: String,
    /// Signs events (`X-Hub-Signature`) or rides in the URL (`?secret=`, Data Center).
    pub secret: Secret,
    /// How Jira reaches `listen` (a reverse proxy's https URL), for `webhook url`/`register`.
    pub public_url: Option<String>,
}

#[derive(Clone, Debug)]
pub struct JiraConfig {
    pub url: String,
    pub deployment: Deployment,
    pub email: Option<String>,
    pub token: Secret,
    pub token_source: TokenSource,
}

#[derive(Clone, Debug)]
pub struct GitlabConfig {
    pub url: String,
    pub token: Secret,
    pub token_source: TokenSource,
    /// A hard cap on creates per minute; `None` (the default) learns GitLab's own limit.
    pub creates_per_minute: Option<u32>,
    /// GitLab requests in flight at once (creates, edits, reads), for all mappings together.
    pub concurrency: usize,
}

#[derive(Clone, Debug)]
pub struct ScheduleConfig {
    pub reconcile: String,
    pub full_resync: String,
}

#[derive(Clone, Debug)]
pub struct MetricsConfig {
    pub listen: std::net::SocketAddr,
    pub unhealthy_after: Duration,
}

/// One Jira project mirrored into one GitLab project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub jira_project: String,
    pub gitlab_project: String,
    pub jql: Option<String>,
    pub labels: Vec<String>,
    /// The Automation recipe's iid prefix (`"1000"`: VSA-5 was created as #10005).
    pub seed_iid_prefix: Option<String>,
    /// Deleted, invisible, or moved away from this GitLab project's mappings.
    pub on_deleted: GonePolicy,
    /// Still in the Jira project but no longer matched by `jql`.
    pub on_filtered_out: GonePolicy,
    /// The scope of per-status labels (`"jira-status"` → `jira-status::In Review`).
    pub status_labels: Option<String>,
    /// Jira issue type name → GitLab `issue_type`.
    pub issue_types: std::collections::BTreeMap<String, String>,
}

impl Mapping {
    /// The name this mapping has in the state database, logs and metrics.
    pub fn name(&self) -> String {
        format!("{}->{}", self.jira_project, self.gitlab_project)
    }

    /// The same name, typed: what the state database keys the mapping's rows on.
    pub fn id(&self) -> MappingId {
        MappingId::new(&self.jira_project, &self.gitlab_project)
    }

    /// A mapping's name as a user may type it (`report --mapping "vsa->acme/vsa"`), spelt as
    /// the config reads it: the Jira key upper case.
    pub fn normalise_name(name: &str) -> String {
        match name.trim().split_once("->") {
            Some((key, project)) => format!("{}->{project}", key.trim().to_ascii_uppercase()),
            None => name.trim().to_string(),
        }
    }

    /// The JQL for this mapping's issues (updated since `since`, when given).
    pub fn search_filter(&self, since: Option<chrono::DateTime<chrono::Utc>>) -> String {
        crate::jira::search_filter(&self.jira_project, self.jql.as_deref(), since)
    }
}

impl GitlabConfig {
    /// Which GitLab, as whom: the URL and a fingerprint of the token (never the token), so what
    /// is cached about a project (its id, the token's role) is not reused for another token.
    pub fn identity(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(self.token.expose().as_bytes());
        let fingerprint: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{} token {fingerprint}", self.url)
    }
}

impl Config {
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
        }
    }
}

/// The GitLab `issue_type` values an `issue_types` entry may name.
pub const GITLAB_ISSUE_TYPES: [&str; 4] = ["issue", "incident", "test_case", "task"];
/// GitLab keeps iids in a 32-bit column.
const MAX_IID: u64 = i32::MAX as u64;

impl Config {
    /// The Jira and GitLab clients this configuration describes, sharing one HTTP client.
    pub fn clients(
        &self,
        metrics: Option<Arc<Metrics>>,
        stop: &Stop,
    ) -> Result<(JiraClient, GitlabClient), ApiError> {
        let https = self.jira.url.starts_with("https:") || self.gitlab.url.starts_with("https:");
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
}

/// Requests in flight per server by default: see the README's Performance section for the
/// measurement behind it.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// More than this many requests at once is refused: it only multiplies 429s.
pub const MAX_CONCURRENCY: usize = 64;
pub const DEFAULT_RECONCILE_SCHEDULE: &str = "0 * * * * *";
pub const DEFAULT_FULL_RESYNC_SCHEDULE: &str = "0 30 3 * * *";

/// How the config file in use was chosen (`check` and `status` say it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// `--config PATH`.
    Flag,
    /// `$JGR_CONFIG`.
    Env,
    /// `./config.toml` in the working directory.
    WorkingDir,
    /// The system-wide file, [`SYSTEM_CONFIG`].
    System,
}

impl ConfigSource {
    pub fn describe(self) -> &'static str {
        match self {
            ConfigSource::Flag => "from --config",
            ConfigSource::Env => "from $JGR_CONFIG",
            ConfigSource::WorkingDir => "./config.toml in the working directory",
            ConfigSource::System => "the system-wide config",
        }
    }
}

/// The config file a command uses: an absolute path, so messages and a reload do not depend
/// on the working directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub source: ConfigSource,
}

impl ConfigFile {
    /// Find the config file: `--config`, then `$JGR_CONFIG`, then `./config.toml`, then
    /// [`SYSTEM_CONFIG`]. A file named explicitly (flag or variable) must exist; it is never
    /// silently replaced by another one.
    pub fn locate(flag: Option<&Path>) -> Result<ConfigFile> {
        let cwd = std::env::current_dir()
            .map_err(|e| Error::io("cannot read the working directory", e))?;
        locate_in(
            flag,
            std::env::var_os(CONFIG_ENV).map(PathBuf::from),
            &cwd,
            Path::new(SYSTEM_CONFIG),
        )
    }

    /// "PATH (from --config)", for `check` and `status`.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.path.display(), self.source.describe())
    }

    /// Load it: with tokens for commands that talk to the servers, without for `status`.
    pub fn load(&self, tokens: bool) -> Result<Config> {
        self.must_exist()?;
        if tokens {
            Config::load(&self.path)
        } else {
            Config::load_without_tokens(&self.path)
        }
    }

    /// For `status` and `report`, which read only the state database: the state and the
    /// mappings, and the whole config (without tokens) or what is wrong with it. A mistake in
    /// a part they do not use (a schedule, a URL, a retry setting) must not hide the state
    /// from the admin trying to see what the service did; it is returned for a warning.
    pub fn load_state(&self) -> Result<(StateConfig, Result<Config>)> {
        self.must_exist()?;
        let wrong = match Config::load_without_tokens(&self.path) {
            Ok(cfg) => return Ok((cfg.state_config(), Ok(cfg))),
            Err(e) => e,
        };
        let text = read_config(&self.path)?;
        match state_only(&text, &self.path, &|name| std::env::var(name).ok()) {
            Ok(state) => Ok((state, Err(wrong))),
            // The state or the mappings are wrong too: the whole config's error says it.
            Err(_) => Err(wrong),
        }
    }

    fn must_exist(&self) -> Result<()> {
        if !self.path.exists() {
            let fix = match self.source {
                ConfigSource::Flag => "check the path given to --config",
                ConfigSource::Env => "check $JGR_CONFIG, or unset it to use ./config.toml or the system-wide config",
                _ => "create it (config.toml in the source is a commented example) or pass --config PATH",
            };
            return Err(Error::Config(format!(
                "config file {} ({}) does not exist; {fix}",
                self.path.display(),
                self.source.describe()
            )));
        }
        Ok(())
    }
}

/// What the commands that only read the state database (`status`, `report`) need of the
/// config: where the database is, and the mappings' names.
#[derive(Clone, Debug)]
pub struct StateConfig {
    pub state_path: PathBuf,
    pub mappings: Vec<Mapping>,
}

impl Config {
    pub fn state_config(&self) -> StateConfig {
        StateConfig {
            state_path: self.state_path.clone(),
            mappings: self.mappings.clone(),
        }
    }
}

/// Only `[state]` and `[[mapping]]` of the config `text`, each validated as usual.
fn state_only(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<StateConfig> {
    #[derive(Deserialize)]
    struct StateParts {
        #[serde(default)]
        state: RawState,
        #[serde(default)]
        mapping: Vec<RawMapping>,
    }
    let invalid = |e: toml::de::Error| {
        Error::Config(format!(
            "config file {} is not valid: {}",
            path.display(),
            e.to_string().trim_end()
        ))
    };
    let mut table: toml::Table = toml::from_str(text).map_err(invalid)?;
    table.retain(|key, _| key == "state" || key == "mapping");
    let parts: StateParts = toml::Value::Table(table).try_into().map_err(invalid)?;
    Ok(StateConfig {
        state_path: state_path(parts.state, env, base_dir(path))?,
        mappings: validate_mappings(parts.mapping)?,
    })
}

/// `/srv/./jgr/config.toml` → `/srv/jgr/config.toml`, so messages show the path users expect.
fn without_dots(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

fn locate_in(
    flag: Option<&Path>,
    env: Option<PathBuf>,
    cwd: &Path,
    system: &Path,
) -> Result<ConfigFile> {
    let explicit = match (flag, env) {
        (Some(p), _) => Some((p.to_path_buf(), ConfigSource::Flag)),
        (None, Some(p)) if !p.as_os_str().is_empty() => Some((p, ConfigSource::Env)),
        _ => None,
    };
    if let Some((path, source)) = explicit {
        // If it is missing, `load` says so, naming the path and where it came from.
        return Ok(ConfigFile {
            path: without_dots(&cwd.join(path)),
            source,
        });
    }
    let local = cwd.join("config.toml");
    for (path, source) in [
        (local.clone(), ConfigSource::WorkingDir),
        (system.to_path_buf(), ConfigSource::System),
    ] {
        if path.exists() {
            return Ok(ConfigFile { path, source });
        }
    }
    Err(Error::Config(format!(
        "no config file: looked for {} and {}; pass --config PATH or set {CONFIG_ENV}, or \
         create one from the commented example (config.toml in the source, installed by the \
         Debian package as {SYSTEM_CONFIG})",
        local.display(),
        system.display()
    )))
}

impl Config {
    /// Read, parse and validate the file at `path`, taking tokens from the environment or from
    /// the token files it names.
    pub fn load(path: &Path) -> Result<Config> {
        let text = read_config(path)?;
        Config::parse(&text, path, &|name| std::env::var(name).ok())
    }

    /// Like `load`, for commands that never contact a server (`status`): tokens are not read,
    /// so an operator can look at the state without the service's credentials.
    pub fn load_without_tokens(path: &Path) -> Result<Config> {
        let text = read_config(path)?;
        let raw = parse_raw(&text, path)?;
        build(raw, &|name| std::env::var(name).ok(), false, base_dir(path))
    }

    /// Parse `text`, the contents of the file at `path` (relative paths in it are resolved
    /// against its directory); `env` looks up environment variables (injected so tests need
    /// not touch the process environment).
    pub fn parse(text: &str, path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
        build(parse_raw(text, path)?, env, true, base_dir(path))
    }
}

/// The directory relative paths in the config file at `path` are resolved against.
fn base_dir(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}

/// `path` as written in the config, made absolute against the config file's directory.
fn resolve(base: &Path, path: &Path) -> PathBuf {
    base.join(path)
}

/// A path written in the config for `key`: not empty, and not starting with `~`, which no
/// shell expands here (it would become a directory named `~` next to the config).
fn config_path(key: &str, path: &Path) -> Result<()> {
    if path.as_os_str().is_empty() {
        return Err(Error::Config(format!(
            "{key} is empty; give a file path, or remove the key for its default"
        )));
    }
    if path.to_string_lossy().starts_with('~') {
        return Err(Error::Config(format!(
            "{key} = {:?} starts with ~, which is not expanded in the config; write the absolute \
             path (e.g. /home/you/...), or a path relative to the config file's directory",
            path.display().to_string()
        )));
    }
    Ok(())
}

fn read_config(path: &Path) -> Result<String> {
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

fn parse_raw(text: &str, path: &Path) -> Result<RawConfig> {
    toml::from_str(text).map_err(|e| {
        Error::Config(format!(
            "config file {} is not valid: {}",
            path.display(),
            e.to_string().trim_end()
        ))
    })
}

fn build(
    raw: RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
    need_tokens: bool,
    base: &Path,
) -> Result<Config> {
    let jira_url = normalise_url("jira.url", &raw.jira.url, &[])?;
    let gitlab_url = normalise_url("gitlab.url", &raw.gitlab.url, &["/api/v4"])?;
    let email = jira_email(raw.jira.deployment, raw.jira.email)?;
    let (jira_token, gitlab_token) = if need_tokens {
        (
            read_token(
                "jira",
                "jira.token_file",
                raw.jira.token_file.as_deref(),
                JIRA_TOKEN_ENV,
                env,
                base,
            )?,
            read_token(
                "gitlab",
                "gitlab.token_file",
                raw.gitlab.token_file.as_deref(),
                GITLAB_TOKEN_ENV,
                env,
                base,
            )?,
        )
    } else {
        (Token::unread(), Token::unread())
    };

    let creates_per_minute = raw.gitlab.creates_per_minute;
    if creates_per_minute == Some(0) {
        return Err(Error::Config(
            "gitlab.creates_per_minute must be at least 1; leave it out to learn GitLab's own limit"
                .into(),
        ));
    }
    let concurrency = raw.gitlab.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    if concurrency == 0 || concurrency > MAX_CONCURRENCY {
        return Err(Error::Config(format!(
            "gitlab.concurrency = {concurrency} must be between 1 and {MAX_CONCURRENCY}"
        )));
    }

    let defaults = RetryPolicy::default();
    if raw.retry.max_attempts == Some(0) {
        return Err(Error::Config(
            "retry.max_attempts = 0: it counts every try, the first included; use 1 for no retries"
                .into(),
        ));
    }
    let retry = RetryPolicy {
        max_attempts: raw.retry.max_attempts.unwrap_or(defaults.max_attempts),
        base_delay: opt_duration("retry.base_delay", raw.retry.base_delay)?
            .unwrap_or(defaults.base_delay),
        max_delay: opt_duration("retry.max_delay", raw.retry.max_delay)?
            .unwrap_or(defaults.max_delay),
        create_rate_limit_backoff: opt_duration(
            "retry.create_rate_limit_backoff",
            raw.retry.create_rate_limit_backoff,
        )?
        .unwrap_or(defaults.create_rate_limit_backoff),
        timeout: opt_duration("retry.timeout", raw.retry.timeout)?.unwrap_or(defaults.timeout),
        max_wait: opt_duration("retry.max_wait", raw.retry.max_wait)?.unwrap_or(defaults.max_wait),
    };
    check_max_wait(&retry)?;
    if retry.timeout.is_zero() {
        return Err(Error::Config(
            "retry.timeout is 0: every request would time out; give the time a request may take \
             (default 30s)"
                .into(),
        ));
    }
    if retry.base_delay > retry.max_delay {
        return Err(Error::Config(format!(
            "retry.base_delay ({}) is longer than retry.max_delay ({}); the first backoff must \
             fit under the longest",
            humantime::format_duration(retry.base_delay),
            humantime::format_duration(retry.max_delay)
        )));
    }
    let log_level = raw.log.level.as_deref().map(|level| {
        crate::logging::check_level(level).map_err(|why| {
            Error::Config(format!(
                "log.level = {level:?}: {why}; use error, warn, info, debug or trace, or \
                 tracing directives such as \"info,jira_gitlab_reconciler::http=debug\""
            ))
        })
    });
    let log_level = log_level.transpose()?;

    let schedule = ScheduleConfig {
        reconcile: raw
            .schedule
            .reconcile
            .unwrap_or_else(|| DEFAULT_RECONCILE_SCHEDULE.into()),
        full_resync: raw
            .schedule
            .full_resync
            .unwrap_or_else(|| DEFAULT_FULL_RESYNC_SCHEDULE.into()),
    };
    crate::schedule::validate("schedule.reconcile", &schedule.reconcile)?;
    crate::schedule::validate("schedule.full_resync", &schedule.full_resync)?;

    let metrics = match raw.metrics.listen {
        None => None,
        Some(listen) => Some(MetricsConfig {
            listen: listen.parse().map_err(|_| {
                Error::Config(format!(
                    "metrics.listen = {listen:?} is not an address:port such as \"127.0.0.1:9464\""
                ))
            })?,
            unhealthy_after: opt_duration("metrics.unhealthy_after", raw.metrics.unhealthy_after)?
                .unwrap_or(Duration::from_secs(15 * 60)),
        }),
    };

    let webhook = raw
        .webhook
        .map(|w| webhook_config(w, env, need_tokens, base))
        .transpose()?;

    let overlap =
        opt_duration("sync.overlap", raw.sync.overlap)?.unwrap_or(Duration::from_secs(10 * 60));
    if overlap > Duration::from_secs(7 * 86_400) {
        return Err(Error::Config(
            "sync.overlap is longer than 7 days: it only needs to cover Jira's search index lag \
             (minutes); for a complete comparison use `reconcile --full`"
                .into(),
        ));
    }
    let mappings = validate_mappings(raw.mapping)?;
    let state_path = state_path(raw.state, env, base)?;
    Ok(Config {
        jira: JiraConfig {
            url: jira_url,
            deployment: raw.jira.deployment,
            email,
            token: jira_token.secret,
            token_source: jira_token.source,
        },
        gitlab: GitlabConfig {
            url: gitlab_url,
            token: gitlab_token.secret,
            token_source: gitlab_token.source,
            creates_per_minute,
            concurrency,
        },
        state_path,
        overlap,
        retry,
        schedule,
        log_level,
        log_format: raw.log.format.unwrap_or_default(),
        metrics,
        webhook,
        mappings,
    })
}

/// Jira Cloud authenticates with the account's e-mail: it must be there and not blank (an
/// empty one would only show as Jira's 401, which blames the token).
fn jira_email(deployment: Deployment, email: Option<String>) -> Result<Option<String>> {
    let email = email.map(|e| e.trim().to_string());
    if deployment != Deployment::Cloud {
        return Ok(email.filter(|e| !e.is_empty()));
    }
    match email {
        None => Err(Error::Config(
            "jira.email is missing: Jira Cloud authenticates with the account's e-mail and an API \
             token; set jira.email, or deployment = \"datacenter\" for a personal access token"
                .into(),
        )),
        Some(e) if e.is_empty() => Err(Error::Config(
            "jira.email is empty: Jira Cloud authenticates with the e-mail of the account the API \
             token belongs to; write it there (e.g. \"bot@acme.com\"), or set deployment = \
             \"datacenter\" for a personal access token"
                .into(),
        )),
        Some(e) => Ok(Some(e)),
    }
}

/// `state.path`, or its default.
fn state_path(raw: RawState, env: &dyn Fn(&str) -> Option<String>, base: &Path) -> Result<PathBuf> {
    match raw.path {
        Some(p) => {
            config_path("state.path", &p)?;
            Ok(resolve(base, &p))
        }
        None => Ok(default_state_path(env, base)),
    }
}

/// systemd's `StateDirectory=` sets `$STATE_DIRECTORY`; elsewhere next to the config file.
fn default_state_path(env: &dyn Fn(&str) -> Option<String>, base: &Path) -> PathBuf {
    match env("STATE_DIRECTORY").filter(|d| !d.is_empty()) {
        // systemd may list several directories, separated by colons; ours is the first.
        Some(dirs) => PathBuf::from(dirs.split(':').next().unwrap_or(&dirs)).join("state.db"),
        None => base.join("jira-gitlab-reconciler.db"),
    }
}

fn validate_mappings(raw: Vec<RawMapping>) -> Result<Vec<Mapping>> {
    if raw.is_empty() {
        return Err(Error::Config(
            "no [[mapping]] in the config: add at least one with jira_project and gitlab_project"
                .into(),
        ));
    }
    let mut out: Vec<Mapping> = Vec::with_capacity(raw.len());
    for (i, m) in raw.into_iter().enumerate() {
        let at = format!("mapping #{}", i + 1);
        // Jira keys are upper case; "vsa" and "VSA" are one project and must be one mapping,
        // with one name in the state database.
        let jira_project = m.jira_project.trim().to_ascii_uppercase();
        if jira_project.is_empty()
            || !jira_project
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(Error::Config(format!(
                "{at}: jira_project = {:?} is not a Jira project key (letters, digits, underscore)",
                m.jira_project
            )));
        }
        let gitlab_project = m.gitlab_project.trim().trim_matches('/').to_string();
        if gitlab_project.is_empty() {
            return Err(Error::Config(format!(
                "{at}: gitlab_project is empty: give a path such as \"acme/platform\" or a numeric id"
            )));
        }
        if gitlab_project.contains("://") || gitlab_project.contains(char::is_whitespace) {
            return Err(Error::Config(format!(
                "{at}: gitlab_project = {gitlab_project:?} is not a project path: give the path \
                 after the GitLab URL, such as \"acme/platform\", or the project's numeric id"
            )));
        }
        let jql = m
            .jql
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty());
        if let Some(q) = &jql {
            if q.to_ascii_lowercase().contains("order by") {
                return Err(Error::Config(format!(
                    "{at}: jql must not contain ORDER BY: the reconciler orders its own searches; \
                     keep only the filter (e.g. \"issuetype != Epic\")"
                )));
            }
        }
        for label in &m.labels {
            if label.trim().is_empty() || label.contains(',') {
                return Err(Error::Config(format!(
                    "{at}: label {label:?} is empty or contains a comma, which GitLab reads as a separator"
                )));
            }
        }
        let policy = |key: &str, raw: Option<String>, default: GonePolicy| {
            match raw {
            None => Ok(default),
            Some(v) => GonePolicy::from_label(v.trim()).ok_or_else(|| {
                Error::Config(format!(
                    "{at}: {key} = {v:?} is not one of \"close\" (close the GitLab issue and label it), \"label\" (label it only) or \"ignore\""
                ))
            }),
        }
        };
        let mapping = Mapping {
            jira_project,
            gitlab_project,
            jql,
            labels: m.labels,
            seed_iid_prefix: validate_seed_prefix(&at, m.seed_iid_prefix)?,
            on_deleted: policy("on_deleted", m.on_deleted, GonePolicy::Close)?,
            on_filtered_out: policy("on_filtered_out", m.on_filtered_out, GonePolicy::Label)?,
            status_labels: validate_status_scope(&at, m.status_labels)?,
            issue_types: validate_issue_types(&at, m.issue_types)?,
        };
        if out.iter().any(|o| o.name() == mapping.name()) {
            return Err(Error::Config(format!(
                "{at}: {} is mapped twice; remove one of them",
                mapping.name()
            )));
        }
        out.push(mapping);
    }
    Ok(out)
}

/// The recipe's `key.replace("VSA-", "1000")`: digits only, short enough that prefix + issue
/// number fits GitLab's 32-bit iid.
fn validate_seed_prefix(at: &str, raw: Option<String>) -> Result<Option<String>> {
    let Some(prefix) = raw.map(|p| p.trim().to_string()) else {
        return Ok(None);
    };
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Config(format!(
            "{at}: seed_iid_prefix = {prefix:?} must be the digits the Automation recipe put before the issue number (\"1000\" for VSA-5 → #10005)"
        )));
    }
    if prefix.len() > 9
        || format!("{prefix}1")
            .parse::<u64>()
            .map_or(true, |n| n > MAX_IID)
    {
        return Err(Error::Config(format!(
            "{at}: seed_iid_prefix = {prefix:?} is too long: GitLab's iids are 32-bit (at most {MAX_IID}), so the recipe's timestamp-iid variant never created issues and there is nothing to adopt; remove the key"
        )));
    }
    Ok(Some(prefix))
}

fn validate_status_scope(at: &str, raw: Option<String>) -> Result<Option<String>> {
    let Some(scope) = raw.map(|s| s.trim().to_string()) else {
        return Ok(None);
    };
    if scope.is_empty() || scope.contains(',') || scope.ends_with(':') {
        return Err(Error::Config(format!(
            "{at}: status_labels = {scope:?} must be a label scope such as \"jira-status\" (no comma, no trailing colon): labels become \"jira-status::In Review\""
        )));
    }
    Ok(Some(scope))
}

fn validate_issue_types(
    at: &str,
    raw: std::collections::BTreeMap<String, String>,
) -> Result<std::collections::BTreeMap<String, String>> {
    for (jira, gitlab) in &raw {
        if jira.trim().is_empty() {
            return Err(Error::Config(format!(
                "{at}: issue_types has an empty Jira issue type name"
            )));
        }
        if !GITLAB_ISSUE_TYPES.contains(&gitlab.as_str()) {
            return Err(Error::Config(format!(
                "{at}: issue_types maps {jira:?} to {gitlab:?}, which is not a GitLab issue_type; use one of {}",
                GITLAB_ISSUE_TYPES.join(", ")
            )));
        }
    }
    Ok(raw)
}

fn normalise_url(key: &str, raw: &str, strip_suffixes: &[&str]) -> Result<String> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| {
        Error::Config(format!(
            "{key} = {raw:?} is not a valid URL ({e}); write it like \"https://acme.atlassian.net\""
        ))
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(Error::Config(format!(
            "{key} = {raw:?} must start with https:// (or http:// for a local test server)"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Echoing such a URL in an error would print the credentials.
        return Err(Error::Config(format!(
            "{key} contains a user name or password: remove it from the URL and give the token \
             through the environment or token_file"
        )));
    }
    if url.host_str().is_none() {
        return Err(Error::Config(format!("{key} = {raw:?} has no host name")));
    }
    let mut s = url.as_str().trim_end_matches('/').to_string();
    for suffix in strip_suffixes {
        if let Some(stripped) = s.strip_suffix(suffix) {
            s = stripped.to_string();
        }
    }
    Ok(s)
}

fn webhook_config(
    raw: RawWebhook,
    env: &dyn Fn(&str) -> Option<String>,
    need_secret: bool,
    base: &Path,
) -> Result<WebhookConfig> {
    let listen = raw.listen.parse().map_err(|_| {
        Error::Config(format!(
            "webhook.listen = {:?} is not an address:port such as \"127.0.0.1:8089\"",
            raw.listen
        ))
    })?;
    let path = webhook_path(raw.path.unwrap_or_else(|| "/webhook/jira".into()))?;
    let public_url = raw
        .public_url
        .map(|u| normalise_url("webhook.public_url", &u, &[]))
        .transpose()?;
    let secret = if need_secret {
        let secret = read_token(
            "webhook",
            "webhook.secret_file",
            raw.secret_file.as_deref(),
            WEBHOOK_SECRET_ENV,
            env,
            base,
        )?
        .secret;
        if secret.expose().chars().count() < MIN_WEBHOOK_SECRET {
            return Err(Error::Config(format!(
                "the webhook secret is shorter than {MIN_WEBHOOK_SECRET} characters: anyone who \
                 guesses it can trigger passes; make one with `openssl rand -hex 32`"
            )));
        }
        secret
    } else {
        Secret::new("")
    };
    Ok(WebhookConfig {
        listen,
        path,
        secret,
        public_url,
    })
}

/// A literal URL path the router can serve. axum reads a segment starting with `:` or `*`
/// as the old capture syntax (and panics at start-up), and `{...}` as a capture that would
/// accept any path; spaces and control characters are not in a URL Jira can post to.
fn webhook_path(path: String) -> Result<String> {
    let why = if !path.starts_with('/') || path.contains(['?', '#']) {
        Some("must be a URL path starting with /")
    } else if path.split('/').any(|s| s.starts_with([':', '*'])) {
        Some("has a segment starting with : or *, which the router reads as a parameter")
    } else if path.contains(['{', '}']) {
        Some("contains { or }, which the router reads as a parameter")
    } else if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("contains a space or a control character")
    } else {
        None
    };
    match why {
        None => Ok(path),
        Some(why) => Err(Error::Config(format!(
            "webhook.path = {path:?} {why}; use a plain path such as \"/webhook/jira\""
        ))),
    }
}

fn read_token(
    section: &str,
    file_key: &str,
    file: Option<&Path>,
    env_name: &'static str,
    env: &dyn Fn(&str) -> Option<String>,
    base: &Path,
) -> Result<Token> {
    if let Some(p) = file {
        config_path(file_key, p)?;
    }
    let what = if section == "webhook" {
        "secret"
    } else {
        "token"
    };
    let mut credential = None;
    let file = match file.map(|p| expand_credentials_dir(p, env)) {
        Some(Credential::File(p)) => Some(resolve(base, &p)),
        // `$CREDENTIALS_DIRECTORY/...` outside systemd (an operator's shell): the environment
        // variable, so one config serves the unit and the command line.
        Some(Credential::OutsideSystemd(name)) => {
            credential = Some(name);
            None
        }
        None => None,
    };
    let token = match file.as_deref() {
        Some(path) => trust::read(path, file_key)?.map_err(|e| {
            Error::Config(format!(
                "cannot read {file_key} {}: {e}; check the path (relative paths are \
                 read from the config file's directory; with systemd's LoadCredential= it is \
                 $CREDENTIALS_DIRECTORY/<name>) and its permissions",
                path.display()
            ))
        })?,
        None => env(env_name).ok_or_else(|| {
            Error::Config(format!(
                "{env_name} is not set: export the {section} {what} as {env_name}, or set \
                 {file_key} in the config (with systemd, \
                 \"$CREDENTIALS_DIRECTORY/{section}\" is read from the unit's LoadCredential=, \
                 and from {env_name} outside it)"
            ))
        })?,
    };
    let from = match &file {
        Some(p) => format!("{file_key} {}", p.display()),
        None => env_name.to_string(),
    };
    let token = checked_secret(section, what, &token, &from)?;
    let source = match file {
        Some(path) => TokenSource::File(path),
        None => TokenSource::Env {
            var: env_name,
            credential,
        },
    };
    Ok(Token {
        secret: token,
        source,
    })
}

/// The token (or, for the webhook, the secret) in `text`, read from `from`: trimmed, not
/// empty, and only characters a header can carry (else the server's 401 would blame the
/// token). Errors say where it is wrong, never what it is.
pub fn checked_secret(section: &str, what: &str, text: &str, from: &str) -> Result<Secret> {
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::Config(format!(
            "the {section} {what} from {from} is empty"
        )));
    }
    // API tokens are visible ASCII; a webhook secret may be any text without control
    // characters.
    let bad = |c: char| c.is_control() || (what == "token" && !c.is_ascii_graphic());
    if let Some(at) = token.chars().position(bad) {
        return Err(Error::Config(format!(
            "the {section} {what} from {from} has a character no {what} has at position {} \
             (a control character, a space, a line break or a non-ASCII character): copy it again",
            at + 1
        )));
    }
    Ok(Secret::new(token))
}

/// Where a token was read from: `check` says it, so the admin knows which token was tested.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// The environment variable. `credential`: the config names the systemd credential
    /// `$CREDENTIALS_DIRECTORY/<credential>` instead, which is not set here (not under systemd).
    Env {
        var: &'static str,
        credential: Option<String>,
    },
    /// The file the config names (under systemd, in `$CREDENTIALS_DIRECTORY`).
    File(PathBuf),
    /// Not read: the command never contacts a server.
    Unread,
}

impl TokenSource {
    pub fn describe(&self) -> String {
        match self {
            TokenSource::Env { var, .. } => format!("${var}"),
            TokenSource::File(path) => format!("the file {}", path.display()),
            TokenSource::Unread => "nowhere (not read)".into(),
        }
    }
}

/// A token and where it came from.
struct Token {
    secret: Secret,
    source: TokenSource,
}

impl Token {
    fn unread() -> Token {
        Token {
            secret: Secret::new(""),
            source: TokenSource::Unread,
        }
    }
}

enum Credential {
    File(PathBuf),
    /// The path names `$CREDENTIALS_DIRECTORY/<name>`, which is not set: not running under
    /// systemd.
    OutsideSystemd(String),
}

/// `$CREDENTIALS_DIRECTORY/name` → the directory systemd's `LoadCredential=` filled, so one
/// config serves the service and the timer unit alike.
fn expand_credentials_dir(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Credential {
    const VAR: &str = "$CREDENTIALS_DIRECTORY";
    let text = path.to_string_lossy();
    match (text.strip_prefix(VAR), env("CREDENTIALS_DIRECTORY")) {
        (Some(rest), Some(dir)) if !dir.is_empty() => {
            Credential::File(PathBuf::from(format!("{dir}{rest}")))
        }
        (Some(rest), _) => Credential::OutsideSystemd(rest.trim_start_matches('/').to_string()),
        _ => Credential::File(path.to_path_buf()),
    }
}

/// `retry.max_wait` bounds every wait, the create pacer's window included: a window longer
/// than it would fail every create held for it.
fn check_max_wait(retry: &RetryPolicy) -> Result<()> {
    let human = |d: Duration| humantime::format_duration(d).to_string();
    if retry.max_wait.is_zero() {
        return Err(Error::Config(
            "retry.max_wait is 0: every wait a server asks for would fail the request; give the \
             longest wait to sit out within a pass (default 5m)"
                .into(),
        ));
    }
    if retry.create_rate_limit_backoff > retry.max_wait {
        return Err(Error::Config(format!(
            "retry.create_rate_limit_backoff ({}) is longer than retry.max_wait ({}): every \
             create held for GitLab's window would fail; raise retry.max_wait or lower the backoff",
            human(retry.create_rate_limit_backoff),
            human(retry.max_wait)
        )));
    }
    Ok(())
}

/// A duration key's value: a string humantime reads. Durations are read as TOML values rather
/// than strings so that a bare number (`overlap = 600`) gets this message, naming the key and
/// the fix, instead of serde's "invalid type".
fn opt_duration(key: &str, raw: Option<toml::Value>) -> Result<Option<Duration>> {
    let Some(value) = raw else {
        return Ok(None);
    };
    const FIX: &str =
        "write a number with its unit in quotes, e.g. \"500ms\", \"90s\", \"10m\", \"1h30m\"";
    let text = match value {
        toml::Value::String(s) => s,
        toml::Value::Integer(n) => {
            return Err(Error::Config(format!(
                "{key} = {n} is a bare number, which is ambiguous (seconds? minutes?); {FIX} (\"{n}s\" for {n} seconds)"
            )))
        }
        other => {
            return Err(Error::Config(format!(
                "{key} = {other} is not a duration; {FIX}"
            )))
        }
    };
    parse_duration(&text)
        .map(Some)
        .ok_or_else(|| Error::Config(format!("{key} = {text:?} is not a duration: {FIX}")))
}

/// A duration as admins write it, parsed by `humantime`: "500ms", "90s", "10m", "1h30m",
/// "2 days". Plain numbers are refused: a bare 10 is ambiguous.
pub fn parse_duration(s: &str) -> Option<Duration> {
    humantime::parse_duration(s.trim()).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const MINIMAL: &str = r#"
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

    fn parse(text: &str) -> Result<Config> {
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
        let e = err(&format!(
            "{MINIMAL}issue_types = {{ Incident = \"outage\" }}\n"
        ));
        assert!(e.contains("incident, test_case"), "{e}");
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
    fn durations() {
        // What was accepted before humantime...
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("10min"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration(" 10m "), Some(Duration::from_secs(600)));
        // ...and what admins also type.
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h 30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2 days"), Some(Duration::from_secs(172_800)));
        // A bare number is ambiguous; garbage is garbage.
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration(""), None);
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
    fn config_lookup_order() {
        let dir = crate::test_dir("locate");
        let cwd = dir.join("work");
        std::fs::create_dir_all(&cwd).expect("dir");
        let system = dir.join("etc-config.toml");
        let locate = |flag: Option<&str>, env: Option<&str>| {
            locate_in(flag.map(Path::new), env.map(PathBuf::from), &cwd, &system)
        };
        // Nothing anywhere: the error lists where it looked and the ways to name a file.
        let e = locate(None, None).expect_err("nothing found").to_string();
        assert!(
            e.contains(&cwd.join("config.toml").display().to_string()),
            "{e}"
        );
        assert!(e.contains("--config") && e.contains(CONFIG_ENV), "{e}");

        std::fs::write(&system, "").expect("write");
        let found = locate(None, None).expect("system config");
        assert_eq!(
            (found.path.as_path(), found.source),
            (system.as_path(), ConfigSource::System)
        );
        std::fs::write(cwd.join("config.toml"), "").expect("write");
        let found = locate(None, None).expect("local config");
        assert_eq!(found.path, cwd.join("config.toml"));
        assert_eq!(found.source, ConfigSource::WorkingDir);
        // An empty variable counts as unset; a set one wins over the files, the flag over it.
        assert_eq!(
            locate(None, Some("")).expect("ok").source,
            ConfigSource::WorkingDir
        );
        let found = locate(None, Some("/srv/jgr.toml")).expect("env");
        assert_eq!(
            (found.path, found.source),
            (PathBuf::from("/srv/jgr.toml"), ConfigSource::Env)
        );
        let found = locate(Some("./sub/c.toml"), Some("/srv/jgr.toml")).expect("flag");
        assert_eq!(
            found.path,
            cwd.join("sub/c.toml"),
            "relative to the working directory, no ./"
        );
        assert_eq!(found.source, ConfigSource::Flag);
        // Named explicitly but missing: an error naming it, never a fall back to another file.
        let e = found.load(false).expect_err("missing").to_string();
        assert!(
            e.contains("sub/c.toml (from --config) does not exist"),
            "{e}"
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
