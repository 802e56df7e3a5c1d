//! The node's cache of authorizer answers (DESIGN §8.3): one call per identity per
//! TTL however many cores see it, and concurrent first requests coalesced onto one
//! call.
//!
//! Cross-core state, named here: one `Results` per request/token authorizer of a
//! plan, shared by every worker (a reload starts empty ones). Eight shards behind
//! `Mutex`es, each held only to look up or store a slot, never across an await.
//! Bounded: at most `MAX_ENTRIES` answers per authorizer; a full shard first drops
//! what has expired, then the answers closest to expiring.
//!
//! A miss returns a [`Ticket`]: its holder calls the authorizer and completes it.
//! Other requests for the same identity meanwhile get `Wait` and poll the slot
//! ([`Results::poll`]): a worker cannot be woken from another core without
//! monoio's `sync` feature, which would cost every request a check of a
//! cross-thread queue; polling costs only the waiting requests. A ticket dropped
//! without an answer (the request went away) fails its waiters, who then retry.
//!
//! Unit-tested below, without a runtime.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::authorizer::Answer;

const SHARDS: usize = 8;
/// Most answers kept per authorizer.
pub const MAX_ENTRIES: usize = 16_384;

#[derive(Debug)]
enum Slot {
    /// A call is under way (`id` tells calls apart; `since` lets a stuck one be
    /// taken over).
    Pending {
        id: u64,
        since: Instant,
    },
    Ready {
        answer: Arc<Answer>,
        until: Instant,
    },
    /// The call `id` failed: its waiters fail too; the next request calls again.
    Failed {
        id: u64,
    },
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup<'r> {
    Hit(Arc<Answer>),
    /// Nobody is asking: the caller asks, then completes the ticket.
    Call(Ticket<'r>),
    /// Another request is asking (call `id`): poll for its answer.
    Wait(u64),
}

/// What a waiter sees when it polls.
#[derive(Debug)]
pub enum Poll {
    Ready(Arc<Answer>),
    Pending,
    /// The call failed (its error is the waiter's too).
    Failed,
    /// The slot holds another call's state: look up again.
    Moved,
}

#[derive(Debug)]
pub struct Results {
    shards: [Mutex<HashMap<Box<[u8]>, Slot>>; SHARDS],
    ttl: Duration,
    /// How long a call may take before its slot is taken over.
    stuck_after: Duration,
    next_id: AtomicU64,
    hasher: std::collections::hash_map::RandomState,
}

impl Results {
    /// `ttl`: how long an answer is kept (zero: never; every request calls).
    /// `timeout`: the authorizer's, after which a pending call is considered lost.
    pub fn new(ttl: Duration, timeout: Duration) -> Results {
        Results {
            shards: Default::default(),
            ttl,
            stuck_after: timeout + Duration::from_secs(1),
            next_id: AtomicU64::new(1),
            hasher: Default::default(),
        }
    }

    pub fn caches(&self) -> bool {
        !self.ttl.is_zero()
    }

    fn shard(&self, key: &[u8]) -> &Mutex<HashMap<Box<[u8]>, Slot>> {
        let mut h = self.hasher.build_hasher();
        h.write(key);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Looks up the answer for `key` (the authorizer's identity values).
    pub fn lookup(&self, key: &[u8], now: Instant) -> Lookup<'_> {
        if !self.caches() {
            return Lookup::Call(Ticket {
                results: self,
                key: Box::from(key),
                id: 0,
                done: true,
            });
        }
        let Ok(mut map) = self.shard(key).lock() else {
            // a worker panicked holding it: answer without the cache
            return Lookup::Call(Ticket {
                results: self,
                key: Box::from(key),
                id: 0,
                done: true,
            });
        };
        match map.get(key) {
            Some(Slot::Ready { answer, until }) if *until > now => {
                return Lookup::Hit(answer.clone())
            }
            Some(Slot::Pending { id, since }) if now.duration_since(*since) < self.stuck_after => {
                return Lookup::Wait(*id)
            }
            _ => {}
        }
        let id = self.new_id();
        if map.len() >= MAX_ENTRIES / SHARDS && !map.contains_key(key) {
            evict(&mut map, now);
        }
        map.insert(Box::from(key), Slot::Pending { id, since: now });
        Lookup::Call(Ticket {
            results: self,
            key: Box::from(key),
            id,
            done: false,
        })
    }

    /// The state of call `id` for `key`.
    pub fn poll(&self, key: &[u8], id: u64) -> Poll {
        let Ok(map) = self.shard(key).lock() else {
            return Poll::Failed;
        };
        match map.get(key) {
            Some(Slot::Pending { id: p, .. }) if *p == id => Poll::Pending,
            Some(Slot::Failed { id: f }) if *f == id => Poll::Failed,
            // an answer is an answer, whichever call brought it
            Some(Slot::Ready { answer, .. }) => Poll::Ready(answer.clone()),
            _ => Poll::Moved,
        }
    }

    fn finish(&self, key: &[u8], id: u64, answer: Option<Arc<Answer>>, now: Instant) {
        let Ok(mut map) = self.shard(key).lock() else {
            return;
        };
        // only the call that holds the slot may fill it
        if !matches!(map.get(key), Some(Slot::Pending { id: p, .. }) if *p == id) {
            return;
        }
        let slot = match answer {
            Some(answer) => Slot::Ready {
                answer,
                until: now + self.ttl,
            },
            None => Slot::Failed { id },
        };
        map.insert(Box::from(key), slot);
    }

    /// Drops every answer (admin flush; tests).
    pub fn clear(&self) {
        for s in &self.shards {
            if let Ok(mut m) = s.lock() {
                m.clear();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes room in a full shard: expired answers and failures go first, then the
/// half of the answers that expire soonest. Pending calls stay.
fn evict(map: &mut HashMap<Box<[u8]>, Slot>, now: Instant) {
    map.retain(|_, s| match s {
        Slot::Ready { until, .. } => *until > now,
        Slot::Failed { .. } => false,
        Slot::Pending { .. } => true,
    });
    if map.len() < MAX_ENTRIES / SHARDS {
        return;
    }
    let mut expiries: Vec<Instant> = map
        .values()
        .filter_map(|s| match s {
            Slot::Ready { until, .. } => Some(*until),
            _ => None,
        })
        .collect();
    if expiries.is_empty() {
        return;
    }
    let mid = expiries.len() / 2;
    let (_, cut, _) = expiries.select_nth_unstable(mid);
    let cut = *cut;
    map.retain(|_, s| !matches!(s, Slot::Ready { until, .. } if *until <= cut));
}

/// The right (and duty) to call the authorizer for one identity.
#[derive(Debug)]
pub struct Ticket<'r> {
    results: &'r Results,
    key: Box<[u8]>,
    id: u64,
    /// Nothing to fill (caching off), or already filled.
    done: bool,
}

impl Ticket<'_> {
    /// Stores the answer for the TTL and hands it to the waiters.
    pub fn answer(mut self, answer: Arc<Answer>) {
        if !self.done {
            self.done = true;
            self.results
                .finish(&self.key, self.id, Some(answer), Instant::now());
        }
    }

    /// The call failed: waiters fail with it, nothing is kept.
    pub fn fail(mut self) {
        if !self.done {
            self.done = true;
            self.results
                .finish(&self.key, self.id, None, Instant::now());
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.results
                .finish(&self.key, self.id, None, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::authorizer::Grant;

    fn answer(allowed: bool) -> Arc<Answer> {
        Arc::new(Answer {
            principal: None,
            grant: Grant::Simple(allowed),
            context: Default::default(),
            usage_key: None,
        })
    }

    const T: Duration = Duration::from_secs(10);

    #[test]
    fn the_first_request_calls_the_rest_wait_then_hit() {
        let r = Results::new(Duration::from_secs(300), T);
        let now = Instant::now();
        let Lookup::Call(ticket) = r.lookup(b"alice", now) else {
            panic!("first is a call")
        };
        let Lookup::Wait(id) = r.lookup(b"alice", now) else {
            panic!("second waits")
        };
        assert!(matches!(r.poll(b"alice", id), Poll::Pending));
        // another identity is independent
        assert!(matches!(r.lookup(b"bob", now), Lookup::Call(_)));
        ticket.answer(answer(true));
        assert!(matches!(r.poll(b"alice", id), Poll::Ready(_)));
        assert!(matches!(r.lookup(b"alice", now), Lookup::Hit(_)));
    }

    #[test]
    fn answers_expire_after_the_ttl() {
        let r = Results::new(Duration::from_secs(2), T);
        let now = Instant::now();
        let Lookup::Call(t) = r.lookup(b"k", now) else {
            panic!()
        };
        t.answer(answer(true));
        assert!(matches!(
            r.lookup(b"k", Instant::now() + Duration::from_secs(1)),
            Lookup::Hit(_)
        ));
        assert!(matches!(
            r.lookup(b"k", Instant::now() + Duration::from_secs(3)),
            Lookup::Call(_)
        ));
    }

    #[test]
    fn a_failed_call_fails_its_waiters_and_is_not_kept() {
        let r = Results::new(Duration::from_secs(300), T);
        let now = Instant::now();
        let Lookup::Call(t) = r.lookup(b"k", now) else {
            panic!()
        };
        let Lookup::Wait(id) = r.lookup(b"k", now) else {
            panic!()
        };
        drop(t); // the request went away without an answer
        assert!(matches!(r.poll(b"k", id), Poll::Failed));
        let Lookup::Call(t2) = r.lookup(b"k", now) else {
            panic!("the next request calls again")
        };
        // the old waiter sees that the slot moved on
        assert!(matches!(r.poll(b"k", id), Poll::Moved));
        t2.fail();
    }

    #[test]
    fn a_stuck_call_is_taken_over() {
        let r = Results::new(Duration::from_secs(300), T);
        let now = Instant::now();
        let Lookup::Call(old) = r.lookup(b"k", now) else {
            panic!()
        };
        let later = now + T + Duration::from_secs(2);
        let Lookup::Call(new) = r.lookup(b"k", later) else {
            panic!("taken over")
        };
        // the stuck call's late answer does not overwrite the new call's slot
        old.answer(answer(false));
        new.answer(answer(true));
        let Lookup::Hit(a) = r.lookup(b"k", later) else {
            panic!()
        };
        assert!(matches!(a.grant, Grant::Simple(true)));
    }

    #[test]
    fn ttl_zero_calls_every_time() {
        let r = Results::new(Duration::ZERO, T);
        let now = Instant::now();
        let Lookup::Call(t) = r.lookup(b"k", now) else {
            panic!()
        };
        t.answer(answer(true));
        assert!(matches!(r.lookup(b"k", now), Lookup::Call(_)));
        assert!(r.is_empty());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let r = Results::new(Duration::from_secs(300), T);
        let now = Instant::now();
        for i in 0..(MAX_ENTRIES * 3) {
            let key = format!("identity-{i}");
            let Lookup::Call(t) = r.lookup(key.as_bytes(), now + Duration::from_millis(i as u64))
            else {
                panic!()
            };
            t.answer(answer(true));
        }
        assert!(r.len() <= MAX_ENTRIES, "{}", r.len());
    }
}
