//! A ready-made simulated site: a fake Jira and a fake GitLab sharing one clock, a bot user with
//! tokens in files, projects, and the config text that points the reconciler at them. `demo`,
//! the integration tests and the benchmark all start from here.

mod planning;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::FixedOffset;

use crate::gitlab::{FakeGitlab, GitlabOptions, Role, Tier};
use crate::jira::{Deployment, FakeJira, JiraOptions};
use crate::SimClock;

pub const JIRA_EMAIL: &str = "bot@example.com";
pub const JIRA_TOKEN: &str = "sim-jira-token";
pub const GITLAB_USER: &str = "reconciler-bot";
pub const GITLAB_TOKEN: &str = "sim-gitlab-token";
pub const WEBHOOK_SECRET: &str = "sim-webhook-secret-0123456789";

pub use planning::{PersonSpec, SimPerson};

/// One mapped pair of projects in the simulated site.
#[derive(Clone, Debug)]
pub struct SimMapping {
    pub jira_project: String,
    pub gitlab_project: String,
    pub jql: Option<String>,
    pub labels: Vec<String>,
    /// The bot's role on this GitLab project, if not the world's `role`.
    pub role: Option<Role>,
    pub seed_iid_prefix: Option<String>,
    pub status_labels: Option<String>,
    /// Jira issue type → GitLab `issue_type`.
    pub issue_types: Vec<(String, String)>,
    pub on_deleted: Option<String>,
    pub on_filtered_out: Option<String>,
    /// Raw TOML lines added to this mapping's section (e.g. `assignees = true\n`).
    pub extra_config: String,
}

impl SimMapping {
    pub fn new(jira_project: &str, gitlab_project: &str) -> Self {
        SimMapping {
            jira_project: jira_project.into(),
            gitlab_project: gitlab_project.into(),
            jql: None,
            labels: vec![],
            role: None,
            seed_iid_prefix: None,
            status_labels: None,
            issue_types: vec![],
            on_deleted: None,
            on_filtered_out: None,
            extra_config: String::new(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct WorldOptions {
    pub deployment: Deployment,
    /// The Jira account's time zone (name for `/myself`, offset for JQL literals).
    pub time_zone: (String, FixedOffset),
    pub index_lag: Duration,
    pub role: Role,
    /// The bot's role in the projects' groups (`acme`), if any: needed to create group labels.
    pub group_role: Option<Role>,
    /// The bot is an instance administrator (no project membership) instead of a member.
    pub admin: bool,
    /// GitLab's tier: scoped labels are exclusive only on Premium.
    pub tier: Tier,
    pub mappings: Vec<SimMapping>,
    pub create_limit_per_minute: Option<u32>,
    /// The create limit's window (GitLab: a minute); also the config's
    /// `retry.create_rate_limit_backoff`. `None`: a minute on the server, 300 ms in the config.
    pub create_window: Option<Duration>,
    /// Both servers answer after a random delay in this range.
    pub latency: Option<(Duration, Duration)>,
    /// Jira's most issues per search page (Cloud: about 100; the default 37 keeps clients
    /// honest about short pages).
    pub jira_page_cap: usize,
    /// GitLab's deepest offset page (GitLab.com: 50,000 for issues); `None` = no limit.
    pub gitlab_max_offset: Option<usize>,
    /// Let the fake Jira keep a search's result between pages (benchmarks of large projects).
    pub cache_searches: bool,
    /// Lines added to the generated config's `[gitlab]` section (e.g. `concurrency = 1`).
    pub gitlab_config: String,
    /// A `[webhook]` section on a free port, and a webhook registered in the fake Jira that
    /// posts every issue event there (signed on Cloud, `?secret=` on Data Center).
    pub webhook: bool,
    /// The Jira account is an administrator (may register webhooks itself).
    pub jira_admin: bool,
    /// `retry.timeout` in the generated config: how long the client waits for one answer.
    pub retry_timeout: Duration,
    /// Directory for the token files and the state database.
    pub dir: PathBuf,
    /// Raw TOML appended after the mappings (e.g. a `[users]` table).
    pub extra_config: String,
}

impl WorldOptions {
    pub fn new(dir: &Path) -> Self {
        WorldOptions {
            deployment: Deployment::Cloud,
            time_zone: ("UTC".into(), FixedOffset::east_opt(0).unwrap_or_else(utc)),
            index_lag: Duration::ZERO,
            role: Role::Reporter,
            group_role: None,
            admin: false,
            tier: Tier::Free,
            mappings: vec![SimMapping::new("VSA", "acme/platform")],
            create_limit_per_minute: None,
            create_window: None,
            latency: None,
            jira_page_cap: 37,
            gitlab_max_offset: None,
            cache_searches: false,
            gitlab_config: String::new(),
            webhook: false,
            jira_admin: false,
            retry_timeout: Duration::from_secs(5),
            dir: dir.to_path_buf(),
            extra_config: String::new(),
        }
    }
}

fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!("zero is a valid offset"))
}

pub struct SimWorld {
    pub jira: FakeJira,
    pub gitlab: FakeGitlab,
    pub clock: SimClock,
    pub opts: WorldOptions,
    /// With `webhook`: where the reconciler listens for Jira's events.
    pub webhook_port: Option<u16>,
    /// With `webhook`: the listener on `webhook_port`, bound for the world's lifetime and
    /// handed to the service (as systemd's socket activation would) instead of being released
    /// for the service to bind and hoping no one takes the port in between.
    pub webhook_listener: Option<std::net::TcpListener>,
}

impl SimWorld {
    pub async fn start(opts: WorldOptions) -> std::io::Result<SimWorld> {
        std::fs::create_dir_all(&opts.dir)?;
        std::fs::write(opts.dir.join("jira.token"), JIRA_TOKEN)?;
        std::fs::write(opts.dir.join("gitlab.token"), GITLAB_TOKEN)?;
        let clock = SimClock::default();
        let jira = FakeJira::start(JiraOptions {
            deployment: opts.deployment,
            email: JIRA_EMAIL.into(),
            token: JIRA_TOKEN.into(),
            time_zone: opts.time_zone.0.clone(),
            utc_offset: opts.time_zone.1,
            index_lag: opts.index_lag,
            page_cap: opts.jira_page_cap,
            latency: opts.latency,
            cache_searches: opts.cache_searches,
            admin: opts.jira_admin,
            clock: clock.clone(),
            ..JiraOptions::default()
        })
        .await?;
        let gitlab = FakeGitlab::start(GitlabOptions {
            clock: clock.clone(),
            port: 0,
            create_limit_per_minute: opts.create_limit_per_minute,
            create_window: opts.create_window,
            latency: opts.latency,
            max_offset: opts.gitlab_max_offset,
            tier: opts.tier,
        })
        .await?;
        if opts.admin {
            gitlab.add_admin(GITLAB_USER, GITLAB_TOKEN);
        } else {
            gitlab.add_user(GITLAB_USER, GITLAB_TOKEN);
        }
        for m in &opts.mappings {
            jira.add_project(&m.jira_project);
            if !gitlab.has_project(&m.gitlab_project) {
                gitlab.add_project(&m.gitlab_project);
                if !opts.admin {
                    gitlab.grant(&m.gitlab_project, GITLAB_USER, m.role.unwrap_or(opts.role));
                }
                if let (Some(role), Some((group, _))) =
                    (opts.group_role, m.gitlab_project.rsplit_once('/'))
                {
                    gitlab.grant_group(group, GITLAB_USER, role);
                }
            }
        }
        let webhook_listener = if opts.webhook {
            Some(std::net::TcpListener::bind("127.0.0.1:0")?)
        } else {
            None
        };
        let webhook_port = if let Some(listener) = &webhook_listener {
            let port = listener.local_addr()?.port();
            std::fs::write(opts.dir.join("webhook.secret"), WEBHOOK_SECRET)?;
            let url = format!("http://127.0.0.1:{port}/webhook/jira");
            match opts.deployment {
                Deployment::Cloud => jira.add_webhook(&url, Some(WEBHOOK_SECRET), None),
                Deployment::DataCenter => {
                    jira.add_webhook(&format!("{url}?secret={WEBHOOK_SECRET}"), None, None)
                }
            };
            Some(port)
        } else {
            None
        };
        Ok(SimWorld {
            jira,
            gitlab,
            clock,
            opts,
            webhook_port,
            webhook_listener,
        })
    }

    /// Where the reconciler receives Jira's webhook events (with `webhook`).
    pub fn webhook_url(&self) -> Option<String> {
        self.webhook_port
            .map(|p| format!("http://127.0.0.1:{p}/webhook/jira"))
    }

    pub fn state_path(&self) -> PathBuf {
        self.opts.dir.join("state.db")
    }

    /// Config text for this site. Retries are fast (tests and demo should not sleep for
    /// seconds); everything else is the default a user would get.
    pub fn config_toml(&self) -> String {
        let dir = self.opts.dir.display();
        let (deployment, email) = match self.opts.deployment {
            Deployment::Cloud => ("cloud", format!("email = \"{JIRA_EMAIL}\"\n")),
            Deployment::DataCenter => ("datacenter", String::new()),
        };
        let mut text = format!(
            "[jira]\nurl = \"{jira}\"\ndeployment = \"{deployment}\"\n{email}token_file = \"{dir}/jira.token\"\n\n\
             [gitlab]\nurl = \"{gitlab}\"\ntoken_file = \"{dir}/gitlab.token\"\n{gitlab_extra}\n\
             [state]\npath = \"{state}\"\n\n\
             [retry]\nmax_attempts = 4\nbase_delay = \"20ms\"\nmax_delay = \"200ms\"\ncreate_rate_limit_backoff = \"{window}ms\"\ntimeout = \"{timeout}ms\"\n\n",
            jira = self.jira.url(),
            gitlab = self.gitlab.url(),
            state = self.state_path().display(),
            timeout = self.opts.retry_timeout.as_millis(),
            gitlab_extra = self.opts.gitlab_config,
            window = self.opts.create_window.map_or(300, |w| w.as_millis()),
        );
        if let Some(port) = self.webhook_port {
            text.push_str(&format!(
                "[webhook]\nlisten = \"127.0.0.1:{port}\"\nsecret_file = \"{dir}/webhook.secret\"\npublic_url = \"http://127.0.0.1:{port}\"\n\n"
            ));
        }
        for m in &self.opts.mappings {
            text.push_str(&format!(
                "[[mapping]]\njira_project = \"{}\"\ngitlab_project = \"{}\"\n",
                m.jira_project, m.gitlab_project
            ));
            if let Some(jql) = &m.jql {
                text.push_str(&format!("jql = {}\n", toml_string(jql)));
            }
            if !m.labels.is_empty() {
                let labels: Vec<String> = m.labels.iter().map(|l| toml_string(l)).collect();
                text.push_str(&format!("labels = [{}]\n", labels.join(", ")));
            }
            for (key, value) in [
                ("seed_iid_prefix", &m.seed_iid_prefix),
                ("status_labels", &m.status_labels),
                ("on_deleted", &m.on_deleted),
                ("on_filtered_out", &m.on_filtered_out),
            ] {
                if let Some(v) = value {
                    text.push_str(&format!("{key} = {}\n", toml_string(v)));
                }
            }
            if !m.issue_types.is_empty() {
                let pairs: Vec<String> = m
                    .issue_types
                    .iter()
                    .map(|(jira, gitlab)| {
                        format!("{} = {}", toml_string(jira), toml_string(gitlab))
                    })
                    .collect();
                text.push_str(&format!("issue_types = {{ {} }}\n", pairs.join(", ")));
            }
            text.push_str(&m.extra_config);
            text.push('\n');
        }
        text.push_str(&self.opts.extra_config);
        text
    }

    /// Write the config next to the state and return its path (for the real binary).
    pub fn write_config(&self) -> std::io::Result<PathBuf> {
        let path = self.opts.dir.join("config.toml");
        std::fs::write(&path, self.config_toml())?;
        Ok(path)
    }
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}
