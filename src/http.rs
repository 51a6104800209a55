//! The one HTTP layer both clients use: authentication, timeouts, the retry policy, error
//! classification and request metrics. It knows nothing about issues.
//!
//! Retry policy (the README repeats it for users):
//! - 429: wait for `Retry-After` (seconds or an HTTP date) or `RateLimit-Reset`; without either,
//!   GitLab's issue-create limit waits `create_rate_limit_backoff`, anything else backs off.
//! - 5xx, timeouts, connection resets: exponential backoff with jitter, capped, for reads and
//!   idempotent writes. A create (POST) is retried only when the server surely did not act on
//!   it (429, connection refused); otherwise the error is `Ambiguous` and the caller must look
//!   the issue up before trying again, or a lost response would become a duplicate issue.
//! - Everything else (4xx) is final and reported with a hint at the fix.

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
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
            create_rate_limit_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
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

/// Longest server-requested wait honoured; a longer one fails the request instead of
/// silently stalling a pass (and the lock) for an hour.
const MAX_HONOURED_WAIT: Duration = Duration::from_secs(300);

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
    /// A create may or may not have happened (5xx, timeout, reset after sending).
    Ambiguous { cause: String },
    /// The server could not be reached, or kept failing, until the retries ran out.
    Transport { cause: String },
    /// The body was not the JSON expected (an HTML login page, a truncated body...).
    Decode { status: u16, cause: String },
    /// A stop was requested while the request waited; it was not sent.
    Stopped,
}

/// A request that failed for good. Its message names the server, the request, what went wrong
/// and, where one is known, the fix.
#[derive(Debug)]
pub struct ApiError {
    pub server: Server,
    pub what: String,
    pub kind: ApiErrorKind,
    pub hint: Option<String>,
    /// For a 429: the wait the server asked for (`Retry-After`, `RateLimit-Reset`), if any.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            ApiErrorKind::Status { status, .. } => Some(*status),
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

    /// How long the server asked to wait, when it refused with 429 and said so.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
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
            ApiErrorKind::Ambiguous { .. } | ApiErrorKind::Transport { .. } => Cause::Server,
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
            ApiErrorKind::Ambiguous { cause } => write!(
                f,
                "no reliable answer ({cause}); the write may have happened, so it is not repeated blindly"
            )?,
            ApiErrorKind::Transport { cause } => write!(f, "{cause}")?,
            ApiErrorKind::Decode { status, cause } => write!(f, "HTTP {status} with {cause}")?,
            ApiErrorKind::Stopped => write!(f, "not sent: the service is stopping")?,
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
    /// A 429 is returned to the caller, with the wait the server named if any, instead of
    /// being waited out here (GitLab's issue-create limit: the create pacer holds creates).
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
        let until = Instant::now() + wait;
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
            if !self.respect_hold().await {
                return Err(self.error(&what, ApiErrorKind::Stopped));
            }
            let outcome = {
                let _slot = tokio::select! {
                    slot = self.slots.acquire() => slot.ok(),
                    () = self.stop.wait() => return Err(self.error(&what, ApiErrorKind::Stopped)),
                };
                if let Some(on_send) = req.on_send {
                    on_send();
                }
                self.attempt(&req).await
            };
            let (status_label, decision) = match outcome {
                Ok((status, headers, text)) if status.is_success() => {
                    self.count(status.as_str());
                    if let Some(wait) = exhausted_budget(&headers) {
                        // The server says the next request would be refused: wait before it.
                        self.hold_all(wait);
                    }
                    return decode(status, headers, &text).map_err(|cause| {
                        // The server accepted the create; an unreadable answer does not
                        // make it undone.
                        let cause = match (req.effect, cause) {
                            (Effect::Create, ApiErrorKind::Decode { status, cause }) => {
                                ApiErrorKind::Ambiguous {
                                    cause: format!("HTTP {status} with {cause}"),
                                }
                            }
                            (_, other) => other,
                        };
                        self.error(&what, cause)
                    });
                }
                Ok((status, headers, text)) => {
                    let decision = self.judge_status(&req, status, &headers, &text);
                    (status.as_str().to_string(), decision)
                }
                Err(e) => {
                    let decision = judge_transport(&req, &e);
                    (transport_label(&e).to_string(), decision)
                }
            };
            self.count(&status_label);
            let (kind, wait) = match decision {
                Decision::Fail(kind) => return Err(self.error(&what, kind)),
                Decision::Refused { kind, wait } => {
                    if let Some(w) = wait.filter(|w| *w <= MAX_HONOURED_WAIT) {
                        // The server's wait holds for every request of this client.
                        self.hold_all(w);
                    }
                    let mut e = self.error(&what, kind);
                    e.retry_after = wait;
                    return Err(e);
                }
                Decision::Retry { kind, wait } => (kind, wait),
            };
            if attempt >= self.retry.max_attempts {
                return Err(self.error(&what, kind));
            }
            let wait = match wait {
                Some(w) if w > MAX_HONOURED_WAIT => {
                    return Err(self.error(&what, kind).with_hint(format!(
                        "the server asks to wait {} s, longer than the {} s this tool waits within a pass; the next pass retries",
                        w.as_secs(),
                        MAX_HONOURED_WAIT.as_secs()
                    )))
                }
                Some(w) => {
                    // The server's wait holds for every request of this client, not just this one.
                    self.hold_all(w);
                    w
                }
                None => backoff(&self.retry, attempt, &mut jitter),
            };
            tracing::warn!(
                server = %self.server,
                request = %what,
                error = %describe(&kind),
                retry_in_ms = wait.as_millis() as u64,
                attempt,
                "request failed; retrying"
            );
            if let Some(m) = &self.metrics {
                m.inc(
                    "jgr_http_retries_total",
                    "HTTP requests retried, by server and cause.",
                    &[("server", self.server.label()), ("status", &status_label)],
                    1.0,
                );
            }
            if !self.stop.sleep(wait).await {
                return Err(self.error(&what, ApiErrorKind::Stopped));
            }
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        req: &Request<'_>,
    ) -> Result<(StatusCode, HeaderMap, String), reqwest::Error> {
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
        let text = resp.text().await?;
        Ok((status, headers, text))
    }

    fn judge_status(
        &self,
        req: &Request<'_>,
        status: StatusCode,
        headers: &HeaderMap,
        text: &str,
    ) -> Decision {
        let kind = ApiErrorKind::Status {
            status: status.as_u16(),
            message: error_message(text),
        };
        if status == StatusCode::TOO_MANY_REQUESTS {
            // A 429 means the server refused the request: repeating it, even a create, is safe.
            let wait = server_wait(headers);
            if req.caller_paces {
                return Decision::Refused { kind, wait };
            }
            return Decision::Retry { kind, wait };
        }
        if status.is_server_error() {
            if req.effect == Effect::Create {
                return Decision::Fail(ApiErrorKind::Ambiguous {
                    cause: format!("HTTP {}", status.as_u16()),
                });
            }
            return Decision::Retry {
                kind,
                wait: server_wait(headers),
            };
        }
        Decision::Fail(kind)
    }

    fn error(&self, what: &str, kind: ApiErrorKind) -> ApiError {
        let hint = default_hint(self.server, &kind);
        ApiError {
            server: self.server,
            what: what.to_string(),
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
    /// Refused by a rate limit the caller paces itself: returned at once, with the server's
    /// wait if it gave one.
    Refused {
        kind: ApiErrorKind,
        wait: Option<Duration>,
    },
    Retry {
        kind: ApiErrorKind,
        wait: Option<Duration>,
    },
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
    cause
}

fn describe(kind: &ApiErrorKind) -> String {
    match kind {
        ApiErrorKind::Status { status, message } => format!("HTTP {status}: {message}"),
        ApiErrorKind::Ambiguous { cause }
        | ApiErrorKind::Transport { cause }
        | ApiErrorKind::Decode { cause, .. } => cause.clone(),
        ApiErrorKind::Stopped => "stopped".into(),
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

/// How long the server asks us to wait: `Retry-After` (delta seconds or an HTTP date) or
/// `RateLimit-Reset` (GitLab: epoch seconds; small values are read as delta seconds).
pub fn server_wait(headers: &HeaderMap) -> Option<Duration> {
    let now = chrono::Utc::now();
    if let Some(v) = header_str(headers, "retry-after") {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        // An HTTP date in any of the three forms RFC 9110 §5.6.7 makes clients accept
        // (IMF-fixdate, RFC 850, asctime); one already past means "now".
        if let Ok(at) = httpdate::parse_http_date(v.trim()) {
            return Some(
                at.duration_since(std::time::SystemTime::from(now))
                    .unwrap_or(Duration::ZERO),
            );
        }
    }
    for name in ["ratelimit-reset", "x-ratelimit-reset"] {
        if let Some(n) = header_str(headers, name).and_then(|v| v.parse::<i64>().ok()) {
            let secs = if n > 1_000_000_000 {
                (n - now.timestamp()).max(0)
            } else {
                n.max(0)
            };
            return Some(Duration::from_secs(secs as u64));
        }
    }
    None
}

/// `RateLimit-Remaining: 0` on a successful answer: the next request would be refused until
/// the reset the same answer names. `None` while budget remains or no reset is given.
fn exhausted_budget(headers: &HeaderMap) -> Option<Duration> {
    let remaining = ["ratelimit-remaining", "x-ratelimit-remaining"]
        .iter()
        .find_map(|n| header_str(headers, n))?;
    if remaining.parse::<i64>().ok()? > 0 {
        return None;
    }
    server_wait(headers).filter(|w| *w <= MAX_HONOURED_WAIT)
}

/// Percent-encode one path segment (a GitLab project path, a Jira key).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

fn decode<T: DeserializeOwned>(
    status: StatusCode,
    headers: HeaderMap,
    text: &str,
) -> Result<Reply<T>, ApiErrorKind> {
    match serde_json::from_str::<T>(text) {
        Ok(body) => Ok(Reply { body, headers }),
        Err(e) => {
            let is_html = header_str(&headers, CONTENT_TYPE.as_str())
                .is_some_and(|ct| ct.contains("html"))
                || text.trim_start().starts_with('<');
            let cause = if is_html {
                "an HTML page instead of JSON (a proxy or single-sign-on login page?)".to_string()
            } else {
                format!(
                    "a body that is not the JSON expected ({e}): {}",
                    snippet(text)
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
/// else the start of the body.
pub fn error_message(text: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return snippet(text);
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
        snippet(text)
    } else {
        parts.join("; ")
    }
}

fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// At most 200 characters of a body, on one line: enough to recognise it in a log.
fn snippet(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if one_line.trim().is_empty() {
        "(empty body)".into()
    } else {
        one_line.trim().to_string()
    }
}

fn default_hint(server: Server, kind: &ApiErrorKind) -> Option<String> {
    let status = match kind {
        ApiErrorKind::Status { status, .. } => *status,
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
        ApiErrorKind::Ambiguous { .. } | ApiErrorKind::Stopped => return None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_date_and_reset() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(server_wait(&h), Some(Duration::from_secs(7)));

        // The three date forms of RFC 9110 §5.6.7, 30 s ahead.
        let at = chrono::Utc::now() + chrono::Duration::seconds(30);
        for form in [
            "%a, %d %b %Y %H:%M:%S GMT", // IMF-fixdate
            "%A, %d-%b-%y %H:%M:%S GMT", // obsolete RFC 850
            "%a %b %e %H:%M:%S %Y",      // obsolete asctime
        ] {
            let date = at.format(form).to_string();
            let mut h = HeaderMap::new();
            h.insert("retry-after", HeaderValue::from_str(&date).expect("header"));
            let w = server_wait(&h).unwrap_or_else(|| panic!("{date:?} is an HTTP date"));
            assert!(
                w > Duration::from_secs(25) && w <= Duration::from_secs(30),
                "{date}: {w:?}"
            );
        }
        // A date in the past: retry now. Not a date at all: not a server wait.
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(server_wait(&h), Some(Duration::ZERO));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(server_wait(&h), None);

        let reset = (chrono::Utc::now().timestamp() + 12).to_string();
        let mut h = HeaderMap::new();
        h.insert(
            "ratelimit-reset",
            HeaderValue::from_str(&reset).expect("header"),
        );
        let w = server_wait(&h).expect("reset");
        assert!(
            w >= Duration::from_secs(10) && w <= Duration::from_secs(12),
            "{w:?}"
        );

        assert_eq!(server_wait(&HeaderMap::new()), None);
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
            error_message(r#"{"errorMessages":["Field 'foo' does not exist"],"errors":{}}"#),
            "Field 'foo' does not exist"
        );
        assert_eq!(
            error_message(r#"{"message":"404 Project Not Found"}"#),
            "404 Project Not Found"
        );
        assert_eq!(
            error_message(r#"{"message":{"title":["is too long (maximum is 255 characters)"]}}"#),
            r#"{"title":["is too long (maximum is 255 characters)"]}"#
        );
        assert_eq!(error_message("<html>\n<b>Login</b>"), "<html> <b>Login</b>");
        assert_eq!(error_message(""), "(empty body)");
    }
}
