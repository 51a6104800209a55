//! The retry policy: which failures are worth another try, and how long to wait before it.
//! Every wait is bounded: a server's wait by `retry.max_wait` (a longer one fails the
//! request), a backoff by `retry.max_delay`, the tries by `retry.max_attempts`.
//!
//! - 429: wait for the server's wait (`wait.rs`), holding every request of the client. A bare
//!   429 (no wait named, not GitLab's general throttle) on a request whose caller paces itself
//!   (GitLab's issue-create limit) goes back to the caller; anything else backs off.
//! - 5xx, timeouts, connection resets: exponential backoff with jitter, for reads and
//!   idempotent writes. A create is retried only when the server surely did not act on it
//!   (429, connection refused); otherwise it is `Ambiguous`, so that a lost response never
//!   becomes a duplicate issue.
//! - Everything else (4xx) is final.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use super::error::{transport_cause, ApiErrorKind, Source, NO_TLS};
use super::wait::{server_wait, ServerWait};
use super::{answer, body, header_str, Effect, Request};
use crate::rng::Xorshift;

/// How requests are retried and timed out (built by `config` from `[retry]`).
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Tries per request, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// GitLab's issue-create 429 carries no Retry-After: wait this long instead.
    pub create_rate_limit_backoff: Duration,
    pub timeout: Duration,
    /// The longest wait a server may ask for (`Retry-After`, a rate-limit reset) or the create
    /// pacer may impose; a longer one fails the request instead of stalling the pass.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
            create_rate_limit_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
            max_wait: Duration::from_secs(300),
        }
    }
}

/// What went wrong with one try, and the error under it.
pub(super) struct Failure {
    pub kind: ApiErrorKind,
    pub source: Option<Source>,
}

impl Failure {
    pub fn new(kind: ApiErrorKind) -> Self {
        Failure { kind, source: None }
    }
}

/// What to do about a failed try.
pub(super) enum Decision {
    /// Final: the request fails with it.
    Fail(Failure),
    /// Worth another try, after the server's wait (if it named one) or a backoff.
    Retry {
        failure: Failure,
        wait: Option<ServerWait>,
    },
}

/// An answer the server gave, read within the bounds of `body`.
pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: body::Capped,
}

/// A non-2xx answer: final, retried, or (a bare 429 for a caller that paces itself) returned.
pub(super) fn judge_status(req: &Request<'_>, answer: &Answer) -> Decision {
    let (status, headers) = (answer.status, &answer.headers);
    let message = status_message(answer);
    let wait = server_wait(headers, chrono::Utc::now());
    if status == StatusCode::TOO_MANY_REQUESTS {
        // A 429 means the server refused the request: repeating it, even a create, is
        // safe. Only a bare one is a lesson for a caller that paces itself; a named wait
        // or GitLab's general throttle (`RateLimit-Name`) is a hold, kept here.
        let throttle = header_str(headers, "ratelimit-name").is_some();
        if req.caller_paces && wait.is_none() && !throttle {
            return Decision::Fail(Failure::new(ApiErrorKind::Paced { message }));
        }
    }
    let failure = Failure::new(ApiErrorKind::Status {
        status: status.as_u16(),
        message,
    });
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Decision::Retry { failure, wait };
    }
    if status.is_server_error() {
        if req.effect == Effect::Create {
            return Decision::Fail(Failure::new(ApiErrorKind::Ambiguous {
                cause: format!("HTTP {}", status.as_u16()),
            }));
        }
        return Decision::Retry { failure, wait };
    }
    Decision::Fail(failure)
}

/// The server's words for an error answer, with what it left unsaid or said in headers.
fn status_message(answer: &Answer) -> String {
    let mut message = answer::error_message(&answer.body.bytes);
    if answer.body.cut {
        message.push_str(&format!(
            " (the answer went on past {} KiB, unread)",
            body::MAX_ERROR_BODY >> 10
        ));
    }
    if let Some(reason) = header_str(&answer.headers, "ratelimit-reason") {
        // Jira Cloud says which of its limits refused (`jira-burst-based`, ...).
        message.push_str(&format!(
            " (RateLimit-Reason: {})",
            crate::safe_text::safe_within(reason, 128)
        ));
    }
    message
}

/// An answer dropped unread because the answers in flight together held all the memory they
/// may (`body::MAX_IN_FLIGHT`): tried again after a backoff, when they are done; a create's
/// answer says what was created, so without it the create is `Ambiguous`.
pub(super) fn judge_crowded(req: &Request<'_>, answer: &Answer) -> Decision {
    let cause = format!(
        "HTTP {} with an answer dropped unread: the answers in flight together already held \
         {} MiB, the most this tool holds at once",
        answer.status.as_u16(),
        body::MAX_IN_FLIGHT >> 20
    );
    if req.effect == Effect::Create && !answer.status.is_client_error() {
        return Decision::Fail(Failure::new(ApiErrorKind::Ambiguous { cause }));
    }
    Decision::Retry {
        failure: Failure::new(ApiErrorKind::OutOfBounds { cause }),
        wait: None,
    }
}

/// A try that got no answer: retried, unless the server will answer every retry the same way
/// or a create may have reached it.
pub(super) fn judge_transport(req: &Request<'_>, e: reqwest::Error) -> Decision {
    let cause = transport_cause(&e);
    // A connect error means nothing was sent; anything later may have reached the server.
    let ambiguous = req.effect == Effect::Create && !e.is_connect();
    let failure = |kind| Failure {
        kind,
        source: Some(Box::new(e)),
    };
    if cause.starts_with(NO_TLS) {
        return Decision::Fail(failure(ApiErrorKind::Transport { cause }));
    }
    if ambiguous {
        return Decision::Fail(failure(ApiErrorKind::Ambiguous { cause }));
    }
    Decision::Retry {
        failure: failure(ApiErrorKind::Transport { cause }),
        wait: None,
    }
}

/// Exponential backoff with "equal jitter": half the step fixed, half random, so many clients
/// that failed together do not retry together.
pub(super) fn backoff(policy: &RetryPolicy, attempt: u32, rng: &mut Xorshift) -> Duration {
    let step = policy
        .base_delay
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(policy.max_delay);
    let half = step / 2;
    half + Duration::from_millis(rng.below(half.as_millis() as u64 + 1))
}

/// `RateLimit-Remaining: 0` (GitLab) or `X-RateLimit-Remaining: 0` (Jira) on a successful
/// answer: the next request would be refused until the reset the same answer names. `None`
/// while budget remains, no reset is given, or the reset is further than `max_wait` (the next
/// request then finds out).
pub(super) fn exhausted_budget(headers: &HeaderMap, max_wait: Duration) -> Option<Duration> {
    let remaining = ["ratelimit-remaining", "x-ratelimit-remaining"]
        .iter()
        .find_map(|n| header_str(headers, n))?;
    if remaining.parse::<i64>().ok()? > 0 {
        return None;
    }
    server_wait(headers, chrono::Utc::now())
        .map(|w| w.wait)
        .filter(|w| *w <= max_wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        let mut rng = Xorshift::new(7);
        for attempt in 1..10 {
            let d = backoff(&policy, attempt, &mut rng);
            let step = Duration::from_millis(100 * (1 << (attempt - 1))).min(policy.max_delay);
            assert!(d >= step / 2 && d <= step, "attempt {attempt}: {d:?}");
        }
    }
}
