//! The `http_proxy` integration: rewrite the request for the upstream, stream bodies
//! both ways, and frame the response for the client.
//!
//! The route's timeout covers connecting, sending the request and receiving the
//! response head (AWS's integration timeout); while the body streams, each read
//! must make progress within that same timeout. A request on a pooled connection
//! that fails before any response byte is sent once more on a fresh connection when
//! it is idempotent and fully buffered.

use crate::error::Error;
use crate::observe::request_id::IdGen;
use crate::observe::trace::next_traceparent;
use crate::plan::{Params, Plan, Proxy, Route, Target};
use crate::proto::h1::{is_hop_by_hop, BodyFraming, RequestHead, ResponseHead};
use crate::proto::head::{request_chunk, RequestOut};

use super::body::{BodyError, BodyReader};

mod attempts;
mod send;
pub use attempts::LITERAL_IDLE;
mod fill;
mod response;
use super::cache::Forward;
use super::{Downstream, Outcome, WorkerCtx};
use response::{stream_response, write_response_head, Cut, Out};

/// Why an exchange stopped.
enum Fail {
    /// Answer the client with this error.
    Respond(Error),
    /// The client is gone or the response was already under way: close.
    Close,
}

impl From<BodyError> for Fail {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::Gone => Fail::Close,
            BodyError::Malformed => Fail::Respond(Error::BadRequest),
            BodyError::TooLarge => Fail::Respond(Error::BodyTooLarge),
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn forward(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    plan: &Plan,
    route: &Route,
    params: &Params,
    p: &Proxy,
    rid: &[u8],
    w: &WorkerCtx,
    cache: Option<Forward<'_>>,
) -> Outcome {
    // The connection's reusable buffers, lent to this request and given back after.
    let mut req = std::mem::take(&mut ds.scratch.upstream_head);
    let mut resp = std::mem::take(&mut ds.scratch.response);
    req.clear();
    let out = forward_with(
        ds, head, plan, route, params, p, rid, w, &mut req, &mut resp, cache,
    )
    .await;
    ds.scratch.upstream_head = req;
    ds.scratch.response = resp;
    out
}

#[allow(clippy::too_many_arguments)]
async fn forward_with(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    plan: &Plan,
    route: &Route,
    params: &Params,
    p: &Proxy,
    rid: &[u8],
    w: &WorkerCtx,
    req: &mut Vec<u8>,
    resp: &mut ResponseHead,
    cache: Option<Forward<'_>>,
) -> Outcome {
    let mut body = match BodyReader::new(head, plan.gateway.max_body) {
        Ok(b) => b,
        Err(e) => return fail(ds, head, e.into(), rid, false),
    };
    // Request buffering: a chunked body that fits is read (and its framing checked)
    // before the upstream hears anything, and goes with a Content-Length. A body
    // with a Content-Length that fits is read straight after the head below.
    let limit = route.request_buffering;
    let mut framing = head.body;
    let mut early = Vec::new();
    let pre_read = limit > 0 && framing == BodyFraming::Chunked;
    if pre_read {
        early = std::mem::take(&mut ds.scratch.body);
        early.clear();
        match body.buffer(ds, &mut early, limit).await {
            Ok(true) => framing = BodyFraming::Length(early.len() as u64),
            Ok(false) => {}
            Err(e) => {
                ds.scratch.body = early;
                return fail(ds, head, e.into(), rid, false);
            }
        }
    }
    let h2 = matches!(p.target, Target::Upstream(u) if plan.upstreams[u as usize].h2);
    let claims = match route.auth {
        crate::plan::RouteAuth::Jwt(i) => Claims {
            forward: &plan.authorizers[i as usize].forward,
            claims: ds.rec.claims.as_deref(),
        },
        crate::plan::RouteAuth::Request(i) => Claims {
            forward: &plan.request_authorizers[i as usize].forward,
            claims: ds.rec.authorizer.as_ref().map(|a| &*a.context),
        },
        crate::plan::RouteAuth::None | crate::plan::RouteAuth::Iam => Claims::default(),
    };
    // HTTP API parameter mapping: only routes that have one pay for it
    let changes = p.mapping.as_deref().map(|m| {
        let facts = MappingFacts {
            head,
            plan,
            route,
            params,
            rid,
            peer_ip: ds.peer_ip,
            rec: ds.rec,
        };
        let query = head
            .query()
            .and_then(|q| std::str::from_utf8(q).ok())
            .unwrap_or("");
        m.render(&facts, query)
    });
    let head_len = write_request_head(
        req,
        h2,
        &claims,
        changes.as_ref(),
        head,
        framing,
        plan,
        route,
        params,
        p,
        rid,
        ds.peer_ip,
        ds.scheme,
        ds.rec.client.as_deref(),
        &w.ids,
    );
    let buffered = if pre_read {
        // larger than the buffer: what was read is the first chunk, the rest streams
        request_chunk(req, framing == BodyFraming::Chunked && !h2, &early);
        early.clear();
        ds.scratch.body = early;
        Ok(())
    } else if limit > 0 && matches!(framing, BodyFraming::Length(n) if n <= limit) {
        body.buffer(ds, req, limit).await.map(|_| ())
    } else if body.fully_buffered(ds) && !body.is_done() {
        // A body already in our buffer goes out with the head.
        body.read(ds, req).await
    } else {
        Ok(())
    };
    if let Err(e) = buffered {
        return fail(ds, head, e.into(), rid, false);
    }
    // a route with a body model buffers up to max_body (plan::compile): the whole
    // body is after the head
    if let Some(v) = route.validate.as_deref().filter(|v| v.body.is_some()) {
        let whole = body.is_done() || head.body == BodyFraming::Empty;
        let checked = if whole {
            super::validate::body(ds, head, v, &req[head_len..])
        } else {
            Err(Error::BodyTooLarge)
        };
        if let Err(e) = checked {
            return fail(ds, head, Fail::Respond(e), rid, whole);
        }
    }
    // A request whose whole body is in `req` can be sent again.
    let replayable = body.is_done() && is_idempotent(head.method());
    if let Target::Upstream(u) = p.target {
        if let Err(e) = attempts::admit(plan, u, &w.balancers, route.timeout).await {
            return if body.is_done() {
                fail(ds, head, Fail::Respond(e), rid, true)
            } else {
                super::respond::error(ds, head, e, rid).await
            };
        }
        w.balancers.deposit(plan, u);
    }

    let started = std::time::Instant::now();
    let peer_ip: &str = ds.peer_ip;
    let key = attempts::hash_key(plan, p, head, peer_ip);
    let deadline = started + route.timeout;
    let exchange = attempts::exchange(
        ds, head, &mut body, req, head_len, resp, plan, p, key, replayable, deadline, w,
    );
    let mut conn = match exchange.await {
        Ok(c) => c,
        Err(f) => {
            let done = body.is_done();
            return fail(ds, head, f, rid, done);
        }
    };
    ds.rec.integration_latency = Some(started.elapsed());
    ds.rec.integration_status = Some(resp.status);
    ds.rec.status = resp.status;
    if let Out::Length(n) = framing_bytes(resp, head) {
        ds.rec.bytes = n;
    }
    // The client's body must be fully read for its connection to be reusable; an
    // upstream that answered early leaves the rest unread, so the client must go.
    let client_clean = body.is_done();
    let mut keep = head.keep_alive && !ds.draining && client_clean;
    let mut extra = Vec::new();
    if let Some(mut fwd) = cache {
        let pr = fwd.policy;
        let buf = conn.rbuf.data();
        let why_not = crate::cache::policy::unstorable(
            resp.status,
            &pr.statuses,
            &pr.spec,
            resp.headers
                .iter()
                .map(|(n, v)| (&buf[n.0..n.1], &buf[v.0..v.1])),
        );
        match fwd.fill.take() {
            Some(f) if why_not.is_none() && !head.is_head() && fill::may_fit(resp, f.room(0)) => {
                let headers = fill::stored_headers(&conn, resp, ds.scratch.cors_on);
                conn.rbuf.consume(resp.head_len);
                let idle = route.timeout;
                return Box::pin(fill::respond_and_store(
                    ds, head, conn, resp, headers, &fwd, f, rid, keep, idle, w,
                ))
                .await;
            }
            Some(_) => fwd.write_lines(&mut extra, why_not.or(Some("size"))),
            None => fwd.write_lines(&mut extra, None),
        }
    }
    // Until something of this response is flushed, a failure can still become a 502.
    let mark = ds.wbuf.len();
    // HTTP API response mapping for this status (routes with one only)
    let changes = p.response_mapping.as_deref().and_then(|m| {
        let facts = MappingFacts {
            head,
            plan,
            route,
            params,
            rid,
            peer_ip: ds.peer_ip,
            rec: ds.rec,
        };
        let buf = conn.rbuf.data();
        let header = |name: &str| {
            let all: Vec<&[u8]> = resp
                .headers
                .iter()
                .filter(|(n, _)| buf[n.0..n.1].eq_ignore_ascii_case(name.as_bytes()))
                .map(|(_, v)| &buf[v.0..v.1])
                .collect();
            (!all.is_empty()).then(|| String::from_utf8_lossy(&all.join(&b","[..])).into_owned())
        };
        m.render(resp.status, &facts, &header)
    });
    if let Some(s) = changes.as_ref().and_then(|c| c.status) {
        ds.rec.status = s;
    }
    let framing = write_response_head(
        ds,
        head,
        &conn,
        resp,
        rid,
        &mut keep,
        &extra,
        changes.as_ref(),
    );
    conn.rbuf.consume(resp.head_len);
    // A small body already read with the head is copied without an await.
    let streamed = match framing {
        Out::None => Ok(()),
        Out::Length(n) if conn.rbuf.data().len() as u64 >= n => {
            ds.wbuf.extend_from_slice(&conn.rbuf.data()[..n as usize]);
            conn.rbuf.consume(n as usize);
            Ok(())
        }
        _ => Box::pin(stream_response(ds, &mut conn, framing, route.timeout)).await,
    };
    match streamed {
        Ok(()) => {
            if resp.keep_alive {
                w.pools.put(conn);
            }
            Outcome { keep_alive: keep }
        }
        Err(Cut::Unsent) => {
            // The upstream broke off before its (small) body was complete and none of
            // it has been sent: answer 502 instead of a truncated response.
            ds.wbuf.truncate(mark);
            if let Some(h2) = ds.io.h2() {
                h2.drop_head();
            }
            let e = Error::UpstreamMalformed;
            super::respond::send_error(ds, head, e, rid, !keep);
            Outcome { keep_alive: keep }
        }
        Err(Cut::Sent) => {
            let _ = ds.flush().await;
            Outcome { keep_alive: false }
        }
    }
}

/// Answers a failed exchange. `body_read`: the request's body was read to its end,
/// so the connection can carry another request.
fn fail(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    f: Fail,
    rid: &[u8],
    body_read: bool,
) -> Outcome {
    match f {
        Fail::Respond(e) => {
            // The request body may be partly unread: never reuse the connection
            // unless all of it was read.
            let keep = head.keep_alive
                && !ds.draining
                && !e.closes_connection()
                && (head.body == BodyFraming::Empty || body_read);
            super::respond::send_error(ds, head, e, rid, !keep);
            Outcome { keep_alive: keep }
        }
        Fail::Close => {
            // the client went away: AWS logs these as 499-like; we keep the status unset
            ds.rec.error = "client closed the connection";
            Outcome { keep_alive: false }
        }
    }
}

/// The body length a response declares, for the access log (streamed bodies are
/// counted as they go).
fn framing_bytes(resp: &ResponseHead, head: &RequestHead) -> Out {
    match resp.body {
        BodyFraming::Length(n) if !head.is_head() => Out::Length(n),
        _ => Out::None,
    }
}

fn is_idempotent(method: &[u8]) -> bool {
    matches!(
        method,
        b"GET" | b"HEAD" | b"OPTIONS" | b"PUT" | b"DELETE" | b"TRACE"
    )
}

/// What a route's authorizer forwards upstream: a JWT's verified claims
/// (`forward_claims`) or a request authorizer's answer context (`forward_context`).
#[derive(Default)]
struct Claims<'a> {
    forward: &'a [(String, String)],
    claims: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// Writes the request head for the upstream, in its protocol (`h2`: as the items of
/// an HTTP/2 HEADERS frame, else HTTP/1.1 text). Returns the head's length.
#[allow(clippy::too_many_arguments)]
fn write_request_head(
    out: &mut Vec<u8>,
    h2: bool,
    claims: &Claims<'_>,
    changes: Option<&crate::transform::params::Changes>,
    head: &RequestHead,
    framing: BodyFraming,
    plan: &Plan,
    route: &Route,
    params: &Params,
    p: &Proxy,
    rid: &[u8],
    peer_ip: &str,
    scheme: &str,
    client: Option<&str>,
    ids: &IdGen,
) -> usize {
    let path = head.path();
    let mut r = RequestOut::start(out, h2, head.method());
    r.target(|out| {
        match (&p.path, changes.and_then(|c| c.path.as_deref())) {
            (_, Some(mapped)) => {
                if !mapped.starts_with('/') {
                    out.push(b'/');
                }
                out.extend_from_slice(mapped.as_bytes());
            }
            (Some(t), None) => t.render(out, |i| params.get(path, i)),
            (None, None) => {
                let base = &plan.stages[route.stage as usize].base_path;
                let rest = path.get(base.len()..).unwrap_or("");
                if !rest.starts_with('/') {
                    out.push(b'/');
                }
                out.extend_from_slice(rest.as_bytes());
            }
        }
        match changes.and_then(|c| c.query.as_deref()) {
            Some("") => {}
            Some(q) => {
                out.push(b'?');
                out.extend_from_slice(q.as_bytes());
            }
            None => {
                if let Some(q) = head.query() {
                    out.push(b'?');
                    out.extend_from_slice(q);
                }
            }
        }
    });
    r.field(b"host", p.host.as_bytes());

    let connection_tokens = head.header(b"connection").unwrap_or(b"");
    let mut xff: Option<&[u8]> = None;
    for (name, value) in head.headers() {
        if is_hop_by_hop(name)
            || name.eq_ignore_ascii_case(b"host")
            || name.eq_ignore_ascii_case(b"content-length")
            || name.eq_ignore_ascii_case(b"expect")
            || name.eq_ignore_ascii_case(b"x-request-id")
            || name.eq_ignore_ascii_case(b"traceparent")
            || name.eq_ignore_ascii_case(b"x-forwarded-proto")
            || name.eq_ignore_ascii_case(b"x-forwarded-host")
            // only the gateway vouches for a client certificate, or for claims
            || name.eq_ignore_ascii_case(b"x-client-cert-subject")
            || claims.forward.iter().any(|(_, h)| name.eq_ignore_ascii_case(h.as_bytes()))
            || crate::proto::h1::has_token(connection_tokens, name)
        {
            // The one TE worth passing on: the client takes trailers (gRPC needs them
            // to see its status), and so does the gateway, which forwards them.
            if name.eq_ignore_ascii_case(b"te") && crate::proto::h1::has_token(value, b"trailers") {
                r.field(b"te", b"trailers");
            }
            continue;
        }
        if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            xff = Some(value);
            continue;
        }
        if changes.is_some_and(|c| c.drops(name)) {
            continue;
        }
        r.field(name, value);
    }
    if let Some(c) = changes {
        for (n, v) in &c.add {
            r.field(n.as_bytes(), v.as_bytes());
        }
    }
    r.field_with(b"x-forwarded-for", |v| {
        if let Some(prev) = xff {
            v.extend_from_slice(prev);
            v.extend_from_slice(b", ");
        }
        v.extend_from_slice(peer_ip.as_bytes());
    });
    r.field(b"x-forwarded-proto", scheme.as_bytes());
    if !head.host_header().is_empty() {
        r.field(b"x-forwarded-host", head.host_header());
    }
    r.field(b"x-request-id", rid);
    if let Some(subject) = client {
        r.field(b"x-client-cert-subject", subject.as_bytes());
    }
    if let Some(map) = claims.claims {
        for (claim, header) in claims.forward {
            let value = match map.get(claim) {
                Some(serde_json::Value::String(v)) => std::borrow::Cow::Borrowed(v.as_str()),
                Some(v) => std::borrow::Cow::Owned(v.to_string()),
                None => continue,
            };
            // a claim is the issuer's text, not ours: never a control character
            // (CR/LF would start a header of the token holder's choosing)
            if value
                .bytes()
                .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
            {
                r.field(header.as_bytes(), value.as_bytes());
            }
        }
    }
    r.field_with(b"traceparent", |v| {
        next_traceparent(head.header(b"traceparent"), ids, v)
    });
    r.end(framing)
}

/// What a parameter mapping's variables read of a proxied request.
struct MappingFacts<'a> {
    head: &'a RequestHead,
    plan: &'a Plan,
    route: &'a Route,
    params: &'a Params,
    rid: &'a [u8],
    peer_ip: &'a str,
    rec: &'a super::Rec,
}

impl crate::transform::params::Facts for MappingFacts<'_> {
    fn header(&self, lower: &str) -> Option<String> {
        // repeated headers join with commas, as AWS's mapping reads them
        let all: Vec<&[u8]> = self
            .head
            .headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case(lower.as_bytes()))
            .map(|(_, v)| v)
            .collect();
        (!all.is_empty()).then(|| String::from_utf8_lossy(&all.join(&b","[..])).into_owned())
    }

    fn query(&self, name: &str) -> Option<String> {
        let q = self
            .head
            .query()
            .and_then(|q| std::str::from_utf8(q).ok())?;
        let all: Vec<String> = crate::auth::authorizer::query_pairs(q)
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v)
            .collect();
        (!all.is_empty()).then(|| all.join(","))
    }

    fn path_param(&self, i: usize) -> String {
        self.params.get(self.head.path(), i).to_string()
    }

    fn path(&self) -> String {
        let base = &self.plan.stages[self.route.stage as usize].base_path;
        let p = self.head.path();
        p.strip_prefix(base.as_str())
            .filter(|r| r.starts_with('/'))
            .unwrap_or(p)
            .to_string()
    }

    fn context(&self, name: &str) -> Option<String> {
        let text = |v: &serde_json::Value| crate::auth::authorizer::context_text(v).into_owned();
        let stage = &self.plan.stages[self.route.stage as usize];
        match name {
            "requestId" | "extendedRequestId" => {
                Some(String::from_utf8_lossy(self.rid).into_owned())
            }
            "identity.sourceIp" => Some(self.peer_ip.to_string()),
            "identity.userAgent" => self.header("user-agent"),
            "stage" => Some(stage.name.clone()),
            "apiId" => Some(stage.api.clone()),
            "httpMethod" => Some(String::from_utf8_lossy(self.head.method()).into_owned()),
            "routeKey" => Some(self.route.key.to_string()),
            "domainName" => Some(String::from_utf8_lossy(self.head.host()).into_owned()),
            "authorizer.principalId" => self
                .rec
                .authorizer
                .as_ref()
                .and_then(|a| a.principal.clone())
                .or_else(|| {
                    self.rec
                        .claims
                        .as_ref()
                        .and_then(|c| c.get("sub"))
                        .map(text)
                }),
            "identity.apiKeyId" => self
                .rec
                .key
                .map(|k| self.plan.key_info[k as usize].name.clone()),
            other => {
                if let Some(c) = other.strip_prefix("authorizer.claims.") {
                    self.rec.claims.as_ref().and_then(|m| m.get(c)).map(text)
                } else if let Some(k) = other.strip_prefix("authorizer.") {
                    self.rec
                        .authorizer
                        .as_ref()
                        .and_then(|a| a.context.get(k))
                        .map(text)
                } else {
                    None
                }
            }
        }
    }
}
