//! `/metrics` end to end: values equal the requests made, and the text passes a
//! strict exposition-format check (names, labels, TYPE lines, histogram invariants).

mod common;

use std::collections::HashMap;

use common::*;

fn cfg(up: std::net::SocketAddr) -> String {
    config(
        &format!(
            r#"
[apis.a.routes."GET /a"]
integration = {{ type = "mock", body = "a" }}

[apis.a.routes."GET /up/{{rest+}}"]
integration = {{ type = "http_proxy", uri = "http://{up}/{{rest}}" }}

[apis.a.routes."GET /limited"]
integration = {{ type = "mock", body = "l" }}

[upstreams.pool]
targets = ["{up}"]
health = {{ path = "/health", interval = "1s" }}

[apis.a.routes."GET /pooled/{{rest+}}"]
integration = {{ type = "http_proxy", uri = "http://pool/{{rest}}" }}
cache = {{ ttl = "60s" }}

[stages.prod]
api = "a"
routes = {{ "GET /limited" = {{ throttle = {{ rate = 0.01, burst = 2 }} }} }}
cache = {{ capacity = "1MiB" }}
canary = {{ percent = 0.0 }}
"#
        ),
        None,
    )
}

/// Parses and checks the exposition text; returns sample → value.
fn parse_strict(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    let mut typed: HashMap<String, String> = HashMap::new();
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(name_ok(name), "bad name {name}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                typed.insert(name.to_string(), kind.to_string()).is_none(),
                "TYPE twice: {name}"
            );
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        assert!(!line.starts_with('#'), "stray comment {line}");
        let (series, value) = line.rsplit_once(' ').expect("sample value");
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        let name = series.split('{').next().unwrap();
        assert!(name_ok(name), "bad metric name in {line}");
        let family = ["_bucket", "_sum", "_count"].iter().fold(name, |n, s| {
            n.strip_suffix(s)
                .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
                .unwrap_or(n)
        });
        assert!(typed.contains_key(family), "sample before its TYPE: {line}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                let inner = labels
                    .strip_prefix('{')
                    .and_then(|l| l.strip_suffix('}'))
                    .expect("braces");
                // label="value" pairs, values with \\ \" \n escapes only
                let mut rest = inner;
                while !rest.is_empty() {
                    let (k, after) = rest.split_once("=\"").expect("label=\"");
                    assert!(name_ok(k) && !k.starts_with("__"), "bad label name {k}");
                    let mut end = None;
                    let b = after.as_bytes();
                    let mut i = 0;
                    while i < b.len() {
                        match b[i] {
                            b'\\' => {
                                assert!(
                                    matches!(b.get(i + 1), Some(b'\\') | Some(b'"') | Some(b'n')),
                                    "bad escape in {line}"
                                );
                                i += 2;
                            }
                            b'"' => {
                                end = Some(i);
                                break;
                            }
                            _ => i += 1,
                        }
                    }
                    let end = end.expect("closing quote");
                    rest = after[end + 1..]
                        .strip_prefix(',')
                        .unwrap_or(&after[end + 1..]);
                }
            }
        }
        assert!(
            samples.insert(series.to_string(), v).is_none(),
            "duplicate sample {series}"
        );
    }
    // histograms: cumulative buckets, +Inf == _count
    for (name, kind) in &typed {
        if kind != "histogram" {
            continue;
        }
        let mut by_labels: HashMap<String, Vec<(f64, f64)>> = HashMap::new();
        for (s, v) in &samples {
            if let Some(rest) = s.strip_prefix(&format!("{name}_bucket{{")) {
                let (labels, le) = rest.rsplit_once(",le=\"").unwrap();
                let le = le.trim_end_matches("\"}");
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                by_labels
                    .entry(labels.to_string())
                    .or_default()
                    .push((le, *v));
            }
        }
        for (labels, mut b) in by_labels {
            b.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap());
            assert!(
                b.windows(2).all(|w| w[0].1 <= w[1].1),
                "{name} buckets not cumulative for {labels}"
            );
            let count = samples[&format!("{name}_count{{{labels}}}")];
            assert_eq!(
                b.last().unwrap().1,
                count,
                "{name} +Inf != count for {labels}"
            );
        }
    }
    samples
}

#[test]
fn metrics_count_what_happened_and_parse_strictly() {
    let up = Upstream::start();
    let gw = Gateway::start(&cfg(up.addr));
    let mut c = Client::connect(gw.addr);
    for _ in 0..7 {
        assert_eq!(c.get("/a").status, 200);
    }
    for _ in 0..3 {
        assert_eq!(c.get("/up/status/503").status, 503);
    }
    for _ in 0..5 {
        assert_eq!(c.get("/nope").status, 404);
    }
    // a request refused before its head parses counts as unrouted 4xx too
    let bad = request(
        gw.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    )
    .unwrap();
    assert_eq!(bad.status, 400);
    let statuses: Vec<u16> = (0..5).map(|_| c.get("/limited").status).collect();
    assert_eq!(statuses, [200, 200, 429, 429, 429]);
    for _ in 0..4 {
        assert_eq!(c.get("/pooled/same").status, 200);
    }

    let r = admin(&gw, "GET", "/metrics");
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let m = parse_strict(&r.text());
    let get = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no sample {k}"));
    assert_eq!(
        get(r#"turnpike_requests_total{stage="prod",route="GET /a",class="2xx"}"#),
        7.0
    );
    assert_eq!(
        get(r#"turnpike_requests_total{stage="prod",route="GET /up/{rest+}",class="5xx"}"#),
        3.0
    );
    assert_eq!(
        get(r#"turnpike_requests_total{stage="",route="",class="4xx"}"#),
        6.0
    );
    assert_eq!(
        get(r#"turnpike_requests_total{stage="prod",route="GET /limited",class="4xx"}"#),
        3.0
    );
    assert_eq!(
        get(r#"turnpike_throttled_total{stage="prod",route="GET /limited",scope="route"}"#),
        3.0
    );
    assert_eq!(
        get(r#"turnpike_throttled_total{stage="prod",route="GET /limited",scope="stage"}"#),
        0.0
    );
    assert_eq!(
        get(r#"turnpike_integration_latency_seconds_count{stage="prod",route="GET /up/{rest+}"}"#),
        3.0
    );
    assert_eq!(
        get(r#"turnpike_latency_seconds_count{stage="prod",route="GET /a"}"#),
        7.0
    );
    assert_eq!(get(r#"turnpike_reloads_ok_total"#), 0.0);
    assert!(m
        .keys()
        .any(|k| k.starts_with("turnpike_event_driver{driver=\"IoUring")));

    // the cache, the upstream target and the canary have their series too
    let pooled = r#"{stage="prod",route="GET /pooled/{rest+}"}"#;
    assert_eq!(get(&format!("turnpike_cache_misses_total{pooled}")), 1.0);
    assert_eq!(get(&format!("turnpike_cache_hits_total{pooled}")), 3.0);
    assert_eq!(get(&format!("turnpike_canary_requests_total{pooled}")), 0.0);
    assert_eq!(get(r#"turnpike_cache_entries{stage="prod"}"#), 1.0);
    let target = format!(r#"{{upstream="pool",target="{}"}}"#, up.addr);
    assert_eq!(
        get(&format!("turnpike_upstream_requests_total{target}")),
        1.0
    );
    assert_eq!(get(&format!("turnpike_upstream_in_flight{target}")), 0.0);
    assert_eq!(get(&format!("turnpike_upstream_healthy{target}")), 1.0);
    // the one pooled connection shows within the workers' 1 s snapshot
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let m2 = parse_strict(&admin(&gw, "GET", "/metrics").text());
    assert_eq!(
        m2[&format!("turnpike_upstream_idle_connections{target}")],
        1.0
    );
    assert_eq!(
        get(&format!("turnpike_upstream_connect_failures_total{target}")),
        0.0
    );

    // our keep-alive connection is open
    assert!(get(r#"turnpike_connections_open{protocol="http/1.1"}"#) >= 1.0);
    assert!(get(r#"turnpike_connections_accepted_total{protocol="http/1.1"}"#) >= 1.0);

    // a reload keeps counting the same series
    std::fs::write(&gw.config, cfg(up.addr) + "\n# changed\n").unwrap();
    assert_eq!(admin(&gw, "POST", "/reload").status, 200);
    assert_eq!(c.get("/a").status, 200);
    let m = parse_strict(&admin(&gw, "GET", "/metrics").text());
    assert_eq!(
        m[r#"turnpike_requests_total{stage="prod",route="GET /a",class="2xx"}"#],
        8.0
    );
    assert_eq!(m["turnpike_reloads_ok_total"], 1.0);
}
