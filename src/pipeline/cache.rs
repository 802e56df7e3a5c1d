//! The cache stage (after throttle, before integrate): answer from the stage's cache,
//! or say how the proxy should store what the upstream returns.
//!
//! - Only routes with a compiled `RouteCache` (stage caches, TTL > 0, proxied) come here.
//! - GET and HEAD (plus the route's extra methods) are cached; a request carrying
//!   `Authorization` bypasses the cache unless the route opts in.
//! - `Cache-Control: max-age=0` refreshes the entry when the stage's `invalidation`
//!   allows this caller; otherwise `unauthorized` decides (403, or served as usual with
//!   or without a `Warning`).
//! - Concurrent misses for a key wait for the first one's response, polling its
//!   ticket every millisecond (a fill may be running on another core, and monoio
//!   wakers do not cross threads), at most for the route's timeout.
//!
//! Tested end to end in `tests/cache.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cache::policy::{self, Outcome as CacheOutcome};
use crate::cache::{Cache, Entry, Fill, FillState, Found, Lookup};
use crate::error::Error;
use crate::limit::KeyId;
use crate::plan::{Invalidation, Plan, Route, RouteCache, StageCache, Unauthorized};
use crate::proto::h1::{BodyFraming, RequestHead};
use crate::proto::head::ResponseHead;

use super::respond::drain_body;
use super::{Downstream, Outcome};

/// What the proxy needs to know about the cache for a request it forwards.
#[derive(Debug)]
pub struct Forward<'p> {
    pub outcome: CacheOutcome,
    /// Present when this request may store the response.
    pub fill: Option<Fill>,
    pub policy: &'p RouteCache,
    /// A refresh was refused with `ignore_with_header`.
    pub warning: bool,
}

impl Forward<'_> {
    /// The `cache-status` (and `warning`) lines for a response that is not stored.
    pub fn write_lines(&self, out: &mut Vec<u8>, detail: Option<&str>) {
        self.outcome.write_header(out, false, None, detail);
        if self.warning {
            out.extend_from_slice(WARNING);
        }
    }
}

const WARNING: &[u8] = b"warning: 199 turnpike \"Cache-Control: max-age=0 ignored: not authorized to invalidate the cache\"\r\n";

/// How long a waiting request sleeps between looks at the fill it waits on.
const POLL: Duration = Duration::from_millis(1);

/// Either the request was answered here, or it goes on to the integration.
pub enum Step<'p> {
    Answered(Outcome),
    Forward(Option<Forward<'p>>),
}

pub async fn lookup<'p>(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    plan: &'p Plan,
    route: &'p Route,
    key: Option<KeyId>,
    rid: &[u8],
) -> Step<'p> {
    let Some(rc) = &route.cache else {
        return Step::Forward(None);
    };
    let stage = &plan.stages[route.stage as usize];
    let Some(sc) = &stage.cache else {
        return Step::Forward(None);
    };
    let Some(cache) = &sc.cache else {
        return Step::Forward(None);
    };
    let bypass = !rc.caches_method(head.method())
        || (!rc.authorization && head.header(b"authorization").is_some());
    let forward = |outcome, fill, warning| {
        Step::Forward(Some(Forward {
            outcome,
            fill,
            policy: rc,
            warning,
        }))
    };
    if bypass {
        ds.rec.cache = Some(CacheOutcome::Bypass);
        return forward(CacheOutcome::Bypass, None, false);
    }

    let mut k = std::mem::take(&mut ds.scratch.cache_key);
    let hash = request_key(head, &stage.base_path, rc, cache, &mut k);
    let step = decide(head, plan, sc, cache, key, &k, hash, route.timeout).await;
    ds.scratch.cache_key = k;
    match step {
        Decision::Hit(e, how, warning) => serve(ds, head, plan, &e, how, warning, rid).await,
        Decision::Refused => {
            ds.rec.cache = None;
            super::respond::error(ds, head, Error::Forbidden, rid)
                .await
                .into()
        }
        Decision::Forward(outcome, fill, warning) => {
            ds.rec.cache = Some(outcome);
            forward(outcome, fill, warning)
        }
    }
}

/// Writes the request's cache key into `out` and returns its hash.
pub fn request_key(
    head: &RequestHead,
    base_path: &str,
    rc: &RouteCache,
    cache: &Cache,
    out: &mut Vec<u8>,
) -> u64 {
    let rest = head.path().get(base_path.len()..).unwrap_or("");
    rc.spec.build(
        out,
        rc.tag,
        head.method(),
        rest.as_bytes(),
        head.query(),
        |n| head.header(n),
    );
    cache.hash(out)
}

impl From<Outcome> for Step<'_> {
    fn from(o: Outcome) -> Self {
        Step::Answered(o)
    }
}

enum Decision {
    Hit(Arc<Entry>, CacheOutcome, bool),
    Refused,
    Forward(CacheOutcome, Option<Fill>, bool),
}

#[allow(clippy::too_many_arguments)]
async fn decide(
    head: &RequestHead,
    plan: &Plan,
    sc: &StageCache,
    cache: &Arc<Cache>,
    key: Option<KeyId>,
    k: &[u8],
    hash: u64,
    wait_limit: Duration,
) -> Decision {
    let mut warning = false;
    if policy::wants_refresh(head.header(b"cache-control")) {
        if may_invalidate(plan, sc.invalidation, key, head) {
            let fill = (!head.is_head()).then(|| cache.refill(hash, k));
            return Decision::Forward(CacheOutcome::Refresh, fill, false);
        }
        match sc.unauthorized {
            Unauthorized::Fail403 => return Decision::Refused,
            Unauthorized::IgnoreWithHeader => warning = true,
            Unauthorized::Ignore => {}
        }
    }
    if head.is_head() {
        // HEAD is answered from GET's entry but never fills it (no body to store).
        return match cache.get(hash, k) {
            Found::Fresh(e) => Decision::Hit(e, CacheOutcome::Hit, warning),
            Found::Stale => Decision::Forward(CacheOutcome::Stale, None, warning),
            Found::Absent => Decision::Forward(CacheOutcome::Miss, None, warning),
        };
    }
    let (stale, fill, wait) = match cache.lookup(hash, k) {
        Lookup::Hit(e) => return Decision::Hit(e, CacheOutcome::Hit, warning),
        Lookup::Miss { stale, fill, wait } => (stale, fill, wait),
    };
    let outcome = if stale {
        CacheOutcome::Stale
    } else {
        CacheOutcome::Miss
    };
    let Some(ticket) = wait else {
        return Decision::Forward(outcome, fill, warning);
    };
    // Another request is fetching this key: wait for it, at most as long as its own
    // request may take (the route's timeout).
    let deadline = Instant::now() + wait_limit;
    while ticket.state() == FillState::Pending && Instant::now() < deadline {
        monoio::time::sleep(POLL).await;
    }
    if ticket.state() == FillState::Stored {
        if let Found::Fresh(e) = cache.get(hash, k) {
            return Decision::Hit(e, CacheOutcome::Collapsed, warning);
        }
    }
    // Not stored (or not in time): go upstream without filling, so that an
    // uncacheable resource does not turn concurrent requests into a queue.
    Decision::Forward(outcome, None, warning)
}

/// Whether the caller may refresh an entry with `Cache-Control: max-age=0`.
fn may_invalidate(plan: &Plan, mode: Invalidation, key: Option<KeyId>, head: &RequestHead) -> bool {
    match mode {
        Invalidation::Anyone => true,
        Invalidation::Nobody => false,
        Invalidation::RequireApiKey => {
            // The route may not need a key; the caller can still present one.
            let id = key.or_else(|| head.header(b"x-api-key").and_then(|v| plan.keys.find(v)));
            id.is_some_and(|id| {
                let k = &plan.key_info[id as usize];
                plan.usage_plans[k.plan as usize].invalidate_cache
            })
        }
    }
}

async fn serve(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    plan: &Plan,
    e: &Entry,
    how: CacheOutcome,
    warning: bool,
    rid: &[u8],
) -> Step<'static> {
    // A body (a cached POST, a GET with one) is read and dropped first.
    match drain_body(ds, head, plan.gateway.max_body).await {
        Ok(()) => {}
        Err(Some(err)) => {
            super::respond::send_error(ds, head, err, rid, true);
            return Step::Answered(Outcome { keep_alive: false });
        }
        Err(None) => return Step::Answered(Outcome { keep_alive: false }),
    }
    let keep = head.keep_alive && !ds.draining;
    ds.rec.bytes = write_hit(
        ds.head(e.status),
        head.is_head(),
        e,
        how,
        warning,
        rid,
        keep,
    );
    ds.rec.status = e.status;
    ds.rec.cache = Some(how);
    Step::Answered(Outcome { keep_alive: keep })
}

/// Writes a response served from `e` through `h` (started with its status); returns
/// the body bytes written.
pub fn write_hit(
    h: ResponseHead<'_>,
    is_head: bool,
    e: &Entry,
    how: CacheOutcome,
    warning: bool,
    rid: &[u8],
    keep: bool,
) -> u64 {
    let now = Instant::now();
    let age = now.saturating_duration_since(e.stored).as_secs();
    let ttl = e.expires.saturating_duration_since(now).as_secs();
    let out = write_entry_head(h, e.status, &e.headers, e.body.len(), rid, keep, |out| {
        crate::proto::head::push_line_decimal(out, b"age", age);
        how.write_header(out, false, Some(ttl), None);
        if warning {
            out.extend_from_slice(WARNING);
        }
    });
    if is_head {
        return 0;
    }
    out.extend_from_slice(&e.body);
    e.body.len() as u64
}

/// The head of a response built from stored parts (a hit, or a miss just stored);
/// `extra` appends header lines. Gives back the write buffer for the body.
pub fn write_entry_head<'w>(
    mut h: ResponseHead<'w>,
    status: u16,
    headers: &[u8],
    body_len: usize,
    rid: &[u8],
    keep: bool,
    extra: impl FnOnce(&mut Vec<u8>),
) -> &'w mut Vec<u8> {
    h.lines(headers);
    h.field(b"x-request-id", rid);
    h.with_lines(extra);
    let framing = if status != 204 && status != 304 {
        BodyFraming::Length(body_len as u64)
    } else {
        BodyFraming::Empty
    };
    h.end(framing, !keep).0
}
