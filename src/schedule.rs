//! Cron strings for the service's schedule. tokio-cron-scheduler takes 6 fields, seconds first,
//! evaluated in UTC here (its time-zone-aware jobs have open bugs around DST, see README).
//! When a schedule fires is read with the scheduler's own parser (croner, configured as the
//! scheduler configures it), for the status page and the metrics alerts are built on.

use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds};
use croner::Cron;

use crate::error::{Error, Result};

/// How far ahead [`longest_gap`] looks: a week holds every weekly pattern (weekends, nights).
const GAP_HORIZON: chrono::Duration = chrono::Duration::weeks(1);
/// The most ticks [`longest_gap`] looks at: a schedule of every second reaches it in under
/// three hours, and a schedule that dense has no long gaps to find.
const GAP_TICKS: usize = 10_000;

/// A schedule the service's scheduler takes: 6 fields, seconds first, checked the way the
/// scheduler will parse it. Made only by [`CronSchedule::new`], so one that exists is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronSchedule(String);

impl CronSchedule {
    /// `expr`, or an error that names `key` and the fix.
    pub fn new(key: &str, expr: &str) -> Result<CronSchedule> {
        let fields = expr.split_whitespace().count();
        if fields == 5 {
            return Err(Error::Config(format!(
                "{key} = {expr:?} looks like a 5-field crontab line, but this schedule takes 6 fields, \
                 seconds first: write \"0 {expr}\" to run at second 0"
            )));
        }
        let parsed = tokio_cron_scheduler::Job::new_async(expr, |_, _| Box::pin(async {}));
        if fields < 6 || parsed.is_err() {
            return Err(Error::Config(format!(
                "{key} = {expr:?} is not a valid schedule: use 6 fields, seconds first \
                 (sec min hour day-of-month month day-of-week), e.g. \"0 * * * * *\" for every minute"
            )));
        }
        Ok(CronSchedule(expr.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for CronSchedule {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Compared as the text it is.
impl PartialEq<&str> for CronSchedule {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `expr` as tokio-cron-scheduler reads it: seconds required, a day-of-month and a
/// day-of-week both have to match.
fn parse(expr: &str) -> Option<Cron> {
    CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .ok()
}

/// When `expr` fires next after `now` (UTC, as the service's jobs run); `None` for a schedule
/// that does not parse or never fires again.
pub fn next_tick(expr: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    parse(expr)?.find_next_occurrence(&now, false).ok()
}

/// The longest time between two consecutive ticks of `expr` in the week after `now` (and at
/// least between the next two): a weekday-only schedule's gap is its weekend, so "no
/// successful pass within three intervals" never fires just because it is Sunday.
pub fn longest_gap(expr: &str, now: DateTime<Utc>) -> Option<Duration> {
    let cron = parse(expr)?;
    // Tick by tick (croner's own iterator steps a second past each tick, so on a schedule of
    // every second it would see every other one).
    let mut previous = cron.find_next_occurrence(&now, false).ok()?;
    let mut longest: Option<chrono::Duration> = None;
    for _ in 0..GAP_TICKS {
        let Ok(tick) = cron.find_next_occurrence(&previous, false) else {
            break;
        };
        let gap = tick - previous;
        longest = Some(longest.map_or(gap, |l| l.max(gap)));
        previous = tick;
        if tick - now > GAP_HORIZON {
            break;
        }
    }
    longest?.to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("a valid time")
    }

    #[test]
    fn next_ticks_and_gaps_follow_the_schedule_in_utc() {
        // Wednesday 2025-03-05 10:00:30 UTC.
        let now = at(2025, 3, 5, 10, 0, 30);
        assert_eq!(
            next_tick("0 * * * * *", now),
            Some(at(2025, 3, 5, 10, 1, 0))
        );
        assert_eq!(
            next_tick("0 30 3 * * *", now),
            Some(at(2025, 3, 6, 3, 30, 0))
        );
        assert_eq!(
            longest_gap("0 * * * * *", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            longest_gap("* * * * * *", now),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            longest_gap("*/5 * * * * *", now),
            Some(Duration::from_secs(5))
        );
        // Hourly on weekdays, 9 to 17: the gap is Friday 17:00 to Monday 9:00.
        assert_eq!(
            longest_gap("0 0 9-17 * * Mon-Fri", now),
            Some(Duration::from_secs(64 * 3600))
        );
        // Once a year: the gap between the next two ticks, beyond the week looked at.
        assert_eq!(
            longest_gap("0 0 0 1 1 *", now).map(|d| d.as_secs() / 86_400),
            Some(365),
            "the next two ticks: 2026-01-01 and 2027-01-01"
        );
        assert_eq!(next_tick("not a schedule", now), None);
        assert_eq!(longest_gap("not a schedule", now), None);
    }

    #[test]
    fn accepts_six_fields() {
        CronSchedule::new("schedule.reconcile", "0 * * * * *").expect("every minute");
        CronSchedule::new("schedule.reconcile", "*/5 * * * * *").expect("every 5 s");
        CronSchedule::new("schedule.full_resync", "0 30 3 * * *").expect("nightly");
    }

    #[test]
    fn refuses_garbage_and_names_the_key() {
        for bad in ["", "every minute", "61 * * * * *", "* * *"] {
            let e = CronSchedule::new("schedule.reconcile", bad)
                .expect_err(bad)
                .to_string();
            assert!(e.contains("schedule.reconcile"), "{e}");
        }
    }
}
