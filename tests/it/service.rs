//! The `run` service as a real process: schedule, metrics, signals, reload, single instance,
//! and the systemd units.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_follows_jira_serves_metrics_and_stops_on_sigterm() {
    let w = world("svc-run", |_| {}).await;
    let first = w.jira.create_issue("VSA", "Before start", "Task");
    let sockets = Sockets::for_world(&w);
    let port = sockets.metrics_port();
    let child = spawn_service(&service_config(&w, port, ""), &sockets);

    assert!(
        gitlab_reaches(&w, "acme/platform", 1, Duration::from_secs(10)).await,
        "the start-up pass mirrors the existing issue"
    );
    mirror_of(&w, "acme/platform", &first.id);

    // A change in Jira reaches GitLab within one interval (1 s here) plus a pass.
    let later = w.jira.create_issue("VSA", "After start", "Task");
    w.jira.transition(&first.key, "Done", "done");
    let t = Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || {
            w.gitlab.issues("acme/platform").len() == 2
                && w.gitlab
                    .issues("acme/platform")
                    .iter()
                    .any(|g| g.state == "closed")
        })
        .await,
        "GitLab follows Jira"
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    mirror_of(&w, "acme/platform", &later.id);

    let (status, body) = http_get(port, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains(
            "jgr_passes_total{kind=\"full\",mapping=\"VSA->acme/platform\",outcome=\"ok\"} 1"
        ),
        "{body}"
    );
    assert!(
        body.contains("jgr_actions_total{kind=\"create\",mapping=\"VSA->acme/platform\"} 2"),
        "{body}"
    );
    assert!(
        body.contains("jgr_http_requests_total{server=\"gitlab\",status=\"201\"} 2"),
        "{body}"
    );
    assert!(
        body.contains("jgr_last_success_timestamp_seconds"),
        "{body}"
    );
    let passes = |b: &str| {
        b.lines()
            .filter(|l| l.starts_with("jgr_passes_total{kind=\"incremental\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    let before = passes(&body);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, body) = http_get(port, "/metrics").await;
    assert!(
        passes(&body) >= before + 1.0,
        "passes keep counting: {before} → {}",
        passes(&body)
    );
    let (status, body) = http_get(port, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    signal(&child, "TERM");
    let (code, took, stderr) = wait_exit(child, Duration::from_secs(12)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(stderr.contains("stopped cleanly"), "{stderr}");
    assert!(
        stderr.contains("pass finished"),
        "one info line per pass: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_mappings() {
    let mut w = world("svc-hup", |o| {
        o.mappings
            .push(jgr_sim::world::SimMapping::new("OPS", "acme/ops"))
    })
    .await;
    // Start with only the first mapping in the config.
    let second = w.opts.mappings.pop().expect("two mappings");
    let sockets = Sockets::for_world(&w);
    let port = sockets.metrics_port();
    let config = service_config(&w, port, "");
    let ops = w.jira.create_issue("OPS", "Ops work", "Task");
    let child = spawn_service(&config, &sockets);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        w.gitlab.issues("acme/ops").is_empty(),
        "OPS is not mapped yet"
    );

    w.opts.mappings.push(second);
    service_config(&w, port, "");
    signal(&child, "HUP");
    assert!(
        gitlab_reaches(&w, "acme/ops", 1, Duration::from_secs(8)).await,
        "after SIGHUP the new mapping is reconciled"
    );
    mirror_of(&w, "acme/ops", &ops.id);
    signal(&child, "INT");
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(12)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("configuration reloaded"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_reconcile_beside_the_service_does_not_double_write() {
    let w = world("svc-concurrent", |_| {}).await;
    for i in 0..80 {
        w.jira.create_issue("VSA", &format!("Backfill {i}"), "Task");
    }
    let sockets = Sockets::for_world(&w);
    let config = service_config(&w, sockets.metrics_port(), "");
    let child = spawn_service(&config, &sockets);
    let out = run_binary(vec!["reconcile".into(), "--config".into(), config.clone()]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        gitlab_reaches(&w, "acme/platform", 80, Duration::from_secs(10)).await,
        "service and reconcile between them mirror everything"
    );
    signal(&child, "TERM");
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(12)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(assert_converged(&w, "VSA", "acme/platform"), 80);
}

#[test]
fn systemd_units_verify() {
    let Ok(analyze) = which("systemd-analyze") else {
        panic!("systemd-analyze is needed to verify systemd/*: apt-get install systemd");
    };
    let dir = temp_dir("units");
    let root = env!("CARGO_MANIFEST_DIR");
    let mut units = Vec::new();
    for name in [
        "jira-gitlab-reconciler.service",
        "jira-gitlab-reconciler-oneshot.service",
        "jira-gitlab-reconciler.timer",
        "jira-gitlab-reconciler-full.service",
        "jira-gitlab-reconciler-full.timer",
    ] {
        let text = std::fs::read_to_string(format!("{root}/systemd/{name}")).expect("unit exists");
        assert!(
            text.contains("ExecStart=/usr/bin/jira-gitlab-reconciler")
                || !name.ends_with(".service"),
            "{name} runs the packaged binary"
        );
        // Verify against the binary just built instead of an installed one.
        let text = text.replace(
            "ExecStart=/usr/bin/jira-gitlab-reconciler",
            &format!("ExecStart={}", binary()),
        );
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        units.push(path);
    }
    let out = Command::new(&analyze)
        // `Documentation=man:jira-gitlab-reconciler(1)` exists once the package is installed
        // (tests/it/package.rs verifies the installed units with it).
        .args(["verify", "--man=no"])
        .args(&units)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Warnings about the host's own units are not ours; anything naming our units is.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("jira-gitlab-reconciler"))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify: {stderr}"
    );

    // The services' sandbox, scored by systemd (0 safest, 10 unprotected; 1.4 when written).
    for unit in units
        .iter()
        .filter(|u| u.extension().is_some_and(|e| e == "service"))
    {
        let text = std::fs::read_to_string(unit).expect("unit");
        for key in [
            // A filtered call fails instead of killing the process (lchown was SIGSYS).
            "SystemCallErrorNumber=EPERM",
            "LimitNOFILE=1024",
            "TasksMax=64",
            "MemoryMax=1G",
        ] {
            assert!(text.contains(key), "{}: {key}", unit.display());
        }
        let out = Command::new(&analyze)
            .args(["security", "--offline=true", "--threshold=20"])
            .arg(unit)
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let score = stdout
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .unwrap_or_default();
        eprintln!("{score}");
        assert!(
            out.status.success() && !score.is_empty(),
            "exposure above 2.0: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_write_in_flight_finish_and_records_it() {
    let w = world("svc-term-inflight", |_| {}).await;
    for i in 0..20 {
        w.jira.create_issue("VSA", &format!("Issue {i}"), "Task");
    }
    // Every create takes 1.5 s on the server: SIGTERM arrives while the first ones (as many as
    // `gitlab.concurrency` allows) are in flight and the rest wait their turn.
    w.gitlab.inject(
        jgr_sim::Route::Create,
        jgr_sim::Fault::Delay(Duration::from_millis(1500)),
        20,
    );
    let sockets = Sockets::for_world(&w);
    let child = spawn_service(&service_config(&w, sockets.metrics_port(), ""), &sockets);
    tokio::time::sleep(Duration::from_millis(800)).await;
    signal(&child, "TERM");
    let (code, took, stderr) = wait_exit(child, Duration::from_secs(12)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        took < Duration::from_secs(3),
        "only the requests on the wire are waited for: {took:?}"
    );
    assert!(!stderr.contains("did not finish in time"), "{stderr}");
    // The creates in flight completed and were recorded; the others never started.
    let created = w.gitlab.issues("acme/platform").len();
    assert!((1..20).contains(&created), "{created} created\n{stderr}");
    let st = jira_gitlab_reconciler::store::Store::open(&w.state_path())
        .expect("store")
        .status("VSA->acme/platform")
        .expect("status");
    assert_eq!(
        (st.mirrors, st.pending_intents),
        (created as u64, 0),
        "every create in flight is recorded, no unsent create is left pending"
    );
    assert!(
        st.checkpoint.is_none(),
        "an interrupted pass does not move the checkpoint"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_systemd_ready_status_watchdog_and_stopping() {
    let w = world("svc-notify", |_| {}).await;
    w.jira.create_issue("VSA", "One", "Task");
    let (socket, socket_path) = notify_socket(&w);
    let sockets = Sockets::for_world(&w);
    let config = service_config(&w, sockets.metrics_port(), "");
    let child = spawn_service_with(&config, &sockets, |c| {
        c.env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "400000")
            .env("RUST_LOG", "warn");
    });
    let (ready, socket) = tokio::task::spawn_blocking(move || wait_for(socket, "READY=1"))
        .await
        .expect("join");
    assert!(ready, "READY=1");
    let (status, socket) =
        tokio::task::spawn_blocking(move || wait_for(socket, "STATUS=last pass"))
            .await
            .expect("join");
    assert!(status, "a STATUS line after the first pass");
    let (watchdog, socket) = tokio::task::spawn_blocking(move || wait_for(socket, "WATCHDOG=1"))
        .await
        .expect("join");
    assert!(watchdog, "watchdog pings when WATCHDOG_USEC is set");
    signal(&child, "TERM");
    let (stopping, _) = tokio::task::spawn_blocking(move || wait_for(socket, "STOPPING=1"))
        .await
        .expect("join");
    assert!(stopping, "STOPPING=1 on SIGTERM");
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(12)).await;
    assert_eq!(code, Some(0), "{stderr}");
}

/// Read notify datagrams until one starts with `want` (10 s at most).
fn wait_for(
    socket: std::os::unix::net::UnixDatagram,
    want: &str,
) -> (bool, std::os::unix::net::UnixDatagram) {
    let mut buf = [0u8; 256];
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let Ok(n) = socket.recv(&mut buf) else { break };
        if String::from_utf8_lossy(&buf[..n]).starts_with(want) {
            return (true, socket);
        }
    }
    (false, socket)
}

/// The service in-process: stop and reload are inputs to `Service::run`, so they are tested
/// without signals; busy ticks are counted in the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_service_skips_busy_ticks_reloads_and_stops_on_request() {
    use jgr_sim::{Fault, Route};
    use jira_gitlab_reconciler::config::Config;
    use jira_gitlab_reconciler::service::Service;

    let mut w = world("svc-inproc", |o| {
        o.mappings
            .push(jgr_sim::world::SimMapping::new("OPS", "acme/ops"))
    })
    .await;
    let second = w.opts.mappings.pop().expect("two mappings");
    let metrics = bind_local();
    let port = port_of(&metrics);
    let path = std::path::PathBuf::from(service_config(&w, port, ""));
    let first = w.jira.create_issue("VSA", "Before start", "Task");
    let ops = w.jira.create_issue("OPS", "Ops work", "Task");

    let cfg = Config::load(&path).expect("config loads");
    let sockets = jira_gitlab_reconciler::listen::Sockets::default().with_metrics(metrics);
    let service = Service::start_with(cfg, path.clone(), sockets)
        .await
        .expect("starts");
    let metrics = service.metrics();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(1);
    let running = tokio::spawn(service.run(
        async {
            let _ = stop_rx.await;
        },
        reload_rx,
    ));
    assert!(gitlab_reaches(&w, PROJECT, 1, Duration::from_secs(10)).await);
    mirror_of(&w, PROJECT, &first.id);

    // A pass slowed down by Jira outlasts the 1-second ticks: they are skipped, not queued.
    w.jira
        .inject(Route::Read, Fault::Delay(Duration::from_millis(2500)), 1);
    let skipped = || {
        metrics
            .get("jgr_ticks_skipped_total", &[("kind", "incremental")])
            .unwrap_or(0.0)
    };
    assert!(
        eventually(Duration::from_secs(8), || skipped() >= 1.0).await,
        "busy ticks are skipped and counted"
    );

    // A config that does not load is refused; the running one keeps working.
    std::fs::write(&path, "[jira\nbroken").expect("write");
    reload_tx.send(()).await.expect("reload sent");
    let later = w.jira.create_issue("VSA", "After a bad reload", "Task");
    assert!(gitlab_reaches(&w, PROJECT, 2, Duration::from_secs(8)).await);
    mirror_of(&w, PROJECT, &later.id);
    assert!(
        w.gitlab.issues("acme/ops").is_empty(),
        "OPS is not mapped yet"
    );

    // A good config adds the second mapping from the next pass on.
    w.opts.mappings.push(second);
    service_config(&w, port, "");
    reload_tx.send(()).await.expect("reload sent");
    assert!(
        gitlab_reaches(&w, "acme/ops", 1, Duration::from_secs(8)).await,
        "after the reload the new mapping is reconciled"
    );
    mirror_of(&w, "acme/ops", &ops.id);

    let asked = Instant::now();
    stop_tx.send(()).expect("stop sent");
    let outcome = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("run returns after the stop request")
        .expect("no panic");
    assert!(outcome.is_ok(), "{outcome:?}");
    assert!(asked.elapsed() < Duration::from_secs(10));
}

/// A stop ends every wait at once: nothing is on the wire while the service waits, so it exits
/// within a second, whatever it was waiting for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_pacing_hold_or_a_retry_after_exits_at_once() {
    // A create refused for GitLab's limit is held for the create window (a minute here).
    let w = world("svc-term-hold", |o| {
        o.create_window = Some(Duration::from_secs(60));
    })
    .await;
    for i in 0..3 {
        w.jira.create_issue("VSA", &format!("Issue {i}"), "Task");
    }
    w.gitlab
        .inject(jgr_sim::Route::Create, jgr_sim::Fault::Status(429), 1);
    let requests = w.gitlab.requests();
    let sockets = Sockets::for_world(&w);
    let child = spawn_service(&service_config(&w, sockets.metrics_port(), ""), &sockets);
    // The project look-up, its listing, and the first create (refused): then the hold.
    assert!(
        eventually(Duration::from_secs(10), || w.gitlab.requests()
            >= requests + 3)
        .await,
        "the first create was sent"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&child, "TERM");
    let (code, took, stderr) = wait_exit(child, Duration::from_secs(12)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(took < Duration::from_secs(1), "{took:?}\n{stderr}");
    assert!(!stderr.contains("did not finish in time"), "{stderr}");
    let landed = w.gitlab.issue_count(PROJECT) as u64;
    assert!(landed < 3, "the refused create was held, not sent again");
    let st = jira_gitlab_reconciler::store::Store::open(&w.state_path())
        .expect("store")
        .status("VSA->acme/platform")
        .expect("status");
    assert_eq!(
        (st.mirrors, st.pending_intents),
        (landed, 0),
        "what landed is recorded; the held create was never sent again, so nothing is pending"
    );

    // Jira asks for two minutes of patience.
    let w = world("svc-term-retry-after", |_| {}).await;
    w.jira.inject(
        jgr_sim::Route::Read,
        jgr_sim::Fault::RateLimited {
            retry_after: Some("120".into()),
        },
        1,
    );
    let sockets = Sockets::for_world(&w);
    let child = spawn_service(&service_config(&w, sockets.metrics_port(), ""), &sockets);
    assert!(
        eventually(Duration::from_secs(10), || w.jira.requests() >= 1).await,
        "the first search was refused"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&child, "TERM");
    let (code, took, stderr) = wait_exit(child, Duration::from_secs(12)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(took < Duration::from_secs(1), "{took:?}\n{stderr}");
}
