//! Command line: parses arguments, finds and loads the config, runs one command, maps the
//! outcome to an exit code. Everything it does is a call into the library. `status` and the
//! reconcile report are in their own files; `docs` writes the shell completions and man pages.

mod docs;
mod pass_report;
mod status;
mod webhook;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgAction, Parser, Subcommand};

use crate::config::{Config, ConfigFile};
use crate::domain::PassKind;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::reconcile::{Mode, Reconciler};
use crate::service::signals::Signals;
use crate::stop::Stop;
use crate::store::Store;

pub use pass_report::print_reports;

const ABOUT: &str =
    "Mirror Jira issues into GitLab issues, so GitLab's Value Stream Analytics sees your Jira work.";

#[derive(Parser, Debug)]
#[command(
    name = "jira-gitlab-reconciler",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_long_help = docs::after_long_help(),
)]
#[cfg_attr(
    feature = "demo",
    command(after_help = "Try it without any account: jira-gitlab-reconciler demo")
)]
pub struct Cli {
    /// Configuration file (TOML). Without it: $JGR_CONFIG, then ./config.toml, then
    /// /etc/jira-gitlab-reconciler/config.toml, the first that exists.
    #[arg(long, short, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// More log detail: -v debug, -vv trace. Wins over RUST_LOG and log.level.
    #[arg(long, short, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Less log output: -q warnings and errors, -qq errors only.
    #[arg(long, short, global = true, action = ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,

    #[command(subcommand)]
    pub command: Command,
}

/// The long description: what it does, and where the tokens come from (the config lookup, the
/// environment and the exit codes follow the options: `docs::after_long_help`).
const LONG_ABOUT: &str = "Mirror Jira issues into GitLab issues, so GitLab's Value Stream Analytics sees your Jira work.\n\n\
     A polling reconciler: it asks Jira (JQL) for issues changed since its last checkpoint, compares them \
     with their GitLab issues and creates, closes, reopens or retitles GitLab issues until both agree. \
     Jira is the source of truth. State (mapping, checkpoints, history) lives in a SQLite file.\n\n\
     Tokens come from JIRA_API_TOKEN and GITLAB_TOKEN, or from the token_file keys of the config.";

/// `run --help`: the schedule's format, the signals, the exit codes.
const RUN_HELP: &str = "\
Schedule ([schedule] in the config): 6-field cron expressions, seconds first, evaluated in
UTC: reconcile for incremental passes (default \"0 * * * * *\", every minute) and
full_resync for full comparisons (default \"0 30 3 * * *\", 03:30 UTC). A pass also runs
right after start; a tick that finds a pass still running is skipped.

Signals: SIGTERM or SIGINT stops it: no new action starts, the writes in flight finish and
are recorded, and it exits 0 within 10 s. SIGHUP reads the config file again; a config that
does not load is refused and the running one stays.

Exit codes: 0 stopped by a signal; 2 something to fix before it can start (config, tokens,
a port in use, a state database it cannot open); 1 any other failure to start. Once
running, a failing pass does not end the service: the next tick retries.";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one pass over every mapping, then exit (0 when every mapping converged).
    Reconcile {
        /// Print the planned actions; write nothing to GitLab or to the state database.
        #[arg(long)]
        dry_run: bool,
        /// Ignore the checkpoint: compare every issue of each mapping with what GitLab holds,
        /// which also repairs mirrors changed by hand in GitLab.
        #[arg(long)]
        full: bool,
        /// How long to wait for another instance's pass to finish before giving up (exit 3).
        #[arg(long, default_value = "10m", value_parser = parse_duration_arg, value_name = "DURATION")]
        lock_timeout: Duration,
        /// Print the report as JSON on stdout (per mapping: counts, failures, notes,
        /// checkpoint, duration); the exit code is the same as without it.
        #[arg(long)]
        json: bool,
    },
    /// Check the config, both servers, the credentials, each mapped project and the token's role.
    Check,
    /// Show each mapping's checkpoint, last pass, counts, last error and lag (needs no token).
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Lead time and throughput per mapping and week, from the state database (no server is
    /// asked, no token needed).
    ///
    /// Per mapping and ISO week: issues created and closed, lead time (Jira created → done)
    /// median and 85th percentile, and, with status_labels, the median time an issue spent in
    /// each status.
    #[command(
        after_help = "The window defaults to the last 12 weeks. Dates are UTC; --until 2025-03-31 includes that day.\n\nExample:\n  jira-gitlab-reconciler report --since 2025-01-01 --format json --svg lead-time.svg"
    )]
    Report {
        /// Start of the window: a date (2025-01-01, UTC midnight) or an RFC 3339 time.
        #[arg(long, value_parser = parse_since, value_name = "DATE")]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// End of the window: a date (included) or an RFC 3339 time. Default: now.
        #[arg(long, value_parser = parse_until, value_name = "DATE")]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = crate::report::Format::Table)]
        format: crate::report::Format,
        /// Also draw lead time and throughput per week into this SVG file.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Only this mapping (as `status` names it, e.g. "VSA->acme/platform").
        #[arg(long, value_name = "NAME")]
        mapping: Option<String>,
    },
    /// Run the reconciler against built-in simulated Jira and GitLab servers (no credentials,
    /// no network) and show what it does.
    #[cfg(feature = "demo")]
    Demo {
        /// How many Jira issues to seed (at least 6, so every part of the story has an issue).
        #[arg(long, default_value_t = 36)]
        issues: u32,
    },
    /// Run as a service: reconcile on the [schedule] until SIGTERM or SIGINT; SIGHUP reloads
    /// the config.
    #[command(after_long_help = RUN_HELP)]
    Run,
    /// Set up Jira's side of [webhook]: print what to paste into Jira's WebHooks page, or
    /// register the webhook (Jira administrators only).
    Webhook {
        #[command(subcommand)]
        action: WebhookAction,
    },
    /// Print the GitLab reference of each Jira issue's mirror (acme/platform#57), for commit
    /// messages: a commit that mentions an issue ends GitLab's Plan stage.
    ///
    /// Asks the state database when there is one, else GitLab (a search of the mapped project
    /// for the key), so a developer's config needs only [gitlab], the mappings and a read token.
    /// One line per key that has a mirror; exit 1 when a key has none (said on stderr).
    #[command(after_help = REF_HELP)]
    Ref {
        /// Jira issue keys, in any case (VSA-12, vsa-12).
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
        /// Print the mirror's web URL instead.
        #[arg(long)]
        url: bool,
    },
    /// GitLab Value Stream Analytics (Premium and Ultimate): set up the value stream that
    /// measures the Jira workflow.
    Vsa {
        #[command(subcommand)]
        action: VsaAction,
    },
    /// Print a shell completion script to stdout.
    #[command(after_help = "Where each shell looks for it:\n  \
        bash: jira-gitlab-reconciler completions bash > ~/.local/share/bash-completion/completions/jira-gitlab-reconciler\n  \
        zsh:  jira-gitlab-reconciler completions zsh > \"${fpath[1]}/_jira-gitlab-reconciler\"\n  \
        fish: jira-gitlab-reconciler completions fish > ~/.config/fish/completions/jira-gitlab-reconciler.fish\n\
        The Debian package installs them for all three.")]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, or write it and one page per command into a
    /// directory.
    #[command(hide = true)]
    Man {
        /// Write jira-gitlab-reconciler.1 and jira-gitlab-reconciler-<command>.1 here.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum WebhookAction {
    /// Print the URL, the events and the JQL filter for Jira's WebHooks admin page.
    Url,
    /// Register the webhook with its secret through Jira's admin API (POST
    /// /rest/webhooks/1.0/webhook), or update the one that already posts to this address, so
    /// running it again never makes Jira send events twice; the Jira account must be an
    /// administrator.
    Register,
}

#[derive(Subcommand, Debug)]
pub enum VsaAction {
    /// Create or update, through GitLab's GraphQL API, a value stream with a stage per Jira
    /// status (its status label added → removed) and Lead time (issue created → closed); safe
    /// to run again: it only adds what is missing.
    #[command(after_long_help = VSA_SETUP_HELP)]
    Setup {
        /// The value stream's name. Default: "Jira workflow (<Jira project>)".
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Make it in the project's group rather than the project (needs group labels).
        #[arg(long)]
        group: bool,
        /// Print what it would create or change; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only this mapping (as `status` names it, e.g. "VSA->acme/platform"). Default:
        /// every mapping with status_labels.
        #[arg(long, value_name = "NAME")]
        mapping: Option<String>,
    },
}

/// `ref --help`: how the commit hook uses it.
const REF_HELP: &str = "\
Examples:
  jira-gitlab-reconciler ref vsa-12          acme/platform#57
  jira-gitlab-reconciler ref --url VSA-12    https://gitlab.example.com/acme/platform/-/issues/57
  git commit -m \"Fix login\" -m \"Refs: $(jira-gitlab-reconciler ref VSA-12)\"

The prepare-commit-msg hook in /usr/share/jira-gitlab-reconciler/git-hooks/ does this for
every commit whose branch name or message names a Jira key (see the README).";

/// `vsa setup --help`: what each tier gets.
const VSA_SETUP_HELP: &str = "\
Needs status_labels on the mapping, GitLab Premium or Ultimate (17.0 or later), and the
Reporter role (group labels: Planner in the group). The Jira statuses come in the order of the
project's board columns (else by status category). A new stream also gets GitLab's built-in
stages (issue, plan, code, test, review, staging) as far as the 15-stage limit allows, since it
replaces GitLab's default stream in the list. Running it again adds only what is missing and
keeps every stage the stream has.

On GitLab Free it changes nothing and exits 2, saying what Free allows instead.";

fn parse_since(s: &str) -> std::result::Result<chrono::DateTime<chrono::Utc>, String> {
    crate::report::parse_when(s, false)
}

fn parse_until(s: &str) -> std::result::Result<chrono::DateTime<chrono::Utc>, String> {
    crate::report::parse_when(s, true)
}

fn parse_duration_arg(s: &str) -> std::result::Result<Duration, String> {
    crate::config::parse_duration(s)
        .ok_or_else(|| format!("{s:?} is not a duration such as 90s, 10m or 1h30m"))
}

/// Parse the command line, run it, and return the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Blocking threads only resolve host names (reqwest's resolver): a handful at most.
        // Bounded, so the units' TasksMax= is never what stops a pass.
        .max_blocking_threads(16)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::logging::error_line(&format!("cannot start the async runtime: {e}"));
            return 1;
        }
    };
    let json = cli.command.wants_json();
    let is_status = matches!(cli.command, Command::Status { .. });
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            // The one place a fatal error is printed: nothing below logs and returns it too.
            crate::logging::error_line(&e.report());
            if json {
                // A script reading stdout gets a document whatever happened, of the shape
                // the command prints when it succeeds.
                let doc = if is_status {
                    status::fatal_json(&e)
                } else {
                    serde_json::json!({
                        "ok": false,
                        "exit_code": e.exit_code(),
                        "error": e.report(),
                        "mappings": [],
                    })
                };
                println!("{doc}");
            }
            e.exit_code()
        }
    }
}

/// What `status` and `report` say when the config has an error in a part they do not read.
fn config_problem_warning(command: &str, e: &crate::error::Error) -> String {
    format!(
        "the config has an error {command} does not depend on (it reads only [state] and the \
         mappings), so it goes on; fix it before the service restarts or reloads: {}",
        e.report()
    )
}

impl Command {
    /// Whether this command was asked for JSON on stdout.
    fn wants_json(&self) -> bool {
        match self {
            Command::Reconcile { json, .. } | Command::Status { json, .. } => *json,
            Command::Report { format, .. } => *format == crate::report::Format::Json,
            _ => false,
        }
    }
}

async fn run(cli: Cli) -> Result<i32> {
    let verbosity = cli.verbose as i8 - cli.quiet as i8;
    let config = match cli.command {
        Command::Completions { shell } => return docs::completions(shell),
        Command::Man { out_dir } => return docs::man(out_dir.as_deref()),
        #[cfg(feature = "demo")]
        Command::Demo { issues } => {
            // The demo prints its own story; -v shows every action as well.
            crate::logging::init(Some("warn"), crate::config::LogFormat::Text, verbosity);
            return crate::demo::run(issues).await;
        }
        _ => ConfigFile::locate(cli.config.as_deref())?,
    };
    if matches!(cli.command, Command::Status { .. } | Command::Report { .. }) {
        return read_state(cli.command, &config, verbosity);
    }
    // `webhook url` never contacts a server, so it needs no token.
    let offline = matches!(
        cli.command,
        Command::Webhook {
            action: WebhookAction::Url
        }
    );
    if let Command::Ref { keys, url } = &cli.command {
        let side = config.load_gitlab_side()?;
        crate::logging::init(
            side.log_level.as_deref(),
            crate::config::LogFormat::Text,
            verbosity,
        );
        return crate::reference::run(&side, keys, *url).await;
    }
    let cfg = config.load(!offline)?;
    crate::logging::init(cfg.log_level.as_deref(), cfg.log_format, verbosity);
    run_with_config(cli.command, cfg, config).await
}

/// The commands that read the whole config (and the tokens, but for `webhook url`).
async fn run_with_config(command: Command, cfg: Config, config: ConfigFile) -> Result<i32> {
    match command {
        Command::Reconcile {
            dry_run,
            full,
            lock_timeout,
            json,
        } => {
            let kind = if full {
                PassKind::Full
            } else {
                PassKind::Incremental
            };
            reconcile(cfg, kind, dry_run, lock_timeout, json).await
        }
        Command::Check => crate::check::run(cfg, &config).await,
        Command::Run => crate::service::run(cfg, config.path).await,
        Command::Webhook { action } => match action {
            WebhookAction::Url => webhook::url(&cfg),
            WebhookAction::Register => webhook::register(cfg).await,
        },
        Command::Vsa {
            action:
                VsaAction::Setup {
                    name,
                    group,
                    dry_run,
                    mapping,
                },
        } => {
            let req = crate::vsa::Request {
                name,
                group,
                dry_run,
                mapping,
            };
            crate::vsa::run(&cfg, &req).await
        }
        // Handled by `run` before the config is read.
        Command::Completions { .. }
        | Command::Ref { .. }
        | Command::Man { .. }
        | Command::Status { .. }
        | Command::Report { .. } => Ok(0),
        #[cfg(feature = "demo")]
        Command::Demo { .. } => Ok(0),
    }
}

/// `reconcile`: one pass over every mapping, printed as text or JSON. SIGINT (Ctrl-C) or
/// SIGTERM (`systemctl stop` of the oneshot unit) requests its stop: no new action starts, the
/// writes in flight finish and are recorded, every wait ends, and the pass is recorded as
/// stopped (the next run continues from the same checkpoint).
async fn reconcile(
    cfg: Config,
    kind: PassKind,
    dry_run: bool,
    lock_timeout: Duration,
    json: bool,
) -> Result<i32> {
    let state_path = cfg.state_path.clone();
    let stop = Stop::new();
    // Logged once the stop is in force: from then on, nothing new starts.
    Signals::stopping()?.request(
        &stop,
        "stopping: the writes in flight finish, nothing new starts",
    );
    let reconciler = Reconciler::with_stop(cfg, Arc::new(Metrics::new()), stop)?;
    let reports = if dry_run {
        let store = Store::open_read_only(&state_path)?;
        if store.is_none() && state_path.exists() {
            // A dry run writes nothing, so it cannot migrate an older state file.
            eprintln!(
                "note: {} was written by an older version; this dry run plans as if there were no state (a first pass adopts by marker); run `reconcile` once to migrate it",
                state_path.display()
            );
        }
        reconciler.pass(Mode::DryRun(store.as_ref()), kind).await
    } else {
        let store = Store::open(&state_path)?;
        reconciler
            .exclusive_pass(&store, kind, lock_timeout)
            .await?
    };
    if json {
        Ok(pass_report::print_json(&reports, dry_run))
    } else {
        Ok(print_reports(&reports, dry_run))
    }
}

/// `status` and `report`: they read the state database only, so they need no token, and a
/// mistake in a part of the config they do not read is a warning, not the end.
fn read_state(command: Command, config: &ConfigFile, verbosity: i8) -> Result<i32> {
    let (state, full) = config.load_state()?;
    match &full {
        Ok(cfg) => crate::logging::init(cfg.log_level.as_deref(), cfg.log_format, verbosity),
        Err(_) => crate::logging::init(None, crate::config::LogFormat::Text, verbosity),
    }
    let problem = full.err();
    match command {
        Command::Status { json } => status::run(&state, config, json, problem.as_ref()),
        Command::Report {
            since,
            until,
            format,
            svg,
            mapping,
        } => {
            if let Some(e) = &problem {
                tracing::warn!("{}", config_problem_warning("report", e));
            }
            crate::report::run(
                &state,
                &crate::report::Request {
                    since,
                    until,
                    format,
                    svg,
                    mapping,
                },
            )
        }
        _ => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_reconcile_flags() {
        let cli = Cli::try_parse_from([
            "x",
            "reconcile",
            "--dry-run",
            "--full",
            "--json",
            "--config",
            "c.toml",
            "-vv",
        ])
        .expect("parses");
        assert_eq!(cli.config, Some(PathBuf::from("c.toml")));
        assert_eq!(cli.verbose, 2);
        assert!(matches!(
            cli.command,
            Command::Reconcile {
                dry_run: true,
                full: true,
                json: true,
                ..
            }
        ));
    }

    #[test]
    fn config_is_optional_and_quiet_excludes_verbose() {
        let cli = Cli::try_parse_from(["x", "status", "-q"]).expect("parses");
        assert_eq!((cli.config, cli.quiet), (None, 1));
        assert!(Cli::try_parse_from(["x", "status", "-q", "-v"]).is_err());
    }

    #[test]
    fn lock_timeout_takes_what_admins_type() {
        let cli =
            Cli::try_parse_from(["x", "reconcile", "--lock-timeout", "1h30m"]).expect("parses");
        let Command::Reconcile { lock_timeout, .. } = cli.command else {
            panic!("reconcile");
        };
        assert_eq!(lock_timeout, Duration::from_secs(5400));
        let e = Cli::try_parse_from(["x", "reconcile", "--lock-timeout", "10"])
            .expect_err("a bare number is ambiguous")
            .to_string();
        assert!(e.contains("is not a duration"), "{e}");
    }
}
