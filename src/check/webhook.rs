//! The checks of `[webhook]`: whether something listens where Jira's events go, and whether
//! events have arrived (the state database counts them).

use std::time::Duration;

use super::{problem, Finding};
use crate::config::WebhookConfig;
use crate::error::Result;
use crate::store::Store;

pub(super) async fn findings(w: &WebhookConfig, store: Option<&Result<Store>>) -> Vec<Finding> {
    let mut out = vec![listening(w).await];
    out.extend(events(store));
    out
}

/// A running service holds the port: a connection tells whether events can arrive now.
async fn listening(w: &WebhookConfig) -> Finding {
    let connect = tokio::net::TcpStream::connect(w.listen);
    let listening = tokio::time::timeout(Duration::from_secs(1), connect)
        .await
        .is_ok_and(|c| c.is_ok());
    Finding::Note(format!(
        "webhook: `run` receives Jira's events at {}{} ({})",
        w.listen,
        w.path,
        if listening {
            "something is listening there now"
        } else {
            "nothing listens there now: is the service running?"
        }
    ))
}

/// Whether events have arrived; without a state database yet, none can have been recorded.
fn events(store: Option<&Result<Store>>) -> Option<Finding> {
    let events = match store {
        None => Ok(None),
        Some(Ok(s)) => s.webhook_counts().read(),
        // The state database's own line says what is wrong with it.
        Some(Err(_)) => return None,
    };
    Some(match events {
        Ok(Some((issues, at))) => Finding::Ok(format!(
            "webhook: events have arrived; {issues} event-named issue(s) passed, the last at {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )),
        Ok(None) => Finding::Note(
            "webhook: no event has arrived yet; register it with `jira-gitlab-reconciler webhook register` (Jira admins) or paste what `webhook url` prints into Jira's WebHooks page"
                .into(),
        ),
        Err(e) => problem(&e),
    })
}
