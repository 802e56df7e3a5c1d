//! HTTP/2 end to end: h2c with prior knowledge through the whole pipeline, many
//! concurrent streams on one connection, large bodies both ways with flow control,
//! and the defences by name (rapid reset, idle connections, oversized headers).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;

fn cfg(up: SocketAddr, extra_gateway: &str) -> String {
    config(
        &format!(
            r#"
[apis.a.routes."GET /ping"]
integration = {{ type = "mock", body = "pong" }}

[apis.a.routes."ANY /up/{{p+}}"]
integration = {{ type = "http_proxy", uri = "http://{up}/{{p}}" }}

[stages.prod]
api = "a"
"#
        ),
        None,
    )
    .replace("workers = 2\n", &format!("workers = 2\n{extra_gateway}\n"))
}

type Client = H2Client;

async fn request(c: &mut Client, method: &str, path: &str, body: Option<Bytes>) -> (u16, Bytes) {
    let req = http::Request::builder()
        .method(method)
        .uri(format!("http://test{path}"))
        .body(())
        .unwrap();
    let mut c = c.clone().ready().await.unwrap();
    let (resp, mut send) = c.send_request(req, body.is_none()).unwrap();
    if let Some(mut b) = body {
        // respect the server's flow control: send as capacity opens
        while !b.is_empty() {
            send.reserve_capacity(b.len());
            let cap = std::future::poll_fn(|cx| send.poll_capacity(cx))
                .await
                .unwrap()
                .unwrap();
            let piece = b.split_to(cap.min(b.len()));
            send.send_data(piece, b.is_empty()).unwrap();
        }
    }
    let resp = resp.await.unwrap();
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    (status, Bytes::from(out))
}

#[test]
fn h2c_prior_knowledge_serves_the_pipeline() {
    let up = Upstream::start();
    let gw = Gateway::start(&cfg(up.addr, ""));
    rt().block_on(async {
        let mut c = h2c(gw.addr).await;
        assert_eq!(
            request(&mut c, "GET", "/ping", None).await,
            (200, Bytes::from("pong"))
        );
        let (status, body) = request(&mut c, "GET", "/up/echo?q=1", None).await;
        assert_eq!(status, 200);
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains(r#""query": "q=1""#), "{text}");
        assert!(text.contains(r#""x-forwarded-for": "127.0.0.1""#), "{text}");
        let (status, _) = request(&mut c, "GET", "/nope", None).await;
        assert_eq!(status, 404);
    });
    // curl too
    let out = std::process::Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "-w", " %{http_version}"])
        .arg(format!("http://{}/ping", gw.addr))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pong 2");
    // and load: many streams on a few connections
    let t = h2load::run(gw.addr, &h2load::Load::get("/ping", 4, 20, 2000));
    assert_eq!((t.count(200), t.total()), (2000, 2000), "{t:?}");
    // and HTTP/1.1 on the same listener is unchanged
    assert_eq!(get(gw.addr, "/ping").text(), "pong");
    // the connections were counted by protocol
    let m = admin(&gw, "GET", "/metrics").text();
    let accepted = |p: &str| -> f64 {
        let key = format!("turnpike_connections_accepted_total{{protocol=\"{p}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {m}"))
    };
    assert_eq!(
        accepted("h2c"),
        6.0,
        "the Rust client's, curl's and the load's four"
    );
    assert!(accepted("http/1.1") >= 1.0);
}

#[test]
fn many_concurrent_streams_on_one_connection() {
    let up = Upstream::start();
    let gw = Gateway::start(&cfg(up.addr, ""));
    rt().block_on(async {
        let mut c = h2c(gw.addr).await;
        // one exchange first, so the client has the server's SETTINGS (128 streams at
        // once) and queues the rest instead of having them refused
        assert_eq!(request(&mut c, "GET", "/ping", None).await.0, 200);
        let mut tasks = Vec::new();
        for i in 0..200 {
            let mut c = c.clone();
            tasks.push(tokio::spawn(async move {
                let path = if i % 2 == 0 {
                    "/ping".to_string()
                } else {
                    format!("/up/slow/50?i={i}")
                };
                request(&mut c, "GET", &path, None).await.0
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200);
        }
    });
}

#[test]
fn large_bodies_stream_both_ways() {
    let up = Upstream::start();
    let gw = Gateway::start(&cfg(up.addr, ""));
    rt().block_on(async {
        let mut c = h2c(gw.addr).await;
        // 8 MiB up: more than every flow-control window on the way
        let upload = Bytes::from(vec![b'u'; 8 << 20]);
        let (status, body) = request(&mut c, "POST", "/up/echo", Some(upload)).await;
        assert_eq!(status, 200);
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains(r#""body_len": 8388608"#), "{text}");
        // 6 MB down, length-framed and chunked upstream
        let (status, body) = request(&mut c, "GET", "/up/bytes/6000000", None).await;
        assert_eq!((status, body.len()), (200, 6_000_000));
        let (status, body) = request(&mut c, "GET", "/up/chunked/3000000", None).await;
        assert_eq!((status, body.len()), (200, 3_000_000));
    });
}

#[test]
fn h2_rapid_reset_is_bounded() {
    let up = Upstream::start();
    let gw = Gateway::start(&cfg(up.addr, ""));
    rt().block_on(async {
        let c = h2c(gw.addr).await;
        // 1. HEADERS + RST_STREAM back to back (CVE-2023-44487): h2 drops streams reset
        // before the gateway accepted them, so no work starts for them.
        let mut sent = 0;
        for _ in 0..2_000 {
            let Ok(mut ready) = c.clone().ready().await else {
                break;
            };
            sent += 1;
            let req = http::Request::get("http://test/up/slow/1000")
                .body(())
                .unwrap();
            match ready.send_request(req, true) {
                Ok((_, mut send)) => send.send_reset(h2::Reason::CANCEL),
                Err(_) => break,
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let reached = upstream_count(up.addr);
        println!("{sent} HEADERS + RST_STREAM pairs back to back: {reached} reached the upstream");
        assert!(
            reached < 100,
            "work started for {reached} cancelled streams"
        );
        // 2. cancelling streams the gateway has started on: GOAWAY after the bound
        let c = h2c(gw.addr).await;
        let mut refused = false;
        let mut cancelled = 0;
        for _ in 0..600 {
            let Ok(mut ready) = c.clone().ready().await else {
                refused = true;
                break;
            };
            let req = http::Request::get("http://test/up/slow/1000")
                .body(())
                .unwrap();
            match ready.send_request(req, true) {
                Ok((_, mut send)) => {
                    // long enough for the gateway to have started on the stream
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    send.send_reset(h2::Reason::CANCEL);
                    cancelled += 1;
                }
                Err(_) => {
                    refused = true;
                    break;
                }
            }
        }
        assert!(
            refused,
            "the abusive connection was sent GOAWAY:\n{}",
            gw.log()
        );
        // the bound is 200 cancellations per 10 s (a few more may be in flight)
        assert!(
            cancelled <= 260,
            "GOAWAY only after {cancelled} cancelled streams"
        );
        // normally our own bound sends it (and logs it); the h2 crate's bounds on
        // streams reset before acceptance may get there first on a busy machine
        if !gw.wait_log("GOAWAY (rapid reset)", Duration::from_secs(2)) {
            println!("GOAWAY came from the h2 crate's own bound:\n{}", gw.log());
        }
        // other clients are unaffected
        let mut other = h2c(gw.addr).await;
        assert_eq!(request(&mut other, "GET", "/ping", None).await.0, 200);
    });
}

#[test]
fn an_idle_h2_connection_gets_goaway() {
    let up = Upstream::start();
    let gw = Gateway::start(&cfg(up.addr, "idle_timeout = \"1s\""));
    rt().block_on(async {
        let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        let (mut client, conn) = h2::client::handshake(tcp).await.unwrap();
        let driver = tokio::spawn(conn);
        assert_eq!(request(&mut client, "GET", "/ping", None).await.0, 200);
        let t0 = Instant::now();
        let ended = tokio::time::timeout(Duration::from_secs(10), driver).await;
        assert!(ended.is_ok(), "the connection was closed");
        assert!(
            t0.elapsed() >= Duration::from_millis(900),
            "{:?}",
            t0.elapsed()
        );
    });
}

#[test]
fn oversized_h2_headers_are_refused() {
    let up = Upstream::start();
    let gw = Gateway::start(&cfg(up.addr, "max_header_size = \"4KiB\""));
    rt().block_on(async {
        let mut c = h2c(gw.addr).await;
        let req = http::Request::get("http://test/ping")
            .header("x-big", "a".repeat(16 << 10))
            .body(())
            .unwrap();
        let mut ready = c.clone().ready().await.unwrap();
        let refused = match ready.send_request(req, true) {
            Ok((resp, _)) => match resp.await {
                Ok(r) => r.status().as_u16() == 431,
                Err(_) => true,
            },
            Err(_) => true,
        };
        assert!(refused, "a header list over max_header_size is refused");
        // a new connection works
        let mut fresh = h2c(gw.addr).await;
        assert_eq!(request(&mut fresh, "GET", "/ping", None).await.0, 200);
        let _ = &mut c;
    });
}

/// Floods one connection with control frames (PING or SETTINGS) without reading the
/// answers; returns how much the gateway's memory grew, in KiB, and whether the
/// connection then got GOAWAY `ENHANCE_YOUR_CALM`.
fn control_frame_flood(gw: &Gateway, frame: &[u8]) -> (u64, bool) {
    use std::io::{Read, Write};
    let before = gw.rss_kib();
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let _ = s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00");
    let batch: Vec<u8> = frame.repeat(1024);
    let deadline = Instant::now() + Duration::from_secs(2);
    // 600,000 frames at most: past a few MB the gateway stops reading, because its
    // answers are not read (the write then times out)
    for _ in 0..600 {
        if Instant::now() > deadline || s.write_all(&batch).is_err() {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let grew = gw.rss_kib().saturating_sub(before);
    // now read what the gateway sent: the answers, then GOAWAY, then the end
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let mut i = 0;
    let mut calm = false;
    while i + 9 <= got.len() {
        let len =
            (usize::from(got[i]) << 16) | (usize::from(got[i + 1]) << 8) | usize::from(got[i + 2]);
        // GOAWAY: last stream id, then the error code (ENHANCE_YOUR_CALM = 0xb)
        if got[i + 3] == 0x7 && len >= 8 && i + 17 <= got.len() {
            calm |= got[i + 13..i + 17] == [0, 0, 0, 0xb];
        }
        i += 9 + len;
    }
    (grew, calm)
}

#[test]
fn h2_ping_and_settings_floods_get_goaway_and_stay_bounded() {
    let up = Upstream::start();
    let gw = Gateway::start(&cfg(up.addr, ""));
    let ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00pingpong";
    let settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    for (name, frame) in [("PING", &ping[..]), ("SETTINGS", &settings[..])] {
        let (grew, calm) = control_frame_flood(&gw, frame);
        println!("{name} flood: gateway memory grew by {grew} KiB");
        assert!(grew < 32 << 10, "{name} flood grew memory by {grew} KiB");
        assert!(calm, "{name} flood: no GOAWAY ENHANCE_YOUR_CALM");
        // other clients are served meanwhile
        rt().block_on(async {
            let mut c = h2c(gw.addr).await;
            assert_eq!(request(&mut c, "GET", "/ping", None).await.0, 200);
        });
    }
}

#[test]
fn h2_continuation_flood_is_cut_off() {
    use std::io::{Read, Write};
    let up = Upstream::start();
    let gw = Gateway::start(&cfg(up.addr, "max_header_size = \"16KiB\""));
    let before = gw.rss_kib();
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let frame = |kind: u8, flags: u8, payload: &[u8]| {
        let n = payload.len();
        let mut f = vec![
            (n >> 16) as u8,
            (n >> 8) as u8,
            n as u8,
            kind,
            flags,
            0,
            0,
            0,
            1,
        ];
        f.extend_from_slice(payload);
        f
    };
    // GET / (HPACK static entries), no END_HEADERS: the header block goes on in
    // CONTINUATION frames that never end
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00".to_vec();
    out.extend(frame(0x1, 0x1, b"\x82\x86\x84\x01\x01t"));
    // each: `x-a: <1000 bytes>`, a literal field without indexing
    let mut field = b"\x00\x03x-a\x7f\xe9\x06".to_vec();
    field.extend_from_slice(&[b'a'; 1000]);
    let continuation = frame(0x9, 0x0, &field);
    let _ = s.write_all(&out);
    let mut sent = 0usize;
    let deadline = Instant::now() + Duration::from_secs(3);
    // 64 MiB at most; the gateway must stop it long before
    while sent < 64 << 20 && Instant::now() < deadline {
        if s.write_all(&continuation.repeat(64)).is_err() {
            break;
        }
        sent += continuation.len() * 64;
    }
    // the gateway answers with GOAWAY (type 7) or a reset, and closes
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let mut i = 0;
    let mut ended = false;
    while i + 9 <= got.len() {
        let len =
            (usize::from(got[i]) << 16) | (usize::from(got[i + 1]) << 8) | usize::from(got[i + 2]);
        ended |= got[i + 3] == 0x7 || got[i + 3] == 0x3;
        i += 9 + len;
    }
    assert!(
        ended,
        "no GOAWAY or RST_STREAM after {sent} bytes of CONTINUATION"
    );
    assert!(sent < 32 << 20, "the gateway kept reading {sent} bytes");
    let grew = gw.rss_kib().saturating_sub(before);
    println!("CONTINUATION flood: {sent} bytes sent, gateway grew by {grew} KiB");
    assert!(grew < 16 << 10, "grew by {grew} KiB");
    rt().block_on(async {
        let mut c = h2c(gw.addr).await;
        assert_eq!(request(&mut c, "GET", "/ping", None).await.0, 200);
    });
}

#[test]
fn empty_data_frames_do_not_end_a_request_body() {
    let up = Upstream::start();
    let gw = Gateway::start(&cfg(up.addr, ""));
    rt().block_on(async {
        let c = h2c(gw.addr).await;
        let req = http::Request::post("http://test/up/echo").body(()).unwrap();
        let mut ready = c.clone().ready().await.unwrap();
        let (resp, mut send) = ready.send_request(req, false).unwrap();
        // an empty DATA frame (no END_STREAM) first, then the body, a moment later
        send.send_data(Bytes::new(), false).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        send.reserve_capacity(5);
        send.send_data(Bytes::from_static(b"hello"), true).unwrap();
        let resp = resp.await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        let mut text = Vec::new();
        while let Some(chunk) = body.data().await {
            text.extend_from_slice(&chunk.unwrap());
        }
        let text = String::from_utf8_lossy(&text);
        assert!(text.contains(r#""body_len": 5"#), "{text}");
    });
}

/// Proxied answers reach HTTP/2 clients as fields handed to the stream, not as text
/// parsed again: empty bodies, HEAD, chunked and close-delimited upstream bodies, and
/// an upstream response cut short before any of it went out, which still becomes a
/// 502 the client can read (the head given to the stream is dropped, not sent).
#[test]
fn proxied_heads_reach_h2_clients_whatever_the_body() {
    let up = Upstream::start();
    let gw = Gateway::start(&cfg(up.addr, ""));
    rt().block_on(async {
        let mut c = h2c(gw.addr).await;
        let (status, body) = request(&mut c, "GET", "/up/status/204", None).await;
        assert_eq!((status, body.len()), (204, 0));
        let (status, body) = request(&mut c, "HEAD", "/up/bytes/3000", None).await;
        assert_eq!((status, body.len()), (200, 0));
        let (status, body) = request(&mut c, "GET", "/up/chunked/20000", None).await;
        assert_eq!((status, body.len()), (200, 20000));
        let (status, body) = request(&mut c, "GET", "/up/close/700", None).await;
        assert_eq!((status, body.len()), (200, 700));
        for _ in 0..3 {
            let (status, body) = request(&mut c, "GET", "/up/truncated", None).await;
            assert_eq!(status, 502);
            assert_eq!(&body[..], br#"{"message":"Bad Gateway"}"#);
            // the connection carries on
            let (status, _) = request(&mut c, "GET", "/up/echo", None).await;
            assert_eq!(status, 200);
        }
    });
}

/// A gRPC call whose HTTP/1.1 upstream answers with a plain HTTP error: the client
/// gets a trailers-only gRPC status mapped from it, with the standard reason.
#[test]
fn a_plain_upstream_error_reaches_a_grpc_client_as_a_grpc_status() {
    let up = Upstream::start();
    let gw = Gateway::start(&cfg(up.addr, ""));
    rt().block_on(async {
        let c = h2c(gw.addr).await;
        let req = http::Request::builder()
            .method("POST")
            .uri("http://test/up/status/503")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let mut c = c.ready().await.unwrap();
        let (resp, mut send) = c.send_request(req, false).unwrap();
        send.send_data(Bytes::from_static(b"\0\0\0\0\0"), true)
            .unwrap();
        let resp = resp.await.unwrap();
        assert_eq!(resp.status(), 200);
        let h = resp.headers();
        assert_eq!(h["grpc-status"], "14", "{h:?}");
        assert_eq!(h["grpc-message"], "HTTP 503: Service Unavailable");
        assert!(h.contains_key("x-request-id"));
    });
}

/// An HTTP/2 request body is read from its DATA frames by the pipeline itself (no
/// HTTP/1.1 framing in between): one shorter than its `content-length` never reaches
/// the upstream as a complete request, and one over `max_body` is refused with 413.
#[test]
fn h2_request_bodies_are_checked_against_their_length_and_max_body() {
    let up = Upstream::start();
    let gw = Gateway::start(&cfg(up.addr, "max_body = \"1KiB\""));
    rt().block_on(async {
        let before = upstream_count(up.addr);
        let c = h2c(gw.addr).await;
        let req = http::Request::post("http://test/up/echo")
            .header("content-length", "10")
            .body(())
            .unwrap();
        let mut ready = c.clone().ready().await.unwrap();
        let (resp, mut send) = ready.send_request(req, false).unwrap();
        send.reserve_capacity(5);
        send.send_data(Bytes::from_static(b"short"), true).unwrap();
        match resp.await {
            Ok(r) => assert_ne!(r.status(), 200, "a short body was answered 200"),
            Err(e) => assert!(e.is_reset() || e.is_io(), "{e}"),
        }
        // (the count request itself is the one more)
        assert_eq!(
            upstream_count(up.addr),
            before + 1,
            "the short body reached the upstream"
        );

        let mut c = h2c(gw.addr).await;
        let (status, _) = request(
            &mut c,
            "POST",
            "/up/echo",
            Some(Bytes::from(vec![b'x'; 4096])),
        )
        .await;
        assert_eq!(status, 413);
        let (status, body) = request(
            &mut c,
            "POST",
            "/up/echo",
            Some(Bytes::from(vec![b'y'; 1000])),
        )
        .await;
        assert_eq!(status, 200);
        assert!(String::from_utf8_lossy(&body).contains(r#""body_len": 1000"#));
    });
}
