//! API keys and throttles end to end: 403s, 429s with their headers, and accuracy of
//! the node-wide budgets with two workers (the issue's acceptance test).

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

const KEY_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const KEY_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const KEY_OTHER: &str = "cccccccccccccccccccccccccccccccc";

fn routes(stage_throttle: &str, plan_throttle: &str) -> String {
    format!(
        r#"
[apis.a.routes."GET /open"]
integration = {{ type = "mock", body = "open" }}

[apis.a.routes."GET /keyed"]
integration = {{ type = "mock", body = "keyed" }}
api_key_required = true

[stages.s]
api = "a"
base_path = "/s"
{stage_throttle}

[stages.other]
api = "a"
base_path = "/other"

[usage_plans.gold]
stages = ["s"]
{plan_throttle}

[usage_plans.elsewhere]
stages = ["other"]

[api_keys.alice]
key = "{KEY_A}"
plan = "gold"

[api_keys.bob]
key_sha256 = "{}"
plan = "gold"

[api_keys.carol]
key = "{KEY_OTHER}"
plan = "elsewhere"
"#,
        sha256_hex(KEY_B)
    )
}

/// SHA-256 in hex via the library (the same function the gateway uses).
fn sha256_hex(s: &str) -> String {
    turnpike::limit::keys::sha256(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn keyed(gw: &Gateway, path: &str, key: Option<&str>) -> Response {
    let k = key
        .map(|k| format!("x-api-key: {k}\r\n"))
        .unwrap_or_default();
    request(
        gw.addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n{k}Connection: close\r\n\r\n").as_bytes(),
    )
    .unwrap()
}

#[test]
fn api_keys_answer_403_unless_the_plan_covers_the_stage() {
    let gw = Gateway::start(&config(&routes("", ""), None));
    assert_eq!(keyed(&gw, "/s/keyed", Some(KEY_A)).text(), "keyed");
    assert_eq!(
        keyed(&gw, "/s/keyed", Some(KEY_B)).text(),
        "keyed",
        "key given as key_sha256"
    );
    for (key, why) in [
        (None, "missing"),
        (Some("nope-nope-nope-nope-nope-nope-nope"), "unknown"),
        (Some(KEY_OTHER), "plan not on this stage"),
    ] {
        let r = keyed(&gw, "/s/keyed", key);
        assert_eq!(r.status, 403, "{why}");
        assert_eq!(r.text(), r#"{"message":"Forbidden"}"#);
    }
    // a route without api_key_required needs none
    assert_eq!(keyed(&gw, "/s/open", None).status, 200);
    // the key's value never appears in the gateway's own log
    assert!(!gw.log().contains(KEY_A));
}

#[test]
fn an_empty_bucket_answers_429_with_retry_after_and_ratelimit_headers() {
    let gw = Gateway::start(&config(
        &routes("throttle = { rate = 0.5, burst = 1 }", ""),
        None,
    ));
    let mut c = Client::connect(gw.addr);
    assert_eq!(c.get("/s/open").status, 200);
    let r = c.get("/s/open");
    assert_eq!(r.status, 429);
    assert_eq!(r.text(), r#"{"message":"Too Many Requests"}"#);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(r.header("ratelimit-policy"), Some("1;w=1;burst=1"));
    assert_eq!(r.header("ratelimit"), Some("limit=1, remaining=0, reset=2"));
    assert!(r.header("x-request-id").is_some());
    // a throttled request keeps the connection, and other stages are not throttled
    assert_eq!(c.get("/other/open").status, 200);
}

/// Sends `total` requests over `conns` connections on a fixed schedule: request i
/// leaves at `start + offset(i)`. Returns (admitted, refused, first send, last send).
fn paced(
    gw: &Gateway,
    path: &str,
    key: Option<&str>,
    total: usize,
    conns: usize,
    offset: impl Fn(usize) -> Duration + Send + Sync + 'static,
) -> (u64, u64, Duration) {
    let ok = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let last = Arc::new(AtomicU64::new(0));
    let offset = Arc::new(offset);
    let start = Instant::now() + Duration::from_millis(200);
    let header = key
        .map(|k| format!("x-api-key: {k}\r\n"))
        .unwrap_or_default();
    let threads: Vec<_> = (0..conns)
        .map(|t| {
            let (ok, refused, last, offset) =
                (ok.clone(), refused.clone(), last.clone(), offset.clone());
            let (addr, path, header) = (gw.addr, path.to_string(), header.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                for i in (t..total).step_by(conns) {
                    let at = start + offset(i);
                    if let Some(wait) = at.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let sent = start.elapsed();
                    c.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{header}\r\n").as_bytes());
                    match c.read_response(false).map(|r| r.status) {
                        Some(200) => ok.fetch_add(1, Ordering::Relaxed),
                        Some(429) => refused.fetch_add(1, Ordering::Relaxed),
                        other => panic!("unexpected answer {other:?}"),
                    };
                    last.fetch_max(sent.as_micros() as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    (
        ok.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        Duration::from_micros(last.load(Ordering::Relaxed)),
    )
}

const R: f64 = 100.0;
const BURST: f64 = 50.0;
const STAGE_THROTTLE: &str = "throttle = { rate = 100, burst = 50 }";

fn assert_accurate(admitted: u64, refused: u64, window: Duration, rate: f64, burst: f64) {
    // the send window is measured, so a slow machine does not skew the expectation
    let expected = rate * window.as_secs_f64() + burst;
    let err = (admitted as f64 - expected).abs() / expected;
    eprintln!(
        "admitted {admitted} of {} (expected {expected:.0}, error {:.1}%)",
        admitted + refused,
        err * 100.0
    );
    assert!(
        err <= 0.05,
        "admitted {admitted}, expected {expected:.0} ± 5% (window {window:?}, refused {refused})"
    );
    assert!(refused > 0);
}

#[test]
fn stage_throttle_is_accurate_over_one_connection() {
    let gw = Gateway::start(&config(&routes(STAGE_THROTTLE, ""), None));
    let (ok, no, window) = paced(&gw, "/s/open", None, 1500, 1, |i| {
        Duration::from_secs_f64(i as f64 / (3.0 * R))
    });
    assert_accurate(ok, no, window, R, BURST);
}

#[test]
fn stage_throttle_is_accurate_over_64_connections() {
    let gw = Gateway::start(&config(&routes(STAGE_THROTTLE, ""), None));
    let (ok, no, window) = paced(&gw, "/s/open", None, 1500, 64, |i| {
        Duration::from_secs_f64(i as f64 / (3.0 * R))
    });
    assert_accurate(ok, no, window, R, BURST);
}

#[test]
fn stage_throttle_is_accurate_in_bursts() {
    let gw = Gateway::start(&config(&routes(STAGE_THROTTLE, ""), None));
    // 11 bursts of 150 requests, every 500 ms, over 64 connections
    let (ok, no, _) = paced(&gw, "/s/open", None, 1650, 64, |i| {
        Duration::from_millis(500 * (i / 150) as u64)
    });
    let expected_window = Duration::from_secs(5);
    assert_accurate(ok, no, expected_window, R, BURST);
}

#[test]
fn each_key_gets_its_own_share_of_a_plan_throttle() {
    let gw = Gateway::start(&config(
        &routes("", "throttle = { rate = 50, burst = 20 }"),
        None,
    ));
    let gw = Arc::new(gw);
    let runs: Vec<_> = [KEY_A, KEY_B]
        .into_iter()
        .map(|key| {
            let gw = gw.clone();
            std::thread::spawn(move || {
                paced(&gw, "/s/keyed", Some(key), 750, 8, |i| {
                    Duration::from_secs_f64(i as f64 / 150.0)
                })
            })
        })
        .collect();
    for r in runs {
        let (ok, no, window) = r.join().unwrap();
        assert_accurate(ok, no, window, 50.0, 20.0);
    }
}
