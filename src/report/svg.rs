//! The report as an SVG chart, written by hand (a plotting crate would outweigh the rest of
//! the program): per mapping, issues closed per week as bars (throughput, left axis) and the
//! week's median lead time as a line (days, right axis).

use std::fmt::Write;

use super::{human, Report};
use crate::leadtime::Week;

const WIDTH: f64 = 860.0;
const PANEL: f64 = 320.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 72.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 64.0;
const BAR: &str = "#6baed6";
const LINE: &str = "#d94801";

pub(super) fn chart(r: &Report) -> String {
    let height = PANEL * r.mappings.len().max(1) as f64 + 24.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect class="bg" width="100%" height="100%" fill="white"/>"#
    );
    if r.mappings.is_empty() {
        let _ = writeln!(
            out,
            r#"<text class="ink" x="20" y="40">No mapping to report.</text>"#
        );
    }
    for (i, m) in r.mappings.iter().enumerate() {
        let f = &m.figures;
        let title = format!(
            "{}: lead time median {}, 85th percentile {} · {} closed, {} created",
            m.mapping,
            f.lead_time_median_s.map_or("-".into(), human),
            f.lead_time_p85_s.map_or("-".into(), human),
            f.closed,
            f.created
        );
        panel(&mut out, PANEL * i as f64, &title, &f.weeks);
    }
    let _ = writeln!(
        out,
        r##"<text class="ink" x="{LEFT}" y="{}" fill="#555">Jira created → done, {} … {} UTC · jira-gitlab-reconciler report</text>"##,
        height - 8.0,
        r.window.since.format("%Y-%m-%d"),
        r.window.until.format("%Y-%m-%d")
    );
    out.push_str("</svg>\n");
    out
}

/// One mapping's panel, `y0` from the top: its title, axes, bars, line, week labels, legend.
fn panel(out: &mut String, y0: f64, title: &str, weeks: &[Week]) {
    let p = Panel::new(y0, weeks);
    let _ = writeln!(
        out,
        r#"<text class="ink" x="{LEFT}" y="{}" font-size="14" font-weight="bold">{}</text>"#,
        y0 + 24.0,
        escape(title)
    );
    p.axes(out);
    p.bars(out, weeks);
    p.line(out, weeks);
    p.week_labels(out, weeks);
    p.legend(out);
}

/// A panel's plot area and scales.
struct Panel {
    plot_w: f64,
    plot_h: f64,
    /// The y of the plot's baseline.
    bottom: f64,
    /// The width each week gets.
    band: f64,
    /// The left axis's top: issues closed, a multiple of 4.
    max_closed: f64,
    /// The right axis's top: days, a round number.
    max_days: f64,
}

/// A week's median lead time in days, if issues were closed that week.
fn days(w: &Week) -> Option<f64> {
    w.lead_time_median_s.map(|s| s / 86_400.0)
}

impl Panel {
    fn new(y0: f64, weeks: &[Week]) -> Panel {
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = PANEL - TOP - BOTTOM;
        // Whole issues on every one of the four grid lines.
        let most = weeks.iter().map(|w| w.closed).max().unwrap_or(0).max(1);
        Panel {
            plot_w,
            plot_h,
            bottom: y0 + TOP + plot_h,
            band: plot_w / weeks.len().max(1) as f64,
            max_closed: (most.div_ceil(4) * 4) as f64,
            max_days: nice_ceiling(weeks.iter().filter_map(days).fold(0.0, f64::max)),
        }
    }

    /// The x of the middle of week `i`.
    fn middle(&self, i: usize) -> f64 {
        LEFT + self.band * (i as f64 + 0.5)
    }

    /// Grid lines, with issues on the left axis and days on the right.
    fn axes(&self, out: &mut String) {
        for k in 0..=4 {
            let frac = f64::from(k) / 4.0;
            let y = self.bottom - frac * self.plot_h;
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" class="grid" stroke="#e5e5e5"/>"##,
                LEFT + self.plot_w
            );
            let _ = writeln!(
                out,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="{BAR}">{}</text>"##,
                LEFT - 6.0,
                y + 4.0,
                trim(frac * self.max_closed)
            );
            let _ = writeln!(
                out,
                r##"<text x="{:.1}" y="{:.1}" fill="{LINE}">{} d</text>"##,
                LEFT + self.plot_w + 6.0,
                y + 4.0,
                trim(frac * self.max_days)
            );
        }
    }

    /// Throughput: a bar per week.
    fn bars(&self, out: &mut String, weeks: &[Week]) {
        for (i, w) in weeks.iter().enumerate() {
            let h = if self.max_closed > 0.0 {
                w.closed as f64 / self.max_closed * self.plot_h
            } else {
                0.0
            };
            let x = LEFT + self.band * i as f64 + self.band * 0.2;
            let _ = writeln!(
                out,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{BAR}"><title>{}: {} closed, {} created</title></rect>"#,
                self.bottom - h,
                self.band * 0.6,
                w.label(),
                w.closed,
                w.created
            );
        }
    }

    /// Lead time: a point per week with closes, joined by a line broken over weeks without.
    fn line(&self, out: &mut String, weeks: &[Week]) {
        let mut path = String::new();
        let mut pen_down = false;
        for (i, w) in weeks.iter().enumerate() {
            let x = self.middle(i);
            match days(w) {
                Some(d) if self.max_days > 0.0 => {
                    let y = self.bottom - d / self.max_days * self.plot_h;
                    let _ = write!(path, "{}{x:.1},{y:.1} ", if pen_down { "L" } else { "M" });
                    pen_down = true;
                    let _ = writeln!(
                        out,
                        r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{LINE}"><title>{}: median lead time {}</title></circle>"#,
                        w.label(),
                        human(d * 86_400.0)
                    );
                }
                _ => pen_down = false,
            }
        }
        if !path.is_empty() {
            let _ = writeln!(
                out,
                r#"<path d="{}" fill="none" stroke="{LINE}" stroke-width="2" vector-effect="non-scaling-stroke"/>"#,
                path.trim_end()
            );
        }
    }

    /// Week labels, at most about twelve.
    fn week_labels(&self, out: &mut String, weeks: &[Week]) {
        let every = (weeks.len() / 12).max(1);
        for (i, w) in weeks.iter().enumerate().filter(|(i, _)| i % every == 0) {
            let _ = writeln!(
                out,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="ink" fill="#333">{}</text>"##,
                self.middle(i),
                self.bottom + 16.0,
                w.start.format("%b %d")
            );
        }
    }

    fn legend(&self, out: &mut String) {
        let ly = self.bottom + 40.0;
        let _ = writeln!(
            out,
            r#"<rect x="{LEFT}" y="{:.1}" width="12" height="12" fill="{BAR}"/><text class="ink" x="{:.1}" y="{:.1}">issues closed per week (throughput)</text>"#,
            ly - 10.0,
            LEFT + 18.0,
            ly
        );
        let _ = writeln!(
            out,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{LINE}" stroke-width="2"/><text class="ink" x="{:.1}" y="{:.1}">median lead time of the issues closed that week (days)</text>"#,
            LEFT + 280.0,
            ly - 4.0,
            LEFT + 300.0,
            ly - 4.0,
            LEFT + 306.0,
            ly
        );
    }
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `v` (at least 1), for round axis ends.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 1.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * magnitude)
}

fn trim(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leadtime::{Figures, Window};
    use crate::report::MappingFigures;
    use chrono::{NaiveDate, TimeZone, Utc};

    #[test]
    fn chart_is_well_formed_and_escapes_names() {
        let week = |d: u32, closed: u64, median: Option<f64>| Week {
            start: NaiveDate::from_ymd_opt(2025, 3, d).expect("date"),
            created: 1,
            closed,
            lead_time_median_s: median,
            lead_time_p85_s: median,
        };
        let r = Report {
            window: Window {
                since: Utc
                    .with_ymd_and_hms(2025, 3, 3, 0, 0, 0)
                    .single()
                    .expect("t"),
                until: Utc
                    .with_ymd_and_hms(2025, 3, 24, 0, 0, 0)
                    .single()
                    .expect("t"),
            },
            mappings: vec![MappingFigures {
                mapping: "A&B->x/<y>".into(),
                figures: Figures {
                    weeks: vec![
                        week(3, 2, Some(86_400.0)),
                        week(10, 0, None),
                        week(17, 5, Some(3.0 * 86_400.0)),
                    ],
                    ..Figures::default()
                },
            }],
        };
        let svg = chart(&r);
        assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("A&amp;B-&gt;x/&lt;y&gt;"));
        assert_eq!(
            svg.matches("<circle").count(),
            2,
            "no point for a week without closes"
        );
        assert_eq!(
            svg.matches(" M").count() + svg.matches("\"M").count(),
            2,
            "the line breaks at the gap"
        );
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(13.0), 20.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
    }
}
