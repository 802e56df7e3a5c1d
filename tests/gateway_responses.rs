//! Gateway responses and request validation end to end (DESIGN §10, issue 18):
//! each customised type produced by a real failure (a throttle, a bad key, a
//! missing token, an unsigned request to an IAM route, a body too large, an upstream too slow, a missing parameter, a
//! body against its model), over HTTP/1.1 and HTTP/2 (curl), the class fallbacks,
//! and an API that customises nothing keeping the built-in answers.

mod common;

use std::process::Command;

use common::*;

const KEY: &str = "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk";

fn gateway(up: &Upstream) -> Gateway {
    let cfg = config(
        &format!(
            r#"
max_body = "1KiB"

[apis.shop.gateway_responses.THROTTLED]
status = 503
headers = {{ "Retry-After" = "'7'", "x-trace" = "method.request.header.x-trace" }}
template = '{{"error": "slow down", "type": "$context.error.responseType", "id": "$context.requestId"}}'

[apis.shop.gateway_responses.INVALID_API_KEY]
template = '{{"error": $context.error.messageString, "stage": "$context.stage", "env": "$stageVariables.env", "v": "$context.error.validationErrorString"}}'

[apis.shop.gateway_responses.UNAUTHORIZED]
status = 401
headers = {{ "WWW-Authenticate" = "'Bearer realm=shop'" }}
template = '<error>$context.error.message</error>'
content_type = "application/xml"

[apis.shop.gateway_responses.MISSING_AUTHENTICATION_TOKEN]
status = 401
template = '{{"error": "sign your requests", "was": $context.error.messageString}}'

[apis.shop.gateway_responses.REQUEST_TOO_LARGE]
template = '{{"error": "too big", "status": "$context.status"}}'

[apis.shop.gateway_responses.INTEGRATION_TIMEOUT]
status = 599
template = '{{"error": "the kitchen is slow", "path": "$context.path"}}'

[apis.shop.gateway_responses.BAD_REQUEST_BODY]
template = '{{"message": "$context.error.message", "why": "$util.never $context.error.validationErrorString"}}'

[apis.shop.gateway_responses.DEFAULT_4XX]
headers = {{ "Access-Control-Allow-Origin" = "'*'" }}

[apis.shop.gateway_responses.DEFAULT_5XX]
template = '{{"fault": "$context.error.responseType"}}'

[apis.shop.models.Order]
schema = '''
{{
  "$schema": "http://json-schema.org/draft-04/schema#",
  "title": "Order",
  "type": "object",
  "required": ["item", "qty"],
  "properties": {{
    "item": {{"type": "string", "minLength": 1}},
    "qty": {{"type": "integer", "minimum": 1, "maximum": 10}},
    "note": {{"type": "string"}}
  }},
  "additionalProperties": false
}}
'''

[apis.shop.authorizers.users]
type = "jwt"
issuer = "https://issuer.example"
audience = ["shop"]
jwks = "jwks.json"

[iam.users.alice]
access_key = "AKIDALICE"
secret = "alice-secret"

[apis.shop.routes."GET /signed"]
integration = {{ type = "mock", body = "signed" }}
auth = "iam"

[apis.shop.routes."GET /cheap"]
integration = {{ type = "mock", body = "ok" }}

[apis.shop.routes."GET /keyed"]
integration = {{ type = "mock", body = "keyed" }}
api_key_required = true

[apis.shop.routes."GET /me"]
integration = {{ type = "mock", body = "me" }}
auth = "users"

[apis.shop.routes."POST /upload"]
integration = {{ type = "http_proxy", uri = "http://{{UP}}" }}

[apis.shop.routes."GET /slow"]
integration = {{ type = "http_proxy", uri = "http://{{UP}}/slow/3000" }}
timeout = "500ms"

[apis.shop.routes."GET /down"]
integration = {{ type = "http_proxy", uri = "http://127.0.0.1:9/" }}

[apis.shop.routes."POST /orders/{{shop}}"]
integration = {{ type = "http_proxy", uri = "http://{{UP}}/orders" }}
validate = {{ body = "Order", params = ["header.x-tenant", "query.page", "path.shop"] }}

[apis.shop.routes."POST /mocked"]
integration = {{ type = "mock", status = 201, body = "ok" }}
validate = {{ body = "Order" }}

[apis.shop.routes."POST /templated".integration]
type = "mock"
request_templates = {{ "application/json" = '{{"statusCode": 202}}' }}
[apis.shop.routes."POST /templated"]
validate = {{ body = "Order" }}

[apis.shop.routes."GET /plain"]
integration = {{ type = "mock", body = "plain" }}
validate = {{ params = ["querystring.q"] }}

[apis.other.routes."GET /keyed"]
integration = {{ type = "mock", body = "keyed" }}
api_key_required = true

[stages.prod]
api = "shop"
variables = {{ env = "production" }}
routes = {{ "GET /cheap" = {{ throttle = {{ rate = 1, burst = 1 }} }} }}

[stages.other]
api = "other"
base_path = "/other"

[usage_plans.p]
stages = ["prod", "other"]

[api_keys.k]
key = "{KEY}"
plan = "p"
"#
        ),
        Some(up.addr),
    );
    let dir = TempDir::new("gwresp");
    // RFC 8037's example Ed25519 key: tokens are never made, only missing
    dir.write(
        "jwks.json",
        r#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "k"}]}"#,
    );
    let path = dir.write("turnpike.toml", &cfg);
    Gateway::start_with(dir, path, &["run", "-c"])
}

fn send(gw: &Gateway, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n");
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    request(gw.addr, raw.as_bytes()).expect("a response")
}

#[test]
fn customised_gateway_responses_answer_real_failures() {
    let up = Upstream::start();
    let gw = gateway(&up);

    // THROTTLED: the second request within the second
    assert_eq!(send(&gw, "GET", "/cheap", &[], "").status, 200);
    let r = send(&gw, "GET", "/cheap", &[("x-trace", "t-42")], "");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.header("x-trace"), Some("t-42"));
    let id = r.header("x-request-id").unwrap().to_string();
    assert_eq!(
        r.text(),
        format!(r#"{{"error": "slow down", "type": "THROTTLED", "id": "{id}"}}"#)
    );

    // INVALID_API_KEY: no key, a wrong one
    for key in [None, Some("wrong")] {
        let h: Vec<(&str, &str)> = key.map(|k| ("x-api-key", k)).into_iter().collect();
        let r = send(&gw, "GET", "/keyed", &h, "");
        assert_eq!(r.status, 403);
        assert_eq!(
            r.text(),
            r#"{"error": "Forbidden", "stage": "prod", "env": "production", "v": ""}"#
        );
    }
    assert_eq!(
        send(&gw, "GET", "/keyed", &[("x-api-key", KEY)], "").text(),
        "keyed"
    );
    // another API customises nothing: the built-in answer
    let r = send(&gw, "GET", "/other/keyed", &[], "");
    assert_eq!(
        (r.status, r.text().as_str()),
        (403, r#"{"message":"Forbidden"}"#)
    );
    assert_eq!(r.header("access-control-allow-origin"), None);

    // UNAUTHORIZED: a missing token, in XML with its own WWW-Authenticate
    let r = send(&gw, "GET", "/me", &[], "");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("content-type"), Some("application/xml"));
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=shop"));
    assert_eq!(r.text(), "<error>Unauthorized</error>");

    // MISSING_AUTHENTICATION_TOKEN: an IAM route without a signature
    let r = send(&gw, "GET", "/signed", &[], "");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.text(),
        r#"{"error": "sign your requests", "was": "Missing Authentication Token"}"#
    );
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("MissingAuthenticationTokenException")
    );

    // REQUEST_TOO_LARGE: over max_body
    let big = "x".repeat(2048);
    let r = send(&gw, "POST", "/upload", &[], &big);
    assert_eq!(
        (r.status, r.text().as_str()),
        (413, r#"{"error": "too big", "status": "413"}"#)
    );
    // the class default's header reaches a 4xx type with its own template
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "a type's own customisation replaces the default"
    );

    // INTEGRATION_TIMEOUT with its own status
    let r = send(&gw, "GET", "/slow", &[], "");
    assert_eq!(
        (r.status, r.text().as_str()),
        (599, r#"{"error": "the kitchen is slow", "path": "/slow"}"#)
    );

    // DEFAULT_5XX: a refused connection is INTEGRATION_FAILURE, which falls back to it
    let r = send(&gw, "GET", "/down", &[], "");
    assert_eq!(
        (r.status, r.text().as_str()),
        (502, r#"{"fault": "INTEGRATION_FAILURE"}"#)
    );

    // DEFAULT_4XX: BAD_REQUEST_PARAMETERS (not customised) keeps its body and gets
    // the default's header
    let r = send(&gw, "GET", "/plain", &[], "");
    assert_eq!(r.status, 400);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.text(),
        r#"{"message":"Missing required request parameters: [q]"}"#
    );

    // over HTTP/2 too (curl, h2c with prior knowledge)
    let out = Command::new("curl")
        .args([
            "-s",
            "--http2-prior-knowledge",
            "-w",
            "\n%{http_code} %{http_version}",
        ])
        .arg(format!("http://{}/me", gw.addr))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "<error>Unauthorized</error>\n401 2", "{text}");
}

#[test]
fn requests_are_validated_against_models_and_required_parameters() {
    let up = Upstream::start();
    let gw = gateway(&up);
    let ok = [("x-tenant", "acme"), ("Content-Type", "application/json")];
    let path = "/orders/s1?page=2";

    let r = send(&gw, "POST", path, &ok, r#"{"item": "tea", "qty": 2}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json_field("path").as_deref(),
        Some("/orders"),
        "{}",
        r.text()
    );

    // parameters first: the missing ones, in the order configured
    let r = send(
        &gw,
        "POST",
        "/orders/s1",
        &[("x-tenant", " ")],
        r#"{"item": "tea", "qty": 2}"#,
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        r#"{"message":"Missing required request parameters: [x-tenant, page]"}"#
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("*"),
        "DEFAULT_4XX's header"
    );

    // then the body, against the model
    let before = upstream_count(up.addr);
    for bad in [
        r#"{"item": "tea"}"#,
        r#"{"item": "tea", "qty": 11}"#,
        r#"{"item": "", "qty": 1}"#,
        r#"{"item": "tea", "qty": 1, "extra": true}"#,
        r#"{"item": "tea", "qty": "1"}"#,
        "not json",
    ] {
        let r = send(&gw, "POST", path, &ok, bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        let v: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
        assert_eq!(v["message"], "Invalid request body", "{bad}");
        assert!(
            v["why"].as_str().unwrap().starts_with("$util.never ["),
            "{v}"
        );
    }
    assert_eq!(
        upstream_count(up.addr),
        before + 1,
        "no invalid body reached the upstream"
    );
    // a refusal's reasons do not outlive their request on a kept-alive connection
    let mut c = Client::connect(gw.addr);
    let bad = r#"{"qty": 0}"#;
    c.send(
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nx-tenant: a\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{bad}",
            bad.len()
        )
        .as_bytes(),
    );
    assert_eq!(c.read_response(false).unwrap().status, 400);
    c.send(b"GET /keyed HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 403);
    assert!(r.text().ends_with(r#""v": ""}"#), "{}", r.text());
    // a body that is not JSON by its content type has no model to meet
    let r = send(
        &gw,
        "POST",
        path,
        &[("x-tenant", "acme"), ("Content-Type", "text/plain")],
        "free text",
    );
    assert_eq!(r.status, 200);
    // a chunked body is validated whole too
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nx-tenant: a\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{{\"ite\r\n15\r\nm\": \"tea\", \"qty\": 99}}\r\n0\r\n\r\n"
    );
    let r = request(gw.addr, raw.as_bytes()).unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn model_and_response_errors_are_check_errors() {
    let dir = TempDir::new("gwresp-check");
    let text = r#"
[gateway]
listen = ["127.0.0.1:0"]

[apis.a.models.Bad]
schema = '{"type": "nonsense"}'

[apis.a.models.Remote]
schema = '{"$ref": "http://example.com/schema.json"}'

[apis.a.gateway_responses.NOT_A_TYPE]
status = 400

[apis.a.gateway_responses.THROTTLED]
status = 1000

[apis.a.routes."POST /x"]
integration = { type = "mock" }
validate = { body = "Bad", params = ["cookie.a", "path.nope"] }

[apis.a.routes."POST /y"]
integration = { type = "mock" }
validate = { body = "Missing" }

[apis.a.routes."POST /z"]
integration = { type = "mock" }
validate = { body = "Remote" }

[stages.prod]
api = "a"
"#;
    let path = dir.write("t.toml", text);
    let (ok, err) = check(&path);
    assert!(!ok);
    for needle in [
        "model `Bad`: the schema does not compile",
        "model `Remote`: the schema does not compile",
        "`NOT_A_TYPE` is not a gateway response type",
        "status 1000 is not an HTTP status",
        "`cookie.a`: `cookie` is none of header, query, path",
        "the route has no path parameter `nope`",
        "api `a` has no model `Missing`",
    ] {
        assert!(err.contains(needle), "{needle}:\n{err}");
    }
}
