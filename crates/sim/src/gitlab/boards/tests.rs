//! Boards and label lists over HTTP.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::super::testkit::{Kit, GUEST, PLANNER, PROJECT, REPORTER};
use super::super::{Role, Tier};

fn list_labels(body: &Value) -> Vec<(String, u64)> {
    let list = body.as_array().map(Vec::as_slice).unwrap_or_default();
    list.iter()
        .map(|l| {
            (
                l["label"]["name"].as_str().unwrap_or("").to_owned(),
                l["position"].as_u64().unwrap_or(99),
            )
        })
        .collect()
}

/// Project labels `a`..`d`; returns their ids.
async fn labels(kit: &Kit) -> Vec<u64> {
    let mut ids = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let (status, l) = kit
            .post(
                "/projects/4/labels",
                PLANNER,
                json!({"name": name, "color": "#ff0000"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{l}");
        ids.push(l["id"].as_u64().expect("id"));
    }
    ids
}

#[tokio::test]
async fn boards_have_label_lists_in_order_and_hide_open_and_closed() {
    let kit = Kit::new(Tier::Free).await;
    let (status, none) = kit.get("/projects/4/boards", REPORTER).await;
    assert_eq!((status, none), (StatusCode::OK, json!([])));
    let ids = labels(&kit).await;
    let (status, board) = kit
        .post(
            "/projects/4/boards",
            PLANNER,
            json!({"name": "Jira workflow"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{board}");
    assert_eq!(
        (
            board["lists"].clone(),
            board["project"]["path_with_namespace"].clone()
        ),
        (json!([]), json!(PROJECT))
    );
    let b = board["id"].as_u64().expect("id");
    let lists = format!("/projects/4/boards/{b}/lists");
    for id in &ids[..3] {
        let (status, list) = kit.post(&lists, PLANNER, json!({"label_id": id})).await;
        assert_eq!(status, StatusCode::CREATED, "{list}");
    }
    let (_, shown) = kit.get(&lists, REPORTER).await;
    let names = list_labels(&shown);
    assert_eq!(names, [("a".into(), 0), ("b".into(), 1), ("c".into(), 2)]);
    // The hidden Open and Closed lists took the two ids after the board's.
    for hidden in [b + 1, b + 2] {
        let (status, _) = kit.get(&format!("{lists}/{hidden}"), REPORTER).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (_, same_name) = kit
        .post(
            "/projects/4/boards",
            PLANNER,
            json!({"name": "Jira workflow"}),
        )
        .await;
    assert_ne!(same_name["id"], board["id"], "names need not be unique");
    let (_, boards) = kit.get("/projects/4/boards", REPORTER).await;
    assert_eq!(boards.as_array().map(Vec::len), Some(2));
    assert_eq!(boards[0]["lists"].as_array().map(Vec::len), Some(3));
    assert_eq!(kit.gl.boards(PROJECT)[0].lists, ["a", "b", "c"]);
}

#[tokio::test]
async fn lists_need_a_usable_label_and_one_list_per_label() {
    let kit = Kit::new(Tier::Free).await;
    let ids = labels(&kit).await;
    kit.gl.add_project("other/place");
    let board = kit.gl.add_board_by_hand(PROJECT, "b");
    let lists = format!("/projects/4/boards/{board}/lists");
    let (status, body) = kit.post(&lists, PLANNER, json!({"label_id": 99999})).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"message": {"error": "Label not found!"}})
        )
    );
    let (status, _) = kit.post(&lists, PLANNER, json!({"label_id": ids[0]})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = kit.post(&lists, PLANNER, json!({"label_id": ids[0]})).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"message": {"error": "Label has already been taken"}})
        )
    );
    // A group label is usable by the group's projects.
    kit.gl.grant_group("acme", "pia", Role::Planner);
    let (_, group_label) = kit
        .post(
            "/groups/acme/labels",
            PLANNER,
            json!({"name": "g", "color": "#00ff00"}),
        )
        .await;
    let (status, list) = kit
        .post(&lists, PLANNER, json!({"label_id": group_label["id"]}))
        .await;
    assert_eq!(
        (status, list["label"]["is_project_label"].clone()),
        (StatusCode::CREATED, json!(false))
    );
    let (status, _) = kit.post(&lists, GUEST, json!({"label_id": ids[1]})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = kit.post(&lists, PLANNER, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = kit
        .post("/projects/4/boards", GUEST, json!({"name": "x"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn moving_a_list_shifts_the_others_and_a_move_in_place_is_a_400() {
    let kit = Kit::new(Tier::Free).await;
    labels(&kit).await;
    let board = kit.gl.add_board_by_hand(PROJECT, "b");
    for l in ["a", "b", "c", "d"] {
        kit.gl.add_board_list_by_hand(board, l);
    }
    let lists = format!("/projects/4/boards/{board}/lists");
    let (_, shown) = kit.get(&lists, REPORTER).await;
    let id_of = |i: usize| shown[i]["id"].as_u64().expect("id");
    let (d, a) = (id_of(3), id_of(0));
    let (status, moved) = kit
        .put(&format!("{lists}/{d}"), PLANNER, json!({"position": 1}))
        .await;
    assert_eq!(
        (status, moved["position"].clone()),
        (StatusCode::OK, json!(1))
    );
    let (_, shown) = kit.get(&lists, REPORTER).await;
    let order: Vec<String> = list_labels(&shown).into_iter().map(|(n, _)| n).collect();
    assert_eq!(order, ["a", "d", "b", "c"]);
    let refused = json!({"message": {"error": "List could not be moved!"}});
    for position in [json!(0), json!(4), json!(-1)] {
        let (status, body) = kit
            .put(
                &format!("{lists}/{a}"),
                PLANNER,
                json!({"position": position}),
            )
            .await;
        assert_eq!(
            (status, body),
            (StatusCode::BAD_REQUEST, refused.clone()),
            "{position}"
        );
    }
    let (status, _) = kit
        .call(Method::DELETE, &format!("{lists}/{d}"), PLANNER, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(kit.gl.boards(PROJECT)[0].lists, ["a", "b", "c"]);
    kit.gl.remove_board_list_by_hand(board, "b");
    assert_eq!(kit.gl.boards(PROJECT)[0].lists, ["a", "c"]);
}

#[tokio::test]
async fn free_allows_one_group_board_and_premium_more() {
    for (tier, second) in [
        (Tier::Free, StatusCode::BAD_REQUEST),
        (Tier::Premium, StatusCode::CREATED),
    ] {
        let kit = Kit::new(tier).await;
        kit.gl.grant_group("acme", "pia", Role::Planner);
        let (status, _) = kit
            .post("/groups/acme/boards", PLANNER, json!({"name": "one"}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, body) = kit
            .post("/groups/acme/boards", PLANNER, json!({"name": "two"}))
            .await;
        assert_eq!(status, second, "{tier:?}: {body}");
        let (_, listed) = kit.get("/groups/acme/boards", PLANNER).await;
        assert_eq!(listed[0]["group"]["name"], "acme");
    }
}
