//! Stateful simulated Jira and GitLab servers on 127.0.0.1, for jira-gitlab-reconciler's tests,
//! benchmark and `demo` command. This crate knows nothing of the reconciler: it speaks the
//! servers' HTTP APIs and writes the config text that points a reconciler at them.
//!
//! The fakes They behave like the real servers in the ways that have broken sync tools:
//! paging, auth, rate limits, eventually consistent search, time-zone-dependent JQL dates,
//! silently ignored fields. Faults are injected through [`FaultPlan`] so tests can script them.

mod conn;
pub mod gitlab;
#[cfg(test)]
mod hostile_tests;
pub mod jira;
pub mod world;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A clock shared by a fake and its test: real time plus an offset the test can advance,
/// so "ten minutes later" needs no sleeping.
#[derive(Clone, Default)]
pub struct SimClock {
    offset: Arc<Mutex<chrono::Duration>>,
}

impl SimClock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + *lock(&self.offset)
    }
    pub fn advance(&self, by: Duration) {
        let mut off = lock(&self.offset);
        *off += chrono::Duration::from_std(by).unwrap_or_else(|_| chrono::Duration::zero());
    }
    /// Jump to `at` (which may be in the past): a demo or test then plays weeks of history
    /// forward. Writes are stamped with this clock, so move it only forward once data exists.
    pub fn set(&self, at: DateTime<Utc>) {
        *lock(&self.offset) = at - Utc::now();
    }
}

/// One injected misbehaviour of a fake server.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer with this status and a JSON error body; nothing is changed.
    Status(u16),
    /// 429; `retry_after` is the raw `Retry-After` header value, if any.
    RateLimited { retry_after: Option<String> },
    /// 200 with an HTML login page, as a misconfigured proxy does.
    Html,
    /// 200 with a body that is not valid JSON.
    MalformedJson,
    /// Perform the request (the write is committed), then answer with this status: the
    /// client cannot know whether its write happened.
    CommitThenStatus(u16),
    /// Wait this long before handling the request (for client timeouts).
    Delay(Duration),
    /// Hold the request until the test opens the gate, then handle it (even if the client has
    /// hung up meanwhile): a test waits for the request to arrive instead of guessing a delay.
    Hold(Gate),
    /// Reset the connection instead of answering; nothing is changed.
    Reset,
    /// Perform the request (the write is committed), then reset the connection instead of
    /// answering.
    CommitThenReset,
    /// Go down: reset this connection and every other, and refuse connections (nothing
    /// listens on the port) for this long; nothing is changed.
    Down(Duration),
    /// 200 with a body of this many bytes, streamed (never held in memory): the start of a
    /// valid answer, then whitespace. `declared`: with a `Content-Length`, else chunked.
    Huge { bytes: u64, declared: bool },
    /// Answer with this status, these headers and a JSON error body of the server's shape
    /// (absurd rate-limit headers, Jira's `X-RateLimit-Reset` forms).
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
    },
    /// Handle the request as usual and add these headers to the answer (`RateLimit-Remaining:
    /// 0` on a success).
    WithHeaders(Vec<(String, String)>),
    /// Answer with this status and this text as the server's error message (escape
    /// sequences, line breaks, megabytes: whatever a test needs a server to say).
    Says { status: u16, message: String },
}

/// Where [`Fault::Hold`] requests wait. The test sees how many arrived and decides when they
/// go on; nothing depends on how fast the machine is.
#[derive(Clone, Default)]
pub struct Gate(Arc<GateState>);

#[derive(Default)]
struct GateState {
    held: AtomicUsize,
    passed: AtomicUsize,
    open: tokio::sync::Notify,
    is_open: AtomicBool,
}

impl Gate {
    pub fn new() -> Self {
        Gate::default()
    }

    /// Requests that reached the gate (held now or already let through).
    pub fn arrived(&self) -> usize {
        self.0.held.load(Ordering::SeqCst)
    }

    /// Requests let through and handled (a held create has committed once this counts it).
    pub fn passed(&self) -> usize {
        self.0.passed.load(Ordering::SeqCst)
    }

    /// Let every held request, and every later one, through.
    pub fn open(&self) {
        self.0.is_open.store(true, Ordering::SeqCst);
        self.0.open.notify_waiters();
    }

    /// Wait for the gate to open (called by the fake for a held request).
    pub async fn pass(&self) {
        self.0.held.fetch_add(1, Ordering::SeqCst);
        loop {
            // Registered before the check, so an `open` in between is not missed.
            let opened = self.0.open.notified();
            if self.0.is_open.load(Ordering::SeqCst) {
                return;
            }
            opened.await;
        }
    }

    /// Called by the fake once a held request has been handled.
    pub fn handled(&self) {
        self.0.passed.fetch_add(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Gate(arrived {}, passed {})",
            self.arrived(),
            self.passed()
        )
    }
}

/// Gates are equal when they are the same gate.
impl PartialEq for Gate {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// How a page chain never ends (hostile mode of either fake).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageTrap {
    /// The last page leads back to the first: page links or tokens repeat (A→B→A).
    Loop,
    /// As `Loop`, but every link or token is new: none ever repeats.
    EverNew,
}

/// Which requests a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Every request.
    Any,
    /// Searches / issue listings (GET).
    Read,
    /// Issue creation (POST).
    Create,
    /// Issue edits (PUT).
    Update,
}

/// A queue of scripted faults plus an optional seeded random fault rate.
#[derive(Default)]
pub struct FaultPlan {
    scripted: VecDeque<(Route, Fault)>,
    random: Option<(Route, Xorshift, f64, Vec<Fault>)>,
}

impl FaultPlan {
    /// Queue `fault` for the next `times` requests matching `route`.
    pub fn push(&mut self, route: Route, fault: Fault, times: usize) {
        for _ in 0..times {
            self.scripted.push_back((route, fault.clone()));
        }
    }
    /// Each request fails with probability `rate`, with a fault drawn from `faults`.
    pub fn random(&mut self, seed: u64, rate: f64, faults: Vec<Fault>) {
        self.random_on(Route::Any, seed, rate, faults);
    }
    /// Each request of kind `route` fails with probability `rate`, with a fault drawn from
    /// `faults`.
    pub fn random_on(&mut self, route: Route, seed: u64, rate: f64, faults: Vec<Fault>) {
        self.random = Some((route, Xorshift::new(seed), rate, faults));
    }
    pub fn clear(&mut self) {
        self.scripted.clear();
        self.random = None;
    }
    /// The fault for a request of kind `route`, if any. Scripted faults go first, in order.
    pub fn take(&mut self, route: Route) -> Option<Fault> {
        let pos = self
            .scripted
            .iter()
            .position(|(r, _)| *r == Route::Any || *r == route);
        if let Some(pos) = pos {
            return self.scripted.remove(pos).map(|(_, f)| f);
        }
        if let Some((on, rng, rate, faults)) = self.random.as_mut() {
            let applies = *on == Route::Any || *on == route;
            if applies && !faults.is_empty() && rng.next_f64() < *rate {
                let i = (rng.next_u64() % faults.len() as u64) as usize;
                return Some(faults[i].clone());
            }
        }
        None
    }
}

/// A running fake server. Dropping it stops the server.
pub struct ServerHandle {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    door: Arc<conn::Door>,
}

impl ServerHandle {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far (a client that reconnects after a reset shows here).
    pub fn connections(&self) -> u64 {
        self.door.accepted()
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Bind `router` to 127.0.0.1 on `port` (0 = any free port) and serve it on the current
/// tokio runtime until the handle is dropped.
pub async fn serve(router: axum::Router, port: u16) -> std::io::Result<ServerHandle> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let door = Arc::new(conn::Door::default());
    let listener = conn::SimListener::new(listener, door.clone())?;
    let addr = axum::serve::Listener::local_addr(&listener)?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router
        .layer(axum::middleware::from_fn(conn::apply))
        .into_make_service_with_connect_info::<conn::ConnTag>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(ServerHandle {
        addr,
        shutdown: Some(tx),
        door,
    })
}

/// A 200 whose body is `prefix` and then spaces, `bytes` in all, made as it is sent: a 512 MiB
/// answer costs the fake nothing. `sent` counts the bytes handed to the connection, so a test
/// can tell a client that stopped reading from one that read it all.
pub(crate) fn huge_body(
    prefix: &'static str,
    bytes: u64,
    declared: bool,
    sent: Arc<std::sync::atomic::AtomicU64>,
) -> axum::response::Response {
    use std::sync::atomic::Ordering;
    const CHUNK: u64 = 64 * 1024;
    let spaces = axum::body::Bytes::from(vec![b' '; CHUNK as usize]);
    let first = axum::body::Bytes::from_static(prefix.as_bytes());
    let rest = bytes.saturating_sub(first.len() as u64);
    let head = futures_util::stream::iter([first]);
    let tail = futures_util::stream::unfold(rest, move |left| {
        let spaces = spaces.clone();
        async move {
            (left > 0).then(|| {
                let n = left.min(CHUNK);
                (spaces.slice(..n as usize), left - n)
            })
        }
    });
    let counted =
        futures_util::StreamExt::map(futures_util::StreamExt::chain(head, tail), move |chunk| {
            sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            Ok::<_, std::io::Error>(chunk)
        });
    let mut resp = axum::response::Response::new(axum::body::Body::from_stream(counted));
    let headers = resp.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    if declared {
        headers.insert(axum::http::header::CONTENT_LENGTH, bytes.into());
    }
    resp
}

/// `resp` with these headers added (values that are not valid header text are skipped).
pub(crate) fn with_headers(
    mut resp: axum::response::Response,
    headers: &[(String, String)],
) -> axum::response::Response {
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            axum::http::HeaderValue::from_str(value),
        ) {
            resp.headers_mut().append(n, v);
        }
    }
    resp
}

/// Lock a mutex, recovering from poisoning: a fake must keep answering even if a handler
/// panicked in another test thread.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A tiny deterministic PRNG (xorshift64*) for seeded fault injection: a failing run repeats
/// from its seed.
#[derive(Clone, Debug)]
pub struct Xorshift(u64);

impl Xorshift {
    pub fn new(seed: u64) -> Self {
        Xorshift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}
