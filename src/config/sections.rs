//! Each section of the file's shape read into its part of [`Config`]: every key through its
//! value type, defaults filled in, and the rules between keys (a backoff that fits under the
//! longest, a create window within `retry.max_wait`). Sections are read in the file's order,
//! so the first mistake in it is the one reported.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::{RawConfig, RawGitlab, RawJira, RawMetrics, RawRetry, RawSchedule, RawState};
use super::file::{RawSync, RawWebhook};
use super::mapping::read_mappings;
use super::tokens::{Token, TokenSpec};
use super::values::{
    listen_address, optional, ConfigPath, ConfigValue, HumanDuration, Key, LogLevel, ServerUrl,
    WebhookPath,
};
use super::*;
use crate::error::{Error, Result};
use crate::http::RetryPolicy;
use crate::schedule::CronSchedule;

/// The whole config, section by section.
pub(super) fn build(raw: RawConfig, ctx: &Context<'_>) -> Result<Config> {
    let jira_url = ServerUrl::parse(Key::new("jira.url"), raw.jira.url.clone())?;
    let gitlab_url =
        ServerUrl::parse(Key::new("gitlab.url"), raw.gitlab.url.clone())?.without_suffix("/api/v4");
    Ok(Config {
        jira: jira(jira_url, raw.jira, ctx)?,
        gitlab: gitlab(gitlab_url, raw.gitlab, ctx)?,
        retry: retry(raw.retry)?,
        log_level: optional::<LogLevel>(Key::new("log.level"), raw.log.level)?,
        log_format: raw.log.format.unwrap_or_default(),
        schedule: schedule(raw.schedule)?,
        metrics: metrics(raw.metrics)?,
        webhook: raw.webhook.map(|w| webhook(w, ctx)).transpose()?,
        overlap: overlap(raw.sync)?,
        mappings: read_mappings(raw.mapping)?,
        users: users(raw.users)?,
        state_path: state_path(raw.state, ctx.env, ctx.base)?,
    })
}

/// `[users]`: both sides non-empty; e-mails compared without case.
fn users(
    raw: std::collections::BTreeMap<String, String>,
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for (jira, gitlab) in raw {
        let (jira, gitlab) = (jira.trim(), gitlab.trim().trim_start_matches('@'));
        if jira.is_empty() || gitlab.is_empty() {
            return Err(crate::error::Error::Config(format!(
                "[users] has an empty entry ({jira:?} = {gitlab:?}): each maps a Jira accountId or e-mail to a GitLab username"
            )));
        }
        let jira = if jira.contains('@') {
            jira.to_lowercase()
        } else {
            jira.to_string()
        };
        out.insert(jira, gitlab.to_string());
    }
    Ok(out)
}

fn jira(url: ServerUrl, raw: RawJira, ctx: &Context<'_>) -> Result<JiraConfig> {
    let email = jira_email(raw.deployment, raw.email)?;
    let token = token(
        ctx,
        "jira",
        "jira.token_file",
        raw.token_file,
        JIRA_TOKEN_ENV,
    )?;
    Ok(JiraConfig {
        url,
        deployment: raw.deployment,
        email,
        token: token.secret,
        token_source: token.source,
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

fn gitlab(url: ServerUrl, raw: RawGitlab, ctx: &Context<'_>) -> Result<GitlabConfig> {
    let token = token(
        ctx,
        "gitlab",
        "gitlab.token_file",
        raw.token_file,
        GITLAB_TOKEN_ENV,
    )?;
    if raw.creates_per_minute == Some(0) {
        return Err(Error::Config(
            "gitlab.creates_per_minute must be at least 1; leave it out to learn GitLab's own limit"
                .into(),
        ));
    }
    let concurrency = raw.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    if concurrency == 0 || concurrency > MAX_CONCURRENCY {
        return Err(Error::Config(format!(
            "gitlab.concurrency = {concurrency} must be between 1 and {MAX_CONCURRENCY}"
        )));
    }
    Ok(GitlabConfig {
        url,
        token: token.secret,
        token_source: token.source,
        creates_per_minute: raw.creates_per_minute,
        concurrency,
    })
}

/// A server's token, unless the command reads none.
fn token(
    ctx: &Context<'_>,
    section: &'static str,
    file_key: &'static str,
    file: Option<PathBuf>,
    env_name: &'static str,
) -> Result<Token> {
    if !ctx.need_tokens {
        return Ok(Token::unread());
    }
    let spec = TokenSpec {
        section,
        file_key,
        file: file.as_deref(),
        env_name,
    };
    Token::read(&spec, ctx)
}

/// A duration key, or its default.
fn duration(name: &str, raw: Option<toml::Value>, default: Duration) -> Result<Duration> {
    Ok(optional::<HumanDuration>(Key::new(name), raw)?.map_or(default, HumanDuration::get))
}

fn retry(raw: RawRetry) -> Result<RetryPolicy> {
    let defaults = RetryPolicy::default();
    if raw.max_attempts == Some(0) {
        return Err(Error::Config(
            "retry.max_attempts = 0: it counts every try, the first included; use 1 for no retries"
                .into(),
        ));
    }
    let retry = RetryPolicy {
        max_attempts: raw.max_attempts.unwrap_or(defaults.max_attempts),
        base_delay: duration("retry.base_delay", raw.base_delay, defaults.base_delay)?,
        max_delay: duration("retry.max_delay", raw.max_delay, defaults.max_delay)?,
        create_rate_limit_backoff: duration(
            "retry.create_rate_limit_backoff",
            raw.create_rate_limit_backoff,
            defaults.create_rate_limit_backoff,
        )?,
        timeout: duration("retry.timeout", raw.timeout, defaults.timeout)?,
        max_wait: duration("retry.max_wait", raw.max_wait, defaults.max_wait)?,
    };
    check_retry(&retry)?;
    Ok(retry)
}

/// The rules between the retry keys. `retry.max_wait` bounds every wait, the create pacer's
/// window included: a window longer than it would fail every create held for it.
fn check_retry(retry: &RetryPolicy) -> Result<()> {
    let human = |d: Duration| humantime::format_duration(d).to_string();
    let wrong = if let Some(wrong) = out_of_range(retry) {
        wrong
    } else if retry.max_wait.is_zero() {
        "retry.max_wait is 0: every wait a server asks for would fail the request; give the \
         longest wait to sit out within a pass (default 5m)"
            .to_string()
    } else if retry.create_rate_limit_backoff > retry.max_wait {
        format!(
            "retry.create_rate_limit_backoff ({}) is longer than retry.max_wait ({}): every \
             create held for GitLab's window would fail; raise retry.max_wait or lower the backoff",
            human(retry.create_rate_limit_backoff),
            human(retry.max_wait)
        )
    } else if retry.timeout.is_zero() {
        "retry.timeout is 0: every request would time out; give the time a request may take \
         (default 30s)"
            .to_string()
    } else if retry.base_delay > retry.max_delay {
        format!(
            "retry.base_delay ({}) is longer than retry.max_delay ({}); the first backoff must \
             fit under the longest",
            human(retry.base_delay),
            human(retry.max_delay)
        )
    } else {
        return Ok(());
    };
    Err(Error::Config(wrong))
}

/// The longest value of each retry duration: a wait, a window or a timeout of a day is
/// already one no pass should sit out, and one in years would overflow the clocks' arithmetic.
const RETRY_RANGES: [(&str, Duration); 5] = [
    ("retry.base_delay", Duration::from_secs(3600)),
    ("retry.max_delay", Duration::from_secs(3600)),
    ("retry.timeout", Duration::from_secs(3600)),
    (
        "retry.create_rate_limit_backoff",
        Duration::from_secs(86_400),
    ),
    ("retry.max_wait", Duration::from_secs(86_400)),
];

/// The first retry duration longer than its range allows, as the error naming key and range.
fn out_of_range(retry: &RetryPolicy) -> Option<String> {
    let values = [
        retry.base_delay,
        retry.max_delay,
        retry.timeout,
        retry.create_rate_limit_backoff,
        retry.max_wait,
    ];
    let human = |d: Duration| humantime::format_duration(d).to_string();
    RETRY_RANGES
        .iter()
        .zip(values)
        .find(|((_, max), value)| value > max)
        .map(|((key, max), value)| {
            format!(
                "{key} = \"{}\" is out of range: it must be between 0s and {}; a longer wait \
                 would stall passes for good",
                human(value),
                human(*max)
            )
        })
}

fn schedule(raw: RawSchedule) -> Result<ScheduleConfig> {
    let cron = |name, raw: Option<String>, default: &str| {
        CronSchedule::parse(Key::new(name), raw.unwrap_or_else(|| default.into()))
    };
    Ok(ScheduleConfig {
        reconcile: cron(
            "schedule.reconcile",
            raw.reconcile,
            DEFAULT_RECONCILE_SCHEDULE,
        )?,
        full_resync: cron(
            "schedule.full_resync",
            raw.full_resync,
            DEFAULT_FULL_RESYNC_SCHEDULE,
        )?,
    })
}

fn metrics(raw: RawMetrics) -> Result<Option<MetricsConfig>> {
    let Some(listen) = raw.listen else {
        return Ok(None);
    };
    Ok(Some(MetricsConfig {
        listen: listen_address(Key::new("metrics.listen"), &listen, "127.0.0.1:9464")?,
        unhealthy_after: duration(
            "metrics.unhealthy_after",
            raw.unhealthy_after,
            Duration::from_secs(15 * 60),
        )?,
    }))
}

fn webhook(raw: RawWebhook, ctx: &Context<'_>) -> Result<WebhookConfig> {
    let listen = listen_address(Key::new("webhook.listen"), &raw.listen, "127.0.0.1:8089")?;
    let path = raw.path.unwrap_or_else(|| "/webhook/jira".into());
    let path = WebhookPath::parse(Key::new("webhook.path"), path)?;
    let public_url = optional::<ServerUrl>(Key::new("webhook.public_url"), raw.public_url)?;
    let secret = token(
        ctx,
        "webhook",
        "webhook.secret_file",
        raw.secret_file,
        WEBHOOK_SECRET_ENV,
    )?
    .secret;
    if ctx.need_tokens && secret.expose().chars().count() < MIN_WEBHOOK_SECRET {
        return Err(Error::Config(format!(
            "the webhook secret is shorter than {MIN_WEBHOOK_SECRET} characters: anyone who \
             guesses it can trigger passes; make one with `openssl rand -hex 32`"
        )));
    }
    Ok(WebhookConfig {
        listen,
        path,
        secret,
        public_url,
    })
}

fn overlap(raw: RawSync) -> Result<Duration> {
    let overlap = duration("sync.overlap", raw.overlap, Duration::from_secs(10 * 60))?;
    if overlap > Duration::from_secs(7 * 86_400) {
        return Err(Error::Config(
            "sync.overlap is longer than 7 days: it only needs to cover Jira's search index lag \
             (minutes); for a complete comparison use `reconcile --full`"
                .into(),
        ));
    }
    Ok(overlap)
}

/// `state.path`, or its default.
pub(super) fn state_path(
    raw: RawState,
    env: &dyn Fn(&str) -> Option<String>,
    base: &Path,
) -> Result<PathBuf> {
    match optional::<ConfigPath>(Key::new("state.path"), raw.path)? {
        Some(p) => Ok(p.resolve(base)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_keys_must_agree_with_each_other() {
        let wrong = |policy: RetryPolicy| check_retry(&policy).map_err(|e| e.to_string());
        assert_eq!(wrong(RetryPolicy::default()), Ok(()));
        let e = wrong(RetryPolicy {
            max_wait: Duration::ZERO,
            timeout: Duration::ZERO,
            ..RetryPolicy::default()
        });
        assert!(
            e.expect_err("zero").starts_with("retry.max_wait is 0"),
            "the first rule first"
        );
        let e = wrong(RetryPolicy {
            create_rate_limit_backoff: Duration::from_secs(600),
            ..RetryPolicy::default()
        });
        assert!(e
            .expect_err("longer")
            .contains("(10m) is longer than retry.max_wait (5m)"));
    }

    #[test]
    fn a_retry_duration_in_years_is_refused_naming_the_key_and_its_range() {
        let wrong = |policy: RetryPolicy| check_retry(&policy).map_err(|e| e.to_string());
        let years = Duration::from_secs(u64::MAX / 2);
        let e = wrong(RetryPolicy {
            create_rate_limit_backoff: years,
            max_wait: years,
            ..RetryPolicy::default()
        })
        .expect_err("years");
        assert!(
            e.starts_with("retry.create_rate_limit_backoff = \"")
                && e.contains("is out of range: it must be between 0s and 1day"),
            "{e}"
        );
        let e = wrong(RetryPolicy {
            max_wait: Duration::from_secs(86_401),
            ..RetryPolicy::default()
        })
        .expect_err("a day and a second");
        assert!(
            e.starts_with("retry.max_wait = \"1day 1s\" is out of range"),
            "{e}"
        );
        let e = wrong(RetryPolicy {
            timeout: Duration::from_secs(3601),
            ..RetryPolicy::default()
        })
        .expect_err("an hour and a second");
        assert!(e.contains("between 0s and 1h"), "{e}");
        let day = RetryPolicy {
            max_wait: Duration::from_secs(86_400),
            create_rate_limit_backoff: Duration::from_secs(86_400),
            ..RetryPolicy::default()
        };
        assert_eq!(wrong(day), Ok(()), "the bounds themselves are allowed");
    }

    #[test]
    fn the_state_defaults_to_systemds_directory_or_next_to_the_config() {
        let systemd =
            |name: &str| (name == "STATE_DIRECTORY").then(|| "/var/lib/a:/var/lib/b".into());
        assert_eq!(
            default_state_path(&systemd, Path::new("/etc/x")),
            PathBuf::from("/var/lib/a/state.db")
        );
        assert_eq!(
            default_state_path(&|_| None, Path::new("/etc/x")),
            PathBuf::from("/etc/x/jira-gitlab-reconciler.db")
        );
    }

    #[test]
    fn only_jira_cloud_needs_an_email() {
        assert_eq!(
            jira_email(Deployment::Datacenter, Some(" ".into())).ok(),
            Some(None)
        );
        assert_eq!(
            jira_email(Deployment::Cloud, Some(" bot@acme.com ".into())).ok(),
            Some(Some("bot@acme.com".into()))
        );
        let e = jira_email(Deployment::Cloud, None).expect_err("missing");
        assert!(e.to_string().starts_with("jira.email is missing"));
    }
}
