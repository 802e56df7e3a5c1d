//! Request and token authorizers end to end (DESIGN §8.3, issue 15): a real
//! authorizer process (`tests/authorizer.py`) called over HTTP and through the
//! Lambda Invoke API, whose SigV4 signatures it recomputes with botocore. Allow,
//! deny, IAM policies allowing one route and denying another from one cached
//! answer, TTL expiry, 100 concurrent first requests coalesced onto one call across
//! both workers, slow, failing and unauthorized answers, the usage key an answer
//! names, and what reaches the access log.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;

/// The authorizer process; lives until dropped.
struct Authorizer {
    _server: common::python::Server,
    addr: SocketAddr,
}

impl Authorizer {
    fn start() -> Authorizer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/authorizer.py");
        let server =
            common::python::Server::start(&["moto[server]==5.2.5", "boto3==1.44.8"], &[script]);
        Authorizer {
            addr: server.addr,
            _server: server,
        }
    }

    /// How many events carried `token`.
    fn calls(&self, token: &str) -> u64 {
        get(self.addr, &format!("/calls?token={token}"))
            .json_field("n")
            .unwrap()
            .parse()
            .unwrap()
    }

    fn last_event(&self, token: &str) -> String {
        get(self.addr, &format!("/last?token={token}")).text()
    }
}

fn gateway(authz: &Authorizer, secret: &str) -> Gateway {
    gateway_with(authz, secret, "127.0.0.1:1")
}

fn gateway_with(authz: &Authorizer, secret: &str, up: &str) -> Gateway {
    let a = authz.addr;
    let cfg = format!(
        r#"{GATEWAY}
[access_log]
path = "access.log"
format = '{{"rid":"$context.requestId","status":"$context.status","principal":"$context.authorizer.principalId","tier":"$context.authorizer.tier","tenant":"$context.authorizer.tenant","err":"$context.authorizer.error","key":"$context.identity.apiKeyId"}}'

[aws]
region = "us-east-1"
credentials = {{ access_key = "AKIDTURNPIKETEST", secret = "{secret}" }}
endpoints = {{ lambda = "http://{a}" }}

[apis.shop]
api_key_source = "authorizer"

[apis.shop.authorizers.simple]
type = "request"
identity = ["$request.header.X-Token"]
function = {{ type = "http", uri = "http://{a}/authorize" }}
payload = "2.0"
response = "simple"
ttl = "300s"
timeout = "1s"

[apis.shop.authorizers.short]
type = "request"
identity = ["$request.header.X-Token", "$request.querystring.tenant"]
function = {{ type = "http", uri = "http://{a}/authorize" }}
ttl = "1s"
timeout = "1s"

[apis.shop.authorizers.policy]
type = "request"
identity = ["$request.header.X-Token"]
function = {{ type = "lambda", function = "arn:aws:lambda:us-east-1:123456789012:function:authz:live" }}
payload = "1.0"
response = "iam"
ttl = "300s"
timeout = "1s"

[apis.shop.authorizers.tok]
type = "token"
function = {{ type = "lambda", function = "authz" }}
ttl = "0s"
timeout = "1s"

[apis.shop.routes."GET /simple/{{id}}"]
auth = "simple"
integration = {{ type = "mock", status = 200, body = "simple ok" }}

[apis.shop.routes."GET /short"]
auth = "short"
integration = {{ type = "mock", status = 200, body = "short ok" }}

[apis.shop.routes."GET /orders/{{id}}"]
auth = "policy"
integration = {{ type = "mock", status = 200, body = "order" }}

[apis.shop.routes."DELETE /orders/{{id}}"]
auth = "policy"
integration = {{ type = "mock", status = 204 }}

[apis.shop.routes."POST /orders"]
auth = "policy"
integration = {{ type = "mock", status = 201 }}

[apis.shop.routes."GET /metered"]
auth = "policy"
api_key_required = true
integration = {{ type = "mock", status = 200, body = "metered" }}

[upstreams.app]
targets = ["{up}"]

[apis.shop.authorizers.ctx]
type = "request"
identity = ["$request.header.X-Token"]
function = {{ type = "http", uri = "http://{a}/authorize" }}
forward_context = {{ tenant = "X-Tenant", token = "x-authz-token", principalId = "x-principal" }}

[apis.shop.authorizers.ctxiam]
type = "request"
identity = ["$request.header.X-Token"]
function = {{ type = "http", uri = "http://{a}/authorize" }}
payload = "1.0"
forward_context = {{ tier = "x-tier", level = "x-level", principalId = "x-principal" }}

[apis.shop.routes."GET /app/{{path+}}"]
auth = "ctx"
integration = {{ type = "http_proxy", uri = "http://app/{{path}}" }}

[apis.shop.routes."GET /orders/app/{{path+}}"]
auth = "ctxiam"
integration = {{ type = "http_proxy", uri = "http://app/{{path}}" }}

[apis.shop.routes."GET /token"]
auth = "tok"
integration = {{ type = "mock", status = 200, body = "token ok" }}

[stages.prod]
api = "shop"

[usage_plans.gold]
stages = ["prod"]

[api_keys.gold]
key = "gold-key-0123456789abcdefghijklmnop"
plan = "gold"
"#
    );
    Gateway::start(&cfg)
}

/// The access log once it has a line containing `needle` (lines are written in
/// batches), or all of it after 3 s.
fn access_log_with(gw: &Gateway, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let log = std::fs::read_to_string(gw.dir.0.join("access.log")).unwrap_or_default();
        if log.contains(needle) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn call(gw: &Gateway, method: &str, path: &str, token: Option<&str>) -> Response {
    let auth = token.map_or(String::new(), |t| {
        format!("X-Token: {t}\r\nAuthorization: {t}\r\n")
    });
    request(
        gw.addr,
        format!("{method} {path} HTTP/1.1\r\nHost: api.example.com\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .expect("a response")
}

#[test]
fn simple_answers_allow_and_deny_and_are_cached_per_identity() {
    let authz = Authorizer::start();
    let gw = gateway(&authz, "turnpike-test-secret");
    let r = call(&gw, "GET", "/simple/1", Some("allow-a"));
    assert_eq!((r.status, r.text().as_str()), (200, "simple ok"));
    for i in 0..5 {
        assert_eq!(
            call(&gw, "GET", &format!("/simple/{i}"), Some("allow-a")).status,
            200
        );
    }
    assert_eq!(authz.calls("allow-a"), 1, "one call per identity per TTL");
    // the event is the HTTP API 2.0 one
    let e = authz.last_event("allow-a");
    for needle in [
        r#""version": "2.0""#,
        r#""identitySource": ["allow-a"]"#,
        r#""routeArn": "arn:aws:execute-api:us-east-1:000000000000:shop/prod/GET/simple/1""#,
        r#""routeKey": "GET /simple/{id}""#,
        r#""pathParameters": {"id": "1"}"#,
    ] {
        assert!(e.contains(needle), "{needle} in {e}");
    }
    let r = call(&gw, "GET", "/simple/1", Some("deny-a"));
    assert_eq!(
        (r.status, r.text().as_str()),
        (403, r#"{"message":"Forbidden"}"#)
    );
    // missing identity: 401 without a call
    let r = call(&gw, "GET", "/simple/1", None);
    assert_eq!(
        (r.status, r.text().as_str()),
        (401, r#"{"message":"Unauthorized"}"#)
    );
    assert!(r.header("www-authenticate").is_none());
    assert_eq!(authz.calls(""), 0);
    // the context reaches the access log
    let log = access_log_with(&gw, r#""tenant":"acme""#);
    assert!(log.contains(r#""tenant":"acme""#), "{log}");
}

#[test]
fn one_cached_iam_answer_allows_one_route_and_denies_another() {
    let authz = Authorizer::start();
    let gw = gateway(&authz, "turnpike-test-secret");
    let r = call(&gw, "GET", "/orders/7", Some("iam-1"));
    assert_eq!((r.status, r.text().as_str()), (200, "order"));
    let r = call(&gw, "DELETE", "/orders/7", Some("iam-1"));
    assert_eq!(r.status, 403);
    assert_eq!(
        r.text(),
        r#"{"Message":"User is not authorized to access this resource with an explicit deny"}"#
    );
    assert_eq!(r.header("x-amzn-errortype"), Some("AccessDeniedException"));
    // not allowed, not denied: an implicit deny
    let r = call(&gw, "POST", "/orders", Some("iam-1"));
    assert_eq!(r.status, 403);
    assert_eq!(
        r.text(),
        r#"{"Message":"User is not authorized to access this resource"}"#
    );
    assert_eq!(
        authz.calls("iam-1"),
        1,
        "the answer is cached and decided per method ARN"
    );
    // the 1.0 REQUEST event, through a signed Lambda Invoke
    let e = authz.last_event("iam-1");
    for needle in [
        r#""type": "REQUEST""#,
        r#""methodArn": "arn:aws:execute-api:us-east-1:000000000000:shop/prod/GET/orders/7""#,
        r#""httpMethod": "GET""#,
        r#""resource": "/orders/{id}""#,
        r#""X-Token": "iam-1""#,
    ] {
        assert!(e.contains(needle), "{needle} in {e}");
    }
    // principal and context in the access log
    let log = access_log_with(&gw, r#""principal":"user-iam-1","tier":"gold""#);
    assert!(
        log.contains(r#""principal":"user-iam-1","tier":"gold""#),
        "{log}"
    );
}

#[test]
fn the_usage_key_an_authorizer_names_is_the_one_metered() {
    let authz = Authorizer::start();
    let gw = gateway(&authz, "turnpike-test-secret");
    // api_key_source = "authorizer": no x-api-key, the answer's usageIdentifierKey
    let r = call(&gw, "GET", "/metered", Some("iam-2"));
    assert_eq!((r.status, r.text().as_str()), (200, "metered"));
    // an answer without a key: the keyed route stays closed
    let r = call(&gw, "GET", "/metered", Some("iamnokey-2"));
    assert_eq!(
        (r.status, r.text().as_str()),
        (403, r#"{"message":"Forbidden"}"#)
    );
    let log = access_log_with(&gw, r#""key":"gold""#);
    assert!(
        log.lines().any(|l| l.contains(r#""status":"200""#)
            && l.contains(r#""principal":"user-iam-2""#)
            && l.contains(r#""key":"gold""#)),
        "{log}"
    );
}

#[test]
fn answers_expire_after_their_ttl_and_identity_sources_all_count() {
    let authz = Authorizer::start();
    let gw = gateway(&authz, "turnpike-test-secret");
    assert_eq!(
        call(&gw, "GET", "/short?tenant=a", Some("allow-ttl")).status,
        200
    );
    assert_eq!(
        call(&gw, "GET", "/short?tenant=a", Some("allow-ttl")).status,
        200
    );
    assert_eq!(authz.calls("allow-ttl"), 1);
    // another value of the second source is another identity
    assert_eq!(
        call(&gw, "GET", "/short?tenant=b", Some("allow-ttl")).status,
        200
    );
    assert_eq!(authz.calls("allow-ttl"), 2);
    // one missing source: 401, no call
    assert_eq!(call(&gw, "GET", "/short", Some("allow-ttl")).status, 401);
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(
        call(&gw, "GET", "/short?tenant=a", Some("allow-ttl")).status,
        200
    );
    assert_eq!(authz.calls("allow-ttl"), 3, "called again after the 1s TTL");
}

#[test]
fn a_hundred_concurrent_first_requests_make_one_call() {
    let authz = Authorizer::start();
    let gw = gateway(&authz, "turnpike-test-secret");
    let addr = gw.addr;
    let threads: Vec<_> = (0..100)
        .map(|i| {
            std::thread::spawn(move || {
                let raw = format!("GET /simple/{i} HTTP/1.1\r\nHost: x\r\nX-Token: wait-herd\r\nConnection: close\r\n\r\n");
                request(addr, raw.as_bytes()).map(|r| r.status)
            })
        })
        .collect();
    let statuses: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == Some(200)), "{statuses:?}");
    assert_eq!(
        authz.calls("wait-herd"),
        1,
        "coalesced onto one call across workers"
    );
}

#[test]
fn slow_failing_and_unauthorized_authorizers() {
    let authz = Authorizer::start();
    let gw = gateway(&authz, "turnpike-test-secret");
    // slower than the 1s timeout: 500 as AWS, within the timeout and a little
    let t0 = Instant::now();
    let r = call(&gw, "GET", "/simple/1", Some("slow-1"));
    assert!(
        t0.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!((r.status, r.text().as_str()), (500, r#"{"message":null}"#));
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("AuthorizerConfigurationException")
    );
    // failures are not cached: every request asks again
    for path in ["/simple/1", "/orders/1"] {
        for _ in 0..2 {
            let r = call(&gw, "GET", path, Some("fail-1"));
            assert_eq!(r.status, 500, "{path}");
        }
    }
    assert_eq!(authz.calls("fail-1"), 4);
    let r = call(&gw, "GET", "/simple/1", Some("garbage-1"));
    assert_eq!(r.status, 500);
    // "Unauthorized", over HTTP (401) and as a Lambda function error
    for path in ["/simple/1", "/orders/1"] {
        let r = call(&gw, "GET", path, Some("unauth-1"));
        assert_eq!(
            (r.status, r.text().as_str()),
            (401, r#"{"message":"Unauthorized"}"#),
            "{path}"
        );
    }
    let log = access_log_with(&gw, "did not answer in time");
    assert!(
        log.contains(r#""err":"the authorizer did not answer in time""#),
        "{log}"
    );
    let m = admin(&gw, "GET", "/metrics").text();
    assert!(
        m.contains(r#"decision="error",reason="authorizer_timeout"} 1"#),
        "{m}"
    );
}

#[test]
fn the_token_event_and_a_bad_signature() {
    let authz = Authorizer::start();
    let gw = gateway(&authz, "turnpike-test-secret");
    let r = call(&gw, "GET", "/token", Some("iam-tok"));
    // the IAM answer allows only GET /orders/*: an implicit deny here
    assert_eq!(r.status, 403);
    let e = authz.last_event("iam-tok");
    assert!(
        e.contains(r#""type": "TOKEN""#) && e.contains(r#""authorizationToken": "iam-tok""#),
        "{e}"
    );
    // ttl = "0s": every request calls
    call(&gw, "GET", "/token", Some("iam-tok"));
    assert_eq!(authz.calls("iam-tok"), 2);
    drop(gw);
    // a gateway with the wrong secret: Lambda refuses the signature, clients get 500
    let gw = gateway(&authz, "not-the-secret");
    let r = call(&gw, "GET", "/orders/1", Some("iam-sig"));
    assert_eq!(r.status, 500);
    assert_eq!(
        authz.calls("iam-sig"),
        0,
        "an unsigned or mis-signed call never reaches the function"
    );
}

#[test]
fn answer_context_reaches_the_upstream_only_where_named() {
    let authz = Authorizer::start();
    let up = Upstream::start();
    let gw = gateway_with(&authz, "turnpike-test-secret", &up.addr.to_string());
    // a client's own copies of the forwarded headers never get through
    let raw = "GET /app/x HTTP/1.1\r\nHost: x\r\nX-Token: allow-ctx\r\nX-Tenant: evil\r\nX-Principal: root\r\nConnection: close\r\n\r\n";
    let r = request(gw.addr, raw.as_bytes()).unwrap();
    assert_eq!(r.status, 200);
    let seen = r.text();
    assert!(seen.contains(r#""x-tenant": "acme""#), "{seen}");
    assert!(seen.contains(r#""x-authz-token": "allow-ctx""#), "{seen}");
    assert!(!seen.contains("evil") && !seen.contains("root"), "{seen}");
    // a simple answer has no principal: nothing is sent for it
    assert!(!seen.contains("x-principal"), "{seen}");
    // an IAM answer: the principal and non-string context values, as text
    let raw =
        "GET /orders/app/y HTTP/1.1\r\nHost: x\r\nX-Token: iam-ctx\r\nConnection: close\r\n\r\n";
    let r = request(gw.addr, raw.as_bytes()).unwrap();
    assert_eq!(r.status, 200);
    let seen = r.text();
    assert!(seen.contains(r#""x-principal": "user-iam-ctx""#), "{seen}");
    assert!(
        seen.contains(r#""x-tier": "gold""#) && seen.contains(r#""x-level": "3""#),
        "{seen}"
    );
}

#[test]
fn check_refuses_broken_authorizers() {
    let dir = TempDir::new("authz-check");
    let path = dir.write(
        "bad.toml",
        r#"
[aws]
region = "us-east-1"
credentials = { access_key = "AKID", secret = "s" }

[apis.a.authorizers.one]
type = "request"
identity = ["$request.path.id"]
function = { type = "http", uri = "http://127.0.0.1:1/a" }

[apis.a.authorizers.two]
type = "request"
payload = "1.0"
response = "simple"
function = { type = "http", uri = "http://127.0.0.1:1/a" }
ttl = "0s"

[apis.a.authorizers.three]
type = "request"
identity = ["$request.header.X"]
ttl = "7200s"
timeout = "30s"
function = { type = "http", uri = "ftp://x" }

[apis.a.authorizers.four]
type = "token"
payload = "2.0"
function = { type = "lambda", function = "f" }

[apis.a.authorizers.five]
type = "request"
function = { type = "http", uri = "http://127.0.0.1:1/a" }

[apis.a.routes."GET /x"]
auth = "one"
integration = { type = "mock" }

[stages.s]
api = "a"
"#,
    );
    check_reports(
        &path,
        &[
            "identity source `$request.path.id`",
            "simple answers need payload \"2.0\"",
            "ttl is at most 3600s",
            "timeout is between 1ms and 10s",
            "is not an http:// or https:// URL",
            "a token authorizer receives REST's TOKEN event",
            "caching answers (ttl) needs at least one identity source",
        ],
    );
}
