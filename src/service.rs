//! `run`: the long-running service. Cron ticks (`ticks`, UTC) feed one worker (`worker`), so
//! passes never overlap; each pass holds the state database's file lock, so an on-demand
//! `reconcile` waits for it, or it for the on-demand one.
//!
//! [`Service::run`] takes its stop and reload requests as inputs, so tests drive it in-process;
//! `signals` turns SIGTERM/SIGINT and SIGHUP into those inputs for the real binary. On stop, no
//! new action starts, the write in flight completes and is recorded, and `run` returns within
//! 10 s. A reload re-reads the config file (mappings, credentials, schedule, retry); a config
//! that does not load is refused and the running one stays.

mod gauges;
mod signals;
mod ticks;
mod worker;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::domain::PassKind;
use crate::error::Result;
use crate::health::Health;
use crate::lock::ServiceMarker;
use crate::metrics::Metrics;
use crate::notify::{notify, watchdog_interval};
use crate::reconcile::Reconciler;
use crate::status_page::StatusPage;
use crate::stop::Stop;
use crate::store::Store;
use crate::webhook::{Receiver, Triggers};

use ticks::Ticks;

/// After a stop request, how long the writes in flight may take before `run` returns anyway
/// (their create intents are already recorded, so the next start recovers them). Waits end at
/// once: only a request already on the wire is waited for.
const STOP_GRACE: Duration = Duration::from_secs(9);

/// The reconciler in use; a reload swaps it between passes.
type Current = Arc<Mutex<Arc<Reconciler>>>;

pub struct Service {
    config_path: PathBuf,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    store: Arc<Store>,
    stop: Stop,
    current: Current,
    ticks: Ticks,
    /// With `[webhook]`: the endpoint's state (its projects follow reloads) and its queue.
    webhook: Option<(Arc<Receiver>, Arc<Triggers>)>,
    /// The status page (its mappings follow reloads).
    page: Arc<StatusPage>,
    /// Says to a second `run` on the same state that this one serves it.
    _marker: Option<ServiceMarker>,
}

impl Service {
    /// Open the state database, build the reconciler and serve `/metrics` if configured.
    pub async fn start(cfg: Config, config_path: PathBuf) -> Result<Service> {
        let metrics = Arc::new(Metrics::new());
        metrics.set("jgr_up", "1 while the service runs.", &[], 1.0);
        let health = Arc::new(Health::new(&cfg));
        let page = StatusPage::new(&cfg, metrics.clone());
        if let Some(m) = &cfg.metrics {
            crate::health::serve(m.listen, metrics.clone(), health.clone(), page.router()).await?;
            tracing::info!(listen = %m.listen, "serving the status page at /, /metrics and /healthz");
        }
        let store = Arc::new(Store::open(&cfg.state_path)?);
        gauges::on_start(&metrics, &cfg, &store);
        let marker = mark_as_served(&cfg.state_path);
        let stop = Stop::new();
        let reconciler = Reconciler::with_stop(cfg.clone(), metrics.clone(), stop.clone())?;
        let ticks = Ticks::start(&cfg.schedule, metrics.clone()).await?;
        let webhook = match &cfg.webhook {
            None => None,
            Some(w) => {
                let triggers = Arc::new(Triggers::default());
                let receiver = Arc::new(Receiver::new(
                    w.secret.clone(),
                    jira_projects(&cfg),
                    triggers.clone(),
                    metrics.clone(),
                ));
                let addr = crate::webhook::serve(w, receiver.clone()).await?;
                tracing::info!(listen = %addr, path = %w.path, "receiving Jira webhooks");
                Some((receiver, triggers))
            }
        };
        Ok(Service {
            config_path,
            metrics,
            health,
            store,
            stop,
            current: Arc::new(Mutex::new(Arc::new(reconciler))),
            ticks,
            webhook,
            page,
            _marker: marker,
        })
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Serve until `shutdown` completes; each message on `reloads` re-reads the config file.
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()>,
        mut reloads: mpsc::Receiver<()>,
    ) -> Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = tokio::spawn(worker::run(worker::Worker {
            rx: self.ticks.take_receiver(),
            stop: stop_rx,
            current: self.current.clone(),
            store: self.store.clone(),
            busy: self.ticks.busy(),
            full_pending: self.ticks.full_pending(),
            health: self.health.clone(),
            triggers: self.webhook.as_ref().map(|(_, t)| t.clone()),
            metrics: self.metrics.clone(),
        }));
        // A first pass right away, so a (re)start shows its effect without waiting for the clock.
        self.ticks.fire(PassKind::Incremental);
        if let Some(every) = watchdog_interval() {
            tokio::spawn(async move {
                loop {
                    notify("WATCHDOG=1");
                    tokio::time::sleep(every).await;
                }
            });
        }
        notify("READY=1");
        {
            let cfg = crate::lock_unpoisoned(&self.current).config().clone();
            tracing::info!(
                reconcile = %cfg.schedule.reconcile,
                full_resync = %cfg.schedule.full_resync,
                mappings = cfg.mappings.len(),
                "service started (schedules in UTC)"
            );
        }

        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(()) = reloads.recv() => match self.reload().await {
                    Ok(()) => {
                        tracing::info!(config = %self.config_path.display(), "configuration reloaded");
                        // Replaces a "reload refused" status from an earlier attempt.
                        notify(&format!("STATUS=configuration reloaded from {}", self.config_path.display()));
                    }
                    Err(e) => {
                        tracing::error!(config = %self.config_path.display(), "configuration not reloaded, the running one stays: {}", e.report());
                        notify(&format!("STATUS=reload refused, running with the previous configuration: {}", e.report()));
                    }
                },
            }
        }

        notify("STOPPING=1");
        self.stop.request();
        let _ = stop_tx.send(true);
        // Logged once the stop is in force (tests wait for it before letting a held request go).
        tracing::info!("stopping: no new action starts; the requests in flight finish first");
        self.ticks.shutdown().await;
        match tokio::time::timeout(STOP_GRACE, worker).await {
            Ok(_) => tracing::info!("stopped cleanly"),
            Err(_) => tracing::warn!("the request in flight did not finish in time; exiting anyway (the next start recovers it)"),
        }
        Ok(())
    }

    /// Read the config file again. The pass in progress finishes with the old configuration;
    /// the next one uses the new. `state.path`, `metrics.*` and `log.*` need a restart.
    async fn reload(&mut self) -> Result<()> {
        let cfg = Config::load(&self.config_path)?;
        let new = Reconciler::with_stop(cfg.clone(), self.metrics.clone(), self.stop.clone())?;
        self.ticks.reschedule(&cfg.schedule).await?;
        *crate::lock_unpoisoned(&self.current) = Arc::new(new);
        self.health.set_mappings(&cfg);
        self.page.set_config(&cfg);
        gauges::on_reload(&self.metrics, &cfg, Some(&self.store));
        if let Some((receiver, _)) = &self.webhook {
            receiver.set_projects(jira_projects(&cfg));
        }
        Ok(())
    }
}

/// Mark the state database as served by this `run`, or say at start-up that another `run`
/// already serves it: both would work, their passes taking turns under the pass lock (each
/// waiting up to a minute for the other's, then skipping its tick), but one is enough.
fn mark_as_served(state_path: &std::path::Path) -> Option<ServiceMarker> {
    match ServiceMarker::hold(state_path) {
        Ok(Ok(marker)) => Some(marker),
        Ok(Err(pid)) => {
            let who = pid.map_or_else(|| "another process".into(), |p| format!("process {p}"));
            tracing::warn!(
                state = %state_path.display(),
                "another `jira-gitlab-reconciler run` ({who}) already serves this state database: \
                 this one takes turns with it (each pass waits for the other's, up to 60 s, then \
                 skips its tick); one service per state is enough, stop one of them"
            );
            None
        }
        Err(e) => {
            tracing::warn!(
                "cannot tell whether another `run` serves this state database: {}",
                e.report()
            );
            None
        }
    }
}

/// The Jira projects whose events are worth a pass.
fn jira_projects(cfg: &Config) -> Vec<String> {
    cfg.mappings
        .iter()
        .map(|m| m.jira_project.clone())
        .collect()
}

/// `run` for the real binary: SIGTERM/SIGINT stop the service, SIGHUP reloads its config.
pub async fn run(cfg: Config, config_path: PathBuf) -> Result<i32> {
    let signals = signals::Signals::listen()?;
    let service = Service::start(cfg, config_path).await?;
    let (shutdown, reloads) = signals.into_inputs();
    service.run(shutdown, reloads).await?;
    Ok(0)
}
