//! Assignees, milestone and due date on issue create and edit, over HTTP.

use chrono::NaiveDate;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::super::testkit::{Kit, GUEST, OWNER, PLANNER, PROJECT, REPORTER};
use super::super::{Role, Tier, Visibility};

fn assignees(issue: &Value) -> Vec<&str> {
    let list = issue["assignees"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    list.iter().filter_map(|u| u["username"].as_str()).collect()
}

async fn edit(kit: &Kit, token: &str, iid: u64, body: Value) -> Value {
    let (status, issue) = kit
        .put(&format!("/projects/4/issues/{iid}"), token, body)
        .await;
    assert_eq!(status, StatusCode::OK, "{issue}");
    issue
}

/// alice and bob are developers of the project; carol is no member.
fn people(kit: &Kit) -> (u64, u64, u64) {
    let alice = kit
        .gl
        .add_person("alice", "Alice", "alice@example.com", true);
    let bob = kit.gl.add_person("bob", "Bob", "bob@example.com", true);
    let carol = kit
        .gl
        .add_person("carol", "Carol", "carol@example.com", true);
    kit.gl.grant(PROJECT, "alice", Role::Developer);
    kit.gl.grant(PROJECT, "bob", Role::Developer);
    (alice, bob, carol)
}

#[tokio::test]
async fn free_keeps_only_the_first_assignee_and_premium_keeps_all() {
    for (tier, expected) in [
        (Tier::Free, vec!["bob"]),
        (Tier::Premium, vec!["bob", "alice"]),
    ] {
        let kit = Kit::new(tier).await;
        let (alice, bob, _) = people(&kit);
        let iid = kit
            .issue(json!({"title": "t", "assignee_ids": [bob, alice]}))
            .await;
        let (_, issue) = kit.get(&format!("/projects/4/issues/{iid}"), OWNER).await;
        assert_eq!(assignees(&issue), expected, "{tier:?}");
        assert_eq!(issue["assignee"]["username"], "bob");
        let meta = kit.gl.issue_metadata(PROJECT, iid).expect("issue");
        assert_eq!(meta.assignees, expected);
    }
}

#[tokio::test]
async fn assignees_who_cannot_read_the_issue_are_dropped_and_all_dropped_keeps_the_old_one() {
    let kit = Kit::new(Tier::Premium).await;
    let (alice, bob, carol) = people(&kit);
    let iid = kit
        .issue(json!({"title": "t", "assignee_ids": [alice]}))
        .await;
    // carol cannot read a private project: dropped, bob kept.
    let issue = edit(&kit, REPORTER, iid, json!({"assignee_ids": [carol, bob]})).await;
    assert_eq!(assignees(&issue), ["bob"]);
    // Only carol: every id dropped, so bob stays (not "unassigned").
    let issue = edit(&kit, REPORTER, iid, json!({"assignee_ids": [carol, 4242]})).await;
    assert_eq!(assignees(&issue), ["bob"]);
    kit.gl.block_user("bob");
    // A comma string works like a list.
    let issue = edit(
        &kit,
        REPORTER,
        iid,
        json!({"assignee_ids": format!("{alice},{bob}")}),
    )
    .await;
    assert_eq!(assignees(&issue), ["alice"], "a blocked user is dropped");
    for unassign in [
        json!({"assignee_ids": []}),
        json!({"assignee_ids": [0]}),
        json!({"assignee_id": 0}),
        json!({"assignee_ids": null}),
    ] {
        edit(&kit, REPORTER, iid, json!({"assignee_ids": [alice]})).await;
        let issue = edit(&kit, REPORTER, iid, unassign.clone()).await;
        assert_eq!(assignees(&issue), Vec::<&str>::new(), "{unassign}");
        assert_eq!(issue["assignee"], Value::Null);
    }
    // In a public project anyone may read the issue, so carol is accepted.
    kit.gl.set_visibility(PROJECT, Visibility::Public);
    let issue = edit(&kit, REPORTER, iid, json!({"assignee_id": carol})).await;
    assert_eq!(assignees(&issue), ["carol"]);
    let (status, body) = kit
        .put(
            &format!("/projects/4/issues/{iid}"),
            REPORTER,
            json!({"assignee_ids": ["x"]}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "assignee_ids is invalid"})
        )
    );
}

#[tokio::test]
async fn below_planner_metadata_is_ignored_on_edit_but_any_member_sets_it_on_create() {
    let kit = Kit::new(Tier::Free).await;
    let (alice, bob, _) = people(&kit);
    let m = kit.gl.add_milestone(PROJECT, "v1", None, None);
    kit.gl.add_group_milestone("acme", "v2", None, None);
    let known = kit
        .issue(json!({"title": "makes label", "labels": "known"}))
        .await;
    let (status, made) = kit
        .post(
            "/projects/4/issues",
            GUEST,
            json!({"title": "g", "labels": "known,unknown", "assignee_ids": [alice],
                   "milestone_id": m, "due_date": "2025-05-01"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    // Kept, except the label only Planner and up may create.
    assert_eq!(made["labels"], json!(["known"]));
    assert_eq!(assignees(&made), ["alice"]);
    assert_eq!(made["milestone"]["title"], "v1");
    assert_eq!(made["due_date"], "2025-05-01");
    let iid = made["iid"].as_u64().expect("iid");
    let (status, unchanged) = kit
        .put(
            &format!("/projects/4/issues/{iid}"),
            GUEST,
            json!({"assignee_ids": [bob], "milestone_id": 0, "due_date": "", "labels": "", "title": "g2"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "a silent ignore, not a 403");
    assert_eq!(unchanged["title"], "g2");
    assert_eq!(assignees(&unchanged), ["alice"]);
    assert_eq!(unchanged["milestone"]["title"], "v1");
    assert_eq!(
        (unchanged["due_date"].clone(), unchanged["labels"].clone()),
        (json!("2025-05-01"), json!(["known"]))
    );
    let changed = edit(
        &kit,
        PLANNER,
        iid,
        json!({"assignee_ids": [bob], "due_date": "2025-06-30"}),
    )
    .await;
    assert_eq!(
        (assignees(&changed), changed["due_date"].clone()),
        (vec!["bob"], json!("2025-06-30"))
    );
    let _ = known;
}

#[tokio::test]
async fn milestones_outside_the_project_and_its_groups_are_ignored_and_due_dates_clear() {
    let kit = Kit::new(Tier::Free).await;
    kit.gl.add_project("other/place");
    let mine = kit.gl.add_milestone(PROJECT, "v1", None, None);
    let group = kit.gl.add_group_milestone("acme", "q3", None, None);
    let foreign = kit.gl.add_milestone("other/place", "elsewhere", None, None);
    let closed = kit.gl.add_milestone(PROJECT, "old", None, None);
    kit.gl.close_milestone_by_hand(closed, true);
    let iid = kit.issue(json!({"title": "t", "milestone_id": mine})).await;

    let issue = edit(&kit, REPORTER, iid, json!({"milestone_id": foreign})).await;
    assert_eq!(issue["milestone"]["id"], mine, "silently ignored");
    let issue = edit(&kit, REPORTER, iid, json!({"milestone_id": group})).await;
    assert_eq!(
        (
            issue["milestone"]["title"].clone(),
            issue["milestone"]["group_id"].is_u64()
        ),
        (json!("q3"), true)
    );
    let issue = edit(&kit, REPORTER, iid, json!({"milestone_id": closed})).await;
    assert_eq!(
        issue["milestone"]["state"], "closed",
        "a closed milestone may be given"
    );
    for none in [json!(0), json!(""), Value::Null] {
        edit(&kit, REPORTER, iid, json!({"milestone_id": mine})).await;
        let issue = edit(&kit, REPORTER, iid, json!({"milestone_id": none})).await;
        assert_eq!(issue["milestone"], Value::Null, "{none}");
    }
    let (status, _) = kit
        .put(
            &format!("/projects/4/issues/{iid}"),
            REPORTER,
            json!({"milestone_id": "v1"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let issue = edit(&kit, REPORTER, iid, json!({"due_date": "2025-02-28"})).await;
    assert_eq!(issue["due_date"], "2025-02-28");
    let issue = edit(&kit, REPORTER, iid, json!({"due_date": "next tuesday"})).await;
    assert_eq!(issue["due_date"], Value::Null, "Rails casts junk to nil");
    let meta = kit.gl.issue_metadata(PROJECT, iid).expect("issue");
    assert_eq!(meta.due_date, None);
    kit.gl
        .set_due_date_by_hand(PROJECT, iid, NaiveDate::from_ymd_opt(2025, 3, 1));
    let issue = edit(&kit, REPORTER, iid, json!({"due_date": null})).await;
    assert_eq!(issue["due_date"], Value::Null);
}

#[tokio::test]
async fn a_metadata_change_moves_updated_at_and_a_repeat_does_not() {
    let kit = Kit::new(Tier::Free).await;
    let (alice, _, _) = people(&kit);
    let iid = kit.issue(json!({"title": "t"})).await;
    let clock = kit.gl.clock();
    clock.advance(std::time::Duration::from_secs(60));
    let first = edit(&kit, REPORTER, iid, json!({"assignee_ids": [alice]})).await;
    clock.advance(std::time::Duration::from_secs(60));
    let again = edit(&kit, REPORTER, iid, json!({"assignee_ids": [alice]})).await;
    assert_ne!(first["updated_at"], first["created_at"]);
    assert_eq!(first["updated_at"], again["updated_at"]);
}
