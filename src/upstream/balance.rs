//! Choosing a target of an upstream, per worker: the balancing policy over the targets
//! that are eligible (actively healthy, not ejected, not already tried by this request),
//! passive outlier detection, requests in flight (for `least_requests`, `random2` and
//! circuit breaking) and the retry budget.
//!
//! All of it is worker-local (`RefCell`, no atomics): each worker ejects targets on
//! what it sees itself. The active health of a target is node-wide (one checker
//! thread, `health.rs`) and read here with one relaxed atomic load.
//!
//! State is carried across reloads by upstream name and target address, so a reload
//! during an outage keeps its ejections. Tested by unit tests here and end to end in
//! `tests/upstream.rs`.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use crate::plan::{Balance, Plan, Upstream};

/// The hash of the consistent-hash ring: FNV-1a with a 64-bit finalizer. Fixed (not
/// seeded) so that every worker and every node maps a key to the same target.
pub fn ring_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    // splitmix64's finalizer spreads FNV's weak low bits over the whole word
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The retry budget's floor (Linkerd's `minRetriesPerSecond`): whatever the share of
/// requests says, a worker may retry this many times a second per upstream, so a
/// cold or quiet worker can still retry. It starts with one second's worth.
const MIN_RETRIES_PER_SECOND: f64 = 10.0;
/// Most retry tokens a worker holds per upstream.
const RETRY_TOKENS_MAX: f64 = 20.0;

#[derive(Debug, Clone)]
struct Tgt {
    addr: SocketAddr,
    current: i64,
    in_flight: u32,
    /// Consecutive failures (connect failure, reset, 5xx).
    failures: u32,
    ejected_until: Option<Instant>,
    /// Ejections in a row (each one longer).
    ejections: u32,
}

#[derive(Debug, Clone)]
struct Ups {
    name: String,
    targets: Vec<Tgt>,
    in_flight: u32,
    pending: u32,
    retry_tokens: f64,
    /// When the floor last added tokens.
    retry_refilled: Instant,
}

#[derive(Debug)]
struct State {
    hash: u64,
    loaded_at: SystemTime,
    ups: Vec<Ups>,
    rng: u64,
}

/// One worker's balancing state.
#[derive(Debug)]
pub struct Balancers {
    worker: usize,
    state: RefCell<State>,
}

/// What circuit breaking allows a new request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Free,
    /// At `max_connections`: wait for a slot (counted in `max_pending`).
    Queue,
    /// At `max_connections` with `max_pending` waiting: 503.
    Full,
}

/// How an attempt on a target ended, for outlier detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Any response below 500 (or a 5xx passive detection does not count: none).
    Ok,
    /// Connect failure, reset before the response, or a 5xx response.
    Failed,
    /// Not the target's fault (the client went away): no verdict.
    Abandoned,
}

impl Balancers {
    pub fn new(worker: usize) -> Balancers {
        Balancers {
            worker,
            state: RefCell::new(State {
                hash: 0,
                loaded_at: SystemTime::UNIX_EPOCH,
                ups: Vec::new(),
                rng: 0x9E37_79B9_7F4A_7C15
                    ^ (worker as u64 + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93),
            }),
        }
    }

    /// Brings the state to `plan` when it is newer; `false` when `plan` is older than
    /// the state (a request that started before a reload): skip the bookkeeping.
    fn sync(st: &mut State, plan: &Plan) -> bool {
        if st.hash == plan.hash && st.ups.len() == plan.upstreams.len() {
            return true;
        }
        if plan.loaded_at < st.loaded_at {
            return false;
        }
        let old = std::mem::take(&mut st.ups);
        st.ups = plan
            .upstreams
            .iter()
            .map(|u| {
                let prev = old.iter().find(|o| o.name == u.name);
                Ups {
                    name: u.name.clone(),
                    targets: u
                        .targets
                        .iter()
                        .map(|t| {
                            prev.and_then(|p| p.targets.iter().find(|o| o.addr == t.addr))
                                .cloned()
                                .unwrap_or(Tgt {
                                    addr: t.addr,
                                    current: 0,
                                    in_flight: 0,
                                    failures: 0,
                                    ejected_until: None,
                                    ejections: 0,
                                })
                        })
                        .collect(),
                    in_flight: prev.map_or(0, |p| p.in_flight),
                    pending: prev.map_or(0, |p| p.pending),
                    retry_tokens: prev.map_or(MIN_RETRIES_PER_SECOND, |p| p.retry_tokens),
                    retry_refilled: prev.map_or_else(Instant::now, |p| p.retry_refilled),
                }
            })
            .collect();
        st.hash = plan.hash;
        st.loaded_at = plan.loaded_at;
        true
    }

    /// Chooses a target of upstream `u` that is eligible and not in `tried`. `key` is
    /// the request's hash key for `hash(...)` balancing. `None`: no healthy target.
    pub fn pick(&self, plan: &Plan, u: u32, key: Option<&[u8]>, tried: &[u32]) -> Option<u32> {
        let up = plan.upstreams.get(u as usize)?;
        let mut st = self.state.borrow_mut();
        if !Self::sync(&mut st, plan) {
            // A request still on a plan older than this worker's state (it began
            // before a reload): any eligible target, without the state.
            return (0..up.targets.len() as u32)
                .find(|&i| !tried.contains(&i) && actively_healthy(up, i as usize));
        }
        let State { ups, rng, .. } = &mut *st;
        let s = &mut ups[u as usize];
        let now = Instant::now();
        let mut eligible = [0u32; 64];
        let mut n = 0;
        for (i, t) in s.targets.iter_mut().enumerate() {
            if tried.contains(&(i as u32)) || !actively_healthy(up, i) {
                continue;
            }
            if let Some(until) = t.ejected_until {
                if now < until {
                    continue;
                }
                // back from ejection: one more failure ejects it again, for longer
                t.ejected_until = None;
                t.failures = up.outlier.consecutive.saturating_sub(1);
            }
            if n < eligible.len() {
                eligible[n] = i as u32;
                n += 1;
            }
        }
        if n == 0 {
            // Panic mode (Envoy's): every untried target is unhealthy or ejected, so
            // health says nothing useful; spread over all of them rather than refuse
            // everything. A target that is really down fails to connect at once.
            for i in 0..s.targets.len().min(eligible.len()) {
                if !tried.contains(&(i as u32)) {
                    eligible[n] = i as u32;
                    n += 1;
                }
            }
        }
        let e = &eligible[..n];
        if e.is_empty() {
            return None;
        }
        if e.len() == 1 {
            return Some(e[0]);
        }
        Some(match &up.balance {
            Balance::RoundRobin => smooth(up, &mut s.targets, e),
            Balance::LeastRequests => {
                let start = (next_rand(rng) % e.len() as u64) as usize;
                let mut best = e[start];
                for k in 1..e.len() {
                    let c = e[(start + k) % e.len()];
                    if lighter(up, &s.targets, c, best) {
                        best = c;
                    }
                }
                best
            }
            Balance::Random2 => {
                let a = e[(next_rand(rng) % e.len() as u64) as usize];
                let mut b = e[(next_rand(rng) % (e.len() as u64 - 1)) as usize];
                if b == a {
                    b = e[e.len() - 1];
                }
                if lighter(up, &s.targets, b, a) {
                    b
                } else {
                    a
                }
            }
            Balance::Hash(_) => match key {
                Some(k) => on_ring(up, ring_hash(k), e),
                None => smooth(up, &mut s.targets, e),
            },
        })
    }

    /// A request goes to target `t`.
    pub fn begin(&self, plan: &Plan, u: u32, t: u32) {
        let mut st = self.state.borrow_mut();
        if !Self::sync(&mut st, plan) {
            return;
        }
        let s = &mut st.ups[u as usize];
        s.in_flight += 1;
        if let Some(x) = s.targets.get_mut(t as usize) {
            x.in_flight += 1;
        }
        if let Some(series) = target_series(plan, u, t) {
            series.worker(self.worker).requests_started();
        }
    }

    /// The attempt on `t` is over. Returns the ejection's length when this attempt
    /// ejected the target.
    pub fn end(&self, plan: &Plan, u: u32, t: u32, how: Attempt) -> Option<Duration> {
        let mut st = self.state.borrow_mut();
        if !Self::sync(&mut st, plan) {
            return None;
        }
        let up = &plan.upstreams[u as usize];
        let s = &mut st.ups[u as usize];
        s.in_flight = s.in_flight.saturating_sub(1);
        let x = s.targets.get_mut(t as usize)?;
        x.in_flight = x.in_flight.saturating_sub(1);
        if let Some(series) = target_series(plan, u, t) {
            series.worker(self.worker).request_ended();
        }
        match how {
            Attempt::Abandoned => None,
            Attempt::Ok => {
                x.failures = 0;
                x.ejections = 0;
                None
            }
            Attempt::Failed => {
                x.failures += 1;
                if up.outlier.consecutive == 0
                    || x.failures < up.outlier.consecutive
                    || x.ejected_until.is_some()
                {
                    return None;
                }
                if !may_eject(up, &s.targets, t as usize) {
                    return None;
                }
                let x = &mut s.targets[t as usize];
                x.ejections += 1;
                let d = up
                    .outlier
                    .base_ejection
                    .saturating_mul(x.ejections.min(64))
                    .min(up.outlier.max_ejection);
                x.ejected_until = Some(Instant::now() + d);
                x.failures = 0;
                if let Some(series) = target_series(plan, u, t) {
                    series.worker(self.worker).ejected();
                }
                Some(d)
            }
        }
    }

    /// Circuit breaking: may a new request of upstream `u` go now?
    pub fn slot(&self, plan: &Plan, u: u32) -> Slot {
        let up = &plan.upstreams[u as usize];
        let Some(max) = up.max_in_flight else {
            return Slot::Free;
        };
        let mut st = self.state.borrow_mut();
        if !Self::sync(&mut st, plan) {
            return Slot::Free;
        }
        let s = &st.ups[u as usize];
        if s.in_flight < max {
            Slot::Free
        } else if s.pending < up.max_pending {
            Slot::Queue
        } else {
            Slot::Full
        }
    }

    /// Counts a request waiting for a slot (`+1`) or done waiting (`-1`).
    pub fn queued(&self, plan: &Plan, u: u32, waiting: bool) {
        let mut st = self.state.borrow_mut();
        if !Self::sync(&mut st, plan) {
            return;
        }
        let s = &mut st.ups[u as usize];
        if waiting {
            s.pending += 1;
        } else {
            s.pending = s.pending.saturating_sub(1);
        }
    }

    /// Puts a request's share of the retry budget in (every request of the upstream).
    pub fn deposit(&self, plan: &Plan, u: u32) {
        let mut st = self.state.borrow_mut();
        if !Self::sync(&mut st, plan) {
            return;
        }
        let ratio = plan.upstreams[u as usize].retry_budget;
        let s = &mut st.ups[u as usize];
        s.retry_tokens = (s.retry_tokens + ratio).min(RETRY_TOKENS_MAX);
    }

    /// Takes a retry from the budget; `false` when the budget is spent.
    pub fn take_retry(&self, plan: &Plan, u: u32, t: u32) -> bool {
        let mut st = self.state.borrow_mut();
        if !Self::sync(&mut st, plan) {
            return false;
        }
        let s = &mut st.ups[u as usize];
        let now = Instant::now();
        let floor = now.duration_since(s.retry_refilled).as_secs_f64() * MIN_RETRIES_PER_SECOND;
        s.retry_tokens = (s.retry_tokens + floor).min(RETRY_TOKENS_MAX);
        s.retry_refilled = now;
        if s.retry_tokens < 1.0 {
            return false;
        }
        s.retry_tokens -= 1.0;
        if let Some(series) = target_series(plan, u, t) {
            series.worker(self.worker).retried();
        }
        true
    }

    /// Counts a failed connect to target `t`.
    pub fn connect_failed(&self, plan: &Plan, u: u32, t: u32) {
        if let Some(series) = target_series(plan, u, t) {
            series.worker(self.worker).connect_failed();
        }
    }

    /// This worker's requests in flight to each target of `u` (for the metrics).
    pub fn in_flight(&self, u: usize) -> Vec<(SocketAddr, u32)> {
        let st = self.state.borrow();
        st.ups
            .get(u)
            .map(|s| s.targets.iter().map(|t| (t.addr, t.in_flight)).collect())
            .unwrap_or_default()
    }
}

fn target_series(plan: &Plan, u: u32, t: u32) -> Option<&crate::observe::metrics::TargetSeries> {
    plan.upstreams
        .get(u as usize)?
        .target_series
        .get(t as usize)?
        .as_deref()
}

/// Whether passive detection may eject target `t` now: at most
/// `max_ejection_percent` of the targets are out at once (always allowing one), and
/// never the last one still able to serve (actively healthy and not ejected).
fn may_eject(up: &Upstream, targets: &[Tgt], t: usize) -> bool {
    let now = Instant::now();
    let out = |x: &Tgt| x.ejected_until.is_some_and(|u| now < u);
    let ejected = targets.iter().filter(|x| out(x)).count();
    let allowed =
        ((targets.len() as u64 * u64::from(up.outlier.max_ejection_percent)) / 100).max(1);
    let others_serving = targets
        .iter()
        .enumerate()
        .any(|(i, x)| i != t && !out(x) && actively_healthy(up, i));
    (ejected as u64) < allowed && others_serving
}

fn actively_healthy(up: &Upstream, i: usize) -> bool {
    up.target_health
        .get(i)
        .and_then(|h| h.as_ref())
        .is_none_or(|h| h.is_healthy())
}

/// xorshift64: the per-worker random draws of balancing and canaries.
pub fn next_rand(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// `a` has fewer requests in flight than `b`, relative to their weights.
fn lighter(up: &Upstream, t: &[Tgt], a: u32, b: u32) -> bool {
    let (ta, tb) = (&t[a as usize], &t[b as usize]);
    let (wa, wb) = (
        u64::from(up.targets[a as usize].weight),
        u64::from(up.targets[b as usize].weight),
    );
    u64::from(ta.in_flight) * wb < u64::from(tb.in_flight) * wa
}

/// Smooth weighted round-robin (nginx) over the eligible targets `e`.
fn smooth(up: &Upstream, t: &mut [Tgt], e: &[u32]) -> u32 {
    let mut total = 0i64;
    let mut best = e[0];
    for &i in e {
        let w = i64::from(up.targets[i as usize].weight);
        total += w;
        t[i as usize].current += w;
        if t[i as usize].current > t[best as usize].current {
            best = i;
        }
    }
    t[best as usize].current -= total;
    best
}

/// The first eligible target clockwise from `h` on the ring.
fn on_ring(up: &Upstream, h: u64, e: &[u32]) -> u32 {
    let ring = &up.ring;
    if ring.is_empty() {
        return e[0];
    }
    let start = ring.partition_point(|&(p, _)| p < h);
    for k in 0..ring.len() {
        let (_, t) = ring[(start + k) % ring.len()];
        if e.contains(&t) {
            return t;
        }
    }
    e[0]
}

#[cfg(test)]
mod tests;
