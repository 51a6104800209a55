//! Jira's labels, components, priority (`labels_from`) and due date (`due_date`) on the
//! mirrors: set on create and on change, only what the reconciler set is ever removed (a
//! label a person added stays), a dry run lists the changes, and idle passes write nothing
//! (with everything on, the status board and milestones too, an idle pass asks GitLab nothing).

use chrono::NaiveDate;
use jira_gitlab_reconciler::domain::PassKind;

use crate::harness::*;

fn day(text: &str) -> NaiveDate {
    text.parse().expect("a date")
}

fn sorted(mut labels: Vec<String>) -> Vec<String> {
    labels.sort();
    labels
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_and_due_dates_follow_jira_and_leave_what_people_added() {
    let w = world("fields", |o| {
        o.mappings[0].extra_config =
            "labels_from = [\"labels\", \"components\", \"priority\"]\ndue_date = true\n".into()
    })
    .await;
    let a = w.jira.create_issue("VSA", "A", "Task");
    w.jira.set_labels(&a.key, &["backend"]);
    w.jira.set_components(&a.key, &["API"]);
    w.jira.set_priority(&a.key, Some("High"));
    w.jira.set_due_date(&a.key, Some(day("2024-03-01")));
    let b = w.jira.create_issue("VSA", "B", "Task");
    pass_ok(&w, PassKind::Incremental).await;
    let ga = mirror_of(&w, PROJECT, &a.id);
    assert_eq!(
        sorted(ga.labels.clone()),
        ["backend", "component::API", "priority::High"]
    );
    let meta = w.gitlab.issue_metadata(PROJECT, ga.iid).expect("metadata");
    assert_eq!(meta.due_date, Some(day("2024-03-01")));
    let gb = mirror_of(&w, PROJECT, &b.id);
    assert_eq!(
        gb.labels,
        ["priority::Medium"],
        "a new issue's default priority"
    );

    // Idle: neither an incremental nor a full pass writes anything.
    for kind in [PassKind::Incremental, PassKind::Full] {
        let writes = w.gitlab.writes();
        pass_ok(&w, kind).await;
        assert_eq!(w.gitlab.writes(), writes, "{kind:?} pass wrote");
    }

    // A person adds a label in GitLab; Jira drops one, changes the priority, clears the date.
    w.gitlab
        .label_by_hand(PROJECT, ga.iid, &["needs-design"], &[]);
    w.jira.set_labels(&a.key, &[]);
    w.jira.set_priority(&a.key, Some("Low"));
    w.jira.set_due_date(&a.key, None);
    // The dry run names every field change and writes nothing.
    let writes = w.gitlab.writes();
    let mut args = reconcile_args(&w);
    args.push("--dry-run".into());
    let out = run_binary(args).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for change in [
        "+label priority::Low",
        "-label backend",
        "-label priority::High",
        "due date cleared",
    ] {
        assert!(stdout.contains(change), "{change} missing from:\n{stdout}");
    }
    assert_eq!(w.gitlab.writes(), writes, "a dry run wrote");
    pass_ok(&w, PassKind::Incremental).await;
    let ga = mirror_of(&w, PROJECT, &a.id);
    assert_eq!(
        sorted(ga.labels.clone()),
        ["component::API", "needs-design", "priority::Low"]
    );
    let meta = w.gitlab.issue_metadata(PROJECT, ga.iid).expect("metadata");
    assert_eq!(meta.due_date, None);
    for kind in [PassKind::Incremental, PassKind::Full] {
        let writes = w.gitlab.writes();
        pass_ok(&w, kind).await;
        assert_eq!(
            w.gitlab.writes(),
            writes,
            "{kind:?} pass wrote after the change"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switched_on_later_the_first_pass_only_adds() {
    let w = world("fields-later", |_| {}).await;
    let a = w.jira.create_issue("VSA", "A", "Task");
    w.jira.set_labels(&a.key, &["backend"]);
    pass_ok(&w, PassKind::Incremental).await;
    let ga = mirror_of(&w, PROJECT, &a.id);
    assert!(ga.labels.is_empty(), "off by default: {:?}", ga.labels);
    // A person's label of the same name as one Jira will drop, before the switch.
    w.gitlab.label_by_hand(PROJECT, ga.iid, &["legacy"], &[]);
    let mut w = w;
    w.opts.mappings[0].extra_config = "labels_from = [\"labels\"]\n".into();
    // The mirror's Jira version was applied: a full pass compares it again.
    pass_ok(&w, PassKind::Full).await;
    let ga = mirror_of(&w, PROJECT, &a.id);
    assert_eq!(sorted(ga.labels.clone()), ["backend", "legacy"]);
    w.jira.set_labels(&a.key, &["frontend"]);
    pass_ok(&w, PassKind::Incremental).await;
    let ga = mirror_of(&w, PROJECT, &a.id);
    assert_eq!(sorted(ga.labels.clone()), ["frontend", "legacy"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_says_when_the_token_cannot_set_labels_or_due_dates() {
    for (role, code, want) in [
        (
            jgr_sim::gitlab::Role::Guest,
            2,
            "PROBLEM VSA->acme/platform: labels_from and due_date are on, but the token's role on acme/platform (access level 10) cannot set labels, due dates or assignees",
        ),
        (
            jgr_sim::gitlab::Role::Planner,
            0,
            "ok      VSA->acme/platform: labels_from and due_date: the token may set labels, due dates and assignees",
        ),
    ] {
        let w = world("fields-check", |o| {
            o.role = role;
            o.mappings[0].extra_config = "labels_from = [\"labels\"]\ndue_date = true\n".into();
        })
        .await;
        let config = w.write_config().expect("config").display().to_string();
        let out = run_binary(vec!["check".into(), "--config".into(), config]).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(code), "{stdout}\n{stderr}");
        assert!(stdout.lines().any(|l| l.starts_with(want)), "want {want:?} in\n{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignees_map_through_users_or_public_emails_and_nobody_is_guessed() {
    use jgr_sim::world::PersonSpec;
    let mut w = world("assignees", |o| {
        o.mappings[0].extra_config = "assignees = true\n".into();
    })
    .await;
    let alice = w.add_person(&PersonSpec::new("alice", "Alice").jira_email_hidden());
    let bob = w.add_person(&PersonSpec::new("bob", "Bob"));
    let carol = w.add_person(&PersonSpec::new("carol", "Carol").jira_email_hidden());
    let dave = w.add_person(&PersonSpec::new("dave", "Dave").not_member());
    w.opts.gitlab_config = format!("\n[users]\n\"{}\" = \"alice\"\n", alice.jira.account_id);
    let mut keys = Vec::new();
    for (summary, who) in [("A", &alice), ("B", &bob), ("C", &carol), ("D", &dave)] {
        let r = w.jira.create_issue("VSA", summary, "Task");
        w.jira.set_assignee(&r.key, Some(&who.jira.account_id));
        keys.push(r);
    }
    let out = run_binary(reconcile_args(&w)).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let both = format!("{stdout}\n{stderr}");
    assert!(
        both.contains("2 Jira assignees have no GitLab user and stay unassigned: Carol (accountId"),
        "{both}"
    );
    assert!(both.contains("Dave (accountId"), "{both}");
    let assignees = |key: &jgr_sim::jira::IssueRef| {
        let g = mirror_of(&w, PROJECT, &key.id);
        w.gitlab
            .issue_metadata(PROJECT, g.iid)
            .expect("metadata")
            .assignees
    };
    assert_eq!(assignees(&keys[0]), ["alice"], "through [users]");
    assert_eq!(assignees(&keys[1]), ["bob"], "through the public e-mail");
    assert!(assignees(&keys[2]).is_empty() && assignees(&keys[3]).is_empty());
    for kind in [PassKind::Incremental, PassKind::Full] {
        let writes = w.gitlab.writes();
        pass_ok(&w, kind).await;
        assert_eq!(w.gitlab.writes(), writes, "{kind:?} pass wrote");
    }
    // Someone assigns C by hand; Jira unassigns A and C: only the reconciler's assignee goes.
    let gc = mirror_of(&w, PROJECT, &keys[2].id);
    w.gitlab.assign_by_hand(PROJECT, gc.iid, &["bob"]);
    w.jira.set_assignee(&keys[0].key, None);
    w.jira.set_assignee(&keys[2].key, None);
    pass_ok(&w, PassKind::Incremental).await;
    assert!(
        assignees(&keys[0]).is_empty(),
        "the reconciler's assignee goes"
    );
    assert_eq!(assignees(&keys[2]), ["bob"], "a person's assignee stays");
    for kind in [PassKind::Incremental, PassKind::Full] {
        let writes = w.gitlab.writes();
        pass_ok(&w, kind).await;
        assert_eq!(
            w.gitlab.writes(),
            writes,
            "{kind:?} pass wrote after the change"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_users_gitlab_does_not_have_or_would_drop() {
    use jgr_sim::world::PersonSpec;
    let mut w = world("assignees-check", |o| {
        o.mappings[0].extra_config = "assignees = true\n".into();
    })
    .await;
    w.add_person(&PersonSpec::new("dave", "Dave").not_member());
    w.opts.gitlab_config =
        "\n[users]\n\"5b10\" = \"ghost\"\n\"dave@example.com\" = \"dave\"\n".into();
    let config = w.write_config().expect("config").display().to_string();
    let out = run_binary(vec!["check".into(), "--config".into(), config]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    for want in [
        "PROBLEM VSA->acme/platform: [users] maps 5b10 to ghost, who is not a GitLab user",
        "PROBLEM VSA->acme/platform: [users] maps dave@example.com to dave (user",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(want)),
            "want {want:?} in\n{stdout}"
        );
    }
}

/// `check` asks Jira who may be assigned the project's issues (every page: Jira drops the
/// inactive from a page after reading it, so a short page is not the last) and names each one
/// a pass would leave unassigned, resolved as a pass resolves them, on Cloud and Data Center.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_jira_assignees_that_have_no_gitlab_user() {
    use jgr_sim::jira::Deployment;
    use jgr_sim::world::PersonSpec;
    for deployment in [Deployment::Cloud, Deployment::DataCenter] {
        let mut w = world("assignable-check", |o| {
            o.deployment = deployment;
            o.mappings[0].extra_config = "assignees = true\n".into();
        })
        .await;
        w.add_person(&PersonSpec::new("alice", "Alice"));
        let bob = w.add_person(&PersonSpec::new("bob", "Bob").jira_email_hidden());
        w.add_person(&PersonSpec::new("carol", "Carol").jira_email_hidden());
        w.add_person(&PersonSpec::new("dave", "Dave").not_member());
        // Contractors in Jira only, the first three no longer active (not assignable).
        for i in 0..105 {
            let c = w.jira.add_user(
                &format!("Contractor {i}"),
                &format!("c{i}@example.com"),
                false,
            );
            if i < 3 {
                w.jira.set_user_active(&c.email, false);
            }
        }
        let id = match deployment {
            Deployment::Cloud => bob.jira.account_id.clone(),
            _ => bob.jira.key.clone(),
        };
        w.opts.gitlab_config = format!("\n[users]\n\"{id}\" = \"bob\"\n");
        let config = w.write_config().expect("config").display().to_string();
        let out = run_binary(vec!["check".into(), "--config".into(), config]).await;
        let (stdout, stderr) = text(&out);
        let line = stdout
            .lines()
            .find(|l| l.contains("Jira assignees have no GitLab user"))
            .unwrap_or_else(|| panic!("{deployment:?}: no line names them:\n{stdout}\n{stderr}"));
        // Carol, Dave and the 102 active contractors; Alice (public e-mail) and Bob ([users]) map.
        assert!(
            line.starts_with("note    VSA->acme/platform: 104 Jira assignees have no GitLab user"),
            "{deployment:?}: {line}"
        );
        assert!(
            line.contains("Carol (") && line.contains("Contractor 3 ("),
            "{line}"
        );
        assert!(
            line.contains(": not in [users], and Jira hides the e-mail;"),
            "{line}"
        );
        assert!(
            line.contains("Dave (") && line.contains("not a member of acme/platform"),
            "{line}"
        );
        assert!(line.contains("and 84 more; add them to [users]"), "{line}");
        // Data Center names people by their user key, which is not an accountId.
        let (id, not) = match deployment {
            Deployment::DataCenter => ("Carol (user key ", "(accountId "),
            _ => ("Carol (accountId ", "(user key "),
        };
        assert!(line.contains(id) && !line.contains(not), "{line}");
        assert!(!line.contains("Alice") && !line.contains("Bob ("), "{line}");
        assert!(!line.contains("Contractor 0 "), "inactive: {line}");
    }
}

/// Every field at once, with the status board and milestones: one pass converges, and an idle
/// incremental pass is still one Jira search and no GitLab request, as each feature's own test
/// shows alone (the Jira search returns the overlap's issues again; none may cost a look-up of
/// people, the board or a milestone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_on_an_idle_pass_is_one_search_and_no_gitlab_request() {
    use jgr_sim::world::PersonSpec;
    let mut w = world("fields-all", |o| {
        o.mappings[0].status_labels = Some("jira-status".into());
        o.mappings[0].extra_config = "labels_from = [\"labels\", \"components\", \"priority\"]\n\
             due_date = true\nassignees = true\nstatus_board = \"Jira workflow\"\n\
             milestones = \"fixVersion\"\n"
            .into();
    })
    .await;
    w.jira_workflow(&[
        ("To Do", "new"),
        ("In Progress", "indeterminate"),
        ("Done", "done"),
    ]);
    let alice = w.add_person(&PersonSpec::new("alice", "Alice").jira_email_hidden());
    let bob = w.add_person(&PersonSpec::new("bob", "Bob"));
    w.opts.extra_config = format!("[users]\n\"{}\" = \"alice\"\n", alice.jira.account_id);
    w.jira
        .add_version("VSA", "1.1", None, Some(day("2025-03-16")));
    let a = w.jira.create_issue("VSA", "A", "Task");
    w.jira.set_labels(&a.key, &["backend"]);
    w.jira.set_components(&a.key, &["API"]);
    w.jira.set_priority(&a.key, Some("High"));
    w.jira.set_due_date(&a.key, Some(day("2025-03-01")));
    w.jira.set_assignee(&a.key, Some(&alice.jira.account_id));
    w.jira.set_fix_versions(&a.key, &["1.1"]);
    w.jira.transition(&a.key, "In Progress", "indeterminate");
    let b = w.jira.create_issue("VSA", "B", "Task");
    w.jira.set_assignee(&b.key, Some(&bob.jira.account_id));
    w.jira.set_fix_versions(&b.key, &["1.1"]);
    w.jira.transition(&b.key, "Done", "done");
    pass_ok(&w, PassKind::Incremental).await;

    let ga = mirror_of(&w, PROJECT, &a.id);
    assert_eq!(
        sorted(ga.labels.clone()),
        [
            "backend",
            "component::API",
            "jira-status::In Progress",
            "priority::High"
        ]
    );
    let meta = w.gitlab.issue_metadata(PROJECT, ga.iid).expect("metadata");
    assert_eq!(
        (meta.assignees, meta.milestone, meta.due_date),
        (
            vec!["alice".to_string()],
            Some("1.1".to_string()),
            Some(day("2025-03-01"))
        )
    );
    let gb = mirror_of(&w, PROJECT, &b.id);
    let meta = w.gitlab.issue_metadata(PROJECT, gb.iid).expect("metadata");
    assert_eq!(
        (meta.assignees, meta.milestone),
        (vec!["bob".to_string()], Some("1.1".to_string()))
    );
    let boards = w.gitlab.boards(PROJECT);
    assert_eq!(boards.len(), 1);
    assert_eq!(boards[0].lists, ["jira-status::In Progress"]);

    let idle = |w: &jgr_sim::world::SimWorld| (w.jira.requests(), w.gitlab.requests());
    let before = idle(&w);
    pass_ok(&w, PassKind::Incremental).await;
    let after = idle(&w);
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 0),
        "an idle incremental pass with everything on"
    );
    let writes = w.gitlab.writes();
    pass_ok(&w, PassKind::Full).await;
    assert_eq!(w.gitlab.writes(), writes, "an idle full pass wrote");

    // A change converges in one pass, and the pass after is idle again.
    w.clock.advance(MINUTE);
    w.jira.set_priority(&a.key, Some("Low"));
    pass_ok(&w, PassKind::Incremental).await;
    let ga = mirror_of(&w, PROJECT, &a.id);
    assert!(
        ga.labels.iter().any(|l| l == "priority::Low"),
        "{:?}",
        ga.labels
    );
    let before = idle(&w);
    pass_ok(&w, PassKind::Incremental).await;
    let after = idle(&w);
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 0));
}
