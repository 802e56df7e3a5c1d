//! Bursts to a small upstream and pools with a dead target, from a cold start: every
//! request must come back 2xx. The small upstream is Python's own `http.server`
//! (HTTP/1.0, a thread per connection, a listen backlog of 5), with the gateway's
//! default upstream settings.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// `python3 -m http.server` on an ephemeral port, serving a 100-byte file.
struct PyServer {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl PyServer {
    fn start() -> PyServer {
        let dir = TempDir::new("pyserver");
        dir.write("100b", &"a".repeat(100));
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "-d"])
            .arg(&dir.0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let port: u16 = line
            .split(" port ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        PyServer {
            child,
            addr: ([127, 0, 0, 1], port).into(),
            _dir: dir,
        }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gateway_to(targets: &str) -> Gateway {
    Gateway::start(&config(
        &format!(
            r#"
[upstreams.small]
targets = [{targets}]

[apis.a.routes."ANY /{{path+}}"]
integration = {{ type = "http_proxy", uri = "http://small/{{path}}" }}

[stages.s]
api = "a"
"#
        ),
        None,
    ))
}

/// 8 HTTP/2 connections x 32 streams, 4,000 requests, at a server whose listen queue
/// holds 6: the gateway must neither overflow it into a wall of connect timeouts nor
/// eject its only target.
#[test]
fn a_burst_of_h2_streams_to_a_tiny_backlog_upstream_is_served_whole() {
    let py = PyServer::start();
    let gw = gateway_to(&format!(r#""{}""#, py.addr));
    let t = h2load::run(gw.addr, &h2load::Load::get("/100b", 8, 32, 4000));
    assert_eq!(
        (t.count(200), t.total()),
        (4000, 4000),
        "{t:?}\n{}",
        gw.log()
    );
    assert!(!gw.log().contains("ejected"), "{}", gw.log());
}

/// The same with 64 HTTP/1.1 keep-alive clients.
#[test]
fn a_burst_of_h1_clients_to_a_tiny_backlog_upstream_is_served_whole() {
    let py = PyServer::start();
    let gw = gateway_to(&format!(r#""{}""#, py.addr));
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let left = Arc::new(AtomicUsize::new(2000));
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let (statuses, left, addr) = (statuses.clone(), left.clone(), gw.addr);
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                while left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    c.send(b"GET /100b HTTP/1.1\r\nHost: t\r\n\r\n");
                    let s = c.read_response(false).map_or(0, |r| r.status);
                    statuses.lock().unwrap().push(s);
                    if s == 0 {
                        c = Client::connect(addr);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = statuses.lock().unwrap();
    let ok = s.iter().filter(|&&s| s == 200).count();
    assert_eq!(
        (ok, s.len()),
        (2000, 2000),
        "not 200: {:?}",
        s.iter().filter(|&&s| s != 200).collect::<Vec<_>>()
    );
}

/// A cold gateway whose pool has a dead target: the first requests meet it before
/// any ejection or health check could know, with a fresh retry budget. Every one of
/// them is retried on the live target (POSTs too: a refused connect sent nothing).
#[test]
fn a_pool_with_a_dead_target_serves_every_request_from_a_cold_start() {
    let live = Upstream::start();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    for round in 0..3 {
        let gw = Gateway::start(&config(
            &format!(
                r#"
[upstreams.pair]
targets = ["{dead_addr}", "{}"]

[apis.a.routes."ANY /{{path+}}"]
integration = {{ type = "http_proxy", uri = "http://pair/{{path}}" }}

[stages.s]
api = "a"
"#,
                live.addr
            ),
            None,
        ));
        let bad = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..32)
            .map(|i| {
                let (bad, addr) = (bad.clone(), gw.addr);
                std::thread::spawn(move || {
                    let mut c = Client::connect(addr);
                    for j in 0..8 {
                        let raw = if (i + j) % 2 == 0 {
                            "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n".to_string()
                        } else {
                            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody"
                                .to_string()
                        };
                        c.send(raw.as_bytes());
                        match c.read_response(false) {
                            Some(r) if r.status == 200 => {}
                            Some(r) => {
                                bad.lock()
                                    .unwrap()
                                    .push(format!("{} {}", r.status, r.text()))
                            }
                            None => {
                                bad.lock().unwrap().push("no answer".into());
                                c = Client::connect(addr);
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let bad = bad.lock().unwrap();
        assert!(bad.is_empty(), "round {round}: {bad:?}\n{}", gw.log());
        assert!(metric_sum(&gw, "turnpike_upstream_retries_total") >= 1.0);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A target whose accept queue is full (its SYNs go unanswered): one connect at a
/// time per worker is tried, one more request may wait for it, and the queue's
/// bound and timeout answer the rest with 503s instead of piling up sockets.
#[test]
fn the_connection_queue_is_bounded_and_timed() {
    use socket2::{Domain, Socket, Type};
    let full = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    full.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    full.listen(0).unwrap();
    let addr = full.local_addr().unwrap().as_socket().unwrap();
    let full_addr = addr;
    // fill its accept queue (never accepted): later SYNs are dropped
    let _held: Vec<_> = (0..2)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        })
        .collect();
    let gw = Gateway::start(
        &config(
            &format!(
                r#"
[upstreams.full]
targets = ["{addr}"]
connect_timeout = "3s"
retries = 0
max_connecting = 1
max_queued = 1
queue_timeout = "1500ms"

[apis.a.routes."GET /x"]
integration = {{ type = "http_proxy", uri = "http://full/x" }}

[stages.s]
api = "a"
"#
            ),
            None,
        )
        .replace("workers = 2", "workers = 1"),
    );
    let addr = gw.addr;
    let first = std::thread::spawn(move || get(addr, "/x"));
    std::thread::sleep(Duration::from_millis(100));
    let second = std::thread::spawn(move || {
        let t = std::time::Instant::now();
        (get(addr, "/x"), t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    // the connect slot and the one queue place are taken: refused at once
    let t = std::time::Instant::now();
    let third = get(addr, "/x");
    assert_eq!(third.status, 503);
    assert_eq!(
        third.json_field("message").as_deref(),
        Some("Service Unavailable: upstream queue full")
    );
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "{:?}",
        t.elapsed()
    );
    // the waiting request shows in the workers' once-a-second snapshot
    std::thread::sleep(Duration::from_millis(1100));
    let queued =
        format!(r#"turnpike_upstream_queued_requests{{upstream="full",target="{full_addr}"}}"#);
    assert_eq!(
        metric_sum(&gw, &queued),
        1.0,
        "{}",
        admin(&gw, "GET", "/metrics").text()
    );
    let (second, waited) = second.join().unwrap();
    assert_eq!(second.status, 503);
    assert_eq!(
        second.json_field("message").as_deref(),
        Some("Service Unavailable: no upstream connection within the queue timeout")
    );
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_millis(2500),
        "{waited:?}"
    );
    // the connect itself gives up at its timeout: no target took the connection
    let first = first.join().unwrap();
    assert_eq!(first.status, 503, "{}", first.text());
    assert_eq!(
        first.json_field("message").as_deref(),
        Some("Service Unavailable: no healthy upstream target")
    );
}
