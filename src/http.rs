//! The one HTTP layer both clients use, in parts: sending (`send`: authentication, a slot among
//! the requests in flight, metrics), the retry policy (`retry`, with the waits servers ask for
//! in `wait`: every wait bounded), the error (`error`: friendly words, and the transport's or
//! decoder's error kept as its source), and the limits on what a server may send (`body`:
//! answers read as they stream in, at most 64 MiB, an error's first 64 KiB; `answer`: what a
//! body says, made safe). It knows nothing about issues; page chains are `crate::paging`.

mod answer;
mod body;
mod error;
mod retry;
mod send;
mod wait;

pub use error::{ApiError, ApiErrorKind, Source};
pub use retry::RetryPolicy;
pub use wait::{server_wait, ServerWait};

#[cfg(test)]
pub(crate) use answer::decode_as;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

use crate::metrics::Metrics;
use crate::rng::Xorshift;
use crate::secret::Secret;
use crate::stop::Stop;

use error::transport_label;
use retry::{backoff, Decision};

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
    /// The memory all answers being read hold at once, for every client built from these
    /// options together (`body::MAX_IN_FLIGHT`).
    pub bodies: Arc<body::Budget>,
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
                    cause: error::transport_cause(&e),
                },
                hint: None,
                source: Some(Box::new(e)),
            })?;
        Ok(ClientOptions {
            retry,
            concurrency,
            stop,
            metrics,
            http,
            bodies: body::Budget::new(body::MAX_IN_FLIGHT),
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
    hold: Arc<wait::Hold>,
    bodies: Arc<body::Budget>,
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
            hold: Arc::default(),
            bodies: opts.bodies.clone(),
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

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Send `req`, retrying as the policy allows, and decode a JSON answer.
    pub async fn send<T: DeserializeOwned>(&self, req: Request<'_>) -> Result<Reply<T>, ApiError> {
        let what = format!("{} {}", req.method, req.path);
        let mut jitter = Xorshift::from_time();
        let mut attempt: u32 = 1;
        loop {
            let (label, decision) = match self.attempt_once(&req, &what).await? {
                Ok(answer) if answer.body.crowded => {
                    ("crowded".to_string(), retry::judge_crowded(&req, &answer))
                }
                Ok(answer) if answer.status.is_success() => {
                    self.count(answer.status.as_str());
                    return self.accept(&req, &what, answer);
                }
                Ok(answer) => (
                    answer.status.as_str().to_string(),
                    retry::judge_status(&req, &answer),
                ),
                Err(e) => (
                    transport_label(&e).to_string(),
                    retry::judge_transport(&req, e),
                ),
            };
            self.count(&label);
            let (failure, wait) = match decision {
                Decision::Fail(failure) => return Err(self.error(&what, failure)),
                Decision::Retry { failure, wait } => (failure, wait),
            };
            let wait = match wait {
                Some(w) if w.wait > self.retry.max_wait => {
                    return Err(self.too_long(&what, &failure.kind, &w));
                }
                Some(w) => {
                    // The server's wait holds for every request of this client, not just this one.
                    self.hold.extend(w.wait);
                    w.wait
                }
                None => backoff(&self.retry, attempt, &mut jitter),
            };
            if attempt >= self.retry.max_attempts {
                return Err(self.error(&what, failure));
            }
            self.note_retry(&what, &failure.kind, &label, wait, attempt);
            if !self.stop.sleep(wait).await {
                return Err(self.stopped(&what));
            }
            attempt += 1;
        }
    }
}

/// A duration for people: seconds and up, and no astronomy.
fn human(d: Duration) -> String {
    const CENTURY: u64 = 100 * 365 * 86_400;
    if d.as_secs() >= CENTURY {
        return "more than a century".into();
    }
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
}

/// What a request path segment keeps as it is: RFC 3986's unreserved characters. Everything
/// else, `/` included (a GitLab project path is one segment), is percent-encoded.
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

#[cfg(test)]
mod tests {
    use super::*;
    use answer::error_message;
    use reqwest::header::HeaderValue;
    use retry::exhausted_budget;
    use tokio::time::Instant;

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

    /// A transport failure keeps reqwest's error as its source; the message stays the
    /// friendly text.
    #[tokio::test]
    async fn a_transport_failure_keeps_its_source_under_the_friendly_text() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        let retry = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        };
        let opts = ClientOptions::new(retry, 1, Stop::new(), None, false).expect("client");
        let api = Api::new(
            Server::Jira,
            &format!("http://127.0.0.1:{port}"),
            Auth::Bearer(Secret::new("t")),
            &opts,
        );
        let e = match api.send::<serde_json::Value>(Request::get("/x")).await {
            Err(e) => e,
            Ok(_) => panic!("nothing listens there"),
        };
        let text = e.to_string();
        assert!(
            text.starts_with("Jira GET /x: cannot connect: ")
                && text.ends_with("; check jira.url and that this machine can reach it"),
            "{text}"
        );
        let source = std::error::Error::source(&e).expect("the transport's error is kept");
        let transport = source
            .downcast_ref::<reqwest::Error>()
            .expect("reqwest's own error");
        assert!(transport.is_connect(), "{transport:?}");
    }
}
