//! Single instance per state database: an OS file lock (flock) on `<state>.lock`, held for the
//! duration of a pass. The kernel drops it when the process dies, even by `kill -9`, so it can
//! never go stale the way a PID file does.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::stop::Stop;

pub struct InstanceLock {
    _file: File,
}

pub fn lock_path(state_path: &Path) -> PathBuf {
    next_to(state_path, ".lock")
}

/// `<state><suffix>`: the lock files sit next to the state database they guard.
fn next_to(state_path: &Path, suffix: &str) -> PathBuf {
    let mut name = state_path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

impl InstanceLock {
    /// Take the lock, waiting up to `wait` for another instance's pass to finish (or until a
    /// stop is requested).
    pub async fn acquire(state_path: &Path, wait: Duration, stop: &Stop) -> Result<InstanceLock> {
        let path = lock_path(state_path);
        let file = open_lock_file(state_path, &path)?;
        let started = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(InstanceLock { _file: file }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => {
                    return Err(Error::io(format!("cannot lock {}", path.display()), e))
                }
            }
            if started.elapsed() >= wait {
                return Err(Error::Locked(format!(
                    "another jira-gitlab-reconciler is running a pass on {} (lock {} held for over {} s); \
                     let it finish, or stop it (systemctl stop jira-gitlab-reconciler) before running this one",
                    state_path.display(),
                    path.display(),
                    wait.as_secs()
                )));
            }
            if !told {
                told = true;
                tracing::info!(lock = %path.display(), "another instance is running a pass on this state database; waiting for it");
            }
            if !stop.sleep(Duration::from_millis(100)).await {
                return Err(Error::Locked(format!(
                    "stopped while waiting for the lock {}",
                    path.display()
                )));
            }
        }
    }
}

/// Open (creating) a lock file next to the state database: its directory is created if
/// needed, it is never opened through a symlink or a hard link (run as root in the service's
/// directory, a link planted there would have root create, open or give away a file
/// elsewhere), and run as root it takes the directory's owner.
fn open_lock_file(state_path: &Path, path: &Path) -> Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::io(
                format!(
                    "cannot create {}; create it or set state.path",
                    dir.display()
                ),
                e,
            )
        })?;
    }
    // Never through a symlink: run as root in the service's directory, a planted link
    // would have root create or open a file elsewhere (a link to the directory too).
    let path = &as_root_through_trusted_links(state_path, path)?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            let hint = if e.raw_os_error() == Some(libc::ELOOP) {
                "is a symlink; remove it, the lock file is created afresh"
            } else {
                "cannot be opened (the state directory must be writable)"
            };
            Error::io(format!("the lock file {} {hint}", path.display()), e)
        })?;
    // O_NOFOLLOW cannot tell a hard link: checked on the open file.
    let links = file.metadata().map(|m| m.nlink()).unwrap_or(1);
    if links > 1 {
        return Err(Error::store(
            state_path,
            format!(
                "the lock file {} has {links} names (a hard link to a file elsewhere); remove \
                 it, the lock file is created afresh",
                path.display()
            ),
        ));
    }
    crate::match_directory_owner(std::os::fd::AsFd::as_fd(&file), path);
    Ok(file)
}

/// `path` as root opens it: its directory resolved, each symlink on the way one only a
/// trusted user could have made (`crate::path_walk`). Anyone else opens `path` as it is.
fn as_root_through_trusted_links(state_path: &Path, path: &Path) -> Result<PathBuf> {
    use crate::path_walk::{self, Walk};
    if !path_walk::is_root() {
        return Ok(path.to_path_buf());
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(path.to_path_buf());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let real =
        path_walk::resolve(dir, &path_walk::trusted_users(), Walk::Links).map_err(|why| {
            Error::store(
                state_path,
                format!(
                "{why}; root follows no such link to the lock file: set state.path to the real \
                 directory, or remove the link"
            ),
            )
        })?;
    Ok(real.join(name))
}

/// Held by a `run` for as long as it serves a state database, with its process id inside, so
/// a second `run` on the same state says at start-up that it is not alone (it would work, its
/// passes taking turns with the first one's under [`InstanceLock`], but one is enough).
pub struct ServiceMarker {
    _file: File,
}

impl ServiceMarker {
    /// The marker, or `Err` with the process id of the `run` that holds it (if it says).
    pub fn hold(state_path: &Path) -> Result<std::result::Result<ServiceMarker, Option<u32>>> {
        let path = next_to(state_path, ".run.lock");
        let mut file = open_lock_file(state_path, &path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = std::io::Read::read_to_string(&mut file, &mut pid);
                return Ok(Err(pid.trim().parse().ok()));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::io(format!("cannot lock {}", path.display()), e))
            }
        }
        // Best effort: the pid only makes the other's message more helpful.
        let _ = file.set_len(0).and_then(|()| {
            std::io::Write::write_all(&mut file, std::process::id().to_string().as_bytes())
        });
        Ok(Ok(ServiceMarker { _file: file }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_holder_waits_then_gives_up_with_a_clear_error() {
        let dir = crate::test_dir("lock");
        let state = dir.join("state.db");
        let stop = Stop::new();
        let first = InstanceLock::acquire(&state, Duration::ZERO, &stop)
            .await
            .expect("first");
        let e = InstanceLock::acquire(&state, Duration::from_millis(300), &stop)
            .await
            .err()
            .expect("second must not get it");
        assert!(matches!(e, Error::Locked(_)));
        assert!(
            e.to_string().contains("another jira-gitlab-reconciler"),
            "{e}"
        );
        drop(first);
        InstanceLock::acquire(&state, Duration::ZERO, &stop)
            .await
            .expect("free again");
    }
}
