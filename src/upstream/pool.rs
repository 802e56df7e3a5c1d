//! Per-worker keep-alive pools of upstream connections, keyed by target address and
//! TLS identity: idle HTTP/1.1 connections, and one HTTP/2 session per target.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::proto::io::ReadBuf;

use super::h2::Session;
use super::UpIo;

/// Most idle connections kept per target per worker.
const MAX_IDLE_PER_TARGET: usize = 512;

/// An upstream connection and the bytes read from it but not yet consumed.
#[derive(Debug)]
pub struct UpConn {
    pub io: UpIo,
    pub rbuf: ReadBuf,
    pub addr: SocketAddr,
    /// The TLS identity it was made with (0: plain), part of the pool's key.
    pub tls_key: u64,
    /// True when it came from the pool (it may have been closed by the peer meanwhile).
    pub reused: bool,
    /// Requests sent on it so far.
    pub served: u32,
    /// The upstream's `max_requests_per_connection`: past it, the pool closes it.
    pub max_requests: Option<u32>,
    idle_since: Instant,
    /// Its target's gate (HTTP/1.1), told while a request uses the connection.
    gate: Option<std::rc::Rc<super::gate::TargetGate>>,
    busy: bool,
}

impl Drop for UpConn {
    fn drop(&mut self) {
        self.idle();
    }
}

impl UpConn {
    pub fn new(io: UpIo, addr: SocketAddr, tls_key: u64) -> Self {
        UpConn {
            io,
            tls_key,
            // room for a typical response head and a body of a few pages in one read
            rbuf: ReadBuf::with_capacity(32 << 10),
            addr,
            reused: false,
            served: 0,
            max_requests: None,
            idle_since: Instant::now(),
            gate: None,
            busy: false,
        }
    }

    /// Counts the connection against its target's gate while a request uses it.
    pub fn in_use(&mut self, gate: std::rc::Rc<super::gate::TargetGate>) {
        gate.acquire();
        self.gate = Some(gate);
        self.busy = true;
    }

    /// No request uses it any more (back in the pool, or closing).
    fn idle(&mut self) {
        if std::mem::take(&mut self.busy) {
            if let Some(g) = &self.gate {
                g.release();
            }
        }
    }
}

/// A session being made (see [`Pools::connecting`]).
#[derive(Debug)]
pub struct Connecting<'p> {
    pools: &'p Pools,
    key: (SocketAddr, u64),
}

impl Drop for Connecting<'_> {
    fn drop(&mut self) {
        let mut c = self.pools.connecting.borrow_mut();
        if let Some(i) = c.iter().position(|k| *k == self.key) {
            c.swap_remove(i);
        }
    }
}

/// One worker's view of a target, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetSnapshot {
    pub addr: SocketAddr,
    pub idle: usize,
    pub queued: usize,
    /// The gate's adaptive limit on connections in use (`None`: unbounded).
    pub limit: Option<u32>,
}

/// Keys are target addresses from the plan, not from clients: a fast, non-keyed
/// hash is safe here, and SipHash showed up in the per-request profile.
#[derive(Debug, Default, Clone, Copy)]
pub struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type Map<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<AddrHasher>>;

#[derive(Debug, Default)]
pub struct Pools {
    idle: RefCell<Map<(SocketAddr, u64), Vec<UpConn>>>,
    /// With the upstream's `idle_timeout` each was made under.
    sessions: RefCell<Map<(SocketAddr, u64), (Session, Duration)>>,
    /// Targets an HTTP/2 session is being made to: other requests wait for it.
    connecting: RefCell<Vec<(SocketAddr, u64)>>,
    /// HTTP/1.1 connects in progress and requests queued for a connection, per target.
    pub gates: super::gate::Gates,
}

impl Pools {
    /// The most recently used idle connection to `addr` that has been idle less than
    /// `max_idle` (the upstream's `idle_timeout`: below the usual 60–75 s upstream
    /// keep-alive timeouts, so a request is rarely sent on a connection being closed).
    pub fn take(&self, addr: SocketAddr, tls_key: u64, max_idle: Duration) -> Option<UpConn> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(&(addr, tls_key))?;
        let now = Instant::now();
        while let Some(mut c) = list.pop() {
            if now.duration_since(c.idle_since) < max_idle {
                c.reused = true;
                if let Some(g) = &c.gate {
                    g.acquire();
                    c.busy = true;
                }
                return Some(c);
            }
        }
        None
    }

    /// The HTTP/2 session to `addr` if it can take another stream (see
    /// [`Session::usable`]); a session that cannot is let go (its open streams
    /// finish on it).
    pub fn session(
        &self,
        addr: SocketAddr,
        tls_key: u64,
        max_idle: Duration,
        max_streams: Option<u32>,
    ) -> Option<Session> {
        let mut sessions = self.sessions.borrow_mut();
        let (s, _) = sessions.get(&(addr, tls_key))?;
        if s.usable(max_idle, max_streams) {
            return Some(s.clone());
        }
        sessions.remove(&(addr, tls_key));
        None
    }

    /// Whether a session to `addr` is being made.
    pub fn is_connecting(&self, addr: SocketAddr, tls_key: u64) -> bool {
        self.connecting.borrow().contains(&(addr, tls_key))
    }

    /// Marks a session to `addr` as being made, until the guard drops.
    pub fn connecting(&self, addr: SocketAddr, tls_key: u64) -> Connecting<'_> {
        self.connecting.borrow_mut().push((addr, tls_key));
        Connecting {
            pools: self,
            key: (addr, tls_key),
        }
    }

    /// Keeps a new HTTP/2 session for the next requests to `addr`.
    pub fn put_session(&self, addr: SocketAddr, tls_key: u64, s: Session, max_idle: Duration) {
        self.sessions
            .borrow_mut()
            .insert((addr, tls_key), (s, max_idle));
    }

    /// Closes HTTP/2 sessions unused past their upstream's `idle_timeout`, and idle
    /// connections unused for `max_idle` (the longest `idle_timeout` of the plan: a
    /// request would not take them any more), including those of targets a reload
    /// removed. Run once a second.
    pub fn prune(&self, max_idle: Duration) {
        let now = Instant::now();
        self.idle.borrow_mut().retain(|_, list| {
            list.retain(|c| now.duration_since(c.idle_since) < max_idle);
            !list.is_empty()
        });
        self.sessions
            .borrow_mut()
            .retain(|_, (s, max_idle)| !s.stale(*max_idle));
        self.gates.prune();
    }

    /// Returns a connection whose last exchange ended cleanly.
    pub fn put(&self, mut conn: UpConn) {
        if matches!(conn.io, UpIo::H2(_)) {
            // a stream: its session stays in `sessions`
            return;
        }
        if !conn.rbuf.is_empty() {
            // The upstream sent bytes nobody asked for: the connection is not clean.
            return;
        }
        if conn.max_requests.is_some_and(|m| conn.served >= m) {
            return;
        }
        conn.idle_since = Instant::now();
        conn.idle();
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry((conn.addr, conn.tls_key)).or_default();
        if list.len() < MAX_IDLE_PER_TARGET {
            list.push(conn);
        }
    }

    pub fn idle_count(&self) -> usize {
        self.idle.borrow().values().map(Vec::len).sum()
    }

    /// Per target address: idle connections, requests queued for one, and the
    /// adaptive connection limit (for the metrics, once a second).
    pub fn snapshot(&self) -> Vec<TargetSnapshot> {
        let mut by: Vec<TargetSnapshot> = Vec::new();
        for ((addr, _), list) in self.idle.borrow().iter() {
            match by.iter_mut().find(|t| t.addr == *addr) {
                Some(t) => t.idle += list.len(),
                None => by.push(TargetSnapshot {
                    addr: *addr,
                    idle: list.len(),
                    queued: 0,
                    limit: None,
                }),
            }
        }
        for (addr, queued, limit) in self.gates.snapshot() {
            match by.iter_mut().find(|t| t.addr == addr) {
                Some(t) => {
                    t.queued = queued;
                    t.limit = limit;
                }
                None => by.push(TargetSnapshot {
                    addr,
                    idle: 0,
                    queued,
                    limit,
                }),
            }
        }
        by
    }
}
