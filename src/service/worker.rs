//! The service's one worker: takes ticks off the channel and runs one exclusive pass at a time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::Current;
use crate::domain::PassKind;
use crate::health::Health;
use crate::notify::notify;
use crate::reconcile::PassReport;
use crate::store::Store;

/// How long a pass waits for another instance's pass before skipping its tick.
const LOCK_WAIT: Duration = Duration::from_secs(60);

pub(super) struct Worker {
    pub rx: mpsc::Receiver<PassKind>,
    pub stop: watch::Receiver<bool>,
    pub current: Current,
    pub store: Arc<Store>,
    pub busy: Arc<AtomicBool>,
    pub full_pending: Arc<AtomicBool>,
    pub health: Arc<Health>,
}

pub(super) async fn run(mut w: Worker) {
    loop {
        let kind = tokio::select! {
            _ = w.stop.changed() => break,
            kind = w.rx.recv() => match kind { Some(k) => k, None => break },
        };
        if *w.stop.borrow() {
            break;
        }
        w.busy.store(true, Ordering::SeqCst);
        let kind = if w.full_pending.swap(false, Ordering::SeqCst) {
            PassKind::Full
        } else {
            kind
        };
        let reconciler = crate::lock_unpoisoned(&w.current).clone();
        let started = Instant::now();
        match reconciler.exclusive_pass(&w.store, kind, LOCK_WAIT).await {
            Ok(reports) => {
                log_pass(&reports, started.elapsed());
                w.health.record(&reports);
            }
            Err(e) => tracing::warn!("skipping this tick: {}", e.report()),
        }
        w.busy.store(false, Ordering::SeqCst);
    }
}

fn log_pass(reports: &[PassReport], took: Duration) {
    let mut failed = 0;
    for r in reports {
        let c = &r.counts;
        if r.ok() {
            tracing::info!(
                mapping = %r.mapping, kind = %r.kind, created = c.created, closed = c.closed,
                reopened = c.reopened, updated = c.updated, adopted = c.adopted,
                unchanged = c.unchanged, jira_seen = c.jira_seen,
                duration_ms = r.duration.as_millis() as u64, "pass finished"
            );
        } else {
            failed += 1;
            tracing::error!(
                mapping = %r.mapping, kind = %r.kind, created = c.created, closed = c.closed,
                reopened = c.reopened, updated = c.updated, failed = r.failures.len(),
                duration_ms = r.duration.as_millis() as u64,
                first_error = %r.failures.first().map(String::as_str).unwrap_or(""),
                "pass failed; the next tick retries"
            );
        }
        for note in &r.notes {
            tracing::warn!(mapping = %r.mapping, "{note}");
        }
    }
    notify(&format!(
        "STATUS=last pass {}: {} mapping(s) ok, {failed} failed",
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC"),
        reports.len() - failed
    ));
    tracing::debug!(took_ms = took.as_millis() as u64, "all mappings done");
}
