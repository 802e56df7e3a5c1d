//! Responses the gateway writes itself: errors (DESIGN §5) and mock integrations.

use crate::error::Error;
use crate::plan::{Lookup, Method, Mock, Plan};
use crate::proto::h1::{BodyFraming, RequestHead};
use crate::proto::head::ResponseHead;

use super::body::{BodyError, BodyReader};
use super::{Downstream, Outcome};

/// Writes a JSON error response `{"message": …}` through `h` (started with the
/// error's status).
pub fn write_error(mut h: ResponseHead<'_>, is_head: bool, err: Error, rid: &[u8], close: bool) {
    let msg = err.message();
    h.field(b"content-type", b"application/json");
    h.field(b"x-request-id", rid);
    if let Error::MethodNotAllowed(bits) = err {
        h.field(b"allow", Method::allow_header(bits).as_bytes());
    }
    match err {
        Error::Unauthorized(crate::auth::jwt::Rejection::Missing) => {
            h.field(b"www-authenticate", b"Bearer scope=\"\"");
        }
        Error::Unauthorized(why) => {
            h.field(
                b"www-authenticate",
                format!(
                    "Bearer scope=\"\" error=\"invalid_token\" error_description=\"{}\"",
                    why.describe()
                )
                .as_bytes(),
            );
        }
        Error::InsufficientScope => {
            h.field(
                b"www-authenticate",
                b"Bearer error=\"insufficient_scope\" error_description=\"the token grants none of the scopes this route asks for\"",
            );
        }
        _ => {}
    }
    // AWS's own shapes for request-authorizer refusals
    let body = err.aws_body().map(|(body, kind)| {
        h.field(b"x-amzn-errortype", kind);
        body
    });
    if let Some(body) = body {
        let (out, _) = h.end(BodyFraming::Length(body.len() as u64), close);
        if !is_head {
            out.extend_from_slice(body);
        }
        return;
    }
    if let Error::LimitExceeded { retry_after } = err {
        h.field_decimal(b"retry-after", u64::from(retry_after));
    }
    if let Error::TooManyRequests {
        retry_after,
        limit,
        burst,
    } = err
    {
        // Retry-After (RFC 9110) and the IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers)
        h.field_decimal(b"retry-after", u64::from(retry_after));
        h.field(
            b"ratelimit-policy",
            format!("{limit};w=1;burst={burst}").as_bytes(),
        );
        h.field(
            b"ratelimit",
            format!("limit={limit}, remaining=0, reset={retry_after}").as_bytes(),
        );
    }
    let (out, _) = h.end(BodyFraming::Length((msg.len() + 14) as u64), close);
    if !is_head {
        out.extend_from_slice(b"{\"message\":\"");
        out.extend_from_slice(msg.as_bytes());
        out.extend_from_slice(b"\"}");
    }
}

/// Reads and drops the request body so the connection stays usable. Returns the
/// error to answer instead, or `Err(None)` when the client is gone.
pub(super) async fn drain_body(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    max: u64,
) -> Result<(), Option<Error>> {
    if head.body == BodyFraming::Empty {
        return Ok(());
    }
    let mut body = BodyReader::new(head, max).map_err(|_| Some(Error::BodyTooLarge))?;
    // Boxed: most requests have no body, and this state would otherwise enlarge
    // every mock and error response's future.
    Box::pin(body.discard(ds)).await.map_err(|e| match e {
        BodyError::Gone => None,
        BodyError::Malformed => Some(Error::BadRequest),
        BodyError::TooLarge => Some(Error::BodyTooLarge),
    })
}

/// Answers `err`. The connection stays open only when the request's body (if any)
/// could be skipped cheaply and the error leaves framing intact.
pub async fn error(ds: &mut Downstream<'_>, head: &RequestHead, err: Error, rid: &[u8]) -> Outcome {
    // Don't read a large body only to refuse it: close instead (as nginx does for
    // bodies it will not use), but skip a small one already on its way.
    const SKIP_AT_MOST: u64 = 64 << 10;
    let mut keep = head.keep_alive && !ds.draining && !err.closes_connection();
    if keep {
        let cheap = !head.expect_continue || !ds.rbuf.is_empty();
        keep = cheap && drain_body(ds, head, SKIP_AT_MOST).await.is_ok();
    }
    send_error(ds, head, err, rid, !keep);
    Outcome { keep_alive: keep }
}

/// Writes the gateway's own answer `err` and records it: the API's gateway
/// response for its type when it customises one (`transform::responses`), else
/// the built-in answer (AWS's dynamic bodies for IAM and validation refusals).
pub fn send_error(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    err: Error,
    rid: &[u8],
    close: bool,
) {
    let is_head = head.is_head();
    let iam = if err == Error::IamRefused {
        ds.rec.iam_refusal.take()
    } else {
        None
    };
    // a dynamic body of its own: (body, x-amzn-errortype)
    let own: Option<(String, &'static str)> = match (err, iam) {
        (Error::IamRefused, Some(r)) => Some(*r),
        (Error::BadRequestParameters, _) => ds.rec.validation.as_ref().map(|v| {
            let mut b = String::from("{\"message\":");
            crate::transform::value::json_string(&v.0, &mut b);
            b.push('}');
            (b, "BadRequestException")
        }),
        _ => None,
    };
    let custom = ds.scratch.responses.clone();
    let chosen = custom.as_deref().and_then(|g| {
        let kind = own.as_ref().map(|(_, k)| *k);
        let t = crate::transform::responses::Type::of(err, kind);
        g.responses.find(t, err.status()).map(|c| (g, c, t))
    });
    ds.rec.gateway_answer(err, is_head);
    let Some((g, c, t)) = chosen else {
        match own {
            Some((body, kind)) => {
                let n = write_own(ds.head(err.status()), &body, kind, rid, is_head, close);
                ds.rec.bytes = if is_head { 0 } else { n as u64 };
            }
            None => write_error(ds.head(err.status()), is_head, err, rid, close),
        }
        return;
    };
    // the customised answer
    let message = match &own {
        Some((body, _)) => serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .or_else(|| v.get("Message"))
                    .and_then(|m| m.as_str().map(str::to_string))
            })
            .unwrap_or_else(|| err.message().to_string()),
        None => err.message().to_string(),
    };
    let value =
        |p: &crate::transform::responses::Piece| gateway_variable(p, ds, head, g, t, err, &message);
    let headers: Vec<(String, String)> = c
        .headers
        .iter()
        .map(|(n, p)| {
            let v = match p {
                crate::transform::responses::Piece::Text(t) => t.clone(),
                p => value(p),
            };
            (n.clone(), v)
        })
        .collect();
    let body = c.template.as_ref().map(|t| t.render(value));
    let status = c.status.unwrap_or(err.status());
    let mut h = ds.head(status);
    for (n, v) in &headers {
        if v.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f)) {
            h.field(n.as_bytes(), v.as_bytes());
        }
    }
    let body_len = match body {
        Some(body) => {
            if !headers.iter().any(|(n, _)| n == "content-type") {
                h.field(b"content-type", c.content_type.as_bytes());
            }
            h.field(b"x-request-id", rid);
            if let Some((_, kind)) = &own {
                h.field(b"x-amzn-errortype", kind.as_bytes());
            }
            let (out, _) = h.end(BodyFraming::Length(body.len() as u64), close);
            if !is_head {
                out.extend_from_slice(body.as_bytes());
            }
            body.len()
        }
        None => match own {
            Some((body, kind)) => write_own(h, &body, kind, rid, is_head, close),
            None => {
                write_error(h, is_head, err, rid, close);
                err.body_len()
            }
        },
    };
    ds.rec.status = status;
    ds.rec.bytes = if is_head { 0 } else { body_len as u64 };
}

/// Writes an error's own JSON body (AWS's IAM and validation refusals) with its
/// `x-amzn-ErrorType`; returns the body's length.
fn write_own(
    mut h: ResponseHead<'_>,
    body: &str,
    kind: &str,
    rid: &[u8],
    is_head: bool,
    close: bool,
) -> usize {
    h.field(b"content-type", b"application/json");
    h.field(b"x-request-id", rid);
    h.field(b"x-amzn-errortype", kind.as_bytes());
    let (out, _) = h.end(BodyFraming::Length(body.len() as u64), close);
    if !is_head {
        out.extend_from_slice(body.as_bytes());
    }
    body.len()
}

/// A gateway-response template's variable.
fn gateway_variable(
    p: &crate::transform::responses::Piece,
    ds: &Downstream<'_>,
    head: &RequestHead,
    g: &crate::plan::StageResponses,
    t: crate::transform::responses::Type,
    err: Error,
    message: &str,
) -> String {
    use crate::transform::responses::Piece;
    let header = |n: &str| {
        head.headers()
            .find(|(k, _)| k.eq_ignore_ascii_case(n.as_bytes()))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    match p {
        Piece::Text(t) => t.clone(),
        Piece::StageVariable(n) => g
            .variables
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
        Piece::Header(n) => header(n),
        Piece::Query(n) => head
            .query()
            .and_then(|q| std::str::from_utf8(q).ok())
            .and_then(|q| crate::auth::authorizer::query_pairs(q).find(|(k, _)| k == n))
            .map(|(_, v)| v)
            .unwrap_or_default(),
        Piece::Path(_) => String::new(),
        Piece::Context(n) => match n.as_str() {
            "error.message" => message.to_string(),
            "error.messageString" => {
                let mut s = String::new();
                crate::transform::value::json_string(message, &mut s);
                s
            }
            "error.responseType" => t.name().to_string(),
            // escaped for a JSON string, as AWS's is (`[\"qty\" is a required property]`)
            "error.validationErrorString" => {
                let mut s = String::new();
                if let Some(v) = &ds.rec.validation {
                    crate::transform::value::json_string(&v.1, &mut s);
                }
                s.get(1..s.len().saturating_sub(1))
                    .unwrap_or("")
                    .to_string()
            }
            "requestId" | "extendedRequestId" => {
                String::from_utf8_lossy(&ds.rec.request_id).into_owned()
            }
            "stage" => g.stage.clone(),
            "apiId" => g.api.clone(),
            "httpMethod" => String::from_utf8_lossy(head.method()).into_owned(),
            "path" => head.path().to_string(),
            "domainName" => String::from_utf8_lossy(head.host()).into_owned(),
            "identity.sourceIp" => ds.peer_ip.to_string(),
            "identity.userAgent" => header("user-agent"),
            "status" => err.status().to_string(),
            "authorizer.principalId" => ds
                .rec
                .authorizer
                .as_ref()
                .and_then(|a| a.principal.clone())
                .unwrap_or_default(),
            other => {
                if let Some(c) = other.strip_prefix("authorizer.claims.") {
                    ds.rec
                        .claims
                        .as_ref()
                        .and_then(|m| m.get(c))
                        .map(|v| crate::auth::authorizer::context_text(v).into_owned())
                        .unwrap_or_default()
                } else if let Some(k) = other.strip_prefix("authorizer.") {
                    ds.rec
                        .authorizer
                        .as_ref()
                        .and_then(|a| a.context.get(k))
                        .map(|v| crate::auth::authorizer::context_text(v).into_owned())
                        .unwrap_or_default()
                } else {
                    String::new()
                }
            }
        },
    }
}

/// Answers `err` for a request whose whole body has been read already (buffered
/// for a template, an event or a signature): nothing is left to skip, so the
/// connection stays open unless the error itself closes it.
pub fn error_after_body(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    err: Error,
    rid: &[u8],
) -> Outcome {
    let keep = head.keep_alive && !ds.draining && !err.closes_connection();
    send_error(ds, head, err, rid, !keep);
    Outcome { keep_alive: keep }
}

/// Answers a CORS preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`) for a path of an API with a CORS policy: 204 with
/// the policy's answer, or without CORS headers when it does not allow the request
/// (the browser then refuses). `None`: not a preflight the gateway answers (no
/// policy, or no route for the method asked about): the request goes on as usual.
pub async fn preflight(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    plan: &Plan,
    host: &str,
    rid: &[u8],
) -> Option<Outcome> {
    let asked = head.header(b"access-control-request-method")?;
    let origin = head.header(b"origin")?;
    // the API is the one whose route the path reaches: for the method asked about,
    // else for any method (AWS answers preflights for every path of a CORS API)
    let id = std::iter::once(Method::from_bytes(asked))
        .chain(Method::ALL.iter().map(|m| Some(*m)))
        .find_map(|m| match plan.router.lookup(host, m, head.path()) {
            Lookup::Found(id, _) => Some(id),
            _ => None,
        })?;
    let route = plan.route(id);
    let cors = plan.stages[route.stage as usize].cors.as_ref()?;
    let lines = cors.preflight(
        origin,
        asked,
        head.header(b"access-control-request-headers"),
    );
    ds.rec.route = Some(id);
    if drain_body(ds, head, 64 << 10).await.is_err() {
        return Some(Outcome { keep_alive: false });
    }
    let keep = head.keep_alive && !ds.draining;
    let mut h = ds.head(204);
    if let Some(l) = &lines {
        h.lines(l);
    }
    h.field(b"x-request-id", rid);
    h.end(BodyFraming::Empty, !keep);
    ds.rec.status = 204;
    Some(Outcome { keep_alive: keep })
}

/// Answers with a mock integration's fixed response.
pub async fn mock(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    m: &Mock,
    rid: &[u8],
    max_body: u64,
    validate: Option<&crate::plan::Validation>,
) -> Outcome {
    // a body model: the body is read whole and checked instead of dropped
    if let Some(v) = validate.filter(|v| v.body.is_some()) {
        let mut body = Vec::new();
        if head.body != BodyFraming::Empty {
            let read = match BodyReader::new(head, max_body) {
                Ok(mut r) => Box::pin(r.buffer(ds, &mut body, max_body)).await,
                Err(e) => Err(e),
            };
            let e = match read {
                Ok(true) => None,
                Ok(false) | Err(BodyError::TooLarge) => Some(Error::BodyTooLarge),
                Err(BodyError::Malformed) => Some(Error::BadRequest),
                Err(BodyError::Gone) => return Outcome { keep_alive: false },
            };
            if let Some(e) = e {
                send_error(ds, head, e, rid, true);
                return Outcome { keep_alive: false };
            }
        }
        if let Err(e) = super::validate::body(ds, head, v, &body) {
            return error_after_body(ds, head, e, rid);
        }
    } else {
        match drain_body(ds, head, max_body).await {
            Ok(()) => {}
            Err(Some(e)) => {
                send_error(ds, head, e, rid, true);
                return Outcome { keep_alive: false };
            }
            Err(None) => return Outcome { keep_alive: false },
        }
    }
    let keep = head.keep_alive && !ds.draining;
    ds.rec.status = m.status;
    ds.rec.bytes = write_mock(ds.head(m.status), head.is_head(), m, rid, keep);
    Outcome { keep_alive: keep }
}

/// Writes a mock integration's response through `h` (started with its status);
/// returns the body bytes written.
pub fn write_mock(mut h: ResponseHead<'_>, is_head: bool, m: &Mock, rid: &[u8], keep: bool) -> u64 {
    let has_body = m.status >= 200 && m.status != 204 && m.status != 304;
    h.lines(&m.headers);
    h.field(b"x-request-id", rid);
    let framing = if has_body {
        BodyFraming::Length(m.body.len() as u64)
    } else {
        BodyFraming::Empty
    };
    let (out, _) = h.end(framing, !keep);
    if has_body && !is_head {
        out.extend_from_slice(&m.body);
        return m.body.len() as u64;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_json_with_request_id() {
        let mut out = Vec::new();
        write_error(
            ResponseHead::text(&mut out, 405),
            false,
            Error::MethodNotAllowed(0b101),
            b"rid-1",
            true,
        );
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{s}");
        assert!(s.contains("allow: GET, POST\r\n"), "{s}");
        assert!(s.contains("x-request-id: rid-1\r\n"));
        assert!(s.contains("connection: close\r\n"));
        let (head, body) = s.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, r#"{"message":"Method Not Allowed"}"#);
        assert!(head.contains(&format!("content-length: {}", body.len())));
    }
}
