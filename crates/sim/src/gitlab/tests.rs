//! The fake driven over real HTTP, one behaviour per test.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

use super::params::{parse_time, percent_decode, query_pairs};
use super::*;

const PROJECT: &str = "acme/platform";
const OWNER: &str = "owner-token";
const REPORTER: &str = "reporter-token";
const GUEST: &str = "guest-token";
const OUTSIDER: &str = "outsider-token";

struct Env {
    gl: FakeGitlab,
    http: reqwest::Client,
}

impl Env {
    async fn new(create_limit_per_minute: Option<u32>) -> Env {
        Env::with(GitlabOptions {
            create_limit_per_minute,
            ..GitlabOptions::default()
        })
        .await
    }

    async fn with(opts: GitlabOptions) -> Env {
        let gl = FakeGitlab::start(opts).await.expect("start fake gitlab");
        gl.add_project(PROJECT);
        for (name, token, role) in [
            ("olga", OWNER, Some(Role::Owner)),
            ("rita", REPORTER, Some(Role::Reporter)),
            ("gus", GUEST, Some(Role::Guest)),
            ("otto", OUTSIDER, None),
        ] {
            gl.add_user(name, token);
            if let Some(role) = role {
                gl.grant(PROJECT, name, role);
            }
        }
        Env {
            gl,
            http: reqwest::Client::new(),
        }
    }

    /// A request to `/api/v4{path}` with `PRIVATE-TOKEN: token`.
    fn req(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}/api/v4{path}", self.gl.url()))
            .header("PRIVATE-TOKEN", token)
    }

    async fn create(&self, token: &str, body: Value) -> Response {
        self.req(Method::POST, "/projects/4/issues", token)
            .json(&body)
            .send()
            .await
            .expect("send")
    }

    async fn edit(&self, token: &str, iid: u64, body: Value) -> Response {
        self.req(Method::PUT, &format!("/projects/4/issues/{iid}"), token)
            .json(&body)
            .send()
            .await
            .expect("send")
    }

    async fn list(&self, query: &str) -> Response {
        self.req(Method::GET, &format!("/projects/4/issues?{query}"), OWNER)
            .send()
            .await
            .expect("send")
    }
}

async fn json_of(resp: Response) -> Value {
    resp.json().await.expect("json body")
}

fn header<'a>(resp: &'a Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("missing header {name}"))
}

fn iids(body: &Value) -> Vec<u64> {
    body.as_array()
        .expect("array")
        .iter()
        .filter_map(|i| i["iid"].as_u64())
        .collect()
}

#[tokio::test]
async fn unauthenticated_requests_get_401_and_both_token_styles_work() {
    let env = Env::new(None).await;
    let url = format!("{}/api/v4/user", env.gl.url());
    let none = env.http.get(&url).send().await.expect("send");
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(none).await, json!({"message": "401 Unauthorized"}));
    let wrong = env
        .req(Method::GET, "/user", "nope")
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let me = json_of(
        env.req(Method::GET, "/user", OWNER)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(me["username"], "olga");
    assert_eq!(me["state"], "active");
    let bearer = env
        .http
        .get(&url)
        .bearer_auth(REPORTER)
        .send()
        .await
        .expect("send");
    assert_eq!(json_of(bearer).await["username"], "rita");
    let version = env
        .req(Method::GET, "/version", GUEST)
        .send()
        .await
        .expect("send");
    assert_eq!(json_of(version).await["version"], "17.5.0-ee");
}

#[tokio::test]
async fn projects_are_404_for_non_members_and_found_by_id_or_path() {
    let env = Env::new(None).await;
    for (path, token) in [
        ("/projects/acme%2Fplatform", OUTSIDER),
        ("/projects/99", OWNER),
    ] {
        let resp = env
            .req(Method::GET, path, token)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            json_of(resp).await,
            json!({"message": "404 Project Not Found"})
        );
    }
    let by_path = env
        .req(Method::GET, "/projects/acme%2Fplatform", REPORTER)
        .send()
        .await
        .expect("send");
    let p = json_of(by_path).await;
    assert_eq!(p["id"], 4);
    assert_eq!(p["path_with_namespace"], PROJECT);
    assert_eq!(p["issues_enabled"], true);
    assert_eq!(p["permissions"]["project_access"]["access_level"], 20);
    assert_eq!(p["permissions"]["group_access"], Value::Null);
    let plain = env
        .req(Method::GET, "/projects/acme/platform/issues", GUEST)
        .send()
        .await;
    assert_eq!(plain.expect("send").status(), StatusCode::OK);
    // Non-members cannot write either.
    let create = env
        .req(Method::POST, "/projects/4/issues", OUTSIDER)
        .json(&json!({"title": "x"}))
        .send()
        .await
        .expect("send");
    assert_eq!(create.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn listing_pages_with_gitlab_headers_and_filters_by_iids() {
    let env = Env::new(None).await;
    for n in 1..=5 {
        env.gl.create_by_hand(PROJECT, &format!("issue {n}"), "");
    }
    let first = env.list("per_page=2&state=all").await;
    assert_eq!(header(&first, "x-total"), "5");
    assert_eq!(header(&first, "x-total-pages"), "3");
    assert_eq!(header(&first, "x-page"), "1");
    assert_eq!(header(&first, "x-next-page"), "2");
    assert_eq!(header(&first, "x-prev-page"), "");
    let link = header(&first, "link").to_owned();
    assert!(
        link.contains("page=2&per_page=2&state=all>; rel=\"next\""),
        "{link}"
    );
    assert!(
        link.contains("rel=\"first\"")
            && link.contains("page=3&per_page=2&state=all>; rel=\"last\"")
    );
    // Newest first by default.
    assert_eq!(iids(&json_of(first).await), vec![5, 4]);

    let last = env.list("per_page=2&page=3").await;
    assert_eq!(header(&last, "x-next-page"), "");
    assert_eq!(header(&last, "x-prev-page"), "2");
    assert!(!header(&last, "link").contains("rel=\"next\""));
    assert_eq!(iids(&json_of(last).await), vec![1]);

    let some = env.list("iids[]=1&iids%5B%5D=3&sort=asc").await;
    assert_eq!(iids(&json_of(some).await), vec![1, 3]);

    let clamped = env.list("per_page=500").await;
    assert_eq!(header(&clamped, "x-per-page"), "100");
    let bad = env.list("per_page=lots").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn listing_filters_by_state_updated_after_labels_and_search() {
    let env = Env::new(None).await;
    for n in 1..=3 {
        env.gl
            .create_by_hand(PROJECT, &format!("issue {n}"), "needle here");
    }
    env.gl.close_by_hand(PROJECT, 2);
    let opened = json_of(env.list("state=opened&order_by=updated_at").await).await;
    assert_eq!(iids(&opened), vec![3, 1]);

    env.gl.clock().advance(Duration::from_secs(600));
    let mark = env.gl.clock().now() - chrono::Duration::seconds(1);
    env.gl.retitle_by_hand(PROJECT, 1, "renamed");
    let q = format!("updated_after={}", render::timestamp(mark));
    assert_eq!(iids(&json_of(env.list(&q).await).await), vec![1]);
    let bad = env.list("updated_after=yesterday").await;
    assert_eq!(
        json_of(bad).await,
        json!({"error": "updated_after is invalid"})
    );

    env.edit(OWNER, 3, json!({"labels": "a,b"})).await;
    assert_eq!(iids(&json_of(env.list("labels=a,b").await).await), vec![3]);
    assert!(iids(&json_of(env.list("labels=a,c").await).await).is_empty());
    assert_eq!(
        iids(&json_of(env.list("search=RENAMED").await).await),
        vec![1]
    );
}

#[tokio::test]
async fn titles_over_255_characters_and_missing_titles_are_400() {
    let env = Env::new(None).await;
    // Characters, not bytes: 255 two-byte characters are fine.
    let ok = env
        .create(REPORTER, json!({"title": "é".repeat(255)}))
        .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let long = env
        .create(REPORTER, json!({"title": "x".repeat(256)}))
        .await;
    assert_eq!(long.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json_of(long).await,
        json!({"message": {"title": ["is too long (maximum is 255 characters)"]}})
    );
    let missing = env.create(REPORTER, json!({"description": "d"})).await;
    assert_eq!(json_of(missing).await, json!({"error": "title is missing"}));
    let edit = env
        .edit(REPORTER, 1, json!({"title": "y".repeat(256)}))
        .await;
    assert_eq!(edit.status(), StatusCode::BAD_REQUEST);
    assert_eq!(env.gl.issues(PROJECT).len(), 1);
    assert_eq!(env.gl.writes(), 1);
}

#[tokio::test]
async fn iid_and_created_at_are_silently_ignored_unless_owner() {
    let env = Env::new(None).await;
    let body = json!({"title": "t", "iid": 42, "created_at": "2020-01-02T03:04:05.678Z"});
    let by_reporter = env.create(REPORTER, body.clone()).await;
    assert_eq!(by_reporter.status(), StatusCode::CREATED);
    let issue = json_of(by_reporter).await;
    assert_eq!(issue["iid"], 1);
    assert_ne!(issue["created_at"], "2020-01-02T03:04:05.678Z");
    assert_ne!(issue["id"], issue["iid"]);

    let by_owner = json_of(env.create(OWNER, body).await).await;
    assert_eq!(by_owner["iid"], 42);
    assert_eq!(by_owner["created_at"], "2020-01-02T03:04:05.678Z");
    assert_eq!(by_owner["references"]["full"], "acme/platform#42");
    let snap = env.gl.issue(PROJECT, 42).expect("issue 42");
    assert_eq!(snap.author, "olga");
    assert_eq!(
        snap.created_at.to_rfc3339(),
        "2020-01-02T03:04:05.678+00:00"
    );
}

#[tokio::test]
async fn a_taken_iid_is_409_and_explicit_iids_bump_the_counter() {
    let env = Env::new(None).await;
    let first = env
        .create(OWNER, json!({"title": "VSA-5", "iid": 10005}))
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    // A person creates an issue in the UI: it takes the slot after the explicit iid...
    assert_eq!(env.gl.create_by_hand(PROJECT, "from the UI", ""), 10006);
    // ...so the mirror's next key-derived iid collides.
    let clash = env
        .create(OWNER, json!({"title": "VSA-6", "iid": 10006}))
        .await;
    assert_eq!(clash.status(), StatusCode::CONFLICT);
    assert_eq!(json_of(clash).await, json!({"message": "Duplicated issue"}));
    let auto = json_of(env.create(REPORTER, json!({"title": "auto"})).await).await;
    assert_eq!(auto["iid"], 10007);
    assert_eq!(env.gl.writes(), 2);
}

#[tokio::test]
async fn close_and_reopen_set_and_clear_closed_at() {
    let env = Env::new(None).await;
    let iid = env.gl.create_by_hand(PROJECT, "t", "");
    let created = env.gl.issue(PROJECT, iid).expect("issue");
    env.gl.clock().advance(Duration::from_secs(3600));

    let closed = json_of(
        env.edit(REPORTER, iid, json!({"state_event": "close"}))
            .await,
    )
    .await;
    assert_eq!(closed["state"], "closed");
    assert_eq!(closed["closed_by"]["username"], "rita");
    let snap = env.gl.issue(PROJECT, iid).expect("issue");
    assert!(snap.closed_at.expect("closed_at") > created.created_at);
    assert_eq!(snap.updated_at, snap.closed_at.expect("closed_at"));

    let reopened = json_of(
        env.edit(REPORTER, iid, json!({"state_event": "reopen"}))
            .await,
    )
    .await;
    assert_eq!(reopened["state"], "opened");
    assert_eq!(reopened["closed_at"], Value::Null);
    assert_eq!(reopened["closed_by"], Value::Null);

    // An Owner's updated_at backdates the close; a Reporter's is ignored.
    let at = "2021-05-06T07:08:09.123Z";
    let backdated = json_of(
        env.edit(
            OWNER,
            iid,
            json!({"state_event": "close", "updated_at": at}),
        )
        .await,
    )
    .await;
    assert_eq!(backdated["closed_at"], at);
    assert_eq!(backdated["updated_at"], at);
    let ignored = json_of(
        env.edit(REPORTER, iid, json!({"title": "u", "updated_at": at}))
            .await,
    )
    .await;
    assert_ne!(ignored["updated_at"], at);

    let missing = env.edit(REPORTER, 999, json!({"title": "x"})).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_of(missing).await, json!({"message": "404 Not found"}));
}

#[tokio::test]
async fn guests_create_but_cannot_close_label_or_edit_others_issues() {
    let env = Env::new(None).await;
    let mine = json_of(
        env.create(
            GUEST,
            json!({"title": "g", "labels": "x", "issue_type": "incident"}),
        )
        .await,
    )
    .await;
    // Labels are metadata (Planner+) and incidents need Reporter: both silently dropped.
    assert_eq!(mine["labels"], json!([]));
    assert_eq!(mine["issue_type"], "issue");
    let iid = mine["iid"].as_u64().expect("iid");

    let close = env.edit(GUEST, iid, json!({"state_event": "close"})).await;
    assert_eq!(close.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_of(close).await, json!({"message": "403 Forbidden"}));
    let own_title = env.edit(GUEST, iid, json!({"title": "g2"})).await;
    assert_eq!(own_title.status(), StatusCode::OK);

    let other = env.gl.create_by_hand(PROJECT, "not yours", "");
    let edit_other = env.edit(GUEST, other, json!({"title": "mine now"})).await;
    assert_eq!(edit_other.status(), StatusCode::FORBIDDEN);
    let delete = env
        .req(
            Method::DELETE,
            &format!("/projects/4/issues/{iid}"),
            REPORTER,
        )
        .send()
        .await
        .expect("send");
    assert_eq!(delete.status(), StatusCode::FORBIDDEN);
    let delete = env
        .req(Method::DELETE, &format!("/projects/4/issues/{iid}"), OWNER)
        .send()
        .await
        .expect("send");
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
    assert!(env.gl.issue(PROJECT, iid).is_none());
}

#[tokio::test]
async fn scoped_labels_evict_their_scope_mates() {
    let env = Env::with(GitlabOptions {
        tier: Tier::Premium,
        ..GitlabOptions::default()
    })
    .await;
    let created = env
        .create(
            REPORTER,
            json!({"title": "t", "labels": ["workflow::todo", "team,jira"]}),
        )
        .await;
    let issue = json_of(created).await;
    assert_eq!(issue["labels"], json!(["jira", "team", "workflow::todo"]));
    let iid = issue["iid"].as_u64().expect("iid");

    let added = json_of(
        env.edit(REPORTER, iid, json!({"add_labels": "workflow::doing"}))
            .await,
    )
    .await;
    assert_eq!(added["labels"], json!(["jira", "team", "workflow::doing"]));
    let removed = json_of(
        env.edit(REPORTER, iid, json!({"remove_labels": "team"}))
            .await,
    )
    .await;
    assert_eq!(removed["labels"], json!(["jira", "workflow::doing"]));
    let replaced = json_of(
        env.edit(REPORTER, iid, json!({"labels": "a::b::1,a::b::2,a::c"}))
            .await,
    )
    .await;
    assert_eq!(replaced["labels"], json!(["a::b::2", "a::c"]));
}

#[tokio::test]
async fn the_create_rate_limit_answers_429_without_retry_after() {
    let env = Env::new(Some(2)).await;
    for _ in 0..2 {
        let ok = env.create(REPORTER, json!({"title": "t"})).await;
        assert_eq!(ok.status(), StatusCode::CREATED);
    }
    let limited = env.create(REPORTER, json!({"title": "t"})).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().get("retry-after").is_none());
    assert_eq!(
        json_of(limited).await,
        json!({"message": {"error": "This endpoint has been requested too many times. Try again later."}})
    );
    // Per user, and edits are not limited.
    assert_eq!(
        env.create(OWNER, json!({"title": "t"})).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        env.edit(REPORTER, 1, json!({"title": "u"})).await.status(),
        StatusCode::OK
    );
    assert_eq!(env.gl.issues(PROJECT).len(), 3);
}

#[tokio::test]
async fn commit_then_status_commits_while_status_faults_change_nothing() {
    let env = Env::new(None).await;
    env.gl.inject(Route::Create, Fault::Status(500), 1);
    let failed = env.create(REPORTER, json!({"title": "t"})).await;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        json_of(failed).await,
        json!({"message": "500 Internal Server Error"})
    );
    assert!(env.gl.issues(PROJECT).is_empty());
    assert_eq!(env.gl.writes(), 0);

    env.gl
        .inject(Route::Create, Fault::CommitThenStatus(502), 1);
    let lost = env.create(REPORTER, json!({"title": "t"})).await;
    assert_eq!(lost.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(env.gl.issues(PROJECT).len(), 1);
    assert_eq!(env.gl.writes(), 1);
    assert_eq!(env.gl.requests(), 2);
}

#[tokio::test]
async fn other_faults_look_like_proxies_and_throttles() {
    let env = Env::new(None).await;
    env.gl.inject(
        Route::Read,
        Fault::RateLimited {
            retry_after: Some("7".into()),
        },
        1,
    );
    env.gl.inject(Route::Read, Fault::Html, 1);
    env.gl.inject(Route::Read, Fault::MalformedJson, 1);

    let throttled = env.list("").await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&throttled, "retry-after"), "7");
    let reset: i64 = header(&throttled, "ratelimit-reset")
        .parse()
        .expect("epoch");
    assert!(reset > chrono::Utc::now().timestamp());

    let html = env.list("").await;
    assert_eq!(html.status(), StatusCode::OK);
    assert!(header(&html, "content-type").starts_with("text/html"));
    let garbage = env.list("").await;
    assert!(garbage.json::<Value>().await.is_err());
    assert_eq!(env.list("").await.status(), StatusCode::OK);
    assert_eq!(env.gl.list_requests(), 4);

    env.gl.random_faults(7, 1.0, vec![Fault::Status(503)]);
    assert_eq!(env.list("").await.status(), StatusCode::SERVICE_UNAVAILABLE);
    env.gl.clear_faults();
    assert_eq!(env.list("").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_delayed_write_commits_even_after_the_client_gave_up() {
    let env = Env::new(None).await;
    env.gl
        .inject(Route::Create, Fault::Delay(Duration::from_millis(300)), 1);
    let timed_out = env
        .req(Method::POST, "/projects/4/issues", REPORTER)
        .json(&json!({"title": "slow"}))
        .timeout(Duration::from_millis(50))
        .send()
        .await;
    assert!(timed_out.is_err());
    // The write lands 300 ms after the request, whoever waits for it (10 s at most here).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while env.gl.issues(PROJECT).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the write never landed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(env.gl.issues(PROJECT).len(), 1);
}

#[tokio::test]
async fn a_held_write_waits_for_its_gate_and_commits_after_the_client_gave_up() {
    let env = Env::new(None).await;
    let gate = crate::Gate::new();
    env.gl.inject(Route::Create, Fault::Hold(gate.clone()), 1);
    let request = env
        .req(Method::POST, "/projects/4/issues", REPORTER)
        .json(&json!({"title": "held"}))
        .send();
    let client = tokio::spawn(request);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while gate.arrived() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "never reached the gate"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The client gives up; the server still holds the write.
    client.abort();
    assert!(env.gl.issues(PROJECT).is_empty());
    assert_eq!(gate.passed(), 0);
    // Other requests are not held.
    assert_eq!(env.list("").await.status(), StatusCode::OK);
    gate.open();
    while gate.passed() == 0 {
        assert!(std::time::Instant::now() < deadline, "never let through");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        env.gl.issues(PROJECT).len(),
        1,
        "committed once let through"
    );
    assert_eq!(env.gl.writes(), 1);
}

#[tokio::test]
async fn form_bodies_and_query_parameters_are_accepted() {
    let env = Env::new(None).await;
    let created = env
        .req(Method::POST, "/projects/acme%2Fplatform/issues", REPORTER)
        .form(&[("title", "a + b & c"), ("labels[]", "x"), ("labels[]", "y")])
        .send()
        .await
        .expect("send");
    assert_eq!(created.status(), StatusCode::CREATED);
    let issue = json_of(created).await;
    assert_eq!(issue["title"], "a + b & c");
    assert_eq!(issue["labels"], json!(["x", "y"]));
    assert_eq!(issue["description"], Value::Null);
    assert_eq!(issue["type"], "ISSUE");

    let edited = env
        .req(
            Method::PUT,
            "/projects/4/issues/1?state_event=close",
            REPORTER,
        )
        .send()
        .await
        .expect("send");
    assert_eq!(json_of(edited).await["state"], "closed");
    let bad = env
        .req(Method::PUT, "/projects/4/issues/1", REPORTER)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let nothing = env
        .req(Method::PUT, "/projects/4/issues/1", REPORTER)
        .send()
        .await;
    assert_eq!(nothing.expect("send").status(), StatusCode::BAD_REQUEST);
}

#[test]
fn percent_decoding_and_timestamps() {
    assert_eq!(percent_decode("acme%2Fplatform", false), "acme/platform");
    assert_eq!(percent_decode("a+b%zz%4", true), "a b%zz%4");
    assert_eq!(
        query_pairs("iids%5B%5D=1&x&y=%C3%A9"),
        vec![
            ("iids[]".to_owned(), "1".to_owned()),
            ("x".to_owned(), String::new()),
            ("y".to_owned(), "é".to_owned())
        ]
    );
    let utc = |s: &str| parse_time(s).map(|t| t.to_rfc3339());
    let want = Some("2023-11-07T08:46:08.304+00:00".to_owned());
    assert_eq!(utc("2023-11-07T09:46:08.304+0100"), want);
    assert_eq!(utc("2023-11-07T09:46:08.304+01:00"), want);
    assert_eq!(utc("2023-11-07T08:46:08.304Z"), want);
    assert_eq!(
        utc("2023-11-07T08:46:08"),
        Some("2023-11-07T08:46:08+00:00".to_owned())
    );
    assert_eq!(
        utc("2023-11-07"),
        Some("2023-11-07T00:00:00+00:00".to_owned())
    );
    assert_eq!(utc("2023-11-07T09:46:08 01:00"), None);
    // Stored like Postgres: microseconds.
    assert_eq!(
        utc("2023-11-07T08:46:08.123456789Z"),
        Some("2023-11-07T08:46:08.123456+00:00".to_owned())
    );
}

#[tokio::test]
async fn free_tier_keeps_scoped_labels_side_by_side() {
    let env = Env::new(None).await;
    let issue = json_of(
        env.create(REPORTER, json!({"title": "t", "labels": "s::a"}))
            .await,
    )
    .await;
    let iid = issue["iid"].as_u64().expect("iid");
    let added = json_of(env.edit(REPORTER, iid, json!({"add_labels": "s::b"})).await).await;
    assert_eq!(
        added["labels"],
        json!(["s::a", "s::b"]),
        "no exclusivity on Free"
    );
    let swapped = json_of(
        env.edit(
            REPORTER,
            iid,
            json!({"add_labels": "s::c", "remove_labels": "s::a,s::b"}),
        )
        .await,
    )
    .await;
    assert_eq!(swapped["labels"], json!(["s::c"]));
}

#[tokio::test]
async fn label_events_carry_an_owners_times_and_now_for_others() {
    let env = Env::new(None).await;
    let created_at = "2024-03-01T09:00:00Z";
    let issue = json_of(
        env.create(
            OWNER,
            json!({"title": "t", "labels": "s::a", "created_at": created_at}),
        )
        .await,
    )
    .await;
    let iid = issue["iid"].as_u64().expect("iid");
    let moved_at = "2024-03-04T10:30:00Z";
    let r = env
        .edit(
            OWNER,
            iid,
            json!({"add_labels": "s::b", "remove_labels": "s::a", "updated_at": moved_at}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // A Reporter's updated_at is ignored: the event is stamped with the server's time.
    let r = env
        .edit(
            REPORTER,
            iid,
            json!({"add_labels": "s::c", "remove_labels": "s::b", "updated_at": moved_at}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let events = json_of(
        env.req(
            Method::GET,
            &format!("/projects/4/issues/{iid}/resource_label_events"),
            REPORTER,
        )
        .send()
        .await
        .expect("send"),
    )
    .await;
    let rows: Vec<(String, String, String)> = events
        .as_array()
        .expect("list")
        .iter()
        .map(|e| {
            (
                e["label"]["name"].as_str().unwrap_or("").to_string(),
                e["action"].as_str().unwrap_or("").to_string(),
                e["created_at"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows[0],
        (
            "s::a".into(),
            "add".into(),
            "2024-03-01T09:00:00.000Z".into()
        )
    );
    assert_eq!(rows[1].0, "s::b");
    assert_eq!(rows[1].2, "2024-03-04T10:30:00.000Z");
    assert_eq!(
        rows[2],
        (
            "s::a".into(),
            "remove".into(),
            "2024-03-04T10:30:00.000Z".into()
        )
    );
    assert_eq!(rows.len(), 5);
    assert!(!rows[3].2.starts_with("2024-03-04"), "{rows:?}");
    assert_eq!(events[0]["resource_type"], json!("Issue"));
    // The same fields as a captured GitLab body.
    let captured: Value = serde_json::from_str(include_str!(
        "../../../../tests/fixtures/gitlab-label-events.json"
    ))
    .expect("fixture parses");
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    };
    assert_eq!(keys(&events[0]), keys(&captured[0]));
    assert_eq!(keys(&events[0]["label"]), keys(&captured[0]["label"]));
    assert_eq!(events[0]["user"]["username"], json!("olga"));
    assert_eq!(env.gl.label_events(PROJECT, iid).len(), 5);
    // First use created project labels.
    assert_eq!(env.gl.project_labels(PROJECT), vec!["s::a", "s::b", "s::c"]);
}

#[tokio::test]
async fn group_labels_need_a_group_role_project_labels_a_planner() {
    let env = Env::new(None).await;
    let label = json!({"name": "jira-status::To Do", "color": "#42526E"});
    let post = |path: &str, token: &str| env.req(Method::POST, path, token).json(&label).send();
    // A project Owner is no group member: the group refuses.
    let r = post("/groups/acme/labels", OWNER).await.expect("send");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post("/groups/acme/labels", OUTSIDER).await.expect("send");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    env.gl.grant_group("acme", "rita", Role::Reporter);
    let r = post("/groups/acme%2F/labels", REPORTER)
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "no such group");
    let r = post("/groups/acme/labels", REPORTER).await.expect("send");
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = post("/groups/acme/labels", REPORTER).await.expect("send");
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = post("/projects/4/labels", GUEST).await.expect("send");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post("/projects/4/labels", OWNER).await.expect("send");
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "the group's label is visible"
    );
    assert_eq!(env.gl.group_labels("acme"), vec!["jira-status::To Do"]);
    // The group role counts for the project too, and the listing shows group labels.
    let project = json_of(
        env.req(Method::GET, "/projects/4", REPORTER)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        project["permissions"]["group_access"]["access_level"],
        json!(20)
    );
    assert_eq!(project["namespace"]["kind"], json!("group"));
    let listed = json_of(
        env.req(
            Method::GET,
            "/projects/4/labels?include_ancestor_groups=true",
            REPORTER,
        )
        .send()
        .await
        .expect("send"),
    )
    .await;
    assert_eq!(listed[0]["name"], json!("jira-status::To Do"));
    assert_eq!(listed[0]["is_project_label"], json!(false));
    // An issue given that name uses the group label instead of creating a project label.
    let issue = json_of(
        env.create(
            REPORTER,
            json!({"title": "t", "labels": "jira-status::To Do"}),
        )
        .await,
    )
    .await;
    assert_eq!(issue["labels"], json!(["jira-status::To Do"]));
    assert!(env.gl.project_labels(PROJECT).is_empty());
}

#[tokio::test]
async fn incidents_need_a_reporter_on_create_and_on_edit() {
    let env = Env::new(None).await;
    env.gl.add_user("pia", "planner-token");
    env.gl.grant(PROJECT, "pia", Role::Planner);
    let issue = json_of(
        env.create(
            "planner-token",
            json!({"title": "p", "issue_type": "incident"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        issue["issue_type"],
        json!("issue"),
        "201, but a plain issue"
    );
    let iid = issue["iid"].as_u64().expect("iid");
    let r = env
        .edit("planner-token", iid, json!({"issue_type": "incident"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        json_of(r).await["issue_type"],
        json!("issue"),
        "200, still an issue"
    );
    let r = env
        .edit(REPORTER, iid, json!({"issue_type": "incident"}))
        .await;
    assert_eq!(json_of(r).await["issue_type"], json!("incident"));
    let r = env
        .edit(REPORTER, iid, json!({"issue_type": "outage"}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
