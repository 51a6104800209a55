//! The Debian package. `cargo deb` packages the binary this test run built (`--no-build`, so no
//! release build inside the tests); `dpkg-deb` checks what is in it, and the extracted binary
//! runs against the extracted conffile. In CI, as root, the package is installed with dpkg,
//! used as an admin would (the service's user writes the state, `status` with no flags from any
//! directory reads it), and purged. The shipped completions and man pages must match what the
//! binary generates.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use jgr_sim::world::SimWorld;

use crate::harness::*;
use crate::operate::find_in_path;

const PKG: &str = "jira-gitlab-reconciler";
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Held while a test depends on whether the system-wide config exists, and while the package
/// is installed (which creates it).
pub static SYSTEM_CONFIG: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The tool, or a skip (a failure in CI, which must run everything).
fn tool(name: &str, install: &str) -> Option<PathBuf> {
    let found = find_in_path(name);
    if found.is_none() {
        skip(
            "debian_package_contents_and_install",
            &format!("{name} is not installed ({install})"),
        );
    }
    found
}

fn ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
    Command::new(program).args(args).output().expect("runs")
}

/// `cargo deb --no-build` around the binary of this test run, in a target dir of its own.
fn build_package(dir: &Path) -> PathBuf {
    let target = dir.join("target");
    std::fs::create_dir_all(target.join("release")).expect("dir");
    std::fs::copy(binary(), target.join("release").join(PKG)).expect("copy the binary");
    let deb = dir.join(format!("{PKG}.deb"));
    let out = Command::new(option_env!("CARGO").unwrap_or("cargo"))
        // gzip by the system's tool: about 2.5 s here, against 5-7 s for the default xz.
        .args([
            "deb",
            "--no-build",
            "--no-strip",
            "-Z",
            "gz",
            "--fast",
            "--compress-system",
        ])
        .arg("--output")
        .arg(&deb)
        .current_dir(ROOT)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo deb runs");
    ok(&out, "cargo deb");
    deb
}

/// path → mode string, from `dpkg-deb -c`.
fn contents(deb: &Path) -> BTreeMap<String, String> {
    let listing = ok(
        &run("dpkg-deb", &["-c", &deb.display().to_string()]),
        "dpkg-deb -c",
    );
    listing
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            Some((
                fields.last()?.trim_start_matches('.').to_string(),
                fields.first()?.to_string(),
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debian_package_contents_and_install() {
    let install = "cargo install --locked cargo-deb; .ci/run does it";
    if tool("cargo-deb", install).is_none() || tool("dpkg-deb", "apt-get install dpkg").is_none() {
        return;
    }
    let dir = temp_dir("deb");
    let deb = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || build_package(&dir)
    })
    .await
    .expect("join");
    let deb_s = deb.display().to_string();

    // What is in it, with which permissions.
    let files = contents(&deb);
    let expect = [
        ("/usr/bin/jira-gitlab-reconciler", "-rwxr-xr-x"),
        ("/etc/jira-gitlab-reconciler/config.toml", "-rw-r-----"),
        (
            "/usr/share/doc/jira-gitlab-reconciler/README.md",
            "-rw-r--r--",
        ),
        (
            "/usr/share/doc/jira-gitlab-reconciler/copyright",
            "-rw-r--r--",
        ),
        (
            "/usr/lib/systemd/system/jira-gitlab-reconciler.service",
            "-rw-r--r--",
        ),
        (
            "/usr/lib/systemd/system/jira-gitlab-reconciler.timer",
            "-rw-r--r--",
        ),
        (
            "/usr/lib/systemd/system/jira-gitlab-reconciler-oneshot.service",
            "-rw-r--r--",
        ),
        (
            "/usr/lib/systemd/system/jira-gitlab-reconciler-full.service",
            "-rw-r--r--",
        ),
        (
            "/usr/lib/systemd/system/jira-gitlab-reconciler-full.timer",
            "-rw-r--r--",
        ),
        (
            "/usr/share/man/man1/jira-gitlab-reconciler.1.gz",
            "-rw-r--r--",
        ),
        (
            "/usr/share/man/man1/jira-gitlab-reconciler-reconcile.1.gz",
            "-rw-r--r--",
        ),
        (
            "/usr/share/bash-completion/completions/jira-gitlab-reconciler",
            "-rw-r--r--",
        ),
        (
            "/usr/share/zsh/vendor-completions/_jira-gitlab-reconciler",
            "-rw-r--r--",
        ),
        (
            "/usr/share/fish/vendor_completions.d/jira-gitlab-reconciler.fish",
            "-rw-r--r--",
        ),
        (
            "/usr/share/jira-gitlab-reconciler/grafana/jira-gitlab-reconciler.json",
            "-rw-r--r--",
        ),
        (
            "/usr/share/jira-gitlab-reconciler/prometheus/alerts.yml",
            "-rw-r--r--",
        ),
        (
            "/usr/share/jira-gitlab-reconciler/git-hooks/prepare-commit-msg",
            "-rwxr-xr-x",
        ),
    ];
    for (path, mode) in expect {
        assert_eq!(
            files.get(path).map(String::as_str),
            Some(mode),
            "{path} in {files:#?}"
        );
    }

    // Its control data: the conffile, the dependencies, maintainer scripts that start nothing.
    let info = ok(&run("dpkg-deb", &["-I", &deb_s]), "dpkg-deb -I");
    assert!(info.contains("Package: jira-gitlab-reconciler"), "{info}");
    for script in ["postinst", "prerm", "postrm"] {
        assert!(info.contains(script), "{script} in {info}");
    }
    let depends = ok(&run("dpkg-deb", &["-f", &deb_s, "Depends"]), "Depends");
    assert!(depends.contains("adduser"), "{depends}");
    let conffiles = ok(&run("dpkg-deb", &["-I", &deb_s, "conffiles"]), "conffiles");
    assert_eq!(conffiles.trim(), "/etc/jira-gitlab-reconciler/config.toml");
    let postinst = ok(&run("dpkg-deb", &["-I", &deb_s, "postinst"]), "postinst");
    let code: Vec<&str> = postinst
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert!(
        !code
            .iter()
            .any(|l| l.contains("enable") || l.contains(" start ")),
        "postinst must not enable or start a unit: {postinst}"
    );

    // Extracted: units run the packaged binary; the binary reads the packaged config and names
    // the service's state without creating it.
    let root = dir.join("root");
    ok(
        &run("dpkg-deb", &["-x", &deb_s, &root.display().to_string()]),
        "dpkg-deb -x",
    );
    let unit =
        std::fs::read_to_string(root.join("usr/lib/systemd/system/jira-gitlab-reconciler.service"))
            .expect("unit");
    assert!(
        unit.contains("ExecStart=/usr/bin/jira-gitlab-reconciler run"),
        "{unit}"
    );
    assert!(unit.contains("RestartPreventExitStatus=2"), "{unit}");
    // The dashboard and the alert rules as they are in pkg/.
    for (shipped, source) in [
        (
            "usr/share/jira-gitlab-reconciler/grafana/jira-gitlab-reconciler.json",
            "pkg/grafana/jira-gitlab-reconciler.json",
        ),
        (
            "usr/share/jira-gitlab-reconciler/prometheus/alerts.yml",
            "pkg/prometheus/alerts.yml",
        ),
        (
            "usr/share/jira-gitlab-reconciler/git-hooks/prepare-commit-msg",
            "pkg/git-hooks/prepare-commit-msg",
        ),
    ] {
        assert_eq!(
            std::fs::read(root.join(shipped)).expect("shipped"),
            std::fs::read(Path::new(ROOT).join(source)).expect("source"),
            "{shipped}"
        );
    }
    let conffile = root.join("etc/jira-gitlab-reconciler/config.toml");
    let out = Command::new(root.join("usr/bin/jira-gitlab-reconciler"))
        .arg("status")
        .current_dir(&dir)
        .env("JGR_CONFIG", &conffile)
        .output()
        .expect("runs");
    let stdout = ok(&out, "extracted status");
    assert!(
        stdout.contains("state database  : /var/lib/jira-gitlab-reconciler/state.db"),
        "{stdout}"
    );

    // /proc/self belongs to the process's effective user.
    let root_user = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !in_ci() {
        // Installing touches the machine (dpkg, a system user, /etc): only CI does it.
        skip(
            "debian_package_contents_and_install (installing it)",
            "the package is installed, used and purged with CI=true only",
        );
        return;
    }
    assert!(
        root_user,
        "installing the package with dpkg needs root: run CI as root"
    );
    let _held = SYSTEM_CONFIG.lock().await;
    let w = world("deb-install", |_| {}).await;
    w.jira.create_issue("VSA", "Seen by status", "Task");
    tokio::task::spawn_blocking(move || install_and_use(&deb, &w))
        .await
        .expect("join");
}

const STATE_DIR: &str = "/var/lib/jira-gitlab-reconciler";
/// Written before this test installs the package and removed once it is purged: found at the
/// start, it says a run was killed in between (a real installation never has it).
const INSTALLED_BY_TEST: &str = "/var/tmp/jira-gitlab-reconciler.installed-by-tests";
const ETC: &str = "/etc/jira-gitlab-reconciler";

/// The README's install steps: the tokens in root-only files the units load, then `sudo
/// --preserve-env=JIRA_API_TOKEN,GITLAB_TOKEN jira-gitlab-reconciler check`. A stale token
/// in a file is found although the shell's token is good; the state directory is tested as
/// the service's user.
fn check_as_the_readme_says(w: &SimWorld, service_config: &Path) {
    use jgr_sim::world::{GITLAB_TOKEN, JIRA_TOKEN};
    use std::os::unix::fs::PermissionsExt;
    let write_token = |name: &str, token: &str| {
        let path = format!("{ETC}/{name}");
        std::fs::write(&path, token).expect("token file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    };
    write_token("jira.token", "a-stale-jira-token");
    write_token("gitlab.token", GITLAB_TOKEN);
    let text = crate::first_hour::credentials_instead_of_files(
        &std::fs::read_to_string(service_config).expect("config"),
        &w.opts.dir,
    );
    let config = w.opts.dir.join("credentials.toml");
    std::fs::write(&config, text).expect("write");
    let check = || {
        Command::new("/usr/bin/jira-gitlab-reconciler")
            .args(["check", "-c"])
            .arg(&config)
            .env("JIRA_API_TOKEN", JIRA_TOKEN)
            .env("GITLAB_TOKEN", GITLAB_TOKEN)
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("SYSTEMD_UNIT_PATH")
            .output()
            .expect("runs")
    };
    let units = "jira-gitlab-reconciler.service, jira-gitlab-reconciler-oneshot.service, jira-gitlab-reconciler-full.service";
    let out = check();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    for want in [
        format!("PROBLEM the Jira token in {ETC}/jira.token (credential jira of {units}) is not the one this check used ($JIRA_API_TOKEN)"),
        format!("ok      the GitLab token in {ETC}/gitlab.token (credential gitlab of {units}) is the same as $GITLAB_TOKEN, which GitLab accepted above"),
        format!("ok      state directory {STATE_DIR} is writable by user {PKG} (its owner, tested as that user since this runs as root)"),
    ] {
        assert!(stdout.contains(&want), "{want}\n{stdout}");
    }
    write_token("jira.token", JIRA_TOKEN);
    let out = check();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.ends_with("all checks passed\n"), "{stdout}");
}

/// What a run finds on the machine before it installs the package.
#[derive(Debug, PartialEq, Eq)]
enum Before {
    /// Nothing of the package: go ahead.
    Clean,
    /// The package or its state, left by a test run that was killed: purge it first.
    KilledRun,
    /// The package or its state without the test's mark: someone's installation, not touched.
    RealInstallation,
}

fn before_install(installed: bool, state_dir: bool, marked: bool) -> Before {
    match (marked, installed || state_dir) {
        (true, _) => Before::KilledRun,
        (false, true) => Before::RealInstallation,
        (false, false) => Before::Clean,
    }
}

#[test]
fn a_package_left_by_a_killed_run_is_purged_and_a_real_one_is_not_touched() {
    assert_eq!(before_install(false, false, false), Before::Clean);
    // Killed after the mark and before, during or after `dpkg -i`, or after the purge.
    for (installed, state_dir) in [(false, false), (true, false), (true, true), (false, true)] {
        assert_eq!(
            before_install(installed, state_dir, true),
            Before::KilledRun,
            "installed {installed}, state dir {state_dir}"
        );
    }
    // No mark: the package, or the state of a purged-but-kept installation, is someone's.
    assert_eq!(before_install(true, false, false), Before::RealInstallation);
    assert_eq!(before_install(false, true, false), Before::RealInstallation);
    assert_eq!(before_install(true, true, false), Before::RealInstallation);
}

/// Purges the package when the test ends, passed or not; the mark goes once it is gone.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", PKG]);
        if !run("dpkg", &["-s", PKG]).status.success() && !Path::new(STATE_DIR).exists() {
            let _ = std::fs::remove_file(INSTALLED_BY_TEST);
        }
    }
}

/// Purge what a killed run left (the package, the state directory it made, the mark).
fn clean_up_after_a_killed_run() {
    eprintln!("a killed test run left {PKG} installed: purging it first");
    ok(
        &run("dpkg", &["--purge", PKG]),
        "dpkg --purge (a killed run's)",
    );
    if Path::new(STATE_DIR).exists() {
        std::fs::remove_dir_all(STATE_DIR).expect("remove the killed run's state directory");
    }
    std::fs::remove_file(INSTALLED_BY_TEST).expect("remove the mark");
}

fn install_and_use(deb: &Path, w: &SimWorld) {
    let installed = run("dpkg", &["-s", PKG]).status.success();
    let state_dir = Path::new(STATE_DIR).exists();
    let marked = Path::new(INSTALLED_BY_TEST).exists();
    match before_install(installed, state_dir, marked) {
        Before::Clean => {}
        Before::KilledRun => clean_up_after_a_killed_run(),
        Before::RealInstallation => {
            panic!("{PKG} is already installed here; not touching a real installation")
        }
    }
    std::fs::write(
        INSTALLED_BY_TEST,
        "tests/it/package.rs installs jira-gitlab-reconciler; purged when it ends\n",
    )
    .expect("mark the installation as the test's");
    let purge = Purge;
    ok(&run("dpkg", &["-i", &deb.display().to_string()]), "dpkg -i");

    // The config is readable by the service's group only; nothing is enabled or started.
    let group = ok(&run("getent", &["group", PKG]), "the service's group");
    let gid: u32 = group
        .split(':')
        .nth(2)
        .and_then(|g| g.trim().parse().ok())
        .expect("gid");
    let meta = std::fs::metadata("/etc/jira-gitlab-reconciler/config.toml").expect("conffile");
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (0, gid, 0o640)
    );
    for link in [
        "/etc/systemd/system/multi-user.target.wants/jira-gitlab-reconciler.service",
        "/etc/systemd/system/timers.target.wants/jira-gitlab-reconciler.timer",
    ] {
        assert!(!Path::new(link).exists(), "{link}: enabled on install");
    }
    assert!(Path::new("/usr/share/bash-completion/completions/jira-gitlab-reconciler").exists());
    let units: Vec<String> = [
        ".service",
        ".timer",
        "-oneshot.service",
        "-full.service",
        "-full.timer",
    ]
    .iter()
    .map(|s| format!("/usr/lib/systemd/system/{PKG}{s}"))
    .collect();
    let man_installed = Path::new("/usr/share/man/man1/jira-gitlab-reconciler.1.gz").exists();
    let mut verify = vec!["verify".to_string()];
    if !(man_installed && find_in_path("man").is_some()) {
        verify.push("--man=no".into());
    }
    verify.extend(units);
    let out = Command::new("systemd-analyze")
        .args(&verify)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.lines().any(|l| l.contains(PKG)),
        "installed units: {stderr}"
    );

    // The service's user writes the state where the unit's StateDirectory= puts it.
    ok(
        &run(
            "install",
            &["-d", "-o", PKG, "-g", PKG, "-m", "0700", STATE_DIR],
        ),
        "state dir",
    );
    let service_config = w.opts.dir.join("service.toml");
    let text = w.config_toml().replace(
        &w.state_path().display().to_string(),
        &format!("{STATE_DIR}/state.db"),
    );
    std::fs::write(&service_config, text).expect("write");
    let as_service = || {
        run(
            "runuser",
            &[
                "-u",
                PKG,
                "--",
                "/usr/bin/jira-gitlab-reconciler",
                "reconcile",
                "-c",
                &service_config.display().to_string(),
            ],
        )
    };
    let out = ok(&as_service(), "reconcile as the service's user");
    assert!(out.contains("created 1"), "{out}");

    // An admin: `status`, no flag, no variable, some other directory.
    let anywhere = temp_dir("deb-anywhere");
    let out = Command::new("/usr/bin/jira-gitlab-reconciler")
        .arg("status")
        .current_dir(&anywhere)
        .env_remove("JGR_CONFIG")
        .env_remove("JIRA_API_TOKEN")
        .env_remove("GITLAB_TOKEN")
        .output()
        .expect("runs");
    let stdout = ok(&out, "status");
    assert!(
        stdout.contains(
            "config          : /etc/jira-gitlab-reconciler/config.toml (the system-wide config)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("state database  : /var/lib/jira-gitlab-reconciler/state.db\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("VSA->acme/platform") && stdout.contains("mirrored issues : 1"),
        "{stdout}"
    );
    // Root reading the state left it usable by the service's user.
    ok(
        &as_service(),
        "reconcile as the service's user after root's status",
    );

    check_as_the_readme_says(w, &service_config);

    // Purge: what the package made, and the secrets the README had the admin put next to the
    // config; the system user stays (Debian's practice for system users).
    let out = run("dpkg", &["--purge", PKG]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    drop(purge);
    assert!(!said.contains("not empty so not removed"), "{said}");
    assert!(!Path::new(STATE_DIR).exists(), "purge removes the state");
    assert!(
        !Path::new(INSTALLED_BY_TEST).exists(),
        "and the test's mark goes with the package"
    );
    assert!(
        !Path::new("/etc/jira-gitlab-reconciler/config.toml").exists(),
        "and the conffile"
    );
    assert!(
        !Path::new(ETC).exists(),
        "and the conffile, the token files and their directory"
    );
    assert!(
        run("getent", &["passwd", PKG]).status.success(),
        "the system user stays, as the README says"
    );
    let overrides = run(
        "dpkg-statoverride",
        &["--list", "/etc/jira-gitlab-reconciler/config.toml"],
    );
    assert!(!overrides.status.success(), "and its permission override");
}

/// The completions and man pages in pkg/ are what the binary generates now.
#[cfg(feature = "demo")]
#[test]
fn packaged_completions_and_man_pages_are_current() {
    let stale = |file: &str| -> String {
        format!("pkg/{file} is stale: run pkg/regenerate and commit the result")
    };
    for (shell, file) in [
        ("bash", "completions/jira-gitlab-reconciler.bash"),
        ("zsh", "completions/_jira-gitlab-reconciler"),
        ("fish", "completions/jira-gitlab-reconciler.fish"),
    ] {
        let generated = ok(&run(binary(), &["completions", shell]), "completions");
        let shipped =
            std::fs::read_to_string(Path::new(ROOT).join("pkg").join(file)).unwrap_or_default();
        assert!(generated == shipped, "{}", stale(file));
    }
    let dir = temp_dir("man-pages");
    ok(
        &run(binary(), &["man", "--out-dir", &dir.display().to_string()]),
        "man",
    );
    let pages = |d: &Path| -> BTreeMap<String, String> {
        std::fs::read_dir(d)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| {
                        (
                            e.file_name().to_string_lossy().into_owned(),
                            std::fs::read_to_string(e.path()).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let generated = pages(&dir);
    let shipped = pages(&Path::new(ROOT).join("pkg/man"));
    assert!(generated.len() > 5, "{:?}", generated.keys());
    assert_eq!(
        generated.keys().collect::<Vec<_>>(),
        shipped.keys().collect::<Vec<_>>(),
        "{}",
        stale("man/")
    );
    for (name, text) in &generated {
        assert!(
            shipped.get(name) == Some(text),
            "{}",
            stale(&format!("man/{name}"))
        );
    }
}
