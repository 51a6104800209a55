//! The create pacer's arithmetic, none of which can panic: its send log (counts per slot,
//! saturating) and instants a window later (saturating at a century from now).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// As late as an instant goes here: a wait beyond any clock (a window configured in aeons) is
/// this long, and refused as longer than `retry.max_wait`, never an overflow.
pub(super) const FAR: Duration = Duration::from_secs(100 * 365 * 86_400);

/// `t + d`, saturating: no window, margin or hold can make the arithmetic panic.
pub(super) fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).or_else(|| t.checked_add(FAR)).unwrap_or(t)
}

/// A count as `u32`, saturating (counts of the send log and of creates in flight).
pub(super) fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Count `n` more sends in `slot`, keeping the log in slot order.
pub(super) fn add(log: &mut VecDeque<(i64, u32)>, slot: i64, n: u32) {
    match log.back_mut() {
        Some((last, count)) if *last == slot => *count = count.saturating_add(n),
        Some((last, _)) if *last < slot => log.push_back((slot, n)),
        None => log.push_back((slot, n)),
        Some(_) => {
            // An older send (a restored one): in its place.
            let at = log.partition_point(|(s, _)| *s < slot);
            match log.get_mut(at) {
                Some((s, count)) if *s == slot => *count = count.saturating_add(n),
                _ => log.insert(at, (slot, n)),
            }
        }
    }
}

/// One send fewer in `slot` (a refused or unsent create).
pub(super) fn remove(log: &mut VecDeque<(i64, u32)>, slot: i64) {
    let at = log.partition_point(|(s, _)| *s < slot);
    if let Some((s, count)) = log.get_mut(at) {
        if *s == slot && *count > 0 {
            *count -= 1;
        }
    }
}
