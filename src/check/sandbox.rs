//! What the installed service unit lets its process write: its `User=`, and the file system
//! its sandbox leaves writable (`ProtectSystem=`, `ProtectHome=`, opened again by
//! `ReadWritePaths=` and `StateDirectory=`). `check` runs from a shell, as root or as an
//! admin, with none of that: a state directory it can write may be read-only to the service.

use std::path::{Path, PathBuf};

use super::units;

/// The sandbox of the first installed unit of [`units::UNITS`] (the service's, normally).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sandbox {
    pub unit: String,
    /// `User=`, when the unit names one (else the unit runs as root).
    pub user: Option<String>,
    protect_system: String,
    protect_home: String,
    /// `ReadWritePaths=` and the `StateDirectory=` directories (under `/var/lib`).
    writable: Vec<PathBuf>,
    /// The config file its `ExecStart=` names (`--config`, `-c`), or the system-wide one.
    config: PathBuf,
}

impl Sandbox {
    /// The installed unit's, with its drop-ins applied; `None` when no unit is installed.
    pub fn installed(dirs: &[PathBuf]) -> Option<Sandbox> {
        units::UNITS.iter().find_map(|unit| {
            let texts = units::unit_texts(dirs, unit)?;
            Some(Sandbox::parse(unit, &texts))
        })
    }

    fn parse(unit: &str, texts: &[String]) -> Sandbox {
        let mut s = Sandbox {
            unit: unit.to_string(),
            config: PathBuf::from(crate::config::SYSTEM_CONFIG),
            ..Sandbox::default()
        };
        for line in texts.iter().flat_map(|t| t.lines()) {
            let Some((key, value)) = line.trim().split_once('=') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "User" => s.user = Some(value.to_string()).filter(|v| !v.is_empty()),
                "ProtectSystem" => s.protect_system = value.to_ascii_lowercase(),
                "ProtectHome" => s.protect_home = value.to_ascii_lowercase(),
                "ReadWritePaths" if value.is_empty() => s.writable.clear(),
                // `-` (ignore if missing) and `+` (outside the namespace) prefix a path.
                "ReadWritePaths" => s.writable.extend(
                    value
                        .split_whitespace()
                        .map(|p| PathBuf::from(p.trim_start_matches(['-', '+']))),
                ),
                "ExecStart" => s.config = config_of(value),
                "StateDirectory" => s.writable.extend(units::state_directory_paths(value)),
                _ => {}
            }
        }
        s
    }

    /// Whether the unit runs with the config file at `path` (else what it can write says
    /// nothing of that config's state directory).
    pub fn runs(&self, path: &Path) -> bool {
        let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        real(&self.config) == real(path)
    }

    /// Why the unit's process cannot write under `dir` whatever its permissions, if it cannot.
    pub fn read_only(&self, dir: &Path) -> Option<String> {
        if self.writable.iter().any(|w| dir.starts_with(w)) {
            return None;
        }
        let under = |roots: &[&str]| roots.iter().any(|r| dir.starts_with(r));
        let system = match self.protect_system.as_str() {
            "strict" => Some("the whole file system but /dev, /proc and /sys"),
            "full" if under(&["/usr", "/boot", "/efi", "/etc"]) => {
                Some("/usr, /boot, /efi and /etc")
            }
            "yes" | "true" | "on" | "1" if under(&["/usr", "/boot", "/efi"]) => {
                Some("/usr, /boot and /efi")
            }
            _ => None,
        };
        if let Some(what) = system {
            return Some(format!(
                "{}'s ProtectSystem={} makes {what} read-only for the service",
                self.unit, self.protect_system
            ));
        }
        let home = ["yes", "true", "on", "1", "read-only", "tmpfs"]
            .contains(&self.protect_home.as_str())
            && under(&["/home", "/root", "/run/user"]);
        home.then(|| {
            format!(
                "{}'s ProtectHome={} hides /home, /root and /run/user from the service or makes them read-only",
                self.unit, self.protect_home
            )
        })
    }

    /// What opens a directory to the service, as the unit has it.
    pub fn writable_paths(&self) -> String {
        if self.writable.is_empty() {
            return "none".into();
        }
        self.writable
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The config file a command line names, or the system-wide one it reads without a flag.
fn config_of(exec_start: &str) -> PathBuf {
    let mut words = exec_start.split_whitespace();
    while let Some(word) = words.next() {
        if let Some(path) = word.strip_prefix("--config=") {
            return PathBuf::from(path);
        }
        if word == "--config" || word == "-c" {
            if let Some(path) = words.next() {
                return PathBuf::from(path);
            }
        }
    }
    PathBuf::from(crate::config::SYSTEM_CONFIG)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(text: &str) -> Sandbox {
        Sandbox::parse("x.service", &[text.to_string()])
    }

    #[test]
    fn strict_leaves_only_the_paths_the_unit_opens() {
        let s = sandbox(
            "[Service]\nUser=svc\nProtectSystem=strict\nStateDirectory=jgr\nReadWritePaths=-/srv/jgr\n",
        );
        assert_eq!(s.user.as_deref(), Some("svc"));
        assert_eq!(s.read_only(Path::new("/var/lib/jgr")), None);
        assert_eq!(s.read_only(Path::new("/srv/jgr/sub")), None);
        let why = s.read_only(Path::new("/srv/other")).expect("read-only");
        assert!(why.contains("ProtectSystem=strict"), "{why}");
        assert_eq!(s.writable_paths(), "/var/lib/jgr, /srv/jgr");
        assert!(
            s.runs(Path::new(crate::config::SYSTEM_CONFIG)),
            "no --config"
        );
        let s = sandbox("ExecStart=/usr/bin/jira-gitlab-reconciler run --config /srv/c.toml\n");
        assert!(s.runs(Path::new("/srv/c.toml")));
        assert!(!s.runs(Path::new(crate::config::SYSTEM_CONFIG)));
        assert_eq!(config_of("x run -c /a.toml"), PathBuf::from("/a.toml"));
        assert_eq!(
            config_of("x run --config=/b.toml"),
            PathBuf::from("/b.toml")
        );
    }

    #[test]
    fn full_yes_and_protect_home_cover_their_directories_only() {
        let s = sandbox("ProtectSystem=full\nProtectHome=read-only\n");
        assert!(s.read_only(Path::new("/etc/jgr")).is_some());
        assert!(s.read_only(Path::new("/home/me/state")).is_some());
        assert_eq!(s.read_only(Path::new("/srv/jgr")), None);
        let s = sandbox("ProtectSystem=yes\nReadWritePaths=/usr/local/jgr\nReadWritePaths=\n");
        assert!(
            s.read_only(Path::new("/usr/local/jgr")).is_some(),
            "cleared"
        );
        assert_eq!(s.read_only(Path::new("/etc/jgr")), None);
        assert_eq!(sandbox("").read_only(Path::new("/usr")), None);
    }
}
