//! `/metrics` (Prometheus text) and `/healthz` for the service. Healthy means every mapping had
//! a successful pass within `metrics.unhealthy_after` (counting from start-up before the first).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::reconcile::PassReport;

pub struct Health {
    started: Instant,
    unhealthy_after: Duration,
    last_success: Mutex<HashMap<String, Instant>>,
    mappings: Mutex<Vec<String>>,
}

impl Health {
    pub fn new(cfg: &Config) -> Self {
        Health {
            started: Instant::now(),
            unhealthy_after: cfg
                .metrics
                .as_ref()
                .map(|m| m.unhealthy_after)
                .unwrap_or(Duration::from_secs(15 * 60)),
            last_success: Mutex::new(HashMap::new()),
            mappings: Mutex::new(cfg.mappings.iter().map(|m| m.name()).collect()),
        }
    }

    /// After a reload: judge the mappings that exist now (a new one from now on).
    pub fn set_mappings(&self, cfg: &Config) {
        let names: Vec<String> = cfg.mappings.iter().map(|m| m.name()).collect();
        let mut last = crate::lock_unpoisoned(&self.last_success);
        for n in &names {
            last.entry(n.clone()).or_insert_with(Instant::now);
        }
        *crate::lock_unpoisoned(&self.mappings) = names;
    }

    pub fn record(&self, reports: &[PassReport]) {
        let mut last = crate::lock_unpoisoned(&self.last_success);
        for r in reports.iter().filter(|r| r.ok()) {
            last.insert(r.mapping.to_string(), Instant::now());
        }
    }

    /// `Ok` when healthy, else the mappings that are overdue.
    pub fn check(&self) -> std::result::Result<(), Vec<String>> {
        let last = crate::lock_unpoisoned(&self.last_success);
        let mappings = crate::lock_unpoisoned(&self.mappings);
        let overdue: Vec<String> = mappings
            .iter()
            .filter(|m| {
                let since = last.get(*m).copied().unwrap_or(self.started);
                since.elapsed() > self.unhealthy_after
            })
            .cloned()
            .collect();
        if overdue.is_empty() {
            Ok(())
        } else {
            Err(overdue)
        }
    }
}

/// `/metrics` and `/healthz`.
pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    metrics.render(),
                )
            }),
        )
        .route(
            "/healthz",
            get(move || async move {
                match health.check() {
                    Ok(()) => (StatusCode::OK, "ok\n".to_string()).into_response(),
                    Err(overdue) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "unhealthy: no successful pass within {} s for: {}\n",
                            health.unhealthy_after.as_secs(),
                            overdue.join(", ")
                        ),
                    )
                        .into_response(),
                }
            }),
        )
}
