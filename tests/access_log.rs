//! Access log end to end: lines are JSON whatever the client sends, fields match what
//! happened, key names (never values) are logged, and SIGUSR1 rotation loses nothing.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const KEY: &str = "log-key-0123456789abcdef0123456789";

fn cfg(up: std::net::SocketAddr, log: &str) -> String {
    config(
        &format!(
            r#"
[access_log]
path = "{log}"
format = '{{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","ua":"$context.identity.userAgent","key":"$context.identity.apiKeyId","method":"$context.httpMethod","path":"$context.path","routeKey":"$context.routeKey","stage":"$context.stage","status":$context.status,"protocol":"$context.protocol","len":$context.responseLength,"epoch":$context.requestTimeEpoch,"time":"$context.requestTime","latency":$context.responseLatency,"ilatency":"$context.integrationLatency","istatus":"$context.integration.status","error":"$context.error.message","cache":"$context.cacheStatus","x":"$request.header.X-Evil"}}'

[apis.a.routes."GET /mock"]
integration = {{ type = "mock", body = "hello" }}

[apis.a.routes."GET /up/{{rest+}}"]
integration = {{ type = "http_proxy", uri = "http://{up}/{{rest}}" }}

[apis.a.routes."GET /keyed"]
integration = {{ type = "mock", body = "k" }}
api_key_required = true

[stages.prod]
api = "a"

[usage_plans.p]
stages = ["prod"]

[api_keys.alice]
key = "{KEY}"
plan = "p"
"#
        ),
        None,
    )
}

/// Reads the log's lines once at least `n` are there (the writer batches).
fn lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let v: Vec<String> = text.lines().map(str::to_string).collect();
        if v.len() >= n || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every line through Python's strict JSON parser; returns `field` of each line.
fn json_field_all(path: &std::path::Path, field: &str) -> Vec<String> {
    let out = Command::new("python3")
        .args(["-c", "import json,sys\nfor l in open(sys.argv[1]):\n    print(json.dumps(json.loads(l)[sys.argv[2]]))", path.to_str().unwrap(), field])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "not JSON: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn lines_are_json_and_say_what_happened() {
    let up = Upstream::start();
    let dir = TempDir::new("alog");
    let log = dir.0.join("access.log");
    let gw = Gateway::start(&cfg(up.addr, log.to_str().unwrap()));
    // everything a header value may carry (control bytes are refused with 400 by the
    // parser, so they never reach the log): quotes, backslashes, tab, UTF-8, U+2028
    let hostile = "\"quotes\" \\back\\ tab\there üñí \u{2028} {}";
    let mut raw =
        format!("GET /mock HTTP/1.1\r\nHost: t\r\nUser-Agent: {hostile}\r\nX-Evil: ").into_bytes();
    raw.extend_from_slice(b"\xff\xfe\"}\r\nx-request-id: rid-1\r\nConnection: close\r\n\r\n");
    let mut c = Client::connect(gw.addr);
    use std::io::Write;
    c.stream.write_all(&raw).unwrap();
    let _ = c.read_response(false).unwrap();
    assert_eq!(get(gw.addr, "/up/status/201").status, 201);
    assert_eq!(get(gw.addr, "/nope").status, 404);
    let r = request(
        gw.addr,
        format!("GET /keyed HTTP/1.1\r\nHost: t\r\nx-api-key: {KEY}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    // refused before its head parsed: still one line
    let bad = request(gw.addr, b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").unwrap();
    assert_eq!(bad.status, 400);

    let l = lines(&log, 5);
    assert_eq!(l.len(), 5, "{l:?}");
    // workers hand over their batches independently: look lines up by path
    let f = |field: &str, path: &str| by_path(&log, field)[path].clone();
    assert_eq!(f("status", "/mock"), "200");
    assert_eq!(f("status", "/up/status/201"), "201");
    assert_eq!(f("status", "/nope"), "404");
    assert_eq!(f("status", "/keyed"), "200");
    assert_eq!(f("ua", "/mock"), serde_like(hostile));
    assert_eq!(f("requestId", "/mock"), "\"rid-1\"");
    assert_eq!(f("routeKey", "/mock"), "\"GET /mock\"");
    assert_eq!(f("routeKey", "/up/status/201"), "\"GET /up/{rest+}\"");
    assert_eq!(f("routeKey", "/nope"), "\"-\"");
    assert_eq!(f("stage", "/up/status/201"), "\"prod\"");
    assert_eq!(f("istatus", "/up/status/201"), "\"201\"");
    assert_eq!(f("istatus", "/mock"), "\"-\"");
    assert_eq!(f("error", "/nope"), "\"Not Found\"");
    assert_eq!(f("len", "/mock"), "5");
    assert_eq!(f("key", "/keyed"), "\"alice\"");
    assert_eq!(f("status", "-"), "400");
    assert_eq!(f("error", "-"), "\"Bad Request\"");
    assert_eq!(f("method", "-"), "\"-\"");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(KEY), "an API key's value reached the log");
}

/// `field` of every line (strictly parsed), keyed by the line's path.
fn by_path(log: &std::path::Path, field: &str) -> std::collections::HashMap<String, String> {
    let paths = json_field_all(log, "path");
    let values = json_field_all(log, field);
    paths
        .into_iter()
        .map(|p| p.trim_matches('"').to_string())
        .zip(values)
        .collect()
}

/// How Python's json.dumps prints a string (ASCII-escaped), for comparison.
fn serde_like(s: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", "import json,sys; print(json.dumps(sys.argv[1]))", s])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn sigusr1_rotation_loses_no_line_under_load() {
    let up = Upstream::start();
    let dir = TempDir::new("rot");
    let log = dir.0.join("access.log");
    let rotated = dir.0.join("access.log.1");
    let gw = Gateway::start(&cfg(up.addr, log.to_str().unwrap()));
    const PER: usize = 500;
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let addr = gw.addr;
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                for _ in 0..PER {
                    assert_eq!(c.get("/mock").status, 200);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    std::fs::rename(&log, &rotated).unwrap();
    gw.signal("USR1");
    for c in clients {
        c.join().unwrap();
    }
    // once the file was reopened, new lines go to the new file
    assert!(gw.wait_log("reopening the access log", Duration::from_secs(2)));
    std::thread::sleep(Duration::from_millis(400));
    let mut c = Client::connect(gw.addr);
    for _ in 0..100 {
        assert_eq!(c.get("/mock").status, 200);
    }
    let total = 4 * PER + 100;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let old = std::fs::read_to_string(&rotated)
            .unwrap_or_default()
            .lines()
            .count();
        let new = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count();
        if old + new == total {
            assert!(
                new >= 100,
                "lines after the reopen went to the old file: {old} + {new}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lines lost: {old} + {new} of {total}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
