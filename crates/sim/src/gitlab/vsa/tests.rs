//! The `Issue::Metrics` stamps and commit references.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::json;

use super::super::testkit::{Kit, OWNER, PROJECT, REPORTER};
use super::super::Tier;
use super::{references, SimCommit};

const MINUTE: Duration = Duration::from_secs(60);

fn at(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, h, 0, 0)
        .single()
        .expect("valid time")
}

async fn edit(kit: &Kit, iid: u64, body: serde_json::Value) {
    let (status, issue) = kit
        .put(&format!("/projects/4/issues/{iid}"), REPORTER, body)
        .await;
    assert_eq!(status, StatusCode::OK, "{issue}");
}

#[tokio::test]
async fn a_board_stamp_needs_the_list_before_the_save_and_uses_gitlabs_clock() {
    let kit = Kit::new(Tier::Free).await;
    let clock = kit.gl.clock();
    let iid = kit
        .issue(json!({"title": "t", "labels": "In Progress"}))
        .await;
    let board = kit.gl.add_board_by_hand(PROJECT, "Jira workflow");
    kit.gl.add_board_list_by_hand(board, "In Progress");
    let stamps = kit.gl.vsa_stamps(PROJECT, iid).expect("issue");
    assert_eq!(
        stamps.first_added_to_board_at, None,
        "a new list stamps nothing by itself"
    );

    clock.advance(MINUTE);
    // Any save re-checks, and an Owner's `updated_at` does not set the stamp.
    let (status, _) = kit
        .put(
            &format!("/projects/4/issues/{iid}"),
            OWNER,
            json!({"title": "t2", "updated_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let stamped = kit
        .gl
        .vsa_stamps(PROJECT, iid)
        .expect("issue")
        .first_added_to_board_at;
    let now = clock.now();
    assert!(
        stamped.is_some_and(|t| (now - t).num_seconds().abs() < 5),
        "{stamped:?} vs {now}"
    );

    clock.advance(MINUTE);
    edit(&kit, iid, json!({"remove_labels": "In Progress"})).await;
    edit(&kit, iid, json!({"add_labels": "In Progress"})).await;
    let again = kit
        .gl
        .vsa_stamps(PROJECT, iid)
        .expect("issue")
        .first_added_to_board_at;
    assert_eq!(again, stamped, "set once");

    // A label created with its list already there stamps at creation.
    let fresh = kit
        .issue(json!({"title": "u", "labels": "In Progress"}))
        .await;
    assert!(kit
        .gl
        .vsa_stamps(PROJECT, fresh)
        .expect("issue")
        .first_added_to_board_at
        .is_some());
    // A label without a list does not.
    let other = kit
        .issue(json!({"title": "v", "labels": "elsewhere"}))
        .await;
    assert_eq!(
        kit.gl
            .vsa_stamps(PROJECT, other)
            .expect("issue")
            .issue_stage_end(),
        None
    );
}

#[tokio::test]
async fn the_milestone_stamp_wins_over_the_board_stamp() {
    let kit = Kit::new(Tier::Free).await;
    let clock = kit.gl.clock();
    let board = kit.gl.add_board_by_hand(PROJECT, "b");
    kit.gl.add_board_list_by_hand(board, "doing");
    let m = kit.gl.add_milestone(PROJECT, "1.0", None, None);
    kit.gl.close_milestone_by_hand(m, true);
    let iid = kit.issue(json!({"title": "t"})).await;
    kit.gl.label_by_hand(PROJECT, iid, &["doing"], &[]);
    let board_at = kit
        .gl
        .vsa_stamps(PROJECT, iid)
        .expect("issue")
        .first_added_to_board_at;
    assert!(board_at.is_some(), "a UI label change is a save too");
    clock.advance(MINUTE * 60);
    edit(&kit, iid, json!({"milestone_id": m})).await;
    let stamps = kit.gl.vsa_stamps(PROJECT, iid).expect("issue");
    let milestone_at = stamps.first_associated_with_milestone_at;
    assert!(milestone_at > board_at, "a closed milestone stamps too");
    assert_eq!(
        stamps.issue_stage_end(),
        milestone_at,
        "COALESCE(milestone, board)"
    );
    edit(&kit, iid, json!({"milestone_id": 0})).await;
    edit(&kit, iid, json!({"milestone_id": m})).await;
    assert_eq!(
        kit.gl
            .vsa_stamps(PROJECT, iid)
            .expect("issue")
            .first_associated_with_milestone_at,
        milestone_at
    );
}

#[tokio::test]
async fn commit_mentions_stamp_the_committed_date_and_only_move_it_earlier() {
    let kit = Kit::new(Tier::Free).await;
    kit.gl.add_project("acme/app");
    let iid = kit.issue(json!({"title": "t"})).await;
    let before = kit.gl.issue(PROJECT, iid).expect("issue").updated_at;
    kit.gl.clock().advance(MINUTE);
    let sha = kit.gl.push_commit(
        "acme/app",
        "feature/vsa-1",
        "Add x\n\nRefs: acme/platform#1",
        at(12),
    );
    let stamps = kit.gl.vsa_stamps(PROJECT, iid).expect("issue");
    assert_eq!(stamps.first_mentioned_in_commit_at, Some(at(12)));
    assert_eq!(stamps.mentioned_in, std::slice::from_ref(&sha));
    assert_eq!(sha.len(), 40);
    let touched = kit.gl.issue(PROJECT, iid).expect("issue").updated_at;
    assert!(
        touched > before,
        "the \"mentioned in commit\" note touches the issue"
    );
    kit.gl.push_commit(PROJECT, "main", "fix it (#1)", at(9));
    kit.gl.push_commit(PROJECT, "main", "later #1", at(15));
    let stamps = kit.gl.vsa_stamps(PROJECT, iid).expect("issue");
    assert_eq!(
        stamps.first_mentioned_in_commit_at,
        Some(at(9)),
        "only earlier"
    );
    assert_eq!(stamps.mentioned_in.len(), 3);
    // Not references: another project's short name, a number glued to a word.
    kit.gl
        .push_commit(PROJECT, "main", "platform2#1 and #1a and PR#1", at(1));
    assert_eq!(
        kit.gl
            .vsa_stamps(PROJECT, iid)
            .expect("issue")
            .first_mentioned_in_commit_at,
        Some(at(9))
    );
    assert_eq!(
        kit.gl.issue(PROJECT, iid).expect("issue").state,
        "opened",
        "Refs never closes"
    );
}

#[tokio::test]
async fn only_the_newest_hundred_commits_count_and_closing_needs_the_default_branch() {
    let kit = Kit::new(Tier::Free).await;
    let old = kit.issue(json!({"title": "old"})).await;
    let new = kit.issue(json!({"title": "new"})).await;
    let mut commits = vec![SimCommit::new(&format!("mentions #{old}"), at(1))];
    commits.extend((0..100).map(|i| SimCommit::new(&format!("c{i} #{new}"), at(2))));
    let shas = kit.gl.push(PROJECT, "feature", &commits);
    assert_eq!(shas.len(), 101);
    assert_eq!(
        kit.gl
            .vsa_stamps(PROJECT, old)
            .expect("issue")
            .first_mentioned_in_commit_at,
        None
    );
    assert_eq!(
        kit.gl
            .vsa_stamps(PROJECT, new)
            .expect("issue")
            .mentioned_in
            .len(),
        100
    );

    kit.gl
        .push_commit(PROJECT, "feature", &format!("Closes #{old}"), at(3));
    assert_eq!(kit.gl.issue(PROJECT, old).expect("issue").state, "opened");
    let url = format!("{}/acme/platform/-/issues/{old}", kit.gl.url());
    kit.gl
        .push_commit(PROJECT, "main", &format!("Fixes: {url}"), at(4));
    assert_eq!(kit.gl.issue(PROJECT, old).expect("issue").state, "closed");
}

#[test]
fn references_cover_short_full_sibling_and_url_forms() {
    let refs = references(
        "Closes #3, see acme/other#4 and lib#5.\nhttp://gl/acme/x/-/issues/6 x#7y fixes issue #8",
        "acme/platform",
        "http://gl",
    );
    let found: Vec<(&str, u64, bool)> = refs
        .iter()
        .map(|r| (r.project.as_str(), r.iid, r.closing))
        .collect();
    assert_eq!(
        found,
        [
            ("acme/platform", 3, true),
            ("acme/other", 4, false),
            ("acme/lib", 5, false),
            ("acme/platform", 8, true),
            ("acme/x", 6, false),
        ]
    );
}
