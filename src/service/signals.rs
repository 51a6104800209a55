//! The real process's inputs to [`super::Service::run`]: SIGTERM or SIGINT stop it, SIGHUP
//! (`systemctl reload`) asks for a reload.

use std::future::Future;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

use crate::error::{Error, Result};

pub(super) struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    /// Install the handlers (before anything slow, so an early SIGTERM is not lost).
    pub fn listen() -> Result<Signals> {
        let install = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| Error::io(format!("cannot listen for {name}"), e))
        };
        Ok(Signals {
            term: install(SignalKind::terminate(), "SIGTERM")?,
            int: install(SignalKind::interrupt(), "SIGINT")?,
            hup: install(SignalKind::hangup(), "SIGHUP")?,
        })
    }

    /// A future that completes on SIGTERM or SIGINT, and a channel that yields on each SIGHUP.
    pub fn into_inputs(self) -> (impl Future<Output = ()>, mpsc::Receiver<()>) {
        let Signals {
            mut term,
            mut int,
            mut hup,
        } = self;
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the configuration");
                // A reload already queued covers this one.
                let _ = tx.try_send(());
            }
        });
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
        };
        (shutdown, rx)
    }
}
