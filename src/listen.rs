//! The service's HTTP listeners (`[metrics]`: `/metrics` and `/healthz`; `[webhook]`), bound
//! from the config or handed over already bound (systemd socket activation, or a test), and
//! served so that what they cannot serve is shed, never queued:
//!
//! - each listener has a connection limit; a connection over it is accepted and closed at once
//!   (left in the kernel's backlog it would wait there, and the next ones behind it);
//! - a request head must arrive within [`HEADER_READ_TIMEOUT`], counted from the connection's
//!   start and again from the end of each answer, so it is the idle keep-alive timeout too;
//! - a connection lives at most [`CONNECTION_LIFETIME`] (a client that stops reading its
//!   answer would otherwise keep its slot);
//! - the limits together stay below the process's descriptor limit minus [`PASS_RESERVE`], so
//!   a flood cannot take the descriptors the lock, the state database and the HTTP clients of
//!   a pass need. Should the process still run out (`EMFILE`), one spare descriptor lets the
//!   accept loop take the waiting connection off the backlog and close it.

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use futures_util::FutureExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// A request head must arrive within this, from the connection's start or the previous answer.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// No connection is served longer than this (clients reconnect; Jira does).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Descriptors kept for passes whatever the listeners hold: the state database and its two
/// side files, the lock, up to `gitlab.concurrency` (at most 64) connections to each server,
/// DNS look-ups, the runtime and the log (a pass at the default concurrency was measured at
/// under 60 descriptors: see the README's "Run it as a service").
pub const PASS_RESERVE: u64 = 256;
/// `[metrics]`: Prometheus scrapes one request at a time; a few more for people and probes.
pub const METRICS_CONNECTIONS: usize = 16;
/// `[webhook]`: room for a burst (a bulk edit in Jira sends hundreds of events at once, each
/// on its own connection when the sender does not reuse them); 32 deliveries are read at once
/// (`webhook::MAX_IN_FLIGHT`), the others answered 503 at once. An idle connection costs a few
/// kilobytes, so this is a bound on descriptors, not on memory.
pub const WEBHOOK_CONNECTIONS: usize = 512;
/// Shed connections are logged at most this often (a flood must not flood the journal too).
const WARN_EVERY: Duration = Duration::from_secs(60);
/// The soft descriptor limit is raised to the hard one, but not beyond this.
const MAX_DESCRIPTORS: u64 = 65_536;

/// Listeners bound before the service starts: by systemd (socket activation, `LISTEN_FDS`), or
/// by a test that holds its port instead of releasing it and hoping it stays free.
#[derive(Debug, Default)]
pub struct Sockets {
    metrics: Option<std::net::TcpListener>,
    webhook: Option<std::net::TcpListener>,
}

impl Sockets {
    /// Serve `/metrics` and `/healthz` on this listener instead of binding `metrics.listen`.
    pub fn with_metrics(mut self, listener: std::net::TcpListener) -> Self {
        self.metrics = Some(listener);
        self
    }

    /// Receive webhooks on this listener instead of binding `webhook.listen`.
    pub fn with_webhook(mut self, listener: std::net::TcpListener) -> Self {
        self.webhook = Some(listener);
        self
    }

    pub fn has_metrics(&self) -> bool {
        self.metrics.is_some()
    }

    pub fn has_webhook(&self) -> bool {
        self.webhook.is_some()
    }

    pub fn take_metrics(&mut self) -> Option<std::net::TcpListener> {
        self.metrics.take()
    }

    pub fn take_webhook(&mut self) -> Option<std::net::TcpListener> {
        self.webhook.take()
    }

    /// The sockets systemd passed this process (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`),
    /// named `metrics` and `webhook` by the socket units' `FileDescriptorName=`. None when
    /// systemd passed none (or passed them to another process). Taken once per process.
    pub fn from_systemd() -> Result<Sockets> {
        let var = |name: &str| std::env::var(name).ok();
        passed_sockets(
            var("LISTEN_PID").as_deref(),
            var("LISTEN_FDS").as_deref(),
            var("LISTEN_FDNAMES").as_deref(),
        )
    }
}

/// Taken once: a descriptor must not become two listeners.
static SYSTEMD_SOCKETS_TAKEN: AtomicBool = AtomicBool::new(false);
/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

fn passed_sockets(pid: Option<&str>, fds: Option<&str>, names: Option<&str>) -> Result<Sockets> {
    let mut sockets = Sockets::default();
    let for_us = pid.and_then(|p| p.trim().parse::<u32>().ok()) == Some(std::process::id());
    let Some(count) = fds.filter(|_| for_us).map(str::trim) else {
        return Ok(sockets);
    };
    if SYSTEMD_SOCKETS_TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(sockets);
    }
    let count: RawFd = count
        .parse()
        .ok()
        .filter(|n| (0..=64).contains(n))
        .ok_or_else(|| Error::Config(format!("LISTEN_FDS = {count:?} is not a socket count")))?;
    let names: Vec<&str> = names.unwrap_or("").split(':').collect();
    for i in 0..count {
        let fd = LISTEN_FDS_START + i;
        let name = names.get(i as usize).copied().unwrap_or("");
        let slot = match name {
            "metrics" => &mut sockets.metrics,
            "webhook" => &mut sockets.webhook,
            other => {
                return Err(Error::Config(format!(
                    "systemd passed a socket named {other:?} (descriptor {fd}); name the socket \
                     units' sockets with FileDescriptorName=metrics or FileDescriptorName=webhook"
                )))
            }
        };
        if !is_listening_tcp(fd) {
            return Err(Error::Config(format!(
                "the socket systemd passed as {name:?} (descriptor {fd}) is not a listening TCP \
                 socket; use ListenStream= with an address:port in its socket unit"
            )));
        }
        if slot.is_some() {
            return Err(Error::Config(format!(
                "systemd passed two sockets named {name:?}; pass one of each"
            )));
        }
        // SAFETY: systemd passed this descriptor to this process (LISTEN_PID is ours) as a
        // listening TCP socket (checked just above), and nothing else takes it: this runs once.
        let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        // Not inherited by anything this process might start.
        // SAFETY: fcntl on a descriptor this function now owns.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        *slot = Some(listener);
    }
    Ok(sockets)
}

/// Whether `fd` is an open, listening TCP socket (IPv4 or IPv6).
fn is_listening_tcp(fd: RawFd) -> bool {
    let option = |name: libc::c_int| -> Option<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `value`, an int.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                name,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        (rc == 0).then_some(value)
    };
    option(libc::SO_ACCEPTCONN) == Some(1)
        && option(libc::SO_TYPE) == Some(libc::SOCK_STREAM)
        && matches!(
            option(libc::SO_DOMAIN),
            Some(libc::AF_INET | libc::AF_INET6)
        )
}

/// The listener for `key` (`metrics.listen`, `webhook.listen`): the one handed over, else
/// `addr` bound now. A port that cannot be bound is the config's to fix (exit 2).
pub async fn open(
    handed: Option<std::net::TcpListener>,
    addr: SocketAddr,
    key: &str,
    section: &str,
) -> Result<TcpListener> {
    let Some(listener) = handed else {
        return TcpListener::bind(addr).await.map_err(|e| {
            Error::Config(format!(
                "cannot listen on {key} = {addr}: {e}; pick a free port or remove [{section}]"
            ))
        });
    };
    let handed_to = |e| Error::io(format!("the socket handed over for {key}"), e);
    listener.set_nonblocking(true).map_err(handed_to)?;
    let listener = TcpListener::from_std(listener).map_err(handed_to)?;
    if let Ok(local) = listener.local_addr() {
        if local != addr {
            tracing::info!(%key, configured = %addr, listening = %local, "serving on the socket handed over, not on the configured address");
        }
    }
    Ok(listener)
}

/// Raise the soft descriptor limit to the hard one (systemd starts services with a soft limit
/// of 1,024 whatever the hard limit) and return the soft limit now in force.
pub fn raise_descriptor_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    let wanted = lim.rlim_max.min(MAX_DESCRIPTORS);
    if lim.rlim_cur < wanted {
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit struct. Refused (a seccomp filter, say), the
        // limit stays as it was.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return wanted;
        }
    }
    lim.rlim_cur
}

/// Each listener's connection limit: as `wanted`, or scaled down together (at least one each)
/// so that they leave [`PASS_RESERVE`] of `descriptors` to the passes.
pub fn connection_limits(descriptors: u64, wanted: &[usize]) -> Vec<usize> {
    let total: usize = wanted.iter().sum();
    let room = descriptors.saturating_sub(PASS_RESERVE) as usize;
    if total <= room {
        return wanted.to_vec();
    }
    wanted
        .iter()
        .map(|w| (w * room / total.max(1)).max(1))
        .collect()
}

/// Serve `app` on `listener` in the background, at most `max_connections` at once; returns
/// the address it listens on. `name` labels `jgr_connections_shed_total`.
pub fn serve(
    name: &'static str,
    listener: TcpListener,
    app: Router,
    max_connections: usize,
    metrics: Arc<Metrics>,
) -> Result<SocketAddr> {
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io(format!("the {name} listener"), e))?;
    let server = Server {
        name,
        listener,
        app,
        slots: Arc::new(Semaphore::new(max_connections.max(1))),
        metrics,
        spare: spare_descriptor(),
        shed_since_warning: 0,
        last_warning: None,
    };
    tokio::spawn(server.run());
    Ok(addr)
}

struct Server {
    name: &'static str,
    listener: TcpListener,
    app: Router,
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    /// Closed to make room for one accept when the process is out of descriptors.
    spare: Option<std::fs::File>,
    shed_since_warning: u64,
    last_warning: Option<Instant>,
}

impl Server {
    async fn run(mut self) {
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => match self.slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        tokio::spawn(serve_connection(stream, self.app.clone(), slot));
                    }
                    Err(_) => self.shed(stream, "over_limit"),
                },
                Err(e) if out_of_descriptors(&e) => self.make_room().await,
                // The peer gave up before it was accepted (ECONNABORTED...): nothing to do.
                Err(e) => tracing::debug!(listener = self.name, "accept failed: {e}"),
            }
        }
    }

    /// Close a connection the listener cannot serve, and count it.
    fn shed(&mut self, stream: TcpStream, why: &'static str) {
        drop(stream);
        self.metrics.inc(
            "jgr_connections_shed_total",
            "Connections closed at once because a listener was at its connection limit or the process out of descriptors.",
            &[("listener", self.name), ("reason", why)],
            1.0,
        );
        self.shed_since_warning += 1;
        if self.last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            tracing::warn!(listener = self.name, reason = why, shed = self.shed_since_warning,
                "closing connections the listener cannot serve (this warning repeats at most once a minute)");
            self.last_warning = Some(Instant::now());
            self.shed_since_warning = 0;
        }
    }

    /// Out of descriptors: take the waiting connection off the backlog with the spare
    /// descriptor's room and close it, then take the spare back. Without a spare (the passes
    /// hold every descriptor), wait a moment instead of spinning on the accept.
    async fn make_room(&mut self) {
        if self.spare.take().is_some() {
            if let Some(Ok((stream, _))) = self.listener.accept().now_or_never() {
                self.shed(stream, "no_descriptors");
            }
            self.spare = spare_descriptor();
        }
        if self.spare.is_none() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.spare = spare_descriptor();
        }
    }
}

fn spare_descriptor() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

async fn serve_connection(stream: TcpStream, app: Router, _slot: OwnedSemaphorePermit) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    if let Err(e) = tokio::time::timeout(CONNECTION_LIFETIME, connection)
        .await
        .unwrap_or(Ok(()))
    {
        tracing::debug!("connection closed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_leave_the_passes_their_reserve() {
        let wanted = [METRICS_CONNECTIONS, WEBHOOK_CONNECTIONS];
        assert_eq!(connection_limits(1024, &wanted), wanted.to_vec());
        let small = connection_limits(PASS_RESERVE + 72, &wanted);
        assert!(small.iter().sum::<usize>() <= 72, "{small:?}");
        assert!(small.iter().all(|&n| n >= 1), "{small:?}");
        assert_eq!(
            connection_limits(10, &wanted),
            vec![1, 1],
            "at least one each"
        );
    }

    #[test]
    fn sockets_passed_to_another_process_or_not_at_all_are_ignored() {
        let other = (std::process::id() + 1).to_string();
        let s = passed_sockets(Some(&other), Some("2"), Some("metrics:webhook")).expect("ignored");
        assert!(s.metrics.is_none() && s.webhook.is_none());
        let s = passed_sockets(None, None, None).expect("none");
        assert!(s.metrics.is_none() && s.webhook.is_none());
    }
}
