//! Switching over from GitLab's Jira Automation recipe: its issues (iid = prefix + Jira
//! number, no marker) are adopted, never duplicated; an issue someone else put in a recipe
//! slot is left alone.

use chrono::{Duration, Utc};
use jgr_sim::gitlab::Role;
use jira_gitlab_reconciler::domain::PassKind;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recipes_issues_are_adopted_and_reconciled_not_duplicated() {
    let w = world("recipe", |o| {
        o.role = Role::Owner;
        o.mappings[0].seed_iid_prefix = Some("1000".into());
    })
    .await;
    // A month of history played by the recipe, then the rules are turned off.
    let start = Utc::now() - Duration::days(30);
    w.clock.set(start);
    let minute = Duration::minutes(1);
    let same = w.jira.create_issue("VSA", "Checkout fails", "Story");
    let renamed = w.jira.create_issue("VSA", "Old summary", "Story");
    let reopened = w.jira.create_issue("VSA", "Nightly export", "Task");
    let taken = w.jira.create_issue("VSA", "Real work", "Task");
    let resolved = w.jira.create_issue("VSA", "Dark mode", "Story");
    w.gitlab
        .create_with_iid(PROJECT, 10001, "Checkout fails", start + minute);
    // Re-run by hand days later (so only its earlier summary ties it to the issue).
    w.gitlab
        .create_with_iid(PROJECT, 10002, "Old summary", start + Duration::days(3));
    w.gitlab
        .create_with_iid(PROJECT, 10003, "Nightly export", start + minute);
    // Someone's UI issue took #10004 before the rule ran; the rule then failed with 409.
    w.gitlab.create_with_iid(
        PROJECT,
        10004,
        "Hotfix tracked only in GitLab",
        start - Duration::days(2),
    );
    w.gitlab
        .create_with_iid(PROJECT, 10005, "Dark mode", start + minute);
    w.clock.set(start + Duration::days(5));
    w.jira.rename(&renamed.key, "New summary");
    w.jira.transition(&reopened.key, "Done", "done");
    w.gitlab
        .close_by_hand_at(PROJECT, 10003, start + Duration::days(5));
    w.clock.set(start + Duration::days(9));
    w.jira
        .transition(&reopened.key, "Reopened", "indeterminate");
    w.jira.transition(&resolved.key, "Done", "done"); // the "Done" rule did not run
    let resolved_at = w
        .jira
        .issue(&resolved.key)
        .and_then(|i| i.resolved)
        .expect("resolved");
    w.clock.set(Utc::now());
    let fresh = w.jira.create_issue("VSA", "After the switch", "Task");

    // `check` counts what the first pass would adopt.
    let config = w.write_config().expect("config").display().to_string();
    let out = run_binary(vec!["check".into(), "--config".into(), config.clone()]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("4 issue(s) of the Automation recipe (iid 1000<number>) would be adopted; 1 recipe slot(s) hold other issues"),
        "{stdout}"
    );
    // A dry run names them and writes nothing.
    let writes = w.gitlab.writes();
    let out = run_binary(vec![
        "reconcile".into(),
        "--dry-run".into(),
        "--config".into(),
        config,
    ])
    .await;
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("adopt   VSA-1 → #10001 (created by the Automation recipe"),
        "{stdout}"
    );
    assert_eq!(w.gitlab.writes(), writes);

    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        (
            r.counts.adopted,
            r.counts.created,
            r.recipe.adopted,
            r.recipe.foreign
        ),
        (4, 2, 4, 1),
        "{}",
        r.summary()
    );
    assert_converged(&w, "VSA", PROJECT);
    assert_eq!(mirror_of(&w, PROJECT, &same.id).iid, 10001);
    let g = mirror_of(&w, PROJECT, &renamed.id);
    assert_eq!((g.iid, g.title.as_str()), (10002, "New summary"));
    let g = mirror_of(&w, PROJECT, &reopened.id);
    assert_eq!(
        (g.iid, g.state.as_str()),
        (10003, "opened"),
        "reopened as in Jira"
    );
    let g = mirror_of(&w, PROJECT, &resolved.id);
    assert_eq!((g.iid, g.state.as_str()), (10005, "closed"));
    assert_eq!(
        g.closed_at.map(|t| t.timestamp_millis()),
        Some(resolved_at.timestamp_millis()),
        "closed at Jira's resolution time"
    );
    // The UI issue is untouched; its Jira issue got a mirror of its own.
    let ui = w.gitlab.issue(PROJECT, 10004).expect("still there");
    assert_eq!(ui.title, "Hotfix tracked only in GitLab");
    assert!(ui.description.is_empty());
    assert_ne!(mirror_of(&w, PROJECT, &taken.id).iid, 10004);
    assert!(mirror_of(&w, PROJECT, &fresh.id).iid > 10005);

    let writes = w.gitlab.writes();
    let r = pass_ok(&w, PassKind::Full).await;
    assert_eq!(
        w.gitlab.writes(),
        writes,
        "nothing left to do: {}",
        r.summary()
    );
}

#[tokio::test]
async fn adoption_keeps_the_description_and_works_on_incremental_passes_too() {
    let w = world("recipe-incremental", |o| {
        o.mappings[0].seed_iid_prefix = Some("1000".into());
    })
    .await;
    let a = w.jira.create_issue("VSA", "First", "Task");
    pass_ok(&w, PassKind::Incremental).await;
    // The rules were still on for a moment: the recipe created VSA-2's issue, with text.
    w.clock.advance(MINUTE);
    let b = w.jira.create_issue("VSA", "Second", "Task");
    let iid = w
        .gitlab
        .create_with_iid(PROJECT, 10002, "Second", Utc::now());
    w.gitlab
        .describe_by_hand(PROJECT, iid, "Created by Jira Automation for VSA-2.");
    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        (r.kind, r.counts.adopted, r.counts.created),
        (PassKind::Incremental, 1, 0)
    );
    let g = mirror_of(&w, PROJECT, &b.id);
    assert_eq!(g.iid, 10002);
    assert!(
        g.description
            .starts_with("Created by Jira Automation for VSA-2.\n\n"),
        "{}",
        g.description
    );
    assert!(g.description.contains(&format!("/browse/{})", b.key)));
    assert_converged(&w, "VSA", PROJECT);
    assert_eq!(mirror_of(&w, PROJECT, &a.id).iid, 1);
}

/// A stop between adopting a recipe issue and retitling it saves the adoption but not the new
/// version: the next incremental pass still retitles it (a version saved as applied would make
/// that pass skip the issue until the nightly full resync).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_between_adopting_and_retitling_leaves_the_retitle_to_the_next_pass() {
    use jgr_sim::{Fault, Route};
    let w = world("recipe-stop", |o| {
        o.role = Role::Owner;
        o.mappings[0].seed_iid_prefix = Some("1000".into());
    })
    .await;
    w.jira.create_issue("VSA", "Already mirrored", "Task");
    pass_ok(&w, PassKind::Incremental).await; // a checkpoint, so the next polls are incremental
    let old = w.jira.create_issue("VSA", "Old summary", "Story");
    w.gitlab
        .create_with_iid(PROJECT, 10002, "Old summary", Utc::now());
    w.clock.advance(std::time::Duration::from_secs(300));
    w.jira.rename(&old.key, "New summary");

    // GitLab holds the adoption's edit; SIGTERM arrives while it is in flight, and the edit
    // is let through once the stop is in force.
    let gate = jgr_sim::Gate::new();
    w.gitlab.inject(Route::Update, Fault::Hold(gate.clone()), 1);
    let mut args = reconcile_args(&w);
    args.push("--full".into());
    let child = command(&args, &[])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let (code, stderr, _) = term_while_held(child, &gate, RECONCILE_STOPPING).await;
    assert_eq!(code, Some(3), "a stopped pass exits 3: {stderr}");
    assert_eq!(gate.passed(), 1, "the edit in flight completed");
    let title = |w: &jgr_sim::world::SimWorld| {
        w.gitlab
            .issues(PROJECT)
            .into_iter()
            .find(|i| i.iid == 10002)
            .map(|i| i.title)
    };
    assert_eq!(
        title(&w).as_deref(),
        Some("Old summary"),
        "stopped before the retitle"
    );

    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(title(&w).as_deref(), Some("New summary"));
    assert_converged(&w, "VSA", PROJECT);
}

/// The recipe ran out of Automation runs, so slot #10001 was free, and someone created an
/// issue of their own there in the GitLab UI ten minutes after VSA-1. Created within the hour
/// is no evidence: its title was never VSA-1's summary, so it is left alone (not retitled, no
/// marker) and VSA-1 gets a mirror of its own.
#[tokio::test]
async fn a_persons_issue_in_a_free_recipe_slot_is_never_adopted() {
    let w = world("recipe-person", |o| {
        o.mappings[0].seed_iid_prefix = Some("1000".into());
    })
    .await;
    let start = Utc::now() - Duration::days(2);
    w.clock.set(start);
    let vsa1 = w.jira.create_issue("VSA", "Checkout fails", "Story");
    w.gitlab.create_with_iid(
        PROJECT,
        10001,
        "Spike: payment retries",
        start + Duration::minutes(10),
    );
    w.clock.set(Utc::now());
    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        (r.counts.adopted, r.counts.created, r.recipe.foreign),
        (0, 1, 1),
        "{}",
        r.summary()
    );
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("#10001") && n.contains("left alone")),
        "{:?}",
        r.notes
    );
    let theirs = w.gitlab.issue(PROJECT, 10001).expect("still there");
    assert_eq!(theirs.title, "Spike: payment retries");
    assert!(theirs.description.is_empty(), "{}", theirs.description);
    assert_ne!(mirror_of(&w, PROJECT, &vsa1.id).iid, 10001);
    assert_converged(&w, "VSA", PROJECT);
}

/// An adopted recipe issue keeps its text (which names the key it had) when the Jira issue's
/// key changes later: only the link and marker are replaced.
#[tokio::test]
async fn an_adopted_recipe_issue_keeps_its_text_when_the_key_changes() {
    use jgr_sim::world::SimMapping;
    let w = world("recipe-rekey", |o| {
        o.mappings = vec![
            SimMapping::new("VSA", PROJECT),
            SimMapping::new("OPS", PROJECT),
        ];
        o.mappings[0].seed_iid_prefix = Some("1000".into());
    })
    .await;
    let r = w.jira.create_issue("VSA", "Nightly export", "Task");
    let iid = w
        .gitlab
        .create_with_iid(PROJECT, 10001, "Nightly export", Utc::now());
    let text = "Created by Jira Automation for VSA-1.";
    w.gitlab.describe_by_hand(PROJECT, iid, text);
    let reports = pass(&w, PassKind::Incremental).await;
    assert!(reports.iter().all(|r| r.ok()), "{reports:?}");
    assert_eq!(mirror_of(&w, PROJECT, &r.id).iid, 10001, "adopted");

    w.clock.advance(MINUTE);
    let moved = w.jira.move_issue(&r.key, "OPS");
    let reports = pass(&w, PassKind::Incremental).await;
    assert!(reports.iter().all(|r| r.ok()), "{reports:?}");
    let g = mirror_of(&w, PROJECT, &r.id);
    assert_eq!(g.iid, 10001);
    assert!(
        g.description.starts_with(&format!("{text}\n\n")),
        "the recipe's text is kept: {}",
        g.description
    );
    assert!(
        g.description.contains(&format!("[{}](", moved.key)) && !g.description.contains("[VSA-1]("),
        "{}",
        g.description
    );
    assert_eq!(
        g.description.matches("jira-id=").count(),
        1,
        "{}",
        g.description
    );
}

/// A recipe slot whose issue carries a marker lookalike (`jira-id=abc`, someone else's text or
/// tool) is left alone and said once; it is not adopted, and passes do not fail on it.
#[tokio::test]
async fn a_marker_lookalike_in_a_recipe_slot_is_left_alone_and_said_once() {
    let w = world("recipe-lookalike", |o| {
        o.mappings[0].seed_iid_prefix = Some("1000".into());
    })
    .await;
    let r = w.jira.create_issue("VSA", "Same title", "Task");
    let iid = w
        .gitlab
        .create_with_iid(PROJECT, 10001, "Same title", Utc::now());
    let lookalike = "<!-- jira-gitlab-reconciler:jira-id=abc -->";
    w.gitlab.describe_by_hand(PROJECT, iid, lookalike);
    let first = pass_ok(&w, PassKind::Incremental).await;
    assert!(
        first
            .notes
            .iter()
            .any(|n| n.contains("#10001") && n.contains("not this program's")),
        "{:?}",
        first.notes
    );
    w.clock.advance(MINUTE);
    w.jira.rename(&r.key, "Same title, renamed");
    let second = pass_ok(&w, PassKind::Incremental).await;
    assert!(second.notes.is_empty(), "said once: {:?}", second.notes);
    let slot = w.gitlab.issue(PROJECT, 10001).expect("there");
    assert_eq!(
        (slot.title.as_str(), slot.description.as_str()),
        ("Same title", lookalike),
        "untouched"
    );
    // (assert_converged would count the lookalike as a mirror.)
    let mirror = mirror_of(&w, PROJECT, &r.id);
    assert_ne!(mirror.iid, 10001);
    assert_eq!(mirror.title, "Same title, renamed");
    assert_eq!(w.gitlab.issue_count(PROJECT), 2);
}
