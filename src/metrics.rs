//! Counters and gauges kept in memory and served in Prometheus text format by the service.
//! A handful of series with few labels: a map behind a mutex is all it needs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Counter,
    Gauge,
}

struct Family {
    kind: Kind,
    help: &'static str,
    /// label set (already rendered as `a="x",b="y"`) → value
    series: BTreeMap<String, f64>,
}

#[derive(Default)]
pub struct Metrics {
    families: Mutex<BTreeMap<&'static str, Family>>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn inc(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)], by: f64) {
        self.update(name, help, Kind::Counter, labels, |v| *v += by);
    }

    pub fn set(&self, name: &'static str, help: &'static str, labels: &[(&str, &str)], to: f64) {
        self.update(name, help, Kind::Gauge, labels, |v| *v = to);
    }

    /// The current value of one series (tests and `/healthz`).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let families = crate::lock_unpoisoned(&self.families);
        families
            .get(name)?
            .series
            .get(&render_labels(labels))
            .copied()
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
        f(family.series.entry(render_labels(labels)).or_insert(0.0));
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
            let _ = writeln!(out, "# HELP {name} {}", family.help);
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in &family.series {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        }
        out
    }
}

fn render_labels(labels: &[(&str, &str)]) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    parts.sort();
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
    }
}
