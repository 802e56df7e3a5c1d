//! Non-proxy integrations (DESIGN §10; AWS's HTTP, MOCK and custom Lambda): the
//! whole request body read, a request template chosen by its media type (or the
//! body passed through, or 415), the integration called with what the template
//! made, an integration response chosen by the status (a Lambda error's
//! `errorMessage`), and the client's answer made by that response's template and
//! header mappings, with `$context.responseOverride` applied last.
//!
//! Only requests whose route has such an integration come here; the proxy path
//! never does. Tested end to end in `tests/templates.rs`.

use std::borrow::Cow;
use std::rc::Rc;
use std::time::Instant;

use indexmap::IndexMap;

use crate::aws::lambda;
use crate::error::Error;
use crate::plan::router::Params;
use crate::plan::{AwsMapped, HttpMapped, LambdaMapped, Mock, Plan, Route};
use crate::proto::h1::{BodyFraming, RequestHead};
use crate::transform::jsonpath::Path;
use crate::transform::mapping::{
    ContentHandling, HeaderSource, Mapping, RequestChoice, Response, Source, Target,
};
use crate::transform::value::Value;
use crate::transform::vtl::Inputs;

use super::body::{BodyError, BodyReader};
use super::{respond, Downstream, Outcome, WorkerCtx};

/// A non-proxy integration.
#[derive(Clone, Copy)]
pub enum Mapped<'p> {
    Mock(&'p Mock, &'p Mapping),
    Http(&'p HttpMapped),
    Lambda(&'p LambdaMapped),
    Aws(&'p AwsMapped),
}

impl<'p> Mapped<'p> {
    fn mapping(self) -> &'p Mapping {
        match self {
            Mapped::Mock(_, m) => m,
            Mapped::Http(h) => &h.mapping,
            Mapped::Lambda(l) => &l.mapping,
            Mapped::Aws(a) => &a.mapping,
        }
    }
}

/// What the integration answered.
struct Answer {
    status: u16,
    /// Lower-case names.
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// What selects the integration response: the status, or a Lambda error's
    /// `errorMessage` (`None`: a Lambda success, which takes the default).
    selector: Option<String>,
}

#[allow(clippy::too_many_arguments)]
pub async fn serve(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    plan: &Plan,
    route: &Route,
    params: &Params,
    integ: Mapped<'_>,
    rid: &[u8],
    w: &WorkerCtx,
) -> Outcome {
    let limit = match integ {
        Mapped::Lambda(_) => super::lambda::MAX_PAYLOAD,
        _ => plan.gateway.max_body,
    };
    let mut body = Vec::new();
    if head.body != BodyFraming::Empty {
        let read = match BodyReader::new(head, plan.gateway.max_body) {
            Ok(mut reader) => reader.buffer(ds, &mut body, limit).await,
            Err(e) => Err(e),
        };
        let refuse = match read {
            Ok(true) => None,
            Ok(false) if matches!(integ, Mapped::Lambda(_)) => Some(Error::RequestTooLong),
            Ok(false) | Err(BodyError::TooLarge) => Some(Error::BodyTooLarge),
            Err(BodyError::Gone) => return Outcome { keep_alive: false },
            Err(BodyError::Malformed) => Some(Error::BadRequest),
        };
        if let Some(e) = refuse {
            super::respond::send_error(ds, head, e, rid, true);
            return Outcome { keep_alive: false };
        }
    }
    if let Some(v) = &route.validate {
        if let Err(e) = super::validate::body(ds, head, v, &body) {
            return respond::error_after_body(ds, head, e, rid);
        }
    }
    match Box::pin(run(ds, head, plan, route, params, integ, &body, rid, w)).await {
        Ok(out) => out,
        Err(e) => respond::error_after_body(ds, head, e, rid),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    plan: &Plan,
    route: &Route,
    params: &Params,
    integ: Mapped<'_>,
    body: &[u8],
    rid: &[u8],
    w: &WorkerCtx,
) -> Result<Outcome, Error> {
    let mapping = integ.mapping();
    let stage = &plan.stages[route.stage as usize];
    let facts = super::facts::Facts::new(ds, head, plan, route);
    let req = facts.request(head, plan, route, params);
    let query: Vec<(String, String)> = crate::auth::authorizer::query_pairs(req.query).collect();
    let context = if mapping.uses_context {
        context_map(ds, plan, &req)
    } else {
        Value::Null
    };
    let stage_variables = {
        let mut m = IndexMap::with_capacity(stage.variables.len());
        for (k, v) in &stage.variables {
            m.insert(Rc::from(k.as_str()), Value::str(v));
        }
        Value::new_map(m)
    };
    // contentHandling: base64 between a binary body and text, before any template
    let content_type = head.header(b"content-type");
    let binary = crate::aws::lambda::event::is_binary(
        &stage.binary_media_types,
        content_type.and_then(|v| std::str::from_utf8(v).ok()),
    );
    let converted = ContentHandling::convert(mapping.content_handling, body, binary)
        .ok_or(Error::TemplateFailure)?;
    let still_binary = binary && mapping.content_handling != Some(ContentHandling::ConvertToText);
    let body: &[u8] = converted.as_deref().unwrap_or(body);
    let mut inputs = Inputs {
        body,
        path: req
            .path_params
            .iter()
            .map(|(k, v)| (*k, Cow::Borrowed(v.as_str())))
            .collect(),
        query: query
            .iter()
            .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str())))
            .collect(),
        headers: req.headers.clone(),
        context: context.clone(),
        stage_variables: stage_variables.clone(),
    };

    // the request template (a binary body is never one's input: it passes through)
    let choice = if still_binary {
        RequestChoice::Passthrough
    } else {
        mapping.request_template(content_type)
    };
    let (sent, sent_type): (Cow<'_, [u8]>, Option<&str>) = match choice {
        RequestChoice::Template(media, t) => {
            let out = t.eval(&inputs).map_err(|_| Error::TemplateFailure)?;
            (Cow::Owned(out.body.into_bytes()), Some(media))
        }
        RequestChoice::Passthrough => (Cow::Borrowed(body), None),
        RequestChoice::Unsupported => return Err(Error::UnsupportedMediaType),
    };

    // the integration
    let started = Instant::now();
    let answer = match integ {
        Mapped::Mock(m, _) => {
            let status = if sent_type.is_some() {
                mock_status(&sent).unwrap_or(200)
            } else {
                m.status
            };
            ds.rec.integration_status = Some(status);
            Answer {
                status,
                headers: Vec::new(),
                body: Vec::new(),
                selector: Some(status.to_string()),
            }
        }
        Mapped::Http(h) => {
            let request = http_request(h, head, &req, &inputs, &context, &sent, sent_type, ds)?;
            let reply = crate::upstream::call::call(
                &w.pools,
                &h.endpoint,
                &request,
                route.timeout,
                plan.gateway.max_body as usize,
            )
            .await
            .map_err(|e| match e {
                Error::UpstreamConnectTimeout => Error::UpstreamTimeout,
                e => e,
            })?;
            ds.rec.integration_status = Some(reply.status);
            Answer {
                status: reply.status,
                selector: Some(reply.status.to_string()),
                headers: reply.headers,
                body: reply.body,
            }
        }
        Mapped::Aws(a) => {
            let request = aws_request(a, head, &req, &inputs, &context, &sent, sent_type)?;
            let reply = crate::upstream::call::call(
                &w.pools,
                &a.service.endpoint,
                &request,
                route.timeout,
                super::aws::AWS_MAX_ANSWER,
            )
            .await
            .map_err(|e| match e {
                Error::UpstreamTimeout | Error::UpstreamConnectTimeout => Error::UpstreamTimeout,
                _ => Error::LambdaRejected,
            })?;
            ds.rec.integration_status = Some(reply.status);
            if super::aws::refused_credentials(&reply, &route.key, a.service.name) {
                ds.rec.error = "the AWS service refused the gateway's credentials";
                return Err(Error::LambdaRejected);
            }
            Answer {
                status: reply.status,
                selector: Some(reply.status.to_string()),
                headers: reply.headers,
                body: reply.body,
            }
        }
        Mapped::Lambda(l) => {
            // an empty body is an empty JSON object to the function, as AWS sends it
            let payload: &[u8] = if sent.iter().all(u8::is_ascii_whitespace) {
                b"{}"
            } else {
                &sent
            };
            let reply = super::lambda::call_function(
                w,
                &l.service,
                &l.function,
                payload,
                started + route.timeout,
                ds.rec,
            )
            .await?;
            let selector = match lambda::outcome(&reply) {
                lambda::Outcome::Result(_) => None,
                lambda::Outcome::FunctionError(message) => Some(message.unwrap_or_default()),
                lambda::Outcome::Throttled => return Err(Error::Unavailable),
                lambda::Outcome::Refused(..) => return Err(Error::LambdaRejected),
            };
            Answer {
                status: 200,
                headers: vec![("content-type".into(), b"application/json".to_vec())],
                body: reply.body,
                selector,
            }
        }
    };
    ds.rec.integration_latency = Some(started.elapsed());

    // the integration response
    let response = match &answer.selector {
        _ if mapping.responses.is_empty() => None,
        Some(s) => Some(mapping.response(s).ok_or(Error::NoResponseMapping)?),
        None => Some(
            mapping
                .responses
                .iter()
                .find(|r| r.pattern.is_none())
                .ok_or(Error::NoResponseMapping)?,
        ),
    };
    let mut status = response.and_then(|r| r.status).unwrap_or(answer.status);
    let accept = head.header(b"accept");
    let template = response.and_then(|r| r.template(accept));
    let (out_body, out_type): (Cow<'_, [u8]>, Option<Cow<'_, [u8]>>) = match template {
        Some((media, t)) => {
            inputs.body = &answer.body;
            let out = t.eval(&inputs).map_err(|_| Error::TemplateFailure)?;
            (
                Cow::Owned(out.body.into_bytes()),
                Some(Cow::Borrowed(media.as_bytes())),
            )
        }
        None => {
            let ct = answer
                .headers
                .iter()
                .find(|(n, _)| n == "content-type")
                .map(|(_, v)| Cow::Borrowed(v.as_slice()))
                .or(Some(Cow::Borrowed(&b"application/json"[..])));
            (Cow::Borrowed(answer.body.as_slice()), ct)
        }
    };
    // the response's contentHandling, on what the template (or passthrough) made
    let out_binary = crate::aws::lambda::event::is_binary(
        &stage.binary_media_types,
        out_type
            .as_deref()
            .and_then(|t| std::str::from_utf8(t).ok()),
    );
    // (a template's output is text; a passed-through answer is binary when its
    // type is one of the API's binary media types)
    let out_body = match ContentHandling::convert(
        response.and_then(|r| r.content_handling),
        &out_body,
        template.is_none() && out_binary,
    ) {
        None => return Err(Error::TemplateFailure),
        Some(Some(converted)) => Cow::Owned(converted),
        Some(None) => out_body,
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(r) = response {
        response_headers(r, &answer, &context, &stage_variables, &mut headers);
    }
    // $context.responseOverride, set by the response template
    let over = context_path(&context, &["responseOverride"]);
    if let Some(s) = context_path(&over, &["status"]).number() {
        let s = s.as_f64() as i64;
        if (100..=599).contains(&s) {
            status = s as u16;
        }
    } else if let Value::Str(s) = context_path(&over, &["status"]) {
        if let Ok(n @ 100..=599) = s.trim().parse::<u16>() {
            status = n;
        }
    }
    if let Value::Map(m) = context_path(&over, &["header"]) {
        for (k, v) in m.borrow().iter() {
            set_header(
                &mut headers,
                &k.to_ascii_lowercase(),
                v.to_text().to_string(),
            );
        }
    }

    // the answer
    let keep = head.keep_alive && !ds.draining;
    let has_body = status >= 200 && status != 204 && status != 304;
    let mut h = ds.head(status);
    let mut typed = false;
    for (n, v) in &headers {
        if valid_value(v) {
            typed |= n == "content-type";
            h.field(n.as_bytes(), v.as_bytes());
        }
    }
    if let (false, Some(t)) = (typed, &out_type) {
        if has_body {
            h.field(b"content-type", t);
        }
    }
    h.field(b"x-request-id", rid);
    let framing = if has_body {
        BodyFraming::Length(out_body.len() as u64)
    } else {
        BodyFraming::Empty
    };
    let (out, _) = h.end(framing, !keep);
    if has_body && !head.is_head() {
        out.extend_from_slice(&out_body);
    }
    ds.rec.status = status;
    ds.rec.bytes = if has_body && !head.is_head() {
        out_body.len() as u64
    } else {
        0
    };
    Ok(Outcome { keep_alive: keep })
}

/// A mock's `statusCode` from its request template's output.
fn mock_status(out: &[u8]) -> Option<u16> {
    let v: serde_json::Value = serde_json::from_slice(out).ok()?;
    let code = v.get("statusCode")?;
    let n = code
        .as_u64()
        .or_else(|| code.as_str().and_then(|s| s.trim().parse().ok()))?;
    u16::try_from(n).ok().filter(|n| (100..=599).contains(n))
}

fn valid_value(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: String) {
    match headers.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => *v = value,
        None => headers.push((name.to_string(), value)),
    }
}

/// A value in `$context` by its dotted path (`authorizer.claims.sub`).
fn context_path(ctx: &Value, path: &[&str]) -> Value {
    let mut cur = ctx.clone();
    for p in path {
        cur = match &cur {
            Value::Map(m) => m.borrow().get(*p).cloned().unwrap_or_default(),
            _ => return Value::Null,
        };
    }
    cur
}

fn context_text(ctx: &Value, dotted: &str) -> String {
    let parts: Vec<&str> = dotted.split('.').collect();
    context_path(ctx, &parts).to_text().to_string()
}

/// A JSONPath's value in a JSON body, as a header or parameter value: strings as
/// they are, anything else as JSON.
fn body_path(body: &[u8], p: &Path) -> String {
    let root = Value::from_json(body).unwrap_or_default();
    match p.eval(&root) {
        Value::Null => String::new(),
        Value::Str(s) => s.to_string(),
        v => {
            let mut s = String::new();
            v.write_json(&mut s);
            s
        }
    }
}

fn response_headers(
    r: &Response,
    answer: &Answer,
    context: &Value,
    stage_variables: &Value,
    out: &mut Vec<(String, String)>,
) {
    for (name, src) in &r.headers {
        let value = match src {
            HeaderSource::Static(s) => s.clone(),
            HeaderSource::Header(n) => match answer.headers.iter().find(|(k, _)| k == n) {
                Some((_, v)) => String::from_utf8_lossy(v).into_owned(),
                None => continue,
            },
            HeaderSource::MultiHeader(n) => {
                let all: Vec<Cow<'_, str>> = answer
                    .headers
                    .iter()
                    .filter(|(k, _)| k == n)
                    .map(|(_, v)| String::from_utf8_lossy(v))
                    .collect();
                if all.is_empty() {
                    continue;
                }
                all.join(",")
            }
            HeaderSource::Body => String::from_utf8_lossy(&answer.body).into_owned(),
            HeaderSource::BodyPath(p) => body_path(&answer.body, p),
            HeaderSource::StageVariable(n) => context_text(stage_variables, n),
            HeaderSource::Context(n) => context_text(context, n),
        };
        set_header(out, name, value);
    }
}

/// The request a non-proxy HTTP integration sends: the mapped method, path, query
/// and headers (AWS forwards nothing it was not told to), the template's output.
#[allow(clippy::too_many_arguments)]
fn http_request(
    h: &HttpMapped,
    head: &RequestHead,
    req: &crate::auth::authorizer::Request<'_>,
    inputs: &Inputs<'_>,
    context: &Value,
    body: &[u8],
    body_type: Option<&str>,
    ds: &Downstream<'_>,
) -> Result<Vec<u8>, Error> {
    let ToSend {
        path: path_values,
        query,
        headers,
    } = mapped_params(&h.mapping, req, inputs, context);
    let mut path = h.endpoint.path.clone();
    fill_path(&mut path, &h.path, &path_values, req);
    if path.is_empty() {
        path.push('/');
    }
    for (i, (k, v)) in query.iter().enumerate() {
        path.push(if i == 0 && !path.contains('?') {
            '?'
        } else {
            '&'
        });
        path.push_str(&crate::transform::util::url_encode(k));
        path.push('=');
        path.push_str(&crate::transform::util::url_encode(v));
    }
    let method = h
        .method
        .as_deref()
        .unwrap_or_else(|| std::str::from_utf8(head.method()).unwrap_or("GET"));
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(h.endpoint.authority.as_bytes());
    out.extend_from_slice(b"\r\nx-request-id: ");
    out.extend_from_slice(&ds.rec.request_id);
    out.extend_from_slice(b"\r\n");
    let ct = body_type
        .map(str::as_bytes)
        .or(head.header(b"content-type"));
    let mut typed = false;
    for (n, v) in &headers {
        let lower = n.to_ascii_lowercase();
        if !valid_value(v)
            || n.is_empty()
            || !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            || matches!(
                lower.as_str(),
                "host" | "content-length" | "transfer-encoding" | "connection" | "x-request-id"
            )
        {
            continue;
        }
        typed |= lower == "content-type";
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let (false, Some(ct)) = (typed, ct) {
        if !body.is_empty() {
            out.extend_from_slice(b"content-type: ");
            out.extend_from_slice(ct);
            out.extend_from_slice(b"\r\n");
        }
    }
    let sends_body = !body.is_empty() || !matches!(method, "GET" | "HEAD" | "DELETE" | "OPTIONS");
    if sends_body {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if sends_body {
        out.extend_from_slice(body);
    }
    Ok(out)
}

/// What `request_parameters` (and a template's `$context.requestOverride`) give
/// the integration request.
struct ToSend {
    path: Vec<(String, String)>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
}

fn mapped_params(
    mapping: &Mapping,
    req: &crate::auth::authorizer::Request<'_>,
    inputs: &Inputs<'_>,
    context: &Value,
) -> ToSend {
    let mut p = ToSend {
        path: Vec::new(),
        query: Vec::new(),
        headers: Vec::new(),
    };
    for (target, source) in &mapping.request_parameters {
        let Some(v) = source_value(source, req, inputs, context) else {
            continue;
        };
        match target {
            Target::Header(n) => p.headers.push((n.clone(), v)),
            Target::Query(n) => p.query.push((n.clone(), v)),
            Target::Path(n) => p.path.push((n.clone(), v)),
        }
    }
    let over = context_path(context, &["requestOverride"]);
    for (place, list) in [
        ("header", &mut p.headers),
        ("querystring", &mut p.query),
        ("path", &mut p.path),
    ] {
        if let Value::Map(m) = context_path(&over, &[place]) {
            for (k, v) in m.borrow().iter() {
                list.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
                list.push((k.to_string(), v.to_text().to_string()));
            }
        }
    }
    p
}

/// Appends `template` (a path with `{name}` placeholders) to `out`, each
/// placeholder from the mapped path values, else the route parameter of its name.
fn fill_path(
    out: &mut String,
    template: &str,
    values: &[(String, String)],
    req: &crate::auth::authorizer::Request<'_>,
) {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let name = rest[open + 1..open + close].trim_end_matches('+');
        let value = values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| encode_path(v))
            .or_else(|| {
                req.path_params
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_default();
        out.push_str(&value);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
}

/// The signed request to an AWS service (REST style): the service's protocol, the
/// mapped parameters, the template's output as the body.
fn aws_request(
    a: &AwsMapped,
    head: &RequestHead,
    req: &crate::auth::authorizer::Request<'_>,
    inputs: &Inputs<'_>,
    context: &Value,
    body: &[u8],
    body_type: Option<&str>,
) -> Result<Vec<u8>, Error> {
    use crate::aws::rest::Protocol;
    let ToSend {
        path: path_values,
        query: mapped_query,
        headers: mapped_headers,
    } = mapped_params(&a.mapping, req, inputs, context);
    let svc = &a.service;
    let mut path = svc.endpoint.path.clone();
    fill_path(&mut path, &a.path, &path_values, req);
    if path.is_empty() {
        path.push('/');
    }
    let mut query: Vec<(String, String)> = Vec::new();
    let mut headers: Vec<(String, String)> = vec![("host".into(), svc.endpoint.authority.clone())];
    let content_type = match a.protocol {
        Protocol::Json { version, target } => {
            if let Some((action, _)) = &a.action {
                headers.push(("x-amz-target".into(), format!("{target}.{action}")));
            }
            Some(format!("application/x-amz-json-{version}"))
        }
        Protocol::Query { version } => {
            if let Some((action, extra)) = &a.action {
                query.push(("Action".into(), action.clone()));
                query.extend(extra.iter().cloned());
            }
            query.extend(mapped_query.iter().cloned());
            if !query.iter().any(|(k, _)| k == "Version") {
                query.push(("Version".into(), version.to_string()));
            }
            (!body.is_empty()).then(|| "application/x-www-form-urlencoded".to_string())
        }
        Protocol::RestXml => {
            query.extend(mapped_query.iter().cloned());
            headers.push((
                "x-amz-content-sha256".into(),
                crate::aws::sign::sha256_hex(body),
            ));
            body_type.map(str::to_string).or_else(|| {
                head.header(b"content-type")
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            })
        }
    };
    if matches!(a.protocol, Protocol::Json { .. }) {
        query.extend(mapped_query.iter().cloned());
    }
    if let Some(ct) = content_type {
        headers.push(("content-type".into(), ct));
    }
    for (n, v) in mapped_headers {
        let lower = n.to_ascii_lowercase();
        if valid_value(&v)
            && !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            && !matches!(
                lower.as_str(),
                "host" | "content-length" | "transfer-encoding" | "connection" | "authorization"
            )
            && !lower.starts_with("x-amz-date")
        {
            headers.retain(|(k, _)| *k != lower);
            headers.push((lower, v));
        }
    }
    let mut qs = String::new();
    for (k, v) in &query {
        if !qs.is_empty() {
            qs.push('&');
        }
        crate::aws::sign::uri_encode(&mut qs, k, false);
        qs.push('=');
        crate::aws::sign::uri_encode(&mut qs, v, false);
    }
    // a Query-protocol call without a body of its own sends its parameters as the
    // form body, as the SDKs do (the service reads either; some emulators only this)
    // (a body passed through untemplated means nothing to a Query service: its
    // parameters are mapped, `MessageBody = method.request.body` and the like)
    let form;
    let query_protocol = matches!(a.protocol, Protocol::Query { .. });
    let body: &[u8] = if query_protocol && body_type.is_none() {
        headers.retain(|(k, _)| k != "content-type");
        &[]
    } else {
        body
    };
    let body: &[u8] = if query_protocol && body.is_empty() && !qs.is_empty() {
        // form encoding: a space is `+` (a literal `%` is `%25`, so `%20` is only
        // ever a space)
        form = std::mem::take(&mut qs).replace("%20", "+").into_bytes();
        headers.retain(|(k, _)| k != "content-type");
        headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
        &form
    } else {
        body
    };
    let signed_headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let signed = crate::aws::sign::sign(
        &svc.credentials.load(),
        &svc.keys,
        &svc.region,
        svc.name,
        &a.method,
        &path,
        &qs,
        &signed_headers,
        body,
        std::time::SystemTime::now(),
    );
    let mut out = Vec::with_capacity(512 + body.len());
    out.extend_from_slice(a.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    if !qs.is_empty() {
        out.push(b'?');
        out.extend_from_slice(qs.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let length = body.len().to_string();
    for (n, v) in signed_headers
        .iter()
        .copied()
        .chain([("content-length", length.as_str())])
        .chain(signed.iter().map(|(n, v)| (*n, v.as_str())))
    {
        crate::proto::head::push_line(&mut out, n.as_bytes(), v.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Ok(out)
}

/// A mapped request parameter's value (`None`: the request does not have it).
fn source_value(
    s: &Source,
    req: &crate::auth::authorizer::Request<'_>,
    inputs: &Inputs<'_>,
    context: &Value,
) -> Option<String> {
    let header = |n: &str| -> Vec<&str> {
        req.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| *v)
            .collect()
    };
    let query = |n: &str| -> Vec<&str> {
        inputs
            .query
            .iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| &**v)
            .collect()
    };
    match s {
        Source::Static(v) => Some(v.clone()),
        Source::Path(n) => req
            .path_params
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone()),
        // a repeated query parameter or header maps its last value, as AWS's do
        Source::Query(n) => query(n).last().map(|v| v.to_string()),
        Source::MultiQuery(n) => {
            let all = query(n);
            (!all.is_empty()).then(|| all.join(","))
        }
        Source::Header(n) => header(n).last().map(|v| v.to_string()),
        Source::MultiHeader(n) => {
            let all = header(n);
            (!all.is_empty()).then(|| all.join(","))
        }
        Source::Body => Some(String::from_utf8_lossy(inputs.body).into_owned()),
        Source::BodyPath(p) => Some(body_path(inputs.body, p)).filter(|v| !v.is_empty()),
        Source::StageVariable(n) => req
            .stage_variables
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone()),
        Source::Context(n) => Some(context_text(context, n)).filter(|v| !v.is_empty()),
    }
}

/// Percent-encodes a mapped value for a path segment.
fn encode_path(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `$context` for a template (REST's variables, DESIGN §10): request, stage and
/// identity facts, the authorizer's principal, claims and context, and the
/// `requestOverride` / `responseOverride` maps a template may set.
fn context_map(
    ds: &Downstream<'_>,
    plan: &Plan,
    req: &crate::auth::authorizer::Request<'_>,
) -> Value {
    let s = Value::str;
    let map = |pairs: Vec<(&str, Value)>| {
        let mut m = IndexMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            m.insert(Rc::from(k), v);
        }
        Value::new_map(m)
    };
    let header = |n: &str| {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map_or(Value::Null, |(_, v)| s(v))
    };
    let rec = &*ds.rec;
    let (api_key, api_key_id) = match rec.key {
        Some(k) => (header("x-api-key"), s(&plan.key_info[k as usize].name)),
        None => (Value::Null, Value::Null),
    };
    let mut identity = vec![
        ("sourceIp", s(req.source_ip)),
        ("userAgent", header("user-agent")),
        ("apiKey", api_key),
        ("apiKeyId", api_key_id),
        ("accountId", Value::Null),
        ("caller", Value::Null),
        ("user", Value::Null),
        ("userArn", Value::Null),
        ("accessKey", Value::Null),
    ];
    if let Some(u) = rec.iam_user {
        let u = &plan.iam_users[u as usize];
        let name = u.arn.rsplit('/').next().unwrap_or("");
        identity[4].1 = s(&plan.gateway.account);
        identity[5].1 = s(name);
        identity[6].1 = s(name);
        identity[7].1 = s(&u.arn);
        identity[8].1 = s(&u.access_key);
    }
    if let Some(c) = &rec.client {
        identity.push(("clientCert", map(vec![("subjectDN", s(c))])));
    }
    let mut authorizer: Vec<(&str, Value)> = Vec::new();
    let claims;
    if let Some(c) = &rec.claims {
        claims = Value::from_json(serde_json::to_string(&**c).unwrap_or_default().as_bytes())
            .unwrap_or_default();
        let sub = context_path(&claims, &["sub"]);
        authorizer.push(("claims", claims));
        authorizer.push(("principalId", sub));
    }
    let mut extra = Vec::new();
    if let Some(a) = &rec.authorizer {
        authorizer.push(("principalId", a.principal.as_deref().map_or(Value::Null, s)));
        for (k, v) in a.context.iter() {
            extra.push((k.clone(), s(&crate::auth::authorizer::context_text(v))));
        }
    }
    let authorizer = {
        let m = map(authorizer);
        if let Value::Map(mm) = &m {
            for (k, v) in extra {
                mm.borrow_mut().insert(Rc::from(k.as_str()), v);
            }
        }
        m
    };
    let domain = req.host.split(':').next().unwrap_or("");
    map(vec![
        ("accountId", s(req.account)),
        ("apiId", s(req.api)),
        ("authorizer", authorizer),
        ("domainName", s(domain)),
        ("domainPrefix", s(domain.split('.').next().unwrap_or(""))),
        ("extendedRequestId", s(req.request_id)),
        ("httpMethod", s(req.method)),
        ("identity", map(identity)),
        ("path", s(req.path)),
        ("protocol", s(req.protocol)),
        ("requestId", s(req.request_id)),
        (
            "requestTime",
            s(&crate::observe::access_log::clf_time(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(req.time_ms),
            )),
        ),
        ("requestTimeEpoch", Value::Int(req.time_ms as i64)),
        ("resourceId", s(req.route_key)),
        ("resourcePath", s(req.resource)),
        ("routeKey", s(req.route_key)),
        ("stage", s(req.stage)),
        (
            "requestOverride",
            map(vec![
                ("header", map(Vec::new())),
                ("path", map(Vec::new())),
                ("querystring", map(Vec::new())),
            ]),
        ),
        ("responseOverride", map(vec![("header", map(Vec::new()))])),
    ])
}
