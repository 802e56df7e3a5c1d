//! http_proxy end to end: the real binary in front of the real Python upstream.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;

const ROUTES: &str = r#"
[upstreams.echo]
targets = ["{UP}"]
connect_timeout = "500ms"

[apis.shop.routes."GET /users/{id}"]
integration = { type = "http_proxy", uri = "http://echo/v1/users/{id}" }

[apis.shop.routes."ANY /files/{path+}"]
integration = { type = "http_proxy", uri = "http://${stageVariables.files}/store/{path}" }

[apis.shop.routes."ANY /raw/{rest+}"]
integration = { type = "http_proxy", uri = "http://echo" }

[apis.shop.routes."GET /slow/{ms}"]
integration = { type = "http_proxy", uri = "http://echo/slow/{ms}" }
timeout = "300ms"

[apis.shop.routes."GET /up/{what}/{n}"]
integration = { type = "http_proxy", uri = "http://echo/{what}/{n}" }

[apis.shop.routes."GET /dead"]
integration = { type = "http_proxy", uri = "http://127.0.0.1:1/x" }

[stages.prod]
api = "shop"
base_path = "/v1"
variables = { files = "{UP}" }
"#;

fn setup() -> (Upstream, Gateway) {
    let up = Upstream::start();
    let gw = Gateway::start(&config(ROUTES, Some(up.addr)));
    (up, gw)
}

#[test]
fn path_params_stage_variables_and_query_are_forwarded() {
    let (_up, gw) = setup();
    let r = get(gw.addr, "/v1/users/42?fields=name&x=%20");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json_field("path").as_deref(), Some("/v1/users/42"));
    assert_eq!(r.json_field("query").as_deref(), Some("fields=name&x=%20"));
    let r = get(gw.addr, "/v1/files/a/b/c.txt");
    assert_eq!(r.json_field("path").as_deref(), Some("/store/a/b/c.txt"));
    // no path in the URI: the request's path after the base path is forwarded
    let r = get(gw.addr, "/v1/raw/q/r?z=1");
    assert_eq!(r.json_field("path").as_deref(), Some("/raw/q/r"));
    assert_eq!(r.json_field("query").as_deref(), Some("z=1"));
    assert_eq!(r.header("x-upstream"), Some("echo"));
}

#[test]
fn forwarding_headers_and_hop_by_hop_removal() {
    let (_up, gw) = setup();
    let raw = "GET /v1/users/1 HTTP/1.1\r\nHost: api.example.com\r\nX-Forwarded-For: 10.0.0.1\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\nTE: gzip\r\nX-Custom: kept\r\nx-request-id: client-id-1\r\n\r\n";
    let r = request(gw.addr, raw.as_bytes()).unwrap();
    let t = r.text();
    assert_eq!(r.status, 200, "{t}");
    assert!(
        t.contains(r#""x-forwarded-for": "10.0.0.1, 127.0.0.1""#),
        "{t}"
    );
    assert!(t.contains(r#""x-forwarded-proto": "http""#), "{t}");
    assert!(
        t.contains(r#""x-forwarded-host": "api.example.com""#),
        "{t}"
    );
    assert!(t.contains(r#""x-custom": "kept""#), "{t}");
    assert!(t.contains(r#""x-request-id": "client-id-1""#), "{t}");
    assert!(t.contains(r#""host": "echo""#), "{t}");
    for gone in ["x-secret", "keep-alive", "te", "connection"] {
        assert!(!t.contains(&format!("\"{gone}\": ")), "{gone} leaked: {t}");
    }
    assert_eq!(r.header("x-request-id"), Some("client-id-1"));
    // TE's one end-to-end meaning, that the client takes trailers, goes on alone
    let raw = "GET /v1/users/1 HTTP/1.1\r\nHost: a\r\nTE: deflate, trailers\r\n\r\n";
    let t = request(gw.addr, raw.as_bytes()).unwrap().text();
    assert!(t.contains(r#""te": "trailers""#), "{t}");
}

#[test]
fn an_insane_request_id_is_replaced() {
    let (_up, gw) = setup();
    let r = request(gw.addr, b"GET /v1/users/1 HTTP/1.1\r\nHost: a\r\nx-request-id: bad id\"\r\nConnection: close\r\n\r\n").unwrap();
    let sent = r.json_field("x-request-id").unwrap();
    assert_ne!(sent, "bad id\"");
    assert_eq!(sent.len(), 36);
    assert_eq!(r.header("x-request-id"), Some(sent.as_str()));
}

#[test]
fn keep_alive_reuses_upstream_connections() {
    let (_up, gw) = setup();
    let mut c = Client::connect(gw.addr);
    for i in 0..50 {
        let r = c.get(&format!("/v1/users/{i}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.json_field("path"), Some(format!("/v1/users/{i}")));
    }
}

#[test]
fn post_bodies_content_length_and_chunked() {
    let (_up, gw) = setup();
    let body = "hello world".repeat(1000);
    let raw = format!("POST /v1/files/up HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    let r = request(gw.addr, raw.as_bytes()).unwrap();
    assert_eq!(r.json_field("body_len"), Some(body.len().to_string()));
    assert_eq!(r.json_field("method").as_deref(), Some("POST"));

    let mut c = Client::connect(gw.addr);
    c.send(
        b"PUT /v1/files/up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    );
    std::thread::sleep(Duration::from_millis(50));
    c.send(b"6;ext=1\r\n world\r\n0\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(
        r.json_field("body_len").as_deref(),
        Some("11"),
        "{}",
        r.text()
    );
    // the connection is still in sync for the next request
    assert_eq!(c.get("/v1/users/9").status, 200);
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let (_up, gw) = setup();
    let mut c = Client::connect(gw.addr);
    c.send(b"POST /v1/files/e HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.read_response(false).unwrap();
    assert_eq!(interim.status, 100);
    c.send(b"data");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json_field("body_len").as_deref(), Some("4"));
}

#[test]
fn response_framings_are_translated() {
    let (_up, gw) = setup();
    let mut c = Client::connect(gw.addr);
    let r = c.get("/v1/up/chunked/100000");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body.len(), 100_000);
    assert!(r.body.iter().all(|&b| b == b'y'));
    // upstream delimits by close → chunked to an HTTP/1.1 client, connection kept
    let r = c.get("/v1/up/close/5000");
    assert_eq!(r.body.len(), 5000);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    let r = c.get("/v1/up/bytes/300000");
    assert_eq!(r.body.len(), 300_000);
    assert_eq!(r.header("content-length"), Some("300000"));
    let r = c.get("/v1/up/status/204");
    assert_eq!(r.status, 204);
    assert_eq!(c.get("/v1/users/1").status, 200);
}

#[test]
fn http10_clients_get_close_delimited_bodies() {
    let (_up, gw) = setup();
    let r = request(gw.addr, b"GET /v1/up/chunked/20000 HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(r.status, 200);
    assert!(r.header("transfer-encoding").is_none());
    assert_eq!(r.body.len(), 20_000);
}

#[test]
fn head_requests_keep_content_length_without_a_body() {
    let (_up, gw) = setup();
    let mut c = Client::connect(gw.addr);
    c.send(b"HEAD /v1/up/bytes/1234 HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.read_response(true).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("1234"));
    // no stray body bytes: the next response parses
    assert_eq!(c.get("/v1/users/2").status, 200);
}

#[test]
fn refused_upstream_is_502_bad_gateway() {
    let (_up, gw) = setup();
    let r = get(gw.addr, "/v1/dead");
    assert_eq!(r.status, 502);
    assert_eq!(r.text(), r#"{"message":"Bad Gateway"}"#);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("x-request-id").is_some());
}

#[test]
fn upstream_reset_before_answering_is_502() {
    let (_up, gw) = setup();
    let r = get(gw.addr, "/v1/up/reset/1");
    assert_eq!(r.status, 502);
}

#[test]
fn slow_upstream_is_504_at_the_route_timeout() {
    let (_up, gw) = setup();
    let t = Instant::now();
    let r = get(gw.addr, "/v1/slow/2000");
    let took = t.elapsed();
    assert_eq!(r.status, 504);
    assert_eq!(r.text(), r#"{"message":"Endpoint request timed out"}"#);
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    // within the timeout it is served
    assert_eq!(get(gw.addr, "/v1/slow/10").status, 200);
}

#[test]
fn large_bodies_stream_both_ways_in_bounded_memory() {
    let up = Upstream::start();
    let cfg =
        config(ROUTES, Some(up.addr)).replace("workers = 2", "workers = 2\nmax_body = \"2GiB\"");
    let gw = Gateway::start(&cfg);
    const SIZE: u64 = 1 << 30;
    let before = gw.peak_rss_kib();

    // download 1 GiB
    let mut c = Client::connect(gw.addr);
    c.send(format!("GET /v1/up/bytes/{SIZE} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes());
    let mut total = 0u64;
    let mut head = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    use std::io::Read;
    loop {
        let n = c.stream.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed after {total} bytes");
        if head.is_empty() || !head.windows(4).any(|w| w == b"\r\n\r\n") {
            head.extend_from_slice(&buf[..n]);
            if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                total += (head.len() - i - 4) as u64;
            }
        } else {
            total += n as u64;
        }
        if total >= SIZE {
            break;
        }
    }
    assert_eq!(total, SIZE);

    // upload 1 GiB
    let mut c = Client::connect(gw.addr);
    c.send(
        format!("PUT /v1/files/big HTTP/1.1\r\nHost: a\r\nContent-Length: {SIZE}\r\n\r\n")
            .as_bytes(),
    );
    let block = vec![b'u'; 1 << 20];
    for _ in 0..(SIZE >> 20) {
        c.stream.write_all(&block).unwrap();
    }
    let r = c.read_response(false).unwrap();
    assert_eq!(r.json_field("body_len"), Some(SIZE.to_string()));

    let grown_mib = gw.peak_rss_kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib <= 8,
        "peak RSS grew by {grown_mib} MiB moving 2 GiB"
    );
}

/// The epoll fallback (kernels or sandboxes that refuse io_uring) serves the same way.
#[test]
fn the_epoll_fallback_driver_serves_too() {
    let up = Upstream::start();
    let dir = TempDir::new("legacy");
    let path = dir.write("t.toml", &config(ROUTES, Some(up.addr)));
    let gw = Gateway::start_env(dir, path, &["run", "-c"], &[("TURNPIKE_DRIVER", "legacy")]);
    assert!(gw.log().contains("worker driver: Legacy"), "{}", gw.log());
    let mut c = Client::connect(gw.addr);
    for i in 0..20 {
        let r = c.get(&format!("/v1/users/{i}"));
        assert_eq!(r.json_field("path"), Some(format!("/v1/users/{i}")));
    }
    let r = c.get("/v1/up/chunked/50000");
    assert_eq!(r.body.len(), 50_000);
    assert_eq!(get(gw.addr, "/v1/slow/2000").status, 504);
}

#[test]
fn malformed_upstream_responses_are_502() {
    let (_up, gw) = setup();
    for path in ["/v1/up/garbage/1", "/v1/up/notHTTP/1"] {
        let r = get(gw.addr, path);
        assert_eq!(r.status, 502, "{path}: {}", r.text());
        assert_eq!(r.text(), r#"{"message":"Bad Gateway"}"#);
    }
}

#[test]
fn traceparent_is_continued_or_started_and_tracestate_passes() {
    let (_up, gw) = setup();
    let inc = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let raw = format!("GET /v1/users/1 HTTP/1.1\r\nHost: a\r\ntraceparent: {inc}\r\ntracestate: vendor=x\r\nX-Amzn-Trace-Id: Root=1-abc\r\nConnection: close\r\n\r\n");
    let r = request(gw.addr, raw.as_bytes()).unwrap();
    let sent = r.json_field("traceparent").unwrap();
    assert_eq!(&sent[..36], &inc[..36], "same trace");
    assert_ne!(&sent[36..52], &inc[36..52], "our own span id");
    assert_eq!(&sent[52..], "-01");
    assert_eq!(r.json_field("tracestate").as_deref(), Some("vendor=x"));
    assert_eq!(
        r.json_field("x-amzn-trace-id").as_deref(),
        Some("Root=1-abc")
    );
    assert!(
        !r.text().contains(&inc[36..52]),
        "the caller's span id must not be forwarded"
    );
    // no traceparent: a new, valid one
    let r = get(gw.addr, "/v1/users/2");
    let started = r.json_field("traceparent").unwrap();
    assert_eq!(started.len(), 55);
    assert!(started.starts_with("00-") && started.ends_with("-01"));
}
