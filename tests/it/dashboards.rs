//! What ships for a Prometheus shop (`pkg/grafana/`, `pkg/prometheus/`) cannot silently rot:
//! every metric the dashboard and the alert rules query is one the service's `/metrics` names,
//! every metric the source sets is declared, the dashboard is importable as it stands (a
//! datasource variable, every query through it), and `promtool` checks and unit-tests the
//! rules.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jgr_sim::Fault;
use jira_gitlab_reconciler::domain::PassKind;
use jira_gitlab_reconciler::metrics::{Metrics, FAMILIES};
use jira_gitlab_reconciler::reconcile::{Mode, Reconciler};
use jira_gitlab_reconciler::store::Store;
use serde_json::Value;

use crate::browser::tool_or_skip;
use crate::harness::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const DASHBOARD: &str = "pkg/grafana/jira-gitlab-reconciler.json";
const RULES: &str = "pkg/prometheus/alerts.yml";
const RULE_TESTS: &str = "tests/prometheus/alerts_test.yml";

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).expect("readable")
}

/// The `jgr_…` names in a text (PromQL, YAML, Rust source).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices("jgr_") {
        let preceded = text[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if preceded {
            continue;
        }
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        names.insert(name);
    }
    names
}

/// The families `/metrics` of a running service names (`# TYPE` lines).
async fn exported_families() -> BTreeSet<String> {
    let w = world("dashboards", |_| {}).await;
    let sockets = Sockets::for_world(&w);
    let port = sockets.metrics_port();
    let child = spawn_service(&service_config(&w, port, ""), &sockets);
    let started = Instant::now();
    let text = loop {
        let (status, body) = http_get(port, "/metrics").await;
        if status == 200 || started.elapsed() > Duration::from_secs(20) {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drop(child);
    assert!(!text.is_empty(), "the service serves /metrics");
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_metric_the_source_sets_is_declared_and_every_declared_one_is_set() {
    let mut used = BTreeSet::new();
    let mut stack = vec![Path::new(ROOT).join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.ends_with("metrics.rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                used.extend(
                    metric_names(&text)
                        .into_iter()
                        .filter(|n| text.contains(&format!("\"{n}\""))),
                );
            }
        }
    }
    let declared: BTreeSet<String> = FAMILIES.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        used, declared,
        "metrics::FAMILIES must list exactly the metrics the source sets"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_the_alert_rules_query_only_what_metrics_exports() {
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).expect("the dashboard is JSON");
    let exprs = dashboard_queries(&dashboard);
    assert!(exprs.len() >= 15, "{exprs:?}");
    let mut queried = BTreeSet::new();
    for e in &exprs {
        queried.extend(metric_names(e));
    }
    let rules = metric_names(&read(RULES));
    for needed in [
        "jgr_last_success_timestamp_seconds",
        "jgr_schedule_interval_seconds",
        "jgr_needs_person",
        "jgr_create_requests_total",
        "jgr_creates_waiting",
        "jgr_webhook_events_total",
    ] {
        assert!(rules.contains(needed), "the rules use {needed}");
    }
    queried.extend(rules);
    let exported = exported_families().await;
    let missing: Vec<&String> = queried.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "queried but not on /metrics: {missing:?} (exported: {exported:?})"
    );
}

/// Every query of the dashboard, after checking that it goes through the `datasource`
/// variable (so the file imports as it is into any Grafana with a Prometheus source).
fn dashboard_queries(d: &Value) -> Vec<String> {
    assert!(d["id"].is_null(), "no id: Grafana assigns one on import");
    assert_eq!(d["uid"], "jira-gitlab-reconciler");
    let vars = d["templating"]["list"].as_array().expect("variables");
    let source = vars
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(
        (&source["type"], &source["query"]),
        (&Value::from("datasource"), &Value::from("prometheus"))
    );
    // `up` and the service's series are read under one scrape job, a variable whose default
    // is the job name the alert rules expect: `up` of every other target stays out.
    let job = vars
        .iter()
        .find(|v| v["name"] == "job")
        .expect("a job variable");
    assert_eq!(job["current"]["value"], "jira-gitlab-reconciler");
    let through_variable = |v: &Value| v["type"] == "prometheus" && v["uid"] == "${datasource}";
    for v in vars.iter().filter(|v| v["type"] == "query") {
        assert!(through_variable(&v["datasource"]), "{v}");
    }
    let mut exprs = Vec::new();
    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().expect("panels") {
        assert!(ids.insert(p["id"].as_u64().expect("an id")), "unique ids");
        let grid = &p["gridPos"];
        let right = grid["x"].as_u64().unwrap_or(99) + grid["w"].as_u64().unwrap_or(99);
        assert!(right <= 24, "{} fits the 24 columns", p["title"]);
        if p["type"] == "row" {
            continue;
        }
        assert!(through_variable(&p["datasource"]), "{}", p["title"]);
        for t in p["targets"].as_array().expect("targets") {
            assert!(through_variable(&t["datasource"]), "{}", p["title"]);
            let expr = t["expr"].as_str().expect("a PromQL query");
            for (i, _) in expr.match_indices('{') {
                assert!(
                    expr[i..].starts_with("{job=\"$job\", "),
                    "every selector names the scrape job: {expr}"
                );
            }
            assert!(expr.contains('{'), "a selector: {expr}");
            exprs.push(expr.to_string());
        }
    }
    exprs
}

#[test]
fn promtool_checks_and_unit_tests_the_alert_rules() {
    let Some(promtool) = tool_or_skip(
        "promtool",
        "the alert rules' promtool check",
        "apt-get install prometheus, or .ci/run, which extracts promtool from it",
    ) else {
        return;
    };
    for args in [["check", "rules", RULES], ["test", "rules", RULE_TESTS]] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(ROOT)
            .output()
            .expect("promtool runs");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A series' value on `/metrics` (`None` while absent).
pub async fn sample(port: u16, series: &str) -> Option<f64> {
    let (_, text) = http_get(port, "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// Until a series on `/metrics` has this value (30 s at most).
pub async fn wait_metric(port: u16, series: &str, want: f64) {
    let start = Instant::now();
    while sample(port, series).await != Some(want) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{series} never became {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the "no successful pass" and "needs a person" rules compare is there from the service's
/// first scrape: its start, its schedule's gaps, and a success an earlier run recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_exports_what_the_alerts_compare_from_its_first_passes() {
    let w = world("alert-series", |_| {}).await;
    w.jira.create_issue("VSA", "Before the service", "Task");
    let out = run_binary(reconcile_args(&w)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let remembered = state_status(&w)
        .and_then(|s| s.last_success?.finished_at)
        .expect("a recorded success")
        .timestamp() as f64;
    // From now on Jira rejects the token: every pass fails, and only a person can fix it.
    w.jira.random_faults(1, 1.0, vec![Fault::Status(401)]);
    let before = chrono::Utc::now().timestamp() as f64;
    let sockets = Sockets::for_world(&w);
    let port = sockets.metrics_port();
    let child = spawn_service(&service_config(&w, port, ""), &sockets);
    wait_metric(
        port,
        "jgr_needs_person{mapping=\"VSA->acme/platform\"}",
        1.0,
    )
    .await;
    let value = |s: &'static str| sample(port, s);
    assert_eq!(
        value("jgr_last_success_timestamp_seconds{mapping=\"VSA->acme/platform\"}").await,
        Some(remembered),
        "the earlier run's success, not forgotten by a restart"
    );
    assert_eq!(
        value("jgr_schedule_interval_seconds{kind=\"incremental\"}").await,
        Some(1.0),
        "every second"
    );
    let yearly = value("jgr_schedule_interval_seconds{kind=\"full\"}")
        .await
        .expect("the full resync's gap");
    assert!([365.0, 366.0].contains(&(yearly / 86_400.0)), "{yearly}");
    let start = value("jgr_start_time_seconds").await.expect("a start time");
    assert!(start >= before && start <= chrono::Utc::now().timestamp() as f64);
    assert_eq!(value("jgr_creates_waiting").await, Some(0.0));
    assert_eq!(
        value("jgr_create_requests_total{outcome=\"refused\"}").await,
        Some(0.0),
        "counted from zero, so the first refusals show in increase()"
    );
    drop(child);
}

/// The create pacer's series, which the "creates refused" and "creates held" rules read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_create_pacer_counts_refusals_holds_and_creates() {
    let w = world("pacer-metrics", |o| {
        o.create_limit_per_minute = Some(3);
        o.create_window = Some(Duration::from_millis(1000));
    })
    .await;
    seed_issues(&w, 8, 100);
    let metrics = Arc::new(Metrics::new());
    let r = Reconciler::new(config(&w), metrics.clone()).expect("reconciler");
    let store = Store::open(&w.state_path()).expect("store");
    let reports = r.pass(Mode::Apply(&store), PassKind::Incremental).await;
    assert!(reports[0].ok(), "{}", reports[0].summary());
    let refused = w.gitlab.refused_creates();
    assert!(refused > 0, "the limit refused some creates");
    let get = |name: &str, labels: &[(&str, &str)]| metrics.get(name, labels);
    assert_eq!(
        get("jgr_create_requests_total", &[("outcome", "refused")]),
        Some(refused as f64)
    );
    assert_eq!(
        get("jgr_create_requests_total", &[("outcome", "created")]),
        Some(8.0)
    );
    assert_eq!(
        get("jgr_creates_waiting", &[]),
        Some(0.0),
        "every wait ended"
    );
    let held = get("jgr_create_hold_seconds_total", &[]).unwrap_or(0.0);
    assert!(held > 0.5, "creates waited for the window: {held} s");
}

/// With `[webhook]`, every outcome of `jgr_webhook_events_total` is on `/metrics` at 0 before
/// the first delivery: `rate()` and `increase()` (the refused-deliveries alert, the dashboard)
/// have a series to read, where an absent one reads "no data".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_outcomes_are_counted_from_zero_before_any_delivery() {
    let w = world("webhook-zero", |o| o.webhook = true).await;
    let sockets = Sockets::for_world(&w);
    let port = sockets.metrics_port();
    let child = spawn_service(&service_config(&w, port, ""), &sockets);
    // Set at start-up after the webhook's zeros (service/gauges.rs).
    wait_metric(
        port,
        "jgr_needs_person{mapping=\"VSA->acme/platform\"}",
        0.0,
    )
    .await;
    for outcome in jira_gitlab_reconciler::webhook::Outcome::ALL {
        let series = format!(
            "jgr_webhook_events_total{{outcome=\"{}\"}}",
            outcome.label()
        );
        assert_eq!(sample(port, &series).await, Some(0.0), "{series}");
    }
    drop(child);
}

/// A create the pacer would hold beyond `retry.max_wait` fails at once, so no create is ever
/// seen waiting: it is counted as `held`, which the "creates held" rule reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_held_beyond_max_wait_is_counted_as_held() {
    let w = world("pacer-held", |o| {
        o.create_limit_per_minute = Some(1);
        o.create_window = Some(Duration::from_secs(60));
    })
    .await;
    seed_issues(&w, 3, 100);
    let mut cfg = config(&w);
    // A refusal holds creates for GitLab's window (a minute; a file's config cannot have the
    // two this way round, but a server's Retry-After can be as long): beyond `max_wait`.
    cfg.retry.max_wait = Duration::from_secs(2);
    let metrics = Arc::new(Metrics::new());
    let r = Reconciler::new(cfg, metrics.clone()).expect("reconciler");
    let store = Store::open(&w.state_path()).expect("store");
    let reports = r.pass(Mode::Apply(&store), PassKind::Incremental).await;
    assert!(!reports[0].ok(), "held creates fail the pass");
    let get = |outcome: &str| {
        metrics
            .get("jgr_create_requests_total", &[("outcome", outcome)])
            .unwrap_or(0.0)
    };
    assert_eq!(get("created"), w.gitlab.issue_count(PROJECT) as f64);
    assert!(
        get("held") >= 1.0,
        "held {}, refused {}",
        get("held"),
        get("refused")
    );
    assert_eq!(metrics.get("jgr_creates_waiting", &[]), Some(0.0));
}
