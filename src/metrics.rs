//! Counters and gauges kept in memory and served in Prometheus text format by the service.
//! A handful of series with few labels: a map behind a mutex is all it needs.
//!
//! Every family is declared in [`FAMILIES`] and named by `/metrics` from the first scrape,
//! before any series of it exists: the Grafana dashboard and the alert rules in `pkg/` are
//! checked against that list, and a test checks that the source uses exactly these names.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Counter,
    Gauge,
}

/// Every metric family the program exports (its help text comes with its first use).
pub const FAMILIES: &[(&str, Kind)] = &[
    ("jgr_actions_total", Kind::Counter),
    ("jgr_checkpoint_timestamp_seconds", Kind::Gauge),
    ("jgr_connections_shed_total", Kind::Counter),
    ("jgr_create_hold_seconds_total", Kind::Counter),
    ("jgr_create_requests_total", Kind::Counter),
    ("jgr_creates_waiting", Kind::Gauge),
    ("jgr_http_requests_total", Kind::Counter),
    ("jgr_http_retries_total", Kind::Counter),
    ("jgr_last_success_timestamp_seconds", Kind::Gauge),
    ("jgr_needs_person", Kind::Gauge),
    ("jgr_pass_cpu_seconds", Kind::Gauge),
    ("jgr_pass_duration_seconds", Kind::Gauge),
    ("jgr_pass_panics_total", Kind::Counter),
    ("jgr_pass_running", Kind::Gauge),
    ("jgr_passes_total", Kind::Counter),
    ("jgr_schedule_interval_seconds", Kind::Gauge),
    ("jgr_start_time_seconds", Kind::Gauge),
    ("jgr_ticks_skipped_total", Kind::Counter),
    ("jgr_up", Kind::Gauge),
    ("jgr_webhook_events_total", Kind::Counter),
    ("jgr_webhook_last_delivery_timestamp_seconds", Kind::Gauge),
    ("jgr_webhook_last_latency_seconds", Kind::Gauge),
    ("jgr_webhook_latency_seconds_count", Kind::Counter),
    ("jgr_webhook_latency_seconds_sum", Kind::Counter),
];

struct Family {
    kind: Kind,
    help: &'static str,
    /// label set (sorted by name) → value
    series: BTreeMap<Labels, f64>,
}

/// A series' labels, sorted by name (so one label set has one key).
type Labels = Vec<(String, String)>;

pub struct Metrics {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let families = FAMILIES
            .iter()
            .map(|&(name, kind)| {
                let family = Family {
                    kind,
                    help: "",
                    series: BTreeMap::new(),
                };
                (name, family)
            })
            .collect();
        Metrics {
            families: Mutex::new(families),
        }
    }

    pub fn inc(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)], by: f64) {
        self.update(name, help, Kind::Counter, labels, |v| *v += by);
    }

    pub fn set(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)], to: f64) {
        self.update(name, help, Kind::Gauge, labels, |v| *v = to);
    }

    /// Move a gauge up or down by `by` (how many are waiting right now).
    pub fn add(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)], by: f64) {
        self.update(name, help, Kind::Gauge, labels, |v| *v += by);
    }

    /// Start a series of a declared family at `value` unless it exists already (so alert
    /// rules see counters from zero, and a value known at start-up). Its help text comes with
    /// the family's first use.
    pub fn init(&self, name: &'static str, labels: &[(&str, &str)], value: f64) {
        let mut families = crate::lock_unpoisoned(&self.families);
        let Some(family) = families.get_mut(name) else {
            debug_assert!(false, "{name} is not declared in FAMILIES");
            return;
        };
        family.series.entry(key(labels)).or_insert(value);
    }

    /// After a reload: drop every series labelled with a mapping that is no longer configured
    /// (removed, or renamed), so `/metrics` stops exporting its last values as if current.
    pub fn retain_mappings(&self, current: &[String]) {
        let mut families = crate::lock_unpoisoned(&self.families);
        for family in families.values_mut() {
            family.series.retain(|labels, _| {
                labels
                    .iter()
                    .find(|(k, _)| k == "mapping")
                    .is_none_or(|(_, m)| current.contains(m))
            });
        }
    }

    /// The current value of one series (tests and `/healthz`).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let families = crate::lock_unpoisoned(&self.families);
        families.get(name)?.series.get(&key(labels)).copied()
    }

    fn update(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: &[(&str, &str)],
        f: impl FnOnce(&mut f64),
    ) {
        let mut families = crate::lock_unpoisoned(&self.families);
        let family = families.entry(name).or_insert_with(|| Family {
            kind,
            help,
            series: BTreeMap::new(),
        });
        debug_assert_eq!(family.kind, kind, "{name} is declared as another kind");
        if family.help.is_empty() {
            family.help = help;
        }
        f(family.series.entry(key(labels)).or_insert(0.0));
    }

    /// Prometheus text exposition format, version 0.0.4.
    pub fn render(&self) -> String {
        let families = crate::lock_unpoisoned(&self.families);
        let mut out = String::new();
        for (name, family) in families.iter() {
            let kind = match family.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            if !family.help.is_empty() {
                let _ = writeln!(out, "# HELP {name} {}", family.help);
            }
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in &family.series {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{}}} {value}", render_labels(labels));
                }
            }
        }
        out
    }
}

fn key(labels: &[(&str, &str)]) -> Labels {
    let mut key: Labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    key.sort();
    key
}

fn render_labels(labels: &Labels) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.inc(
            "jgr_passes_total",
            "Passes.",
            &[("mapping", "VSA->a/b")],
            1.0,
        );
        m.inc(
            "jgr_passes_total",
            "Passes.",
            &[("mapping", "VSA->a/b")],
            1.0,
        );
        m.set("jgr_up", "Up.", &[], 1.0);
        let text = m.render();
        assert!(text.contains("# TYPE jgr_passes_total counter"), "{text}");
        assert!(
            text.contains("jgr_passes_total{mapping=\"VSA->a/b\"} 2"),
            "{text}"
        );
        assert!(text.contains("jgr_up 1"), "{text}");
        assert_eq!(
            m.get("jgr_passes_total", &[("mapping", "VSA->a/b")]),
            Some(2.0)
        );
        // Declared families are named before their first series.
        assert!(text.contains("# TYPE jgr_needs_person gauge\n"), "{text}");
        m.init("jgr_creates_waiting", &[], 5.0);
        m.init("jgr_creates_waiting", &[], 0.0);
        assert_eq!(m.get("jgr_creates_waiting", &[]), Some(5.0), "kept");
        m.add("jgr_creates_waiting", "Waiting.", &[], -3.0);
        m.add("jgr_creates_waiting", "Waiting.", &[], -1.0);
        assert_eq!(m.get("jgr_creates_waiting", &[]), Some(1.0));
    }

    /// A mapping removed or renamed by a reload leaves `/metrics`: its last values are not
    /// exported as if they were current.
    #[test]
    fn series_of_a_mapping_no_longer_configured_are_dropped() {
        let m = Metrics::new();
        for mapping in ["VSA->a/b", "OLD->a/c"] {
            let labels = [("mapping", mapping), ("kind", "full"), ("outcome", "ok")];
            m.inc("jgr_passes_total", "Passes.", &labels, 1.0);
            m.set("jgr_needs_person", "Needs.", &[("mapping", mapping)], 1.0);
        }
        m.set("jgr_up", "Up.", &[], 1.0);
        m.retain_mappings(&["VSA->a/b".to_string()]);
        let text = m.render();
        assert!(!text.contains("OLD->a/c"), "{text}");
        assert!(
            text.contains("jgr_needs_person{mapping=\"VSA->a/b\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("jgr_passes_total{kind=\"full\",mapping=\"VSA->a/b\",outcome=\"ok\"} 1"),
            "{text}"
        );
        assert!(text.contains("jgr_up 1"), "{text}");
    }
}
