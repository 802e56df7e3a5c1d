//! The whole request pipeline without sockets, per request: parse the head → route →
//! auth (API key) → throttle (stage, key and gateway scopes) → encode the response.
//! (The cache lookup joins when the response cache lands.)

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use turnpike::config::load_str;
use turnpike::limit::Locals;
use turnpike::pipeline::respond::write_mock;
use turnpike::pipeline::{auth, throttle};
use turnpike::plan::{compile, Integration, Lookup, Method};
use turnpike::proto::h1::{parse_request, RequestHead};

const CONFIG: &str = r#"
[gateway]
listen = ["127.0.0.1:0"]
throttle = { rate = 1000000000, burst = 1000000000 }

[apis.a.routes."GET /users/{id}"]
integration = { type = "mock", status = 200, body = '{"id":1}', headers = { "content-type" = "application/json" } }
api_key_required = true

[apis.a.routes."GET /ping"]
integration = { type = "mock", status = 200, body = "pong" }

[stages.prod]
api = "a"
base_path = "/v1"
throttle = { rate = 1000000000, burst = 1000000000 }

[usage_plans.p]
stages = ["prod"]
throttle = { rate = 1000000000, burst = 1000000000 }

[api_keys.k]
key = "bench-key-0123456789abcdef0123456789"
plan = "p"
"#;

fn bench(c: &mut Criterion) {
    let plan = compile(load_str("bench.toml", CONFIG).unwrap(), 2).unwrap();
    let locals = Locals::default();
    let mut head = RequestHead::default();
    let mut out = Vec::with_capacity(4096);
    for (name, raw) in [
        ("mock_no_key", &b"GET /v1/ping HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench\r\n\r\n"[..]),
        (
            "mock_key_and_throttles",
            b"GET /v1/users/42 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench\r\nx-api-key: bench-key-0123456789abcdef0123456789\r\n\r\n",
        ),
    ] {
        c.bench_function(&format!("pipeline/{name}"), |b| {
            b.iter(|| {
                let n = parse_request(black_box(raw), 32 << 10, &mut head).unwrap().unwrap();
                let Lookup::Found(id, _) = plan.router.lookup("api.example.com", Method::from_bytes(head.method()), head.path()) else {
                    panic!("no route")
                };
                let route = plan.route(id);
                let key = auth::identify(&plan, route, &head).unwrap();
                throttle::admit(&plan, id, key, &locals).unwrap();
                throttle::quota(&plan, key, &locals).unwrap();
                out.clear();
                let Integration::Mock(m) = &route.integration else { panic!() };
                write_mock(&mut out, head.is_head(), m, b"0d8f6c6e-1b1a-4c1e-9a7e-2f6b5d4c3b2a", true);
                black_box((n, out.len()))
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
