//! A node-wide token bucket on two atomics. Tokens are fixed point (2^20 per token)
//! so fractional refill between calls is never lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const ONE: u64 = 1 << 20;

/// A token bucket shared by all workers: `rate` tokens per second, at most `burst`.
/// Cross-core state: touched only when a worker's local lease runs dry.
#[derive(Debug)]
pub struct Budget {
    /// The rate in thousandths of a token per second (integer, so refill is exact).
    rate_milli: u64,
    burst: u64,
    pub rate: f64,
    tokens: AtomicU64,
    /// Nanoseconds since `epoch` up to which refill has been credited.
    credited_ns: AtomicU64,
    epoch: Instant,
}

impl Budget {
    /// A full bucket (AWS starts with the burst available).
    pub fn new(rate: f64, burst: u64, epoch: Instant) -> Budget {
        let burst = burst.max(1);
        Budget {
            rate_milli: (rate.max(0.0) * 1000.0).round() as u64,
            burst: burst.saturating_mul(ONE),
            rate,
            tokens: AtomicU64::new(burst.saturating_mul(ONE)),
            credited_ns: AtomicU64::new(0),
            epoch,
        }
    }

    pub fn burst(&self) -> u64 {
        self.burst / ONE
    }

    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Fixed-point tokens earned from the epoch to `ns`. Crediting the difference of
    /// these totals never loses the fractions a per-interval rounding would.
    fn earned(&self, ns: u64) -> u128 {
        u128::from(ns) * u128::from(self.rate_milli) * u128::from(ONE) / 1_000_000_000_000
    }

    fn refill(&self, now: u64) {
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
            let add = u64::try_from(self.earned(now) - self.earned(last)).unwrap_or(u64::MAX);
            if add > 0 {
                let _ = self
                    .tokens
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                        Some(t.saturating_add(add).min(self.burst))
                    });
            }
        }
    }

    /// Takes up to `want` whole tokens; returns how many it got (0 = empty).
    pub fn take(&self, want: u32, now: u64) -> u32 {
        self.refill(now);
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
    pub fn give_back(&self, n: u32) {
        if n == 0 {
            return;
        }
        let add = u64::from(n) * ONE;
        let _ = self
            .tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(add).min(self.burst))
            });
    }

    /// Seconds until one token is available at the configured rate (for Retry-After).
    pub fn retry_after_secs(&self) -> u64 {
        if self.rate <= 0.0 {
            return 60;
        }
        (1.0 / self.rate).ceil().max(1.0) as u64
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
