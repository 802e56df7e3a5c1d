//! A node-wide token bucket on two atomics. Tokens are fixed point (2^20 per token)
//! so fractional refill between calls is never lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const ONE: u64 = 1 << 20;

/// A throttle's parameters: `rate` tokens per second, at most `burst`.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    /// The rate in thousandths of a token per second (integer, so refill is exact).
    rate_milli: u64,
    /// Fixed point.
    burst: u64,
    pub per_sec: f64,
}

impl Rate {
    pub fn new(rate: f64, burst: u64) -> Rate {
        Rate {
            rate_milli: (rate.max(0.0) * 1000.0).round() as u64,
            burst: burst.max(1).saturating_mul(ONE),
            per_sec: rate,
        }
    }

    pub fn burst(&self) -> u64 {
        self.burst / ONE
    }

    /// Fixed-point tokens earned from the epoch to `ns`. Crediting the difference of
    /// these totals never loses the fractions a per-interval rounding would.
    fn earned(&self, ns: u64) -> u128 {
        u128::from(ns) * u128::from(self.rate_milli) * u128::from(ONE) / 1_000_000_000_000
    }

    /// Seconds until one token is available at this rate (for Retry-After).
    pub fn retry_after_secs(&self) -> u64 {
        if self.per_sec <= 0.0 {
            return 60;
        }
        (1.0 / self.per_sec).ceil().max(1.0) as u64
    }
}

/// The state of one token bucket: two atomics, shared by all workers.
#[derive(Debug, Default)]
pub struct Bucket {
    tokens: AtomicU64,
    /// Nanoseconds (since the plan's epoch) up to which refill has been credited.
    credited_ns: AtomicU64,
}

impl Bucket {
    /// A full bucket as of `now` (AWS starts with the burst available).
    pub fn full(rate: &Rate, now: u64) -> Bucket {
        Bucket {
            tokens: AtomicU64::new(rate.burst),
            credited_ns: AtomicU64::new(now),
        }
    }

    /// Makes this bucket full as of `now` (a table slot taken by a new key).
    pub fn reset(&self, rate: &Rate, now: u64) {
        self.credited_ns.store(now, Ordering::Release);
        self.tokens.store(rate.burst, Ordering::Release);
    }

    fn refill(&self, rate: &Rate, now: u64) {
        let last = self.credited_ns.load(Ordering::Acquire);
        if now <= last {
            return;
        }
        // Whoever moves the clock forward credits that interval; losers skip.
        if self
            .credited_ns
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let add = u64::try_from(rate.earned(now) - rate.earned(last)).unwrap_or(u64::MAX);
            if add > 0 {
                let _ = self
                    .tokens
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                        Some(t.saturating_add(add).min(rate.burst))
                    });
            }
        }
    }

    /// Takes up to `want` whole tokens; returns how many it got (0 = empty).
    pub fn take(&self, rate: &Rate, want: u32, now: u64) -> u32 {
        self.refill(rate, now);
        let mut got = 0;
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                let n = (t / ONE).min(u64::from(want));
                got = n as u32;
                (n > 0).then(|| t - n * ONE)
            });
        got
    }

    /// Returns unused tokens (an expired lease).
    pub fn give_back(&self, rate: &Rate, n: u32) {
        if n == 0 {
            return;
        }
        let add = u64::from(n) * ONE;
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(add).min(rate.burst))
            });
    }

    /// Whether the bucket would be full at `now`: forgetting it then loses nothing.
    pub fn is_full_at(&self, rate: &Rate, now: u64) -> bool {
        let last = self.credited_ns.load(Ordering::Acquire);
        let t = u128::from(self.tokens.load(Ordering::Acquire));
        t + rate.earned(now.max(last)) - rate.earned(last) >= u128::from(rate.burst)
    }
}

/// A named throttle of the plan: its rate and its one node-wide bucket.
/// Cross-core state: touched only when a worker's local lease runs dry.
#[derive(Debug)]
pub struct Budget {
    pub limit: Rate,
    bucket: Bucket,
    pub rate: f64,
    epoch: Instant,
}

impl Budget {
    /// A full bucket.
    pub fn new(rate: f64, burst: u64, epoch: Instant) -> Budget {
        let limit = Rate::new(rate, burst);
        Budget {
            bucket: Bucket::full(&limit, 0),
            limit,
            rate,
            epoch,
        }
    }

    pub fn burst(&self) -> u64 {
        self.limit.burst()
    }

    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    pub fn take(&self, want: u32, now: u64) -> u32 {
        self.bucket.take(&self.limit, want, now)
    }

    pub fn give_back(&self, n: u32) {
        self.bucket.give_back(&self.limit, n)
    }

    pub fn retry_after_secs(&self) -> u64 {
        self.limit.retry_after_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn starts_full_and_refills_at_rate() {
        let b = Budget::new(100.0, 10, Instant::now());
        assert_eq!(b.take(50, 0), 10);
        assert_eq!(b.take(1, 0), 0);
        // 50 ms at 100/s = 5 tokens
        assert_eq!(b.take(50, 50_000_000), 5);
        // refill never exceeds burst
        assert_eq!(b.take(50, 10_000_000_000), 10);
    }

    #[test]
    fn fractional_refill_is_not_lost() {
        let b = Budget::new(1.0, 1, Instant::now());
        assert_eq!(b.take(1, 0), 1);
        let mut got = 0;
        for i in 1..=10 {
            // ten steps of 100 ms make one token
            got += b.take(1, i * 100_000_000);
        }
        assert_eq!(got, 1);
    }

    #[test]
    fn tokens_are_conserved_across_threads() {
        let b = Arc::new(Budget::new(0.0, 100_000, Instant::now()));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    for _ in 0..100_000 {
                        n += u64::from(b.take(3, 0));
                    }
                    n
                })
            })
            .collect();
        let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, 100_000);
    }
}
