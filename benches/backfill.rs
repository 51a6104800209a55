//! Re-runnable benchmark: the real binary against the simulated servers (in this process).
//!
//!   cargo bench --bench backfill -- [ISSUES]      (default 5000)
//!
//! Scenarios: a first pass that backfills ISSUES Jira issues, an idle incremental pass whose
//! overlap window still holds all of them (the worst case for an idle pass), a full resync,
//! and an incremental pass after 1% of the issues changed. For each: wall time, the child's
//! peak resident memory (VmHWM, sampled from /proc), and HTTP requests per server. The fakes
//! share this machine's CPU with the binary, so the times are an upper bound.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jgr_sim::world::{SimWorld, WorldOptions};

struct Sample {
    wall: Duration,
    peak_rss_kib: u64,
    jira_searches: usize,
    gitlab_requests: usize,
    gitlab_writes: usize,
    stdout: String,
}

async fn run_pass(w: &SimWorld, config: &str, full: bool) -> Sample {
    let searches = w.jira.search_requests();
    let requests = w.gitlab.requests();
    let writes = w.gitlab.writes();
    let mut args = vec!["reconcile".to_string(), "--config".into(), config.into()];
    if full {
        args.push("--full".into());
    }
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_jira-gitlab-reconciler"))
        .args(&args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("binary starts");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            peak = peak.max(vm_hwm_kib(&text));
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let wall = started.elapsed();
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut out, &mut stdout);
    }
    assert!(status.success(), "pass failed: {stdout}");
    Sample {
        wall,
        peak_rss_kib: peak,
        jira_searches: w.jira.search_requests() - searches,
        gitlab_requests: w.gitlab.requests() - requests,
        gitlab_writes: w.gitlab.writes() - writes,
        stdout,
    }
}

fn vm_hwm_kib(status: &str) -> u64 {
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn report(name: &str, issues: usize, s: &Sample) {
    println!(
        "{name:<34} {:>8.2} s {:>9.0} issues/s {:>7.1} MiB peak RSS {:>6} Jira searches {:>6} GitLab requests {:>6} GitLab writes",
        s.wall.as_secs_f64(),
        issues as f64 / s.wall.as_secs_f64(),
        s.peak_rss_kib as f64 / 1024.0,
        s.jira_searches,
        s.gitlab_requests,
        s.gitlab_writes
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let issues: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5000);
    let dir = std::env::temp_dir().join(format!("jgr-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let w = SimWorld::start(WorldOptions::new(&dir))
        .await
        .expect("fakes start");
    for i in 0..issues {
        let r = w
            .jira
            .create_issue("VSA", &format!("Benchmark issue {i}"), "Task");
        if i % 4 == 0 {
            w.jira.transition(&r.key, "Done", "done");
        }
    }
    let config = w.write_config().expect("config").display().to_string();
    println!(
        "backfill benchmark: {issues} Jira issues (25% done), binary {}",
        env!("CARGO_BIN_EXE_jira-gitlab-reconciler")
    );

    let s = run_pass(&w, &config, false).await;
    assert_eq!(
        w.gitlab.issues("acme/platform").len(),
        issues,
        "{}",
        s.stdout
    );
    report("first pass (backfill)", issues, &s);

    let s = run_pass(&w, &config, false).await;
    assert_eq!(s.gitlab_writes, 0, "idle pass must not write");
    report("idle incremental (all in window)", issues, &s);

    let s = run_pass(&w, &config, true).await;
    assert_eq!(s.gitlab_writes, 0, "nothing drifted");
    report("full resync, nothing to repair", issues, &s);

    w.clock.advance(Duration::from_secs(3600));
    let changed = (issues / 100).max(1);
    for i in 0..changed {
        w.jira.rename(
            &format!("VSA-{}", i * 97 % issues + 1),
            &format!("Renamed {i}"),
        );
    }
    let s = run_pass(&w, &config, false).await;
    report(&format!("incremental after {changed} renames"), changed, &s);
    let _ = std::fs::remove_dir_all(&dir);
}
