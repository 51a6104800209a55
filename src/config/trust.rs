//! Files root is asked to read (the config file, token and secret files) are read only when
//! they are trustworthy, as `ssh` treats its own: owned by root or by the user who invoked
//! root (`sudo`'s `SUDO_UID`), writable by no one else, in a directory no one else may change.
//! Whoever can change the config decides which file root reads as a token and which server
//! root sends it to. Anyone else reads as usual: the kernel's permissions already apply.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{Error, Result};

/// The file's text, or why it could not be read; a config error (exit 2, naming `what` and
/// the fix) when root must not read it (see the module documentation).
pub(super) fn read(path: &Path, what: &str) -> Result<std::io::Result<String>> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        if let Some(why) = untrusted(&file, path) {
            return Err(Error::Config(format!(
                "{what} {} is not read as root: {why}",
                path.display()
            )));
        }
    }
    let mut text = String::new();
    Ok(file.read_to_string(&mut text).map(|_| text))
}

/// The users whose files root reads: root, and the user who ran `sudo`.
fn trusted_users() -> Vec<u32> {
    let mut users = vec![0];
    users.extend(
        std::env::var("SUDO_UID")
            .ok()
            .and_then(|u| u.trim().parse::<u32>().ok()),
    );
    users
}

/// Why root must not read `file` (opened from `path`), if it must not.
fn untrusted(file: &std::fs::File, path: &Path) -> Option<String> {
    let users = trusted_users();
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
    let dir = std::fs::canonicalize(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))?;
    let dmeta = std::fs::metadata(&dir).ok()?;
    let sticky = dmeta.mode() & 0o1000 != 0;
    if !users.contains(&dmeta.uid()) || (dmeta.mode() & 0o022 != 0 && !sticky) {
        return Some(format!(
            "its directory {} may be changed by others (uid {}, mode {:o}), who could put another file in its place; move the file to a directory root owns (such as /etc/jira-gitlab-reconciler)",
            dir.display(),
            dmeta.uid(),
            dmeta.mode() & 0o7777
        ));
    }
    None
}
