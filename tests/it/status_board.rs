//! The status board (`status_board`): a GitLab issue board with a list per Jira status of the
//! "In Progress" category, there before any mirror gets such a label, so GitLab's Issue stage
//! (Free included) ends when work starts in Jira; a person's board and lists are left alone.

use jgr_sim::gitlab::Role;
use jira_gitlab_reconciler::domain::PassKind;

use crate::harness::*;

const BOARD: &str = "Jira workflow";
const WORKFLOW: [(&str, &str); 4] = [
    ("To Do", "new"),
    ("In Progress", "indeterminate"),
    ("In Review", "indeterminate"),
    ("Done", "done"),
];

async fn board_world(name: &str, role: Role) -> jgr_sim::world::SimWorld {
    let w = world(name, |o| {
        o.role = role;
        o.mappings[0].status_labels = Some("jira-status".into());
        o.mappings[0].extra_config = format!("status_board = \"{BOARD}\"\n");
    })
    .await;
    w.jira_workflow(&WORKFLOW);
    w
}

fn lists(w: &jgr_sim::world::SimWorld) -> Vec<Vec<String>> {
    let boards = w.gitlab.boards(PROJECT);
    boards.into_iter().map(|b| b.lists).collect()
}

#[tokio::test]
async fn the_lists_exist_before_the_first_label_so_the_issue_stage_ends_when_work_starts() {
    let w = board_world("status-board", Role::Reporter).await;
    let waiting = w.jira.create_issue("VSA", "Waiting", "Story");
    let started = w.jira.create_issue("VSA", "Started", "Story");
    w.jira
        .transition(&started.key, "In Progress", "indeterminate");
    pass_ok(&w, PassKind::Incremental).await;
    let boards = w.gitlab.boards(PROJECT);
    assert_eq!(boards.len(), 1);
    assert_eq!(boards[0].name, BOARD);
    assert_eq!(
        boards[0].lists,
        ["jira-status::In Progress", "jira-status::In Review"]
    );
    // GitLab stamps "first added to a board" only when the list is there as the label comes.
    let stamps = |id: &str| w.gitlab.vsa_stamps(PROJECT, mirror_of(&w, PROJECT, id).iid);
    let first = stamps(&started.id).and_then(|s| s.first_added_to_board_at);
    assert!(first.is_some(), "the started issue's Issue stage ended");
    assert_eq!(
        stamps(&waiting.id).and_then(|s| s.first_added_to_board_at),
        None
    );

    w.clock.advance(MINUTE * 5);
    w.jira
        .transition(&waiting.key, "In Review", "indeterminate");
    pass_ok(&w, PassKind::Incremental).await;
    let now = stamps(&waiting.id).and_then(|s| s.first_added_to_board_at);
    assert!(
        now.is_some() && now > first,
        "stamped when it moved: {now:?}"
    );

    // Idle: an incremental pass is one Jira search and no GitLab request; a full pass reads
    // the workflow and the board again and writes nothing.
    let (jira, gitlab, writes) = (w.jira.requests(), w.gitlab.requests(), w.gitlab.writes());
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        (w.jira.requests() - jira, w.gitlab.requests() - gitlab),
        (1, 0)
    );
    pass_ok(&w, PassKind::Full).await;
    assert_eq!(
        w.gitlab.writes(),
        writes,
        "an idle full pass writes nothing"
    );
    assert_eq!(w.gitlab.boards(PROJECT).len(), 1, "never a second board");
}

#[tokio::test]
async fn a_persons_board_of_that_name_is_adopted_and_their_lists_stay() {
    let w = board_world("status-board-adopt", Role::Reporter).await;
    let theirs = w.gitlab.add_board_by_hand(PROJECT, BOARD);
    w.gitlab.add_board_list_by_hand(theirs, "triage");
    let other = w.gitlab.add_board_by_hand(PROJECT, "Sprint");
    w.gitlab
        .add_board_list_by_hand(other, "jira-status::In Progress");
    w.jira.create_issue("VSA", "One", "Story");
    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        lists(&w),
        [
            vec![
                "triage",
                "jira-status::In Progress",
                "jira-status::In Review"
            ],
            vec!["jira-status::In Progress"],
        ]
    );
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("already has lists that are not ours (triage)")),
        "{:?}",
        r.notes
    );

    // A list of ours removed by hand comes back at the next full pass, not before; theirs
    // stays where it is.
    w.gitlab
        .remove_board_list_by_hand(theirs, "jira-status::In Progress");
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(lists(&w)[0], ["triage", "jira-status::In Review"]);
    let r = pass_ok(&w, PassKind::Full).await;
    assert_eq!(
        lists(&w)[0],
        [
            "triage",
            "jira-status::In Review",
            "jira-status::In Progress"
        ]
    );
    assert!(r.notes.is_empty(), "said once: {:?}", r.notes);
}

#[tokio::test]
async fn a_status_new_to_the_workflow_gets_its_list_before_an_issue_gets_its_label() {
    let w = board_world("status-board-new-status", Role::Reporter).await;
    let a = w.jira.create_issue("VSA", "One", "Story");
    pass_ok(&w, PassKind::Full).await;
    let mut workflow = WORKFLOW.to_vec();
    workflow.insert(2, ("Blocked", "indeterminate"));
    w.jira.set_workflow("VSA", &workflow);
    w.jira.transition(&a.key, "Blocked", "indeterminate");
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(
        lists(&w),
        [vec![
            "jira-status::In Progress",
            "jira-status::In Review",
            "jira-status::Blocked"
        ]]
    );
    let iid = mirror_of(&w, PROJECT, &a.id).iid;
    let stamped = w
        .gitlab
        .vsa_stamps(PROJECT, iid)
        .and_then(|s| s.first_added_to_board_at);
    assert!(stamped.is_some(), "the list came before the label");
}

#[tokio::test]
async fn dry_run_and_check_say_what_the_board_needs_and_write_nothing() {
    let w = board_world("status-board-dry", Role::Reporter).await;
    let theirs = w.gitlab.add_board_by_hand(PROJECT, BOARD);
    w.gitlab.add_board_list_by_hand(theirs, "triage");
    w.jira.create_issue("VSA", "One", "Story");
    let mut args = reconcile_args(&w);
    args.push("--dry-run".into());
    let out = run_binary(args).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    for line in [
        format!("  board   keep \"{BOARD}\" (board {theirs})"),
        "  label   create jira-status::In Progress".to_string(),
        format!("  list    add jira-status::In Review to \"{BOARD}\""),
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line:?} in:\n{stdout}");
    }
    assert_eq!(w.gitlab.writes(), 0);

    let config = w.write_config().expect("config").display().to_string();
    let out = run_binary(vec!["check".into(), "--config".into(), config]).await;
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains(&format!(
            "status board \"{BOARD}\" (board {theirs}) will get the lists it lacks"
        )) && stdout.contains("is taken by board")
            && stdout.contains("(triage)"),
        "{stdout}"
    );
    assert_eq!(w.gitlab.writes(), 0);
}

#[tokio::test]
async fn a_guest_token_is_told_it_cannot_keep_the_board() {
    let w = board_world("status-board-guest", Role::Guest).await;
    w.jira.create_issue("VSA", "One", "Story");
    let r = pass(&w, PassKind::Incremental).await.remove(0);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("may not manage boards and labels")
                && n.contains("give it the Planner role or higher")),
        "{:?}",
        r.notes
    );
    assert!(w.gitlab.boards(PROJECT).is_empty());
    let config = w.write_config().expect("config").display().to_string();
    let out = run_binary(vec!["check".into(), "--config".into(), config]).await;
    let (stdout, _) = text(&out);
    assert!(
        stdout.lines().any(
            |l| l.starts_with("PROBLEM VSA->acme/platform: status board")
                && l.contains("may not create boards, lists or labels")
        ),
        "{stdout}"
    );
}

/// A Jira whose workflows list ever more statuses (issue 15: servers cannot make a pass big)
/// does not have a label and a board list made for each: past 1,000 distinct statuses the
/// board is not checked, said in a note naming the bound, and GitLab gets no write for it.
#[tokio::test]
async fn a_workflow_of_more_statuses_than_the_bound_makes_no_lists() {
    let w = board_world("status-board-too-many", Role::Reporter).await;
    let names: Vec<String> = (0..1_500).map(|i| format!("Step {i}")).collect();
    let mut workflow: Vec<(&str, &str)> = vec![("To Do", "new")];
    workflow.extend(names.iter().map(|n| (n.as_str(), "indeterminate")));
    workflow.push(("Done", "done"));
    w.jira.set_workflow("VSA", &workflow);
    let a = w.jira.create_issue("VSA", "One", "Story");
    w.jira.transition(&a.key, "Step 3", "indeterminate");
    let r = pass(&w, PassKind::Incremental).await.remove(0);
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("not checked") && n.contains("more than 1000 statuses")),
        "{:?}",
        r.notes
    );
    let lists: usize = lists(&w).iter().map(Vec::len).sum();
    assert_eq!(lists, 0, "no list made from a hostile workflow");
}

#[tokio::test]
async fn a_pass_that_read_the_board_does_not_list_the_projects_labels_again() {
    let w = board_world("status-board-labels-once", Role::Reporter).await;
    // The board and its lists (and so their labels) exist: the pass writes no board part, and
    // the labels it adds need only the listing the board's look made.
    let board = w.gitlab.add_board_by_hand(PROJECT, BOARD);
    w.gitlab
        .add_board_list_by_hand(board, "jira-status::In Progress");
    w.gitlab
        .add_board_list_by_hand(board, "jira-status::In Review");
    let started = w.jira.create_issue("VSA", "Started", "Story");
    w.jira
        .transition(&started.key, "In Progress", "indeterminate");
    w.gitlab.record_arrivals();
    pass_ok(&w, PassKind::Incremental).await;
    let listings = w
        .gitlab
        .arrivals()
        .into_iter()
        .filter(|(_, what)| what.starts_with("GET") && what.ends_with("/labels"))
        .count();
    assert_eq!(listings, 1, "the project's labels are listed once a pass");
    let labels = mirror_of(&w, PROJECT, &started.id).labels;
    assert!(
        labels.iter().any(|l| l == "jira-status::In Progress"),
        "{labels:?}"
    );
}
