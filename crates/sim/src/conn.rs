//! The connection side of a fake server, for faults no HTTP answer can express: a connection
//! reset instead of an answer (before or after the server acted), and a server that goes down
//! for a while (every connection reset, new ones refused because nothing listens).
//!
//! A handler asks for either by putting a [`ConnAction`] in its response's extensions; the
//! middleware [`apply`] passes it to the connection the request came on ([`ConnTag`]), whose
//! stream then fails every read and write with an abortive close (RST) instead of sending the
//! answer. Going down also closes the listening socket and binds the same port again later.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// What to do with the connection instead of sending the answer.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ConnAction {
    /// Reset this connection.
    Reset,
    /// Reset every connection and refuse new ones for this long.
    Down(Duration),
}

/// The server's side of every connection: which generation of connections is alive, and
/// whether (and for how long) to stop listening.
#[derive(Default)]
pub(crate) struct Door {
    generation: AtomicU64,
    down_for: Mutex<Option<Duration>>,
    notify: Notify,
    /// Connections accepted (for tests that want to see a reconnect).
    accepted: AtomicU64,
}

impl Door {
    fn go_down(&self, d: Duration) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        *crate::lock(&self.down_for) = Some(d);
        self.notify.notify_one();
    }

    pub(crate) fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Accepts connections on one address, and stops listening when the door goes down.
pub(crate) struct SimListener {
    listener: Option<TcpListener>,
    addr: SocketAddr,
    door: Arc<Door>,
}

impl SimListener {
    pub(crate) fn new(listener: TcpListener, door: Arc<Door>) -> io::Result<Self> {
        Ok(SimListener {
            addr: listener.local_addr()?,
            listener: Some(listener),
            door,
        })
    }

    async fn rebind(&mut self) {
        loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => {
                    self.listener = Some(l);
                    return;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }
}

impl Listener for SimListener {
    type Io = SimConn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (SimConn, SocketAddr) {
        loop {
            let down = crate::lock(&self.door.down_for).take();
            if let Some(d) = down {
                // Nothing listens: connection attempts are refused.
                self.listener = None;
                tokio::time::sleep(d).await;
            }
            if self.listener.is_none() {
                self.rebind().await;
            }
            let Some(listener) = self.listener.as_ref() else {
                continue;
            };
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        self.door.accepted.fetch_add(1, Ordering::SeqCst);
                        return (SimConn::new(stream, self.door.clone()), peer);
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
                () = self.door.notify.notified() => {}
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// One accepted connection, which can be told to die.
pub(crate) struct SimConn {
    stream: TcpStream,
    generation: u64,
    door: Arc<Door>,
    reset: Arc<AtomicBool>,
}

impl SimConn {
    fn new(stream: TcpStream, door: Arc<Door>) -> Self {
        SimConn {
            stream,
            generation: door.generation.load(Ordering::SeqCst),
            door,
            reset: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether this connection must die now; if so, the socket closes with a RST.
    fn dying(&self) -> bool {
        let dead = self.reset.load(Ordering::SeqCst)
            || self.door.generation.load(Ordering::SeqCst) != self.generation;
        if dead {
            let _ = self.stream.set_zero_linger();
        }
        dead
    }
}

fn reset_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "fake server reset the connection",
    )
}

impl AsyncRead for SimConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.dying() {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SimConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.dying() {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.dying() {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.dying() {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A handle on the connection a request came on, for the middleware.
#[derive(Clone)]
pub(crate) struct ConnTag {
    reset: Arc<AtomicBool>,
    door: Arc<Door>,
}

impl Connected<IncomingStream<'_, SimListener>> for ConnTag {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        let conn = stream.io();
        ConnTag {
            reset: conn.reset.clone(),
            door: conn.door.clone(),
        }
    }
}

/// Middleware: a response carrying a [`ConnAction`] is not sent; its connection dies instead.
pub(crate) async fn apply(req: Request, next: Next) -> Response {
    let tag = req.extensions().get::<ConnectInfo<ConnTag>>().cloned();
    let resp = next.run(req).await;
    if let (Some(ConnectInfo(tag)), Some(action)) = (tag, resp.extensions().get::<ConnAction>()) {
        match *action {
            ConnAction::Reset => tag.reset.store(true, Ordering::SeqCst),
            ConnAction::Down(d) => tag.door.go_down(d),
        }
    }
    resp
}

/// An answer that is never sent: the connection is reset (or the server goes down) instead.
pub(crate) fn dropped(action: ConnAction) -> Response {
    let mut resp = Response::new(axum::body::Body::empty());
    resp.extensions_mut().insert(action);
    resp
}
