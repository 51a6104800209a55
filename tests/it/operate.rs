//! Living with the real binary as an operator: which config it reads from where, `status` on a
//! missing database, logs under journald (priorities) and on a terminal (NO_COLOR), -v/-q, a
//! fatal error printed once, `reconcile --json`, completions and man pages.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use jgr_sim::{Fault, Route};

use crate::harness::*;

/// The binary with `args`, run in `cwd`, with `env` on top of the harness's clean environment.
fn run_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    command(&args, &env)
        .current_dir(cwd)
        .output()
        .expect("binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_is_found_from_anywhere_and_named_by_status_and_check() {
    let w = world("lookup", |_| {}).await;
    let config = w.write_config().expect("config");
    let elsewhere = temp_dir("lookup-elsewhere");
    let config_s = config.display().to_string();

    // $JGR_CONFIG from another directory.
    let out = tokio::task::spawn_blocking({
        let elsewhere = elsewhere.clone();
        let c = config_s.clone();
        move || run_in(&elsewhere, &["status"], &[("JGR_CONFIG", &c)])
    })
    .await
    .expect("join");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!("config          : {config_s} (from $JGR_CONFIG)")),
        "{stdout}"
    );

    // ./config.toml in the working directory, no flag, no variable.
    let dir = w.opts.dir.clone();
    let out = tokio::task::spawn_blocking(move || run_in(&dir, &["status"], &[]))
        .await
        .expect("join");
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains(&format!(
            "config          : {config_s} (./config.toml in the working directory)"
        )),
        "{stdout}"
    );

    // `check` says which file it loaded, too.
    let c = config_s.clone();
    let out = tokio::task::spawn_blocking(move || run_in(&elsewhere, &["check", "-c", &c], &[]))
        .await
        .expect("join");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("config  {config_s} (from --config) loaded")),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_paths_in_the_config_are_read_from_its_directory() {
    let w = world("relative", |_| {}).await;
    w.jira.create_issue("VSA", "Relative", "Task");
    // The sim writes absolute paths; make the state and token paths relative to the config.
    let dir = &w.opts.dir;
    let toml = w
        .config_toml()
        .replace(&w.state_path().display().to_string(), "data/state.db")
        .replace(&format!("\"{}/", dir.display()), "\"");
    assert!(toml.contains("path = \"data/state.db\""), "{toml}");
    assert!(toml.contains("token_file = \"jira.token\""), "{toml}");
    std::fs::create_dir_all(dir.join("data")).expect("dir");
    let config = dir.join("config.toml");
    std::fs::write(&config, toml).expect("write");

    let elsewhere = temp_dir("relative-elsewhere");
    let c = config.display().to_string();
    let cwd = elsewhere.clone();
    let out = tokio::task::spawn_blocking(move || run_in(&cwd, &["reconcile", "-c", &c], &[]))
        .await
        .expect("join");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        dir.join("data/state.db").exists(),
        "state next to the config"
    );
    assert!(
        std::fs::read_dir(&elsewhere).expect("dir").next().is_none(),
        "nothing written in the working directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_on_a_missing_database_names_it_and_creates_nothing() {
    let w = world("status-missing", |_| {}).await;
    let config = w.write_config().expect("config");
    let db = w.state_path();
    assert!(!db.exists());
    let out = run_binary(vec![
        "status".into(),
        "-c".into(),
        config.display().to_string(),
    ])
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "state database  : {} does not exist (not created by status)",
            db.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("never reconciled"), "{stdout}");
    assert!(!db.exists(), "status must not create the database");
    let lock = PathBuf::from(format!("{}.lock", db.display()));
    assert!(!lock.exists(), "nor its lock file");
}

/// An admin's `sudo … reconcile` (or `check`) in the service's state directory must not leave
/// files the service's user cannot write: what it creates takes the directory's owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_run_as_root_leaves_the_state_files_to_the_directorys_owner() {
    let w = world("root-owner", |_| {}).await;
    seed_issues(&w, 3, 2);
    if !root_for("only root can give files away") {
        return;
    }
    // The service's user (`nobody` stands in for jira-gitlab-reconciler) owns the state
    // directory; the config and tokens stay root's, as in /etc.
    const SERVICE: u32 = 65534;
    let (config, db) = state_owned_by(&w, SERVICE);
    let args = || {
        vec![
            "reconcile".to_string(),
            "--config".into(),
            config.display().to_string(),
        ]
    };
    let out = run_binary(args()).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lock = PathBuf::from(format!("{}.lock", db.display()));
    for file in [&db, &lock] {
        let meta = std::fs::metadata(file).expect("created");
        assert_eq!(
            (meta.uid(), meta.gid()),
            (SERVICE, SERVICE),
            "{} keeps root as owner",
            file.display()
        );
    }

    // The service's user plants a symlink for root to follow: it is neither followed nor
    // given away, and the run says what to remove.
    let target = temp_dir("root-owner-target").join("precious");
    std::fs::write(&target, b"root's").expect("target");
    std::fs::remove_file(&lock).expect("remove lock");
    std::os::unix::fs::symlink(&target, &lock).expect("plant");
    let out = run_binary(args()).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is a symlink"), "{stderr}");
    assert_eq!(std::fs::metadata(&target).expect("target").uid(), 0);
    assert_eq!(std::fs::read(&target).expect("target"), b"root's");
}

/// A monitoring user who may read the state database but not write its directory: `status`
/// reads it although no writer left the `-shm` file WAL readers otherwise need.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_the_state_as_a_user_who_cannot_write_its_directory() {
    let w = world("read-only-reader", |_| {}).await;
    seed_issues(&w, 4, 2);
    const TEST: &str = "status_reads_the_state_as_a_user_who_cannot_write_its_directory";
    let Ok(setpriv) = which("setpriv") else {
        skip(
            TEST,
            "setpriv (util-linux) is needed to run as another user",
        );
        return;
    };
    if !is_root() {
        skip(TEST, "only root can run a command as another user");
        return;
    }
    let out = run_binary(reconcile_args(&w)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let db = w.state_path();
    let wal = PathBuf::from(format!("{}-shm", db.display()));
    assert!(!wal.exists(), "the last writer removed its -shm file");
    let config = w.write_config().expect("config");
    // `nobody` may read the directory and the files (0755/0644), write none of them.
    let out = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(binary())
        .args(["status", "--json", "-c"])
        .arg(&config)
        .env_remove("JGR_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .expect("runs");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(json["mappings"][0]["mirrors"], 4, "{stdout}");
}

/// `check` answers quickly when a server keeps failing: one retry per probe, not a pass's
/// `retry.max_attempts` (4 here) with their backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_tries_each_probe_twice_not_a_passs_four_times() {
    let w = world("check-fast", |_| {}).await;
    let check = |toml: String| {
        let config = w.opts.dir.join("check.toml");
        std::fs::write(&config, toml).expect("write");
        run_binary(vec![
            "check".into(),
            "-c".into(),
            config.display().to_string(),
        ])
    };
    w.jira.inject(Route::Any, Fault::Status(503), 10_000);
    // Once: how many probes reach Jira.
    let before = w.jira.requests();
    let out = check(
        w.config_toml()
            .replace("max_attempts = 4", "max_attempts = 1"),
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out).0);
    let probes = w.jira.requests() - before;
    assert!(probes > 0);
    // With the config's four tries: each probe is tried twice.
    let before = w.jira.requests();
    let out = check(w.config_toml()).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("503"), "{stdout}");
    assert_eq!(w.jira.requests() - before, 2 * probes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_config_anywhere_is_exit_2_naming_the_places_looked() {
    let _held = crate::package::SYSTEM_CONFIG.lock().await;
    if Path::new(jira_gitlab_reconciler::config::SYSTEM_CONFIG).exists() {
        skip(
            "no_config_anywhere_is_exit_2_naming_the_places_looked",
            "this machine has the system-wide config, which would be found",
        );
        return;
    }
    let empty = temp_dir("no-config");
    let cwd = empty.clone();
    let out = tokio::task::spawn_blocking(move || run_in(&cwd, &["status"], &[]))
        .await
        .expect("join");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "no config file: looked for {}/config.toml and /etc/jira-gitlab-reconciler/config.toml",
            empty.display()
        )),
        "{stderr}"
    );
    // A variable naming a missing file is an error, not a reason to look elsewhere.
    let cwd = empty.clone();
    let out = tokio::task::spawn_blocking(move || {
        run_in(
            &cwd,
            &["status"],
            &[("JGR_CONFIG", "/nonexistent/jgr.toml")],
        )
    })
    .await
    .expect("join");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/jgr.toml (from $JGR_CONFIG) does not exist"),
        "{stderr}"
    );
}

/// The binary with stderr connected to a fresh pipe; `journal` says whether `JOURNAL_STREAM`
/// names that pipe (as systemd does for its stream) or another inode (a child whose stderr was
/// redirected after systemd started its parent).
fn run_with_journal(args: &[String], journal: bool, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let (mut reader, writer) = std::io::pipe().expect("pipe");
    let writer_fd = std::os::fd::OwnedFd::from(writer);
    let meta = std::fs::File::from(writer_fd.try_clone().expect("dup"))
        .metadata()
        .expect("fstat");
    let ino = if journal { meta.ino() } else { meta.ino() + 1 };
    let mut cmd = command(args, &[]);
    cmd.env_remove("RUST_LOG")
        .env("JOURNAL_STREAM", format!("{}:{ino}", meta.dev()))
        .stdout(Stdio::null())
        .stderr(Stdio::from(writer_fd));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("binary starts");
    drop(cmd); // our copy of the pipe's write end, so the read ends at the child's exit
    let mut stderr = String::new();
    reader.read_to_string(&mut stderr).expect("read");
    let code = child.wait().expect("wait").code();
    (code, stderr)
}

fn has_timestamp(line: &str) -> bool {
    // 2026-11-25T22:07:06.890783Z
    line.as_bytes().windows(11).any(|w| {
        w[4] == b'-' && w[7] == b'-' && w[10] == b'T' && w[..4].iter().all(u8::is_ascii_digit)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_journald_every_line_carries_its_priority_and_no_timestamp() {
    let w = world("journald", |_| {}).await;
    w.jira.create_issue("VSA", "Mirrored", "Task");
    w.jira.create_issue("VSA", "Refused", "Task");
    w.gitlab.inject(Route::Create, Fault::Status(422), 1);
    // A 5xx that is retried: a warning.
    w.gitlab.inject(Route::Read, Fault::Status(503), 1);
    let args = reconcile_args(&w);
    let (code, stderr) = tokio::task::spawn_blocking(move || run_with_journal(&args, true, &[]))
        .await
        .expect("join");
    assert_eq!(code, Some(1), "one create failed: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    for line in &lines {
        assert!(
            ["<3>", "<4>", "<6>", "<7>"]
                .iter()
                .any(|p| line.starts_with(p)),
            "a line without a priority: {line:?}\n{stderr}"
        );
        assert!(!has_timestamp(line), "journald adds the time: {line}");
        assert!(
            !line.contains('\x1b'),
            "no colours in the journal: {line:?}"
        );
    }
    // `journalctl -p err` shows priorities 0..=3: exactly the error lines, and the failure.
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("<3>"))
        .collect();
    assert!(
        errors
            .iter()
            .any(|l| l.starts_with("<3>error: VSA->acme/platform: VSA-")
                && l.contains("create failed")),
        "{stderr}"
    );
    assert!(
        errors
            .iter()
            .all(|l| !l.contains("INFO") && !l.contains("WARN")),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<6>") && l.contains("created GitLab issue")),
        "info at priority 6: {stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<4>") && l.contains("request failed; retrying")),
        "warnings at priority 4: {stderr}"
    );

    // The variable inherited by a process whose stderr is elsewhere: plain lines, timestamps.
    let args = reconcile_args(&w);
    w.jira.create_issue("VSA", "Another", "Task");
    let (_, stderr) = tokio::task::spawn_blocking(move || run_with_journal(&args, false, &[]))
        .await
        .expect("join");
    assert!(!stderr.contains("<6>"), "{stderr}");
    assert!(stderr.lines().any(has_timestamp), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_error_is_printed_once_at_priority_err() {
    let w = world("fatal-once", |_| {}).await;
    // A state database that cannot be opened stops `run` before it starts.
    let config = w.opts.dir.join("config.toml");
    let toml = w
        .config_toml()
        .replace(&w.state_path().display().to_string(), "/dev/null/state.db");
    std::fs::write(&config, toml).expect("write");
    let args = vec![
        "run".to_string(),
        "-c".to_string(),
        config.display().to_string(),
    ];
    let (code, stderr) = tokio::task::spawn_blocking(move || run_with_journal(&args, true, &[]))
        .await
        .expect("join");
    // Only the user can make it openable: exit 2, which the unit does not restart for.
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "printed once: {stderr}");
    assert!(
        stderr.starts_with("<3>error: state database /dev/null/state.db"),
        "{stderr}"
    );

    // A config error before logging is set up: once, exit 2.
    let out = run_binary(vec![
        "reconcile".into(),
        "-c".into(),
        "/nonexistent/c.toml".into(),
    ])
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: config file /nonexistent/c.toml"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colours_on_a_terminal_unless_no_color() {
    let Some(script) = find_in_path("script") else {
        panic!("`script` (util-linux) is needed to give the binary a terminal");
    };
    let w = world("colours", |_| {}).await;
    w.jira.create_issue("VSA", "Coloured", "Task");
    let config = w.write_config().expect("config");
    // `script` runs the command on a pseudo-terminal and copies what it prints.
    let on_terminal = move |no_color: Option<&str>| {
        let cmdline = format!("{} reconcile -c {}", binary(), config.display());
        let mut cmd = Command::new(&script);
        cmd.args(["-qec", &cmdline, "/dev/null"])
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .env_remove("JOURNAL_STREAM");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        String::from_utf8_lossy(&cmd.output().expect("script runs").stdout).into_owned()
    };
    let plain = tokio::task::spawn_blocking({
        let f = on_terminal.clone();
        move || f(Some("1"))
    })
    .await
    .expect("join");
    assert!(plain.contains("created GitLab issue"), "{plain}");
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain:?}");
    w.jira.create_issue("VSA", "Coloured too", "Task");
    let coloured = tokio::task::spawn_blocking(move || on_terminal(None))
        .await
        .expect("join");
    assert!(coloured.contains("created GitLab issue"), "{coloured}");
    assert!(
        coloured.contains('\x1b'),
        "colours on a terminal: {coloured:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_and_quiet_adjust_the_level_over_rust_log() {
    let w = world("verbosity", |_| {}).await;
    let config = w.write_config().expect("config").display().to_string();
    let run = |extra: &[&str], rust_log: Option<&str>| {
        let mut args = vec!["reconcile", "-c", &config];
        args.extend_from_slice(extra);
        let mut env = vec![];
        if let Some(l) = rust_log {
            env.push(("RUST_LOG", l));
        }
        let mut cmd = command(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>(), &[]);
        cmd.env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("runs");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    w.jira.create_issue("VSA", "One", "Task");
    let default = run(&[], None);
    assert!(
        default.contains("created GitLab issue"),
        "info by default: {default}"
    );
    assert!(!default.contains("DEBUG"), "{default}");

    w.jira.create_issue("VSA", "Two", "Task");
    let quiet = run(&["-q"], None);
    assert!(
        !quiet.contains("created GitLab issue"),
        "-q hides info: {quiet}"
    );

    w.jira.create_issue("VSA", "Three", "Task");
    let verbose = run(&["-v"], Some("warn"));
    assert!(
        verbose.contains("DEBUG"),
        "-v shows debug over RUST_LOG=warn: {verbose}"
    );
    // reqwest logs through the `log` crate: tracing-log brings its records in.
    assert!(verbose.contains("starting new connection"), "{verbose}");
    assert!(verbose.contains("created GitLab issue"), "{verbose}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_json_reports_each_mapping_for_scripts() {
    let w = world("reconcile-json", |_| {}).await;
    w.jira.create_issue("VSA", "In JSON", "Task");
    let config = w.write_config().expect("config").display().to_string();
    let json_run = |extra: &[&str]| {
        let mut args: Vec<String> = vec![
            "reconcile".into(),
            "--json".into(),
            "-c".into(),
            config.clone(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        run_binary(args)
    };

    let out = json_run(&["--dry-run"]).await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(v["dry_run"], true);
    assert_eq!(
        v["mappings"][0]["planned"].as_array().map(Vec::len),
        Some(1),
        "{v}"
    );

    let out = json_run(&[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is only JSON");
    let m = &v["mappings"][0];
    assert_eq!(
        (v["ok"].clone(), v["exit_code"].clone()),
        (true.into(), 0.into())
    );
    assert_eq!(m["mapping"], "VSA->acme/platform");
    assert_eq!(m["kind"], "full");
    assert_eq!(m["counts"]["created"], 1);
    assert_eq!(m["counts"]["jira_seen"], 1);
    assert!(m["checkpoint"].is_string(), "{m}");
    assert!(m["duration_seconds"].is_number(), "{m}");
    assert!(m.get("planned").is_none(), "{m}");

    // A failure: the same exit code as the text report, and the failure in the document.
    w.clock.advance(MINUTE);
    w.jira.create_issue("VSA", "Refused", "Task");
    w.gitlab.inject(Route::Create, Fault::Status(422), 1);
    let out = json_run(&[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let m = &v["mappings"][0];
    assert_eq!(
        (v["ok"].clone(), v["exit_code"].clone()),
        (false.into(), 1.into())
    );
    assert_eq!(
        (m["ok"].clone(), m["kind"].clone()),
        (false.into(), "incremental".into())
    );
    assert!(
        m["failures"][0]
            .as_str()
            .is_some_and(|f| f.contains("VSA-2: create failed")),
        "{m}"
    );
    assert_eq!(m["counts"]["failed"], 1);
    assert!(
        stderr.contains("error: VSA->acme/platform: VSA-2"),
        "{stderr}"
    );

    // A fatal error (here a config mistake) still gives a script one document on stdout.
    let config = w.opts.dir.join("broken.toml");
    std::fs::write(
        &config,
        w.config_toml().replace("[jira]", "[jira]\nemial = \"x\""),
    )
    .expect("write");
    let out = run_binary(vec![
        "reconcile".into(),
        "--json".into(),
        "-c".into(),
        config.display().to_string(),
    ])
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(
        (v["ok"].clone(), v["exit_code"].clone()),
        (false.into(), 2.into())
    );
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("emial")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_man_page() {
    for (shell, marker) in [
        ("bash", "-F _jira__gitlab__reconciler"),
        ("zsh", "#compdef jira-gitlab-reconciler"),
        ("fish", "complete -c jira-gitlab-reconciler"),
    ] {
        let out = run_binary(vec!["completions".into(), shell.into()]).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(stdout.contains(marker), "{shell}: {stdout}");
        for sub in ["reconcile", "status", "check", "run", "completions"] {
            assert!(stdout.contains(sub), "{shell} completes {sub}");
        }
        assert!(stdout.contains("lock-timeout"), "{shell} completes options");
    }
    let out = run_binary(vec!["completions".into(), "tcsh".into()]).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );

    // `run --help` says how to write the schedule, what the signals do, and the exit codes.
    let out = run_binary(vec!["run".into(), "--help".into()]).await;
    let (help, _) = text(&out);
    for needle in ["6-field cron", "UTC", "SIGTERM", "SIGHUP", "Exit codes: 0"] {
        assert!(help.contains(needle), "{needle}: {help}");
    }

    let out = run_binary(vec!["man".into()]).await;
    let (page, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(page.contains(".TH jira-gitlab-reconciler 1"), "{page}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH SUBCOMMANDS"] {
        assert!(page.contains(section), "{section}: {page}");
    }
    assert!(
        page.contains("JGR_CONFIG"),
        "the lookup order is documented"
    );
    // No page for `help` is listed (none exists), and the lists are tagged paragraphs, not
    // lines roff runs together.
    assert!(!page.contains("reconciler\\-help(1)"), "{page}");
    for section in [".SH FILES", ".SH ENVIRONMENT", ".SH \"EXIT STATUS\""] {
        assert!(page.contains(section), "{section}: {page}");
    }
    assert!(
        page.contains(".TP\n\\fBJGR_CONFIG\\fR\nthe config file"),
        "{page}"
    );
    assert!(
        page.contains(".IP 4. 4\n/etc/jira\\-gitlab\\-reconciler/config.toml (installed by the Debian package)\n.PP\n"),
        "the lookup list ends before the next sentence: {page}"
    );
}

/// The first `name` on `$PATH`.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Notify datagrams until one starts with `want` (10 s at most).
fn wait_notify(socket: &std::os::unix::net::UnixDatagram, want: &str) -> Option<String> {
    let mut buf = [0u8; 1024];
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(10) {
        let Ok(n) = socket.recv(&mut buf) else { break };
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg.starts_with(want) {
            return Some(msg);
        }
    }
    None
}

/// What systemd relies on: a config the service cannot start with is exit 2 (the units'
/// RestartPreventExitStatus=2), and a reload that is refused says why in STATUS= and keeps the
/// running config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_sees_config_errors_as_exit_2_and_refused_reloads_in_status() {
    let w = world("reload-status", |_| {}).await;
    let config = w.write_config().expect("config");
    let good = std::fs::read_to_string(&config).expect("read");
    std::fs::write(
        &config,
        good.replace("[[mapping]]", "[[mapping]]\ncolour = \"red\""),
    )
    .expect("write");
    let out = run_binary(vec![
        "run".into(),
        "-c".into(),
        config.display().to_string(),
    ])
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("colour"), "{stderr}");

    std::fs::write(&config, &good).expect("write");
    let socket_path = w.opts.dir.join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("bind");
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let mut child = Command::new(binary())
        .args(["run", "-c", &config.display().to_string()])
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("service starts");
    let pid = child.id().to_string();
    let hup = || {
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill");
    };
    let socket = tokio::task::spawn_blocking(move || {
        assert!(wait_notify(&socket, "READY=1").is_some(), "READY=1");
        socket
    })
    .await
    .expect("join");

    std::fs::write(
        &config,
        good.replace("[[mapping]]", "[[mapping]]\ncolour = \"red\""),
    )
    .expect("write");
    hup();
    let (status, socket) = tokio::task::spawn_blocking(move || {
        (wait_notify(&socket, "STATUS=reload refused"), socket)
    })
    .await
    .expect("join");
    let status = status.expect("a refused reload is reported in STATUS=");
    assert!(status.contains("colour"), "names the problem: {status}");

    std::fs::write(&config, &good).expect("write");
    hup();
    let (status, _) = tokio::task::spawn_blocking(move || {
        (
            wait_notify(&socket, "STATUS=configuration reloaded"),
            socket,
        )
    })
    .await
    .expect("join");
    assert!(
        status.is_some(),
        "a good reload replaces the refusal in STATUS="
    );
    assert!(child.try_wait().expect("wait").is_none(), "still running");
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let code = tokio::task::spawn_blocking(move || child.wait().expect("wait").code())
        .await
        .expect("join");
    assert_eq!(code, Some(0));
}
