//! `check`: everything that can be verified before a first pass, each line saying OK or what to
//! fix. Exit 0 only when nothing is wrong. One function per check, run in the order of the
//! output: the config and its tokens (`tokens`), the two servers, each mapping (`mapping`),
//! the status boards and milestones (`board`, `milestones`), the state directory and database
//! (`state_dir`, `units`, `sandbox`: as the installed unit will see it), the Automation
//! recipe's issues, and the webhook (`webhook`).

mod assignees;
mod board;
mod mapping;
mod milestones;
mod sandbox;
mod state_dir;
mod tokens;
mod units;
mod webhook;

use std::path::Path;
use std::sync::Arc;

use crate::config::{Config, ConfigFile, Deployment};
use crate::error::{Error, Result};
use crate::http::ApiError;
use crate::metrics::Metrics;
use crate::reconcile::Reconciler;
use crate::store::Store;

/// Tries per request during `check`, the first included.
const CHECK_ATTEMPTS: u32 = 2;

/// What one check found: a line of the output.
pub(crate) enum Finding {
    Ok(String),
    Problem(String),
    Note(String),
}

/// The lines printed so far, and how many were problems.
#[derive(Default)]
struct Out {
    problems: u32,
}

impl Out {
    fn say(&mut self, finding: Finding) {
        match finding {
            Finding::Ok(what) => println!("ok      {what}"),
            Finding::Problem(what) => {
                self.problems += 1;
                println!("PROBLEM {what}");
            }
            Finding::Note(what) => println!("note    {what}"),
        }
    }

    fn say_all(&mut self, findings: impl IntoIterator<Item = Finding>) {
        for finding in findings {
            self.say(finding);
        }
    }

    /// The last line, and the exit code: 2 when anything is to fix.
    fn verdict(&self) -> i32 {
        if self.problems > 0 {
            println!("{} problem(s) found", self.problems);
            return 2;
        }
        println!("all checks passed");
        0
    }
}

/// Whether each server's base URL answered: the per-mapping checks of a server whose URL is
/// wrong would only repeat that.
#[derive(Clone, Copy)]
struct Reached {
    jira: bool,
    gitlab: bool,
    /// What each server said of the token this check used.
    tokens: tokens::Verdicts,
}

/// A mapping and its GitLab project as `check` read it (`None`: it could not be read, which
/// the mapping's findings say), so the later checks need not ask GitLab again.
type MappedProject<'a> = (&'a crate::config::Mapping, Option<crate::gitlab::Project>);

pub async fn run(mut cfg: Config, file: &ConfigFile) -> Result<i32> {
    // A check answers quickly: one retry per probe, not a pass's patient backoff (an
    // unreachable server would otherwise take most of a minute to report).
    cfg.retry.max_attempts = cfg.retry.max_attempts.min(CHECK_ATTEMPTS);
    let state_path = cfg.state_path.clone();
    // `check` refreshes what passes cache about each GitLab project (id, the token's role) in
    // an existing state database. It never creates one: an admin's `sudo … check` before the
    // service first ran must not leave a database behind (nor one owned by root).
    let store = state_path.exists().then(|| Store::open(&state_path));
    let mut out = Out::default();
    println!(
        "config  {} loaded, {} mapping(s), state database {}",
        file.describe(),
        cfg.mappings.len(),
        state_path.display()
    );
    out.say_all(tokens::sources(&cfg));
    let webhook = cfg.webhook.clone();
    let r = Reconciler::new(cfg, Arc::new(Metrics::new()))?;
    let reached = servers(&r, &mut out).await;
    out.say_all(tokens::service_credentials(r.config(), reached.tokens).await);
    out.say_all(skipped(reached));
    let cache = store.as_ref().and_then(|s| s.as_ref().ok());
    let mut projects: Vec<MappedProject> = Vec::new();
    for m in &r.config().mappings {
        out.say_all(mapping::jira(&r, m, reached).await);
        let (findings, project) = mapping::gitlab(&r, m, reached, cache).await;
        out.say_all(findings);
        projects.push((m, project));
    }
    if reached.jira && reached.gitlab {
        out.say_all(board::all(&r, &projects).await);
        out.say_all(milestones::all(&r, &projects).await);
    }
    out.say_all(state(&state_path, &file.path, store.as_ref()));
    if reached.jira && reached.gitlab {
        for m in r.config().mappings.iter() {
            out.say_all(mapping::recipe(&r, m, &state_path).await);
        }
    }
    if let Some(w) = &webhook {
        out.say_all(webhook::findings(w, store.as_ref()).await);
    }
    Ok(out.verdict())
}

/// Whether each server accepts the credentials, a line each.
async fn servers(r: &Reconciler, out: &mut Out) -> Reached {
    let jira = jira_accepts(r).await;
    out.say(finding(&jira));
    let gitlab = gitlab_accepts(r).await;
    out.say(finding(&gitlab));
    Reached {
        jira: base_url_found(&jira),
        gitlab: base_url_found(&gitlab),
        tokens: tokens::Verdicts {
            jira: tokens::Verdict::of(&jira),
            gitlab: tokens::Verdict::of(&gitlab),
        },
    }
}

fn finding(result: &Result<String, ApiError>) -> Finding {
    match result {
        Ok(what) => Finding::Ok(what.clone()),
        Err(e) => Finding::Problem(e.to_string()),
    }
}

async fn jira_accepts(r: &Reconciler) -> Result<String, ApiError> {
    let me = r.jira().myself().await?;
    let deployment = match r.config().jira.deployment {
        Deployment::Cloud => "Cloud",
        Deployment::Datacenter => "Data Center",
    };
    Ok(format!(
        "Jira {} ({deployment}) accepts the credentials of {} (account time zone {}; searches use epoch milliseconds, so it does not shift the window)",
        r.jira().base_url(),
        me.email.or(me.display_name).unwrap_or_else(|| "the account".into()),
        me.time_zone.unwrap_or_else(|| "unknown".into())
    ))
}

async fn gitlab_accepts(r: &Reconciler) -> Result<String, ApiError> {
    let u = r.gitlab().user().await?;
    let admin = if u.is_admin == Some(true) {
        " (admin)"
    } else {
        ""
    };
    Ok(format!(
        "GitLab accepts the token of user {}{admin}",
        u.username
    ))
}

/// Whether a server's base URL answered its first, fixed-path request: when it did not find
/// it (404), or its port does not speak TLS, the URL is wrong.
fn base_url_found<T>(result: &Result<T, ApiError>) -> bool {
    !matches!(result, Err(e) if e.status() == Some(404) || e.is_plain_http_port())
}

/// A note for each server whose per-mapping checks are skipped.
fn skipped(reached: Reached) -> Vec<Finding> {
    [
        (reached.jira, "Jira", "jira.url"),
        (reached.gitlab, "GitLab", "gitlab.url"),
    ]
    .into_iter()
    .filter(|(found, _, _)| !found)
    .map(|(_, server, key)| {
        Finding::Note(format!(
            "the mappings' {server} checks were skipped: fix {key} first"
        ))
    })
    .collect()
}

/// Whether passes can write the state directory (as the installed unit will, when it runs
/// with this config file), and whether its database is usable.
fn state(state_path: &Path, config: &Path, store: Option<&Result<Store>>) -> Vec<Finding> {
    let unit_dirs = units::unit_dirs(std::env::var("SYSTEMD_UNIT_PATH").ok().as_deref());
    let unit = sandbox::Sandbox::installed(&unit_dirs).filter(|u| u.runs(config));
    let writable = state_dir::writable(
        state_path,
        &units::state_directories(&unit_dirs),
        unit.as_ref(),
    );
    let database = match store {
        Some(Ok(_)) => Finding::Ok(format!("state database {} is usable", state_path.display())),
        Some(Err(e)) => Finding::Problem(e.report()),
        None => Finding::Note(state_dir::missing_database(state_path)),
    };
    vec![writable, database]
}

/// An error of the state database, as a problem line.
fn problem(e: &Error) -> Finding {
    Finding::Problem(e.report())
}
