//! Per-status labels (`status_labels`), replayed with Jira's times for an Owner token, and
//! incidents (`issue_types`), on GitLab Free (no exclusive scoped labels to lean on).

use chrono::{Duration, SubsecRound, Utc};
use jgr_sim::gitlab::Role;
use jira_gitlab_reconciler::domain::PassKind;

use crate::harness::*;

fn scoped(labels: &[String]) -> Vec<String> {
    labels
        .iter()
        .filter(|l| l.starts_with("jira-status::"))
        .cloned()
        .collect()
}

#[tokio::test]
async fn one_status_label_after_every_transition_with_jiras_times() {
    let w = world("status-labels", |o| {
        o.role = Role::Owner;
        o.mappings[0].status_labels = Some("jira-status".into());
        o.mappings[0].labels = vec!["jira".into()];
        // The other rules on too: none of them may cost an idle pass a request.
        o.mappings[0].seed_iid_prefix = Some("1000".into());
        o.mappings[0].issue_types = vec![("Incident".into(), "incident".into())];
    })
    .await;
    let a = w.jira.create_issue("VSA", "Story", "Story");
    pass_ok(&w, PassKind::Incremental).await;
    let iid = mirror_of(&w, PROJECT, &a.id).iid;
    assert_eq!(
        w.gitlab.issue(PROJECT, iid).expect("issue").labels,
        vec!["jira", "jira-status::To Do"]
    );
    assert_eq!(
        w.gitlab.project_labels(PROJECT),
        vec!["jira", "jira-status::To Do"]
    );

    let steps = [
        ("In Progress", "indeterminate", "opened"),
        ("In Review", "indeterminate", "opened"),
        ("Done", "done", "closed"),
        ("Reopened", "indeterminate", "opened"),
        ("Done", "done", "closed"),
    ];
    for (status, category, state) in steps {
        w.clock.advance(MINUTE * 7);
        w.jira.transition(&a.key, status, category);
        let moved_at = w.jira.issue(&a.key).expect("issue").updated;
        pass_ok(&w, PassKind::Incremental).await;
        let g = w.gitlab.issue(PROJECT, iid).expect("issue");
        assert_eq!(
            scoped(&g.labels),
            vec![format!("jira-status::{status}")],
            "after {status}"
        );
        assert!(g.labels.contains(&"jira".to_string()));
        assert_eq!(g.state, state);
        // The label event carries the Jira transition time, not the mirror's.
        let events = w.gitlab.label_events(PROJECT, iid);
        let added = events
            .iter()
            .rev()
            .find(|e| e.action == "add")
            .expect("an add event");
        assert_eq!(added.label, format!("jira-status::{status}"));
        assert_eq!(
            added.created_at.timestamp_millis(),
            moved_at.timestamp_millis(),
            "{status}"
        );
    }
    // Idle: no write and no changelog read; an incremental pass is one Jira search and no
    // GitLab request at all.
    let (writes, bulk) = (w.gitlab.writes(), w.jira.bulk_requests());
    let (jira, gitlab) = (w.jira.requests(), w.gitlab.requests());
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        (w.jira.requests() - jira, w.gitlab.requests() - gitlab),
        (1, 0)
    );
    pass_ok(&w, PassKind::Full).await;
    assert_eq!((w.gitlab.writes(), w.jira.bulk_requests()), (writes, bulk));
}

#[tokio::test]
async fn a_backfill_replays_each_issues_history_into_group_labels() {
    let w = world("status-backfill", |o| {
        o.role = Role::Owner;
        o.group_role = Some(Role::Owner);
        o.mappings[0].status_labels = Some("jira-status".into());
    })
    .await;
    let start = (Utc::now() - Duration::days(20)).trunc_subsecs(0);
    w.clock.set(start);
    let a = w.jira.create_issue("VSA", "Shipped", "Story");
    let b = w.jira.create_issue("VSA", "Waiting", "Story");
    w.clock.set(start + Duration::days(2));
    w.jira.transition(&a.key, "In Progress", "indeterminate");
    w.clock.set(start + Duration::days(5));
    w.jira.transition(&a.key, "Done", "done");
    w.clock.set(Utc::now());
    let (bulk, searches) = (w.jira.bulk_requests(), w.jira.search_requests());
    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(r.counts.created, 2);
    assert_eq!(
        w.jira.bulk_requests() - bulk,
        1,
        "one changelog request for the whole backfill (searches: {})",
        w.jira.search_requests() - searches
    );
    // Group labels (usable by group-level value streams), none at project level.
    assert_eq!(
        w.gitlab.group_labels("acme"),
        vec![
            "jira-status::Done",
            "jira-status::In Progress",
            "jira-status::To Do"
        ]
    );
    assert!(w.gitlab.project_labels(PROJECT).is_empty());

    let g = mirror_of(&w, PROJECT, &a.id);
    assert_eq!(scoped(&g.labels), vec!["jira-status::Done"]);
    let events: Vec<(String, String, i64)> = w
        .gitlab
        .label_events(PROJECT, g.iid)
        .into_iter()
        .map(|e| (e.action, e.label, (e.created_at - start).num_hours()))
        .collect();
    let h = |d: i64| d * 24;
    assert_eq!(
        events,
        vec![
            ("add".into(), "jira-status::To Do".into(), h(0)),
            ("add".into(), "jira-status::In Progress".into(), h(2)),
            ("remove".into(), "jira-status::To Do".into(), h(2)),
            ("add".into(), "jira-status::Done".into(), h(5)),
            ("remove".into(), "jira-status::In Progress".into(), h(5)),
        ]
    );
    assert_eq!(g.created_at.timestamp(), start.timestamp());
    assert_eq!(g.closed_at.map(|t| (t - start).num_hours()), Some(h(5)));
    assert_eq!(
        scoped(&mirror_of(&w, PROJECT, &b.id).labels),
        vec!["jira-status::To Do"]
    );
}

#[tokio::test]
async fn without_an_owner_token_labels_change_at_mirror_time() {
    let w = world("status-reporter", |o| {
        o.mappings[0].status_labels = Some("jira-status".into());
    })
    .await;
    let a = w.jira.create_issue("VSA", "Story", "Story");
    pass_ok(&w, PassKind::Incremental).await;
    w.clock.advance(MINUTE);
    w.jira.transition(&a.key, "In Progress", "indeterminate");
    w.jira.transition(&a.key, "In Review", "indeterminate");
    pass_ok(&w, PassKind::Incremental).await;
    let g = mirror_of(&w, PROJECT, &a.id);
    assert_eq!(scoped(&g.labels), vec!["jira-status::In Review"]);
    // One request for the change (not a replay): add and remove together.
    let events = w.gitlab.label_events(PROJECT, g.iid);
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[1].created_at, events[2].created_at);
}

#[tokio::test]
async fn incidents_follow_the_jira_issue_type_and_a_role_that_cannot_is_reported() {
    let w = world("incidents", |o| {
        o.mappings[0].issue_types = vec![("Incident".into(), "incident".into())];
    })
    .await;
    let outage = w.jira.create_issue("VSA", "Checkout down", "Incident");
    let task = w.jira.create_issue("VSA", "Routine", "Task");
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(mirror_of(&w, PROJECT, &outage.id).issue_type, "incident");
    assert_eq!(mirror_of(&w, PROJECT, &task.id).issue_type, "issue");
    w.clock.advance(MINUTE);
    w.jira.set_issue_type(&outage.key, "Bug");
    w.jira.set_issue_type(&task.key, "Incident");
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(mirror_of(&w, PROJECT, &outage.id).issue_type, "issue");
    assert_eq!(mirror_of(&w, PROJECT, &task.id).issue_type, "incident");

    // A Planner may create issues but not incidents: GitLab files an issue, and says 201.
    let w = world("incidents-planner", |o| {
        o.role = Role::Planner;
        o.mappings[0].issue_types = vec![("Incident".into(), "incident".into())];
    })
    .await;
    let outage = w.jira.create_issue("VSA", "Checkout down", "Incident");
    let reports = pass(&w, PassKind::Incremental).await;
    let failures = reports[0].failure_lines().join("\n");
    assert!(
        failures.contains("as issue, not incident") && failures.contains("Reporter role"),
        "{failures}"
    );
    assert_eq!(mirror_of(&w, PROJECT, &outage.id).issue_type, "issue");
}

#[tokio::test]
async fn titles_keep_joiners_and_drop_overrides_end_to_end() {
    let w = world("titles", |_| {}).await;
    let coder = w.jira.create_issue(
        "VSA",
        "\u{1F469}\u{200D}\u{1F4BB} می\u{200C}خواهم \u{202E}evil\u{202C}",
        "Task",
    );
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        mirror_of(&w, PROJECT, &coder.id).title,
        "\u{1F469}\u{200D}\u{1F4BB} می\u{200C}خواهم evil"
    );
    let writes = w.gitlab.writes();
    pass_ok(&w, PassKind::Full).await;
    assert_eq!(
        w.gitlab.writes(),
        writes,
        "GitLab keeps them as sent: no retitle loop"
    );
}

#[tokio::test]
async fn data_center_changelogs_come_with_the_search_by_id() {
    let w = world("status-dc", |o| {
        o.deployment = jgr_sim::jira::Deployment::DataCenter;
        o.role = Role::Owner;
        o.mappings[0].status_labels = Some("jira-status".into());
    })
    .await;
    let start = (Utc::now() - Duration::days(3)).trunc_subsecs(0);
    w.clock.set(start);
    let a = w.jira.create_issue("VSA", "Story", "Story");
    w.clock.set(start + Duration::hours(5));
    w.jira.transition(&a.key, "In Progress", "indeterminate");
    w.clock.set(Utc::now());
    let searches = w.jira.search_requests();
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        w.jira.search_requests() - searches,
        2,
        "the mapping's search, then one by id with expand=changelog"
    );
    let g = mirror_of(&w, PROJECT, &a.id);
    let events: Vec<(String, i64)> = w
        .gitlab
        .label_events(PROJECT, g.iid)
        .into_iter()
        .filter(|e| e.action == "add")
        .map(|e| (e.label, (e.created_at - start).num_hours()))
        .collect();
    assert_eq!(
        events,
        vec![
            ("jira-status::To Do".to_string(), 0),
            ("jira-status::In Progress".to_string(), 5)
        ]
    );
}
