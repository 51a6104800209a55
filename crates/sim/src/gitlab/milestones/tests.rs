//! Project and group milestones over HTTP.

use chrono::NaiveDate;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::super::testkit::{Kit, GUEST, PLANNER, PROJECT, REPORTER};
use super::super::{Role, Tier};

fn titles(body: &Value) -> Vec<&str> {
    let list = body.as_array().map(Vec::as_slice).unwrap_or_default();
    list.iter().filter_map(|m| m["title"].as_str()).collect()
}

fn day(m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2025, m, d)
}

#[tokio::test]
async fn create_list_filter_and_close_project_milestones() {
    let kit = Kit::new(Tier::Free).await;
    let (status, made) = kit
        .post(
            "/projects/4/milestones",
            PLANNER,
            json!({"title": "1.0", "description": "Version", "start_date": "2025-01-06", "due_date": "2025-01-20"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(
        (
            made["iid"].clone(),
            made["project_id"].clone(),
            made["state"].clone()
        ),
        (json!(1), json!(4), json!("active"))
    );
    assert_eq!(
        (made["start_date"].clone(), made["due_date"].clone()),
        (json!("2025-01-06"), json!("2025-01-20"))
    );
    assert!(made["web_url"]
        .as_str()
        .unwrap_or("")
        .ends_with("/acme/platform/-/milestones/1"));
    let id = made["id"].as_u64().expect("id");
    kit.gl.add_milestone(PROJECT, "2.0", None, day(3, 1));
    kit.gl.add_group_milestone("acme", "Q1", None, day(2, 1));

    let (_, all) = kit.get("/projects/4/milestones", REPORTER).await;
    assert_eq!(
        titles(&all),
        ["1.0", "2.0"],
        "ordered by due date; the group's not included"
    );
    let (_, with_groups) = kit
        .get("/projects/4/milestones?include_ancestors=true", REPORTER)
        .await;
    assert_eq!(titles(&with_groups), ["1.0", "Q1", "2.0"]);
    let (_, by_title) = kit.get("/projects/4/milestones?title=2.0", REPORTER).await;
    assert_eq!(titles(&by_title), ["2.0"]);
    let (_, search) = kit
        .get("/projects/4/milestones?search=VERS", REPORTER)
        .await;
    assert_eq!(titles(&search), ["1.0"], "search reads descriptions");
    let (_, by_iid) = kit.get("/projects/4/milestones?iids[]=2", REPORTER).await;
    assert_eq!(titles(&by_iid), ["2.0"]);

    let (status, closed) = kit
        .put(
            &format!("/projects/4/milestones/{id}"),
            PLANNER,
            json!({"state_event": "close"}),
        )
        .await;
    assert_eq!(
        (status, closed["state"].clone()),
        (StatusCode::OK, json!("closed"))
    );
    let (_, active) = kit
        .get("/projects/4/milestones?state=active", REPORTER)
        .await;
    assert_eq!(titles(&active), ["2.0"]);
    let (_, reopened) = kit
        .put(
            &format!("/projects/4/milestones/{id}"),
            PLANNER,
            json!({"state_event": "activate"}),
        )
        .await;
    assert_eq!(reopened["state"], "active");
    let (status, body) = kit
        .put(
            &format!("/projects/4/milestones/{id}"),
            PLANNER,
            json!({"state_event": "shut"}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "state_event does not have a valid value"})
        )
    );
    let (status, _) = kit
        .put(&format!("/projects/4/milestones/{id}"), PLANNER, json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = kit.get("/projects/4/milestones?state=open", REPORTER).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(kit.gl.milestones(PROJECT).len(), 2);
}

#[tokio::test]
async fn titles_are_unique_across_the_project_and_its_groups() {
    let kit = Kit::new(Tier::Free).await;
    kit.gl.add_project("acme/other");
    kit.gl.add_group_milestone("acme", "Sprint 1", None, None);
    kit.gl.add_milestone("acme/other", "2.0", None, None);
    let taken = json!({"message": {"title": ["already being used for another group or project milestone."]}});
    let (status, body) = kit
        .post(
            "/projects/4/milestones",
            PLANNER,
            json!({"title": "Sprint 1"}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, taken.clone()));
    // Another project's title is free here...
    let (status, _) = kit
        .post("/projects/4/milestones", PLANNER, json!({"title": "2.0"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // ...but a group milestone may not take a title one of its projects uses.
    kit.gl.grant_group("acme", "pia", Role::Planner);
    let (status, body) = kit
        .post("/groups/acme/milestones", PLANNER, json!({"title": "2.0"}))
        .await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, taken.clone()));
    // Renaming into a taken title is refused too.
    let (_, three) = kit
        .post("/projects/4/milestones", PLANNER, json!({"title": "3.0"}))
        .await;
    let id = three["id"].as_u64().expect("id");
    let (status, body) = kit
        .put(
            &format!("/projects/4/milestones/{id}"),
            PLANNER,
            json!({"title": "2.0"}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, taken));
    let (status, _) = kit
        .put(
            &format!("/projects/4/milestones/{id}"),
            PLANNER,
            json!({"title": "3.0"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "its own title is not a conflict");
}

#[tokio::test]
async fn due_dates_must_be_after_start_dates() {
    let kit = Kit::new(Tier::Free).await;
    let not_after = json!({"message": {"due_date": ["must be greater than start date"]}});
    for (start, due) in [("2025-01-10", "2025-01-10"), ("2025-01-10", "2025-01-09")] {
        let (status, body) = kit
            .post(
                "/projects/4/milestones",
                PLANNER,
                json!({"title": "s", "start_date": start, "due_date": due}),
            )
            .await;
        assert_eq!(
            (status, body),
            (StatusCode::BAD_REQUEST, not_after.clone()),
            "{start} {due}"
        );
    }
    let (status, body) = kit
        .post(
            "/projects/4/milestones",
            PLANNER,
            json!({"title": "s", "due_date": "10000-01-01"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"]["due_date"],
        json!(["date must not be after 9999-12-31"])
    );
    let (status, body) = kit
        .post(
            "/projects/4/milestones",
            PLANNER,
            json!({"title": "s", "due_date": "soon"}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "due_date is invalid"})
        )
    );
    let (status, made) = kit
        .post(
            "/projects/4/milestones",
            PLANNER,
            json!({"title": "s", "due_date": "2025-01-09"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // An edit is checked against the dates it keeps.
    let id = made["id"].as_u64().expect("id");
    let (status, body) = kit
        .put(
            &format!("/projects/4/milestones/{id}"),
            PLANNER,
            json!({"start_date": "2025-01-09"}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, not_after));
    let (status, _) = kit
        .post(
            "/projects/4/milestones",
            PLANNER,
            json!({"description": "no title"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn milestones_need_a_planner_and_group_ones_a_role_in_the_group() {
    let kit = Kit::new(Tier::Free).await;
    let (status, body) = kit
        .post("/projects/4/milestones", GUEST, json!({"title": "g"}))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::FORBIDDEN, json!({"message": "403 Forbidden"}))
    );
    // A project Reporter sees the group but may not make its milestones.
    let (status, _) = kit.get("/groups/acme/milestones", REPORTER).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = kit
        .post("/groups/acme/milestones", REPORTER, json!({"title": "g"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    kit.gl.grant_group("acme", "rita", Role::Reporter);
    let (status, made) = kit
        .post("/groups/acme/milestones", REPORTER, json!({"title": "g"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert!(made["group_id"].is_u64() && made.get("project_id").is_none());
    let id = made["id"].as_u64().expect("id");
    // A group milestone is not found under the project's path.
    let (status, body) = kit
        .get(&format!("/projects/4/milestones/{id}"), REPORTER)
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"message": "404 Milestone Not Found"})
        )
    );
    let (status, _) = kit.get("/groups/nope/milestones", REPORTER).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(kit.gl.group_milestones("acme")[0].title, "g");
}
