//! `run`: the long-running service. Cron ticks (`ticks`, UTC) feed one worker (`worker`), so
//! passes never overlap; each pass holds the state database's file lock, so an on-demand
//! `reconcile` waits for it, or it for the on-demand one.
//!
//! [`Service::run`] takes its stop and reload requests as inputs, so tests drive it in-process;
//! `signals` turns SIGTERM/SIGINT and SIGHUP into those inputs for the real binary. On stop, no
//! new action starts, the write in flight completes and is recorded, and `run` returns within
//! 10 s. A reload re-reads the config file (mappings, credentials, schedule, retry); a config
//! that does not load is refused and the running one stays.
//!
//! The worker is joined: it ends only when asked to, so if it ends otherwise (a panic outside
//! a mapping's pass; those are caught in `reconcile`), `run` returns an error and the process
//! exits 1 for systemd to restart it. The listeners (`listen`) are bound here or handed over
//! (`Service::start_with`, systemd socket activation).

mod gauges;
pub mod signals;
mod ticks;
mod worker;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::Config;
use crate::domain::PassKind;
use crate::error::{Error, Result};
use crate::health::Health;
use crate::listen::{self, Sockets};
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
    /// Open the state database, build the reconciler and serve `/metrics` (and webhooks) if
    /// configured, binding the configured addresses.
    pub async fn start(cfg: Config, config_path: PathBuf) -> Result<Service> {
        Service::start_with(cfg, config_path, Sockets::default()).await
    }

    /// `start`, serving on the listeners handed over (systemd's, or a test's) where there are.
    pub async fn start_with(
        cfg: Config,
        config_path: PathBuf,
        mut sockets: Sockets,
    ) -> Result<Service> {
        let metrics = Arc::new(Metrics::new());
        metrics.set("jgr_up", "1 while the service runs.", &[], 1.0);
        let health = Arc::new(Health::new(&cfg));
        let limits = connection_limits();
        refuse_unused(&sockets, &cfg)?;
        let page = StatusPage::new(&cfg, metrics.clone());
        if let Some(m) = &cfg.metrics {
            let listener = listen::open(
                sockets.take_metrics(),
                m.listen,
                "metrics.listen",
                "metrics",
            )
            .await?;
            let app = crate::health::router(metrics.clone(), health.clone()).merge(page.router());
            let addr = listen::serve("metrics", listener, app, limits.0, metrics.clone())?;
            tracing::info!(listen = %addr, "serving the status page at /, /metrics and /healthz");
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
                let handed = sockets.take_webhook();
                Some(receive_webhooks(&cfg, w, handed, limits.1, &metrics).await?)
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
    /// Then the service's one [`Stop`] is requested: the worker, the pass it runs and every
    /// wait in it end.
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()>,
        mut reloads: mpsc::Receiver<()>,
    ) -> Result<()> {
        let mut worker = tokio::spawn(worker::run(self.worker()));
        // A first pass right away, so a (re)start shows its effect without waiting for the clock.
        self.ticks.fire(PassKind::Incremental);
        notify("READY=1");
        self.log_started();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                // The worker only ends when asked to: anything else is a bug outside a
                // mapping's pass (those are caught there). Exit non-zero, so that systemd
                // restarts the service, rather than live on without passes.
                ended = &mut worker => {
                    self.ticks.shutdown().await;
                    return Err(worker_died(ended));
                }
                Some(()) = reloads.recv() => {
                    let reloaded = self.reload().await;
                    self.tell_reload(reloaded);
                }
            }
        }
        self.stop_and_join(worker).await
    }

    /// The worker, sharing the service's stop, its reconciler and its queues.
    fn worker(&mut self) -> worker::Worker {
        worker::Worker {
            rx: self.ticks.take_receiver(),
            stop: self.stop.clone(),
            current: self.current.clone(),
            store: self.store.clone(),
            busy: self.ticks.busy(),
            full_pending: self.ticks.full_pending(),
            health: self.health.clone(),
            triggers: self.webhook.as_ref().map(|(_, t)| t.clone()),
            metrics: self.metrics.clone(),
            watchdog: watchdog_interval(),
        }
    }

    fn log_started(&self) {
        let cfg = crate::lock_unpoisoned(&self.current).config().clone();
        tracing::info!(
            reconcile = %cfg.schedule.reconcile,
            full_resync = %cfg.schedule.full_resync,
            mappings = cfg.mappings.len(),
            "service started (schedules in UTC)"
        );
    }

    /// Say in the log and to systemd whether a reload took.
    fn tell_reload(&self, reloaded: Result<()>) {
        let config = self.config_path.display();
        match reloaded {
            Ok(()) => {
                tracing::info!(config = %config, "configuration reloaded");
                // Replaces a "reload refused" status from an earlier attempt.
                notify(&format!("STATUS=configuration reloaded from {config}"));
            }
            Err(e) => {
                tracing::error!(config = %config, "configuration not reloaded, the running one stays: {}", e.report());
                notify(&format!(
                    "STATUS=reload refused, running with the previous configuration: {}",
                    e.report()
                ));
            }
        }
    }

    /// Request the stop, and give the writes in flight [`STOP_GRACE`] to finish.
    async fn stop_and_join(mut self, worker: tokio::task::JoinHandle<()>) -> Result<()> {
        notify("STOPPING=1");
        self.stop.request();
        // Logged once the stop is in force (tests wait for it before letting a held request go).
        tracing::info!("stopping: no new action starts; the requests in flight finish first");
        self.ticks.shutdown().await;
        match tokio::time::timeout(STOP_GRACE, worker).await {
            Ok(Ok(())) => tracing::info!("stopped cleanly"),
            Ok(Err(e)) => return Err(worker_died(Err(e))),
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

/// A socket handed over for a section the config does not have is a setup mistake.
fn refuse_unused(sockets: &Sockets, cfg: &Config) -> Result<()> {
    for (unused, section) in [
        (sockets.has_metrics() && cfg.metrics.is_none(), "metrics"),
        (sockets.has_webhook() && cfg.webhook.is_none(), "webhook"),
    ] {
        if unused {
            return Err(Error::Config(format!(
                "a {section} socket was handed over, but the config has no [{section}] section; add it, or stop passing the socket"
            )));
        }
    }
    Ok(())
}

/// Serve `[webhook]`: its receiver and the queue it fills.
async fn receive_webhooks(
    cfg: &Config,
    w: &crate::config::WebhookConfig,
    handed: Option<std::net::TcpListener>,
    max_connections: usize,
    metrics: &Arc<Metrics>,
) -> Result<(Arc<Receiver>, Arc<Triggers>)> {
    let triggers = Arc::new(Triggers::default());
    let receiver = Arc::new(Receiver::new(
        w.secret.clone(),
        jira_projects(cfg),
        triggers.clone(),
        metrics.clone(),
    ));
    let listener = listen::open(handed, w.listen, "webhook.listen", "webhook").await?;
    let app = crate::webhook::router(&w.path, receiver.clone());
    let addr = listen::serve("webhook", listener, app, max_connections, metrics.clone())?;
    tracing::info!(listen = %addr, path = %w.path, "receiving Jira webhooks");
    Ok((receiver, triggers))
}

/// Each listener's connection limit, within what the descriptor limit leaves the passes.
fn connection_limits() -> (usize, usize) {
    let descriptors = listen::raise_descriptor_limit();
    let wanted = [listen::METRICS_CONNECTIONS, listen::WEBHOOK_CONNECTIONS];
    let limits = listen::connection_limits(descriptors, &wanted);
    if limits != wanted {
        tracing::warn!(
            descriptors,
            metrics = limits[0],
            webhook = limits[1],
            "the descriptor limit is low: the listeners take fewer connections so that passes keep {} (raise LimitNOFILE=)",
            listen::PASS_RESERVE
        );
    }
    (limits[0], limits[1])
}

/// The error that ends `run` when the worker ended without being asked to.
fn worker_died(ended: std::result::Result<(), tokio::task::JoinError>) -> Error {
    let why = match ended {
        Ok(()) => "it returned".to_string(),
        Err(e) if e.is_panic() => {
            format!("it panicked: {}", crate::panic_message(&*e.into_panic()))
        }
        Err(e) => e.to_string(),
    };
    tracing::error!("the pass worker stopped ({why}); exiting so that the service is restarted");
    notify(&format!("STATUS=the pass worker stopped ({why})"));
    Error::Scheduler(format!("the pass worker stopped ({why}), a bug"))
}

/// The Jira projects whose events are worth a pass.
fn jira_projects(cfg: &Config) -> Vec<String> {
    cfg.mappings
        .iter()
        .map(|m| m.jira_project.clone())
        .collect()
}

/// `run` for the real binary: SIGTERM/SIGINT stop the service, SIGHUP reloads its config;
/// sockets systemd passed (socket activation) are served instead of binding.
pub async fn run(cfg: Config, config_path: PathBuf) -> Result<i32> {
    let signals = signals::Signals::for_service()?;
    let sockets = Sockets::from_systemd()?;
    let service = Service::start_with(cfg, config_path, sockets).await?;
    let (shutdown, reloads) = signals.into_inputs();
    service.run(shutdown, reloads).await?;
    Ok(0)
}
