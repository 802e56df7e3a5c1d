//! Active health checks, once per node: one checker thread probes every target of
//! every upstream with a `health` table (`GET path`, its own timeout) at its interval,
//! and publishes the result as one atomic flag per target that all workers read.
//! A target turns unhealthy after `unhealthy_after` failed checks in a row and healthy
//! again after `healthy_after` good ones; each transition is logged. Targets start
//! healthy, so a new gateway serves at once.
//!
//! Flags live in a [`HealthStore`] by upstream name and address, so they outlive
//! reloads. Cross-core state: an `AtomicBool` per target (read by workers), the rest
//! touched only by the checker thread. Tested end to end in `tests/upstream.rs`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
            while !shutdown.is_draining() {
                round(&plan);
                std::thread::sleep(Duration::from_millis(50));
            }
        })?;
    Ok(())
}

/// Checks every target whose check is due, all at once (each within its timeout).
fn round(handle: &PlanHandle) {
    let plan = handle.load();
    let now = Instant::now();
    let mut due = Vec::new();
    for up in &plan.upstreams {
        let Some(check) = &up.health else { continue };
        for (t, h) in up.targets.iter().zip(&up.target_health) {
            let Some(h) = h else { continue };
            let mut run = h.run.lock().unwrap_or_else(|p| p.into_inner());
            if run.next <= now {
                run.next = now + check.interval;
                due.push((up.name.as_str(), t.addr, check, h.clone()));
            }
        }
    }
    if due.is_empty() {
        return;
    }
    std::thread::scope(|s| {
        for (name, addr, check, h) in &due {
            s.spawn(move || {
                let result = probe(*addr, check);
                record(name, *addr, check, h, result);
            });
        }
    });
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
fn probe(addr: SocketAddr, check: &HealthCheck) -> Result<(), String> {
    let deadline = Instant::now() + check.timeout;
    let mut s = TcpStream::connect_timeout(&addr, check.timeout).map_err(|e| e.to_string())?;
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    s.set_write_timeout(Some(left()))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: turnpike-health\r\nConnection: close\r\n\r\n",
        check.path
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        s.set_read_timeout(Some(left()))
            .map_err(|e| e.to_string())?;
        match s.read(&mut buf[n..]) {
            Ok(0) => return Err("closed before a status line".into()),
            Ok(k) => n += k,
            Err(e) => return Err(e.to_string()),
        }
    }
    let status = parse_status(&buf[..n]).ok_or("not an HTTP response")?;
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
        let t0 = Instant::now();
        assert!(probe(addr, &check).is_err());
        assert!(t0.elapsed() < Duration::from_secs(1));
    }
}
