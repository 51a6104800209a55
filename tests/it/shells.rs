//! Shell completion as a user meets it: the script `completions <shell>` prints (the one the
//! package ships, see `package`) is loaded into the real shell, which is asked to complete a
//! command line after the first word: a subcommand's flags, an option's values, a nested
//! command. The hidden `man` command is never offered. bash is driven through its completion
//! function (COMP_WORDS/COMP_CWORD → COMPREPLY), zsh on a pseudo-terminal (zsh/zpty) with its
//! completion system, fish with `complete -C`. A shell that is not installed is skipped, and
//! is a failure in CI (`.ci/run` installs zsh and fish).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::*;

const BIN: &str = "jira-gitlab-reconciler";

/// What each shell must offer for these command lines (an empty last word: a new word).
fn expectations() -> Vec<(Vec<&'static str>, Vec<&'static str>)> {
    vec![
        (
            vec![""],
            vec!["reconcile", "check", "status", "report", "run"],
        ),
        (
            vec!["reconcile", "--"],
            vec!["--dry-run", "--full", "--lock-timeout", "--json"],
        ),
        (vec!["report", "--format", ""], vec!["table", "json", "csv"]),
        (vec!["webhook", ""], vec!["url", "register"]),
        (vec!["completions", ""], vec!["bash", "zsh", "fish"]),
    ]
}

/// The shell, or a skip with a message (a failure under CI=true).
fn shell(name: &str) -> Option<PathBuf> {
    crate::browser::tool_or_skip(
        name,
        &format!("{name} completion"),
        &format!("apt-get install {name}; .ci/run does it"),
    )
}

/// The completion script for `shell`, as the binary prints it, written into `dir/file`.
fn script(shell: &str, dir: &Path, file: &str) -> PathBuf {
    let out = Command::new(binary())
        .args(["completions", shell])
        .output()
        .expect("runs");
    assert!(out.status.success(), "completions {shell}");
    let path = dir.join(file);
    std::fs::write(&path, &out.stdout).expect("write script");
    path
}

/// Run `cmd`, killing it after a generous deadline (a shell waiting for input must not hang
/// the suite); its stdout.
fn output_within(mut cmd: Command, what: &str) -> String {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("shell starts");
    let started = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("{what}: no answer within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every expectation, with `complete` giving the candidates for a command line.
fn assert_completes(shell: &str, complete: impl Fn(&[&str]) -> Vec<String>) {
    for (words, want) in expectations() {
        let got = complete(&words);
        for w in &want {
            assert!(
                got.iter().any(|g| g == w),
                "{shell}: `{BIN} {}<TAB>` offers {got:?}, not {w}",
                words.join(" ")
            );
        }
        assert!(
            !got.iter().any(|g| g == "man"),
            "{shell}: the hidden man command is offered: {got:?}"
        );
    }
}

#[test]
fn bash_completes_after_the_first_word() {
    let Some(bash) = shell("bash") else { return };
    let dir = temp_dir("complete-bash");
    let script = script("bash", &dir, BIN);
    let driver = dir.join("drive.bash");
    std::fs::write(&driver, include_str!("shells/drive.bash")).expect("write");
    assert_completes("bash", |words| {
        let mut cmd = Command::new(&bash);
        cmd.arg(&driver).arg(&script).arg(BIN).args(words);
        output_within(cmd, "bash")
            .lines()
            .map(str::to_string)
            .collect()
    });
}

#[test]
fn zsh_completes_after_the_first_word() {
    let Some(zsh) = shell("zsh") else { return };
    let dir = temp_dir("complete-zsh");
    // compinit finds completion functions by file name in $fpath.
    script("zsh", &dir, &format!("_{BIN}"));
    let driver = dir.join("drive.zsh");
    std::fs::write(&driver, include_str!("shells/drive.zsh")).expect("write");
    let n = std::sync::atomic::AtomicUsize::new(0);
    assert_completes("zsh", |words| {
        let out = dir.join(format!(
            "out-{}",
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        let mut cmd = Command::new(&zsh);
        cmd.arg("-f")
            .arg(&driver)
            .arg(&dir)
            .arg(&out)
            .arg(BIN)
            .args(words);
        output_within(cmd, "zsh");
        let got = std::fs::read_to_string(&out).unwrap_or_default();
        assert!(got.contains("<done>"), "zsh never completed: {got}");
        got.lines().map(str::to_string).collect()
    });
}

#[test]
fn fish_completes_after_the_first_word() {
    let Some(fish) = shell("fish") else { return };
    let dir = temp_dir("complete-fish");
    let script = script("fish", &dir, &format!("{BIN}.fish"));
    assert_completes("fish", |words| {
        let line = format!("{BIN} {}", words.join(" "));
        let mut cmd = Command::new(&fish);
        cmd.arg("--no-config")
            .arg("-c")
            .arg("source $argv[1]; complete -C $argv[2]")
            .arg(&script)
            .arg(&line);
        // "candidate<TAB>description" per line.
        output_within(cmd, "fish")
            .lines()
            .filter_map(|l| l.split('\t').next())
            .map(str::to_string)
            .collect()
    });
}
