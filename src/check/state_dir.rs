//! Whether passes will be able to write the state database: `check` creates and removes a
//! file in its directory (or, before the directory exists, in the nearest directory that
//! does, where the first pass would create it). Run as root, the file is created as that
//! directory's owner, the user the service runs as, so root's privileges do not hide a
//! directory the service cannot write. And a database that does not exist yet is named as
//! such, with the databases next to it: a misspelt `state.path` would start an empty state.

use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::Finding;

/// Whether the state database's directory can be written by the user passes will run as.
/// `made_by_systemd`: the directories the installed units have systemd create.
pub fn writable(state_path: &Path, made_by_systemd: &[PathBuf]) -> Finding {
    let dir = match state_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
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
    let who = Writer::of(existing);
    let tested = match who.try_create_in(existing) {
        Ok(()) => Ok(()),
        Err(Untested(why)) => {
            return Finding::Note(format!(
                "state directory {}: could not test writing it as {}: {why}",
                existing.display(),
                who.describe()
            ))
        }
        Err(Failed(e)) => Err(e),
    };
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

/// Who writes the state: this process, or (run as root) the owner of the directory.
struct Writer {
    /// `(uid, gid)` to test as; `None`: as this process.
    as_owner: Option<(u32, u32)>,
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
        }
    }

    fn describe(&self) -> String {
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
