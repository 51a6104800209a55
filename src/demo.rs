//! `demo`: the reconciler against built-in simulated Jira Cloud and GitLab servers on
//! 127.0.0.1 (the same fakes the tests use). No credentials, no network: it plays ten weeks of
//! Jira history (issues created and moved through their statuses at realistic times), mirrors
//! it, runs passes while issues are created, resolved, reopened, renamed and deleted, and ends
//! with the lead-time report — next to the lead time GitLab would show had the issues been
//! mirrored without backdating — and a commit that mentions a mirror (`demo/commits.rs`).

mod commits;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use jgr_sim::gitlab::Role;
use jgr_sim::world::{SimMapping, SimWorld, WorldOptions};

use crate::config::Config;
use crate::domain::PassKind;
use crate::error::{Error, Result};
use crate::leadtime::percentile;
use crate::metrics::Metrics;
use crate::reconcile::{Mode, PassReport, Reconciler};
use crate::report::{self, human, Format};
use crate::rng::Xorshift;
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

/// Mirrored with an Owner token: created and closed at Jira's times.
const PROJECT: &str = "acme/platform";
/// The same issues mirrored with a Reporter token, which GitLab does not let backdate.
const UNBACKDATED: &str = "compare/platform-no-backdating";
const HISTORY_DAYS: i64 = 70;
/// The status board of `PROJECT`: a list per Jira status of the "In Progress" category.
const BOARD: &str = "Jira workflow";

pub async fn run(issue_count: u32) -> Result<i32> {
    let dir = std::env::temp_dir().join(format!(
        "jira-gitlab-reconciler-demo-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    // The chart outlives the demo's servers and state. Named for this run, so two demos at
    // once (or another user's chart in a shared $TMPDIR) never write the same file.
    let svg = std::env::temp_dir().join(format!(
        "jira-gitlab-reconciler-demo-{}-lead-time.svg",
        std::process::id()
    ));
    let result = demo(&dir, issue_count.max(6), &svg).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The story, step by step: history, a first pass, changes on both sides, an idle pass, a
/// mirror changed by hand and the full pass that repairs it, then the lead-time report.
async fn demo(dir: &Path, issue_count: u32, svg: &Path) -> Result<i32> {
    let w = start_world(dir).await?;
    let keys = play_history(&w, issue_count);
    tell_history(&w, &keys, issue_count);
    let cfg = Config::parse(&w.config_toml(), Path::new("demo-config.toml"), &|_| None)?;
    let reconciler = Reconciler::new(cfg.clone(), Arc::new(Metrics::new()))?;
    let store = Store::open(&w.state_path())?;
    let pass = |kind| reconciler.pass(Mode::Apply(&store), kind);
    show(
        "First pass (no checkpoint yet, so it compares everything; changelogs give each mirror its status history):",
        &pass(PassKind::Incremental).await,
    );

    w.clock.advance(Duration::from_secs(120));
    let deleted = change_both_sides(&w, &keys);
    show("Incremental pass:", &pass(PassKind::Incremental).await);

    let writes = w.gitlab.writes();
    let reports = pass(PassKind::Incremental).await;
    println!("\n3. Nothing changed in Jira:");
    show(
        &format!("idle pass: {} GitLab writes", w.gitlab.writes() - writes),
        &reports,
    );

    drift_by_hand(&w);
    let reports = pass(PassKind::Full).await;
    show(
        &format!(
            "Full pass (what the nightly resync does) puts Jira's state back, and closes the mirror of the deleted {} with the label jira::deleted:",
            shown(deleted.as_ref())
        ),
        &reports,
    );
    let failed = reports.iter().any(|r| !r.ok());

    list_issues(&w);
    lead_time(&cfg, &w, svg)?;
    commits::show(&w, PROJECT).await?;
    println!("\nRun it against your own Jira and GitLab: see config.toml and README.md.");
    Ok(i32::from(failed))
}

/// The simulated Jira Cloud and GitLab, with the two mappings the story compares.
async fn start_world(dir: &Path) -> Result<SimWorld> {
    let io = |e: std::io::Error| Error::io("demo: cannot start the simulated servers", e);
    let mut opts = WorldOptions::new(dir);
    // An account zone far from UTC: searches use epoch milliseconds, so it cannot shift them.
    opts.time_zone = (
        "Pacific/Chatham".into(),
        FixedOffset::east_opt(13 * 3600 + 45 * 60).unwrap_or(opts.time_zone.1),
    );
    opts.role = Role::Owner;
    let mapping = |gitlab: &str, role: Option<Role>| SimMapping {
        jql: Some("issuetype != Epic".into()),
        labels: vec!["jira".into()],
        status_labels: Some("jira-status".into()),
        issue_types: vec![("Incident".into(), "incident".into())],
        role,
        extra_config: "assignees = true\nlabels_from = [\"components\", \"priority\"]\n".into(),
        ..SimMapping::new("VSA", gitlab)
    };
    // The status board on top of the fields (its own line added, not replacing theirs).
    // And milestones from fix versions.
    let mut main = mapping(PROJECT, None);
    main.extra_config.push_str(&format!(
        "status_board = \"{BOARD}\"\nmilestones = \"fixVersion\"\n"
    ));
    opts.mappings = vec![main, mapping(UNBACKDATED, Some(Role::Reporter))];
    let mut w = SimWorld::start(opts).await.map_err(io)?;
    add_people(&mut w);
    add_versions(&w);
    // An Owner of the acme group too, so status labels become group labels there.
    w.gitlab
        .grant_group("acme", jgr_sim::world::GITLAB_USER, Role::Owner);
    println!(
        "Simulated Jira Cloud at {} (account time zone Pacific/Chatham, +13:45)",
        w.jira.url()
    );
    println!(
        "Simulated GitLab at {}; state database {}",
        w.gitlab.url(),
        w.state_path().display()
    );
    println!(
        "Mapping VSA → {PROJECT} with an Owner token (backdates), and VSA → {UNBACKDATED} with a Reporter token (cannot), for comparison.\n"
    );
    Ok(w)
}

/// The team: Alice's e-mail is visible in Jira and public in GitLab (matched by it), Bob's is
/// hidden (mapped in `[users]`), Carol's hidden and unmapped (left unassigned, and named).
fn add_people(w: &mut SimWorld) {
    use jgr_sim::world::PersonSpec;
    w.add_person(&PersonSpec::new("alice", "Alice"));
    let bob = w.add_person(&PersonSpec::new("bob", "Bob").jira_email_hidden());
    w.add_person(&PersonSpec::new("carol", "Carol").jira_email_hidden());
    w.opts.gitlab_config = format!("\n[users]\n\"{}\" = \"bob\"\n", bob.jira.account_id);
    println!(
        "People: Alice (e-mail visible in Jira, public in GitLab), Bob (e-mail hidden, mapped in [users]), Carol (e-mail hidden, not mapped: left unassigned, and named in the pass notes)."
    );
}

/// The releases: the first half of the history's issues go into 1.0 (released in step 2),
/// the rest into 1.1 (due in two weeks).
const VERSIONS: [&str; 2] = ["1.0", "1.1"];

fn add_versions(w: &SimWorld) {
    let today = Utc::now().date_naive();
    let day = |n: i64| Some(today + chrono::Duration::days(n));
    let half = HISTORY_DAYS / 2;
    w.jira
        .add_version("VSA", VERSIONS[0], day(-HISTORY_DAYS), day(-half));
    w.jira.add_version("VSA", VERSIONS[1], day(-half), day(14));
    println!(
        "Releases (Jira fix versions, mirrored as GitLab milestones): {} and {}.",
        VERSIONS[0], VERSIONS[1]
    );
}

/// Who picks issue `i` up when work starts.
const PEOPLE: [&str; 3] = ["alice@example.com", "bob@example.com", "carol@example.com"];
/// Issue `i`'s component.
const COMPONENTS: [&str; 3] = ["API", "Web", "Billing"];

/// Step 1: what the history holds.
fn tell_history(w: &SimWorld, keys: &[String], issue_count: u32) {
    let count = |f: &dyn Fn(&jgr_sim::jira::IssueSnapshot) -> bool| {
        keys.iter()
            .filter(|k| w.jira.issue(k).is_some_and(|s| f(&s)))
            .count()
    };
    let epics = count(&|s| s.issue_type == "Epic");
    let done = count(&|s| s.category == "done");
    println!(
        "1. Played {HISTORY_DAYS} days of Jira history: {issue_count} issues in VSA ({done} done, {epics} epic(s) the mapping's jql filters out, some incidents), each moved To Do → In Progress → In Review → Done at its own pace."
    );
}

/// One pass's lines: each mapping's summary and failures.
fn show(title: &str, reports: &[PassReport]) {
    println!("   {title}");
    for r in reports {
        println!("   → {}", r.summary());
        let people = r
            .tally
            .notes
            .iter()
            .filter(|n| n.contains("no GitLab user"));
        for n in people {
            println!("     {n}");
        }
        for f in &r.failures {
            println!("   ! {f}");
        }
    }
}

fn shown(key: Option<&String>) -> String {
    key.map(|k| k.as_str()).unwrap_or("-").to_string()
}

/// Step 2: in Jira two stories resolved, one reopened, renamed, deleted and created; in
/// GitLab an issue created by hand. Returns the deleted story's key.
fn change_both_sides(w: &SimWorld, keys: &[String]) -> Option<String> {
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
    let deleted = stories.iter().copied().rev().find(|k| {
        category(k) != "done"
            && !resolved.contains(k)
            && Some(*k) != reopened
            && Some(*k) != renamed
    });
    if let Some(k) = deleted {
        w.jira.delete_issue(k);
    }
    let fresh = release_and_create(w);
    let ui = w.gitlab.create_by_hand(
        PROJECT,
        "Hotfix tracked only in GitLab",
        "created in the GitLab UI",
    );
    let resolved: Vec<&str> = resolved.iter().map(|k| k.as_str()).collect();
    println!(
        "\n2. In Jira: {} resolved, {} reopened, {} renamed, {} deleted, {} created (in {}); version {} released (which edits no issue: its milestone is closed by the next full pass at the latest).",
        resolved.join(" and "),
        shown(reopened),
        shown(renamed),
        shown(deleted),
        fresh,
        VERSIONS[1],
        VERSIONS[0]
    );
    println!("   In GitLab: someone created #{ui} in the UI (the mirror leaves it alone).");
    deleted.cloned()
}

/// In step 2: version 1.0 released, and a story created in 1.1. Returns the story's key.
fn release_and_create(w: &SimWorld) -> String {
    let fresh = w
        .jira
        .create_issue("VSA", "Customer asks for an audit log", "Story");
    w.jira.set_fix_versions(&fresh.key, &[VERSIONS[1]]);
    if let Some(v) = w
        .jira
        .versions("VSA")
        .iter()
        .find(|v| v.name == VERSIONS[0])
    {
        w.jira.release_version(&v.id, None);
    }
    fresh.key
}

/// Step 4: someone closes and retitles a mirror by hand in GitLab.
fn drift_by_hand(w: &SimWorld) {
    let drifted = w
        .gitlab
        .issues(PROJECT)
        .into_iter()
        .find(|g| g.state == "opened" && g.description.contains("jira-id="));
    if let Some(g) = &drifted {
        w.gitlab.close_by_hand(PROJECT, g.iid);
        w.gitlab
            .retitle_by_hand(PROJECT, g.iid, "edited by hand in GitLab");
        println!(
            "\n4. Someone closed and retitled mirror #{} by hand in GitLab.",
            g.iid
        );
    }
}

/// Ten weeks of work, in time order: issues created every day or so, each then waiting,
/// worked on, reviewed and finished at its own pace (the recent ones are still open).
/// Returns the keys in creation order.
fn play_history(w: &SimWorld, count: u32) -> Vec<String> {
    const HOUR: i64 = 3_600;
    let now = Utc::now();
    let start = now - chrono::Duration::days(HISTORY_DAYS);
    let mut rng = Xorshift::new(20_250_303);
    let hours = |rng: &mut Xorshift, lo: i64, hi: i64| lo + rng.below((hi - lo) as u64) as i64;
    // (when, issue index, what): 0 create, then the statuses.
    let mut events: Vec<(DateTime<Utc>, usize, usize)> = Vec::new();
    let span = HISTORY_DAYS * 24 * HOUR - 4 * 24 * HOUR;
    // The newest issues are work in progress: each stops in To Do, In Progress or In Review.
    let open = (count as usize / 5).max(3);
    for i in 0..count as usize {
        let created = start + chrono::Duration::seconds(span * i as i64 / i64::from(count));
        let created = created + chrono::Duration::seconds(hours(&mut rng, 0, 6) * HOUR);
        let mut at = created;
        events.push((at, i, 0));
        // To Do for 4 h–8 d, In Progress 1–9 d, In Review 2 h–3 d; one issue in five is
        // twice as slow (blocked, forgotten, too big).
        let slow = if rng.below(5) == 0 { 2 } else { 1 };
        let last_step = if i + open >= count as usize { i % 3 } else { 3 };
        for (step, (lo, hi)) in [(4, 192), (24, 216), (2, 72)].into_iter().enumerate() {
            at += chrono::Duration::seconds(slow * hours(&mut rng, lo, hi) * HOUR);
            if step < last_step {
                events.push((at, i, step + 1));
            }
        }
    }
    events.retain(|(at, _, _)| *at < now);
    events.sort_by_key(|(at, i, step)| (*at, *i, *step));
    let mut keys: Vec<String> = Vec::new();
    for (at, i, step) in events {
        w.clock.set(at);
        match step {
            0 => keys.push(create_story(w, i, count)),
            1 => {
                w.jira.set_assignee(&keys[i], Some(PEOPLE[i % 3]));
                w.jira.transition(&keys[i], "In Progress", "indeterminate");
            }
            2 => w.jira.transition(&keys[i], "In Review", "indeterminate"),
            _ => w.jira.transition(&keys[i], "Done", "done"),
        }
    }
    w.clock.set(now);
    keys
}

/// Issue `i` of `count` as Jira holds it when created: its type, component, priority (for
/// incidents) and release (the first half in 1.0). Returns its key.
fn create_story(w: &SimWorld, i: usize, count: u32) -> String {
    let summary = format!("{} (#{i})", STORIES[i % STORIES.len()]);
    let kind = match i % 9 {
        8 => "Epic",
        3 => "Incident",
        _ => "Story",
    };
    let key = w.jira.create_issue("VSA", &summary, kind).key;
    w.jira.set_components(&key, &[COMPONENTS[i % 3]]);
    if kind == "Incident" {
        w.jira.set_priority(&key, Some("High"));
    }
    if kind != "Epic" {
        let version = VERSIONS[usize::from(2 * i >= count as usize)];
        w.jira.set_fix_versions(&key, &[version]);
    }
    key
}

fn list_issues(w: &SimWorld) {
    let issues = w.gitlab.issues(PROJECT);
    let closed = issues.iter().filter(|g| g.state == "closed").count();
    println!(
        "\nGitLab now holds {} issues in {PROJECT} ({} open, {closed} closed):",
        issues.len(),
        issues.len() - closed
    );
    let jira = w.jira.issues();
    for g in &issues {
        let key = jira
            .iter()
            .find(|j| g.description.contains(&format!("jira-id={} -->", j.id)))
            .map(|j| j.key.clone())
            .unwrap_or_else(|| {
                if g.description.contains("jira-id=") {
                    "(deleted)".into()
                } else {
                    "(not a mirror)".into()
                }
            });
        let status = g
            .labels
            .iter()
            .find(|l| l.starts_with("jira-status::") || l.starts_with("jira::"))
            .map(|l| l.as_str())
            .unwrap_or("");
        let kind = if g.issue_type == "incident" {
            "incident"
        } else {
            ""
        };
        let meta = w.gitlab.issue_metadata(PROJECT, g.iid);
        let assignee = meta.as_ref().and_then(|m| m.assignees.first().cloned());
        let milestone = meta.and_then(|m| m.milestone).unwrap_or_default();
        let component = g.labels.iter().find(|l| l.starts_with("component::"));
        println!(
            "  #{:<3} {:<7} {:<9} {:<24} {:<8} {:<6} {:<20} {:<4} {}",
            g.iid,
            g.state,
            key,
            status,
            kind,
            assignee.unwrap_or_default(),
            component.map_or("", |c| c.as_str()),
            milestone,
            g.title
        );
    }
    list_milestones(w);
    for board in w.gitlab.boards(PROJECT) {
        println!(
            "Issue board \"{}\" (status_board), one list per Jira status in progress: {}",
            board.name,
            board.lists.join(", ")
        );
    }
}

/// The milestones the mirror made from Jira's fix versions (`milestones = "fixVersion"`).
fn list_milestones(w: &SimWorld) {
    let date = |d: Option<chrono::NaiveDate>| d.map_or("-".to_string(), |d| d.to_string());
    let all: Vec<String> = w
        .gitlab
        .milestones(PROJECT)
        .iter()
        .map(|m| {
            format!(
                "\"{}\" {} (start {}, due {})",
                m.title,
                m.state,
                date(m.start_date),
                date(m.due_date)
            )
        })
        .collect();
    println!("Milestones (from fix versions): {}", all.join("; "));
}

/// The report, then what GitLab's VSA would measure in each project.
fn lead_time(cfg: &Config, w: &SimWorld, svg: &Path) -> Result<()> {
    let mapping = format!("VSA->{PROJECT}");
    let request = report::Request {
        since: None,
        until: None,
        format: Format::Table,
        svg: Some(PathBuf::from(svg)),
        mapping: Some(mapping),
    };
    // The simulated servers' clock, which the demo moved a few minutes past the real one.
    let r = report::compute(&cfg.state_config(), &request, w.clock.now())?;
    println!("\n5. The lead-time report, from the state database alone (`jira-gitlab-reconciler report`):\n");
    for line in report::render(&r, Format::Table).lines() {
        println!("   {line}");
    }
    // The chart is a bonus: a $TMPDIR where it cannot be written (another user's file of the
    // same name) must not end the demo before its point, the comparison below.
    let chart = match report::write_svg(&r, svg) {
        Ok(()) => format!(
            "Chart of lead time and throughput per week: {}",
            svg.display()
        ),
        Err(e) => format!("No chart: {e} (set TMPDIR to a directory of yours)"),
    };
    let gitlab_median = |project: &str| {
        let mut v: Vec<f64> = w
            .gitlab
            .issues(project)
            .iter()
            .filter(|g| {
                g.description.contains("jira-id=") && !g.labels.iter().any(|l| l == "jira::deleted")
            })
            .filter_map(|g| {
                g.closed_at
                    .map(|c| (c - g.created_at).num_milliseconds() as f64 / 1000.0)
            })
            .collect();
        v.sort_by(|a, b| a.total_cmp(b));
        percentile(&v, 0.5).map_or("-".to_string(), human)
    };
    println!("   What GitLab's Value Stream Analytics would count as lead time (median of closed − created):");
    println!(
        "     {PROJECT:<32} Owner token, backdated:   {:>8}   (Jira's lead time)",
        gitlab_median(PROJECT)
    );
    println!(
        "     {UNBACKDATED:<32} Reporter token, not:      {:>8}   (when the mirror ran, not the team)",
        gitlab_median(UNBACKDATED)
    );
    println!(
        "   On GitLab Free there are no lead-time tiles at all: this report is the lead time."
    );
    println!("   {chart}");
    Ok(())
}
