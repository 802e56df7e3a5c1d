//! Request buffering: bodies up to `request_buffering` are read whole, framing checked,
//! before the upstream hears anything; larger ones stream, and a framing error in
//! the middle closes the upstream connection instead of leaving it a request that
//! looks complete. The upstream here records every byte it receives.

mod common;

use std::io::Write;
use std::time::Duration;

use common::recorder::Recorder;
use common::*;

fn gateway(rec: &Recorder, extra: &str) -> Gateway {
    Gateway::start(&config(
        &format!(
            r#"
[apis.a.routes."POST /up"]
integration = {{ type = "http_proxy", uri = "http://{{UP}}/up" }}
{extra}

[stages.s]
api = "a"
"#
        ),
        Some(rec.addr),
    ))
}

fn post_chunked(gw: &Gateway, body: &[u8]) -> Option<Response> {
    let mut raw = b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    raw.extend_from_slice(body);
    request(gw.addr, &raw)
}

/// Each of these is refused by the gateway; none of it may reach the upstream, not
/// even the request head (nginx refuses them before the upstream hears anything).
#[test]
fn invalid_chunked_bodies_never_reach_the_upstream() {
    let rec = Recorder::start();
    let gw = gateway(&rec, "");
    let cases: &[(&str, &[u8])] = &[
        (
            "underscore in the size",
            b"1_0\r\n0123456789abcdef\r\n0\r\n\r\n",
        ),
        ("plus sign", b"+5\r\nhello\r\n0\r\n\r\n"),
        ("0x prefix", b"0x5\r\nhello\r\n0\r\n\r\n"),
        ("18 hex digits", b"000000000000000005\r\nhello\r\n0\r\n\r\n"),
        ("bare CR in an extension", b"5;a=b\rc\r\nhello\r\n0\r\n\r\n"),
        ("bare LF after the size", b"5\nhello\r\n0\r\n\r\n"),
        (
            "data longer than its size",
            b"5\r\nhello, world\r\n0\r\n\r\n",
        ),
        (
            "a good chunk then a bad one",
            b"5\r\nhello\r\nzz\r\nx\r\n0\r\n\r\n",
        ),
    ];
    for (name, body) in cases {
        let r = post_chunked(&gw, body).unwrap_or_else(|| panic!("{name}: no answer"));
        assert_eq!(r.status, 400, "{name}");
        assert_eq!(r.text(), r#"{"message":"Bad Request"}"#, "{name}");
        assert_eq!(r.header("connection"), Some("close"), "{name}");
    }
    std::thread::sleep(Duration::from_millis(100));
    let seen = rec.snapshot();
    assert!(seen.is_empty(), "the upstream heard: {seen:?}");
}

/// A chunked body that fits the buffer goes upstream whole with a Content-Length,
/// which strict or old upstreams (HTTP/1.0 servers, some WSGI stacks) need.
#[test]
fn a_small_chunked_body_goes_upstream_with_a_content_length() {
    let rec = Recorder::start();
    let gw = gateway(&rec, "");
    let r = post_chunked(
        &gw,
        b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: t\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let seen = rec.snapshot();
    assert_eq!(seen.len(), 1);
    let req = &seen[0].complete[0];
    assert_eq!(req.header("content-length").as_deref(), Some("12"));
    assert_eq!(req.header("transfer-encoding"), None);
    assert_eq!(req.body, b"hello, world");
}

/// With buffering, the upstream connection is made only once the whole body is in;
/// with `request_buffering = "0"` the head goes as soon as it is read.
#[test]
fn the_upstream_hears_nothing_until_the_body_is_complete() {
    for (extra, early) in [("", false), ("request_buffering = \"0\"", true)] {
        let rec = Recorder::start();
        let gw = gateway(&rec, extra);
        let mut c = Client::connect(gw.addr);
        c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello");
        std::thread::sleep(Duration::from_millis(300));
        let heard = !rec.snapshot().is_empty();
        assert_eq!(heard, early, "{extra:?}");
        c.send(b"world");
        let r = c.read_response(false).unwrap();
        assert_eq!(r.status, 200, "{extra:?}");
        let seen = rec.snapshot();
        assert_eq!(seen[0].complete[0].body, b"helloworld", "{extra:?}");
        // the connection is still good for another request
        c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi");
        assert_eq!(c.read_response(false).unwrap().status, 200, "{extra:?}");
    }
}

/// A chunked body larger than the buffer streams; a framing error in the middle of
/// it closes the upstream connection, which never received a terminating chunk (so
/// it cannot take the request for complete), and the gateway logs it.
#[test]
fn a_framing_error_mid_stream_closes_the_upstream_connection() {
    let rec = Recorder::start();
    let gw = gateway(&rec, "request_buffering = \"16KiB\"");
    let mut c = Client::connect(gw.addr);
    c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    let piece = vec![b'a'; 8192];
    for _ in 0..8 {
        c.send(format!("{:x}\r\n", piece.len()).as_bytes());
        c.send(&piece);
        c.send(b"\r\n");
    }
    c.stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    c.send(b"1_0\r\n0123456789abcdef\r\n0\r\n\r\n");
    let r = c.read_response(false);
    if let Some(r) = r {
        assert_eq!(r.status, 400);
    }
    let seen = rec.wait_closed(Duration::from_secs(5));
    assert_eq!(seen.len(), 1, "{}", gw.log());
    let conn = &seen[0];
    assert!(conn.closed, "the upstream connection is still open");
    assert!(
        conn.complete.is_empty(),
        "the upstream took a request as complete"
    );
    assert!(conn.cut_short);
    let text = String::from_utf8_lossy(&conn.bytes);
    assert!(text.contains("transfer-encoding: chunked"), "{text:.200}");
    assert!(!text.ends_with("0\r\n\r\n"));
    assert!(
        gw.wait_log("framing is invalid", Duration::from_secs(2)),
        "{}",
        gw.log()
    );
}

/// A body larger than the buffer but well framed streams through intact.
#[test]
fn a_large_body_streams_intact() {
    let rec = Recorder::start();
    let gw = gateway(&rec, "request_buffering = \"16KiB\"");
    let body: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut raw = format!(
        "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    assert_eq!(request(gw.addr, &raw).unwrap().status, 200);
    // chunked, larger than the buffer: re-framed as chunks upstream
    let mut chunked = Vec::new();
    for part in body.chunks(10_000) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(post_chunked(&gw, &chunked).unwrap().status, 200);
    let seen = rec.snapshot();
    let reqs: Vec<_> = seen.iter().flat_map(|c| c.complete.clone()).collect();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body, body);
    assert_eq!(
        reqs[1].header("transfer-encoding").as_deref(),
        Some("chunked")
    );
    assert_eq!(decode_chunked(&reqs[1].body), body);
}

fn decode_chunked(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..line]).unwrap(), 16).unwrap();
        b = &b[line + 2..];
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[..n]);
        b = &b[n + 2..];
    }
}

#[test]
fn request_buffering_above_max_body_is_a_config_error() {
    let dir = TempDir::new("buf");
    let path = dir.write(
        "t.toml",
        r#"
[gateway]
max_body = "1MiB"
request_buffering = "2MiB"

[apis.a.routes."POST /up"]
integration = { type = "mock" }
request_buffering = "4MiB"

[stages.s]
api = "a"
"#,
    );
    check_reports(
        &path,
        &[
            "t.toml:4:21: error: request_buffering (2097152 bytes) must be at most max_body (1048576 bytes)",
            "t.toml:8:21: error: request_buffering (4194304 bytes) must be at most the gateway's max_body",
        ],
    );
}
