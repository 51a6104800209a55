//! Misbehaving servers: throttles, absurd headers, endless or looping page chains, huge
//! bodies, future-dated issues, skewed clocks, reset and refused connections. Each ends a
//! request or a pass cleanly and loudly, never wedges it, never makes it big, and never
//! teaches the create pacer something false.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jgr_sim::jira::{DateHeader, Hostile};
use jgr_sim::world::SimWorld;
use jgr_sim::{Fault, PageTrap, Route};
use jira_gitlab_reconciler::domain::PassKind;
use jira_gitlab_reconciler::metrics::Metrics;
use jira_gitlab_reconciler::reconcile::{Mode, PassReport, Reconciler};
use jira_gitlab_reconciler::stop::Stop;
use jira_gitlab_reconciler::store::Store;

use crate::harness::*;

/// The create pacer's saved state for the world's GitLab.
fn saved_pacer(w: &SimWorld) -> Option<jira_gitlab_reconciler::gitlab::PacerSnapshot> {
    Store::open(&w.state_path())
        .expect("store")
        .cache()
        .pacer(&w.gitlab.url())
        .expect("readable")
}

/// A library pass with its own stop handle (a process that can be stopped part-way).
async fn pass_with_stop(w: &SimWorld, stop: Stop) -> Vec<PassReport> {
    let r = Reconciler::with_stop(config(w), Arc::new(Metrics::new()), stop).expect("reconciler");
    let store = Store::open(&w.state_path()).expect("store");
    r.pass(Mode::Apply(&store), PassKind::Incremental).await
}

// ---------------------------------------------------------------------------------------------
// The create pacer learns only from GitLab's create limit.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_general_throttle_holds_creates_but_teaches_the_pacer_nothing() {
    // GitLab's general API throttle (429, Retry-After: 1, RateLimit-Name:
    // throttle_authenticated_api) on one create in twenty, after the pacer has watched more
    // than a whole create window (300 ms): creates one at a time, each 20 ms.
    let w = world("throttle-no-lesson", |o| {
        o.gitlab_config = "concurrency = 1\n".into();
    })
    .await;
    seed_issues(&w, 60, 1000);
    let throttle = Fault::RateLimited {
        retry_after: Some("1".into()),
    };
    for _ in 0..3 {
        w.gitlab
            .inject(Route::Create, Fault::Delay(Duration::from_millis(20)), 19);
        w.gitlab.inject(Route::Create, throttle.clone(), 1);
    }
    let started = Instant::now();
    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(r.counts.created, 60, "{}", r.summary());
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "each throttle's Retry-After is waited out: {:?}",
        started.elapsed()
    );
    let learned = saved_pacer(&w).and_then(|s| s.learned);
    assert_eq!(learned, None, "a throttle is a hold, not the create limit");
    assert_converged(&w, "VSA", PROJECT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learning_a_fixed_window_limit_costs_only_the_creates_in_flight_and_survives_a_restart() {
    // GitLab's create limit as GitLab counts it: a fixed window that opens with the first
    // create, refused creates counted too, a bare 429. 20 creates per second, 16 at a time.
    let window = Duration::from_millis(1000);
    let w = world("fixed-window", |o| {
        o.create_limit_per_minute = Some(20);
        o.create_window = Some(window);
    })
    .await;
    seed_issues(&w, 90, 1000);
    // The first process is stopped once 45 issues are mirrored; a second one finishes.
    let stop = Stop::new();
    let stop_at_45 = async {
        let deadline = Instant::now() + Duration::from_secs(60);
        while w.gitlab.issue_count(PROJECT) < 45 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.request();
    };
    let started = Instant::now();
    let (first, ()) = tokio::join!(pass_with_stop(&w, stop.clone()), stop_at_45);
    let first_took = started.elapsed();
    let refused_first = w.gitlab.refused_creates();
    let learned = saved_pacer(&w).and_then(|s| s.learned).map(|(n, _)| n);
    // About 20: creates on sixteen connections may reach the server in a slightly different
    // order than they left, and a probe may fit a window the server had just reset.
    assert!(
        learned.is_some_and(|n| (15..=21).contains(&n)),
        "learned {learned:?}: {}",
        first[0].summary()
    );
    // The creates in flight when the first refusal came back, then at most one refused
    // create (a probe) in each later window.
    let windows = first_took.as_millis().div_ceil(window.as_millis()) as usize;
    assert!(
        refused_first <= 16 + (windows - 1),
        "learning cost {refused_first} refused creates in {windows} windows"
    );

    let started = Instant::now();
    let r = pass_ok(&w, PassKind::Incremental).await;
    let windows = started.elapsed().as_millis().div_ceil(window.as_millis()) as usize;
    assert_eq!(r.counts.created + first[0].counts.created, 90);
    let refused_second = w.gitlab.refused_creates() - refused_first;
    assert!(
        refused_second <= windows,
        "the restarted process started from the saved limit, yet {refused_second} creates were refused in {windows} windows"
    );
    assert_converged(&w, "VSA", PROJECT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_a_server_that_refuses_at_random_creation_speed_recovers_by_itself() {
    // A GitLab whose create limit misbehaves: a bare 429 on one create in eight, at random.
    // One process (the service) runs both passes.
    let w = world("random-refusals", |_| {}).await;
    let r = Reconciler::new(config(&w), Arc::new(Metrics::new())).expect("reconciler");
    let store = Store::open(&w.state_path()).expect("store");
    seed_issues(&w, 60, 1000);
    w.gitlab
        .random_faults_on(Route::Create, 11, 0.125, vec![Fault::Status(429)]);
    let first = r.pass(Mode::Apply(&store), PassKind::Incremental).await;
    assert!(reports_ok(&first), "{:?}", first[0].failures);
    let taught = r.gitlab().pacer().learned_limit();
    let taught = taught.expect("a bare 429 is a lesson");

    // The refusals stop: the limit the random ones taught is probed and grows back, one
    // create beyond it at a time, with no refused create.
    w.gitlab.clear_faults();
    w.clock.advance(MINUTE);
    seed_issues(&w, 120, 1000);
    let requests = w.gitlab.requests();
    let second = r.pass(Mode::Apply(&store), PassKind::Incremental).await;
    assert!(reports_ok(&second), "{:?}", second[0].failures);
    assert_eq!(second[0].counts.created, 120, "{}", second[0].summary());
    let grown = r.gitlab().pacer().learned_limit();
    assert!(
        grown.is_some_and(|n| n > taught),
        "learned {taught} from random refusals, then {grown:?} without any"
    );
    assert_eq!(
        w.gitlab.requests() - requests,
        120,
        "the creates, none refused"
    );
    assert_converged(&w, "VSA", PROJECT);
}

// ---------------------------------------------------------------------------------------------
// Every wait is bounded and overflow-free; Jira's rate-limit headers are read whole.

/// The one failure of a pass that must fail, as text.
async fn failed_pass(w: &SimWorld) -> String {
    let reports = pass(w, PassKind::Incremental).await;
    assert!(!reports[0].ok(), "the pass should fail");
    reports[0].failure_lines().join("\n")
}

#[tokio::test]
async fn a_retry_after_of_2_64_fails_the_create_naming_it_instead_of_panicking() {
    let w = world("retry-after-2-64", |_| {}).await;
    seed_issues(&w, 1, 1000);
    pass_ok(&w, PassKind::Incremental).await;
    let checkpoint = state_status(&w).expect("state").checkpoint;
    w.clock.advance(MINUTE);
    w.jira.create_issue("VSA", "Refused", "Task");
    let absurd = "18446744073709551615";
    w.gitlab.inject(
        Route::Create,
        Fault::RateLimited {
            retry_after: Some(absurd.into()),
        },
        1,
    );
    let failure = failed_pass(&w).await;
    for needle in [
        "GitLab",
        "Retry-After: 18446744073709551615",
        "retry.max_wait",
    ] {
        assert!(failure.contains(needle), "{needle:?} in {failure}");
    }
    assert_eq!(state_status(&w).expect("state").checkpoint, checkpoint);
    // The next pass creates it.
    pass_ok(&w, PassKind::Incremental).await;
    assert_converged(&w, "VSA", PROJECT);
}

#[tokio::test]
async fn a_wait_longer_than_max_wait_fails_the_request_at_once_whichever_header_names_it() {
    let w = world("wait-too-long", |_| {}).await;
    seed_issues(&w, 2, 1000);
    pass_ok(&w, PassKind::Incremental).await;
    w.clock.advance(MINUTE);
    w.jira.create_issue("VSA", "Held", "Task");
    let in_a_day = (chrono::Utc::now().timestamp() + 86_400).to_string();
    let cases: Vec<(&SimWorld, Route, Fault, &str)> = vec![
        // A create GitLab asks to hold for a day (before: every create held for a day).
        (
            &w,
            Route::Create,
            Fault::RateLimited {
                retry_after: Some("86400".into()),
            },
            "Retry-After: 86400",
        ),
        // A rate-limit reset a day away, without Retry-After.
        (
            &w,
            Route::Create,
            Fault::Answer {
                status: 429,
                headers: vec![("RateLimit-Reset".into(), in_a_day.clone())],
            },
            "RateLimit-Reset: ",
        ),
    ];
    for (w, route, fault, needle) in cases {
        w.gitlab.inject(route, fault, 1);
        let started = Instant::now();
        let failure = tokio::time::timeout(Duration::from_secs(60), failed_pass(w))
            .await
            .unwrap_or_else(|_| panic!("{needle}: still waiting after a minute"));
        assert!(
            failure.contains("GitLab") && failure.contains(needle),
            "{needle}: {failure}"
        );
        assert!(
            failure.contains("longer than retry.max_wait (5m)"),
            "{failure}"
        );
        assert!(started.elapsed() < Duration::from_secs(30));
    }
    // Jira's ISO 8601 reset, a day away.
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:%MZ")
        .to_string();
    w.jira.inject(
        Route::Read,
        Fault::Answer {
            status: 429,
            headers: vec![("X-RateLimit-Reset".into(), tomorrow.clone())],
        },
        1,
    );
    let failure = failed_pass(&w).await;
    assert!(
        failure.contains("Jira") && failure.contains(&format!("X-RateLimit-Reset: {tomorrow}")),
        "{failure}"
    );
}

#[tokio::test]
async fn jiras_iso_reset_is_waited_out_and_its_reason_logged() {
    let w = world("jira-iso-reset", |_| {}).await;
    seed_issues(&w, 2, 1000);
    // No Retry-After: the reset instant (ISO 8601), two seconds ahead, and the reason.
    let reset = (chrono::Utc::now() + chrono::Duration::seconds(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    w.jira.inject(
        Route::Read,
        Fault::Answer {
            status: 429,
            headers: vec![
                ("X-RateLimit-Reset".into(), reset),
                ("RateLimit-Reason".into(), "jira-burst-based".into()),
            ],
        },
        1,
    );
    let started = Instant::now();
    let out = run_binary(reconcile_args(&w)).await;
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the reset was not waited for: {:?}",
        started.elapsed()
    );
    assert!(err.contains("RateLimit-Reason: jira-burst-based"), "{err}");
    assert_converged(&w, "VSA", PROJECT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_on_one_request_holds_the_clients_other_requests() {
    let w = world("hold-all", |o| o.gitlab_config = "concurrency = 4\n".into()).await;
    seed_issues(&w, 40, 1000);
    w.gitlab.record_arrivals();
    // The sixth create meets the general throttle: a second's hold for everything.
    w.gitlab
        .inject(Route::Create, Fault::Delay(Duration::ZERO), 5);
    w.gitlab.inject(
        Route::Create,
        Fault::RateLimited {
            retry_after: Some("1".into()),
        },
        1,
    );
    pass_ok(&w, PassKind::Incremental).await;
    let creates: Vec<Instant> = w
        .gitlab
        .arrivals()
        .into_iter()
        .filter(|(_, what)| what.starts_with("POST"))
        .map(|(at, _)| at)
        .collect();
    assert_eq!(creates.len(), 41, "40 creates and the throttled one again");
    let throttled = creates[5];
    // Only the creates already in flight (three, and any that replaced them before the
    // answer came back) arrive during the hold.
    let during = creates
        .iter()
        .filter(|at| **at > throttled && **at < throttled + Duration::from_millis(950))
        .count();
    assert!(during <= 6, "{during} creates went out during the hold");
    assert_converged(&w, "VSA", PROJECT);
}

#[tokio::test]
async fn rate_limit_remaining_zero_holds_the_next_request_until_the_reset() {
    let w = world("remaining-zero", |_| {}).await;
    seed_issues(&w, 3, 1000);
    w.gitlab.record_arrivals();
    let reset = (chrono::Utc::now().timestamp() + 2).to_string();
    // The project look-up succeeds but spends the budget.
    w.gitlab.inject(
        Route::Read,
        Fault::WithHeaders(vec![
            ("RateLimit-Remaining".into(), "0".into()),
            ("RateLimit-Reset".into(), reset),
        ]),
        1,
    );
    pass_ok(&w, PassKind::Incremental).await;
    let arrivals = w.gitlab.arrivals();
    let gap = arrivals[1].0 - arrivals[0].0;
    assert!(
        gap >= Duration::from_millis(900),
        "the next request went out {gap:?} after the budget ran out"
    );
    assert_converged(&w, "VSA", PROJECT);
}

#[tokio::test]
async fn a_create_lost_to_a_connection_reset_is_recovered_without_a_duplicate() {
    let w = world("create-reset", |_| {}).await;
    seed_issues(&w, 3, 1000);
    // The first create is done and its connection reset; the second is reset unread.
    w.gitlab.inject(Route::Create, Fault::CommitThenReset, 1);
    w.gitlab.inject(Route::Create, Fault::Reset, 1);
    let connections = w.gitlab.connections();
    let reports = pass(&w, PassKind::Incremental).await;
    let mut passes = 1;
    while !reports_ok(&reports) && passes < 3 {
        passes += 1;
        pass(&w, PassKind::Incremental).await;
    }
    assert!(w.gitlab.connections() > connections + 1, "reconnected");
    assert_eq!(assert_converged(&w, "VSA", PROJECT), 3);
}

fn reports_ok(reports: &[PassReport]) -> bool {
    reports.iter().all(PassReport::ok)
}

#[tokio::test]
async fn a_create_lost_to_a_refused_connection_is_recovered_without_a_duplicate() {
    let w = world("create-refused-conn", |_| {}).await;
    seed_issues(&w, 6, 1000);
    // GitLab goes down as the first create arrives: that create is reset unread, the others
    // find nothing listening for a while.
    w.gitlab
        .inject(Route::Create, Fault::Down(Duration::from_millis(150)), 1);
    let cfg = config(&w);
    let metrics = Arc::new(Metrics::new());
    let r = Reconciler::new(cfg, metrics.clone()).expect("reconciler");
    let store = Store::open(&w.state_path()).expect("store");
    for _ in 0..3 {
        let reports = r.pass(Mode::Apply(&store), PassKind::Incremental).await;
        if reports_ok(&reports) {
            break;
        }
    }
    let refused = metrics
        .get(
            "jgr_http_requests_total",
            &[("server", "gitlab"), ("status", "connect")],
        )
        .unwrap_or(0.0);
    assert!(refused >= 1.0, "no connection was refused");
    assert_eq!(assert_converged(&w, "VSA", PROJECT), 6);
}

// ---------------------------------------------------------------------------------------------
// Servers cannot make a pass big.

#[tokio::test]
async fn an_answer_over_64_mib_is_refused_after_reading_at_most_that() {
    let w = world("huge-answer", |_| {}).await;
    seed_issues(&w, 2, 1000);
    // A 512 MiB search page, streamed without a length: read until the bound, then refused.
    w.jira.inject(
        Route::Read,
        Fault::Huge {
            bytes: 512 << 20,
            declared: false,
        },
        1,
    );
    let failure = failed_pass(&w).await;
    assert!(
        failure.contains("Jira") && failure.contains("over 64 MiB"),
        "{failure}"
    );
    let streamed = w.jira.streamed_bytes();
    assert!(
        (64 << 20..96 << 20).contains(&streamed),
        "the fake handed over {} MiB",
        streamed >> 20
    );
    // Announced in Content-Length: refused without reading it.
    w.gitlab.inject(
        Route::Read,
        Fault::Huge {
            bytes: 512 << 20,
            declared: true,
        },
        1,
    );
    let failure = failed_pass(&w).await;
    assert!(
        failure.contains("GitLab") && failure.contains("over 64 MiB"),
        "{failure}"
    );
    assert!(
        w.gitlab.streamed_bytes() < 16 << 20,
        "{}",
        w.gitlab.streamed_bytes()
    );
    pass_ok(&w, PassKind::Incremental).await;
    assert_converged(&w, "VSA", PROJECT);
}

/// Run the binary to its end, reading its peak resident memory (the kernel's high-water
/// mark, `VmHWM`) from outside while it lives: (exit status, peak KiB).
fn run_measuring_peak(args: &[String]) -> (std::process::ExitStatus, u64) {
    let mut child = command(args, &[])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("binary starts");
    let status_path = format!("/proc/{}/status", child.id());
    let started = Instant::now();
    let mut peak = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            let hwm = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            peak = peak.max(hwm.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().expect("wait") {
            return (status, peak);
        }
        assert!(started.elapsed() < 5 * MINUTE, "the pass never ended");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_59_mib_search_page_is_read_in_a_fraction_of_a_gib() {
    // One page of 100 issues, as Jira Cloud pages with fields.
    let w = world("fat-page", |o| o.jira_page_cap = 100).await;
    seed_issues(&w, 100, 1000);
    // 100 issues of ~600 KB each, in a field nobody asked for: a 59 MiB page, under the
    // 64 MiB bound. As a JSON tree it took 1 GiB resident.
    w.jira.set_hostile(Hostile {
        padding_per_issue: 618_000,
        ..Hostile::default()
    });
    let args = reconcile_args(&w);
    let searches = w.jira.search_requests();
    let (status, peak_kib) = tokio::task::spawn_blocking(move || run_measuring_peak(&args))
        .await
        .expect("join");
    assert!(status.success(), "{status}");
    assert_eq!(w.gitlab.issues(PROJECT).len(), 100, "every issue mirrored");
    assert_eq!(w.jira.search_requests() - searches, 1, "one page");
    let page_mib = w.jira.streamed_bytes() >> 20;
    assert!((56..64).contains(&page_mib), "a {page_mib} MiB page");
    eprintln!(
        "peak RSS reading a {page_mib} MiB search page: {} MiB",
        peak_kib >> 10
    );
    assert!(peak_kib < 256 << 10, "peak RSS {} MiB", peak_kib >> 10);
}

/// Answers read at once share one budget: eight 60 MiB answers asked for together, each under
/// the 64 MiB bound, never hold more than 128 MiB at once (not 8 × 60 MiB); those that would
/// pass it are dropped part-read, and say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_read_at_once_share_one_memory_budget() {
    use jira_gitlab_reconciler::http::{Api, Auth, ClientOptions, Request, RetryPolicy, Server};
    const ANSWERS: usize = 8;
    const EACH: u64 = 60 << 20;
    let w = world("huge-answers-at-once", |_| {}).await;
    let huge = Fault::Huge {
        bytes: EACH,
        declared: false,
    };
    w.gitlab.inject(Route::Read, huge, ANSWERS);
    let retry = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let opts = ClientOptions::new(retry, 16, Stop::new(), None, false).expect("client");
    let token = jira_gitlab_reconciler::secret::Secret::new("t");
    let api = Api::new(Server::Gitlab, &w.gitlab.url(), Auth::Bearer(token), &opts);
    let asks: Vec<_> = (0..ANSWERS)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move {
                let req = Request::get("/api/v4/projects/1/issues");
                api.send::<serde_json::Value>(req)
                    .await
                    .err()
                    .map(|e| e.to_string())
            })
        })
        .collect();
    let mut crowded = 0;
    for ask in asks {
        let error = ask
            .await
            .expect("joins")
            .expect("60 MiB of spaces is no JSON");
        crowded += usize::from(error.contains("answers in flight together already held 128 MiB"));
    }
    assert!(crowded >= 1, "no answer was dropped for the budget");
    let peak = opts.bodies.peak();
    assert!(peak <= 128 << 20, "{} MiB held at once", peak >> 20);
    assert_eq!(opts.bodies.held(), 0, "every answer gave its memory back");
    // From outside: the answers dropped were not read to their end.
    let streamed = w.gitlab.streamed_bytes();
    assert!(
        streamed < (ANSWERS as u64 - 1) * EACH,
        "the fake handed over {} MiB",
        streamed >> 20
    );
}

#[tokio::test]
async fn jira_page_tokens_that_loop_or_never_end_fail_the_search() {
    let w = world("jira-page-traps", |o| o.jira_page_cap = 2).await;
    seed_issues(&w, 3, 1000);
    for (trap, needle) in [
        (PageTrap::Loop, "loops"),
        (PageTrap::EverNew, "does not end"),
    ] {
        w.jira.set_hostile(Hostile {
            page_tokens: Some(trap),
            ..Hostile::default()
        });
        let searches = w.jira.search_requests();
        let failure = tokio::time::timeout(Duration::from_secs(120), failed_pass(&w))
            .await
            .unwrap_or_else(|_| panic!("{trap:?}: the search never ended"));
        assert!(
            failure.contains("Jira") && failure.contains(needle),
            "{trap:?}: {failure}"
        );
        let pages = w.jira.search_requests() - searches;
        // The count (3) with room for growth (1,004), at one or two issues a page.
        assert!(pages <= 700, "{trap:?}: {pages} pages");
        assert_eq!(state_status(&w).expect("state").checkpoint, None);
    }
    w.jira.set_hostile(Hostile::default());
    pass_ok(&w, PassKind::Incremental).await;
    assert_converged(&w, "VSA", PROJECT);
}

/// "Not the last page" without a token to the next: the pass fails and keeps its checkpoint,
/// rather than taking the rest of the search for absent.
#[tokio::test]
async fn a_jira_page_that_is_not_the_last_but_has_no_token_fails_the_search() {
    let w = world("jira-lost-token", |o| o.jira_page_cap = 2).await;
    seed_issues(&w, 3, 1000);
    w.jira.set_hostile(Hostile {
        lost_page_token: true,
        ..Hostile::default()
    });
    let failure = failed_pass(&w).await;
    assert!(
        failure.contains("isLast: false") && failure.contains("nextPageToken"),
        "{failure}"
    );
    assert_eq!(state_status(&w).expect("state").checkpoint, None);
    w.jira.set_hostile(Hostile::default());
    pass_ok(&w, PassKind::Incremental).await;
    assert_converged(&w, "VSA", PROJECT);
}

#[tokio::test]
async fn gitlab_page_links_that_loop_or_never_end_fail_the_listing() {
    let w = world("gitlab-page-traps", |_| {}).await;
    seed_issues(&w, 2, 1000);
    // Someone's 150 issues: two keyset pages, then back to the first.
    for i in 0..150 {
        w.gitlab
            .create_by_hand(PROJECT, &format!("Someone's {i}"), "");
    }
    for (trap, needle) in [
        (PageTrap::Loop, "loops"),
        (PageTrap::EverNew, "does not end"),
    ] {
        w.gitlab.set_page_trap(Some(trap));
        let lists = w.gitlab.list_requests();
        let failure = tokio::time::timeout(Duration::from_secs(120), failed_pass(&w))
            .await
            .unwrap_or_else(|_| panic!("{trap:?}: the listing never ended"));
        assert!(
            failure.contains("GitLab") && failure.contains(needle),
            "{trap:?}: {failure}"
        );
        assert!(w.gitlab.list_requests() - lists <= 30, "{trap:?}");
    }
    w.gitlab.set_page_trap(None);
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(w.gitlab.issues(PROJECT).len(), 152, "nothing created twice");
}

// ---------------------------------------------------------------------------------------------
// The checkpoint never passes the server's own clock.

/// A pass over `w` where VSA-1 was imported with an `updated` a year ahead; then a change
/// made a minute later must still be found by the next incremental pass.
async fn a_future_dated_issue_does_not_freeze_incremental_passes(w: &SimWorld) {
    seed_issues(w, 2, 1000);
    let future = w.clock.now() + chrono::Duration::days(365);
    w.jira.set_updated("VSA-1", future);
    pass_ok(w, PassKind::Incremental).await;
    let checkpoint = state_status(w).expect("state").checkpoint.expect("set");
    assert!(
        checkpoint <= w.clock.now() + chrono::Duration::seconds(2),
        "the checkpoint {checkpoint} passed Jira's clock {}",
        w.clock.now()
    );
    w.clock.advance(MINUTE);
    let later = w.jira.create_issue("VSA", "Made after the import", "Task");
    let r = pass_ok(w, PassKind::Incremental).await;
    assert_eq!(r.counts.created, 1, "{}", r.summary());
    mirror_of(w, PROJECT, &later.id);
}

#[tokio::test]
async fn the_checkpoint_stays_at_jiras_date_header() {
    let w = world("future-dated", |_| {}).await;
    a_future_dated_issue_does_not_freeze_incremental_passes(&w).await;
}

#[tokio::test]
async fn without_a_readable_date_the_checkpoint_stays_at_jiras_server_info_clock() {
    // The fake's clock is two days behind this machine's, so only Jira's own clock (from
    // serverInfo) keeps a day-ahead import from passing it.
    let w = world("future-dated-serverinfo", |_| {}).await;
    w.clock.set(chrono::Utc::now() - chrono::Duration::days(2));
    w.jira.set_hostile(Hostile {
        date: DateHeader::Garbage,
        ..Hostile::default()
    });
    seed_issues(&w, 2, 1000);
    w.jira
        .set_updated("VSA-1", w.clock.now() + chrono::Duration::days(1));
    pass_ok(&w, PassKind::Incremental).await;
    let checkpoint = state_status(&w).expect("state").checkpoint.expect("set");
    assert!(
        checkpoint <= w.clock.now() + chrono::Duration::seconds(2),
        "{checkpoint}"
    );
    w.clock.advance(MINUTE);
    let later = w.jira.create_issue("VSA", "Made after the import", "Task");
    pass_ok(&w, PassKind::Incremental).await;
    mirror_of(&w, PROJECT, &later.id);
}

#[tokio::test]
async fn a_jira_clock_behind_its_issues_costs_a_longer_window_not_a_missed_change() {
    let w = world("skewed-date", |_| {}).await;
    w.jira.set_hostile(Hostile {
        date: DateHeader::Skewed(chrono::TimeDelta::hours(-5)),
        ..Hostile::default()
    });
    seed_issues(&w, 2, 1000);
    pass_ok(&w, PassKind::Incremental).await;
    let checkpoint = state_status(&w).expect("state").checkpoint;
    assert!(
        checkpoint.is_none_or(|c| c <= w.clock.now() - chrono::Duration::hours(4)),
        "{checkpoint:?}"
    );
    w.clock.advance(MINUTE);
    w.jira.transition("VSA-2", "Done", "done");
    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(r.counts.closed, 1, "{}", r.summary());
    assert_converged(&w, "VSA", PROJECT);
}

// ---------------------------------------------------------------------------------------------
// Text from servers is made safe before it reaches a terminal, a log or the database.

/// What a hostile server says: escape sequences that clear a terminal and set its title, a
/// forged log line, a bidi override, and `bulk` bytes of text.
fn hostile_message(bulk: usize) -> String {
    format!(
        "bad\u{1b}[2J\u{1b}]0;owned\u{7}\nERROR forged line\r\n\u{202e}gpj.exe {}",
        "A".repeat(bulk)
    )
}

fn assert_safe(what: &str, text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{what}: control characters in {:?}",
        &text[..text.len().min(300)]
    );
    assert!(!text.contains('\u{202e}'), "{what}: a bidi override");
    assert!(!text.contains("\nERROR forged"), "{what}: a forged line");
    for line in text.lines() {
        assert!(line.len() < 4096, "{what}: a line of {} bytes", line.len());
    }
}

#[tokio::test]
async fn a_servers_error_text_is_made_safe_in_reports_history_logs_and_status() {
    let w = world("safe-text", |_| {}).await;
    seed_issues(&w, 2, 1000);
    // 40 KiB: read whole, its message shown as far as 2 KiB.
    let says = |bulk| Fault::Says {
        status: 400,
        message: hostile_message(bulk),
    };
    w.jira.inject(Route::Read, says(40 << 10), 1);
    let failure = failed_pass(&w).await;
    assert_safe("the report", &failure);
    assert!(failure.contains("bad\u{FFFD}[2J"), "{failure:.200}");
    assert!(failure.contains("more bytes cut"), "the cut is said");
    let history = state_status(&w)
        .and_then(|s| s.last_pass)
        .and_then(|p| p.error)
        .expect("the pass history keeps the error");
    assert_safe("the pass history", &history);

    // A megabyte: its first 64 KiB read, not even valid JSON then. The real binary: its log,
    // then `status`.
    w.jira.inject(Route::Read, says(1 << 20), 1);
    let out = run_binary_env(reconcile_args(&w), vec![("RUST_LOG".into(), "info".into())]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr:.500}");
    assert_safe("the log", &stderr);
    assert_safe("the output", &stdout);
    let config = w.write_config().expect("config").display().to_string();
    let out = run_binary(vec!["status".into(), "--config".into(), config]).await;
    let (stdout, stderr) = text(&out);
    assert_safe("status", &stdout);
    assert!(stdout.contains("last error"), "{stdout:.500}{stderr:.500}");
    assert!(
        stdout.contains("more bytes cut"),
        "the cut is said: {stdout}"
    );
}

// ---------------------------------------------------------------------------------------------
// The Jira token goes only to the configured Jira.

#[tokio::test]
async fn webhook_register_follows_no_self_link_to_another_host() {
    let w = world("hook-self-elsewhere", |o| {
        o.webhook = true;
        o.jira_admin = true;
    })
    .await;
    // Another server, which must never see the token.
    let elsewhere = jgr_sim::jira::FakeJira::start(jgr_sim::jira::JiraOptions::default())
        .await
        .expect("start");
    let host = elsewhere.url().trim_start_matches("http://").to_string();
    let config = w.write_config().expect("config").display().to_string();
    for link in [
        format!("{}/rest/webhooks/1.0/webhook/1", elsewhere.url()),
        // No webhook path: joined to jira.url it would name `elsewhere` as the host.
        format!("@{host}/rest/api/2/myself"),
    ] {
        w.jira.set_hostile(Hostile {
            webhook_self: Some(link.clone()),
            ..Hostile::default()
        });
        let before = w.jira.webhooks();
        let out = run_binary(vec![
            "webhook".into(),
            "register".into(),
            "--config".into(),
            config.clone(),
        ])
        .await;
        let (stdout, stderr) = text(&out);
        assert_ne!(out.status.code(), Some(0), "{link}: {stdout}{stderr}");
        assert!(
            stderr.contains("the Jira token goes only to jira.url"),
            "{link}: {stderr}"
        );
        assert_eq!(
            elsewhere.connections(),
            0,
            "{link}: the other host was asked"
        );
        assert_eq!(
            w.jira.webhooks().len(),
            before.len(),
            "{link}: nothing registered"
        );
    }
}

/// A Data Center answer without its `total` cannot say whether more remain: the search and
/// the look-up by id go on until an empty page instead of ending after the first, which left
/// the rest unmirrored behind the checkpoint, and took the issues a look-up did not reach for
/// deleted (labelled `jira::deleted` while they had only moved to another project).
#[tokio::test]
async fn data_center_pages_without_their_total_are_read_to_the_end() {
    let w = world("dc-no-total", |o| {
        o.deployment = jgr_sim::jira::Deployment::DataCenter;
        o.jira_page_cap = 2;
    })
    .await;
    seed_issues(&w, 5, 1000);
    w.jira.set_hostile(Hostile {
        dc_no_total: true,
        ..Hostile::default()
    });
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(w.gitlab.issues(PROJECT).len(), 5, "every page read");
    assert_converged(&w, "VSA", PROJECT);

    w.clock.advance(MINUTE);
    w.jira.add_project("OPS");
    for issue in w.jira.issues() {
        w.jira.move_issue(&issue.key, "OPS");
    }
    pass_ok(&w, PassKind::Full).await;
    for g in w.gitlab.issues(PROJECT) {
        assert_eq!(g.labels, ["jira::moved"], "{}: moved, not deleted", g.title);
    }
}

/// An issue Jira Cloud's bulk fetch could not return now (named in `issueErrors`, "a retriable
/// error or payload constraint") is not taken for deleted: the look-up fails, the mirror stays
/// as it was, and the next pass, once Jira returns it, handles it as what it is (here: moved).
#[tokio::test]
async fn an_issue_jira_could_not_return_now_is_not_taken_for_deleted() {
    let w = world("bulk-issue-errors", |_| {}).await;
    seed_issues(&w, 3, 1000);
    pass_ok(&w, PassKind::Incremental).await;
    w.clock.advance(MINUTE);
    w.jira.add_project("OPS");
    for issue in w.jira.issues() {
        w.jira.move_issue(&issue.key, "OPS");
    }
    w.jira.set_hostile(Hostile {
        bulk_issue_errors: true,
        ..Hostile::default()
    });
    let reports = pass(&w, PassKind::Full).await;
    for g in w.gitlab.issues(PROJECT) {
        assert!(
            !g.labels.iter().any(|l| l == "jira::deleted"),
            "{}: {:?}",
            g.title,
            g.labels
        );
    }
    let failure = reports[0].failure_lines().join("\n");
    assert!(
        failure.contains("could not return 1 of the issues"),
        "{failure}"
    );
    w.jira.set_hostile(Hostile::default());
    pass_ok(&w, PassKind::Full).await;
    for g in w.gitlab.issues(PROJECT) {
        assert_eq!(g.labels, ["jira::moved"], "{}", g.title);
    }
}

/// An answer whose few useful fields come with megabytes of others is not built into a JSON
/// tree: a 60 MiB `serverInfo` (read when Jira's `Date` cannot be) of `[0,0,…]` in a field
/// nobody reads keeps the pass's peak memory in a fraction of a GiB (as a tree: over 1 GiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_60_mib_server_info_is_read_without_building_it() {
    let w = world("fat-server-info", |_| {}).await;
    seed_issues(&w, 3, 1000);
    w.jira.set_hostile(Hostile {
        date: DateHeader::Garbage,
        server_info_padding: 60 << 20,
        ..Hostile::default()
    });
    let args = reconcile_args(&w);
    let (status, peak_kib) = tokio::task::spawn_blocking(move || run_measuring_peak(&args))
        .await
        .expect("join");
    assert!(status.success(), "{status}");
    assert_eq!(w.gitlab.issues(PROJECT).len(), 3, "every issue mirrored");
    assert!(w.jira.streamed_bytes() >= 60 << 20, "serverInfo was read");
    eprintln!(
        "peak RSS reading a 60 MiB serverInfo: {} MiB",
        peak_kib >> 10
    );
    assert!(peak_kib < 256 << 10, "peak RSS {} MiB", peak_kib >> 10);
}

/// A Jira board configuration of 60 MiB (its columns, then megabytes nobody reads) is read for
/// the status board without building it into a JSON tree: the pass's peak memory stays in a
/// fraction of a GiB, and the board still gets its lists in the columns' order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_60_mib_board_configuration_is_read_without_building_it() {
    let w = world("fat-board-config", |o| {
        o.mappings[0].status_labels = Some("jira-status".into());
        o.mappings[0].extra_config = "status_board = \"Jira workflow\"\n".into();
    })
    .await;
    w.jira_workflow(&[
        ("To Do", "new"),
        ("In Review", "indeterminate"),
        ("In Progress", "indeterminate"),
        ("Done", "done"),
    ]);
    let started = w.jira.create_issue("VSA", "Started", "Story");
    w.jira
        .transition(&started.key, "In Progress", "indeterminate");
    w.jira.set_hostile(Hostile {
        board_config_padding: 60 << 20,
        ..Hostile::default()
    });
    let args = reconcile_args(&w);
    let (status, peak_kib) = tokio::task::spawn_blocking(move || run_measuring_peak(&args))
        .await
        .expect("join");
    assert!(status.success(), "{status}");
    assert!(
        w.jira.streamed_bytes() >= 60 << 20,
        "the configuration was read"
    );
    let lists: Vec<Vec<String>> = w
        .gitlab
        .boards(PROJECT)
        .into_iter()
        .map(|b| b.lists)
        .collect();
    assert_eq!(
        lists,
        [vec!["jira-status::In Review", "jira-status::In Progress"]],
        "the board still gets its lists"
    );
    eprintln!(
        "peak RSS reading a 60 MiB board configuration: {} MiB",
        peak_kib >> 10
    );
    assert!(peak_kib < 256 << 10, "peak RSS {} MiB", peak_kib >> 10);
}
