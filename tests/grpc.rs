//! HTTP/2 to upstreams (`protocol = "h2"`): gRPC-style exchanges through the gateway
//! to a real HTTP/2 server (the `h2` crate on tokio, below), with trailers and
//! `grpc-status` passed through to HTTP/2 and HTTP/1.1 clients, `te: trailers`
//! kept, streams of many requests sharing one upstream connection, large bodies both
//! ways, h2 over TLS chosen by ALPN, and failures answered as they are for HTTP/1.1.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};

/// A gRPC-style HTTP/2 (h2c) server.
///
/// - `/echo.Echo/Unary`: the request body back, `grpc-status: 0` in trailers, and
///   what it saw (`te`, `:authority`) in response headers;
/// - `/echo.Echo/Fail`: a trailers-only answer, `grpc-status: 5`;
/// - `/echo.Echo/Stream?n=N&size=S`: N DATA frames of S bytes, then trailers;
/// - `/health`: 200, counted in `health`;
/// - anything else: 404.
struct GrpcServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    health: Arc<AtomicUsize>,
    /// Connections the client (the gateway) closed.
    closed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GrpcServer {
    fn start() -> GrpcServer {
        GrpcServer::start_on(0)
    }

    fn start_on(port: u16) -> GrpcServer {
        GrpcServer::spawn(port, false)
    }

    /// A server that resets the first stream it gets with REFUSED_STREAM.
    fn start_refusing_first() -> GrpcServer {
        GrpcServer::spawn(0, true)
    }

    fn spawn(port: u16, refuse_first: bool) -> GrpcServer {
        let refuse = Arc::new(AtomicBool::new(refuse_first));
        let std = StdListener::bind(("127.0.0.1", port)).unwrap();
        std.set_nonblocking(true).unwrap();
        let addr = std.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let health = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, r, s) = (connections.clone(), requests.clone(), stop.clone());
        let hc = health.clone();
        let closed = Arc::new(AtomicUsize::new(0));
        let cl = closed.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std).unwrap();
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    if s.load(Ordering::SeqCst) {
                        return;
                    }
                    let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                    let r = r.clone();
                    let hc = hc.clone();
                    let refuse = refuse.clone();
                    let cl = cl.clone();
                    tokio::spawn(async move {
                        let Ok(mut conn) = h2::server::handshake(tcp).await else {
                            return;
                        };
                        while let Some(Ok((req, mut respond))) = conn.accept().await {
                            if refuse.swap(false, Ordering::SeqCst) {
                                respond.send_reset(h2::Reason::REFUSED_STREAM);
                                continue;
                            }
                            if req.uri().path() == "/health" {
                                hc.fetch_add(1, Ordering::SeqCst);
                            } else {
                                r.fetch_add(1, Ordering::SeqCst);
                            }
                            tokio::spawn(answer(req, respond, n));
                        }
                        cl.fetch_add(1, Ordering::SeqCst);
                    });
                }
            });
            // dropping the runtime closes every connection it served
        });
        GrpcServer {
            addr,
            connections,
            requests,
            health,
            closed,
            stop,
            thread: Some(thread),
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the accept loop so it sees the flag
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn send_all(send: &mut SendStream<Bytes>, mut data: Bytes, end: bool) {
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let cap = match std::future::poll_fn(|cx| send.poll_capacity(cx)).await {
            Some(Ok(c)) => c,
            _ => return,
        };
        let piece = data.split_to(cap.min(data.len()));
        if send.send_data(piece, end && data.is_empty()).is_err() {
            return;
        }
    }
}

fn trailers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
    let mut t = http::HeaderMap::new();
    for (n, v) in pairs {
        t.insert(*n, v.parse().unwrap());
    }
    t
}

async fn answer(req: http::Request<RecvStream>, mut respond: SendResponse<Bytes>, conn: usize) {
    let (parts, mut body) = req.into_parts();
    let mut got = Vec::new();
    while let Some(Ok(c)) = body.data().await {
        let _ = body.flow_control().release_capacity(c.len());
        got.extend_from_slice(&c);
    }
    let header = |n: &str| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_string()
    };
    let query = parts.uri.query().unwrap_or("").to_string();
    let param = |k: &str| -> usize {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let base = http::Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .header("x-seen-te", header("te"))
        .header(
            "x-seen-authority",
            parts.uri.authority().map_or("none", |a| a.as_str()),
        )
        .header("x-seen-request-id", header("x-request-id"))
        .header("x-connection", conn.to_string());
    match parts.uri.path() {
        "/echo.Echo/Unary" => {
            let Ok(mut send) = respond.send_response(base.body(()).unwrap(), false) else {
                return;
            };
            send_all(&mut send, Bytes::from(got), false).await;
            let _ = send.send_trailers(trailers(&[("grpc-status", "0"), ("grpc-message", "ok")]));
        }
        "/echo.Echo/Fail" => {
            let resp = base
                .header("grpc-status", "5")
                .header("grpc-message", "no such thing")
                .body(())
                .unwrap();
            let _ = respond.send_response(resp, true);
        }
        "/echo.Echo/Stream" => {
            let Ok(mut send) = respond.send_response(base.body(()).unwrap(), false) else {
                return;
            };
            let size = param("size");
            for i in 0..param("n") {
                let frame: Vec<u8> = (0..size).map(|j| ((i + j) % 251) as u8).collect();
                send_all(&mut send, Bytes::from(frame), false).await;
            }
            let n = param("n").to_string();
            let _ = send.send_trailers(trailers(&[("grpc-status", "0"), ("x-frames", &n)]));
        }
        "/health" => {
            let resp = http::Response::builder().status(200).body(()).unwrap();
            let _ = respond.send_response(resp, true);
        }
        _ => {
            let resp = http::Response::builder().status(404).body(()).unwrap();
            let _ = respond.send_response(resp, true);
        }
    }
}

/// One length-prefixed gRPC message (uncompressed).
fn grpc_message(payload: &[u8]) -> Bytes {
    let mut m = vec![0u8];
    m.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    m.extend_from_slice(payload);
    Bytes::from(m)
}

/// Routes `/echo.Echo/{m}` to upstream `grpc` (over TLS when it says `tls = true`).
fn cfg(upstream: &str) -> String {
    let scheme = if upstream.contains("tls = true") {
        "https"
    } else {
        "http"
    };
    config(
        &format!(
            r#"
{upstream}

[apis.a.routes."ANY /echo.Echo/{{m}}"]
integration = {{ type = "http_proxy", uri = "{scheme}://grpc/echo.Echo/{{m}}" }}

[stages.prod]
api = "a"
"#
        ),
        None,
    )
}

fn h2c_upstream(addr: SocketAddr) -> String {
    format!(
        r#"
[upstreams.grpc]
targets = ["{addr}"]
protocol = "h2"
"#
    )
}

type Client = H2Client;

/// What came back for one gRPC call.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
    trailers: Option<http::HeaderMap>,
}

async fn call(c: &Client, method: &str, path: &str, body: Bytes) -> Reply {
    let req = http::Request::builder()
        .method(method)
        .uri(format!("http://grpc.test{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let mut c = c.clone().ready().await.unwrap();
    let (resp, mut send) = c.send_request(req, body.is_empty()).unwrap();
    if !body.is_empty() {
        send_all(&mut send, body, true).await;
    }
    let resp = resp.await.unwrap();
    let status = resp.status().as_u16();
    let (parts, mut recv) = resp.into_parts();
    let mut out = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.unwrap();
        let _ = recv.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    let trailers = recv.trailers().await.unwrap();
    Reply {
        status,
        headers: parts.headers,
        body: out,
        trailers,
    }
}

fn text(map: &http::HeaderMap, name: &str) -> String {
    map.get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn grpc_call_through_h2c_keeps_trailers_te_and_status() {
    let up = GrpcServer::start();
    let gw = Gateway::start(&cfg(&h2c_upstream(up.addr)));
    rt().block_on(async {
        let c = h2c(gw.addr).await;
        let msg = grpc_message(b"hello over h2");
        let r = call(&c, "POST", "/echo.Echo/Unary", msg.clone()).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, msg);
        assert_eq!(
            text(&r.headers, "x-seen-te"),
            "trailers",
            "te: trailers kept"
        );
        assert_eq!(text(&r.headers, "content-type"), "application/grpc");
        assert_eq!(text(&r.headers, "x-seen-authority"), "grpc");
        assert_eq!(
            text(&r.headers, "x-seen-request-id"),
            text(&r.headers, "x-request-id"),
            "the gateway's request id reached the upstream"
        );
        let t = r.trailers.expect("trailers forwarded");
        assert_eq!(text(&t, "grpc-status"), "0");
        assert_eq!(text(&t, "grpc-message"), "ok");

        // a gRPC error: trailers-only, the status in the HEADERS frame
        let r = call(&c, "POST", "/echo.Echo/Fail", grpc_message(b"?")).await;
        assert_eq!(r.status, 200);
        assert_eq!(text(&r.headers, "grpc-status"), "5");
        assert_eq!(text(&r.headers, "grpc-message"), "no such thing");
        assert!(r.body.is_empty());

        // a streamed answer: many DATA frames, then trailers
        let r = call(&c, "POST", "/echo.Echo/Stream?n=40&size=1000", Bytes::new()).await;
        assert_eq!(r.body.len(), 40_000);
        assert_eq!(r.body[1000], 1, "frame 1 starts at 1");
        let t = r.trailers.expect("trailers after a streamed body");
        assert_eq!(
            (text(&t, "grpc-status"), text(&t, "x-frames")),
            ("0".into(), "40".into())
        );
    });
    // the access log saw them as any other request
    let m = admin(&gw, "GET", "/metrics").text();
    assert!(
        m.lines()
            .any(|l| l.starts_with("turnpike_upstream_requests_total{")
                && l.contains("upstream=\"grpc\"")
                && l.ends_with(" 3")),
        "{m}"
    );
    assert_eq!(
        up.connections(),
        1,
        "one HTTP/2 connection carried all three"
    );
}

#[test]
fn http1_clients_get_the_trailers_in_the_chunked_body() {
    let up = GrpcServer::start();
    let gw = Gateway::start(&cfg(&h2c_upstream(up.addr)));
    let body = grpc_message(b"from http/1.1");
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "POST /echo.Echo/Unary HTTP/1.1\r\nHost: grpc.test\r\nTE: trailers\r\nContent-Type: application/grpc\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    s.write_all(&req).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(head.contains("x-seen-te: trailers"), "{head}");
    assert!(
        rest.ends_with("0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\n\r\n"),
        "the trailer section ends the body: {rest:?}"
    );
    // a request without TE gets the same trailers (clients that do not want them
    // drop them) and sends no TE upstream
    let r = request(
        gw.addr,
        b"GET /echo.Echo/Unary HTTP/1.1\r\nHost: grpc.test\r\nTE: gzip\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-seen-te"), Some("none"));
}

#[test]
fn many_streams_share_one_upstream_connection_and_large_bodies_flow_both_ways() {
    let up = GrpcServer::start();
    let gw = Gateway::start(&cfg(&h2c_upstream(up.addr)));
    rt().block_on(async {
        let c = h2c(gw.addr).await;
        assert_eq!(
            call(&c, "GET", "/echo.Echo/Unary", Bytes::new())
                .await
                .status,
            200
        );
        // 100 calls at once on one client connection (one gateway worker)
        let mut tasks = Vec::new();
        for i in 0..100u32 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                let msg = grpc_message(format!("call {i}").as_bytes());
                let r = call(&c, "POST", "/echo.Echo/Unary", msg.clone()).await;
                assert_eq!(r.body, msg);
                text(r.trailers.as_ref().unwrap(), "grpc-status")
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), "0");
        }
        // 8 MiB up and back, 16 MiB streamed down: flow control both ways
        let big: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 253) as u8).collect();
        let r = call(&c, "POST", "/echo.Echo/Unary", Bytes::from(big.clone())).await;
        assert_eq!(r.body.len(), big.len());
        assert!(r.body == big, "echoed body differs");
        assert_eq!(text(r.trailers.as_ref().unwrap(), "grpc-status"), "0");
        let r = call(
            &c,
            "POST",
            "/echo.Echo/Stream?n=256&size=65536",
            Bytes::new(),
        )
        .await;
        assert_eq!(r.body.len(), 16 << 20);
        assert_eq!(text(r.trailers.as_ref().unwrap(), "x-frames"), "256");
    });
    assert_eq!(
        up.connections(),
        1,
        "a worker keeps one HTTP/2 connection per target and multiplexes on it"
    );
    assert_eq!(up.requests.load(Ordering::SeqCst), 103);
}

#[test]
fn a_restarted_upstream_gets_a_new_session_and_a_dead_one_a_503() {
    let up = GrpcServer::start();
    let port = up.addr.port();
    let gw = Gateway::start(&cfg(&h2c_upstream(up.addr)));
    let get = |path: &str| {
        request(
            gw.addr,
            format!("GET {path} HTTP/1.1\r\nHost: grpc.test\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap()
    };
    assert_eq!(get("/echo.Echo/Unary").status, 200);
    drop(up);
    assert_eq!(
        get("/echo.Echo/Unary").status,
        503,
        "nothing listens: no target would take a connection (ADR 0006)"
    );
    let up = GrpcServer::start_on(port);
    // the old session is gone; a GET may be retried on a new one
    let mut ok = false;
    for _ in 0..20 {
        if get("/echo.Echo/Unary").status == 200 {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ok, "{}", gw.log());
    assert!(up.connections() >= 1);
}

/// A CA and a certificate for `grpc.test`, as PEM files in `dir`.
fn grpc_pki(dir: &TempDir) -> (PathBuf, PathBuf, PathBuf) {
    pki(dir, &["grpc.test", "localhost"])
}

#[test]
fn h2_over_tls_is_chosen_by_alpn_and_trailers_cross_two_gateways() {
    // edge gateway --h2 over TLS--> inner gateway (TLS listener) --h2c--> server
    let up = GrpcServer::start();
    let inner_dir = TempDir::new("grpc-inner");
    grpc_pki(&inner_dir);
    let inner_cfg = cfg(&h2c_upstream(up.addr)).replace(
        "workers = 2\n",
        "workers = 2\n\n[[gateway.tls]]\nlisten = \"127.0.0.1:0\"\ncerts = [{ hosts = [\"grpc.test\"], cert = \"server.pem\", key = \"server.key\" }]\n",
    );
    let inner_path = inner_dir.write("turnpike.toml", &inner_cfg);
    let inner = Gateway::start_with(inner_dir, inner_path, &["run", "-c"]);
    let tls_addr = inner.tls_addr();

    let edge_dir = TempDir::new("grpc-edge");
    let (ca, _, _) = grpc_pki(&edge_dir);
    // a fresh CA: the inner gateway's certificate is not signed by it
    let untrusted = format!(
        r#"
[upstreams.other]
targets = ["{tls_addr}"]
protocol = "h2"
tls = true
tls_ca = "{}"
tls_server_name = "grpc.test"
"#,
        ca.display()
    );
    let inner_ca = inner.dir.0.join("ca.pem");
    let edge_cfg = cfg(&format!(
        r#"
[upstreams.grpc]
targets = ["{tls_addr}"]
protocol = "h2"
tls = true
tls_ca = "{}"
tls_server_name = "grpc.test"
{untrusted}
"#,
        inner_ca.display()
    ))
    .replace(
        "[stages.prod]",
        "[apis.a.routes.\"ANY /other/{m}\"]\nintegration = { type = \"http_proxy\", uri = \"https://other/echo.Echo/{m}\" }\n\n[stages.prod]",
    );
    let edge_path = edge_dir.write("turnpike.toml", &edge_cfg);
    let edge = Gateway::start_with(edge_dir, edge_path, &["run", "-c"]);
    rt().block_on(async {
        let c = h2c(edge.addr).await;
        let msg = grpc_message(b"through two gateways");
        let r = call(&c, "POST", "/echo.Echo/Unary", msg.clone()).await;
        assert_eq!(r.status, 200, "{}", edge.log());
        assert_eq!(r.body, msg);
        assert_eq!(text(&r.headers, "x-seen-te"), "trailers");
        let t = r.trailers.expect("trailers through both gateways");
        assert_eq!(text(&t, "grpc-status"), "0");
        let r = call(&c, "POST", "/echo.Echo/Fail", grpc_message(b"x")).await;
        assert_eq!(text(&r.headers, "grpc-status"), "5");
        // an upstream whose certificate is not trusted: 502, nothing sent, which a
        // gRPC client sees as UNAVAILABLE
        let r = call(&c, "POST", "/other/Unary", msg.clone()).await;
        assert_eq!(text(&r.headers, "grpc-status"), "14");
        assert_eq!(text(&r.headers, "grpc-message"), "HTTP 502: Bad Gateway");
    });
    assert!(
        edge.wait_log("TLS handshake", Duration::from_secs(2)),
        "{}",
        edge.log()
    );
    // the inner gateway was spoken to in HTTP/2 over TLS
    let m = admin(&inner, "GET", "/metrics").text();
    assert!(
        m.lines().any(
            |l| l.starts_with("turnpike_connections_accepted_total{protocol=\"h2\"} ")
                && !l.ends_with(" 0")
        ),
        "{m}"
    );
}

#[test]
fn a_tls_upstream_that_does_not_speak_h2_is_a_502_with_a_reason() {
    let dir = TempDir::new("grpc-noalpn");
    let (ca, cert, key) = grpc_pki(&dir);
    // the Python upstream speaks HTTP/1.1 over TLS and offers no ALPN
    let up = Upstream::start_tls(&cert, &key);
    let body = cfg(&format!(
        r#"
[upstreams.grpc]
targets = ["127.0.0.1:{}"]
protocol = "h2"
tls = true
tls_ca = "{}"
tls_server_name = "grpc.test"
"#,
        up.addr.port(),
        ca.display()
    ));
    let path = dir.write("turnpike.toml", &body);
    let gw = Gateway::start_with(dir, path, &["run", "-c"]);
    let r = get(gw.addr, "/echo.Echo/Unary");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        gw.wait_log("did not agree to HTTP/2", Duration::from_secs(2)),
        "{}",
        gw.log()
    );
}

#[test]
fn check_rejects_an_unknown_upstream_protocol() {
    let dir = TempDir::new("grpc-check");
    let path = dir.write(
        "turnpike.toml",
        &cfg("[upstreams.grpc]\ntargets = [\"127.0.0.1:9\"]\nprotocol = \"h3\"\n"),
    );
    check_reports(&path, &["unknown upstream protocol `h3`", "\"h2\""]);
}

#[test]
fn health_checks_speak_http2_to_an_h2_upstream() {
    let up = GrpcServer::start();
    let port = up.addr.port();
    let gw = Gateway::start(&cfg(&format!(
        "{}health = {{ path = \"/health\", interval = \"100ms\", timeout = \"500ms\", unhealthy_after = 2, healthy_after = 1 }}\n",
        h2c_upstream(up.addr)
    )));
    // probes arrive as HTTP/2 requests (an HTTP/1.1 probe would not get past the
    // server's preface check, and nothing would be counted)
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while up.health.load(Ordering::SeqCst) < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(up.health.load(Ordering::SeqCst) >= 3, "{}", gw.log());
    assert!(!gw.log().contains("is unhealthy"), "{}", gw.log());
    assert_eq!(
        metric_sum(&gw, "turnpike_upstream_healthy{upstream=\"grpc\""),
        1.0
    );
    drop(up);
    assert!(
        gw.wait_log("is unhealthy", Duration::from_secs(5)),
        "{}",
        gw.log()
    );
    let _up = GrpcServer::start_on(port);
    assert!(
        gw.wait_log("is healthy again", Duration::from_secs(5)),
        "{}",
        gw.log()
    );
}

#[test]
fn gateway_errors_reach_grpc_clients_as_grpc_statuses() {
    let up = GrpcServer::start();
    let gw = Gateway::start(&cfg(&h2c_upstream(up.addr)).replace(
        "[stages.prod]",
        "[apis.a.routes.\"POST /limited.L/{m}\"]\nintegration = { type = \"http_proxy\", uri = \"http://grpc/echo.Echo/{m}\" }\n\n[stages.prod]\nroutes = { \"POST /limited.L/{m}\" = { throttle = { rate = 1, burst = 1 } } }",
    ));
    rt().block_on(async {
        let c = h2c(gw.addr).await;
        // no such route: 404, which gRPC calls UNIMPLEMENTED
        let r = call(&c, "POST", "/nope.Nope/Call", grpc_message(b"x")).await;
        assert_eq!(r.status, 200, "a trailers-only gRPC answer");
        assert_eq!(text(&r.headers, "content-type"), "application/grpc");
        assert_eq!(text(&r.headers, "grpc-status"), "12");
        assert_eq!(text(&r.headers, "grpc-message"), "HTTP 404: Not Found");
        assert!(!text(&r.headers, "x-request-id").is_empty());
        assert!(r.body.is_empty());
        // throttled: 429, UNAVAILABLE, with the Retry-After kept
        let mut throttled = None;
        for _ in 0..5 {
            let r = call(&c, "POST", "/limited.L/Unary", grpc_message(b"x")).await;
            if text(&r.headers, "grpc-status") == "14" {
                throttled = Some(r);
                break;
            }
            assert_eq!(text(r.trailers.as_ref().unwrap(), "grpc-status"), "0");
        }
        let r = throttled.expect("the route's throttle refused a call");
        assert_eq!(
            text(&r.headers, "grpc-message"),
            "HTTP 429: Too Many Requests"
        );
        assert!(!text(&r.headers, "retry-after").is_empty());
        // a non-gRPC request to the same gateway still gets the JSON error
        let req = http::Request::builder()
            .uri("http://grpc.test/nope")
            .body(())
            .unwrap();
        let mut plain = c.clone().ready().await.unwrap();
        let (resp, _) = plain.send_request(req, true).unwrap();
        let resp = resp.await.unwrap();
        assert_eq!(resp.status(), 404);
        assert_eq!(resp.headers()["content-type"], "application/json");
    });
    // the metrics count the gateway's own statuses
    let m = admin(&gw, "GET", "/metrics").text();
    assert!(metric_sum(&gw, "turnpike_throttled_total") >= 1.0, "{m}");
    assert!(
        m.lines().any(|l| l.starts_with("turnpike_requests_total{")
            && l.contains("class=\"4xx\"")
            && !l.ends_with(" 0")),
        "{m}"
    );
}

#[test]
fn many_grpc_calls_share_the_h2_upstream_connection() {
    let up = GrpcServer::start();
    let gw = Gateway::start(&cfg(&h2c_upstream(up.addr)));
    let load = h2load::Load {
        method: "POST",
        path: "/echo.Echo/Unary".into(),
        headers: vec![
            ("content-type", "application/grpc".into()),
            ("te", "trailers".into()),
        ],
        body: Bytes::from_static(b"\0\0\0\0\x05hello"),
        ..h2load::Load::get("", 4, 32, 3000)
    };
    let t = h2load::run(gw.addr, &load);
    assert_eq!((t.count(200), t.total()), (3000, 3000), "{t:?}");
    assert_eq!(up.requests.load(Ordering::SeqCst), 3000);
    assert!(
        up.connections() <= 2,
        "one upstream connection per worker, not per client stream: {}",
        up.connections()
    );
}

#[test]
fn a_refused_stream_is_sent_again_whatever_the_method() {
    // gRPC calls are POSTs, never retried on doubt; a stream the upstream refused
    // (REFUSED_STREAM: certainly not processed) is sent again on a new connection
    let up = GrpcServer::start_refusing_first();
    let gw = Gateway::start(&cfg(&h2c_upstream(up.addr)));
    rt().block_on(async {
        let c = h2c(gw.addr).await;
        let msg = grpc_message(b"once");
        let r = call(&c, "POST", "/echo.Echo/Unary", msg.clone()).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, msg);
        assert_eq!(text(r.trailers.as_ref().unwrap(), "grpc-status"), "0");
    });
    assert_eq!(up.requests.load(Ordering::SeqCst), 1, "processed once");
    assert_eq!(up.connections(), 2, "sent again on a new connection");
}

#[test]
fn an_idle_upstream_session_is_closed_after_idle_timeout() {
    let up = GrpcServer::start();
    let gw = Gateway::start(&cfg(&format!(
        "{}idle_timeout = \"1s\"\n",
        h2c_upstream(up.addr)
    )));
    let get = || {
        request(
            gw.addr,
            b"GET /echo.Echo/Unary HTTP/1.1\r\nHost: grpc.test\r\nConnection: close\r\n\r\n",
        )
        .unwrap()
        .status
    };
    assert_eq!(get(), 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while up.closed.load(Ordering::SeqCst) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        up.closed.load(Ordering::SeqCst),
        1,
        "the gateway closed the idle HTTP/2 connection"
    );
    assert_eq!(get(), 200, "and makes a new one when needed");
    assert_eq!(up.connections(), 2);
}
