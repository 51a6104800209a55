//! Bad input: each mistake a user can make, or a server can make for them, ends the run with a
//! non-zero exit, a message that names the cause and the fix, no panic, nothing written to
//! GitLab and the state as it was. And odd Jira data does not stop a pass.

use std::process::Output;

use jgr_sim::gitlab::Role;
use jgr_sim::world::SimWorld;
use jgr_sim::{Fault, Route};
use jira_gitlab_reconciler::domain::{PassKind, PassOutcome};
use jira_gitlab_reconciler::store::{MappingStatus, Store};
use serde_json::json;

use crate::harness::*;

/// What must not change: GitLab writes and the state database.
struct Baseline {
    writes: usize,
    status: MappingStatus,
}

/// A world with two mirrored issues and a third one waiting in Jira, so that a run that
/// wrongly went ahead would write to GitLab.
async fn mirrored_world(
    name: &str,
    tweak: impl FnOnce(&mut jgr_sim::world::WorldOptions),
) -> (SimWorld, Baseline) {
    let w = world(name, tweak).await;
    w.jira.create_issue("VSA", "One", "Task");
    w.jira.create_issue("VSA", "Two", "Task");
    pass_ok(&w, PassKind::Incremental).await;
    w.clock.advance(MINUTE);
    w.jira.create_issue("VSA", "Waiting", "Task");
    let b = baseline(&w);
    (w, b)
}

fn baseline(w: &SimWorld) -> Baseline {
    Baseline {
        writes: w.gitlab.writes(),
        status: state_status(w).expect("state exists"),
    }
}

/// Exit `code`, every `needles` in stderr, no panic, no GitLab write, same state.
fn assert_refused(w: &SimWorld, b: &Baseline, out: &Output, code: i32, needles: &[&str]) {
    let (stdout, stderr) = text(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "want {n:?} in stderr: {stderr}");
    }
    assert_eq!(w.gitlab.writes(), b.writes, "nothing written to GitLab");
    if let Some(st) = state_status(w) {
        assert_eq!(st.checkpoint, b.status.checkpoint, "checkpoint");
        assert_eq!(st.mirrors, b.status.mirrors, "mirrors");
        assert_eq!(st.pending_intents, 0, "intents");
        if let Some(last) = &st.last_pass {
            if Some(last.started_at) != b.status.last_pass.as_ref().map(|p| p.started_at) {
                assert_eq!(
                    last.outcome,
                    PassOutcome::Failed,
                    "a new pass can only be a failed one"
                );
            }
        }
    }
}

/// Write `text` as the config and run `reconcile` on it.
async fn reconcile_with_config(w: &SimWorld, text: &str, env: Vec<(String, String)>) -> Output {
    let path = w.opts.dir.join("bad-config.toml");
    std::fs::write(&path, text).expect("write config");
    run_binary_env(
        vec![
            "reconcile".into(),
            "--config".into(),
            path.display().to_string(),
        ],
        env,
    )
    .await
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in the config:\n{text}");
    text.replacen(from, to, 1)
}

// ---------------------------------------------------------------------------------------------
// 8. Configuration mistakes (exit 2 before anything is contacted).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_mistakes_are_named_with_their_fix() {
    let (w, b) = mirrored_world("bad-config", |_| {}).await;
    let good = w.config_toml();
    let before = state_status(&w)
        .expect("state")
        .last_pass
        .map(|p| p.started_at);

    let gitlab_line = format!(
        "line {}",
        1 + good
            .lines()
            .position(|l| l == "[gitlab]")
            .expect("[gitlab] in the config")
    );
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "invalid TOML",
            replace_once(&good, "[gitlab]", "[gitlab"),
            vec!["bad-config.toml", &gitlab_line, "column"],
        ),
        (
            "unknown key",
            replace_once(&good, "[jira]\n", "[jira]\nprojcet = \"VSA\"\n"),
            vec!["projcet", "expected one of", "url"],
        ),
        (
            "missing key",
            {
                let line = format!("url = \"{}\"\n", w.gitlab.url());
                replace_once(&good, &line, "")
            },
            vec!["missing field `url`", "gitlab"],
        ),
        (
            "bad URL",
            replace_once(
                &good,
                &format!("url = \"{}\"", w.jira.url()),
                "url = \"acme.atlassian.net\"",
            ),
            vec!["jira.url", "\"acme.atlassian.net\"", "https://"],
        ),
        (
            "missing Jira token",
            {
                let line = format!("token_file = \"{}/jira.token\"\n", w.opts.dir.display());
                replace_once(&good, &line, "")
            },
            vec!["JIRA_API_TOKEN is not set", "jira.token_file"],
        ),
        (
            "missing GitLab token",
            {
                let line = format!("token_file = \"{}/gitlab.token\"\n", w.opts.dir.display());
                replace_once(&good, &line, "")
            },
            vec!["GITLAB_TOKEN is not set", "gitlab.token_file"],
        ),
    ];
    for (what, text, needles) in cases {
        let out = reconcile_with_config(&w, &text, vec![]).await;
        eprintln!("{what}: {}", text_of(&out));
        assert_refused(&w, &b, &out, 2, &needles);
        let after = state_status(&w)
            .expect("state")
            .last_pass
            .map(|p| p.started_at);
        assert_eq!(after, before, "{what}: no pass may even start");
    }

    // The GitLab token is named even when the Jira one comes from the environment.
    let line = format!("token_file = \"{}/gitlab.token\"\n", w.opts.dir.display());
    let config = replace_once(&good, &line, "");
    let out = reconcile_with_config(
        &w,
        &config,
        vec![("JIRA_API_TOKEN".into(), "from-env".into())],
    )
    .await;
    assert_refused(&w, &b, &out, 2, &["GITLAB_TOKEN is not set"]);
    let (_, stderr) = text(&out);
    assert!(
        !stderr.contains("from-env"),
        "no token in messages: {stderr}"
    );
}

fn text_of(out: &Output) -> String {
    text(out).1.trim().to_string()
}

// ---------------------------------------------------------------------------------------------
// 8. Server answers only the user can fix.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_jira_token_names_the_jira_token() {
    let (w, b) = mirrored_world("jira-401", |_| {}).await;
    std::fs::write(w.opts.dir.join("jira.token"), "wrong-jira-token").expect("write");
    let out = run_binary(reconcile_args(&w)).await;
    assert_refused(
        &w,
        &b,
        &out,
        2,
        &["Jira rejected the credentials", "JIRA_API_TOKEN", "401"],
    );
    let (stdout, stderr) = text(&out);
    assert!(!format!("{stdout}{stderr}").contains("wrong-jira-token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_role_that_cannot_close_is_reported_with_the_role_needed() {
    let (w, _) = mirrored_world("guest-403", |o| o.role = Role::Guest).await;
    // A Guest may create: mirror the waiting issue first, so the only action left is a close.
    pass_ok(&w, PassKind::Incremental).await;
    let b = baseline(&w);
    w.clock.advance(MINUTE);
    w.jira.transition("VSA-1", "Done", "done");
    let out = run_binary(reconcile_args(&w)).await;
    // A missing permission is something the user must fix: exit 2, as the README promises.
    assert_refused(&w, &b, &out, 2, &["VSA-1", "403", "Reporter"]);
    assert_eq!(
        mirror_of(&w, PROJECT, &w.jira.issue("VSA-1").expect("issue").id).state,
        "opened"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_gitlab_project_is_named() {
    let (w, b) = mirrored_world("no-project", |_| {}).await;
    let text = replace_once(
        &w.config_toml(),
        "gitlab_project = \"acme/platform\"",
        "gitlab_project = \"acme/plattform\"",
    );
    let out = reconcile_with_config(&w, &text, vec![]).await;
    assert_refused(
        &w,
        &b,
        &out,
        2,
        &["acme/plattform", "does not exist", "check gitlab_project"],
    );
}

/// A first pass runs full; one that fails before reading anything is recorded as full too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_pass_that_fails_early_is_recorded_as_full() {
    let w = world("first-fails", |_| {}).await;
    w.jira.create_issue("VSA", "One", "Task");
    let text = replace_once(
        &w.config_toml(),
        "gitlab_project = \"acme/platform\"",
        "gitlab_project = \"acme/plattform\"",
    );
    let out = reconcile_with_config(&w, &text, vec![]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text_of(&out));
    let store = Store::open_read_only(&w.state_path())
        .expect("readable")
        .expect("exists");
    let last = store
        .status(&"VSA->acme/plattform".into())
        .expect("status")
        .last_pass
        .expect("recorded");
    assert_eq!(last.kind, PassKind::Full);
    assert_eq!(last.outcome, PassOutcome::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jql_error_shows_jiras_message() {
    let (w, b) = mirrored_world("bad-jql", |_| {}).await;
    let text = replace_once(
        &w.config_toml(),
        "gitlab_project = \"acme/platform\"\n",
        "gitlab_project = \"acme/platform\"\njql = \"foo = bar\"\n",
    );
    let out = reconcile_with_config(&w, &text, vec![]).await;
    assert_refused(
        &w,
        &b,
        &out,
        2,
        &[
            "Field 'foo' does not exist",
            "foo = bar",
            "check the mapping's jql",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_and_malformed_json_answers_are_named() {
    let cases: [(&str, Fault, bool, &[&str]); 4] = [
        (
            "jira-html",
            Fault::Html,
            true,
            &["Jira", "HTML page", "jira.url"],
        ),
        (
            "gitlab-html",
            Fault::Html,
            false,
            &["GitLab", "HTML page", "gitlab.url"],
        ),
        (
            "jira-json",
            Fault::MalformedJson,
            true,
            &["Jira", "not the JSON expected", "jira.url"],
        ),
        (
            "gitlab-json",
            Fault::MalformedJson,
            false,
            &["GitLab", "not the JSON expected", "gitlab.url"],
        ),
    ];
    for (name, fault, jira, needles) in cases {
        let (w, b) = mirrored_world(name, |_| {}).await;
        if jira {
            w.jira.inject(Route::Read, fault, 10);
        } else {
            // A change in Jira makes the pass read its GitLab issue (the project's id and the
            // token's role are cached from the first pass).
            w.jira.rename("VSA-1", "Renamed in Jira");
            w.gitlab.inject(Route::Read, fault, 10);
        }
        let out = run_binary(reconcile_args(&w)).await;
        eprintln!("{name}: {}", text_of(&out));
        assert_refused(&w, &b, &out, 2, needles);
    }
}

// ---------------------------------------------------------------------------------------------
// 8. A state database that cannot be used.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_state_database_is_left_alone_with_the_fix() {
    let (w, b) = mirrored_world("corrupt-db", |_| {}).await;
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(w.state_path(), &junk).expect("write");
    let out = run_binary(reconcile_args(&w)).await;
    let (stdout, stderr) = text(&out);
    // Only the user can move it aside: exit 2, which systemd does not restart for.
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("move it aside"), "{stderr}");
    assert!(
        stderr.contains(&w.state_path().display().to_string()),
        "{stderr}"
    );
    assert_eq!(w.gitlab.writes(), b.writes);
    assert_eq!(
        std::fs::read(w.state_path()).expect("read"),
        junk,
        "the corrupt file is not touched"
    );
}

/// Undo `chattr +i` even when the test fails, so the temporary directory can be removed.
struct Immutable(std::path::PathBuf);

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_state_database_fails_before_any_write() {
    let (w, b) = mirrored_world("ro-db", |_| {}).await;
    let db = w.state_path();
    let bytes = std::fs::read(&db).expect("read");
    // Root ignores file modes, so as root the file is made immutable instead.
    let _guard = if is_root() {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .arg(&db)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            skip(
                "read_only_state_database_fails_before_any_write",
                "as root, only an immutable file (chattr +i, e2fsprogs) is read-only, and chattr +i fails here",
            );
            return;
        }
        Some(Immutable(db.clone()))
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).expect("chmod");
        None
    };
    let out = run_binary(reconcile_args(&w)).await;
    let (stdout, stderr) = text(&out);
    eprintln!("read-only state: {stderr}");
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("readonly") || stderr.contains("read-only"),
        "{stderr}"
    );
    assert!(stderr.contains("not writable"), "{stderr}");
    assert_eq!(w.gitlab.writes(), b.writes, "nothing written to GitLab");
    assert_eq!(std::fs::read(&db).expect("read"), bytes);
}

// ---------------------------------------------------------------------------------------------
// 9. Odd data does not stop a pass.

#[tokio::test]
async fn odd_jira_data_does_not_stop_the_pass() {
    let w = world("odd-data", |_| {}).await;
    let closed = w
        .jira
        .create_issue("VSA", "Closed, then its status vanishes", "Task");
    w.jira.transition(&closed.key, "Done", "done");
    pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(mirror_of(&w, PROJECT, &closed.id).state, "closed");

    w.clock.advance(MINUTE);
    w.jira
        .set_field_raw(&closed.key, "status", serde_json::Value::Null);
    let null_status = w.jira.create_issue("VSA", "Status null", "Task");
    w.jira
        .set_field_raw(&null_status.key, "status", serde_json::Value::Null);
    let unknown = w.jira.create_issue("VSA", "Unknown category", "Task");
    w.jira.set_field_raw(
        &unknown.key,
        "status",
        json!({"name": "Limbo", "statusCategory": {"id": 1, "key": "undefined", "name": "No Category"}}),
    );
    let no_resolution = w
        .jira
        .create_issue("VSA", "Done without resolution date", "Task");
    w.jira.transition(&no_resolution.key, "Done", "done");
    w.jira.set_field_raw(
        &no_resolution.key,
        "resolutiondate",
        serde_json::Value::Null,
    );
    let huge = w
        .jira
        .create_issue("VSA", &"huge summary ".repeat(20_000), "Task");
    let unreadable = w.jira.create_issue("VSA", "Unreadable", "Task");
    w.jira
        .set_field_raw(&unreadable.key, "updated", json!("soon"));
    let plain = w.jira.create_issue("VSA", "Plain", "Task");

    let r = pass_ok(&w, PassKind::Incremental).await;
    assert_eq!(r.counts.created, 5, "{}", r.summary());
    assert_eq!(
        mirror_of(&w, PROJECT, &closed.id).state,
        "closed",
        "an unknown status leaves the GitLab state alone"
    );
    assert_eq!(mirror_of(&w, PROJECT, &null_status.id).state, "opened");
    assert_eq!(mirror_of(&w, PROJECT, &unknown.id).state, "opened");
    assert_eq!(mirror_of(&w, PROJECT, &no_resolution.id).state, "closed");
    let g = mirror_of(&w, PROJECT, &huge.id);
    assert!(g.title.starts_with("huge summary huge summary"));
    assert!(g.title.chars().count() <= 255);
    assert_eq!(mirror_of(&w, PROJECT, &plain.id).state, "opened");
    assert!(
        w.gitlab.issues(PROJECT).iter().all(|g| !g
            .description
            .contains(&format!("jira-id={} -->", unreadable.id))),
        "the unreadable issue is not guessed at"
    );
    let notes = r.notes.join("\n");
    assert!(
        notes.contains(&unreadable.key) && notes.contains("updated"),
        "{notes}"
    );
    for key in [&closed.key, &null_status.key, &unknown.key] {
        assert!(notes.contains(key.as_str()), "{key} noted: {notes}");
    }
    assert_eq!(w.gitlab.issues(PROJECT).len(), 6);
}

/// A mapping naming a Jira project that does not exist (or that the account cannot browse):
/// exit 2 naming the project and the key to fix, nothing written; `check` says the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_jira_project_is_named() {
    let (w, b) = mirrored_world("no-jira-project", |_| {}).await;
    let config_text = replace_once(
        &w.config_toml(),
        "jira_project = \"VSA\"",
        "jira_project = \"VSB\"",
    );
    let out = reconcile_with_config(&w, &config_text, vec![]).await;
    assert_refused(
        &w,
        &b,
        &out,
        2,
        &["Jira project VSB does not exist or this account cannot browse it: check jira_project"],
    );
    let config = w.opts.dir.join("bad-config.toml").display().to_string();
    let out = run_binary(vec!["check".into(), "--config".into(), config]).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("PROBLEM VSB->acme/platform: ")
            && l.ends_with(
                "Jira project VSB does not exist or this account cannot browse it: check jira_project"
            )),
        "{stdout}"
    );
}
