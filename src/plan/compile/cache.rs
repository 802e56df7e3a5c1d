//! `[stages.S].cache` and a route's `cache` → the stage's `StageCache` and each
//! route's `RouteCache` (DESIGN §3): TTL from the route, else the stage, else 300 s,
//! at most 3600 s, `0s` = off; GET and HEAD unless the route adds methods.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use super::{at, duration, size, Ctx};
use crate::cache::KeySpec;
use crate::config::{model, Entry};
use crate::plan::{Invalidation, RouteCache, StageCache, Unauthorized};

const DEFAULT_TTL: Duration = Duration::from_secs(300);
const MAX_TTL: Duration = Duration::from_secs(3600);
const DEFAULT_CAPACITY: u64 = 128 << 20;
const DEFAULT_MAX_ENTRY: u64 = 1 << 20;

pub(super) fn stage(cx: &mut Ctx, e: &Entry<model::Stage>) -> Option<StageCache> {
    let c = e.value.cache.as_ref()?;
    let capacity = size(cx, e, &c.capacity, DEFAULT_CAPACITY);
    let max_entry = size(cx, e, &c.max_entry, DEFAULT_MAX_ENTRY);
    if capacity < 4096 {
        if let Some(s) = &c.capacity {
            cx.err(
                at(e, s.span()),
                "cache capacity must be at least 4KiB",
                None,
            );
        }
    }
    if max_entry > capacity {
        if let Some(s) = c.max_entry.as_ref().or(c.capacity.as_ref()) {
            cx.err(
                at(e, s.span()),
                "cache max_entry is larger than its capacity",
                None,
            );
        }
    }
    let ttl = ttl(cx, e, &c.ttl, DEFAULT_TTL);
    let invalidation = match c.invalidation.as_ref().map(|s| (s.get_ref().as_str(), s)) {
        None | Some(("require_api_key", _)) => Invalidation::RequireApiKey,
        Some(("anyone", _)) => Invalidation::Anyone,
        Some(("nobody", _)) => Invalidation::Nobody,
        Some((other, s)) => {
            cx.err(
                at(e, s.span()),
                format!("cache invalidation `{other}`: expected require_api_key, anyone or nobody"),
                None,
            );
            Invalidation::Nobody
        }
    };
    let unauthorized = match c.unauthorized.as_ref().map(|s| (s.get_ref().as_str(), s)) {
        None | Some(("ignore_with_header", _)) => Unauthorized::IgnoreWithHeader,
        Some(("fail_403", _)) => Unauthorized::Fail403,
        Some(("ignore", _)) => Unauthorized::Ignore,
        Some((other, s)) => {
            cx.err(
                at(e, s.span()),
                format!(
                    "cache unauthorized `{other}`: expected fail_403, ignore_with_header or ignore"
                ),
                None,
            );
            Unauthorized::Ignore
        }
    };
    Some(StageCache {
        capacity: capacity as usize,
        max_entry: max_entry as usize,
        ttl,
        statuses: statuses(cx, e, &c.statuses).unwrap_or_else(|| vec![200]),
        invalidation,
        unauthorized,
        cache: None,
    })
}

/// The route's policy in a stage; `None` when the stage does not cache, the TTL is
/// zero, or the integration is not cacheable (mocks are already as fast as a hit).
pub(super) fn route(
    cx: &mut Ctx,
    r: &Entry<model::Route>,
    stage_name: &str,
    sc: Option<&StageCache>,
    proxied: bool,
    first_stage: bool,
) -> Option<RouteCache> {
    let rc = r.value.cache.as_ref();
    let Some(sc) = sc else {
        if rc.is_some() && first_stage {
            cx.warnings.push(format!(
                "route `{}`: cache settings have no effect in stage `{stage_name}`, which has no cache",
                r.name
            ));
        }
        return None;
    };
    let mut spec = KeySpec::default();
    let mut methods = Vec::new();
    let mut ttl_v = sc.ttl;
    let mut statuses_v = sc.statuses.clone();
    let mut authorization = false;
    if let Some(c) = rc {
        let list: Vec<String> = c.key.iter().map(|k| k.get_ref().clone()).collect();
        match KeySpec::parse(&list) {
            Ok(s) => spec = s,
            Err(msg) => {
                let span = c.key.iter().find(|k| msg.contains(k.get_ref().as_str()));
                cx.err(r.pos(span.map_or(0..0, |k| k.span())), msg, None);
            }
        }
        for m in &c.methods {
            let up = m.get_ref().to_ascii_uppercase();
            if up.is_empty() || !up.bytes().all(|b| b.is_ascii_alphabetic()) {
                cx.err(
                    at(r, m.span()),
                    format!("`{}` is not a method", m.get_ref()),
                    None,
                );
            } else if up != "GET" && up != "HEAD" {
                methods.push(up.into_bytes());
            }
        }
        ttl_v = ttl(cx, r, &c.ttl, sc.ttl);
        if let Some(s) = statuses(cx, r, &c.statuses) {
            statuses_v = s;
        }
        authorization = c.authorization;
    }
    if ttl_v.is_zero() {
        return None;
    }
    if !proxied {
        if rc.is_some() && first_stage {
            cx.warnings.push(format!(
                "route `{}`: mock responses are not cached (they are already served from memory)",
                r.name
            ));
        }
        return None;
    }
    let mut h = DefaultHasher::new();
    (
        stage_name,
        &r.name,
        &spec,
        ttl_v,
        &methods,
        authorization,
        &statuses_v,
    )
        .hash(&mut h);
    Some(RouteCache {
        spec,
        tag: h.finish(),
        ttl: ttl_v,
        methods,
        authorization,
        statuses: statuses_v,
    })
}

fn ttl(
    cx: &mut Ctx,
    e: &Entry<impl Sized>,
    v: &Option<toml::Spanned<String>>,
    default: Duration,
) -> Duration {
    let d = duration(cx, e, v, default);
    if d > MAX_TTL {
        if let Some(s) = v {
            cx.err(at(e, s.span()), "cache ttl must be at most 3600s", None);
        }
        return MAX_TTL;
    }
    d
}

fn statuses(
    cx: &mut Ctx,
    e: &Entry<impl Sized>,
    v: &Option<toml::Spanned<Vec<u16>>>,
) -> Option<Vec<u16>> {
    let v = v.as_ref()?;
    if v.get_ref().is_empty() || v.get_ref().iter().any(|s| !(200..=599).contains(s)) {
        cx.err(
            at(e, v.span()),
            "cache statuses must be a non-empty list of statuses 200..=599",
            None,
        );
        return None;
    }
    Some(v.get_ref().clone())
}
