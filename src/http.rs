//! The one HTTP layer both clients use: authentication, timeouts, the retry policy, error
//! classification and request metrics. It knows nothing about issues.
//!
//! Retry policy (the README repeats it for users):
//! - 429: wait for `Retry-After` (seconds or an HTTP date) or the rate-limit reset
//!   (`RateLimit-Reset`, `X-RateLimit-Reset`), holding every request of the client; a wait
//!   longer than `retry.max_wait` fails the request. A bare 429 (no wait, not GitLab's general
//!   throttle) on a request whose caller paces itself (GitLab's issue-create limit) goes back
//!   to the caller; anything else backs off.
//! - 5xx, timeouts, connection resets: exponential backoff with jitter, capped, for reads and
//!   idempotent writes. A create (POST) is retried only when the server surely did not act on
//!   it (429, connection refused); otherwise the error is `Ambiguous` and the caller must look
//!   the issue up before trying again, or a lost response would become a duplicate issue.
//! - Everything else (4xx) is final and reported with a hint at the fix.
//! - Answers are read as they stream in, at most 64 MiB (an error's first 64 KiB): a server
//!   cannot make a pass big. Server text in errors is made safe (`safe_text`).

mod body;
mod wait;

pub use wait::{server_wait, ServerWait};

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::cause::Cause;
use crate::metrics::Metrics;
use crate::rng::Xorshift;
use crate::secret::Secret;
use crate::stop::Stop;

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

/// How a client behaves towards its server, beyond retries.
#[derive(Clone)]
pub struct ClientOptions {
    pub retry: RetryPolicy,
    /// Requests in flight at once, for all callers of one client together.
    pub concurrency: usize,
    /// Ends every wait (backoff, `Retry-After`, a free slot) when a stop is requested.
    pub stop: Stop,
    pub metrics: Option<Arc<Metrics>>,
    /// One connection pool and one set of trusted roots for both servers: loading the system's
    /// CA certificates costs more CPU than a quiet pass.
    pub http: reqwest::Client,
}

impl ClientOptions {
    /// `https`: whether any server is reached over TLS (without, no CA store is loaded).
    pub fn new(
        retry: RetryPolicy,
        concurrency: usize,
        stop: Stop,
        metrics: Option<Arc<Metrics>>,
        https: bool,
    ) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "jira-gitlab-reconciler/",
                env!("CARGO_PKG_VERSION")
            ))
            .connect_timeout(Duration::from_secs(10).min(retry.timeout))
            .timeout(retry.timeout)
            .tls_built_in_root_certs(https)
            .build()
            .map_err(|e| ApiError {
                server: Server::Gitlab,
                what: "setting up the HTTP client".into(),
                kind: ApiErrorKind::Transport {
                    cause: transport_cause(&e),
                },
                hint: None,
                retry_after: None,
            })?;
        Ok(ClientOptions {
            retry,
            concurrency,
            stop,
            metrics,
            http,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Jira,
    Gitlab,
}

impl Server {
    pub fn label(self) -> &'static str {
        match self {
            Server::Jira => "jira",
            Server::Gitlab => "gitlab",
        }
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Server::Jira => "Jira",
            Server::Gitlab => "GitLab",
        })
    }
}

#[derive(Clone, Debug)]
pub enum Auth {
    /// Jira Cloud: `email:api_token`.
    Basic { user: String, token: Secret },
    /// Jira Data Center personal access token, GitLab tokens.
    Bearer(Secret),
}

/// What a request does, which decides what may be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// GETs and searches (including Jira's POST search).
    Read,
    /// Writes that are safe to repeat (PUT with absolute values).
    Idempotent,
    /// Writes that create something: repeating one may duplicate it.
    Create,
}

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
#[derive(Debug)]
pub struct ApiError {
    pub server: Server,
    pub what: String,
    pub kind: ApiErrorKind,
    pub hint: Option<String>,
    /// Always `None` now: the HTTP layer keeps every wait a server names (a longer one is an
    /// `OutOfBounds` error naming it). Kept so errors built elsewhere stay as they are.
    pub retry_after: Option<Duration>,
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
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.server, self.what)?;
        match &self.kind {
            ApiErrorKind::Status { status, message } => write!(f, "HTTP {status}: {message}")?,
            ApiErrorKind::Paced { message } => write!(f, "HTTP 429: {message}")?,
            ApiErrorKind::Ambiguous { cause } => write!(
                f,
                "no reliable answer ({cause}); the write may have happened, so it is not repeated blindly"
            )?,
            ApiErrorKind::Transport { cause } => write!(f, "{cause}")?,
            ApiErrorKind::Decode { status, cause } => write!(f, "HTTP {status} with {cause}")?,
            ApiErrorKind::Stopped => write!(f, "not sent: the service is stopping")?,
            ApiErrorKind::OutOfBounds { cause } => write!(f, "{cause}")?,
        }
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// A successful answer: decoded body plus the headers (paging lives there on GitLab).
pub struct Reply<T> {
    pub body: T,
    pub headers: HeaderMap,
}

/// One server's API: base URL, credentials, timeouts, retry policy, the number of requests
/// in flight, and any wait the server asked every request to respect.
#[derive(Clone)]
pub struct Api {
    server: Server,
    base: String,
    auth: Auth,
    client: reqwest::Client,
    retry: RetryPolicy,
    metrics: Option<Arc<Metrics>>,
    stop: Stop,
    slots: Arc<Semaphore>,
    /// The server asked all requests to wait until then (a 429 with `Retry-After`, or
    /// `RateLimit-Remaining: 0` with its reset time).
    hold: Arc<Mutex<Option<Instant>>>,
}

pub struct Request<'a> {
    pub method: Method,
    /// Path below the base URL, already percent-encoded where needed.
    pub path: String,
    pub query: Vec<(&'a str, String)>,
    pub body: Option<serde_json::Value>,
    pub effect: Effect,
    /// A bare 429 (no wait named, not GitLab's general throttle) is returned to the caller as
    /// `ApiErrorKind::Paced` instead of being retried here (GitLab's issue-create limit: the
    /// create pacer learns from it and holds creates). Any other 429 is a hold kept here.
    pub caller_paces: bool,
    /// Called each time the request goes out, after it got a free connection slot (the create
    /// pacer counts a create from then).
    pub on_send: Option<&'a (dyn Fn() + Send + Sync)>,
}

impl<'a> Request<'a> {
    pub fn get(path: impl Into<String>) -> Self {
        Request {
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
            effect: Effect::Read,
            caller_paces: false,
            on_send: None,
        }
    }

    pub fn on_send(mut self, f: &'a (dyn Fn() + Send + Sync)) -> Self {
        self.on_send = Some(f);
        self
    }

    pub fn caller_paces(mut self) -> Self {
        self.caller_paces = true;
        self
    }

    pub fn query(mut self, key: &'a str, value: impl ToString) -> Self {
        self.query.push((key, value.to_string()));
        self
    }

    pub fn json(mut self, method: Method, body: serde_json::Value, effect: Effect) -> Self {
        self.method = method;
        self.body = Some(body);
        self.effect = effect;
        self
    }
}

impl Api {
    pub fn new(server: Server, base: &str, auth: Auth, opts: &ClientOptions) -> Api {
        Api {
            server,
            base: base.trim_end_matches('/').to_string(),
            auth,
            client: opts.http.clone(),
            retry: opts.retry.clone(),
            metrics: opts.metrics.clone(),
            stop: opts.stop.clone(),
            slots: Arc::new(Semaphore::new(opts.concurrency.max(1))),
            hold: Arc::new(Mutex::new(None)),
        }
    }

    pub fn stop(&self) -> &Stop {
        &self.stop
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Where this client's requests are counted, if anywhere.
    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_deref()
    }

    /// Wait out a hold the server asked for; false when a stop ended the wait.
    async fn respect_hold(&self) -> bool {
        loop {
            let until = *crate::lock_unpoisoned(&self.hold);
            match until {
                Some(t) if t > Instant::now() => {
                    if !self.stop.sleep(t - Instant::now()).await {
                        return false;
                    }
                }
                _ => return !self.stop.requested(),
            }
        }
    }

    /// Make every request of this client wait until `wait` from now.
    fn hold_all(&self, wait: Duration) {
        let Some(until) = Instant::now().checked_add(wait) else {
            return;
        };
        let mut hold = crate::lock_unpoisoned(&self.hold);
        if hold.is_none_or(|t| t < until) {
            *hold = Some(until);
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Send `req`, retrying as the policy allows, and decode a JSON answer.
    pub async fn send<T: DeserializeOwned>(&self, req: Request<'_>) -> Result<Reply<T>, ApiError> {
        let what = format!("{} {}", req.method, req.path);
        let mut jitter = Xorshift::from_time();
        let mut attempt: u32 = 1;
        loop {
            let (status_label, decision) = match self.attempt_once(&req, &what).await? {
                Ok((status, headers, body)) if status.is_success() => {
                    self.count(status.as_str());
                    return self.accept(&req, &what, status, headers, body);
                }
                Ok((status, headers, body)) => {
                    let decision = self.judge_status(&req, status, &headers, &body);
                    (status.as_str().to_string(), decision)
                }
                Err(e) => (transport_label(&e).to_string(), judge_transport(&req, &e)),
            };
            self.count(&status_label);
            let (kind, wait) = match decision {
                Decision::Fail(kind) => return Err(self.error(&what, kind)),
                Decision::Refused(kind) => return Err(self.error(&what, kind)),
                Decision::Retry { kind, wait } => (kind, wait),
            };
            let wait = match wait {
                Some(w) if w.wait > self.retry.max_wait => {
                    return Err(self.too_long(&what, &kind, &w));
                }
                Some(w) => {
                    // The server's wait holds for every request of this client, not just this one.
                    self.hold_all(w.wait);
                    w.wait
                }
                None => backoff(&self.retry, attempt, &mut jitter),
            };
            if attempt >= self.retry.max_attempts {
                return Err(self.error(&what, kind));
            }
            self.note_retry(&what, &kind, &status_label, wait, attempt);
            if !self.stop.sleep(wait).await {
                return Err(self.error(&what, ApiErrorKind::Stopped));
            }
            attempt += 1;
        }
    }

    /// One try: after any hold the server asked for, in a free connection slot. The outer
    /// error is a stop that came first.
    async fn attempt_once(
        &self,
        req: &Request<'_>,
        what: &str,
    ) -> Result<Result<(StatusCode, HeaderMap, body::Capped), reqwest::Error>, ApiError> {
        if !self.respect_hold().await {
            return Err(self.error(what, ApiErrorKind::Stopped));
        }
        let _slot = tokio::select! {
            slot = self.slots.acquire() => slot.ok(),
            () = self.stop.wait() => return Err(self.error(what, ApiErrorKind::Stopped)),
        };
        if let Some(on_send) = req.on_send {
            on_send();
        }
        Ok(self.attempt(req).await)
    }

    /// A 2xx: note an exhausted budget, then decode. A body over the bound is refused unread.
    fn accept<T: DeserializeOwned>(
        &self,
        req: &Request<'_>,
        what: &str,
        status: StatusCode,
        headers: HeaderMap,
        body: body::Capped,
    ) -> Result<Reply<T>, ApiError> {
        if let Some(wait) = exhausted_budget(&headers, self.retry.max_wait) {
            // The server says the next request would be refused: wait before it.
            self.hold_all(wait);
        }
        let decoded = if body.cut {
            Err(ApiErrorKind::OutOfBounds {
                cause: format!(
                    "HTTP {} with an answer over {} MiB, the most this tool reads",
                    status.as_u16(),
                    body::MAX_BODY >> 20
                ),
            })
        } else {
            decode(status, headers, &body.bytes)
        };
        decoded.map_err(|cause| {
            // The server accepted the create; an unreadable answer does not make it undone.
            let cause = match (req.effect, cause) {
                (Effect::Create, ApiErrorKind::Decode { status, cause }) => {
                    ApiErrorKind::Ambiguous {
                        cause: format!("HTTP {status} with {cause}"),
                    }
                }
                (Effect::Create, ApiErrorKind::OutOfBounds { cause }) => {
                    ApiErrorKind::Ambiguous { cause }
                }
                (_, other) => other,
            };
            self.error(what, cause)
        })
    }

    /// The server asked for a wait longer than `retry.max_wait`: the request fails, naming
    /// the header and its value.
    fn too_long(&self, what: &str, kind: &ApiErrorKind, w: &ServerWait) -> ApiError {
        let cause = format!(
            "{}; the server asks to wait {} ({}: {}), longer than retry.max_wait ({})",
            describe(kind),
            human(w.wait),
            w.header,
            w.value,
            human(self.retry.max_wait)
        );
        self.error(what, ApiErrorKind::OutOfBounds { cause })
            .with_hint(
                "the next pass tries again; raise retry.max_wait to wait longer within a pass",
            )
    }

    fn note_retry(
        &self,
        what: &str,
        kind: &ApiErrorKind,
        status_label: &str,
        wait: Duration,
        attempt: u32,
    ) {
        tracing::warn!(
            server = %self.server,
            request = %what,
            error = %describe(kind),
            retry_in_ms = wait.as_millis() as u64,
            attempt,
            "request failed; retrying"
        );
        if let Some(m) = &self.metrics {
            m.inc(
                "jgr_http_retries_total",
                "HTTP requests retried, by server and cause.",
                &[("server", self.server.label()), ("status", status_label)],
                1.0,
            );
        }
    }

    async fn attempt(
        &self,
        req: &Request<'_>,
    ) -> Result<(StatusCode, HeaderMap, body::Capped), reqwest::Error> {
        let url = format!("{}{}", self.base, req.path);
        let mut builder = self
            .client
            .request(req.method.clone(), &url)
            .query(&req.query)
            .header(reqwest::header::ACCEPT, "application/json");
        builder = match &self.auth {
            Auth::Basic { user, token } => builder.basic_auth(user, Some(token.expose())),
            Auth::Bearer(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid-token"));
                value.set_sensitive(true);
                builder.header(AUTHORIZATION, value)
            }
        };
        if let Some(body) = &req.body {
            builder = builder.json(body);
        }
        let resp = builder.send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = if status.is_success() {
            body::read(resp, body::MAX_BODY, true).await?
        } else {
            body::read(resp, body::MAX_ERROR_BODY, false).await?
        };
        Ok((status, headers, body))
    }

    fn judge_status(
        &self,
        req: &Request<'_>,
        status: StatusCode,
        headers: &HeaderMap,
        body: &body::Capped,
    ) -> Decision {
        let mut message = error_message(&body.bytes);
        if body.cut {
            message.push_str(&format!(
                " (the answer went on past {} KiB, unread)",
                body::MAX_ERROR_BODY >> 10
            ));
        }
        if let Some(reason) = header_str(headers, "ratelimit-reason") {
            // Jira Cloud says which of its limits refused (`jira-burst-based`, ...).
            message.push_str(&format!(
                " (RateLimit-Reason: {})",
                crate::safe_text::safe_within(reason, 128)
            ));
        }
        let wait = server_wait(headers, chrono::Utc::now());
        if status == StatusCode::TOO_MANY_REQUESTS {
            // A 429 means the server refused the request: repeating it, even a create, is
            // safe. Only a bare one is a lesson for a caller that paces itself; a named wait
            // or GitLab's general throttle (`RateLimit-Name`) is a hold, kept here.
            let throttle = header_str(headers, "ratelimit-name").is_some();
            if req.caller_paces && wait.is_none() && !throttle {
                return Decision::Refused(ApiErrorKind::Paced { message });
            }
        }
        let kind = ApiErrorKind::Status {
            status: status.as_u16(),
            message,
        };
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Decision::Retry { kind, wait };
        }
        if status.is_server_error() {
            if req.effect == Effect::Create {
                return Decision::Fail(ApiErrorKind::Ambiguous {
                    cause: format!("HTTP {}", status.as_u16()),
                });
            }
            return Decision::Retry { kind, wait };
        }
        Decision::Fail(kind)
    }

    fn error(&self, what: &str, kind: ApiErrorKind) -> ApiError {
        let hint = default_hint(self.server, &kind);
        ApiError {
            server: self.server,
            // Paths of later pages come from the server's links.
            what: crate::safe_text::safe_within(what, 512),
            kind,
            hint,
            retry_after: None,
        }
    }

    fn count(&self, status: &str) {
        if let Some(m) = &self.metrics {
            m.inc(
                "jgr_http_requests_total",
                "HTTP requests sent, by server and status (or transport error).",
                &[("server", self.server.label()), ("status", status)],
                1.0,
            );
        }
    }
}

enum Decision {
    Fail(ApiErrorKind),
    /// A bare 429 for a caller that paces itself: returned at once.
    Refused(ApiErrorKind),
    Retry {
        kind: ApiErrorKind,
        wait: Option<ServerWait>,
    },
}

/// A duration for people: seconds and up, and no astronomy.
fn human(d: Duration) -> String {
    const CENTURY: u64 = 100 * 365 * 86_400;
    if d.as_secs() >= CENTURY {
        return "more than a century".into();
    }
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

fn judge_transport(req: &Request<'_>, e: &reqwest::Error) -> Decision {
    let cause = transport_cause(e);
    if cause.starts_with(NO_TLS) {
        // The server will answer every retry the same way.
        return Decision::Fail(ApiErrorKind::Transport { cause });
    }
    // A connect error means nothing was sent; anything later may have reached the server.
    if req.effect == Effect::Create && !e.is_connect() {
        return Decision::Fail(ApiErrorKind::Ambiguous { cause });
    }
    Decision::Retry {
        kind: ApiErrorKind::Transport { cause },
        wait: None,
    }
}

fn transport_label(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    }
}

/// How a transport failure starts when an `https://` URL names a port that speaks plain HTTP.
const NO_TLS: &str = "this port does not speak TLS";

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

fn transport_cause(e: &reqwest::Error) -> String {
    if plain_http_answer(e) {
        return format!("{NO_TLS}: the server answered the TLS handshake in plain HTTP");
    }
    // reqwest's Display includes the URL (never a token: those travel in headers); the source
    // chain holds the useful part ("connection refused", "operation timed out").
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

fn describe(kind: &ApiErrorKind) -> String {
    match kind {
        ApiErrorKind::Status { status, message } => format!("HTTP {status}: {message}"),
        ApiErrorKind::Paced { message } => format!("HTTP 429: {message}"),
        ApiErrorKind::Ambiguous { cause }
        | ApiErrorKind::Transport { cause }
        | ApiErrorKind::Decode { cause, .. } => cause.clone(),
        ApiErrorKind::Stopped => "stopped".into(),
        ApiErrorKind::OutOfBounds { cause } => cause.clone(),
    }
}

/// Exponential backoff with "equal jitter": half the step fixed, half random, so many clients
/// that failed together do not retry together.
fn backoff(policy: &RetryPolicy, attempt: u32, rng: &mut Xorshift) -> Duration {
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
fn exhausted_budget(headers: &HeaderMap, max_wait: Duration) -> Option<Duration> {
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

/// What a path segment keeps as it is: RFC 3986's unreserved characters. Everything else,
/// `/` included (a GitLab project path is one segment), is percent-encoded.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encode one path segment (a GitLab project path, a Jira key, a query value).
pub fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

fn decode<T: DeserializeOwned>(
    status: StatusCode,
    headers: HeaderMap,
    body: &[u8],
) -> Result<Reply<T>, ApiErrorKind> {
    match serde_json::from_slice::<T>(body) {
        Ok(body) => Ok(Reply { body, headers }),
        Err(e) => {
            let is_html = header_str(&headers, CONTENT_TYPE.as_str())
                .is_some_and(|ct| ct.contains("html"))
                || body.trim_ascii_start().starts_with(b"<");
            let cause = if is_html {
                "an HTML page instead of JSON (a proxy or single-sign-on login page?)".to_string()
            } else {
                format!(
                    "a body that is not the JSON expected ({}): {}",
                    crate::safe_text::safe_within(&e.to_string(), 200),
                    snippet(body)
                )
            };
            Err(ApiErrorKind::Decode {
                status: status.as_u16(),
                cause,
            })
        }
    }
}

/// The human part of an error body: Jira's `errorMessages`/`errors`, GitLab's `message`/`error`,
/// else the start of the body; made safe for terminals and logs, at most 2 KiB.
pub fn error_message(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return snippet(body);
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(msgs) = v.get("errorMessages").and_then(|m| m.as_array()) {
        parts.extend(msgs.iter().filter_map(|m| m.as_str().map(str::to_string)));
    }
    if let Some(errs) = v.get("errors").and_then(|m| m.as_object()) {
        parts.extend(errs.iter().map(|(k, v)| format!("{k}: {}", plain(v))));
    }
    for key in ["message", "error", "error_description"] {
        if let Some(m) = v.get(key) {
            parts.push(plain(m));
        }
    }
    if parts.is_empty() {
        snippet(body)
    } else {
        crate::safe_text::safe(&parts.join("; "))
    }
}

fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The start of a body (at most 200 bytes of text), on one line, made safe: enough to recognise
/// it in a log.
fn snippet(body: &[u8]) -> String {
    const START: usize = 200;
    let text = String::from_utf8_lossy(&body[..body.len().min(4 * START)]);
    let text = text.trim_start();
    // Leading whitespace skipped (invalid UTF-8 may make the text longer than its bytes).
    let skipped = body.len().min(4 * START).saturating_sub(text.len());
    let one_line = crate::safe_text::safe_start(text, START, body.len().saturating_sub(skipped));
    if one_line.trim().is_empty() {
        return "(empty body)".into();
    }
    one_line
}

fn default_hint(server: Server, kind: &ApiErrorKind) -> Option<String> {
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
    let hint = match (server, status) {
        (Server::Jira, 401) => "Jira rejected the credentials: check JIRA_API_TOKEN (or jira.token_file) and jira.email; Data Center needs deployment = \"datacenter\" and a personal access token",
        (Server::Gitlab, 401) => "GitLab rejected the token: check GITLAB_TOKEN (or gitlab.token_file); project and group access tokens expire (30 days by default)",
        (Server::Jira, 403) => "the Jira account lacks a permission: it needs Browse Projects on every mapped project",
        (Server::Gitlab, 403) => "the GitLab token lacks a permission: it needs scope `api`, at least Reporter (or Planner) to close and reopen issues",
        (Server::Jira, 410) => "this Jira no longer serves that API; check jira.deployment (Cloud uses /rest/api/3/search/jql)",
        (_, 429) => "rate limited even after waiting; the next pass continues where this one stopped",
        _ => return None,
    };
    Some(hint.to_string())
}

/// For the decoders' property tests: `body` decoded as a 200 answer, or the error's text,
/// which must say what is wrong (not JSON, not the JSON expected, an HTML page) and be safe.
#[cfg(test)]
pub(crate) fn decode_as<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    decode::<T>(StatusCode::OK, HeaderMap::new(), body)
        .map(|r| r.body)
        .map_err(|kind| {
            let text = describe(&kind);
            assert!(
                text.contains("not the JSON expected") || text.contains("HTML page"),
                "an unclear decode error: {text}"
            );
            assert_eq!(crate::safe_text::safe(&text), text, "unsafe error text");
            text
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arbitrary_error_bodies_and_rate_limit_headers_never_panic() {
        let seeds: &[&[u8]] = &[
            br#"{"errorMessages":["Field 'foo' does not exist"],"errors":{"jql":"bad"}}"#,
            br#"{"message":{"title":["is too long"]},"error":"x","error_description":"y"}"#,
            b"<html><body>Sign in</body></html>",
        ];
        crate::rng::fuzz::check("error bodies", seeds, 3000, |body| {
            let m = error_message(body);
            assert!(!m.is_empty());
            assert_eq!(crate::safe_text::safe(&m), m, "unsafe: {m:?}");
        });
        let now = chrono::Utc::now();
        let values: &[&[u8]] = &[
            b"120",
            b"Sun, 06 Nov 1994 08:49:37 GMT",
            b"2024-01-01T12:00Z",
        ];
        crate::rng::fuzz::check("rate-limit headers", values, 3000, |value| {
            let Ok(v) = HeaderValue::from_bytes(value) else {
                return;
            };
            for name in ["retry-after", "ratelimit-reset", "x-ratelimit-reset"] {
                let mut h = HeaderMap::new();
                h.insert(name, v.clone());
                h.insert("ratelimit-remaining", HeaderValue::from_static("0"));
                if let Some(w) = server_wait(&h, now) {
                    // Whatever the value, adding it is checked by callers, never overflowed.
                    let _ = Instant::now().checked_add(w.wait);
                }
                let _ = exhausted_budget(&h, Duration::from_secs(300));
            }
        });
    }

    #[test]
    fn path_segments_keep_only_unreserved_characters() {
        assert_eq!(percent_encode("acme/platform"), "acme%2Fplatform");
        assert_eq!(percent_encode("VSA-1_a.b~c"), "VSA-1_a.b~c");
        assert_eq!(percent_encode("a b+c&d?e#f%"), "a%20b%2Bc%26d%3Fe%23f%25");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }

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

    #[test]
    fn error_bodies_of_both_servers() {
        assert_eq!(
            error_message(br#"{"errorMessages":["Field 'foo' does not exist"],"errors":{}}"#),
            "Field 'foo' does not exist"
        );
        assert_eq!(
            error_message(br#"{"message":"404 Project Not Found"}"#),
            "404 Project Not Found"
        );
        assert_eq!(
            error_message(br#"{"message":{"title":["is too long (maximum is 255 characters)"]}}"#),
            r#"{"title":["is too long (maximum is 255 characters)"]}"#
        );
        assert_eq!(
            error_message(b"<html>\n<b>Login</b>"),
            "<html> <b>Login</b>"
        );
        assert_eq!(error_message(b""), "(empty body)");
        assert_eq!(error_message(b"  \n "), "(empty body)");
        let long = format!("<html>{}", "x".repeat(5000));
        assert!(
            error_message(long.as_bytes()).ends_with("… (4806 more bytes cut)"),
            "{}",
            error_message(long.as_bytes())
        );
        // Invalid UTF-8 is shown replaced, never a panic.
        assert!(error_message(&[0xff; 900]).contains('\u{FFFD}'));
    }
}
