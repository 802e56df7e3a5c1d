//! Graceful drain: the node-wide flag (the one cross-core value here besides the
//! plan) and each worker's local wake-up of its accept loops and idle connections.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
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

/// A worker-local one-shot signal many tasks can wait on. Waiters live in a slab
/// (a slot per waiting task, reused through a free list): one idle connection
/// registers once per request, so this must cost no hashing and no allocation.
#[derive(Debug, Default)]
pub struct LocalDrain {
    fired: Cell<bool>,
    slots: RefCell<Vec<Option<Waker>>>,
    free: RefCell<Vec<usize>>,
}

impl LocalDrain {
    pub fn is_draining(&self) -> bool {
        self.fired.get()
    }

    pub fn trigger(&self) {
        self.fired.set(true);
        let wakers: Vec<Waker> = self
            .slots
            .borrow_mut()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for w in wakers {
            w.wake();
        }
    }

    pub fn wait(&self) -> DrainWait<'_> {
        DrainWait {
            drain: self,
            slot: None,
        }
    }

    fn register(&self, slot: &mut Option<usize>, waker: &Waker) {
        let mut slots = self.slots.borrow_mut();
        match *slot {
            Some(i) => match &mut slots[i] {
                Some(w) if w.will_wake(waker) => {}
                s => *s = Some(waker.clone()),
            },
            None => {
                let i = match self.free.borrow_mut().pop() {
                    Some(i) => i,
                    None => {
                        slots.push(None);
                        slots.len() - 1
                    }
                };
                slots[i] = Some(waker.clone());
                *slot = Some(i);
            }
        }
    }
}

pub struct DrainWait<'a> {
    drain: &'a LocalDrain,
    slot: Option<usize>,
}

impl Future for DrainWait<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.drain.fired.get() {
            return Poll::Ready(());
        }
        this.drain.register(&mut this.slot, cx.waker());
        Poll::Pending
    }
}

impl Drop for DrainWait<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            if let Some(s) = self.drain.slots.borrow_mut().get_mut(i) {
                *s = None;
            }
            self.drain.free.borrow_mut().push(i);
        }
    }
}

pub enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Polls both futures, left first; the caller drops the loser (cancelling its I/O).
/// The futures are pinned by the caller (`pin!`) and only borrowed here: taking them
/// by value would store each twice in this future, and the pipeline's is kilobytes.
pub async fn race<A: Future, B: Future>(
    mut a: Pin<&mut A>,
    mut b: Pin<&mut B>,
) -> Either<A::Output, B::Output> {
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
