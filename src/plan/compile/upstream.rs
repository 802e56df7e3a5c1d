//! `[upstreams.NAME]` → `Upstream`: targets, balancing (with the consistent-hash ring),
//! active health checks, outlier detection, retries and circuit-breaking limits.

use std::time::Duration;

use super::{at, duration, socket_addr, Ctx};
use crate::config::{model, Entry, Sources};
use crate::plan::{Balance, HashOn, HealthCheck, Outlier, Upstream, WeightedAddr};
use crate::upstream::balance::ring_hash;
use crate::upstream::tls::client_config;
use crate::upstream::TlsPeer;

/// Ring points per unit of weight: enough that each target's share of the ring is
/// within a few percent of its weight's.
const POINTS_PER_WEIGHT: u32 = 160;
/// Envoy's default is 10%: ejection must never take a large part of a pool out.
const DEFAULT_MAX_EJECTION_PERCENT: u32 = 10;
/// Connects at once to one target, node-wide: a small server's listen queue (Python's
/// `http.server` has 5) takes this many without dropping SYNs; requests beyond it
/// wait for a connection, which a keep-alive upstream hands back in microseconds.
const DEFAULT_MAX_CONNECTING: u32 = 8;
/// Requests per target, node-wide, that may wait for a connection.
const DEFAULT_MAX_QUEUED: u32 = 4096;
/// HAProxy's `timeout queue` defaults to its connect timeout; a burst needs longer.
const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn compile(
    cx: &mut Ctx,
    list: &[Entry<model::Upstream>],
    workers: usize,
    sources: &Sources,
) -> Vec<Upstream> {
    let mut out = Vec::new();
    for e in list {
        let v = &e.value;
        let mut targets = Vec::new();
        let mut hosts = Vec::new();
        for t in &v.targets {
            let (addr, weight) = match t.get_ref() {
                model::Target::Addr(a) => (a.as_str(), 1),
                model::Target::Weighted(w) => (w.addr.as_str(), w.weight),
            };
            if !(1..=1000).contains(&weight) {
                cx.err(at(e, t.span()), "weight must be between 1 and 1000", None);
                continue;
            }
            match socket_addr(addr, 80) {
                Ok(addr) if targets.iter().any(|t: &WeightedAddr| t.addr == addr) => cx.err(
                    at(e, t.span()),
                    format!("target {addr} is listed twice"),
                    None,
                ),
                Ok(addr) => {
                    targets.push(WeightedAddr { addr, weight });
                    hosts.push(host_of(addr_str(t.get_ref())).to_string());
                }
                Err(msg) => cx.err(at(e, t.span()), msg, None),
            }
        }
        if targets.len() > 64 {
            cx.err(
                e.at.clone(),
                format!(
                    "upstream `{}` has {} targets; at most 64",
                    e.name,
                    targets.len()
                ),
                None,
            );
        }
        if v.targets.is_empty() {
            cx.err(
                e.at.clone(),
                format!("upstream `{}` has no targets", e.name),
                None,
            );
        }
        let balance = match &v.balance {
            None => Balance::RoundRobin,
            Some(b) => parse_balance(b.get_ref()).unwrap_or_else(|msg| {
                cx.err(at(e, b.span()), msg, Some("round_robin | least_requests | random2 | hash(header.NAME) | hash(query.NAME) | hash(ip)"));
                Balance::RoundRobin
            }),
        };
        let health = v.health.as_ref().map(|h| {
            let hv = h.get_ref();
            if !hv.path.starts_with('/') || hv.path.bytes().any(|b| b <= b' ' || b == 0x7f) {
                cx.err(
                    at(e, h.span()),
                    format!(
                        "health path `{}` must start with `/` and contain no spaces",
                        hv.path
                    ),
                    None,
                );
            }
            let check = HealthCheck {
                path: hv.path.clone(),
                interval: duration(cx, e, &hv.interval, Duration::from_secs(2)),
                timeout: duration(cx, e, &hv.timeout, Duration::from_secs(1)),
                unhealthy_after: hv.unhealthy_after.unwrap_or(3).max(1),
                healthy_after: hv.healthy_after.unwrap_or(2).max(1),
                expect: hv.expect.clone().unwrap_or_default(),
            };
            if check.interval < Duration::from_millis(100) {
                cx.err(
                    at(e, h.span()),
                    "health interval must be at least 100ms",
                    None,
                );
            }
            check
        });
        let outlier = match &v.outlier {
            None => Outlier {
                consecutive: 5,
                base_ejection: Duration::from_secs(10),
                max_ejection: Duration::from_secs(300),
                max_ejection_percent: DEFAULT_MAX_EJECTION_PERCENT,
            },
            Some(o) => {
                let pct = o
                    .max_ejection_percent
                    .unwrap_or(DEFAULT_MAX_EJECTION_PERCENT);
                if pct > 100 {
                    cx.err(
                        e.at.clone(),
                        format!(
                            "upstream `{}`: outlier.max_ejection_percent must be between 0 and 100",
                            e.name
                        ),
                        None,
                    );
                }
                Outlier {
                    consecutive: o.consecutive.unwrap_or(5),
                    base_ejection: duration(cx, e, &o.base_ejection, Duration::from_secs(10)),
                    max_ejection: duration(cx, e, &o.max_ejection, Duration::from_secs(300)),
                    max_ejection_percent: pct.min(100),
                }
            }
        };
        let retry_budget = v.retry_budget.unwrap_or(0.2);
        if !(0.0..=1.0).contains(&retry_budget) {
            cx.err(
                e.at.clone(),
                format!(
                    "upstream `{}`: retry_budget must be between 0.0 and 1.0",
                    e.name
                ),
                None,
            );
        }
        let per_worker = |n: u32| n.div_ceil(workers.max(1) as u32).max(1);
        let max_in_flight = v.max_connections.map(per_worker);
        let max_pending = match (v.max_pending, max_in_flight) {
            (Some(0), _) => 0,
            (Some(p), _) => per_worker(p),
            (None, Some(m)) => m,
            (None, None) => 0,
        };
        let ring = ring_points(&targets);
        let n = targets.len();
        let h2 = match v.protocol.as_ref() {
            None => false,
            Some(p) => match p.get_ref().as_str() {
                "http/1.1" => false,
                "h2" => true,
                other => {
                    cx.err(
                        at(e, p.span()),
                        format!("unknown upstream protocol `{other}`"),
                        Some("\"http/1.1\" | \"h2\" (HTTP/2: h2c with prior knowledge, or over TLS with `tls = true`)"),
                    );
                    false
                }
            },
        };
        let tls = upstream_tls(cx, e, sources, &hosts, h2);
        out.push(Upstream {
            name: e.name.clone(),
            targets,
            connect_timeout: duration(cx, e, &v.connect_timeout, Duration::from_secs(1)),
            retries: v.retries.unwrap_or(1).min(10),
            retry_budget,
            balance,
            ring,
            health,
            outlier,
            max_in_flight,
            max_pending,
            max_requests_per_connection: v.max_requests_per_connection.filter(|&n| n > 0),
            idle_timeout: duration(cx, e, &v.idle_timeout, Duration::from_secs(30)),
            max_connecting: per_worker(v.max_connecting.unwrap_or(DEFAULT_MAX_CONNECTING).max(1)),
            max_queued: per_worker(v.max_queued.unwrap_or(DEFAULT_MAX_QUEUED)),
            queue_timeout: duration(cx, e, &v.queue_timeout, DEFAULT_QUEUE_TIMEOUT),
            target_health: vec![None; n],
            target_series: vec![None; n],
            tls,
            h2,
        });
    }
    out
}

/// The TLS peers of an upstream's targets (`tls = true`), or none.
fn upstream_tls(
    cx: &mut Ctx,
    e: &Entry<model::Upstream>,
    sources: &Sources,
    hosts: &[String],
    h2: bool,
) -> Vec<Option<TlsPeer>> {
    let v = &e.value;
    if !v.tls {
        for s in [&v.tls_ca, &v.tls_server_name].into_iter().flatten() {
            cx.err(
                at(e, s.span()),
                "tls_ca and tls_server_name need `tls = true`",
                None,
            );
        }
        return vec![None; hosts.len()];
    }
    let (config, ca_id) = match &v.tls_ca {
        Some(ca) => {
            // relative to the file that names it
            let path = super::dir_of(sources, e).join(ca.get_ref());
            match client_config(Some(&path)) {
                Ok((c, _)) => (c, path.display().to_string()),
                Err(msg) => {
                    cx.err(at(e, ca.span()), msg, None);
                    return vec![None; hosts.len()];
                }
            }
        }
        None => match cx.system_tls() {
            Some(c) => (c, String::new()),
            None => return vec![None; hosts.len()],
        },
    };
    let config = if h2 {
        // HTTP/2 upstreams are asked for `h2` alone in ALPN
        let mut c = (*config).clone();
        c.alpn_protocols = vec![b"h2".to_vec()];
        std::sync::Arc::new(c)
    } else {
        config
    };
    hosts
        .iter()
        .map(|h| {
            let name = v
                .tls_server_name
                .as_ref()
                .map_or(h.as_str(), |n| n.get_ref());
            match TlsPeer::new(config.clone(), &ca_id, name) {
                Ok(p) => Some(p),
                Err(msg) => {
                    let span = v
                        .tls_server_name
                        .as_ref()
                        .map_or(e.at.span.clone(), |n| n.span());
                    cx.err(at(e, span), msg, None);
                    None
                }
            }
        })
        .collect()
}

fn addr_str(t: &model::Target) -> &str {
    match t {
        model::Target::Addr(a) => a,
        model::Target::Weighted(w) => &w.addr,
    }
}

/// The host part of `host:port`, `[v6]:port` or `host`.
pub(super) fn host_of(s: &str) -> &str {
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match s.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => s,
    }
}

fn parse_balance(s: &str) -> Result<Balance, String> {
    Ok(match s {
        "round_robin" => Balance::RoundRobin,
        "least_requests" => Balance::LeastRequests,
        "random2" => Balance::Random2,
        "hash(ip)" => Balance::Hash(HashOn::Ip),
        _ => {
            let inner = s
                .strip_prefix("hash(")
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("unknown balance `{s}`"))?;
            let valid = |n: &str| {
                !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            };
            if let Some(h) = inner.strip_prefix("header.").filter(|n| valid(n)) {
                Balance::Hash(HashOn::Header(h.to_ascii_lowercase().into_bytes()))
            } else if let Some(q) = inner.strip_prefix("query.").filter(|n| valid(n)) {
                Balance::Hash(HashOn::Query(q.as_bytes().to_vec()))
            } else {
                return Err(format!("unknown balance `{s}`"));
            }
        }
    })
}

/// The consistent-hash ring: `POINTS_PER_WEIGHT × weight` points per target, placed
/// by hashing the target's address, so every node and worker builds the same ring
/// and a target leaving moves only the keys that were on its points.
fn ring_points(targets: &[WeightedAddr]) -> Vec<(u64, u32)> {
    let mut ring = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        for j in 0..POINTS_PER_WEIGHT * t.weight {
            ring.push((ring_hash(format!("{}#{j}", t.addr).as_bytes()), i as u32));
        }
    }
    ring.sort_unstable();
    ring
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_names() {
        assert_eq!(parse_balance("random2"), Ok(Balance::Random2));
        assert_eq!(
            parse_balance("hash(header.X-User)"),
            Ok(Balance::Hash(HashOn::Header(b"x-user".to_vec())))
        );
        assert_eq!(
            parse_balance("hash(query.id)"),
            Ok(Balance::Hash(HashOn::Query(b"id".to_vec())))
        );
        for bad in [
            "hash()",
            "hash(cookie.a)",
            "hash(header.)",
            "fastest",
            "hash(header.a b)",
        ] {
            assert!(parse_balance(bad).is_err(), "{bad}");
        }
    }
}
