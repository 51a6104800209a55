//! The real binary: exit codes, messages, the demo.

use jira_gitlab_reconciler::domain::PassKind;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_command_exit_codes_and_summary() {
    let w = world("bin-reconcile", |_| {}).await;
    w.jira.create_issue("VSA", "From the binary", "Task");
    let config = w.write_config().expect("config").display().to_string();

    let out = run_binary(vec!["reconcile".into(), "--config".into(), config.clone()]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("VSA->acme/platform: full pass: created 1"),
        "{stdout}"
    );

    let out = run_binary(vec!["status".into(), "--config".into(), config.clone()]).await;
    let (stdout, _) = text(&out);
    assert!(stdout.contains("mirrored issues : 1"), "{stdout}");

    // A GitLab failure that outlasts the retries: exit 1, one line naming the issue.
    w.clock.advance(std::time::Duration::from_secs(60));
    w.jira.create_issue("VSA", "Will fail", "Task");
    w.gitlab
        .inject(jgr_sim::Route::Create, jgr_sim::Fault::Status(422), 1);
    let out = run_binary(vec!["reconcile".into(), "--config".into(), config]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("VSA-2: create failed"), "{stderr}");
    // The failed create kept the window open: the next pass makes it, and nothing twice.
    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(r.counts.created, 1, "{}", r.summary());
    assert_eq!(assert_converged(&w, "VSA", PROJECT), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_exit_2_and_name_the_token() {
    let w = world("bin-401", |_| {}).await;
    std::fs::write(w.opts.dir.join("gitlab.token"), "wrong").expect("write");
    let config = w.write_config().expect("config").display().to_string();
    let out = run_binary(vec!["reconcile".into(), "--config".into(), config.clone()]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "the user must fix it: {stderr}");
    assert!(stderr.contains("GITLAB_TOKEN"), "{stderr}");
    assert!(
        !stderr.contains("sim-gitlab-token") && !stderr.contains("wrong"),
        "no token in output"
    );

    let out = run_binary(vec!["check".into(), "--config".into(), config]).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("PROBLEM") && stdout.contains("GitLab rejected the token"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_role_and_projects() {
    let w = world("bin-check", |_| {}).await;
    let config = w.write_config().expect("config").display().to_string();
    let out = run_binary(vec!["check".into(), "--config".into(), config]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("not an Owner"), "{stdout}");
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

/// `check`'s lines about what the token's roles allow: backdating (Owner), closing (Planner
/// or more), incidents (Reporter or more), group labels (Planner or more in the group).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_what_the_roles_allow() {
    use jgr_sim::gitlab::Role;
    use jgr_sim::world::WorldOptions;
    type Tweak = fn(&mut WorldOptions);
    let cases: [(&str, Tweak, i32, &[&str]); 4] = [
        (
            "owner, group reporter",
            |o| {
                o.role = Role::Owner;
                o.group_role = Some(Role::Reporter);
                o.mappings[0].status_labels = Some("jira-status".into());
            },
            0,
            &[
                "ok      VSA->acme/platform: GitLab project acme/platform (id 4), Owner token: created_at and close times are backdated to Jira's",
                "ok      VSA->acme/platform: status labels (jira-status::<status>) will be created as group labels in acme, usable by group-level value streams",
            ],
        ),
        (
            "reporter, no group role",
            |o| o.mappings[0].status_labels = Some("jira-status".into()),
            0,
            &["ok      VSA->acme/platform: status labels (jira-status::<status>) will be project labels: the token has no Planner or Reporter role in the group acme (group-level value streams need group labels)"],
        ),
        (
            "planner, incidents",
            |o| {
                o.role = Role::Planner;
                o.mappings[0].issue_types = vec![("Incident".into(), "incident".into())];
            },
            2,
            &[
                "PROBLEM VSA->acme/platform: issue_types maps to incident, but the token's role on acme/platform (access level 15) cannot create incidents: GitLab would file plain issues; give it the Reporter role or higher",
                "ok      VSA->acme/platform: GitLab project acme/platform (id 4), the token can create, close and reopen issues; it is not an Owner",
            ],
        ),
        (
            "guest",
            |o| o.role = Role::Guest,
            2,
            &["PROBLEM VSA->acme/platform: the token's role on acme/platform (access level 10) cannot close or reopen issues: give it Planner or Reporter or higher"],
        ),
    ];
    for (name, tweak, code, lines) in cases {
        let w = world("check-roles", tweak).await;
        let config = w.write_config().expect("config").display().to_string();
        let out = run_binary(vec!["check".into(), "--config".into(), config]).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(code), "{name}: {stdout}\n{stderr}");
        for want in lines {
            assert!(
                stdout.lines().any(|l| l.starts_with(want)),
                "{name}: want {want:?} in\n{stdout}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_config_is_exit_2_with_the_fix() {
    let out = run_binary(vec![
        "reconcile".into(),
        "--config".into(),
        "/nonexistent/config.toml".into(),
    ])
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("config file /nonexistent/config.toml (from --config) does not exist"),
        "{stderr}"
    );
    assert!(stderr.contains("--config"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_to_completion() {
    // The chart goes to $TMPDIR: this test's own directory, removed when it passes.
    let tmp = temp_dir("demo");
    let out = run_binary_env(
        vec!["demo".into(), "--issues".into(), "12".into()],
        vec![("TMPDIR".into(), tmp.display().to_string())],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("GitLab now holds"), "{stdout}");
    assert!(stdout.contains("idle pass: 0 GitLab writes"), "{stdout}");
    // The Owner's project has every feature at once: assignees and components on its mirrors
    // beside the status board.
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(" alice ") && l.contains("component::API")),
        "an assignee and a component on a mirror: {stdout}"
    );
    assert!(
        stdout.contains("Issue board \"Jira workflow\" (status_board)"),
        "{stdout}"
    );
    // Milestones from fix versions: on the mirrors, and the released version's one closed.
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("component::") && l.contains(" 1.1 ")),
        "a milestone on a mirror: {stdout}"
    );
    assert!(
        stdout.contains("Milestones (from fix versions): \"1.0\" closed (start "),
        "{stdout}"
    );
    // Start dates from Jira's versions endpoint, which an issue's fixVersions lack.
    assert!(stdout.contains("\"1.1\" active (start 20"), "{stdout}");
    assert!(
        stdout.contains("incremental pass: created 1, closed 2, reopened 1, updated 1"),
        "every change the demo announces is mirrored: {stdout}"
    );
    // It ends with the report, GitLab's lead time with and without backdating, and a chart.
    assert!(stdout.contains("lead time       median "), "{stdout}");
    assert!(stdout.contains("Reporter token, not:"), "{stdout}");
    // And a commit that names a Jira key gets the mirror's reference, which GitLab stamps.
    assert!(stdout.contains("\n   Refs: acme/platform#"), "{stdout}");
    assert!(
        stdout.contains("'s first mention in a commit at "),
        "{stdout}"
    );
    let chart = stdout
        .lines()
        .find_map(|l| {
            l.split("Chart of lead time and throughput per week: ")
                .nth(1)
        })
        .expect("the chart is named");
    let chart = std::path::Path::new(chart.trim());
    assert_eq!(
        chart.parent(),
        Some(tmp.as_path()),
        "in $TMPDIR: {}",
        chart.display()
    );
    let name = chart.file_name().and_then(|n| n.to_str()).unwrap_or("");
    assert!(
        name.starts_with("jira-gitlab-reconciler-demo-") && name.ends_with("-lead-time.svg"),
        "{name}"
    );
    let svg = std::fs::read_to_string(chart).expect("the chart exists");
    assert!(svg.starts_with("<svg"));
    // Named for the run: another run (at the same time or later) writes its own chart.
    let out = run_binary_env(
        vec!["demo".into(), "--issues".into(), "6".into()],
        vec![("TMPDIR".into(), tmp.display().to_string())],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let charts = std::fs::read_dir(&tmp).expect("tmp").count();
    assert_eq!(charts, 2, "one chart per run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_needs_no_token_and_reports_lag_and_last_error() {
    let w = world("bin-status", |_| {}).await;
    let config = w.write_config().expect("config").display().to_string();
    let out = run_binary(vec!["status".into(), "--config".into(), config.clone()]).await;
    assert!(
        text(&out).0.contains("never reconciled"),
        "{}",
        text(&out).0
    );

    w.jira.create_issue("VSA", "One", "Task");
    pass_ok(&w, PassKind::Incremental).await;
    w.jira.create_issue("VSA", "Two", "Task");
    w.gitlab
        .inject(jgr_sim::Route::Create, jgr_sim::Fault::Status(422), 1);
    let _ = pass(&w, PassKind::Incremental).await;

    // The operator looking at the state does not hold the service's credentials.
    std::fs::remove_file(w.opts.dir.join("gitlab.token")).expect("rm");
    std::fs::remove_file(w.opts.dir.join("jira.token")).expect("rm");
    let out = run_binary(vec!["status".into(), "--config".into(), config.clone()]).await;
    let (stdout, stderr) = text(&out);
    // For monitoring: the last pass failed.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("mirrored issues : 1"), "{stdout}");
    assert!(stdout.contains("(failed)"), "{stdout}");
    assert!(
        stdout.contains("last error      : VSA-2: create failed"),
        "{stdout}"
    );
    assert!(stdout.contains("lag             : up to"), "{stdout}");
    let out = run_binary(vec![
        "status".into(),
        "--json".into(),
        "--config".into(),
        config,
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (v["ok"].clone(), v["exit_code"].clone()),
        (false.into(), 1.into())
    );
    assert_eq!(v["mappings"][0]["mirrors"], 1);
    assert_eq!(v["mappings"][0]["last_pass"]["outcome"], "failed");
    assert_eq!(v["mappings"][0]["last_success"]["created"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_for_log_shippers() {
    let w = world("bin-json-log", |_| {}).await;
    w.jira.create_issue("VSA", "Logged", "Task");
    let path = w.opts.dir.join("config.toml");
    std::fs::write(
        &path,
        format!("{}\n[log]\nformat = \"json\"\n", w.config_toml()),
    )
    .expect("config");
    let args = vec![
        "reconcile".into(),
        "--config".into(),
        path.display().to_string(),
    ];
    let out = run_binary_env(args, vec![("RUST_LOG".into(), "info".into())]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["message"] == "created GitLab issue" && e["jira"] == "VSA-1"),
        "{stderr}"
    );
}

/// Ctrl-C or `systemctl stop` during `reconcile`: the creates on the wire finish and are
/// recorded, nothing new starts, and the next run continues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_reconcile_cleanly() {
    let w = world("reconcile-term", |o| {
        o.gitlab_config = "concurrency = 4".into();
    })
    .await;
    seed_issues(&w, 20, 100);
    // GitLab holds the creates until the stop is in force.
    let gate = jgr_sim::Gate::new();
    w.gitlab.inject(
        jgr_sim::Route::Create,
        jgr_sim::Fault::Hold(gate.clone()),
        20,
    );
    let child = command(&reconcile_args(&w), &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    let (code, stderr, stdout) = term_while_held(child, &gate, RECONCILE_STOPPING).await;
    // Not converged, and nothing wrong: exit 3, a stop counted as a stop, not as a failure.
    assert_eq!(code, Some(3), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("incremental pass stopped before it finished (the next pass continues)")
            || stdout.contains("full pass stopped before it finished (the next pass continues)"),
        "{stdout}"
    );
    assert!(stdout.contains("failed 0"), "{stdout}");
    assert!(!stderr.contains("error:"), "{stderr}");
    assert_eq!(
        state_status(&w)
            .expect("state")
            .last_pass
            .expect("pass")
            .outcome,
        jira_gitlab_reconciler::domain::PassOutcome::Stopped
    );
    let created = w.gitlab.issue_count(PROJECT);
    assert_eq!(created, gate.passed(), "only the creates on the wire");
    assert!((1..=4).contains(&created), "{created}: {stderr}");
    let st = state_status(&w).expect("state");
    assert_eq!((st.mirrors, st.pending_intents), (created as u64, 0));
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(assert_converged(&w, "VSA", PROJECT), 20);
}
