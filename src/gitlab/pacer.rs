//! Pacing of issue creation. GitLab limits creates per user and window (GitLab.com: 200 a
//! minute) and answers a create over the limit with a bare 429: no `Retry-After`, no
//! `RateLimit-*`. Guessing a low rate wastes a fast server; bursting into the limit wastes a
//! minute per burst. So the pacer learns:
//!
//! - until a create is refused, creates go out as fast as the write concurrency allows;
//! - on a refused create it learns the limit as the number of creates the last window admitted
//!   (when it has watched a whole window), holds creates until the oldest of them leaves the
//!   window, and from then on keeps at most that many creates in any window;
//! - GitLab counts per user, so other clients of the same account take part of the window: a
//!   refusal after far fewer creates than the learned limit (under half) holds the window but
//!   does not lower the limit, and after ten minutes without a refusal the limit grows by a
//!   tenth, so a limit learned in a crowded minute is not kept for the day;
//! - a server-given wait (`Retry-After`) is honoured as such;
//! - `gitlab.creates_per_minute`, when set, is a hard cap over any 60 s.
//!
//! The learned limit and the recent creates are saved in the state database ([`Snapshot`]),
//! so a process restarted in a loop cannot burst past the limit.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::stop::Stop;

/// The cap's window: `creates_per_minute` is per minute.
const MINUTE: Duration = Duration::from_secs(60);
/// A create is sent this much after the oldest one leaves the window (a fiftieth of the window,
/// at most 250 ms), so jitter in arrival times does not make the server count one too many;
/// on GitLab.com's one-minute window that costs 0.4% of the rate.
const MAX_MARGIN: Duration = Duration::from_millis(250);
/// A learned limit is forgotten after this long, so a raised server limit is found again.
const LEARNED_FOR: Duration = Duration::from_secs(24 * 3600);
/// After this long without a refusal, the learned limit grows by a tenth (at least one).
const GROW_AFTER: Duration = Duration::from_secs(600);
/// Sends are counted in slots this wide (or a 6,000th of the window, if that is wider): the
/// log stays a few thousand counters however fast creates go, and pacing errs by at most one
/// slot, on the late side.
const SLOT: Duration = Duration::from_millis(10);

pub struct CreatePacer {
    /// `gitlab.creates_per_minute`: a hard cap over any 60 s.
    cap: Option<u32>,
    /// The server's window (`retry.create_rate_limit_backoff`; 60 s on GitLab.com).
    window: Duration,
    margin: Duration,
    /// The width of one slot of the send log.
    slot: Duration,
    /// What the slot numbers count from.
    epoch: Instant,
    state: Mutex<State>,
}

struct State {
    /// The limit a refused create taught, and when it was last set or grown (wall clock, to
    /// persist it).
    learned: Option<(u32, SystemTime)>,
    /// Sends (not refused) within the longer of the two windows: (slot number, count), oldest
    /// first.
    log: VecDeque<(i64, u32)>,
    /// Creates admitted and not yet answered: ticket → its slot (a send moves it).
    in_flight: std::collections::HashMap<u64, i64>,
    /// No create before this (a server-given wait, or the window after a refusal).
    held_until: Option<Instant>,
    /// Since when this pacer has seen every create: a count over a shorter time says nothing
    /// about the server's limit.
    watching_since: Instant,
    /// Saved sends up to this time are in the log already (the state is re-read every pass).
    imported_until: Option<SystemTime>,
    next_ticket: u64,
}

/// A create the pacer let through: hand it back with `refused`, `not_sent` or `done`.
#[derive(Debug)]
pub struct Ticket(u64);

/// The pacer's state as stored between runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Creates per window learned from the server, and when.
    pub learned: Option<(u32, SystemTime)>,
    /// When the creates of the last window were sent.
    pub recent: Vec<SystemTime>,
}

impl CreatePacer {
    pub fn new(cap: Option<u32>, window: Duration) -> Self {
        let window = window.max(Duration::from_millis(1));
        let now = Instant::now();
        CreatePacer {
            cap: cap.filter(|c| *c > 0),
            window,
            margin: (window / 50).min(MAX_MARGIN),
            slot: SLOT.max(window.max(MINUTE) / 6000),
            epoch: now,
            state: Mutex::new(State {
                learned: None,
                log: VecDeque::new(),
                in_flight: std::collections::HashMap::new(),
                held_until: None,
                watching_since: now,
                imported_until: None,
                next_ticket: 0,
            }),
        }
    }

    /// The limit learned from the server, if any (for logs, metrics and `status`).
    pub fn learned_limit(&self) -> Option<u32> {
        self.lock().learned.map(|(n, _)| n)
    }

    /// Wait until a create may be sent and count it as sent. `None` when a stop ended the wait.
    pub async fn admit(&self, stop: &Stop) -> Option<Ticket> {
        let mut told = false;
        loop {
            let wait = {
                let mut st = self.lock();
                let now = Instant::now();
                match self.wait_needed(&mut st, now) {
                    None => {
                        let ticket = st.next_ticket;
                        st.next_ticket += 1;
                        let slot = self.slot_of(now);
                        add(&mut st.log, slot, 1);
                        st.in_flight.insert(ticket, slot);
                        return Some(Ticket(ticket));
                    }
                    Some(w) => w,
                }
            };
            if !told {
                told = true;
                tracing::info!(
                    wait_ms = wait.as_millis() as u64,
                    learned_limit = self.learned_limit(),
                    cap = self.cap,
                    "pacing GitLab issue creation to the server's limit"
                );
            }
            if !stop.sleep(wait).await {
                return None;
            }
        }
    }

    /// The server refused the create of `ticket` (429). `server_wait`: what it asked for, if
    /// anything. Learns the limit when this pacer has watched a whole window.
    pub fn refused(&self, ticket: Ticket, server_wait: Option<Duration>) {
        let mut st = self.lock();
        let now = Instant::now();
        self.forget(&mut st, ticket);
        let window = self.window;
        let admitted = self.count_within(&st, now, window);
        // A count over less than a whole window says nothing about the limit; neither does one
        // far below the limit learned (another client of the same account took the rest).
        let credible = now.duration_since(st.watching_since) >= window
            && admitted > 0
            && st.learned.is_none_or(|(old, _)| admitted * 2 >= old);
        if credible {
            if st.learned.map(|(n, _)| n) != Some(admitted) {
                tracing::info!(
                    creates = admitted,
                    window_s = window.as_secs_f64(),
                    "learned GitLab's issue-create limit from a refused create"
                );
            }
            st.learned = Some((admitted, SystemTime::now()));
        }
        let until = match server_wait {
            Some(w) => now + w,
            // The window frees a slot when its oldest create leaves it; without a record of
            // any (a restart), wait a whole window.
            None => self
                .oldest_within(&st, now, window)
                .map_or(now + window, |t| t + window + self.margin),
        };
        if st.held_until.is_none_or(|h| h < until) {
            st.held_until = Some(until);
        }
    }

    /// The create of `ticket` is going out now (it may have waited for a free connection since
    /// it was admitted): its place in the window is from now.
    pub fn sending(&self, ticket: &Ticket) {
        let mut st = self.lock();
        let now = self.slot_of(Instant::now());
        if let Some(slot) = st.in_flight.get(&ticket.0).copied() {
            if slot != now {
                remove(&mut st.log, slot);
                add(&mut st.log, now, 1);
                st.in_flight.insert(ticket.0, now);
            }
        }
    }

    /// GitLab answered the create of `ticket` (it counts in the window where it was sent).
    pub fn done(&self, ticket: Ticket) {
        self.lock().in_flight.remove(&ticket.0);
    }

    /// The create of `ticket` surely did not reach the server (it could not connect, or a stop
    /// came first): it does not count.
    pub fn not_sent(&self, ticket: Ticket) {
        let mut st = self.lock();
        self.forget(&mut st, ticket);
    }

    /// What a restart needs: the learned limit and, while a limit applies, the creates still in
    /// its window (about the limit's worth, so the saved state stays small).
    pub fn snapshot(&self) -> Snapshot {
        let st = self.lock();
        let now = Instant::now();
        let now_wall = SystemTime::now();
        let horizon = match (st.learned, self.cap) {
            (None, None) => Duration::ZERO,
            (Some(_), None) => self.window,
            (None, Some(_)) => MINUTE,
            (Some(_), Some(_)) => self.window.max(MINUTE),
        };
        let mut recent = Vec::new();
        for &(slot, count) in &st.log {
            let at = self.time_of(slot);
            if now.saturating_duration_since(at) >= horizon {
                continue;
            }
            let wall = now_wall
                .checked_sub(now.saturating_duration_since(at))
                .unwrap_or(now_wall);
            recent.extend(std::iter::repeat_n(wall, count as usize));
        }
        Snapshot {
            learned: st.learned,
            recent,
        }
    }

    /// Take over a saved state: the learned limit (unless too old) and the creates other
    /// processes sent (those before this pacer started, or since it last looked).
    pub fn restore(&self, saved: &Snapshot) {
        let mut st = self.lock();
        let now_wall = SystemTime::now();
        let now = Instant::now();
        if let Some((n, at)) = saved.learned {
            let fresh = now_wall
                .duration_since(at)
                .is_ok_and(|age| age < LEARNED_FOR);
            // The more recent knowledge wins (another process may have learned since).
            if fresh && st.learned.is_none_or(|(_, mine)| at > mine) {
                st.learned = Some((n, at));
            }
        }
        // This process's own sends since it started are in the log already.
        let started_wall = now_wall
            .checked_sub(now.saturating_duration_since(st.watching_since))
            .unwrap_or(now_wall);
        let horizon = self.window.max(MINUTE);
        let mut newest = st.imported_until;
        for wall in &saved.recent {
            if st.imported_until.is_some_and(|seen| *wall <= seen) || *wall >= started_wall {
                continue;
            }
            let Ok(age) = now_wall.duration_since(*wall) else {
                continue;
            };
            if age >= horizon {
                continue;
            }
            let slot = self.slot_of(now.checked_sub(age).unwrap_or(now));
            add(&mut st.log, slot, 1);
            newest = newest.max(Some(*wall));
        }
        st.imported_until = newest;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::lock_unpoisoned(&self.state)
    }

    fn forget(&self, st: &mut State, ticket: Ticket) {
        if let Some(slot) = st.in_flight.remove(&ticket.0) {
            remove(&mut st.log, slot);
        }
    }

    fn slot_of(&self, t: Instant) -> i64 {
        let slot = self.slot.as_nanos() as i64;
        match t.checked_duration_since(self.epoch) {
            Some(d) => d.as_nanos() as i64 / slot,
            None => -((self.epoch - t).as_nanos() as i64).div_euclid(slot) - 1,
        }
    }

    /// When a slot starts.
    fn time_of(&self, slot: i64) -> Instant {
        let offset = self.slot.saturating_mul(slot.unsigned_abs() as u32);
        if slot >= 0 {
            self.epoch + offset
        } else {
            self.epoch.checked_sub(offset).unwrap_or(self.epoch)
        }
    }

    /// Sends in slots that end within the last `window`.
    fn count_within(&self, st: &State, now: Instant, window: Duration) -> u32 {
        st.log
            .iter()
            .rev()
            .take_while(|(slot, _)| self.time_of(*slot) + self.slot > now - window)
            .map(|(_, n)| *n)
            .sum()
    }

    /// The end of the oldest slot with sends that ends within the last `window`.
    fn oldest_within(&self, st: &State, now: Instant, window: Duration) -> Option<Instant> {
        st.log
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(slot, _)| self.time_of(*slot) + self.slot)
            .find(|end| *end > now - window)
    }

    /// How long the next create must wait, or `None` to send it now.
    fn wait_needed(&self, st: &mut State, now: Instant) -> Option<Duration> {
        if st
            .learned
            .is_some_and(|(_, at)| at.elapsed().is_ok_and(|age| age >= LEARNED_FOR))
        {
            st.learned = None;
        }
        if let Some((n, at)) = st.learned {
            if at.elapsed().is_ok_and(|age| age >= GROW_AFTER) {
                // No refusal for a while: try a little more (a refusal will say if it is too much).
                st.learned = Some((n + (n / 10).max(1), SystemTime::now()));
            }
        }
        let horizon = self.window.max(MINUTE);
        while st.log.front().is_some_and(|(slot, _)| {
            now.saturating_duration_since(self.time_of(*slot)) >= horizon + self.slot
        }) {
            st.log.pop_front();
        }
        let mut until = st.held_until.filter(|h| *h > now);
        let mut limit_by = |limit: u32, window: Duration| {
            // Walk back from the newest sends: the limit-th most recent must leave the window
            // before another may go.
            let mut seen = 0u32;
            for (slot, n) in st.log.iter().rev() {
                let end = self.time_of(*slot) + self.slot;
                if end + window <= now {
                    break;
                }
                seen += n;
                if seen >= limit {
                    let free_at = end + window + self.margin;
                    until = Some(until.map_or(free_at, |u| u.max(free_at)));
                    break;
                }
            }
        };
        if let Some((n, _)) = st.learned {
            limit_by(n, self.window);
        }
        if let Some(cap) = self.cap {
            limit_by(cap, MINUTE);
        }
        until.map(|u| u - now)
    }
}

/// Count `n` more sends in `slot`, keeping the log in slot order.
fn add(log: &mut VecDeque<(i64, u32)>, slot: i64, n: u32) {
    match log.back_mut() {
        Some((last, count)) if *last == slot => *count += n,
        Some((last, _)) if *last < slot => log.push_back((slot, n)),
        None => log.push_back((slot, n)),
        Some(_) => {
            // An older send (a restored one): in its place.
            let at = log.partition_point(|(s, _)| *s < slot);
            match log.get_mut(at) {
                Some((s, count)) if *s == slot => *count += n,
                _ => log.insert(at, (slot, n)),
            }
        }
    }
}

/// One send fewer in `slot` (a refused or unsent create).
fn remove(log: &mut VecDeque<(i64, u32)>, slot: i64) {
    let at = log.partition_point(|(s, _)| *s < slot);
    if let Some((s, count)) = log.get_mut(at) {
        if *s == slot && *count > 0 {
            *count -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn unlimited_until_refused_then_the_admitted_rate() {
        let pacer = CreatePacer::new(None, Duration::from_secs(60));
        let stop = Stop::new();
        tokio::time::advance(Duration::from_secs(61)).await; // watched a whole window
        let start = Instant::now();
        for _ in 0..5 {
            pacer.admit(&stop).await.expect("admitted");
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "no guessing low");
        // The sixth is refused: five per window is the server's limit.
        let sixth = pacer.admit(&stop).await.expect("sent");
        pacer.refused(sixth, None);
        assert_eq!(pacer.learned_limit(), Some(5));
        pacer.admit(&stop).await.expect("admitted later");
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(60) && waited < Duration::from_secs(61),
            "held until the window passed: {waited:?}"
        );
        // Four more fit the window the first of them opened; the fifth waits for the next.
        for _ in 0..4 {
            pacer.admit(&stop).await.expect("admitted");
        }
        assert_eq!(start.elapsed(), waited);
        pacer.admit(&stop).await.expect("admitted");
        assert!(start.elapsed() >= waited + Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_crowded_window_does_not_teach_a_tiny_limit_and_the_limit_grows_back() {
        let pacer = CreatePacer::new(None, Duration::from_secs(60));
        let stop = Stop::new();
        tokio::time::advance(Duration::from_secs(61)).await;
        for _ in 0..10 {
            pacer.admit(&stop).await.expect("admitted");
        }
        let t = pacer.admit(&stop).await.expect("sent");
        pacer.refused(t, None);
        assert_eq!(pacer.learned_limit(), Some(10));
        // Another client of the same account used most of the next window: one create got in.
        tokio::time::advance(Duration::from_secs(61)).await;
        pacer.admit(&stop).await.expect("admitted");
        let t = pacer.admit(&stop).await.expect("sent");
        pacer.refused(t, None);
        assert_eq!(pacer.learned_limit(), Some(10), "not lowered to 1");
        // Ten quiet minutes: it grows by a tenth.
        {
            let mut state = pacer.lock();
            if let Some((n, _)) = state.learned {
                state.learned = Some((n, SystemTime::now() - GROW_AFTER));
            }
        }
        tokio::time::advance(Duration::from_secs(61)).await;
        pacer.admit(&stop).await.expect("admitted");
        assert_eq!(pacer.learned_limit(), Some(11));
    }

    #[tokio::test(start_paused = true)]
    async fn the_send_log_stays_small_however_fast_creates_go() {
        let pacer = CreatePacer::new(None, Duration::from_secs(60));
        let stop = Stop::new();
        // 100,000 creates over 100 s, no limit known.
        for _ in 0..100_000 {
            let t = pacer.admit(&stop).await.expect("admitted");
            pacer.done(t);
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        let st = pacer.lock();
        assert!(st.log.len() <= 6_002, "{} slots", st.log.len());
        assert!(st.in_flight.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn re_reading_the_saved_state_every_pass_counts_it_once() {
        let first = CreatePacer::new(Some(5), Duration::from_secs(60));
        let stop = Stop::new();
        for _ in 0..3 {
            let t = first.admit(&stop).await.expect("admitted");
            first.done(t);
        }
        let saved = first.snapshot();
        assert_eq!(saved.recent.len(), 3);
        let second = CreatePacer::new(Some(5), Duration::from_secs(60));
        second.restore(&saved);
        second.restore(&saved);
        let now = Instant::now();
        assert_eq!(second.count_within(&second.lock(), now, MINUTE), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_count_over_less_than_a_window_teaches_nothing() {
        let pacer = CreatePacer::new(None, Duration::from_secs(60));
        let stop = Stop::new();
        let t = pacer.admit(&stop).await.expect("sent");
        pacer.refused(t, None);
        assert_eq!(
            pacer.learned_limit(),
            None,
            "just started: the window was not ours"
        );
        let start = Instant::now();
        pacer.admit(&stop).await.expect("sent after a hold");
        assert!(start.elapsed() >= Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_wait_is_honoured_and_a_stop_ends_any_wait() {
        let pacer = CreatePacer::new(None, Duration::from_secs(60));
        let stop = Stop::new();
        let t = pacer.admit(&stop).await.expect("sent");
        pacer.refused(t, Some(Duration::from_secs(7)));
        let start = Instant::now();
        pacer.admit(&stop).await.expect("sent");
        assert_eq!(start.elapsed(), Duration::from_secs(7));
        let t = pacer.admit(&stop).await.expect("sent");
        pacer.refused(t, Some(Duration::from_secs(3600)));
        stop.request();
        assert!(
            pacer.admit(&stop).await.is_none(),
            "stopped, not waiting an hour"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_cap_holds_over_any_minute() {
        let pacer = CreatePacer::new(Some(3), Duration::from_secs(60));
        let stop = Stop::new();
        let start = Instant::now();
        for _ in 0..4 {
            pacer.admit(&stop).await.expect("admitted");
        }
        assert!(start.elapsed() >= Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_keeps_the_limit_and_the_window() {
        let first = CreatePacer::new(None, Duration::from_secs(60));
        let stop = Stop::new();
        tokio::time::advance(Duration::from_secs(61)).await;
        for _ in 0..3 {
            first.admit(&stop).await.expect("admitted");
        }
        let t = first.admit(&stop).await.expect("sent");
        first.refused(t, None);
        let saved = first.snapshot();
        assert_eq!(saved.learned.map(|l| l.0), Some(3));
        assert_eq!(saved.recent.len(), 3);

        let second = CreatePacer::new(None, Duration::from_secs(60));
        second.restore(&saved);
        assert_eq!(second.learned_limit(), Some(3));
        let start = Instant::now();
        second.admit(&stop).await.expect("admitted");
        assert!(
            start.elapsed() >= Duration::from_secs(59),
            "no burst after a restart: {:?}",
            start.elapsed()
        );
    }
}
