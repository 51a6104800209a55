//! Who could change where a path leads, for root. A path is only as safe as every step on the
//! way: a symlink in a directory someone else may change (the service's state directory, a
//! user's home) can be replaced to send root's reads and writes elsewhere, and so can a real
//! directory on the way to a file root trusts. `canonicalize` alone cannot tell: it resolves
//! the links without saying who could have planted them.
//!
//! So the path is walked as the kernel would resolve it, one component at a time, each symlink
//! read and followed by hand (at most 40, as Linux allows), and each step checked: the
//! directory it is taken in must belong to a trusted user and be writable by no one else, or
//! be sticky (`/tmp`) with the entry itself a trusted user's. [`Walk::Links`] checks the
//! steps that are symlinks (the state directory may be the service user's own, its links may
//! not); [`Walk::Everything`] checks every step, as `ssh` checks the path to its files.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Which steps of a path must be safe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Walk {
    /// Only symlinks: where the path leads must be what a trusted user made it lead to.
    Links,
    /// Every directory on the way too (a file root reads as its config or token).
    Everything,
}

/// At most this many symlinks on one path (Linux's own limit, `ELOOP`).
const MAX_LINKS: usize = 40;

/// The users whose files and directories root trusts: root, and the user who ran `sudo`.
pub fn trusted_users() -> Vec<u32> {
    let mut users = vec![0];
    users.extend(
        std::env::var("SUDO_UID")
            .ok()
            .and_then(|u| u.trim().parse::<u32>().ok()),
    );
    users
}

/// Whether this process runs as root (the only user these checks are for).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// One part of a path still to walk.
enum Part {
    Root,
    Up,
    Name(OsString),
}

fn parts(path: &Path) -> impl Iterator<Item = Part> + '_ {
    path.components().filter_map(|c| match c {
        Component::RootDir | Component::Prefix(_) => Some(Part::Root),
        Component::ParentDir => Some(Part::Up),
        Component::CurDir => None,
        Component::Normal(n) => Some(Part::Name(n.to_owned())),
    })
}

/// `path` resolved (relative to the working directory), every step checked as `walk` says for
/// `trusted` users; `Err` says which step someone else could change, and how. A part that does
/// not exist yet ends the walk: what is left is returned as written (opening it is the
/// caller's, with `O_NOFOLLOW` where a file may not be a link).
pub fn resolve(path: &Path, trusted: &[u32], walk: Walk) -> Result<PathBuf, String> {
    let start = if path.is_absolute() {
        PathBuf::new()
    } else {
        std::env::current_dir().map_err(|e| format!("the working directory is unreadable ({e})"))?
    };
    let mut todo: VecDeque<Part> = parts(&start).chain(parts(path)).collect();
    let mut at = PathBuf::from("/");
    let mut links = 0;
    while let Some(part) = todo.pop_front() {
        let name = match part {
            Part::Root => {
                at = PathBuf::from("/");
                continue;
            }
            Part::Up => {
                at.pop();
                continue;
            }
            Part::Name(name) => name,
        };
        let next = at.join(&name);
        let Ok(meta) = std::fs::symlink_metadata(&next) else {
            // Not there (yet): nothing further to follow.
            let mut rest = next;
            rest.extend(todo.iter().filter_map(|p| match p {
                Part::Name(n) => Some(n.as_os_str()),
                _ => None,
            }));
            return Ok(rest);
        };
        let is_link = meta.file_type().is_symlink();
        if is_link || walk == Walk::Everything {
            step_safe(&at, &next, &meta, trusted, is_link)?;
        }
        if !is_link {
            at = next;
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(format!(
                "{} goes through more than {MAX_LINKS} symlinks",
                path.display()
            ));
        }
        let target = std::fs::read_link(&next)
            .map_err(|e| format!("the symlink {} is unreadable ({e})", next.display()))?;
        for p in parts(&target).collect::<Vec<_>>().into_iter().rev() {
            todo.push_front(p);
        }
    }
    Ok(at)
}

/// Whether the entry `next` (with `meta`) in the directory `dir` can only have been made, and
/// can only be replaced, by a trusted user.
fn step_safe(
    dir: &Path,
    next: &Path,
    meta: &std::fs::Metadata,
    trusted: &[u32],
    is_link: bool,
) -> Result<(), String> {
    let d = std::fs::metadata(dir)
        .map_err(|e| format!("the directory {} is unreadable ({e})", dir.display()))?;
    let others_write = d.mode() & 0o022 != 0;
    let sticky = d.mode() & 0o1000 != 0;
    let safe =
        trusted.contains(&d.uid()) && (!others_write || (sticky && trusted.contains(&meta.uid())));
    if safe {
        return Ok(());
    }
    let what = if is_link {
        format!("the symlink {}", next.display())
    } else {
        next.display().to_string()
    };
    Err(format!(
        "{what} is in the directory {}, which may be changed by others (uid {}, mode {:o}): \
         they could put something else in its place",
        dir.display(),
        d.uid(),
        d.mode() & 0o7777
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_as_the_kernel_does() {
        let dir = crate::test_dir("path-walk");
        let real = dir.join("real");
        std::fs::create_dir_all(real.join("sub")).expect("dirs");
        std::fs::write(real.join("sub/file"), b"x").expect("file");
        std::os::unix::fs::symlink("real/sub", dir.join("rel")).expect("link");
        std::os::unix::fs::symlink(dir.join("rel"), dir.join("abs")).expect("link");
        let me = [rustix_uid()];
        let canonical = std::fs::canonicalize(real.join("sub/file")).expect("canonical");
        for via in ["abs/file", "rel/file", "rel/../sub/file", "real/./sub/file"] {
            let got = resolve(&dir.join(via), &me, Walk::Links).expect(via);
            assert_eq!(got, canonical, "{via}");
        }
        // Not there yet: the rest as written.
        let got = resolve(&dir.join("abs/new/state.db"), &me, Walk::Links).expect("new");
        assert_eq!(got, canonical.with_file_name("new").join("state.db"));
        std::os::unix::fs::symlink("loop", dir.join("loop")).expect("loop");
        let e = resolve(&dir.join("loop/x"), &me, Walk::Links).expect_err("a loop");
        assert!(e.contains("more than 40 symlinks"), "{e}");
    }

    #[test]
    fn a_link_in_a_directory_others_may_change_is_refused() {
        let dir = crate::test_dir("path-walk-others");
        std::fs::create_dir_all(dir.join("real")).expect("dir");
        std::os::unix::fs::symlink("real", dir.join("link")).expect("link");
        let me = rustix_uid();
        // The directory is not a trusted user's.
        let stranger = [me.wrapping_add(1)];
        let e = resolve(&dir.join("link/x"), &stranger, Walk::Links).expect_err("refused");
        assert!(
            e.contains("the symlink") && e.contains("may be changed by others"),
            "{e}"
        );
        // Real directories are not checked for links only, but are for everything.
        resolve(&dir.join("real/x"), &stranger, Walk::Links).expect("no link on the way");
        let e = resolve(&dir.join("real/x"), &stranger, Walk::Everything).expect_err("refused");
        assert!(e.contains("may be changed by others"), "{e}");
        resolve(&dir.join("link/x"), &[me], Walk::Links).expect("my own link");
    }

    fn rustix_uid() -> u32 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    }
}
