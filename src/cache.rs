//! The response cache: one [`Cache`] per stage, shared by every worker.
//!
//! A cache is a power-of-two number of [`shard::Shard`]s, each behind its own
//! `RwLock`: this is the only lock on a request's path, and only cached routes touch
//! it. A hit takes the read lock (SIEVE marks hits with an atomic bit, so readers
//! never block each other), clones an `Arc<Entry>` and lets go before writing the
//! response. `capacity` is split evenly between the shards, and each shard evicts
//! before it would go over its share, so the bytes held (keys + headers + bodies)
//! never exceed `capacity`.
//!
//! Concurrent misses for one key are coalesced: the first becomes the leader and
//! holds a [`Fill`]; the others get a [`Ticket`] to watch, and are served from the
//! entry the leader stores (or go upstream themselves if it stores nothing).
//!
//! Caches outlive plans: a [`CacheStore`] keeps them by stage name across reloads.
//! Tested by unit tests here and in `shard.rs`, end to end in `tests/cache.rs`;
//! measured in `benches/cache.rs`.

pub mod key;
pub mod policy;
pub mod shard;

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use key::KeySpec;
pub use shard::Found;
use shard::Shard;

/// Largest number of shards a cache is cut into.
pub const MAX_SHARDS: usize = 16;

/// One stored response.
#[derive(Debug)]
pub struct Entry {
    /// The full cache key (see `key.rs`); compared on every hit.
    pub key: Box<[u8]>,
    /// The route settings the entry was stored under (see `KeySpec::tag`).
    pub tag: u64,
    pub status: u16,
    /// Header lines `name: value\r\n`, without framing, hop-by-hop or per-request fields.
    pub headers: Bytes,
    pub body: Bytes,
    pub stored: Instant,
    pub expires: Instant,
}

/// Bytes counted per entry for its bookkeeping (index slot, queue node, `Arc`), so
/// that a flood of tiny entries cannot hold much more memory than the capacity.
pub const ENTRY_OVERHEAD: usize = 128;

impl Entry {
    /// The bytes this entry counts against the capacity.
    pub fn size(&self) -> usize {
        self.key.len() + self.headers.len() + self.body.len() + ENTRY_OVERHEAD
    }
}

/// A stage's cache.
#[derive(Debug)]
pub struct Cache {
    shards: Box<[RwLock<Shard>]>,
    pending: Box<[Mutex<Waiting>]>,
    hasher: RandomState,
    pub capacity: usize,
    pub max_entry: usize,
}

/// Statistics for `/metrics`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub entries: usize,
    pub bytes: usize,
    pub evictions: u64,
}

/// What a lookup means for the request.
#[derive(Debug)]
pub enum Lookup {
    Hit(Arc<Entry>),
    /// Go upstream; `fill` is how to store what comes back (`None`: another
    /// request is already fetching it and `wait` says when it is done).
    Miss {
        stale: bool,
        fill: Option<Fill>,
        wait: Option<Arc<Ticket>>,
    },
}

impl Cache {
    /// A cache of at most `capacity` bytes; entries over `max_entry` are not stored.
    /// Shards: as many as fit entries of `max_entry` bytes, up to [`MAX_SHARDS`].
    pub fn new(capacity: usize, max_entry: usize) -> Cache {
        let fit = (capacity / max_entry.max(1)).clamp(1, MAX_SHARDS);
        Cache::with_shards(capacity, max_entry, 1 << fit.ilog2())
    }

    pub fn with_shards(capacity: usize, max_entry: usize, shards: usize) -> Cache {
        let n = shards.max(1).next_power_of_two();
        Cache {
            shards: (0..n)
                .map(|_| RwLock::new(Shard::new(capacity / n)))
                .collect(),
            pending: (0..n).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            capacity,
            max_entry,
        }
    }

    /// The key's hash, seeded per cache so clients cannot aim at one shard slot.
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn shard_of(&self, hash: u64) -> usize {
        (hash >> 56) as usize & (self.shards.len() - 1)
    }

    fn read(&self, i: usize) -> std::sync::RwLockReadGuard<'_, Shard> {
        self.shards[i].read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, i: usize) -> std::sync::RwLockWriteGuard<'_, Shard> {
        self.shards[i].write().unwrap_or_else(|p| p.into_inner())
    }

    fn pending(&self, i: usize) -> std::sync::MutexGuard<'_, Waiting> {
        self.pending[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Plain lookup, no coalescing.
    pub fn get(&self, hash: u64, key: &[u8]) -> Found {
        self.read(self.shard_of(hash))
            .get(hash, key, Instant::now())
    }

    /// Looks `key` up; on a miss, makes this request the leader that fills the entry
    /// unless another request already is (then it gets that request's ticket).
    pub fn lookup(self: &Arc<Self>, hash: u64, key: &[u8]) -> Lookup {
        let i = self.shard_of(hash);
        let stale = match self.read(i).get(hash, key, Instant::now()) {
            Found::Fresh(e) => return Lookup::Hit(e),
            Found::Stale => true,
            Found::Absent => false,
        };
        let mut pending = self.pending(i);
        if let Some(t) = pending.get(&hash) {
            return Lookup::Miss {
                stale,
                fill: None,
                wait: Some(t.clone()),
            };
        }
        // The leader may have stored it between our read and taking `pending`.
        if let Found::Fresh(e) = self.read(i).get(hash, key, Instant::now()) {
            return Lookup::Hit(e);
        }
        let ticket = Arc::new(Ticket(AtomicU8::new(PENDING)));
        pending.insert(hash, ticket.clone());
        Lookup::Miss {
            stale,
            fill: Some(Fill {
                cache: self.clone(),
                hash,
                key: key.into(),
                ticket: Some(ticket),
            }),
            wait: None,
        }
    }

    /// A fill that does not take part in coalescing (a client-requested refresh).
    pub fn refill(self: &Arc<Self>, hash: u64, key: &[u8]) -> Fill {
        Fill {
            cache: self.clone(),
            hash,
            key: key.into(),
            ticket: None,
        }
    }

    fn insert(&self, hash: u64, entry: Entry) -> bool {
        if entry.size() > self.max_entry {
            return false;
        }
        self.write(self.shard_of(hash))
            .insert(hash, Arc::new(entry))
    }

    /// Drops every entry; returns how many there were.
    pub fn flush(&self) -> usize {
        (0..self.shards.len())
            .map(|i| self.write(i).retain(|_| true))
            .sum()
    }

    /// Drops the entries stored under any of `tags` (routes whose cache settings a
    /// reload changed or removed).
    pub fn drop_tags(&self, tags: &[u64]) -> usize {
        if tags.is_empty() {
            return 0;
        }
        (0..self.shards.len())
            .map(|i| self.write(i).retain(|e| tags.contains(&e.tag)))
            .sum()
    }

    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        for i in 0..self.shards.len() {
            let g = self.read(i);
            s.entries += g.len();
            s.bytes += g.used;
            s.evictions += g.evictions;
        }
        s
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }
}

/// Fills in flight in one shard, by key hash.
type Waiting = HashMap<u64, Arc<Ticket>>;

const PENDING: u8 = 0;
const STORED: u8 = 1;
const GAVE_UP: u8 = 2;

/// Watched by requests waiting on another request's fill.
#[derive(Debug)]
pub struct Ticket(AtomicU8);

/// How a fill a request was waiting on ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillState {
    Pending,
    /// The entry is in the cache now: look again.
    Stored,
    /// Nothing was stored (not cacheable, or the leader failed): go upstream.
    GaveUp,
}

impl Ticket {
    pub fn state(&self) -> FillState {
        match self.0.load(Ordering::Acquire) {
            PENDING => FillState::Pending,
            STORED => FillState::Stored,
            _ => FillState::GaveUp,
        }
    }
}

/// The right to store one key's response. Dropped without [`Fill::store`], it tells
/// any waiters to go upstream themselves.
#[derive(Debug)]
pub struct Fill {
    cache: Arc<Cache>,
    hash: u64,
    key: Box<[u8]>,
    ticket: Option<Arc<Ticket>>,
}

impl Fill {
    pub fn max_entry(&self) -> usize {
        self.cache.max_entry
    }

    /// The largest body that can be stored with `headers_len` bytes of headers.
    pub fn room(&self, headers_len: usize) -> usize {
        self.cache
            .max_entry
            .saturating_sub(self.key.len() + headers_len + ENTRY_OVERHEAD)
    }

    /// Stores the response; returns whether it was kept (it may be too large).
    pub fn store(
        mut self,
        tag: u64,
        status: u16,
        headers: Bytes,
        body: Bytes,
        ttl: Duration,
    ) -> bool {
        let now = Instant::now();
        let entry = Entry {
            key: std::mem::take(&mut self.key),
            tag,
            status,
            headers,
            body,
            stored: now,
            expires: now + ttl,
        };
        let kept = self.cache.insert(self.hash, entry);
        self.finish(if kept { STORED } else { GAVE_UP });
        kept
    }

    fn finish(&mut self, state: u8) {
        if let Some(t) = self.ticket.take() {
            let i = self.cache.shard_of(self.hash);
            let mut pending = self.cache.pending(i);
            if pending.get(&self.hash).is_some_and(|p| Arc::ptr_eq(p, &t)) {
                pending.remove(&self.hash);
            }
            t.0.store(state, Ordering::Release);
        }
    }
}

impl Drop for Fill {
    fn drop(&mut self) {
        self.finish(GAVE_UP);
    }
}

/// Every stage's cache, across reloads. Cross-core: the mutex is taken only when a
/// plan is bound and when the admin listener flushes or scrapes.
#[derive(Debug, Default)]
pub struct CacheStore {
    caches: Mutex<HashMap<String, Arc<Cache>>>,
}

impl CacheStore {
    /// The stage's cache, kept when its capacity and entry limit are unchanged,
    /// else made anew (dropping what the old one held).
    pub fn bind(&self, stage: &str, capacity: usize, max_entry: usize) -> Arc<Cache> {
        let mut g = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        match g.get(stage) {
            Some(c) if c.capacity == capacity && c.max_entry == max_entry => c.clone(),
            _ => {
                let c = Arc::new(Cache::new(capacity, max_entry));
                g.insert(stage.to_string(), c.clone());
                c
            }
        }
    }

    /// Forgets the caches of stages not in `keep` (their memory goes once the
    /// plans still using them finish).
    pub fn retain(&self, keep: &[&str]) {
        let mut g = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        g.retain(|name, _| keep.contains(&name.as_str()));
    }

    pub fn get(&self, stage: &str) -> Option<Arc<Cache>> {
        let g = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        g.get(stage).cloned()
    }

    /// Every stage's cache, by stage name.
    pub fn all(&self) -> Vec<(String, Arc<Cache>)> {
        let g = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = g.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(f: Fill, body: &[u8]) -> bool {
        f.store(
            1,
            200,
            Bytes::new(),
            Bytes::copy_from_slice(body),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn concurrent_misses_have_one_leader() {
        let c = Arc::new(Cache::new(1 << 20, 1 << 16));
        let h = c.hash(b"k");
        let Lookup::Miss {
            fill: Some(leader), ..
        } = c.lookup(h, b"k")
        else {
            panic!("first miss leads")
        };
        let Lookup::Miss {
            fill: None,
            wait: Some(t),
            ..
        } = c.lookup(h, b"k")
        else {
            panic!("second miss waits")
        };
        assert_eq!(t.state(), FillState::Pending);
        assert!(store(leader, b"body"));
        assert_eq!(t.state(), FillState::Stored);
        assert!(matches!(c.lookup(h, b"k"), Lookup::Hit(e) if &e.body[..] == b"body"));
    }

    #[test]
    fn a_leader_that_gives_up_releases_waiters() {
        let c = Arc::new(Cache::new(1 << 20, 1 << 16));
        let h = c.hash(b"k");
        let Lookup::Miss { fill: Some(f), .. } = c.lookup(h, b"k") else {
            panic!()
        };
        let Lookup::Miss { wait: Some(t), .. } = c.lookup(h, b"k") else {
            panic!()
        };
        drop(f);
        assert_eq!(t.state(), FillState::GaveUp);
        // and the next miss leads again
        assert!(matches!(
            c.lookup(h, b"k"),
            Lookup::Miss { fill: Some(_), .. }
        ));
    }

    #[test]
    fn entries_over_max_entry_are_not_stored() {
        let c = Arc::new(Cache::new(1 << 20, 300));
        let h = c.hash(b"k");
        let Lookup::Miss { fill: Some(f), .. } = c.lookup(h, b"k") else {
            panic!()
        };
        assert_eq!(f.room(0), 300 - 1 - ENTRY_OVERHEAD);
        assert!(!store(f, &[0; 200]));
        assert_eq!(c.stats().entries, 0);
    }

    #[test]
    fn capacity_is_a_hard_bound_across_shards() {
        let c = Arc::new(Cache::with_shards(64 << 10, 4 << 10, 8));
        for i in 0..5_000u32 {
            let k = format!("key-{i}");
            let h = c.hash(k.as_bytes());
            if let Lookup::Miss { fill: Some(f), .. } = c.lookup(h, k.as_bytes()) {
                store(f, &vec![b'x'; 300 + (i as usize % 700)]);
            }
            assert!(c.stats().bytes <= 64 << 10);
        }
        let s = c.stats();
        assert!(s.entries > 40, "{s:?}");
        assert!(s.evictions > 4_000, "{s:?}");
    }

    #[test]
    fn flush_and_drop_tags() {
        let c = Arc::new(Cache::new(1 << 20, 1 << 16));
        for (k, tag) in [(b"a", 1), (b"b", 2), (b"c", 1)] {
            let h = c.hash(k);
            c.refill(h, k)
                .store(tag, 200, Bytes::new(), Bytes::new(), Duration::from_secs(9));
        }
        assert_eq!(c.drop_tags(&[1]), 2);
        assert_eq!(c.stats().entries, 1);
        assert_eq!(c.flush(), 1);
        assert_eq!((c.stats().entries, c.stats().bytes), (0, 0));
    }

    #[test]
    fn store_keeps_a_cache_across_binds_unless_its_size_changes() {
        let s = CacheStore::default();
        let a = s.bind("prod", 1 << 20, 1 << 10);
        assert!(Arc::ptr_eq(&a, &s.bind("prod", 1 << 20, 1 << 10)));
        assert!(!Arc::ptr_eq(&a, &s.bind("prod", 2 << 20, 1 << 10)));
        s.retain(&[]);
        assert!(s.get("prod").is_none());
    }
}
