//! Root is safe (`sudo jira-gitlab-reconciler …` on a machine where the service's user owns the
//! state directory): the state database, its side files and the lock are never opened through
//! a symlink or a hard link, and the config and token files root reads must be root's (or the
//! invoking user's) and writable by no one else, as `ssh` treats its files. As the real binary;
//! `nobody` (uid 65534) stands in for the service's user and for a stranger.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::harness::*;

const OTHER: u32 = 65534;

fn args(command: &str, config: &Path) -> Vec<String> {
    vec![
        command.to_string(),
        "--config".into(),
        config.display().to_string(),
    ]
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

/// A file of root's elsewhere, which a link in the state directory points at.
fn precious(name: &str) -> PathBuf {
    let target = temp_dir(name).join("precious");
    std::fs::write(&target, b"root's").expect("target");
    target
}

fn untouched(target: &Path) {
    assert_eq!(std::fs::read(target).expect("target"), b"root's");
    assert_eq!(std::fs::metadata(target).expect("target").uid(), 0);
    for suffix in ["-wal", "-shm", "-journal"] {
        assert!(!with_suffix(target, suffix).exists(), "{suffix} beside it");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_root_the_state_files_are_never_opened_through_a_link() {
    let w = world("root-links", |_| {}).await;
    seed_issues(&w, 2, 2);
    if !root_for("the state directory must belong to another user") {
        return;
    }
    let (config, db) = state_owned_by(&w, OTHER);
    let out = run_binary(args("reconcile", &config)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let writes = w.gitlab.writes();

    // The service's user replaces one state file after another by a link to a file of root's.
    for (file, kind) in [
        (db.clone(), "symlink"),
        (with_suffix(&db, "-wal"), "symlink"),
        (with_suffix(&db, "-shm"), "symlink"),
        (db.clone(), "hard link"),
        (with_suffix(&db, "-wal"), "hard link"),
        (with_suffix(&db, ".lock"), "hard link"),
    ] {
        let saved = with_suffix(&db, ".saved");
        let had = file.exists();
        if had {
            std::fs::rename(&file, &saved).expect("set aside");
        }
        let target = precious(&format!("root-links-{kind}").replace(' ', "-"));
        if kind == "symlink" {
            std::os::unix::fs::symlink(&target, &file).expect("plant");
        } else {
            std::fs::hard_link(&target, &file).expect("plant");
        }
        for command in ["reconcile", "status"] {
            let out = run_binary(args(command, &config)).await;
            let (stdout, stderr) = text(&out);
            let what = format!("{command} with {} as a {kind}", file.display());
            if command == "status" && file.ends_with("state.db.lock") {
                // `status` takes no lock: nothing to refuse, nothing written.
                assert_eq!(out.status.code(), Some(0), "{what}: {stderr}");
                continue;
            }
            assert_eq!(out.status.code(), Some(2), "{what}: {stdout}{stderr}");
            let named = if kind == "symlink" {
                "is a symlink"
            } else {
                "has 2 names"
            };
            assert!(stderr.contains(named), "{what}: {stderr}");
            untouched(&target);
        }
        std::fs::remove_file(&file).expect("remove the link");
        if had {
            std::fs::rename(&saved, &file).expect("put back");
        }
    }
    assert_eq!(w.gitlab.writes(), writes, "nothing written to GitLab");
    let out = run_binary(args("reconcile", &config)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_root_config_and_token_files_others_control_are_refused() {
    let w = world("root-config", |_| {}).await;
    w.jira.create_issue("VSA", "One", "Task");
    if !root_for("root's reading rules apply to root only") {
        return;
    }
    let config = w.write_config().expect("config");
    let run = |env: Vec<(String, String)>| run_binary_env(args("reconcile", &config), env);
    let refused = |out: &std::process::Output, names: &str, fix: &str| {
        let (stdout, stderr) = text(out);
        assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
        assert!(
            stderr.contains(names) && stderr.contains(fix),
            "names {names:?} and the fix {fix:?}: {stderr}"
        );
    };

    // Someone else's config file.
    std::os::unix::fs::chown(&config, Some(OTHER), None).expect("chown");
    refused(&run(vec![]).await, "config file", "chown root");
    // ... unless it is the file of the user who ran sudo.
    let out = run(vec![("SUDO_UID".into(), OTHER.to_string())]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    std::os::unix::fs::chown(&config, Some(0), None).expect("chown");

    // A config file others may write.
    chmod(&config, 0o666);
    refused(&run(vec![]).await, "config file", "chmod go-w");
    chmod(&config, 0o644);

    // A token file someone else owns.
    let token = w.opts.dir.join("jira.token");
    std::os::unix::fs::chown(&token, Some(OTHER), None).expect("chown");
    refused(&run(vec![]).await, "jira.token_file", "chown root");
    std::os::unix::fs::chown(&token, Some(0), None).expect("chown");

    // A directory anyone may change (not sticky): the file could be replaced.
    chmod(&w.opts.dir, 0o777);
    refused(
        &run(vec![]).await,
        "may be changed by others",
        "move the file",
    );
    chmod(&w.opts.dir, 0o755);

    // `./config.toml` in the working directory, found without --config.
    let cwd = temp_dir("root-config-cwd");
    std::fs::copy(&config, cwd.join("config.toml")).expect("copy");
    std::os::unix::fs::chown(cwd.join("config.toml"), Some(OTHER), None).expect("chown");
    let out = tokio::task::spawn_blocking(move || {
        command(&["status".to_string()], &[])
            .current_dir(&cwd)
            .output()
            .expect("runs")
    })
    .await
    .expect("join");
    refused(&out, "config.toml", "chown root");

    let out = run(vec![]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The path to a config root reads is as safe as every step on it, as `ssh` checks its files:
/// a symlinked directory in a directory someone else controls, or a root-owned directory
/// inside one (which that user can rename away and replace), is refused; the same file reached
/// through root's own directories is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_root_a_config_reached_through_a_directory_others_control_is_refused() {
    let w = world("root-config-path", |_| {}).await;
    w.jira.create_issue("VSA", "One", "Task");
    if !root_for("root's reading rules apply to root only") {
        return;
    }
    let config = w.write_config().expect("config");
    let refused = |out: &std::process::Output, what: &str| {
        let (stdout, stderr) = text(out);
        assert_eq!(out.status.code(), Some(2), "{what}: {stdout}{stderr}");
        assert!(
            stderr.contains("may be changed by others") && stderr.contains("move the file"),
            "{what}: {stderr}"
        );
    };
    let home = temp_dir("root-config-home");
    std::os::unix::fs::chown(&home, Some(OTHER), Some(OTHER)).expect("chown");
    // A link the user made in their directory, to root's directory of the config.
    let link = home.join("conf");
    std::os::unix::fs::symlink(config.parent().expect("a directory"), &link).expect("link");
    std::os::unix::fs::lchown(&link, Some(OTHER), Some(OTHER)).expect("lchown");
    let via_link = link.join(config.file_name().expect("a name"));
    refused(
        &run_binary(args("reconcile", &via_link)).await,
        "through a link",
    );
    // Root's directory inside the user's: they may rename it and put their own in its place.
    let inner = home.join("etc");
    std::fs::create_dir(&inner).expect("dir");
    let copy = inner.join("config.toml");
    std::fs::copy(&config, &copy).expect("copy");
    refused(
        &run_binary(args("reconcile", &copy)).await,
        "under the user's directory",
    );
    let out = run_binary(args("reconcile", &config)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
}

/// A symlinked directory on the state path that the service's user made in its own directory
/// (`sub -> elsewhere`) is not followed as root: neither the lock nor the database is created
/// through it. One root made is the admin's choice and is followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_root_the_state_path_goes_through_no_link_another_user_made() {
    let w = world("root-state-dir-link", |_| {}).await;
    seed_issues(&w, 2, 2);
    if !root_for("the state directory must belong to another user") {
        return;
    }
    let (config, db) = state_owned_by(&w, OTHER);
    let state = db.parent().expect("the state directory").to_path_buf();
    let elsewhere = temp_dir("root-state-elsewhere");
    let link = state.join("sub");
    std::os::unix::fs::symlink(&elsewhere, &link).expect("link");
    std::os::unix::fs::lchown(&link, Some(OTHER), Some(OTHER)).expect("lchown");
    let through = |dir: &Path| {
        let text = std::fs::read_to_string(&config).expect("config");
        let moved = text.replace(
            &db.display().to_string(),
            &dir.join("state.db").display().to_string(),
        );
        let path = with_suffix(
            &config,
            &format!(
                "-{}",
                dir.file_name().and_then(|n| n.to_str()).unwrap_or("x")
            ),
        );
        std::fs::write(&path, moved).expect("config");
        path
    };
    let out = run_binary(args("reconcile", &through(&link))).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("the symlink") && stderr.contains("may be changed by others"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(&elsewhere).expect("dir").collect();
    assert!(left.is_empty(), "created through the link: {left:?}");
    assert_eq!(w.gitlab.writes(), 0, "nothing written to GitLab");
    // Root's own link, in root's directory, to the state directory.
    let admin = w.opts.dir.join("admin-state");
    std::os::unix::fs::symlink(&state, &admin).expect("link");
    let out = run_binary(args("reconcile", &through(&admin))).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert!(db.exists(), "the database is in the real state directory");
}
