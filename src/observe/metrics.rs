//! Prometheus metrics: per-worker counters summed when `/metrics` is scraped.
//!
//! Series are per stage and route key (labels come from the plan, never from request
//! paths, so cardinality is bounded by the config). A [`MetricsStore`] keeps them
//! across reloads so counters never go backwards. Each worker writes only its own
//! cache-line-aligned block with plain loads and stores (no locked instruction, no
//! shared cache line); the admin thread reads all blocks and sums.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Latency bucket upper bounds, in microseconds (Prometheus `le` in seconds).
pub const BUCKETS_US: [u64; 12] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    10_000_000,
];
const NB: usize = BUCKETS_US.len() + 1;

/// Authorizer decisions, as metric labels: allowed, then each reason for a refusal
/// (`auth::jwt::Rejection::reason`, and scopes).
pub const AUTH_DECISIONS: [&str; 16] = [
    "allow",
    "missing",
    "malformed",
    "unknown_kid",
    "no_keys",
    "signature",
    "expired",
    "not_yet_valid",
    "issuer",
    "audience",
    "insufficient_scope",
    // request authorizers
    "deny",
    "implicit_deny",
    "unauthorized",
    "authorizer_error",
    "authorizer_timeout",
];

/// Throttle scopes, in AWS's order, as metric labels.
pub const SCOPES: [&str; 5] = ["key_route", "key", "route", "stage", "gateway"];

/// One worker's counters for one series. Written by that worker only.
#[repr(align(128))]
#[derive(Debug, Default)]
pub struct Counters {
    /// 1xx..5xx
    by_class: [AtomicU64; 5],
    latency: [AtomicU64; NB],
    latency_sum_us: AtomicU64,
    integration: [AtomicU64; NB],
    integration_sum_us: AtomicU64,
    throttled: [AtomicU64; 5],
    quota_exceeded: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    canary: AtomicU64,
    /// By [`AUTH_DECISIONS`].
    auth: [AtomicU64; AUTH_DECISIONS.len()],
}

/// Owner-only increment: a plain load and store, no read-modify-write instruction.
fn bump(a: &AtomicU64, n: u64) {
    a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

fn bucket(d: Duration) -> usize {
    let us = d.as_micros() as u64;
    BUCKETS_US
        .iter()
        .position(|&b| us <= b)
        .unwrap_or(BUCKETS_US.len())
}

/// What one finished request adds to its series.
#[derive(Debug, Default)]
pub struct Observation {
    pub status: u16,
    pub latency: Duration,
    pub integration_latency: Option<Duration>,
    /// Index into [`SCOPES`] when a throttle refused the request.
    pub throttled: Option<usize>,
    pub quota_exceeded: bool,
    /// How the cache took part, on cached routes.
    pub cache: Option<crate::cache::policy::Outcome>,
    /// The stage's canary served it.
    pub canary: bool,
    /// The route's authorizer decided: an index into [`AUTH_DECISIONS`].
    pub auth: Option<u8>,
}

impl Counters {
    pub fn observe(&self, o: &Observation) {
        let class = (o.status / 100).clamp(1, 5) as usize - 1;
        bump(&self.by_class[class], 1);
        bump(&self.latency[bucket(o.latency)], 1);
        bump(&self.latency_sum_us, o.latency.as_micros() as u64);
        if let Some(d) = o.integration_latency {
            bump(&self.integration[bucket(d)], 1);
            bump(&self.integration_sum_us, d.as_micros() as u64);
        }
        if let Some(s) = o.throttled {
            bump(&self.throttled[s.min(4)], 1);
        }
        if o.quota_exceeded {
            bump(&self.quota_exceeded, 1);
        }
        if o.canary {
            bump(&self.canary, 1);
        }
        if let Some(a) = o.auth {
            bump(&self.auth[usize::from(a).min(AUTH_DECISIONS.len() - 1)], 1);
        }
        match o.cache {
            Some(c) if c.is_hit() => bump(&self.cache_hits, 1),
            Some(crate::cache::policy::Outcome::Bypass) | None => {}
            Some(_) => bump(&self.cache_misses, 1),
        }
    }
}

/// Client connection protocols, as metric labels (index = `Protocol as usize`).
pub const PROTOCOLS: [&str; 4] = ["http/1.1", "http/1.1+tls", "h2c", "h2"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1 = 0,
    Http1Tls = 1,
    H2c = 2,
    H2 = 3,
}

/// A worker's connection counts by protocol (owner-written, on its own cache lines).
#[repr(align(128))]
#[derive(Debug, Default)]
pub struct ConnCounters {
    open: [AtomicU64; 4],
    accepted: [AtomicU64; 4],
}

fn drop_one(a: &AtomicU64) {
    a.store(
        a.load(Ordering::Relaxed).saturating_sub(1),
        Ordering::Relaxed,
    );
}

impl ConnCounters {
    pub fn opened(&self, p: Protocol) {
        bump(&self.open[p as usize], 1);
        bump(&self.accepted[p as usize], 1);
    }

    pub fn closed(&self, p: Protocol) {
        drop_one(&self.open[p as usize]);
    }

    /// A connection turned out to speak another protocol (h2c after its preface).
    pub fn switched(&self, from: Protocol, to: Protocol) {
        drop_one(&self.open[from as usize]);
        drop_one(&self.accepted[from as usize]);
        self.opened(to);
    }
}

/// One worker's counters for one upstream target. Written by that worker only.
#[repr(align(128))]
#[derive(Debug, Default)]
pub struct TargetCounters {
    requests: AtomicU64,
    in_flight: AtomicU64,
    connect_failures: AtomicU64,
    retries: AtomicU64,
    ejections: AtomicU64,
}

impl TargetCounters {
    pub fn requests_started(&self) {
        bump(&self.requests, 1);
        bump(&self.in_flight, 1);
    }

    pub fn request_ended(&self) {
        let v = self.in_flight.load(Ordering::Relaxed).saturating_sub(1);
        self.in_flight.store(v, Ordering::Relaxed);
    }

    pub fn connect_failed(&self) {
        bump(&self.connect_failures, 1);
    }

    pub fn retried(&self) {
        bump(&self.retries, 1);
    }

    pub fn ejected(&self) {
        bump(&self.ejections, 1);
    }
}

/// One upstream target (by upstream name and address), a block per worker.
#[derive(Debug)]
pub struct TargetSeries {
    pub upstream: String,
    pub addr: String,
    per_worker: Box<[TargetCounters]>,
    /// The target's active health, when the upstream has checks (set at bind time).
    pub health: Mutex<Option<Arc<crate::upstream::health::TargetHealth>>>,
}

impl TargetSeries {
    pub fn worker(&self, worker: usize) -> &TargetCounters {
        &self.per_worker[worker.min(self.per_worker.len() - 1)]
    }
}

/// One stage + route key, with a counter block per worker.
#[derive(Debug)]
pub struct Series {
    pub stage: String,
    pub route: String,
    /// The route's authorizer (`api/name`), set at bind; the last plan's wins.
    pub authorizer: std::sync::Mutex<Option<String>>,
    per_worker: Box<[Counters]>,
}

impl Series {
    /// The block of `worker` (out-of-range workers share the last block, which
    /// cannot happen with the worker count the store was made for).
    pub fn worker(&self, worker: usize) -> &Counters {
        &self.per_worker[worker.min(self.per_worker.len() - 1)]
    }
}

/// The series in creation order, and where each (stage, route) is in it.
type SeriesIndex = (Vec<Arc<Series>>, HashMap<(String, String), usize>);

/// Every series, across reloads. Cross-core: written by workers (their own blocks),
/// read by the admin thread; the mutex is taken only at bind and scrape time.
#[derive(Debug)]
pub struct MetricsStore {
    workers: usize,
    series: Mutex<SeriesIndex>,
    /// Requests that matched no route (404/405, and refusals before routing).
    pub unrouted: Arc<Series>,
    pub access_log_dropped: Arc<AtomicU64>,
    pub driver: Mutex<String>,
    connections: Box<[ConnCounters]>,
    targets: Mutex<Vec<Arc<TargetSeries>>>,
    /// Each worker's idle pooled connections per target address, as of its last
    /// snapshot (once a second; the lock is taken only then and at scrape time).
    idle: Box<[Mutex<IdleByTarget>]>,
}

/// Idle pooled connections per target address.
type IdleByTarget = Vec<crate::upstream::pool::TargetSnapshot>;

impl MetricsStore {
    pub fn new(workers: usize) -> MetricsStore {
        let workers = workers.max(1);
        MetricsStore {
            workers,
            series: Mutex::default(),
            unrouted: Arc::new(Series {
                stage: String::new(),
                route: String::new(),
                authorizer: std::sync::Mutex::new(None),
                per_worker: (0..workers).map(|_| Counters::default()).collect(),
            }),
            access_log_dropped: Arc::new(AtomicU64::new(0)),
            driver: Mutex::new(String::new()),
            connections: (0..workers).map(|_| ConnCounters::default()).collect(),
            targets: Mutex::default(),
            idle: (0..workers).map(|_| Mutex::default()).collect(),
        }
    }

    /// A worker's snapshot of its idle upstream connections.
    pub fn set_idle(&self, worker: usize, idle: IdleByTarget) {
        if let Some(slot) = self.idle.get(worker) {
            if let Ok(mut g) = slot.lock() {
                *g = idle;
            }
        }
    }

    /// The workers' last snapshots of a target, summed: idle connections, requests
    /// queued for one, and the adaptive connection limit (`None`: no worker limits it).
    fn snapshot_of(&self, addr: &str) -> (usize, usize, Option<u64>) {
        let mut sum = (0, 0, None);
        for g in self.idle.iter().filter_map(|m| m.lock().ok()) {
            for t in g.iter().filter(|t| t.addr.to_string() == addr) {
                sum.0 += t.idle;
                sum.1 += t.queued;
                if let Some(l) = t.limit {
                    sum.2 = Some(sum.2.unwrap_or(0) + u64::from(l));
                }
            }
        }
        sum
    }

    /// The series of an upstream target, created on first use and kept for good.
    pub fn target(&self, upstream: &str, addr: &str) -> Arc<TargetSeries> {
        let mut g = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = g.iter().find(|t| t.upstream == upstream && t.addr == addr) {
            return t.clone();
        }
        let t = Arc::new(TargetSeries {
            upstream: upstream.to_string(),
            addr: addr.to_string(),
            per_worker: (0..self.workers)
                .map(|_| TargetCounters::default())
                .collect(),
            health: Mutex::new(None),
        });
        g.push(t.clone());
        t
    }

    fn render_targets(&self, out: &mut String) {
        let list: Vec<Arc<TargetSeries>> = {
            let g = self.targets.lock().unwrap_or_else(|p| p.into_inner());
            g.clone()
        };
        let sum = |t: &TargetSeries, f: &dyn Fn(&TargetCounters) -> &AtomicU64| -> u64 {
            t.per_worker
                .iter()
                .map(|c| f(c).load(Ordering::Relaxed))
                .sum()
        };
        let labels = |t: &TargetSeries| {
            format!(
                "upstream=\"{}\",target=\"{}\"",
                esc(&t.upstream),
                esc(&t.addr)
            )
        };
        type Pick = fn(&TargetCounters) -> &AtomicU64;
        let rows: [(&str, &str, &str, Pick); 5] = [
            (
                "turnpike_upstream_requests_total",
                "Attempts sent to the target (retries included).",
                "counter",
                |c| &c.requests,
            ),
            (
                "turnpike_upstream_in_flight",
                "Requests in flight to the target.",
                "gauge",
                |c| &c.in_flight,
            ),
            (
                "turnpike_upstream_connect_failures_total",
                "Connections to the target refused or timed out.",
                "counter",
                |c| &c.connect_failures,
            ),
            (
                "turnpike_upstream_retries_total",
                "Requests retried after failing on the target.",
                "counter",
                |c| &c.retries,
            ),
            (
                "turnpike_upstream_ejections_total",
                "Times a worker ejected the target (passive outlier detection).",
                "counter",
                |c| &c.ejections,
            ),
        ];
        for (name, help, kind, pick) in rows {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for t in &list {
                let _ = writeln!(out, "{name}{{{}}} {}", labels(t), sum(t, &pick));
            }
        }
        out.push_str("# HELP turnpike_upstream_idle_connections Pooled connections to the target waiting for a request (as of the workers' last snapshot, at most 1 s old).\n# TYPE turnpike_upstream_idle_connections gauge\n");
        let snaps: Vec<_> = list.iter().map(|t| self.snapshot_of(&t.addr)).collect();
        for (t, s) in list.iter().zip(&snaps) {
            let _ = writeln!(
                out,
                "turnpike_upstream_idle_connections{{{}}} {}",
                labels(t),
                s.0
            );
        }
        out.push_str("# HELP turnpike_upstream_queued_requests Requests waiting for a connection to the target (upstream gate; workers' last snapshot).\n# TYPE turnpike_upstream_queued_requests gauge\n");
        for (t, s) in list.iter().zip(&snaps) {
            let _ = writeln!(
                out,
                "turnpike_upstream_queued_requests{{{}}} {}",
                labels(t),
                s.1
            );
        }
        out.push_str("# HELP turnpike_upstream_connection_limit Connections in use the gateway allows itself to the target after its accept queue overflowed (summed over workers; no sample: unbounded).\n# TYPE turnpike_upstream_connection_limit gauge\n");
        for (t, s) in list.iter().zip(&snaps) {
            if let Some(l) = s.2 {
                let _ = writeln!(
                    out,
                    "turnpike_upstream_connection_limit{{{}}} {l}",
                    labels(t)
                );
            }
        }
        out.push_str("# HELP turnpike_upstream_healthy Active health of the target (1 healthy, 0 not; 1 without checks).\n# TYPE turnpike_upstream_healthy gauge\n");
        for t in &list {
            let h = t
                .health
                .lock()
                .map(|h| h.as_ref().is_none_or(|h| h.is_healthy()))
                .unwrap_or(true);
            let _ = writeln!(
                out,
                "turnpike_upstream_healthy{{{}}} {}",
                labels(t),
                u8::from(h)
            );
        }
    }

    /// The connection counters of `worker`.
    pub fn connections(&self, worker: usize) -> &ConnCounters {
        &self.connections[worker.min(self.connections.len() - 1)]
    }

    /// The series of a stage's route, created on first use and kept for good.
    pub fn series(&self, stage: &str, route: &str) -> Arc<Series> {
        let mut g = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let (list, index) = &mut *g;
        if let Some(&i) = index.get(&(stage.to_string(), route.to_string())) {
            return list[i].clone();
        }
        let s = Arc::new(Series {
            stage: stage.to_string(),
            route: route.to_string(),
            authorizer: std::sync::Mutex::new(None),
            per_worker: (0..self.workers).map(|_| Counters::default()).collect(),
        });
        index.insert((stage.to_string(), route.to_string()), list.len());
        list.push(s.clone());
        s
    }

    /// Prometheus text exposition (format 0.0.4). `gauges` are extra
    /// `(name, help, labels, value)` lines (plan hash, reloads, …).
    pub fn render(&self, extra: &[(&str, &str, &str, &str, f64)]) -> String {
        let list: Vec<Arc<Series>> = {
            let g = self.series.lock().unwrap_or_else(|p| p.into_inner());
            g.0.clone()
        };
        let mut all: Vec<&Series> = list.iter().map(|s| &**s).collect();
        all.push(&self.unrouted);
        let sum = |s: &Series, f: &dyn Fn(&Counters) -> &AtomicU64| -> u64 {
            s.per_worker
                .iter()
                .map(|c| f(c).load(Ordering::Relaxed))
                .sum()
        };
        let mut out = String::with_capacity(4096);
        let labels =
            |s: &Series| format!("stage=\"{}\",route=\"{}\"", esc(&s.stage), esc(&s.route));

        out.push_str("# HELP turnpike_requests_total Requests by stage, route and status class (AWS Count, 4XXError, 5XXError).\n# TYPE turnpike_requests_total counter\n");
        for s in &all {
            for (i, class) in ["1xx", "2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
                let v = sum(s, &|c| &c.by_class[i]);
                let _ = writeln!(
                    out,
                    "turnpike_requests_total{{{},class=\"{class}\"}} {v}",
                    labels(s)
                );
            }
        }
        for (name, help, pick_buckets, pick_sum) in [
            (
                "turnpike_latency_seconds",
                "Time from a complete request head to the end of the response (AWS Latency).",
                0,
                0,
            ),
            (
                "turnpike_integration_latency_seconds",
                "Time from sending to the upstream to its response head (AWS IntegrationLatency).",
                1,
                1,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for s in &all {
                let l = labels(s);
                let mut cumulative = 0;
                for (i, le) in BUCKETS_US
                    .iter()
                    .map(|b| format!("{}", *b as f64 / 1e6))
                    .chain(["+Inf".to_string()])
                    .enumerate()
                {
                    cumulative += sum(s, &|c| {
                        if pick_buckets == 0 {
                            &c.latency[i]
                        } else {
                            &c.integration[i]
                        }
                    });
                    let _ = writeln!(out, "{name}_bucket{{{l},le=\"{le}\"}} {cumulative}");
                }
                let total_us = sum(s, &|c| {
                    if pick_sum == 0 {
                        &c.latency_sum_us
                    } else {
                        &c.integration_sum_us
                    }
                });
                let _ = writeln!(out, "{name}_sum{{{l}}} {}", total_us as f64 / 1e6);
                let _ = writeln!(out, "{name}_count{{{l}}} {cumulative}");
            }
        }
        out.push_str("# HELP turnpike_throttled_total Requests refused with 429 Too Many Requests, by the throttle scope that refused.\n# TYPE turnpike_throttled_total counter\n");
        for s in &all {
            for (i, scope) in SCOPES.iter().enumerate() {
                let v = sum(s, &|c| &c.throttled[i]);
                let _ = writeln!(
                    out,
                    "turnpike_throttled_total{{{},scope=\"{scope}\"}} {v}",
                    labels(s)
                );
            }
        }
        out.push_str("# HELP turnpike_quota_exceeded_total Requests refused with 429 Limit Exceeded.\n# TYPE turnpike_quota_exceeded_total counter\n");
        for s in &all {
            let _ = writeln!(
                out,
                "turnpike_quota_exceeded_total{{{}}} {}",
                labels(s),
                sum(s, &|c| &c.quota_exceeded)
            );
        }
        for (name, help, pick) in [
            ("turnpike_cache_hits_total", "Responses served from the stage's cache (including requests coalesced onto another's fill).", 0),
            ("turnpike_cache_misses_total", "Cacheable requests sent upstream (miss, stale entry, or client-requested refresh).", 1),
            ("turnpike_canary_requests_total", "Requests served through the stage's canary (the rest of the stage's requests went to its own variables).", 2),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for s in &all {
                let v = sum(s, &|c| match pick {
                    0 => &c.cache_hits,
                    1 => &c.cache_misses,
                    _ => &c.canary,
                });
                let _ = writeln!(out, "{name}{{{}}} {v}", labels(s));
            }
        }
        out.push_str("# HELP turnpike_authorizer_decisions_total Requests a route's authorizer allowed or refused, by reason.\n# TYPE turnpike_authorizer_decisions_total counter\n");
        for s in &all {
            let Some(name) = s.authorizer.lock().ok().and_then(|a| a.clone()) else {
                continue;
            };
            for (i, d) in AUTH_DECISIONS.iter().enumerate() {
                let v = sum(s, &|c| &c.auth[i]);
                let decision = match *d {
                    "allow" => "allow",
                    "authorizer_error" | "authorizer_timeout" => "error",
                    _ => "deny",
                };
                let reason = if i == 0 { "" } else { d };
                let _ = writeln!(
                    out,
                    "turnpike_authorizer_decisions_total{{{},authorizer=\"{}\",decision=\"{decision}\",reason=\"{reason}\"}} {v}",
                    labels(s),
                    esc(&name)
                );
            }
        }
        out.push_str("# HELP turnpike_access_log_dropped_total Access log lines dropped because the writer fell behind.\n# TYPE turnpike_access_log_dropped_total counter\n");
        let _ = writeln!(
            out,
            "turnpike_access_log_dropped_total {}",
            self.access_log_dropped.load(Ordering::Relaxed)
        );
        let by = |f: &dyn Fn(&ConnCounters) -> &[AtomicU64; 4], i: usize| -> u64 {
            self.connections
                .iter()
                .map(|c| f(c)[i].load(Ordering::Relaxed))
                .sum()
        };
        out.push_str("# HELP turnpike_connections_open Client connections open now, by protocol.\n# TYPE turnpike_connections_open gauge\n");
        for (i, p) in PROTOCOLS.iter().enumerate() {
            let v = by(&|c| &c.open, i);
            let _ = writeln!(out, "turnpike_connections_open{{protocol=\"{p}\"}} {v}");
        }
        out.push_str("# HELP turnpike_connections_accepted_total Client connections accepted, by protocol.\n# TYPE turnpike_connections_accepted_total counter\n");
        for (i, p) in PROTOCOLS.iter().enumerate() {
            let v = by(&|c| &c.accepted, i);
            let _ = writeln!(
                out,
                "turnpike_connections_accepted_total{{protocol=\"{p}\"}} {v}"
            );
        }
        self.render_targets(&mut out);
        let driver = self.driver.lock().map(|d| d.clone()).unwrap_or_default();
        out.push_str("# HELP turnpike_event_driver The event driver the workers run on.\n# TYPE turnpike_event_driver gauge\n");
        let _ = writeln!(
            out,
            "turnpike_event_driver{{driver=\"{}\"}} 1",
            esc(&driver)
        );
        for (name, help, kind, labels, v) in extra {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{labels} {v}"
            );
        }
        out
    }
}

/// Label value escaping (backslash, quote, newline).
pub fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_workers_and_buckets_cumulatively() {
        let m = MetricsStore::new(2);
        let s = m.series("prod", "GET /x");
        s.worker(0).observe(&Observation {
            status: 200,
            latency: Duration::from_millis(3),
            ..Default::default()
        });
        s.worker(1).observe(&Observation {
            status: 503,
            latency: Duration::from_millis(30),
            integration_latency: Some(Duration::from_millis(20)),
            ..Default::default()
        });
        let text = m.render(&[]);
        assert!(
            text.contains(
                "turnpike_requests_total{stage=\"prod\",route=\"GET /x\",class=\"2xx\"} 1"
            ),
            "{text}"
        );
        assert!(text
            .contains("turnpike_requests_total{stage=\"prod\",route=\"GET /x\",class=\"5xx\"} 1"));
        assert!(text.contains(
            "turnpike_latency_seconds_bucket{stage=\"prod\",route=\"GET /x\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "turnpike_latency_seconds_bucket{stage=\"prod\",route=\"GET /x\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains(
            "turnpike_integration_latency_seconds_count{stage=\"prod\",route=\"GET /x\"} 1"
        ));
        // the same labels give the same series (reloads keep counting)
        assert!(Arc::ptr_eq(&s, &m.series("prod", "GET /x")));
    }
}
