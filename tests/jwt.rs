//! JWT authorizers end to end (DESIGN §8.2, issue 15): tokens minted by PyJWT with
//! RSA keys made by `cryptography` (both installed by the harness), JWKS from a file
//! and from a URL served by a real HTTP server, checked as AWS's HTTP API JWT
//! authorizer does, with its statuses, bodies and `www-authenticate` answers.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::python;
use common::*;

const PKGS: &[&str] = &["pyjwt==2.10.1", "cryptography"];
const ISS: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Test";

/// Makes an RSA key `kid` in `dir`: `<kid>.pem` (private) and `<kid>.jwk.json`.
fn make_key(dir: &Path, kid: &str) {
    python::run(
        PKGS,
        r#"
import json, sys, jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import serialization
d, kid = sys.argv[1], sys.argv[2]
k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
open(f"{d}/{kid}.pem", "wb").write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
open(f"{d}/{kid}.pub.pem", "wb").write(k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
j = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key()))
j.update({"kid": kid, "use": "sig", "alg": "RS256"})
open(f"{d}/{kid}.jwk.json", "w").write(json.dumps(j))
"#,
        &[dir.to_str().unwrap(), kid],
    );
}

/// Writes the JWKS of `kids` to `path`.
fn write_jwks(dir: &Path, kids: &[&str], path: &Path) {
    let keys: Vec<String> = kids
        .iter()
        .map(|k| std::fs::read_to_string(dir.join(format!("{k}.jwk.json"))).unwrap())
        .collect();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!(r#"{{"keys":[{}]}}"#, keys.join(","))).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Tokens minted by PyJWT: `(kid, alg, claims JSON)` each; `alg` `none` and
/// `HS256-pub` (HMAC keyed with the public key's PEM, the classic confusion attack)
/// are forgeries.
fn mint(dir: &Path, specs: &[(&str, &str, String)]) -> Vec<String> {
    let mut args = vec![dir.to_str().unwrap().to_string()];
    for (kid, alg, claims) in specs {
        args.push(kid.to_string());
        args.push(alg.to_string());
        args.push(claims.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = python::run(
        PKGS,
        r#"
import json, sys, jwt, base64
d = sys.argv[1]
rest = sys.argv[2:]
for i in range(0, len(rest), 3):
    kid, alg, claims = rest[i], rest[i+1], json.loads(rest[i+2])
    if alg == "none":
        b = lambda o: base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()
        print(b({"alg": "none", "typ": "JWT", "kid": kid}) + "." + b(claims) + ".")
    elif alg == "HS256-pub":
        # PyJWT refuses a PEM as an HMAC secret; sign by hand as an attacker would
        import hmac, hashlib
        b = lambda o: base64.urlsafe_b64encode(o).rstrip(b"=").decode()
        head = b(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()) + "." + b(json.dumps(claims).encode())
        key = open(f"{d}/{kid}.pub.pem", "rb").read()
        print(head + "." + b(hmac.new(key, head.encode(), hashlib.sha256).digest()))
    else:
        key = open(f"{d}/{kid}.pem", "rb").read()
        print(jwt.encode(claims, key, algorithm=alg, headers={"kid": kid}))
"#,
        &args,
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn claims(extra: &str) -> String {
    let t = now();
    let base = format!(
        r#""iss":"{ISS}","sub":"user-1","aud":"app-client","exp":{},"iat":{t}"#,
        t + 600
    );
    if extra.is_empty() {
        format!("{{{base}}}")
    } else {
        format!("{{{base},{extra}}}")
    }
}

fn call(gw: &Gateway, path: &str, auth: Option<&str>) -> Response {
    let header = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    request(
        gw.addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n{header}Connection: close\r\n\r\n").as_bytes(),
    )
    .expect("a response")
}

fn cfg(jwks: &str, up: SocketAddr, log: &Path) -> String {
    config(
        &format!(
            r#"
[access_log]
path = "{}"
format = '{{"status":$context.status,"principal":"$context.authorizer.principalId","email":"$context.authorizer.claims.email","error":"$context.authorizer.error"}}'

[apis.a]
default_auth = "users"

[apis.a.authorizers.users]
type = "jwt"
issuer = "{ISS}"
audience = ["app-client"]
jwks = "{jwks}"
forward_claims = {{ sub = "x-user-sub", email = "X-User-Email", groups = "x-user-groups" }}

[apis.a.routes."GET /me"]
integration = {{ type = "http_proxy", uri = "http://{up}/me" }}

[apis.a.routes."GET /orders"]
integration = {{ type = "mock", body = "orders" }}
scopes = ["orders/read"]

[apis.a.routes."GET /open"]
integration = {{ type = "mock", body = "open" }}
auth = "none"

[stages.prod]
api = "a"
"#,
            log.display()
        ),
        None,
    )
}

fn www_auth(r: &Response) -> String {
    r.header("www-authenticate").unwrap_or("").to_string()
}

#[test]
fn jwt_tokens_are_checked_as_aws_does() {
    let dir = TempDir::new("jwt");
    make_key(&dir.0, "k1");
    make_key(&dir.0, "k9");
    let jwks = dir.0.join("jwks.json");
    write_jwks(&dir.0, &["k1"], &jwks);
    let up = Upstream::start();
    let log = dir.0.join("access.log");
    let gw = Gateway::start(&cfg(jwks.to_str().unwrap(), up.addr, &log));
    let t = now();
    let tokens = mint(
        &dir.0,
        &[
            (
                "k1",
                "RS256",
                claims(r#""email":"a@example.com","groups":["admin","ops"]"#),
            ),
            (
                "k1",
                "RS256",
                claims(&format!(r#""exp":{}"#, t - 3600)).replacen(
                    &format!(r#""exp":{},"#, t + 600),
                    "",
                    1,
                ),
            ),
            ("k1", "RS256", claims(&format!(r#""nbf":{}"#, t + 3600))),
            (
                "k1",
                "RS256",
                claims("").replace(ISS, "https://evil.example"),
            ),
            (
                "k1",
                "RS256",
                claims("").replace("app-client", "other-client"),
            ),
            (
                "k1",
                "RS256",
                claims("").replace(r#""aud":"app-client""#, r#""client_id":"app-client""#),
            ),
            ("k1", "none", claims("")),
            ("k1", "HS256-pub", claims("")),
            ("k9", "RS256", claims("")),
            ("k1", "RS256", claims(r#""scope":"openid orders/read""#)),
            ("k1", "PS256", claims("")),
            ("k1", "RS256", claims(r#""email":"x\r\nx-injected: 1""#)),
        ],
    );
    let [good, expired, early, issuer, audience, client_id, none, hs_pub, stranger, scoped, ps256, crlf] =
        &tokens[..]
    else {
        panic!("{tokens:?}")
    };

    // a valid token, with or without `Bearer `; the upstream sees the request
    let before = upstream_count(up.addr);
    let r = call(&gw, "/me", Some(&format!("Bearer {good}")));
    assert_eq!(r.status, 200, "{}", r.text());
    // forward_claims: the upstream sees the claims as headers
    let seen = r.text();
    assert!(seen.contains(r#""x-user-sub": "user-1""#), "{seen}");
    assert!(
        seen.contains(r#""x-user-email": "a@example.com""#),
        "{seen}"
    );
    assert!(
        seen.contains(r#""x-user-groups": "[\"admin\",\"ops\"]""#),
        "{seen}"
    );
    assert_eq!(upstream_count(up.addr), before + 2);
    assert_eq!(call(&gw, "/me", Some(good)).status, 200);
    let spoof = request(
        gw.addr,
        format!("GET /me HTTP/1.1\r\nHost: t\r\nAuthorization: {client_id}\r\nX-User-Email: boss@example.com\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(spoof.status, 200);
    assert!(
        !spoof.text().contains("boss@example.com"),
        "a client's own claim header reached the upstream: {}",
        spoof.text()
    );
    let r = call(&gw, "/me", Some(crlf));
    assert_eq!(r.status, 200);
    assert!(!r.text().contains("x-injected"), "{}", r.text());
    // the key says `alg: RS256`: a PS256 token cannot use it
    let r = call(&gw, "/me", Some(&format!("Bearer {ps256}")));
    assert_eq!(r.status, 401, "PS256 on an RS256 key");
    assert_eq!(
        call(&gw, "/me", Some(client_id)).status,
        200,
        "client_id when there is no aud"
    );

    // AWS's 401: {"message":"Unauthorized"} and www-authenticate naming the failure
    let before = upstream_count(up.addr);
    for (token, why) in [
        (expired, "expired"),
        (early, "not valid yet"),
        (issuer, "issuer"),
        (audience, "audience"),
        (none, "not a valid JWT"),
        (hs_pub, "not a valid JWT"),
        (stranger, "key"),
    ] {
        let r = call(&gw, "/me", Some(&format!("Bearer {token}")));
        assert_eq!(r.status, 401, "{why}: {}", r.text());
        assert_eq!(r.text(), r#"{"message":"Unauthorized"}"#);
        let w = www_auth(&r);
        assert!(
            w.starts_with("Bearer ") && w.contains(r#"error="invalid_token""#) && w.contains(why),
            "{why}: {w}"
        );
    }
    let r = call(&gw, "/me", None);
    assert_eq!(r.status, 401);
    assert_eq!(r.text(), r#"{"message":"Unauthorized"}"#);
    let garbled = format!("Bearer {}x", &good[..good.len() - 3]);
    assert_eq!(
        call(&gw, "/me", Some(&garbled)).status,
        401,
        "a bad signature"
    );
    // (the count request itself is the one more)
    assert_eq!(
        upstream_count(up.addr),
        before + 1,
        "no refused request reached the upstream"
    );

    // scopes: 403 Forbidden without one of the route's, 200 with it
    let r = call(&gw, "/orders", Some(good));
    assert_eq!(r.status, 403);
    assert_eq!(r.text(), r#"{"message":"Forbidden"}"#);
    assert!(
        www_auth(&r).contains("insufficient_scope"),
        "{}",
        www_auth(&r)
    );
    let r = call(&gw, "/orders", Some(scoped));
    assert_eq!((r.status, r.text().as_str()), (200, "orders"));
    // auth = "none" overrides the API's default
    assert_eq!(call(&gw, "/open", None).status, 200);

    // decisions by reason in the metrics
    let m = admin(&gw, "GET", "/metrics").text();
    let count = |reason: &str| {
        let decision = if reason.is_empty() { "allow" } else { "deny" };
        let needle = format!(
            r#"route="GET /me",authorizer="a/users",decision="{decision}",reason="{reason}"}} "#
        );
        m.lines()
            .find(|l| l.contains(&needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {needle} in\n{m}"))
    };
    assert_eq!(count(""), 5);
    assert_eq!(
        count("unknown_kid"),
        2,
        "another key's kid, and PS256 on an RS256 key"
    );
    assert_eq!(count("signature"), 1);
    assert_eq!(count("expired"), 1);
    assert_eq!(count("audience"), 1);
    assert_eq!(count("malformed"), 2, "alg none and HS256");
    assert_eq!(count("missing"), 1);

    // the principal and claims in the access log
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let complete =
            text.contains("a@example.com") && text.contains(r#""error":"the token has expired""#);
        if complete || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        text.contains(r#"{"status":200,"principal":"user-1","email":"a@example.com","error":"-"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#""error":"the token has expired""#),
        "{text}"
    );
}

/// A static file server on an ephemeral port (Python's http.server) for JWKS URLs.
struct Files {
    child: Child,
    addr: SocketAddr,
}

impl Files {
    fn start(dir: &Path) -> Files {
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-c",
                r#"
import http.server, functools, socketserver, sys
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
h.log_message = lambda *a: None
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), h)
print(s.server_address[1], flush=True)
s.serve_forever()
"#,
            ])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().expect("file server port");
        Files {
            child,
            addr: ([127, 0, 0, 1], port).into(),
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn jwks_urls_are_refetched_for_an_unknown_kid_and_kept_while_the_issuer_is_down() {
    let dir = TempDir::new("jwks-url");
    make_key(&dir.0, "k1");
    make_key(&dir.0, "k2");
    let www = dir.0.join("www");
    std::fs::create_dir_all(&www).unwrap();
    write_jwks(&dir.0, &["k1"], &www.join("jwks.json"));
    let files = Files::start(&www);
    let up = Upstream::start();
    let log = dir.0.join("access.log");
    let url = format!("http://{}/jwks.json", files.addr);
    let gw = Gateway::start(&cfg(&url, up.addr, &log));
    let tokens = mint(
        &dir.0,
        &[
            ("k1", "RS256", claims("")),
            ("k2", "RS256", claims("")),
            ("k1", "RS256", claims(r#""email":"later@example.com""#)),
        ],
    );
    // the first request waits for the set's first fetch
    assert_eq!(call(&gw, "/me", Some(&tokens[0])).status, 200);

    // the issuer rotates in k2: the first k2 token asks for a fetch, and k2 works
    // once it is done (a set is fetched again at most every 10 s)
    write_jwks(&dir.0, &["k1", "k2"], &www.join("jwks.json"));
    let first = call(&gw, "/me", Some(&tokens[1])).status;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut status = first;
    while status != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        status = call(&gw, "/me", Some(&tokens[1])).status;
    }
    assert_eq!(
        status, 200,
        "k2 accepted after the refetch (first answer {first})"
    );

    // the issuer goes down: the last good set stays in use (a token not seen yet)
    drop(files);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(call(&gw, "/me", Some(&tokens[2])).status, 200);
    assert!(
        gw.wait_log("signing keys loaded", Duration::from_secs(2)),
        "{}",
        gw.log()
    );
}

#[test]
fn an_issuer_that_never_answers_gives_401_not_a_hang() {
    let dir = TempDir::new("jwks-down");
    make_key(&dir.0, "k1");
    // a port nothing listens on
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let up = Upstream::start();
    let log = dir.0.join("access.log");
    let gw = Gateway::start(&cfg(&format!("http://{dead}/jwks.json"), up.addr, &log));
    let token = &mint(&dir.0, &[("k1", "RS256", claims(""))])[0];
    let started = Instant::now();
    let r = call(&gw, "/me", Some(token));
    assert_eq!(r.status, 401);
    assert!(www_auth(&r).contains("signing keys"), "{}", www_auth(&r));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        gw.wait_log("JWKS http://", Duration::from_secs(3)),
        "{}",
        gw.log()
    );
}

#[test]
fn authorizer_config_errors_name_the_place() {
    let dir = TempDir::new("jwt-check");
    let text = r#"
[gateway]
listen = ["127.0.0.1:0"]

[apis.a.authorizers.users]
type = "jwt"
issuer = "https://issuer"
audience = ["x"]
jwks = "missing.json"

[apis.a.authorizers.lam]
type = "request"

[apis.a.routes."GET /x"]
integration = { type = "mock" }
auth = "nobody"

[apis.a.routes."GET /y"]
integration = { type = "mock" }
scopes = ["s"]

[stages.prod]
api = "a"
"#;
    let path = dir.write("t.toml", text);
    let (ok, err) = check(&path);
    assert!(!ok);
    assert!(
        err.contains("t.toml:9:8") && err.contains("jwks: cannot read"),
        "{err}"
    );
    assert!(
        err.contains("t.toml:11:21") && err.contains("authorizer `lam` needs a `function`"),
        "{err}"
    );
    assert!(
        err.contains("t.toml:16:8") && err.contains("`nobody`"),
        "{err}"
    );
    assert!(
        err.contains("t.toml:20:") && err.contains("scopes but has no JWT authorizer"),
        "{err}"
    );
}
