//! Per worker, per target: how many connections are being made, and the requests
//! waiting for a connection (HAProxy's `maxconn` and queue, on connection attempts).
//!
//! A burst of concurrent requests to a target with no idle connection would
//! otherwise open one socket each at once; a small upstream's listen queue overflows,
//! its SYNs are dropped and the connects time out. Here at most `max_connecting`
//! connects run at once per target; the other requests queue, in order, and are woken
//! one at a time when a connection comes back to the pool or a connect finishes
//! (whichever comes first serves them). The queue is bounded and its wait timed by
//! the caller. Single-threaded (the worker's): `Rc`, `Cell`, wakers, no locks.
//!
//! Tested by the unit tests below and end to end by the burst tests (`tests/burst.rs`).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Poll, Waker};

type Key = (SocketAddr, u64);

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

#[derive(Debug, Default)]
struct Gate {
    connecting: u32,
    queue: VecDeque<Rc<Waiter>>,
}

#[derive(Debug, Default)]
pub struct Gates {
    gates: RefCell<HashMap<Key, Gate, std::hash::BuildHasherDefault<super::pool::AddrHasher>>>,
}

/// The queue is full: the request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

/// A connect in progress; when it drops, the next waiter is woken.
#[derive(Debug)]
pub struct Connecting<'g> {
    gates: &'g Gates,
    key: Key,
}

impl Drop for Connecting<'_> {
    fn drop(&mut self) {
        let mut gates = self.gates.gates.borrow_mut();
        if let Some(g) = gates.get_mut(&self.key) {
            g.connecting = g.connecting.saturating_sub(1);
            wake_one(g);
        }
    }
}

impl Gates {
    /// A connect slot for `key` if fewer than `max` connects are running there and
    /// nobody is queued ahead (`queued_turn`: the caller was woken from the queue).
    pub fn try_connect(&self, key: Key, max: u32, queued_turn: bool) -> Option<Connecting<'_>> {
        let mut gates = self.gates.borrow_mut();
        let g = gates.entry(key).or_default();
        if g.connecting >= max || (!queued_turn && !g.queue.is_empty()) {
            return None;
        }
        g.connecting += 1;
        Some(Connecting { gates: self, key })
    }

    /// Waits for a turn: a connection returned to the pool or a connect slot freed.
    /// `front`: the caller was woken already and lost its turn to another request,
    /// so it waits at the head of the queue. Refused at once past `max_queued`.
    pub async fn wait(&self, key: Key, max_queued: u32, front: bool) -> Result<(), QueueFull> {
        let me = Rc::new(Waiter::default());
        {
            let mut gates = self.gates.borrow_mut();
            let g = gates.entry(key).or_default();
            if g.queue.len() as u32 >= max_queued {
                return Err(QueueFull);
            }
            if front {
                g.queue.push_front(me.clone());
            } else {
                g.queue.push_back(me.clone());
            }
        }
        let mut guard = Queued {
            gates: self,
            key,
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

    /// A connection to `key` went back to the pool: the first waiter may take it.
    pub fn returned(&self, key: Key) {
        if let Some(g) = self.gates.borrow_mut().get_mut(&key) {
            wake_one(g);
        }
    }

    /// Requests waiting for `key` (for tests and metrics).
    pub fn queued(&self, key: Key) -> usize {
        self.gates.borrow().get(&key).map_or(0, |g| g.queue.len())
    }

    /// Forgets targets with nothing running and nobody waiting.
    pub fn prune(&self) {
        self.gates
            .borrow_mut()
            .retain(|_, g| g.connecting > 0 || !g.queue.is_empty());
    }
}

fn wake_one(g: &mut Gate) {
    if let Some(w) = g.queue.pop_front() {
        w.woken.set(true);
        if let Some(waker) = w.waker.take() {
            waker.wake();
        }
    }
}

/// A place in the queue; leaving it (a timeout, the client gone) gives a turn it was
/// handed but did not use to the next waiter.
struct Queued<'g> {
    gates: &'g Gates,
    key: Key,
    me: Rc<Waiter>,
    served: bool,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.served {
            return;
        }
        let mut gates = self.gates.gates.borrow_mut();
        let Some(g) = gates.get_mut(&self.key) else {
            return;
        };
        if self.me.woken.get() {
            wake_one(g);
        } else {
            g.queue.retain(|w| !Rc::ptr_eq(w, &self.me));
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
        let waker = Waker::noop();
        f.poll(&mut Context::from_waker(waker))
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
        // a newcomer does not jump the queue
        drop(a);
        assert!(g.try_connect(key(), 2, false).is_none());
        assert_eq!(poll(first.as_mut()), Poll::Ready(Ok(())));
        assert!(poll(second.as_mut()).is_pending());
        // the woken waiter gets the freed slot
        assert!(g.try_connect(key(), 2, true).is_some());
        g.returned(key());
        assert_eq!(poll(second.as_mut()), Poll::Ready(Ok(())));
        assert_eq!(g.queued(key()), 0);
    }

    #[test]
    fn the_queue_is_bounded_and_leaving_it_passes_the_turn_on() {
        let g = Gates::default();
        let _a = g.try_connect(key(), 1, false).unwrap();
        let mut first = Box::pin(g.wait(key(), 2, false));
        let mut second = pin!(g.wait(key(), 2, false));
        let mut third = pin!(g.wait(key(), 2, false));
        assert!(poll(first.as_mut()).is_pending());
        assert!(poll(second.as_mut()).is_pending());
        assert_eq!(poll(third.as_mut()), Poll::Ready(Err(QueueFull)));
        // the first is woken but gives up (its timeout fired): the second gets the turn
        g.returned(key());
        drop(first);
        assert_eq!(poll(second.as_mut()), Poll::Ready(Ok(())));
        g.prune();
    }
}
