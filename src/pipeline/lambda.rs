//! The `lambda` integration (AWS_PROXY, DESIGN §9.2): the whole request body read
//! (at most Lambda's 6 MB), the proxy event of the route's payload format, a
//! SigV4-signed Invoke over the worker's pooled connections within the route's
//! timeout, and the function's answer mapped back to the client through the same
//! response head and body sink as every other answer.
//!
//! Errors as AWS gives them: a function error or malformed answer → 502, Lambda
//! refusing the call → 500, a throttled call (429, nothing ran) is retried once and
//! then → 503, no answer in time → 504. Lambda's own headers (its request id, log
//! tail, executed version) never reach the client.
//!
//! Tested end to end in `tests/lambda.rs`.

use std::time::{Duration, Instant, SystemTime};

use crate::auth::authorizer::Payload;
use crate::aws::lambda::event::{self, Authorized, Extra};
use crate::aws::lambda::{self, response};
use crate::error::Error;
use crate::plan::router::Params;
use crate::plan::{LambdaProxy, Plan, Route, RouteAuth};
use crate::proto::h1::{BodyFraming, RequestHead};
use crate::upstream::call;

use super::body::{BodyError, BodyReader};
use super::{respond, Downstream, Outcome, WorkerCtx};

/// Lambda's synchronous payload limit, each way.
pub(super) const MAX_PAYLOAD: u64 = 6 * 1024 * 1024;
/// How long a throttled call waits before its one retry.
const THROTTLE_RETRY: Duration = Duration::from_millis(100);

#[allow(clippy::too_many_arguments)]
pub async fn invoke(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    plan: &Plan,
    route: &Route,
    params: &Params,
    l: &LambdaProxy,
    rid: &[u8],
    w: &WorkerCtx,
) -> Outcome {
    // the whole body: the event carries it
    let mut body = Vec::new();
    if head.body != BodyFraming::Empty {
        let read = match BodyReader::new(head, plan.gateway.max_body) {
            Ok(mut reader) => reader.buffer(ds, &mut body, MAX_PAYLOAD).await,
            Err(e) => Err(e),
        };
        match read {
            Ok(true) => {}
            Ok(false) => return refuse(ds, head, Error::RequestTooLong, rid),
            Err(BodyError::Gone) => return Outcome { keep_alive: false },
            Err(BodyError::Malformed) => return refuse(ds, head, Error::BadRequest, rid),
            Err(BodyError::TooLarge) => return refuse(ds, head, Error::BodyTooLarge, rid),
        }
    }
    if let Some(v) = &route.validate {
        if let Err(e) = super::validate::body(ds, head, v, &body) {
            return respond::error_after_body(ds, head, e, rid);
        }
    }
    let stage = &plan.stages[route.stage as usize];
    let facts = super::facts::Facts::new(ds, head, plan, route);
    let req = facts.request(head, plan, route, params);
    let content_type = head
        .header(b"content-type")
        .and_then(|v| std::str::from_utf8(v).ok());
    let base64 = match l.payload {
        Payload::V1 => event::is_binary(&stage.binary_media_types, content_type),
        Payload::V2 => !event::v2_is_text(content_type) || std::str::from_utf8(&body).is_err(),
    };
    let authorized = match (route.auth, &ds.rec.claims, &ds.rec.authorizer) {
        (RouteAuth::Jwt(_), Some(claims), _) => Authorized::Jwt(claims, &route.scopes),
        (RouteAuth::Request(_), _, Some(a)) => Authorized::Lambda(&a.context),
        (RouteAuth::Iam, _, _) => match ds.rec.iam_user {
            Some(u) => {
                let user = &plan.iam_users[u as usize];
                Authorized::Iam {
                    user_arn: &user.arn,
                    access_key: &user.access_key,
                    account: &plan.gateway.account,
                }
            }
            None => Authorized::None,
        },
        _ => Authorized::None,
    };
    let api_key = ds.rec.key.map(|k| {
        let info = &plan.key_info[k as usize];
        (
            head.header(b"x-api-key")
                .and_then(|v| std::str::from_utf8(v).ok())
                .unwrap_or(""),
            info.name.as_str(),
        )
    });
    let extra = Extra {
        body: &body,
        base64,
        authorized,
        api_key,
    };
    let payload = event::proxy_event(l.payload, &req, &extra);
    drop(body);

    let started = Instant::now();
    let answer = match call_function(
        w,
        &l.service,
        &l.function,
        &payload,
        started + route.timeout,
        ds.rec,
    )
    .await
    {
        Err(e) => Err(e),
        Ok(reply) => match lambda::outcome(&reply) {
            lambda::Outcome::Result(bytes) => {
                let binary = &stage.binary_media_types;
                let accept = head
                    .header(b"accept")
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|a| a.split(',').next());
                let decode = |ct: Option<&str>| match l.payload {
                    Payload::V2 => true,
                    Payload::V1 => event::is_binary(binary, ct) || event::is_binary(binary, accept),
                };
                response::parse(l.payload, bytes, decode).map_err(|_| Error::LambdaFailure)
            }
            lambda::Outcome::FunctionError(_) => Err(Error::LambdaFailure),
            lambda::Outcome::Throttled => Err(Error::Unavailable),
            lambda::Outcome::Refused(..) => Err(Error::LambdaRejected),
        },
    };
    ds.rec.integration_latency = Some(started.elapsed());
    let r = match answer {
        Ok(r) => r,
        Err(e) => return respond::error_after_body(ds, head, e, rid),
    };
    let keep = head.keep_alive && !ds.draining;
    let has_body = r.status >= 200 && r.status != 204 && r.status != 304;
    let mut h = ds.head(r.status);
    for (n, v) in &r.headers {
        h.field(n.as_bytes(), v.as_bytes());
    }
    h.field(b"x-request-id", rid);
    let framing = if has_body {
        BodyFraming::Length(r.body.len() as u64)
    } else {
        BodyFraming::Empty
    };
    let (out, _) = h.end(framing, !keep);
    if has_body && !head.is_head() {
        out.extend_from_slice(&r.body);
    }
    ds.rec.status = r.status;
    ds.rec.bytes = if has_body { r.body.len() as u64 } else { 0 };
    Outcome { keep_alive: keep }
}

/// Invokes `function` with `payload`, by `deadline`: Lambda's reply once it is
/// not a throttle (a throttled call is retried once, after a pause). Errors: no
/// answer in time → 504; Lambda unreachable or the request unsignable → 500.
pub(super) async fn call_function(
    w: &WorkerCtx,
    service: &crate::aws::Service,
    function: &str,
    payload: &[u8],
    deadline: Instant,
    rec: &mut super::Rec,
) -> Result<call::Reply, Error> {
    let mut retried = false;
    loop {
        let Ok(request) = lambda::invoke_request(service, function, payload, SystemTime::now())
        else {
            return Err(Error::LambdaRejected);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::UpstreamTimeout);
        }
        let reply = match call::call(
            &w.pools,
            &service.endpoint,
            &request,
            left,
            MAX_PAYLOAD as usize + 4096,
        )
        .await
        {
            Ok(r) => r,
            Err(Error::UpstreamTimeout | Error::UpstreamConnectTimeout) => {
                return Err(Error::UpstreamTimeout)
            }
            Err(_) => return Err(Error::LambdaRejected),
        };
        rec.integration_status = Some(reply.status);
        if reply.status == 429 && !retried {
            retried = true;
            monoio::time::sleep(THROTTLE_RETRY).await;
            continue;
        }
        return Ok(reply);
    }
}

/// A refusal before the call: the body may be unread, so the connection closes.
fn refuse(ds: &mut Downstream<'_>, head: &RequestHead, e: Error, rid: &[u8]) -> Outcome {
    super::respond::send_error(ds, head, e, rid, true);
    Outcome { keep_alive: false }
}
