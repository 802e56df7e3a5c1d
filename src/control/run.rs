//! `turnpike run`: load, bind, start workers and the admin listener, then serve
//! signals: SIGHUP reloads, SIGTERM/SIGINT drain and exit 0.

use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;

use super::admin::{self, Admin};
use super::reload::{self, ConfigSource, ReloadStats};
use crate::cache::CacheStore;
use crate::limit::quota::QuotaStore;
use crate::observe::access_log;
use crate::observe::metrics::MetricsStore;
use crate::upstream::health::HealthStore;
use crate::worker::{self, listener, Shutdown, WorkerSpec};
use crate::{error, info, warn};

pub fn run(source: ConfigSource) -> i32 {
    let plan = match reload::load(&source) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    for w in &plan.warnings {
        warn!("{w}");
    }
    let g = plan.gateway.clone();
    let g_log = plan.access_log.as_ref().map(|(path, _)| path.clone());
    // Signals are blocked in every thread (inherited) and taken synchronously here.
    let signals = block_signals();

    let mut addrs = g.listen.clone();
    addrs.extend(&g.tls_listen);
    let (per_worker, bound) = match listener::bind_all(&addrs, g.workers) {
        Ok(r) => r,
        Err(e) => {
            error!("{e}");
            return 1;
        }
    };
    let quotas = Arc::new(open_quotas(&plan));
    let mut plan = plan;
    plan.bind_quotas(&quotas);
    let health = Arc::new(HealthStore::default());
    plan.bind_health(&health);
    let metrics = Arc::new(MetricsStore::new(g.workers));
    plan.bind_metrics(&metrics);
    let caches = Arc::new(CacheStore::default());
    plan.bind_caches(&caches);
    let jwks = Arc::new(crate::auth::jwks::JwksStore::default());
    jwks.start();
    plan.bind_jwks(&jwks);
    plan.start_aws_refresh();
    let handle = Arc::new(ArcSwap::from_pointee(plan));
    let shutdown = Arc::new(Shutdown::default());
    let stats = Arc::new(ReloadStats::default());

    let admin_addr = match g.admin {
        Some(addr) => {
            let a = Admin {
                plan: handle.clone(),
                source: source.clone(),
                shutdown: shutdown.clone(),
                stats: stats.clone(),
                quotas: quotas.clone(),
                metrics: metrics.clone(),
                caches: caches.clone(),
                jwks: jwks.clone(),
                health: health.clone(),
            };
            match admin::start(addr, a) {
                Ok(bound) => Some(bound),
                Err(e) => {
                    error!("admin listener: {e}");
                    return 1;
                }
            }
        }
        None => None,
    };

    let reopen_log = Arc::new(AtomicBool::new(false));
    let log = match &g_log {
        Some(path) => {
            match access_log::start(path, reopen_log.clone(), metrics.access_log_dropped.clone()) {
                Ok(sink) => Some(sink),
                Err(e) => {
                    error!("access log {path}: {e}");
                    return 1;
                }
            }
        }
        None => None,
    };

    let cores = worker::allowed_cores();
    let mut threads = Vec::new();
    for (id, listeners) in per_worker.into_iter().enumerate() {
        let spec = WorkerSpec {
            id,
            core: (!cores.is_empty()).then(|| cores[id % cores.len()]),
            listeners,
            plain: g.listen.len(),
            plan: handle.clone(),
            shutdown: shutdown.clone(),
            log: log.clone(),
            metrics: metrics.clone(),
        };
        match worker::spawn(spec) {
            Ok(t) => threads.push(t),
            Err(e) => {
                error!("cannot start worker {id}: {e}");
                return 1;
            }
        }
    }
    for (i, a) in bound.iter().enumerate() {
        info!(
            "listening on {a}{} ({} workers, config: {})",
            if i >= g.listen.len() { " (tls)" } else { "" },
            g.workers,
            source.describe()
        );
    }
    if let Some(a) = admin_addr {
        info!("admin listening on {a}");
    }
    spawn_quota_persister(quotas.clone(), shutdown.clone());
    if let Err(e) = crate::upstream::health::spawn(handle.clone(), shutdown.clone()) {
        error!("cannot start the health checker: {e}");
        return 1;
    }
    info!("ready");

    loop {
        match wait_signal(&signals) {
            libc::SIGHUP => {
                info!("SIGHUP: reloading {}", source.describe());
                let _ = reload::reload(
                    &handle, &source, &stats, &quotas, &metrics, &caches, &health, &jwks,
                );
            }
            libc::SIGUSR1 => {
                info!("SIGUSR1: reopening the access log");
                reopen_log.store(true, Ordering::Release);
            }
            libc::SIGTERM | libc::SIGINT => {
                info!("draining: no new connections, finishing in-flight requests");
                shutdown.start();
                break;
            }
            _ => {}
        }
    }
    for t in threads {
        let _ = t.join();
    }
    if let Err(e) = quotas.persist() {
        error!("{e}");
    }
    info!("drained; exiting");
    0
}

fn block_signals() -> libc::sigset_t {
    // SAFETY: the set is initialised by sigemptyset before use; pthread_sigmask only
    // reads it. Blocking before any thread starts makes every thread inherit the mask,
    // so these signals are delivered to `sigwait` here and nowhere else.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGHUP, libc::SIGTERM, libc::SIGINT, libc::SIGUSR1] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_signal(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: `set` is a valid initialised set and `sig` a valid out pointer.
    let rc = unsafe { libc::sigwait(set, &mut sig) };
    if rc != 0 {
        return 0;
    }
    sig
}

/// Opens the quota store in `state_dir`, saying clearly when counts will not survive
/// a restart. Never fails: quotas are still enforced in memory.
fn open_quotas(plan: &crate::plan::Plan) -> QuotaStore {
    let has_quotas = plan.key_info.iter().any(|k| k.quota.is_some());
    let dir = plan.gateway.state_dir.as_deref();
    if has_quotas && dir.is_none() {
        warn!("usage-plan quotas are kept in memory only: set [gateway].state_dir to keep them across restarts");
    }
    if let Some(d) = dir {
        if let Err(e) = std::fs::create_dir_all(d) {
            error!(
                "state_dir {}: {e}; quota counters will not be saved",
                d.display()
            );
        }
    }
    let (store, problem) = QuotaStore::open(dir);
    if let Some(p) = problem {
        error!("{p}");
    }
    if let Err(e) = store.persist() {
        error!("{e}; quotas are still enforced, but counts will not survive a restart until this is fixed");
    }
    store
}

/// Writes quota counters every second (a crash loses at most that), and reports a
/// write failure once a minute at most: a full disk must never stop traffic.
fn spawn_quota_persister(quotas: Arc<QuotaStore>, shutdown: Arc<Shutdown>) {
    let _ = std::thread::Builder::new()
        .name("turnpike-quota".into())
        .spawn(move || {
            let mut last_report: Option<std::time::Instant> = None;
            while !shutdown.is_draining() {
                std::thread::sleep(std::time::Duration::from_secs(1));
                if let Err(e) = quotas.persist() {
                    if last_report.is_none_or(|t| t.elapsed().as_secs() >= 60) {
                        error!("{e}");
                        last_report = Some(std::time::Instant::now());
                    }
                }
            }
        });
}
