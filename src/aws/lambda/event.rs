//! The Lambda proxy events (AWS_PROXY, DESIGN §9.2): payload 1.0 (REST's event,
//! with HTTP API 1.0's `version`) and 2.0 (HTTP API's), from the same request facts
//! the authorizer events use, with the body (base64 when binary) and what the
//! route's authorizer established. Plain data in, JSON out; unit-tested below and
//! checked against aws-lambda-powertools' models in `tests/lambda.rs`.

use serde_json::{Map, Value};

use crate::auth::authorizer::{query_pairs, Payload, Request};

/// What the route's authorizer established, for `requestContext.authorizer`.
#[derive(Debug, Clone, Copy)]
pub enum Authorized<'a> {
    None,
    /// A JWT's claims and the route's scopes.
    Jwt(&'a Map<String, Value>, &'a [String]),
    /// A request authorizer's context (with `principalId`).
    Lambda(&'a Map<String, Value>),
    /// A SigV4 signer of an IAM route: its ARN, access key and account.
    Iam {
        user_arn: &'a str,
        access_key: &'a str,
        account: &'a str,
    },
}

/// The rest of what an event says about a request.
#[derive(Debug)]
pub struct Extra<'a> {
    pub body: &'a [u8],
    /// Send the body base64-encoded (`isBase64Encoded`).
    pub base64: bool,
    pub authorized: Authorized<'a>,
    /// The API key presented, and its id (its name in the configuration).
    pub api_key: Option<(&'a str, &'a str)>,
}

/// Whether a 2.0 body of `content_type` goes as text: AWS sends text/*, JSON, XML
/// and JavaScript as they are and base64-encodes everything else.
pub fn v2_is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let ct = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    ct.starts_with("text/")
        || ct == "application/json"
        || ct.ends_with("+json")
        || ct == "application/xml"
        || ct.ends_with("+xml")
        || ct == "application/javascript"
}

/// Whether `content_type` matches one of an API's `binary_media_types`
/// (`type/subtype`, `type/*` or `*/*`).
pub fn is_binary(binary_media_types: &[String], content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let ct = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let (ty, _) = ct.split_once('/').unwrap_or((ct.as_str(), ""));
    binary_media_types
        .iter()
        .any(|m| m == "*/*" || *m == ct || m.strip_suffix("/*").is_some_and(|t| t == ty))
}

/// A JSON writer straight into bytes: the event is written once per request, and
/// building a `serde_json::Value` first cost four times as much (`benches/lambda.rs`).
struct Json {
    out: Vec<u8>,
    /// Whether the object being written needs a comma before its next member.
    first: bool,
}

impl Json {
    fn new(capacity: usize) -> Json {
        Json {
            out: Vec::with_capacity(capacity),
            first: true,
        }
    }

    fn open(&mut self) {
        self.out.push(b'{');
        self.first = true;
    }

    fn close(&mut self) {
        self.out.push(b'}');
        self.first = false;
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.string(k);
        self.out.push(b':');
    }

    fn string(&mut self, v: &str) {
        self.out.push(b'"');
        let bytes = v.as_bytes();
        // most values need no escaping: copy them whole
        if !needs_escape(bytes) {
            self.out.extend_from_slice(bytes);
            self.out.push(b'"');
            return;
        }
        for &b in bytes {
            match b {
                b'"' => self.out.extend_from_slice(b"\\\""),
                b'\\' => self.out.extend_from_slice(b"\\\\"),
                b'\n' => self.out.extend_from_slice(b"\\n"),
                b'\r' => self.out.extend_from_slice(b"\\r"),
                b'\t' => self.out.extend_from_slice(b"\\t"),
                0..=0x1f => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    self.out.extend_from_slice(b"\\u00");
                    self.out.push(HEX[usize::from(b >> 4)]);
                    self.out.push(HEX[usize::from(b & 15)]);
                }
                _ => self.out.push(b),
            }
        }
        self.out.push(b'"');
    }

    fn str_field(&mut self, k: &str, v: &str) {
        self.key(k);
        self.string(v);
    }

    fn opt_field(&mut self, k: &str, v: Option<&str>) {
        self.key(k);
        match v {
            Some(v) => self.string(v),
            None => self.out.extend_from_slice(b"null"),
        }
    }

    fn raw_field(&mut self, k: &str, raw: &[u8]) {
        self.key(k);
        self.out.extend_from_slice(raw);
    }

    fn num_field(&mut self, k: &str, n: u64) {
        self.key(k);
        self.out.extend_from_slice(n.to_string().as_bytes());
    }

    /// `k: {name: value, …}` of string values (`null` when there are none and
    /// `null_if_empty`).
    fn map_field<'v>(
        &mut self,
        k: &str,
        pairs: impl Iterator<Item = (&'v str, &'v str)>,
        null_if_empty: bool,
    ) {
        let mut pairs = pairs.peekable();
        if null_if_empty && pairs.peek().is_none() {
            self.raw_field(k, b"null");
            return;
        }
        self.key(k);
        self.open();
        for (n, v) in pairs {
            self.str_field(n, v);
        }
        self.close();
    }
}

/// Whether JSON needs any byte of `bytes` escaped. In 16-byte blocks without an
/// early exit, so the compiler can check a block with vector instructions.
fn needs_escape(bytes: &[u8]) -> bool {
    let hit = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    let mut blocks = bytes.chunks_exact(16);
    for block in &mut blocks {
        if block.iter().fold(false, |acc, &b| acc | hit(b)) {
            return true;
        }
    }
    blocks.remainder().iter().any(|&b| hit(b))
}

/// The body as the event carries it: base64 when binary, else text.
fn write_body(j: &mut Json, x: &Extra<'_>, absent_is_null: bool) {
    use base64::Engine;
    if x.body.is_empty() {
        if absent_is_null {
            j.raw_field("body", b"null");
        }
    } else if x.base64 {
        j.str_field(
            "body",
            &base64::engine::general_purpose::STANDARD.encode(x.body),
        );
    } else {
        j.str_field("body", &String::from_utf8_lossy(x.body));
    }
}

/// Values per name, in first-seen order (`multiValue…` and 2.0's joined maps).
fn grouped<'v>(
    pairs: impl Iterator<Item = (std::borrow::Cow<'v, str>, std::borrow::Cow<'v, str>)>,
) -> Vec<(std::borrow::Cow<'v, str>, Vec<std::borrow::Cow<'v, str>>)> {
    let mut out: Vec<(std::borrow::Cow<'v, str>, Vec<std::borrow::Cow<'v, str>>)> = Vec::new();
    for (k, v) in pairs {
        match out.iter_mut().find(|(n, _)| *n == k) {
            Some((_, list)) => list.push(v),
            None => out.push((k, vec![v])),
        }
    }
    out
}

/// The proxy event of `payload` for `req`, as JSON bytes.
pub fn proxy_event(payload: Payload, req: &Request<'_>, x: &Extra<'_>) -> Vec<u8> {
    // room for all of it up front: growing the buffer was a fifth of the cost
    let headers: usize = req.headers.iter().map(|(n, v)| n.len() + v.len() + 8).sum();
    let mut j = Json::new(2048 + 2 * headers + 2 * req.query.len() + x.body.len() * 4 / 3);
    match payload {
        Payload::V1 => v1(&mut j, req, x),
        Payload::V2 => v2(&mut j, req, x),
    }
    j.out
}

fn query_groups<'q>(
    req: &Request<'q>,
) -> Vec<(std::borrow::Cow<'q, str>, Vec<std::borrow::Cow<'q, str>>)> {
    grouped(
        query_pairs(req.query)
            .map(|(k, v)| (std::borrow::Cow::Owned(k), std::borrow::Cow::Owned(v))),
    )
}

fn v1(j: &mut Json, req: &Request<'_>, x: &Extra<'_>) {
    use std::borrow::Cow;
    let headers = grouped(
        req.headers
            .iter()
            .map(|(n, v)| (Cow::Borrowed(*n), Cow::Borrowed(*v))),
    );
    let query = query_groups(req);
    j.open();
    j.str_field("version", "1.0");
    j.str_field("resource", req.resource);
    j.str_field("path", req.api_path);
    j.str_field("httpMethod", req.method);
    // one value per name (the last), and all of them
    j.map_field(
        "headers",
        headers.iter().map(|(n, v)| (&**n, &*v[v.len() - 1])),
        true,
    );
    multi(j, "multiValueHeaders", &headers);
    j.map_field(
        "queryStringParameters",
        query.iter().map(|(n, v)| (&**n, &*v[v.len() - 1])),
        true,
    );
    multi(j, "multiValueQueryStringParameters", &query);
    j.key("requestContext");
    j.open();
    j.str_field("accountId", req.account);
    j.str_field("apiId", req.api);
    match x.authorized {
        Authorized::None => {}
        Authorized::Jwt(claims, scopes) => {
            j.key("authorizer");
            j.open();
            j.key("claims");
            let _ = serde_json::to_writer(&mut j.out, claims);
            j.key("scopes");
            scopes_value(j, scopes);
            j.close();
        }
        Authorized::Iam { .. } => {}
        Authorized::Lambda(ctx) => {
            // REST: a flat map of the context values, stringified
            j.key("authorizer");
            j.open();
            for (k, v) in ctx {
                j.str_field(k, &crate::auth::authorizer::context_text(v));
            }
            j.close();
        }
    }
    j.str_field("domainName", req.host);
    j.str_field("domainPrefix", req.host.split('.').next().unwrap_or(""));
    j.str_field("extendedRequestId", req.request_id);
    j.str_field("httpMethod", req.method);
    let iam = match x.authorized {
        Authorized::Iam {
            user_arn,
            access_key,
            account,
        } => Some((user_arn, access_key, account)),
        _ => None,
    };
    j.key("identity");
    j.open();
    j.opt_field("accessKey", iam.map(|i| i.1));
    j.opt_field("accountId", iam.map(|i| i.2));
    j.opt_field("apiKey", x.api_key.map(|k| k.0));
    j.opt_field("apiKeyId", x.api_key.map(|k| k.1));
    j.opt_field("caller", iam.map(|i| i.0));
    for k in [
        "cognitoAuthenticationProvider",
        "cognitoAuthenticationType",
        "cognitoIdentityId",
        "cognitoIdentityPoolId",
        "principalOrgId",
    ] {
        j.raw_field(k, b"null");
    }
    j.str_field("sourceIp", req.source_ip);
    j.opt_field("user", iam.map(|i| i.0));
    j.str_field("userAgent", header(req, "user-agent"));
    j.opt_field("userArn", iam.map(|i| i.0));
    j.close();
    j.str_field("path", req.path);
    j.str_field("protocol", req.protocol);
    j.str_field("requestId", req.request_id);
    j.str_field("requestTime", &clf(req.time_ms));
    j.num_field("requestTimeEpoch", req.time_ms);
    j.str_field("resourceId", req.route_key);
    j.str_field("resourcePath", req.resource);
    j.str_field("stage", req.stage);
    j.close();
    j.map_field(
        "pathParameters",
        req.path_params.iter().map(|(k, v)| (*k, v.as_str())),
        true,
    );
    j.map_field(
        "stageVariables",
        req.stage_variables
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
        true,
    );
    write_body(j, x, true);
    j.raw_field(
        "isBase64Encoded",
        if x.base64 && !x.body.is_empty() {
            b"true"
        } else {
            b"false"
        },
    );
    j.close();
}

fn multi(
    j: &mut Json,
    k: &str,
    groups: &[(std::borrow::Cow<'_, str>, Vec<std::borrow::Cow<'_, str>>)],
) {
    if groups.is_empty() {
        j.raw_field(k, b"null");
        return;
    }
    j.key(k);
    j.open();
    for (n, values) in groups {
        j.key(n);
        j.out.push(b'[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                j.out.push(b',');
            }
            j.string(v);
        }
        j.out.push(b']');
    }
    j.close();
}

fn scopes_value(j: &mut Json, scopes: &[String]) {
    if scopes.is_empty() {
        j.out.extend_from_slice(b"null");
    } else {
        let _ = serde_json::to_writer(&mut j.out, scopes);
    }
}

fn v2(j: &mut Json, req: &Request<'_>, x: &Extra<'_>) {
    use std::borrow::Cow;
    let query = query_groups(req);
    let h = &req.headers;
    // 2.0: repeated names joined with commas (no space)
    let joined = |g: &[(Cow<'_, str>, Vec<Cow<'_, str>>)]| -> Vec<(String, String)> {
        g.iter()
            .map(|(n, v)| (n.to_string(), v.join(",")))
            .collect()
    };
    j.open();
    j.str_field("version", "2.0");
    j.str_field("routeKey", req.route_key);
    j.str_field("rawPath", req.path);
    j.str_field("rawQueryString", req.query);
    let mut cookies = h
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';').map(str::trim).filter(|c| !c.is_empty()))
        .peekable();
    if cookies.peek().is_some() {
        j.key("cookies");
        j.out.push(b'[');
        for (i, c) in cookies.enumerate() {
            if i > 0 {
                j.out.push(b',');
            }
            j.string(c);
        }
        j.out.push(b']');
    }
    // lower-case names, a repeated one's values joined with commas (no space)
    j.key("headers");
    j.open();
    for i in 0..h.len() {
        let name = h[i].0;
        if name.eq_ignore_ascii_case("cookie")
            || h[..i].iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            continue;
        }
        if !j.first {
            j.out.push(b',');
        }
        j.first = false;
        let at = j.out.len();
        j.string(name);
        j.out[at..].make_ascii_lowercase();
        j.out.extend_from_slice(b":\"");
        for (k, (_, v)) in h[i..]
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .enumerate()
        {
            if k > 0 {
                j.out.push(b',');
            }
            // the value's text inside the one joined string: without its quotes
            let at = j.out.len();
            j.string(v);
            j.out.pop();
            j.out.remove(at);
        }
        j.out.push(b'"');
    }
    j.close();
    if !query.is_empty() {
        let q = joined(&query);
        j.map_field(
            "queryStringParameters",
            q.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            false,
        );
    }
    j.key("requestContext");
    j.open();
    j.str_field("accountId", req.account);
    j.str_field("apiId", req.api);
    match x.authorized {
        Authorized::None => {}
        Authorized::Jwt(claims, scopes) => {
            j.key("authorizer");
            j.open();
            j.key("jwt");
            j.open();
            j.key("claims");
            let _ = serde_json::to_writer(&mut j.out, claims);
            j.key("scopes");
            scopes_value(j, scopes);
            j.close();
            j.close();
        }
        Authorized::Iam {
            user_arn,
            access_key,
            account,
        } => {
            j.key("authorizer");
            j.open();
            j.key("iam");
            j.open();
            j.str_field("accessKey", access_key);
            j.str_field("accountId", account);
            j.str_field("callerId", user_arn);
            j.raw_field("cognitoIdentity", b"null");
            j.raw_field("principalOrgId", b"null");
            j.str_field("userArn", user_arn);
            j.str_field("userId", user_arn);
            j.close();
            j.close();
        }
        Authorized::Lambda(ctx) => {
            j.key("authorizer");
            j.open();
            j.key("lambda");
            let _ = serde_json::to_writer(&mut j.out, ctx);
            j.first = false;
            j.close();
        }
    }
    j.str_field("domainName", req.host);
    j.str_field("domainPrefix", req.host.split('.').next().unwrap_or(""));
    j.key("http");
    j.open();
    j.str_field("method", req.method);
    j.str_field("path", req.path);
    j.str_field("protocol", req.protocol);
    j.str_field("sourceIp", req.source_ip);
    j.str_field("userAgent", header(req, "user-agent"));
    j.close();
    j.str_field("requestId", req.request_id);
    j.str_field("routeKey", req.route_key);
    j.str_field("stage", req.stage);
    j.str_field("time", &clf(req.time_ms));
    j.num_field("timeEpoch", req.time_ms);
    j.close();
    write_body(j, x, false);
    if !req.path_params.is_empty() {
        j.map_field(
            "pathParameters",
            req.path_params.iter().map(|(k, v)| (*k, v.as_str())),
            false,
        );
    }
    j.raw_field(
        "isBase64Encoded",
        if x.base64 && !x.body.is_empty() {
            b"true"
        } else {
            b"false"
        },
    );
    if !req.stage_variables.is_empty() {
        j.map_field(
            "stageVariables",
            req.stage_variables
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
            false,
        );
    }
    j.close();
}

fn header<'r>(req: &Request<'r>, name: &str) -> &'r str {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or("", |(_, v)| *v)
}

fn clf(ms: u64) -> String {
    crate::observe::access_log::clf_time(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
    )
}

#[cfg(test)]
mod tests;
