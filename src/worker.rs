//! Workers: one monoio runtime per core, pinned, each with its own `SO_REUSEPORT`
//! listeners, connection pools and per-request state (`state`). The connection loop
//! (`conn`) reads request heads and hands them to the pipeline.
//!
//! io_uring first, with COOP_TASKRUN + SINGLE_ISSUER + DEFER_TASKRUN where the kernel
//! offers them (measured 20–30% more req/s here), plain io_uring next, and the epoll
//! driver where io_uring is refused; the choice is logged once. Must never block:
//! anything slow (config loading, signals, the admin listener) lives on other threads.

pub mod conn;
pub mod drain;
mod h2;
pub mod listener;
pub mod state;

use crate::proto::tls::ClientIo;
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

use crate::plan::PlanHandle;
use crate::{info, warn};

pub use drain::Shutdown;
use state::WorkerState;

/// Which event driver a worker ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    IoUringTuned,
    IoUring,
    Legacy,
}

pub struct WorkerSpec {
    pub id: usize,
    pub core: Option<usize>,
    pub listeners: Vec<std::net::TcpListener>,
    /// The first this many listeners are plain; the rest are the plan's TLS
    /// listeners, in order.
    pub plain: usize,
    pub plan: PlanHandle,
    pub shutdown: Arc<Shutdown>,
    pub log: Option<crate::observe::access_log::LogSink>,
    pub metrics: Arc<crate::observe::metrics::MetricsStore>,
}

pub fn spawn(spec: WorkerSpec) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("turnpike-w{}", spec.id))
        .spawn(move || run(spec))
}

fn run(spec: WorkerSpec) {
    if let Some(core) = spec.core {
        pin_to_core(core);
    }
    let id = spec.id;
    // TURNPIKE_DRIVER=legacy|uring forces a driver (tests, comparisons, kernels
    // whose io_uring misbehaves); unset means: the best one the kernel accepts.
    let forced = std::env::var("TURNPIKE_DRIVER").unwrap_or_default();
    if forced != "legacy" {
        if forced != "uring" {
            match tuned_uring() {
                Ok(mut rt) => return rt.block_on(serve(spec, Driver::IoUringTuned)),
                Err(e) if id == 0 => {
                    warn!("io_uring with COOP_TASKRUN/SINGLE_ISSUER/DEFER_TASKRUN refused ({e}); trying plain io_uring")
                }
                Err(_) => {}
            }
        }
        match RuntimeBuilder::<IoUringDriver>::new()
            .with_entries(1024)
            .enable_timer()
            .build()
        {
            Ok(mut rt) => return rt.block_on(serve(spec, Driver::IoUring)),
            Err(e) if id == 0 => {
                warn!("io_uring refused by the kernel ({e}); using the epoll driver")
            }
            Err(_) => {}
        }
    }
    match RuntimeBuilder::<LegacyDriver>::new().enable_timer().build() {
        Ok(mut rt) => rt.block_on(serve(spec, Driver::Legacy)),
        Err(e) => crate::error!("worker {id}: no event driver could start: {e}"),
    }
}

fn tuned_uring() -> std::io::Result<monoio::Runtime<monoio::time::TimeDriver<IoUringDriver>>> {
    let mut b = io_uring::IoUring::builder();
    b.setup_coop_taskrun()
        .setup_single_issuer()
        .setup_defer_taskrun();
    RuntimeBuilder::<IoUringDriver>::new()
        .with_entries(1024)
        .uring_builder(b)
        .enable_timer()
        .build()
}

async fn serve(spec: WorkerSpec, driver: Driver) {
    if spec.id == 0 {
        info!("worker driver: {driver:?}");
    }
    if spec.id == 0 {
        if let Ok(mut d) = spec.metrics.driver.lock() {
            *d = format!("{driver:?}");
        }
    }
    let st = Rc::new(WorkerState::new(
        spec.id,
        spec.plan.clone(),
        spec.log.clone(),
        spec.metrics.clone(),
    ));
    monoio::spawn(drain::watch(spec.shutdown.clone(), st.clone()));
    if st.log.is_some() {
        monoio::spawn(flush_access_log(st.clone()));
    }
    monoio::spawn(snapshot_pools(st.clone()));
    for (i, l) in spec.listeners.into_iter().enumerate() {
        let tls = i.checked_sub(spec.plain);
        match monoio::net::TcpListener::from_std(l) {
            Ok(l) => {
                monoio::spawn(accept_loop(l, tls, st.clone()));
            }
            Err(e) => crate::error!("worker {}: cannot adopt listener: {e}", spec.id),
        }
    }
    st.drain.wait().await;
    let deadline = Instant::now() + st.plan.current().gateway.drain_timeout;
    while st.active.get() > 0 && Instant::now() < deadline {
        monoio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    if st.active.get() > 0 {
        warn!(
            "worker {}: drain deadline passed with {} connections open",
            spec.id,
            st.active.get()
        );
    }
    if let Some(log) = &st.log {
        log.flush();
    }
}

/// Publishes this worker's idle upstream connections for the metrics, every second.
async fn snapshot_pools(st: Rc<WorkerState>) {
    while !st.drain.is_draining() {
        let longest = st
            .plan
            .current()
            .upstreams
            .iter()
            .map(|u| u.idle_timeout)
            .fold(
                crate::pipeline::proxy::LITERAL_IDLE,
                std::time::Duration::max,
            );
        st.ctx.pools.prune(longest);
        st.metrics.set_idle(st.id, st.ctx.pools.snapshot());
        monoio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Hands this worker's partial access-log batch to the writer every 100 ms.
async fn flush_access_log(st: Rc<WorkerState>) {
    while !st.drain.is_draining() {
        monoio::time::sleep(crate::observe::access_log::FLUSH_EVERY).await;
        if let Some(log) = &st.log {
            log.flush();
        }
    }
}

/// Accepts connections; `tls` is the index of the plan's TLS listener this one is.
async fn accept_loop(listener: monoio::net::TcpListener, tls: Option<usize>, st: Rc<WorkerState>) {
    loop {
        let accept = std::pin::pin!(listener.accept());
        let accepted = match drain::race(accept, std::pin::pin!(st.drain.wait())).await {
            drain::Either::Left(r) => r,
            drain::Either::Right(()) => return,
        };
        match accepted {
            Ok((io, peer)) => {
                let _ = io.set_nodelay(true);
                match tls {
                    None => {
                        monoio::spawn(conn::serve(
                            ClientIo::Plain(io),
                            peer,
                            "http",
                            None,
                            st.clone(),
                        ));
                    }
                    Some(k) => {
                        monoio::spawn(tls_handshake(io, peer, k, st.clone()));
                    }
                }
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!("accept failed: {e}");
                monoio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Runs the TLS handshake (within the header timeout) with the current plan's
/// certificates for listener `k`, then serves the connection.
async fn tls_handshake(
    io: monoio::net::TcpStream,
    peer: std::net::SocketAddr,
    k: usize,
    st: Rc<WorkerState>,
) {
    let plan = st.plan.current();
    let Some(listener) = plan.tls.get(k) else {
        return;
    };
    let config = listener.config.clone();
    let timeout = plan.gateway.header_timeout;
    drop(plan);
    // a failed or slow handshake has nothing to answer: the client is let go
    let Ok(Ok((tcp, session))) =
        monoio::time::timeout(timeout, crate::proto::tls::handshake(io, config)).await
    else {
        return;
    };
    let client: Option<Rc<str>> = crate::proto::tls::client_subject(&session).map(Into::into);
    if session.alpn_protocol() == Some(&b"h2"[..]) {
        // HTTP/2: the session continues on the poll-style socket the h2 crate needs
        if let Ok(poll) = tcp.try_into_poll_io() {
            let _active = conn::active(&st, crate::observe::metrics::Protocol::H2);
            let io = crate::proto::h2::PollTls::new(poll, session);
            h2::serve(io, Vec::new(), peer, "https", client, st.clone()).await;
        }
        return;
    }
    let stream = monoio_rustls::ServerTlsStream::new(tcp, session);
    conn::serve(ClientIo::Tls(Box::new(stream)), peer, "https", client, st).await;
}

fn pin_to_core(core: usize) {
    // SAFETY: cpu_set_t is plain data; zeroed is a valid empty set, CPU_SET writes
    // within it for core < CPU_SETSIZE (checked), and sched_setaffinity(0, …) only
    // reads the set for the calling thread.
    unsafe {
        if core >= libc::CPU_SETSIZE as usize {
            return;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Cores this process may run on, in order (respects taskset and cgroups).
pub fn allowed_cores() -> Vec<usize> {
    // SAFETY: as in `pin_to_core`; sched_getaffinity fills the set we own.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}
