//! Reload (SIGHUP, admin), drain (SIGTERM), the admin listener, and the bare quickstart.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

fn routes(body: &str) -> String {
    format!(
        r#"
[apis.a.routes."GET /v"]
integration = {{ type = "mock", status = 200, body = "{body}" }}

[apis.a.routes."GET /up/{{rest+}}"]
integration = {{ type = "http_proxy", uri = "http://{{UP}}/{{rest}}" }}

[apis.a.routes."GET /slow/{{ms}}"]
integration = {{ type = "http_proxy", uri = "http://{{UP}}/slow/{{ms}}" }}
timeout = "10s"

[stages.s]
api = "a"
"#
    )
}

#[test]
fn sighup_and_admin_reload_swap_the_plan() {
    let up = Upstream::start();
    let gw = Gateway::start(&config(&routes("one"), Some(up.addr)));
    assert_eq!(get(gw.addr, "/v").text(), "one");
    let before = admin(&gw, "GET", "/config").json_field("hash").unwrap();

    std::fs::write(&gw.config, config(&routes("two"), Some(up.addr))).unwrap();
    gw.signal("HUP");
    assert!(
        gw.wait_log("reload: plan", Duration::from_secs(5)),
        "{}",
        gw.log()
    );
    assert_eq!(get(gw.addr, "/v").text(), "two");

    std::fs::write(&gw.config, config(&routes("three"), Some(up.addr))).unwrap();
    let r = admin(&gw, "POST", "/reload");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(gw.addr, "/v").text(), "three");
    let after = admin(&gw, "GET", "/config");
    assert_ne!(after.json_field("hash").unwrap(), before);
    assert_eq!(after.json_field("reloads_ok").as_deref(), Some("2"));
}

#[test]
fn a_failed_reload_keeps_the_old_plan_and_says_why() {
    let up = Upstream::start();
    let gw = Gateway::start(&config(&routes("good"), Some(up.addr)));
    std::fs::write(
        &gw.config,
        config(
            &routes("bad").replace("timeout = \"10s\"", "timeout = \"99s\"\nbogus = 1"),
            Some(up.addr),
        ),
    )
    .unwrap();
    let r = admin(&gw, "POST", "/reload");
    assert_eq!(r.status, 400);
    let t = r.text();
    assert!(
        t.contains("reload failed") && t.contains("turnpike.toml:") && t.contains("bogus"),
        "{t}"
    );
    gw.signal("HUP");
    // the admin reload logged it once already; wait for the SIGHUP one
    assert!(gw.wait_log_times(
        "reload failed, the previous plan keeps serving",
        2,
        Duration::from_secs(5)
    ));
    assert_eq!(get(gw.addr, "/v").text(), "good");
    assert_eq!(
        admin(&gw, "GET", "/config")
            .json_field("reloads_failed")
            .as_deref(),
        Some("2")
    );
}

#[test]
fn twenty_reloads_under_load_fail_no_request() {
    let up = Upstream::start();
    let gw = Gateway::start(&config(&routes("v0"), Some(up.addr)));
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for i in 0..8 {
        let (stop, ok, failed, addr) = (stop.clone(), ok.clone(), failed.clone(), gw.addr);
        clients.push(std::thread::spawn(move || {
            let mut c = Client::connect(addr);
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let path = if i % 2 == 0 { "/v" } else { "/up/echo" };
                c.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
                match c.read_response(false) {
                    Some(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        c = Client::connect(addr);
                        0
                    }
                };
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(200));
    for n in 1..=20 {
        std::fs::write(&gw.config, config(&routes(&format!("v{n}")), Some(up.addr))).unwrap();
        if n % 2 == 0 {
            gw.signal("HUP");
        } else {
            assert_eq!(admin(&gw, "POST", "/reload").status, 200);
        }
        std::thread::sleep(Duration::from_millis(60));
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "ok={}",
        ok.load(Ordering::Relaxed)
    );
    assert!(ok.load(Ordering::Relaxed) > 100);
    assert_eq!(get(gw.addr, "/v").text(), "v20");
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits_0() {
    let up = Upstream::start();
    let mut gw = Gateway::start(&config(&routes("x"), Some(up.addr)));
    // an idle keep-alive connection is closed promptly by the drain
    let mut idle = Client::connect(gw.addr);
    assert_eq!(idle.get("/v").status, 200);

    let addr = gw.addr;
    let inflight = std::thread::spawn(move || get(addr, "/slow/1500"));
    // SIGTERM only once the slow request is at the upstream (its counter moved),
    // however loaded the machine is.
    // `/count` answers how many requests came before it, its own earlier polls included.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut polls = 0;
    loop {
        let seen: usize = get(up.addr, "/count")
            .json_field("count")
            .unwrap()
            .parse()
            .unwrap();
        if seen > polls {
            break;
        }
        polls += 1;
        assert!(
            Instant::now() < deadline,
            "the slow request never reached the upstream"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    gw.signal("TERM");
    assert!(gw.wait_log("draining", Duration::from_secs(2)));
    assert_eq!(admin(&gw, "GET", "/ready").status, 503);
    assert!(
        idle.is_closed(Duration::from_secs(3)),
        "idle connection kept open while draining"
    );

    let r = inflight.join().unwrap();
    assert_eq!(r.status, 200, "in-flight request lost during drain");
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(
        gw.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        gw.log()
    );
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn admin_endpoints() {
    let gw = Gateway::start(&config(&routes("x"), Some("127.0.0.1:9".parse().unwrap())));
    assert_eq!(admin(&gw, "GET", "/healthz").text(), r#"{"status":"ok"}"#);
    assert_eq!(admin(&gw, "GET", "/ready").status, 200);
    let c = admin(&gw, "GET", "/config");
    assert_eq!(c.json_field("hash").unwrap().len(), 16);
    assert!(c.text().contains("turnpike.toml"));
    assert_eq!(admin(&gw, "GET", "/reload").status, 405);
    assert_eq!(admin(&gw, "GET", "/nope").status, 404);
}

/// The README's first command: a bare `turnpike run` serves the built-in quickstart.
#[test]
fn bare_run_serves_the_quickstart() {
    let dir = TempDir::new("quick");
    let path = dir.0.join("unused");
    let gw = Gateway::start_with(dir, path, &["run"]);
    assert_eq!(gw.addr.to_string(), "127.0.0.1:8080");
    assert_eq!(get(gw.addr, "/ping").text(), r#"{"pong":true}"#);
    assert_eq!(get(gw.addr, "/health").text(), r#"{"status":"ok"}"#);
    let docs = get(gw.addr, "/docs/getting-started");
    assert_eq!(docs.status, 200, "{}", docs.text());
    assert_eq!(docs.text(), "documentation page\n");
}

/// A request keeps the plan it started with: a reload that removes its route
/// while it is in flight does not break it.
#[test]
fn in_flight_requests_keep_their_plan_across_a_reload() {
    let up = Upstream::start();
    let gw = Gateway::start(&config(&routes("before"), Some(up.addr)));
    let addr = gw.addr;
    let inflight = std::thread::spawn(move || get(addr, "/slow/800"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut polls = 0;
    while get(up.addr, "/count")
        .json_field("count")
        .unwrap()
        .parse::<usize>()
        .unwrap()
        <= polls
    {
        polls += 1;
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    let without_slow = routes("after").replace(
        "[apis.a.routes.\"GET /slow/{ms}\"]",
        "[apis.a.routes.\"GET /gone/{ms}\"]",
    );
    std::fs::write(&gw.config, config(&without_slow, Some(up.addr))).unwrap();
    assert_eq!(admin(&gw, "POST", "/reload").status, 200);
    assert_eq!(get(gw.addr, "/v").text(), "after");
    assert_eq!(get(gw.addr, "/slow/1").status, 404);
    assert_eq!(inflight.join().unwrap().status, 200);
    // the log says what the reload changed
    assert!(
        gw.log()
            .contains(r#"added ["s:GET /gone/{ms}"]; removed ["s:GET /slow/{ms}"]"#),
        "{}",
        gw.log()
    );
}

#[test]
fn an_admin_token_is_required_when_configured() {
    let cfg = config(&routes("x"), Some("127.0.0.1:9".parse().unwrap())).replace(
        "workers = 2",
        "workers = 2\nadmin_token = \"s3cret-admin-token-0123\"",
    );
    let gw = Gateway::start(&cfg);
    let a = gw.admin.unwrap();
    let call = |auth: &str| {
        request(
            a,
            format!("GET /config HTTP/1.1\r\nHost: admin\r\n{auth}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap()
    };
    assert_eq!(call("").status, 401);
    assert_eq!(
        call("Authorization: Bearer wrong-token-wrong-token\r\n").status,
        401
    );
    assert_eq!(
        call("Authorization: s3cret-admin-token-0123\r\n").status,
        401
    );
    assert_eq!(
        call("Authorization: Bearer s3cret-admin-token-0123\r\n").status,
        200
    );
}

/// A free loopback port (bound once and released) for tests that need a fixed port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// systemd's `Restart=always` lands right after a SIGKILL, while the kernel is still
/// tearing down the dead process's io_uring and its listening sockets: the new
/// process waits for them (bounded) instead of refusing to start.
#[test]
fn a_restart_right_after_kill_9_serves_within_two_seconds() {
    let port = free_port();
    let cfg = config(&routes("v1"), Some("127.0.0.1:9".parse().unwrap()))
        .replace("127.0.0.1:0\"]", &format!("127.0.0.1:{port}\"]"));
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    for round in 0..3 {
        let mut first = Gateway::start(&cfg);
        assert_eq!(get(addr, "/v").text(), "v1");
        // load on both workers, so the rings have work in flight when it dies
        for _ in 0..50 {
            assert_eq!(get(addr, "/v").status, 200);
        }
        first.signal("KILL");
        let _ = first.wait_exit(Duration::from_secs(5));
        let t = Instant::now();
        let second = Gateway::start(&cfg);
        let waited = t.elapsed();
        assert_eq!(get(second.addr, "/v").text(), "v1", "round {round}");
        assert!(
            waited < Duration::from_millis(2_900),
            "round {round}: took {waited:?}:\n{}",
            second.log()
        );
    }
}

/// A live turnpike (or anything else) on the port is still refused: SO_REUSEPORT
/// must not silently split the traffic between two instances.
#[test]
fn a_live_second_instance_on_the_same_port_is_refused() {
    let port = free_port();
    let cfg = config(&routes("v1"), Some("127.0.0.1:9".parse().unwrap()))
        .replace("127.0.0.1:0\"]", &format!("127.0.0.1:{port}\"]"));
    let live = Gateway::start(&cfg);
    let dir = TempDir::new("dup");
    let path = dir.write("t.toml", &cfg);
    let t = Instant::now();
    let out = std::process::Command::new(BIN)
        .args(["run", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("already in use by process {}", live.pid())),
        "{err}"
    );
    // a live holder is known at once: no waiting for it to go away
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(get(live.addr, "/v").text(), "v1");
}
