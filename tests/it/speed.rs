//! Limited by the servers, never by ourselves: what a fast pass relies on (cached project facts,
//! keyset listings past offset limits, progress for long work, mappings side by side). The
//! numbers themselves are measured by `cargo bench --bench backfill`, not here.

use jgr_sim::world::SimMapping;
use jira_gitlab_reconciler::domain::PassKind;
use jira_gitlab_reconciler::store::Store;

use crate::harness::*;

#[tokio::test]
async fn project_facts_are_cached_and_looked_up_again_after_gitlab_refuses() {
    let w = world("project-cache", |_| {}).await;
    w.jira.create_issue("VSA", "One", "Task");
    pass_ok(&w, PassKind::Incremental).await;
    // Cached per GitLab and token: another token looks the project up again.
    let cached = |w: &jgr_sim::world::SimWorld| {
        Store::open(&w.state_path())
            .expect("store")
            .cached_project(&config(w).gitlab.identity(), PROJECT)
            .expect("readable")
    };
    let (project, _) = cached(&w).expect("the first pass remembers the project");
    assert_eq!((project.path.as_str(), project.access_level), (PROJECT, 20));

    // The bot is demoted to Guest: its close is refused (403), and what was known about the
    // project (the role above all) goes, so the next pass looks again.
    w.gitlab.grant(
        PROJECT,
        jgr_sim::world::GITLAB_USER,
        jgr_sim::gitlab::Role::Guest,
    );
    w.clock.advance(MINUTE);
    w.jira.transition("VSA-1", "Done", "done");
    let reports = pass(&w, PassKind::Incremental).await;
    assert!(!reports[0].ok());
    assert!(reports[0].needs_user, "{:?}", reports[0].failures);
    assert!(cached(&w).is_none(), "a 403 makes the next pass look again");

    // Reporter again: one look-up, the role as it is now, and the close goes through.
    w.gitlab.grant(
        PROJECT,
        jgr_sim::world::GITLAB_USER,
        jgr_sim::gitlab::Role::Reporter,
    );
    let requests = w.gitlab.requests();
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        w.gitlab.requests() - requests,
        3,
        "project look-up, read by iid, close"
    );
    assert_eq!(cached(&w).expect("cached again").0.access_level, 20);
    assert_converged(&w, "VSA", PROJECT);

    // Another token: its own look-up, even though the project is cached for the first.
    w.gitlab.add_user("second-bot", "second-token");
    w.gitlab
        .grant(PROJECT, "second-bot", jgr_sim::gitlab::Role::Owner);
    std::fs::write(w.opts.dir.join("gitlab.token"), "second-token").expect("token");
    assert!(cached(&w).is_none(), "nothing cached for this token yet");
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        cached(&w).expect("cached").0.access_level,
        50,
        "the new token's role"
    );
}

#[tokio::test]
async fn a_project_beyond_gitlab_offset_limit_is_listed_whole_by_keyset() {
    // GitLab.com refuses offset pages past 50,000 issues; here past 60 (in pages of 100, the
    // second page is already refused). A lost state file makes the next pass list the project
    // to adopt every mirror by its marker: keyset paging reads it whole.
    let w = world("keyset", |o| o.gitlab_max_offset = Some(60)).await;
    seed_issues(&w, 250, 4);
    pass_ok(&w, PassKind::Incremental).await;
    std::fs::remove_file(w.state_path()).expect("state removed");
    let _ = std::fs::remove_file(w.opts.dir.join("state.db-wal"));
    let _ = std::fs::remove_file(w.opts.dir.join("state.db-shm"));
    let writes = w.gitlab.writes();
    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(r.counts.adopted, 250, "{}", r.summary());
    assert_eq!(w.gitlab.writes(), writes, "nothing created twice");
    assert_eq!(assert_converged(&w, "VSA", PROJECT), 250);
}

#[tokio::test]
async fn long_work_logs_its_progress_for_the_journal() {
    let w = world("progress", |_| {}).await;
    seed_issues(&w, 1_100, 4);
    let out = run_binary_env(reconcile_args(&w), vec![("RUST_LOG".into(), "info".into())]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // Not a terminal: a line every 1,000 issues (or 10 s), with the total from Jira's
    // approximate count.
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(": progress "))
        .collect();
    assert!(!progress.is_empty(), "{stderr}");
    assert!(
        progress[0].contains("total=1100") && progress[0].contains("done="),
        "{progress:?}"
    );
    assert_eq!(assert_converged(&w, "VSA", PROJECT), 1_100);
}

#[tokio::test]
async fn mappings_run_side_by_side_and_report_in_config_order() {
    let w = world("side-by-side", |o| {
        o.mappings = vec![
            SimMapping::new("VSA", PROJECT),
            SimMapping::new("OPS", "acme/ops"),
            SimMapping::new("DOC", PROJECT),
        ];
        o.latency = Some((
            std::time::Duration::from_millis(1),
            std::time::Duration::from_millis(3),
        ));
    })
    .await;
    for (project, n) in [("VSA", 30), ("OPS", 40), ("DOC", 20)] {
        for i in 0..n {
            w.jira
                .create_issue(project, &format!("{project} {i}"), "Task");
        }
    }
    let reports = pass(&w, PassKind::Incremental).await;
    let names: Vec<&str> = reports.iter().map(|r| r.mapping.as_str()).collect();
    assert_eq!(
        names,
        ["VSA->acme/platform", "OPS->acme/ops", "DOC->acme/platform"]
    );
    for r in &reports {
        assert!(r.ok(), "{:?}", r.failures);
    }
    assert_eq!(
        reports.iter().map(|r| r.counts.created).collect::<Vec<_>>(),
        [30, 40, 20]
    );
    assert_eq!(assert_converged(&w, "OPS", "acme/ops"), 40);
    assert!(
        w.gitlab.max_projects_in_flight() > 1,
        "GitLab saw requests for both projects at the same moment"
    );
}
