//! Tokens and the webhook's secret: read from the file the config names (under systemd, from
//! `$CREDENTIALS_DIRECTORY`) or from the environment, checked as they are read, and never
//! shown in an error. Each remembers where it came from, for `check`.

use std::path::{Path, PathBuf};

use super::values::{ConfigPath, ConfigValue, Key};
use super::{trust, Context};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// Where the config and the environment say a token is: `section` (`jira`, `gitlab`,
/// `webhook`) names it in messages, `file_key` is the config key that may name a file,
/// `env_name` the variable read otherwise.
pub(super) struct TokenSpec<'a> {
    pub section: &'static str,
    pub file_key: &'static str,
    pub file: Option<&'a Path>,
    pub env_name: &'static str,
}

impl TokenSpec<'_> {
    /// "token", or "secret" for the webhook's.
    fn what(&self) -> &'static str {
        if self.section == "webhook" {
            "secret"
        } else {
            "token"
        }
    }
}

/// A token and where it came from.
pub(super) struct Token {
    pub secret: Secret,
    pub source: TokenSource,
}

impl Token {
    /// For commands that never contact a server: no token is read.
    pub fn unread() -> Token {
        Token {
            secret: Secret::new(""),
            source: TokenSource::Unread,
        }
    }

    /// Read and check the token `spec` describes.
    pub fn read(spec: &TokenSpec<'_>, ctx: &Context<'_>) -> Result<Token> {
        let (file, credential) = locate(spec, ctx)?;
        let text = match &file {
            Some(path) => read_file(spec.file_key, path)?,
            None => from_env(spec, ctx)?,
        };
        let from = match &file {
            Some(p) => format!("{} {}", spec.file_key, p.display()),
            None => spec.env_name.to_string(),
        };
        let secret = checked_secret(spec.section, spec.what(), &text, &from)?;
        let source = match file {
            Some(path) => TokenSource::File(path),
            None => TokenSource::Env {
                var: spec.env_name,
                credential,
            },
        };
        Ok(Token { secret, source })
    }
}

/// The file to read the token from, or (reading the environment instead) the systemd
/// credential the config names but this process does not have.
fn locate(spec: &TokenSpec<'_>, ctx: &Context<'_>) -> Result<(Option<PathBuf>, Option<String>)> {
    let Some(path) = spec.file else {
        return Ok((None, None));
    };
    ConfigPath::parse(Key::new(spec.file_key), path.to_path_buf())?;
    Ok(match expand_credentials_dir(path, ctx.env) {
        Credential::File(p) => (Some(ctx.base.join(p)), None),
        // `$CREDENTIALS_DIRECTORY/...` outside systemd (an operator's shell): the environment
        // variable, so one config serves the unit and the command line.
        Credential::OutsideSystemd(name) => (None, Some(name)),
    })
}

fn read_file(file_key: &str, path: &Path) -> Result<String> {
    trust::read(path, file_key)?.map_err(|e| {
        Error::Config(format!(
            "cannot read {file_key} {}: {e}; check the path (relative paths are read from the \
             config file's directory; with systemd's LoadCredential= it is \
             $CREDENTIALS_DIRECTORY/<name>) and its permissions",
            path.display()
        ))
    })
}

fn from_env(spec: &TokenSpec<'_>, ctx: &Context<'_>) -> Result<String> {
    let TokenSpec {
        section,
        file_key,
        env_name,
        ..
    } = spec;
    (ctx.env)(env_name).ok_or_else(|| {
        Error::Config(format!(
            "{env_name} is not set: export the {section} {} as {env_name}, or set {file_key} in \
             the config (with systemd, \"$CREDENTIALS_DIRECTORY/{section}\" is read from the \
             unit's LoadCredential=, and from {env_name} outside it)",
            spec.what()
        ))
    })
}

/// The token (or, for the webhook, the secret) in `text`, read from `from`: trimmed, not
/// empty, and only characters a header can carry (else the server's 401 would blame the
/// token). Errors say where it is wrong, never what it is.
pub fn checked_secret(section: &str, what: &str, text: &str, from: &str) -> Result<Secret> {
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::Config(format!(
            "the {section} {what} from {from} is empty"
        )));
    }
    // API tokens are visible ASCII; a webhook secret may be any text without control
    // characters.
    let bad = |c: char| c.is_control() || (what == "token" && !c.is_ascii_graphic());
    if let Some(at) = token.chars().position(bad) {
        return Err(Error::Config(format!(
            "the {section} {what} from {from} has a character no {what} has at position {} \
             (a control character, a space, a line break or a non-ASCII character): copy it again",
            at + 1
        )));
    }
    Ok(Secret::new(token))
}

/// Where a token was read from: `check` says it, so the admin knows which token was tested.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// The environment variable. `credential`: the config names the systemd credential
    /// `$CREDENTIALS_DIRECTORY/<credential>` instead, which is not set here (not under systemd).
    Env {
        var: &'static str,
        credential: Option<String>,
    },
    /// The file the config names (under systemd, in `$CREDENTIALS_DIRECTORY`).
    File(PathBuf),
    /// Not read: the command never contacts a server.
    Unread,
}

impl TokenSource {
    pub fn describe(&self) -> String {
        match self {
            TokenSource::Env { var, .. } => format!("${var}"),
            TokenSource::File(path) => format!("the file {}", path.display()),
            TokenSource::Unread => "nowhere (not read)".into(),
        }
    }
}

enum Credential {
    File(PathBuf),
    /// The path names `$CREDENTIALS_DIRECTORY/<name>`, which is not set: not running under
    /// systemd.
    OutsideSystemd(String),
}

/// `$CREDENTIALS_DIRECTORY/name` → the directory systemd's `LoadCredential=` filled, so one
/// config serves the service and the timer unit alike.
fn expand_credentials_dir(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Credential {
    const VAR: &str = "$CREDENTIALS_DIRECTORY";
    let text = path.to_string_lossy();
    match (text.strip_prefix(VAR), env("CREDENTIALS_DIRECTORY")) {
        (Some(rest), Some(dir)) if !dir.is_empty() => {
            Credential::File(PathBuf::from(format!("{dir}{rest}")))
        }
        (Some(rest), _) => Credential::OutsideSystemd(rest.trim_start_matches('/').to_string()),
        _ => Credential::File(path.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_checked_without_being_shown() {
        let ok = checked_secret("gitlab", "token", " glpat-x \n", "GITLAB_TOKEN").expect("ok");
        assert_eq!(ok.expose(), "glpat-x");
        let e = checked_secret("gitlab", "token", "glpat x", "GITLAB_TOKEN")
            .expect_err("a space")
            .to_string();
        assert!(e.contains("position 6") && !e.contains("glpat"), "{e}");
        assert!(checked_secret("webhook", "secret", "with space", "F").is_ok());
        let e = checked_secret("jira", "token", "  ", "F").expect_err("empty");
        assert_eq!(e.to_string(), "the jira token from F is empty");
    }

    #[test]
    fn credentials_directory_paths_expand_only_under_systemd() {
        let path = Path::new("$CREDENTIALS_DIRECTORY/jira");
        let under = |name: &str| (name == "CREDENTIALS_DIRECTORY").then(|| "/run/c".to_string());
        assert!(matches!(
            expand_credentials_dir(path, &under),
            Credential::File(p) if p == Path::new("/run/c/jira")
        ));
        assert!(matches!(
            expand_credentials_dir(path, &|_| None),
            Credential::OutsideSystemd(name) if name == "jira"
        ));
    }
}
