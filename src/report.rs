//! `report`: lead time, throughput and time in status per mapping and week, from the state
//! database alone (no server is asked): what a GitLab Free team otherwise cannot see, and a
//! cross-check of GitLab's Value Stream Analytics for Premium teams. Output as a table, JSON
//! or CSV, and optionally an SVG chart (`report/svg.rs`).

mod svg;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{json, Value};

use crate::config::{Mapping, StateConfig};
use crate::domain::MappingId;
use crate::error::{Error, Result};
use crate::leadtime::{figures, Figures, IssueTimes, Window};
use crate::store::Store;

/// How `report` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Csv,
}

/// What the user asked for.
#[derive(Clone, Debug)]
pub struct Request {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub format: Format,
    pub svg: Option<PathBuf>,
    /// Only this mapping (`VSA->acme/platform`).
    pub mapping: Option<String>,
}

/// The default window: the last 12 weeks.
pub const DEFAULT_WEEKS: i64 = 12;

/// One mapping's figures over the window.
#[derive(Clone, Debug)]
pub struct MappingFigures {
    pub mapping: String,
    pub figures: Figures,
}

/// The report as computed: the window and each mapping's figures.
#[derive(Clone, Debug)]
pub struct Report {
    pub window: Window,
    pub mappings: Vec<MappingFigures>,
}

/// Run the command: compute, print, write the SVG if asked. Exit code 0.
pub fn run(cfg: &StateConfig, req: &Request) -> Result<i32> {
    let report = compute(cfg, req, Utc::now())?;
    // The chart first: a path that cannot be written fails the command before any output.
    if let Some(path) = &req.svg {
        write_svg(&report, path)?;
    }
    print!("{}", render(&report, req.format));
    if let Some(path) = &req.svg {
        if req.format == Format::Table {
            println!("chart written to {}", path.display());
        }
    }
    Ok(0)
}

/// The report as text in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Table => table(report),
        Format::Json => serde_json::to_string_pretty(&to_json(report)).unwrap_or_default() + "\n",
        Format::Csv => csv(report),
    }
}

/// Write the chart to `path`: through a new file renamed over it, so a symlink planted at
/// `path` is replaced, never followed, and a reader never sees half a chart.
pub fn write_svg(report: &Report, path: &Path) -> Result<()> {
    let failed = |e| Error::io(format!("cannot write the chart to {}", path.display()), e);
    // `--svg /dev/stdout`, a pipe: written into, as asked.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return std::fs::write(path, svg::chart(report)).map_err(failed);
    }
    let mut fresh = path.as_os_str().to_owned();
    fresh.push(format!(".{}.tmp", std::process::id()));
    let fresh = std::path::PathBuf::from(fresh);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&fresh)
        .and_then(|mut f| std::io::Write::write_all(&mut f, svg::chart(report).as_bytes()))
        .and_then(|()| std::fs::rename(&fresh, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&fresh);
        return Err(failed(e));
    }
    Ok(())
}

/// The figures of every mapping (or the one asked for) from the state database.
pub fn compute(cfg: &StateConfig, req: &Request, now: DateTime<Utc>) -> Result<Report> {
    let until = req.until.unwrap_or(now);
    let since = req.since.unwrap_or(until - Duration::weeks(DEFAULT_WEEKS));
    if since >= until {
        return Err(Error::Config(format!(
            "--since {} is not before --until {}: give a window that ends after it starts",
            since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )));
    }
    let window = Window { since, until };
    let path = &cfg.state_path;
    let store = match Store::open_read_only(path)? {
        Some(store) => store,
        None if path.exists() => {
            return Err(Error::store(
                path,
                "it was written by an older version: run `jira-gitlab-reconciler reconcile` once to upgrade it, then report",
            ))
        }
        None => {
            return Err(Error::store(
                path,
                "it does not exist yet (check that this is the config the service uses): run `jira-gitlab-reconciler reconcile` first; the report reads what passes recorded",
            ))
        }
    };
    let want = req
        .mapping
        .as_deref()
        .map(crate::config::Mapping::normalise_name);
    let report = figures_of(&store, &cfg.mappings, window, want.as_deref())?;
    if let Some(want) = &req.mapping {
        if report.mappings.is_empty() {
            let names: Vec<String> = cfg.mappings.iter().map(|m| m.name()).collect();
            return Err(Error::Config(format!(
                "--mapping {want:?} is not in the config; its mappings are: {}",
                names.join(", ")
            )));
        }
    }
    Ok(report)
}

/// The figures of the configured mappings (or only `mapping`) over `window`, from an open
/// state database: what `report` prints and the status page shows.
pub fn figures_of(
    store: &Store,
    of: &[Mapping],
    window: Window,
    mapping: Option<&str>,
) -> Result<Report> {
    let mut mappings = Vec::new();
    for m in of {
        let name = m.name();
        if mapping.is_some_and(|want| want != name) {
            continue;
        }
        mappings.push(MappingFigures {
            figures: figures(&issue_times(store, &m.id())?, window),
            mapping: name,
        });
    }
    Ok(Report { window, mappings })
}

/// SVG markup drawn by this program, every name in it escaped: safe to put inside a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chart(String);

impl Chart {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The report as an SVG chart (what `--svg` writes).
pub fn chart(report: &Report) -> Chart {
    Chart(svg::chart(report))
}

/// The recorded issues of a mapping (those that left it excluded), with their transitions.
fn issue_times(store: &Store, mapping: &MappingId) -> Result<Vec<IssueTimes>> {
    let facts = store.facts();
    let gone = facts.gone(mapping)?;
    let mut transitions = facts.transitions(mapping)?;
    Ok(facts
        .all(mapping)?
        .into_values()
        .filter(|f| !gone.contains_key(&f.jira_id))
        .map(|f| IssueTimes {
            created: f.created,
            done_at: f.done_at,
            transitions: transitions.remove(&f.jira_id).unwrap_or_default(),
        })
        .collect())
}

/// `2025-03-31` (UTC midnight; for `--until`, the end of that day) or an RFC 3339 time.
pub fn parse_when(s: &str, end_of_day: bool) -> std::result::Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        format!("{s:?} is not a date such as 2025-03-31 or a time such as 2025-03-31T12:00:00Z")
    })?;
    let d = if end_of_day { d + Duration::days(1) } else { d };
    d.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{s:?} is out of range"))
}

/// "42 min", "5.2 h", "4.3 d".
pub fn human(seconds: f64) -> String {
    if seconds < 3_600.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if seconds < 48.0 * 3_600.0 {
        format!("{:.1} h", seconds / 3_600.0)
    } else {
        format!("{:.1} d", seconds / 86_400.0)
    }
}

fn opt_human(s: Option<f64>) -> String {
    s.map_or_else(|| "-".to_string(), human)
}

fn date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// The window as the user asked for it: whole days as dates, the last one included (`--until
/// 2025-03-31` ends at the next midnight, which is not what was typed), other times to the
/// minute.
fn window_text(w: &Window) -> String {
    let midnight = |t: DateTime<Utc>| t.time() == chrono::NaiveTime::MIN;
    if midnight(w.since) && midnight(w.until) {
        let last = (w.until - Duration::days(1)).date_naive();
        return format!("{} … {} UTC (whole days)", w.since.date_naive(), last);
    }
    format!("{} … {} UTC", date(w.since), date(w.until))
}

fn table(r: &Report) -> String {
    let mut out = String::new();
    for m in &r.mappings {
        let f = &m.figures;
        out.push_str(&format!(
            "{}   {}, Jira created → done\n",
            m.mapping,
            window_text(&r.window)
        ));
        out.push_str(&format!(
            "  issues created {}, closed {}\n",
            f.created, f.closed
        ));
        out.push_str(&format!(
            "  lead time       median {}, 85th percentile {} ({})\n",
            opt_human(f.lead_time_median_s),
            opt_human(f.lead_time_p85_s),
            crate::domain::plural(f.closed, "issue", "issues")
        ));
        if f.status_time_s.is_empty() {
            out.push_str("  time in status  - (turn on status_labels to record transitions)\n");
        } else {
            let parts: Vec<String> = f
                .status_time_s
                .iter()
                .map(|(s, t)| format!("{s} {}", human(*t)))
                .collect();
            out.push_str(&format!(
                "  time in status  median per issue: {}\n",
                parts.join(", ")
            ));
        }
        out.push_str(&format!(
            "\n  {:<9} {:<11} {:>7} {:>7} {:>12} {:>10}\n",
            "week", "starts", "created", "closed", "lead median", "lead p85"
        ));
        for w in &f.weeks {
            out.push_str(&format!(
                "  {:<9} {:<11} {:>7} {:>7} {:>12} {:>10}\n",
                w.label(),
                w.start.to_string(),
                w.created,
                w.closed,
                opt_human(w.lead_time_median_s),
                opt_human(w.lead_time_p85_s)
            ));
        }
        out.push('\n');
    }
    out
}

/// Seconds rounded to whole seconds (null when there is nothing to measure).
fn secs(s: Option<f64>) -> Value {
    s.map_or(Value::Null, |s| json!(s.round() as i64))
}

pub fn to_json(r: &Report) -> Value {
    let mappings: Vec<Value> = r
        .mappings
        .iter()
        .map(|m| {
            let f = &m.figures;
            let weeks: Vec<Value> = f
                .weeks
                .iter()
                .map(|w| {
                    json!({
                        "week": w.label(),
                        "start": w.start.to_string(),
                        "created": w.created,
                        "closed": w.closed,
                        "lead_time_median_s": secs(w.lead_time_median_s),
                        "lead_time_p85_s": secs(w.lead_time_p85_s),
                    })
                })
                .collect();
            let status: serde_json::Map<String, Value> = f
                .status_time_s
                .iter()
                .map(|(k, v)| (k.clone(), secs(Some(*v))))
                .collect();
            json!({
                "mapping": m.mapping,
                "created": f.created,
                "closed": f.closed,
                "lead_time_median_s": secs(f.lead_time_median_s),
                "lead_time_p85_s": secs(f.lead_time_p85_s),
                "weeks": weeks,
                "status_time_s": status,
            })
        })
        .collect();
    json!({
        "since": r.window.since,
        "until": r.window.until,
        "mappings": mappings,
    })
}

fn csv(r: &Report) -> String {
    let field = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let num = |s: Option<f64>| s.map_or(String::new(), |s| format!("{}", s.round() as i64));
    let mut out =
        String::from("mapping,week,week_start,created,closed,lead_time_median_s,lead_time_p85_s\n");
    for m in &r.mappings {
        for w in &m.figures.weeks {
            out.push_str(&format!(
                "{},{},{},{},{},{},{}\n",
                field(&m.mapping),
                w.label(),
                w.start,
                w.created,
                w.closed,
                num(w.lead_time_median_s),
                num(w.lead_time_p85_s)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_durations_read_and_print_plainly() {
        let end = parse_when("2025-03-31", true).expect("date");
        assert_eq!(end.to_rfc3339(), "2025-04-01T00:00:00+00:00");
        assert_eq!(
            parse_when("2025-03-31", false).expect("date").to_rfc3339(),
            "2025-03-31T00:00:00+00:00"
        );
        assert!(parse_when("2025-03-31T12:00:00+02:00", false).is_ok());
        assert!(parse_when("last week", false)
            .unwrap_err()
            .contains("2025-03-31"));
        assert_eq!(human(90.0), "2 min");
        assert_eq!(human(5.0 * 3600.0), "5.0 h");
        assert_eq!(human(3.0 * 86_400.0), "3.0 d");
    }

    /// `--until 2025-03-31` is shown as typed, not as the next day's midnight it ends at.
    #[test]
    fn the_window_is_shown_as_asked() {
        let days = Window {
            since: parse_when("2025-01-01", false).expect("date"),
            until: parse_when("2025-03-31", true).expect("date"),
        };
        assert_eq!(
            window_text(&days),
            "2025-01-01 … 2025-03-31 UTC (whole days)"
        );
        let times = Window {
            since: parse_when("2025-01-01T08:30:00Z", false).expect("time"),
            until: parse_when("2025-03-31T17:00:00Z", true).expect("time"),
        };
        assert_eq!(
            window_text(&times),
            "2025-01-01 08:30 … 2025-03-31 17:00 UTC"
        );
    }
}
