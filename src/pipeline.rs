//! The request stages, in order: route → auth → throttle → validate → cache →
//! integrate → respond. `handle` is the whole pipeline in one screen; each stage lives
//! in its own file. The pipeline never owns the connection: it borrows the client's
//! socket and buffers through [`Downstream`] and says in [`Outcome`] whether the
//! connection can carry another request.
//!
//! Tested end to end in `tests/` (mock, proxy, errors, smuggling, limits).

pub mod auth;
pub mod authorizer;
pub mod aws;
pub mod body;
pub mod cache;
pub mod facts;
pub mod iam;
pub mod lambda;
pub mod mapped;
pub mod proxy;
pub mod respond;
pub mod throttle;
pub mod validate;

use crate::error::Error;
use crate::limit::{KeyId, Locals};
use crate::observe::request_id::{is_sane, IdGen};
use crate::plan::{Integration, Lookup, Method, Plan, RouteId};
use crate::proto::h1::{RequestHead, ResponseHead};
use crate::proto::io::ReadBuf;
use crate::upstream::balance::Balancers;
use crate::upstream::Pools;

/// The client side of a request: its socket, unread bytes, and pending output.
pub struct Downstream<'a> {
    pub io: &'a mut crate::proto::tls::ClientIo,
    /// `http` or `https`: how the client reached us (X-Forwarded-Proto).
    pub scheme: &'static str,
    pub rbuf: &'a mut ReadBuf,
    pub wbuf: &'a mut Vec<u8>,
    /// The client's address as text, formatted once per connection.
    pub peer_ip: &'a str,
    /// Buffers reused by every request of the connection.
    pub scratch: &'a mut Scratch,
    /// Set while the gateway drains: every response closes its connection.
    pub draining: bool,
    /// What this request did, for the access log.
    pub rec: &'a mut Rec,
}

impl Downstream<'_> {
    /// Starts a response head with `status` for this client, in its protocol
    /// (`proto::head`: HTTP/1.1 text, or fields for an HTTP/2 stream).
    pub fn head(&mut self, status: u16) -> crate::proto::head::ResponseHead<'_> {
        crate::proto::head::ResponseHead::start(self.io, self.wbuf, status, &self.scratch.cors)
    }

    /// One piece of a streamed response body (`proto::sink`: a chunk, or the
    /// bytes of a DATA frame).
    pub fn chunk(&mut self, data: &[u8]) {
        crate::proto::sink::chunk(self.io, self.wbuf, data)
    }

    /// Ends a streamed response body with its trailers.
    pub fn end_chunks(&mut self, trailers: &crate::proto::sink::Trailers) {
        crate::proto::sink::end_chunks(self.io, self.wbuf, trailers)
    }

    /// Sends what is written so far.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        crate::proto::sink::flush(self.io, self.wbuf).await
    }

    /// Sends a piece of body from its own buffer, which comes back empty.
    pub async fn write_body(&mut self, buf: Vec<u8>) -> (std::io::Result<()>, Vec<u8>) {
        crate::proto::sink::write_body(self.io, buf).await
    }
}

/// What one request did, filled in by the stages that know it (access log).
#[derive(Debug, Default, Clone)]
pub struct Rec {
    /// The request id sent upstream and returned (the client's, or generated).
    pub request_id: Vec<u8>,
    pub route: Option<RouteId>,
    pub key: Option<KeyId>,
    pub status: u16,
    /// Body bytes sent to the client.
    pub bytes: u64,
    pub error: &'static str,
    pub integration_status: Option<u16>,
    pub integration_latency: Option<std::time::Duration>,
    /// The throttle scope that refused it (index into `observe::metrics::SCOPES`).
    pub throttled: Option<usize>,
    pub quota_exceeded: bool,
    /// How the cache took part (`None`: the route is not cached).
    pub cache: Option<crate::cache::policy::Outcome>,
    /// Whether the stage's canary served it (`None`: the stage has no canary).
    pub canary: Option<bool>,
    /// The subject of the connection's verified client certificate (mutual TLS).
    pub client: Option<std::rc::Rc<str>>,
    /// The claims of the request's verified JWT.
    pub claims: Option<std::sync::Arc<serde_json::Map<String, serde_json::Value>>>,
    /// The answer of the route's request authorizer (principal, context, usage key).
    pub authorizer: Option<std::sync::Arc<crate::auth::authorizer::Answer>>,
    /// The SigV4 signer of an IAM route (index into `Plan::iam_users`).
    pub iam_user: Option<u32>,
    /// An IAM refusal's body and `x-amzn-ErrorType` (its message names dates, keys
    /// and ARNs).
    pub iam_refusal: Option<Box<(String, &'static str)>>,
    /// Why the route's authorizer refused the request (empty: it did not).
    pub auth_error: &'static str,
    /// The authorizer's decision (`observe::metrics::AUTH_DECISIONS` index).
    pub auth: Option<u8>,
    /// A validation refusal: its message and the validator's reasons.
    pub validation: Option<Box<(String, String)>>,
}

impl Rec {
    /// Notes a response the gateway made itself.
    pub fn gateway_answer(&mut self, err: Error, is_head: bool) {
        self.status = err.status();
        self.error = err.message();
        self.bytes = if is_head { 0 } else { err.body_len() as u64 };
    }
}

/// Per-connection buffers the proxy reuses instead of allocating per request.
#[derive(Debug, Default)]
pub struct Scratch {
    /// The request head as sent upstream (plus a small body sent with it).
    pub upstream_head: Vec<u8>,
    pub response: ResponseHead,
    /// Pieces of large response bodies on their way through.
    pub body: Vec<u8>,
    /// The cache key of the request being served.
    pub cache_key: Vec<u8>,
    /// CORS header lines every response to this request carries (`auth::cors`).
    pub cors: Vec<u8>,
    /// The request's API has a CORS policy: the upstream's CORS fields are dropped.
    pub cors_on: bool,
    /// The request's API customises gateway responses (`transform::responses`).
    pub responses: Option<std::sync::Arc<crate::plan::StageResponses>>,
}

/// What a worker lends every request: its pools, balancers and id generator.
#[derive(Debug)]
pub struct WorkerCtx {
    pub pools: Pools,
    pub balancers: Balancers,
    pub ids: IdGen,
    /// This worker's leases on the plan's throttle budgets.
    pub locals: Locals,
    /// xorshift state for canary draws.
    pub rng: std::cell::Cell<u64>,
    /// Tokens this worker has verified (`auth::tokens`).
    pub tokens: std::cell::RefCell<crate::auth::tokens::TokenCache>,
}

impl WorkerCtx {
    /// A uniform draw in 0..1,000,000.
    pub fn roll_ppm(&self) -> u32 {
        let mut x = self.rng.get();
        crate::upstream::balance::next_rand(&mut x);
        self.rng.set(x);
        // the top 32 bits scaled to a million (no modulo bias worth a mention)
        (((x >> 32) * 1_000_000) >> 32) as u32
    }
}

/// Whether the client connection may carry another request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub keep_alive: bool,
}

/// Serves one request whose head has been parsed.
pub async fn handle(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    plan: &Plan,
    w: &WorkerCtx,
) -> Outcome {
    let mut generated = [0u8; 36];
    let rid: &[u8] = match head.header(b"x-request-id") {
        Some(v) if is_sane(v) => v,
        _ => {
            w.ids.write(&mut generated);
            &generated
        }
    };

    ds.rec.request_id.clear();
    ds.rec.request_id.extend_from_slice(rid);
    if ds.scratch.cors_on {
        ds.scratch.cors.clear();
        ds.scratch.cors_on = false;
    }
    if ds.scratch.responses.is_some() {
        ds.scratch.responses = None;
    }

    // route
    let mut host_buf = [0u8; 256];
    let host = lower_host(head.host(), &mut host_buf);
    let method = Method::from_bytes(head.method());
    // a CORS preflight is the gateway's to answer: no route, auth or throttle
    if method == Some(Method::Options) && head.header(b"origin").is_some() {
        if let Some(out) = respond::preflight(ds, head, plan, host, rid).await {
            return out;
        }
    }
    let (route_id, params) = match plan.router.lookup(host, method, head.path()) {
        Lookup::Found(id, params) => (id, params),
        Lookup::MethodNotAllowed(allow) => {
            return respond::error(ds, head, Error::MethodNotAllowed(allow), rid).await
        }
        Lookup::NotFound => return respond::error(ds, head, Error::NotFound, rid).await,
    };
    let route = plan.route(route_id);
    ds.rec.route = Some(route_id);
    if let Some(g) = &plan.stages[route.stage as usize].gateway_responses {
        ds.scratch.responses = Some(g.clone());
    }
    if let Some(c) = &plan.stages[route.stage as usize].cors {
        ds.scratch.cors_on = true;
        if let Some(origin) = head.header(b"origin") {
            c.actual(origin, &mut ds.scratch.cors);
        }
    }

    // auth: the route's authorizer, then its API key (DESIGN §8.1)
    if route.auth != crate::plan::RouteAuth::None {
        if let Err(e) = auth::authorize(ds, head, plan, route, &params, w).await {
            return respond::error(ds, head, e, rid).await;
        }
    }
    let key = match auth::identify(plan, route, head, ds.rec.authorizer.as_deref()) {
        Ok(key) => {
            ds.rec.key = key;
            key
        }
        Err(e) => return respond::error(ds, head, e, rid).await,
    };

    // throttle
    if let Err((scope, e)) = throttle::admit(plan, route_id, key, &w.locals) {
        ds.rec.throttled = Some(scope);
        return respond::error(ds, head, e, rid).await;
    }
    if let Err(e) = throttle::quota(plan, key, &w.locals) {
        ds.rec.quota_exceeded = true;
        return respond::error(ds, head, e, rid).await;
    }

    // validation of the required parameters (the body's waits for the body)
    if let Some(v) = &route.validate {
        if let Err(e) = validate::params(ds, head, route, v, &params) {
            return respond::error(ds, head, e, rid).await;
        }
    }

    // canary: per request, uniformly at random (as AWS does)
    let stage = &plan.stages[route.stage as usize];
    let integration = match (&route.canary, stage.canary_ppm) {
        (Some(c), Some(ppm)) => {
            let canary = w.roll_ppm() < ppm;
            ds.rec.canary = Some(canary);
            if canary {
                c
            } else {
                &route.integration
            }
        }
        _ => &route.integration,
    };

    // cache (canary requests neither use nor fill it: their answers may differ).
    // Boxed: its state would otherwise enlarge every request's future, cached or not.
    let cached = if route.cache.is_none() || ds.rec.canary == Some(true) {
        None
    } else {
        match Box::pin(cache::lookup(ds, head, plan, route, key, rid)).await {
            cache::Step::Answered(out) => return out,
            cache::Step::Forward(c) => c,
        }
    };

    // integrate → respond
    match integration {
        Integration::Mock(mock) => match &mock.mapping {
            None => {
                let v = route.validate.as_deref();
                respond::mock(ds, head, mock, rid, plan.gateway.max_body, v).await
            }
            Some(m) => {
                let m = mapped::Mapped::Mock(mock, m);
                Box::pin(mapped::serve(ds, head, plan, route, &params, m, rid, w)).await
            }
        },
        Integration::Http(h) => {
            let m = mapped::Mapped::Http(h);
            Box::pin(mapped::serve(ds, head, plan, route, &params, m, rid, w)).await
        }
        Integration::AwsMapped(a) => {
            let m = mapped::Mapped::Aws(a);
            Box::pin(mapped::serve(ds, head, plan, route, &params, m, rid, w)).await
        }
        Integration::LambdaMapped(l) => {
            let m = mapped::Mapped::Lambda(l);
            Box::pin(mapped::serve(ds, head, plan, route, &params, m, rid, w)).await
        }
        Integration::Aws(a) => {
            Box::pin(aws::call_action(
                ds,
                head,
                plan,
                route,
                &params,
                a,
                rid,
                w,
                route.timeout,
            ))
            .await
        }
        Integration::Lambda(l) => {
            Box::pin(lambda::invoke(ds, head, plan, route, &params, l, rid, w)).await
        }
        Integration::HttpProxy(p) => {
            proxy::forward(ds, head, plan, route, &params, p, rid, w, cached).await
        }
    }
}

/// Lower-cases an ASCII host into `buf`; anything else routes as the empty host
/// (which only the `*` host matches).
fn lower_host<'b>(host: &[u8], buf: &'b mut [u8; 256]) -> &'b str {
    if host.len() > buf.len() || !host.is_ascii() {
        return "";
    }
    let out = &mut buf[..host.len()];
    out.copy_from_slice(host);
    out.make_ascii_lowercase();
    std::str::from_utf8(out).unwrap_or("")
}
