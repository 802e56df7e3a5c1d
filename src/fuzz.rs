//! Entry points shared by the cargo-fuzz targets in `fuzz/` and by the test that
//! replays their seed corpora (`tests/fuzz_seeds.rs`). Each must accept any bytes
//! without panicking; that is the whole property being fuzzed.

use std::sync::OnceLock;

use crate::plan::{Lookup, Method, Plan};
use crate::proto::h1::{parse_request, BodyFraming, ChunkedDecoder, RequestHead};

/// Parses a request head and, when it says chunked, decodes the bytes after it.
pub fn h1_request(data: &[u8]) {
    let mut head = RequestHead::default();
    if let Ok(Some(n)) = parse_request(data, 64 << 10, &mut head) {
        let _ = (head.path(), head.query(), head.host(), head.method());
        if head.body == BodyFraming::Chunked {
            let mut out = Vec::new();
            let _ = ChunkedDecoder::default().decode(&data[n..], &mut out);
        }
    }
}

/// Loads and compiles a configuration from arbitrary text.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match crate::config::load_str("fuzz.toml", text) {
        Ok(cfg) => {
            if let Err(e) = crate::plan::compile(cfg, 2) {
                let _ = e.to_string();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// Decodes a chunked body fed in pieces (the first byte picks the piece size) and
/// checks it against decoding the same bytes whole: the framing must never depend
/// on how the bytes arrived, and a body accepted is exactly the concatenated chunks.
pub fn chunked(data: &[u8]) {
    let Some((&step, input)) = data.split_first() else {
        return;
    };
    let step = usize::from(step % 31) + 1;
    let whole = decode_in(input, input.len().max(1));
    let pieces = decode_in(input, step);
    assert_eq!(
        whole, pieces,
        "the decoder's verdict changed with the piece size {step}"
    );
}

/// (body, trailers, done) when the decoder accepted `input` fed `step` bytes at a time.
fn decode_in(input: &[u8], step: usize) -> Option<(Vec<u8>, Vec<u8>, bool)> {
    let mut d = ChunkedDecoder::keeping_trailers();
    let mut out = Vec::new();
    let mut at = 0;
    while at < input.len() && !d.is_done() {
        let end = (at + step).min(input.len());
        let used = d.decode(&input[at..end], &mut out).ok()?;
        assert!(used <= end - at, "consumed more than it was given");
        if used < end - at {
            // only a finished body leaves input behind
            assert!(d.is_done(), "left input unconsumed before the end");
        }
        at += used;
    }
    let done = d.is_done();
    Some((out, d.take_trailers(), done))
}

/// A routing table with every kind of route (static, `{param}`, `{greedy+}`,
/// `$default`, hosts, base paths), compiled once.
fn routing_plan() -> &'static Plan {
    static PLAN: OnceLock<Plan> = OnceLock::new();
    PLAN.get_or_init(|| {
        let text = r#"
[gateway]
workers = 1
[apis.a.routes."GET /users/{id}"]
integration = { type = "mock" }
[apis.a.routes."PUT /users/{id}/files/{name}"]
integration = { type = "mock" }
[apis.a.routes."GET /users/me"]
integration = { type = "mock" }
[apis.a.routes."ANY /files/{path+}"]
integration = { type = "mock" }
[apis.a.routes."POST /"]
integration = { type = "mock" }
[apis.a.routes."$default"]
integration = { type = "mock" }
[apis.b.routes."GET /v/{x}/{y}/{z}"]
integration = { type = "mock" }
[stages.a]
api = "a"
hosts = ["api.example.com", "*"]
[stages.b]
api = "b"
hosts = ["x.example.org"]
base_path = "/v1"
"#;
        let cfg = crate::config::load_str("fuzz.toml", text).expect("the fuzz routing table loads");
        crate::plan::compile(cfg, 1).expect("the fuzz routing table compiles")
    })
}

/// Looks up a method, host and path taken from the bytes: never a panic, and the
/// parameters found are slices of the path that contain no `/` (but a greedy one).
pub fn router(data: &[u8]) {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let (host, path) = text.split_once(' ').unwrap_or(("api.example.com", &text));
    let method = Method::from_bytes(
        [
            &b"GET"[..],
            b"PUT",
            b"POST",
            b"DELETE",
            b"PATCH",
            b"HEAD",
            b"OPTIONS",
            b"BREW",
        ][usize::from(m % 8)],
    );
    let plan = routing_plan();
    if let Lookup::Found(id, params) = plan.router.lookup(host, method, path) {
        let route = plan.route(id);
        assert!(params.len() <= route.param_names.len());
        for i in 0..params.len() {
            let v = params.get(path, i);
            let greedy = route.key.contains('+') && i + 1 == route.param_names.len();
            assert!(greedy || !v.contains('/'), "{v:?} for {}", route.key);
        }
    }
}

/// The key set the `jwt` target verifies tokens with (its seeds were signed by the
/// matching private key, which was thrown away).
pub const FUZZ_JWKS: &str = r#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "pRuC7L37v5LNVinSKhqYWu4eWi3sdg8AJ0NU5ouGgdQ", "y": "q-3cTl_-YZ62FcU-dQpmJvg4AlBJQ-ZrlvQO4GhHrgs", "kid": "fz", "use": "sig"}]}"#;

/// First byte 0: the rest is an `Authorization` value, taken apart and verified as
/// a JWT (and, when valid, its scopes checked). Otherwise: the rest is a JWKS
/// document (what a JWKS URL may answer).
pub fn jwt(data: &[u8]) {
    use crate::auth::{jwks::KeySet, jwt};
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode != 0 {
        let _ = KeySet::parse(rest).map(|k| k.len());
        return;
    }
    let keys =
        KEYS.get_or_init(|| KeySet::parse(FUZZ_JWKS.as_bytes()).expect("the fuzz key set parses"));
    let rules = jwt::JwtRules {
        issuer: "https://issuer.fuzz".into(),
        audience: vec!["fuzz".into()],
    };
    let Some(token) = jwt::bearer(rest) else {
        return;
    };
    let Ok(token) = std::str::from_utf8(token) else {
        return;
    };
    if let Ok(v) = jwt::verify(token, keys, &rules, 1_800_000_000) {
        let _ = (v.subject(), jwt::has_scope(&v.claims, &["a".to_string()]));
    }
}

/// An authorizer's answer (first byte: bit 0 payload 2.0, bit 1 simple answers),
/// read and, when it parses, decided for a method ARN: answers come from another
/// process and must never panic or allow by accident.
pub fn authorizer_answer(data: &[u8]) {
    use crate::auth::authorizer::{parse_answer, Payload, Response};
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let payload = if mode & 1 == 0 {
        Payload::V1
    } else {
        Payload::V2
    };
    let response = if mode & 2 == 0 {
        Response::Iam
    } else {
        Response::Simple
    };
    if let Ok(a) = parse_answer(payload, response, rest) {
        let _ = a.decide("arn:aws:execute-api:us-east-1:000000000000:shop/prod/GET/orders/7");
    }
}

/// A SigV4 signature as a client presents it (first byte 0: an `Authorization`
/// value; else a query string), parsed and, when it parses, verified against a
/// fixed request and secret: a client's input must never panic or verify by chance.
pub fn sigv4(data: &[u8]) {
    use crate::auth::sigv4::{from_header, from_query, verify, Request};
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let presented = if mode == 0 {
        from_header(text)
    } else {
        match from_query(text) {
            Some(p) => p,
            None => return,
        }
    };
    if let Ok(p) = presented {
        let lookup = |n: &str| match n {
            "host" => Some("api.example.com".to_string()),
            "x-amz-date" => Some("20251201T160000Z".to_string()),
            _ => None,
        };
        let req = Request {
            method: "GET",
            path: "/prod/x",
            query: if mode == 0 { "" } else { text },
            header: &lookup,
            payload_hash: "UNSIGNED-PAYLOAD",
        };
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_764_604_800);
        let keys = crate::aws::sign::KeyCache::default();
        let _ = verify(&p, &req, "fuzz-secret", &keys, "us-east-1", now);
    }
}

/// A mapping template and a request body (split at the first NUL byte): compiled,
/// and when it compiles, evaluated against the body with a few parameters and a
/// `$context`. Neither may panic, hang or run past the engine's limits.
pub fn vtl(data: &[u8]) {
    use crate::transform::value::Value;
    use crate::transform::vtl::{Inputs, Template};
    let (t, body) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(text) = std::str::from_utf8(t) else {
        return;
    };
    let Ok(template) = Template::compile(text) else {
        return;
    };
    let mut ctx = indexmap::IndexMap::new();
    ctx.insert(std::rc::Rc::from("requestId"), Value::str("r-1"));
    let inputs = Inputs {
        body,
        path: vec![("id", "7".into())],
        query: vec![("q".into(), "a b".into())],
        headers: vec![("Content-Type", "application/json")],
        context: Value::new_map(ctx),
        stage_variables: Value::new_map(indexmap::IndexMap::new()),
    };
    if let Ok(out) = template.eval(&inputs) {
        assert!(out.body.len() <= crate::transform::vtl::eval::MAX_OUTPUT);
    }
}

/// A JSONPath and a JSON document (split at the first NUL byte).
pub fn jsonpath(data: &[u8]) {
    let (p, doc) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let Ok(p) = std::str::from_utf8(p) else {
        return;
    };
    if let (Ok(path), Some(doc)) = (
        crate::transform::jsonpath::Path::compile(p),
        crate::transform::value::Value::from_json(doc),
    ) {
        let mut out = String::new();
        path.eval(&doc).write_json(&mut out);
    }
}

/// A JSON Schema model and a request body (split at the first NUL byte):
/// compiled as `[apis.A.models]` are, and the body checked against it.
pub fn model(data: &[u8]) {
    let (s, body) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let Ok(schema) = std::str::from_utf8(s) else {
        return;
    };
    if let Ok(m) = crate::transform::models::Model::compile("fuzz", schema) {
        let _ = m.check(body);
    }
}
