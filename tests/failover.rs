//! Upstreams under failure, end to end with real upstream processes: balancing,
//! targets killed and restarted under load, everything down, slow targets, retries
//! only where safe, health checks, circuit breaking, connection reuse limits.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// A loopback port nothing listens on.
fn dead_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

fn port_of(r: &Response) -> u16 {
    r.json_field("port")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {} {}", r.status, r.text()))
}

fn send(addr: SocketAddr, method: &str, path: &str, body: &str) -> Response {
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    request(addr, raw.as_bytes()).expect("a response")
}

fn upstream_cfg(targets: &str, extra: &str, route_extra: &str) -> String {
    config(
        &format!(
            r#"
[upstreams.u]
targets = [{targets}]
{extra}

[apis.a.routes."ANY /{{p+}}"]
integration = {{ type = "http_proxy", uri = "http://u/{{p}}" }}
{route_extra}

[stages.prod]
api = "a"
"#
        ),
        None,
    )
}

#[test]
fn weighted_targets_split_by_weight() {
    let a = Upstream::start();
    let b = Upstream::start();
    let gw = Gateway::start(&upstream_cfg(
        &format!(r#""{}", {{ addr = "{}", weight = 3 }}"#, a.addr, b.addr),
        "",
        "",
    ));
    let mut c = Client::connect(gw.addr);
    let mut on_a = 0;
    for _ in 0..400 {
        if port_of(&c.get("/x")) == a.addr.port() {
            on_a += 1;
        }
    }
    // 1 : 3 per worker, whichever worker the connection landed on
    assert!(
        (95..=105).contains(&on_a),
        "{on_a} of 400 on the weight-1 target"
    );
}

#[test]
fn a_target_killed_under_load_fails_fast_and_comes_back() {
    let failed = kill_and_restart_under_load(1);
    // Only a request whose response head had arrived when its target died cannot be
    // retried (one per client at most); the rest go to the other target.
    assert!(failed <= 4, "{failed} requests failed despite retries");
}

#[test]
fn without_retries_a_killed_target_costs_only_fast_errors() {
    // (the failed requests are checked fast and 502/503 inside)
    kill_and_restart_under_load(0);
}

/// Four clients on keep-alive connections for 3.7 s; one of two targets is killed
/// after 0.7 s and restarted 1.5 s later. Returns how many requests were not 200.
fn kill_and_restart_under_load(retries: u32) -> usize {
    let a = Upstream::start();
    let b = Upstream::start();
    let b_port = b.addr.port();
    let gw = Gateway::start(&upstream_cfg(
        &format!(r#""{}", "{}""#, a.addr, b.addr),
        &format!(
            r#"health = {{ path = "/health", interval = "200ms", unhealthy_after = 2, healthy_after = 1 }}
connect_timeout = "500ms"
retries = {retries}
outlier = {{ consecutive = 3, base_ejection = "500ms" }}"#
        ),
        "",
    ));
    let addr = gw.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let results = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, results) = (stop.clone(), results.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                let mut c = Client::connect(addr);
                while !stop.load(Ordering::Relaxed) && n < 20_000 {
                    let t0 = Instant::now();
                    c.send(b"GET /load HTTP/1.1\r\nHost: t\r\n\r\n");
                    // status 0: the connection closed without a response
                    let (status, port) = match c.read_response(false) {
                        Some(r) => (
                            r.status,
                            r.json_field("port").and_then(|p| p.parse::<u16>().ok()),
                        ),
                        None => {
                            c = Client::connect(addr);
                            (0, None)
                        }
                    };
                    results
                        .lock()
                        .unwrap()
                        .push((Instant::now(), status, t0.elapsed(), port));
                    n += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    let killed_at = Instant::now();
    drop(b);
    std::thread::sleep(Duration::from_millis(1500));
    let b = Upstream::start_on(b_port);
    let restarted_at = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let results = results.lock().unwrap();
    let slowest = results.iter().map(|r| r.2).max().unwrap();
    let failed: Vec<_> = results.iter().filter(|r| r.1 != 200).collect();
    assert!(
        failed.iter().all(|r| r.1 == 502 || r.1 == 503),
        "only fast 502/503s: {:?}\n{}",
        failed.iter().map(|r| r.1).collect::<Vec<_>>(),
        gw.log()
    );
    assert!(
        slowest < Duration::from_millis(1000),
        "no hung request: slowest {slowest:?}"
    );
    let back = results
        .iter()
        .filter(|r| r.0 > restarted_at && r.3 == Some(b_port))
        .count();
    assert!(back > 0, "the restarted target serves again");
    let during = results
        .iter()
        .filter(|r| r.0 > killed_at && r.0 < restarted_at)
        .count();
    println!(
        "retries = {retries}: {} requests, {} not 200 ({} requests during the 1.5 s outage), slowest {slowest:?}, {back} on the restarted target",
        results.len(),
        failed.len(),
        during
    );
    assert!(
        gw.wait_log("is unhealthy", Duration::from_secs(1)),
        "{}",
        gw.log()
    );
    assert!(
        gw.wait_log("is healthy again", Duration::from_secs(1)),
        "{}",
        gw.log()
    );
    drop(b);
    failed.len()
}

#[test]
fn all_targets_down_answers_503_at_once() {
    let gw = Gateway::start(&upstream_cfg(
        &format!(r#""{}", "{}""#, dead_port(), dead_port()),
        r#"connect_timeout = "500ms"
retries = 1
outlier = { consecutive = 2, base_ejection = "30s" }"#,
        "",
    ));
    for i in 0..6 {
        let t0 = Instant::now();
        let r = send(gw.addr, "GET", "/x", "");
        assert_eq!(r.status, 503, "request {i}: {}", r.text());
        assert_eq!(
            r.json_field("message").as_deref(),
            Some("Service Unavailable: no healthy upstream target")
        );
        assert!(
            t0.elapsed() < Duration::from_millis(500),
            "{:?}",
            t0.elapsed()
        );
        println!(
            "all targets down: request {i} answered 503 in {:?}",
            t0.elapsed()
        );
    }
    assert!(metric_sum(&gw, "turnpike_upstream_connect_failures_total") >= 2.0);
    assert!(
        gw.wait_log("ejected for 30s", Duration::from_secs(1)),
        "{}",
        gw.log()
    );
}

#[test]
fn a_slow_target_times_out_at_the_route_timeout() {
    let up = Upstream::start();
    let gw = Gateway::start(&upstream_cfg(
        &format!(r#""{}""#, up.addr),
        "",
        r#"timeout = "1s""#,
    ));
    for _ in 0..3 {
        let t0 = Instant::now();
        let r = send(gw.addr, "GET", "/slow/3000", "");
        let took = t0.elapsed();
        assert_eq!(r.status, 504);
        println!("slow target: 504 after {took:?} (route timeout 1s)");
        assert!(
            took >= Duration::from_millis(900) && took <= Duration::from_millis(1100),
            "504 after {took:?}, expected 1s ± 10%"
        );
    }
}

#[test]
fn retries_only_where_safe() {
    let live = Upstream::start();
    let gw = Gateway::start(&upstream_cfg(
        &format!(r#""{}", "{}""#, dead_port(), live.addr),
        r#"retries = 1
retry_budget = 1.0
outlier = { consecutive = 0 }"#,
        "",
    ));
    // idempotent and buffered: a refused connect is retried on the other target
    for method in ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"] {
        for _ in 0..6 {
            let r = send(
                gw.addr,
                method,
                "/x",
                if method == "PUT" { "body" } else { "" },
            );
            assert_eq!(r.status, 200, "{method}");
        }
    }
    // not idempotent, but a refused connect sent nothing: retried all the same
    for _ in 0..12 {
        assert_eq!(send(gw.addr, "POST", "/x", "b").status, 200);
    }
    assert!(metric_sum(&gw, "turnpike_upstream_retries_total") >= 10.0);

    // a reset before any response byte is retried for idempotent requests (and
    // fails on both targets)...
    let before = metric_sum(&gw, "turnpike_upstream_retries_total");
    assert_eq!(send(gw.addr, "GET", "/reset", "").status, 502);
    let after = metric_sum(&gw, "turnpike_upstream_retries_total");
    assert!(after > before);
    // ...but a POST that reached the upstream may have been processed: never resent
    for _ in 0..4 {
        assert_eq!(send(gw.addr, "POST", "/reset", "b").status, 502);
    }
    let posted = metric_sum(&gw, "turnpike_upstream_retries_total");
    // (half of them first met the dead target, refused: those are retried once)
    assert!(posted <= after + 4.0, "{after} -> {posted}");
}

#[test]
fn the_retry_budget_bounds_extra_load() {
    let gw = Gateway::start(&upstream_cfg(
        &format!(r#""{}", "{}", "{}""#, dead_port(), dead_port(), dead_port()),
        r#"retries = 2
retry_budget = 0.1
outlier = { consecutive = 0 }"#,
        "",
    ));
    let mut c = Client::connect(gw.addr);
    let t0 = Instant::now();
    for _ in 0..100 {
        let r = c.get("/x");
        assert!(r.status == 502 || r.status == 503);
    }
    let secs = t0.elapsed().as_secs_f64();
    let attempts = metric_sum(&gw, "turnpike_upstream_requests_total");
    // 100 requests; 10% of them, plus the floor: 10 retries to start with and 10 a
    // second after, on the one worker serving this connection. Without a budget:
    // 300 attempts (two retries each).
    let bound = 100.0 + 10.0 + 10.0 + 10.0 * secs + 1.0;
    assert!(
        attempts <= bound,
        "{attempts} attempts for 100 requests in {secs:.2}s (bound {bound:.0})"
    );
    assert!(attempts < 200.0, "{attempts}");
}

/// A gateway whose health checks ask for `/status/500` (the Python upstream fails
/// it), once a target has been marked unhealthy.
fn gateway_once_unhealthy(targets: &str) -> Gateway {
    let gw = Gateway::start(&upstream_cfg(
        targets,
        r#"health = { path = "/status/500", interval = "100ms", unhealthy_after = 2 }"#,
        "",
    ));
    assert!(
        gw.wait_log("is unhealthy", Duration::from_secs(3)),
        "{}",
        gw.log()
    );
    gw
}

#[test]
fn failing_health_checks_take_a_target_out() {
    // the Python upstream answers the health path with 500, the recorder with 200
    let sick = Upstream::start();
    let well = common::recorder::Recorder::start();
    let gw = gateway_once_unhealthy(&format!(r#""{}", "{}""#, sick.addr, well.addr));
    let before = upstream_count(sick.addr);
    for _ in 0..10 {
        assert_eq!(send(gw.addr, "GET", "/x", "").status, 200);
    }
    // (the count request itself is one)
    assert_eq!(upstream_count(sick.addr), before + 1);
    assert_eq!(
        metric_sum(&gw, "turnpike_upstream_healthy{upstream=\"u\""),
        1.0
    );
}

/// Panic mode (Envoy's): when no target is healthy, health checks say nothing useful
/// about which to use, and refusing everything would turn a broken health endpoint
/// into an outage: requests are spread over all targets.
#[test]
fn with_every_target_unhealthy_requests_still_go_to_them() {
    let up = Upstream::start();
    let gw = gateway_once_unhealthy(&format!(r#""{}""#, up.addr));
    for _ in 0..5 {
        assert_eq!(send(gw.addr, "GET", "/x", "").status, 200);
    }
    assert_eq!(
        metric_sum(&gw, "turnpike_upstream_healthy{upstream=\"u\""),
        0.0
    );
}

#[test]
fn over_the_connection_limit_is_503_at_once() {
    let up = Upstream::start();
    let gw = Gateway::start(&upstream_cfg(
        &format!(r#""{}""#, up.addr),
        "max_connections = 2\nmax_pending = 0",
        "",
    ));
    let addr = gw.addr;
    let threads: Vec<_> = (0..10)
        .map(|_| {
            std::thread::spawn(move || {
                let t0 = Instant::now();
                let r = send(addr, "GET", "/slow/600", "");
                (r.status, t0.elapsed(), r.json_field("message"))
            })
        })
        .collect();
    let out: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let ok = out.iter().filter(|r| r.0 == 200).count();
    println!(
        "max_connections 2: {ok} of 10 served, the rest 503 in at most {:?}",
        out.iter().filter(|r| r.0 == 503).map(|r| r.1).max()
    );
    let refused: Vec<_> = out.iter().filter(|r| r.0 == 503).collect();
    assert!((1..=4).contains(&ok), "{out:?}");
    assert!(refused.len() >= 6, "{out:?}");
    for r in refused {
        assert!(r.1 < Duration::from_millis(500), "refused at once: {r:?}");
        assert_eq!(
            r.2.as_deref(),
            Some("Service Unavailable: upstream at its connection limit")
        );
    }
}

#[test]
fn connections_are_replaced_after_max_requests() {
    let up = Upstream::start();
    let gw = Gateway::start(&format!(
        r#"
[gateway]
listen = ["127.0.0.1:0"]
admin = "127.0.0.1:0"
workers = 1

[upstreams.u]
targets = ["{}"]
max_requests_per_connection = 2

[apis.a.routes."GET /x"]
integration = {{ type = "http_proxy", uri = "http://u/x" }}

[stages.prod]
api = "a"
"#,
        up.addr
    ));
    let mut c = Client::connect(gw.addr);
    let conns: std::collections::HashSet<String> = (0..6)
        .map(|_| c.get("/x").json_field("peer_port").unwrap())
        .collect();
    assert_eq!(
        conns.len(),
        3,
        "2 requests per upstream connection: {conns:?}"
    );
}

#[test]
fn a_canary_takes_its_share_of_requests() {
    let stable = Upstream::start();
    let canary = Upstream::start();
    let dir = TempDir::new("canary");
    let log = dir.0.join("access.log");
    let cfg = config(
        &format!(
            r#"
[access_log]
path = "{}"
format = '$context.canary'

[apis.a.routes."GET /x"]
integration = {{ type = "http_proxy", uri = "http://${{stageVariables.backend}}/x" }}

[stages.prod]
api = "a"
variables = {{ backend = "{}" }}
canary = {{ percent = 25.0, variables = {{ backend = "{}" }} }}
"#,
            log.display(),
            stable.addr,
            canary.addr
        ),
        None,
    );
    let path = dir.write("turnpike.toml", &cfg);
    let gw = Gateway::start_with(dir, path, &["run", "-c"]);
    let addr = gw.addr;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                (0..2_500)
                    .map(|_| port_of(&c.get("/x")))
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let ports: Vec<u16> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let on_canary = ports.iter().filter(|&&p| p == canary.addr.port()).count();
    assert_eq!(ports.len(), 10_000);
    // 25% ± 2 percentage points
    println!("canary 25%: {on_canary} of 10,000");
    assert!(
        (2_300..=2_700).contains(&on_canary),
        "{on_canary} of 10,000 on the canary"
    );
    assert_eq!(
        metric_sum(&gw, "turnpike_canary_requests_total{stage=\"prod\""),
        on_canary as f64
    );
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= 10_000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(text.lines().filter(|l| *l == "true").count(), on_canary);
    assert_eq!(
        text.lines().filter(|l| *l == "false").count(),
        10_000 - on_canary
    );
}

#[test]
fn a_response_cut_short_before_anything_was_sent_is_a_502() {
    let up = Upstream::start();
    let gw = Gateway::start(&upstream_cfg(&format!(r#""{}""#, up.addr), "", ""));
    let mut c = Client::connect(gw.addr);
    for _ in 0..3 {
        let r = c.get("/truncated");
        assert_eq!(r.status, 502, "{}", r.text());
        assert_eq!(r.json_field("message").as_deref(), Some("Bad Gateway"));
        // and the client's connection carries on
        assert_eq!(c.get("/x").status, 200);
    }
}

#[test]
fn an_idle_connection_after_a_reload_still_reaches_its_upstream() {
    let up = Upstream::start();
    let body = |n: u32| {
        upstream_cfg(&format!(r#""{}""#, up.addr), "", "")
            .replace("[stages.prod]", &format!("# version {n}\n[stages.prod]"))
    };
    let dir = TempDir::new("idle-reload");
    let path = dir.write("turnpike.toml", &body(1));
    let gw = Gateway::start_with(dir, path.clone(), &["run", "-c"]);
    let mut c = Client::connect(gw.addr);
    assert_eq!(c.get("/x").status, 200);
    // the connection sits idle across two reloads while new connections (on both
    // workers) use the new plan, then asks again
    for n in 2..4 {
        std::fs::write(&path, body(n)).unwrap();
        assert_eq!(admin(&gw, "POST", "/reload").status, 200);
    }
    for _ in 0..8 {
        assert_eq!(get(gw.addr, "/x").status, 200);
    }
    for _ in 0..4 {
        assert_eq!(c.get("/x").status, 200);
    }
}
