//! The tokens `check` tests, and where each came from. From a shell, a config that reads its
//! tokens from systemd credentials (`$CREDENTIALS_DIRECTORY/jira`) falls back to
//! `JIRA_API_TOKEN`/`GITLAB_TOKEN`; the service will use the files its units load instead. So
//! `check` says which token it tested, and tests those files as well, or says plainly that it
//! could not.

use std::path::PathBuf;

use super::units;
use super::Finding;
use crate::config::{Config, TokenSource};
use crate::http::{ApiError, Server};
use crate::secret::Secret;
use crate::stop::Stop;

/// One line per token: where it came from.
pub fn sources(cfg: &Config) -> Vec<Finding> {
    [
        (Server::Jira, &cfg.jira.token_source),
        (Server::Gitlab, &cfg.gitlab.token_source),
    ]
    .into_iter()
    .map(|(server, source)| {
        let extra = match source {
            TokenSource::Env {
                credential: Some(id),
                ..
            } => format!(
                " (the config reads $CREDENTIALS_DIRECTORY/{id}, which only the systemd units set)"
            ),
            _ => String::new(),
        };
        Finding::Note(format!("{server} token from {}{extra}", source.describe()))
    })
    .collect()
}

/// The token files the units hand to the service, for each token the config reads from a
/// systemd credential that this process does not have: tested against the server.
pub async fn service_credentials(cfg: &Config) -> Vec<Finding> {
    let dirs = units::unit_dirs(std::env::var("SYSTEMD_UNIT_PATH").ok().as_deref());
    let mut out = Vec::new();
    for (server, source, used) in [
        (Server::Jira, &cfg.jira.token_source, &cfg.jira.token),
        (Server::Gitlab, &cfg.gitlab.token_source, &cfg.gitlab.token),
    ] {
        let TokenSource::Env { var, credential } = source else {
            continue;
        };
        // The config reads no file: the units may still hand the service one, under the
        // credential name the package uses, which the config then ignores.
        let named = credential.is_some();
        let id = credential.as_deref().unwrap_or(server.label());
        let files = grouped(units::credential_files(&dirs, id));
        if !named {
            for (path, _) in &files {
                out.push(Finding::Note(format!(
                    "the installed units hand the service {} as credential {id}, which this \
                     config does not read: it takes the {server} token from ${var}, which \
                     systemd does not set; if this is the service's config, set \
                     {}.token_file = \"$CREDENTIALS_DIRECTORY/{id}\"",
                    path.display(),
                    server.label()
                )));
            }
        } else if files.is_empty() {
            out.push(Finding::Note(format!(
                "the service's {server} token was not checked: the config reads it from \
                 $CREDENTIALS_DIRECTORY/{id}, and no installed unit loads a credential {id} \
                 (looked in {})",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for (path, unit_names) in files {
            let file = CredentialFile {
                server,
                id,
                path,
                units: unit_names.join(", "),
            };
            out.push(file.check(cfg, used, var).await);
        }
    }
    out
}

/// Each file once, with the units that load it.
fn grouped(files: Vec<(String, PathBuf)>) -> Vec<(PathBuf, Vec<String>)> {
    let mut out: Vec<(PathBuf, Vec<String>)> = Vec::new();
    for (unit, path) in files {
        match out.iter_mut().find(|(p, _)| *p == path) {
            Some((_, names)) => names.push(unit),
            None => out.push((path, vec![unit])),
        }
    }
    out
}

/// A token file a unit hands to the service as a credential.
struct CredentialFile<'a> {
    server: Server,
    id: &'a str,
    path: PathBuf,
    units: String,
}

impl CredentialFile<'_> {
    fn what(&self) -> String {
        format!(
            "the {} token in {} (credential {} of {})",
            self.server,
            self.path.display(),
            self.id,
            self.units
        )
    }

    async fn check(&self, cfg: &Config, used: &Secret, var: &str) -> Finding {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) => return self.unreadable(&e),
        };
        let token = match crate::config::checked_secret(
            self.server.label(),
            "token",
            &text,
            &self.path.display().to_string(),
        ) {
            Ok(token) => token,
            Err(e) => return Finding::Problem(format!("{}: {e}", self.what())),
        };
        if token.expose() == used.expose() {
            return Finding::Ok(format!("{} is the same as ${var}", self.what()));
        }
        match verify(cfg, self.server, token).await {
            Ok(whose) => Finding::Ok(format!("{} is accepted: {whose}", self.what())),
            Err(e) if e.cause() == crate::cause::Cause::Credentials => Finding::Problem(format!(
                "{} is not the one this check used (${var}), and the service would fail with it: {e}",
                self.what()
            )),
            // The server, not the token: the lines about the server say what is wrong.
            Err(e) => Finding::Note(format!("{} could not be tested: {e}", self.what())),
        }
    }

    fn unreadable(&self, e: &std::io::Error) -> Finding {
        match e.kind() {
            std::io::ErrorKind::PermissionDenied => Finding::Note(format!(
                "{} was not checked: this user cannot read it ({e}); run check as root \
                 (sudo) to test the token the service will use",
                self.what()
            )),
            std::io::ErrorKind::NotFound => Finding::Problem(format!(
                "{} does not exist: the units would not start (exit 243); write the token \
                 there (README, \"Install\")",
                self.what()
            )),
            _ => Finding::Problem(format!("{}: cannot read it: {e}", self.what())),
        }
    }
}

/// Ask the server whose `token` it is.
async fn verify(cfg: &Config, server: Server, token: Secret) -> Result<String, ApiError> {
    let mut cfg = cfg.clone();
    match server {
        Server::Jira => cfg.jira.token = token,
        Server::Gitlab => cfg.gitlab.token = token,
    }
    let (jira, gitlab) = cfg.clients(None, &Stop::new())?;
    match server {
        Server::Jira => {
            let me = jira.myself().await?;
            Ok(format!(
                "the account {}",
                me.email
                    .or(me.display_name)
                    .unwrap_or_else(|| "(unnamed)".into())
            ))
        }
        Server::Gitlab => Ok(format!("user {}", gitlab.user().await?.username)),
    }
}
