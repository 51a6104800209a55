//! The first hour with the package: what a new admin does (configure, `check`, the first
//! passes, `status` and `report`), the usual mistakes they make, and what the program says
//! back. Each mistake gets the message that names its cause and fix, and nothing is lost.

use std::path::{Path, PathBuf};
use std::process::Output;

use jira_gitlab_reconciler::domain::PassKind;

use crate::harness::*;

/// Write `text` as a config file in the world's directory; its path.
fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

/// The binary with `args` and `-c config`, with extra environment.
async fn run_with(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.push("-c".into());
    all.push(config.display().to_string());
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    run_binary_env(all, env).await
}

/// `check` with `config` and `env`: its stdout, once its exit code is `code` and it says each
/// of `wants`.
async fn check_says(config: &Path, env: &[(&str, &str)], code: i32, wants: &[&str]) -> String {
    let out = run_with(config, &["check"], env).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(code), "{stdout}\n{stderr}");
    for want in wants {
        assert!(stdout.contains(want), "want {want:?} in:\n{stdout}");
    }
    stdout
}

/// `jira_project = "vsa"` after passes under "VSA": one mapping, its history found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jira_key_written_in_lower_case_is_the_same_mapping() {
    let w = world("key-case", |_| {}).await;
    w.jira.create_issue("VSA", "One", "Task");
    pass_ok(&w, PassKind::Incremental).await;
    let lower = w
        .config_toml()
        .replace("jira_project = \"VSA\"", "jira_project = \"vsa\"");
    assert!(lower.contains("\"vsa\""));
    let config = write_config(&w.opts.dir, "lower.toml", &lower);

    let out = run_with(&config, &["status"], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("VSA->acme/platform") && stdout.contains("mirrored issues : 1"),
        "{stdout}"
    );
    assert!(!stdout.contains("never reconciled"), "{stdout}");

    let out = run_with(&config, &["report", "--mapping", "vsa->acme/platform"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);

    let writes = w.gitlab.writes();
    let out = run_with(&config, &["reconcile"], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("created 0"), "{stdout}");
    assert_eq!(w.gitlab.writes(), writes, "nothing created twice");
}

/// The config of `w` with its token files replaced by systemd credentials, as the shipped
/// config reads them.
fn with_credentials(w: &jgr_sim::world::SimWorld) -> String {
    credentials_instead_of_files(&w.config_toml(), &w.opts.dir)
}

/// `text`, a config naming the token files in `dir`, naming systemd credentials instead.
pub fn credentials_instead_of_files(text: &str, dir: &Path) -> String {
    let dir = dir.display();
    text.replace(
        &format!("\"{dir}/jira.token\""),
        "\"$CREDENTIALS_DIRECTORY/jira\"",
    )
    .replace(
        &format!("\"{dir}/gitlab.token\""),
        "\"$CREDENTIALS_DIRECTORY/gitlab\"",
    )
}

/// A unit, as the package installs one, loading the tokens from `dir`.
fn install_unit(units: &Path, dir: &Path) {
    std::fs::create_dir_all(units).expect("dir");
    std::fs::write(
        units.join("jira-gitlab-reconciler.service"),
        format!(
            "[Service]\nExecStart=/usr/bin/jira-gitlab-reconciler run\n\
             LoadCredential=jira:{0}/service-jira.token\nLoadCredential=gitlab:{0}/service-gitlab.token\n",
            dir.display()
        ),
    )
    .expect("unit");
}

/// The README's install: tokens in files the units load. A wrong one there must not pass
/// `check` because the shell's variables hold good ones; each token's source is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_tests_the_token_files_the_service_will_use() {
    use jgr_sim::world::{GITLAB_TOKEN, JIRA_TOKEN};
    let w = world("check-creds", |_| {}).await;
    let dir = w.opts.dir.clone();
    let config = write_config(&dir, "creds.toml", &with_credentials(&w));
    let units = dir.join("units");
    install_unit(&units, &dir);
    std::fs::write(dir.join("service-jira.token"), "a-stale-jira-token").expect("write");
    std::fs::write(
        dir.join("service-gitlab.token"),
        format!("{GITLAB_TOKEN}\n"),
    )
    .expect("write");
    let env = [
        ("JIRA_API_TOKEN", JIRA_TOKEN),
        ("GITLAB_TOKEN", "another-gitlab-token"),
        ("SYSTEMD_UNIT_PATH", &units.display().to_string()),
    ];
    let stdout = check_says(
        &config,
        &env,
        2,
        &[
            "note    Jira token from $JIRA_API_TOKEN (the config reads $CREDENTIALS_DIRECTORY/jira, which only the systemd units set)",
            &format!(
                "PROBLEM the Jira token in {}/service-jira.token (credential jira of jira-gitlab-reconciler.service) is not the one this check used ($JIRA_API_TOKEN), and the service would fail with it",
                dir.display()
            ),
            "HTTP 401",
            // $GITLAB_TOKEN is wrong here, the service's file right: both said.
            "PROBLEM GitLab GET /user: HTTP 401",
            &format!(
                "ok      the GitLab token in {}/service-gitlab.token (credential gitlab of jira-gitlab-reconciler.service) is accepted: user reconciler-bot",
                dir.display()
            ),
        ],
    )
    .await;
    assert!(!stdout.contains("a-stale-jira-token"));

    // A file holding the very token the shell's variable holds gets that token's verdict: a
    // rejected one is a problem there too, never "ok … the same as".
    std::fs::write(dir.join("service-jira.token"), "a-stale-jira-token").expect("write");
    let stale = [
        ("JIRA_API_TOKEN", "a-stale-jira-token"),
        ("GITLAB_TOKEN", GITLAB_TOKEN),
        ("SYSTEMD_UNIT_PATH", &units.display().to_string()),
    ];
    let stdout = check_says(
        &config,
        &stale,
        2,
        &[
            &format!(
                "PROBLEM the Jira token in {}/service-jira.token (credential jira of jira-gitlab-reconciler.service) is the same as $JIRA_API_TOKEN, which Jira refused above: the service would fail the same way",
                dir.display()
            ),
            &format!(
                "ok      the GitLab token in {}/service-gitlab.token (credential gitlab of jira-gitlab-reconciler.service) is the same as $GITLAB_TOKEN, which GitLab accepted above",
                dir.display()
            ),
        ],
    )
    .await;
    assert!(!stdout.contains("ok      the Jira token"), "{stdout}");

    // No unit at all: said plainly.
    std::fs::remove_dir_all(&units).expect("rm");
    let good = [
        ("JIRA_API_TOKEN", JIRA_TOKEN),
        ("GITLAB_TOKEN", GITLAB_TOKEN),
        ("SYSTEMD_UNIT_PATH", &units.display().to_string()),
    ];
    check_says(
        &config,
        &good,
        0,
        &["note    the service's Jira token was not checked: the config reads it from $CREDENTIALS_DIRECTORY/jira, and no installed unit loads a credential jira"],
    )
    .await;

    // A config that reads the environment only, beside units that hand over token files: the
    // files are tested, and the config is said not to read them.
    install_unit(&units, &dir);
    let env_only = w
        .config_toml()
        .lines()
        .filter(|l| !l.starts_with("token_file"))
        .collect::<Vec<_>>()
        .join("\n");
    let config = write_config(&dir, "env-only.toml", &env_only);
    check_says(
        &config,
        &good,
        2,
        &[
            &format!(
                "note    the installed units hand the service {}/service-jira.token as credential jira, which this config does not read",
                dir.display()
            ),
            "PROBLEM the Jira token in",
        ],
    )
    .await;
}

/// A plain token file: named as the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_each_tokens_source() {
    let w = world("check-sources", |_| {}).await;
    let config = w.write_config().expect("config");
    let dir = w.opts.dir.display();
    check_says(
        &config,
        &[],
        0,
        &[
            &format!("note    Jira token from the file {dir}/jira.token\n"),
            &format!("note    GitLab token from the file {dir}/gitlab.token\n"),
        ],
    )
    .await;
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in:\n{text}");
    text.replacen(from, to, 1)
}

/// The config of `w` with the state database at `state`.
fn with_state(w: &jgr_sim::world::SimWorld, state: &Path) -> String {
    replace_once(
        &w.config_toml(),
        &w.state_path().display().to_string(),
        &state.display().to_string(),
    )
}

/// `check` creates and removes a file where the state goes, as the directory's owner when it
/// runs as root: a directory passes could not write is a problem before the first pass fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_finds_a_state_directory_passes_cannot_write() {
    use std::os::unix::fs::PermissionsExt;
    let w = world("check-state-dir", |_| {}).await;
    let dir = w.opts.dir.join("state");
    std::fs::create_dir_all(&dir).expect("dir");
    // Root may write anywhere: the directory belongs to another user, who may not.
    let owner = if is_root() {
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).expect("chown");
        "user nobody (its owner, tested as that user since this runs as root)".to_string()
    } else {
        let me = std::process::Command::new("id")
            .arg("-un")
            .output()
            .expect("id");
        format!("user {}", String::from_utf8_lossy(&me.stdout).trim())
    };
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).expect("chmod");

    for (state, want) in [
        (
            dir.join("state.db"),
            format!(
                "PROBLEM state directory {} is not writable by {owner} (Permission denied",
                dir.display()
            ),
        ),
        (
            dir.join("sub/state.db"),
            format!(
                "PROBLEM state directory {}/sub does not exist, and {owner} cannot create it: {} is not writable",
                dir.display(),
                dir.display()
            ),
        ),
    ] {
        let config = write_config(&w.opts.dir, "state-dir.toml", &with_state(&w, &state));
        let stdout = check_says(&config, &[], 2, &[&want]).await;
        assert!(!stdout.contains("all checks passed"), "{stdout}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir).expect("dir").collect();
    assert!(leftovers.is_empty(), "check leaves nothing behind");

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let config = write_config(
        &w.opts.dir,
        "state-dir.toml",
        &with_state(&w, &dir.join("state.db")),
    );
    check_says(
        &config,
        &[],
        0,
        &[&format!(
            "ok      state directory {} is writable by {owner}",
            dir.display()
        )],
    )
    .await;
}

/// `check` judges the state directory as the installed unit will see it: through its
/// sandbox (ProtectSystem=strict leaves only ReadWritePaths= and StateDirectory= writable) and
/// as its User=, not as the admin who runs `check`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_tests_the_state_directory_as_the_unit_will_see_it() {
    let w = world("check-unit-state", |_| {}).await;
    let dir = w.opts.dir.join("state");
    std::fs::create_dir_all(&dir).expect("dir");
    let units = w.opts.dir.join("units");
    std::fs::create_dir_all(units.join("jira-gitlab-reconciler.service.d")).expect("dirs");
    let config = write_config(
        &w.opts.dir,
        "unit-state.toml",
        &with_state(&w, &dir.join("state.db")),
    );
    let unit = |config: &Path| {
        std::fs::write(
            units.join("jira-gitlab-reconciler.service"),
            format!(
                "[Service]\nExecStart=/usr/bin/jira-gitlab-reconciler run --config {}\n\
                 User=nobody\nProtectSystem=strict\nStateDirectory=jira-gitlab-reconciler\n",
                config.display()
            ),
        )
        .expect("unit");
    };
    unit(&config);
    let env = [("SYSTEMD_UNIT_PATH", units.display().to_string())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // This user can write it; the service could not, whatever the directory's permissions.
    check_says(
        &config,
        &env,
        2,
        &[&format!(
            "PROBLEM state directory {0} is read-only for the service: jira-gitlab-reconciler.service's \
             ProtectSystem=strict makes the whole file system but /dev, /proc and /sys read-only for \
             the service, and {0} is not under the paths it opens (ReadWritePaths=, StateDirectory=: \
             /var/lib/jira-gitlab-reconciler); add ReadWritePaths={0} in a drop-in",
            dir.display()
        )],
    )
    .await;

    // A unit that runs another config says nothing of this one's state directory.
    unit(Path::new("/etc/jira-gitlab-reconciler/another.toml"));
    let stdout = check_says(&config, &env, 0, &[]).await;
    assert!(!stdout.contains("read-only for the service"), "{stdout}");
    unit(&config);

    // Opened by a drop-in: now the unit's user is what counts.
    std::fs::write(
        units.join("jira-gitlab-reconciler.service.d/state.conf"),
        format!("[Service]\nReadWritePaths=-{}\n", dir.display()),
    )
    .expect("drop-in");
    if !is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI runs as root"
        );
        check_says(&config, &env, 0, &["note    state directory: not tested as user nobody, who jira-gitlab-reconciler.service runs as (User=)"]).await;
        eprintln!("skipped: writing as the unit's user needs root");
        return;
    }
    let as_unit = "user nobody (the User= of jira-gitlab-reconciler.service, tested as that user since this runs as root)";
    check_says(
        &config,
        &env,
        2,
        &[&format!(
            "PROBLEM state directory {} is not writable by {as_unit}",
            dir.display()
        )],
    )
    .await;
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).expect("chown");
    check_says(
        &config,
        &env,
        0,
        &[&format!(
            "ok      state directory {} is writable by {as_unit}",
            dir.display()
        )],
    )
    .await;
}

/// A typo in state.path: `check` says a new, empty state would start and names the database
/// next to it; the pass that creates it says so in its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_state_path_is_said_by_check_and_the_first_pass() {
    let w = world("state-typo", |_| {}).await;
    w.jira.create_issue("VSA", "One", "Task");
    pass_ok(&w, PassKind::Incremental).await;
    let typo = w.opts.dir.join("stat.db");
    let config = write_config(&w.opts.dir, "typo.toml", &with_state(&w, &typo));

    check_says(
        &config,
        &[],
        0,
        &[
            &format!(
                "note    state database {} does not exist: the first pass creates a new, empty one",
                typo.display()
            ),
            "if passes have run before, check state.path; its directory holds state.db: is state.path misspelt?",
        ],
    )
    .await;
    assert!(!typo.exists(), "check creates no database");

    let writes = w.gitlab.writes();
    let out = run_with(&config, &["reconcile"], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("created a new, empty state database")
            && stderr.contains("check state.path"),
        "{stderr}"
    );
    assert_eq!(
        w.gitlab.writes(),
        writes,
        "the mirror was found by its marker"
    );
    let out = run_with(&config, &["reconcile"], &[]).await;
    assert!(
        !text(&out).1.contains("created a new"),
        "only when it is created"
    );
}

/// A typo in the path of jira.url or gitlab.url: the first request, whose path every server
/// serves, finds nothing; that names the URL, not the project or the deployment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_base_url_is_named_with_the_url_tried() {
    let w = world("base-url", |_| {}).await;
    let (jira, gitlab) = (w.jira.url(), w.gitlab.url());
    let text_of = |from: &str, to: &str| {
        replace_once(
            &w.config_toml(),
            &format!("url = \"{from}\""),
            &format!("url = \"{to}\""),
        )
    };

    let config = write_config(
        &w.opts.dir,
        "jira-url.toml",
        &text_of(&jira, &format!("{jira}/jira-typo")),
    );
    let stdout = check_says(
        &config,
        &[],
        2,
        &[
            &format!("nothing answers at {jira}/jira-typo/rest/api/3/myself: jira.url ({jira}/jira-typo) is not the Jira site's base URL"),
            "the mappings' Jira checks were skipped: fix jira.url first",
        ],
    )
    .await;
    assert!(!stdout.contains("check jira_project"), "{stdout}");
    // A pass, whose first Jira request is the search, names the URL it tried and the fix.
    let out = run_with(&config, &["reconcile"], &[]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Jira answered 404 at {jira}/jira-typo/rest/api/3/search/jql: is jira.url the site's base URL ({jira}/jira-typo)?"
        )),
        "{stderr}"
    );

    let config = write_config(
        &w.opts.dir,
        "gitlab-url.toml",
        &text_of(&gitlab, &format!("{gitlab}/acme")),
    );
    let stdout = check_says(
        &config,
        &[],
        2,
        &[&format!("nothing answers at {gitlab}/acme/api/v4/user: gitlab.url ({gitlab}/acme) is not GitLab's base URL")],
    )
    .await;
    assert!(!stdout.contains("check gitlab_project"), "{stdout}");
    // A pass, whose first GitLab request is the project's, says the same.
    let out = run_with(&config, &["reconcile"], &[]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not GitLab's base URL"), "{stderr}");
    assert!(!stderr.contains("check gitlab_project"), "{stderr}");
}

/// `https://` for a port that speaks plain HTTP: said at once, with one connection (a
/// retry would meet the same answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_a_plain_http_port_is_named_without_retries() {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let w = world("no-tls", |_| {}).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            counted.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let toml = replace_once(
        &w.config_toml(),
        &format!("url = \"{}\"", w.jira.url()),
        &format!("url = \"https://127.0.0.1:{port}\""),
    );
    let config = write_config(&w.opts.dir, "no-tls.toml", &toml);
    let stdout = check_says(
        &config,
        &[],
        2,
        &[
            "PROBLEM Jira GET /rest/api/3/myself: this port does not speak TLS",
            "jira.url starts with https:// but names a plain-HTTP port",
        ],
    )
    .await;
    assert_eq!(connections.load(Ordering::SeqCst), 1, "no retry: {stdout}");
}

/// `status` and `report` read only `[state]` and the mappings: a mistake elsewhere (a 5-field
/// schedule, a misspelt key of another section) is a warning, and they show the state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_report_go_on_past_config_errors_they_do_not_depend_on() {
    let w = world("offline-config", |_| {}).await;
    w.jira.create_issue("VSA", "One", "Task");
    pass_ok(&w, PassKind::Incremental).await;
    for (what, toml) in [
        (
            "schedule.reconcile",
            format!(
                "{}\n[schedule]\nreconcile = \"*/5 * * * *\"\n",
                w.config_toml()
            ),
        ),
        (
            "tokne_file",
            w.config_toml()
                .replace("[gitlab]\n", "[gitlab]\ntokne_file = \"x\"\n"),
        ),
    ] {
        let config = write_config(&w.opts.dir, "half-broken.toml", &toml);
        let out = run_with(&config, &["status"], &[]).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{what}: {stdout}\n{stderr}");
        assert!(stdout.contains("mirrored issues : 1"), "{stdout}");
        assert!(
            stderr.contains("the config has an error status does not depend on")
                && stderr.contains(what),
            "{what}: {stderr}"
        );
        let out = run_with(&config, &["status", "--json"], &[]).await;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["mappings"][0]["mirrors"], 1, "{v}");
        assert!(
            v["warnings"][0].as_str().is_some_and(|w| w.contains(what)),
            "{v}"
        );
        let out = run_with(&config, &["report"], &[]).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{what}: {stdout}\n{stderr}");
        assert!(
            stderr.contains("error report does not depend on"),
            "{stderr}"
        );
        // A pass needs all of it.
        let out = run_with(&config, &["reconcile"], &[]).await;
        assert_eq!(out.status.code(), Some(2), "{what}");
    }
    // The mappings are what status shows: a mistake there still stops it.
    let toml = w
        .config_toml()
        .replace("jira_project = \"VSA\"", "jira_project = \"V-SA\"");
    let config = write_config(&w.opts.dir, "bad-mapping.toml", &toml);
    let out = run_with(&config, &["status"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out).1);
}

/// For monitoring: `status` exits 1 when a mapping's last pass failed, and `--json` has one
/// shape whether it succeeded, found a failure or could not run at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exit_code_and_json_shape_for_monitoring() {
    let w = world("status-monitoring", |_| {}).await;
    let config = w.write_config().expect("config");
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
        k.sort();
        k
    };
    w.jira.create_issue("VSA", "One", "Task");
    pass_ok(&w, PassKind::Incremental).await;
    let out = run_with(&config, &["status", "--json"], &[]).await;
    assert_eq!(out.status.code(), Some(0));
    let ok: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (ok["ok"].clone(), ok["error"].clone()),
        (true.into(), serde_json::Value::Null)
    );

    w.jira.create_issue("VSA", "Two", "Task");
    w.gitlab
        .inject(jgr_sim::Route::Create, jgr_sim::Fault::Status(422), 1);
    let _ = pass(&w, PassKind::Incremental).await;
    let out = run_with(&config, &["status", "--json"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "the last pass failed");
    let failed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(failed["exit_code"], 1);
    assert_eq!(keys(&failed), keys(&ok));
    let out = run_with(&config, &["status"], &[]).await;
    assert_eq!(out.status.code(), Some(1));

    let missing = w.opts.dir.join("no-such.toml");
    let out = run_with(&missing, &["status", "--json"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let fatal: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(keys(&fatal), keys(&ok), "{fatal}");
    assert!(
        fatal["error"]
            .as_str()
            .is_some_and(|e| e.contains("no-such.toml")),
        "{fatal}"
    );
}

/// `run` with its stderr read as it comes: the child and the text so far.
fn spawn_run(config: &Path, sockets: &Sockets) -> (Running, ChildLog) {
    let config = config.display().to_string();
    let mut child = spawn_service_with(&config, sockets, |cmd| {
        cmd.env_remove("JOURNAL_STREAM");
    });
    let log = ChildLog::capture(child.child_mut());
    (child, log)
}

/// Two `run` on one state database: the second says at start-up that the first serves it.
/// And each pass's log line carries its numbers as numbers (cpu_ms too), for log shippers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_one_state_says_so_at_start_up() {
    let w = world("two-runs", |_| {}).await;
    w.jira.create_issue("VSA", "One", "Task");
    let json_logs = "\n[log]\nformat = \"json\"\n";
    let first_config = w.opts.dir.join("first.toml");
    let (first_sockets, second_sockets) = (Sockets::for_world(&w), Sockets::for_world(&w));
    std::fs::rename(
        service_config(&w, first_sockets.metrics_port(), json_logs),
        &first_config,
    )
    .expect("mv");
    let second_config = PathBuf::from(service_config(&w, second_sockets.metrics_port(), ""));

    let (first, first_log) = spawn_run(&first_config, &first_sockets);
    assert!(
        first_log.wait_for("pass finished", EVENT_WAIT).await,
        "the first service's first pass: {}",
        first_log.text()
    );
    let (second, second_log) = spawn_run(&second_config, &second_sockets);
    let said = second_log
        .wait_for("already serves this state database", EVENT_WAIT)
        .await;
    signal(&first, "TERM");
    signal(&second, "TERM");
    let (a, _, _) = wait_exit(first, std::time::Duration::from_secs(15)).await;
    let (b, _, _) = wait_exit(second, std::time::Duration::from_secs(15)).await;
    let second_text = second_log.text();
    assert!(said, "{second_text}");
    assert!(
        second_text.contains("another `jira-gitlab-reconciler run` (process "),
        "{second_text}"
    );
    assert!(
        !first_log.text().contains("already serves"),
        "the first was alone"
    );
    assert_eq!((a, b), (Some(0), Some(0)));

    let finished: serde_json::Value = first_log
        .text()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["message"] == "pass finished")
        .expect("a pass line");
    for field in ["cpu_ms", "duration_ms", "created"] {
        assert!(finished[field].is_number(), "{field}: {finished}");
    }
}

/// What a new admin reads is plain: a dry run with nothing to do says so, counts take their
/// plural, and `report --until` shows the day typed, not the next day's midnight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_first_passes_and_the_report_print_reads_plainly() {
    let w = world("plain-words", |_| {}).await;
    let config = w.write_config().expect("config");
    let one = w.jira.create_issue("VSA", "One", "Task");
    let dry = |out: &Output| text(out).0;
    let out = run_with(&config, &["reconcile", "--dry-run"], &[]).await;
    assert!(
        dry(&out).contains("VSA->acme/platform: full pass would do 1 action:\n  create"),
        "{}",
        dry(&out)
    );
    w.jira.transition(&one.key, "Done", "done");
    let out = run_with(&config, &["reconcile"], &[]).await;
    assert!(dry(&out).contains("(1 Jira issue read)"), "{}", dry(&out));
    let out = run_with(&config, &["reconcile", "--dry-run"], &[]).await;
    assert!(
        dry(&out).contains(
            "VSA->acme/platform: incremental pass would do nothing: GitLab agrees with the 1 Jira issue read"
        ),
        "{}",
        dry(&out)
    );
    assert!(!dry(&out).contains("0 action"), "{}", dry(&out));

    let today = w.clock.now().date_naive();
    let since = (today - chrono::Duration::days(7)).to_string();
    let until = today.to_string();
    let out = run_with(
        &config,
        &["report", "--since", &since, "--until", &until],
        &[],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!("{since} … {until} UTC (whole days)")),
        "{stdout}"
    );
    assert!(stdout.contains("(1 issue)"), "{stdout}");
}
