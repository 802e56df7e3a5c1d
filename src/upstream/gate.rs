//! Per worker, per target: the connections requests are using, the connects under
//! way, and the requests waiting for a connection (HAProxy's `maxconn` and queue,
//! with the limit found by the gateway itself).
//!
//! A burst of concurrent requests to a target with no idle connection would
//! otherwise open one socket each at once; a small upstream's listen queue overflows
//! (Python's `http.server` has 5 places), its SYNs are dropped and the connects time
//! out. Two bounds prevent that:
//! - at most `max_connecting` connects run at once per target;
//! - an adaptive limit on connections in use (AIMD, as TCP's window): a connect whose
//!   SYN was lost (it takes many times the target's usual connect time, see
//!   [`TargetGate::lost_after`]) or that times out while other connections to the
//!   target are busy means the target's accept queue is full, not that it is down,
//!   so the limit is halved to what it was serving; a window of successful connects
//!   widens it again by one, at most every [`GROW_EVERY`]. It starts unbounded: a
//!   target that never overflows is never limited.
//!
//! A connect whose SYN was lost would wait for the kernel's retransmission, a whole
//! second (the initial RTO) later; the caller gives that socket up at
//! [`TargetGate::lost_after`] instead and queues again, under the lowered limit.
//!
//! Requests over either bound queue, in order, and are woken one at a time when a
//! connection comes back to the pool or closes, or a connect finishes. The queue is
//! bounded and its wait timed by the caller. Single-threaded (the worker's): `Rc`,
//! `Cell`, wakers, no locks.
//!
//! Tested by the unit tests below and end to end by the burst tests (`tests/burst.rs`).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

type Key = (SocketAddr, u64);

/// An adaptive limit at or above this is no limit.
const UNBOUNDED: u32 = u32::MAX;
/// Past this the limit is dropped again: nothing is being protected any more.
const FORGET_LIMIT_ABOVE: u32 = 1 << 16;
/// The limit grows by one at most this often (about what an overflow costs to see).
pub const GROW_EVERY: Duration = Duration::from_millis(100);
/// A connect is taken for lost after this many times the target's usual connect
/// time, and never before `LOST_AT_LEAST`.
const LOST_FACTOR: u32 = 8;
const LOST_AT_LEAST: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Waiter {
    woken: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("woken", &self.woken.get())
            .finish()
    }
}

/// One target's connections on one worker.
#[derive(Debug)]
pub struct TargetGate {
    /// Connections handed to requests (connecting ones included).
    busy: Cell<u32>,
    connecting: Cell<u32>,
    /// The adaptive limit on `busy` (`UNBOUNDED` until a connect overflows it).
    limit: Cell<u32>,
    /// Successful connects since the limit last grew.
    grown: Cell<u32>,
    /// When the limit last changed.
    changed: Cell<Instant>,
    /// Smoothed time of a successful connect, in microseconds (0: none yet).
    srtt_us: Cell<u32>,
    queue: RefCell<VecDeque<Rc<Waiter>>>,
}

impl Default for TargetGate {
    fn default() -> Self {
        TargetGate {
            busy: Cell::new(0),
            connecting: Cell::new(0),
            limit: Cell::new(UNBOUNDED),
            grown: Cell::new(0),
            changed: Cell::new(Instant::now()),
            srtt_us: Cell::new(0),
            queue: RefCell::default(),
        }
    }
}

impl TargetGate {
    /// A pooled connection goes to a request (no bound: it is open already).
    pub fn acquire(&self) {
        self.busy.set(self.busy.get() + 1);
    }

    /// A connection a request used is back in the pool or closed.
    pub fn release(&self) {
        self.busy.set(self.busy.get().saturating_sub(1));
        self.wake_one();
    }

    /// How long a connect may take before its SYN is taken for lost: many times the
    /// target's usual connect time (none known yet: never, `None`).
    pub fn lost_after(&self) -> Option<Duration> {
        match self.srtt_us.get() {
            0 => None,
            us => Some((Duration::from_micros(u64::from(us)) * LOST_FACTOR).max(LOST_AT_LEAST)),
        }
    }

    /// Halves the limit to what the target was serving beside this connect (with
    /// nothing else busy a connect failing says the target is down, not full).
    fn overflowed(&self) {
        let others = self.busy.get().saturating_sub(1);
        if others > 0 {
            self.limit.set((others.min(self.limit.get()) / 2).max(1));
            self.grown.set(0);
            self.changed.set(Instant::now());
        }
    }

    /// The adaptive limit on connections in use (`None`: unbounded).
    pub fn limit(&self) -> Option<u32> {
        (self.limit.get() != UNBOUNDED).then(|| self.limit.get())
    }

    fn wake_one(&self) {
        if let Some(w) = self.queue.borrow_mut().pop_front() {
            w.woken.set(true);
            if let Some(waker) = w.waker.take() {
                waker.wake();
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct Gates {
    gates: RefCell<
        HashMap<Key, Rc<TargetGate>, std::hash::BuildHasherDefault<super::pool::AddrHasher>>,
    >,
}

/// The queue is full: the request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// A connect in progress, counted as a busy connection; when it drops, the connect
/// is over (the connection, if made, is then counted by its [`TargetGate::acquire`]).
#[derive(Debug)]
pub struct Connecting {
    gate: Rc<TargetGate>,
}

impl Connecting {
    pub fn gate(&self) -> &Rc<TargetGate> {
        &self.gate
    }

    /// The connect succeeded after `took`: the limit, if any, widens by one per
    /// window of them (at most every [`GROW_EVERY`]).
    pub fn succeeded(&self, took: Duration) {
        let g = &self.gate;
        let us = took.as_micros().min(u128::from(u32::MAX / 2)) as u32;
        g.srtt_us.set(match g.srtt_us.get() {
            0 => us.max(1),
            s => (s - s / 8 + us / 8).max(1),
        });
        let limit = g.limit.get();
        if limit == UNBOUNDED {
            return;
        }
        g.grown.set(g.grown.get() + 1);
        if g.grown.get() >= limit && g.changed.get().elapsed() >= GROW_EVERY {
            g.grown.set(0);
            g.changed.set(Instant::now());
            g.limit.set(if limit + 1 > FORGET_LIMIT_ABOVE {
                UNBOUNDED
            } else {
                limit + 1
            });
        }
    }

    /// The connect timed out, or its SYN was lost: with other connections to the
    /// target busy, that is its accept queue overflowing. Returns the new limit when
    /// the target had none (the moment worth a log line).
    pub fn lost(&self) -> Option<u32> {
        let before = self.gate.limit();
        self.gate.overflowed();
        match (before, self.gate.limit()) {
            (None, Some(l)) => Some(l),
            _ => None,
        }
    }
}

impl Drop for Connecting {
    fn drop(&mut self) {
        let g = &self.gate;
        g.connecting.set(g.connecting.get().saturating_sub(1));
        g.release();
    }
}

impl Gates {
    pub fn gate(&self, key: Key) -> Rc<TargetGate> {
        self.gates.borrow_mut().entry(key).or_default().clone()
    }

    /// A connect slot for `key` if fewer than `max` connects are running, the
    /// adaptive limit has room, and nobody is queued ahead (`queued_turn`: the
    /// caller was woken from the queue).
    pub fn try_connect(&self, key: Key, max: u32, queued_turn: bool) -> Option<Connecting> {
        let gate = self.gate(key);
        if gate.connecting.get() >= max
            || gate.busy.get() >= gate.limit.get()
            || (!queued_turn && !gate.queue.borrow().is_empty())
        {
            return None;
        }
        gate.connecting.set(gate.connecting.get() + 1);
        gate.acquire();
        Some(Connecting { gate })
    }

    /// Waits for a turn: a connection returned to the pool or closed, or a connect
    /// slot freed. `front`: the caller was woken already and lost its turn to
    /// another request, so it waits at the head of the queue. Refused at once past
    /// `max_queued`.
    pub async fn wait(&self, key: Key, max_queued: u32, front: bool) -> Result<(), QueueFull> {
        let gate = self.gate(key);
        let me = Rc::new(Waiter::default());
        {
            let mut q = gate.queue.borrow_mut();
            if q.len() as u32 >= max_queued {
                return Err(QueueFull);
            }
            if front {
                q.push_front(me.clone());
            } else {
                q.push_back(me.clone());
            }
        }
        let mut guard = Queued {
            gate,
            me,
            served: false,
        };
        poll_fn(|cx| {
            if guard.me.woken.get() {
                Poll::Ready(())
            } else {
                guard.me.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
        guard.served = true;
        Ok(())
    }

    /// Requests waiting for `key` (for tests and metrics).
    pub fn queued(&self, key: Key) -> usize {
        self.gates
            .borrow()
            .get(&key)
            .map_or(0, |g| g.queue.borrow().len())
    }

    /// Per target address: requests queued and the adaptive limit (`None`:
    /// unbounded), for the metrics (once a second).
    pub fn snapshot(&self) -> Vec<(SocketAddr, usize, Option<u32>)> {
        let mut out: Vec<(SocketAddr, usize, Option<u32>)> = Vec::new();
        for ((addr, _), g) in self.gates.borrow().iter() {
            let (q, l) = (g.queue.borrow().len(), g.limit());
            match out.iter_mut().find(|(a, _, _)| a == addr) {
                Some((_, queued, limit)) => {
                    *queued += q;
                    *limit = match (*limit, l) {
                        (Some(a), Some(b)) => Some(a + b),
                        (a, b) => a.or(b),
                    };
                }
                None => out.push((*addr, q, l)),
            }
        }
        out
    }

    /// Forgets targets nobody uses, waits for or limits.
    pub fn prune(&self) {
        self.gates.borrow_mut().retain(|_, g| {
            Rc::strong_count(g) > 1 || g.busy.get() > 0 || g.limit.get() != UNBOUNDED
        });
    }
}

/// A place in the queue; leaving it (a timeout, the client gone) gives a turn it was
/// handed but did not use to the next waiter.
struct Queued {
    gate: Rc<TargetGate>,
    me: Rc<Waiter>,
    served: bool,
}

impl Drop for Queued {
    fn drop(&mut self) {
        if self.served {
            return;
        }
        if self.me.woken.get() {
            self.gate.wake_one();
        } else {
            self.gate
                .queue
                .borrow_mut()
                .retain(|w| !Rc::ptr_eq(w, &self.me));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::Context;

    fn key() -> Key {
        ("127.0.0.1:1".parse().unwrap(), 0)
    }

    fn poll<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn connects_are_bounded_and_waiters_served_in_order() {
        let g = Gates::default();
        let a = g.try_connect(key(), 2, false).unwrap();
        let _b = g.try_connect(key(), 2, false).unwrap();
        assert!(g.try_connect(key(), 2, false).is_none());
        let mut first = pin!(g.wait(key(), 10, false));
        let mut second = pin!(g.wait(key(), 10, false));
        assert!(poll(first.as_mut()).is_pending());
        assert!(poll(second.as_mut()).is_pending());
        assert_eq!(g.queued(key()), 2);
        // a connect ends (its connection now counted by acquire): the first is woken
        a.gate().acquire();
        drop(a);
        // a newcomer does not jump the queue
        assert!(g.try_connect(key(), 2, false).is_none());
        assert_eq!(poll(first.as_mut()), Poll::Ready(Ok(())));
        assert!(poll(second.as_mut()).is_pending());
        // the woken waiter gets the freed slot
        let c = g.try_connect(key(), 2, true).unwrap();
        // a connection released wakes the next
        c.gate().release();
        assert_eq!(poll(second.as_mut()), Poll::Ready(Ok(())));
        assert_eq!(g.queued(key()), 0);
    }

    #[test]
    fn the_queue_is_bounded_and_leaving_it_passes_the_turn_on() {
        let g = Gates::default();
        let a = g.try_connect(key(), 1, false).unwrap();
        let mut first = Box::pin(g.wait(key(), 2, false));
        let mut second = pin!(g.wait(key(), 2, false));
        let mut third = pin!(g.wait(key(), 2, false));
        assert!(poll(first.as_mut()).is_pending());
        assert!(poll(second.as_mut()).is_pending());
        assert_eq!(poll(third.as_mut()), Poll::Ready(Err(QueueFull)));
        // the first is woken but gives up (its timeout fired): the second gets the turn
        drop(a);
        drop(first);
        assert_eq!(poll(second.as_mut()), Poll::Ready(Ok(())));
    }

    #[test]
    fn a_connect_timing_out_beside_busy_connections_halves_the_limit() {
        let g = Gates::default();
        let gate = g.gate(key());
        for _ in 0..40 {
            gate.acquire();
        }
        assert_eq!(gate.limit(), None);
        let c = g.try_connect(key(), 8, false).unwrap();
        c.lost();
        drop(c);
        assert_eq!(gate.limit(), Some(20));
        // 40 busy: no new connection until 20 are released
        assert!(g.try_connect(key(), 8, false).is_none());
        for _ in 0..21 {
            gate.release();
        }
        let c = g.try_connect(key(), 8, false).unwrap();
        // a window of successes widens it by one, once per GROW_EVERY
        for _ in 0..40 {
            c.succeeded(Duration::from_micros(80));
        }
        assert_eq!(gate.limit(), Some(20));
        std::thread::sleep(GROW_EVERY);
        for _ in 0..40 {
            c.succeeded(Duration::from_micros(80));
        }
        assert_eq!(gate.limit(), Some(21));
        // a SYN is taken for lost after 8 times the usual connect time, 50 ms at least
        assert_eq!(gate.lost_after(), Some(Duration::from_millis(50)));
        for _ in 0..100 {
            c.succeeded(Duration::from_millis(20));
        }
        let lost = gate.lost_after().unwrap();
        assert!(
            lost > Duration::from_millis(150) && lost <= Duration::from_millis(160),
            "{lost:?}"
        );
        // a lone connect timing out (nothing else busy) is a dead target, not a full one
        drop(c);
        for _ in 0..19 {
            gate.release();
        }
        let c = g.try_connect(key(), 8, false).unwrap();
        c.lost();
        assert_eq!(gate.limit(), Some(21));
    }
}
