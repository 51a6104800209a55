//! Files root is asked to read (the config file, token and secret files) are read only when
//! they are trustworthy, as `ssh` treats its own: owned by root or by the user who invoked
//! root (`sudo`'s `SUDO_UID`), writable by no one else, on a path no one else may change (every
//! directory on the way, and every symlink followed: `crate::path_walk`).
//! Whoever can change the config decides which file root reads as a token and which server
//! root sends it to. Anyone else reads as usual: the kernel's permissions already apply.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{Error, Result};
use crate::path_walk::{self, Walk};

/// The file's text, or why it could not be read; a config error (exit 2, naming `what` and
/// the fix) when root must not read it (see the module documentation). As root the path is
/// walked first, every directory on the way checked (a symlinked directory included, and
/// whoever could replace that link), and the file is opened where the walk led, never through
/// a symlink swapped in since.
pub(super) fn read(path: &Path, what: &str) -> Result<std::io::Result<String>> {
    let refused = |why: String| {
        Error::Config(format!(
            "{what} {} is not read as root: {why}",
            path.display()
        ))
    };
    let root = path_walk::is_root();
    let real = if root {
        path_walk::resolve(path, &path_walk::trusted_users(), Walk::Everything).map_err(|why| {
            refused(format!(
                "{why}; move the file to a directory root owns (such as \
                     /etc/jira-gitlab-reconciler)"
            ))
        })?
    } else {
        path.to_path_buf()
    };
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    if root {
        open.custom_flags(libc::O_NOFOLLOW);
    }
    let mut file = match open.open(&real) {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    if root {
        if let Some(why) = untrusted(&file, path) {
            return Err(refused(why));
        }
    }
    let mut text = String::new();
    Ok(file.read_to_string(&mut text).map(|_| text))
}

/// Why root must not read `file` (opened from `path`), if it must not: its owner and mode (the
/// directories on the way were checked by the walk).
fn untrusted(file: &std::fs::File, path: &Path) -> Option<String> {
    let users = path_walk::trusted_users();
    let shown = path.display();
    let Ok(meta) = file.metadata() else {
        return Some(format!("its owner cannot be read; check {shown}"));
    };
    if !users.contains(&meta.uid()) {
        return Some(format!(
            "it belongs to uid {}, and root reads only root's files (or those of the user who ran sudo); `chown root {shown}`, or run the command as its owner",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "others may write it (mode {:o}); `chmod go-w {shown}`",
            meta.mode() & 0o7777
        ));
    }
    None
}
