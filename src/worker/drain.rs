//! Graceful drain: the node-wide flag (the one cross-core value here besides the
//! plan) and each worker's local wake-up of its accept loops and idle connections.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::state::WorkerState;

/// Set once by SIGTERM/SIGINT; read by every worker's watcher and the admin `/ready`.
#[derive(Debug, Default)]
pub struct Shutdown {
    draining: AtomicBool,
}

impl Shutdown {
    pub fn start(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

/// How often a worker looks at the node-wide flag. Draining is rare; a 50 ms tick
/// keeps cross-thread wake-ups out of the runtime.
const TICK: Duration = Duration::from_millis(50);

pub async fn watch(shutdown: Arc<Shutdown>, st: Rc<WorkerState>) {
    while !shutdown.is_draining() {
        monoio::time::sleep(TICK).await;
    }
    st.drain.trigger();
}

/// A worker-local one-shot signal many tasks can wait on.
#[derive(Debug, Default)]
pub struct LocalDrain {
    fired: Cell<bool>,
    next_id: Cell<u64>,
    waiters: RefCell<HashMap<u64, Waker>>,
}

impl LocalDrain {
    pub fn is_draining(&self) -> bool {
        self.fired.get()
    }

    pub fn trigger(&self) {
        self.fired.set(true);
        for (_, w) in self.waiters.borrow_mut().drain() {
            w.wake();
        }
    }

    pub fn wait(&self) -> DrainWait<'_> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        DrainWait { drain: self, id }
    }
}

pub struct DrainWait<'a> {
    drain: &'a LocalDrain,
    id: u64,
}

impl Future for DrainWait<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.drain.fired.get() {
            return Poll::Ready(());
        }
        self.drain
            .waiters
            .borrow_mut()
            .insert(self.id, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for DrainWait<'_> {
    fn drop(&mut self) {
        self.drain.waiters.borrow_mut().remove(&self.id);
    }
}

pub enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Polls both futures, left first; the loser is dropped (cancelling its I/O).
pub async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    })
    .await
}
