//! `/users`, `/users/:id` and `/projects/:id/members/all` over HTTP.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::super::testkit::{Kit, ADMIN, OUTSIDER, PROJECT, REPORTER};
use super::super::{Role, Tier};

fn usernames(body: &Value) -> Vec<&str> {
    let list = body.as_array().map(Vec::as_slice).unwrap_or_default();
    list.iter().filter_map(|u| u["username"].as_str()).collect()
}

#[tokio::test]
async fn user_lists_hide_public_emails_and_only_admins_find_private_ones() {
    let kit = Kit::new(Tier::Free).await;
    let alice = kit
        .gl
        .add_person("alice", "Alice Liddell", "alice@example.com", true);
    kit.gl
        .add_person("carol", "Carol Danvers", "carol@example.com", false);
    kit.gl
        .add_person("malice", "Mal Ice", "mal@example.com", true);

    let (status, found) = kit.get("/users?search=ALICE@example.com", REPORTER).await;
    assert_eq!(status, StatusCode::OK);
    // Only the exact public e-mail matches an address (no fuzzy match on "@").
    assert_eq!(usernames(&found), ["alice"]);
    assert!(found[0].get("public_email").is_none(), "{found}");
    let (_, fuzzy) = kit.get("/users?search=lice", REPORTER).await;
    assert_eq!(usernames(&fuzzy), ["alice", "malice"]);
    let (_, short) = kit.get("/users?search=al", REPORTER).await;
    assert_eq!(
        usernames(&short),
        Vec::<&str>::new(),
        "2 characters match exactly only"
    );

    let (_, hidden) = kit.get("/users?search=carol@example.com", REPORTER).await;
    assert_eq!(usernames(&hidden), Vec::<&str>::new());
    let (_, as_admin) = kit.get("/users?search=carol@example.com", ADMIN).await;
    assert_eq!(usernames(&as_admin), ["carol"]);
    assert_eq!(as_admin[0]["email"], "carol@example.com");
    assert_eq!(as_admin[0]["public_email"], Value::Null);

    let (_, exact) = kit.get("/users?username=ALICE", REPORTER).await;
    assert_eq!(usernames(&exact), ["alice"]);
    assert_eq!(exact[0]["name"], "Alice Liddell");

    let (status, one) = kit.get(&format!("/users/{alice}"), REPORTER).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["public_email"], "alice@example.com");
    assert!(
        one.get("email").is_none(),
        "private e-mail shown to a non-admin: {one}"
    );
    let (status, body) = kit.get("/users/9999", REPORTER).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"message": "404 User Not Found"})
        )
    );
    let (status, _) = kit.get("/users/alice", REPORTER).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn members_all_lists_inherited_members_once_at_their_highest_role() {
    let kit = Kit::new(Tier::Free).await;
    // acme/team/svc lives in acme/team, which lives in acme.
    kit.gl.add_project("acme/team/svc");
    kit.gl.add_person("dave", "Dave", "dave@example.com", false);
    kit.gl.add_person("erin", "Erin", "erin@example.com", false);
    kit.gl.grant("acme/team/svc", "dave", Role::Reporter);
    kit.gl.grant_group("acme", "dave", Role::Developer);
    kit.gl.grant_group("acme/team", "erin", Role::Maintainer);
    kit.gl.grant("acme/team/svc", "rita", Role::Reporter);

    let path = "/projects/acme%2Fteam%2Fsvc/members/all";
    let (status, all) = kit.get(path, REPORTER).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let levels: Vec<(&str, u64)> = all
        .as_array()
        .expect("array")
        .iter()
        .map(|m| {
            (
                m["username"].as_str().unwrap_or(""),
                m["access_level"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert!(levels.contains(&("dave", 30)), "{levels:?}");
    assert!(levels.contains(&("erin", 40)), "{levels:?}");
    assert_eq!(levels.iter().filter(|(u, _)| *u == "dave").count(), 1);
    assert!(all[0].get("public_email").is_none());

    let erin = kit.gl.user_id("erin").expect("erin");
    let (status, one) = kit.get(&format!("{path}/{erin}"), REPORTER).await;
    assert_eq!(
        (status, one["access_level"].clone()),
        (StatusCode::OK, json!(40))
    );
    let otto = kit.gl.user_id("otto").expect("otto");
    let (status, _) = kit.get(&format!("{path}/{otto}"), REPORTER).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, filtered) = kit.get(&format!("{path}?query=eri"), REPORTER).await;
    assert_eq!(usernames(&filtered), ["erin"]);
    // A group role also opens the project itself, as in GitLab.
    let (status, _) = kit.get(path, OUTSIDER).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, project) = kit
        .get(&format!("/projects/{}", "acme%2Fplatform"), REPORTER)
        .await;
    assert_eq!(
        (status, project["visibility"].clone()),
        (StatusCode::OK, json!("private"))
    );
    let _ = PROJECT;
}
