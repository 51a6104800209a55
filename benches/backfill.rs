//! Re-runnable benchmark: the release binary against the simulated servers (in this process,
//! sharing the machine's CPU), with a latency of 2–5 ms per request on both servers.
//!
//!   cargo bench --bench backfill -- [N ...] [--limited] [--sweep]
//!
//! For each N (default 1000 10000): a backfill of N Jira issues (25% done) with the default
//! config, then an idle pass (nothing changed in Jira; the issues' updates are spread over 30
//! days, so the overlap window holds a handful), a full resync with nothing to repair, and an
//! incremental pass after 1% of the issues were renamed. Reported per pass: wall time,
//! issues/s, Jira and GitLab requests and their ratio to the floor (Jira ⌈N/page⌉ + GitLab
//! N creates + closes + ⌈N/100⌉ reads), peak RSS (the kernel's high-water mark), the process's
//! CPU time (user + system, from `wait4`, start-up included) and the pass's own CPU time (from
//! `reconcile --json`). With more than one N, a summary puts the peak RSS of the backfill, the
//! idle pass and the full resync side by side for every N, as a multiple of the smallest N's:
//! none of them may grow with the project.
//!
//! `--limited`: the simulated GitLab refuses creates beyond 50 per 5-second window (600 a
//! minute, GitLab.com's behaviour scaled to a shorter window: a bare 429, no `Retry-After`); an
//! 800-issue backfill reports the creates per minute achieved as a fraction of the limit, over
//! the whole run and after the limit was learned, and the creates refused.
//!
//! `JGR_BENCH_BASELINE=<another build of the binary>`: after each full resync, three more with
//! that build and with this one, alternating, to compare their wall and CPU time on a machine
//! other work loads.
//!
//! `--sweep`: the 10,000-issue backfill at `gitlab.concurrency` 1, 2, 4, 8, 16 and 32, the
//! measurement behind the default.
//!
//! After each N's passes, the service (`run`) serves its status page over that state: the
//! time to answer `GET /` (20 requests one after another), and again while a `reconcile
//! --full` writes the same database, with that pass's wall time beside the one measured alone.
//! `--hostile`: what misbehaving servers cost: a 512 MiB search page (refused), a page chain
//! that never ends (refused), and GitLab's general throttle on 3% of a backfill's creates.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jgr_sim::world::{SimWorld, WorldOptions};
use jgr_sim::{Fault, PageTrap, Route};

const PROJECT: &str = "acme/platform";
const LATENCY: (Duration, Duration) = (Duration::from_millis(2), Duration::from_millis(5));
/// Jira Cloud's page size with fields.
const JIRA_PAGE: usize = 100;

struct Sample {
    wall: Duration,
    /// The process's CPU time (user + system), from start to exit.
    cpu: Duration,
    /// CPU time of the pass itself, as `reconcile --json` reports it (no process start-up).
    pass_cpu: Duration,
    peak_rss_kib: u64,
    jira_requests: usize,
    gitlab_requests: usize,
    gitlab_writes: usize,
    stdout: String,
    /// The process exited 0.
    ok: bool,
}

/// Run the release binary to completion (see `run_program`).
async fn run_pass(w: &SimWorld, args: &[&str]) -> Sample {
    run_program(w, env!("CARGO_BIN_EXE_jira-gitlab-reconciler"), args).await
}

/// Run `binary` to completion. CPU time comes from `wait4`; peak RSS from the kernel's
/// high-water mark (`VmHWM`), read every 2 ms while the child lives (`ru_maxrss` would report
/// this process's size, which the child had before `exec`).
// The child is reaped by `wait4` below (for its CPU time), which clippy cannot see.
#[allow(clippy::zombie_processes)]
async fn run_program(w: &SimWorld, binary: &str, args: &[&str]) -> Sample {
    let jira = w.jira.requests();
    let requests = w.gitlab.requests();
    let writes = w.gitlab.writes();
    let started = Instant::now();
    // JGR_BENCH_WRAP="heaptrack -o /tmp/ht" (or valgrind...) runs every pass under a profiler.
    let mut command = match std::env::var("JGR_BENCH_WRAP") {
        Ok(wrap) if !wrap.trim().is_empty() => {
            let mut words = wrap.split_whitespace();
            let mut c = Command::new(words.next().unwrap_or("env"));
            c.args(words).arg(binary);
            c
        }
        _ => Command::new(binary),
    };
    let mut child = command
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("binary starts");
    let pid = child.id() as libc::pid_t;
    let mut stdout_pipe = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout_pipe, &mut s);
        s
    });
    let status_path = format!("/proc/{pid}/status");
    let mut peak_rss_kib = 0;
    let (status, usage) = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            peak_rss_kib = peak_rss_kib.max(vm_hwm_kib(&text));
        }
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value to be overwritten by wait4.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our child; the pointers are to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break (status, usage);
        }
        assert!(r == 0, "wait4 failed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let wall = started.elapsed();
    let stdout = reader.join().unwrap_or_default();
    let pass_cpu = serde_json::from_str::<serde_json::Value>(&stdout)
        .ok()
        .and_then(|v| {
            v.pointer("/mappings/0/cpu_seconds")
                .and_then(|c| c.as_f64())
        })
        .map(Duration::from_secs_f64)
        .unwrap_or_default();
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Sample {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        pass_cpu,
        peak_rss_kib,
        jira_requests: w.jira.requests() - jira,
        gitlab_requests: w.gitlab.requests() - requests,
        gitlab_writes: w.gitlab.writes() - writes,
        stdout,
        ok,
    }
}

/// [`run_pass`] of a pass that must succeed.
async fn run_binary(w: &SimWorld, args: &[&str]) -> Sample {
    let s = run_pass(w, args).await;
    assert!(s.ok, "pass failed: {}", s.stdout);
    s
}

fn vm_hwm_kib(status: &str) -> u64 {
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn header() {
    println!(
        "{:<38} {:>8} {:>9} {:>7} {:>7} {:>6} {:>7} {:>9} {:>8} {:>8}",
        "pass",
        "wall s",
        "issues/s",
        "Jira",
        "GitLab",
        "writes",
        "/floor",
        "peak MiB",
        "CPU ms",
        "pass CPU"
    );
}

fn report(name: &str, issues: usize, s: &Sample, floor: Option<usize>) {
    let ratio = floor
        .map(|f| {
            format!(
                "{:.3}",
                (s.jira_requests + s.gitlab_requests) as f64 / f as f64
            )
        })
        .unwrap_or_else(|| "-".into());
    println!(
        "{name:<38} {:>8.2} {:>9.0} {:>7} {:>7} {:>6} {:>7} {:>9.1} {:>8.0} {:>8.1}",
        s.wall.as_secs_f64(),
        issues as f64 / s.wall.as_secs_f64().max(0.001),
        s.jira_requests,
        s.gitlab_requests,
        s.gitlab_writes,
        ratio,
        s.peak_rss_kib as f64 / 1024.0,
        s.cpu.as_secs_f64() * 1000.0,
        s.pass_cpu.as_secs_f64() * 1000.0
    );
}

/// A site of `n` issues, a quarter of them done, created over 30 simulated days.
async fn seeded_world(name: &str, n: usize, tweak: impl FnOnce(&mut WorldOptions)) -> SimWorld {
    let dir = std::env::temp_dir().join(format!("jgr-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut opts = WorldOptions::new(&dir);
    opts.latency = Some(LATENCY);
    opts.jira_page_cap = JIRA_PAGE;
    opts.cache_searches = true;
    tweak(&mut opts);
    let w = SimWorld::start(opts).await.expect("fakes start");
    let step = Duration::from_secs(30 * 86_400) / n.max(1) as u32;
    for i in 0..n {
        let r = w
            .jira
            .create_issue("VSA", &format!("Benchmark issue {i}"), "Task");
        if i % 4 == 0 {
            w.jira.transition(&r.key, "Done", "done");
        }
        w.clock.advance(step);
    }
    w
}

fn floor(n: usize, done: usize, reads: usize) -> usize {
    n.div_ceil(JIRA_PAGE) + n + done + reads
}

/// Peak RSS (KiB) of the passes whose memory must not grow with the project.
struct Peaks {
    n: usize,
    backfill: u64,
    idle: u64,
    full: u64,
}

async fn scenario(n: usize) -> Peaks {
    let w = seeded_world(&format!("n{n}"), n, |_| {}).await;
    let config = w.write_config().expect("config").display().to_string();
    let reconcile = ["reconcile", "--json", "--config", config.as_str()];
    let done = n.div_ceil(4);

    let s = run_binary(&w, &reconcile).await;
    assert_eq!(w.gitlab.issues(PROJECT).len(), n, "{}", s.stdout);
    let mut peaks = Peaks {
        n,
        backfill: s.peak_rss_kib,
        idle: 0,
        full: 0,
    };
    report(
        &format!("backfill {n}"),
        n,
        &s,
        Some(floor(n, done, n.div_ceil(100))),
    );

    w.clock.advance(Duration::from_secs(3600));
    let s = run_binary(&w, &reconcile).await;
    assert_eq!(s.gitlab_writes, 0, "an idle pass must not write");
    peaks.idle = s.peak_rss_kib;
    report("idle pass (nothing changed)", n, &s, None);

    let full = ["reconcile", "--json", "--full", "--config", config.as_str()];
    let s = run_binary(&w, &full).await;
    assert_eq!(s.gitlab_writes, 0, "nothing drifted");
    peaks.full = s.peak_rss_kib;
    let full_floor = n.div_ceil(JIRA_PAGE) + n.div_ceil(100);
    report("full resync, nothing to repair", n, &s, Some(full_floor));
    if let Ok(baseline) = std::env::var("JGR_BENCH_BASELINE") {
        // Back to back on the same world: on a loaded machine only alternating runs compare.
        let this = env!("CARGO_BIN_EXE_jira-gitlab-reconciler");
        for round in 1..=3 {
            for (label, binary) in [("baseline", baseline.as_str()), ("this build", this)] {
                let s = run_program(&w, binary, &full).await;
                assert_eq!(s.gitlab_writes, 0, "nothing drifted");
                let name = format!("  full resync, {label} #{round}");
                report(&name, n, &s, Some(full_floor));
            }
        }
    }

    w.clock.advance(Duration::from_secs(3600));
    let changed = (n / 100).max(1);
    for i in 0..changed {
        w.jira
            .rename(&format!("VSA-{}", i * 97 % n + 1), &format!("Renamed {i}"));
    }
    let s = run_binary(&w, &reconcile).await;
    assert_eq!(s.gitlab_writes, changed, "{}", s.stdout);
    report(
        &format!("after {changed} renames"),
        changed,
        &s,
        Some(1 + changed + changed.div_ceil(100)),
    );
    status_page(&w, n).await;
    let _ = std::fs::remove_dir_all(&w.opts.dir);
    peaks
}

/// The passes' peak RSS side by side for every size, and as a multiple of the smallest size's:
/// flat memory means the multiples stay near 1 however large the project.
fn memory_summary(peaks: &[Peaks]) {
    let Some(base) = peaks.first() else { return };
    println!(
        "peak RSS by project size (MiB, and × the {} issues' peak)",
        base.n
    );
    println!(
        "{:>9} {:>17} {:>17} {:>17}",
        "issues", "backfill", "idle pass", "full resync"
    );
    let cell = |kib: u64, base: u64| {
        format!(
            "{:.1} ×{:.2}",
            kib as f64 / 1024.0,
            kib as f64 / base.max(1) as f64
        )
    };
    for p in peaks {
        println!(
            "{:>9} {:>17} {:>17} {:>17}",
            p.n,
            cell(p.backfill, base.backfill),
            cell(p.idle, base.idle),
            cell(p.full, base.full)
        );
    }
}

/// `GET /` of the service over the state of `n` issues: alone, then while a full resync runs.
async fn status_page(w: &SimWorld, n: usize) {
    let (mut service, config, url) = page_service(w);
    let client = reqwest::Client::new();
    let up = Instant::now();
    while page_time(&client, &url).await.is_none() {
        assert!(
            up.elapsed() < Duration::from_secs(60),
            "the status page never answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut alone = Vec::new();
    for _ in 0..20 {
        alone.extend(page_time(&client, &url).await);
    }
    let started = Instant::now();
    let mut pass = Command::new(env!("CARGO_BIN_EXE_jira-gitlab-reconciler"))
        .args(["reconcile", "--full", "--config", &config])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("reconcile starts");
    let mut during = Vec::new();
    while pass.try_wait().expect("wait").is_none() {
        during.extend(page_time(&client, &url).await);
    }
    let pass_wall = started.elapsed();
    let _ = service.kill();
    let _ = service.wait();
    println!("status page over {n} issues: {}", spread(&mut alone));
    println!(
        "  during a full resync ({:.2} s wall): {}",
        pass_wall.as_secs_f64(),
        spread(&mut during)
    );
}

/// The service over `w`'s state, passing only at start-up; its config path and page URL.
fn page_service(w: &SimWorld) -> (std::process::Child, String, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let config = w.opts.dir.join("service.toml");
    let text = format!(
        "{}\n[schedule]\nreconcile = \"0 0 0 1 1 *\"\nfull_resync = \"0 0 0 1 1 *\"\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n",
        w.config_toml()
    );
    std::fs::write(&config, text).expect("config");
    let config = config.display().to_string();
    let service = Command::new(env!("CARGO_BIN_EXE_jira-gitlab-reconciler"))
        .args(["run", "--config", &config])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the service starts");
    (service, config, format!("http://127.0.0.1:{port}/"))
}

/// How long a whole page took, or `None` when it did not come.
async fn page_time(client: &reqwest::Client, url: &str) -> Option<Duration> {
    let started = Instant::now();
    let r = client.get(url).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.bytes().await.ok()?;
    Some(started.elapsed())
}

fn spread(v: &mut [Duration]) -> String {
    v.sort();
    let at = |q: f64| {
        v.get(((v.len() as f64 - 1.0) * q) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    format!(
        "median {:.0} ms, max {:.0} ms ({} requests)",
        at(0.5),
        at(1.0),
        v.len()
    )
}

/// GitLab refuses creates beyond 50 per 5 s (600 a minute): how close does the learned pace come
/// to the limit, and how many creates are refused per window? The first windows are the
/// learning (creates go out at full speed until refused); the steady state is measured over
/// the windows after the last refusal.
async fn limited() {
    let window = Duration::from_secs(5);
    let limit: u32 = 50;
    let n = 800;
    let w = seeded_world("limited", n, |o| {
        o.create_limit_per_minute = Some(limit);
        o.create_window = Some(window);
        o.jira_page_cap = JIRA_PAGE;
    })
    .await;
    let config = w.write_config().expect("config").display().to_string();
    let args = ["reconcile", "--json", "--config", config.as_str()];
    // (seconds since start, issues in GitLab, creates refused so far), every 50 ms.
    let mut samples: Vec<(f64, usize, usize)> = Vec::new();
    let started = Instant::now();
    let run = run_binary(&w, &args);
    tokio::pin!(run);
    let s = loop {
        tokio::select! {
            s = &mut run => break s,
            () = tokio::time::sleep(Duration::from_millis(50)) => samples.push((
                started.elapsed().as_secs_f64(),
                w.gitlab.issue_count(PROJECT),
                w.gitlab.refused_creates(),
            )),
        }
    };
    assert_eq!(w.gitlab.issues(PROJECT).len(), n, "{}", s.stdout);
    let allowed = f64::from(limit) * 60.0 / window.as_secs_f64();
    let refused = w.gitlab.refused_creates();
    let overall = n as f64 / s.wall.as_secs_f64() * 60.0;
    report(
        &format!("backfill {n}, limit {limit}/{}s", window.as_secs()),
        n,
        &s,
        None,
    );
    println!(
        "  overall: {overall:.0} creates/min of {allowed:.0} allowed = {:.3}; {refused} creates refused in {:.1} windows",
        overall / allowed,
        s.wall.as_secs_f64() / window.as_secs_f64()
    );
    if std::env::var_os("JGR_BENCH_TRACE").is_some() {
        // Creates per window as GitLab saw them, for looking into the pacing.
        let mut at = window.as_secs_f64();
        let mut last = 0;
        for (t, n, r) in &samples {
            if *t >= at {
                println!(
                    "  by {at:>5.1} s: {:>4} created (+{:>3}), {r} refused",
                    n,
                    n - last
                );
                last = *n;
                at += window.as_secs_f64();
            }
        }
    }
    // Steady state, after the last refusal: creates come in bursts at each window's start, so
    // the rate is measured from burst to burst (when the count first passes k·limit), which a
    // measurement between arbitrary moments would skew by up to a burst.
    let last_refusal = samples
        .iter()
        .position(|(_, _, r)| *r == refused)
        .unwrap_or(0);
    let limit = limit as usize;
    // Bursts that begin after the last refusal (the pacer probes now and then: a refused probe
    // is the last refusal of its window).
    let created_then = samples.get(last_refusal).map_or(0, |s| s.1);
    let burst_starts: Vec<(f64, usize)> = (created_then / limit + 1..=n / limit)
        .filter_map(|k| {
            samples[last_refusal..]
                .iter()
                .find(|(_, count, _)| *count > k * limit)
                .map(|(t, _, _)| (*t, k))
        })
        .collect();
    if let (Some(first), Some(last)) = (burst_starts.first(), burst_starts.last()) {
        let secs = last.0 - first.0;
        if secs >= window.as_secs_f64() {
            let rate = ((last.1 - first.1) * limit) as f64 / secs * 60.0;
            println!(
                "  after the last refusal ({} windows, 0 refused): {rate:.0} creates/min = {:.3} of the limit",
                last.1 - first.1,
                rate / allowed
            );
        }
    }
    let _ = std::fs::remove_dir_all(&w.opts.dir);
}

/// Misbehaving servers: what each costs the binary (wall time, peak RSS, requests).
async fn hostile() {
    let w = seeded_world("huge-page", 1_000, |_| {}).await;
    let config = w.write_config().expect("config").display().to_string();
    let args = ["reconcile", "--json", "--config", config.as_str()];
    w.jira.inject(
        Route::Read,
        Fault::Huge {
            bytes: 512 << 20,
            declared: false,
        },
        1,
    );
    let s = run_pass(&w, &args).await;
    assert!(!s.ok, "a 512 MiB page must be refused");
    report("512 MiB search page, refused", 0, &s, None);
    println!(
        "  Jira handed over {} MiB before the connection closed",
        w.jira.streamed_bytes() >> 20
    );
    let _ = std::fs::remove_dir_all(&w.opts.dir);

    let w = seeded_world("endless", 1_000, |_| {}).await;
    w.jira.set_hostile(jgr_sim::jira::Hostile {
        page_tokens: Some(PageTrap::EverNew),
        ..Default::default()
    });
    let config = w.write_config().expect("config").display().to_string();
    let s = run_pass(&w, &["reconcile", "--json", "--config", config.as_str()]).await;
    assert!(!s.ok, "an endless page chain must be refused");
    report("never-ending page chain (1,000 issues)", 0, &s, None);
    let _ = std::fs::remove_dir_all(&w.opts.dir);

    let n = 1_000;
    let w = seeded_world("throttle", n, |_| {}).await;
    w.gitlab.random_faults_on(
        Route::Create,
        3,
        0.03,
        vec![Fault::RateLimited {
            retry_after: Some("1".into()),
        }],
    );
    let config = w.write_config().expect("config").display().to_string();
    let s = run_binary(&w, &["reconcile", "--json", "--config", config.as_str()]).await;
    assert_eq!(w.gitlab.issues(PROJECT).len(), n, "{}", s.stdout);
    report("backfill 1000, 3% throttled (Retry-After 1)", n, &s, None);
    // Beyond the creates and closes: the project look-up, one listing, and the throttled.
    let throttled = s.gitlab_requests - s.gitlab_writes - 2;
    let learned = jira_gitlab_reconciler::store::Store::open(&w.state_path())
        .ok()
        .and_then(|st| st.cache().pacer(&w.gitlab.url()).ok().flatten())
        .and_then(|p| p.learned);
    println!("  {throttled} creates throttled; create limit learned: {learned:?}");
    let _ = std::fs::remove_dir_all(&w.opts.dir);
}

async fn sweep() {
    let n = 10_000;
    for concurrency in [1, 2, 4, 8, 16, 32] {
        let w = seeded_world(&format!("sweep{concurrency}"), n, |o| {
            o.gitlab_config = format!("concurrency = {concurrency}");
        })
        .await;
        let config = w.write_config().expect("config").display().to_string();
        let s = run_binary(&w, &["reconcile", "--json", "--config", config.as_str()]).await;
        report(
            &format!("backfill {n}, concurrency {concurrency}"),
            n,
            &s,
            None,
        );
        let _ = std::fs::remove_dir_all(&w.opts.dir);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    println!(
        "backfill benchmark: release binary {}, servers in this process with {}-{} ms latency",
        env!("CARGO_BIN_EXE_jira-gitlab-reconciler"),
        LATENCY.0.as_millis(),
        LATENCY.1.as_millis()
    );
    header();
    if args.iter().any(|a| a == "--sweep") {
        sweep().await;
    }
    if args.iter().any(|a| a == "--limited") {
        limited().await;
    }
    if args.iter().any(|a| a == "--hostile") {
        hostile().await;
    }
    let sizes = if sizes.is_empty() && !args.iter().any(|a| a.starts_with("--")) {
        vec![1_000, 10_000]
    } else {
        sizes
    };
    let mut peaks = Vec::new();
    for n in sizes {
        peaks.push(scenario(n).await);
    }
    if peaks.len() > 1 {
        memory_summary(&peaks);
    }
}
