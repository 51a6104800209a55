//! Waits servers ask for, read without trusting them: `Retry-After` (seconds or an HTTP date),
//! GitLab's `RateLimit-Reset` (epoch seconds), Jira's `X-RateLimit-Reset` (epoch seconds or an
//! ISO 8601 instant such as `2024-01-01T12:00Z`). A value too large for any clock becomes
//! [`Duration::MAX`], never an overflow: the caller compares it with `retry.max_wait` before
//! adding it to anything. A wait the server asks of one request holds them all ([`Hold`]),
//! and a stop ends it at once.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::header::HeaderMap;

use super::header_str;
use crate::stop::Stop;

/// The instant until which the server asked all requests of a client to wait (a 429 with
/// `Retry-After`, or `RateLimit-Remaining: 0` with its reset time).
#[derive(Debug, Default)]
pub(super) struct Hold(Mutex<Option<tokio::time::Instant>>);

impl Hold {
    /// Wait out the hold; false when a stop ended the wait (or came before it).
    pub async fn wait_out(&self, stop: &Stop) -> bool {
        loop {
            let until = *crate::lock_unpoisoned(&self.0);
            match until {
                Some(t) if t > tokio::time::Instant::now() => {
                    if !stop.sleep(t - tokio::time::Instant::now()).await {
                        return false;
                    }
                }
                _ => return !stop.requested(),
            }
        }
    }

    /// Make every request wait until `wait` from now (a hold already longer stays). Callers
    /// bound `wait` by `retry.max_wait` first; one beyond any clock is ignored, not overflowed.
    pub fn extend(&self, wait: Duration) {
        let Some(until) = tokio::time::Instant::now().checked_add(wait) else {
            return;
        };
        let mut hold = crate::lock_unpoisoned(&self.0);
        if hold.is_none_or(|t| t < until) {
            *hold = Some(until);
        }
    }
}

/// A wait a server asked for, and where it said so (for the message when it is too long).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerWait {
    pub wait: Duration,
    /// The header as the server spelled its name (`Retry-After`, `X-RateLimit-Reset`).
    pub header: &'static str,
    /// Its value, made safe and short for messages.
    pub value: String,
}

/// Epoch seconds start here; smaller reset values are seconds from now.
const EPOCH_SECONDS_FROM: u64 = 1_000_000_000;

/// How long the server asks us to wait, as of `now`: `Retry-After` first, then the reset of
/// the rate-limit window (GitLab's `RateLimit-Reset`, Jira's `X-RateLimit-Reset`).
pub fn server_wait(headers: &HeaderMap, now: DateTime<Utc>) -> Option<ServerWait> {
    let found = |header: &'static str, value: &str, wait: Duration| ServerWait {
        wait,
        header,
        value: crate::safe_text::safe_within(value, 64),
    };
    if let Some(v) = header_str(headers, "retry-after") {
        if let Some(wait) = seconds(v).or_else(|| http_date(v, now)) {
            return Some(found("Retry-After", v, wait));
        }
    }
    for (name, header) in [
        ("ratelimit-reset", "RateLimit-Reset"),
        ("x-ratelimit-reset", "X-RateLimit-Reset"),
    ] {
        if let Some(v) = header_str(headers, name) {
            if let Some(wait) = reset(v, now) {
                return Some(found(header, v, wait));
            }
        }
    }
    None
}

/// Delta seconds; a number of digits beyond `u64` is [`Duration::MAX`].
fn seconds(v: &str) -> Option<Duration> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(v.parse::<u64>().map_or(Duration::MAX, Duration::from_secs))
}

/// An HTTP date in any of the three forms RFC 9110 §5.6.7 makes clients accept (IMF-fixdate,
/// RFC 850, asctime); one already past means "now".
fn http_date(v: &str, now: DateTime<Utc>) -> Option<Duration> {
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::from(now))
            .unwrap_or(Duration::ZERO),
    )
}

/// A rate-limit reset: epoch seconds (or, when small, seconds from now) or an ISO 8601
/// instant (Jira Cloud: `yyyy-MM-ddTHH:mmZ`).
fn reset(v: &str, now: DateTime<Utc>) -> Option<Duration> {
    if let Some(n) = seconds(v) {
        let n = n.as_secs();
        if n < EPOCH_SECONDS_FROM {
            return Some(Duration::from_secs(n));
        }
        let now_secs = u64::try_from(now.timestamp()).unwrap_or(0);
        return Some(Duration::from_secs(n.saturating_sub(now_secs)));
    }
    let at = DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%MZ").map(|t| t.and_utc()))
        .ok()?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("valid")
            .with_timezone(&Utc)
    }

    fn wait(pairs: &[(&'static str, &str)], now: DateTime<Utc>) -> Option<ServerWait> {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_str(value).expect("header"));
        }
        server_wait(&h, now)
    }

    #[test]
    fn retry_after_in_seconds_and_every_date_form() {
        let now = at("2025-02-15T09:45:00Z");
        let w = wait(&[("retry-after", "7")], now).expect("seconds");
        assert_eq!((w.wait, w.header), (Duration::from_secs(7), "Retry-After"));
        for date in [
            "Sat, 15 Feb 2025 09:45:30 GMT",    // IMF-fixdate
            "Saturday, 15-Feb-25 09:45:30 GMT", // obsolete RFC 850
            "Sat Feb 15 09:45:30 2025",         // obsolete asctime
        ] {
            let w = wait(&[("retry-after", date)], now).expect(date);
            assert_eq!(w.wait, Duration::from_secs(30), "{date}");
        }
        // A date in the past: retry now. Not a date at all: not a server wait.
        let past = wait(&[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")], now);
        assert_eq!(past.map(|w| w.wait), Some(Duration::ZERO));
        assert_eq!(wait(&[("retry-after", "soon")], now), None);
        assert_eq!(wait(&[("retry-after", "-5")], now), None);
        assert_eq!(wait(&[], now), None);
    }

    #[test]
    fn absurd_values_are_the_longest_wait_not_an_overflow() {
        let now = at("2025-02-15T09:45:00Z");
        for v in ["18446744073709551615", "99999999999999999999999999"] {
            let w = wait(&[("retry-after", v)], now).expect(v);
            assert!(w.wait >= Duration::from_secs(u64::MAX), "{v}: {w:?}");
            assert!(
                std::time::Instant::now().checked_add(w.wait).is_none(),
                "callers must not add it unchecked"
            );
        }
        let w = wait(&[("x-ratelimit-reset", "9999-12-31T23:59Z")], now).expect("far");
        assert!(w.wait > Duration::from_secs(200 * 365 * 86_400), "{w:?}");
    }

    #[test]
    fn rate_limit_resets_of_gitlab_and_jira() {
        let now = at("2025-02-15T09:45:00Z");
        let epoch = (now.timestamp() + 12).to_string();
        let w = wait(&[("ratelimit-reset", &epoch)], now).expect("epoch");
        assert_eq!(
            (w.wait, w.header),
            (Duration::from_secs(12), "RateLimit-Reset")
        );
        let w = wait(&[("ratelimit-reset", "40")], now).expect("delta");
        assert_eq!(w.wait, Duration::from_secs(40));
        // Jira Cloud's ISO 8601 form, used when Retry-After is missing.
        let w = wait(&[("x-ratelimit-reset", "2025-02-15T09:47Z")], now).expect("iso");
        assert_eq!(
            (w.wait, w.header, w.value.as_str()),
            (
                Duration::from_secs(120),
                "X-RateLimit-Reset",
                "2025-02-15T09:47Z"
            )
        );
        let w = wait(
            &[("x-ratelimit-reset", "2025-02-15T09:46:30.000+00:00")],
            now,
        );
        assert_eq!(w.map(|w| w.wait), Some(Duration::from_secs(90)));
        let w = wait(&[("x-ratelimit-reset", &epoch)], now).expect("numeric");
        assert_eq!(w.wait, Duration::from_secs(12));
        // Retry-After wins over a reset.
        let w = wait(&[("retry-after", "3"), ("x-ratelimit-reset", &epoch)], now);
        assert_eq!(w.map(|w| w.wait), Some(Duration::from_secs(3)));
        // A reset already past: now.
        let w = wait(&[("x-ratelimit-reset", "2025-02-15T09:40Z")], now);
        assert_eq!(w.map(|w| w.wait), Some(Duration::ZERO));
    }
}
