//! Value streams through `POST /api/graphql`.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::super::testkit::{Kit, GUEST, PLANNER, PROJECT, REPORTER};
use super::super::{Role, Tier};
use super::NO_PERMISSION;

const CREATE: &str = "mutation Create($input: ValueStreamCreateInput!) {
  valueStreamCreate(input: $input) {
    valueStream { id name stages { id name custom startEventIdentifier endEventIdentifier
                                   startEventLabel { id title } endEventLabel { title } } }
    errors
  }
}";
const UPDATE: &str = "mutation($input: ValueStreamUpdateInput!) {
  valueStreamUpdate(input: $input) { valueStream { id name stages { id name } } errors }
}";
const LIST: &str = "query($path: ID!) {
  project(fullPath: $path) { valueStreams { nodes { id name stages { id name custom } } } }
}";

/// A project label; returns its GraphQL id (built from the REST answer, as a client would).
async fn label(kit: &Kit, name: &str) -> String {
    let (status, l) = kit
        .post(
            "/projects/4/labels",
            PLANNER,
            json!({"name": name, "color": "#0000ff"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{l}");
    let kind = if l["is_project_label"] == json!(true) {
        "ProjectLabel"
    } else {
        "GroupLabel"
    };
    format!("gid://gitlab/{kind}/{}", l["id"])
}

fn label_stage(name: &str, gid: &str) -> Value {
    json!({"name": name, "custom": true,
           "startEventIdentifier": "ISSUE_LABEL_ADDED", "startEventLabelId": gid,
           "endEventIdentifier": "ISSUE_LABEL_REMOVED", "endEventLabelId": gid})
}

fn lead_time() -> Value {
    json!({"name": "Lead time", "startEventIdentifier": "ISSUE_CREATED", "endEventIdentifier": "ISSUE_CLOSED"})
}

async fn create(kit: &Kit, token: &str, name: &str, stages: Value) -> Value {
    let input = json!({"namespacePath": PROJECT, "name": name, "stages": stages});
    kit.graphql(token, CREATE, json!({"input": input})).await
}

fn errors_of(answer: &Value) -> Vec<String> {
    let list = answer["data"]["valueStreamCreate"]["errors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    list.iter()
        .filter_map(|e| e.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn free_refuses_value_streams_and_lists_the_in_memory_default() {
    let kit = Kit::new(Tier::Free).await;
    let answer = create(&kit, REPORTER, "Jira", json!([lead_time()])).await;
    assert_eq!(answer["data"], json!({"valueStreamCreate": null}));
    assert_eq!(answer["errors"][0]["message"], NO_PERMISSION);
    assert_eq!(answer["errors"][0]["path"], json!(["valueStreamCreate"]));
    let listed = kit.graphql(REPORTER, LIST, json!({"path": PROJECT})).await;
    let nodes = &listed["data"]["project"]["valueStreams"]["nodes"];
    assert_eq!(nodes.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(
        (nodes[0]["id"].clone(), nodes[0]["name"].clone()),
        (json!("default"), json!("default"))
    );
    let stages: Vec<&str> = nodes[0]["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(
        stages,
        ["issue", "plan", "code", "test", "review", "staging"]
    );
    assert!(kit.gl.value_streams(PROJECT).is_empty());
    let hidden = kit
        .graphql(REPORTER, LIST, json!({"path": "no/such"}))
        .await;
    assert_eq!(hidden, json!({"data": {"project": null}}));
}

#[tokio::test]
async fn premium_saves_label_stages_and_lists_them_instead_of_the_default() {
    let kit = Kit::new(Tier::Premium).await;
    let doing = label(&kit, "jira-status::In Progress").await;
    let answer = create(
        &kit,
        REPORTER,
        "Jira workflow",
        json!([label_stage("Jira: In Progress", &doing), lead_time()]),
    )
    .await;
    assert_eq!(answer.get("errors"), None, "{answer}");
    let payload = &answer["data"]["valueStreamCreate"];
    assert_eq!(payload["errors"], json!([]));
    let stream = &payload["valueStream"];
    assert!(stream["id"]
        .as_str()
        .unwrap_or("")
        .starts_with("gid://gitlab/Analytics::CycleAnalytics::ValueStream/"));
    let first = &stream["stages"][0];
    assert_eq!(
        (
            first["custom"].clone(),
            first["startEventLabel"]["id"].clone()
        ),
        (json!(true), json!(doing))
    );
    assert_eq!(
        first["endEventLabel"],
        json!({"title": "jira-status::In Progress"})
    );
    assert_eq!(
        stream["stages"][1]["custom"],
        json!(true),
        "custom defaults to true"
    );

    let listed = kit.graphql(REPORTER, LIST, json!({"path": PROJECT})).await;
    let nodes = listed["data"]["project"]["valueStreams"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["name"], "Jira workflow");
    let by_id = format!(
        "{{ project(fullPath: \"{PROJECT}\") {{ valueStreams(id: {id}) {{ nodes {{ stages(id: {sid}) {{ name }} }} }} }} }}",
        id = stream["id"], sid = first["id"]
    );
    let one = kit.graphql(REPORTER, &by_id, json!({})).await;
    assert_eq!(
        one["data"]["project"]["valueStreams"]["nodes"][0]["stages"],
        json!([{"name": "Jira: In Progress"}])
    );
    let saved = kit.gl.value_streams(PROJECT);
    assert_eq!(
        saved[0].stages[0].start_label.as_deref(),
        Some("jira-status::In Progress")
    );
    // The name is unique per namespace.
    let again = create(&kit, REPORTER, "Jira workflow", json!([])).await;
    assert_eq!(errors_of(&again), ["Name has already been taken"]);
}

#[tokio::test]
async fn invalid_streams_are_refused_with_errors_and_nothing_is_saved() {
    let kit = Kit::new(Tier::Premium).await;
    let doing = label(&kit, "doing").await;
    kit.gl.add_project("elsewhere/app");
    let answer = create(&kit, REPORTER, "okay", json!([
        {"name": "review", "startEventIdentifier": "ISSUE_CREATED", "endEventIdentifier": "ISSUE_CLOSED"},
        {"name": "Review", "startEventIdentifier": "ISSUE_LABEL_REMOVED", "endEventIdentifier": "ISSUE_LABEL_ADDED", "startEventLabelId": doing, "endEventLabelId": doing},
        {"name": "No label", "startEventIdentifier": "ISSUE_LABEL_ADDED", "endEventIdentifier": "ISSUE_CLOSED"},
        {"name": "Foreign", "startEventIdentifier": "ISSUE_LABEL_ADDED", "startEventLabelId": "gid://gitlab/ProjectLabel/999999", "endEventIdentifier": "ISSUE_CLOSED"},
        {"name": "Planning", "custom": false, "startEventIdentifier": "ISSUE_CREATED", "endEventIdentifier": "ISSUE_CLOSED"}
    ])).await;
    assert_eq!(
        errors_of(&answer),
        [
            "Stages[0] name is reserved",
            "Stages[1] end event not allowed for the given start event",
            "Stages[2] start event label can't be blank",
            "Stages[3] start event label is not available for the selected group",
            "Stages[4] name Invalid name planning was given for this default stage, allowed names: issue, plan, code, test, review, staging",
        ]
    );
    let too_many: Vec<Value> = (0..16)
        .map(|i| label_stage(&format!("s{i}"), &doing))
        .collect();
    let answer = create(&kit, REPORTER, "many", json!(too_many)).await;
    assert_eq!(
        errors_of(&answer),
        ["Stages[15] value stream Maximum number of stages per value stream exceeded"]
    );
    let fifteen: Vec<Value> = (0..15)
        .map(|i| label_stage(&format!("s{i}"), &doing))
        .collect();
    let answer = create(&kit, REPORTER, "x", json!(fifteen)).await;
    assert_eq!(
        errors_of(&answer),
        ["Name is too short (minimum is 3 characters)"]
    );
    assert!(kit.gl.value_streams(PROJECT).is_empty());
    // A default stage by name (any case) takes the built-in events.
    let answer = create(
        &kit,
        REPORTER,
        "defaults",
        json!([{"name": "Issue", "custom": false}]),
    )
    .await;
    let stage = &answer["data"]["valueStreamCreate"]["valueStream"]["stages"][0];
    assert_eq!(
        (
            stage["startEventIdentifier"].clone(),
            stage["endEventIdentifier"].clone()
        ),
        (json!("ISSUE_CREATED"), json!("ISSUE_STAGE_END"))
    );
}

#[tokio::test]
async fn an_update_keeps_sent_stages_creates_new_ones_and_destroys_the_rest() {
    let kit = Kit::new(Tier::Premium).await;
    let (a, b) = (label(&kit, "a").await, label(&kit, "b").await);
    let made = create(
        &kit,
        REPORTER,
        "flow",
        json!([label_stage("A", &a), label_stage("B", &b)]),
    )
    .await;
    let stream = &made["data"]["valueStreamCreate"]["valueStream"];
    let id = stream["id"].clone();
    let kept = stream["stages"][0]["id"].clone();
    let input = json!({"id": id, "stages": [{"id": kept, "name": "A renamed"}, lead_time()]});
    let updated = kit.graphql(REPORTER, UPDATE, json!({"input": input})).await;
    let stages = &updated["data"]["valueStreamUpdate"]["valueStream"]["stages"];
    assert_eq!(
        stages[0],
        json!({"id": kept, "name": "A renamed"}),
        "{updated}"
    );
    assert_eq!(stages[1]["name"], "Lead time");
    assert_eq!(
        stages.as_array().map(Vec::len),
        Some(2),
        "B was not sent: destroyed"
    );
    let renamed = kit
        .graphql(
            REPORTER,
            UPDATE,
            json!({"input": {"id": id, "name": "flow 2"}}),
        )
        .await;
    let stream = &renamed["data"]["valueStreamUpdate"]["valueStream"];
    assert_eq!(
        (stream["name"].clone(), stream["stages"].clone()),
        (json!("flow 2"), json!([])),
        "no stages sent: none kept"
    );
    let unknown = kit.graphql(REPORTER, UPDATE, json!({"input": {"id": "gid://gitlab/Analytics::CycleAnalytics::ValueStream/1", "name": "zzz"}})).await;
    assert_eq!(unknown["errors"][0]["message"], NO_PERMISSION);
}

#[tokio::test]
async fn value_streams_need_reporter_a_group_and_well_typed_input() {
    let kit = Kit::new(Tier::Premium).await;
    let guest = create(&kit, GUEST, "flow", json!([])).await;
    assert_eq!(
        guest["errors"][0]["message"], NO_PERMISSION,
        "a Guest may not"
    );
    kit.gl.add_project("rita/own");
    kit.gl.grant("rita/own", "rita", Role::Owner);
    let input = json!({"namespacePath": "rita/own", "name": "mine"});
    let personal = kit.graphql(REPORTER, CREATE, json!({"input": input})).await;
    assert_eq!(
        personal["errors"][0]["message"], NO_PERMISSION,
        "projects outside groups cannot"
    );
    kit.gl.grant_group("acme", "rita", Role::Reporter);
    let literal = "mutation { valueStreamCreate(input: {namespacePath: \"acme\", name: \"group flow\",
        stages: [{name: \"Lead\", startEventIdentifier: ISSUE_CREATED, endEventIdentifier: ISSUE_CLOSED}]}) {
        valueStream { name } errors } }";
    let answer = kit.graphql(REPORTER, literal, json!({})).await;
    assert_eq!(
        answer["data"]["valueStreamCreate"],
        json!({"valueStream": {"name": "group flow"}, "errors": []}),
        "{answer}"
    );
    assert_eq!(kit.gl.value_streams("acme").len(), 1);

    let bad_enum = json!({"input": {"namespacePath": PROJECT, "name": "e", "stages": [{"name": "s", "startEventIdentifier": "LABEL_ADDED"}]}});
    let answer = kit.graphql(REPORTER, CREATE, bad_enum).await;
    let message = answer["errors"][0]["message"].as_str().unwrap_or("");
    assert!(message.starts_with("Variable $input of type ValueStreamCreateInput! was provided invalid value for stages.0.startEventIdentifier"), "{message}");
    let unknown_key = json!({"input": {"namespacePath": PROJECT, "name": "e", "colour": "red"}});
    let answer = kit.graphql(REPORTER, CREATE, unknown_key).await;
    assert!(answer["errors"][0]["message"]
        .as_str()
        .unwrap_or("")
        .contains("colour (Field is not defined on ValueStreamCreateInput)"));
    let no_name = json!({"input": {"namespacePath": PROJECT, "stages": []}});
    let answer = kit.graphql(REPORTER, CREATE, no_name).await;
    assert!(answer["errors"][0]["message"]
        .as_str()
        .unwrap_or("")
        .contains("name (Expected value to not be null)"));
    assert!(kit.gl.value_streams(PROJECT).is_empty());
}

#[tokio::test]
async fn labels_can_be_looked_up_and_bad_documents_change_nothing() {
    let kit = Kit::new(Tier::Premium).await;
    label(&kit, "jira-status::Review").await;
    kit.gl.grant_group("acme", "pia", Role::Planner);
    let (_, group_label) = kit
        .post(
            "/groups/acme/labels",
            PLANNER,
            json!({"name": "jira-status::QA", "color": "#00ff00"}),
        )
        .await;
    let query = "query { project(fullPath: \"acme/platform\") {
        own: labels(searchTerm: \"jira-status\") { nodes { id title } }
        all: labels(searchTerm: \"JIRA-status\", includeAncestorGroups: true) { nodes { title } } } }";
    let answer = kit.graphql(REPORTER, query, json!({})).await;
    let project = &answer["data"]["project"];
    assert_eq!(
        project["own"]["nodes"].as_array().map(Vec::len),
        Some(1),
        "{answer}"
    );
    assert!(project["own"]["nodes"][0]["id"]
        .as_str()
        .unwrap_or("")
        .starts_with("gid://gitlab/ProjectLabel/"));
    assert_eq!(project["all"]["nodes"][1]["title"], group_label["name"]);

    let bad = "mutation($input: ValueStreamCreateInput!) { valueStreamCreate(input: $input) { valueStream { nope } } }";
    let input = json!({"namespacePath": PROJECT, "name": "never saved"});
    let answer = kit.graphql(REPORTER, bad, json!({"input": input})).await;
    assert_eq!(answer.get("data"), None);
    assert_eq!(
        answer["errors"][0]["message"],
        "Field 'nope' doesn't exist on type 'ValueStream'"
    );
    assert!(
        kit.gl.value_streams(PROJECT).is_empty(),
        "validated before running"
    );
    let (status, _) = kit
        .post(
            "/api/graphql",
            "bad-token",
            json!({"query": "{ currentUser { id } }"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let me = kit
        .graphql(
            REPORTER,
            "{ currentUser { username } __typename }",
            json!({}),
        )
        .await;
    assert_eq!(
        me["data"],
        json!({"currentUser": {"username": "rita"}, "__typename": "Query"})
    );
}
