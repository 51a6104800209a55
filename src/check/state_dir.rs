//! Whether passes will be able to write the state database: `check` creates and removes a
//! file in its directory (or, before the directory exists, in the nearest directory that
//! does, where the first pass would create it). Run as root, the file is created as that
//! directory's owner, the user the service runs as, so root's privileges do not hide a
//! directory the service cannot write. And a database that does not exist yet is named as
//! such, with the databases next to it: a misspelt `state.path` would start an empty state.

use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::sandbox::Sandbox;
use super::Finding;

/// Whether the state database's directory can be written by the user passes will run as.
/// `made_by_systemd`: the directories the installed units have systemd create; `unit`: the
/// installed service unit's user and sandbox, when there is one (what the service will see).
pub fn writable(state_path: &Path, made_by_systemd: &[PathBuf], unit: Option<&Sandbox>) -> Finding {
    let dir = match state_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Some(why) = unit.and_then(|u| Some((u, u.read_only(&absolute(&dir))?))) {
        return read_only(&dir, why);
    }
    if !dir.exists() && made_by_systemd.contains(&dir) {
        return Finding::Note(format!(
            "state directory {} does not exist yet: systemd creates it for the service's user \
             when a unit starts (StateDirectory=)",
            dir.display()
        ));
    }
    let Some(existing) = dir.ancestors().find(|a| a.is_dir()) else {
        return Finding::Problem(format!(
            "state directory {}: no part of the path exists; set state.path",
            dir.display()
        ));
    };
    let who = match unit.and_then(|u| Some((u.user.as_deref()?, u.unit.as_str()))) {
        Some((user, unit)) => match Writer::unit_user(user, unit) {
            Ok(who) => who,
            Err(finding) => return finding,
        },
        None => Writer::of(existing),
    };
    match who.try_create_in(existing) {
        Ok(()) => verdict(&dir, existing, &who, Ok(())),
        Err(Untested(why)) => Finding::Note(format!(
            "state directory {}: could not test writing it as {}: {why}",
            existing.display(),
            who.describe()
        )),
        Err(Failed(e)) => verdict(&dir, existing, &who, Err(e)),
    }
}

/// What writing a file in `existing` as `who` says of the state directory `dir` (`existing`
/// itself, or the nearest directory of its path that exists).
fn verdict(dir: &Path, existing: &Path, who: &Writer, tested: std::io::Result<()>) -> Finding {
    match (existing == dir, tested) {
        (true, Ok(())) => Finding::Ok(format!(
            "state directory {} is writable by {}",
            dir.display(),
            who.describe()
        )),
        (true, Err(e)) => Finding::Problem(format!(
            "state directory {} is not writable by {} ({e}): passes could not save the state; \
             make it writable (chown/chmod), or set state.path",
            dir.display(),
            who.describe()
        )),
        (false, Ok(())) => Finding::Note(format!(
            "state directory {} does not exist yet: the first pass creates it ({} is writable by {})",
            dir.display(),
            existing.display(),
            who.describe()
        )),
        (false, Err(e)) => Finding::Problem(format!(
            "state directory {} does not exist, and {} cannot create it: {} is not writable ({e}); \
             create it, owned by the user passes run as, or set state.path",
            dir.display(),
            who.describe(),
            existing.display()
        )),
    }
}

/// The service's sandbox keeps it from writing `dir`, whatever the directory's permissions.
fn read_only(dir: &Path, (unit, why): (&Sandbox, String)) -> Finding {
    Finding::Problem(format!(
        "state directory {dir} is read-only for the service: {why}, and {dir} is not under the \
         paths it opens (ReadWritePaths=, StateDirectory=: {open}); add ReadWritePaths={dir} in \
         a drop-in (systemctl edit {name}), or set state.path under one of those",
        dir = dir.display(),
        open = unit.writable_paths(),
        name = unit.unit,
    ))
}

/// `dir` from `/` (a relative state path is read from the working directory).
fn absolute(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// What `check` says of a state database that does not exist yet: a first pass starts an
/// empty one, which is right on a first run and a mistake after a typo in `state.path`.
pub fn missing_database(state_path: &Path) -> String {
    let others = other_databases(state_path);
    let beside = if others.is_empty() {
        String::new()
    } else {
        format!(
            "; its directory holds {}: is state.path misspelt?",
            others.join(", ")
        )
    };
    format!(
        "state database {} does not exist: the first pass creates a new, empty one and finds \
         the GitLab issues it mirrors by their markers (nothing is created twice); if passes \
         have run before, check state.path{beside}",
        state_path.display()
    )
}

/// Other SQLite files in the state database's directory (a few, by name).
fn other_databases(state_path: &Path) -> Vec<String> {
    let dir = match state_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".db") || n.ends_with(".sqlite"))
        .collect();
    names.sort();
    names.truncate(5);
    names
}

/// Who writes the state: the installed unit's `User=`; without a unit, this process, or (run
/// as root) the owner of the directory.
struct Writer {
    /// `(uid, gid)` to test as; `None`: as this process.
    as_owner: Option<(u32, u32)>,
    /// The unit that runs as this user, when it is the unit's `User=`.
    unit: Option<(String, String)>,
}

enum TestError {
    /// Writing failed: the directory is not writable.
    Failed(std::io::Error),
    /// The test could not be made (switching to the owner failed).
    Untested(String),
}
use TestError::{Failed, Untested};

impl Writer {
    fn of(dir: &Path) -> Writer {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let owner = std::fs::metadata(dir).ok().map(|m| (m.uid(), m.gid()));
        Writer {
            as_owner: owner.filter(|(uid, _)| root && *uid != 0),
            unit: None,
        }
    }

    /// The unit's `User=`: tested as that user when this runs as root or as that user;
    /// otherwise the finding says it could not be.
    fn unit_user(user: &str, unit: &str) -> Result<Writer, Finding> {
        let Some((uid, gid)) = user_ids(user) else {
            return Err(Finding::Problem(format!(
                "{unit} runs as User={user}, which does not exist on this machine: the unit \
                 would not start; create the user (the package's install does), or fix User="
            )));
        };
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if me != 0 && me != uid {
            return Err(Finding::Note(format!(
                "state directory: not tested as user {user}, who {unit} runs as (User=): this \
                 is {}; run check as root (sudo) to test what the service will be able to write",
                user_name(me)
            )));
        }
        Ok(Writer {
            as_owner: (me == 0 && uid != 0).then_some((uid, gid)),
            unit: Some((user.to_string(), unit.to_string())),
        })
    }

    fn describe(&self) -> String {
        if let Some((user, unit)) = &self.unit {
            let how = if self.as_owner.is_some() {
                ", tested as that user since this runs as root"
            } else {
                ""
            };
            return format!("user {user} (the User= of {unit}{how})");
        }
        match self.as_owner {
            Some((uid, _)) => format!(
                "{} (its owner, tested as that user since this runs as root)",
                user_name(uid)
            ),
            // SAFETY: geteuid has no preconditions.
            None => user_name(unsafe { libc::geteuid() }),
        }
    }

    /// Create and remove a file in `dir` as this writer.
    fn try_create_in(&self, dir: &Path) -> Result<(), TestError> {
        let probe = dir.join(format!(
            ".jira-gitlab-reconciler-check.{}",
            std::process::id()
        ));
        let Some((uid, gid)) = self.as_owner else {
            return create_and_remove(&probe).map_err(Failed);
        };
        // The filesystem ids are per thread on Linux: a thread of its own takes the owner's,
        // and the rest of the process stays root. Switching them drops root's override of
        // file permissions for that thread, so the kernel checks the owner's rights.
        std::thread::spawn(move || {
            // SAFETY: setfsgid/setfsuid change only this thread's filesystem ids; calling
            // them again with the same id returns the id in force, which verifies the switch.
            let switched = unsafe {
                libc::setfsgid(gid);
                libc::setfsuid(uid);
                libc::setfsgid(gid) as u32 == gid && libc::setfsuid(uid) as u32 == uid
            };
            if !switched {
                return Err(Untested("the switch of user was refused".into()));
            }
            create_and_remove(&probe).map_err(Failed)
        })
        .join()
        .unwrap_or_else(|_| Err(Untested("the test thread failed".into())))
    }
}

/// Create `path` (never through a symlink, never an existing file) and remove it again.
fn create_and_remove(path: &Path) -> std::io::Result<()> {
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    match created {
        Ok(file) => {
            drop(file);
            std::fs::remove_file(path)
        }
        // A file of that name left by a killed `check`: it was created, so the directory is
        // writable; leave it be (it is not ours to remove through a possible symlink).
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The uid and primary gid of the user named `name`, if it exists.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let c_name = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: as in `user_name`: a zeroed passwd is a valid out-parameter, and getpwnam_r
    // writes into `buf` of the length given and sets `result` to null or to `pwd`.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe {
        libc::getpwnam_r(
            c_name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some((pwd.pw_uid, pwd.pw_gid))
}

/// The name of the user with `uid`, or "uid N".
fn user_name(uid: u32) -> String {
    let mut buf = vec![0u8; 4096];
    // SAFETY: a zeroed passwd is a valid out-parameter; getpwuid_r writes its strings into
    // `buf`, of the length given, and sets `result` to null or to `pwd`.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return format!("uid {uid}");
    }
    // SAFETY: on success pw_name points at a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    format!("user {}", name.to_string_lossy())
}
