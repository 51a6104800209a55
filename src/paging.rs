//! A chain of pages a server leads a client through (Jira's page tokens, GitLab's next-page
//! links), kept from looping or going on forever: a page key seen before (A→B→A, not only an
//! immediate repeat) ends it, and so do more items or pages than the count the server gave,
//! with room for growth while paging, and, whatever the server counts (a `total` of 2^64-1, or
//! none at all), more than [`MAX_ITEMS`] items or [`MAX_PAGES`] pages. Stopping silently would
//! drop the rest; each of these is an error that ends the search, so the pass keeps its
//! checkpoint.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

/// Items beyond the server's count a chain may bring (issues created while paging), besides
/// half the count again.
const GROWTH_ROOM: u64 = 1_000;
/// Pages read before a chain without a count asks the server for one (callers that can).
pub const COUNT_AFTER_PAGES: u64 = 10;
/// The most items one chain may bring, whatever the server's count: ten times the largest Jira
/// project we know of, and a full resync of it is hours of paging already. A server's count
/// above it is taken as this.
pub const MAX_ITEMS: u64 = 2_000_000;
/// The most pages one chain may take, whatever the server's count: `MAX_ITEMS` at 20 items a
/// page (this tool asks for 100), so a server handing out pages of one item cannot keep a pass
/// busy for days.
pub const MAX_PAGES: u64 = MAX_ITEMS / 20;

#[derive(Debug, Default)]
pub struct PageChain {
    /// Hashes of the page keys followed so far (a few bytes a page).
    seen: HashSet<u64>,
    pages: u64,
    items: u64,
    /// How many items the server said there are, when it said.
    expected: Option<u64>,
    /// Pages read before a count is wanted, when the caller knows about how many items to
    /// expect (else [`COUNT_AFTER_PAGES`]).
    quiet_pages: Option<u64>,
}

impl PageChain {
    pub fn new() -> Self {
        PageChain::default()
    }

    /// The server's count of the items the chain holds (a total, an approximate count). The
    /// first one counts: a later, larger one could be the same misbehaviour.
    pub fn expect(&mut self, count: u64) {
        self.expected.get_or_insert(count.min(MAX_ITEMS));
    }

    pub fn expected(&self) -> Option<u64> {
        self.expected
    }

    /// Whether a count would help: many pages and none given.
    pub fn wants_count(&self) -> bool {
        self.expected.is_none() && self.pages >= self.quiet_pages.unwrap_or(COUNT_AFTER_PAGES)
    }

    /// About `items` are expected, as the caller knows without asking the server (the
    /// mirrors it keeps of a project): no count is wanted while the chain stays within them,
    /// with the same room for growth, in pages of `per_page`; past that, as usual. Not a bound:
    /// the project may hold more than the caller knows of.
    pub fn expect_about(&mut self, items: u64, per_page: u64) {
        let items = items.min(MAX_ITEMS);
        let room = items.saturating_add(items / 2).saturating_add(GROWTH_ROOM);
        let pages = room.div_ceil(per_page.max(1));
        self.quiet_pages = Some(pages.max(COUNT_AFTER_PAGES));
    }

    /// The most items the chain may bring: the count, half of it again, and some.
    pub fn allowed(&self) -> Option<u64> {
        self.expected
            .map(|n| n.saturating_add(n / 2).saturating_add(GROWTH_ROOM))
    }

    /// A page of `items` was read; `next` is the key of the page it leads to. An error says
    /// why the chain must end: its key came before, or it runs past the count.
    pub fn advance(&mut self, items: usize, next: &str) -> Result<(), String> {
        self.pages += 1;
        self.items = self
            .items
            .saturating_add(u64::try_from(items).unwrap_or(u64::MAX));
        if self.items > MAX_ITEMS || self.pages > MAX_PAGES {
            return Err(format!(
                "the page chain does not end: {} items in {} pages, past the most one search may \
                 bring ({MAX_ITEMS} items in {MAX_PAGES} pages) whatever the server counts",
                self.items, self.pages
            ));
        }
        if let Some(allowed) = self.allowed() {
            // Empty pages count as one item each, so an endless chain of them ends too.
            if self.items > allowed || self.pages > allowed {
                return Err(format!(
                    "the page chain does not end: {} items in {} pages, more than the {} the \
                     server counted (with room for growth)",
                    self.items,
                    self.pages,
                    self.expected.unwrap_or(0)
                ));
            }
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        next.hash(&mut h);
        if !self.seen.insert(h.finish()) {
            return Err(format!(
                "the page chain loops: after {} pages the next page is one already read",
                self.pages
            ));
        }
        Ok(())
    }

    /// A page was read and it was the last: the count is not checked for the chain's end.
    pub fn finish(&mut self, items: usize) {
        self.pages += 1;
        self.items = self
            .items
            .saturating_add(u64::try_from(items).unwrap_or(u64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_seen_before_ends_the_chain_even_pages_apart() {
        let mut c = PageChain::new();
        c.advance(10, "A").expect("first");
        c.advance(10, "B").expect("second");
        let e = c.advance(10, "A").expect_err("A→B→A");
        assert!(e.contains("loops"), "{e}");
    }

    #[test]
    fn ever_new_keys_end_at_the_count_with_room_for_growth() {
        let mut c = PageChain::new();
        c.expect(100);
        c.expect(1_000_000); // a later count does not widen it
        assert_eq!(c.allowed(), Some(100 + 50 + 1_000));
        let mut read = 0;
        let e = loop {
            match c.advance(37, &format!("token-{read}")) {
                Ok(()) => read += 37,
                Err(e) => break e,
            }
        };
        assert!((1_150 - 37..=1_150).contains(&read), "{read}");
        assert!(e.contains("does not end"), "{e}");
        // Empty pages end too.
        let mut c = PageChain::new();
        c.expect(0);
        let pages = (0..5_000)
            .take_while(|i| c.advance(0, &i.to_string()).is_ok())
            .count();
        assert_eq!(pages, 1_000);
    }

    /// A server that claims 2^64-1 items (or gives no count) still cannot keep a chain going
    /// past the ceiling: pages of one item end at `MAX_PAGES`, full pages at `MAX_ITEMS`.
    #[test]
    fn a_count_of_2_64_or_none_still_ends_at_the_ceiling() {
        for count in [Some(u64::MAX), Some(MAX_ITEMS * 10), None] {
            let mut c = PageChain::new();
            if let Some(n) = count {
                c.expect(n);
            }
            let mut pages = 0u64;
            let e = loop {
                match c.advance(1, &pages.to_string()) {
                    Ok(()) if pages <= MAX_PAGES => pages += 1,
                    Ok(()) => panic!("{count:?}: past {MAX_PAGES} pages"),
                    Err(e) => break e,
                }
            };
            assert_eq!(pages, MAX_PAGES, "{count:?}");
            assert!(e.contains("past the most one search may bring"), "{e}");
            let mut c = PageChain::new();
            if let Some(n) = count {
                c.expect(n);
            }
            let mut items = 0u64;
            let e = loop {
                match c.advance(at_most::ITEMS, &items.to_string()) {
                    Ok(()) if items <= MAX_ITEMS => items += at_most::ITEMS as u64,
                    Ok(()) => panic!("{count:?}: past {MAX_ITEMS} items"),
                    Err(e) => break e,
                }
            };
            assert!(items <= MAX_ITEMS, "{count:?}: {items}");
            assert!(e.contains("does not end"), "{e}");
        }
    }

    #[test]
    fn a_page_of_too_many_items_is_refused_while_it_is_decoded() {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(deserialize_with = "super::at_most::deserialize")]
            issues: Vec<serde_json::Value>,
        }
        let items = |n: usize| vec!["{}"; n].join(",");
        let ok: Page = serde_json::from_str(&format!("{{\"issues\":[{}]}}", items(10_000)))
            .expect("at the bound");
        assert_eq!(ok.issues.len(), 10_000);
        let e = serde_json::from_str::<Page>(&format!("{{\"issues\":[{}]}}", items(10_001)))
            .err()
            .expect("over the bound");
        assert!(e.to_string().contains("more than 10000 items"), "{e}");
        let list: Result<super::at_most::List<u8>, _> =
            serde_json::from_str(&format!("[{}]", vec!["1"; 10_001].join(",")));
        assert!(list.is_err());
    }

    #[test]
    fn a_count_is_wanted_only_past_what_the_caller_expects() {
        let mut c = PageChain::new();
        c.expect_about(2_000, 100);
        // 2,000 issues, half again, and 1,000: 40 pages of 100 before a count is asked for.
        for i in 0..40 {
            assert!(!c.wants_count(), "page {i}");
            c.advance(100, &i.to_string()).expect("page");
        }
        assert!(c.wants_count());
        let mut c = PageChain::new();
        c.expect_about(0, 100);
        for i in 0..COUNT_AFTER_PAGES {
            c.advance(100, &i.to_string()).expect("page");
        }
        assert!(c.wants_count(), "never later than without a hint");
    }

    #[test]
    fn a_count_is_wanted_after_some_pages_without_one() {
        let mut c = PageChain::new();
        for i in 0..COUNT_AFTER_PAGES {
            assert!(!c.wants_count());
            c.advance(100, &i.to_string()).expect("page");
        }
        assert!(c.wants_count());
        c.expect(5_000);
        assert!(!c.wants_count());
    }
}

/// Bounds the items of a page as it is decoded (`#[serde(deserialize_with = ...)]`): a page
/// of ten million empty objects fits in 64 MiB, and would take gigabytes decoded.
pub mod at_most {
    use std::marker::PhantomData;

    use serde::de::{Deserialize, Deserializer, Error, SeqAccess, Visitor};

    /// The most items a page may have: far more than any page this tool asks for (100 issues,
    /// 1,000 changelogs).
    pub const ITEMS: usize = 10_000;

    pub fn deserialize<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        d.deserialize_seq(Items(PhantomData))
    }

    struct Items<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for Items<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a list of at most {ITEMS} items")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element()? {
                if out.len() == ITEMS {
                    return Err(A::Error::custom(format!(
                        "a page of more than {ITEMS} items"
                    )));
                }
                out.push(item);
            }
            Ok(out)
        }
    }

    /// A top-level list bounded the same way (GitLab's listings are bare arrays).
    pub struct List<T>(pub Vec<T>);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            deserialize(d).map(List)
        }
    }
}
