//! Active health checks, once per node: one checker thread probes every target of
//! every upstream with a `health` table (`GET path`, its own timeout) at its interval,
//! and publishes the result as one atomic flag per target that all workers read.
//! Probes speak to a target as the workers do: over TLS when the upstream says
//! `tls = true`, in HTTP/2 when it says `protocol = "h2"`.
//! A target turns unhealthy after `unhealthy_after` failed checks in a row and healthy
//! again after `healthy_after` good ones; each transition is logged. Targets start
//! healthy, so a new gateway serves at once.
//!
//! Flags live in a [`HealthStore`] by upstream name and address, so they outlive
//! reloads. Cross-core state: an `AtomicBool` per target (read by workers), the rest
//! touched only by the checker thread. Tested end to end in `tests/upstream.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};

use super::TlsPeer;
use crate::plan::{HealthCheck, PlanHandle};
use crate::worker::Shutdown;
use crate::{info, warn};

/// One target's active health.
#[derive(Debug)]
pub struct TargetHealth {
    healthy: AtomicBool,
    /// Checker-only: results in a row and when the next check is due.
    run: Mutex<Run>,
}

#[derive(Debug)]
struct Run {
    good: u32,
    bad: u32,
    next: Instant,
}

impl TargetHealth {
    fn new() -> TargetHealth {
        TargetHealth {
            healthy: AtomicBool::new(true),
            run: Mutex::new(Run {
                good: 0,
                bad: 0,
                next: Instant::now(),
            }),
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

/// Every checked target's health, across reloads.
#[derive(Debug, Default)]
pub struct HealthStore {
    targets: Mutex<HashMap<(String, SocketAddr), Arc<TargetHealth>>>,
}

impl HealthStore {
    pub fn target(&self, upstream: &str, addr: SocketAddr) -> Arc<TargetHealth> {
        let mut g = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        g.entry((upstream.to_string(), addr))
            .or_insert_with(|| Arc::new(TargetHealth::new()))
            .clone()
    }
}

/// Starts the checker thread. It runs until the gateway drains.
pub fn spawn(plan: PlanHandle, shutdown: Arc<Shutdown>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("turnpike-health".into())
        .spawn(move || {
            // Probes run as tasks on a small runtime of this thread's own (epoll: it
            // must work wherever the gateway does), through the workers' connect
            // code, so TLS and HTTP/2 upstreams are checked as they are spoken to.
            let rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build();
            let mut rt = match rt {
                Ok(rt) => rt,
                Err(e) => {
                    warn!("active health checks are off: no runtime for them: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                while !shutdown.is_draining() {
                    round(&plan).await;
                    monoio::time::sleep(Duration::from_millis(50)).await;
                }
            });
        })?;
    Ok(())
}

/// One due probe.
struct Due {
    name: String,
    addr: SocketAddr,
    check: HealthCheck,
    tls: Option<TlsPeer>,
    h2: bool,
    health: Arc<TargetHealth>,
}

/// Probes every target whose check is due, all at once, and records the results.
async fn round(handle: &PlanHandle) {
    let plan = handle.load();
    let now = Instant::now();
    let mut due = Vec::new();
    for up in &plan.upstreams {
        let Some(check) = &up.health else { continue };
        for (i, (t, h)) in up.targets.iter().zip(&up.target_health).enumerate() {
            let Some(h) = h else { continue };
            let mut run = h.run.lock().unwrap_or_else(|p| p.into_inner());
            if run.next <= now {
                run.next = now + check.interval;
                due.push(Due {
                    name: up.name.clone(),
                    addr: t.addr,
                    check: check.clone(),
                    tls: up.tls.get(i).cloned().flatten(),
                    h2: up.h2,
                    health: h.clone(),
                });
            }
        }
    }
    drop(plan);
    let tasks: Vec<_> = due
        .into_iter()
        .map(|d| {
            monoio::spawn(async move {
                let result = probe(&d).await;
                record(&d.name, d.addr, &d.check, &d.health, result);
            })
        })
        .collect();
    for t in tasks {
        t.await;
    }
}

fn record(
    name: &str,
    addr: SocketAddr,
    check: &HealthCheck,
    h: &TargetHealth,
    result: Result<(), String>,
) {
    let mut run = h.run.lock().unwrap_or_else(|p| p.into_inner());
    match result {
        Ok(()) => {
            run.good += 1;
            run.bad = 0;
            if !h.is_healthy() && run.good >= check.healthy_after {
                h.healthy.store(true, Ordering::Relaxed);
                info!(
                    "upstream `{name}` target {addr} is healthy again ({} good checks in a row)",
                    run.good
                );
            }
        }
        Err(why) => {
            run.bad += 1;
            run.good = 0;
            if h.is_healthy() && run.bad >= check.unhealthy_after {
                h.healthy.store(false, Ordering::Relaxed);
                warn!(
                    "upstream `{name}` target {addr} is unhealthy ({} failed checks in a row, last: {why})",
                    run.bad
                );
            }
        }
    }
}

/// One check: `GET path`, healthy when the status is expected.
/// `GET path` on a new connection (or HTTP/2 session), within the check's timeout;
/// the status must be one the check expects.
async fn probe(d: &Due) -> Result<(), String> {
    match monoio::time::timeout(d.check.timeout, probe_now(d)).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {:?}", d.check.timeout)),
    }
}

async fn probe_now(d: &Due) -> Result<(), String> {
    let tls = d.tls.as_ref();
    let status = if d.h2 {
        let session = super::h2::connect(d.addr, d.check.timeout, tls)
            .await
            .map_err(|e| e.message().to_string())?;
        session
            .probe(&d.check.path, &d.addr.to_string(), tls.is_some())
            .await
            .map_err(|e| e.to_string())?
    } else {
        probe_h1(d).await?
    };
    let check = &d.check;
    let ok = if check.expect.is_empty() {
        (200..300).contains(&status)
    } else {
        check.expect.contains(&status)
    };
    if ok {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}

/// `GET path` over HTTP/1.1 on a new connection: the status line's code.
async fn probe_h1(d: &Due) -> Result<u16, String> {
    let mut io = super::connect(d.addr, d.check.timeout, d.tls.as_ref())
        .await
        .map_err(|e| e.message().to_string())?;
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: turnpike-health\r\nConnection: close\r\n\r\n",
        d.check.path, d.addr
    );
    let (res, _) = io.write_all(req.into_bytes()).await;
    res.map_err(|e| e.to_string())?;
    let mut got = Vec::with_capacity(64);
    while got.len() < 12 {
        let (res, buf) = io.read(Vec::with_capacity(64)).await;
        match res {
            Ok(0) => return Err("closed before a status line".into()),
            Ok(_) => got.extend_from_slice(&buf),
            Err(e) => return Err(e.to_string()),
        }
    }
    parse_status(&got).ok_or_else(|| "not an HTTP response".to_string())
}

fn parse_status(b: &[u8]) -> Option<u16> {
    let rest = b.strip_prefix(b"HTTP/1.")?.get(2..5)?;
    std::str::from_utf8(rest).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(parse_status(b"HTTP/1.0 503 Service"), Some(503));
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH"), None);
    }

    #[test]
    fn transitions_need_results_in_a_row() {
        let check = HealthCheck {
            path: "/".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            unhealthy_after: 3,
            healthy_after: 2,
            expect: vec![],
        };
        let h = TargetHealth::new();
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        for _ in 0..2 {
            record("u", a, &check, &h, Err("x".into()));
        }
        record("u", a, &check, &h, Ok(()));
        record("u", a, &check, &h, Err("x".into()));
        assert!(
            h.is_healthy(),
            "two failures, a success, one failure: still healthy"
        );
        for _ in 0..2 {
            record("u", a, &check, &h, Err("x".into()));
        }
        assert!(!h.is_healthy());
        record("u", a, &check, &h, Ok(()));
        assert!(!h.is_healthy());
        record("u", a, &check, &h, Ok(()));
        assert!(h.is_healthy());
    }

    #[test]
    fn a_refused_probe_fails_fast() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let check = HealthCheck {
            path: "/".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            unhealthy_after: 1,
            healthy_after: 1,
            expect: vec![],
        };
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        for h2 in [false, true] {
            let d = Due {
                name: "u".into(),
                addr,
                check: check.clone(),
                tls: None,
                h2,
                health: Arc::new(TargetHealth::new()),
            };
            let t0 = Instant::now();
            assert!(rt.block_on(probe(&d)).is_err());
            assert!(t0.elapsed() < Duration::from_secs(1));
        }
    }
}
