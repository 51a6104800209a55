//! People, planning fields, versions, sprints, boards and workflows over HTTP.

use chrono::{NaiveDate, TimeZone, Utc};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{json, Value};

use super::super::{Deployment, FakeJira, JiraOptions, SprintState, SprintStrings};

struct Site {
    jira: FakeJira,
    client: Client,
    opts: JiraOptions,
}

impl Site {
    async fn start(deployment: Deployment, admin: bool) -> Site {
        let opts = JiraOptions {
            deployment,
            admin,
            ..JiraOptions::default()
        };
        let jira = FakeJira::start(opts.clone())
            .await
            .expect("fake Jira starts");
        jira.add_project("ABC");
        Site {
            jira,
            client: Client::new(),
            opts,
        }
    }

    fn get(&self, path: &str) -> RequestBuilder {
        let req = self.client.get(format!("{}{path}", self.jira.url()));
        match self.opts.deployment {
            Deployment::Cloud => req.basic_auth(&self.opts.email, Some(&self.opts.token)),
            Deployment::DataCenter => req.bearer_auth(&self.opts.token),
        }
    }

    async fn json(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .get(path)
            .send()
            .await
            .expect("request reaches the fake");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The first issue of a search, with these fields.
    async fn fields(&self, jql: &str, fields: &str) -> Value {
        let api = if self.opts.deployment == Deployment::Cloud {
            "3/search/jql"
        } else {
            "2/search"
        };
        let path = format!("/rest/api/{api}?jql={}&fields={fields}", urlencode(jql));
        let (status, body) = self.json(&path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["issues"][0]["fields"].clone()
    }

    async fn keys(&self, jql: &str) -> Result<Vec<String>, String> {
        let (status, body) = self
            .json(&format!("/rest/api/3/search/jql?jql={}", urlencode(jql)))
            .await;
        if status != StatusCode::OK {
            return Err(body["errorMessages"][0].as_str().unwrap_or("").to_owned());
        }
        let issues = body["issues"].as_array().cloned().unwrap_or_default();
        Ok(issues
            .iter()
            .filter_map(|i| i["key"].as_str().map(str::to_owned))
            .collect())
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn day(m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2025, m, d)
}

fn at(d: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, d, 9, 0, 0)
        .single()
        .expect("valid")
}

const PLAN_FIELDS: &str = "assignee,components,priority,duedate,fixVersions,customfield_10020";

#[tokio::test]
async fn cloud_issues_carry_people_and_planning_fields_when_asked() {
    let site = Site::start(Deployment::Cloud, false).await;
    let alice = site
        .jira
        .add_user("Alice Liddell", "alice@example.com", false);
    let bob = site.jira.add_user("Bob", "bob@example.com", true);
    let key = site.jira.create_issue("ABC", "planned", "Task").key;
    let fresh = site.fields("key = ABC-1", PLAN_FIELDS).await;
    assert_eq!(
        fresh["priority"]["name"], "Medium",
        "a new issue has the default priority"
    );
    assert_eq!(
        (
            fresh["assignee"].clone(),
            fresh["customfield_10020"].clone()
        ),
        (Value::Null, Value::Null)
    );
    assert_eq!(
        (fresh["components"].clone(), fresh["fixVersions"].clone()),
        (json!([]), json!([]))
    );

    let board = site
        .jira
        .add_board("ABC", "ABC board", &[("To Do", &["To Do"])]);
    let s1 = site.jira.add_sprint(board, "Sprint 1");
    site.jira.start_sprint(s1, at(1), at(14));
    site.jira.close_sprint(s1, None);
    let s2 = site.jira.add_sprint(board, "Sprint 2");
    site.jira.add_version("ABC", "1.0", day(3, 1), day(3, 31));
    site.jira.set_assignee(&key, Some(&alice.account_id));
    site.jira.set_components(&key, &["Backend", "Ops, infra"]);
    site.jira.set_priority(&key, Some("High"));
    site.jira.set_due_date(&key, day(4, 2));
    site.jira.set_fix_versions(&key, &["1.0"]);
    site.jira.set_sprints(&key, &[s1, s2]);

    let f = site.fields("key = ABC-1", PLAN_FIELDS).await;
    assert_eq!(f["assignee"]["accountId"], json!(alice.account_id));
    assert_eq!(f["assignee"]["displayName"], "Alice Liddell");
    assert!(
        f["assignee"].get("emailAddress").is_none(),
        "hidden e-mail: {f}"
    );
    assert!(f["assignee"].get("name").is_none() && f["assignee"].get("key").is_none());
    let names: Vec<&str> = f["components"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["Backend", "Ops, infra"]);
    assert_eq!(
        (f["priority"]["name"].clone(), f["priority"]["id"].clone()),
        (json!("High"), json!("2"))
    );
    assert_eq!(f["duedate"], "2025-04-02");
    assert_eq!(f["fixVersions"][0]["name"], "1.0");
    assert_eq!(
        (
            f["fixVersions"][0]["released"].clone(),
            f["fixVersions"][0]["releaseDate"].clone()
        ),
        (json!(false), json!("2025-03-31"))
    );
    let sprints = f["customfield_10020"].as_array().expect("sprint objects");
    assert_eq!(sprints[0]["state"], "closed");
    assert_eq!(
        sprints[0]["completeDate"]
            .as_str()
            .map(|d| d.ends_with('Z')),
        Some(true)
    );
    assert_eq!(
        (sprints[1]["state"].clone(), sprints[1]["boardId"].clone()),
        (json!("future"), json!(board))
    );
    assert!(
        sprints[1].get("startDate").is_none(),
        "a future sprint has no dates yet"
    );
    // Not asked for: not sent.
    let summary = site.fields("key = ABC-1", "summary").await;
    assert!(summary.get("assignee").is_none() && summary.get("customfield_10020").is_none());

    site.jira.set_assignee(&key, Some("bob@example.com"));
    let f = site.fields("key = ABC-1", "assignee").await;
    assert_eq!(f["assignee"]["emailAddress"], json!(bob.email));
    let (status, user) = site
        .json(&format!("/rest/api/3/user?accountId={}", bob.account_id))
        .await;
    assert_eq!(
        (status, user["displayName"].clone()),
        (StatusCode::OK, json!("Bob"))
    );
    let (status, _) = site.json("/rest/api/3/user?accountId=nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    site.jira.set_priority(&key, None);
    assert_eq!(
        site.fields("key = ABC-1", "priority").await["priority"],
        Value::Null
    );
}

#[tokio::test]
async fn data_center_people_have_name_and_key_and_sprints_are_strings() {
    let site = Site::start(Deployment::DataCenter, false).await;
    let carol = site.jira.add_user("Carol", "carol@example.com", true);
    let key = site.jira.create_issue("ABC", "dc", "Task").key;
    let board = site.jira.add_board("ABC", "b", &[]);
    let s = site.jira.add_sprint(board, "Sprint 5, wave 2=final");
    site.jira.start_sprint(s, at(3), at(17));
    site.jira.set_assignee(&key, Some("carol"));
    site.jira.set_sprints(&key, &[s]);
    let f = site
        .fields("key = ABC-1", "assignee,customfield_10020")
        .await;
    assert_eq!(
        (f["assignee"]["name"].clone(), f["assignee"]["key"].clone()),
        (json!("carol"), json!(carol.key))
    );
    assert!(f["assignee"].get("accountId").is_none());
    let text = f["customfield_10020"][0]
        .as_str()
        .expect("a string")
        .to_owned();
    assert!(
        text.starts_with("com.atlassian.greenhopper.service.sprint.Sprint@"),
        "{text}"
    );
    assert!(text.contains(&format!("[id={s},rapidViewId={board},state=ACTIVE,name=Sprint 5, wave 2=final,startDate=2025-03-03T09:00:00.000Z,")), "{text}");
    assert!(
        text.contains("completeDate=<null>") && text.contains(",goal=<null>,"),
        "{text}"
    );
    site.jira.set_sprint_strings(SprintStrings::Legacy);
    let f = site.fields("key = ABC-1", "customfield_10020").await;
    let legacy = f["customfield_10020"][0].as_str().expect("a string");
    assert!(legacy.contains("[rapidViewId=<null>,state=ACTIVE,name=Sprint 5, wave 2=final,startDate=2025-03-03T09:00:00.000+00:00,"), "{legacy}");
    assert!(legacy.ends_with(&format!(",id={s}]")), "{legacy}");
    let (_, user) = site.json("/rest/api/2/user?username=carol").await;
    assert_eq!(user["key"], json!(carol.key));
    let (_, fields) = site.json("/rest/api/2/field").await;
    let sprint = fields
        .as_array()
        .expect("list")
        .iter()
        .find(|f| f["schema"]["custom"] == "com.pyxis.greenhopper.jira:gh-sprint")
        .cloned();
    assert_eq!(
        sprint.map(|s| s["schema"]["items"].clone()),
        Some(json!("string"))
    );
}

#[tokio::test]
async fn releasing_a_version_or_closing_a_sprint_leaves_updated_alone() {
    let site = Site::start(Deployment::Cloud, false).await;
    let clock = site.jira.clock();
    let open = site.jira.create_issue("ABC", "open", "Task").key;
    let done = site.jira.create_issue("ABC", "done", "Task").key;
    let v = site.jira.add_version("ABC", "2.0", None, None);
    let board = site.jira.add_board("ABC", "b", &[]);
    let (s1, s2) = (
        site.jira.add_sprint(board, "S1"),
        site.jira.add_sprint(board, "S2"),
    );
    site.jira.start_sprint(s1, at(1), at(14));
    for k in [&open, &done] {
        site.jira.set_fix_versions(k, &["2.0"]);
        site.jira.set_sprints(k, &[s1]);
    }
    site.jira.transition(&done, "Done", "done");
    let before = |k: &str| site.jira.issue(k).expect("issue").updated;
    let (open_at, done_at) = (before(&open), before(&done));
    clock.advance(std::time::Duration::from_secs(600));

    site.jira.release_version(&v, day(3, 14));
    let f = site.fields("key = ABC-1", "fixVersions,updated").await;
    assert_eq!(
        (
            f["fixVersions"][0]["released"].clone(),
            f["fixVersions"][0]["releaseDate"].clone()
        ),
        (json!(true), json!("2025-03-14"))
    );
    assert_eq!(before(&open), open_at, "releasing edits no issue");
    site.jira.close_sprint(s1, Some(s2));
    assert_eq!(site.jira.sprint_state(s1), Some(SprintState::Closed));
    assert_eq!(
        before(&done),
        done_at,
        "a done issue stays in the closed sprint, unedited"
    );
    assert!(before(&open) > open_at, "carried over: an edit");
    let f = site.fields("key = ABC-1", "customfield_10020").await;
    let states: Vec<&str> = f["customfield_10020"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["state"].as_str())
        .collect();
    assert_eq!(states, ["closed", "future"]);
    let body = json!({"issueIdsOrKeys": [open], "fieldIds": ["customfield_10020"]});
    let resp = site
        .client
        .post(format!(
            "{}/rest/api/3/changelog/bulkfetch",
            site.jira.url()
        ))
        .basic_auth(&site.opts.email, Some(&site.opts.token))
        .json(&body)
        .send()
        .await
        .expect("send");
    let page: Value = resp.json().await.expect("json");
    let items = &page["issueChangeLogs"][0]["changeHistories"];
    let last = items
        .as_array()
        .and_then(|h| h.last())
        .expect("a Sprint history");
    assert_eq!(last["items"][0]["fieldId"], "customfield_10020");
    assert_eq!(
        (
            last["items"][0]["from"].clone(),
            last["items"][0]["to"].clone()
        ),
        (json!(s1.to_string()), json!(format!("{s1}, {s2}")))
    );
}

#[tokio::test]
async fn the_sprint_field_is_found_in_the_field_catalogue() {
    let site = Site::start(Deployment::Cloud, false).await;
    let gh = |fields: &Value| -> Vec<String> {
        let list = fields.as_array().cloned().unwrap_or_default();
        list.iter()
            .filter(|f| f["schema"]["custom"] == "com.pyxis.greenhopper.jira:gh-sprint")
            .filter_map(|f| f["id"].as_str().map(str::to_owned))
            .collect()
    };
    let (status, fields) = site.json("/rest/api/3/field").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(gh(&fields), ["customfield_10020"]);
    let sprint = fields
        .as_array()
        .expect("list")
        .iter()
        .find(|f| f["id"] == "customfield_10020")
        .cloned()
        .expect("sprint");
    assert_eq!(sprint["schema"]["items"], "json");
    assert_eq!(sprint["clauseNames"], json!(["cf[10020]", "Sprint"]));
    site.jira.set_sprint_field_id("customfield_10104");
    let second = site
        .jira
        .add_custom_field("Old sprints", "com.pyxis.greenhopper.jira:gh-sprint");
    let (_, fields) = site.json("/rest/api/3/field").await;
    assert_eq!(gh(&fields), ["customfield_10104".to_owned(), second]);
    let key = site.jira.create_issue("ABC", "t", "Task").key;
    let board = site.jira.add_board("ABC", "b", &[]);
    let s = site.jira.add_sprint(board, "S");
    site.jira.set_sprints(&key, &[s]);
    let f = site
        .fields("key = ABC-1", "customfield_10104,customfield_10020")
        .await;
    assert_eq!(
        (
            f["customfield_10104"][0]["id"].clone(),
            f["customfield_10020"].clone()
        ),
        (json!(s), Value::Null)
    );
}

#[tokio::test]
async fn versions_are_listed_in_sequence_and_paged_with_filters() {
    let site = Site::start(Deployment::Cloud, false).await;
    let a = site
        .jira
        .add_version("ABC", "b-second", day(1, 1), day(1, 31));
    site.jira.add_version("ABC", "a-first", None, day(12, 31));
    let old = site.jira.add_version("ABC", "old", None, None);
    site.jira.release_version(&a, None);
    site.jira.archive_version(&old);
    let names = |v: &Value| -> Vec<String> {
        let list = v.as_array().cloned().unwrap_or_default();
        list.iter()
            .filter_map(|x| x["name"].as_str().map(str::to_owned))
            .collect()
    };
    let (status, all) = site.json("/rest/api/3/project/ABC/versions").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        names(&all),
        ["b-second", "a-first", "old"],
        "sequence order"
    );
    assert_eq!(
        (all[0]["released"].clone(), all[0]["startDate"].clone()),
        (json!(true), json!("2025-01-01"))
    );
    assert_eq!(
        all[0]["releaseDate"], "2025-01-31",
        "a release keeps the planned date"
    );
    let (_, page) = site
        .json(
            "/rest/api/3/project/ABC/version?orderBy=name&status=unreleased,released&maxResults=1",
        )
        .await;
    assert_eq!(
        (
            names(&page["values"]),
            page["total"].clone(),
            page["isLast"].clone()
        ),
        (vec!["a-first".to_owned()], json!(2), json!(false))
    );
    let (status, one) = site.json(&format!("/rest/api/3/version/{old}")).await;
    assert_eq!(
        (status, one["archived"].clone()),
        (StatusCode::OK, json!(true))
    );
    let (status, _) = site.json("/rest/api/3/project/NOPE/versions").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(site.jira.versions("ABC").len(), 3);
}

#[tokio::test]
async fn statuses_come_per_issue_type_by_id_and_board_columns_give_the_order() {
    let site = Site::start(Deployment::Cloud, false).await;
    // "Review" is a new status, so its id is higher than In Progress's.
    let workflow = [
        ("To Do", "new"),
        ("Review", "indeterminate"),
        ("In Progress", "indeterminate"),
        ("Done", "done"),
    ];
    site.jira.set_workflow("ABC", &workflow);
    site.jira
        .set_issue_type_workflow("ABC", "Bug", &[("Triage", "new"), ("Done", "done")]);
    let (status, types) = site.json("/rest/api/3/project/ABC/statuses").await;
    assert_eq!(status, StatusCode::OK);
    let of = |ty: &str| -> Vec<(String, String)> {
        let entry = types
            .as_array()
            .expect("list")
            .iter()
            .find(|t| t["name"] == ty)
            .cloned()
            .unwrap_or_default();
        entry["statuses"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap_or("").to_owned(),
                    s["statusCategory"]["key"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let task: Vec<String> = of("Task").into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        task,
        ["To Do", "In Progress", "Done", "Review"],
        "by id, not workflow order"
    );
    assert_eq!(
        of("Bug"),
        [
            ("Done".to_owned(), "done".to_owned()),
            ("Triage".to_owned(), "new".to_owned())
        ]
    );
    let board = site.jira.add_board(
        "ABC",
        "ABC board",
        &[
            ("To Do", &["To Do"]),
            ("Review", &["Review"]),
            ("Doing", &["In Progress"]),
            ("Done", &["Done"]),
        ],
    );
    let (_, boards) = site.json("/rest/agile/1.0/board?projectKeyOrId=ABC").await;
    assert_eq!(
        (boards["values"][0]["id"].clone(), boards["total"].clone()),
        (json!(board), json!(1))
    );
    let (_, config) = site
        .json(&format!("/rest/agile/1.0/board/{board}/configuration"))
        .await;
    let columns: Vec<&str> = config["columnConfig"]["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(columns, ["To Do", "Review", "Doing", "Done"]);
    let review_id = config["columnConfig"]["columns"][1]["statuses"][0]["id"].clone();
    let review = types[0]["statuses"]
        .as_array()
        .expect("list")
        .iter()
        .find(|s| s["name"] == "Review")
        .map(|s| s["id"].clone());
    assert_eq!(Some(review_id), review, "columns name statuses by id");
    let (status, body) = site.json("/rest/api/3/workflow/search").await;
    assert_eq!(
        (status, body["errorMessages"][0].clone()),
        (
            StatusCode::FORBIDDEN,
            json!("Only Jira administrators can access workflows.")
        )
    );
}

#[tokio::test]
async fn sprints_are_listed_by_board_and_state() {
    let site = Site::start(Deployment::Cloud, true).await;
    let board = site.jira.add_board("ABC", "b", &[]);
    let ids: Vec<u64> = (1..=3)
        .map(|i| site.jira.add_sprint(board, &format!("S{i}")))
        .collect();
    site.jira.start_sprint(ids[0], at(1), at(14));
    site.jira.close_sprint(ids[0], None);
    site.jira.start_sprint(ids[1], at(15), at(28));
    site.jira.set_sprint_goal(ids[1], Some("ship it"));
    let (_, open) = site
        .json(&format!(
            "/rest/agile/1.0/board/{board}/sprint?state=active,future"
        ))
        .await;
    let names: Vec<&str> = open["values"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(
        (names, open["isLast"].clone()),
        (vec!["S2", "S3"], json!(true))
    );
    let (_, one) = site
        .json(&format!("/rest/agile/1.0/sprint/{}", ids[1]))
        .await;
    assert_eq!(
        (
            one["state"].clone(),
            one["goal"].clone(),
            one["originBoardId"].clone()
        ),
        (json!("active"), json!("ship it"), json!(board))
    );
    let (status, _) = site.json("/rest/agile/1.0/sprint/99").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = site.json("/rest/api/3/workflow/search").await;
    assert_eq!(status, StatusCode::OK, "administrators may");
}

#[tokio::test]
async fn jql_searches_the_planning_fields() {
    let site = Site::start(Deployment::Cloud, false).await;
    let alice = site.jira.add_user("Alice", "alice@example.com", false);
    let keys: Vec<String> = (0..3)
        .map(|i| site.jira.create_issue("ABC", &format!("i{i}"), "Task").key)
        .collect();
    let board = site.jira.add_board("ABC", "b", &[]);
    let s = site.jira.add_sprint(board, "Sprint 1");
    site.jira.add_version("ABC", "1.0", None, None);
    site.jira.set_assignee(&keys[0], Some(&alice.account_id));
    site.jira.set_components(&keys[0], &["Backend"]);
    site.jira.set_priority(&keys[1], Some("High"));
    site.jira.set_due_date(&keys[1], day(2, 28));
    site.jira.set_fix_versions(&keys[2], &["1.0"]);
    site.jira.set_sprints(&keys[2], &[s]);
    assert_eq!(
        site.keys(&format!("assignee = {}", alice.account_id)).await,
        Ok(vec![keys[0].clone()])
    );
    assert_eq!(
        site.keys("assignee is EMPTY ORDER BY key").await,
        Ok(keys[1..].to_vec())
    );
    assert_eq!(
        site.keys("component = backend").await,
        Ok(vec![keys[0].clone()])
    );
    assert_eq!(
        site.keys("priority = High").await,
        Ok(vec![keys[1].clone()])
    );
    assert_eq!(
        site.keys("duedate < \"2025-03-01\" AND duedate >= 2025-02-28")
            .await,
        Ok(vec![keys[1].clone()])
    );
    assert_eq!(
        site.keys("fixVersion = \"1.0\"").await,
        Ok(vec![keys[2].clone()])
    );
    assert_eq!(
        site.keys(&format!("sprint = {s}")).await,
        Ok(vec![keys[2].clone()])
    );
    assert_eq!(
        site.keys("sprint = \"Sprint 1\"").await,
        Ok(vec![keys[2].clone()])
    );
    assert_eq!(
        site.keys("sprint is not EMPTY").await,
        Ok(vec![keys[2].clone()])
    );
    assert_eq!(
        site.keys("fixVersion = nope").await,
        Err("The value 'nope' does not exist for the field 'fixVersion'.".to_owned())
    );
    assert_eq!(
        site.keys("priority = Urgent").await,
        Err("The value 'Urgent' does not exist for the field 'priority'.".to_owned())
    );
    assert!(site
        .keys("duedate > \"soon\"")
        .await
        .is_err_and(|e| e.contains("Date value 'soon'")));
}
