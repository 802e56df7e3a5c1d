//! Usage-plan quotas: requests per key per day, week or month (UTC).
//!
//! Counters are node-wide (atomics) and outlive plans: a [`QuotaStore`] keeps them by
//! key name across reloads, and a persister writes them to `state_dir` every second
//! (`control::run`), so a crash loses at most about one second of counts. Workers
//! lease small batches of quota like throttle tokens; leased quota counts as used at
//! once, so what is persisted never undercounts.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::observe::log::civil_from_days;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    /// ISO weeks: Monday 00:00 UTC.
    Week,
    /// Calendar months: the 1st, 00:00 UTC.
    Month,
}

impl Period {
    pub fn parse(s: &str) -> Option<Period> {
        match s {
            "day" | "DAY" => Some(Period::Day),
            "week" | "WEEK" => Some(Period::Week),
            "month" | "MONTH" => Some(Period::Month),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// Which period `unix_secs` falls in (a number that grows by one per period).
    pub fn index(self, unix_secs: u64) -> u64 {
        let days = unix_secs / 86_400;
        match self {
            Period::Day => days,
            // 1970-01-01 was a Thursday: shift so weeks start on Mondays.
            Period::Week => (days + 3) / 7,
            Period::Month => {
                let (y, m, _) = civil_from_days(days as i64);
                (y as u64) * 12 + u64::from(m - 1)
            }
        }
    }

    /// Seconds from `unix_secs` to the start of the next period.
    pub fn secs_to_next(self, unix_secs: u64) -> u64 {
        let days = unix_secs / 86_400;
        let next_day_start = match self {
            Period::Day => days + 1,
            Period::Week => {
                let week = (days + 3) / 7;
                (week + 1) * 7 - 3
            }
            Period::Month => {
                let (y, m, _) = civil_from_days(days as i64);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days_from_civil(ny, nm, 1)
            }
        };
        (next_day_start * 86_400).saturating_sub(unix_secs).max(1)
    }
}

/// (year, month, day) → days since 1970-01-01, proleptic Gregorian (inverse of
/// `civil_from_days`).
fn days_from_civil(y: i64, m: u32, d: u32) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468).max(0) as u64
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One key's count in the current period. Cross-core (atomics); kept by the store.
#[derive(Debug, Default)]
pub struct QuotaCounter {
    period: AtomicU64,
    used: AtomicU64,
}

impl QuotaCounter {
    fn roll(&self, period: u64) {
        let seen = self.period.load(Ordering::Acquire);
        if seen < period
            && self
                .period
                .compare_exchange(seen, period, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.used.store(0, Ordering::Release);
        }
    }

    /// Takes up to `want` requests of quota in `period`; returns how many it got.
    pub fn take(&self, want: u32, limit: u64, period: u64) -> u32 {
        self.roll(period);
        let mut got = 0;
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                let n = limit.saturating_sub(u).min(u64::from(want));
                got = n as u32;
                (n > 0).then_some(u + n)
            });
        got
    }

    /// Returns unspent quota leased in `period` (dropped if the period has moved on).
    pub fn give_back(&self, n: u32, period: u64) {
        if n > 0 && self.period.load(Ordering::Acquire) == period {
            let _ = self
                .used
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                    Some(u.saturating_sub(u64::from(n)))
                });
        }
    }

    pub fn used(&self, period: u64) -> u64 {
        if self.period.load(Ordering::Acquire) == period {
            self.used.load(Ordering::Acquire)
        } else {
            0
        }
    }
}

/// A worker's lease on one key's quota.
#[derive(Debug, Default, Clone, Copy)]
pub struct QuotaLease {
    left: u32,
    period: u64,
}

/// Quota leased per worker at a time: small, so keys near their limit are not
/// starved by quota parked on another core.
pub fn quota_lease(limit: u64, workers: usize) -> u32 {
    (limit / (64 * workers.max(1) as u64)).clamp(1, 16) as u32
}

impl QuotaLease {
    #[inline]
    pub fn admit(&mut self, c: &QuotaCounter, limit: u64, lease: u32, period: u64) -> bool {
        if self.left > 0 && self.period == period {
            self.left -= 1;
            return true;
        }
        if self.left > 0 {
            c.give_back(self.left, self.period);
        }
        let got = c.take(lease, limit, period);
        self.period = period;
        if got == 0 {
            self.left = 0;
            return false;
        }
        self.left = got - 1;
        true
    }
}

/// Every key's counter by name, across reloads; persisted to `state_dir`.
#[derive(Debug, Default)]
pub struct QuotaStore {
    counters: Mutex<HashMap<String, (Period, Arc<QuotaCounter>)>>,
    file: Option<PathBuf>,
}

const FILE: &str = "quotas.v1";

impl QuotaStore {
    /// A store backed by `state_dir/quotas.v1`, loading what is there.
    pub fn open(state_dir: Option<&Path>) -> (QuotaStore, Option<String>) {
        let Some(dir) = state_dir else {
            return (QuotaStore::default(), None);
        };
        let file = dir.join(FILE);
        let store = QuotaStore {
            counters: Mutex::default(),
            file: Some(file.clone()),
        };
        let problem = match std::fs::read_to_string(&file) {
            Ok(text) => {
                store.load(&text);
                None
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(format!(
                "cannot read quota counters from {}: {e}; starting from zero",
                file.display()
            )),
        };
        (store, problem)
    }

    fn load(&self, text: &str) {
        let mut map = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        for line in text.lines() {
            // name <tab> period-kind <tab> period-index <tab> used
            let mut f = line.split('\t');
            let (Some(name), Some(kind), Some(idx), Some(used)) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                continue;
            };
            let (Some(kind), Ok(idx), Ok(used)) =
                (Period::parse(kind), idx.parse::<u64>(), used.parse::<u64>())
            else {
                continue;
            };
            let c = QuotaCounter::default();
            c.period.store(idx, Ordering::Relaxed);
            c.used.store(used, Ordering::Relaxed);
            map.insert(name.to_string(), (kind, Arc::new(c)));
        }
    }

    /// The counter of key `name` with quota period `period` (a changed period starts over).
    pub fn counter(&self, name: &str, period: Period) -> Arc<QuotaCounter> {
        let mut map = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(name) {
            Some((p, c)) if *p == period => c.clone(),
            _ => {
                let c = Arc::new(QuotaCounter::default());
                map.insert(name.to_string(), (period, c.clone()));
                c
            }
        }
    }

    /// Writes every counter (temp file, fsync, rename). Never panics; the error is
    /// for the caller to report.
    pub fn persist(&self) -> Result<(), String> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let mut out = String::new();
        {
            let map = self.counters.lock().unwrap_or_else(|p| p.into_inner());
            for (name, (kind, c)) in map.iter() {
                let period = c.period.load(Ordering::Acquire);
                let used = c.used.load(Ordering::Acquire);
                out.push_str(&format!("{name}\t{}\t{period}\t{used}\n", kind.name()));
            }
        }
        let tmp = file.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(out.as_bytes())?;
            f.sync_data()?;
            std::fs::rename(&tmp, file)
        };
        write().map_err(|e| format!("cannot write quota counters to {}: {e}", file.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_utc_calendar() {
        // 2026-11-21 (a Saturday) 12:00 UTC
        let t = 1_795_262_400;
        assert_eq!(Period::Day.secs_to_next(t), 12 * 3600);
        // next Monday 2026-11-23 00:00
        assert_eq!(Period::Week.secs_to_next(t), 36 * 3600);
        // 2026-12-01 00:00
        assert_eq!(Period::Month.secs_to_next(t), (9 * 24 + 12) * 3600);
        assert_eq!(Period::Week.index(t), Period::Week.index(t + 36 * 3600 - 1));
        assert_ne!(Period::Week.index(t), Period::Week.index(t + 36 * 3600));
        assert_ne!(
            Period::Month.index(t),
            Period::Month.index(t + (9 * 24 + 12) * 3600)
        );
    }

    #[test]
    fn counters_cap_at_the_limit_and_roll_over() {
        let c = QuotaCounter::default();
        assert_eq!(c.take(4, 10, 7), 4);
        assert_eq!(c.take(10, 10, 7), 6);
        assert_eq!(c.take(1, 10, 7), 0);
        assert_eq!(c.take(3, 10, 8), 3, "a new period starts from zero");
    }

    #[test]
    fn store_round_trips_through_its_file() {
        let dir = std::env::temp_dir().join(format!("tp-quota-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let (s, problem) = QuotaStore::open(Some(&dir));
        assert!(problem.is_none());
        assert_eq!(s.counter("alice", Period::Day).take(5, 100, 42), 5);
        s.persist().unwrap();
        let (again, _) = QuotaStore::open(Some(&dir));
        assert_eq!(again.counter("alice", Period::Day).used(42), 5);
        assert_eq!(
            again.counter("alice", Period::Month).used(42),
            0,
            "another period kind starts over"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
