//! Request authorizers: what every request of an authorizer's route pays once the
//! answer is cached: the node cache's lookup (a shard lock and a hash of the
//! identity values, with 10,000 other identities cached) and the IAM policy
//! evaluated against the request's method ARN (a typical three-statement answer).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use turnpike::auth::authorizer::{parse_answer, Payload, Response};
use turnpike::auth::decisions::{Lookup, Results};

const ANSWER: &[u8] = br#"{"principalId":"user-1","policyDocument":{"Version":"2012-10-17","Statement":[
 {"Action":"execute-api:Invoke","Effect":"Allow","Resource":["arn:aws:execute-api:*:*:shop/prod/GET/orders/*","arn:aws:execute-api:*:*:shop/prod/GET/users/*"]},
 {"Action":"execute-api:Invoke","Effect":"Deny","Resource":"arn:aws:execute-api:*:*:shop/prod/DELETE/*"},
 {"Action":"execute-api:*","Effect":"Allow","Resource":"arn:aws:execute-api:us-east-1:123456789012:shop/prod/POST/orders"}]},
 "context":{"tenant":"acme"}}"#;

fn bench(c: &mut Criterion) {
    let answer = Arc::new(parse_answer(Payload::V1, Response::Iam, ANSWER).unwrap());
    let arn = "arn:aws:execute-api:us-east-1:123456789012:shop/prod/GET/users/42";
    c.bench_function("authorizer/policy_decision", |b| {
        b.iter(|| black_box(answer.decide(black_box(arn))))
    });
    let results = Results::new(Duration::from_secs(300), Duration::from_secs(10));
    let now = Instant::now();
    for i in 0..10_000 {
        if let Lookup::Call(t) = results.lookup(format!("prod\0token-{i}").as_bytes(), now) {
            t.answer(answer.clone());
        }
    }
    let key = b"prod\0token-4242".to_vec();
    c.bench_function("authorizer/cached_answer_lookup", |b| {
        b.iter(|| match results.lookup(black_box(&key), Instant::now()) {
            Lookup::Hit(a) => black_box(a),
            _ => unreachable!("cached"),
        })
    });
    c.bench_function("authorizer/answer_parse", |b| {
        b.iter(|| black_box(parse_answer(Payload::V1, Response::Iam, black_box(ANSWER)).unwrap()))
    });
}

fn sigv4(c: &mut Criterion) {
    use std::time::{Duration, UNIX_EPOCH};
    use turnpike::auth::sigv4::{from_header, verify, Request};
    use turnpike::aws::sign::{self, KeyCache};
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let creds = turnpike::aws::Credentials {
        access_key: "AKIDEXAMPLE".into(),
        secret: secret.into(),
        session_token: None,
        source: "bench".into(),
        expires: None,
    };
    let at = UNIX_EPOCH + Duration::from_secs(1_764_604_800);
    let base = [
        ("host", "api.example.com"),
        ("content-type", "application/json"),
        ("user-agent", "Boto3/1.44"),
    ];
    let signed = sign::sign(
        &creds,
        &KeyCache::default(),
        "us-east-1",
        "execute-api",
        "GET",
        "/prod/orders/7",
        "expand=items",
        &base,
        b"",
        at,
    );
    let mut headers: Vec<(String, String)> = base
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    headers.extend(signed.iter().map(|(n, v)| (n.to_string(), v.clone())));
    let lookup = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let auth = lookup("authorization").unwrap();
    let hash = sign::sha256_hex(b"");
    let req = Request {
        method: "GET",
        path: "/prod/orders/7",
        query: "expand=items",
        header: &lookup,
        payload_hash: &hash,
    };
    let cached = KeyCache::default();
    c.bench_function("sigv4/verify_cached_key", |b| {
        b.iter(|| {
            let p = from_header(black_box(&auth)).unwrap();
            verify(&p, &req, secret, &cached, "us-east-1", at).unwrap()
        })
    });
    c.bench_function("sigv4/verify_cold_key", |b| {
        b.iter(|| {
            let p = from_header(black_box(&auth)).unwrap();
            verify(&p, &req, secret, &KeyCache::default(), "us-east-1", at).unwrap()
        })
    });
}

criterion_group!(benches, bench, sigv4);
criterion_main!(benches);
