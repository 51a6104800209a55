//! Lead time, throughput and time in status, computed from what Jira said (creation and done
//! times, status transitions): the figures `report` prints. Pure, so they can be checked
//! against values computed by hand.
//!
//! Definitions (the same as GitLab's Value Stream Analytics where it has one):
//! - *created* / *closed*: issues created / done (status category `done`) in the window;
//! - *lead time* of an issue: done − created, for issues done in the window; median and 85th
//!   percentile are interpolated between ranks (PostgreSQL's `percentile_cont`, which VSA
//!   uses), so the median of 1, 2, 3, 4 days is 2.5 days;
//! - *time in status*: for each issue done in the window whose transitions are known, the
//!   total time it spent in each status (from entering it to leaving it; the status it ended
//!   in does not count), then the median over the issues that were in that status;
//! - weeks are ISO weeks, Monday 00:00 UTC.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use crate::domain::Transition;

/// One issue's times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueTimes {
    pub created: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    /// Oldest first; empty when unknown.
    pub transitions: Vec<Transition>,
}

/// `[since, until)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Window {
    fn contains(&self, t: DateTime<Utc>) -> bool {
        t >= self.since && t < self.until
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Week {
    /// The Monday it starts on.
    pub start: NaiveDate,
    pub created: u64,
    pub closed: u64,
    pub lead_time_median_s: Option<f64>,
    pub lead_time_p85_s: Option<f64>,
}

impl Week {
    /// `2025-W07`.
    pub fn label(&self) -> String {
        let w = self.start.iso_week();
        format!("{}-W{:02}", w.year(), w.week())
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    pub created: u64,
    pub closed: u64,
    pub lead_time_median_s: Option<f64>,
    pub lead_time_p85_s: Option<f64>,
    pub weeks: Vec<Week>,
    /// Status name → median seconds an issue spent in it.
    pub status_time_s: BTreeMap<String, f64>,
}

/// The `p` quantile (0..=1) of `sorted` values, interpolated between ranks; `None` if empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let pos = p.clamp(0.0, 1.0) * last as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64))
}

fn seconds(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// The Monday (00:00 UTC) of the week `t` is in.
pub fn week_start(t: DateTime<Utc>) -> NaiveDate {
    let d = t.date_naive();
    d - Duration::days(i64::from(d.weekday().num_days_from_monday()))
}

pub fn figures(issues: &[IssueTimes], window: Window) -> Figures {
    let closed: Vec<&IssueTimes> = issues
        .iter()
        .filter(|i| i.done_at.is_some_and(|d| window.contains(d)))
        .collect();
    let lead = |set: &[&IssueTimes]| -> Vec<f64> {
        sorted(
            set.iter()
                .filter_map(|i| i.done_at.map(|d| seconds(d - i.created).max(0.0)))
                .collect(),
        )
    };
    let all_lead = lead(&closed);
    let mut out = Figures {
        created: issues.iter().filter(|i| window.contains(i.created)).count() as u64,
        closed: closed.len() as u64,
        lead_time_median_s: percentile(&all_lead, 0.5),
        lead_time_p85_s: percentile(&all_lead, 0.85),
        weeks: Vec::new(),
        status_time_s: status_times(&closed),
    };
    if window.until <= window.since {
        return out;
    }
    let mut start = week_start(window.since);
    let last = week_start(window.until - Duration::milliseconds(1));
    while start <= last {
        let begins = start.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
        let Some(begins) = begins else { break };
        let week = Window {
            since: begins.max(window.since),
            until: (begins + Duration::days(7)).min(window.until),
        };
        let in_week: Vec<&IssueTimes> = closed
            .iter()
            .copied()
            .filter(|i| i.done_at.is_some_and(|d| week.contains(d)))
            .collect();
        let lt = lead(&in_week);
        out.weeks.push(Week {
            start,
            created: issues.iter().filter(|i| week.contains(i.created)).count() as u64,
            closed: in_week.len() as u64,
            lead_time_median_s: percentile(&lt, 0.5),
            lead_time_p85_s: percentile(&lt, 0.85),
        });
        start += Duration::days(7);
    }
    out
}

/// Median time per status over the issues that were in it (see the module documentation).
fn status_times(closed: &[&IssueTimes]) -> BTreeMap<String, f64> {
    let mut per_status: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for issue in closed {
        let Some(first) = issue.transitions.first() else {
            continue;
        };
        let mut spent: BTreeMap<String, f64> = BTreeMap::new();
        let mut current = first.from.clone();
        let mut since = issue.created;
        for t in &issue.transitions {
            if let Some(status) = current.take() {
                *spent.entry(status).or_default() += seconds(t.at - since).max(0.0);
            }
            current = Some(t.to.clone());
            since = t.at;
        }
        for (status, s) in spent {
            per_status.entry(status).or_default().push(s);
        }
    }
    per_status
        .into_iter()
        .filter_map(|(status, v)| Some((status, percentile(&sorted(v), 0.5)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const DAY: i64 = 86_400;
    const HOUR: i64 = 3_600;

    /// Monday 2025-03-03 00:00 UTC plus `secs`.
    fn t(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 3, 0, 0, 0)
            .single()
            .expect("date")
            + Duration::seconds(secs)
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-6)
    }

    fn step(at: i64, from: &str, to: &str) -> Transition {
        Transition {
            at: t(at),
            from: Some(from.into()),
            to: to.into(),
        }
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7.0], 0.85), Some(7.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.5));
        // 0.85 × 3 = 2.55 → 3 + 0.55 × (4 − 3)
        assert!(close(percentile(&[1.0, 2.0, 3.0, 4.0], 0.85), 3.55));
    }

    /// Five issues over two weeks, figures worked out by hand in the comments.
    #[test]
    fn figures_match_hand_computed_values() {
        let issues = vec![
            // A: created Mon wk1 00:00, done Wed wk1 00:00 → 2 d. To Do 1 d, In Progress 1 d.
            IssueTimes {
                created: t(0),
                done_at: Some(t(2 * DAY)),
                transitions: vec![
                    step(DAY, "To Do", "In Progress"),
                    step(2 * DAY, "In Progress", "Done"),
                ],
            },
            // B: created Tue wk1, done Mon wk2 00:00 → 6 d. To Do 12 h, In Progress 3 d 12 h,
            //    In Review 2 d.
            IssueTimes {
                created: t(DAY),
                done_at: Some(t(7 * DAY)),
                transitions: vec![
                    step(DAY + 12 * HOUR, "To Do", "In Progress"),
                    step(5 * DAY, "In Progress", "In Review"),
                    step(7 * DAY, "In Review", "Done"),
                ],
            },
            // C: created Thu wk1, done Fri wk2 → 8 d, no transitions known.
            IssueTimes {
                created: t(3 * DAY),
                done_at: Some(t(11 * DAY)),
                transitions: vec![],
            },
            // D: created Sun wk2 (day 13), still open.
            IssueTimes {
                created: t(13 * DAY),
                done_at: None,
                transitions: vec![step(13 * DAY + HOUR, "To Do", "In Progress")],
            },
            // E: created and done before the window: counted nowhere.
            IssueTimes {
                created: t(-10 * DAY),
                done_at: Some(t(-DAY)),
                transitions: vec![],
            },
        ];
        let f = figures(
            &issues,
            Window {
                since: t(0),
                until: t(14 * DAY),
            },
        );
        assert_eq!((f.created, f.closed), (4, 3));
        // Lead times 2, 6, 8 days: median 6 d; p85 = 6 + 0.7 × (8 − 6) = 7.4 d.
        assert_eq!(f.lead_time_median_s, Some((6 * DAY) as f64));
        assert!(
            close(f.lead_time_p85_s, 7.4 * DAY as f64),
            "{:?}",
            f.lead_time_p85_s
        );
        // To Do: A 1 d, B 12 h → median 18 h. In Progress: A 1 d, B 3.5 d → 2.25 d.
        // In Review: B 2 d. Done and D's statuses do not count.
        let expect: BTreeMap<String, f64> = [
            ("In Progress".to_string(), 2.25 * DAY as f64),
            ("In Review".to_string(), (2 * DAY) as f64),
            ("To Do".to_string(), (18 * HOUR) as f64),
        ]
        .into();
        assert_eq!(f.status_time_s, expect);
        // Week 1 (Mar 3): created A, B, C; closed A (2 d). Week 2 (Mar 10): created D; closed
        // B (6 d) and C (8 d): median 7 d, p85 = 6 + 0.85 × 2 = 7.7 d.
        assert_eq!(f.weeks.len(), 2);
        assert_eq!(f.weeks[0].label(), "2025-W10");
        assert_eq!((f.weeks[0].created, f.weeks[0].closed), (3, 1));
        assert_eq!(f.weeks[0].lead_time_median_s, Some((2 * DAY) as f64));
        assert_eq!((f.weeks[1].created, f.weeks[1].closed), (1, 2));
        assert_eq!(f.weeks[1].lead_time_median_s, Some((7 * DAY) as f64));
        assert!(close(f.weeks[1].lead_time_p85_s, 7.7 * DAY as f64));
    }

    #[test]
    fn partial_weeks_and_empty_windows() {
        let f = figures(
            &[],
            Window {
                since: t(3 * DAY),
                until: t(8 * DAY),
            },
        );
        assert_eq!(
            f.weeks.len(),
            2,
            "Thursday to the next Tuesday touches two weeks"
        );
        assert_eq!(f.weeks[0].start, t(0).date_naive());
        assert_eq!(f.lead_time_median_s, None);
        assert!(figures(
            &[],
            Window {
                since: t(DAY),
                until: t(0)
            }
        )
        .weeks
        .is_empty());
    }
}
