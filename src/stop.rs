//! The one shutdown mechanism, passed in to everything that waits (as mini-redis passes its
//! `Shutdown`): the service requests it when its shutdown input completes (SIGTERM, SIGINT,
//! or a test's future), `reconcile` on SIGTERM or SIGINT (`service::signals` turns signals
//! into requests). The service's worker takes no new job once it is requested, and every wait
//! of a pass (pacing, backoff, `Retry-After`, a free connection slot, the instance lock) ends
//! at once, so stopping never waits for a timer. A request already on the wire is not
//! cancelled: its answer is recorded.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

#[derive(Clone, Debug)]
pub struct Stop(Arc<watch::Sender<bool>>);

impl Default for Stop {
    fn default() -> Self {
        Stop::new()
    }
}

impl Stop {
    pub fn new() -> Self {
        Stop(Arc::new(watch::channel(false).0))
    }

    /// Ask everything sharing this handle to stop.
    pub fn request(&self) {
        self.0.send_replace(true);
    }

    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once a stop is requested.
    pub async fn wait(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives as long as `self`, so this cannot fail with "closed".
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    /// Sleep for `d`, or less if a stop is requested meanwhile. Returns whether the whole
    /// sleep happened (false: stopped).
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            () = self.wait() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_a_sleep_at_once() {
        let stop = Stop::new();
        let other = stop.clone();
        let started = tokio::time::Instant::now();
        let sleeper = tokio::spawn(async move { other.sleep(Duration::from_secs(3600)).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        stop.request();
        assert!(!sleeper.await.expect("joins"), "the sleep was cut short");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(stop.requested());
        assert!(!stop.sleep(Duration::from_secs(5)).await, "stays stopped");
    }
}
