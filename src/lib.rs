//! jira-gitlab-reconciler: a polling reconciler that makes a GitLab project's issues agree with
//! a Jira project's, so GitLab's Value Stream Analytics measures work planned in Jira.
//!
//! Layout, lowest layer first; a module uses only modules of lower layers (the integration test
//! `tests/it/layers.rs` reads the source and enforces it):
//!
//! 1. Leaves, plain values and rules: `domain` (Jira and GitLab issues, mirrors, edits, pass
//!    kinds and counts; titles, states and the description marker; the identifiers `JiraId`,
//!    `JiraKey`, `GitlabIid` and `MappingId`, parsed once where data enters and typed
//!    everywhere else), `cause` (why something failed → exit code), `secret`, `metrics`,
//!    `notify` (sd_notify), `rng`, `progress`, and `stop`, the one shutdown mechanism, passed
//!    in to everything that waits. Then `safe_text` (server text made safe) and `paging` (page
//!    chains kept finite).
//! 2. `http`, one layer for both servers in parts: sending, the retry policy (every wait
//!    bounded), the error (friendly words, the transport's error kept as its source) and the
//!    limits on what a server may send; `logging`; `plan`, the pure planner: (Jira issues,
//!    mirrors, GitLab issues) → actions; and `leadtime`, the pure lead-time and time-in-status
//!    figures.
//! 3. `jira` and `gitlab`, the API clients. They take plain values and know nothing of the
//!    product's configuration.
//! 4. `error`, the crate's error by cause; `store` (SQLite: `Store` owns the connection and
//!    hands out a view per concern — mirrors, intents, checkpoints, passes, facts, cache,
//!    webhook counts, seen-tracking, listings — each a file with its SQL and tests, and the
//!    migrations in a list of their own), `lock` (one pass per state database), `schedule`
//!    (cron schedules, checked as the scheduler reads them), `listen` (the service's HTTP
//!    listeners: limits, timeouts, sockets handed over by systemd).
//! 5. `config` reads the TOML in three steps: the file's shape (serde, unknown keys refused),
//!    values that check themselves as they are read (`ConfigValue`), then the clients and the
//!    planner's rules they build.
//! 6. `reconcile`: a pass as its phases (observe → plan → apply, batch by batch → on full
//!    passes, the issues that left → recover lost creates → commit the checkpoint); `apply` is
//!    the only code that writes to GitLab. Each action ends as an `Outcome`, added up with `+=`
//!    into a `Tally` per job, batch and mapping; a mapping's `PassReport` is its tally, which
//!    `reconcile --json`, the pass history, `status` and the metrics all read. `ARCHITECTURE.md`
//!    follows one pass through these types.
//! 7. `health` (`/metrics`, `/healthz`), `report` (lead time from the state database, as a
//!    table, JSON, CSV or SVG), `reference` (`ref`: a Jira key's mirror, for commit messages),
//!    `vsa` (`vsa setup`: a value stream of the Jira workflow), `status_page` (the service's
//!    page at `/`: each mapping, the webhook, the lead-time report), then the commands: `check`
//!    (one function per check), `service` (`run`: cron ticks and webhook events feed one
//!    worker; signals become the service's stop and reloads), `demo` (behind the default `demo`
//!    feature, against the simulated servers of `crates/sim`), and
//!    `cli`, which parses the command line, finds the config file and prints `status`, the
//!    reconcile report (text or JSON), completions and man pages; `main.rs` is one line.

pub mod cause;
pub mod check;
pub mod cli;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod domain;
pub mod error;
pub mod gitlab;
pub mod health;
pub mod http;
pub mod jira;
pub mod leadtime;
pub mod listen;
pub mod lock;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod paging;
pub mod path_walk;
pub mod plan;
pub mod progress;
pub mod reconcile;
pub mod reference;
pub mod report;
pub mod rng;
pub mod safe_text;
pub mod schedule;
pub mod secret;
pub mod service;
pub mod status_page;
pub mod stop;
pub mod store;
pub mod vsa;
pub mod webhook;

/// Lock a mutex, recovering from poisoning: a panic elsewhere must not take the metrics or a
/// fake server down with it.
pub fn lock_unpoisoned<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Faults for the tests of the real binary, compiled into debug builds only and armed only by
/// `JGR_TEST_HOOKS` (comma-separated): with `summaries`, planning a Jira issue whose summary
/// is exactly `jgr-test:panic` panics, one whose summary is `jgr-test:wedge` blocks its thread
/// for 3 s (a pass stuck in a call that never yields); with `worker-panic`, the service's
/// worker panics after its first scheduled pass, outside any mapping's pass. The package (a
/// release build) contains none of it.
#[cfg(debug_assertions)]
pub(crate) fn test_hook_armed(hook: &str) -> bool {
    static ARMED: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    ARMED
        .get_or_init(|| {
            let hooks = std::env::var("JGR_TEST_HOOKS").unwrap_or_default();
            hooks.split(',').map(|h| h.trim().to_string()).collect()
        })
        .iter()
        .any(|h| h == hook)
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn test_hook_armed(_hook: &str) -> bool {
    false
}

/// The planner's test faults (see [`test_hook_armed`]).
pub(crate) fn test_fault(summary: Option<&str>) {
    if !test_hook_armed("summaries") {
        return;
    }
    match summary {
        Some("jgr-test:panic") => panic!("test hook: a planner bug met its input"),
        Some("jgr-test:wedge") => std::thread::sleep(std::time::Duration::from_secs(3)),
        _ => {}
    }
}

/// The text a panic was raised with (`panic!("...")` gives a `&str` or a `String`).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Give a file of the state directory the directory's owner and group. Run as root (`sudo …
/// check` or `reconcile` after installing the package), the reconciler would otherwise leave a
/// root-owned database or lock file in the service's directory, and the service's next pass
/// would fail to write it. Only root can give files away; for anyone else a file that differs
/// from its directory stays as it is (nothing to fix: that user owns both or neither).
///
/// Through the descriptor this process already holds (`file`, opened as `path`), never by
/// name: the directory belongs to the service's user, who could swap the name for a symlink
/// (`state.db.lock -> /etc/shadow`) or a hard link between a check and a `chown` by name. The
/// owner is the directory's numeric uid and gid, read once; only a regular file with one link
/// is changed. No descriptor is opened or closed here: SQLite's locks are POSIX record locks,
/// which a process loses on *every* descriptor of a file when it closes *any* of them (opening
/// the database or its `-shm` here and closing it again would let another process truncate
/// shared memory under this one: SIGBUS), so the store hands over SQLite's own descriptors.
pub(crate) fn match_directory_owner(file: std::os::fd::BorrowedFd<'_>, path: &std::path::Path) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let Ok(d) = std::fs::metadata(dir) else {
        return;
    };
    let (uid, gid) = (d.uid(), d.gid());
    // SAFETY: an all-zero `stat` is a valid value to be overwritten, and `file` is a
    // descriptor this process holds open for the whole call.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above; fstat writes only into `st`.
    if unsafe { libc::fstat(file.as_raw_fd(), &mut st) } != 0 {
        return;
    }
    let regular = st.st_mode & libc::S_IFMT == libc::S_IFREG;
    if !regular || st.st_nlink != 1 || (st.st_uid, st.st_gid) == (uid, gid) {
        return;
    }
    match std::os::unix::fs::fchown(file, Some(uid), Some(gid)) {
        Ok(()) => {
            tracing::debug!(file = %path.display(), uid, "gave the file its directory's owner")
        }
        Err(e) => tracing::debug!(file = %path.display(), error = %e, "kept the file's owner"),
    }
}

/// A fresh directory for one unit test (`jgr-<name>-<pid>` under the temporary directory):
/// removed when the test passes, kept and named when it fails, to look at what it left.
#[cfg(test)]
pub(crate) fn test_dir(name: &str) -> TestDir {
    let dir = std::env::temp_dir().join(format!("jgr-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a test directory");
    TestDir(dir)
}

#[cfg(test)]
pub(crate) struct TestDir(std::path::PathBuf);

#[cfg(test)]
impl std::ops::Deref for TestDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

#[cfg(test)]
impl AsRef<std::path::Path> for TestDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

#[cfg(test)]
impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept the failed test's files in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
