//! Usage-plan quotas end to end: "Limit Exceeded", and counts that survive SIGTERM,
//! kill -9 and reloads through `state_dir`; an unwritable `state_dir` never stops traffic.

mod common;

use std::time::Duration;

use common::*;

const KEY: &str = "quota-key-0123456789abcdef0123456789";

fn cfg(state_dir: &str) -> String {
    config(
        &format!(
            r#"
[apis.a.routes."GET /q"]
integration = {{ type = "mock", body = "ok" }}
api_key_required = true

[stages.s]
api = "a"

[usage_plans.small]
stages = ["s"]
quota = {{ limit = 10, period = "day" }}

[api_keys.k]
key = "{KEY}"
plan = "small"
"#
        ),
        None,
    )
    .replace(
        "workers = 2",
        &format!("workers = 2\nstate_dir = \"{state_dir}\""),
    )
}

fn call(gw: &Gateway) -> Response {
    request(
        gw.addr,
        format!("GET /q HTTP/1.1\r\nHost: t\r\nx-api-key: {KEY}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .unwrap()
}

fn use_up(gw: &Gateway, n: usize) {
    for i in 0..n {
        let r = call(gw);
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
    }
}

fn assert_exhausted(gw: &Gateway) {
    let r = call(gw);
    assert_eq!(r.status, 429);
    assert_eq!(r.text(), r#"{"message":"Limit Exceeded"}"#);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "retry-after {retry}");
}

#[test]
fn the_limit_answers_limit_exceeded() {
    let state = TempDir::new("q1");
    let gw = Gateway::start(&cfg(state.0.to_str().unwrap()));
    use_up(&gw, 10);
    assert_exhausted(&gw);
}

#[test]
fn counts_survive_sigterm() {
    let state = TempDir::new("q2");
    let mut gw = Gateway::start(&cfg(state.0.to_str().unwrap()));
    use_up(&gw, 4);
    gw.signal("TERM");
    assert_eq!(gw.wait_exit(Duration::from_secs(10)), Some(0));
    let gw = Gateway::start(&cfg(state.0.to_str().unwrap()));
    use_up(&gw, 6);
    assert_exhausted(&gw);
}

#[test]
fn counts_survive_kill_9_within_a_second() {
    let state = TempDir::new("q3");
    let mut gw = Gateway::start(&cfg(state.0.to_str().unwrap()));
    use_up(&gw, 4);
    // the persister writes every second
    std::thread::sleep(Duration::from_millis(1500));
    gw.child.kill().unwrap();
    let _ = gw.child.wait();
    let gw = Gateway::start(&cfg(state.0.to_str().unwrap()));
    use_up(&gw, 6);
    assert_exhausted(&gw);
}

#[test]
fn counts_survive_a_reload() {
    let state = TempDir::new("q4");
    let gw = Gateway::start(&cfg(state.0.to_str().unwrap()));
    use_up(&gw, 4);
    // a changed file, so a genuinely new plan
    std::fs::write(
        &gw.config,
        cfg(state.0.to_str().unwrap()) + "\n# reloaded\n",
    )
    .unwrap();
    assert_eq!(admin(&gw, "POST", "/reload").status, 200);
    use_up(&gw, 6);
    assert_exhausted(&gw);
}

#[test]
fn an_unwritable_state_dir_is_reported_and_traffic_flows() {
    let gw = Gateway::start(&cfg("/proc/turnpike-cannot-write-here"));
    assert!(
        gw.wait_log("quota counters", Duration::from_secs(3)),
        "{}",
        gw.log()
    );
    use_up(&gw, 10);
    assert_exhausted(&gw);
}
