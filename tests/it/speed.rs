//! Limited by the servers, never by ourselves: what a fast pass relies on (cached project facts,
//! keyset listings past offset limits, progress for long work, mappings side by side, a full
//! resync's listing looked up in the state database page by page). The
//! numbers themselves are measured by `cargo bench --bench backfill`, not here.

use std::sync::Arc;

use jgr_sim::world::SimMapping;
use jira_gitlab_reconciler::domain::PassKind;
use jira_gitlab_reconciler::metrics::Metrics;
use jira_gitlab_reconciler::reconcile::{Mode, PassReport, Reconciler};
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
            .cache()
            .project(&config(w).gitlab.identity(), PROJECT)
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
    assert!(reports[0].needs_user(), "{:?}", reports[0].failures);
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

#[tokio::test]
async fn a_full_resync_after_the_database_lost_its_rows_finds_every_mirror_by_marker() {
    // A small version of the benchmark's full resync: the listing (three pages) goes into the
    // state database page by page and each page of the search (37 issues) looks its issues
    // up there. A mirror copied by hand, marker and all, is reported and never used.
    let w = world("full-lost-rows", |_| {}).await;
    seed_issues(&w, 250, 4);
    pass_ok(&w, PassKind::Incremental).await;
    let first = w.jira.issues()[0].clone();
    let original = mirror_of(&w, PROJECT, &first.id);
    let copy = w
        .gitlab
        .create_by_hand(PROJECT, &original.title, &original.description);
    rusqlite::Connection::open(w.state_path())
        .and_then(|c| c.execute("DELETE FROM mirror", []))
        .expect("the mirror rows are lost, the checkpoint stays");
    let noted = |r: &PassReport| {
        r.notes
            .iter()
            .filter(|n| n.contains(&format!("#{} and #{copy} both carry", original.iid)))
            .count()
    };

    // A dry run on the read-only database plans to adopt every issue, and creates nothing.
    let store = Store::open_read_only(&w.state_path())
        .expect("readable")
        .expect("exists");
    let r = Reconciler::new(config(&w), Arc::new(Metrics::new())).expect("reconciler");
    let dry = r.pass(Mode::DryRun(Some(&store)), PassKind::Full).await;
    assert!(dry[0].ok(), "{:?}", dry[0].failures);
    let planned = &dry[0].planned;
    let adopt = planned.iter().filter(|l| l.starts_with("adopt")).count();
    assert_eq!(
        (adopt, planned.len()),
        (250, 250),
        "{:?}",
        &planned[..planned.len().min(3)]
    );
    assert_eq!(noted(&dry[0]), 1, "{:?}", dry[0].notes);

    let (requests, writes) = (w.gitlab.requests(), w.gitlab.writes());
    let r = pass_ok(&w, PassKind::Full).await;
    assert_eq!(
        (r.counts.created, r.counts.adopted, r.counts.unchanged),
        (0, 250, 0),
        "{}",
        r.summary()
    );
    assert_eq!(w.gitlab.writes(), writes, "nothing created or edited");
    assert_eq!(
        w.gitlab.requests() - requests,
        3,
        "the listing of 251 issues in pages of 100, and no read by iid"
    );
    assert_eq!(noted(&r), 1, "{:?}", r.notes);
    let store = Store::open(&w.state_path()).expect("store");
    let name = "VSA->acme/platform".into();
    let id = first.id.parse().expect("a Jira id");
    let linked = store.mirrors().of(&name, &[], &[id]).expect("mirrors");
    assert_eq!(linked[&id].iid.get(), original.iid, "the lower iid is used");
    assert_eq!(store.mirrors().count(&name).expect("count"), 250);
}

/// A full resync of a project of mirrors makes no request but its pages: Jira's search pages
/// (and one count for the progress display) and GitLab's listing, no count of GitLab's own
/// (issue 18: the floor). 1,200 issues: 12 listing pages, past the 10 after which a listing
/// without a hint asks GitLab how many issues there are.
#[tokio::test]
async fn a_full_resync_of_mirrors_makes_no_request_beyond_its_pages() {
    const N: usize = 1_200;
    let w = world("full-resync-floor", |_| {}).await;
    seed_issues(&w, N, 4);
    pass_ok(&w, PassKind::Incremental).await;
    let (jira, searches) = (w.jira.requests(), w.jira.search_requests());
    let (gitlab, lists) = (w.gitlab.requests(), w.gitlab.list_requests());
    let r = pass_ok(&w, PassKind::Full).await;
    assert_eq!(r.counts.unchanged, N as u64, "{}", r.summary());
    let listing = N.div_ceil(100);
    assert_eq!(
        w.gitlab.list_requests() - lists,
        listing,
        "the listing's pages"
    );
    assert_eq!(
        w.gitlab.requests() - gitlab,
        listing,
        "GitLab: the listing's pages and nothing else"
    );
    assert_eq!(
        w.jira.requests() - jira,
        w.jira.search_requests() - searches + 1,
        "Jira: the search's pages and its count"
    );
}
