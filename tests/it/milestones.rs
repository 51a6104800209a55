//! Milestones (`milestones`): the rule on a Jira issue's fix versions and sprints as the
//! simulated Jira sends them; the GitLab client that finds a milestone by title (the project's
//! or its group's), creates one with its dates, and closes it where it lives; mirrors given
//! their milestone by passes (made once, reused, closed on release at a full pass, idle passes
//! one search); and `check`.

use chrono::{NaiveDate, TimeZone, Utc};
use jgr_sim::gitlab::Role;
use jira_gitlab_reconciler::domain::PassKind;
use jira_gitlab_reconciler::jira::IssueFields;
use jira_gitlab_reconciler::metrics::Metrics;
use jira_gitlab_reconciler::plan::{
    milestone_step, wanted_milestone, MilestoneSource, MilestoneStep, SeenMilestone,
};
use jira_gitlab_reconciler::reconcile::Reconciler;

use crate::harness::*;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, d).expect("a day")
}

fn seen(m: &jira_gitlab_reconciler::gitlab::Milestone) -> SeenMilestone {
    SeenMilestone {
        id: m.id,
        title: m.title.clone(),
        closed: m.closed(),
    }
}

#[tokio::test]
async fn fix_versions_and_sprints_as_jira_sends_them_give_milestones_gitlab_has_once() {
    let w = world("milestones", |o| {
        o.role = Role::Reporter;
        o.group_role = Some(Role::Reporter);
    })
    .await;
    let version = w
        .jira
        .add_version("VSA", "1.1", Some(day(2)), Some(day(16)));
    let board = w.jira.add_board("VSA", "VSA board", &[]);
    let sprint = w.jira.add_sprint(board, "Sprint 7");
    let at = |d| {
        Utc.with_ymd_and_hms(2025, 3, d, 9, 0, 0)
            .single()
            .expect("time")
    };
    w.jira.start_sprint(sprint, at(3), at(17));
    let a = w.jira.create_issue("VSA", "Versioned", "Story");
    w.jira.set_fix_versions(&a.key, &["1.1"]);
    w.jira.set_sprints(&a.key, &[sprint]);
    // A person made the sprint's milestone in the group already.
    let theirs = w.gitlab.add_group_milestone("acme", "Sprint 7", None, None);

    let r = Reconciler::new(config(&w), std::sync::Arc::new(Metrics::new())).expect("reconciler");
    let fields = IssueFields {
        fix_versions: true,
        sprint: r.jira().sprint_field().await.expect("fields"),
        ..IssueFields::default()
    };
    let read = || async {
        let found = r.jira().search_with("project = VSA", &fields).await;
        found.expect("search").issues.remove(0).planning
    };
    let planning = read().await;
    let by_version = wanted_milestone(MilestoneSource::FixVersion, &planning).expect("1.1");
    // An issue's fixVersions carry the release date but not the start date (only
    // `/project/{key}/versions` has it, which is not read yet).
    assert_eq!(
        (
            by_version.title.as_str(),
            by_version.start,
            by_version.due,
            by_version.over
        ),
        ("1.1", None, Some(day(16)), false)
    );
    let by_sprint = wanted_milestone(MilestoneSource::Sprint, &planning).expect("Sprint 7");
    assert_eq!(
        (by_sprint.title.as_str(), by_sprint.start, by_sprint.due),
        ("Sprint 7", Some(day(3)), Some(day(17)))
    );

    let gitlab = r.gitlab();
    let project = gitlab.project(PROJECT).await.expect("project").id;
    // The group's milestone is found and reused, never made again in the project.
    let found = gitlab
        .milestone_titled(project, "Sprint 7")
        .await
        .expect("list");
    let found = found.expect("the group's milestone");
    assert_eq!((found.id, found.group_id.is_some()), (theirs, true));
    assert_eq!(
        milestone_step(&by_sprint, Some(&seen(&found))),
        MilestoneStep::Use(theirs)
    );
    // The version's is made on demand with its dates, and then found by its title.
    assert!(gitlab
        .milestone_titled(project, "1.1")
        .await
        .expect("list")
        .is_none());
    let MilestoneStep::Create(new) = milestone_step(&by_version, None) else {
        panic!("a create");
    };
    let made = gitlab
        .create_milestone(project, &new.title, new.start, new.due)
        .await
        .expect("created");
    let again = gitlab.milestone_titled(project, "1.1").await.expect("list");
    assert_eq!(again.as_ref().map(|m| m.id), Some(made.id));
    let ours = w.gitlab.milestones(PROJECT);
    assert_eq!(ours.len(), 1);
    assert_eq!(
        (ours[0].start_date, ours[0].due_date),
        (None, Some(day(16)))
    );

    // Released in Jira: closed in GitLab; the sprint closed: its group milestone closed.
    w.jira.release_version(&version, None);
    w.jira.close_sprint(sprint, None);
    let planning = read().await;
    for (source, m) in [
        (MilestoneSource::FixVersion, made),
        (MilestoneSource::Sprint, found),
    ] {
        let wanted = wanted_milestone(source, &planning).expect("still wanted");
        assert_eq!(
            milestone_step(&wanted, Some(&seen(&m))),
            MilestoneStep::Close(m.id)
        );
        gitlab.close_milestone(project, &m).await.expect("closed");
    }
    assert_eq!(w.gitlab.milestones(PROJECT)[0].state, "closed");
    assert_eq!(w.gitlab.group_milestones("acme")[0].state, "closed");
}

fn milestone_of(w: &jgr_sim::world::SimWorld, jira_id: &str) -> Option<String> {
    let iid = mirror_of(w, PROJECT, jira_id).iid;
    w.gitlab
        .issue_metadata(PROJECT, iid)
        .and_then(|m| m.milestone)
}

#[tokio::test]
async fn mirrors_get_their_fix_versions_milestone_made_once_reused_and_closed_on_release() {
    let w = world("milestones-fix", |o| {
        o.role = Role::Reporter;
        o.mappings[0].extra_config = "milestones = \"fixVersion\"\n".into();
    })
    .await;
    let v11 = w.jira.add_version("VSA", "1.1", None, Some(day(16)));
    let v10 = w.jira.add_version("VSA", "1.0", None, Some(day(1)));
    w.jira.release_version(&v10, None);
    w.jira.add_version("VSA", "2.0", None, None);
    let a = w.jira.create_issue("VSA", "A", "Story");
    let b = w.jira.create_issue("VSA", "B", "Story");
    let none = w.jira.create_issue("VSA", "No version", "Story");
    let shipped = w.jira.create_issue("VSA", "Shipped", "Story");
    w.jira.set_fix_versions(&a.key, &["1.1"]);
    w.jira.set_fix_versions(&b.key, &["1.0", "1.1"]);
    w.jira.set_fix_versions(&shipped.key, &["1.0"]);
    w.jira.transition(&shipped.key, "Done", "done");
    // A person made 2.0 already.
    let theirs = w.gitlab.add_milestone(PROJECT, "2.0", None, None);

    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(milestone_of(&w, &a.id).as_deref(), Some("1.1"));
    assert_eq!(
        milestone_of(&w, &b.id).as_deref(),
        Some("1.1"),
        "the last fix version"
    );
    assert_eq!(milestone_of(&w, &none.id), None);
    // Closed mirrors get theirs too (switched on with work already done).
    assert_eq!(milestone_of(&w, &shipped.id).as_deref(), Some("1.0"));
    let made: Vec<(String, String, Option<NaiveDate>)> = w
        .gitlab
        .milestones(PROJECT)
        .into_iter()
        .map(|m| (m.title, m.state, m.due_date))
        .collect();
    assert_eq!(
        made,
        [
            ("2.0".to_string(), "active".to_string(), None),
            ("1.1".to_string(), "active".to_string(), Some(day(16))),
            ("1.0".to_string(), "closed".to_string(), Some(day(1))),
        ]
    );
    let iid = mirror_of(&w, PROJECT, &a.id).iid;
    let stamps = w.gitlab.vsa_stamps(PROJECT, iid).expect("stamps");
    assert!(stamps.first_associated_with_milestone_at.is_some());

    // Moved to 2.0 in Jira: the person's milestone is reused, not made again.
    w.clock.advance(MINUTE);
    w.jira.set_fix_versions(&a.key, &["2.0"]);
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(milestone_of(&w, &a.id).as_deref(), Some("2.0"));
    assert_eq!(w.gitlab.milestones(PROJECT).len(), 3);
    assert_eq!(w.gitlab.milestones(PROJECT)[0].id, theirs);

    // Released in Jira (no issue changes): closed by the next full pass, not before.
    w.jira.release_version(&v11, None);
    let state = |w: &jgr_sim::world::SimWorld| w.gitlab.milestones(PROJECT)[1].state.clone();
    let (jira, gitlab) = (w.jira.requests(), w.gitlab.requests());
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        (w.jira.requests() - jira, w.gitlab.requests() - gitlab),
        (1, 0),
        "an idle pass is one search"
    );
    assert_eq!(state(&w), "active");
    pass_ok(&w, PassKind::Full).await;
    assert_eq!(state(&w), "closed");
    let writes = w.gitlab.writes();
    pass_ok(&w, PassKind::Full).await;
    assert_eq!(
        w.gitlab.writes(),
        writes,
        "an idle full pass writes nothing"
    );
}

/// The lines a dry run plans (`kind`), with the state database when there is one.
async fn dry_run(w: &jgr_sim::world::SimWorld, kind: PassKind) -> Vec<String> {
    use jira_gitlab_reconciler::reconcile::Mode;
    use jira_gitlab_reconciler::store::Store;
    let r = Reconciler::new(config(w), std::sync::Arc::new(Metrics::new())).expect("reconciler");
    let store = Store::open_read_only(&w.state_path()).expect("readable");
    let mut reports = r.pass(Mode::DryRun(store.as_ref()), kind).await;
    assert!(reports[0].ok(), "{:?}", reports[0].failures);
    std::mem::take(&mut reports[0].planned)
}

/// A dry run lists the milestones a pass would make or close (once each), beside the issues
/// it would put in them, and writes nothing.
#[tokio::test]
async fn a_dry_run_lists_the_milestones_it_would_make_or_close() {
    let w = world("milestones-dry", |o| {
        o.role = Role::Reporter;
        o.mappings[0].extra_config = "milestones = \"fixVersion\"\n".into();
    })
    .await;
    let v11 = w.jira.add_version("VSA", "1.1", None, Some(day(16)));
    let v10 = w.jira.add_version("VSA", "1.0", None, Some(day(1)));
    w.jira.release_version(&v10, None);
    w.jira.add_version("VSA", "2.0", None, None);
    for (title, version) in [("A", "1.1"), ("B", "1.1"), ("C", "1.0"), ("D", "2.0")] {
        let issue = w.jira.create_issue("VSA", title, "Story");
        w.jira.set_fix_versions(&issue.key, &[version]);
    }
    // A person made 2.0 already: reused, so not listed.
    w.gitlab.add_milestone(PROJECT, "2.0", None, None);
    let writes = w.gitlab.writes();

    let planned = dry_run(&w, PassKind::Incremental).await;
    let milestones: Vec<&String> = planned
        .iter()
        .filter(|l| l.starts_with("milestone "))
        .collect();
    assert_eq!(
        milestones,
        [
            "milestone \"1.1\" would be created (due 2025-03-16)",
            "milestone \"1.0\" would be created (due 2025-03-01), and closed: the version is released in Jira",
        ],
        "{planned:#?}"
    );
    assert!(
        planned.iter().any(|l| l.contains("in milestone \"2.0\"")),
        "{planned:#?}"
    );
    assert_eq!(w.gitlab.writes(), writes, "a dry run writes nothing");
    assert_eq!(w.gitlab.milestones(PROJECT).len(), 1);

    // Released in Jira after the mirrors were made: a full dry run says it would close it.
    pass_ok(&w, PassKind::Incremental).await;
    w.jira.release_version(&v11, None);
    let writes = w.gitlab.writes();
    let planned = dry_run(&w, PassKind::Full).await;
    assert_eq!(
        planned,
        ["milestone \"1.1\" would be closed: the version is released in Jira"],
        "only the milestone changes"
    );
    assert_eq!(w.gitlab.writes(), writes, "a dry run writes nothing");
    let states: Vec<String> = w
        .gitlab
        .milestones(PROJECT)
        .into_iter()
        .map(|m| m.state)
        .collect();
    assert_eq!(states, ["active", "active", "closed"]);
}

/// A version's start date is only on the project's versions endpoint: read once a pass that
/// makes milestones (a dry run's too), never by a pass that makes none.
#[tokio::test]
async fn version_milestones_get_their_start_date_from_the_projects_versions() {
    let w = world("milestones-start", |o| {
        o.role = Role::Reporter;
        o.mappings[0].extra_config = "milestones = \"fixVersion\"\n".into();
    })
    .await;
    w.jira
        .add_version("VSA", "1.1", Some(day(3)), Some(day(16)));
    w.jira
        .add_version("VSA", "1.2", Some(day(17)), Some(day(30)));
    // A start after the release date: GitLab would refuse it, so it is left out.
    w.jira
        .add_version("VSA", "1.0", Some(day(20)), Some(day(1)));
    for (title, version) in [("A", "1.1"), ("B", "1.2"), ("C", "1.0")] {
        let issue = w.jira.create_issue("VSA", title, "Story");
        w.jira.set_fix_versions(&issue.key, &[version]);
    }
    let lists = || w.jira.version_list_requests();
    let planned = dry_run(&w, PassKind::Incremental).await;
    assert!(
        planned.contains(
            &"milestone \"1.1\" would be created (start 2025-03-03, due 2025-03-16)".to_string()
        ),
        "{planned:#?}"
    );
    assert_eq!(lists(), 1, "once a pass");

    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(lists(), 2, "once a pass");
    let made: Vec<(String, Option<NaiveDate>, Option<NaiveDate>)> = w
        .gitlab
        .milestones(PROJECT)
        .into_iter()
        .map(|m| (m.title, m.start_date, m.due_date))
        .collect();
    assert_eq!(
        made,
        [
            ("1.1".to_string(), Some(day(3)), Some(day(16))),
            ("1.2".to_string(), Some(day(17)), Some(day(30))),
            ("1.0".to_string(), None, Some(day(1))),
        ]
    );

    // Passes that make no milestone never read the versions: idle, one more issue in a
    // milestone that exists, a full pass.
    w.clock.advance(MINUTE);
    let (jira, gitlab) = (w.jira.requests(), w.gitlab.requests());
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        (w.jira.requests() - jira, w.gitlab.requests() - gitlab),
        (1, 0),
        "an idle pass is one search"
    );
    let d = w.jira.create_issue("VSA", "D", "Story");
    w.jira.set_fix_versions(&d.key, &["1.1"]);
    pass_ok(&w, PassKind::Incremental).await;
    pass_ok(&w, PassKind::Full).await;
    assert_eq!(lists(), 2);
    assert_eq!(milestone_of(&w, &d.id).as_deref(), Some("1.1"));
}

#[tokio::test]
async fn mirrors_get_their_current_sprint_as_a_milestone_with_its_dates() {
    let w = world("milestones-sprint", |o| {
        o.role = Role::Reporter;
        o.mappings[0].extra_config = "milestones = \"sprint\"\n".into();
    })
    .await;
    let board = w.jira.add_board("VSA", "VSA board", &[]);
    let old = w.jira.add_sprint(board, "Sprint 6");
    let now = w.jira.add_sprint(board, "Sprint 7");
    let at = |d| {
        Utc.with_ymd_and_hms(2025, 3, d, 9, 0, 0)
            .single()
            .expect("time")
    };
    w.jira.start_sprint(old, at(1), at(3));
    w.jira.close_sprint(old, Some(now));
    w.jira.start_sprint(now, at(3), at(17));
    let a = w.jira.create_issue("VSA", "Carried over", "Story");
    w.jira.set_sprints(&a.key, &[old, now]);
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(milestone_of(&w, &a.id).as_deref(), Some("Sprint 7"));
    let m = w.gitlab.milestones(PROJECT);
    assert_eq!(
        (m.len(), m[0].start_date, m[0].due_date),
        (1, Some(day(3)), Some(day(17)))
    );
    // The sprint field's id is kept: an idle pass is still one search.
    let (jira, gitlab) = (w.jira.requests(), w.gitlab.requests());
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        (w.jira.requests() - jira, w.gitlab.requests() - gitlab),
        (1, 0)
    );
}

#[tokio::test]
async fn check_names_a_jira_without_sprints_and_a_role_that_cannot_make_milestones() {
    let w = world("milestones-check", |o| {
        o.role = Role::Guest;
        o.mappings[0].extra_config = "milestones = \"sprint\"\n".into();
    })
    .await;
    // As a Jira without Jira Software: no usable gh-sprint field in `/field`.
    w.jira.set_sprint_field_id("");
    let config = w.write_config().expect("config").display().to_string();
    let out = run_binary(vec!["check".into(), "--config".into(), config]).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    for needle in [
        "this Jira has no sprint field",
        "may not create milestones or give them to issues: give it the Planner role or higher",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("PROBLEM VSA->acme/platform: ") && l.contains(needle)),
            "{needle:?} in:\n{stdout}"
        );
    }
}

#[tokio::test]
async fn check_reads_each_gitlab_project_once_for_the_board_and_milestones_too() {
    let w = world("milestones-check-once", |o| {
        o.role = Role::Maintainer;
        o.mappings[0].status_labels = Some("jira-status".into());
        o.mappings[0].extra_config =
            "milestones = \"fixVersion\"\nstatus_board = \"Jira workflow\"\n".into();
    })
    .await;
    let config = w.write_config().expect("config").display().to_string();
    w.gitlab.record_arrivals();
    let out = run_binary(vec!["check".into(), "--config".into(), config]).await;
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("status board \"Jira workflow\""),
        "{stdout}"
    );
    assert!(stdout.contains("as a milestone in"), "{stdout}");
    let project_reads = w
        .gitlab
        .arrivals()
        .into_iter()
        .filter(|(_, what)| {
            what.strip_prefix("GET /api/v4/projects/")
                .is_some_and(|rest| !rest.contains('/'))
        })
        .count();
    assert_eq!(project_reads, 1, "{stdout}");
}
