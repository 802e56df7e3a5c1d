//! Loading a plan and swapping it in. A reload that fails changes nothing and says why.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::cache::CacheStore;
use crate::config::{self, Errors};
use crate::limit::quota::QuotaStore;
use crate::observe::metrics::MetricsStore;
use crate::plan::{self, Plan, PlanHandle};
use crate::upstream::health::HealthStore;
use crate::{error, info, warn};

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    /// The built-in quickstart.
    Builtin,
}

impl ConfigSource {
    pub fn describe(&self) -> String {
        match self {
            ConfigSource::File(p) => p.display().to_string(),
            ConfigSource::Builtin => "built-in quickstart".into(),
        }
    }
}

/// Reads and compiles a plan.
pub fn load(source: &ConfigSource) -> Result<Plan, Errors> {
    let cfg = match source {
        ConfigSource::File(p) => config::load_file(p)?,
        ConfigSource::Builtin => config::load_str("quickstart.toml", config::QUICKSTART)?,
    };
    let cores = crate::worker::allowed_cores().len().max(1);
    let plan = plan::compile(cfg, cores);
    release_parse_memory();
    plan
}

/// Parsing a large config (100,000 keys) allocates hundreds of MB on this thread that
/// are free once the plan is compiled; mimalloc would keep those pages for reuse.
/// Hand them back now: loads are rare, and RSS is what operators watch.
fn release_parse_memory() {
    // SAFETY: mi_collect only walks and purges mimalloc's own heap of the calling
    // thread; it takes no pointers and is safe to call at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Counts of reloads, for the admin listener.
#[derive(Debug, Default)]
pub struct ReloadStats {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
}

/// Recompiles and publishes. Settings that need new sockets or threads (listen,
/// admin, workers) keep their running values and say so.
#[allow(clippy::too_many_arguments)] // the node's stores a new plan binds to, one each
pub fn reload(
    handle: &PlanHandle,
    source: &ConfigSource,
    stats: &ReloadStats,
    quotas: &QuotaStore,
    metrics: &MetricsStore,
    caches: &CacheStore,
    health: &HealthStore,
    jwks: &crate::auth::jwks::JwksStore,
) -> Result<Arc<Plan>, Errors> {
    match load(source) {
        Ok(mut next) => {
            let current = handle.load();
            if next.gateway.listen != current.gateway.listen
                || next.gateway.admin != current.gateway.admin
                || next.gateway.workers != current.gateway.workers
                || next.gateway.tls_listen != current.gateway.tls_listen
            {
                warn!("reload: listen, admin, workers and TLS listener address changes take effect at the next restart");
                next.gateway.listen = current.gateway.listen.clone();
                next.gateway.admin = current.gateway.admin;
                next.gateway.workers = current.gateway.workers;
            }
            if next.gateway.tls_listen != current.gateway.tls_listen {
                // the sockets stay as they are: so do their certificates
                next.gateway.tls_listen = current.gateway.tls_listen.clone();
                next.tls = current.tls.clone();
            }
            for w in &next.warnings {
                warn!("{w}");
            }
            if next.gateway.state_dir != current.gateway.state_dir {
                warn!("reload: a new state_dir takes effect at the next restart");
            }
            next.bind_quotas(quotas);
            next.bind_health(health);
            next.bind_metrics(metrics);
            next.bind_caches(caches);
            next.bind_jwks(jwks);
            next.start_aws_refresh();
            let dropped = current.drop_stale_cache_entries(&next);
            let mut changes = describe_changes(&current, &next);
            if dropped > 0 {
                changes.push_str(&format!(
                    "; dropped {dropped} cache entries of routes whose cache settings changed"
                ));
            }
            let next = Arc::new(next);
            handle.store(next.clone());
            stats.ok.fetch_add(1, Ordering::Relaxed);
            info!(
                "reload: plan {:016x} active ({} routes, {} keys){changes}",
                next.hash,
                next.routes.len(),
                next.key_info.len()
            );
            Ok(next)
        }
        Err(e) => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            error!("reload failed, the previous plan keeps serving:\n{e}");
            Err(e)
        }
    }
}

/// What a reload changed, for the log: routes added and removed (by stage and key).
fn describe_changes(old: &Plan, new: &Plan) -> String {
    use std::collections::BTreeSet;
    let keys = |p: &Plan| -> BTreeSet<String> {
        p.routes
            .iter()
            .map(|r| format!("{}:{}", p.stages[r.stage as usize].name, r.key))
            .collect()
    };
    let (a, b) = (keys(old), keys(new));
    let added: Vec<&String> = b.difference(&a).take(20).collect();
    let removed: Vec<&String> = a.difference(&b).take(20).collect();
    let mut out = String::new();
    if !added.is_empty() {
        out.push_str(&format!("; added {added:?}"));
    }
    if !removed.is_empty() {
        out.push_str(&format!("; removed {removed:?}"));
    }
    if old.key_info.len() != new.key_info.len() {
        out.push_str(&format!(
            "; keys {} -> {}",
            old.key_info.len(),
            new.key_info.len()
        ));
    }
    if out.is_empty() {
        out.push_str("; same routes");
    }
    out
}
