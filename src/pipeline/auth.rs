//! The auth stage (DESIGN §8.1): the route's authorizer first (a JWT verified with
//! the issuer's keys, from this worker's cache of verified tokens when it has seen
//! the token before), then `api_key_required` routes need an `x-api-key` whose
//! usage plan covers the route's stage (AWS: missing, unknown or not in a plan → 403).
//!
//! Tested end to end in `tests/jwt.rs` and `tests/keys.rs`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::auth::jwt::{self, Rejection};
use crate::error::Error;
use crate::limit::KeyId;
use crate::plan::{Identity, Plan, Route, RouteAuth};
use crate::proto::h1::RequestHead;

use super::{Downstream, WorkerCtx};

/// How long the first request of an authorizer waits for its key set to arrive
/// (the fetch's own budget, AWS's 1,500 ms, and a little).
const FIRST_KEYS_WAIT: Duration = Duration::from_millis(1700);

/// Checks the route's authorizer; the verified claims go to `ds.rec`.
pub async fn authorize(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    plan: &Plan,
    route: &Route,
    params: &crate::plan::router::Params,
    w: &WorkerCtx,
) -> Result<(), Error> {
    let i = match route.auth {
        RouteAuth::None => return Ok(()),
        RouteAuth::Iam => return Box::pin(super::iam::authorize(ds, head, plan, route)).await,
        RouteAuth::Request(i) => {
            let a = &plan.request_authorizers[i as usize];
            return Box::pin(super::authorizer::authorize(
                ds, head, plan, route, params, w, a,
            ))
            .await;
        }
        RouteAuth::Jwt(i) => i,
    };
    let a = &plan.authorizers[i as usize];
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let refuse = |ds: &mut Downstream<'_>, why: Rejection| {
        ds.rec.auth_error = why.describe();
        ds.rec.auth = Some(why.index());
        Err(Error::Unauthorized(why))
    };
    let token = match &a.identity {
        Identity::Header(name) => head.header(name.as_bytes()).and_then(jwt::bearer),
        Identity::Query(name) => query_value(head.query(), name.as_bytes()).and_then(jwt::bearer),
    };
    let Some(token) = token else {
        return refuse(ds, Rejection::Missing);
    };
    // this worker has verified it before (and the plan is the same)
    let cached = {
        let mut tokens = w.tokens.borrow_mut();
        tokens.for_plan(plan.hash);
        tokens.get(i, token, now).map(|v| v.claims.clone())
    };
    let claims = match cached {
        Some(c) => c,
        None => {
            let Some(set) = a.keys.get() else {
                return refuse(ds, Rejection::NoKeys);
            };
            let mut keys = set.keys();
            if keys.is_none() {
                // the first use of a key set from a URL: wait for its fetch
                let until = Instant::now() + FIRST_KEYS_WAIT;
                while keys.is_none() && Instant::now() < until {
                    monoio::time::sleep(Duration::from_millis(10)).await;
                    keys = set.keys();
                }
            }
            let Some(keys) = keys else {
                return refuse(ds, Rejection::NoKeys);
            };
            let Ok(text) = std::str::from_utf8(token) else {
                return refuse(ds, Rejection::Malformed);
            };
            match jwt::verify(text, &keys, &a.rules, now) {
                Ok(v) => {
                    let claims = v.claims.clone();
                    w.tokens.borrow_mut().put(i, token, v, now);
                    claims
                }
                Err(why) => {
                    if why == Rejection::UnknownKey {
                        set.want_refresh();
                    }
                    return refuse(ds, why);
                }
            }
        }
    };
    let granted = jwt::has_scope(&claims, &route.scopes);
    ds.rec.claims = Some(claims);
    if !granted {
        ds.rec.auth_error = "the token grants none of the route's scopes";
        ds.rec.auth = Some(10);
        return Err(Error::InsufficientScope);
    }
    ds.rec.auth = Some(0);
    Ok(())
}

/// The first value of query parameter `name` (not percent-decoded: tokens are
/// base64url, which needs no encoding).
fn query_value<'q>(query: Option<&'q [u8]>, name: &[u8]) -> Option<&'q [u8]> {
    query?.split(|&b| b == b'&').find_map(|pair| {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        (k == name).then_some(v)
    })
}

/// The caller's key when the route needs one (usage-plan throttles apply then only):
/// `x-api-key`, or the request authorizer's `usageIdentifierKey` when the API's
/// `api_key_source` is `"authorizer"`.
pub fn identify(
    plan: &Plan,
    route: &Route,
    head: &RequestHead,
    answer: Option<&crate::auth::authorizer::Answer>,
) -> Result<Option<KeyId>, Error> {
    if !route.api_key_required {
        return Ok(None);
    }
    let presented = if plan.stages[route.stage as usize].key_from_authorizer {
        answer
            .and_then(|a| a.usage_key.as_deref())
            .map(str::as_bytes)
            .ok_or(Error::Forbidden)?
    } else {
        head.header(b"x-api-key").ok_or(Error::Forbidden)?
    };
    let id = plan.keys.find(presented).ok_or(Error::Forbidden)?;
    let key = &plan.key_info[id as usize];
    if plan.usage_plans[key.plan as usize]
        .stages
        .contains(&route.stage)
    {
        Ok(Some(id))
    } else {
        Err(Error::Forbidden)
    }
}
