//! Errors a user can meet. Each variant says what went wrong (its cause), keeps the error
//! underneath it as `source`, and has a message that names the fix. What the process does about
//! an error (its exit code, whether it needs the user) follows from one table: [`Cause`].

use std::path::PathBuf;

use rusqlite::ErrorCode;
use thiserror::Error;

pub use crate::cause::Cause;
use crate::http::ApiError;

#[derive(Debug, Error)]
pub enum Error {
    /// The configuration file, a token or the command line is wrong.
    #[error("{0}")]
    Config(String),
    /// A request to Jira or GitLab failed for good (its own `cause` says why).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The state database could not be opened, migrated, read or written.
    #[error("state database {}: {problem}", path.display())]
    Store {
        path: PathBuf,
        /// What happened and what to do, in words.
        problem: String,
        #[source]
        source: Option<rusqlite::Error>,
    },
    /// A file or socket operation of this process failed (lock file, metrics listener...).
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The cron scheduler of the service failed.
    #[error("the schedule could not be run: {0}")]
    Scheduler(String),
    /// Another process holds the single-instance lock on the state database.
    #[error("{0}")]
    Locked(String),
    /// GitLab accepted a write but did not make it, and may make it next time (a race with
    /// someone editing the same issue, or a role that changed in between).
    #[error("{0}")]
    NotApplied(String),
    /// GitLab accepted a write but silently ignored a field the token's role may not set
    /// (labels, an incident type, another author's description): only the user can fix that.
    #[error("{0}")]
    RoleTooLow(String),
}

impl Error {
    pub fn cause(&self) -> Cause {
        match self {
            Error::Config(_) => Cause::Config,
            Error::Api(e) => e.cause(),
            // No SQLite error: this program's own finding (a newer schema, no database yet).
            Error::Store { source: None, .. } => Cause::LocalSetup,
            Error::Store {
                source: Some(e), ..
            } => match e.sqlite_error_code() {
                Some(
                    ErrorCode::NotADatabase
                    | ErrorCode::DatabaseCorrupt
                    | ErrorCode::ReadOnly
                    | ErrorCode::PermissionDenied
                    | ErrorCode::CannotOpen,
                ) => Cause::LocalSetup,
                // Busy, I/O, a full disk (often freed by someone else): exit 1 retries.
                _ => Cause::Store,
            },
            Error::Io { source, .. } => {
                use std::io::ErrorKind::*;
                match source.kind() {
                    // A symlink where a file of ours must be (opened without following).
                    _ if source.raw_os_error() == Some(libc::ELOOP) => Cause::LocalSetup,
                    PermissionDenied | NotFound | IsADirectory | NotADirectory | AddrInUse
                    | AddrNotAvailable | ReadOnlyFilesystem | InvalidInput => Cause::LocalSetup,
                    _ => Cause::Io,
                }
            }
            Error::Scheduler(_) => Cause::Scheduler,
            Error::Locked(_) => Cause::Locked,
            Error::NotApplied(_) => Cause::NotApplied,
            Error::RoleTooLow(_) => Cause::Permission,
        }
    }

    pub fn exit_code(&self) -> i32 {
        self.cause().exit_code()
    }

    pub fn needs_user(&self) -> bool {
        self.cause().needs_user()
    }

    /// GitLab refused the token, a permission or the project (401, 403, 404), or accepted a
    /// write it did not make (a role too low for it): what was known about the project (its
    /// id, the token's role) may no longer hold.
    pub fn is_gitlab_refusal(&self) -> bool {
        match self {
            Error::Api(e) => e.is_gitlab_refusal(),
            Error::NotApplied(_) | Error::RoleTooLow(_) => true,
            _ => false,
        }
    }

    pub fn store(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::Store {
            path: path.into(),
            problem: problem.into(),
            source: None,
        }
    }

    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// The message with every source it wraps, on one line: what users and logs see. An API
    /// error's message already says its cause in friendly words (reqwest's own text would
    /// repeat it, with the URL): its source is kept for code, not printed again.
    pub fn report(&self) -> String {
        match self {
            Error::Api(e) => e.to_string(),
            other => report(other),
        }
    }
}

/// `error: cause: cause of the cause`, skipping a source whose text the message already holds.
pub fn report(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_cause_table() {
        assert_eq!(Error::Config("x".into()).exit_code(), 2);
        assert_eq!(Error::Locked("x".into()).exit_code(), 3);
        assert_eq!(Error::NotApplied("x".into()).exit_code(), 1);
        assert_eq!(Error::RoleTooLow("x".into()).exit_code(), 2);
        assert!(Error::RoleTooLow("x".into()).is_gitlab_refusal());
        assert_eq!(Error::store("/x", "no database yet").exit_code(), 2);
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        let busy = Error::Store {
            path: "/x".into(),
            problem: "busy".into(),
            source: Some(busy),
        };
        assert_eq!(
            busy.exit_code(),
            1,
            "a later run may get past a busy database"
        );
        let corrupt = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOTADB),
            None,
        );
        let corrupt = Error::Store {
            path: "/x".into(),
            problem: "not a database".into(),
            source: Some(corrupt),
        };
        assert_eq!(corrupt.exit_code(), 2, "only the user can move it aside");
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(Error::io("cannot write", denied).exit_code(), 2);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(Error::io("socket", reset).exit_code(), 1);
        assert!(Error::Config("x".into()).needs_user());
        assert!(!Error::Scheduler("x".into()).needs_user());
    }

    #[test]
    fn report_keeps_the_source() {
        let e = Error::io(
            "cannot open the lock file /x.lock",
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied"),
        );
        assert_eq!(
            e.report(),
            "cannot open the lock file /x.lock: permission denied"
        );
        assert!(std::error::Error::source(&e).is_some());
    }

    /// An API error's report is its friendly text: the source under it (reqwest's error, which
    /// names the URL) is kept for code, not printed a second time.
    #[test]
    fn an_api_error_reports_its_friendly_text_and_keeps_its_source() {
        let e = Error::Api(ApiError {
            server: crate::http::Server::Jira,
            what: "GET /x".into(),
            kind: crate::http::ApiErrorKind::Transport {
                cause: "cannot connect: connection refused".into(),
            },
            hint: None,
            source: Some("error sending request for url (http://127.0.0.1:1/x)".into()),
        });
        assert_eq!(
            e.report(),
            "Jira GET /x: cannot connect: connection refused"
        );
        assert!(std::error::Error::source(&e).is_some());
    }
}
