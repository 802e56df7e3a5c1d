//! The throttle stage: every scope that applies, in AWS's order (per key per route,
//! per key, per route, stage, gateway). The first empty bucket answers 429; scopes
//! after it are not charged.

use crate::error::Error;
use crate::limit::quota::unix_now;
use crate::limit::{KeyId, Locals};
use crate::plan::{Plan, RouteId};

pub fn admit(
    plan: &Plan,
    route_id: RouteId,
    key: Option<KeyId>,
    locals: &Locals,
) -> Result<(), Error> {
    let limits = &plan.limits;
    if limits.budgets.is_empty() {
        return Ok(());
    }
    let route = plan.route(route_id);
    let key = key.map(|k| &plan.key_info[k as usize]);
    let scopes = [
        key.and_then(|k| {
            k.route_limits
                .iter()
                .find(|(r, _)| *r == route_id)
                .map(|(_, b)| *b)
        }),
        key.and_then(|k| k.limit),
        route.limit,
        plan.stages[route.stage as usize].limit,
        limits.gateway,
    ];
    if scopes.iter().all(Option::is_none) {
        return Ok(());
    }
    // One clock read per request: every budget of a plan shares its epoch.
    let now = limits.budgets[0].now_ns();
    locals.with(plan.hash, limits.budgets.len(), |slots| {
        for b in scopes.into_iter().flatten() {
            let i = b as usize;
            let budget = &limits.budgets[i];
            if !slots[i].admit(budget, limits.leases[i], now) {
                return Err(Error::TooManyRequests {
                    retry_after: budget.retry_after_secs() as u32,
                    limit: budget.rate.ceil() as u32,
                    burst: budget.burst() as u32,
                });
            }
        }
        Ok(())
    })
}

/// The key's usage-plan quota, after its throttles admitted the request.
pub fn quota(plan: &Plan, key: Option<KeyId>, locals: &Locals) -> Result<(), Error> {
    let Some(k) = key else { return Ok(()) };
    let Some(q) = &plan.key_info[k as usize].quota else {
        return Ok(());
    };
    let now = unix_now();
    let period = q.period.index(now);
    let ok = locals.with_quota(plan.hash, plan.key_info.len(), k as usize, |lease| {
        lease.admit(&q.counter, q.limit, q.lease, period)
    });
    if ok {
        Ok(())
    } else {
        Err(Error::LimitExceeded {
            retry_after: q.period.secs_to_next(now).min(u64::from(u32::MAX)) as u32,
        })
    }
}
