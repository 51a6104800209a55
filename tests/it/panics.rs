//! A crashed pass is loud, as the real binary shows it: a panic (a bug) in one mapping's pass
//! is caught, logged with the mapping, counted and recorded, the other mappings and the next
//! ticks go on, `/healthz` turns 503 for that mapping; a panic elsewhere in the worker ends
//! the process with exit 1 (systemd restarts it); systemd's watchdog is fed only by the
//! worker. The faults come from the debug build's test hooks (`JGR_TEST_HOOKS`: `summaries`,
//! a Jira summary `jgr-test:panic` panics the planner, `jgr-test:wedge` blocks its thread 3 s;
//! `worker-panic`, the worker panics after its first pass).

use std::time::{Duration, Instant};

use jgr_sim::world::SimMapping;

use crate::harness::*;

const OPS: &str = "OPS->acme/ops";
/// A gap in the watchdog pings (every 200 ms here) that only a stuck pass explains: the test
/// hook blocks the planner 3 s.
const STUCK: Duration = Duration::from_millis(2500);

fn with_test_hooks(c: &mut std::process::Command) {
    c.env("JGR_TEST_HOOKS", "summaries");
}

/// `/healthz`'s answer once it is `status`, or the last one after `limit`.
async fn healthz_until(port: u16, status: u16, limit: Duration) -> (u16, String) {
    let started = Instant::now();
    let mut health = http_get(port, "/healthz").await;
    while health.0 != status && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(100)).await;
        health = http_get(port, "/healthz").await;
    }
    health
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_pass_is_caught_logged_counted_and_the_next_ticks_run() {
    let w = world("panic", |o| {
        o.mappings.push(SimMapping::new("OPS", "acme/ops"))
    })
    .await;
    w.jira.add_project("OPS");
    w.jira.create_issue("VSA", "Healthy work", "Task");
    let bug = w.jira.create_issue("OPS", "jgr-test:panic", "Task");
    let sockets = Sockets::for_world(&w);
    let port = sockets.metrics_port();
    let config = service_config(&w, port, "");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("unhealthy_after = \"1h\"", "unhealthy_after = \"3s\""),
    )
    .expect("config");
    let child = spawn_service_with(&config, &sockets, with_test_hooks);

    let panics = format!("jgr_pass_panics_total{{mapping=\"{OPS}\"}}");
    let started = Instant::now();
    let mut seen = 0.0;
    while seen < 2.0 && started.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = metric(port, &panics).await;
    }
    assert!(
        seen >= 2.0,
        "the next tick ran (and met the bug again): {seen}"
    );
    // The other mapping goes on: a new issue reaches GitLab by the scheduled polls.
    let later = w.jira.create_issue("VSA", "After the panic", "Task");
    assert!(gitlab_reaches(&w, PROJECT, 2, Duration::from_secs(10)).await);
    mirror_of(&w, PROJECT, &later.id);

    // No pass of OPS succeeded for `metrics.unhealthy_after`: /healthz says which mapping.
    let health = healthz_until(port, 503, Duration::from_secs(15)).await;
    assert_eq!(health.0, 503, "{}", health.1);
    assert!(
        health.1.contains(OPS) && !health.1.contains("VSA->"),
        "{}",
        health.1
    );
    // The pass history: the last finished pass (one may be running: a tick a second).
    let store = jira_gitlab_reconciler::store::Store::open_read_only(&w.state_path())
        .expect("readable")
        .expect("state");
    let last_pass = || {
        store
            .status(&OPS.into())
            .expect("status")
            .last_pass
            .expect("a pass")
    };
    let mut last = last_pass();
    let started = Instant::now();
    while last.outcome.label() == "running" && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = last_pass();
    }
    assert_eq!(last.outcome.label(), "failed");
    assert!(
        last.error
            .as_deref()
            .is_some_and(|e| e.contains("panicked")),
        "{:?}",
        last.error
    );

    // The data that met the bug changes: the next pass succeeds and /healthz recovers.
    w.clock.advance(MINUTE);
    w.jira.rename(&bug.key, "Ordinary summary");
    assert!(gitlab_reaches(&w, "acme/ops", 1, Duration::from_secs(10)).await);
    let health = healthz_until(port, 200, Duration::from_secs(10)).await;
    assert_eq!(health.0, 200, "/healthz recovers: {}", health.1);

    signal(&child, "TERM");
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(12)).await;
    assert_eq!(code, Some(0), "{stderr}");
    let logged = stderr
        .lines()
        .find(|l| l.contains("the pass panicked"))
        .unwrap_or_else(|| panic!("the panic is logged: {stderr}"));
    assert!(
        logged.contains("ERROR") && logged.contains(&format!("mapping={OPS}")),
        "{logged}"
    );
}

/// A pass stuck in a call that never returns to the runtime stops the watchdog pings (systemd
/// would restart the service); once it moves again, so do they.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_is_fed_only_while_the_worker_runs() {
    let w = world("watchdog", |_| {}).await;
    let issue = w.jira.create_issue("VSA", "Ordinary", "Task");
    let (socket, socket_path) = notify_socket(&w);
    let sockets = Sockets::for_world(&w);
    let config = service_config(&w, sockets.metrics_port(), "");
    let child = spawn_service_with(&config, &sockets, |c| {
        with_test_hooks(c);
        c.env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "400000");
    });
    assert!(gitlab_reaches(&w, PROJECT, 1, Duration::from_secs(10)).await);
    // The next poll meets a summary that blocks the planner's thread for 3 s. Pings come
    // every 200 ms while the worker runs: record 8 s of them.
    w.clock.advance(MINUTE);
    w.jira.rename(&issue.key, "jgr-test:wedge");
    // Record pings until a gap of 2.5 s or more (the pass was stuck) is followed by three
    // pings (it moves again), 30 s at most.
    let pings = tokio::task::spawn_blocking(move || {
        let mut at: Vec<Duration> = Vec::new();
        let mut buf = [0u8; 256];
        let start = Instant::now();
        let mut resumed = 0;
        while start.elapsed() < Duration::from_secs(30) && resumed < 3 {
            let Ok(n) = socket.recv(&mut buf) else { break };
            if !buf[..n].starts_with(b"WATCHDOG=1") {
                continue;
            }
            let now = start.elapsed();
            if resumed > 0 || at.last().is_some_and(|t| now - *t >= STUCK) {
                resumed += 1;
            }
            at.push(now);
        }
        (at, resumed)
    })
    .await
    .expect("join");
    assert_eq!(
        pings.1, 3,
        "no ping for 2.5 s while the pass was stuck, then pings again: {:?}",
        pings.0
    );
    signal(&child, "TERM");
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(15)).await;
    assert_eq!(code, Some(0), "{stderr}");
}

/// A panic outside any mapping's pass kills the worker: the service does not live on without
/// passes (pinging the watchdog, looking alive), it exits 1 so that systemd restarts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_worker_ends_the_service_with_exit_1() {
    let w = world("worker-dies", |_| {}).await;
    w.jira.create_issue("VSA", "Ordinary", "Task");
    let (socket, socket_path) = notify_socket(&w);
    let sockets = Sockets::for_world(&w);
    let config = service_config(&w, sockets.metrics_port(), "");
    let child = spawn_service_with(&config, &sockets, |c| {
        c.env("JGR_TEST_HOOKS", "worker-panic")
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "400000");
    });
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(20)).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("the pass worker stopped (it panicked: test hook"),
        "{stderr}"
    );
    // Its last words to systemd say why; no ping comes after them.
    let mut last = Vec::new();
    let mut buf = [0u8; 256];
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    while let Ok(n) = socket.recv(&mut buf) {
        last = buf[..n].to_vec();
    }
    let last = String::from_utf8_lossy(&last);
    assert!(last.starts_with("STATUS=the pass worker stopped"), "{last}");
}
