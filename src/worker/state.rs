//! Everything one worker mutates: no locks, no atomics on the request path.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use crate::limit::Locals;
use crate::observe::access_log::{LogSink, WorkerLog};
use crate::observe::metrics::MetricsStore;
use crate::observe::request_id::IdGen;
use crate::pipeline::WorkerCtx;
use crate::plan::{Plan, PlanHandle};
use crate::upstream::balance::Balancers;
use crate::upstream::Pools;

use super::drain::LocalDrain;

pub struct WorkerState {
    pub ctx: WorkerCtx,
    pub plan: PlanView,
    pub drain: LocalDrain,
    /// Open client connections, for the drain.
    pub active: Cell<usize>,
    pub log: Option<WorkerLog>,
    pub id: usize,
    pub metrics: Arc<MetricsStore>,
    /// Past this many open connections, idle ones wait without holding buffers.
    pub low_memory_above: usize,
}

/// A random non-zero seed for the worker's canary draws.
fn seed(id: usize) -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(id) | 1
}

/// Open connections per worker past which idle connections trade one extra poll per
/// request for holding no buffers (10,000 idle connections: memory, not speed).
const LOW_MEMORY_ABOVE: usize = 1024;

impl WorkerState {
    pub fn new(
        id: usize,
        plan: PlanHandle,
        log: Option<LogSink>,
        metrics: Arc<MetricsStore>,
    ) -> Self {
        WorkerState {
            ctx: WorkerCtx {
                pools: Pools::default(),
                balancers: Balancers::new(id),
                ids: IdGen::from_entropy(id),
                locals: Locals::default(),
                rng: std::cell::Cell::new(seed(id)),
                tokens: Default::default(),
            },
            plan: PlanView::new(plan),
            drain: LocalDrain::default(),
            active: Cell::new(0),
            log: log.map(WorkerLog::new),
            id,
            metrics,
            // TURNPIKE_LOW_MEMORY_ABOVE overrides (tests exercise both paths)
            low_memory_above: std::env::var("TURNPIKE_LOW_MEMORY_ABOVE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(LOW_MEMORY_ABOVE),
        }
    }
}

/// The worker's view of the published plan. Checking for a new plan is one atomic
/// load (arc-swap's `Cache`); handing it to a request is a non-atomic `Rc` clone, so
/// cores never write to a shared reference count per request.
pub struct PlanView {
    cache: RefCell<arc_swap::Cache<PlanHandle, Arc<Plan>>>,
    // The extra allocation is once per reload per worker; it buys a non-atomic
    // reference count per request instead of a contended atomic one.
    #[allow(clippy::redundant_allocation)]
    local: RefCell<Rc<Arc<Plan>>>,
}

impl PlanView {
    pub fn new(handle: PlanHandle) -> Self {
        let first = handle.load_full();
        PlanView {
            cache: RefCell::new(arc_swap::Cache::new(handle)),
            local: RefCell::new(Rc::new(first)),
        }
    }

    /// The plan a new request should use; it keeps it until it finishes.
    #[allow(clippy::redundant_allocation)]
    pub fn current(&self) -> Rc<Arc<Plan>> {
        let mut cache = self.cache.borrow_mut();
        let latest = cache.load();
        let mut local = self.local.borrow_mut();
        if !Arc::ptr_eq(latest, &local) {
            *local = Rc::new(latest.clone());
        }
        local.clone()
    }
}
