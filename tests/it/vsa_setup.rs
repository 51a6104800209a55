//! `vsa setup`: the value stream of a Jira workflow on GitLab Premium, made and extended
//! through the simulated GitLab's GraphQL API (which keeps GitLab's rules: 15 stages, reserved
//! names, label events needing visible labels, an update destroying the stages it was not
//! sent), and what it says on Free.

use jgr_sim::gitlab::{Role, StageSnapshot, Tier};
use jgr_sim::world::SimWorld;
use jgr_sim::{Fault, Route};
use jira_gitlab_reconciler::domain::PassKind;
use serde_json::{json, Value};

use crate::harness::*;

const STREAM: &str = "Jira workflow (VSA)";
/// GitLab's built-in stages, which a new stream starts with.
const BUILT_IN: [&str; 6] = ["issue", "plan", "code", "test", "review", "staging"];

/// The built-in stages, then `rest`.
fn after_built_in<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    BUILT_IN.iter().chain(rest).copied().collect()
}

/// The Jira workflow: listed by Jira in status id order (Open, Review, Doing, Closed), and on
/// the board in workflow order (Open, Doing, Review, Closed).
fn workflow(w: &SimWorld) {
    w.jira.set_workflow(
        "VSA",
        &[
            ("Open", "new"),
            ("Review", "indeterminate"),
            ("Doing", "indeterminate"),
            ("Closed", "done"),
        ],
    );
}

fn board(w: &SimWorld, columns: &[&str]) {
    let columns: Vec<(&str, [&str; 1])> = columns.iter().map(|c| (*c, [*c])).collect();
    let columns: Vec<(&str, &[&str])> = columns.iter().map(|(c, s)| (*c, &s[..])).collect();
    w.jira.add_board("VSA", "VSA board", &columns);
}

async fn premium(name: &str, tweak: impl FnOnce(&mut jgr_sim::world::WorldOptions)) -> SimWorld {
    let w = world(name, |o| {
        o.tier = Tier::Premium;
        o.mappings[0].status_labels = Some("jira-status".into());
        tweak(o);
    })
    .await;
    workflow(&w);
    // One mirror, so one status label exists already (made by the pass).
    let issue = w.jira.create_issue("VSA", "Login", "Task");
    w.jira.transition(&issue.key, "Open", "new");
    pass_ok(&w, PassKind::Full).await;
    w
}

async fn setup(w: &SimWorld, extra: &[&str]) -> (Option<i32>, String, String) {
    let config = w.write_config().expect("config").display().to_string();
    let mut args = vec!["vsa".to_string(), "setup".into(), "--config".into(), config];
    args.extend(extra.iter().map(|a| a.to_string()));
    let out = run_binary(args).await;
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

fn label_stage(name: &str, label: &str) -> StageSnapshot {
    StageSnapshot {
        name: name.into(),
        custom: true,
        start_event: "ISSUE_LABEL_ADDED".into(),
        end_event: "ISSUE_LABEL_REMOVED".into(),
        start_label: Some(label.into()),
        end_label: Some(label.into()),
    }
}

fn lead_time() -> StageSnapshot {
    StageSnapshot {
        name: "Lead time".into(),
        custom: true,
        start_event: "ISSUE_CREATED".into(),
        end_event: "ISSUE_CLOSED".into(),
        start_label: None,
        end_label: None,
    }
}

fn names(stages: &[StageSnapshot]) -> Vec<&str> {
    stages.iter().map(|s| s.name.as_str()).collect()
}

/// A GraphQL request to the simulated GitLab as the bot, as anyone with a token could send.
async fn graphql(w: &SimWorld, query: &str, variables: Value) -> Value {
    let client = reqwest::Client::new();
    let answer = client
        .post(format!("{}/api/graphql", w.gitlab.url()))
        .bearer_auth(jgr_sim::world::GITLAB_TOKEN)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("answered");
    answer.json().await.expect("JSON")
}

/// (stage name, stage id) of the project's stream, as GitLab lists it.
async fn stage_ids(w: &SimWorld) -> (String, Vec<(String, String)>) {
    let data = graphql(
        w,
        "query($p: ID!) { project(fullPath: $p) { valueStreams { nodes { id name stages { id name } } } } }",
        json!({ "p": PROJECT }),
    )
    .await;
    let stream = &data["data"]["project"]["valueStreams"]["nodes"][0];
    let stages = stream["stages"].as_array().expect("stages");
    let pairs = stages
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_string(),
                s["id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    (stream["id"].as_str().unwrap_or_default().to_string(), pairs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_per_status_in_board_order_and_lead_time_then_nothing_on_a_second_run() {
    let w = premium("vsa-setup", |_| {}).await;
    board(&w, &["Open", "Doing", "Review", "Closed"]);
    assert_eq!(w.gitlab.project_labels(PROJECT), ["jira-status::Open"]);
    let (code, stdout, stderr) = setup(&w, &[]).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("the columns of Jira board 1 (VSA board)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("created value stream \"{STREAM}\"")),
        "{stdout}"
    );
    let streams = w.gitlab.value_streams(PROJECT);
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].name, STREAM);
    let stages = &streams[0].stages;
    assert_eq!(
        names(stages),
        after_built_in(&["Open", "Doing", "Jira: Review", "Lead time"])
    );
    assert!(stages[..6].iter().all(|s| !s.custom), "GitLab's own stages");
    assert_eq!(stages[1].end_event, "ISSUE_FIRST_MENTIONED_IN_COMMIT");
    assert_eq!(stages[6], label_stage("Open", "jira-status::Open"));
    assert_eq!(stages[7], label_stage("Doing", "jira-status::Doing"));
    assert_eq!(
        stages[8],
        label_stage("Jira: Review", "jira-status::Review")
    );
    assert_eq!(stages[9], lead_time());
    // The labels no mirror had yet were made, as a pass makes them; Done's is not needed.
    assert_eq!(
        w.gitlab.project_labels(PROJECT),
        [
            "jira-status::Doing",
            "jira-status::Open",
            "jira-status::Review"
        ]
    );

    // Again: nothing to add, so no mutation at all (one would fail here).
    let before = stage_ids(&w).await;
    w.gitlab.inject(Route::Update, Fault::Status(500), 10);
    let (code, stdout, stderr) = setup(&w, &[]).await;
    w.gitlab.clear_faults();
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("up to date: nothing to change"), "{stdout}");
    assert_eq!(stage_ids(&w).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_status_is_added_and_every_stage_the_stream_had_is_kept_by_id() {
    let w = premium("vsa-update", |_| {}).await;
    board(&w, &["Open", "Doing", "Review", "Closed"]);
    let (code, stdout, stderr) = setup(&w, &[]).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    // Someone adds a stage of their own (sending every stage back, as GitLab requires).
    let (stream, before) = stage_ids(&w).await;
    let mut stages: Vec<Value> = before.iter().map(|(_, id)| json!({ "id": id })).collect();
    stages.push(json!({"name": "Until first commit", "custom": true,
        "startEventIdentifier": "ISSUE_CREATED", "endEventIdentifier": "ISSUE_FIRST_MENTIONED_IN_COMMIT"}));
    let answer = graphql(
        &w,
        "mutation($i: ValueStreamUpdateInput!) { valueStreamUpdate(input: $i) { errors } }",
        json!({ "i": { "id": stream, "stages": stages } }),
    )
    .await;
    assert_eq!(
        answer["data"]["valueStreamUpdate"]["errors"],
        json!([]),
        "{answer}"
    );
    let (_, theirs) = stage_ids(&w).await;

    // The Jira workflow gains a status, on a new board with every column.
    w.jira.set_workflow(
        "VSA",
        &[
            ("Open", "new"),
            ("Review", "indeterminate"),
            ("Doing", "indeterminate"),
            ("Testing", "indeterminate"),
            ("Closed", "done"),
        ],
    );
    board(&w, &["Open", "Doing", "Testing", "Review", "Closed"]);
    let (code, stdout, stderr) = setup(&w, &[]).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("+ Testing"), "{stdout}");
    let (_, after) = stage_ids(&w).await;
    let after_names: Vec<&str> = after.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        after_names,
        after_built_in(&[
            "Open",
            "Doing",
            "Testing",
            "Jira: Review",
            "Lead time",
            "Until first commit"
        ])
    );
    for (name, id) in &theirs {
        assert!(
            after.contains(&(name.clone(), id.clone())),
            "{name} kept with its id {id}"
        );
    }
    let testing = &w.gitlab.value_streams(PROJECT)[0].stages[8];
    assert_eq!(*testing, label_stage("Testing", "jira-status::Testing"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_prints_the_plan_and_writes_nothing() {
    // No board: the order comes from the status categories, and the output says so.
    let w = premium("vsa-dry-run", |_| {}).await;
    let (code, stdout, stderr) = setup(&w, &["--dry-run"]).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("project VSA has no Jira board"), "{stdout}");
    // By category, then as Jira lists them (by status id): Review before Doing.
    let open = stdout.find("+ Open").expect("Open");
    let review = stdout.find("+ Jira: Review").expect("Review");
    let doing = stdout.find("+ Doing").expect("Doing");
    assert!(open < review && review < doing, "{stdout}");
    assert!(
        stdout.contains("+ label jira-status::Doing (created when this runs)"),
        "{stdout}"
    );
    assert!(stdout.contains("dry run: nothing written"), "{stdout}");
    assert!(w.gitlab.value_streams(PROJECT).is_empty());
    assert_eq!(w.gitlab.project_labels(PROJECT), ["jira-status::Open"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_free_it_names_the_tier_and_writes_nothing() {
    let w = premium("vsa-free", |o| o.tier = Tier::Free).await;
    board(&w, &["Open", "Doing", "Review", "Closed"]);
    for extra in [&[][..], &["--dry-run"][..]] {
        let (code, stdout, stderr) = setup(&w, extra).await;
        assert_eq!(code, Some(2), "{extra:?}: {stdout}{stderr}");
        assert!(stderr.contains("this GitLab's tier is Free"), "{stderr}");
        assert!(stderr.contains("Premium and Ultimate feature"), "{stderr}");
        assert!(
            stderr.contains("`ref` and the prepare-commit-msg"),
            "{stderr}"
        );
    }
    assert!(w.gitlab.value_streams(PROJECT).is_empty());
    assert_eq!(
        w.gitlab.project_labels(PROJECT),
        ["jira-status::Open"],
        "no label made"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_and_status_labels_are_checked_first() {
    let w = premium("vsa-planner", |o| o.role = Role::Planner).await;
    let (code, _, stderr) = setup(&w, &[]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("needs the Reporter role or higher"),
        "{stderr}"
    );
    assert!(stderr.contains("role there is Planner"), "{stderr}");
    let w = world("vsa-no-labels", |o| o.tier = Tier::Premium).await;
    let (code, _, stderr) = setup(&w, &[]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("and no mapping has them: add status_labels = \"jira-status\""),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_stream_uses_group_labels() {
    let w = premium("vsa-group", |o| o.group_role = Some(Role::Reporter)).await;
    board(&w, &["Open", "Doing", "Review", "Closed"]);
    assert_eq!(w.gitlab.group_labels("acme"), ["jira-status::Open"]);
    let (code, stdout, stderr) = setup(&w, &["--group", "--name", "Delivery"]).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let streams = w.gitlab.value_streams("acme");
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].name, "Delivery");
    assert_eq!(
        streams[0].stages[7],
        label_stage("Doing", "jira-status::Doing")
    );
    assert_eq!(
        w.gitlab.group_labels("acme"),
        [
            "jira-status::Doing",
            "jira-status::Open",
            "jira-status::Review"
        ]
    );
    assert!(w.gitlab.value_streams(PROJECT).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_workflow_keeps_its_statuses_within_fifteen_stages() {
    let w = premium("vsa-long", |_| {}).await;
    let steps: Vec<String> = (1..=9).map(|n| format!("Step {n}")).collect();
    let mut statuses: Vec<(&str, &str)> = vec![("Open", "new")];
    statuses.extend(steps.iter().map(|s| (s.as_str(), "indeterminate")));
    statuses.push(("Closed", "done"));
    w.jira.set_workflow("VSA", &statuses);
    let columns: Vec<&str> = statuses.iter().map(|(s, _)| *s).collect();
    board(&w, &columns);
    let (code, stdout, stderr) = setup(&w, &[]).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("built-in stages review, staging are left out"),
        "{stdout}"
    );
    let stages = &w.gitlab.value_streams(PROJECT)[0].stages;
    assert_eq!(stages.len(), 15);
    assert_eq!(
        names(stages)[..5],
        ["issue", "plan", "code", "test", "Open"]
    );
    assert_eq!(stages[14], lead_time());
}
