//! Which config file a command uses (`--config`, `$JGR_CONFIG`, `./config.toml`, the system's),
//! and loading it: whole, without tokens, or (for the commands that only read the state
//! database) only as much as they need.

use std::path::{Path, PathBuf};

use super::{file, mapping, sections, Config, Mapping, CONFIG_ENV, SYSTEM_CONFIG};
use crate::error::{Error, Result};

/// How the config file in use was chosen (`check` and `status` say it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// `--config PATH`.
    Flag,
    /// `$JGR_CONFIG`.
    Env,
    /// `./config.toml` in the working directory.
    WorkingDir,
    /// The system-wide file, [`SYSTEM_CONFIG`].
    System,
}

impl ConfigSource {
    pub fn describe(self) -> &'static str {
        match self {
            ConfigSource::Flag => "from --config",
            ConfigSource::Env => "from $JGR_CONFIG",
            ConfigSource::WorkingDir => "./config.toml in the working directory",
            ConfigSource::System => "the system-wide config",
        }
    }
}

/// The config file a command uses: an absolute path, so messages and a reload do not depend
/// on the working directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub source: ConfigSource,
}

/// What the commands that only read the state database (`status`, `report`) need of the
/// config: where the database is, and the mappings' names.
#[derive(Clone, Debug)]
pub struct StateConfig {
    pub state_path: PathBuf,
    pub mappings: Vec<Mapping>,
}

impl ConfigFile {
    /// Find the config file: `--config`, then `$JGR_CONFIG`, then `./config.toml`, then
    /// [`SYSTEM_CONFIG`]. A file named explicitly (flag or variable) must exist; it is never
    /// silently replaced by another one.
    pub fn locate(flag: Option<&Path>) -> Result<ConfigFile> {
        let cwd = std::env::current_dir()
            .map_err(|e| Error::io("cannot read the working directory", e))?;
        locate_in(
            flag,
            std::env::var_os(CONFIG_ENV).map(PathBuf::from),
            &cwd,
            Path::new(SYSTEM_CONFIG),
        )
    }

    /// "PATH (from --config)", for `check` and `status`.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.path.display(), self.source.describe())
    }

    /// Load it: with tokens for commands that talk to the servers, without for `status`.
    pub fn load(&self, tokens: bool) -> Result<Config> {
        self.must_exist()?;
        if tokens {
            Config::load(&self.path)
        } else {
            Config::load_without_tokens(&self.path)
        }
    }

    /// For `status` and `report`, which read only the state database: the state and the
    /// mappings, and the whole config (without tokens) or what is wrong with it. A mistake in
    /// a part they do not use (a schedule, a URL, a retry setting) must not hide the state
    /// from the admin trying to see what the service did; it is returned for a warning.
    pub fn load_state(&self) -> Result<(StateConfig, Result<Config>)> {
        self.must_exist()?;
        let wrong = match Config::load_without_tokens(&self.path) {
            Ok(cfg) => return Ok((cfg.state_config(), Ok(cfg))),
            Err(e) => e,
        };
        let text = file::read(&self.path)?;
        match state_only(&text, &self.path, &|name| std::env::var(name).ok()) {
            Ok(state) => Ok((state, Err(wrong))),
            // The state or the mappings are wrong too: the whole config's error says it.
            Err(_) => Err(wrong),
        }
    }

    pub(super) fn must_exist(&self) -> Result<()> {
        if self.path.exists() {
            return Ok(());
        }
        let fix = match self.source {
            ConfigSource::Flag => "check the path given to --config",
            ConfigSource::Env => {
                "check $JGR_CONFIG, or unset it to use ./config.toml or the system-wide config"
            }
            _ => {
                "create it (config.toml in the source is a commented example) or pass --config PATH"
            }
        };
        Err(Error::Config(format!(
            "config file {} ({}) does not exist; {fix}",
            self.path.display(),
            self.source.describe()
        )))
    }
}

/// Only `[state]` and `[[mapping]]` of the config `text`, each validated as usual.
fn state_only(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<StateConfig> {
    let parts = file::parse_state_parts(text, path)?;
    Ok(StateConfig {
        state_path: sections::state_path(parts.state, env, super::base_dir(path))?,
        mappings: mapping::read_mappings(parts.mapping)?,
    })
}

/// `/srv/./jgr/config.toml` → `/srv/jgr/config.toml`, so messages show the path users expect.
fn without_dots(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

fn locate_in(
    flag: Option<&Path>,
    env: Option<PathBuf>,
    cwd: &Path,
    system: &Path,
) -> Result<ConfigFile> {
    let explicit = match (flag, env) {
        (Some(p), _) => Some((p.to_path_buf(), ConfigSource::Flag)),
        (None, Some(p)) if !p.as_os_str().is_empty() => Some((p, ConfigSource::Env)),
        _ => None,
    };
    if let Some((path, source)) = explicit {
        // If it is missing, `load` says so, naming the path and where it came from.
        return Ok(ConfigFile {
            path: without_dots(&cwd.join(path)),
            source,
        });
    }
    let local = cwd.join("config.toml");
    for (path, source) in [
        (local.clone(), ConfigSource::WorkingDir),
        (system.to_path_buf(), ConfigSource::System),
    ] {
        if path.exists() {
            return Ok(ConfigFile { path, source });
        }
    }
    Err(Error::Config(format!(
        "no config file: looked for {} and {}; pass --config PATH or set {CONFIG_ENV}, or \
         create one from the commented example (config.toml in the source, installed by the \
         Debian package as {SYSTEM_CONFIG})",
        local.display(),
        system.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lookup_order() {
        let dir = crate::test_dir("locate");
        let cwd = dir.join("work");
        std::fs::create_dir_all(&cwd).expect("dir");
        let system = dir.join("etc-config.toml");
        let locate = |flag: Option<&str>, env: Option<&str>| {
            locate_in(flag.map(Path::new), env.map(PathBuf::from), &cwd, &system)
        };
        // Nothing anywhere: the error lists where it looked and the ways to name a file.
        let e = locate(None, None).expect_err("nothing found").to_string();
        assert!(
            e.contains(&cwd.join("config.toml").display().to_string()),
            "{e}"
        );
        assert!(e.contains("--config") && e.contains(CONFIG_ENV), "{e}");

        std::fs::write(&system, "").expect("write");
        let found = locate(None, None).expect("system config");
        assert_eq!(
            (found.path.as_path(), found.source),
            (system.as_path(), ConfigSource::System)
        );
        std::fs::write(cwd.join("config.toml"), "").expect("write");
        let found = locate(None, None).expect("local config");
        assert_eq!(found.path, cwd.join("config.toml"));
        assert_eq!(found.source, ConfigSource::WorkingDir);
        // An empty variable counts as unset; a set one wins over the files, the flag over it.
        assert_eq!(
            locate(None, Some("")).expect("ok").source,
            ConfigSource::WorkingDir
        );
        let found = locate(None, Some("/srv/jgr.toml")).expect("env");
        assert_eq!(
            (found.path, found.source),
            (PathBuf::from("/srv/jgr.toml"), ConfigSource::Env)
        );
        let found = locate(Some("./sub/c.toml"), Some("/srv/jgr.toml")).expect("flag");
        assert_eq!(
            found.path,
            cwd.join("sub/c.toml"),
            "relative to the working directory, no ./"
        );
        assert_eq!(found.source, ConfigSource::Flag);
        // Named explicitly but missing: an error naming it, never a fall back to another file.
        let e = found.load(false).expect_err("missing").to_string();
        assert!(
            e.contains("sub/c.toml (from --config) does not exist"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
