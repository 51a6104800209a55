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

    // A change in Jira reaches GitLab with the next scheduled pass (every second here).
    let later = w.jira.create_issue("VSA", "After start", "Task");
    w.jira.transition(&first.key, "Done", "done");
    assert!(
        eventually(EVENT_WAIT, || {
            w.gitlab.issues("acme/platform").len() == 2
                && w.gitlab
                    .issues("acme/platform")
                    .iter()
                    .any(|g| g.state == "closed")
        })
        .await,
        "GitLab follows Jira"
    );
    mirror_of(&w, "acme/platform", &later.id);

    // GitLab holds the issue as soon as it answers the create; the service counts it after
    // that answer, and the action when the pass ends: wait for those counts, then read them.
    for (series, value) in [
        (
            "jgr_actions_total{kind=\"create\",mapping=\"VSA->acme/platform\"}",
            2.0,
        ),
        (
            "jgr_http_requests_total{server=\"gitlab\",status=\"201\"}",
            2.0,
        ),
    ] {
        assert!(
            metric_reaches(port, series, value, EVENT_WAIT).await,
            "{series} reaches {value}: {}",
            metric(port, series).await
        );
    }
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
    let incremental = passes_ok("incremental");
    let before = metric(port, &incremental).await;
    assert!(
        metric_reaches(port, &incremental, before + 1.0, EVENT_WAIT).await,
        "passes keep counting: {before} → {}",
        metric(port, &incremental).await
    );
    let (status, body) = http_get(port, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    signal(&child, "TERM");
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(12)).await;
    assert_eq!(code, Some(0), "{stderr}");
    // Not "did not finish in time": it stopped within its grace, as it promises.
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
    assert!(
        metric_reaches(port, &passes_ok("full"), 1.0, EVENT_WAIT).await,
        "the start-up pass ended"
    );
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

    // A reload that removes VSA's mapping takes its series off /metrics (their last values
    // would read as current), and keeps OPS's.
    let vsa = "mapping=\"VSA->acme/platform\"";
    assert!(http_get(port, "/metrics").await.1.contains(vsa));
    w.opts.mappings.remove(0);
    service_config(&w, port, "");
    signal(&child, "HUP");
    let started = Instant::now();
    let body = loop {
        let (status, body) = http_get(port, "/metrics").await;
        if (status == 200 && !body.contains(vsa)) || started.elapsed() > EVENT_WAIT {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!body.contains(vsa), "VSA's series left /metrics: {body}");
    let body = http_get(port, "/metrics").await.1;
    assert!(body.contains("mapping=\"OPS->acme/ops\""), "{body}");

    signal(&child, "INT");
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(12)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("configuration reloaded"), "{stderr}");
}

/// The nightly full resync, here every second with the polls once a year: it fires through
/// `run`, closes the mirror of an issue deleted in Jira and repairs a title edited by hand in
/// GitLab (which no incremental pass looks at, since Jira did not change).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_full_resync_closes_deleted_issues_and_repairs_drift() {
    let w = world("svc-full", |_| {}).await;
    let gone = w.jira.create_issue("VSA", "Deleted in Jira", "Task");
    let kept = w.jira.create_issue("VSA", "Kept", "Task");
    let sockets = Sockets::for_world(&w);
    let port = sockets.metrics_port();
    let child = spawn_service(
        &service_config_with(&w, port, (YEARLY, EVERY_SECOND), ""),
        &sockets,
    );
    let full = passes_ok("full");
    // The start-up pass (a first pass runs full).
    assert!(metric_reaches(port, &full, 1.0, EVENT_WAIT).await);
    assert_eq!(w.gitlab.issue_count(PROJECT), 2);
    w.jira.delete_issue(&gone.key);
    let iid = mirror_of(&w, PROJECT, &kept.id).iid;
    w.gitlab
        .retitle_by_hand(PROJECT, iid, "Edited by hand in GitLab");
    let repaired = || {
        let g = mirror_of(&w, PROJECT, &gone.id);
        g.state == "closed"
            && g.labels.iter().any(|l| l == "jira::deleted")
            && mirror_of(&w, PROJECT, &kept.id).title == "Kept"
    };
    assert!(
        eventually(EVENT_WAIT, repaired).await,
        "a scheduled full resync closed {} and retitled #{iid}: {:?}",
        gone.key,
        w.gitlab.issues(PROJECT)
    );
    // The repairs show in GitLab during the pass; it is counted when it ends.
    assert!(
        metric_reaches(port, &full, 2.0, EVENT_WAIT).await,
        "scheduled full passes ran"
    );
    assert_eq!(
        metric(port, &passes_ok("incremental")).await,
        0.0,
        "no incremental pass ran: the repairs are the full resync's"
    );
    signal(&child, "TERM");
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(12)).await;
    assert_eq!(code, Some(0), "{stderr}");
}

/// A schedule changed in the config takes effect on SIGHUP: from once a year to every second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_changed_schedule() {
    let w = world("svc-hup-schedule", |_| {}).await;
    let sockets = Sockets::for_world(&w);
    let port = sockets.metrics_port();
    let mut child = spawn_service(
        &service_config_with(&w, port, (YEARLY, YEARLY), ""),
        &sockets,
    );
    let log = ChildLog::capture(child.child_mut());
    // The start-up pass, then nothing until next year.
    assert!(metric_reaches(port, &passes_ok("full"), 1.0, EVENT_WAIT).await);
    service_config_with(&w, port, (EVERY_SECOND, YEARLY), "");
    signal(&child, "HUP");
    assert!(
        log.wait_for("configuration reloaded", EVENT_WAIT).await,
        "{}",
        log.text()
    );
    let later = w
        .jira
        .create_issue("VSA", "Polled after the reload", "Task");
    assert!(
        gitlab_reaches(&w, PROJECT, 1, EVENT_WAIT).await,
        "a poll on the new schedule mirrored it: {}",
        log.text()
    );
    mirror_of(&w, PROJECT, &later.id);
    signal(&child, "TERM");
    let (code, _, _) = wait_exit(child, Duration::from_secs(12)).await;
    assert_eq!(code, Some(0), "{}", log.finish());
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
        skip(
            "systemd_units_verify",
            "systemd-analyze is needed to verify systemd/* (apt-get install systemd)",
        );
        return;
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
    // Four requests at a time: the creates on the wire are a few of the twenty.
    let w = world("svc-term-inflight", |o| {
        o.gitlab_config = "concurrency = 4".into();
    })
    .await;
    for i in 0..20 {
        w.jira.create_issue("VSA", &format!("Issue {i}"), "Task");
    }
    // GitLab holds every create until the test lets them go: SIGTERM arrives while the first
    // ones are on the wire and the rest wait their turn.
    let gate = jgr_sim::Gate::new();
    w.gitlab.inject(
        jgr_sim::Route::Create,
        jgr_sim::Fault::Hold(gate.clone()),
        20,
    );
    let sockets = Sockets::for_world(&w);
    let child = spawn_service(&service_config(&w, sockets.metrics_port(), ""), &sockets);
    let (code, stderr, _) = term_while_held(child, &gate, SERVICE_STOPPING).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("did not finish in time"), "{stderr}");
    // The creates on the wire completed and were recorded; the others never started.
    let created = w.gitlab.issues("acme/platform").len();
    assert_eq!(created, gate.passed(), "every create sent was let through");
    assert!((1..=4).contains(&created), "{created} created\n{stderr}");
    let st = jira_gitlab_reconciler::store::Store::open(&w.state_path())
        .expect("store")
        .status(&"VSA->acme/platform".into())
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
    // A stop is its own outcome, not a failure.
    assert_eq!(
        st.last_pass.expect("recorded").outcome,
        jira_gitlab_reconciler::domain::PassOutcome::Stopped
    );
    assert!(
        stderr.contains("pass stopped before it finished") && !stderr.contains("pass failed"),
        "{stderr}"
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
    use jgr_sim::{Fault, Gate, Route};
    use jira_gitlab_reconciler::config::Config;
    use jira_gitlab_reconciler::service::Service;
    use jira_gitlab_reconciler::store::Store;

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

    // A pass held by Jira outlasts the 1-second ticks: they are skipped, not queued.
    let held = Gate::new();
    w.jira.inject(Route::Read, Fault::Hold(held.clone()), 1);
    let skipped = || {
        metrics
            .get("jgr_ticks_skipped_total", &[("kind", "incremental")])
            .unwrap_or(0.0)
    };
    assert!(
        eventually(EVENT_WAIT, || skipped() >= 1.0).await,
        "busy ticks are skipped and counted"
    );
    assert_eq!(held.passed(), 0, "skipped while the pass was held");
    held.open();

    // A config that does not load is refused; the running one keeps working.
    std::fs::write(&path, "[jira\nbroken").expect("write");
    reload_tx.send(()).await.expect("reload sent");
    let later = w.jira.create_issue("VSA", "After a bad reload", "Task");
    assert!(gitlab_reaches(&w, PROJECT, 2, EVENT_WAIT).await);
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
        gitlab_reaches(&w, "acme/ops", 1, EVENT_WAIT).await,
        "after the reload the new mapping is reconciled"
    );
    mirror_of(&w, "acme/ops", &ops.id);

    // A stop while a pass waits for Jira: `run` returns once that pass has ended, and the pass
    // is recorded as ended, not left running for the next start to find.
    let held = Gate::new();
    w.jira.inject(Route::Read, Fault::Hold(held.clone()), 1);
    assert!(eventually(EVENT_WAIT, || held.arrived() == 1).await);
    stop_tx.send(()).expect("stop sent");
    held.open();
    tokio::time::timeout(EVENT_WAIT, running)
        .await
        .expect("run returns after the stop request")
        .expect("no panic")
        .expect("run ends without an error");
    let store = Store::open(&w.state_path()).expect("store");
    assert_eq!(
        store.passes().close_abandoned().expect("passes"),
        0,
        "every pass the service began was recorded as ended"
    );
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
    let sockets = Sockets::for_world(&w);
    let mut child = spawn_service(&service_config(&w, sockets.metrics_port(), ""), &sockets);
    let log = ChildLog::capture(child.child_mut());
    // The first create is refused: the creates wait for the window.
    assert!(
        log.wait_for("pacing GitLab issue creation", EVENT_WAIT)
            .await,
        "the hold began: {}",
        log.text()
    );
    signal(&child, "TERM");
    let (code, took, _) = wait_exit(child, Duration::from_secs(12)).await;
    let stderr = log.finish();
    assert_eq!(code, Some(0), "{stderr}");
    // The hold (a minute) would outlast the stop's grace (9 s) and be reported so.
    eprintln!("stopped {took:?} after SIGTERM during a pacing hold (a measurement)");
    assert!(!stderr.contains("did not finish in time"), "{stderr}");
    let landed = w.gitlab.issue_count(PROJECT) as u64;
    assert!(landed < 3, "the refused create was held, not sent again");
    let st = jira_gitlab_reconciler::store::Store::open(&w.state_path())
        .expect("store")
        .status(&"VSA->acme/platform".into())
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
    let mut child = spawn_service(&service_config(&w, sockets.metrics_port(), ""), &sockets);
    let log = ChildLog::capture(child.child_mut());
    assert!(
        log.wait_for("retry_in_ms=120000", EVENT_WAIT).await,
        "the first search was refused and its wait began: {}",
        log.text()
    );
    signal(&child, "TERM");
    let (code, took, _) = wait_exit(child, Duration::from_secs(12)).await;
    let stderr = log.finish();
    assert_eq!(code, Some(0), "{stderr}");
    eprintln!("stopped {took:?} after SIGTERM during a Retry-After wait (a measurement)");
    assert!(!stderr.contains("did not finish in time"), "{stderr}");
}
