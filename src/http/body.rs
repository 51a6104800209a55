//! Reading an answer's body without letting the server decide how much memory it takes: read
//! as it streams in, up to a bound, never whole; and all answers read at once together within
//! one budget, so many concurrent answers cannot add up to what one may not take.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The largest answer read: far above any page this tool asks for (100 issues, 1,000
/// changelogs), far below what would hurt the machine.
pub const MAX_BODY: usize = 64 * 1024 * 1024;
/// Of an error answer only the start is read: the message shown is at most 2 KiB anyway.
pub const MAX_ERROR_BODY: usize = 64 * 1024;
/// The most memory held by answers being read or decoded at once, for both servers together
/// (every client built from one `ClientOptions`): two answers at the bound, or hundreds of
/// ordinary pages. Without it, each of `gitlab.concurrency` requests per server could hold
/// `MAX_BODY`.
pub const MAX_IN_FLIGHT: usize = 2 * MAX_BODY;

/// The bytes all answers in flight hold, shared by the clients of one `ClientOptions`.
#[derive(Debug)]
pub struct Budget {
    held: AtomicUsize,
    /// The most ever held at once.
    peak: AtomicUsize,
    limit: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            held: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            limit,
        })
    }

    /// Bytes held now (for tests and metrics).
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// The most bytes held at once so far.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Take `n` bytes, unless that would pass the limit.
    fn take(&self, n: usize) -> bool {
        let taken = self
            .held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                held.checked_add(n).filter(|total| *total <= self.limit)
            });
        if let Ok(before) = taken {
            self.peak.fetch_max(before + n, Ordering::SeqCst);
        }
        taken.is_ok()
    }
}

/// One answer's part of the budget, given back when the answer is dropped (after decoding).
#[derive(Debug)]
pub struct Share {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Share {
    fn new(budget: &Arc<Budget>) -> Share {
        Share {
            budget: budget.clone(),
            bytes: 0,
        }
    }

    fn grow(&mut self, n: usize) -> bool {
        let taken = self.budget.take(n);
        if taken {
            self.bytes += n;
        }
        taken
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// A body read up to a bound.
pub struct Capped {
    pub bytes: Vec<u8>,
    /// The body went on past the bound (or said it would, in `Content-Length`); what was read
    /// is its start.
    pub cut: bool,
    /// The answers in flight together already held [`MAX_IN_FLIGHT`]: this one was dropped
    /// unread (empty `bytes`). Worth another try once they are done.
    pub crowded: bool,
    /// The memory `bytes` holds, counted in the budget until the answer is dropped.
    _share: Share,
}

/// Read `resp`'s body, at most `limit` bytes of it, within `budget`. With `whole_or_nothing`,
/// a declared length over the limit is not read at all (an answer to decode is useless cut);
/// without, the start is read (an error's message).
pub async fn read(
    mut resp: reqwest::Response,
    limit: usize,
    whole_or_nothing: bool,
    budget: &Arc<Budget>,
) -> Result<Capped, reqwest::Error> {
    let declared = resp.content_length().unwrap_or(0);
    let mut share = Share::new(budget);
    let mut bytes = Vec::new();
    let done = |bytes, cut, crowded, share| Capped {
        bytes,
        cut,
        crowded,
        _share: share,
    };
    if whole_or_nothing && declared > limit as u64 {
        return Ok(done(bytes, true, false, share));
    }
    let first = usize::try_from(declared).map_or(limit, |d| d.min(limit));
    if !reserve(&mut bytes, &mut share, first, limit) {
        return Ok(done(Vec::new(), false, true, Share::new(budget)));
    }
    while let Some(chunk) = resp.chunk().await? {
        let room = limit - bytes.len();
        let take = chunk.len().min(room);
        let want = bytes.len() + take;
        if !reserve(&mut bytes, &mut share, want, limit) {
            // Dropping the response closes the connection: the rest is never read.
            return Ok(done(Vec::new(), false, true, Share::new(budget)));
        }
        bytes.extend_from_slice(&chunk[..take]);
        if chunk.len() > room {
            return Ok(done(bytes, true, false, share));
        }
    }
    Ok(done(bytes, false, false, share))
}

/// Room for `want` bytes in `bytes`, counted in the budget before it is allocated: growing at
/// least doubles the capacity (as `Vec` would), never past `limit`. False when the budget has
/// no room.
fn reserve(bytes: &mut Vec<u8>, share: &mut Share, want: usize, limit: usize) -> bool {
    let cap = bytes.capacity();
    if want <= cap {
        return true;
    }
    let new_cap = want.max(cap.saturating_mul(2).min(limit));
    if !share.grow(new_cap - cap) {
        return false;
    }
    bytes.reserve_exact(new_cap - bytes.len());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_of_one_budget_add_up_to_at_most_its_limit_and_are_given_back() {
        let budget = Budget::new(100);
        let mut a = Share::new(&budget);
        let mut b = Share::new(&budget);
        assert!(a.grow(60));
        assert!(!b.grow(60), "60 + 60 > 100");
        assert!(b.grow(40));
        assert_eq!(budget.held(), 100);
        assert!(!Share::new(&budget).grow(1));
        drop(a);
        assert_eq!(budget.held(), 40);
        let mut v = Vec::new();
        let mut c = Share::new(&budget);
        assert!(reserve(&mut v, &mut c, 10, 50));
        assert!(v.capacity() >= 10);
        assert!(reserve(&mut v, &mut c, 11, 50), "doubles to 20");
        assert_eq!(c.bytes, 20);
        assert!(!reserve(&mut v, &mut c, 70, 100), "40 + 20 + 50 > 100");
        drop((b, c));
        assert_eq!(budget.held(), 0);
    }
}
