//! A request that failed for good: which server, which request, what went wrong, and the fix
//! where one is known. The friendly text is what users read; the error underneath (reqwest's,
//! for a transport failure; serde's, for an answer that is not the JSON expected) is kept as
//! [`std::error::Error::source`] for code that needs more than words.

use crate::cause::Cause;

use super::Server;

/// The error under an [`ApiError`], if it has one.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug)]
pub enum ApiErrorKind {
    /// The server answered with a final error status.
    Status { status: u16, message: String },
    /// A bare 429 (no wait named, not a general throttle) for a caller that paces itself:
    /// GitLab's issue-create limit.
    Paced { message: String },
    /// A create may or may not have happened (5xx, timeout, reset after sending).
    Ambiguous { cause: String },
    /// The server could not be reached, or kept failing, until the retries ran out.
    Transport { cause: String },
    /// The body was not the JSON expected (an HTML login page, a truncated body...).
    Decode { status: u16, cause: String },
    /// A stop was requested while the request waited; it was not sent.
    Stopped,
    /// The server's answer broke a bound this tool keeps (a body over 64 MiB, a wait over
    /// `retry.max_wait`, a page chain that loops or never ends): final, reported as such.
    OutOfBounds { cause: String },
}

/// A request that failed for good. Its message names the server, the request, what went wrong
/// and, where one is known, the fix.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.text())]
pub struct ApiError {
    pub server: Server,
    pub what: String,
    pub kind: ApiErrorKind,
    pub hint: Option<String>,
    /// The error the kind's words describe: the transport's, or the decoder's.
    #[source]
    pub source: Option<Source>,
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            ApiErrorKind::Status { status, .. } => Some(*status),
            ApiErrorKind::Paced { .. } => Some(429),
            _ => None,
        }
    }

    pub fn is_ambiguous(&self) -> bool {
        matches!(self.kind, ApiErrorKind::Ambiguous { .. })
    }

    /// GitLab refused the token, a permission or the project (401, 403, 404).
    pub fn is_gitlab_refusal(&self) -> bool {
        self.server == Server::Gitlab
            && matches!(
                self.cause(),
                Cause::Credentials | Cause::Permission | Cause::NotFound
            )
    }

    /// What the failure means for the process (see [`Cause`]): credentials, permissions, a
    /// wrong URL or project, a JQL mistake and a proxy page instead of the API need the user;
    /// server failures may pass on a later run.
    pub fn cause(&self) -> Cause {
        match &self.kind {
            ApiErrorKind::Status { status, .. } => match status {
                401 => Cause::Credentials,
                403 => Cause::Permission,
                404 | 410 => Cause::NotFound,
                400 => Cause::Rejected,
                _ => Cause::Server,
            },
            ApiErrorKind::Decode { .. } => Cause::UnexpectedAnswer,
            ApiErrorKind::Paced { .. }
            | ApiErrorKind::Ambiguous { .. }
            | ApiErrorKind::Transport { .. }
            | ApiErrorKind::OutOfBounds { .. } => Cause::Server,
            ApiErrorKind::Stopped => Cause::Stopped,
        }
    }

    /// An `https://` URL named a port that answers in plain HTTP.
    pub fn is_plain_http_port(&self) -> bool {
        matches!(&self.kind, ApiErrorKind::Transport { cause } if cause.starts_with(NO_TLS))
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// "GitLab GET /projects/1: HTTP 403: ...; the fix".
    fn text(&self) -> String {
        let mut out = format!("{} {}: ", self.server, self.what);
        match &self.kind {
            ApiErrorKind::Ambiguous { cause } => out.push_str(&format!(
                "no reliable answer ({cause}); the write may have happened, so it is not repeated blindly"
            )),
            ApiErrorKind::Decode { status, cause } => {
                out.push_str(&format!("HTTP {status} with {cause}"))
            }
            ApiErrorKind::Stopped => out.push_str("not sent: the service is stopping"),
            other => out.push_str(&describe(other)),
        }
        if let Some(hint) = &self.hint {
            out.push_str("; ");
            out.push_str(hint);
        }
        out
    }
}

/// A request's failure in a few words, for the log line of a retry.
pub(super) fn describe(kind: &ApiErrorKind) -> String {
    match kind {
        ApiErrorKind::Status { status, message } => format!("HTTP {status}: {message}"),
        ApiErrorKind::Paced { message } => format!("HTTP 429: {message}"),
        ApiErrorKind::Ambiguous { cause }
        | ApiErrorKind::Transport { cause }
        | ApiErrorKind::Decode { cause, .. }
        | ApiErrorKind::OutOfBounds { cause } => cause.clone(),
        ApiErrorKind::Stopped => "stopped".into(),
    }
}

/// How a transport failure starts when an `https://` URL names a port that speaks plain HTTP.
pub(super) const NO_TLS: &str = "this port does not speak TLS";

/// Whether the TLS handshake got a plain-HTTP answer: rustls reads the first bytes of
/// `HTTP/1.1 400` as a record of no TLS content type. Matched on its message, as reqwest does
/// not expose the TLS error's type.
fn plain_http_answer(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.to_string().contains("InvalidContentType") {
            return true;
        }
        source = s.source();
    }
    false
}

/// A transport failure in words: what happened, then the useful part of the chain under it
/// ("connection refused", "operation timed out"), made safe.
pub(super) fn transport_cause(e: &reqwest::Error) -> String {
    if plain_http_answer(e) {
        return format!("{NO_TLS}: the server answered the TLS handshake in plain HTTP");
    }
    // reqwest's Display includes the URL (never a token: those travel in headers); the source
    // chain holds the useful part.
    let mut cause = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "connection failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause.push_str(": ");
        cause.push_str(&s.to_string());
        source = s.source();
    }
    crate::safe_text::safe(&cause)
}

/// The metrics' `status` label of a transport failure.
pub(super) fn transport_label(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    }
}

/// The fix for a failure, where one is known.
pub(super) fn default_hint(server: Server, kind: &ApiErrorKind) -> Option<String> {
    let status = match kind {
        ApiErrorKind::Status { status, .. } => *status,
        ApiErrorKind::Paced { .. } => 429,
        ApiErrorKind::Decode { .. } => {
            return Some(format!(
                "check {}.url: it must point at the {server} server itself, not at a login page",
                server.label()
            ))
        }
        ApiErrorKind::Transport { cause } if cause.starts_with(NO_TLS) => {
            return Some(format!(
                "{}.url starts with https:// but names a plain-HTTP port: write http://, or give \
                 the server's HTTPS port",
                server.label()
            ))
        }
        ApiErrorKind::Transport { .. } => {
            return Some(format!(
                "check {}.url and that this machine can reach it",
                server.label()
            ))
        }
        ApiErrorKind::Ambiguous { .. }
        | ApiErrorKind::Stopped
        | ApiErrorKind::OutOfBounds { .. } => return None,
    };
    status_hint(server, status).map(str::to_string)
}

fn status_hint(server: Server, status: u16) -> Option<&'static str> {
    Some(match (server, status) {
        (Server::Jira, 401) => "Jira rejected the credentials: check JIRA_API_TOKEN (or jira.token_file) and jira.email; Data Center needs deployment = \"datacenter\" and a personal access token",
        (Server::Gitlab, 401) => "GitLab rejected the token: check GITLAB_TOKEN (or gitlab.token_file); project and group access tokens expire (30 days by default)",
        (Server::Jira, 403) => "the Jira account lacks a permission: it needs Browse Projects on every mapped project",
        (Server::Gitlab, 403) => "the GitLab token lacks a permission: it needs scope `api`, at least Reporter (or Planner) to close and reopen issues",
        (Server::Jira, 410) => "this Jira no longer serves that API; check jira.deployment (Cloud uses /rest/api/3/search/jql)",
        (_, 429) => "rate limited even after waiting; the next pass continues where this one stopped",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_server_request_failure_and_fix() {
        let e = ApiError {
            server: Server::Gitlab,
            what: "POST /projects/1/issues".into(),
            kind: ApiErrorKind::Ambiguous {
                cause: "HTTP 502".into(),
            },
            hint: Some("look it up".into()),
            source: None,
        };
        assert_eq!(
            e.to_string(),
            "GitLab POST /projects/1/issues: no reliable answer (HTTP 502); the write may have \
             happened, so it is not repeated blindly; look it up"
        );
        let e = ApiError {
            server: Server::Jira,
            what: "GET /x".into(),
            kind: ApiErrorKind::Decode {
                status: 200,
                cause: "an HTML page".into(),
            },
            hint: None,
            source: Some("the decoder's own words".into()),
        };
        assert_eq!(e.to_string(), "Jira GET /x: HTTP 200 with an HTML page");
        let source = std::error::Error::source(&e).map(|s| s.to_string());
        assert_eq!(source.as_deref(), Some("the decoder's own words"));
    }
}
