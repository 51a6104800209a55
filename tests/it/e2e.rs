//! The reconciler end to end through the library: create, resolve, reopen, rename, filters,
//! several mappings, Data Center, dry runs, idle passes, drift repair, paging.

use std::time::Duration;

use jgr_sim::jira::Deployment;
use jgr_sim::world::SimMapping;
use jira_gitlab_reconciler::domain::PassKind;
use jira_gitlab_reconciler::reconcile::{Mode, Reconciler};
use jira_gitlab_reconciler::store::Store;

use crate::harness::*;

#[tokio::test]
async fn create_resolve_reopen_rename_and_idle_pass() {
    let w = world("lifecycle", |o| {
        o.mappings[0].labels = vec!["jira".into(), "mirror::vsa".into()]
    })
    .await;
    let a = w.jira.create_issue("VSA", "First story", "Story");
    let b = w.jira.create_issue("VSA", "Already done", "Task");
    w.jira.transition(&b.key, "Done", "done");
    let c = w.jira.create_issue("VSA", "Will be renamed", "Bug");

    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        (r.kind, r.counts.created),
        (PassKind::Full, 3),
        "first pass compares everything"
    );
    assert_converged(&w, "VSA", "acme/platform");
    let ga = mirror_of(&w, "acme/platform", &a.id);
    assert_eq!(ga.title, "First story");
    assert_eq!(
        ga.labels,
        vec!["jira".to_string(), "mirror::vsa".to_string()]
    );
    assert!(ga
        .description
        .contains(&format!("{}/browse/{}", w.jira.url(), a.key)));
    assert_eq!(mirror_of(&w, "acme/platform", &b.id).state, "closed");

    w.clock.advance(MINUTE);
    w.jira.transition(&a.key, "Done", "done");
    w.jira.transition(&b.key, "Reopened", "indeterminate");
    w.jira.rename(&c.key, "Renamed in Jira");
    let d = w.jira.create_issue("VSA", "Brand new", "Story");
    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(r.kind, PassKind::Incremental);
    assert_eq!(
        (
            r.counts.created,
            r.counts.closed,
            r.counts.reopened,
            r.counts.updated
        ),
        (1, 1, 1, 1),
        "{}",
        r.summary()
    );
    assert_converged(&w, "VSA", "acme/platform");
    assert_eq!(
        mirror_of(&w, "acme/platform", &c.id).title,
        "Renamed in Jira"
    );
    assert_eq!(mirror_of(&w, "acme/platform", &d.id).state, "opened");

    // Nothing changed in Jira: the overlap window returns the same issues, and no write follows.
    // The quiet pass costs one Jira search and no GitLab request at all: the project's id and
    // role are cached, and every issue in the window was applied at this very version.
    let writes = w.gitlab.writes();
    let requests = w.gitlab.requests();
    let searches = w.jira.requests();
    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        w.gitlab.writes(),
        writes,
        "an idle pass must not write to GitLab"
    );
    assert_eq!(
        (w.jira.requests() - searches, w.gitlab.requests() - requests),
        (1, 0),
        "an idle pass is one Jira search"
    );
    assert_eq!(r.counts.unchanged, 4, "{}", r.summary());
}

#[tokio::test]
async fn reads_gitlab_in_batches_and_follows_jira_paging() {
    let w = world("paging", |_| {}).await;
    for i in 0..130 {
        w.jira.create_issue("VSA", &format!("Issue {i}"), "Task");
    }
    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(r.counts.created, 130);
    assert_converged(&w, "VSA", "acme/platform");

    // Everything is inside the overlap window but nothing changed in Jira since it was applied:
    // no GitLab request at all.
    let requests = w.gitlab.requests();
    let searches = w.jira.search_requests();
    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(r.counts.unchanged, 130);
    assert_eq!(w.gitlab.requests() - requests, 0);
    assert_eq!(
        w.jira.search_requests() - searches,
        4,
        "130 issues in pages of 37"
    );

    // All 130 renamed: their GitLab issues are read in two requests of at most 100 iids (pages
    // of 37 are gathered into batches), not 130 requests, nor one per page.
    w.clock.advance(MINUTE);
    for i in 1..=130 {
        w.jira.rename(&format!("VSA-{i}"), &format!("Renamed {i}"));
    }
    let lists = w.gitlab.list_requests();
    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(r.counts.updated, 130, "{}", r.summary());
    assert_eq!(w.gitlab.list_requests() - lists, 2);
    assert_converged(&w, "VSA", "acme/platform");
}

#[tokio::test]
async fn jql_filter_and_several_mappings() {
    let w = world("mappings", |o| {
        o.mappings = vec![
            SimMapping {
                jql: Some("issuetype != Epic".into()),
                ..SimMapping::new("VSA", "acme/platform")
            },
            SimMapping {
                labels: vec!["ops".into()],
                ..SimMapping::new("OPS", "acme/ops")
            },
        ]
    })
    .await;
    let story = w.jira.create_issue("VSA", "A story", "Story");
    let epic = w.jira.create_issue("VSA", "An epic", "Epic");
    let ops = w.jira.create_issue("OPS", "An incident", "Task");
    let reports = pass(&w, PassKind::Incremental).await;
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|r| r.ok()), "{reports:?}");
    mirror_of(&w, "acme/platform", &story.id);
    assert!(
        w.gitlab
            .issues("acme/platform")
            .iter()
            .all(|g| !g.description.contains(&format!("jira-id={} -->", epic.id))),
        "the epic is filtered out"
    );
    let g = mirror_of(&w, "acme/ops", &ops.id);
    assert_eq!(g.labels, vec!["ops".to_string()]);
    assert_eq!(
        w.gitlab.issues("acme/ops").len(),
        1,
        "mappings do not leak into each other"
    );
}

#[tokio::test]
async fn data_center_works_the_same() {
    let w = world("datacenter", |o| o.deployment = Deployment::DataCenter).await;
    for i in 0..45 {
        let r = w.jira.create_issue("VSA", &format!("DC issue {i}"), "Task");
        if i % 3 == 0 {
            w.jira.transition(&r.key, "Closed", "done");
        }
    }
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(assert_converged(&w, "VSA", "acme/platform"), 45);
    // 45 issues in pages of 37: a second search bounded by the last id, not by startAt.
    assert_eq!(w.jira.search_requests(), 2);
    w.clock.advance(MINUTE);
    w.jira.transition("VSA-1", "Reopened", "new");
    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(r.counts.reopened, 1);
    assert_converged(&w, "VSA", "acme/platform");
}

#[tokio::test]
async fn dry_run_writes_nothing_anywhere() {
    let w = world("dryrun", |_| {}).await;
    w.jira.create_issue("VSA", "One", "Task");
    let cfg = config(&w);
    let r = Reconciler::new(cfg, Default::default()).expect("reconciler");

    // No state file yet: the plan is computed against an empty state, and none is created.
    let reports = r.pass(Mode::DryRun(None), PassKind::Incremental).await;
    assert_eq!(reports[0].planned.len(), 1, "{:?}", reports[0].planned);
    assert!(reports[0].planned[0].starts_with("create  VSA-1"));
    assert!(!w.state_path().exists());
    assert_eq!(w.gitlab.writes(), 0);

    // With state: the planned close is shown, GitLab and the checkpoint stay as they are.
    pass_ok(&w, PassKind::Incremental).await;
    w.clock.advance(MINUTE);
    w.jira.transition("VSA-1", "Done", "done");
    let before = Store::open(&w.state_path())
        .expect("store")
        .status(&"VSA->acme/platform".into())
        .expect("status");
    let writes = w.gitlab.writes();
    let store = Store::open_read_only(&w.state_path())
        .expect("ro")
        .expect("exists");
    let reports = r
        .pass(Mode::DryRun(Some(&store)), PassKind::Incremental)
        .await;
    assert!(
        reports[0].planned.iter().any(|l| l.contains("close")),
        "{:?}",
        reports[0].planned
    );
    assert_eq!(w.gitlab.writes(), writes);
    let after = Store::open(&w.state_path())
        .expect("store")
        .status(&"VSA->acme/platform".into())
        .expect("status");
    assert_eq!(before.checkpoint, after.checkpoint);
    assert_eq!(
        before.last_pass.map(|p| p.started_at),
        after.last_pass.map(|p| p.started_at)
    );
}

#[tokio::test]
async fn full_pass_repairs_drift_made_by_hand_in_gitlab() {
    let w = world("drift", |_| {}).await;
    let open = w.jira.create_issue("VSA", "Open in Jira", "Task");
    let done = w.jira.create_issue("VSA", "Done in Jira", "Task");
    w.jira.transition(&done.key, "Done", "done");
    let renamed = w.jira.create_issue("VSA", "Right title", "Task");
    let deleted = w.jira.create_issue("VSA", "Deleted in GitLab", "Task");
    pass_ok(&w, PassKind::Incremental).await;
    let ui_iid =
        w.gitlab
            .create_by_hand("acme/platform", "Created in the GitLab UI", "not a mirror");

    // A later Jira change moves the checkpoint, so the first four leave the overlap window.
    w.clock.advance(Duration::from_secs(3600));
    w.jira.create_issue("VSA", "Later", "Task");
    pass_ok(&w, PassKind::Incremental).await;
    w.gitlab.close_by_hand(
        "acme/platform",
        mirror_of(&w, "acme/platform", &open.id).iid,
    );
    w.gitlab.reopen_by_hand(
        "acme/platform",
        mirror_of(&w, "acme/platform", &done.id).iid,
    );
    w.gitlab.retitle_by_hand(
        "acme/platform",
        mirror_of(&w, "acme/platform", &renamed.id).iid,
        "Wrong title",
    );
    w.gitlab.delete_by_hand(
        "acme/platform",
        mirror_of(&w, "acme/platform", &deleted.id).iid,
    );

    // Jira did not change, so an incremental pass does not look at them.
    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        (r.counts.jira_seen, r.counts.unchanged),
        (1, 1),
        "{}",
        r.summary()
    );
    let r = pass_ok(&w, PassKind::Full).await;
    assert_eq!(
        (
            r.counts.closed,
            r.counts.reopened,
            r.counts.updated,
            r.counts.created
        ),
        (1, 1, 1, 1),
        "{}",
        r.summary()
    );
    assert_converged(&w, "VSA", "acme/platform");
    assert_eq!(
        mirror_of(&w, "acme/platform", &renamed.id).title,
        "Right title"
    );
    let ui = w.gitlab.issue("acme/platform", ui_iid).expect("UI issue");
    assert_eq!(
        (ui.title.as_str(), ui.state.as_str()),
        ("Created in the GitLab UI", "opened"),
        "left alone"
    );
}

#[tokio::test]
async fn hostile_summaries_become_valid_inert_titles() {
    let w = world("titles", |_| {}).await;
    let cases = [
        "x".repeat(300),
        "🚀".repeat(260),
        "עברית \u{202e}evil\u{202c} text".to_string(),
        "tab\there\nnewline\u{7}bell".to_string(),
        "   ".to_string(),
        "<script>alert(1)</script> **bold** [link](javascript:x)".to_string(),
    ];
    let refs: Vec<_> = cases
        .iter()
        .map(|s| w.jira.create_issue("VSA", s, "Task"))
        .collect();
    pass_ok(&w, PassKind::Incremental).await;
    for (r, summary) in refs.iter().zip(&cases) {
        let g = mirror_of(&w, "acme/platform", &r.id);
        assert!(g.title.chars().count() <= 255, "{summary:?}");
        assert!(!g.title.is_empty());
        assert!(!g.title.chars().any(|c| c.is_control()), "{:?}", g.title);
        assert!(
            !g.description.contains("<script>"),
            "the summary is never put in the description"
        );
    }
    assert_eq!(
        mirror_of(&w, "acme/platform", &refs[4].id).title,
        format!("(Jira issue {} has no summary)", refs[4].key)
    );
    assert_eq!(
        mirror_of(&w, "acme/platform", &refs[2].id).title,
        "עברית evil text"
    );
    // Idempotent: cleaned titles compare equal next time.
    let writes = w.gitlab.writes();
    pass_ok(&w, PassKind::Full).await;
    assert_eq!(w.gitlab.writes(), writes);
}

#[test]
fn captured_jira_and_gitlab_responses_deserialise() {
    let cloud: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/jira-cloud-issues.json")).expect("json");
    let issues = cloud["issues"].as_array().expect("issues");
    assert_eq!(issues.len(), 3);
    for raw in issues {
        let i =
            jira_gitlab_reconciler::jira::parse_issue(&raw.to_string(), Some("customfield_10020"))
                .expect("real issue parses");
        assert!(i.id.get() > 0);
    }
    let first =
        jira_gitlab_reconciler::jira::parse_issue(&issues[0].to_string(), None).expect("parses");
    assert_eq!(first.key, "ISSUE-1");
    assert_eq!(first.created.to_rfc3339(), "2023-11-02T09:02:34.255+00:00");

    // This trimmed page has no ids: each issue is reported as unreadable, none is invented.
    let page: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/jira-search-jql-page.json")).expect("json");
    for raw in page["issues"].as_array().expect("issues") {
        let e =
            jira_gitlab_reconciler::jira::parse_issue(&raw.to_string(), Some("customfield_10020"))
                .expect_err("no id");
        assert!(e.contains("no id"), "{e}");
    }
}

#[tokio::test]
async fn issue_moved_between_mappings_of_one_gitlab_project_keeps_its_mirror() {
    let w = world("moved", |o| {
        o.mappings = vec![
            SimMapping::new("VSA", "acme/platform"),
            SimMapping::new("OPS", "acme/platform"),
        ]
    })
    .await;
    let r = w.jira.create_issue("VSA", "Moves to OPS", "Task");
    w.jira.create_issue("OPS", "Stays in OPS", "Task");
    let reports = pass(&w, PassKind::Incremental).await;
    assert!(reports.iter().all(|r| r.ok()), "{reports:?}");
    let before = mirror_of(&w, "acme/platform", &r.id);

    w.clock.advance(MINUTE);
    let moved = w.jira.move_issue(&r.key, "OPS");
    assert_eq!(moved.id, r.id);
    let reports = pass(&w, PassKind::Incremental).await;
    assert!(reports.iter().all(|r| r.ok()), "{reports:?}");
    let after = mirror_of(&w, "acme/platform", &r.id);
    assert_eq!(
        after.iid, before.iid,
        "the same GitLab issue, not a second one"
    );
    assert!(
        after
            .description
            .contains(&format!("/browse/{})", moved.key)),
        "{}",
        after.description
    );
    assert_eq!(w.gitlab.issues("acme/platform").len(), 2);
}

/// VSA's lead time is `closed_at − created_at`: with a token that may set them, both are
/// Jira's; with any other role GitLab silently ignores them and they are the mirror's.
#[tokio::test]
async fn owner_and_admin_tokens_backdate_others_do_not() {
    use jgr_sim::gitlab::Role;
    for (name, role, admin, backdated) in [
        ("owner", Role::Owner, false, true),
        ("admin", Role::Reporter, true, true),
        ("reporter", Role::Reporter, false, false),
    ] {
        let w = world(&format!("backdate-{name}"), |o| {
            o.role = role;
            o.admin = admin;
        })
        .await;
        let r = w.jira.create_issue("VSA", "Old work", "Task");
        w.clock.advance(Duration::from_secs(3 * 3600));
        w.jira.transition(&r.key, "Done", "done");
        let j = w.jira.issue(&r.key).expect("issue");
        w.clock.advance(Duration::from_secs(3 * 3600));
        pass_ok(&w, PassKind::Incremental).await;
        let g = mirror_of(&w, "acme/platform", &r.id);
        let closed_at = g.closed_at.expect("closed");
        let close_to = |a: chrono::DateTime<chrono::Utc>, b: chrono::DateTime<chrono::Utc>| {
            (a - b).num_seconds().abs() < 2
        };
        assert_eq!(
            close_to(g.created_at, j.created),
            backdated,
            "{name}: created_at {} vs Jira {}",
            g.created_at,
            j.created
        );
        let resolved = j.resolved.expect("resolved");
        assert_eq!(
            close_to(closed_at, resolved),
            backdated,
            "{name}: closed_at {closed_at} vs Jira {resolved}"
        );
    }
}

#[tokio::test]
async fn a_failing_mapping_does_not_stop_the_others() {
    let w = world("one-fails", |o| {
        o.mappings = vec![
            SimMapping::new("OPS", "acme/ops"),
            SimMapping::new("VSA", "acme/platform"),
        ]
    })
    .await;
    let ok = w.jira.create_issue("VSA", "Still mirrored", "Task");
    w.jira
        .create_issue("OPS", "Its GitLab project is gone", "Task");
    // A config naming a GitLab project that does not exist, before the healthy one.
    let mut cfg = config(&w);
    cfg.mappings[0].gitlab_project = "acme/deleted".into();
    let r = Reconciler::new(cfg, Default::default()).expect("reconciler");
    let store = Store::open(&w.state_path()).expect("store");
    let reports = r.pass(Mode::Apply(&store), PassKind::Incremental).await;
    assert_eq!(reports.len(), 2);
    assert!(
        reports[0].failures[0].to_string().contains("acme/deleted"),
        "{:?}",
        reports[0].failures
    );
    assert!(reports[0].needs_user());
    assert!(reports[1].ok(), "{:?}", reports[1].failures);
    mirror_of(&w, "acme/platform", &ok.id);
}
