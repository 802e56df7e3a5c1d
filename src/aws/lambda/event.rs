//! The Lambda proxy events (AWS_PROXY, DESIGN §9.2): payload 1.0 (REST's event,
//! with HTTP API 1.0's `version`) and 2.0 (HTTP API's), from the same request facts
//! the authorizer events use, with the body (base64 when binary) and what the
//! route's authorizer established. Plain data in, JSON out; unit-tested below and
//! checked against aws-lambda-powertools' models in `tests/lambda.rs`.

use serde_json::{json, Map, Value};

use crate::auth::authorizer::{query_pairs, Payload, Request};

/// What the route's authorizer established, for `requestContext.authorizer`.
#[derive(Debug, Clone, Copy)]
pub enum Authorized<'a> {
    None,
    /// A JWT's claims and the route's scopes.
    Jwt(&'a Map<String, Value>, &'a [String]),
    /// A request authorizer's context (with `principalId`).
    Lambda(&'a Map<String, Value>),
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

fn body_value(x: &Extra<'_>) -> Value {
    use base64::Engine;
    if x.body.is_empty() {
        Value::Null
    } else if x.base64 {
        Value::from(base64::engine::general_purpose::STANDARD.encode(x.body))
    } else {
        Value::from(String::from_utf8_lossy(x.body).into_owned())
    }
}

fn null_if_empty(m: Map<String, Value>) -> Value {
    if m.is_empty() {
        Value::Null
    } else {
        Value::Object(m)
    }
}

/// The proxy event of `payload` for `req`.
pub fn proxy_event(payload: Payload, req: &Request<'_>, x: &Extra<'_>) -> Value {
    match payload {
        Payload::V1 => v1(req, x),
        Payload::V2 => v2(req, x),
    }
}

fn v1(req: &Request<'_>, x: &Extra<'_>) -> Value {
    let mut headers = Map::new();
    let mut multi_headers: Map<String, Value> = Map::new();
    for (n, v) in &req.headers {
        headers.insert(n.to_string(), Value::from(*v));
        push(&mut multi_headers, n, v);
    }
    let mut query = Map::new();
    let mut multi_query: Map<String, Value> = Map::new();
    for (k, v) in query_pairs(req.query) {
        push(&mut multi_query, &k, &v);
        query.insert(k, Value::from(v));
    }
    let user_agent = header(req, "user-agent");
    let mut context = json!({
        "accountId": req.account,
        "apiId": req.api,
        "domainName": req.host,
        "domainPrefix": req.host.split('.').next().unwrap_or(""),
        "extendedRequestId": req.request_id,
        "httpMethod": req.method,
        "identity": {
            "accessKey": null, "accountId": null,
            "apiKey": x.api_key.map(|k| k.0), "apiKeyId": x.api_key.map(|k| k.1),
            "caller": null, "cognitoAuthenticationProvider": null,
            "cognitoAuthenticationType": null, "cognitoIdentityId": null,
            "cognitoIdentityPoolId": null, "principalOrgId": null,
            "sourceIp": req.source_ip, "user": null, "userAgent": user_agent, "userArn": null,
        },
        "path": req.path,
        "protocol": req.protocol,
        "requestId": req.request_id,
        "requestTime": clf(req.time_ms),
        "requestTimeEpoch": req.time_ms,
        "resourceId": req.route_key,
        "resourcePath": req.resource,
        "stage": req.stage,
    });
    match x.authorized {
        Authorized::None => {}
        Authorized::Jwt(claims, scopes) => {
            context["authorizer"] = json!({
                "claims": claims,
                "scopes": if scopes.is_empty() { Value::Null } else { json!(scopes) },
            });
        }
        Authorized::Lambda(ctx) => {
            // REST: a flat map of the context values, stringified
            let flat: Map<String, Value> = ctx
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        Value::from(crate::auth::authorizer::context_text(v).into_owned()),
                    )
                })
                .collect();
            context["authorizer"] = Value::Object(flat);
        }
    }
    json!({
        "version": "1.0",
        "resource": req.resource,
        "path": req.api_path,
        "httpMethod": req.method,
        "headers": null_if_empty(headers),
        "multiValueHeaders": null_if_empty(multi_headers),
        "queryStringParameters": null_if_empty(query),
        "multiValueQueryStringParameters": null_if_empty(multi_query),
        "requestContext": context,
        "pathParameters": null_if_empty(path_params(req)),
        "stageVariables": null_if_empty(stage_variables(req)),
        "body": body_value(x),
        "isBase64Encoded": x.base64 && !x.body.is_empty(),
    })
}

fn v2(req: &Request<'_>, x: &Extra<'_>) -> Value {
    let mut headers: Map<String, Value> = Map::new();
    let mut cookies = Vec::new();
    for (n, v) in &req.headers {
        let n = n.to_ascii_lowercase();
        if n == "cookie" {
            cookies.extend(
                v.split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(Value::from),
            );
            continue;
        }
        join(&mut headers, n, v);
    }
    let mut query: Map<String, Value> = Map::new();
    for (k, v) in query_pairs(req.query) {
        join(&mut query, k, &v);
    }
    let mut context = json!({
        "accountId": req.account,
        "apiId": req.api,
        "domainName": req.host,
        "domainPrefix": req.host.split('.').next().unwrap_or(""),
        "http": {
            "method": req.method,
            "path": req.path,
            "protocol": req.protocol,
            "sourceIp": req.source_ip,
            "userAgent": header(req, "user-agent"),
        },
        "requestId": req.request_id,
        "routeKey": req.route_key,
        "stage": req.stage,
        "time": clf(req.time_ms),
        "timeEpoch": req.time_ms,
    });
    match x.authorized {
        Authorized::None => {}
        Authorized::Jwt(claims, scopes) => {
            context["authorizer"] = json!({"jwt": {
                "claims": claims,
                "scopes": if scopes.is_empty() { Value::Null } else { json!(scopes) },
            }});
        }
        Authorized::Lambda(ctx) => context["authorizer"] = json!({"lambda": ctx}),
    }
    let mut e = Map::new();
    e.insert("version".into(), "2.0".into());
    e.insert("routeKey".into(), req.route_key.into());
    e.insert("rawPath".into(), req.path.into());
    e.insert("rawQueryString".into(), req.query.into());
    if !cookies.is_empty() {
        e.insert("cookies".into(), Value::Array(cookies));
    }
    e.insert("headers".into(), Value::Object(headers));
    if !query.is_empty() {
        e.insert("queryStringParameters".into(), Value::Object(query));
    }
    e.insert("requestContext".into(), context);
    if !x.body.is_empty() {
        e.insert("body".into(), body_value(x));
    }
    let params = path_params(req);
    if !params.is_empty() {
        e.insert("pathParameters".into(), Value::Object(params));
    }
    e.insert(
        "isBase64Encoded".into(),
        Value::from(x.base64 && !x.body.is_empty()),
    );
    let vars = stage_variables(req);
    if !vars.is_empty() {
        e.insert("stageVariables".into(), Value::Object(vars));
    }
    Value::Object(e)
}

fn header<'r>(req: &Request<'r>, name: &str) -> &'r str {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or("", |(_, v)| *v)
}

fn push(map: &mut Map<String, Value>, k: &str, v: &str) {
    match map.get_mut(k) {
        Some(Value::Array(list)) => list.push(Value::from(v)),
        _ => {
            map.insert(k.to_string(), Value::Array(vec![Value::from(v)]));
        }
    }
}

/// 2.0: repeated names joined with commas (no space).
fn join(map: &mut Map<String, Value>, k: String, v: &str) {
    match map.get_mut(&k) {
        Some(Value::String(s)) => {
            s.push(',');
            s.push_str(v);
        }
        _ => {
            map.insert(k, Value::from(v));
        }
    }
}

fn path_params(req: &Request<'_>) -> Map<String, Value> {
    req.path_params
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(v.as_str())))
        .collect()
}

fn stage_variables(req: &Request<'_>) -> Map<String, Value> {
    req.stage_variables
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect()
}

fn clf(ms: u64) -> String {
    crate::observe::access_log::clf_time(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
    )
}

#[cfg(test)]
mod tests;
