//! The `aws` integration (DESIGN §9.3): the request's mapped parameters resolved
//! (body, body members, headers, query, path, context), the service action's body
//! built (`aws::actions`), signed for the service and sent over the worker's pooled
//! connections within the route's timeout. The service's answer goes to the client
//! as the service gave it (status, `content-type`, body), as AWS's HTTP APIs do;
//! when the service refuses the gateway's own credentials or signature the client
//! gets a 500 and the log line names the AWS request id.
//!
//! Tested end to end against moto's server in `tests/aws_actions.rs`.

use std::time::{Instant, SystemTime};

use crate::error::Error;
use crate::plan::router::Params;
use crate::plan::{AwsAction, Param, Plan, Route};
use crate::proto::h1::{BodyFraming, RequestHead};
use crate::upstream::call;

use super::body::{BodyError, BodyReader};
use super::{respond, Downstream, Outcome, WorkerCtx};

/// The largest service answer passed on.
const MAX_ANSWER: usize = 10 << 20;

/// Error types that mean the gateway's own credentials or signature were refused.
const AUTH_ERRORS: [&str; 7] = [
    "UnrecognizedClient",
    "InvalidSignature",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "MissingAuthenticationToken",
    "IncompleteSignature",
    "AccessDenied",
];

#[allow(clippy::too_many_arguments)]
pub async fn call_action(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    plan: &Plan,
    route: &Route,
    params: &Params,
    a: &AwsAction,
    rid: &[u8],
    w: &WorkerCtx,
    timeout: std::time::Duration,
) -> Outcome {
    let mut body = Vec::new();
    if head.body != BodyFraming::Empty {
        let read = match BodyReader::new(head, plan.gateway.max_body) {
            Ok(mut reader) => reader.buffer(ds, &mut body, plan.gateway.max_body).await,
            Err(e) => Err(e),
        };
        match read {
            Ok(true) => {}
            Ok(false) | Err(BodyError::TooLarge) => {
                return refuse(ds, head, Error::BodyTooLarge, rid)
            }
            Err(BodyError::Gone) => return Outcome { keep_alive: false },
            Err(BodyError::Malformed) => return refuse(ds, head, Error::BadRequest, rid),
        }
    }
    if let Some(v) = &route.validate {
        if let Err(e) = super::validate::body(ds, head, v, &body) {
            return respond::error_after_body(ds, head, e, rid);
        }
    }
    let json: Option<serde_json::Value> = if a
        .params
        .iter()
        .any(|(_, p)| matches!(p, Param::Body(path) if !path.is_empty()))
    {
        serde_json::from_slice(&body).ok()
    } else {
        None
    };
    let text = |v: Option<&[u8]>| {
        v.map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    let values: Vec<(&str, String)> = a
        .params
        .iter()
        .map(|(name, p)| {
            let v = match p {
                Param::Literal(s) => s.clone(),
                Param::Body(path) if path.is_empty() => String::from_utf8_lossy(&body).into_owned(),
                Param::Body(path) => {
                    let found = path
                        .iter()
                        .try_fold(json.as_ref(), |v, k| v.map(|v| v.get(k.as_str())))
                        .flatten();
                    match found {
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(serde_json::Value::Null) | None => String::new(),
                        Some(other) => other.to_string(),
                    }
                }
                Param::Header(h) => text(head.header(h.as_bytes())),
                Param::Query(q) => head
                    .query()
                    .and_then(|q| std::str::from_utf8(q).ok())
                    .and_then(|qs| {
                        crate::auth::authorizer::query_pairs(qs)
                            .find(|(k, _)| k == q)
                            .map(|(_, v)| v)
                    })
                    .unwrap_or_default(),
                Param::Path(i) => params.get(head.path(), *i).to_string(),
                Param::RequestId => String::from_utf8_lossy(rid).into_owned(),
                Param::SourceIp => ds.peer_ip.to_string(),
            };
            (*name, v)
        })
        .collect();
    let payload = match a.action.body(&values) {
        Ok(p) => p,
        // a parameter the request did not give (or gave in the wrong form): AWS's 400
        Err(_) => return respond::error_after_body(ds, head, Error::BadRequest, rid),
    };
    drop(body);

    let svc = &a.service;
    let path = if svc.endpoint.path.is_empty() {
        "/".to_string()
    } else {
        svc.endpoint.path.clone()
    };
    let content_type = format!("application/x-amz-json-{}", a.action.json);
    let headers = [
        ("host", svc.endpoint.authority.as_str()),
        ("content-type", content_type.as_str()),
        ("x-amz-target", a.action.target),
    ];
    let signed = crate::aws::sign::sign(
        &svc.credentials.load(),
        &svc.keys,
        &svc.region,
        svc.name,
        "POST",
        &path,
        "",
        &headers,
        &payload,
        SystemTime::now(),
    );
    let mut req = Vec::with_capacity(512 + payload.len());
    req.extend_from_slice(b"POST ");
    req.extend_from_slice(path.as_bytes());
    req.extend_from_slice(b" HTTP/1.1\r\n");
    let length = payload.len().to_string();
    let extra = [("content-length", length.as_str())];
    for (n, v) in headers
        .iter()
        .chain(extra.iter())
        .copied()
        .chain(signed.iter().map(|(n, v)| (*n, v.as_str())))
    {
        crate::proto::head::push_line(&mut req, n.as_bytes(), v.as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(&payload);

    let started = Instant::now();
    let reply = call::call(&w.pools, &svc.endpoint, &req, timeout, MAX_ANSWER).await;
    ds.rec.integration_latency = Some(started.elapsed());
    let reply = match reply {
        Ok(r) => r,
        Err(Error::UpstreamTimeout | Error::UpstreamConnectTimeout) => {
            return respond::error_after_body(ds, head, Error::UpstreamTimeout, rid)
        }
        Err(_) => return respond::error_after_body(ds, head, Error::LambdaRejected, rid),
    };
    ds.rec.integration_status = Some(reply.status);
    if refused_credentials(&reply, a.action.name, svc.name) {
        ds.rec.error = "the AWS service refused the gateway's credentials";
        return respond::error_after_body(ds, head, Error::LambdaRejected, rid);
    }
    let keep = head.keep_alive && !ds.draining;
    let mut h = ds.head(reply.status);
    h.field(
        b"content-type",
        reply.header("content-type").unwrap_or(b"application/json"),
    );
    h.field(b"x-request-id", rid);
    let (out, _) = h.end(BodyFraming::Length(reply.body.len() as u64), !keep);
    if !head.is_head() {
        out.extend_from_slice(&reply.body);
    }
    ds.rec.status = reply.status;
    ds.rec.bytes = reply.body.len() as u64;
    Outcome { keep_alive: keep }
}

fn refuse(ds: &mut Downstream<'_>, head: &RequestHead, e: Error, rid: &[u8]) -> Outcome {
    super::respond::send_error(ds, head, e, rid, true);
    Outcome { keep_alive: false }
}

/// Whether an AWS service refused the gateway's own credentials (a configuration
/// problem the client cannot fix: 500, and a warning naming AWS's request id).
pub(super) fn refused_credentials(reply: &call::Reply, what: &str, service: &str) -> bool {
    if reply.status < 400 {
        return false;
    }
    let kind = reply
        .header("x-amzn-errortype")
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .or_else(|| {
            serde_json::from_slice::<serde_json::Value>(&reply.body)
                .ok()
                .and_then(|v| v.get("__type").and_then(|t| t.as_str()).map(str::to_string))
        })
        .unwrap_or_default();
    // Query-protocol and REST-XML services answer with XML: the code is in the body
    let in_body = matches!(reply.status, 401 | 403)
        && AUTH_ERRORS
            .iter()
            .any(|e| memchr::memmem::find(&reply.body, e.as_bytes()).is_some());
    if in_body || AUTH_ERRORS.iter().any(|e| kind.contains(e)) {
        let id = reply
            .header("x-amzn-requestid")
            .or_else(|| reply.header("x-amz-request-id"))
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        crate::warn!(
            "aws {what}: {service} refused the gateway's credentials ({kind}; AWS request id {id})"
        );
        return true;
    }
    false
}

pub(super) const AWS_MAX_ANSWER: usize = MAX_ANSWER;
