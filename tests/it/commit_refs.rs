//! Commit references: `ref KEY` (from the state database, else from GitLab on a developer's
//! machine with only `[gitlab]`, the mapping and a token), and the shipped prepare-commit-msg
//! hook run by real `git` in a temporary repository, whose reference makes the simulated
//! GitLab stamp the issue's first mention in a commit when the commit is pushed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use jgr_sim::gitlab::SimCommit;
use jgr_sim::world::SimWorld;
use jira_gitlab_reconciler::domain::PassKind;

use crate::harness::*;

/// Twelve Jira issues, VSA-1 to VSA-12, mirrored by a pass (with a state database). A search
/// for "VSA-1" also finds VSA-10, VSA-11 and VSA-12; and an issue someone wrote by hand before
/// the mirrors, linking to VSA-1 without being a mirror, is older than all of them.
async fn mirrored(name: &str) -> (SimWorld, HashMap<String, u64>) {
    let w = world(name, |_| {}).await;
    w.gitlab.create_by_hand(
        PROJECT,
        "Notes on VSA-1",
        "Mirrored from Jira issue [VSA-1](https://jira.example.com/browse/VSA-1), copied by hand",
    );
    seed_issues(&w, 12, 100);
    pass_ok(&w, PassKind::Full).await;
    let iids = w
        .jira
        .issues()
        .into_iter()
        .map(|i| (i.key.clone(), mirror_of(&w, PROJECT, &i.id).iid))
        .collect();
    (w, iids)
}

/// A developer's config: `[gitlab]` and the mapping only (no `[jira]`, no state database next
/// to it), for a token in GITLAB_TOKEN.
fn developer_config(dir: &Path, gitlab_url: &str) -> PathBuf {
    let path = dir.join("developer.toml");
    let text = format!(
        "[gitlab]\nurl = \"{gitlab_url}\"\n\n[[mapping]]\njira_project = \"VSA\"\n\
         gitlab_project = \"{PROJECT}\"\n"
    );
    std::fs::write(&path, text).expect("config written");
    path
}

fn token_env() -> Vec<(String, String)> {
    vec![(
        "GITLAB_TOKEN".to_string(),
        jgr_sim::world::GITLAB_TOKEN.to_string(),
    )]
}

async fn run_ref(config: &Path, args: &[&str], env: Vec<(String, String)>) -> Output {
    let mut all = vec![
        "ref".to_string(),
        "--config".into(),
        config.display().to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    run_binary_env(all, env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ref_answers_from_the_state_database_without_asking_gitlab() {
    let (w, iids) = mirrored("ref-db").await;
    let config = w.write_config().expect("config");
    let before = w.gitlab.requests();
    // No GITLAB_TOKEN, and the config's token file gone: the database must answer alone.
    std::fs::remove_file(w.opts.dir.join("gitlab.token")).expect("token file removed");
    let out = run_ref(&config, &["vsa-1", "VSA-12"], vec![]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        format!(
            "{PROJECT}#{}\n{PROJECT}#{}\n",
            iids["VSA-1"], iids["VSA-12"]
        )
    );
    let out = run_ref(&config, &["--url", "Vsa-2"], vec![]).await;
    assert_eq!(
        text(&out).0,
        format!("{}/{PROJECT}/-/issues/{}\n", w.gitlab.url(), iids["VSA-2"])
    );
    assert_eq!(w.gitlab.requests(), before, "GitLab was not asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ref_on_a_developers_machine_asks_gitlab_for_exactly_that_key() {
    let (w, iids) = mirrored("ref-gitlab").await;
    let dev = temp_dir("ref-developer");
    let config = developer_config(&dev, &w.gitlab.url());
    for (key, want) in [("vsa-1", "VSA-1"), ("VSA-11", "VSA-11"), ("vsa-7", "VSA-7")] {
        let out = run_ref(&config, &[key], token_env()).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{key}: {stdout}{stderr}");
        assert_eq!(stdout, format!("{PROJECT}#{}\n", iids[want]), "{key}");
    }
    let out = run_ref(&config, &["--url", "VSA-3"], token_env()).await;
    assert_eq!(
        text(&out).0,
        format!("{}/{PROJECT}/-/issues/{}\n", w.gitlab.url(), iids["VSA-3"])
    );
    assert!(
        !dev.join("jira-gitlab-reconciler.db").exists(),
        "ref creates no state database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ref_says_clearly_when_there_is_no_mirror() {
    let (w, iids) = mirrored("ref-none").await;
    let dev = temp_dir("ref-none-developer");
    let config = developer_config(&dev, &w.gitlab.url());
    // Found ones are printed, the others named on stderr; exit 1.
    let out = run_ref(&config, &["VSA-2", "VSA-99", "OPS-1"], token_env()).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(stdout, format!("{PROJECT}#{}\n", iids["VSA-2"]));
    assert!(
        stderr.contains("VSA-99: no GitLab issue mirrors it in acme/platform"),
        "{stderr}"
    );
    assert!(
        stderr.contains("OPS-1: no mapping mirrors Jira project OPS (mapped: VSA)"),
        "{stderr}"
    );
    let out = run_ref(&config, &["login"], token_env()).await;
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("\"login\" is not a Jira issue key"),
        "{stderr}"
    );
    // No database and no token: the fix is named.
    let out = run_ref(&config, &["VSA-2"], vec![]).await;
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("GITLAB_TOKEN is not set"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// The hook, with real git

/// A git repository whose hooks are the shipped ones (`core.hooksPath`, as the README says),
/// with the program on PATH and a home of its own.
struct Repo {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Repo {
    fn new(name: &str, extra_env: &[(&str, &str)]) -> Repo {
        let root = temp_dir(name);
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).expect("bin dir");
        std::os::unix::fs::symlink(binary(), bin.join("jira-gitlab-reconciler")).expect("link");
        let home = root.join("home");
        std::fs::create_dir_all(&home).expect("home");
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut env: Vec<(String, String)> = [
            ("PATH", path.as_str()),
            ("HOME", &home.display().to_string()),
            (
                "XDG_CONFIG_HOME",
                &home.join(".config").display().to_string(),
            ),
            ("GIT_CONFIG_NOSYSTEM", "1"),
            ("GIT_AUTHOR_NAME", "Dev"),
            ("GIT_AUTHOR_EMAIL", "dev@example.com"),
            ("GIT_COMMITTER_NAME", "Dev"),
            ("GIT_COMMITTER_EMAIL", "dev@example.com"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let repo = Repo {
            dir: root.join("repo"),
            env,
        };
        std::fs::create_dir_all(&repo.dir).expect("repo dir");
        let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("pkg/git-hooks");
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "core.hooksPath", &hooks.display().to_string()]);
        repo
    }

    fn git(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(&self.dir)
            .env_remove("GITLAB_TOKEN")
            .env_remove("JGR_CONFIG")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("git runs");
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "git {args:?}: {stdout}{stderr}");
        stdout
    }

    /// Commit a change with these `-m` paragraphs; returns the message as committed and how
    /// long `git commit` took.
    fn commit(&self, paragraphs: &[&str]) -> (String, Duration) {
        // A file of its own per commit, so no two branches' commits touch the same file.
        static FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = FILES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        std::fs::write(self.dir.join(format!("file{n}")), "x").expect("a change");
        self.git(&["add", "-A"]);
        let mut args = vec!["commit", "-q"];
        for p in paragraphs {
            args.extend(["-m", p]);
        }
        let started = Instant::now();
        self.git(&args);
        let took = started.elapsed();
        (self.git(&["log", "-1", "--format=%B"]), took)
    }

    fn committed_date(&self) -> DateTime<Utc> {
        let date = self.git(&["log", "-1", "--format=%cI"]);
        DateTime::parse_from_rfc3339(date.trim())
            .expect("an ISO date")
            .with_timezone(&Utc)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_adds_the_reference_that_stamps_the_plan_stage_when_pushed() {
    let (w, iids) = mirrored("hook-push").await;
    let dev = temp_dir("hook-push-developer");
    let config = developer_config(&dev, &w.gitlab.url());
    let config = config.display().to_string();
    let repo = Repo::new(
        "hook-push-repo",
        &[
            ("JGR_CONFIG", &config),
            ("GITLAB_TOKEN", jgr_sim::world::GITLAB_TOKEN),
        ],
    );
    repo.git(&["checkout", "-q", "-b", "feature/vsa-3-login"]);
    let (message, _) = repo.commit(&["Add the login form"]);
    let reference = format!("{PROJECT}#{}", iids["VSA-3"]);
    assert_eq!(
        message,
        format!("Add the login form\n\nRefs: {reference}\n\n")
    );
    assert!(!message.to_lowercase().contains("close"), "{message}");

    // Pushed to the code's own project: GitLab stamps the mirror's first mention in a commit
    // with the commit's date, and closes nothing, even on the default branch.
    w.gitlab.add_project("acme/app");
    let committed = repo.committed_date();
    let stamped = |iid| w.gitlab.vsa_stamps(PROJECT, iid).expect("issue");
    assert_eq!(stamped(iids["VSA-3"]).first_mentioned_in_commit_at, None);
    let sha = w.gitlab.push(
        "acme/app",
        "feature/vsa-3-login",
        &[SimCommit::new(&message, committed)],
    );
    let stamps = stamped(iids["VSA-3"]);
    assert_eq!(stamps.first_mentioned_in_commit_at, Some(committed));
    assert_eq!(stamps.mentioned_in, sha);
    w.gitlab
        .push("acme/app", "main", &[SimCommit::new(&message, committed)]);
    let mirror = w.gitlab.issue(PROJECT, iids["VSA-3"]).expect("mirror");
    assert_eq!(
        mirror.state, "opened",
        "a reference never closes the mirror"
    );
    assert_eq!(stamped(iids["VSA-4"]).first_mentioned_in_commit_at, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_reads_keys_in_the_message_and_adds_nothing_twice() {
    let (w, iids) = mirrored("hook-message").await;
    // The service's own config, with its state database: no token needed.
    let config = w.write_config().expect("config").display().to_string();
    let repo = Repo::new("hook-message-repo", &[("JGR_CONFIG", &config)]);
    let four = format!("{PROJECT}#{}", iids["VSA-4"]);
    let (message, _) = repo.commit(&["Fix the crash in vsa-4 and OPS-9"]);
    assert_eq!(
        message,
        format!("Fix the crash in vsa-4 and OPS-9\n\nRefs: {four}\n\n")
    );
    // Already referred to (as a trailer, or by URL): left as it is.
    let (message, _) = repo.commit(&["More of VSA-4", &format!("Refs: {four}")]);
    assert_eq!(message, format!("More of VSA-4\n\nRefs: {four}\n\n"));
    let url = format!("{}/{PROJECT}/-/issues/{}", w.gitlab.url(), iids["VSA-5"]);
    let (message, _) = repo.commit(&["VSA-5", &format!("See {url}")]);
    assert_eq!(message, format!("VSA-5\n\nSee {url}\n\n"));
    // #4 is not #40: a longer iid does not count as a mention of a shorter one.
    repo.git(&["checkout", "-q", "-b", "vsa-4"]);
    let forty = format!("{PROJECT}#{}0", iids["VSA-4"]);
    let (message, _) = repo.commit(&["Unrelated", &format!("See {forty}")]);
    assert_eq!(
        message,
        format!("Unrelated\n\nSee {forty}\n\nRefs: {four}\n\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_editor_keys_in_comments_and_in_the_diff_do_not_count() {
    let (w, iids) = mirrored("hook-editor").await;
    let config = w.write_config().expect("config").display().to_string();
    // An "editor" that writes a subject above git's comments and the diff of `commit -v`.
    let editor = temp_dir("hook-editor-script").join("editor");
    std::fs::write(
        &editor,
        "#!/bin/sh\n{ printf 'Edit the form\\n'; cat \"$1\"; } > \"$1.new\" && mv \"$1.new\" \"$1\"\n",
    )
    .expect("editor");
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("executable");
    let editor = editor.display().to_string();
    let repo = Repo::new(
        "hook-editor-repo",
        &[("JGR_CONFIG", &config), ("GIT_EDITOR", &editor)],
    );
    repo.git(&["checkout", "-q", "-b", "vsa-2"]);
    std::fs::write(repo.dir.join("notes"), "Mentions VSA-6 and VSA-7\n").expect("a change");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-v"]);
    let message = repo.git(&["log", "-1", "--format=%B"]);
    assert_eq!(
        message,
        format!("Edit the form\n\nRefs: {PROJECT}#{}\n\n", iids["VSA-2"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebases_and_cherry_picks_keep_the_messages_they_rewrite() {
    let (w, _) = mirrored("hook-rebase").await;
    let config = w.write_config().expect("config").display().to_string();
    let repo = Repo::new("hook-rebase-repo", &[("JGR_CONFIG", &config)]);
    let hooks = repo.git(&["config", "core.hooksPath"]);
    repo.commit(&["Base"]);
    // Commits written before the hook was installed.
    repo.git(&["config", "core.hooksPath", "/nonexistent"]);
    repo.git(&["checkout", "-q", "-b", "vsa-2"]);
    repo.commit(&["Older work"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.commit(&["Someone else's fix"]);
    repo.git(&["config", "core.hooksPath", hooks.trim()]);
    repo.git(&["checkout", "-q", "vsa-2"]);
    repo.git(&["rebase", "-q", "main"]);
    assert_eq!(repo.git(&["log", "-1", "--format=%B"]), "Older work\n\n");
    repo.git(&["checkout", "-q", "-b", "vsa-3", "main~1"]);
    repo.git(&["cherry-pick", "main"]);
    assert_eq!(
        repo.git(&["log", "-1", "--format=%B"]),
        "Someone else's fix\n\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hook_never_blocks_a_commit() {
    let (w, _) = mirrored("hook-never-blocks").await;
    let config = w.write_config().expect("config").display().to_string();
    // No config at all.
    let repo = Repo::new("hook-no-config", &[]);
    repo.git(&["checkout", "-q", "-b", "vsa-2"]);
    assert_eq!(repo.commit(&["No config"]).0, "No config\n\n");
    // No program on the PATH.
    let repo = Repo::new(
        "hook-no-binary",
        &[("JGR_CONFIG", &config), ("JGR_BIN", "/nonexistent/jgr")],
    );
    repo.git(&["checkout", "-q", "-b", "vsa-2"]);
    assert_eq!(repo.commit(&["No program"]).0, "No program\n\n");
    // No mirror for the key.
    let repo = Repo::new("hook-no-mirror", &[("JGR_CONFIG", &config)]);
    repo.git(&["checkout", "-q", "-b", "vsa-77"]);
    assert_eq!(repo.commit(&["No mirror"]).0, "No mirror\n\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_gitlab_leaves_the_message_as_it_is_within_the_bound() {
    // A GitLab that takes the connection and never answers.
    let silent = bind_local();
    let dev = temp_dir("hook-unreachable-developer");
    let config = developer_config(&dev, &format!("http://127.0.0.1:{}", port_of(&silent)));
    let config = config.display().to_string();
    let repo = Repo::new(
        "hook-unreachable",
        &[
            ("JGR_CONFIG", &config),
            ("GITLAB_TOKEN", "glpat-whatever"),
            ("JGR_HOOK_TIMEOUT", "2"),
        ],
    );
    repo.git(&["checkout", "-q", "-b", "vsa-1"]);
    let (message, took) = repo.commit(&["While GitLab is down"]);
    assert_eq!(message, "While GitLab is down\n\n");
    // The look-up did try (the connection is waiting in the backlog), and was cut at the bound
    // (2 s, 1 s more to kill it), not at the client's 30 s timeout.
    silent.set_nonblocking(true).expect("non-blocking");
    assert!(silent.accept().is_ok(), "the hook asked GitLab");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}
