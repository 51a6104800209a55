//! The hostile faults, driven over real HTTP: what a client sees of each.

use std::time::Duration;

use serde_json::{json, Value};

use crate::gitlab::{FakeGitlab, GitlabOptions, Role};
use crate::jira::{DateHeader, FakeJira, Hostile, JiraOptions, PageTrap};
use crate::{Fault, Route};

const TOKEN: &str = "t0ken";

async fn gitlab() -> FakeGitlab {
    let gl = FakeGitlab::start(GitlabOptions::default())
        .await
        .expect("start");
    gl.add_project("acme/platform");
    gl.add_user("bot", TOKEN);
    gl.grant("acme/platform", "bot", Role::Owner);
    gl
}

async fn create(http: &reqwest::Client, gl: &FakeGitlab) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{}/api/v4/projects/4/issues", gl.url()))
        .header("PRIVATE-TOKEN", TOKEN)
        .json(&json!({"title": "A"}))
        .send()
        .await
}

#[tokio::test]
async fn a_reset_answers_nothing_and_a_commit_then_reset_keeps_the_write() {
    let gl = gitlab().await;
    let http = reqwest::Client::new();
    gl.inject(Route::Create, Fault::Reset, 1);
    let e = create(&http, &gl).await.expect_err("no answer");
    assert!(!e.is_connect(), "the request reached the server: {e:?}");
    assert!(gl.issues("acme/platform").is_empty(), "nothing done");
    gl.inject(Route::Create, Fault::CommitThenReset, 1);
    create(&http, &gl).await.expect_err("no answer");
    assert_eq!(gl.issues("acme/platform").len(), 1, "done, unanswered");
    let ok = create(&http, &gl).await.expect("a new connection");
    assert_eq!(ok.status(), 201);
}

#[tokio::test]
async fn a_server_that_goes_down_refuses_connections_then_listens_again() {
    let gl = gitlab().await;
    let http = reqwest::Client::new();
    gl.inject(Route::Create, Fault::Down(Duration::from_millis(500)), 1);
    create(&http, &gl).await.expect_err("reset");
    let refused = create(&http, &gl).await.expect_err("nothing listens");
    assert!(refused.is_connect(), "{refused:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match create(&http, &gl).await {
            Ok(r) => {
                assert_eq!(r.status(), 201);
                break;
            }
            Err(e) if e.is_connect() && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("never came back: {e:?}"),
        }
    }
    assert_eq!(gl.issues("acme/platform").len(), 1);
}

#[tokio::test]
async fn a_huge_answer_is_made_as_it_is_read() {
    let gl = gitlab().await;
    gl.inject(
        Route::Read,
        Fault::Huge {
            bytes: 512 << 20,
            declared: false,
        },
        1,
    );
    let mut resp = reqwest::Client::new()
        .get(format!("{}/api/v4/projects/4/issues", gl.url()))
        .header("PRIVATE-TOKEN", TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.content_length(), None, "chunked");
    let mut read = 0usize;
    while read < (1 << 20) {
        read += resp.chunk().await.expect("chunk").expect("more").len();
    }
    drop(resp);
    assert!(gl.streamed_bytes() < 64 << 20, "{}", gl.streamed_bytes());
}

async fn jira(page_cap: usize) -> FakeJira {
    let j = FakeJira::start(JiraOptions {
        page_cap,
        ..JiraOptions::default()
    })
    .await
    .expect("start");
    j.add_project("VSA");
    for i in 0..3 {
        j.create_issue("VSA", &format!("Issue {i}"), "Task");
    }
    j
}

async fn search(j: &FakeJira, token: Option<&str>) -> (Value, reqwest::header::HeaderMap) {
    let mut body =
        json!({"jql": "project = VSA ORDER BY key ASC", "maxResults": 100, "fields": ["summary"]});
    if let Some(t) = token {
        body["nextPageToken"] = json!(t);
    }
    let resp = reqwest::Client::new()
        .post(format!("{}/rest/api/3/search/jql", j.url()))
        .basic_auth("bot@example.com", Some("jira-token"))
        .json(&body)
        .send()
        .await
        .expect("answer");
    let headers = resp.headers().clone();
    (resp.json().await.expect("json"), headers)
}

#[tokio::test]
async fn page_traps_loop_or_never_end() {
    let j = jira(2).await;
    j.set_hostile(Hostile {
        page_tokens: Some(PageTrap::Loop),
        ..Hostile::default()
    });
    let mut tokens = Vec::new();
    let mut token = None;
    for _ in 0..4 {
        let (page, _) = search(&j, token.as_deref()).await;
        assert_eq!(page["isLast"], json!(false), "{page}");
        token = page["nextPageToken"].as_str().map(str::to_string);
        tokens.push(token.clone().expect("a token"));
    }
    assert_eq!(tokens[0], tokens[2], "A→B→A: {tokens:?}");
    j.set_hostile(Hostile {
        page_tokens: Some(PageTrap::EverNew),
        ..Hostile::default()
    });
    let mut seen = std::collections::HashSet::new();
    let mut token = None;
    for _ in 0..6 {
        let (page, _) = search(&j, token.as_deref()).await;
        assert!(!page["issues"].as_array().expect("issues").is_empty());
        token = page["nextPageToken"].as_str().map(str::to_string);
        assert!(
            seen.insert(token.clone().expect("a token")),
            "{token:?} again"
        );
    }
}

#[tokio::test]
async fn the_date_header_is_the_servers_clock_skewed_or_unreadable() {
    let j = jira(37).await;
    j.clock().advance(Duration::from_secs(3 * 86_400));
    let date = |h: &reqwest::header::HeaderMap| {
        let v = h.get("date").and_then(|v| v.to_str().ok()).unwrap_or("");
        chrono::DateTime::parse_from_rfc2822(v)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let (_, h) = search(&j, None).await;
    let at = date(&h).expect("a date");
    let expected = j.clock().now();
    assert!(
        (expected - at).num_seconds().abs() <= 2,
        "{at} vs {expected}"
    );
    j.set_hostile(Hostile {
        date: DateHeader::Skewed(chrono::TimeDelta::hours(-5)),
        ..Hostile::default()
    });
    let (_, h) = search(&j, None).await;
    let at = date(&h).expect("a date");
    assert!((expected - at).num_minutes() >= 299, "{at}");
    j.set_hostile(Hostile {
        date: DateHeader::Garbage,
        ..Hostile::default()
    });
    let (_, h) = search(&j, None).await;
    assert!(date(&h).is_none(), "{h:?}");
}
