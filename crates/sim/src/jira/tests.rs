//! HTTP-level tests of the fake Jira, driven with reqwest as a real client would.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{json, Value};

use super::jql::truncate_to_minute;
use super::{Deployment, FakeJira, JiraOptions};
use crate::{Fault, Route};

struct Fixture {
    jira: FakeJira,
    client: Client,
    opts: JiraOptions,
}

impl Fixture {
    async fn start(opts: JiraOptions) -> Fixture {
        let jira = FakeJira::start(opts.clone())
            .await
            .expect("fake Jira starts");
        jira.add_project("ABC");
        Fixture {
            jira,
            client: Client::new(),
            opts,
        }
    }

    fn auth(&self, req: RequestBuilder) -> RequestBuilder {
        match self.opts.deployment {
            Deployment::Cloud => req.basic_auth(&self.opts.email, Some(&self.opts.token)),
            Deployment::DataCenter => req.bearer_auth(&self.opts.token),
        }
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.auth(self.client.get(format!("{}{path}", self.jira.url())))
    }

    fn post(&self, path: &str, body: Value) -> RequestBuilder {
        self.auth(self.client.post(format!("{}{path}", self.jira.url())))
            .json(&body)
    }

    /// Cloud search; returns (status, body).
    async fn search(&self, jql: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut q = vec![("jql", jql)];
        q.extend_from_slice(extra);
        send(self.get("/rest/api/3/search/jql").query(&q)).await
    }

    async fn keys(&self, jql: &str) -> Vec<String> {
        let (status, body) = self.search(jql, &[("maxResults", "100")]).await;
        assert_eq!(status, StatusCode::OK, "{jql}: {body}");
        keys_of(&body)
    }

    fn create(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                self.jira
                    .create_issue("ABC", &format!("Issue {i}"), "Task")
                    .key
            })
            .collect()
    }
}

async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.expect("request reaches the fake");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn keys_of(body: &Value) -> Vec<String> {
    body["issues"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["key"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn first_error(body: &Value) -> String {
    body["errorMessages"][0]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn cloud() -> JiraOptions {
    JiraOptions::default()
}

fn offset(secs: i32) -> FixedOffset {
    FixedOffset::east_opt(secs).expect("valid offset")
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn cloud_pages_by_token_with_short_pages_and_no_token_on_last_page() {
    let f = Fixture::start(cloud()).await;
    let created = f.create(80);
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"jql": "project = ABC", "maxResults": 100, "fields": ["summary"]});
        if let Some(t) = &token {
            body["nextPageToken"] = json!(t);
        }
        let (status, page) = send(f.post("/rest/api/3/search/jql", body)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.get("total").is_none() && page.get("startAt").is_none());
        sizes.push(page["issues"].as_array().map_or(0, Vec::len));
        seen.extend(keys_of(&page));
        assert!(page["issues"][0]["fields"]["summary"].is_string());
        assert!(page["issues"][0]["fields"].get("status").is_none());
        match page["nextPageToken"].as_str() {
            Some(t) => {
                assert_eq!(page["isLast"], json!(false));
                token = Some(t.to_string());
            }
            None => {
                assert_eq!(page["isLast"], json!(true));
                assert!(
                    page.get("nextPageToken").is_none(),
                    "token omitted, not null"
                );
                break;
            }
        }
    }
    assert_eq!(sizes, vec![37, 37, 6], "page_cap wins over maxResults");
    assert_eq!(
        seen, created,
        "default order is key order, nothing lost or repeated"
    );
    assert_eq!(f.jira.search_requests(), 3);

    // A short first page that is not the last one.
    let (_, page) = f.search("project = ABC", &[("maxResults", "5")]).await;
    assert_eq!(keys_of(&page).len(), 5);
    assert!(page["nextPageToken"].is_string());
}

#[tokio::test]
async fn cloud_search_defaults_and_rejections() {
    let f = Fixture::start(cloud()).await;
    f.create(2);
    // Default fields: id and key only.
    let (_, page) = f.search("project = ABC", &[]).await;
    let issue = &page["issues"][0];
    assert_eq!(issue["id"], json!("10001"));
    assert!(issue["self"]
        .as_str()
        .unwrap_or_default()
        .ends_with("/rest/api/3/issue/10001"));
    assert_eq!(issue["fields"], json!({}));
    // Everything, shaped like the captured responses.
    let (_, page) = f.search("key = ABC-1", &[("fields", "*all")]).await;
    let fields = &page["issues"][0]["fields"];
    assert_eq!(fields["status"]["statusCategory"]["key"], json!("new"));
    assert_eq!(
        fields["issuetype"],
        json!({"self": fields["issuetype"]["self"], "id": fields["issuetype"]["id"],
        "description": "", "name": "Task", "subtask": false, "hierarchyLevel": 0})
    );
    assert_eq!(fields["project"]["key"], json!("ABC"));
    assert_eq!(fields["resolution"], Value::Null);
    assert!(fields
        .as_object()
        .is_some_and(|m| m.contains_key("customfield_10010")));

    let (status, body) = f.search("", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(first_error(&body).starts_with("Unbounded JQL"));
    let (status, _) = f
        .search("project = ABC", &[("nextPageToken", "garbage")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = f.search("project = ABC", &[("maxResults", "lots")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = send(f.post("/rest/api/3/search/jql", json!({"jql": 5}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = send(
        f.get("/rest/api/3/search/jql")
            .query(&[("jql", "ORDER BY updated")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "ORDER BY alone is accepted");
}

#[tokio::test]
async fn cloud_auth_and_removed_search() {
    let f = Fixture::start(cloud()).await;
    let url = format!("{}/rest/api/3/myself", f.jira.url());
    for req in [
        f.client.get(&url),
        f.client
            .get(&url)
            .basic_auth("bot@example.com", Some("wrong")),
        f.client.get(&url).bearer_auth("jira-token"),
        f.client
            .get(&url)
            .header("Authorization", "Basic !!!notbase64"),
    ] {
        let (status, body) = send(req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body,
            json!({"errorMessages": ["You are not authenticated. Authentication required to perform this operation."], "errors": {}})
        );
    }
    let (status, me) = send(f.get("/rest/api/3/myself")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["timeZone"], json!("UTC"));
    assert_eq!(me["emailAddress"], json!("bot@example.com"));

    for v in ["2", "3"] {
        let (status, body) = send(
            f.get(&format!("/rest/api/{v}/search"))
                .query(&[("jql", "project = ABC")]),
        )
        .await;
        assert_eq!(status, StatusCode::GONE);
        assert!(first_error(&body).contains("/rest/api/3/search/jql"));
    }
    let (status, _) = send(f.post("/rest/api/2/search", json!({"jql": "project = ABC"}))).await;
    assert_eq!(status, StatusCode::GONE);

    let (_, info) = send(
        f.client
            .get(format!("{}/rest/api/2/serverInfo", f.jira.url())),
    )
    .await;
    assert_eq!(info["deploymentType"], json!("Cloud"));
    let (status, p) = send(f.get("/rest/api/3/project/ABC")).await;
    assert_eq!((status, p["id"].clone()), (StatusCode::OK, json!("10001")));
    let (status, body) = send(f.get("/rest/api/3/project/NOPE")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        first_error(&body),
        "No project could be found with key 'NOPE'."
    );
}

#[tokio::test]
async fn data_center_pages_by_start_at_with_total() {
    let opts = JiraOptions {
        deployment: Deployment::DataCenter,
        page_cap: 20,
        ..JiraOptions::default()
    };
    let f = Fixture::start(opts).await;
    let created = f.create(45);
    let mut seen = Vec::new();
    let mut start = 0;
    loop {
        let (status, page) = send(f.get("/rest/api/2/search").query(&[
            ("jql", "project = ABC ORDER BY id"),
            ("startAt", &start.to_string()),
            ("maxResults", "1000"),
        ]))
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["total"], json!(45));
        assert_eq!(page["startAt"], json!(start));
        assert_eq!(page["maxResults"], json!(20), "server cap reported back");
        let keys = keys_of(&page);
        if keys.is_empty() {
            break;
        }
        start += keys.len();
        seen.extend(keys);
    }
    assert_eq!(seen, created);
    let (status, page) = send(f.post(
        "/rest/api/2/search",
        json!({"jql": "", "startAt": 40, "fields": "summary"}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys_of(&page).len(), 5, "empty JQL is allowed on DC");

    let (status, _) = send(
        f.get("/rest/api/3/search/jql")
            .query(&[("jql", "project = ABC")]),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let basic = f
        .client
        .get(format!("{}/rest/api/2/myself", f.jira.url()))
        .basic_auth("bot@example.com", Some("jira-token"));
    assert_eq!(send(basic).await.0, StatusCode::UNAUTHORIZED);
    let (_, info) = send(f.get("/rest/api/2/serverInfo")).await;
    assert_eq!(info["deploymentType"], json!("Server"));
}

/// The account-zone literal of `t`'s minute, e.g. "2025/02/15 09:45".
fn literal(t: DateTime<Utc>, zone: FixedOffset) -> String {
    t.with_timezone(&zone).format("%Y/%m/%d %H:%M").to_string()
}

#[tokio::test]
async fn date_literals_are_local_to_the_account_and_epochs_are_utc() {
    for secs in [13 * 3600 + 45 * 60, -(3 * 3600 + 30 * 60)] {
        let zone = offset(secs);
        let f = Fixture::start(JiraOptions {
            utc_offset: zone,
            ..cloud()
        })
        .await;
        let key = f.create(1).remove(0);
        let updated = f.jira.issue(&key).map(|i| i.updated).expect("issue exists");
        let minute = truncate_to_minute(updated);
        let next_minute = minute + chrono::Duration::minutes(1);

        // Local literals: the issue's own minute includes it, the next one does not.
        let q = |t| format!("updated >= \"{}\"", literal(t, zone));
        assert_eq!(f.keys(&q(minute)).await, vec![key.clone()]);
        assert!(f.keys(&q(next_minute)).await.is_empty());
        // The classic bug: formatting the UTC instant as a literal is hours off.
        let utc_literal = format!("updated >= \"{}\"", literal(minute, offset(0)));
        let shifted = f.keys(&utc_literal).await;
        assert_eq!(
            shifted.is_empty(),
            secs < 0,
            "UTC literal misread in zone {zone}"
        );

        // Epoch millis are zone-free and truncated to the minute: the last millisecond of
        // the issue's minute still matches.
        let last_ms = next_minute.timestamp_millis() - 1;
        assert_eq!(
            f.keys(&format!("updated >= {last_ms}")).await,
            vec![key.clone()]
        );
        let next_ms = next_minute.timestamp_millis();
        assert!(f.keys(&format!("updated >= {next_ms}")).await.is_empty());
        let (status, _) = f.search(&format!("updated >= \"{last_ms}\""), &[]).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "a quoted number is not a date"
        );

        // Relative dates, and timestamps rendered in the account's zone.
        assert_eq!(
            f.keys("updated >= -5m and created > '-1h'").await,
            vec![key.clone()]
        );
        let (_, page) = f
            .search(&format!("key = {key}"), &[("fields", "updated")])
            .await;
        let shown = page["issues"][0]["fields"]["updated"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let suffix = if secs > 0 { "+1345" } else { "-0330" };
        assert!(shown.ends_with(suffix), "{shown}");
        let parsed =
            DateTime::parse_from_str(&shown, "%Y-%m-%dT%H:%M:%S%.3f%z").expect("Jira format");
        assert_eq!(parsed.timestamp_millis(), updated.timestamp_millis());
    }
}

#[tokio::test]
async fn search_lags_behind_writes_but_reads_do_not() {
    let f = Fixture::start(JiraOptions {
        index_lag: Duration::from_secs(60),
        ..cloud()
    })
    .await;
    let key = f.create(1).remove(0);
    assert!(
        f.keys("project = ABC").await.is_empty(),
        "new issue not indexed yet"
    );
    let (status, issue) = send(f.get(&format!("/rest/api/3/issue/{key}"))).await;
    assert_eq!(status, StatusCode::OK, "GET issue is consistent");
    assert_eq!(issue["fields"]["summary"], json!("Issue 0"));

    f.jira.clock().advance(Duration::from_secs(61));
    assert_eq!(f.keys("project = ABC").await, vec![key.clone()]);

    f.jira.rename(&key, "Renamed");
    f.jira.transition(&key, "Done", "done");
    assert_eq!(f.keys("statusCategory = Done").await, Vec::<String>::new());
    assert_eq!(
        f.keys("summary ~ issue").await,
        vec![key.clone()],
        "old version still served"
    );
    let (_, bulk) = send(f.post(
        "/rest/api/3/issue/bulkfetch",
        json!({"issueIdsOrKeys": [key, "ABC-99"], "fields": ["summary", "resolutiondate"]}),
    ))
    .await;
    assert_eq!(bulk["issues"][0]["fields"]["summary"], json!("Renamed"));
    assert!(bulk["issues"][0]["fields"]["resolutiondate"].is_string());
    assert_eq!(
        bulk["issues"].as_array().map(Vec::len),
        Some(1),
        "missing ones absent"
    );

    f.jira.clock().advance(Duration::from_secs(61));
    assert_eq!(
        f.keys("statusCategory = Done and resolved is not empty")
            .await,
        vec![key.clone()]
    );

    f.jira.delete_issue(&key);
    assert_eq!(
        f.keys("project = ABC").await,
        vec![key.clone()],
        "deletion not indexed yet"
    );
    f.jira.clock().advance(Duration::from_secs(61));
    assert!(f.keys("project = ABC").await.is_empty());
    assert!(f.jira.issue(&key).is_none());
}

#[tokio::test]
async fn jql_errors_are_jira_400s() {
    let f = Fixture::start(cloud()).await;
    f.create(1);
    let cases = [
        (
            "project = ",
            "Error in the JQL Query: Expecting either a value",
        ),
        (
            "project = ABC AND",
            "Error in the JQL Query: Expecting a field name",
        ),
        (
            "foo = bar",
            "Field 'foo' does not exist or you do not have permission to view it.",
        ),
        (
            "project = NOPE",
            "The value 'NOPE' does not exist for the field 'project'.",
        ),
        (
            "updated > tomorrow",
            "Date value 'tomorrow' for field 'updated' is invalid.",
        ),
    ];
    for (jql, expected) in cases {
        let (status, body) = f.search(jql, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{jql}");
        assert!(first_error(&body).starts_with(expected), "{jql}: {body}");
        assert_eq!(body["errors"], json!({}));
    }
}

#[tokio::test]
async fn jql_fields_ordering_and_moves() {
    let f = Fixture::start(cloud()).await;
    f.jira.add_project("XYZ");
    let keys = f.create(4);
    f.jira.set_labels(&keys[0], &["backend", "urgent"]);
    f.jira.transition(&keys[1], "In Review", "indeterminate");
    f.jira.rename(&keys[2], "Fix login page");
    let moved = f.jira.move_issue(&keys[3], "XYZ");
    assert_eq!((moved.id.as_str(), moved.key.as_str()), ("10004", "XYZ-1"));

    assert_eq!(f.keys("labels = BACKEND").await, vec![keys[0].clone()]);
    assert_eq!(
        f.keys("labels != urgent").await,
        Vec::<String>::new(),
        "empty labels never match !="
    );
    assert_eq!(
        f.keys("status = 'in review' or statusCategory = indeterminate")
            .await,
        vec![keys[1].clone()]
    );
    assert_eq!(f.keys("summary ~ LOGIN").await, vec![keys[2].clone()]);
    assert_eq!(f.keys("project in (XYZ)").await, vec!["XYZ-1".to_string()]);
    assert_eq!(
        f.keys(&format!("key = {}", keys[3])).await,
        vec!["XYZ-1".to_string()],
        "old key resolves"
    );
    assert_eq!(
        f.keys("id > 10002 ORDER BY id DESC").await,
        vec!["XYZ-1".to_string(), keys[2].clone()]
    );
    let by_updated = f
        .keys("project in (ABC, XYZ) order by updated desc, key")
        .await;
    assert_eq!(by_updated[0], "XYZ-1");
    assert_eq!(
        f.keys("issuetype = task AND NOT (labels is EMPTY)").await,
        vec![keys[0].clone()]
    );

    let (status, issue) =
        send(f.get(&format!("/rest/api/2/issue/{}?fields=summary", keys[3]))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (issue["id"].clone(), issue["key"].clone()),
        (json!("10004"), json!("XYZ-1"))
    );
    assert!(issue["fields"].get("status").is_none());
    let (status, _) = send(f.get("/rest/api/3/issue/ABC-99")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    f.jira.set_field_raw(&keys[0], "status", Value::Null);
    let (_, page) = f
        .search(
            &format!("key = {}", keys[0]),
            &[("fields", "status,summary")],
        )
        .await;
    assert_eq!(page["issues"][0]["fields"]["status"], Value::Null);
}

#[tokio::test]
async fn faults_are_served_in_order_then_cleared() {
    let f = Fixture::start(cloud()).await;
    f.create(1);
    f.jira.inject(Route::Read, Fault::Status(503), 1);
    f.jira.inject(
        Route::Read,
        Fault::RateLimited {
            retry_after: Some("7".into()),
        },
        1,
    );
    f.jira.inject(Route::Any, Fault::Html, 1);
    f.jira.inject(Route::Read, Fault::MalformedJson, 1);
    f.jira.inject(Route::Read, Fault::CommitThenStatus(502), 1);
    f.jira
        .inject(Route::Read, Fault::Delay(Duration::from_millis(50)), 1);
    f.jira.inject(Route::Create, Fault::Status(500), 1);

    let search = || {
        f.get("/rest/api/3/search/jql")
            .query(&[("jql", "project = ABC")])
    };
    let (status, body) = send(search()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["errorMessages"].is_array());

    let resp = search().send().await.expect("sent");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("7")
    );

    let resp = f.get("/rest/api/3/myself").send().await.expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .starts_with("text/html"));

    let resp = search().send().await.expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.json::<Value>().await.is_err(), "truncated JSON");

    assert_eq!(send(search()).await.0, StatusCode::BAD_GATEWAY);

    let started = std::time::Instant::now();
    let (status, body) = send(search()).await;
    assert_eq!((status, keys_of(&body).len()), (StatusCode::OK, 1));
    assert!(started.elapsed() >= Duration::from_millis(50));

    // The Create fault never matches a read; unauthenticated calls consume no fault.
    let (status, _) = send(f.client.get(format!("{}/rest/api/3/myself", f.jira.url()))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(send(search()).await.0, StatusCode::OK);
    assert_eq!(f.jira.search_requests(), 6);

    f.jira.random_faults(7, 1.0, vec![Fault::Status(500)]);
    assert_eq!(send(search()).await.0, StatusCode::INTERNAL_SERVER_ERROR);
    f.jira.clear_faults();
    assert_eq!(send(search()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn approximate_count_counts_what_the_search_would_return() {
    let f = Fixture::start(JiraOptions::default()).await;
    f.create(5);
    let (status, body) = send(f.post(
        "/rest/api/3/search/approximate-count",
        json!({"jql": "project = ABC"}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"count": 5}));
}

#[tokio::test]
async fn changelogs_record_status_resolution_and_summary_and_page_in_bulk() {
    let f = Fixture::start(cloud()).await;
    let keys = f.create(3);
    f.jira.transition(&keys[0], "In Progress", "indeterminate");
    f.jira.rename(&keys[0], "Renamed");
    f.jira.transition(&keys[0], "Done", "done");
    f.jira.set_labels(&keys[1], &["x"]); // not a field changelogs are asked for here
    let id0 = f.jira.issue(&keys[0]).expect("issue").id;
    let body =
        json!({"issueIdsOrKeys": [keys[0], keys[1], "ABC-99"], "fieldIds": ["status", "summary"]});
    let (status, page) = send(f.post("/rest/api/3/changelog/bulkfetch", body)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let logs = page["issueChangeLogs"].as_array().expect("list");
    assert_eq!(
        logs.len(),
        1,
        "only the issue with matching changes: {page}"
    );
    assert_eq!(logs[0]["issueId"], json!(id0));
    let histories = logs[0]["changeHistories"].as_array().expect("histories");
    let items: Vec<(String, String)> = histories
        .iter()
        .flat_map(|h| h["items"].as_array().cloned().unwrap_or_default())
        .map(|i| {
            (
                i["field"].as_str().unwrap_or("").to_string(),
                i["toString"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        items,
        vec![
            ("status".into(), "In Progress".into()),
            ("summary".into(), "Renamed".into()),
            ("status".into(), "Done".into())
        ],
        "resolution items are filtered out by fieldIds"
    );
    assert_eq!(histories[0]["items"][0]["fromString"], json!("To Do"));
    assert!(histories[0]["created"]
        .as_str()
        .is_some_and(|c| c.contains('T')));
    assert!(page["nextPageToken"].is_null());

    // 150 issues with two changes each: pages of at most 100 histories, oldest first.
    let many = f.create(150);
    for k in &many {
        f.jira.transition(k, "In Progress", "indeterminate");
    }
    for k in &many {
        f.jira.transition(k, "Done", "done");
    }
    let mut token: Option<String> = None;
    let mut histories = 0;
    let mut pages = 0;
    loop {
        let mut body = json!({"issueIdsOrKeys": many, "fieldIds": ["status"], "maxResults": 1000});
        if let Some(t) = &token {
            body["nextPageToken"] = json!(t);
        }
        let (status, page) = send(f.post("/rest/api/3/changelog/bulkfetch", body)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        for log in page["issueChangeLogs"].as_array().expect("list") {
            histories += log["changeHistories"].as_array().map_or(0, Vec::len);
        }
        match page["nextPageToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!((histories, pages), (300, 3));
    let too_many: Vec<String> = (0..1001).map(|i| format!("ABC-{i}")).collect();
    let (status, _) = send(f.post(
        "/rest/api/3/changelog/bulkfetch",
        json!({"issueIdsOrKeys": too_many}),
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn data_center_expands_changelogs_and_rejects_ids_that_do_not_exist() {
    let f = Fixture::start(JiraOptions {
        deployment: Deployment::DataCenter,
        ..JiraOptions::default()
    })
    .await;
    let keys = f.create(3);
    f.jira.transition(&keys[0], "Done", "done");
    let ids: Vec<String> = keys
        .iter()
        .map(|k| f.jira.issue(k).expect("issue").id)
        .collect();
    let jql = format!("id in ({})", ids.join(", "));
    let (status, page) = send(
        f.get("/rest/api/2/search")
            .query(&[("jql", jql.as_str()), ("expand", "changelog")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let first = &page["issues"][0];
    assert_eq!(first["changelog"]["total"], json!(1));
    assert_eq!(
        first["changelog"]["histories"][0]["items"][1]["toString"],
        json!("Done")
    );

    f.jira.delete_issue(&keys[1]);
    f.jira.hide_issue(&keys[2]);
    let (status, body) = send(f.get("/rest/api/2/search").query(&[("jql", jql.as_str())])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let messages = body["errorMessages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "one message per missing id: {body}");
    assert_eq!(
        messages[0],
        json!(format!(
            "A value with ID '{}' does not exist for the field 'id'.",
            ids[1]
        ))
    );
    // Hidden issues are gone everywhere; a restored one comes back with its old `updated`.
    let (status, _) = send(f.get(&format!("/rest/api/2/issue/{}", keys[2]))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    f.jira.unhide_issue(&ids[2]);
    let before = f.jira.issues().len();
    f.jira.restore_issue(&ids[1]);
    assert_eq!(f.jira.issues().len(), before + 1);
    let (status, body) = send(f.get("/rest/api/2/search").query(&[("jql", jql.as_str())])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], json!(3));
}
