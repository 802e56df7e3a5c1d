//! One shard of a stage's cache: a hash index over a SIEVE queue, within a byte budget.
//!
//! SIEVE (Zhang et al., NSDI '24) keeps entries in insertion order with one "visited"
//! bit each. A hit only sets the bit, so lookups need no write access (the bit is an
//! atomic, set under the shard's read lock). To make room, a hand walks from the
//! oldest entry towards the newest, clearing visited bits and evicting the first
//! entry that was not visited since the hand last passed it. Entries that are hit
//! again stay; one-hit wonders go first, which beats LRU on skewed traffic
//! (measured in `benches/cache.rs`, see `docs/performance.md`).
//!
//! The shard never holds more than its budget of bytes (key + headers + body of every
//! entry). It is cross-core state: one `RwLock` per shard, see `cache.rs`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::Entry;

const NIL: u32 = u32::MAX;

#[derive(Debug)]
struct Node {
    hash: u64,
    entry: Arc<Entry>,
    visited: AtomicBool,
    /// Towards the newer end.
    newer: u32,
    /// Towards the older end.
    older: u32,
}

/// The index is keyed by an already-random 64-bit hash: hashing it again would only
/// cost time.
#[derive(Debug, Default)]
pub(super) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Debug, Default)]
pub(super) struct Shard {
    index: HashMap<u64, u32, BuildHasherDefault<PassThrough>>,
    nodes: Vec<Option<Node>>,
    free: Vec<u32>,
    newest: u32,
    oldest: u32,
    hand: u32,
    pub(super) used: usize,
    pub(super) budget: usize,
    pub(super) evictions: u64,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Found {
    Fresh(Arc<Entry>),
    /// Present but past its TTL: forward, and the new response replaces it.
    Stale,
    Absent,
}

impl Shard {
    pub(super) fn new(budget: usize) -> Shard {
        Shard {
            newest: NIL,
            oldest: NIL,
            hand: NIL,
            budget,
            ..Shard::default()
        }
    }

    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    /// Read-only lookup (marks the entry visited through its atomic bit).
    pub(super) fn get(&self, hash: u64, key: &[u8], now: Instant) -> Found {
        let Some(&i) = self.index.get(&hash) else {
            return Found::Absent;
        };
        let Some(node) = &self.nodes[i as usize] else {
            return Found::Absent;
        };
        if *node.entry.key != *key {
            return Found::Absent;
        }
        if node.entry.expires <= now {
            return Found::Stale;
        }
        if !node.visited.load(Ordering::Relaxed) {
            node.visited.store(true, Ordering::Relaxed);
        }
        Found::Fresh(node.entry.clone())
    }

    /// Stores `entry`, replacing any entry with the same hash and evicting until it
    /// fits. An entry larger than the whole budget is refused (`false`).
    pub(super) fn insert(&mut self, hash: u64, entry: Arc<Entry>) -> bool {
        let size = entry.size();
        if size > self.budget {
            return false;
        }
        if let Some(&i) = self.index.get(&hash) {
            self.remove(i);
        }
        while self.used + size > self.budget {
            if !self.evict_one() {
                return false;
            }
        }
        let node = Node {
            hash,
            entry,
            visited: AtomicBool::new(false),
            newer: NIL,
            older: self.newest,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = Some(node);
                i
            }
            None => {
                self.nodes.push(Some(node));
                (self.nodes.len() - 1) as u32
            }
        };
        if let Some(n) = self.node_mut(self.newest) {
            n.newer = i;
        }
        self.newest = i;
        if self.oldest == NIL {
            self.oldest = i;
        }
        self.index.insert(hash, i);
        self.used += size;
        true
    }

    /// Removes every entry `drop` says yes to; returns how many went.
    pub(super) fn retain(&mut self, mut drop: impl FnMut(&Entry) -> bool) -> usize {
        let doomed: Vec<u32> = (0..self.nodes.len() as u32)
            .filter(|&i| {
                self.nodes[i as usize]
                    .as_ref()
                    .is_some_and(|n| drop(&n.entry))
            })
            .collect();
        for &i in &doomed {
            self.remove(i);
        }
        doomed.len()
    }

    /// The SIEVE step: move the hand from old to new, sparing (and un-marking)
    /// visited entries, and evict the first unvisited one.
    fn evict_one(&mut self) -> bool {
        if self.oldest == NIL {
            return false;
        }
        let mut i = if self.hand == NIL {
            self.oldest
        } else {
            self.hand
        };
        loop {
            let Some(n) = self.node_mut(i) else {
                return false;
            };
            if n.visited.load(Ordering::Relaxed) {
                n.visited.store(false, Ordering::Relaxed);
                i = if n.newer == NIL { self.oldest } else { n.newer };
                continue;
            }
            let next = n.newer;
            self.remove(i);
            self.hand = next;
            self.evictions += 1;
            return true;
        }
    }

    fn node_mut(&mut self, i: u32) -> Option<&mut Node> {
        if i == NIL {
            return None;
        }
        self.nodes.get_mut(i as usize).and_then(Option::as_mut)
    }

    fn remove(&mut self, i: u32) {
        let Some(n) = self.nodes.get_mut(i as usize).and_then(Option::take) else {
            return;
        };
        match self.node_mut(n.newer) {
            Some(x) => x.older = n.older,
            None => self.newest = n.older,
        }
        match self.node_mut(n.older) {
            Some(x) => x.newer = n.newer,
            None => self.oldest = n.newer,
        }
        if self.hand == i {
            self.hand = n.newer;
        }
        if self.index.get(&n.hash) == Some(&i) {
            self.index.remove(&n.hash);
        }
        self.used -= n.entry.size();
        self.free.push(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;

    fn entry(k: u64, body: usize, ttl: Duration) -> Arc<Entry> {
        let now = Instant::now();
        Arc::new(Entry {
            key: k.to_le_bytes().to_vec().into(),
            tag: 0,
            status: 200,
            headers: Bytes::new(),
            body: Bytes::from(vec![b'x'; body]),
            stored: now,
            expires: now + ttl,
        })
    }

    const HOUR: Duration = Duration::from_secs(3600);

    /// Size of a test entry with a `body`-byte body.
    fn sz(body: usize) -> usize {
        entry(0, body, HOUR).size()
    }

    #[test]
    fn stays_within_budget_and_keeps_visited_entries() {
        let mut s = Shard::new(4 * sz(92));
        for k in 0..4u64 {
            assert!(s.insert(k, entry(k, 92, HOUR)));
        }
        assert_eq!(s.used, 4 * sz(92));
        let now = Instant::now();
        // 0 and 2 are hit; 1 and 3 are not.
        assert!(matches!(
            s.get(0, &0u64.to_le_bytes(), now),
            Found::Fresh(_)
        ));
        assert!(matches!(
            s.get(2, &2u64.to_le_bytes(), now),
            Found::Fresh(_)
        ));
        assert!(s.insert(4, entry(4, 92, HOUR)));
        assert!(s.insert(5, entry(5, 92, HOUR)));
        assert!(s.used <= s.budget);
        let present = |s: &Shard, k: u64| {
            matches!(s.get(k, &k.to_le_bytes(), Instant::now()), Found::Fresh(_))
        };
        assert!(present(&s, 0) && present(&s, 2), "visited entries survive");
        assert!(
            !present(&s, 1) && !present(&s, 3),
            "unvisited ones go first"
        );
        assert!(present(&s, 4) && present(&s, 5));
        assert_eq!(s.evictions, 2);
    }

    #[test]
    fn refuses_what_cannot_fit_and_replaces_same_key() {
        let mut s = Shard::new(sz(100));
        assert!(!s.insert(1, entry(1, 200, HOUR)));
        assert!(s.insert(1, entry(1, 50, HOUR)));
        assert!(s.insert(1, entry(1, 60, HOUR)));
        assert_eq!(s.len(), 1);
        assert_eq!(s.used, sz(60));
    }

    #[test]
    fn a_colliding_hash_is_not_a_hit_and_expiry_is_stale() {
        let mut s = Shard::new(1000);
        s.insert(7, entry(1, 10, Duration::ZERO));
        assert!(matches!(
            s.get(7, &2u64.to_le_bytes(), Instant::now()),
            Found::Absent
        ));
        assert!(matches!(
            s.get(7, &1u64.to_le_bytes(), Instant::now()),
            Found::Stale
        ));
    }

    #[test]
    fn churn_keeps_links_consistent() {
        let mut s = Shard::new(10 * sz(100));
        let mut x = 1u64;
        for round in 0..10_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = x % 40;
            if let Found::Absent = s.get(k, &k.to_le_bytes(), Instant::now()) {
                s.insert(k, entry(k, 100, HOUR));
            }
            if round % 1000 == 0 {
                s.retain(|e| e.key[0] % 3 == 0);
            }
            assert!(s.used <= s.budget);
            assert_eq!(s.used, s.len() * sz(100));
        }
        // walk the list both ways: every live node once
        let mut n = 0;
        let mut i = s.oldest;
        while i != NIL {
            n += 1;
            i = s.nodes[i as usize].as_ref().unwrap().newer;
        }
        assert_eq!(n, s.len());
    }
}
