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

/// What a server said of the token this check used (its own line says it first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Refused,
    /// The server did not get as far as the token (unreachable, wrong URL, an error).
    Untested,
}

impl Verdict {
    pub fn of<T>(result: &Result<T, ApiError>) -> Verdict {
        match result {
            Ok(_) => Verdict::Accepted,
            Err(e) if e.cause() == crate::cause::Cause::Credentials => Verdict::Refused,
            Err(_) => Verdict::Untested,
        }
    }
}

/// Each server's [`Verdict`].
#[derive(Clone, Copy, Debug)]
pub struct Verdicts {
    pub jira: Verdict,
    pub gitlab: Verdict,
}

/// The token files the units hand to the service, for each token the config reads from a
/// systemd credential that this process does not have: tested against the server (a file
/// holding the token this check used gets the verdict that token got).
pub async fn service_credentials(cfg: &Config, verdicts: Verdicts) -> Vec<Finding> {
    let dirs = units::unit_dirs(std::env::var("SYSTEMD_UNIT_PATH").ok().as_deref());
    let mut out = Vec::new();
    for (server, source, used, verdict) in [
        (
            Server::Jira,
            &cfg.jira.token_source,
            &cfg.jira.token,
            verdicts.jira,
        ),
        (
            Server::Gitlab,
            &cfg.gitlab.token_source,
            &cfg.gitlab.token,
            verdicts.gitlab,
        ),
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
            out.push(file.check(cfg, (used, verdict), var).await);
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

    /// `used`: the token this check tested, from `$var`, and what the server said of it.
    async fn check(&self, cfg: &Config, used: (&Secret, Verdict), var: &str) -> Finding {
        let (used, verdict) = used;
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
            return self.same_as(var, verdict);
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

    /// The file holds the token of `$var`: the service gets the answer that token got.
    fn same_as(&self, var: &str, verdict: Verdict) -> Finding {
        let (what, server) = (self.what(), self.server);
        match verdict {
            Verdict::Accepted => Finding::Ok(format!(
                "{what} is the same as ${var}, which {server} accepted above"
            )),
            Verdict::Refused => Finding::Problem(format!(
                "{what} is the same as ${var}, which {server} refused above: the service would \
                 fail the same way; write the right token to {}",
                self.path.display()
            )),
            Verdict::Untested => Finding::Note(format!(
                "{what} is the same as ${var}, which was not tested: {server} was not reached \
                 (the lines above say why)"
            )),
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
