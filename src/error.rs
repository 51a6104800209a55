//! Errors a user can meet. Each message names what happened and what to do about it; the
//! exit code of the binary follows from the variant (see `Error::exit_code`).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The configuration file or the environment is wrong. Exit 2: retrying will not help.
    #[error("{0}")]
    Config(String),
    /// A server answered in a way that retrying did not fix (or that must not be retried).
    #[error("{0}")]
    Remote(#[from] crate::http::ApiError),
    /// The state database could not be opened, migrated, read or written.
    #[error("{0}")]
    Store(String),
    /// GitLab accepted a write but did not make it (a silently ignored field, a race).
    #[error("{0}")]
    NotApplied(String),
    /// Another process holds the single-instance lock on the state database.
    #[error("{0}")]
    Locked(String),
}

impl Error {
    /// Process exit code for this error: 2 for configuration problems the user must fix,
    /// 3 when another instance holds the lock, 1 for everything that may pass on a later run.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) => 2,
            Error::Locked(_) => 3,
            Error::Remote(e) if e.is_configuration_problem() => 2,
            Error::Remote(_) | Error::Store(_) | Error::NotApplied(_) => 1,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
