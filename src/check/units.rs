//! Where the installed systemd units read the credentials they hand to the service
//! (`LoadCredential=ID:PATH`), so `check`, run from a shell where `$CREDENTIALS_DIRECTORY` is
//! not set, can test the token files the service will use and not only the shell's tokens.
//! Units are looked up as systemd does: `$SYSTEMD_UNIT_PATH` (a trailing `:` adds the default
//! directories) or the default directories, the first file of a name wins, and drop-ins
//! (`<unit>.d/*.conf`) from every directory are applied after it, in name order.

use std::path::{Path, PathBuf};

/// The units of the package that run passes, and so read the tokens.
pub const UNITS: [&str; 3] = [
    "jira-gitlab-reconciler.service",
    "jira-gitlab-reconciler-oneshot.service",
    "jira-gitlab-reconciler-full.service",
];

const DEFAULT_DIRS: [&str; 5] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// The directories units are read from, highest priority first.
pub fn unit_dirs(unit_path: Option<&str>) -> Vec<PathBuf> {
    let defaults = || DEFAULT_DIRS.iter().map(PathBuf::from);
    match unit_path.filter(|p| !p.is_empty()) {
        None => defaults().collect(),
        Some(path) => {
            let mut dirs: Vec<PathBuf> = path
                .split(':')
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .collect();
            if path.ends_with(':') {
                dirs.extend(defaults());
            }
            dirs
        }
    }
}

/// The host files the units load as credential `id`: (unit, path) for each unit that names
/// one. Empty when no unit is installed or none loads it.
pub fn credential_files(dirs: &[PathBuf], id: &str) -> Vec<(String, PathBuf)> {
    UNITS
        .iter()
        .filter_map(|unit| {
            let texts = unit_texts(dirs, unit)?;
            let path = load_credential(&texts, id)?;
            Some((unit.to_string(), path))
        })
        .collect()
}

/// The state directories the installed units have systemd create (`StateDirectory=NAME` is
/// `/var/lib/NAME`, made for the unit's user when it starts).
pub fn state_directories(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = UNITS
        .iter()
        .filter_map(|unit| unit_texts(dirs, unit))
        .flat_map(|texts| {
            texts
                .iter()
                .flat_map(|t| t.lines())
                .filter_map(|l| l.trim().strip_prefix("StateDirectory="))
                .flat_map(state_directory_paths)
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The directories a `StateDirectory=` value names: `NAME` is `/var/lib/NAME` (a `:ALIAS`
/// suffix, for a symlink systemd adds, is left off).
pub(super) fn state_directory_paths(value: &str) -> impl Iterator<Item = PathBuf> + '_ {
    value
        .split_whitespace()
        .map(|name| Path::new("/var/lib").join(name.split(':').next().unwrap_or(name)))
}

/// The unit file and its drop-ins, in the order systemd applies them; `None` when the unit is
/// not installed.
pub(super) fn unit_texts(dirs: &[PathBuf], unit: &str) -> Option<Vec<String>> {
    let main = dirs.iter().map(|d| d.join(unit)).find(|p| p.is_file())?;
    let mut texts = vec![std::fs::read_to_string(main).ok()?];
    let mut dropins: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d.join(format!("{unit}.d"))).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    // systemd orders drop-ins by file name across directories (a name in a higher-priority
    // directory masks the same name below; not needed to find a credential's path).
    dropins.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    texts.extend(
        dropins
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok()),
    );
    Some(texts)
}

/// The path of the last `LoadCredential=id:PATH` in `texts` (an empty `LoadCredential=`
/// clears the earlier ones).
fn load_credential(texts: &[String], id: &str) -> Option<PathBuf> {
    let mut found = None;
    for line in texts.iter().flat_map(|t| t.lines()) {
        let Some(value) = line.trim().strip_prefix("LoadCredential=") else {
            continue;
        };
        match value.trim().split_once(':') {
            Some((name, path)) if name == id => found = Some(PathBuf::from(path.trim())),
            None if value.trim().is_empty() => found = None,
            _ => {}
        }
    }
    found.filter(|p| Path::new(p).is_absolute())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_credential_a_unit_loads_with_drop_ins_applied() {
        let dir = std::env::temp_dir().join(format!("jgr-units-{}", std::process::id()));
        let (etc, lib) = (dir.join("etc"), dir.join("lib"));
        std::fs::create_dir_all(etc.join(format!("{}.d", UNITS[0]))).expect("dirs");
        std::fs::create_dir_all(&lib).expect("dirs");
        std::fs::write(
            lib.join(UNITS[0]),
            "[Service]\nLoadCredential=jira:/etc/jgr/jira.token\nLoadCredential=gitlab:/etc/jgr/gitlab.token\n",
        )
        .expect("unit");
        std::fs::write(
            lib.join(UNITS[1]),
            "[Service]\nLoadCredential=jira:/etc/jgr/jira.token\n",
        )
        .expect("unit");
        std::fs::write(
            etc.join(format!("{}.d/override.conf", UNITS[0])),
            "[Service]\nLoadCredential=\nLoadCredential=jira:/srv/secrets/jira\n",
        )
        .expect("drop-in");
        let dirs = vec![etc.clone(), lib.clone()];
        assert_eq!(
            credential_files(&dirs, "jira"),
            vec![
                (UNITS[0].to_string(), PathBuf::from("/srv/secrets/jira")),
                (UNITS[1].to_string(), PathBuf::from("/etc/jgr/jira.token")),
            ]
        );
        assert!(
            credential_files(&dirs, "gitlab").is_empty(),
            "the drop-in's empty LoadCredential= cleared it"
        );
        assert!(credential_files(&[dir.join("none")], "jira").is_empty());
        assert!(state_directories(&dirs).is_empty());
        std::fs::write(
            lib.join(UNITS[2]),
            "[Service]\nStateDirectory=jira-gitlab-reconciler\n",
        )
        .expect("unit");
        assert_eq!(
            state_directories(&dirs),
            vec![PathBuf::from("/var/lib/jira-gitlab-reconciler")]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn systemd_unit_path_replaces_or_extends_the_defaults() {
        assert_eq!(unit_dirs(None).len(), DEFAULT_DIRS.len());
        assert_eq!(
            unit_dirs(Some("/a:/b")),
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        let extended = unit_dirs(Some("/a:"));
        assert_eq!(extended[0], PathBuf::from("/a"));
        assert_eq!(extended.len(), 1 + DEFAULT_DIRS.len());
    }
}
