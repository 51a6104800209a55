//! The state database's files (the database, its `-wal` and `-shm`) are opened only as
//! themselves, never through a symlink or a hard link. Run as root in the service's state
//! directory (`sudo … reconcile`), a link planted there by the directory's owner would make
//! root write SQLite pages into a file elsewhere.
//!
//! - Symlinks: the database is opened by its directory's canonical path with
//!   `SQLITE_OPEN_NOFOLLOW`, and SQLite opens all three files with `O_NOFOLLOW`: a symlink
//!   swapped in at any moment is refused by the kernel, not followed.
//! - Hard links: each file that exists must have one link, checked before SQLite opens it,
//!   and again after, on the very files this process holds open (`/proc/self/fd`), before the
//!   migrations write. A link made in the instant between the first check and SQLite's open is
//!   caught by the second, but opening a WAL database's `-shm` already writes to it: that
//!   instant is closed by the kernel's `fs.protected_hardlinks` (on by default on Debian and
//!   Ubuntu), which forbids linking a file one does not own.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The three files SQLite keeps for a WAL database at `db`.
fn family(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [db.to_path_buf(), with("-wal"), with("-shm")]
}

/// `path` with its directory resolved (symlinked directories are the admin's to choose, as
/// root only those a trusted user made; the file itself must not be one), after checking that
/// none of its files is a link.
pub(super) fn open_path(path: &Path) -> Result<PathBuf> {
    for file in family(path) {
        check_not_linked(path, &file)?;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        Error::store(
            path,
            "names no file; set state.path to a file such as state.db",
        )
    })?;
    let dir = real_dir(path, dir)?;
    Ok(dir.join(name))
}

/// `dir` resolved. As root, each symlink on the way must be one only a trusted user could
/// have made (`crate::path_walk`): a link the service's user plants in its state directory
/// (`sub -> /etc`) would otherwise have root create and write the state files elsewhere.
pub(super) fn real_dir(db: &Path, dir: &Path) -> Result<PathBuf> {
    use crate::path_walk::{self, Walk};
    if path_walk::is_root() {
        path_walk::resolve(dir, &path_walk::trusted_users(), Walk::Links).map_err(|why| {
            Error::store(
                db,
                format!(
                    "{why}; root follows no such link: set state.path to the real directory, \
                     or remove the link"
                ),
            )
        })?;
    }
    std::fs::canonicalize(dir).map_err(|e| {
        Error::store(
            db,
            format!("its directory cannot be resolved ({e}); create it or set state.path"),
        )
    })
}

fn check_not_linked(db: &Path, file: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(file) else {
        return Ok(());
    };
    if meta.file_type().is_symlink() {
        return Err(Error::store(
            db,
            format!(
                "{} is a symlink, which is never followed; remove it (set state.path to the real file if it is yours)",
                file.display()
            ),
        ));
    }
    if !meta.file_type().is_file() {
        return Err(Error::store(
            db,
            format!("{} is not a regular file; remove it", file.display()),
        ));
    }
    hard_links(db, file, meta.nlink())
}

fn hard_links(db: &Path, file: &Path, links: u64) -> Result<()> {
    if links > 1 {
        return Err(Error::store(
            db,
            format!(
                "{} has {links} names (a hard link to a file elsewhere), and is never written \
                 through one; remove this name (the state is rebuilt from GitLab's markers if it \
                 was the database)",
                file.display()
            ),
        ));
    }
    Ok(())
}

/// After SQLite opened them: the files this process holds open under the family's names have
/// one link each.
pub(super) fn check_opened(db: &Path, opened_as: &Path) -> Result<()> {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return Ok(());
    };
    let names = family(opened_as);
    for fd in fds.flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        if !names.contains(&target) {
            continue;
        }
        // `metadata` follows /proc's link to the open file itself, whatever its name now.
        if let Ok(meta) = std::fs::metadata(fd.path()) {
            hard_links(db, &target, meta.nlink())?;
        }
    }
    Ok(())
}

/// Run as root: the files SQLite holds open as the database and its side files take their
/// directory's owner, through SQLite's own descriptors (see `crate::match_directory_owner`:
/// by name a swapped link would be given away, and a descriptor opened and closed here would
/// drop SQLite's locks).
pub(super) fn match_directory_owner(opened_as: &Path) {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let names = family(opened_as);
    for fd in fds.flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        let number = fd.file_name().to_str().and_then(|n| n.parse::<i32>().ok());
        let Some(number) = number.filter(|_| names.contains(&target)) else {
            continue;
        };
        // SAFETY: the descriptor is SQLite's, open for as long as the store is; it is only
        // borrowed for the fstat and fchown, never closed.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(number) };
        crate::match_directory_owner(borrowed, &target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether this test can run (root gives files away); under `CI=true` it must.
    fn as_root(test: &str) -> bool {
        if crate::path_walk::is_root() {
            return true;
        }
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{test} needs root"
        );
        eprintln!("SKIPPED: {test}: not root");
        false
    }

    /// The owner is given through the descriptor this process holds, never by name: a name
    /// the service's user swapped for another file of root's after the open is not given away.
    #[test]
    fn the_directory_owner_is_given_through_the_open_file_not_its_name() {
        use std::os::fd::AsFd;
        use std::os::unix::fs::MetadataExt;
        if !as_root("the_directory_owner_is_given_through_the_open_file_not_its_name") {
            return;
        }
        let dir = crate::test_dir("files-owner");
        let state = dir.join("state");
        std::fs::create_dir(&state).expect("dir");
        std::os::unix::fs::chown(&state, Some(65534), Some(65534)).expect("chown");
        let lock = state.join("state.db.lock");
        let opened = std::fs::File::create(&lock).expect("root's new file");
        std::fs::rename(&lock, dir.join("moved")).expect("swap");
        std::fs::write(&lock, b"root's").expect("another file of root's at the name");
        crate::match_directory_owner(opened.as_fd(), &lock);
        let uid = |p: &Path| std::fs::metadata(p).expect("there").uid();
        assert_eq!(
            uid(&dir.join("moved")),
            65534,
            "the open file was given away"
        );
        assert_eq!(uid(&lock), 0, "the file now at the name was not");
    }

    /// As root, a state path through a symlink the service's user made in its directory is
    /// refused; one root made is followed.
    #[test]
    fn as_root_a_link_in_the_state_directory_made_by_another_user_is_refused() {
        if !as_root("as_root_a_link_in_the_state_directory_made_by_another_user_is_refused") {
            return;
        }
        let dir = crate::test_dir("files-dir-link");
        let state = dir.join("state");
        let elsewhere = dir.join("elsewhere");
        std::fs::create_dir(&state).expect("dir");
        std::fs::create_dir(&elsewhere).expect("dir");
        std::os::unix::fs::chown(&state, Some(65534), Some(65534)).expect("chown");
        let link = state.join("sub");
        std::os::unix::fs::symlink(&elsewhere, &link).expect("link");
        std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).expect("lchown");
        let e = open_path(&link.join("state.db"))
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("the symlink") && e.contains("may be changed by others"),
            "{e}"
        );
        // The state directory is the service user's own; a link root made in root's directory
        // is the admin's choice.
        let admin = dir.join("admin-link");
        std::os::unix::fs::symlink(&state, &admin).expect("link");
        let real = open_path(&admin.join("state.db")).expect("followed");
        assert_eq!(
            real,
            std::fs::canonicalize(&state)
                .expect("real")
                .join("state.db")
        );
    }

    /// A link made between the check before SQLite opens the files and the open itself is
    /// caught on the files this process holds.
    #[test]
    fn a_hard_link_made_after_the_first_check_is_caught_on_the_open_files() {
        let dir = std::env::temp_dir().join(format!("jgr-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let db = dir.join("state.db");
        let store = super::super::Store::open(&db).expect("opens");
        let real = open_path(&db).expect("no links yet");
        check_opened(&db, &real).expect("none");
        let wal = family(&db)[1].clone();
        assert!(wal.exists(), "WAL mode keeps a -wal open");
        std::fs::hard_link(&wal, dir.join("elsewhere")).expect("link");
        let e = check_opened(&db, &real).expect_err("caught").to_string();
        assert!(e.contains("state.db-wal has 2 names"), "{e}");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
