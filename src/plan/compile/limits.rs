//! Throttles, usage plans and API keys → budgets, per-stage and per-route limits, keys.

use std::sync::Arc;
use std::time::Instant;

use super::{at, Ctx};
use crate::config::{model, Config};
use crate::limit::budget::Rate;
use crate::limit::keys::{parse_hex_digest, sha256};
use crate::limit::local::{lease_for, lease_size};
use crate::limit::quota::{quota_lease, Period, QuotaCounter};
use crate::limit::table::KeyTable;
use crate::limit::{ApiKeys, Budget};

/// Per-key bucket slots per plan (32 bytes each: 4 MiB), however many keys exist.
const KEY_TABLE_SLOTS: usize = 1 << 17;
use crate::plan::route_key;
use crate::plan::{ApiKey, KeyQuota, Limits, Route, Stage, UsagePlan};

pub(super) struct Compiled {
    pub limits: Limits,
    pub keys: ApiKeys,
    pub key_info: Vec<ApiKey>,
    pub usage_plans: Vec<UsagePlan>,
}

struct Builder {
    budgets: Vec<Budget>,
    leases: Vec<u32>,
    epoch: Instant,
    workers: usize,
}

impl Builder {
    fn add(&mut self, t: &model::Throttle) -> u32 {
        let b = Budget::new(t.rate, t.burst, self.epoch);
        self.leases.push(lease_size(&b, self.workers));
        self.budgets.push(b);
        (self.budgets.len() - 1) as u32
    }
}

fn valid(t: &model::Throttle) -> Result<(), String> {
    if !t.rate.is_finite() || t.rate < 0.0 || t.rate > 1e9 {
        return Err(format!(
            "throttle rate {} must be between 0 and 1e9 per second",
            t.rate
        ));
    }
    if t.burst == 0 || t.burst > 1 << 31 {
        return Err(format!(
            "throttle burst {} must be between 1 and 2^31",
            t.burst
        ));
    }
    Ok(())
}

/// Finds route `key` (as written, e.g. `GET /users/{id}`) of `stage`.
fn route_of(routes: &[Route], stage: u32, key: &str) -> Option<u32> {
    let canonical = route_key::parse(key).ok()?.to_string();
    routes
        .iter()
        .position(|r| r.stage == stage && *r.key == *canonical)
        .map(|i| i as u32)
}

pub(super) fn compile(
    cx: &mut Ctx,
    cfg: &Config,
    stages: &mut [Stage],
    routes: &mut [Route],
    workers: usize,
) -> Compiled {
    let mut b = Builder {
        budgets: Vec::new(),
        leases: Vec::new(),
        epoch: Instant::now(),
        workers,
    };
    let gateway = cfg.gateway.as_ref().and_then(|g| {
        let t = g.value.throttle.as_ref()?;
        match valid(t) {
            Ok(()) => Some(b.add(t)),
            Err(m) => {
                cx.err(g.at.clone(), format!("[gateway] {m}"), None);
                None
            }
        }
    });

    for entry in &cfg.stages {
        let Some(sid) = stages.iter().position(|s| s.name == entry.name) else {
            continue;
        };
        if let Some(t) = &entry.value.throttle {
            match valid(t) {
                Ok(()) => stages[sid].limit = Some(b.add(t)),
                Err(m) => cx.err(
                    entry.at.clone(),
                    format!("stage `{}`: {m}", entry.name),
                    None,
                ),
            }
        }
        for (key, sr) in &entry.value.routes {
            let Some(t) = &sr.throttle else { continue };
            match (route_of(routes, sid as u32, key.get_ref()), valid(t)) {
                (None, _) => cx.err(
                    at(entry, key.span()),
                    format!("stage `{}` has no route `{}`", entry.name, key.get_ref()),
                    None,
                ),
                (_, Err(m)) => cx.err(at(entry, key.span()), m, None),
                (Some(r), Ok(())) => routes[r as usize].limit = Some(b.add(t)),
            }
        }
    }

    let mut usage_plans = Vec::new();
    let mut plan_quotas: Vec<Option<(u64, Period)>> = Vec::new();
    // per plan: (stage, route) pairs with their per-key throttles
    let mut plan_routes: Vec<Vec<(u32, model::Throttle)>> = Vec::new();
    for e in &cfg.usage_plans {
        let p = &e.value;
        let mut stage_ids = Vec::new();
        for s in &p.stages {
            match stages.iter().position(|st| st.name == *s.get_ref()) {
                Some(i) => stage_ids.push(i as u32),
                None => cx.err(
                    at(e, s.span()),
                    format!(
                        "usage plan `{}` names stage `{}`, which is not defined",
                        e.name,
                        s.get_ref()
                    ),
                    None,
                ),
            }
        }
        if let Some(t) = &p.throttle {
            if let Err(m) = valid(t) {
                cx.err(e.at.clone(), format!("usage plan `{}`: {m}", e.name), None);
            }
        }
        let mut per_route = Vec::new();
        for (k, t) in &p.routes {
            let found = k.split_once(':').and_then(|(stage, key)| {
                let sid = stages.iter().position(|s| s.name == stage)? as u32;
                route_of(routes, sid, key)
            });
            match (found, valid(t)) {
                (Some(r), Ok(())) => per_route.push((r, *t)),
                (None, _) => cx.err(
                    e.at.clone(),
                    format!(
                        "usage plan `{}`: `{k}` is not a route; write \"stage:METHOD /path\"",
                        e.name
                    ),
                    None,
                ),
                (_, Err(m)) => cx.err(e.at.clone(), format!("usage plan `{}`: {m}", e.name), None),
            }
        }
        let quota = p
            .quota
            .as_ref()
            .and_then(|q| match Period::parse(&q.period) {
                Some(period) if q.limit > 0 => Some((q.limit, period)),
                Some(_) => {
                    cx.err(
                        e.at.clone(),
                        format!("usage plan `{}`: quota limit must be at least 1", e.name),
                        None,
                    );
                    None
                }
                None => {
                    cx.err(
                        e.at.clone(),
                        format!(
                            "usage plan `{}`: quota period `{}` must be day, week or month",
                            e.name, q.period
                        ),
                        None,
                    );
                    None
                }
            });
        plan_quotas.push(quota);
        usage_plans.push(UsagePlan {
            name: e.name.clone(),
            stages: stage_ids,
            throttle: p.throttle.map(|t| (t.rate, t.burst)),
            invalidate_cache: p.invalidate_cache,
        });
        plan_routes.push(per_route);
    }

    let mut keys = ApiKeys::default();
    let mut key_info = Vec::new();
    for e in &cfg.api_keys {
        let k = &e.value;
        let digest = match (&k.key, &k.key_sha256) {
            (Some(v), None) => {
                let n = v.get_ref().chars().count();
                if !(30..=128).contains(&n) || !v.get_ref().bytes().all(|c| c.is_ascii_graphic()) {
                    cx.err(
                        at(e, v.span()),
                        format!(
                            "api key `{}` must be 30 to 128 visible ASCII characters (it has {n})",
                            e.name
                        ),
                        None,
                    );
                    continue;
                }
                sha256(v.get_ref().as_bytes())
            }
            (None, Some(h)) => match parse_hex_digest(h.get_ref()) {
                Some(d) => d,
                None => {
                    cx.err(
                        at(e, h.span()),
                        format!("key_sha256 of `{}` must be 64 hex digits", e.name),
                        None,
                    );
                    continue;
                }
            },
            _ => {
                cx.err(
                    e.at.clone(),
                    format!(
                        "api key `{}` needs exactly one of `key` and `key_sha256`",
                        e.name
                    ),
                    None,
                );
                continue;
            }
        };
        let Some(pid) = usage_plans.iter().position(|p| p.name == *k.plan.get_ref()) else {
            if !cfg.broken.contains(k.plan.get_ref()) {
                cx.err(
                    at(e, k.plan.span()),
                    format!(
                        "api key `{}` names usage plan `{}`, which is not defined",
                        e.name,
                        k.plan.get_ref()
                    ),
                    None,
                );
            }
            continue;
        };
        let id = key_info.len() as u32;
        if !keys.insert(digest, id) {
            cx.err(
                e.at.clone(),
                format!("api key `{}` has the same value as another key", e.name),
                None,
            );
            continue;
        }
        // Per-key state lives in the plan's key table, claimed on first use: nothing
        // per key is allocated here beyond the rates.
        let throttle = cfg
            .usage_plans
            .iter()
            .find(|p| p.name == usage_plans[pid].name)
            .and_then(|p| p.value.throttle.as_ref())
            .filter(|t| valid(t).is_ok())
            .map(|t| {
                (
                    Rate::new(t.rate, t.burst),
                    lease_for(t.rate, t.burst, workers),
                )
            });
        let route_limits = plan_routes[pid]
            .iter()
            .map(|(r, t)| {
                (
                    *r,
                    Rate::new(t.rate, t.burst),
                    lease_for(t.rate, t.burst, workers),
                )
            })
            .collect();
        let quota = plan_quotas[pid].map(|(limit, period)| KeyQuota {
            limit,
            period,
            lease: quota_lease(limit, workers),
            counter: Arc::new(QuotaCounter::default()),
        });
        key_info.push(ApiKey {
            name: e.name.clone(),
            plan: pid as u32,
            throttle,
            route_limits,
            quota,
        });
    }

    Compiled {
        limits: Limits {
            budgets: b.budgets,
            leases: b.leases,
            gateway,
            // only plans with per-key throttles pay for the table
            keys: KeyTable::new(
                if key_info
                    .iter()
                    .any(|k| k.throttle.is_some() || !k.route_limits.is_empty())
                {
                    KEY_TABLE_SLOTS
                } else {
                    64
                },
            ),
            epoch: b.epoch,
        },
        keys,
        key_info,
        usage_plans,
    }
}
