//! HTTP/1.1 at the edge: smuggling shapes, limits, timeouts, pipelining, keep-alive.
//! Raw sockets, because curl would refuse to send most of these.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;

const ROUTES: &str = r#"
[apis.a.routes."GET /ping"]
integration = { type = "mock", status = 200, body = "pong", headers = { "content-type" = "text/plain" } }

[apis.a.routes."POST /ping"]
integration = { type = "mock", status = 201, body = "made" }

[apis.a.routes."ANY /echo"]
integration = { type = "http_proxy", uri = "http://{UP}/echo" }

[stages.s]
api = "a"
"#;

fn gateway(extra_gateway_keys: &str) -> (Upstream, Gateway) {
    let up = Upstream::start();
    let cfg = config(ROUTES, Some(up.addr))
        .replace("workers = 2", &format!("workers = 2\n{extra_gateway_keys}"));
    (up, Gateway::start(&cfg))
}

/// Sends `raw`, expects a 400 and a closed connection.
fn assert_rejected(gw: &Gateway, raw: &[u8]) {
    let mut c = Client::connect(gw.addr);
    c.send(raw);
    let r = c
        .read_response(false)
        .unwrap_or_else(|| panic!("no response to {:?}", String::from_utf8_lossy(raw)));
    assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(raw));
    assert_eq!(r.text(), r#"{"message":"Bad Request"}"#);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(
        c.is_closed(Duration::from_secs(2)),
        "connection left open after {:?}",
        String::from_utf8_lossy(raw)
    );
}

#[test]
fn rejects_cl_and_te_together() {
    let (_u, gw) = gateway("");
    assert_rejected(&gw, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /ping HTTP/1.1\r\nHost: a\r\n\r\n");
}

#[test]
fn rejects_repeated_or_malformed_content_length() {
    let (_u, gw) = gateway("");
    assert_rejected(
        &gw,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    );
    assert_rejected(
        &gw,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc",
    );
    assert_rejected(
        &gw,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc",
    );
}

#[test]
fn rejects_unknown_transfer_encodings() {
    let (_u, gw) = gateway("");
    assert_rejected(
        &gw,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    );
    assert_rejected(
        &gw,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn rejects_invalid_chunk_sizes_and_extensions() {
    let (_u, gw) = gateway("");
    assert_rejected(
        &gw,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n",
    );
    assert_rejected(&gw, b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n");
    assert_rejected(&gw, b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n");
    assert_rejected(&gw, b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;\x01\r\nhello\r\n0\r\n\r\n");
    // the same shapes on a mock route (body discarded, still validated)
    assert_rejected(
        &gw,
        b"POST /ping HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    );
}

#[test]
fn rejects_obs_fold() {
    let (_u, gw) = gateway("");
    assert_rejected(
        &gw,
        b"GET /ping HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n",
    );
}

#[test]
fn rejects_whitespace_before_colon() {
    let (_u, gw) = gateway("");
    assert_rejected(
        &gw,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn rejects_bare_cr() {
    let (_u, gw) = gateway("");
    assert_rejected(&gw, b"GET /ping HTTP/1.1\r\nHost: a\rX-B: c\r\n\r\n");
}

#[test]
fn rejects_missing_host_on_http11() {
    let (_u, gw) = gateway("");
    assert_rejected(&gw, b"GET /ping HTTP/1.1\r\n\r\n");
}

#[test]
fn headers_too_large_is_431() {
    let (_u, gw) = gateway("max_header_size = \"4KiB\"");
    let mut c = Client::connect(gw.addr);
    c.send(
        format!(
            "GET /ping HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
            "a".repeat(5000)
        )
        .as_bytes(),
    );
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 431);
    assert_eq!(r.text(), r#"{"message":"Request Header Fields Too Large"}"#);
}

#[test]
fn body_over_max_body_is_413() {
    let (_u, gw) = gateway("max_body = \"1KiB\"");
    let r = request(
        gw.addr,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(r.text(), r#"{"message":"Request Entity Too Large"}"#);
    // chunked: the limit applies to the decoded size as it streams
    let mut c = Client::connect(gw.addr);
    c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    for _ in 0..3 {
        c.send(format!("200\r\n{}\r\n", "b".repeat(512)).as_bytes());
    }
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 413);
    // on a mock route too
    let r = request(
        gw.addr,
        b"POST /ping HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 413);
}

#[test]
fn slow_headers_time_out() {
    let (_u, gw) = gateway("header_timeout = \"500ms\"");
    let mut c = Client::connect(gw.addr);
    let start = Instant::now();
    // one byte every 100 ms never completes the head within 500 ms
    for b in b"GET /ping HTTP/1.1\r\nHost: a\r\n".iter() {
        if c.stream.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if start.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    assert!(c.is_closed(Duration::from_secs(2)));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "slow client kept for {:?}",
        start.elapsed()
    );
}

#[test]
fn idle_keepalive_connections_time_out() {
    let (_u, gw) = gateway("idle_timeout = \"300ms\"");
    let mut c = Client::connect(gw.addr);
    assert_eq!(c.get("/ping").status, 200);
    let t = Instant::now();
    assert!(c.is_closed(Duration::from_secs(3)));
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (_u, gw) = gateway("");
    let mut c = Client::connect(gw.addr);
    let mut burst = Vec::new();
    for i in 0..20 {
        if i % 2 == 0 {
            burst.extend_from_slice(b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\n");
        } else {
            burst.extend_from_slice(
                format!("POST /echo?i={i} HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
                    .as_bytes(),
            );
        }
    }
    c.send(&burst);
    for i in 0..20 {
        let r = c.read_response(false).unwrap();
        if i % 2 == 0 {
            assert_eq!(r.text(), "pong");
        } else {
            assert_eq!(r.json_field("query"), Some(format!("i={i}")));
            assert_eq!(r.json_field("body_len").as_deref(), Some("3"));
        }
    }
}

#[test]
fn connection_close_and_http10_are_honoured() {
    let (_u, gw) = gateway("");
    let mut c = Client::connect(gw.addr);
    c.send(b"GET /ping HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed(Duration::from_secs(2)));

    let mut c = Client::connect(gw.addr);
    c.send(b"GET /ping HTTP/1.0\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().text(), "pong");
    assert!(c.is_closed(Duration::from_secs(2)));

    let mut c = Client::connect(gw.addr);
    c.send(b"GET /ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().text(), "pong");
    c.send(b"GET /ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().text(), "pong");
}

#[test]
fn head_on_a_mock_has_no_body() {
    let (_u, gw) = gateway("");
    let mut c = Client::connect(gw.addr);
    c.send(b"HEAD /ping HTTP/1.1\r\nHost: a\r\n\r\n");
    let r = c.read_response(true).unwrap();
    assert_eq!(r.header("content-length"), Some("4"));
    assert_eq!(c.get("/ping").text(), "pong");
}

#[test]
fn errors_keep_the_connection_when_framing_is_sound() {
    let (_u, gw) = gateway("");
    let mut c = Client::connect(gw.addr);
    let r = c.get("/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), r#"{"message":"Not Found"}"#);
    c.send(b"DELETE /ping HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD, POST"));
    assert_eq!(c.get("/ping").text(), "pong");
}

#[test]
fn a_stale_listener_on_the_port_is_refused() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = TempDir::new("stale");
    let cfg = config(ROUTES, Some("127.0.0.1:9".parse().unwrap()))
        .replace("127.0.0.1:0\"]", &format!("127.0.0.1:{port}\"]"));
    let path = dir.write("t.toml", &cfg);
    let out = std::process::Command::new(BIN)
        .args(["run", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already in use"), "{err}");
}

/// With many connections open, idle ones wait for readiness without buffers
/// (forced here with TURNPIKE_LOW_MEMORY_ABOVE=0): behaviour must not change.
#[test]
fn the_low_memory_idle_path_serves_the_same() {
    let up = Upstream::start();
    let dir = TempDir::new("lowmem");
    let cfg = config(ROUTES, Some(up.addr))
        .replace("workers = 2", "workers = 2\nidle_timeout = \"400ms\"");
    let path = dir.write("t.toml", &cfg);
    let mut gw = Gateway::start_env(
        dir,
        path,
        &["run", "-c"],
        &[("TURNPIKE_LOW_MEMORY_ABOVE", "0")],
    );
    let mut c = Client::connect(gw.addr);
    for i in 0..30 {
        let r = if i % 2 == 0 {
            c.get("/ping")
        } else {
            c.get("/echo")
        };
        assert_eq!(r.status, 200);
    }
    // pipelined burst after an idle pause
    std::thread::sleep(Duration::from_millis(100));
    c.send(b"GET /ping HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /ping HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().text(), "pong");
    assert_eq!(
        c.read_response(false)
            .unwrap()
            .json_field("body_len")
            .as_deref(),
        Some("3")
    );
    assert_eq!(c.read_response(false).unwrap().text(), "pong");
    // the idle timeout still closes it
    let t = Instant::now();
    assert!(c.is_closed(Duration::from_secs(3)));
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    // and a drain wakes an idle connection at once
    let mut idle = Client::connect(gw.addr);
    assert_eq!(idle.get("/ping").status, 200);
    gw.signal("TERM");
    assert!(idle.is_closed(Duration::from_secs(2)));
    assert_eq!(gw.wait_exit(Duration::from_secs(10)), Some(0));
}
