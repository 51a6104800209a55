//! Jira's issue webhooks as a *trigger*: an authenticated event queues its issue id, and the
//! service runs a targeted pass for the ids queued (see `service`). The reconciler stays
//! level-triggered: a lost, duplicated, reordered or forged event can make the mirror late,
//! never wrong, because the pass reads the issue from Jira and applies no version older than
//! the one applied before.
//!
//! Checks, in order, before anything is queued: room (more than `MAX_IN_FLIGHT` deliveries
//! being read → 503, Jira retries), the declared size (over 1 MiB → 413 before a byte is
//! read), a URL secret when the delivery is unsigned (→ 401 before the body is read), the body
//! itself (read within `READ_TIMEOUT` → else 408; over 1 MiB → 413), the signature (an
//! `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>` as Jira Cloud sends for admin
//! webhooks with a secret; `?secret=` in the URL is for Data Center, which cannot sign; both
//! compared in constant time → 401), the JSON (an issue event without `issue.id` → 400).
//! Other events, issues of unmapped projects and exact replays are answered 202 and ignored.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::domain::JiraId;
use crate::metrics::Metrics;
use crate::secret::Secret;

/// Jira bodies are a few kilobytes; more is not an issue event.
pub const MAX_BODY: usize = 1024 * 1024;
/// Events for the same issue closer than this run in one targeted pass.
pub const COALESCE: Duration = Duration::from_secs(1);
/// Ids per targeted pass at most (each 50 ids cost one Jira search).
pub const MAX_IDS_PER_PASS: usize = 500;
/// Deliveries read at once at most; more are answered 503 (Jira retries) so that slow or
/// hostile clients cannot hold the service's memory or sockets.
pub const MAX_IN_FLIGHT: usize = 32;
/// A body that has not arrived by then is not a webhook (Jira sends a few kilobytes at once).
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How many recent events are remembered to recognise a replay.
const REPLAY_MEMORY: usize = 10_000;
/// Issues waiting for a targeted pass at most: more are answered 503 (Jira retries, and the
/// next scheduled pass finds the change anyway), so a sender with the secret, or a bulk edit
/// faster than passes, cannot grow the queue without bound. Five minutes of passes' worth.
pub const MAX_PENDING: usize = 50_000;
/// Refused deliveries are logged at most this often (a scanner must not flood the journal).
const WARN_EVERY: Duration = Duration::from_secs(60);

/// What became of a delivery (the `outcome` label of `jgr_webhook_events_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Queued,
    Replayed,
    UnknownEvent,
    Unmapped,
    Unauthorized,
    Malformed,
    TooLarge,
    TimedOut,
    Busy,
}

impl Outcome {
    /// Every outcome, the accepted ones first.
    pub const ALL: [Outcome; 9] = [
        Outcome::Queued,
        Outcome::Replayed,
        Outcome::UnknownEvent,
        Outcome::Unmapped,
        Outcome::Unauthorized,
        Outcome::Malformed,
        Outcome::TooLarge,
        Outcome::TimedOut,
        Outcome::Busy,
    ];

    /// Answered with an error (not authentic, not an event, too big, too slow, no room), as
    /// opposed to accepted (202), whether or not it triggered anything.
    pub fn refused(self) -> bool {
        self.status() != StatusCode::ACCEPTED
    }

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Queued => "queued",
            Outcome::Replayed => "replayed",
            Outcome::UnknownEvent => "unknown_event",
            Outcome::Unmapped => "unmapped",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Malformed => "malformed",
            Outcome::TooLarge => "too_large",
            Outcome::TimedOut => "timed_out",
            Outcome::Busy => "busy",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Outcome::Queued | Outcome::Replayed | Outcome::UnknownEvent | Outcome::Unmapped => {
                StatusCode::ACCEPTED
            }
            Outcome::Unauthorized => StatusCode::UNAUTHORIZED,
            Outcome::Malformed => StatusCode::BAD_REQUEST,
            Outcome::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Outcome::TimedOut => StatusCode::REQUEST_TIMEOUT,
            Outcome::Busy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An issue event, as far as a trigger needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `jira:issue_created`, `jira:issue_updated`, `jira:issue_deleted`, or another.
    pub name: String,
    /// `None` for an event that names no issue.
    pub issue_id: Option<JiraId>,
    pub issue_key: Option<String>,
    /// Jira's `timestamp` (epoch milliseconds), which with the name and id makes a replay
    /// recognisable.
    pub timestamp: Option<i64>,
}

fn is_issue_event(name: &str) -> bool {
    matches!(
        name,
        "jira:issue_created" | "jira:issue_updated" | "jira:issue_deleted"
    )
}

impl Event {
    fn is_issue_event(&self) -> bool {
        is_issue_event(&self.name)
    }

    fn project(&self) -> Option<&str> {
        self.issue_key.as_deref()?.rsplit_once('-').map(|(p, _)| p)
    }
}

/// Whether the delivery carries the secret: a valid `X-Hub-Signature` over the raw body, or
/// the secret as the URL's `secret` query parameter. Both compared in constant time.
pub fn authentic(secret: &Secret, headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> bool {
    if let Some(header) = headers.get("x-hub-signature") {
        // A signature, when sent, decides: a bad one is not rescued by a URL secret.
        let signature = header
            .to_str()
            .ok()
            .and_then(|v| v.trim().strip_prefix("sha256="))
            .and_then(decode_hex);
        let Some(signature) = signature else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
            return false;
        };
        mac.update(body);
        return mac.verify_slice(&signature).is_ok();
    }
    url_secret_matches(secret, query)
}

/// Whether the URL's `secret` query parameter is the secret (compared in constant time).
fn url_secret_matches(secret: &Secret, query: Option<&str>) -> bool {
    let given = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("secret="))
        .map(percent_decode);
    given.is_some_and(|given| bool::from(given.as_bytes().ct_eq(secret.expose().as_bytes())))
}

/// The event in a body, or why it is not one. Events other than issue events (comments,
/// sprints, projects...) need no issue and come back without an `issue_id`.
pub fn parse(body: &[u8]) -> std::result::Result<Event, &'static str> {
    let v: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON")?;
    let name = v
        .get("webhookEvent")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !is_issue_event(&name) {
        return Ok(Event {
            name,
            issue_id: None,
            issue_key: None,
            timestamp: None,
        });
    }
    let issue = v.get("issue").ok_or("the body has no issue")?;
    let issue_id: JiraId = match issue.get("id") {
        Some(Value::String(s)) => s.parse().ok(),
        Some(Value::Number(n)) => n.as_u64().map(JiraId::new),
        _ => return Err("the issue has no id"),
    }
    .ok_or("the issue id is not a number")?;
    // A key is what maps the event to a project: one that is not a Jira key (too long, control
    // characters) makes the delivery malformed rather than a megabyte "project" in the queue.
    let issue_key = match issue.get("key").and_then(Value::as_str) {
        Some(key) => Some(
            key.parse::<crate::domain::JiraKey>()
                .map_err(|_| "the issue key is not a Jira issue key")?
                .to_string(),
        ),
        None => None,
    };
    Ok(Event {
        name,
        issue_id: Some(issue_id),
        issue_key,
        timestamp: v.get("timestamp").and_then(Value::as_i64),
    })
}

/// An issue an event named, waiting for a targeted pass.
#[derive(Clone, Debug)]
pub struct Queued {
    pub issue_id: JiraId,
    /// The Jira project of the event's issue key (upper case), when the event had a key: only
    /// the mappings of that project need to look at the issue.
    pub project: Option<String>,
    /// When its first event arrived (for the latency metric).
    pub arrived: Instant,
}

/// The Jira projects a batch concerns: `None` when an event carried no key (then every
/// mapping looks).
pub fn projects_of(batch: &[Queued]) -> Option<HashSet<String>> {
    batch.iter().map(|q| q.project.clone()).collect()
}

/// Issues waiting for a targeted pass.
#[derive(Default)]
pub struct Triggers {
    pending: Mutex<Pending>,
    notify: Notify,
}

#[derive(Default)]
struct Pending {
    ids: HashMap<JiraId, Queued>,
    /// The order ids arrived in, so the oldest go first when a pass takes only some.
    order: VecDeque<JiraId>,
    /// Recent (event, id, timestamp): the same delivery twice is a replay.
    seen: HashSet<(String, JiraId, i64)>,
    seen_order: VecDeque<(String, JiraId, i64)>,
    last_pass: Option<Instant>,
}

impl Triggers {
    /// Queue the event's issue: `Replayed` for a recent delivery seen again, `Busy` when
    /// `MAX_PENDING` issues already wait (a new issue only; one already queued is merged).
    pub fn queue(&self, event: &Event) -> Outcome {
        // An event that names no issue has nothing to queue.
        let Some(id) = event.issue_id else {
            return Outcome::Replayed;
        };
        let mut p = crate::lock_unpoisoned(&self.pending);
        if p.ids.len() >= MAX_PENDING && !p.ids.contains_key(&id) {
            return Outcome::Busy;
        }
        if let Some(ts) = event.timestamp {
            let key = (event.name.clone(), id, ts);
            if !p.seen.insert(key.clone()) {
                return Outcome::Replayed;
            }
            p.seen_order.push_back(key);
            if p.seen_order.len() > REPLAY_MEMORY {
                if let Some(old) = p.seen_order.pop_front() {
                    p.seen.remove(&old);
                }
            }
        }
        let project = event.project().map(str::to_ascii_uppercase);
        match p.ids.get_mut(&id) {
            // A key from another project: the issue moved, and both projects' mappings look.
            Some(q) if q.project != project => q.project = None,
            Some(_) => {}
            None => {
                let queued = Queued {
                    issue_id: id,
                    project,
                    arrived: Instant::now(),
                };
                p.ids.insert(id, queued);
                p.order.push_back(id);
            }
        }
        drop(p);
        self.notify.notify_one();
        Outcome::Queued
    }

    /// Wait until ids are queued and a targeted pass may start: at once when none ran within
    /// the last `COALESCE`, else when that much has passed since the last one began (so a burst
    /// becomes a few passes, not one per event). Then take up to `MAX_IDS_PER_PASS` ids, oldest
    /// first.
    pub async fn next_batch(&self) -> Vec<Queued> {
        loop {
            let wait = {
                let p = crate::lock_unpoisoned(&self.pending);
                if p.ids.is_empty() {
                    None
                } else {
                    Some(
                        p.last_pass
                            .map(|t| (t + COALESCE).saturating_duration_since(Instant::now()))
                            .unwrap_or_default(),
                    )
                }
            };
            match wait {
                None => self.notify.notified().await,
                Some(w) if w > Duration::ZERO => tokio::time::sleep(w).await,
                Some(_) => {
                    let mut p = crate::lock_unpoisoned(&self.pending);
                    p.last_pass = Some(Instant::now());
                    let n = p.order.len().min(MAX_IDS_PER_PASS);
                    let taken: Vec<JiraId> = p.order.drain(..n).collect();
                    return taken
                        .into_iter()
                        .filter_map(|id| p.ids.remove(&id))
                        .collect();
                }
            }
        }
    }

    /// Issues a failed targeted pass must try again (they keep their arrival time).
    pub fn requeue(&self, batch: Vec<Queued>) {
        let mut p = crate::lock_unpoisoned(&self.pending);
        for q in batch {
            if let Some(newer) = p.ids.get_mut(&q.issue_id) {
                if newer.project != q.project {
                    newer.project = None;
                }
                newer.arrived = newer.arrived.min(q.arrived);
            } else {
                p.order.push_back(q.issue_id);
                p.ids.insert(q.issue_id, q);
            }
        }
        drop(p);
        self.notify.notify_one();
    }

    pub fn pending(&self) -> usize {
        crate::lock_unpoisoned(&self.pending).ids.len()
    }
}

/// What the webhook endpoint shares with the service.
pub struct Receiver {
    secret: Secret,
    /// The Jira projects of the current mappings (a reload changes them).
    projects: RwLock<HashSet<String>>,
    triggers: Arc<Triggers>,
    metrics: Arc<Metrics>,
    in_flight: Semaphore,
    last_warning: Mutex<Option<std::time::Instant>>,
    refused_since_warning: Mutex<u64>,
}

impl Receiver {
    pub fn new(
        secret: Secret,
        projects: impl IntoIterator<Item = String>,
        triggers: Arc<Triggers>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Receiver {
            secret,
            projects: RwLock::new(project_keys(projects)),
            triggers,
            metrics,
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
            last_warning: Mutex::new(None),
            refused_since_warning: Mutex::new(0),
        }
    }

    /// After a reload: events of these projects are queued from now on.
    pub fn set_projects(&self, projects: impl IntoIterator<Item = String>) {
        let mut p = self.projects.write().unwrap_or_else(|e| e.into_inner());
        *p = project_keys(projects);
    }

    /// Judge one delivery and queue its issue if it is one.
    pub fn receive(&self, headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Outcome {
        if !authentic(&self.secret, headers, query, body) {
            return self.refuse_unauthenticated();
        }
        let event = match parse(body) {
            Ok(e) => e,
            Err(why) => {
                tracing::warn!("a signed webhook delivery was refused (400): {why}");
                return self.count(Outcome::Malformed);
            }
        };
        if !event.is_issue_event() {
            tracing::debug!(event = %event.name, "webhook event ignored: not an issue event");
            return self.count(Outcome::UnknownEvent);
        }
        let mapped = {
            let projects = self.projects.read().unwrap_or_else(|e| e.into_inner());
            event
                .project()
                .is_none_or(|p| projects.contains(&p.to_ascii_uppercase()))
        };
        if !mapped {
            tracing::debug!(issue = ?event.issue_key, "webhook event ignored: no mapping has its project");
            return self.count(Outcome::Unmapped);
        }
        match self.triggers.queue(&event) {
            Outcome::Queued => {}
            Outcome::Busy => {
                self.warn_refused(
                    &format!("a webhook delivery was answered 503: {MAX_PENDING} issues already wait for a targeted pass"),
                    "the scheduled passes will find the change; if this lasts, shorten [schedule] reconcile or look for a sender flooding the webhook",
                );
                return self.count(Outcome::Busy);
            }
            other => return self.count(other),
        }
        if let Some(id) = event.issue_id {
            tracing::debug!(event = %event.name, issue = ?event.issue_key, id = %id, "webhook event queued");
        }
        self.count(Outcome::Queued)
    }

    fn refuse_unauthenticated(&self) -> Outcome {
        self.warn_refused(
            "a webhook delivery without a valid signature or secret was refused (401)",
            "check the secret of Jira's webhook",
        );
        self.count(Outcome::Unauthorized)
    }

    fn count(&self, outcome: Outcome) -> Outcome {
        self.metrics.inc(
            "jgr_webhook_events_total",
            "Webhook deliveries, by outcome.",
            &[("outcome", outcome.label())],
            1.0,
        );
        self.metrics.set(
            "jgr_webhook_last_delivery_timestamp_seconds",
            "Unix time of the last webhook delivery, by outcome.",
            &[("outcome", outcome.label())],
            chrono::Utc::now().timestamp() as f64,
        );
        outcome
    }

    /// One warning a minute at most, with how many were refused since the last one.
    /// Log a refused delivery and what to do, at most once a minute with the count since.
    fn warn_refused(&self, what: &str, fix: &str) {
        let mut count = crate::lock_unpoisoned(&self.refused_since_warning);
        *count += 1;
        let mut last = crate::lock_unpoisoned(&self.last_warning);
        if last.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            tracing::warn!(
                refused = *count,
                "{what}; {fix} (this warning repeats at most once a minute)"
            );
            *last = Some(std::time::Instant::now());
            *count = 0;
        }
    }
}

/// Jira project keys are upper case; a mapping written `vsa` still means `VSA`.
fn project_keys(projects: impl IntoIterator<Item = String>) -> HashSet<String> {
    projects
        .into_iter()
        .map(|p| p.to_ascii_uppercase())
        .collect()
}

/// The webhook endpoint: `POST path` (a path `config` has checked the router can take).
pub fn router(path: &str, receiver: Arc<Receiver>) -> Router {
    Router::new()
        .route(path, post(deliver))
        .with_state(receiver)
}

async fn deliver(
    State(receiver): State<Arc<Receiver>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer =
        |outcome: Outcome, why: &str| (outcome.status(), format!("{why}\n")).into_response();
    let Ok(_permit) = receiver.in_flight.try_acquire() else {
        receiver.count(Outcome::Busy);
        return answer(
            Outcome::Busy,
            "busy: too many deliveries at once, retry later",
        );
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        receiver.count(Outcome::TooLarge);
        return answer(Outcome::TooLarge, "the body is larger than 1 MiB");
    }
    // Unsigned deliveries must carry the URL secret: refuse them before reading a byte.
    if !headers.contains_key("x-hub-signature")
        && !url_secret_matches(&receiver.secret, query.as_deref())
    {
        let outcome = receiver.refuse_unauthenticated();
        return answer(outcome, outcome.label());
    }
    // The raw bytes, as signed: nothing is parsed before the signature is checked.
    let bytes = match tokio::time::timeout(READ_TIMEOUT, read_body(body)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(outcome)) => {
            receiver.count(outcome);
            let why = match outcome {
                Outcome::TooLarge => "the body is larger than 1 MiB",
                _ => "the body was cut off",
            };
            return answer(outcome, why);
        }
        Err(_) => {
            receiver.count(Outcome::TimedOut);
            return answer(Outcome::TimedOut, "the body did not arrive within 10 s");
        }
    };
    let outcome = receiver.receive(&headers, query.as_deref(), &bytes);
    answer(outcome, outcome.label())
}

/// The body, up to `MAX_BODY` bytes: more is `TooLarge`, a broken stream `Malformed`.
async fn read_body(body: Body) -> std::result::Result<Vec<u8>, Outcome> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Outcome::Malformed)?;
        if bytes.len() + chunk.len() > MAX_BODY {
            return Err(Outcome::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The signature Jira sends for `body` under `secret` (tests and the simulator sign the same
/// way).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    format!(
        "sha256={}",
        base16ct::lower::encode_string(&mac.finalize().into_bytes())
    )
}

/// A signature's hex, in either case (some senders write it upper case), decoded in constant
/// time; `None` when it is not hex or not as long as an HMAC-SHA256.
fn decode_hex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let n = base16ct::mixed::decode(s, &mut out).ok()?.len();
    (n == out.len()).then_some(out)
}

/// A query parameter's value as a form encodes it: `+` is a space, `%XX` a byte.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const SECRET: &str = "a-webhook-secret-of-some-length";

    fn signed(body: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "x-hub-signature",
            HeaderValue::from_str(&signature(SECRET, body)).expect("header"),
        );
        h
    }

    #[test]
    fn signatures_and_url_secrets_are_checked() {
        let secret = Secret::new(SECRET);
        let body = br#"{"webhookEvent":"jira:issue_updated","issue":{"id":"10001"}}"#;
        assert!(authentic(&secret, &signed(body), None, body));
        assert!(
            !authentic(&secret, &signed(b"other body"), None, body),
            "signed another body"
        );
        assert!(
            !authentic(&secret, &HeaderMap::new(), None, body),
            "unsigned"
        );
        let mut wrong = HeaderMap::new();
        wrong.insert("x-hub-signature", HeaderValue::from_static("sha256=00ff"));
        assert!(!authentic(&secret, &wrong, None, body));
        assert!(authentic(
            &secret,
            &HeaderMap::new(),
            Some(&format!("secret={SECRET}")),
            body
        ));
        assert!(!authentic(
            &secret,
            &HeaderMap::new(),
            Some("secret=guess"),
            body
        ));
        // A bad signature is not rescued by a query secret: the signature, when sent, decides.
        assert!(!authentic(
            &secret,
            &wrong,
            Some(&format!("secret={SECRET}")),
            body
        ));
    }

    #[test]
    fn url_secrets_are_read_as_forms_encode_them() {
        assert_eq!(percent_decode("a%2Bb+c%20d"), "a+b c d");
        assert_eq!(
            percent_decode("%41%zz%4"),
            "A%zz%4",
            "a broken escape stays as it is"
        );
        assert_eq!(percent_decode("%C3%A9%ff"), "é\u{FFFD}");
        let secret = Secret::new("s3cret+with space&more");
        let query = format!(
            "a=1&secret={}",
            crate::http::percent_encode(secret.expose())
        );
        assert!(url_secret_matches(&secret, Some(&query)));
        assert!(!url_secret_matches(&secret, Some("secret=s3cret")));
        assert_eq!(decode_hex("00"), None, "not as long as a signature");
        assert_eq!(decode_hex(&"zz".repeat(32)), None);
        assert_eq!(decode_hex(&"aB".repeat(32)), Some([0xab; 32]));
    }

    /// Known answers computed outside this code, with
    /// `printf '%s' BODY | openssl dgst -sha256 -hmac SECRET` (the second is also the
    /// well-known HMAC-SHA256 example for "key" and the quick brown fox).
    #[test]
    fn signatures_match_known_answers() {
        let body = br#"{"webhookEvent":"jira:issue_updated","issue":{"id":"10001"}}"#;
        let known = "sha256=82214ea74e47e886e3061d8f651b6c710d2e6b2a7512ad367762fe63e4c82d40";
        assert_eq!(signature(SECRET, body), known);
        let mut h = HeaderMap::new();
        h.insert("x-hub-signature", HeaderValue::from_static(known));
        assert!(authentic(&Secret::new(SECRET), &h, None, body));
        // Upper-case hex, as some senders write it, is the same signature.
        h.insert(
            "x-hub-signature",
            HeaderValue::from_str(&known.to_uppercase().replacen("SHA256", "sha256", 1))
                .expect("header"),
        );
        assert!(authentic(&Secret::new(SECRET), &h, None, body));
        assert_eq!(
            signature("key", b"The quick brown fox jumps over the lazy dog"),
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    /// Every path the config accepts builds the router (axum panics on the ones it cannot
    /// take; `config` refuses those).
    #[test]
    fn every_accepted_webhook_path_builds_the_router() {
        let receiver = || {
            Arc::new(Receiver::new(
                Secret::new(SECRET),
                Vec::new(),
                Arc::default(),
                Arc::default(),
            ))
        };
        let refused = std::panic::catch_unwind(|| router("/hooks/:id", receiver()));
        assert!(refused.is_err(), "why config refuses such paths");
        for path in [
            "/webhook/jira",
            "/",
            "/a:b/c*d",
            "/hooks/jira-1.0_x~y",
            "/%41",
        ] {
            let cfg = crate::config::with_webhook_path(path).expect(path);
            let path = cfg.webhook.expect("webhook").path;
            let built = std::panic::catch_unwind(|| router(&path, receiver()));
            assert!(built.is_ok(), "{path} builds the router");
        }
    }

    #[test]
    fn events_are_read_or_refused() {
        let e = parse(br#"{"webhookEvent":"jira:issue_created","timestamp":5,"issue":{"id":"10001","key":"VSA-1"}}"#)
            .expect("event");
        assert_eq!(e.issue_id, Some(JiraId::new(10001)));
        assert_eq!(e.project(), Some("VSA"));
        assert!(e.is_issue_event());
        assert!(parse(b"not json").is_err());
        assert!(parse(br#"{"webhookEvent":"jira:issue_updated","issue":{}}"#).is_err());
        assert!(
            parse(br#"{"webhookEvent":"jira:issue_updated","issue":{"id":"1 OR 1=1"}}"#).is_err()
        );
        let other =
            parse(br#"{"webhookEvent":"comment_created","issue":{"id":7}}"#).expect("event");
        assert!(!other.is_issue_event());
        let sprint = parse(br#"{"webhookEvent":"sprint_started","sprint":{"id":3}}"#)
            .expect("an event that names no issue is still an event");
        assert!(!sprint.is_issue_event());
    }

    #[test]
    fn arbitrary_payloads_never_panic_the_parser() {
        let seeds: &[&[u8]] = &[
            br#"{"webhookEvent":"jira:issue_updated","timestamp":1700000000000,"issue":{"id":"10001",
                "key":"VSA-1","fields":{"project":{"key":"VSA"}}},"changelog":{"items":[]}}"#,
        ];
        crate::rng::fuzz::check("webhook payload", seeds, 3000, |body| match parse(body) {
            Ok(e) => {
                let _ = (e.project(), e.is_issue_event());
            }
            Err(why) => assert!(!why.is_empty()),
        });
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_coalesce_and_replays_are_recognised() {
        let t = Triggers::default();
        let event = |id: u32, ts: i64| Event {
            name: "jira:issue_updated".into(),
            issue_id: Some(JiraId::new(id.into())),
            issue_key: Some(format!("VSA-{id}")),
            timestamp: Some(ts),
        };
        assert_eq!(t.queue(&event(1, 100)), Outcome::Queued);
        assert_eq!(
            t.queue(&event(1, 100)),
            Outcome::Replayed,
            "the same delivery again"
        );
        assert_eq!(
            t.queue(&event(1, 101)),
            Outcome::Queued,
            "a new event for the same issue"
        );
        let first = t.next_batch().await;
        assert_eq!(first.len(), 1, "the first pass starts at once");
        let started = tokio::time::Instant::now();
        for i in 0..500u32 {
            t.queue(&event(i % 50, i64::from(i) + 1000));
        }
        let second = t.next_batch().await;
        assert_eq!(second.len(), 50, "500 events for 50 issues: one pass");
        assert!(started.elapsed() >= COALESCE - Duration::from_millis(1));
        assert_eq!(t.pending(), 0);
        assert_eq!(
            projects_of(&second),
            Some(HashSet::from(["VSA".to_string()]))
        );
        // The issue moved between the events: both projects' mappings must look.
        t.queue(&event(1, 5000));
        t.queue(&Event {
            issue_key: Some("OPS-9".into()),
            ..event(1, 5001)
        });
        let moved = t.next_batch().await;
        assert_eq!(projects_of(&moved), None);
    }

    #[test]
    fn the_queue_of_waiting_issues_is_bounded() {
        let t = Triggers::default();
        let event = |id: u32| Event {
            name: "jira:issue_updated".into(),
            issue_id: Some(JiraId::new(id.into())),
            issue_key: Some(format!("VSA-{id}")),
            timestamp: None,
        };
        for id in 0..MAX_PENDING as u32 {
            assert_eq!(t.queue(&event(id)), Outcome::Queued);
        }
        assert_eq!(t.queue(&event(MAX_PENDING as u32)), Outcome::Busy);
        assert_eq!(t.pending(), MAX_PENDING);
        // An issue already waiting takes no room: its event is merged, not refused.
        assert_eq!(t.queue(&event(7)), Outcome::Queued);
    }

    #[test]
    fn an_issue_key_that_is_no_jira_key_is_malformed() {
        let body = |key: &str| {
            serde_json::json!({
                "webhookEvent": "jira:issue_updated",
                "timestamp": 1,
                "issue": {"id": "10001", "key": key},
            })
            .to_string()
        };
        let huge = format!("VSA-{}", "9".repeat(1 << 20));
        for key in [huge.as_str(), "VSA-1\u{1b}[2J", ""] {
            assert_eq!(
                parse(body(key).as_bytes()),
                Err("the issue key is not a Jira issue key"),
                "{:.40}",
                key
            );
        }
        let event = parse(body("VSA-1").as_bytes()).expect("a Jira key");
        assert_eq!(event.issue_key.as_deref(), Some("VSA-1"));
    }
}
