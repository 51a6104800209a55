//! `report` against a small history played on the simulated Jira, its figures checked
//! against values worked out by hand, through the real binary (JSON, CSV, table, SVG).

use chrono::{DateTime, Duration, TimeZone, Utc};
use jgr_sim::gitlab::Role;
use jira_gitlab_reconciler::domain::PassKind;
use serde_json::{json, Value};

use crate::harness::*;

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

/// Monday 2025-03-03 00:00 UTC plus `secs`.
fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 3, 0, 0, 0)
        .single()
        .expect("date")
        + Duration::seconds(secs)
}

/// `report` over the first two weeks of the history, in `format`.
fn two_weeks(config: &str, format: &str) -> Vec<String> {
    [
        "report",
        "--config",
        config,
        "--since",
        "2025-03-03",
        "--until",
        "2025-03-16",
        "--format",
        format,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_figures_match_hand_computed_values() {
    let w = world("report", |o| {
        o.role = Role::Owner;
        o.mappings[0].status_labels = Some("jira-status".into());
    })
    .await;
    // The history, in time order (the simulated Jira stamps everything with its clock).
    let at = |s: i64| w.clock.set(t(s));
    at(0);
    let a = w.jira.create_issue("VSA", "A", "Story");
    at(DAY);
    w.jira.transition(&a.key, "In Progress", "indeterminate");
    let b = w.jira.create_issue("VSA", "B", "Story");
    at(DAY + 12 * HOUR);
    w.jira.transition(&b.key, "In Progress", "indeterminate");
    at(2 * DAY);
    w.jira.transition(&a.key, "Done", "done");
    at(3 * DAY);
    let c = w.jira.create_issue("VSA", "C", "Story");
    at(5 * DAY);
    w.jira.transition(&b.key, "In Review", "indeterminate");
    at(7 * DAY);
    w.jira.transition(&b.key, "Done", "done");
    at(11 * DAY);
    w.jira.transition(&c.key, "Done", "done");
    at(13 * DAY);
    let d = w.jira.create_issue("VSA", "D", "Story");
    at(13 * DAY + HOUR);
    w.jira.transition(&d.key, "In Progress", "indeterminate");
    at(20 * DAY);
    pass_ok(&w, PassKind::Incremental).await;

    let config = w.write_config().expect("config").display().to_string();
    let svg = w.opts.dir.join("lead-time.svg");
    let args = |format: &str| two_weeks(&config, format);
    let mut json_args = args("json");
    json_args.extend(["--svg".to_string(), svg.display().to_string()]);
    let out = run_binary(json_args).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON");
    let m = &report["mappings"][0];
    assert_eq!(m["mapping"], json!("VSA->acme/platform"));
    // Created in the window: A, B, C (week 1) and D (week 2). Done: A (2 d), B (6 d), C (8 d).
    assert_eq!(
        (m["created"].clone(), m["closed"].clone()),
        (json!(4), json!(3))
    );
    // Median of 2, 6, 8 days = 6 d; 85th percentile = 6 + 0.7 × (8 − 6) = 7.4 d.
    assert_eq!(m["lead_time_median_s"], json!(6 * DAY));
    assert_eq!(m["lead_time_p85_s"], json!(639_360));
    // To Do: A 1 d, B 12 h, C 8 d → median 1 d. In Progress: A 1 d, B 3.5 d → 2.25 d.
    // In Review: B 2 d. D is still open: not counted.
    assert_eq!(
        m["status_time_s"],
        json!({"To Do": DAY, "In Progress": 194_400, "In Review": 2 * DAY})
    );
    // Week 10: created 3, closed A (2 d). Week 11: created 1, closed B and C: median 7 d,
    // p85 = 6 + 0.85 × 2 = 7.7 d.
    assert_eq!(
        m["weeks"],
        json!([
            {"week": "2025-W10", "start": "2025-03-03", "created": 3, "closed": 1,
             "lead_time_median_s": 2 * DAY, "lead_time_p85_s": 2 * DAY},
            {"week": "2025-W11", "start": "2025-03-10", "created": 1, "closed": 2,
             "lead_time_median_s": 7 * DAY, "lead_time_p85_s": 665_280},
        ])
    );
    let drawing = std::fs::read_to_string(&svg).expect("SVG written");
    assert!(drawing.starts_with("<svg") && drawing.contains("VSA-&gt;acme/platform"));

    let out = run_binary(args("csv")).await;
    let (stdout, _) = text(&out);
    assert_eq!(
        stdout,
        "mapping,week,week_start,created,closed,lead_time_median_s,lead_time_p85_s\n\
         VSA->acme/platform,2025-W10,2025-03-03,3,1,172800,172800\n\
         VSA->acme/platform,2025-W11,2025-03-10,1,2,604800,665280\n"
    );
    let out = run_binary(args("table")).await;
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("median 6.0 d, 85th percentile 7.4 d (3 issues)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("In Progress 2.2 d") || stdout.contains("In Progress 2.3 d"),
        "{stdout}"
    );

    // GitLab agrees with the report, since the Owner token backdated: A's issue was
    // created and closed at Jira's times.
    let g = mirror_of(&w, PROJECT, &a.id);
    assert_eq!(g.created_at, t(0));
    assert_eq!(g.closed_at, Some(t(2 * DAY)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_without_a_state_database_says_what_to_do() {
    let w = world("report-empty", |_| {}).await;
    let config = w.write_config().expect("config").display().to_string();
    let out = run_binary(vec!["report".into(), "--config".into(), config.clone()]).await;
    let (_, stderr) = text(&out);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr.contains("run `jira-gitlab-reconciler reconcile` first"),
        "{stderr}"
    );
    let out = run_binary(vec![
        "report".into(),
        "--config".into(),
        config,
        "--since".into(),
        "yesterday".into(),
    ])
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("2025-03-31"), "{stderr}");
}

/// Issues that left the mapping (deleted, moved to a project no mapping covers, filtered out
/// by its jql) are left out of the report, from the full pass that noticed on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_leaves_out_deleted_moved_and_filtered_out_issues() {
    let w = world("report-gone", |o| {
        o.mappings[0].jql = Some("issuetype != Epic".into());
    })
    .await;
    let at = |s: i64| w.clock.set(t(s));
    at(0);
    let kept = w.jira.create_issue("VSA", "Kept", "Story");
    let leaving: Vec<_> = ["Deleted", "Moved", "Filtered out"]
        .iter()
        .map(|s| w.jira.create_issue("VSA", s, "Story"))
        .collect();
    at(DAY);
    for r in &leaving {
        w.jira.transition(&r.key, "Done", "done");
    }
    at(2 * DAY);
    w.jira.transition(&kept.key, "Done", "done");
    at(20 * DAY);
    pass_ok(&w, PassKind::Incremental).await;

    let config = w.write_config().expect("config").display().to_string();
    let figures = || {
        let args = two_weeks(&config, "json");
        async move {
            let out = run_binary(args).await;
            let (stdout, stderr) = text(&out);
            assert_eq!(out.status.code(), Some(0), "{stderr}");
            let v: Value = serde_json::from_str(&stdout).expect("JSON");
            let m = &v["mappings"][0];
            (
                m["created"].clone(),
                m["closed"].clone(),
                m["lead_time_median_s"].clone(),
            )
        }
    };
    // All four: done after 1, 1, 1 and 2 days.
    assert_eq!(figures().await, (json!(4), json!(4), json!(DAY)));

    at(21 * DAY);
    w.jira.delete_issue(&leaving[0].key);
    w.jira.add_project("OPS");
    w.jira.move_issue(&leaving[1].key, "OPS");
    w.jira.set_issue_type(&leaving[2].key, "Epic");
    pass_ok(&w, PassKind::Full).await;
    for (r, label) in leaving
        .iter()
        .zip(["jira::deleted", "jira::moved", "jira::filtered-out"])
    {
        let g = mirror_of(&w, PROJECT, &r.id);
        assert!(g.labels.iter().any(|l| l == label), "{label}: {g:?}");
    }
    // Only the issue still in the mapping: done after 2 days.
    assert_eq!(figures().await, (json!(1), json!(1), json!(2 * DAY)));
}
