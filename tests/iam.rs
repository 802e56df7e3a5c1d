//! `auth = "iam"` end to end (DESIGN §8.4, issue 16): requests signed by botocore's
//! own SigV4 signers (header and presigned forms) and by awscurl, sent with
//! `requests`, accepted for GET/POST/PUT/DELETE with bodies of 0 B, 1 KiB and 5 MiB
//! and awkward queries and paths; every tampered part, a stale date, a wrong scope,
//! an unknown key, an expired presigned URL and a policy's deny refused with AWS's
//! status, error type and message.

mod common;

use common::*;

const PKGS: &[&str] = &["moto[server]==5.2.5", "boto3==1.44.8"];

fn gateway(up: std::net::SocketAddr) -> Gateway {
    Gateway::start(&config(
        r#"
[iam.users.alice]
access_key = "AKIDALICE"
secret = "alice-secret"
policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:shop/prod/*"},{"Effect":"Deny","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:shop/prod/DELETE/admin/*"}]}'

[iam.users.bob]
access_key = "AKIDBOB"
secret = "bob-secret"

[upstreams.echo]
targets = ["{UP}"]

[apis.shop.routes."ANY /{path+}"]
auth = "iam"
integration = { type = "http_proxy", uri = "http://echo/{path}" }

[stages.prod]
api = "shop"
"#,
        Some(up),
    ))
}

/// Runs the cases through botocore; one `(status, error type, body)` each.
fn run(gw: &Gateway, cases: &str) -> Vec<(u16, String, String)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sigv4_client.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(format!("http://{}", gw.addr))
        .arg(cases)
        .env("PYTHONPATH", common::python::deps(PKGS))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON results");
    v.iter()
        .map(|r| {
            (
                r["status"].as_u64().unwrap_or(0) as u16,
                r["type"].as_str().unwrap_or("").to_string(),
                r["body"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn requests_signed_by_botocore_are_accepted() {
    let up = Upstream::start();
    let gw = gateway(up.addr);
    let q = "a=1&a=0&sp=a%20b&plus=%2B&slash=%2F&utf=%C3%A9&empty=";
    let r = run(
        &gw,
        &format!(
            r#"[
        {{"method": "GET", "path": "/orders/7", "query": "{q}"}},
        {{"method": "POST", "path": "/orders", "body_len": 1024}},
        {{"method": "PUT", "path": "/files/caf%C3%A9%20x", "body_len": 5242880}},
        {{"method": "DELETE", "path": "/orders/7"}},
        {{"method": "GET", "path": "/orders/7", "query": "{q}", "form": "query"}},
        {{"method": "HEAD", "path": "/orders/7", "form": "query"}}
    ]"#
        ),
    );
    for (i, (status, kind, body)) in r.iter().enumerate() {
        assert_eq!(*status, 200, "case {i}: {kind} {body}");
    }
    // the upstream got the body the signature covered
    assert!(r[2].2.contains("5242880"), "{}", r[2].2);
}

#[test]
fn tampered_stale_and_unknown_signatures_are_refused_as_aws_does() {
    let up = Upstream::start();
    let gw = gateway(up.addr);
    let r = run(
        &gw,
        r#"[
        {"method": "GET", "path": "/orders/7", "query": "a=1", "tamper": "method"},
        {"method": "GET", "path": "/orders/7", "query": "a=1", "tamper": "path"},
        {"method": "GET", "path": "/orders/7", "query": "a=1", "tamper": "query"},
        {"method": "GET", "path": "/orders/7", "query": "a=1", "tamper": "header"},
        {"method": "POST", "path": "/orders", "body_len": 100, "tamper": "body"},
        {"method": "GET", "path": "/orders/7", "age": 600},
        {"method": "GET", "path": "/orders/7", "region": "eu-west-1"},
        {"method": "GET", "path": "/orders/7", "service": "lambda"},
        {"method": "GET", "path": "/orders/7", "key": "AKIDNOBODY"},
        {"method": "GET", "path": "/orders/7", "secret": "wrong"},
        {"method": "GET", "path": "/orders/7", "form": "query", "expires": 1, "age": 120}
    ]"#,
    );
    let mismatch = "The request signature we calculated does not match the signature you provided.";
    for (i, (status, kind, body)) in r[..5].iter().enumerate() {
        assert_eq!(
            (*status, kind.as_str()),
            (403, "InvalidSignatureException"),
            "tamper {i}: {body}"
        );
        assert!(
            body.contains(mismatch)
                && body.contains("The Canonical String for this request should have been"),
            "{body}"
        );
    }
    assert_eq!(r[5].0, 403);
    assert!(
        r[5].2.contains("Signature expired: ")
            && r[5].2.contains("(")
            && r[5].2.contains(" - 5 min.)"),
        "{}",
        r[5].2
    );
    assert!(
        r[6].2
            .contains("Credential should be scoped to a valid region"),
        "{}",
        r[6].2
    );
    assert!(
        r[7].2
            .contains("Credential should be scoped to correct service: 'execute-api'"),
        "{}",
        r[7].2
    );
    assert_eq!(
        (r[8].0, r[8].1.as_str()),
        (403, "UnrecognizedClientException")
    );
    assert_eq!(
        r[8].2,
        r#"{"message":"The security token included in the request is invalid."}"#
    );
    assert_eq!(
        (r[9].0, r[9].1.as_str()),
        (403, "InvalidSignatureException")
    );
    assert_eq!(r[10].0, 403);
    assert!(r[10].2.contains("Signature expired"), "{}", r[10].2);
    // no signature at all
    let raw = get(gw.addr, "/orders/7");
    assert_eq!(
        (raw.status, raw.text().as_str()),
        (403, r#"{"message":"Missing Authentication Token"}"#)
    );
    assert_eq!(
        raw.header("x-amzn-errortype"),
        Some("MissingAuthenticationTokenException")
    );
}

#[test]
fn the_signers_policy_decides() {
    let up = Upstream::start();
    let gw = gateway(up.addr);
    let r = run(
        &gw,
        r#"[
        {"method": "DELETE", "path": "/admin/users/1"},
        {"method": "GET", "path": "/orders/7", "key": "AKIDBOB", "secret": "bob-secret"}
    ]"#,
    );
    assert_eq!((r[0].0, r[0].1.as_str()), (403, "AccessDeniedException"));
    assert_eq!(
        r[0].2,
        r#"{"Message":"User: arn:aws:iam::000000000000:user/alice is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:000000000000:shop/prod/DELETE/admin/users/1 with an explicit deny"}"#
    );
    // bob has no policy: nothing is allowed
    assert_eq!((r[1].0, r[1].1.as_str()), (403, "AccessDeniedException"));
    assert!(
        r[1].2.contains("user/bob is not authorized")
            && r[1].2.contains("because no identity-based policy allows"),
        "{}",
        r[1].2
    );
}

#[test]
fn awscurl_is_accepted() {
    let up = Upstream::start();
    let gw = gateway(up.addr);
    let deps = common::python::deps(&["awscurl==0.44"]);
    let out = std::process::Command::new("python3")
        .args([
            "-m",
            "awscurl",
            "--service",
            "execute-api",
            "--region",
            "us-east-1",
            "--access_key",
            "AKIDALICE",
            "--secret_key",
            "alice-secret",
        ])
        .arg(format!("http://{}/orders/7?x=1", gw.addr))
        .env("PYTHONPATH", &deps)
        .env("HOME", "/nonexistent")
        .output()
        .expect("python3 -m awscurl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "awscurl: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("\"path\""), "the upstream's echo: {text}");
    let out = std::process::Command::new("python3")
        .args([
            "-m",
            "awscurl",
            "--service",
            "execute-api",
            "--region",
            "us-east-1",
            "--access_key",
            "AKIDALICE",
            "--secret_key",
            "wrong",
        ])
        .arg(format!("http://{}/orders/7", gw.addr))
        .env("PYTHONPATH", &deps)
        .env("HOME", "/nonexistent")
        .output()
        .expect("python3 -m awscurl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("The request signature we calculated does not match"),
        "{text}"
    );
}
