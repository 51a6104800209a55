//! The service's one worker: takes schedule ticks and batches of webhook events and runs one
//! exclusive pass at a time. It alone feeds systemd's watchdog, between polls of the pass it
//! runs (or while it waits for work): a worker that died, or a pass stuck in a call that never
//! returns to the runtime, stops the pings, and systemd restarts the service. Waits inside a
//! pass are all bounded (`http`, `lock`, the pacer), so a pass that yields is making progress.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::Current;
use crate::domain::{JiraId, PassKind, PassOutcome};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::notify::notify;
use crate::reconcile::{PassReport, Reconciler};
use crate::stop::Stop;
use crate::store::Store;
use crate::webhook::{projects_of, Queued, Triggers};

/// How long a pass waits for another instance's pass before skipping its tick.
const LOCK_WAIT: Duration = Duration::from_secs(60);

pub(super) struct Worker {
    pub rx: mpsc::Receiver<PassKind>,
    /// The service's stop: requested, the worker takes no new job.
    pub stop: Stop,
    pub current: Current,
    pub store: Arc<Store>,
    pub busy: Arc<AtomicBool>,
    pub full_pending: Arc<AtomicBool>,
    pub health: Arc<Health>,
    /// Issue ids queued by webhook events, when `[webhook]` is configured.
    pub triggers: Option<Arc<Triggers>>,
    pub metrics: Arc<Metrics>,
    /// How often to tell systemd the worker is alive (`WatchdogSec=`/2), if it asked.
    pub watchdog: Option<Duration>,
}

/// What the worker does next.
enum Job {
    Pass(PassKind),
    Targeted(Vec<Queued>),
}

/// The next batch of event-named issues; never, without a webhook.
async fn next_batch(triggers: &Option<Arc<Triggers>>) -> Vec<Queued> {
    match triggers {
        Some(t) => t.next_batch().await,
        None => std::future::pending().await,
    }
}

/// Run `work` to its end, telling systemd every `every` that this task still runs.
async fn feeding_watchdog<T>(every: Option<Duration>, work: impl Future<Output = T>) -> T {
    let Some(every) = every else {
        return work.await;
    };
    tokio::pin!(work);
    loop {
        notify("WATCHDOG=1");
        tokio::select! {
            out = &mut work => return out,
            () = tokio::time::sleep(every) => {}
        }
    }
}

pub(super) async fn run(mut w: Worker) {
    loop {
        // Scheduled passes first: a stream of events must not crowd out the polls that are
        // the safety net.
        let next = async {
            tokio::select! {
                biased;
                () = w.stop.wait() => None,
                kind = w.rx.recv() => kind.map(Job::Pass),
                batch = next_batch(&w.triggers) => Some(Job::Targeted(batch)),
            }
        };
        let Some(job) = feeding_watchdog(w.watchdog, next).await else {
            break;
        };
        if w.stop.requested() {
            break;
        }
        // Only a scheduled pass makes ticks skip: one due during an event-triggered pass
        // waits in the channel and runs right after it.
        let scheduled = matches!(job, Job::Pass(_));
        w.busy.store(scheduled, Ordering::SeqCst);
        set_running(&w.metrics, scheduled);
        feeding_watchdog(w.watchdog, run_job(&w, job)).await;
        w.busy.store(false, Ordering::SeqCst);
        set_running(&w.metrics, false);
    }
}

/// Whether a scheduled pass runs now: the "no successful pass" alert waits for a long one (a
/// first backfill) to end rather than call a service that is working unhealthy.
pub(super) fn set_running(metrics: &Metrics, running: bool) {
    metrics.set(
        "jgr_pass_running",
        "1 while a scheduled pass runs (a long one, such as a first backfill, is no outage).",
        &[],
        if running { 1.0 } else { 0.0 },
    );
}

async fn run_job(w: &Worker, job: Job) {
    let reconciler = crate::lock_unpoisoned(&w.current).clone();
    match job {
        Job::Pass(kind) => scheduled_pass(w, &reconciler, kind).await,
        Job::Targeted(batch) => targeted_pass(w, &reconciler, batch).await,
    }
    // A pass that began before a reload ends with the mappings of then: the series of one the
    // reload removed must not come back with it.
    let names: Vec<String> = crate::lock_unpoisoned(&w.current)
        .config()
        .mappings
        .iter()
        .map(|m| m.name())
        .collect();
    w.metrics.retain_mappings(&names);
}

async fn scheduled_pass(w: &Worker, reconciler: &Reconciler, kind: PassKind) {
    let started = Instant::now();
    let kind = if w.full_pending.swap(false, Ordering::SeqCst) {
        PassKind::Full
    } else {
        kind
    };
    match reconciler.exclusive_pass(&w.store, kind, LOCK_WAIT).await {
        Ok(reports) => {
            log_pass(&reports, started.elapsed());
            w.health.record(&reports);
        }
        Err(e) => tracing::warn!("skipping this tick: {}", e.report()),
    }
    if crate::test_hook_armed("worker-panic") {
        panic!("test hook: a bug in the worker, outside any mapping's pass");
    }
}

async fn targeted_pass(w: &Worker, reconciler: &Reconciler, batch: Vec<Queued>) {
    let started = Instant::now();
    let ids: Vec<JiraId> = batch.iter().map(|q| q.issue_id).collect();
    let projects = projects_of(&batch);
    match reconciler
        .targeted_pass(&w.store, &ids, projects.as_ref(), LOCK_WAIT)
        .await
    {
        Ok(reports) => {
            // Only a pass that reached GitLab for every mapping carried the events there;
            // after a failure the next poll does (it is logged as an error).
            if reports.iter().all(PassReport::ok) {
                record_latency(&w.metrics, &batch);
                if let Err(e) = w.store.webhook_counts().record(batch.len() as u64) {
                    tracing::warn!("{}", e.report());
                }
            }
            log_pass(&reports, started.elapsed());
        }
        Err(e) => {
            tracing::warn!(
                issues = ids.len(),
                "the event-triggered pass did not run; its issues wait for the next: {}",
                e.report()
            );
            if let Some(t) = &w.triggers {
                t.requeue(batch);
            }
        }
    }
}

/// From each event's arrival to the end of the pass that carried it to GitLab.
fn record_latency(metrics: &Metrics, batch: &[Queued]) {
    for q in batch {
        let seconds = q.arrived.elapsed().as_secs_f64();
        metrics.inc(
            "jgr_webhook_latency_seconds_sum",
            "Seconds from a webhook event's arrival to the end of the pass that applied it, summed.",
            &[],
            seconds,
        );
        metrics.inc(
            "jgr_webhook_latency_seconds_count",
            "Webhook-triggered issues applied (divide the sum by this for the mean latency).",
            &[],
            1.0,
        );
        metrics.set(
            "jgr_webhook_last_latency_seconds",
            "Seconds from the last webhook event's arrival to the end of its pass.",
            &[],
            seconds,
        );
    }
}

fn log_pass(reports: &[PassReport], took: Duration) {
    let (mut failed, mut stopped) = (0, 0);
    for r in reports {
        match log_report(r) {
            PassOutcome::Failed => failed += 1,
            PassOutcome::Stopped => stopped += 1,
            _ => {}
        }
        for note in &r.notes {
            tracing::warn!(mapping = %r.mapping, "{note}");
        }
    }
    let stopped_text = if stopped > 0 {
        format!(", {stopped} stopped")
    } else {
        String::new()
    };
    notify(&format!(
        "STATUS=last pass {}: {} mapping(s) ok, {failed} failed{stopped_text}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC"),
        reports.len() - failed - stopped
    ));
    tracing::debug!(took_ms = took.as_millis() as u64, "all mappings done");
}

/// One mapping's pass, by how it ended: a stop is not a failure (it is logged as a warning).
fn log_report(r: &PassReport) -> PassOutcome {
    let c = &r.counts;
    let outcome = r.outcome();
    // Milliseconds to a tenth, as a number for log shippers.
    let cpu_ms = (r.cpu.as_secs_f64() * 10_000.0).round() / 10.0;
    match outcome {
        PassOutcome::Failed => tracing::error!(
            mapping = %r.mapping, kind = %r.kind, created = c.created, closed = c.closed,
            reopened = c.reopened, updated = c.updated, failed = r.failures.len(),
            duration_ms = r.duration.as_millis() as u64,
            first_error = %r.failures.first().map(ToString::to_string).unwrap_or_default(),
            "pass failed; the next tick retries"
        ),
        PassOutcome::Stopped => tracing::warn!(
            mapping = %r.mapping, kind = %r.kind, created = c.created, closed = c.closed,
            reopened = c.reopened, updated = c.updated, adopted = c.adopted,
            duration_ms = r.duration.as_millis() as u64,
            "pass stopped before it finished; the next pass continues where it left off"
        ),
        _ => tracing::info!(
            mapping = %r.mapping, kind = %r.kind, created = c.created, closed = c.closed,
            reopened = c.reopened, updated = c.updated, adopted = c.adopted,
            unchanged = c.unchanged, jira_seen = c.jira_seen,
            duration_ms = r.duration.as_millis() as u64, cpu_ms, "pass finished"
        ),
    }
    outcome
}
