//! The auth stage of `auth = "iam"` routes (DESIGN §8.4): the SigV4 signature the
//! request presents (header or presigned query) verified for one of `[iam.users]`
//! (`auth::sigv4`), then the user's identity policy evaluated for
//! `execute-api:Invoke` on the request's method ARN (`auth::policy`). Refusals are
//! 403s with AWS's `x-amzn-ErrorType` and message.
//!
//! The payload hash is `x-amz-content-sha256` when the client sends it (AWS's SDKs
//! do not, for execute-api); otherwise the body is hashed where it lies: an
//! HTTP/1.1 body with a `Content-Length` (up to `max_body`) is read into the
//! connection's buffer, not consumed, so the integration reads it as always.
//!
//! Tested end to end with botocore and awscurl in `tests/iam.rs`.

use std::time::{Duration, SystemTime};

use crate::auth::policy::Verdict;
use crate::auth::sigv4::{self, Refusal};
use crate::error::Error;
use crate::plan::{Plan, Route};
use crate::proto::h1::{BodyFraming, RequestHead};

use super::Downstream;

/// How long a client may take to send the body the signature covers.
const BODY_WAIT: Duration = Duration::from_secs(30);

pub async fn authorize(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    plan: &Plan,
    route: &Route,
) -> Result<(), Error> {
    let text = |v: &[u8]| std::str::from_utf8(v).ok().map(str::to_string);
    let authorization = head.header(b"authorization").and_then(text);
    let query = head
        .query()
        .and_then(|q| std::str::from_utf8(q).ok())
        .unwrap_or("");
    let presented = match &authorization {
        Some(v) => sigv4::from_header(v),
        None => sigv4::from_query(query).unwrap_or(Err(Refusal::Missing)),
    };
    let p = match presented {
        Ok(p) => p,
        Err(r) => return refuse(ds, r),
    };
    let Ok(i) = plan
        .iam_users
        .binary_search_by(|u| u.access_key.as_str().cmp(p.access_key))
    else {
        return refuse(ds, Refusal::UnknownKey);
    };
    let user = &plan.iam_users[i];
    let hash = match head.header(b"x-amz-content-sha256").and_then(text) {
        Some(h) if h == "UNSIGNED-PAYLOAD" && p.presigned.is_none() => {
            return refuse(
                ds,
                Refusal::Incomplete(
                    "UNSIGNED-PAYLOAD is accepted only in presigned requests".into(),
                ),
            )
        }
        Some(h) => h,
        None => match body_hash(ds, head, plan.gateway.max_body).await {
            Ok(Some(h)) => h,
            // presigners may sign UNSIGNED-PAYLOAD instead of the body's hash
            Ok(None) if p.presigned.is_some() => "UNSIGNED-PAYLOAD".to_string(),
            Ok(None) => return refuse(
                ds,
                Refusal::Incomplete(
                    "this request's body can only be verified with an x-amz-content-sha256 header"
                        .into(),
                ),
            ),
            Err(e) => return Err(e),
        },
    };
    let lookup = |name: &str| -> Option<String> {
        let values: Vec<&[u8]> = head
            .headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
            .collect();
        if values.is_empty() {
            return match name {
                // HTTP/2 has no Host field: its :authority is the host
                "host" => text(head.host_header()).filter(|h| !h.is_empty()),
                _ => None,
            };
        }
        let joined: Vec<String> = values
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        Some(joined.join(","))
    };
    let req = sigv4::Request {
        method: std::str::from_utf8(head.method()).unwrap_or(""),
        path: head.path(),
        query,
        header: &lookup,
        payload_hash: &hash,
    };
    let now = SystemTime::now();
    let mut verdict = sigv4::verify(
        &p,
        &req,
        &user.secret,
        &user.keys,
        &plan.gateway.region,
        now,
    );
    if p.presigned.is_some()
        && matches!(verdict, Err(Refusal::Mismatch { .. }))
        && req.payload_hash != "UNSIGNED-PAYLOAD"
    {
        // a presigned URL for any body (S3-style presigners): UNSIGNED-PAYLOAD
        let unsigned = sigv4::Request {
            payload_hash: "UNSIGNED-PAYLOAD",
            ..req
        };
        verdict = sigv4::verify(
            &p,
            &unsigned,
            &user.secret,
            &user.keys,
            &plan.gateway.region,
            now,
        );
    }
    if let Err(r) = verdict {
        if let Refusal::Mismatch { canonical, .. } = &r {
            crate::warn!(
                "iam: signature mismatch for {}; canonical request:\n{canonical}",
                user.arn
            );
        }
        return refuse(ds, r);
    }
    ds.rec.iam_user = Some(i as u32);
    let facts = super::facts::Facts::new(ds, head, plan, route);
    let arn = &facts.method_arn;
    let verdict = user.policy.as_ref().map_or(Verdict::ImplicitDeny, |pol| {
        pol.evaluate("execute-api:Invoke", arn)
    });
    let message = match verdict {
        Verdict::Allow => {
            ds.rec.auth = Some(0);
            return Ok(());
        }
        Verdict::ExplicitDeny => format!(
            "User: {} is not authorized to perform: execute-api:Invoke on resource: {arn} with an explicit deny",
            user.arn
        ),
        Verdict::ImplicitDeny => format!(
            "User: {} is not authorized to perform: execute-api:Invoke on resource: {arn} because no identity-based policy allows the execute-api:Invoke action",
            user.arn
        ),
    };
    ds.rec.auth = Some(if verdict == Verdict::ExplicitDeny {
        11
    } else {
        12
    });
    ds.rec.auth_error = "the user's policy does not allow the method";
    let body = format!("{{\"Message\":{}}}", serde_json::Value::from(message));
    ds.rec.iam_refusal = Some(Box::new((body, "AccessDeniedException")));
    Err(Error::IamRefused)
}

fn refuse(ds: &mut Downstream<'_>, r: Refusal) -> Result<(), Error> {
    ds.rec.auth = Some(match r {
        Refusal::Missing => 1,
        Refusal::UnknownKey => 13,
        Refusal::Expired(_) => 6,
        Refusal::Incomplete(_) => 2,
        Refusal::Scope(_) | Refusal::Mismatch { .. } => 5,
    });
    ds.rec.auth_error = match r {
        Refusal::Missing => "no signature",
        Refusal::UnknownKey => "unknown access key",
        Refusal::Expired(_) => "signature expired",
        Refusal::Incomplete(_) => "incomplete signature",
        Refusal::Scope(_) => "credential scope",
        Refusal::Mismatch { .. } => "signature mismatch",
    };
    let body = format!("{{\"message\":{}}}", serde_json::Value::from(r.message()));
    ds.rec.iam_refusal = Some(Box::new((body, r.error_type())));
    Err(Error::IamRefused)
}

/// The SHA-256 (hex) of the body, read into the connection buffer without being
/// consumed. `None`: a body that cannot be hashed in place (HTTP/2, chunked,
/// over `max`).
async fn body_hash(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    max: u64,
) -> Result<Option<String>, Error> {
    let n = match head.body {
        BodyFraming::Empty => return Ok(Some(crate::aws::sign::sha256_hex(b""))),
        BodyFraming::Length(n) if n <= max && ds.io.h2().is_none() => n as usize,
        _ => return Ok(None),
    };
    if ds.rbuf.data().len() < n && head.expect_continue {
        // the client waits for a go-ahead before it sends the body
        crate::proto::sink::send_continue(ds.io, ds.wbuf)
            .await
            .map_err(|_| Error::BadRequest)?;
    }
    while ds.rbuf.data().len() < n {
        match monoio::time::timeout(BODY_WAIT, ds.rbuf.fill(ds.io)).await {
            Ok(Ok(k)) if k > 0 => {}
            _ => return Err(Error::BadRequest),
        }
    }
    Ok(Some(crate::aws::sign::sha256_hex(&ds.rbuf.data()[..n])))
}
