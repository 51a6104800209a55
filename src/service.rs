//! `run`: the long-running service. Cron ticks (tokio-cron-scheduler, UTC) feed one worker
//! task, so passes never overlap; a tick that finds a pass running is skipped and logged (a
//! skipped full resync runs as the next pass instead). Each pass holds the state database's
//! file lock, so an on-demand `reconcile` waits for it, or it for the on-demand one.
//!
//! Signals: SIGTERM/SIGINT stop it (no new action starts, the write in flight completes and is
//! recorded, exit 0 within 10 s); SIGHUP reloads the config file (mappings, credentials,
//! schedule, retry; the metrics address needs a restart).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::config::{Config, ScheduleConfig};
use crate::error::{Error, Result};
use crate::lock::InstanceLock;
use crate::metrics::Metrics;
use crate::notify::{notify, watchdog_interval};
use crate::reconcile::{PassKind, PassReport, Reconciler};
use crate::store::Store;

/// How long a pass waits for another instance's pass before skipping its tick.
const LOCK_WAIT: Duration = Duration::from_secs(60);
/// After SIGTERM, how long the in-flight write may take before the process exits anyway (its
/// create intent is already recorded, so the next start recovers it).
const STOP_GRACE: Duration = Duration::from_secs(9);

/// The scheduler's ids for our two jobs, kept to replace them on reload.
struct JobIds(Vec<uuid::Uuid>);

pub async fn run(cfg: Config, config_path: PathBuf) -> Result<i32> {
    let metrics = Arc::new(Metrics::new());
    metrics.set("jgr_up", "1 while the service runs.", &[], 1.0);
    let health = Arc::new(crate::health::Health::new(&cfg));
    if let Some(m) = &cfg.metrics {
        crate::health::serve(m.listen, metrics.clone(), health.clone()).await?;
        tracing::info!(listen = %m.listen, "serving /metrics and /healthz");
    }
    let store = Arc::new(Store::open(&cfg.state_path)?);
    let stop_flag = Arc::new(AtomicBool::new(false));
    let current = Arc::new(Mutex::new(Arc::new(reconciler(
        cfg.clone(),
        &metrics,
        &stop_flag,
    )?)));

    let (tick_tx, tick_rx) = mpsc::channel::<PassKind>(1);
    let busy = Arc::new(AtomicBool::new(false));
    let full_pending = Arc::new(AtomicBool::new(false));
    let ticks = Ticks {
        tx: tick_tx.clone(),
        busy: busy.clone(),
        full_pending: full_pending.clone(),
    };
    let mut scheduler = JobScheduler::new().await.map_err(sched_error)?;
    let mut jobs = add_jobs(&scheduler, &cfg.schedule, &ticks).await?;
    scheduler.start().await.map_err(sched_error)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = tokio::spawn(worker(Worker {
        rx: tick_rx,
        stop: stop_rx,
        current: current.clone(),
        store,
        state_path: cfg.state_path.clone(),
        busy,
        full_pending,
        health: health.clone(),
    }));
    // A first pass right away, so a (re)start shows its effect without waiting for the clock.
    let _ = tick_tx.try_send(PassKind::Incremental);
    if let Some(every) = watchdog_interval() {
        tokio::spawn(async move {
            loop {
                notify("WATCHDOG=1");
                tokio::time::sleep(every).await;
            }
        });
    }
    notify("READY=1");
    tracing::info!(
        reconcile = %cfg.schedule.reconcile,
        full_resync = %cfg.schedule.full_resync,
        mappings = cfg.mappings.len(),
        "service started (schedules in UTC)"
    );

    let signal_error = |e: std::io::Error| Error::Config(format!("cannot listen for signals: {e}"));
    let mut term = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut int = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut hup = signal(SignalKind::hangup()).map_err(signal_error)?;
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
            _ = hup.recv() => {
                match reload(&config_path, &metrics, &stop_flag, &current, &scheduler, &ticks, &mut jobs, &health).await {
                    Ok(()) => tracing::info!(config = %config_path.display(), "SIGHUP: configuration reloaded"),
                    Err(e) => tracing::error!(config = %config_path.display(), "SIGHUP: configuration not reloaded, the running one stays: {e}"),
                }
            }
        }
    }

    notify("STOPPING=1");
    stop_flag.store(true, Ordering::SeqCst);
    let _ = stop_tx.send(true);
    let _ = scheduler.shutdown().await;
    match tokio::time::timeout(STOP_GRACE, worker).await {
        Ok(_) => tracing::info!("stopped cleanly"),
        Err(_) => tracing::warn!("the request in flight did not finish in time; exiting anyway (the next start recovers it)"),
    }
    Ok(0)
}

fn reconciler(cfg: Config, metrics: &Arc<Metrics>, stop: &Arc<AtomicBool>) -> Result<Reconciler> {
    Ok(Reconciler::new(cfg, metrics.clone())?.with_stop_flag(stop.clone()))
}

#[allow(clippy::too_many_arguments)]
async fn reload(
    path: &std::path::Path,
    metrics: &Arc<Metrics>,
    stop: &Arc<AtomicBool>,
    current: &Arc<Mutex<Arc<Reconciler>>>,
    scheduler: &JobScheduler,
    ticks: &Ticks,
    jobs: &mut JobIds,
    health: &crate::health::Health,
) -> Result<()> {
    let cfg = Config::load(path)?;
    let new = reconciler(cfg.clone(), metrics, stop)?;
    let old_schedule = crate::lock_unpoisoned(current).config().schedule.clone();
    if old_schedule.reconcile != cfg.schedule.reconcile
        || old_schedule.full_resync != cfg.schedule.full_resync
    {
        let fresh = add_jobs(scheduler, &cfg.schedule, ticks).await?;
        for id in &jobs.0 {
            let _ = scheduler.remove(id).await;
        }
        *jobs = fresh;
    }
    // The pass in progress finishes with the old config; the next one uses the new.
    *crate::lock_unpoisoned(current) = Arc::new(new);
    health.set_mappings(&cfg);
    Ok(())
}

#[derive(Clone)]
struct Ticks {
    tx: mpsc::Sender<PassKind>,
    busy: Arc<AtomicBool>,
    full_pending: Arc<AtomicBool>,
}

impl Ticks {
    fn fire(&self, kind: PassKind) {
        if self.busy.load(Ordering::SeqCst) || self.tx.try_send(kind).is_err() {
            if kind == PassKind::Full {
                self.full_pending.store(true, Ordering::SeqCst);
            }
            tracing::info!(
                kind = kind.label(),
                "a pass is still running; skipping this tick"
            );
        }
    }
}

async fn add_jobs(
    scheduler: &JobScheduler,
    schedule: &ScheduleConfig,
    ticks: &Ticks,
) -> Result<JobIds> {
    let mut ids = Vec::new();
    for (expr, kind) in [
        (&schedule.reconcile, PassKind::Incremental),
        (&schedule.full_resync, PassKind::Full),
    ] {
        let ticks = ticks.clone();
        let job = Job::new_async(expr.as_str(), move |_, _| {
            let ticks = ticks.clone();
            Box::pin(async move { ticks.fire(kind) })
        })
        .map_err(|e| Error::Config(format!("schedule {expr:?} cannot be used: {e:?}")))?;
        ids.push(scheduler.add(job).await.map_err(sched_error)?);
    }
    Ok(JobIds(ids))
}

fn sched_error(e: tokio_cron_scheduler::JobSchedulerError) -> Error {
    Error::Store(format!("the scheduler failed: {e:?}"))
}

struct Worker {
    rx: mpsc::Receiver<PassKind>,
    stop: watch::Receiver<bool>,
    current: Arc<Mutex<Arc<Reconciler>>>,
    store: Arc<Store>,
    state_path: PathBuf,
    busy: Arc<AtomicBool>,
    full_pending: Arc<AtomicBool>,
    health: Arc<crate::health::Health>,
}

async fn worker(mut w: Worker) {
    let mut first = true;
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
        match InstanceLock::acquire(&w.state_path, LOCK_WAIT).await {
            Ok(_lock) => {
                if first {
                    first = false;
                    match w.store.close_abandoned_passes() {
                        Ok(n) if n > 0 => tracing::warn!(passes = n, "found passes interrupted by an earlier crash; this pass redoes their work"),
                        Ok(_) => {}
                        Err(e) => tracing::error!("{e}"),
                    }
                }
                let started = Instant::now();
                let reports = reconciler.pass(Some(&w.store), kind, false).await;
                log_pass(&reports, started.elapsed());
                w.health.record(&reports);
            }
            Err(e) => tracing::warn!("skipping this tick: {e}"),
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
                mapping = %r.mapping, kind = r.kind, created = c.created, closed = c.closed,
                reopened = c.reopened, updated = c.updated, adopted = c.adopted,
                unchanged = c.unchanged, jira_seen = c.jira_seen,
                duration_ms = r.duration.as_millis() as u64, "pass finished"
            );
        } else {
            failed += 1;
            tracing::error!(
                mapping = %r.mapping, kind = r.kind, created = c.created, closed = c.closed,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ticks() -> (Ticks, mpsc::Receiver<PassKind>) {
        let (tx, rx) = mpsc::channel(1);
        let t = Ticks {
            tx,
            busy: Arc::new(AtomicBool::new(false)),
            full_pending: Arc::new(AtomicBool::new(false)),
        };
        (t, rx)
    }

    #[tokio::test]
    async fn a_tick_during_a_pass_is_skipped_and_a_skipped_full_resync_is_kept() {
        let (t, mut rx) = ticks();
        t.fire(PassKind::Incremental);
        assert_eq!(rx.try_recv().ok(), Some(PassKind::Incremental));

        t.busy.store(true, Ordering::SeqCst);
        t.fire(PassKind::Incremental);
        t.fire(PassKind::Full);
        assert!(rx.try_recv().is_err(), "nothing queued while a pass runs");
        assert!(
            t.full_pending.load(Ordering::SeqCst),
            "the full resync runs next instead"
        );

        t.busy.store(false, Ordering::SeqCst);
        t.fire(PassKind::Incremental);
        t.fire(PassKind::Incremental);
        assert_eq!(rx.try_recv().ok(), Some(PassKind::Incremental));
        assert!(rx.try_recv().is_err(), "at most one tick waits");
    }
}
