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
