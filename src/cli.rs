//! Command line: parses arguments, loads the config, runs one command, maps the outcome to an
//! exit code. Everything it does is a call into the library.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::domain::PassKind;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::reconcile::{Mode, PassReport, Reconciler};
use crate::store::Store;

#[derive(Parser, Debug)]
#[command(
    name = "jira-gitlab-reconciler",
    version,
    about = "Mirror Jira issues into GitLab issues, so GitLab's Value Stream Analytics sees your Jira work.",
    long_about = "Mirror Jira issues into GitLab issues, so GitLab's Value Stream Analytics sees your Jira work.\n\n\
        A polling reconciler: it asks Jira (JQL) for issues changed since its last checkpoint, compares them \
        with their GitLab issues and creates, closes, reopens or retitles GitLab issues until both agree. \
        Jira is the source of truth. State (mapping, checkpoints, history) lives in a SQLite file.\n\n\
        Tokens come from JIRA_API_TOKEN and GITLAB_TOKEN, or from the token_file keys of the config.\n\n\
        Exit codes: 0 success; 1 a pass failed (the next run retries); 2 configuration or input to fix; \
        3 another instance held the lock for too long."
)]
#[cfg_attr(
    feature = "demo",
    command(after_help = "Try it without any account: jira-gitlab-reconciler demo")
)]
pub struct Cli {
    /// Configuration file (TOML). See the commented config.toml shipped with the source.
    #[arg(
        long,
        short,
        global = true,
        default_value = "config.toml",
        value_name = "PATH"
    )]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

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
    },
    /// Check the config, both servers, the credentials, each mapped project and the token's role.
    Check,
    /// Show each mapping's checkpoint, last pass, counts, last error and lag.
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
        after_help = "The window defaults to the last 12 weeks. Dates are UTC; --until 2025-03-31 includes that day.\nExample: jira-gitlab-reconciler report --since 2025-01-01 --format json --svg lead-time.svg"
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
        /// How many Jira issues to seed.
        #[arg(long, default_value_t = 36)]
        issues: u32,
    },
    /// Run as a service: reconcile on the [schedule] until SIGTERM or SIGINT.
    Run,
}

fn parse_since(s: &str) -> std::result::Result<chrono::DateTime<chrono::Utc>, String> {
    crate::report::parse_when(s, false)
}

fn parse_until(s: &str) -> std::result::Result<chrono::DateTime<chrono::Utc>, String> {
    crate::report::parse_when(s, true)
}

fn parse_duration_arg(s: &str) -> std::result::Result<Duration, String> {
    crate::config::parse_duration(s)
        .ok_or_else(|| format!("{s:?} is not a duration such as 30s, 10m or 1h"))
}

/// Parse the command line, run it, and return the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", e.report());
            e.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<i32> {
    #[cfg(feature = "demo")]
    if let Command::Demo { issues } = cli.command {
        // The demo prints its own story; RUST_LOG=info shows every action as well.
        crate::logging::init(Some("warn"), crate::config::LogFormat::Text);
        return crate::demo::run(issues).await;
    }
    let cfg = if matches!(cli.command, Command::Status { .. } | Command::Report { .. }) {
        Config::load_without_tokens(&cli.config)?
    } else {
        Config::load(&cli.config)?
    };
    crate::logging::init(cfg.log_level.as_deref(), cfg.log_format);
    match cli.command {
        Command::Reconcile {
            dry_run,
            full,
            lock_timeout,
        } => reconcile(cfg, dry_run, full, lock_timeout).await,
        Command::Check => crate::check::run(cfg).await,
        Command::Status { json } => status(&cfg, json),
        Command::Report {
            since,
            until,
            format,
            svg,
            mapping,
        } => crate::report::run(
            &cfg,
            &crate::report::Request {
                since,
                until,
                format,
                svg,
                mapping,
            },
        ),
        Command::Run => crate::service::run(cfg, cli.config).await,
        #[cfg(feature = "demo")]
        Command::Demo { .. } => Ok(0),
    }
}

async fn reconcile(cfg: Config, dry_run: bool, full: bool, lock_timeout: Duration) -> Result<i32> {
    let kind = if full {
        PassKind::Full
    } else {
        PassKind::Incremental
    };
    let state_path = cfg.state_path.clone();
    let reconciler = Reconciler::new(cfg, Arc::new(Metrics::new()))?;
    let reports = if dry_run {
        let store = Store::open_read_only(&state_path)?;
        reconciler.pass(Mode::DryRun(store.as_ref()), kind).await
    } else {
        let store = Store::open(&state_path)?;
        reconciler
            .exclusive_pass(&store, kind, lock_timeout)
            .await?
    };
    Ok(print_reports(&reports, dry_run))
}

/// Summaries on stdout, one line per failure on stderr; the exit code (2 when a failure needs
/// the user, such as a rejected token, 1 for failures a later pass may get past).
pub fn print_reports(reports: &[PassReport], dry_run: bool) -> i32 {
    let mut failed = false;
    let needs_user = reports.iter().any(|r| r.needs_user);
    for r in reports {
        if dry_run {
            println!(
                "{}: {} pass would do {} action(s):",
                r.mapping,
                r.kind,
                r.planned.len()
            );
            for line in &r.planned {
                println!("  {line}");
            }
            if r.recipe.adopted + r.recipe.foreign > 0 {
                println!(
                    "  Automation recipe: {} issue(s) adopted, {} slot(s) holding other issues left alone",
                    r.recipe.adopted, r.recipe.foreign
                );
            }
        } else {
            println!("{}", r.summary());
        }
        for note in &r.notes {
            println!("  note: {note}");
        }
        for f in &r.failures {
            failed = true;
            eprintln!("error: {}: {f}", r.mapping);
        }
    }
    if needs_user {
        2
    } else {
        i32::from(failed)
    }
}

fn status(cfg: &Config, json: bool) -> Result<i32> {
    let store = Store::open_read_only(&cfg.state_path)?;
    let now = chrono::Utc::now();
    let mut rows = Vec::new();
    for m in &cfg.mappings {
        let name = m.name();
        let st = match &store {
            Some(s) => Some(s.status(&name)?),
            None => None,
        };
        rows.push((name, st));
    }
    if json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|(name, st)| status_json(name, st.as_ref(), now))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return Ok(0);
    }
    println!(
        "state database: {}",
        display_state(&cfg.state_path, store.is_some())
    );
    for (name, st) in rows {
        println!("\n{name}");
        let Some(st) = st else {
            println!("  never reconciled");
            continue;
        };
        let fmt = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_else(|| "-".into())
        };
        println!("  mirrored issues : {}", st.mirrors);
        println!(
            "  checkpoint      : {} (newest Jira update mirrored)",
            fmt(st.checkpoint)
        );
        match &st.last_pass {
            Some(p) => {
                println!(
                    "  last pass       : {} {} ({}), {}",
                    fmt(Some(p.started_at)),
                    p.kind,
                    p.outcome,
                    counts_line(&p.counts)
                );
                if let Some(e) = &p.error {
                    println!("  last error      : {e}");
                }
            }
            None => println!("  last pass       : -"),
        }
        let lag = st.last_success.as_ref().map(|p| now - p.started_at);
        println!(
            "  lag             : {}",
            lag.map(|l| format!(
                "up to {} s behind Jira (since the last successful pass began)",
                l.num_seconds()
            ))
            .unwrap_or_else(|| "unknown: no successful pass yet".into())
        );
        if st.pending_intents > 0 {
            println!(
                "  pending creates : {} (looked up by marker on the next pass)",
                st.pending_intents
            );
        }
    }
    Ok(0)
}

fn display_state(path: &Path, exists: bool) -> String {
    if exists {
        path.display().to_string()
    } else {
        format!("{} (not created yet)", path.display())
    }
}

fn counts_line(c: &crate::store::Counts) -> String {
    format!(
        "created {}, closed {}, reopened {}, updated {}, adopted {}, unchanged {}, failed {}",
        c.created, c.closed, c.reopened, c.updated, c.adopted, c.unchanged, c.failed
    )
}

fn status_json(
    name: &str,
    st: Option<&crate::store::MappingStatus>,
    now: chrono::DateTime<chrono::Utc>,
) -> serde_json::Value {
    let pass = |p: &crate::store::PassRecord| {
        serde_json::json!({
            "kind": p.kind.label(), "started_at": p.started_at, "finished_at": p.finished_at,
            "outcome": p.outcome.label(), "error": p.error,
            "created": p.counts.created, "closed": p.counts.closed, "reopened": p.counts.reopened,
            "updated": p.counts.updated, "adopted": p.counts.adopted, "unchanged": p.counts.unchanged,
            "failed": p.counts.failed, "jira_seen": p.counts.jira_seen,
        })
    };
    match st {
        None => serde_json::json!({ "mapping": name, "mirrors": 0, "last_pass": null }),
        Some(st) => serde_json::json!({
            "mapping": name,
            "mirrors": st.mirrors,
            "pending_creates": st.pending_intents,
            "checkpoint": st.checkpoint,
            "last_pass": st.last_pass.as_ref().map(pass),
            "last_success": st.last_success.as_ref().map(pass),
            "lag_seconds": st.last_success.as_ref().map(|p| (now - p.started_at).num_seconds()),
        }),
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
            "--config",
            "c.toml",
        ])
        .expect("parses");
        assert_eq!(cli.config, PathBuf::from("c.toml"));
        assert!(matches!(
            cli.command,
            Command::Reconcile {
                dry_run: true,
                full: true,
                ..
            }
        ));
    }
}
