//! The `lambda` integration end to end (DESIGN §9.2, issue 17): functions run by a
//! test Lambda host (`tests/lambda_host.py`) that serves the real Invoke API path,
//! recomputes every SigV4 signature with botocore, and validates every event with
//! aws-lambda-powertools' `APIGatewayProxyEventModel` (1.0) and
//! `APIGatewayProxyEventV2Model` (2.0). Events with repeated headers and query keys,
//! cookies, path parameters, stage variables, binary and text bodies and an
//! authorizer's context; answers of both formats, 2.0's shortcut, binary answers,
//! function errors, malformed answers, timeouts, throttling, a 6 MB answer, wrong
//! credentials, and canary variables switching the alias.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const PKGS: &[&str] = &["aws-lambda-powertools[parser]==3.37.0", "botocore==1.44.8"];

struct Host {
    _server: common::python::Server,
    addr: SocketAddr,
}

impl Host {
    fn start() -> Host {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lambda_host.py");
        let server = common::python::Server::start(PKGS, &[script]);
        Host {
            addr: server.addr,
            _server: server,
        }
    }

    /// `(calls, validation errors, last event)` of function `name`.
    fn log(&self, name: &str) -> (u64, String, String) {
        let text = get(self.addr, &format!("/log?fn={name}")).text();
        let calls = json_field(&text, "calls")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let invalid = text
            .split(r#""invalid": ["#)
            .nth(1)
            .and_then(|s| s.split(']').next())
            .unwrap_or("")
            .to_string();
        (calls, invalid, text)
    }
}

/// Writes `dir/jwks.json` (one RSA key) and returns an RS256 token for issuer
/// `https://issuer.example`, audience `app`, scope `orders/read`.
fn jwt(dir: &std::path::Path) -> String {
    let out = common::python::run(
        &["pyjwt==2.10.1", "cryptography"],
        r#"
import json, sys, time, jwt
from cryptography.hazmat.primitives.asymmetric import rsa
k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
j = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())); j.update({"kid": "k1", "use": "sig"})
open(sys.argv[1] + "/jwks.json", "w").write(json.dumps({"keys": [j]}))
print(jwt.encode({"iss": "https://issuer.example", "aud": "app", "sub": "alice", "scope": "orders/read",
                  "exp": int(time.time()) + 600}, k, algorithm="RS256", headers={"kid": "k1"}))
"#,
        &[dir.to_str().unwrap()],
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn gateway(host: &Host, secret: &str) -> Gateway {
    Gateway::start(&gateway_config(
        host,
        &format!(r#"credentials = {{ access_key = "AKIDTURNPIKETEST", secret = "{secret}" }}"#),
    ))
}

fn gateway_config(host: &Host, credentials: &str) -> String {
    let h = host.addr;
    let arn = "arn:aws:lambda:us-east-1:123456789012:function";
    config(
        &format!(
            r#"
[aws]
region = "us-east-1"
{credentials}
endpoints = {{ lambda = "http://{h}" }}

[apis.fn]
binary_media_types = ["application/octet-stream", "image/*"]

[apis.fn.authorizers.authz]
type = "request"
identity = ["$request.header.X-Token"]
function = {{ type = "lambda", function = "authz" }}

[apis.fn.routes."ANY /v1/{{proxy+}}"]
integration = {{ type = "lambda", function = "echo", payload = "1.0" }}

[apis.fn.routes."ANY /v2/{{proxy+}}"]
integration = {{ type = "lambda", function = "{arn}:echo:${{stageVariables.alias}}", payload = "2.0" }}

[apis.fn.routes."GET /authorized/{{id}}"]
auth = "authz"
integration = {{ type = "lambda", function = "echo", payload = "2.0" }}

[apis.fn.routes."GET /authorized1/{{id}}"]
auth = "authz"
integration = {{ type = "lambda", function = "echo", payload = "1.0" }}

[apis.fn.routes."GET /bare"]
integration = {{ type = "lambda", function = "bare" }}

[apis.fn.routes."GET /binary"]
integration = {{ type = "lambda", function = "binary" }}

[apis.fn.routes."GET /binary1"]
integration = {{ type = "lambda", function = "binary", payload = "1.0" }}

[apis.fn.routes."GET /error"]
integration = {{ type = "lambda", function = "error" }}

[apis.fn.routes."GET /malformed"]
integration = {{ type = "lambda", function = "malformed", payload = "1.0" }}

[apis.fn.routes."GET /slow"]
integration = {{ type = "lambda", function = "slow" }}
timeout = "1s"

[apis.fn.routes."GET /big"]
integration = {{ type = "lambda", function = "big" }}

[apis.fn.routes."GET /throttled"]
integration = {{ type = "lambda", function = "throttled" }}

[apis.fn.routes."GET /overloaded"]
integration = {{ type = "lambda", function = "overloaded" }}

[stages.prod]
api = "fn"
variables = {{ alias = "live" }}

[stages.beta]
api = "fn"
base_path = "/beta"
variables = {{ alias = "live" }}
canary = {{ percent = 100.0, variables = {{ alias = "next" }} }}
"#
        ),
        None,
    )
}

fn send(gw: &Gateway, raw: &str) -> Response {
    request(gw.addr, raw.as_bytes()).expect("a response")
}

#[test]
fn payload_1_0_events_and_answers() {
    let host = Host::start();
    let gw = gateway(&host, "turnpike-test-secret");
    let body = r#"{"order":7}"#;
    let r = send(
        &gw,
        &format!("POST /v1/orders/7?x=1&x=2&q=a%20b HTTP/1.1\r\nHost: api.example.com\r\nX-Dup: one\r\nX-Dup: two\r\nCookie: s=1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let e = r.text();
    for needle in [
        r#""version": "1.0""#,
        r#""resource": "/v1/{proxy+}""#,
        r#""path": "/v1/orders/7""#,
        r#""httpMethod": "POST""#,
        r#""pathParameters": {"proxy": "orders/7"}"#,
        r#""multiValueQueryStringParameters": {"x": ["1", "2"], "q": ["a b"]}"#,
        r#""queryStringParameters": {"x": "2", "q": "a b"}"#,
        r#""X-Dup": ["one", "two"]"#,
        r#""stageVariables": {"alias": "live"}"#,
        r#""body": "{\"order\":7}""#,
        r#""isBase64Encoded": false"#,
        r#""stage": "prod""#,
    ] {
        assert!(e.contains(needle), "{needle} in {e}");
    }
    // both values of the multi-value answer header
    assert!(
        r.head_text().contains("x-multi: one\r\n") && r.head_text().contains("x-multi: two\r\n"),
        "{}",
        r.head_text()
    );
    // a binary media type goes base64, text does not
    let r = send(&gw, "PUT /v1/blob HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 3\r\nConnection: close\r\n\r\n\x00\x01\x02");
    assert!(
        r.text().contains(r#""body": "AAEC""#) && r.text().contains(r#""isBase64Encoded": true"#),
        "{}",
        r.text()
    );
    let r = send(&gw, "PUT /v1/text HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
    assert!(
        r.text().contains(r#""body": "hi""#) && r.text().contains(r#""isBase64Encoded": false"#),
        "{}",
        r.text()
    );
    let (calls, invalid, _) = host.log("echo");
    assert_eq!(calls, 3);
    assert_eq!(
        invalid, "",
        "every event validates against powertools' 1.0 model"
    );
}

#[test]
fn payload_2_0_events_answers_and_the_shortcut() {
    let host = Host::start();
    let gw = gateway(&host, "turnpike-test-secret");
    let r = send(&gw, "GET /v2/p/q?a=1&a=2 HTTP/1.1\r\nHost: api.example.com\r\nX-Dup: one\r\nX-Dup: two\r\nCookie: s=1; t=2\r\nCookie: u=3\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.header("x-qualifier"),
        Some("live"),
        "the alias from the stage variable"
    );
    let h = r.head_text();
    assert!(
        h.contains("set-cookie: a=1; Path=/\r\n") && h.contains("set-cookie: b=2\r\n"),
        "{h}"
    );
    assert!(
        !h.to_ascii_lowercase().contains("x-amz-executed-version"),
        "Lambda's headers stay behind: {h}"
    );
    let e = r.text();
    for needle in [
        r#""version": "2.0""#,
        r#""routeKey": "ANY /v2/{proxy+}""#,
        r#""rawPath": "/v2/p/q""#,
        r#""rawQueryString": "a=1&a=2""#,
        r#""cookies": ["s=1", "t=2", "u=3"]"#,
        r#""x-dup": "one,two""#,
        r#""queryStringParameters": {"a": "1,2"}"#,
        r#""pathParameters": {"proxy": "p/q"}"#,
    ] {
        assert!(e.contains(needle), "{needle} in {e}");
    }
    // 2.0: anything not text is base64
    let r = send(&gw, "POST /v2/form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\nConnection: close\r\n\r\na=b");
    assert!(
        r.text().contains(r#""body": "YT1i""#) && r.text().contains(r#""isBase64Encoded": true"#),
        "{}",
        r.text()
    );
    let r = send(&gw, "POST /v2/json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
    assert!(r.text().contains(r#""body": "{}""#), "{}", r.text());
    // the shortcut: JSON without statusCode is a 200 application/json body
    let r = get(gw.addr, "/bare");
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"message": "hi"}"#));
    assert_eq!(r.header("content-type"), Some("application/json"));
    // binary answers are decoded
    let r = get(gw.addr, "/binary");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, (0..=255u8).collect::<Vec<_>>());
    let r = send(&gw, "GET /binary1 HTTP/1.1\r\nHost: x\r\nAccept: application/octet-stream\r\nConnection: close\r\n\r\n");
    assert_eq!(
        r.body,
        (0..=255u8).collect::<Vec<_>>(),
        "1.0: decoded for a binary media type"
    );
    let (_, invalid, _) = host.log("echo");
    assert_eq!(
        invalid, "",
        "every event validates against powertools' 2.0 model"
    );
}

#[test]
fn an_authorizers_context_reaches_the_event() {
    let host = Host::start();
    let gw = gateway(&host, "turnpike-test-secret");
    let r = send(
        &gw,
        "GET /authorized/9 HTTP/1.1\r\nHost: x\r\nX-Token: t1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(
        r.text()
            .contains(r#""authorizer": {"lambda": {"level": 3, "tenant": "acme"}}"#),
        "{}",
        r.text()
    );
    let r = send(
        &gw,
        "GET /authorized1/9 HTTP/1.1\r\nHost: x\r\nX-Token: t1\r\nConnection: close\r\n\r\n",
    );
    assert!(
        r.text()
            .contains(r#""authorizer": {"level": "3", "tenant": "acme"}"#),
        "{}",
        r.text()
    );
    assert_eq!(
        host.log("authz").0,
        1,
        "one authorizer call, cached for both routes"
    );
    let (_, invalid, _) = host.log("echo");
    assert_eq!(invalid, "");
}

#[test]
fn failures_map_as_aws_maps_them() {
    let host = Host::start();
    let gw = gateway(&host, "turnpike-test-secret");
    let r = get(gw.addr, "/error");
    assert_eq!(
        (r.status, r.text().as_str()),
        (502, r#"{"message": "Internal server error"}"#)
    );
    let h = r.head_text().to_ascii_lowercase();
    assert!(
        !h.contains("x-amz-log-result")
            && !h.contains("x-amz-function-error")
            && !h.contains("req-1"),
        "{h}"
    );
    assert!(!r.text().contains("SECRET") && !r.text().contains("stack"));
    assert_eq!(get(gw.addr, "/malformed").status, 502);
    let t0 = Instant::now();
    let r = get(gw.addr, "/slow");
    assert_eq!(
        (r.status, r.text().as_str()),
        (504, r#"{"message":"Endpoint request timed out"}"#)
    );
    assert!(
        t0.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t0.elapsed()
    );
    // throttled once: retried (nothing ran), then served
    let r = get(gw.addr, "/throttled");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(host.log("throttled").0, 2);
    assert_eq!(get(gw.addr, "/overloaded").status, 503);
    // Lambda's 6 MB limit on the request: 413 before any call
    // (the head alone: its Content-Length says enough, and the gateway closes)
    let r = send(&gw, &format!("POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\nxxxx", 6 * 1024 * 1024 + 1));
    assert_eq!(
        (r.status, r.text().as_str()),
        (413, r#"{"message": "Request Too Long"}"#)
    );
}

#[test]
fn a_six_megabyte_answer() {
    let host = Host::start();
    let gw = gateway(&host, "turnpike-test-secret");
    let r = get(gw.addr, "/big");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 6_000_000);
    assert!(r.body.iter().all(|&b| b == b'x'));
}

#[test]
fn wrong_credentials_are_a_500_never_a_hang() {
    let host = Host::start();
    let gw = gateway(&host, "not-the-secret");
    let t0 = Instant::now();
    let r = get(gw.addr, "/bare");
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, r#"{"message": "Internal server error"}"#)
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(
        host.log("bare").0,
        0,
        "a mis-signed call never runs the function"
    );
}

#[test]
fn canary_variables_switch_the_alias() {
    let host = Host::start();
    let gw = gateway(&host, "turnpike-test-secret");
    let r = get(gw.addr, "/beta/v2/x");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("x-qualifier"), Some("next"));
    assert!(r.text().contains(r#""stage": "beta""#), "{}", r.text());
}

#[test]
fn chain_credentials_from_the_environment_and_a_rotated_profile_file() {
    let host = Host::start();
    // the environment
    let dir = TempDir::new("lambda-env");
    let path = dir.write(
        "t.toml",
        &gateway_config(&host, r#"credentials = "default""#),
    );
    let home = dir.0.display().to_string();
    let gw = Gateway::start_env(
        dir,
        path,
        &["run", "-c"],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDTURNPIKETEST"),
            ("AWS_SECRET_ACCESS_KEY", "turnpike-test-secret"),
            ("HOME", &home),
        ],
    );
    assert_eq!(get(gw.addr, "/bare").status, 200);
    drop(gw);

    // a profile in the shared credentials file, rotated while the gateway runs
    let dir = TempDir::new("lambda-profile");
    let creds = |secret: &str| {
        format!("[default]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = x\n\n[edge]\naws_access_key_id = AKIDTURNPIKETEST\naws_secret_access_key = {secret}\n")
    };
    std::fs::create_dir_all(dir.0.join(".aws")).unwrap();
    std::fs::write(dir.0.join(".aws/credentials"), creds("an-old-secret")).unwrap();
    let path = dir.write(
        "t.toml",
        &gateway_config(&host, "credentials = \"default\"\nprofile = \"edge\""),
    );
    let home = dir.0.display().to_string();
    let file = dir.0.join(".aws/credentials");
    let gw = Gateway::start_env(
        dir,
        path,
        &["run", "-c"],
        &[
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
            ("HOME", &home),
        ],
    );
    assert_eq!(
        get(gw.addr, "/bare").status,
        500,
        "the old secret is refused"
    );
    std::fs::write(&file, creds("turnpike-test-secret")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut status = 0;
    while Instant::now() < deadline {
        status = get(gw.addr, "/bare").status;
        if status == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        status, 200,
        "the rotated file is picked up without a restart or reload"
    );
    assert!(gw.log().contains("credentials changed"), "{}", gw.log());
}

#[test]
fn a_jwts_claims_reach_the_event() {
    let host = Host::start();
    let dir = TempDir::new("lambda-jwt");
    let token = jwt(&dir.0);
    let cfg = gateway_config(
        &host,
        r#"credentials = { access_key = "AKIDTURNPIKETEST", secret = "turnpike-test-secret" }"#,
    );
    // JWT routes beside the others; jwks.json is beside the configuration file
    let cfg = format!(
        r#"{cfg}
[apis.fn.authorizers.users]
type = "jwt"
issuer = "https://issuer.example"
audience = ["app"]
jwks = "jwks.json"

[apis.fn.routes."GET /jwt2"]
auth = "users"
scopes = ["orders/read"]
integration = {{ type = "lambda", function = "echo", payload = "2.0" }}

[apis.fn.routes."GET /jwt1"]
auth = "users"
integration = {{ type = "lambda", function = "echo", payload = "1.0" }}
"#
    );
    let path = dir.write("t.toml", &cfg);
    let gw = Gateway::start_with(dir, path, &["run", "-c"]);
    let auth = format!("Authorization: Bearer {token}\r\n");
    let r = send(
        &gw,
        &format!("GET /jwt2 HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let e = r.text();
    assert!(
        e.contains(r#""authorizer": {"jwt": {"claims": {"#) && e.contains(r#""sub": "alice""#),
        "{e}"
    );
    assert!(e.contains(r#""scopes": ["orders/read"]"#), "{e}");
    let r = send(
        &gw,
        &format!("GET /jwt1 HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(
        r.text().contains(r#""authorizer": {"claims": {"#),
        "{}",
        r.text()
    );
    let (_, invalid, _) = host.log("echo");
    assert_eq!(
        invalid, "",
        "events with JWT claims validate against powertools' models"
    );
}

/// A container credentials endpoint (what ECS and EKS pod identity serve): the
/// first answer has the wrong secret and expires within the refresh window, later
/// ones the right secret. Requests without the authorization token are refused.
struct CredsEndpoint {
    server: common::python::Server,
}

impl CredsEndpoint {
    fn start() -> CredsEndpoint {
        CredsEndpoint {
            server: common::python::Server::start(
                &[],
                &[
                    "-c",
                    r#"
import datetime, http.server, json
served = [0]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if self.headers.get("Authorization") != "container-token":
            self.send_response(401); self.send_header("Content-Length", "0"); self.end_headers(); return
        served[0] += 1
        secret = "an-old-secret" if served[0] == 1 else "turnpike-test-secret"
        exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=60 if served[0] == 1 else 3600)
        body = json.dumps({"AccessKeyId": "AKIDTURNPIKETEST", "SecretAccessKey": secret, "Token": "session-" + str(served[0]),
                           "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#,
                ],
            ),
        }
    }
}

#[test]
fn container_credentials_are_refreshed_before_they_expire() {
    let host = Host::start();
    let creds = CredsEndpoint::start();
    let dir = TempDir::new("lambda-container");
    let path = dir.write(
        "t.toml",
        &gateway_config(&host, r#"credentials = "default""#),
    );
    let home = dir.0.display().to_string();
    let url = format!("http://{}/v2/credentials/abc", creds.server.addr);
    let gw = Gateway::start_env(
        dir,
        path,
        &["run", "-c"],
        &[
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
            ("HOME", &home),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-token"),
        ],
    );
    // the first credentials (wrong secret) expire within the refresh window
    assert_eq!(get(gw.addr, "/bare").status, 500);
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut status = 0;
    while Instant::now() < deadline {
        status = get(gw.addr, "/bare").status;
        if status == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        status, 200,
        "fresh container credentials before the old ones expired"
    );
    assert!(
        gw.log()
            .contains("credentials changed (the container endpoint"),
        "{}",
        gw.log()
    );
}

#[test]
fn an_iam_signers_identity_reaches_the_event() {
    let host = Host::start();
    let cfg = format!(
        r#"{}
[iam.users.alice]
access_key = "AKIDALICE"
secret = "alice-secret"
policy = '{{"Statement":[{{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"*"}}]}}'

[apis.fn.routes."GET /iam2"]
auth = "iam"
integration = {{ type = "lambda", function = "echo", payload = "2.0" }}

[apis.fn.routes."GET /iam1"]
auth = "iam"
integration = {{ type = "lambda", function = "echo", payload = "1.0" }}
"#,
        gateway_config(
            &host,
            r#"credentials = { access_key = "AKIDTURNPIKETEST", secret = "turnpike-test-secret" }"#
        )
    );
    let gw = Gateway::start(&cfg);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sigv4_client.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(format!("http://{}", gw.addr))
        .arg(r#"[{"method": "GET", "path": "/iam2"}, {"method": "GET", "path": "/iam1"}]"#)
        .env(
            "PYTHONPATH",
            common::python::deps(&["moto[server]==5.2.5", "boto3==1.44.8"]),
        )
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(r#"\"iam\": {\"accessKey\": \"AKIDALICE\""#),
        "2.0: {text}"
    );
    assert!(
        text.contains(r#"\"userArn\": \"arn:aws:iam::000000000000:user/alice\""#),
        "{text}"
    );
    let (_, invalid, _) = host.log("echo");
    assert_eq!(
        invalid, "",
        "events with an IAM identity validate against powertools' models"
    );
}
