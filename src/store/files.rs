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

/// `path` with its directory resolved (symlinked directories are the admin's to choose; the
/// file itself must not be one), after checking that none of its files is a link.
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
    let dir = std::fs::canonicalize(dir).map_err(|e| {
        Error::store(
            path,
            format!("its directory cannot be resolved ({e}); create it or set state.path"),
        )
    })?;
    Ok(dir.join(name))
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

#[cfg(test)]
mod tests {
    use super::*;

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
