//! Series the service sets itself, so alert rules have something to compare with from the
//! first scrape: when it started, how long its schedule may leave between passes, each
//! mapping's last success as the state database remembers it (a restart does not forget it),
//! and zeros for the counters and gauges alerts take `increase` or `min_over_time` of.

use chrono::Utc;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::Store;

pub(super) fn on_start(metrics: &Metrics, cfg: &Config, store: &Store) {
    metrics.set(
        "jgr_start_time_seconds",
        "Unix time the service started.",
        &[],
        Utc::now().timestamp() as f64,
    );
    for outcome in ["created", "refused", "held"] {
        metrics.init("jgr_create_requests_total", &[("outcome", outcome)], 0.0);
    }
    metrics.init("jgr_creates_waiting", &[], 0.0);
    metrics.init("jgr_create_hold_seconds_total", &[], 0.0);
    super::worker::set_running(metrics, false);
    on_reload(metrics, cfg, Some(store));
}

/// The schedule's gaps, and a series per mapping (a new mapping's from now on; a removed or
/// renamed one's are dropped, not exported with their last values).
pub(super) fn on_reload(metrics: &Metrics, cfg: &Config, store: Option<&Store>) {
    let names: Vec<String> = cfg.mappings.iter().map(|m| m.name()).collect();
    metrics.retain_mappings(&names);
    if cfg.webhook.is_some() {
        // From zero, so `rate()` and `increase()` have a series before the first delivery.
        for outcome in crate::webhook::Outcome::ALL {
            metrics.init(
                "jgr_webhook_events_total",
                &[("outcome", outcome.label())],
                0.0,
            );
        }
    }
    let now = Utc::now();
    for (kind, expr) in [
        ("incremental", &cfg.schedule.reconcile),
        ("full", &cfg.schedule.full_resync),
    ] {
        if let Some(gap) = crate::schedule::longest_gap(expr, now) {
            metrics.set(
                "jgr_schedule_interval_seconds",
                "The longest time the schedule leaves between two passes of this kind over the coming week (UTC).",
                &[("kind", kind)],
                gap.as_secs_f64(),
            );
        }
    }
    for m in &cfg.mappings {
        let name = m.name();
        let labels = [("mapping", name.as_str())];
        // Unknown until the mapping's first pass here, which runs right after start or reload.
        metrics.init("jgr_needs_person", &labels, 0.0);
        let remembered = store.and_then(|s| s.status(&m.id()).ok()?.last_success);
        if let Some(p) = remembered {
            let at = p.finished_at.unwrap_or(p.started_at).timestamp() as f64;
            metrics.init("jgr_last_success_timestamp_seconds", &labels, at);
        }
    }
}
