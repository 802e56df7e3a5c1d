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

criterion_group!(benches, bench);
criterion_main!(benches);
