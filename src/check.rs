//! `check`: everything that can be verified before a first pass, each line saying OK or what to
//! fix. Exit 0 only when nothing is wrong.

mod state_dir;
mod tokens;
mod units;

use std::sync::Arc;

use crate::config::{Config, ConfigFile, Deployment};
use crate::domain::PassKind;
use crate::error::Result;
use crate::gitlab::{OWNER, PLANNER};
use crate::metrics::Metrics;
use crate::reconcile::{Mode, Reconciler};
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
}

/// Whether a server's base URL answered its first, fixed-path request: when it did not find
/// it (404), or its port does not speak TLS, the URL is wrong and the per-mapping checks of
/// that server would only repeat that.
fn base_url_found(result: &Result<(), crate::http::ApiError>) -> bool {
    !matches!(result, Err(e) if e.status() == Some(404) || e.is_plain_http_port())
}

pub async fn run(mut cfg: Config, file: &ConfigFile) -> Result<i32> {
    // A check answers quickly: one retry per probe, not a pass's patient backoff (an
    // unreachable server would otherwise take most of a minute to report).
    cfg.retry.max_attempts = cfg.retry.max_attempts.min(CHECK_ATTEMPTS);
    let state_path = cfg.state_path.clone();
    let mappings = cfg.mappings.clone();
    let deployment = cfg.jira.deployment;
    let gitlab_identity = cfg.gitlab.identity();
    let webhook = cfg.webhook.clone();
    // `check` refreshes what passes cache about each GitLab project (id, the token's role) in
    // an existing state database. It never creates one: an admin's `sudo … check` before the
    // service first ran must not leave a database behind (nor one owned by root).
    let store = state_path.exists().then(|| Store::open(&state_path));
    let mut out = Out::default();
    println!(
        "config  {} loaded, {} mapping(s), state database {}",
        file.describe(),
        mappings.len(),
        state_path.display()
    );
    for finding in tokens::sources(&cfg) {
        out.say(finding);
    }
    let service_tokens = tokens::service_credentials(&cfg).await;
    let r = Reconciler::new(cfg, Arc::new(Metrics::new()))?;
    let ok = |what: String| println!("ok      {what}");
    let jira_reached = match r.jira().myself().await {
        Ok(me) => {
            ok(format!(
            "Jira {} ({}) accepts the credentials of {} (account time zone {}; searches use epoch milliseconds, so it does not shift the window)",
            r.jira().base_url(),
            match deployment {
                Deployment::Cloud => "Cloud",
                Deployment::Datacenter => "Data Center",
            },
            me.email.or(me.display_name).unwrap_or_else(|| "the account".into()),
            me.time_zone.unwrap_or_else(|| "unknown".into())
            ));
            Ok(())
        }
        Err(e) => {
            out.say(Finding::Problem(e.to_string()));
            Err(e)
        }
    };
    let gitlab_reached = match r.gitlab().user().await {
        Ok(u) => {
            ok(format!(
                "GitLab accepts the token of user {}{}",
                u.username,
                if u.is_admin == Some(true) {
                    " (admin)"
                } else {
                    ""
                }
            ));
            Ok(())
        }
        Err(e) => {
            out.say(Finding::Problem(e.to_string()));
            Err(e)
        }
    };
    for finding in service_tokens {
        out.say(finding);
    }
    let (jira_found, gitlab_found) = (
        base_url_found(&jira_reached),
        base_url_found(&gitlab_reached),
    );
    for (found, server, key) in [
        (jira_found, "Jira", "jira.url"),
        (gitlab_found, "GitLab", "gitlab.url"),
    ] {
        if !found {
            out.say(Finding::Note(format!(
                "the mappings' {server} checks were skipped: fix {key} first"
            )));
        }
    }
    for m in &mappings {
        let name = m.name();
        if jira_found {
            match r.jira().check_project(&m.jira_project).await {
                Ok(()) => ok(format!("{name}: Jira project {} exists", m.jira_project)),
                Err(e) => out.say(Finding::Problem(format!("{name}: {e}"))),
            }
            let jql = m.search_filter(Some(chrono::Utc::now()));
            match r.jira().search(&jql).await {
                Ok(_) => ok(format!("{name}: Jira accepts the mapping's search")),
                Err(e) => out.say(Finding::Problem(format!("{name}: {e}"))),
            }
        }
        if !gitlab_found {
            continue;
        }
        let project = r.gitlab().project(&m.gitlab_project).await;
        if let Some(Ok(store)) = &store {
            let cached = match &project {
                Ok(p) => store
                    .cache()
                    .save_project(&gitlab_identity, &m.gitlab_project, p),
                Err(_) => store
                    .cache()
                    .forget_project(&gitlab_identity, &m.gitlab_project),
            };
            if let Err(e) = cached {
                out.say(Finding::Problem(e.report()));
            }
        }
        if let Ok(p) = &project {
            if let Some(scope) = &m.status_labels {
                match p.group.as_deref() {
                    Some(g) if p.can_create_group_labels() => ok(format!(
                        "{name}: status labels ({scope}::<status>) will be created as group labels in {g}, usable by group-level value streams"
                    )),
                    Some(g) => ok(format!(
                        "{name}: status labels ({scope}::<status>) will be project labels: the token has no Planner or Reporter role in the group {g} (group-level value streams need group labels)"
                    )),
                    None => ok(format!("{name}: status labels ({scope}::<status>) will be project labels")),
                }
            }
            if m.issue_types.values().any(|t| t == "incident") && !p.can_create_incidents() {
                out.say(Finding::Problem(format!(
                    "{name}: issue_types maps to incident, but the token's role on {} (access level {}) cannot create incidents: GitLab would file plain issues; give it the Reporter role or higher",
                    p.path, p.access_level
                )));
            }
        }
        match project {
            Ok(p) if p.access_level < PLANNER => out.say(Finding::Problem(format!(
                "{name}: the token's role on {} (access level {}) cannot close or reopen issues: give it Planner or Reporter or higher",
                p.path, p.access_level
            ))),
            Ok(p) if p.access_level < OWNER => ok(format!(
                "{name}: GitLab project {} (id {}), the token can create, close and reopen issues; it is not an Owner, so issues cannot be backdated: VSA lead time counts from when the mirror created them",
                p.path, p.id
            )),
            Ok(p) => ok(format!(
                "{name}: GitLab project {} (id {}), Owner token: created_at and close times are backdated to Jira's",
                p.path, p.id
            )),
            Err(e) => out.say(Finding::Problem(format!("{name}: {e}"))),
        }
    }
    let unit_dirs = units::unit_dirs(std::env::var("SYSTEMD_UNIT_PATH").ok().as_deref());
    out.say(state_dir::writable(
        &state_path,
        &units::state_directories(&unit_dirs),
    ));
    match &store {
        Some(Ok(_)) => ok(format!("state database {} is usable", state_path.display())),
        Some(Err(e)) => out.say(Finding::Problem(e.report())),
        None => out.say(Finding::Note(state_dir::missing_database(&state_path))),
    }
    let servers_found = jira_found && gitlab_found;
    for m in mappings
        .iter()
        .filter(|m| servers_found && m.seed_iid_prefix.is_some())
    {
        // What the first full pass would do with the recipe's issues: a dry run, no writes.
        let store = Store::open_read_only(&state_path).ok().flatten();
        let report = r
            .pass_mapping(Mode::DryRun(store.as_ref()), m, PassKind::Full)
            .await;
        let name = m.name();
        if !report.ok() {
            out.say(Finding::Problem(format!(
                "{name}: could not look for the Automation recipe's issues: {}",
                report.failure_lines().join("; ")
            )));
            continue;
        }
        let prefix = m.seed_iid_prefix.as_deref().unwrap_or_default();
        ok(format!(
            "{name}: {} issue(s) of the Automation recipe (iid {prefix}<number>) would be adopted; {} recipe slot(s) hold other issues, which are left alone (a new mirror is created for their Jira issue)",
            report.recipe.adopted, report.recipe.foreign
        ));
    }
    if let Some(w) = &webhook {
        // A running service holds the port: a connection tells whether events can arrive now.
        let listening = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            tokio::net::TcpStream::connect(w.listen),
        )
        .await
        .is_ok_and(|c| c.is_ok());
        println!(
            "note    webhook: `run` receives Jira's events at {}{} ({})",
            w.listen,
            w.path,
            if listening {
                "something is listening there now"
            } else {
                "nothing listens there now: is the service running?"
            }
        );
        // No state database yet: no event can have been recorded.
        let events = match &store {
            None => Some(Ok(None)),
            Some(s) => s.as_ref().ok().map(|s| s.webhook_counts().read()),
        };
        match events {
            Some(Ok(Some((issues, at)))) => ok(format!(
                "webhook: events have arrived; {issues} event-named issue(s) passed, the last at {}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
            Some(Ok(None)) => println!(
                "note    webhook: no event has arrived yet; register it with `jira-gitlab-reconciler webhook register` (Jira admins) or paste what `webhook url` prints into Jira's WebHooks page"
            ),
            Some(Err(e)) => out.say(Finding::Problem(e.report())),
            None => {}
        }
    }
    if out.problems > 0 {
        println!("{} problem(s) found", out.problems);
        return Ok(2);
    }
    println!("all checks passed");
    Ok(0)
}
