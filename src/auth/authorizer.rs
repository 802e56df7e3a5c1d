//! Request and token authorizers (AWS's Lambda authorizers, DESIGN §8.3), as plain
//! data: the identity values a request presents, the event sent to the authorizer
//! (REST TOKEN and REQUEST in payload 1.0, the HTTP API REQUEST event in 2.0), the
//! answer read back (simple `isAuthorized`, or an IAM policy with `principalId`,
//! `context` and `usageIdentifierKey`) and the decision for one method ARN.
//!
//! Nothing here does I/O: `pipeline/auth.rs` calls the authorizer (HTTP or the
//! Lambda Invoke API) and keeps answers in the node's `decisions::Results`. An
//! answer is input from another process: anything malformed is an error (→ 500),
//! never a panic and never an allow. Unit-tested below; end to end in
//! `tests/authorizers.rs`.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::policy::{Policy, Verdict};

/// Which event an authorizer receives and which answers it may give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// REST: TOKEN or REQUEST events, IAM-policy answers.
    V1,
    /// HTTP API: the 2.0 REQUEST event; simple or IAM-policy answers.
    V2,
}

/// The answers an authorizer gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// `{"isAuthorized": bool, "context": {…}}` (payload 2.0 only).
    Simple,
    /// `{"principalId", "policyDocument", "context", "usageIdentifierKey"}`.
    Iam,
}

/// Where an identity value comes from (AWS's identity sources).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `$request.header.NAME` / `method.request.header.NAME` (lower-case name).
    Header(String),
    /// `$request.querystring.NAME` / `method.request.querystring.NAME`.
    Query(String),
    /// `$stageVariables.NAME` / `stageVariables.NAME`.
    StageVariable(String),
    /// `$context.routeKey` (AWS's advice for caching answers per route).
    RouteKey,
}

impl Source {
    /// Reads an identity source expression (HTTP API `$request.…` or REST
    /// `method.request.…` forms).
    pub fn parse(s: &str) -> Result<Source, String> {
        let named = |rest: &str| (!rest.is_empty()).then(|| rest.to_string());
        let s = s.trim();
        if let Some(h) = s
            .strip_prefix("$request.header.")
            .or_else(|| s.strip_prefix("method.request.header."))
            .and_then(named)
        {
            return Ok(Source::Header(h.to_ascii_lowercase()));
        }
        if let Some(q) = s
            .strip_prefix("$request.querystring.")
            .or_else(|| s.strip_prefix("method.request.querystring."))
            .and_then(named)
        {
            return Ok(Source::Query(q));
        }
        if let Some(v) = s
            .strip_prefix("$stageVariables.")
            .or_else(|| s.strip_prefix("stageVariables."))
            .and_then(named)
        {
            return Ok(Source::StageVariable(v));
        }
        if s == "$context.routeKey" || s == "context.routeKey" {
            return Ok(Source::RouteKey);
        }
        Err(format!(
            "identity source `{s}`: expected $request.header.NAME, $request.querystring.NAME, $stageVariables.NAME or $context.routeKey"
        ))
    }
}

/// What the event describes: the request as the pipeline saw it.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent, and the path within the stage (base path removed).
    pub path: &'a str,
    pub api_path: &'a str,
    /// The raw query string (no `?`).
    pub query: &'a str,
    /// Headers in order, as sent.
    pub headers: Vec<(&'a str, &'a str)>,
    pub route_key: &'a str,
    /// The route's path template (`/orders/{id}`), AWS's `resource`.
    pub resource: &'a str,
    pub path_params: Vec<(&'a str, String)>,
    pub stage: &'a str,
    pub api: &'a str,
    pub account: &'a str,
    pub stage_variables: &'a [(String, String)],
    pub source_ip: &'a str,
    pub request_id: &'a str,
    pub host: &'a str,
    /// Milliseconds since the epoch.
    pub time_ms: u64,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub protocol: &'a str,
    pub method_arn: &'a str,
}

/// The identity values of `req` for `sources`, joined for the cache key; `None`
/// when one is missing or empty (→ 401 without calling the authorizer).
pub fn identity_values(sources: &[Source], req: &Request<'_>) -> Option<Vec<String>> {
    sources
        .iter()
        .map(|s| {
            let v = match s {
                Source::Header(name) => req
                    .headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_string()),
                Source::Query(name) => query_pairs(req.query)
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v),
                Source::StageVariable(name) => req
                    .stage_variables
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone()),
                Source::RouteKey => Some(req.route_key.to_string()),
            };
            v.filter(|v| !v.is_empty())
        })
        .collect()
}

/// The REST TOKEN event.
pub fn token_event(token: &str, req: &Request<'_>) -> Value {
    json!({"type": "TOKEN", "authorizationToken": token, "methodArn": req.method_arn})
}

/// The REQUEST event of `payload` (1.0: REST's, with HTTP API's `version`,
/// `identitySource` and `authorizationToken` fields too; 2.0: HTTP API's).
pub fn request_event(payload: Payload, identity: &[String], req: &Request<'_>) -> Value {
    let user_agent = req
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
        .map_or("", |(_, v)| *v);
    let stage_variables: Map<String, Value> = req
        .stage_variables
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    let path_params: Map<String, Value> = req
        .path_params
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(v.as_str())))
        .collect();
    let opt = |m: Map<String, Value>| {
        if m.is_empty() {
            Value::Null
        } else {
            Value::Object(m)
        }
    };
    let domain_prefix = req.host.split('.').next().unwrap_or("");
    match payload {
        Payload::V1 => {
            let mut headers = Map::new();
            let mut multi_headers: Map<String, Value> = Map::new();
            for (n, v) in &req.headers {
                headers.insert(n.to_string(), Value::from(*v));
                push_multi(&mut multi_headers, n, v);
            }
            let mut query = Map::new();
            let mut multi_query: Map<String, Value> = Map::new();
            for (k, v) in query_pairs(req.query) {
                push_multi(&mut multi_query, &k, &v);
                query.insert(k, Value::from(v));
            }
            let joined = identity.join(",");
            json!({
                "version": "1.0",
                "type": "REQUEST",
                "methodArn": req.method_arn,
                "identitySource": joined,
                "authorizationToken": joined,
                "resource": req.resource,
                "path": req.path,
                "httpMethod": req.method,
                "headers": headers,
                "multiValueHeaders": multi_headers,
                "queryStringParameters": opt(query),
                "multiValueQueryStringParameters": opt(multi_query),
                "pathParameters": path_params,
                "stageVariables": stage_variables,
                "requestContext": {
                    "path": req.path,
                    "accountId": req.account,
                    "resourceId": req.route_key,
                    "stage": req.stage,
                    "requestId": req.request_id,
                    "identity": {"sourceIp": req.source_ip, "userAgent": user_agent},
                    "resourcePath": req.resource,
                    "httpMethod": req.method,
                    "apiId": req.api,
                    "domainName": req.host,
                    "domainPrefix": domain_prefix,
                    "protocol": req.protocol,
                    "requestTimeEpoch": req.time_ms,
                },
            })
        }
        Payload::V2 => {
            // 2.0: lower-case names, repeated headers joined with commas, cookies apart
            let mut headers: Map<String, Value> = Map::new();
            let mut cookies = Vec::new();
            for (n, v) in &req.headers {
                let n = n.to_ascii_lowercase();
                if n == "cookie" {
                    cookies.extend(
                        v.split(';')
                            .map(|c| Value::from(c.trim()))
                            .filter(|c| c != ""),
                    );
                    continue;
                }
                match headers.get_mut(&n) {
                    Some(Value::String(s)) => {
                        s.push(',');
                        s.push_str(v);
                    }
                    _ => {
                        headers.insert(n, Value::from(*v));
                    }
                }
            }
            let mut query: Map<String, Value> = Map::new();
            for (k, v) in query_pairs(req.query) {
                match query.get_mut(&k) {
                    Some(Value::String(s)) => {
                        s.push(',');
                        s.push_str(&v);
                    }
                    _ => {
                        query.insert(k, Value::from(v));
                    }
                }
            }
            let mut event = json!({
                "version": "2.0",
                "type": "REQUEST",
                "routeArn": req.method_arn,
                "identitySource": identity,
                "routeKey": req.route_key,
                "rawPath": req.path,
                "rawQueryString": req.query,
                "headers": headers,
                "requestContext": {
                    "accountId": req.account,
                    "apiId": req.api,
                    "domainName": req.host,
                    "domainPrefix": domain_prefix,
                    "http": {
                        "method": req.method,
                        "path": req.path,
                        "protocol": req.protocol,
                        "sourceIp": req.source_ip,
                        "userAgent": user_agent,
                    },
                    "requestId": req.request_id,
                    "routeKey": req.route_key,
                    "stage": req.stage,
                    "time": clf_time(req.time_ms),
                    "timeEpoch": req.time_ms,
                },
            });
            // AWS leaves out what a request does not have
            if let Some(obj) = event.as_object_mut() {
                if !cookies.is_empty() {
                    obj.insert("cookies".into(), Value::Array(cookies));
                }
                if !query.is_empty() {
                    obj.insert("queryStringParameters".into(), Value::Object(query));
                }
                if !path_params.is_empty() {
                    obj.insert("pathParameters".into(), Value::Object(path_params));
                }
                if !stage_variables.is_empty() {
                    obj.insert("stageVariables".into(), Value::Object(stage_variables));
                }
            }
            event
        }
    }
}

fn push_multi(map: &mut Map<String, Value>, k: &str, v: &str) {
    match map.get_mut(k) {
        Some(Value::Array(list)) => list.push(Value::from(v)),
        _ => {
            map.insert(k.to_string(), Value::Array(vec![Value::from(v)]));
        }
    }
}

/// `name=value` pairs of a query string, percent-decoded (`+` as space).
pub fn query_pairs(q: &str) -> impl Iterator<Item = (String, String)> + '_ {
    q.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k), decode(v))
    })
}

fn decode(s: &str) -> String {
    crate::transform::util::url_decode(s)
}

/// `dd/Mon/yyyy:HH:mm:ss +0000` (AWS's `requestContext.time`).
fn clf_time(ms: u64) -> String {
    crate::observe::access_log::clf_time(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
    )
}

/// Why an answer is not an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The authorizer said `Unauthorized` (→ 401).
    Unauthorized,
    /// Anything else: not JSON, wrong shape, missing fields (→ 500).
    Invalid(String),
}

/// An authorizer's answer, kept for its TTL and decided per request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub principal: Option<String>,
    pub grant: Grant,
    /// `context`: reaches logs and integrations as `$context.authorizer.KEY`.
    pub context: Arc<Map<String, Value>>,
    /// `usageIdentifierKey`: the API key whose usage plan applies.
    pub usage_key: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Grant {
    /// A simple answer: every route or none.
    Simple(bool),
    Policy(Policy),
}

/// What an answer says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// A simple answer's `isAuthorized: false` (→ 403 Forbidden).
    Forbidden,
    /// An IAM answer that denies the method ARN, explicitly or not.
    Denied {
        explicit: bool,
    },
}

impl Answer {
    pub fn decide(&self, method_arn: &str) -> Decision {
        match &self.grant {
            Grant::Simple(true) => Decision::Allow,
            Grant::Simple(false) => Decision::Forbidden,
            Grant::Policy(p) => match p.evaluate("execute-api:Invoke", method_arn) {
                Verdict::Allow => Decision::Allow,
                Verdict::ExplicitDeny => Decision::Denied { explicit: true },
                Verdict::ImplicitDeny => Decision::Denied { explicit: false },
            },
        }
    }
}

/// Largest answer read from an authorizer.
pub const MAX_ANSWER: usize = 64 << 10;

/// Reads an authorizer's answer body.
pub fn parse_answer(payload: Payload, response: Response, body: &[u8]) -> Result<Answer, Refusal> {
    let invalid = |m: &str| Refusal::Invalid(m.to_string());
    let v: Value =
        serde_json::from_slice(body).map_err(|e| Refusal::Invalid(format!("not JSON: {e}")))?;
    if v.as_str() == Some("Unauthorized") {
        return Err(Refusal::Unauthorized);
    }
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("the answer is not a JSON object"))?;
    let context = match obj.get("context") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => {
            if payload == Payload::V1 && m.values().any(|x| x.is_object() || x.is_array()) {
                return Err(invalid(
                    "context values must be strings, numbers or booleans",
                ));
            }
            if m.contains_key("claims") && payload == Payload::V1 {
                return Err(invalid("`claims` is a reserved context key"));
            }
            m.clone()
        }
        Some(_) => return Err(invalid("context is not an object")),
    };
    match response {
        Response::Simple => {
            let allowed = obj
                .get("isAuthorized")
                .and_then(Value::as_bool)
                .ok_or_else(|| invalid("a simple answer needs a boolean isAuthorized"))?;
            Ok(Answer {
                principal: None,
                grant: Grant::Simple(allowed),
                context: Arc::new(context),
                usage_key: None,
            })
        }
        Response::Iam => {
            let principal = match obj.get("principalId") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return Err(invalid("an IAM answer needs a principalId")),
            };
            let doc = obj
                .get("policyDocument")
                .ok_or_else(|| invalid("an IAM answer needs a policyDocument"))?;
            let policy =
                Policy::parse(doc).map_err(|e| Refusal::Invalid(format!("policyDocument: {e}")))?;
            // AWS hands integrations the context with the principal beside it
            let mut context = context;
            context
                .entry("principalId")
                .or_insert_with(|| Value::from(principal.as_str()));
            let usage_key = match obj.get("usageIdentifierKey") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(invalid("usageIdentifierKey is not a string")),
            };
            Ok(Answer {
                principal: Some(principal),
                grant: Grant::Policy(policy),
                context: Arc::new(context),
                usage_key,
            })
        }
    }
}

/// A context value as AWS passes it on: strings as they are, the rest stringified.
pub fn context_text(v: &Value) -> std::borrow::Cow<'_, str> {
    match v {
        Value::String(s) => std::borrow::Cow::Borrowed(s),
        other => std::borrow::Cow::Owned(other.to_string()),
    }
}

#[cfg(test)]
mod tests;
