//! CORS end to end (DESIGN §8.5, AWS's HTTP API CORS): preflights answered by the
//! gateway for any path of the API (before routes, authorizers and API keys), the
//! policy's headers on every other response of an allowed origin (errors included),
//! the upstream's own CORS headers dropped, and policy errors caught by `check`.

mod common;

use common::*;

const APP: &str = "https://app.example.com";

fn cfg(up: std::net::SocketAddr) -> String {
    config(
        &format!(
            r#"
[apis.a.cors]
allow_origins = ["{APP}", "http://*"]
allow_methods = ["GET", "POST"]
allow_headers = ["authorization", "content-type", "x-custom"]
expose_headers = ["x-request-id", "x-upstream"]
max_age = "600s"
allow_credentials = true

[apis.a.routes."POST /items"]
integration = {{ type = "http_proxy", uri = "http://{up}/items" }}

[apis.a.routes."GET /items"]
integration = {{ type = "http_proxy", uri = "http://{up}/items" }}

[apis.a.routes."GET /keyed"]
integration = {{ type = "mock", body = "k" }}
api_key_required = true

[apis.b.routes."GET /plain"]
integration = {{ type = "http_proxy", uri = "http://{up}/plain" }}

[stages.prod]
api = "a"

[stages.other]
api = "b"
base_path = "/b"
"#
        ),
        None,
    )
}

fn send(gw: &Gateway, raw: &str) -> Response {
    request(gw.addr, raw.as_bytes()).expect("a response")
}

#[test]
fn preflights_are_answered_by_the_gateway_and_responses_carry_the_policy() {
    let up = Upstream::start();
    let gw = Gateway::start(&cfg(up.addr));
    let before = upstream_count(up.addr);

    // a preflight for a path with no OPTIONS route: the gateway answers it
    let r = send(&gw, &format!("OPTIONS /items HTTP/1.1\r\nHost: t\r\nOrigin: {APP}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: X-Custom, Content-Type\r\nConnection: close\r\n\r\n"));
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, POST"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("authorization, content-type, x-custom")
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert_eq!(r.header("vary"), Some("origin"));

    // not allowed (origin, method, header): 204 without CORS headers, so the browser refuses
    for (origin, method, headers) in [
        ("https://evil.example", "POST", ""),
        (APP, "DELETE", ""),
        (APP, "GET", "Access-Control-Request-Headers: x-secret\r\n"),
    ] {
        let r = send(&gw, &format!("OPTIONS /items HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: {method}\r\n{headers}Connection: close\r\n\r\n"));
        assert_eq!(r.status, 204);
        assert_eq!(
            r.header("access-control-allow-origin"),
            None,
            "{origin} {method} {headers}"
        );
    }
    // an API key route's preflight needs no key (browsers never send one there)
    let r = send(&gw, &format!("OPTIONS /keyed HTTP/1.1\r\nHost: t\r\nOrigin: {APP}\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n"));
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        upstream_count(up.addr),
        before + 1,
        "no preflight reached the upstream"
    );

    // an actual request: the policy's headers, the upstream's own CORS header dropped
    let r = send(&gw, "GET /items?h=Access-Control-Allow-Origin:*&h=Access-Control-Max-Age:1 HTTP/1.1\r\nHost: t\r\nOrigin: http://localhost:8080\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:8080")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("x-request-id, x-upstream")
    );
    assert_eq!(
        r.header("access-control-max-age"),
        None,
        "the upstream's CORS header is dropped"
    );
    assert_eq!(r.header("vary"), Some("origin"));
    assert_eq!(r.header("x-upstream"), Some("echo"));

    // errors the gateway makes carry them too (a browser can read the 403)
    let r = send(
        &gw,
        &format!("GET /keyed HTTP/1.1\r\nHost: t\r\nOrigin: {APP}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    // a disallowed origin gets `vary` only; no Origin, nothing
    let r = send(&gw, "GET /items HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.example\r\nConnection: close\r\n\r\n");
    assert_eq!(
        (r.header("access-control-allow-origin"), r.header("vary")),
        (None, Some("origin"))
    );
    let r = send(&gw, "GET /items?h=Access-Control-Allow-Origin:* HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "dropped even without an Origin"
    );

    // an API without a policy: the upstream's headers pass, OPTIONS is routed as usual
    let r = send(&gw, &format!("GET /b/plain?h=Access-Control-Allow-Origin:* HTTP/1.1\r\nHost: t\r\nOrigin: {APP}\r\nConnection: close\r\n\r\n"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let r = send(&gw, &format!("OPTIONS /b/plain HTTP/1.1\r\nHost: t\r\nOrigin: {APP}\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n"));
    assert_eq!(r.status, 405);

    // keep-alive: one request's CORS lines never leak into the next one's response
    let mut c = Client::connect(gw.addr);
    c.send(format!("GET /items HTTP/1.1\r\nHost: t\r\nOrigin: {APP}\r\n\r\nGET /b/plain HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    let first = c.read_response(false).unwrap();
    let second = c.read_response(false).unwrap();
    assert_eq!(first.header("access-control-allow-origin"), Some(APP));
    assert_eq!(second.header("access-control-allow-origin"), None);
    assert_eq!(second.header("vary"), None);
}

#[test]
fn a_wildcard_origin_with_credentials_is_refused_by_check() {
    let dir = TempDir::new("cors-check");
    let path = dir.write(
        "t.toml",
        r#"
[apis.a.cors]
allow_origins = ["*"]
allow_credentials = true
max_age = "25h"

[apis.a.routes."GET /x"]
integration = { type = "mock" }

[stages.prod]
api = "a"
"#,
    );
    let (ok, err) = check(&path);
    assert!(!ok);
    assert!(
        err.contains("t.toml:3:18") && err.contains("allow_credentials"),
        "{err}"
    );
    assert!(
        err.contains("t.toml:5:11") && err.contains("86400s"),
        "{err}"
    );
}
