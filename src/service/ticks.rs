//! The service's clock: two cron jobs (incremental and full, UTC) that fire into a channel of
//! one slot. A tick that finds a pass running is skipped and counted; a skipped full resync is
//! remembered and runs as the next pass instead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::config::ScheduleConfig;
use crate::domain::PassKind;
use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// What a cron job needs to fire a tick.
#[derive(Clone)]
struct Trigger {
    tx: mpsc::Sender<PassKind>,
    busy: Arc<AtomicBool>,
    full_pending: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
}

impl Trigger {
    fn fire(&self, kind: PassKind) {
        if self.busy.load(Ordering::SeqCst) || self.tx.try_send(kind).is_err() {
            if kind == PassKind::Full {
                self.full_pending.store(true, Ordering::SeqCst);
            }
            self.metrics.inc(
                "jgr_ticks_skipped_total",
                "Schedule ticks skipped because a pass was still running, by kind.",
                &[("kind", kind.label())],
                1.0,
            );
            tracing::info!(kind = %kind, "a pass is still running; skipping this tick");
        }
    }
}

pub(super) struct Ticks {
    scheduler: JobScheduler,
    jobs: Vec<uuid::Uuid>,
    schedule: ScheduleConfig,
    trigger: Trigger,
    rx: Option<mpsc::Receiver<PassKind>>,
}

impl Ticks {
    pub async fn start(schedule: &ScheduleConfig, metrics: Arc<Metrics>) -> Result<Ticks> {
        let (tx, rx) = mpsc::channel(1);
        let trigger = Trigger {
            tx,
            busy: Arc::new(AtomicBool::new(false)),
            full_pending: Arc::new(AtomicBool::new(false)),
            metrics,
        };
        let scheduler = JobScheduler::new().await.map_err(scheduler_error)?;
        let jobs = add_jobs(&scheduler, schedule, &trigger).await?;
        scheduler.start().await.map_err(scheduler_error)?;
        Ok(Ticks {
            scheduler,
            jobs,
            schedule: schedule.clone(),
            trigger,
            rx: Some(rx),
        })
    }

    /// The worker's end of the channel (taken once).
    pub fn take_receiver(&mut self) -> mpsc::Receiver<PassKind> {
        self.rx.take().unwrap_or_else(|| mpsc::channel(1).1)
    }

    /// Set by the worker while a pass runs.
    pub fn busy(&self) -> Arc<AtomicBool> {
        self.trigger.busy.clone()
    }

    /// A full resync was skipped: the worker runs the next pass as a full one.
    pub fn full_pending(&self) -> Arc<AtomicBool> {
        self.trigger.full_pending.clone()
    }

    pub fn fire(&self, kind: PassKind) {
        self.trigger.fire(kind);
    }

    /// Replace the jobs when the schedule changed (on reload).
    pub async fn reschedule(&mut self, schedule: &ScheduleConfig) -> Result<()> {
        if schedule.reconcile == self.schedule.reconcile
            && schedule.full_resync == self.schedule.full_resync
        {
            return Ok(());
        }
        let fresh = add_jobs(&self.scheduler, schedule, &self.trigger).await?;
        for id in &self.jobs {
            let _ = self.scheduler.remove(id).await;
        }
        self.jobs = fresh;
        self.schedule = schedule.clone();
        Ok(())
    }

    pub async fn shutdown(&mut self) {
        let _ = self.scheduler.shutdown().await;
    }
}

async fn add_jobs(
    scheduler: &JobScheduler,
    schedule: &ScheduleConfig,
    trigger: &Trigger,
) -> Result<Vec<uuid::Uuid>> {
    let mut ids = Vec::new();
    for (expr, kind) in [
        (&schedule.reconcile, PassKind::Incremental),
        (&schedule.full_resync, PassKind::Full),
    ] {
        let trigger = trigger.clone();
        let job = Job::new_async(expr.as_str(), move |_, _| {
            let trigger = trigger.clone();
            Box::pin(async move { trigger.fire(kind) })
        })
        .map_err(|e| Error::Config(format!("schedule {expr:?} cannot be used: {e:?}")))?;
        ids.push(scheduler.add(job).await.map_err(scheduler_error)?);
    }
    Ok(ids)
}

fn scheduler_error(e: JobSchedulerError) -> Error {
    Error::Scheduler(format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger() -> (Trigger, mpsc::Receiver<PassKind>) {
        let (tx, rx) = mpsc::channel(1);
        let t = Trigger {
            tx,
            busy: Arc::new(AtomicBool::new(false)),
            full_pending: Arc::new(AtomicBool::new(false)),
            metrics: Arc::new(Metrics::new()),
        };
        (t, rx)
    }

    #[tokio::test]
    async fn a_tick_during_a_pass_is_skipped_and_a_skipped_full_resync_is_kept() {
        let (t, mut rx) = trigger();
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
        assert_eq!(
            t.metrics
                .get("jgr_ticks_skipped_total", &[("kind", "incremental")]),
            Some(1.0)
        );

        t.busy.store(false, Ordering::SeqCst);
        t.fire(PassKind::Incremental);
        t.fire(PassKind::Incremental);
        assert_eq!(rx.try_recv().ok(), Some(PassKind::Incremental));
        assert!(rx.try_recv().is_err(), "at most one tick waits");
    }
}
