//! Shared set-up: a simulated site in its own temporary directory, and helpers to run passes
//! through the library or the real binary.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jgr_sim::gitlab::IssueSnapshot;
use jgr_sim::world::{SimWorld, WorldOptions};
use jira_gitlab_reconciler::config::Config;
use jira_gitlab_reconciler::domain::PassKind;
use jira_gitlab_reconciler::metrics::Metrics;
use jira_gitlab_reconciler::reconcile::{Mode, PassReport, Reconciler};
use jira_gitlab_reconciler::store::{MappingStatus, Store};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub const MINUTE: std::time::Duration = std::time::Duration::from_secs(60);
/// The GitLab project of the default mapping.
pub const PROJECT: &str = "acme/platform";

/// `n` Jira issues in VSA, every `done_every`-th of them resolved.
pub fn seed_issues(w: &SimWorld, n: usize, done_every: usize) {
    for i in 0..n {
        let r = w.jira.create_issue("VSA", &format!("Issue {i}"), "Task");
        if (i + 1) % done_every == 0 {
            w.jira.transition(&r.key, "Done", "done");
        }
    }
}

/// A fresh directory for the test running on this thread: removed when the test passes, kept
/// (its path printed with the failure) when it fails, to look at what the run left.
pub fn temp_dir(name: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("jgr-it-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    keep_on_failure();
    TEST_DIRS.with(|d| d.dirs.borrow_mut().push(dir.clone()));
    dir
}

/// The directories a test made. libtest runs each test on a thread of its own and joins it,
/// so this thread-local is dropped when the test has ended, passed or failed.
#[derive(Default)]
struct TestDirs {
    dirs: std::cell::RefCell<Vec<PathBuf>>,
    failed: std::cell::Cell<bool>,
}

thread_local! {
    static TEST_DIRS: TestDirs = TestDirs::default();
}

impl Drop for TestDirs {
    fn drop(&mut self) {
        if self.failed.get() {
            return;
        }
        for dir in self.dirs.borrow().iter() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A panic on a test's thread is its failure: mark its directories to be kept and name them
/// in the failure's output.
fn keep_on_failure() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let kept = TEST_DIRS
                .try_with(|d| {
                    d.failed.set(true);
                    d.dirs.borrow().clone()
                })
                .unwrap_or_default();
            for dir in kept {
                eprintln!("kept the failed test's files in {}", dir.display());
            }
            previous(info);
        }));
    });
}

/// Whether this is a CI run (`CI=true`, as `.ci/run` sets), which must run every test.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A test cannot run here because `why`: in CI that fails it; elsewhere it prints one
/// `SKIPPED: <test>: <why>` line to the run's own stderr (past libtest's capture, so every
/// run shows its skips) and the caller returns.
pub fn skip(test: &str, why: &str) {
    assert!(!in_ci(), "{test}: {why}, and CI must run every test");
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {test}: {why}");
}

pub async fn world(name: &str, tweak: impl FnOnce(&mut WorldOptions)) -> SimWorld {
    let mut opts = WorldOptions::new(&temp_dir(name));
    tweak(&mut opts);
    SimWorld::start(opts).await.expect("fakes start")
}

/// The reconciler's configuration for this simulated site, from the TOML the sim writes.
pub fn config(w: &SimWorld) -> Config {
    Config::parse(
        &w.config_toml(),
        std::path::Path::new("sim-config.toml"),
        &|_| None,
    )
    .expect("the sim's config is valid")
}

/// One library-level pass over every mapping with a real state file.
pub async fn pass(w: &SimWorld, kind: PassKind) -> Vec<PassReport> {
    let cfg = config(w);
    let r = Reconciler::new(cfg, Arc::new(Metrics::new())).expect("reconciler");
    let store = Store::open(&w.state_path()).expect("store");
    r.pass(Mode::Apply(&store), kind).await
}

/// A pass that must succeed; returns its single report.
pub async fn pass_ok(w: &SimWorld, kind: PassKind) -> PassReport {
    let mut reports = pass(w, kind).await;
    for r in &reports {
        assert!(r.ok(), "pass failed: {:?}", r.failures);
    }
    assert_eq!(reports.len(), 1, "one mapping expected");
    reports.remove(0)
}

/// The GitLab issue mirroring the Jira issue with this id (exactly one must exist).
pub fn mirror_of(w: &SimWorld, project: &str, jira_id: &str) -> IssueSnapshot {
    let marker = format!("jira-id={jira_id} -->");
    let found: Vec<IssueSnapshot> = w
        .gitlab
        .issues(project)
        .into_iter()
        .filter(|i| i.description.contains(&marker))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one GitLab issue for Jira id {jira_id}: {found:?}"
    );
    found.into_iter().next().expect("one")
}

/// Every Jira issue of `jira_project` has exactly one GitLab mirror with its summary as title,
/// the right state and the link back; returns how many were checked.
pub fn assert_converged(w: &SimWorld, jira_project: &str, gitlab_project: &str) -> usize {
    let issues: Vec<_> = w
        .jira
        .issues()
        .into_iter()
        .filter(|i| i.project == jira_project)
        .collect();
    for j in &issues {
        let g = mirror_of(w, gitlab_project, &j.id);
        let want_state = if j.category == "done" {
            "closed"
        } else {
            "opened"
        };
        assert_eq!(g.state, want_state, "{}: state", j.key);
        // The summaries these tests write are plain: the title is the summary, as typed.
        assert_eq!(g.title, j.summary, "{}: title", j.key);
        assert!(
            g.description.contains(&format!("/browse/{})", j.key)),
            "{}: link",
            j.key
        );
    }
    let mirrors = w
        .gitlab
        .issues(gitlab_project)
        .iter()
        .filter(|g| g.description.contains("jira-gitlab-reconciler:jira-id="))
        .count();
    assert_eq!(
        mirrors,
        issues.len(),
        "no extra mirrors in {gitlab_project}"
    );
    issues.len()
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_jira-gitlab-reconciler")
}

/// Run the real binary (off the async runtime, so the fakes keep serving).
pub async fn run_binary(args: Vec<String>) -> Output {
    run_binary_env(args, vec![]).await
}

/// The binary's command with a clean environment for tokens, plus `env`.
pub fn command(args: &[String], env: &[(String, String)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(binary());
    cmd.args(args)
        .env_remove("JIRA_API_TOKEN")
        .env_remove("GITLAB_TOKEN")
        .env_remove("JGR_CONFIG")
        // Not this machine's installed units (the package test installs some meanwhile):
        // `check` reads their users, sandboxes and credentials. A test may name its own.
        .env("SYSTEMD_UNIT_PATH", "/nonexistent/jgr-test-units")
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// `run_binary` with extra environment variables (`TZ`, tokens...).
pub async fn run_binary_env(args: Vec<String>, env: Vec<(String, String)>) -> Output {
    tokio::task::spawn_blocking(move || command(&args, &env).output().expect("binary runs"))
        .await
        .expect("join")
}

/// `reconcile --config <the world's config>`, written fresh.
pub fn reconcile_args(w: &SimWorld) -> Vec<String> {
    let config = w.write_config().expect("config").display().to_string();
    vec!["reconcile".into(), "--config".into(), config]
}

/// The state database's view of the world's first mapping (`None` before the first pass).
pub fn state_status(w: &SimWorld) -> Option<MappingStatus> {
    let store = Store::open_read_only(&w.state_path()).expect("state readable")?;
    let name = format!(
        "{}->{}",
        w.opts.mappings[0].jira_project, w.opts.mappings[0].gitlab_project
    );
    Some(store.status(&name.into()).expect("status"))
}

pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---------------------------------------------------------------------------------------------
// The service as a real process

/// A listener on a free port of 127.0.0.1, bound now and held: handed to the service (see
/// [`spawn_service`]), its port cannot be taken by anyone else in between.
pub fn bind_local() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port")
}

pub fn port_of(listener: &std::net::TcpListener) -> u16 {
    listener.local_addr().expect("bound").port()
}

/// A schedule that never comes round while a test runs.
pub const YEARLY: &str = "0 0 0 1 1 *";
/// Every second.
pub const EVERY_SECOND: &str = "* * * * * *";

/// The service's config: polls every second, the full resync once a year.
pub fn service_config(w: &SimWorld, port: u16, extra: &str) -> String {
    service_config_with(w, port, (EVERY_SECOND, YEARLY), extra)
}

/// The service's config with this `(reconcile, full_resync)` schedule.
pub fn service_config_with(
    w: &SimWorld,
    port: u16,
    (reconcile, full_resync): (&str, &str),
    extra: &str,
) -> String {
    let path = w.opts.dir.join("config.toml");
    let text = format!(
        "{}\n[schedule]\nreconcile = \"{reconcile}\"\nfull_resync = \"{full_resync}\"\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\nunhealthy_after = \"1h\"\n{extra}",
        w.config_toml()
    );
    std::fs::write(&path, text).expect("config");
    path.display().to_string()
}

/// The listeners a service process gets, bound by the test: `/metrics` on its own, and the
/// world's webhook listener when it has one.
pub struct Sockets<'a> {
    pub metrics: std::net::TcpListener,
    webhook: Option<&'a std::net::TcpListener>,
}

impl<'a> Sockets<'a> {
    pub fn for_world(w: &'a SimWorld) -> Sockets<'a> {
        Sockets {
            metrics: bind_local(),
            webhook: w.webhook_listener.as_ref(),
        }
    }

    pub fn metrics_port(&self) -> u16 {
        port_of(&self.metrics)
    }

    /// (name, descriptor) as systemd's `LISTEN_FDNAMES` names them.
    fn named(&self) -> Vec<(&'static str, std::os::fd::RawFd)> {
        use std::os::fd::AsRawFd;
        let mut out = vec![("metrics", self.metrics.as_raw_fd())];
        if let Some(w) = self.webhook {
            out.push(("webhook", w.as_raw_fd()));
        }
        out
    }
}

/// A process a test started (the service, a long `reconcile`). Dropped (a test that failed,
/// say), it is killed and reaped: none outlives its test.
pub struct Running {
    child: Option<Child>,
}

impl Running {
    pub fn new(child: Child) -> Self {
        Running { child: Some(child) }
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The process, for reading its output while it runs.
    pub fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("the child is there until taken")
    }

    fn take(mut self) -> Child {
        self.child.take().expect("the child is there until taken")
    }
}

impl From<Child> for Running {
    fn from(child: Child) -> Self {
        Running::new(child)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            // The test failed with the process still running: its log tells why.
            if let (true, Some(mut err)) = (std::thread::panicking(), child.stderr.take()) {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut err, &mut text);
                eprintln!("--- stderr of the killed process ---\n{text}");
            }
        }
    }
}

/// `run --config <config>` with `sockets` handed over as systemd's socket activation does
/// (`LISTEN_FDS`, `LISTEN_FDNAMES`, `LISTEN_PID`, descriptors from 3): the binary must serve
/// on them, and cannot bind anything itself (the ports are the test's).
pub fn spawn_service(config: &str, sockets: &Sockets) -> Running {
    spawn_service_with(config, sockets, |_| {})
}

/// `spawn_service`, with the command adjusted first (environment, output).
pub fn spawn_service_with(
    config: &str,
    sockets: &Sockets,
    adjust: impl FnOnce(&mut Command),
) -> Running {
    let mut cmd = socket_activated(&["run", "--config", config], &sockets.named());
    cmd.env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    adjust(&mut cmd);
    Running::new(cmd.spawn().expect("service starts"))
}

/// The binary with `args`, started through `sh` so that `LISTEN_PID` can name the binary's own
/// process (`$$` survives the `exec`), with `sockets` on descriptors 3, 4, ...
fn socket_activated(args: &[&str], sockets: &[(&str, std::os::fd::RawFd)]) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "LISTEN_PID=$$ exec \"$0\" \"$@\"", binary()])
        .args(args)
        .env("LISTEN_FDS", sockets.len().to_string())
        .env(
            "LISTEN_FDNAMES",
            sockets
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(":"),
        );
    let fds: Vec<std::os::fd::RawFd> = sockets.iter().map(|(_, fd)| *fd).collect();
    assert!(fds.len() <= 8, "at most 8 sockets");
    // SAFETY: between fork and exec only async-signal-safe calls (fcntl, dup2) on descriptors
    // this process owns; nothing allocates.
    unsafe {
        cmd.pre_exec(move || {
            let first = 3 + fds.len() as i32;
            // Out of the way first, so that no target clobbers a source.
            let mut moved = [0; 8];
            for (i, fd) in fds.iter().enumerate() {
                moved[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, first);
                if moved[i] < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, fd) in moved.iter().take(fds.len()).enumerate() {
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd
}

pub fn signal(child: &Running, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill -{sig}");
}

/// A socket for systemd's notify protocol in the world's directory (reads time out after
/// 10 s), and its path for `NOTIFY_SOCKET`.
pub fn notify_socket(w: &SimWorld) -> (std::os::unix::net::UnixDatagram, PathBuf) {
    let path = w.opts.dir.join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    (socket, path)
}

/// A root-owned config for `w` whose state lives in a directory `uid` owns, as the service's
/// state directory is the service user's while the config and tokens stay root's: (config,
/// state database).
pub fn state_owned_by(w: &SimWorld, uid: u32) -> (PathBuf, PathBuf) {
    let dir = w.opts.dir.join("state");
    std::fs::create_dir(&dir).expect("state dir");
    std::os::unix::fs::chown(&dir, Some(uid), Some(uid)).expect("chown");
    let db = dir.join("state.db");
    let config = w.opts.dir.join("root.toml");
    std::fs::write(
        &config,
        w.config_toml().replace(
            &w.state_path().display().to_string(),
            &db.display().to_string(),
        ),
    )
    .expect("config");
    (config, db)
}

/// GET from the service; (0, "") when it does not answer within 10 s. The port stays bound by
/// the test after the service is gone (see [`Sockets`]): a dead service does not refuse the
/// connection, it never answers.
pub async fn http_get(port: u16, path: &str) -> (u16, String) {
    let url = format!("http://127.0.0.1:{port}{path}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    match client.get(&url).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    }
}

/// How long a test waits for an event to show: far beyond what it takes, so that only a
/// product that never does it fails, however loaded the machine.
pub const EVENT_WAIT: Duration = Duration::from_secs(30);

/// A Prometheus sample's value on the service's `/metrics` (0 when absent).
pub async fn metric(port: u16, series: &str) -> f64 {
    let (_, text) = http_get(port, "/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// Whether `series` reaches `value` within `limit` (passes are counted when they end).
pub async fn metric_reaches(port: u16, series: &str, value: f64, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if metric(port, series).await >= value {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    metric(port, series).await >= value
}

/// `jgr_passes_total` of the default mapping for passes of `kind` that succeeded.
pub fn passes_ok(kind: &str) -> String {
    format!("jgr_passes_total{{kind=\"{kind}\",mapping=\"VSA->{PROJECT}\",outcome=\"ok\"}}")
}

/// Whether `project` holds at least `n` issues within `limit`.
pub async fn gitlab_reaches(w: &SimWorld, project: &str, n: usize, limit: Duration) -> bool {
    eventually(limit, || w.gitlab.issues(project).len() >= n).await
}

/// Poll `cond` every 100 ms for up to `limit`.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cond()
}

pub async fn wait_exit(process: Running, limit: Duration) -> (Option<i32>, Duration, String) {
    let mut child = process.take();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            if let Some(mut s) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut s, &mut err);
            }
            return (status.code(), start.elapsed(), err);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("service did not exit within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The full path of a program on `PATH`.
pub fn which(name: &str) -> Result<String, ()> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| format!("{d}/{name}"))
        .find(|p| std::path::Path::new(p).exists())
        .ok_or(())
}

/// Whether the test may go on as root: `false` (after saying it skipped) when it does not run
/// as root, except under `CI=true`, where a missing precondition fails the test.
pub fn root_for(why: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true and not root: {why}"
    );
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    skip(
        &test,
        &format!("not root: {why} (run the tests as root, as CI does)"),
    );
    false
}

/// Whether the tests run as root (as CI does): root may give files away and ignores modes.
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// What the service logs once a stop is in force (nothing new starts after it).
pub const SERVICE_STOPPING: &str = "stopping: no new action starts";
/// What `reconcile` logs once a stop is in force.
pub const RECONCILE_STOPPING: &str = "stopping: the writes in flight finish";

/// SIGTERM a child while `gate` holds its requests: once one is held, signal; once the child
/// logs `stopping` (the stop is in force), let the held requests go. Returns the exit code,
/// everything the child logged, and what it printed on a piped stdout.
pub async fn term_while_held(
    child: impl Into<Running>,
    gate: &jgr_sim::Gate,
    stopping: &str,
) -> (Option<i32>, String, String) {
    let mut child = child.into();
    let log = ChildLog::capture(child.child_mut());
    let stdout = child.child_mut().stdout.take();
    assert!(
        eventually(EVENT_WAIT, || gate.arrived() >= 1).await,
        "no request reached the gate: {}",
        log.text()
    );
    signal(&child, "TERM");
    assert!(
        log.wait_for(stopping, EVENT_WAIT).await,
        "never logged {stopping:?}: {}",
        log.text()
    );
    gate.open();
    let (code, _, _) = wait_exit(child, EVENT_WAIT).await;
    let mut printed = String::new();
    if let Some(mut out) = stdout {
        let _ = std::io::Read::read_to_string(&mut out, &mut printed);
    }
    (code, log.finish(), printed)
}

/// A child's stderr, read line by line as it is written, so that a test can wait for the line
/// that says something happened instead of guessing how long it takes.
pub struct ChildLog {
    text: Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ChildLog {
    /// Take over the child's piped stderr.
    pub fn capture(child: &mut Child) -> ChildLog {
        let text = Arc::new(std::sync::Mutex::new(String::new()));
        let reader = child.stderr.take().map(|stderr| {
            let text = text.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    let mut t = text.lock().unwrap_or_else(|e| e.into_inner());
                    t.push_str(&line);
                    t.push('\n');
                }
            })
        });
        ChildLog { text, reader }
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        self.text.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether a line containing `needle` is logged within `limit`.
    pub async fn wait_for(&self, needle: &str, limit: Duration) -> bool {
        eventually(limit, || self.text().contains(needle)).await
    }

    /// Everything the child logged, once it has exited (its end of the pipe is closed).
    pub fn finish(mut self) -> String {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.text()
    }
}
