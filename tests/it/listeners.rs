//! The service's listeners under load they cannot serve, as the real binary: connection limits,
//! header-read and idle timeouts, the descriptors passes keep, sockets handed over by systemd.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;

/// Idle connections held at once by the flood: more than the process's descriptors.
const FLOOD: usize = 1_200;
/// The descriptor limit the service runs under (systemd's default soft limit).
const NOFILE: u64 = 1_024;

/// Raise this test process's soft descriptor limit to its hard one: the flood needs more than
/// the usual 1,024.
fn raise_own_descriptor_limit(needed: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write one rlimit struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(
        lim.rlim_cur >= needed,
        "the test needs {needed} descriptors; its hard limit is {}",
        lim.rlim_cur
    );
}

/// The command's process starts with `RLIMIT_NOFILE` at `limit` (soft and hard).
fn with_descriptor_limit(cmd: &mut std::process::Command, limit: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe; it runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Whether the server closed `stream` (end of file or a reset) within `limit`.
async fn closed_by_server(mut stream: TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // An answer (a 408 for a cut-off head): keep reading until the close.
            Ok(Ok(_)) => {}
        }
    }
}

/// 1,200 idle connections on the webhook listener of a service limited to 1,024 descriptors:
/// the ones over the listener's limit are closed at once, the others when their head has not
/// come within 10 s, and meanwhile the scheduled passes run (they keep their descriptors) and
/// `/healthz` answers on its own listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_is_shed_and_passes_keep_running() {
    raise_own_descriptor_limit(FLOOD as u64 + 200);
    let w = world("flood", |o| o.webhook = true).await;
    w.jira.pause_webhooks(true);
    w.jira.create_issue("VSA", "Before the flood", "Task");
    let sockets = Sockets::for_world(&w);
    let port = sockets.metrics_port();
    let config = service_config(&w, port, "");
    let child = spawn_service_with(&config, &sockets, |c| with_descriptor_limit(c, NOFILE));
    assert!(
        gitlab_reaches(&w, PROJECT, 1, Duration::from_secs(10)).await,
        "the start-up pass"
    );

    let addr = format!("127.0.0.1:{}", w.webhook_port.expect("webhook"));
    let mut flood = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        // A listener that stops accepting leaves connections in the kernel's backlog, and
        // once it is full new ones are not even established.
        let mut s = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&addr))
            .await
            .unwrap_or_else(|_| panic!("connection {i} was left waiting in the backlog"))
            .expect("connect");
        // Half of them start a request head and never finish it; half send nothing.
        if i % 2 == 0 {
            let _ = s
                .write_all(b"POST /webhook/jira HTTP/1.1\r\nhost: x\r\n")
                .await;
        }
        flood.push(s);
    }

    // Passes go on under the flood: a new issue is mirrored by a scheduled poll.
    let during = w.jira.create_issue("VSA", "During the flood", "Task");
    assert!(
        gitlab_reaches(&w, PROJECT, 2, Duration::from_secs(10)).await,
        "a scheduled pass ran during the flood"
    );
    mirror_of(&w, PROJECT, &during.id);
    let (status, body) = http_get(port, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"), "/healthz answers");

    // Every flood connection is closed by the service: at once over the limit, after the
    // header-read timeout (10 s) within it.
    let closed = futures_util::future::join_all(
        flood
            .into_iter()
            .map(|s| closed_by_server(s, Duration::from_secs(30))),
    )
    .await;
    let open = closed.iter().filter(|c| !**c).count();
    assert_eq!(open, 0, "{open} flood connections still open");
    let shed = metric(
        port,
        "jgr_connections_shed_total{listener=\"webhook\",reason=\"over_limit\"}",
    )
    .await;
    eprintln!("{FLOOD} flood connections: {shed} shed at once, all closed");
    assert!(
        shed >= (FLOOD - jira_gitlab_reconciler::listen::WEBHOOK_CONNECTIONS) as f64,
        "{shed} shed at once"
    );

    // After the flood the listener serves again.
    let after = w.jira.create_issue("VSA", "After the flood", "Task");
    assert!(gitlab_reaches(&w, PROJECT, 3, Duration::from_secs(10)).await);
    mirror_of(&w, PROJECT, &after.id);
    signal(&child, "TERM");
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(12)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("Too many open files"), "{stderr}");
    assert!(!stderr.contains("skipping this tick"), "{stderr}");
}

/// A kept-alive connection that sends nothing more is closed after the header-read timeout,
/// and so is one whose head trickles in a byte a second: neither keeps its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_kept_alive_and_trickling_connections_are_closed_after_10_s() {
    let w = world("idle", |_| {}).await;
    let sockets = Sockets::for_world(&w);
    let port = sockets.metrics_port();
    let child = spawn_service(&service_config(&w, port, ""), &sockets);
    let addr = format!("127.0.0.1:{port}");

    let mut kept = TcpStream::connect(&addr).await.expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let mut answer = [0u8; 256];
    let n = kept.read(&mut answer).await.expect("answer");
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 "),
        "answered"
    );
    let answered = Instant::now();

    let trickle = TcpStream::connect(&addr).await.expect("connect");
    let trickled = Instant::now();
    let (mut read_half, mut write_half) = trickle.into_split();
    let dripping = tokio::spawn(async move {
        for b in b"GET /healthz HTTP/1.1\r\nhost: somewhere.example\r\nx-slow: yes\r\n" {
            if write_half.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });

    let mut buf = [0u8; 256];
    let kept_closed = tokio::time::timeout(Duration::from_secs(30), kept.read(&mut buf)).await;
    assert!(
        matches!(kept_closed, Ok(Ok(0)) | Ok(Err(_))),
        "the idle kept-alive connection is closed"
    );
    assert!(answered.elapsed() >= Duration::from_secs(9), "after 10 s");
    let trickle_closed = loop {
        match tokio::time::timeout(Duration::from_secs(30), read_half.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => continue,
            other => break other,
        }
    };
    assert!(
        matches!(trickle_closed, Ok(Ok(0)) | Ok(Err(_))),
        "the trickling head is cut off"
    );
    assert!(trickled.elapsed() >= Duration::from_secs(9), "after 10 s");
    assert!(
        trickled.elapsed() < Duration::from_secs(40),
        "not after the whole trickle"
    );
    dripping.abort();
    signal(&child, "TERM");
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(12)).await;
    assert_eq!(code, Some(0), "{stderr}");
}

/// A signed delivery whose body stops coming is answered 408 once 10 s have passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_answers_408_after_10_s_of_a_slow_body() {
    let w = world("slow-body", |o| o.webhook = true).await;
    let sockets = Sockets::for_world(&w);
    let port = sockets.metrics_port();
    let child = spawn_service(&service_config(&w, port, ""), &sockets);
    let addr = format!("127.0.0.1:{}", w.webhook_port.expect("webhook"));
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    let head = format!(
        "POST /webhook/jira HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         x-hub-signature: sha256=00\r\ncontent-length: 100\r\n\r\n{{\"webhookEvent\":"
    );
    s.write_all(head.as_bytes()).await.expect("write");
    let sent = Instant::now();
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut answer))
        .await
        .expect("an answer within 30 s")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 10 s"), "{answer}");
    assert!(
        sent.elapsed() >= Duration::from_secs(9),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(
        metric(port, "jgr_webhook_events_total{outcome=\"timed_out\"}").await,
        1.0
    );
    signal(&child, "TERM");
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(12)).await;
    assert_eq!(code, Some(0), "{stderr}");
}

/// A socket handed over under a name the service does not know is refused with the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_handed_over_under_another_name_is_refused() {
    let w = world("socket-name", |_| {}).await;
    let sockets = Sockets::for_world(&w);
    let config = service_config(&w, sockets.metrics_port(), "");
    let child = spawn_service_with(&config, &sockets, |c| {
        c.env("LISTEN_FDNAMES", "prometheus");
    });
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(12)).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("\"prometheus\"") && stderr.contains("FileDescriptorName=metrics"),
        "{stderr}"
    );
}
