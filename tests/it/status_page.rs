//! The status page at `/` of the service's `[metrics]` listener: the real binary against the
//! simulated servers, read over HTTP and in headless Chromium. The site has a month of
//! history (for the lead-time report), a webhook, and a second mapping into a GitLab project
//! that does not exist and whose name is markup.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use jgr_sim::world::{SimMapping, SimWorld, GITLAB_TOKEN, JIRA_TOKEN, WEBHOOK_SECRET};
use serde_json::Value;

use crate::browser::{Browser, Image};
use crate::dashboards::wait_metric;
use crate::harness::*;

/// A GitLab project path that is markup (the config accepts it: no blank, no scheme).
const HOSTILE: &str = "acme/<script>alert(1)</script>";
/// How a page shows it: as text.
const HOSTILE_SHOWN: &str = "acme/&lt;script&gt;alert(1)&lt;/script&gt;";
const OPS: &str = "OPS->acme/<script>alert(1)</script>";
/// Every issue of the site has this in its title; no page may show it.
const TITLE: &str = "Confidential plan";
const DAY: i64 = 86_400;

/// Three issues closed after 2, 6 and 8 days (median 6.0 d, 85th percentile 7.4 d) and one
/// open, a month ago; then the hostile mapping, which the sim does not know.
async fn site() -> SimWorld {
    let mut w = world("status-page", |o| o.webhook = true).await;
    w.jira.pause_webhooks(true);
    let start = Utc::now() - chrono::Duration::days(30);
    let at = |s: i64| w.clock.set(start + chrono::Duration::seconds(s));
    at(0);
    let a = w.jira.create_issue("VSA", &format!("{TITLE} A"), "Story");
    at(DAY);
    let b = w.jira.create_issue("VSA", &format!("{TITLE} B"), "Story");
    at(2 * DAY);
    w.jira.transition(&a.key, "Done", "done");
    at(3 * DAY);
    let c = w.jira.create_issue("VSA", &format!("{TITLE} C"), "Story");
    at(7 * DAY);
    w.jira.transition(&b.key, "Done", "done");
    at(11 * DAY);
    w.jira.transition(&c.key, "Done", "done");
    at(13 * DAY);
    w.jira.create_issue("VSA", &format!("{TITLE} D"), "Story");
    w.clock.set(Utc::now());
    w.opts.mappings.push(SimMapping::new("OPS", HOSTILE));
    w
}

fn spawn_logged(config: &str, sockets: &Sockets, log: &Path) -> Running {
    let file = std::fs::File::create(log).expect("log file");
    spawn_service_with(config, sockets, |cmd| {
        cmd.stderr(file);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_shows_each_mapping_the_webhook_and_the_reports_figures_escaped() {
    let mut w = site().await;
    let sockets = Sockets::for_world(&w);
    let port = sockets.metrics_port();
    let config = service_config(&w, port, "");
    let child = spawn_logged(&config, &sockets, &w.opts.dir.join("service.log"));

    // VSA's four issues are mirrored; OPS's project is refused, which only a person can fix.
    assert!(gitlab_reaches(&w, PROJECT, 4, Duration::from_secs(30)).await);
    wait_metric(port, &format!("jgr_needs_person{{mapping=\"{OPS}\"}}"), 1.0).await;
    // A Jira event that reaches GitLab, and a forged delivery.
    w.jira.pause_webhooks(false);
    w.jira.create_issue("VSA", &format!("{TITLE} E"), "Task");
    assert!(gitlab_reaches(&w, PROJECT, 5, Duration::from_secs(30)).await);
    let forged = reqwest::Client::new()
        .post(w.webhook_url().expect("a webhook"))
        .body("{}")
        .send()
        .await
        .expect("the webhook listens");
    assert_eq!(forged.status().as_u16(), 401);
    wait_metric(port, "jgr_webhook_events_total{outcome=\"queued\"}", 1.0).await;

    let url = format!("http://127.0.0.1:{port}/");
    let started = Instant::now();
    let response = reqwest::get(&url).await.expect("the page answers");
    let headers = response.headers().clone();
    let body = response.text().await.expect("a body");
    eprintln!(
        "status page: {} bytes in {:?} (debug build)",
        body.len(),
        started.elapsed()
    );
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let policy = headers["content-security-policy"].to_str().expect("ASCII");
    assert!(
        policy.starts_with("default-src 'none'; style-src 'sha256-") && !policy.contains("unsafe"),
        "{policy}"
    );
    page_shows_the_site(&body, &w);
    page_shows_the_reports_figures_and_chart(&body, &config).await;

    let head = reqwest::Client::new()
        .head(&url)
        .send()
        .await
        .expect("HEAD answers");
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(head.headers()["content-type"], "text/html; charset=utf-8");
    assert!(head.text().await.expect("empty").is_empty());

    in_a_browser(&url, &body).await;

    // A reload brings a new mapping onto the page.
    w.opts.mappings.push(SimMapping::new("NEW", "acme/new"));
    service_config(&w, port, "");
    signal(&child, "HUP");
    let reloaded = Instant::now();
    while !http_get(port, "/")
        .await
        .1
        .contains("mapping NEW-&gt;acme/new</p>")
    {
        assert!(
            reloaded.elapsed() < Duration::from_secs(20),
            "the reload never showed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    signal(&child, "TERM");
    let (code, _, _) = wait_exit(child, Duration::from_secs(12)).await;
    assert_eq!(code, Some(0));
}

fn page_shows_the_site(body: &str, w: &SimWorld) {
    let gitlab = w.gitlab.url();
    for shown in [
        // The mapping, linked to its projects, with its mirrors and last pass.
        format!("<a href=\"{gitlab}/acme/platform\" rel=\"noreferrer\">acme/platform</a>"),
        "<dt>Mirrors</dt><dd>5</dd>".into(),
        "<span class=\"ok\">ok</span> · ".into(),
        "<dt>Next pass</dt>".into(),
        // The hostile mapping, as text, with what to do.
        format!("mapping OPS-&gt;{HOSTILE_SHOWN}</p>"),
        format!("<a href=\"{gitlab}/{HOSTILE_SHOWN}\" rel=\"noreferrer\">{HOSTILE_SHOWN}</a>"),
        "Needs a person.".into(),
        "check gitlab_project".into(),
        "1 of 2 mapping(s) need a person".into(),
        // The webhook: the event, the forged delivery.
        "<h2>Jira webhook</h2>".into(),
        "<dt>Last event</dt><dd>20".into(),
        "accepted: queued 1".into(),
        "unauthorized 1".into(),
        // The links.
        "<a href=\"/metrics\" rel=\"noreferrer\">/metrics</a>".into(),
    ] {
        assert!(body.contains(&shown), "{shown:?} in {body}");
    }
    let lower = body.to_lowercase();
    assert!(!lower.contains("<script"), "markup from the config: {body}");
    for secret in [TITLE, JIRA_TOKEN, GITLAB_TOKEN, WEBHOOK_SECRET] {
        assert!(!body.contains(secret), "{secret:?} on the page");
    }
}

/// The same figures and the same chart as `report` prints and draws.
async fn page_shows_the_reports_figures_and_chart(body: &str, config: &str) {
    let dir = Path::new(config).parent().expect("a directory");
    let svg = dir.join("report.svg");
    // The report over the page's own window, so the two agree at any hour (a window that
    // ended "now" for each would differ in its dates across midnight).
    let (since, until) = page_window(body);
    let out = run_binary(vec![
        "report".into(),
        "--config".into(),
        config.into(),
        "--since".into(),
        since,
        "--until".into(),
        until,
        "--format".into(),
        "json".into(),
        "--svg".into(),
        svg.display().to_string(),
    ])
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON");
    let vsa = &report["mappings"][0];
    assert_eq!(
        (vsa["closed"].as_u64(), vsa["created"].as_u64()),
        (Some(3), Some(5))
    );
    let days = |v: &Value| v.as_f64().map(|s| (s / DAY as f64 * 10.0).round() / 10.0);
    assert_eq!(days(&vsa["lead_time_median_s"]), Some(6.0));
    assert_eq!(days(&vsa["lead_time_p85_s"]), Some(7.4));
    assert!(
        body.contains(
            "<td>VSA-&gt;acme/platform</td><td>3</td><td>5</td><td>6.0 d</td><td>7.4 d</td>"
        ),
        "{body}"
    );
    assert!(body.contains("(the last 12 weeks)"), "{body}");
    let chart = std::fs::read_to_string(&svg).expect("the chart");
    assert!(
        body.contains(chart.trim_end()),
        "the report's chart in {body}"
    );
}

/// The lead-time window the page states to the minute ("Jira created → done, 2026-09-14 05:36
/// … 2026-12-07 05:36 UTC"), as RFC 3339 times `report` takes: its end at the minute's last
/// second, so what happened during that minute before the page was drawn stays in, and the
/// dates do not change.
fn page_window(body: &str) -> (String, String) {
    let rest = body
        .split_once("Jira created → done, ")
        .expect("the page states its window")
        .1;
    let (window, _) = rest.split_once(" UTC").expect("UTC");
    let (since, until) = window.split_once(" … ").expect("two ends");
    let rfc3339 = |t: &str, second: &str| format!("{}:{second}Z", t.replacen(' ', "T", 1));
    // The page's minute ends at :59.999 (Jira's times are kept to the millisecond): an issue
    // created at :59.221 is in a window the page shows as ending at that minute.
    (rfc3339(since, "00"), rfc3339(until, "59.999"))
}

/// Chromium shows the page with its style sheet (allowed by the policy's hash), light on a
/// phone and dark on a desktop, and draws the chart; the screenshots stay in
/// target/status-page/.
async fn in_a_browser(url: &str, body: &str) {
    let Some(browser) = Browser::find("the status page's browser test") else {
        return;
    };
    let url = url.to_string();
    let started = Instant::now();
    let (dom, phone, phone_dark, desktop) = tokio::task::spawn_blocking(move || {
        let dir = artifacts();
        (
            browser.dom(&url),
            browser.screenshot(&url, (360, 3000), false, &dir.join("phone-light.png")),
            browser.screenshot(&url, (360, 3000), true, &dir.join("phone-dark.png")),
            browser.screenshot(&url, (1000, 1700), true, &dir.join("desktop-dark.png")),
        )
    })
    .await
    .expect("join");
    eprintln!("browser: 4 loads in {:?}", started.elapsed());

    // Parsed as HTML: the chart is an SVG element, the hostile name a text.
    assert!(
        dom.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{dom}"
    );
    assert!(dom.contains(&format!("OPS-&gt;{HOSTILE_SHOWN}")), "{dom}");
    assert!(!dom.to_lowercase().contains("<script"), "{dom}");
    assert_eq!(
        dom.matches("<section").count(),
        body.matches("<section").count()
    );
    // The page's own colours (so the policy let its style sheet apply), light and dark, and
    // the chart drawn on both.
    assert_eq!((phone.width, phone.height), (360, 3000));
    assert_eq!(phone.at(2, 2), [0xf4, 0xf5, 0xf7]);
    assert_eq!(phone_dark.at(2, 2), [0x10, 0x13, 0x17]);
    assert_eq!(desktop.at(2, 2), [0x10, 0x13, 0x17]);
    // At 360 px the chart keeps its drawn size (its newest weeks in view, bars and line both
    // thick enough to see), light and dark; on a desktop it fits the page.
    chart_is_drawn(&phone, true);
    chart_is_drawn(&phone_dark, true);
    chart_is_drawn(&desktop, true);
    // Dark is dark in the chart too: no white block behind it.
    for (name, dark) in [("phone", &phone_dark), ("desktop", &desktop)] {
        let white = dark.count_near([0xff, 0xff, 0xff], 8);
        assert!(white < 500, "{name}: {white} white px in dark mode");
    }
}

/// Bars in the chart's blue and, if asked, its line in orange (report/svg.rs).
fn chart_is_drawn(image: &Image, with_line: bool) {
    let bars = image.count_near([0x6b, 0xae, 0xd6], 6);
    let line = image.count_near([0xd9, 0x48, 0x01], 6);
    assert!(
        bars > 400 && (line > 100 || !with_line),
        "bars {bars} px, line {line} px"
    );
}

/// Where the screenshots stay after the test (target/status-page/).
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/status-page");
    std::fs::create_dir_all(&dir).expect("artifact directory");
    dir
}
