//! Limited by the servers, never by ourselves: what a fast pass relies on (cached project facts,
//! keyset listings past offset limits, progress for long work, mappings side by side). The
//! numbers themselves are measured by `cargo bench --bench backfill`, not here.

use jgr_sim::world::SimMapping;
use jira_gitlab_reconciler::domain::PassKind;
use jira_gitlab_reconciler::store::Store;

use crate::harness::*;

#[tokio::test]
async fn project_facts_are_cached_and_looked_up_again_after_gitlab_refuses_the_token() {
    let w = world("project-cache", |_| {}).await;
    w.jira.create_issue("VSA", "One", "Task");
    pass_ok(&w, PassKind::Incremental).await;
    let cached = |w: &jgr_sim::world::SimWorld| {
        Store::open(&w.state_path())
            .expect("store")
            .cached_project(&w.gitlab.url(), PROJECT)
            .expect("readable")
    };
    let (project, _) = cached(&w).expect("the first pass remembers the project");
    assert_eq!(project.path, PROJECT);

    // The token is rejected: the pass fails and what was known about the project goes.
    std::fs::write(w.opts.dir.join("gitlab.token"), "revoked").expect("token");
    w.clock.advance(MINUTE);
    w.jira.rename("VSA-1", "Renamed");
    let reports = pass(&w, PassKind::Incremental).await;
    assert!(!reports[0].ok());
    assert!(reports[0].needs_user, "{:?}", reports[0].failures);
    assert!(cached(&w).is_none(), "a 401 makes the next pass look again");

    // A good token again: one look-up, then the project is cached once more.
    std::fs::write(
        w.opts.dir.join("gitlab.token"),
        jgr_sim::world::GITLAB_TOKEN,
    )
    .expect("token");
    pass_ok(&w, PassKind::Incremental).await;
    assert!(cached(&w).is_some());
    assert_converged(&w, "VSA", PROJECT);
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
        w.gitlab.max_in_flight() > 1,
        "GitLab saw requests side by side"
    );
}
