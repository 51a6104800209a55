//! Why something failed, as far as the process's behaviour is concerned: the one table from
//! a failure's cause to whether only the user can fix it and to the exit code. A leaf, so the
//! HTTP layer can classify its own errors without knowing the crate's `Error`.

/// Why something failed, as far as the process's behaviour is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The config file, the environment or the command line.
    Config,
    /// A server rejected the credentials (401).
    Credentials,
    /// The credentials lack a permission (403).
    Permission,
    /// A project, issue or API is not there (404, 410).
    NotFound,
    /// The server refused the request itself (400: a JQL mistake, a bad value).
    Rejected,
    /// The answer was not the API's (an HTML login page, malformed JSON): a wrong URL or proxy.
    UnexpectedAnswer,
    /// The server failed, timed out, could not be reached or kept rate limiting.
    Server,
    /// The server accepted a write but did not carry it out.
    NotApplied,
    /// The state database, when a later run may get past it (busy, an I/O error).
    Store,
    /// Local files and sockets, when a later run may get past it.
    Io,
    /// A local file, directory or port only the user can fix: permissions, a missing
    /// directory, a corrupt or newer state database, a port in use.
    LocalSetup,
    /// The service's scheduler.
    Scheduler,
    /// Another instance holds the lock.
    Locked,
    /// A stop was requested (SIGTERM) before the work was done; the next pass continues.
    Stopped,
}

impl Cause {
    /// The one table from cause to consequence: whether only the user can fix it (a later run
    /// will fail the same way), and the process exit code that says so.
    pub fn needs_user(self) -> bool {
        matches!(
            self,
            Cause::Config
                | Cause::LocalSetup
                | Cause::Credentials
                | Cause::Permission
                | Cause::NotFound
                | Cause::Rejected
                | Cause::UnexpectedAnswer
        )
    }

    /// 2: fix something and run again; 3: not finished and nothing wrong (another instance
    /// held the lock, or a stop was asked for); 1: a later run may get past it.
    pub fn exit_code(self) -> i32 {
        match self {
            Cause::Locked | Cause::Stopped => 3,
            c if c.needs_user() => 2,
            _ => 1,
        }
    }
}
