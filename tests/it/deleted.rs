//! Jira issues that leave a mapping: deleted, no longer visible, moved, filtered out. Only
//! full passes look; the GitLab issue is closed and/or labelled as configured, never deleted,
//! and reopened when the Jira issue comes back.

use jgr_sim::jira::Deployment;
use jgr_sim::world::SimMapping;
use jira_gitlab_reconciler::domain::PassKind;

use crate::harness::*;

fn labels(w: &jgr_sim::world::SimWorld, project: &str, iid: u64) -> Vec<String> {
    w.gitlab.issue(project, iid).expect("issue").labels
}

/// The actions a dry-run full pass plans, with the state database opened read-only.
async fn dry_run_full(w: &jgr_sim::world::SimWorld) -> Vec<String> {
    use jira_gitlab_reconciler::metrics::Metrics;
    use jira_gitlab_reconciler::reconcile::{Mode, Reconciler};
    use jira_gitlab_reconciler::store::Store;
    let r = Reconciler::new(config(w), std::sync::Arc::new(Metrics::new())).expect("reconciler");
    let store = Store::open_read_only(&w.state_path())
        .expect("readable")
        .expect("exists");
    let mut reports = r.pass(Mode::DryRun(Some(&store)), PassKind::Full).await;
    assert!(reports[0].ok(), "{:?}", reports[0].failures);
    std::mem::take(&mut reports[0].planned)
}

async fn deleted_and_invisible_round_trip(deployment: Deployment) {
    let w = world("deleted", |o| o.deployment = deployment).await;
    seed_issues(&w, 4, 100);
    pass_ok(&w, PassKind::Incremental).await;
    let all = w.jira.issues();
    let (deleted, hidden) = (&all[0], &all[1]);
    let gd = mirror_of(&w, PROJECT, &deleted.id);
    let gh = mirror_of(&w, PROJECT, &hidden.id);
    let issues_before = w.gitlab.issues(PROJECT).len();

    w.clock.advance(MINUTE);
    w.jira.delete_issue(&deleted.key);
    w.jira.hide_issue(&hidden.key);
    let writes = w.gitlab.writes();
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(w.gitlab.writes(), writes, "an incremental pass cannot tell");

    // A dry run of the full pass, on the state database opened read-only, names them and
    // writes nothing (what it saw is noted in a temporary table, not in the file).
    let planned = dry_run_full(&w).await;
    let gone: Vec<&String> = planned.iter().filter(|l| l.starts_with("gone")).collect();
    assert_eq!(gone.len(), 2, "{planned:?}");
    assert!(
        gone.iter().all(|l| l.contains("deleted in Jira")),
        "{gone:?}"
    );
    assert_eq!(w.gitlab.writes(), writes);

    let r = pass_ok(&w, PassKind::Full).await;
    assert_eq!(r.counts.closed, 2, "{}", r.summary());
    for iid in [gd.iid, gh.iid] {
        let g = w.gitlab.issue(PROJECT, iid).expect("never deleted");
        assert_eq!(g.state, "closed");
        assert_eq!(g.labels, vec!["jira::deleted".to_string()]);
    }
    assert_eq!(w.gitlab.issues(PROJECT).len(), issues_before);
    // Handled once: the next full pass neither writes nor asks Jira about them again.
    let (writes, searches, bulk) = (
        w.gitlab.writes(),
        w.jira.search_requests(),
        w.jira.bulk_requests(),
    );
    pass_ok(&w, PassKind::Full).await;
    assert_eq!(w.gitlab.writes(), writes);
    assert_eq!(
        (
            w.jira.search_requests() - searches,
            w.jira.bulk_requests() - bulk
        ),
        (1, 0),
        "one search, no look-up by id"
    );

    // Restored from a backup and permission given back: reopened, label gone.
    w.jira.restore_issue(&deleted.id);
    w.jira.unhide_issue(&hidden.id);
    let r = pass_ok(&w, PassKind::Full).await;
    assert_eq!(r.counts.reopened, 2, "{}", r.summary());
    for iid in [gd.iid, gh.iid] {
        let g = w.gitlab.issue(PROJECT, iid).expect("issue");
        assert_eq!((g.state.as_str(), g.labels.len()), ("opened", 0));
    }
    assert_converged(&w, "VSA", PROJECT);
}

#[tokio::test]
async fn deleted_and_invisible_issues_are_closed_labelled_and_reopened_when_back_cloud() {
    deleted_and_invisible_round_trip(Deployment::Cloud).await;
}

#[tokio::test]
async fn deleted_and_invisible_issues_are_closed_labelled_and_reopened_when_back_dc() {
    deleted_and_invisible_round_trip(Deployment::DataCenter).await;
}

#[tokio::test]
async fn moved_taken_over_and_filtered_out_issues_follow_their_policy() {
    let w = world("moved", |o| {
        o.mappings = vec![
            SimMapping {
                jql: Some("issuetype != Epic".into()),
                ..SimMapping::new("VSA", "acme/platform")
            },
            // Another GitLab project: an issue moved there gets a mirror there.
            SimMapping::new("OPS", "acme/ops"),
            // The same GitLab project: it keeps the issue.
            SimMapping::new("SUP", "acme/platform"),
        ]
    })
    .await;
    let to_ops = w.jira.create_issue("VSA", "Goes to ops", "Task");
    let to_sup = w.jira.create_issue("VSA", "Goes to support", "Task");
    let to_epic = w.jira.create_issue("VSA", "Becomes an epic", "Task");
    let stays = w.jira.create_issue("VSA", "Stays", "Task");
    for r in pass(&w, PassKind::Incremental).await {
        assert!(r.ok(), "{:?}", r.failures);
    }
    let g_ops = mirror_of(&w, PROJECT, &to_ops.id);
    let g_sup = mirror_of(&w, PROJECT, &to_sup.id);
    let g_epic = mirror_of(&w, PROJECT, &to_epic.id);

    w.clock.advance(MINUTE);
    w.jira.add_project("OPS");
    w.jira.add_project("SUP");
    w.jira.move_issue(&to_ops.key, "OPS");
    let moved_sup = w.jira.move_issue(&to_sup.key, "SUP");
    w.jira.set_issue_type(&to_epic.key, "Epic");
    for r in pass(&w, PassKind::Full).await {
        assert!(r.ok(), "{:?}", r.failures);
    }
    let g = w.gitlab.issue(PROJECT, g_ops.iid).expect("issue");
    assert_eq!(
        (g.state.as_str(), g.labels.clone()),
        ("closed", vec!["jira::moved".to_string()])
    );
    assert_eq!(
        mirror_of(&w, "acme/ops", &to_ops.id).state,
        "opened",
        "OPS mirrors it now"
    );
    let g = w.gitlab.issue(PROJECT, g_sup.iid).expect("issue");
    assert_eq!(
        (g.state.as_str(), g.labels.len()),
        ("opened", 0),
        "SUP keeps it"
    );
    assert!(g
        .description
        .contains(&format!("/browse/{})", moved_sup.key)));
    assert_eq!(
        (
            w.gitlab
                .issue(PROJECT, g_epic.iid)
                .expect("issue")
                .state
                .as_str(),
            labels(&w, PROJECT, g_epic.iid)
        ),
        ("opened", vec!["jira::filtered-out".to_string()]),
        "filtered out: labelled, left open (on_filtered_out = \"label\")"
    );
    assert_eq!(mirror_of(&w, PROJECT, &stays.id).labels.len(), 0);
    // Nothing more to do on the next full pass.
    let writes = w.gitlab.writes();
    for r in pass(&w, PassKind::Full).await {
        assert!(r.ok(), "{:?}", r.failures);
    }
    assert_eq!(w.gitlab.writes(), writes);
}

#[tokio::test]
async fn on_deleted_label_and_ignore() {
    for (policy, state, labels_after) in [
        ("label", "opened", vec!["jira::deleted".to_string()]),
        ("ignore", "opened", vec![]),
    ] {
        let w = world("on-deleted", |o| {
            o.mappings[0].on_deleted = Some(policy.into())
        })
        .await;
        let a = w.jira.create_issue("VSA", "Doomed", "Task");
        pass_ok(&w, PassKind::Incremental).await;
        let g = mirror_of(&w, PROJECT, &a.id);
        w.jira.delete_issue(&a.key);
        pass_ok(&w, PassKind::Full).await;
        let after = w.gitlab.issue(PROJECT, g.iid).expect("never deleted");
        assert_eq!(
            (after.state.as_str(), after.labels),
            (state, labels_after),
            "{policy}"
        );
    }
}
