//! A worker's local view of the node's budgets: a leased batch of tokens per budget,
//! spent with no shared memory touched.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::quota::QuotaLease;
use super::Budget;

/// A lease older than this goes back to the node budget, so a worker that went quiet
/// does not sit on tokens another worker could use.
pub const LEASE_TTL_NS: u64 = 50_000_000;
/// A lease covers about this much of the budget's rate.
const LEASE_WINDOW_S: f64 = 0.005;

/// How many tokens a worker leases at a time from `budget`.
pub fn lease_size(budget: &Budget, workers: usize) -> u32 {
    lease_for(budget.rate, budget.burst(), workers)
}

/// Lease size for a bucket of `rate` per second and `burst`.
pub fn lease_for(rate: f64, burst: u64, workers: usize) -> u32 {
    let workers = workers.max(1) as u64;
    let by_rate = (rate * LEASE_WINDOW_S / workers as f64).ceil() as u64;
    // Never lease so much that the burst cannot be shared by all workers.
    let by_burst = (burst / (4 * workers)).max(1);
    by_rate.clamp(1, by_burst).min(u64::from(u32::MAX)) as u32
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Local {
    tokens: u32,
    leased_at: u64,
}

impl Local {
    /// Admits one request against `budget`, leasing `lease` tokens when dry.
    #[inline]
    pub fn admit(&mut self, budget: &Budget, lease: u32, now: u64) -> bool {
        self.admit_from(lease, now, |n| budget.take(n, now), |n| budget.give_back(n))
    }

    /// Admits one request, leasing from whatever `take` draws on (a budget, a key
    /// table slot) and handing an expired lease back through `give_back`.
    #[inline]
    pub fn admit_from(
        &mut self,
        lease: u32,
        now: u64,
        take: impl FnOnce(u32) -> u32,
        give_back: impl FnOnce(u32),
    ) -> bool {
        if self.tokens > 0 && now.saturating_sub(self.leased_at) < LEASE_TTL_NS {
            self.tokens -= 1;
            return true;
        }
        self.refill_and_admit(lease, now, take, give_back)
    }

    /// Whether this lease still holds tokens it may spend.
    pub fn is_live(&self, now: u64) -> bool {
        self.tokens > 0 && now.saturating_sub(self.leased_at) < LEASE_TTL_NS
    }

    #[cold]
    fn refill_and_admit(
        &mut self,
        lease: u32,
        now: u64,
        take: impl FnOnce(u32) -> u32,
        give_back: impl FnOnce(u32),
    ) -> bool {
        if self.tokens > 0 {
            give_back(self.tokens);
            self.tokens = 0;
        }
        let got = take(lease);
        if got == 0 {
            return false;
        }
        self.tokens = got - 1;
        self.leased_at = now;
        true
    }
}

/// One worker's locals for every budget of the current plan (reset on reload), and
/// its quota leases per key.
#[derive(Debug, Default)]
pub struct Locals {
    plan: Cell<u64>,
    slots: RefCell<Vec<Local>>,
    quota_plan: Cell<u64>,
    quotas: RefCell<Vec<QuotaLease>>,
    key_plan: Cell<u64>,
    keys: RefCell<HashMap<u64, Local>>,
}

/// Most key leases a worker keeps; past it, spent and expired ones are dropped.
const MAX_KEY_LEASES: usize = 65_536;

impl Locals {
    /// Runs `f` on the locals of plan `hash` with `n` budgets, resetting on change.
    pub fn with<R>(&self, hash: u64, n: usize, f: impl FnOnce(&mut [Local]) -> R) -> R {
        let mut slots = self.slots.borrow_mut();
        if self.plan.get() != hash || slots.len() != n {
            // Leases of the old plan's budgets die with it (they are not returned:
            // the new plan's budgets start full, as AWS does on a deployment).
            slots.clear();
            slots.resize(n, Local::default());
            self.plan.set(hash);
        }
        f(&mut slots)
    }

    /// Runs `f` on this worker's lease for key scope `scope` in plan `hash`.
    pub fn with_key<R>(
        &self,
        hash: u64,
        scope: u64,
        now: u64,
        f: impl FnOnce(&mut Local) -> R,
    ) -> R {
        let mut keys = self.keys.borrow_mut();
        if self.key_plan.get() != hash {
            keys.clear();
            self.key_plan.set(hash);
        }
        if keys.len() >= MAX_KEY_LEASES && !keys.contains_key(&scope) {
            // Dropping a lease forfeits its tokens (never an over-admission).
            keys.retain(|_, l| l.is_live(now));
            if keys.len() >= MAX_KEY_LEASES {
                keys.clear();
            }
        }
        f(keys.entry(scope).or_default())
    }

    /// Runs `f` on the quota lease of key `key` (of `n` keys) in plan `hash`.
    pub fn with_quota<R>(
        &self,
        hash: u64,
        n: usize,
        key: usize,
        f: impl FnOnce(&mut QuotaLease) -> R,
    ) -> R {
        let mut q = self.quotas.borrow_mut();
        if self.quota_plan.get() != hash || q.len() != n {
            // Unspent leases of the old plan are dropped: they stay counted as used
            // (never an undercount), at most one small lease per key and worker.
            q.clear();
            q.resize(n, QuotaLease::default());
            self.quota_plan.set(hash);
        }
        f(&mut q[key])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn leases_in_batches_and_returns_expired_ones() {
        let b = Budget::new(1000.0, 100, Instant::now());
        let lease = lease_size(&b, 2);
        assert_eq!(lease, 3); // 1000/s × 5 ms / 2 workers
        let mut l = Local::default();
        assert!(l.admit(&b, lease, 0));
        assert_eq!(l.tokens, 2);
        assert!(l.admit(&b, lease, 1));
        // after the TTL the unused token goes back
        assert!(l.admit(&b, lease, LEASE_TTL_NS + 1));
    }

    #[test]
    fn lease_size_is_bounded_by_burst() {
        let b = Budget::new(1_000_000.0, 40, Instant::now());
        assert_eq!(lease_size(&b, 2), 5);
        let slow = Budget::new(1.0, 1, Instant::now());
        assert_eq!(lease_size(&slow, 8), 1);
    }

    #[test]
    fn two_workers_admit_the_budget_and_no_more() {
        let b = Budget::new(100.0, 50, Instant::now());
        let lease = lease_size(&b, 2);
        let (mut w0, mut w1) = (Local::default(), Local::default());
        let mut admitted = 0;
        // 3 s of traffic at 3000 req/s spread over both workers, in simulated time
        for i in 0..9000u64 {
            let now = i * 333_333;
            let w = if i % 2 == 0 { &mut w0 } else { &mut w1 };
            admitted += u32::from(w.admit(&b, lease, now));
        }
        // burst + rate × 3 s, less at most one lease per worker left unspent
        assert!((350 - 2 * lease..=350).contains(&admitted), "{admitted}");
    }
}
