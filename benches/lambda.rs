//! The lambda integration's own work per request: the proxy event encoded (a
//! typical GET with ten headers, a query and path parameters, 1.0 and 2.0) and the
//! function's answer decoded (a 1 KiB JSON body with headers and cookies).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use turnpike::auth::authorizer::{Payload, Request};
use turnpike::aws::lambda::event::{proxy_event, Authorized, Extra};
use turnpike::aws::lambda::response;

fn bench(c: &mut Criterion) {
    let vars = vec![("alias".to_string(), "live".to_string())];
    let req = Request {
        method: "GET",
        path: "/orders/7",
        api_path: "/orders/7",
        query: "expand=items&page=2",
        headers: vec![
            ("Host", "api.example.com"),
            ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"),
            ("Accept", "application/json"),
            ("Accept-Encoding", "gzip, br"),
            ("Accept-Language", "en-GB,en;q=0.9"),
            ("Authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"),
            ("Cookie", "session=abc; theme=dark"),
            ("X-Request-Id", "9f6c2b1e-1d2a-4c4b-9a55-6f3f0f1e2d3c"),
            ("X-Forwarded-For", "203.0.113.7"),
            ("Cache-Control", "no-cache"),
        ],
        route_key: "GET /orders/{id}",
        resource: "/orders/{id}",
        path_params: vec![("id", "7".to_string())],
        stage: "prod",
        api: "shop",
        account: "000000000000",
        stage_variables: &vars,
        source_ip: "203.0.113.7",
        request_id: "9f6c2b1e-1d2a-4c4b-9a55-6f3f0f1e2d3c",
        host: "api.example.com",
        time_ms: 1_764_604_800_000,
        protocol: "HTTP/1.1",
        method_arn: "arn:aws:execute-api:us-east-1:000000000000:shop/prod/GET/orders/7",
    };
    let extra = Extra {
        body: b"",
        base64: false,
        authorized: Authorized::None,
        api_key: None,
    };
    for (name, payload) in [
        ("lambda/event_v1", Payload::V1),
        ("lambda/event_v2", Payload::V2),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                black_box(
                    serde_json::to_vec(&proxy_event(payload, black_box(&req), &extra)).unwrap(),
                )
            })
        });
    }
    let svc = turnpike::aws::Service::new(
        "lambda",
        "us-east-1".into(),
        turnpike::upstream::call::Endpoint {
            addr: "127.0.0.1:9001".parse().unwrap(),
            authority: "127.0.0.1:9001".into(),
            tls: None,
            path: String::new(),
        },
        turnpike::aws::Credentials {
            access_key: "AKIDEXAMPLE".into(),
            secret: "secret".into(),
            session_token: None,
            source: "bench".into(),
            expires: None,
        },
    );
    let event = proxy_event(Payload::V2, &req, &extra);
    c.bench_function("lambda/signed_invoke_request", |b| {
        b.iter(|| {
            black_box(
                turnpike::aws::lambda::invoke_request(
                    &svc,
                    "arn:aws:lambda:us-east-1:123456789012:function:bench:live",
                    black_box(&event),
                    std::time::SystemTime::now(),
                )
                .unwrap(),
            )
        })
    });
    let body = serde_json::to_string(&"x".repeat(1024)).unwrap();
    let answer = format!(
        r#"{{"statusCode":200,"headers":{{"content-type":"application/json","x-version":"7","cache-control":"no-store"}},"cookies":["a=1; Path=/","b=2"],"body":{body},"isBase64Encoded":false}}"#
    );
    c.bench_function("lambda/answer_v2", |b| {
        b.iter(|| {
            black_box(response::parse(Payload::V2, black_box(answer.as_bytes()), |_| true).unwrap())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
