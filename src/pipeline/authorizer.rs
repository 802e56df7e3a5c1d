//! The auth stage for request and token authorizers (DESIGN §8.3): the request's
//! identity values (missing → 401, no call), the node's cached answer for them or
//! a call (coalesced with other requests asking for the same identity, on any
//! core), then the answer decided for this request's method ARN.
//!
//! The call is an HTTP `POST` of the event, or a SigV4-signed Lambda Invoke, over
//! the worker's pooled connections (`upstream::call`), within the authorizer's
//! timeout. Anything but a usable answer is a 500 (AWS), recorded in
//! `$context.authorizer.error`.
//!
//! Tested end to end in `tests/authorizers.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::auth::authorizer::{self, Answer, Decision, Refusal};
use crate::auth::decisions::{Lookup, Poll};
use crate::aws::lambda;
use crate::error::Error;
use crate::plan::router::Params;
use crate::plan::{Caller, Plan, RequestAuthorizer, Route};
use crate::proto::h1::RequestHead;

use super::{Downstream, WorkerCtx};

/// How often a request waiting for another request's call looks for its answer.
const POLL: Duration = Duration::from_millis(1);

/// Indexes into `observe::metrics::AUTH_DECISIONS`.
const MISSING: u8 = 1;
const DENY: u8 = 11;
const IMPLICIT_DENY: u8 = 12;
const UNAUTHORIZED: u8 = 13;
const FAILED: u8 = 14;
const TIMEOUT: u8 = 15;

/// Asks the route's request authorizer; its answer goes to `ds.rec.authorizer`.
pub async fn authorize(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    plan: &Plan,
    route: &Route,
    params: &Params,
    w: &WorkerCtx,
    a: &RequestAuthorizer,
) -> Result<(), Error> {
    let stage = &plan.stages[route.stage as usize];
    let facts = super::facts::Facts::new(ds, head, plan, route);
    let req = facts.request(head, plan, route, params);
    let method_arn = facts.method_arn.as_str();
    let Some(identity) = authorizer::identity_values(&a.identity, &req) else {
        return refuse(
            ds,
            MISSING,
            "the identity source is missing",
            Error::Unauthenticated,
        );
    };
    let mut key = Vec::with_capacity(64);
    key.extend_from_slice(stage.name.as_bytes());
    for v in &identity {
        key.push(0);
        key.extend_from_slice(v.as_bytes());
    }

    let deadline = Instant::now() + a.timeout;
    let answer = loop {
        match a.results.lookup(&key, Instant::now()) {
            Lookup::Hit(answer) => break Ok(answer),
            Lookup::Call(ticket) => {
                let got = call(a, &identity, &req, w).await;
                match &got {
                    Ok(answer) => ticket.answer(answer.clone()),
                    // "Unauthorized" is an answer AWS does not cache either
                    Err(_) => ticket.fail(),
                }
                break got;
            }
            Lookup::Wait(id) => {
                let polled = loop {
                    if Instant::now() >= deadline {
                        break Poll::Failed;
                    }
                    monoio::time::sleep(POLL).await;
                    match a.results.poll(&key, id) {
                        Poll::Pending => continue,
                        other => break other,
                    }
                };
                match polled {
                    Poll::Ready(answer) => break Ok(answer),
                    Poll::Failed => {
                        break Err(Failure::Other("the coalesced authorizer call failed"))
                    }
                    // the call finished and its slot was reused: look again
                    Poll::Moved | Poll::Pending => continue,
                }
            }
        }
    };
    let answer = match answer {
        Ok(a) => a,
        Err(Failure::Unauthorized) => {
            return refuse(
                ds,
                UNAUTHORIZED,
                "the authorizer answered Unauthorized",
                Error::Unauthenticated,
            )
        }
        Err(Failure::Timeout) => {
            return refuse(
                ds,
                TIMEOUT,
                "the authorizer did not answer in time",
                Error::AuthorizerFailure,
            )
        }
        Err(Failure::Other(why)) => return refuse(ds, FAILED, why, Error::AuthorizerFailure),
    };
    let decision = answer.decide(method_arn);
    ds.rec.authorizer = Some(answer);
    match decision {
        Decision::Allow => {
            ds.rec.auth = Some(0);
            Ok(())
        }
        Decision::Forbidden => refuse(
            ds,
            DENY,
            "the authorizer denied the request",
            Error::Forbidden,
        ),
        Decision::Denied { explicit: true } => refuse(
            ds,
            DENY,
            "the authorizer's policy denies the method",
            Error::AccessDenied { explicit: true },
        ),
        Decision::Denied { explicit: false } => refuse(
            ds,
            IMPLICIT_DENY,
            "the authorizer's policy does not allow the method",
            Error::AccessDenied { explicit: false },
        ),
    }
}

fn refuse(ds: &mut Downstream<'_>, reason: u8, why: &'static str, e: Error) -> Result<(), Error> {
    ds.rec.auth = Some(reason);
    ds.rec.auth_error = why;
    Err(e)
}

/// Why no answer came.
#[derive(Debug)]
enum Failure {
    /// The authorizer said so (401).
    Unauthorized,
    Timeout,
    Other(&'static str),
}

/// Calls the authorizer once and reads its answer.
async fn call(
    a: &RequestAuthorizer,
    identity: &[String],
    req: &authorizer::Request<'_>,
    w: &WorkerCtx,
) -> Result<Arc<Answer>, Failure> {
    let event = if a.token {
        authorizer::token_event(identity.first().map_or("", String::as_str), req)
    } else {
        authorizer::request_event(a.payload, identity, req)
    };
    let body =
        serde_json::to_vec(&event).map_err(|_| Failure::Other("the event could not be written"))?;
    let reply = match &a.caller {
        Caller::Http(ep) => {
            let mut out = Vec::with_capacity(256 + body.len());
            out.extend_from_slice(b"POST ");
            out.extend_from_slice(if ep.path.is_empty() {
                b"/"
            } else {
                ep.path.as_bytes()
            });
            out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
            out.extend_from_slice(ep.authority.as_bytes());
            out.extend_from_slice(b"\r\ncontent-type: application/json\r\ncontent-length: ");
            out.extend_from_slice(body.len().to_string().as_bytes());
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(&body);
            let reply = send(w, ep, &out, a.timeout).await?;
            match reply.status {
                200..=299 => reply.body,
                401 => return Err(Failure::Unauthorized),
                _ => {
                    return Err(Failure::Other(
                        "the authorizer answered with an error status",
                    ))
                }
            }
        }
        Caller::Lambda { function, service } => {
            let out = lambda::invoke_request(service, function, &body, SystemTime::now())
                .map_err(|_| Failure::Other("the Lambda request could not be signed"))?;
            let reply = send(w, &service.endpoint, &out, a.timeout).await?;
            match lambda::outcome(&reply) {
                lambda::Outcome::Result(b) => b.to_vec(),
                lambda::Outcome::FunctionError(Some(m)) if m == "Unauthorized" => {
                    return Err(Failure::Unauthorized)
                }
                lambda::Outcome::FunctionError(_) => {
                    return Err(Failure::Other("the authorizer function failed"))
                }
                lambda::Outcome::Throttled => {
                    return Err(Failure::Other("Lambda throttled the authorizer"))
                }
                lambda::Outcome::Refused(..) => {
                    return Err(Failure::Other("Lambda refused to invoke the authorizer"))
                }
            }
        }
    };
    match authorizer::parse_answer(a.payload, a.response, &reply) {
        Ok(answer) => Ok(Arc::new(answer)),
        Err(Refusal::Unauthorized) => Err(Failure::Unauthorized),
        Err(Refusal::Invalid(_)) => Err(Failure::Other("the authorizer's answer is not valid")),
    }
}

async fn send(
    w: &WorkerCtx,
    ep: &crate::upstream::call::Endpoint,
    req: &[u8],
    timeout: Duration,
) -> Result<crate::upstream::call::Reply, Failure> {
    match crate::upstream::call::call(&w.pools, ep, req, timeout, authorizer::MAX_ANSWER).await {
        Ok(r) => Ok(r),
        Err(Error::UpstreamTimeout | Error::UpstreamConnectTimeout) => Err(Failure::Timeout),
        Err(_) => Err(Failure::Other("the authorizer could not be reached")),
    }
}
