//! `demo`: the reconciler against built-in simulated Jira Cloud and GitLab servers on
//! 127.0.0.1 (the same fakes the tests use). No credentials, no network: it seeds issues, runs
//! passes while issues are created, resolved, reopened and renamed, and shows the result.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::FixedOffset;
use jgr_sim::world::{SimMapping, SimWorld, WorldOptions};

use crate::config::Config;
use crate::domain::PassKind;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::reconcile::{Mode, PassReport, Reconciler};
use crate::store::Store;

const STORIES: [&str; 12] = [
    "Checkout fails for carts over 100 items",
    "Add SSO login with Okta",
    "Nightly export times out",
    "Dark mode for the dashboard",
    "Rate-limit the public API",
    "Migrate billing to the new ledger",
    "Flaky test in payments suite",
    "Document the on-call runbook",
    "Search results ignore accents",
    "Upgrade PostgreSQL to 17",
    "Mobile: crash on rotate",
    "CSV import loses leading zeros",
];

pub async fn run(issue_count: u32) -> Result<i32> {
    let dir = std::env::temp_dir().join(format!(
        "jira-gitlab-reconciler-demo-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let result = demo(&dir, issue_count.max(6)).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn demo(dir: &std::path::Path, issue_count: u32) -> Result<i32> {
    let io = |e: std::io::Error| Error::io("demo: cannot start the simulated servers", e);
    let mut opts = WorldOptions::new(dir);
    // An account zone far from UTC: searches use epoch milliseconds, so it cannot shift them.
    opts.time_zone = (
        "Pacific/Chatham".into(),
        FixedOffset::east_opt(13 * 3600 + 45 * 60).unwrap_or(opts.time_zone.1),
    );
    opts.mappings = vec![SimMapping {
        jql: Some("issuetype != Epic".into()),
        labels: vec!["jira".into()],
        ..SimMapping::new("VSA", "acme/platform")
    }];
    let w = SimWorld::start(opts).await.map_err(io)?;
    let project = "acme/platform";
    println!(
        "Simulated Jira Cloud at {} (account time zone Pacific/Chatham, +13:45)",
        w.jira.url()
    );
    println!(
        "Simulated GitLab at {}; state database {}\n",
        w.gitlab.url(),
        w.state_path().display()
    );

    let mut keys = Vec::new();
    for i in 0..issue_count {
        let summary = format!("{} (#{i})", STORIES[i as usize % STORIES.len()]);
        let kind = if i % 9 == 8 { "Epic" } else { "Story" };
        let r = w.jira.create_issue("VSA", &summary, kind);
        // A fixed mix: some in progress, some done (VSA-2, VSA-6, ...), the rest to do.
        if i % 4 == 1 {
            w.jira.transition(&r.key, "Done", "done");
        } else if i % 3 == 0 {
            w.jira.transition(&r.key, "In Progress", "indeterminate");
        }
        keys.push(r.key);
    }
    println!(
        "1. Seeded {issue_count} Jira issues in VSA (epics are filtered out by the mapping's jql)."
    );
    let cfg = Config::parse(&w.config_toml(), Path::new("demo-config.toml"), &|_| None)?;
    let reconciler = Reconciler::new(cfg, Arc::new(Metrics::new()))?;
    let store = Store::open(&w.state_path())?;
    let show = |title: &str, reports: &[PassReport]| {
        println!("   {title}");
        for r in reports {
            println!("   → {}", r.summary());
            for f in &r.failures {
                println!("   ! {f}");
            }
        }
    };
    let reports = reconciler
        .pass(Mode::Apply(&store), PassKind::Incremental)
        .await;
    show(
        "First pass (no checkpoint yet, so it compares everything):",
        &reports,
    );

    w.clock.advance(Duration::from_secs(120));
    // Stories only: epics are filtered out by the mapping's jql.
    let stories: Vec<&String> = keys
        .iter()
        .filter(|k| w.jira.issue(k).is_some_and(|s| s.issue_type != "Epic"))
        .collect();
    let category = |k: &str| w.jira.issue(k).map(|s| s.category).unwrap_or_default();
    let resolved: Vec<&String> = stories
        .iter()
        .copied()
        .filter(|k| category(k) != "done")
        .take(2)
        .collect();
    let reopened = stories.iter().copied().find(|k| category(k) == "done");
    for k in &resolved {
        w.jira.transition(k, "Done", "done");
    }
    if let Some(k) = reopened {
        w.jira.transition(k, "Reopened", "indeterminate");
    }
    let renamed = stories
        .iter()
        .copied()
        .find(|k| !resolved.contains(k) && Some(*k) != reopened);
    if let Some(k) = renamed {
        w.jira
            .rename(k, "Nightly export times out (only for EU tenants)");
    }
    let fresh = w
        .jira
        .create_issue("VSA", "Customer asks for an audit log", "Story");
    let ui = w.gitlab.create_by_hand(
        project,
        "Hotfix tracked only in GitLab",
        "created in the GitLab UI",
    );
    let name = |k: Option<&String>| k.map(|k| k.as_str()).unwrap_or("-").to_string();
    println!(
        "\n2. In Jira: {} resolved, {} reopened, {} renamed, {} created.",
        resolved
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(" and "),
        name(reopened),
        name(renamed),
        fresh.key
    );
    println!("   In GitLab: someone created #{ui} in the UI (the mirror leaves it alone).");
    let reports = reconciler
        .pass(Mode::Apply(&store), PassKind::Incremental)
        .await;
    show("Incremental pass:", &reports);

    let writes = w.gitlab.writes();
    let reports = reconciler
        .pass(Mode::Apply(&store), PassKind::Incremental)
        .await;
    println!("\n3. Nothing changed in Jira:");
    show(
        &format!("idle pass: {} GitLab writes", w.gitlab.writes() - writes),
        &reports,
    );

    let drifted = w
        .gitlab
        .issues(project)
        .into_iter()
        .find(|g| g.state == "opened" && g.description.contains("jira-id="));
    if let Some(g) = &drifted {
        w.gitlab.close_by_hand(project, g.iid);
        w.gitlab
            .retitle_by_hand(project, g.iid, "edited by hand in GitLab");
        println!(
            "\n4. Someone closed and retitled mirror #{} by hand in GitLab.",
            g.iid
        );
    }
    let reports = reconciler.pass(Mode::Apply(&store), PassKind::Full).await;
    show(
        "Full pass (what the nightly resync does) puts Jira's state back:",
        &reports,
    );

    let issues = w.gitlab.issues(project);
    let closed = issues.iter().filter(|g| g.state == "closed").count();
    println!(
        "\nGitLab now holds {} issues in {project} ({} open, {closed} closed):",
        issues.len(),
        issues.len() - closed
    );
    for g in &issues {
        let key = w
            .jira
            .issues()
            .into_iter()
            .find(|j| g.description.contains(&format!("jira-id={} -->", j.id)))
            .map(|j| j.key)
            .unwrap_or_else(|| "(not a mirror)".into());
        println!("  #{:<3} {:<7} {:<15} {}", g.iid, g.state, key, g.title);
    }
    let failed = reports.iter().any(|r| !r.ok());
    println!("\nRun it against your own Jira and GitLab: see config.toml and README.md.");
    Ok(i32::from(failed))
}
