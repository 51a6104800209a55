//! The process's signals, turned into the one stop mechanism ([`Stop`]): SIGTERM or SIGINT
//! stop it, and for the service SIGHUP (`systemctl reload`) asks for a reload. Installed
//! before anything slow, so an early SIGTERM is not lost.

use std::future::Future;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::stop::Stop;

pub struct Signals {
    term: Signal,
    int: Signal,
    /// Only the service reloads; elsewhere SIGHUP keeps its default (it ends the process).
    hup: Option<Signal>,
}

fn install(kind: SignalKind, name: &str) -> Result<Signal> {
    signal(kind).map_err(|e| Error::io(format!("cannot listen for {name}"), e))
}

impl Signals {
    /// SIGTERM, SIGINT and SIGHUP, for the service: see [`Signals::into_inputs`].
    pub fn for_service() -> Result<Signals> {
        let mut signals = Signals::stopping()?;
        signals.hup = Some(install(SignalKind::hangup(), "SIGHUP")?);
        Ok(signals)
    }

    /// SIGTERM and SIGINT, for a command that only stops: see [`Signals::request`].
    pub fn stopping() -> Result<Signals> {
        Ok(Signals {
            term: install(SignalKind::terminate(), "SIGTERM")?,
            int: install(SignalKind::interrupt(), "SIGINT")?,
            hup: None,
        })
    }

    /// For [`super::Service::run`]: a future that completes on SIGTERM or SIGINT, and a
    /// channel that yields on each SIGHUP.
    pub fn into_inputs(self) -> (impl Future<Output = ()>, mpsc::Receiver<()>) {
        let (tx, rx) = mpsc::channel(1);
        if let Some(mut hup) = self.hup {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the configuration");
                    // A reload already queued covers this one.
                    let _ = tx.try_send(());
                }
            });
        }
        let (mut term, mut int) = (self.term, self.int);
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
        };
        (shutdown, rx)
    }

    /// Request `stop` on SIGTERM or SIGINT; `then` is logged once the stop is in force.
    pub fn request(self, stop: &Stop, then: &'static str) {
        let (mut term, mut int) = (self.term, self.int);
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            stop.request();
            tracing::warn!("{then}");
        });
    }
}
