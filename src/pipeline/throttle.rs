//! The throttle stage: every scope that applies, in AWS's order (per key per route,
//! per key, per route, stage, gateway). The first empty bucket answers 429; scopes
//! after it are not charged.

use crate::error::Error;
use crate::limit::quota::unix_now;
use crate::limit::{KeyId, Locals};
use crate::plan::{Plan, RouteId};

/// On refusal: the index of the refusing scope in `observe::metrics::SCOPES`, and the error.
pub fn admit(
    plan: &Plan,
    route_id: RouteId,
    key: Option<KeyId>,
    locals: &Locals,
) -> Result<(), (usize, Error)> {
    let limits = &plan.limits;
    let route = plan.route(route_id);
    let budgets = [
        route.limit,
        plan.stages[route.stage as usize].limit,
        limits.gateway,
    ];
    let key = key.map(|k| (k, &plan.key_info[k as usize]));
    let keyed =
        key.is_some_and(|(_, info)| info.throttle.is_some() || !info.route_limits.is_empty());
    if !keyed && budgets.iter().all(Option::is_none) {
        return Ok(());
    }
    // One clock read per request: every bucket of a plan shares its epoch.
    let now = limits.now_ns();

    // per key per route, then per key: buckets in the plan's key table
    if let Some((k, info)) = key {
        let per_route = info
            .route_limits
            .iter()
            .enumerate()
            .find(|(_, (r, _, _))| *r == route_id)
            .map(|(i, (_, rate, lease))| (u64::from(k) << 16 | i as u64, rate, *lease));
        let per_key = info
            .throttle
            .as_ref()
            .map(|(rate, lease)| (u64::from(k) << 16 | 0xFFFF, rate, *lease));
        for (which, scoped) in [per_route, per_key].into_iter().enumerate() {
            let Some((scope, rate, lease)) = scoped else {
                continue;
            };
            let ok = locals.with_key(plan.hash, scope, now, |l| {
                l.admit_from(
                    lease,
                    now,
                    |n| limits.keys.take(scope, rate, n, now),
                    |n| limits.keys.give_back(scope, rate, n),
                )
            });
            if !ok {
                return Err((
                    which,
                    throttled(rate.retry_after_secs(), rate.per_sec, rate.burst()),
                ));
            }
        }
    }

    // per route, stage, gateway: the plan's named budgets
    if budgets.iter().all(Option::is_none) {
        return Ok(());
    }
    locals.with(plan.hash, limits.budgets.len(), |slots| {
        for (which, b) in budgets.into_iter().enumerate() {
            let Some(b) = b else { continue };
            let i = b as usize;
            let budget = &limits.budgets[i];
            if !slots[i].admit(budget, limits.leases[i], now) {
                return Err((
                    2 + which,
                    throttled(budget.retry_after_secs(), budget.rate, budget.burst()),
                ));
            }
        }
        Ok(())
    })
}

fn throttled(retry_after: u64, rate: f64, burst: u64) -> Error {
    Error::TooManyRequests {
        retry_after: retry_after as u32,
        limit: rate.ceil() as u32,
        burst: burst as u32,
    }
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
