//! The response cache end to end, against an upstream that numbers its responses
//! (`seq`): a hit repeats the number of the response it was stored from.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;

fn fetch(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (n, v) in headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    request(addr, raw.as_bytes()).expect("a response")
}

fn seq(r: &Response) -> u64 {
    r.json_field("seq")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no seq in {}", r.text()))
}

fn status_of(r: &Response) -> String {
    r.header("cache-status").unwrap_or("").to_string()
}

#[test]
fn hits_and_misses_follow_declared_parameters_only() {
    let up = Upstream::start();
    let dir = TempDir::new("cache-keys");
    let log = dir.0.join("access.log");
    let cfg = config(
        &format!(
            r#"
[access_log]
path = "{}"
format = '{{"status":"$context.cacheStatus","route":"$context.routeKey"}}'

[apis.a.routes."GET /items/{{id}}"]
integration = {{ type = "http_proxy", uri = "http://{{UP}}/items/{{id}}" }}
cache = {{ key = ["query.fields", "header.accept-language"], ttl = "60s" }}

[stages.prod]
api = "a"
cache = {{ capacity = "1MiB" }}
"#,
            log.display()
        ),
        Some(up.addr),
    );
    let path = dir.write("turnpike.toml", &cfg);
    let gw = Gateway::start_with(dir, path, &["run", "-c"]);
    let a = gw.addr;

    let first = fetch(a, "GET", "/items/1?fields=a", &[]);
    assert_eq!(first.status, 200);
    assert_eq!(status_of(&first), "turnpike; fwd=miss; stored");
    let s1 = seq(&first);

    let hit = fetch(a, "GET", "/items/1?fields=a", &[]);
    assert_eq!(seq(&hit), s1, "served from the cache");
    assert!(
        status_of(&hit).starts_with("turnpike; hit; ttl="),
        "{}",
        status_of(&hit)
    );
    assert!(hit.header("age").is_some());
    assert_eq!(
        hit.header("x-upstream"),
        Some("echo"),
        "stored headers replayed"
    );
    assert_ne!(
        hit.header("x-request-id"),
        first.header("x-request-id"),
        "each response has its own request id"
    );

    // undeclared query parameters do not count
    let other = fetch(a, "GET", "/items/1?zzz=1&fields=a", &[]);
    assert_eq!(seq(&other), s1);

    // a declared query value, a declared header, or the path make another entry
    for (path, lang) in [
        ("/items/1?fields=b", None),
        ("/items/1?fields=a", Some("fr")),
        ("/items/2?fields=a", None),
    ] {
        let h: Vec<(&str, &str)> = lang.map(|l| ("Accept-Language", l)).into_iter().collect();
        let r = fetch(a, "GET", path, &h);
        assert_ne!(seq(&r), s1, "{path} {lang:?}");
        assert_eq!(status_of(&r), "turnpike; fwd=miss; stored");
    }

    // HEAD is answered from GET's entry, without a body
    let head = request(
        a,
        b"HEAD /items/1?fields=a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length").unwrap(),
        first.body.len().to_string()
    );
    assert!(status_of(&head).starts_with("turnpike; hit"));

    let route = "{stage=\"prod\",route=\"GET /items/{id}\"}";
    assert_eq!(
        metric_sum(&gw, &format!("turnpike_cache_hits_total{route}")),
        3.0
    );
    assert_eq!(
        metric_sum(&gw, &format!("turnpike_cache_misses_total{route}")),
        4.0
    );
    assert_eq!(
        metric_sum(&gw, "turnpike_cache_entries{stage=\"prod\"}"),
        4.0
    );

    // the access log says which answers were hits
    let mut lines = String::new();
    for _ in 0..50 {
        lines = std::fs::read_to_string(&log).unwrap_or_default();
        if lines.lines().count() >= 7 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // (two workers write their own batches: lines are not in request order)
    let mut statuses: Vec<&str> = lines
        .lines()
        .map(|l| l.split('"').nth(3).unwrap_or(""))
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        ["hit", "hit", "hit", "miss", "miss", "miss", "miss"],
        "{lines}"
    );
}

#[test]
fn entries_expire_after_their_ttl() {
    let up = Upstream::start();
    let gw = Gateway::start(&config(
        r#"
[apis.a.routes."GET /t"]
integration = { type = "http_proxy", uri = "http://{UP}/t" }
cache = { ttl = "1s" }

[stages.prod]
api = "a"
cache = { capacity = "1MiB", ttl = "300s" }
"#,
        Some(up.addr),
    ));
    let s1 = seq(&fetch(gw.addr, "GET", "/t", &[]));
    assert_eq!(seq(&fetch(gw.addr, "GET", "/t", &[])), s1);
    std::thread::sleep(Duration::from_millis(1300));
    let late = fetch(gw.addr, "GET", "/t", &[]);
    assert_ne!(seq(&late), s1, "expired after 1s");
    assert_eq!(status_of(&late), "turnpike; fwd=stale; stored");
    assert_eq!(seq(&fetch(gw.addr, "GET", "/t", &[])), seq(&late));
}

#[test]
fn never_stores_what_it_must_not() {
    let up = Upstream::start();
    let gw = Gateway::start(&config(
        r#"
[apis.a.routes."ANY /e/{p+}"]
integration = { type = "http_proxy", uri = "http://{UP}/e/{p}" }
cache = { key = ["header.accept-language"] }

[apis.a.routes."GET /auth"]
integration = { type = "http_proxy", uri = "http://{UP}/auth" }
cache = { authorization = true }

[apis.a.routes."GET /s/{n}"]
integration = { type = "http_proxy", uri = "http://{UP}/status/{n}" }
cache = { statuses = [200, 404] }

[stages.prod]
api = "a"
cache = { capacity = "1MiB" }
"#,
        Some(up.addr),
    ));
    let a = gw.addr;
    let twice_fresh = |path: &str, headers: &[(&str, &str)], why: &str| {
        let r1 = fetch(a, "GET", path, headers);
        let r2 = fetch(a, "GET", path, headers);
        assert_eq!(r1.status, 200, "{path}");
        assert_ne!(seq(&r1), seq(&r2), "{path} must not be stored ({why})");
        status_of(&r2)
    };
    let st = twice_fresh("/e/cookie?h=Set-Cookie:a%3Db", &[], "set-cookie");
    assert_eq!(st, "turnpike; fwd=miss; detail=set-cookie");
    for cc in ["no-store", "private", "no-cache"] {
        let st = twice_fresh(&format!("/e/cc?h=Cache-Control:{cc}"), &[], cc);
        assert_eq!(st, "turnpike; fwd=miss; detail=cache-control");
    }
    let st = twice_fresh("/e/vary?h=Vary:Accept-Encoding", &[], "vary");
    assert_eq!(st, "turnpike; fwd=miss; detail=vary");
    // Vary on a declared header is fine
    let v1 = fetch(a, "GET", "/e/vary2?h=Vary:Accept-Language", &[]);
    assert_eq!(
        seq(&fetch(a, "GET", "/e/vary2?h=Vary:Accept-Language", &[])),
        seq(&v1)
    );

    // Authorization bypasses the cache unless the route opts in
    let st = twice_fresh(
        "/e/private",
        &[("Authorization", "Bearer x")],
        "authorization",
    );
    assert_eq!(st, "turnpike; fwd=bypass");
    let a1 = fetch(a, "GET", "/auth", &[("Authorization", "Bearer x")]);
    assert_eq!(
        seq(&fetch(a, "GET", "/auth", &[("Authorization", "Bearer x")])),
        seq(&a1)
    );

    // methods other than GET and HEAD are not cached
    let p1 = fetch(a, "POST", "/e/post", &[("Content-Length", "0")]);
    let p2 = fetch(a, "POST", "/e/post", &[("Content-Length", "0")]);
    assert_ne!(seq(&p1), seq(&p2));
    assert_eq!(status_of(&p2), "turnpike; fwd=bypass");

    // statuses outside the list are not stored; those in it are
    let before = upstream_count(up.addr);
    for _ in 0..2 {
        assert_eq!(fetch(a, "GET", "/s/500", &[]).status, 500);
    }
    for _ in 0..3 {
        assert_eq!(fetch(a, "GET", "/s/404", &[]).status, 404);
    }
    // 2 × 500 + 1 × 404 reached it, plus the count request itself
    assert_eq!(upstream_count(up.addr) - before, 4);
}

#[test]
fn invalidation_follows_the_stage_mode_and_answers() {
    let up = Upstream::start();
    let gw = Gateway::start(&config(
        r#"
[apis.a.routes."GET /r"]
integration = { type = "http_proxy", uri = "http://{UP}/r" }

[stages.open]
api = "a"
base_path = "/open"
cache = { capacity = "1MiB", invalidation = "anyone" }

[stages.keyed]
api = "a"
base_path = "/keyed"
cache = { capacity = "1MiB", invalidation = "require_api_key", unauthorized = "fail_403" }

[stages.closed]
api = "a"
base_path = "/closed"
cache = { capacity = "1MiB", invalidation = "nobody", unauthorized = "ignore_with_header" }

[stages.quiet]
api = "a"
base_path = "/quiet"
cache = { capacity = "1MiB", invalidation = "nobody", unauthorized = "ignore" }

[usage_plans.gold]
stages = ["keyed"]
invalidate_cache = true

[usage_plans.silver]
stages = ["keyed"]

[api_keys.alice]
key = "alice-0123456789abcdef0123456789abcdef"
plan = "gold"

[api_keys.bob]
key = "bob-00123456789abcdef0123456789abcdef"
plan = "silver"
"#,
        Some(up.addr),
    ));
    let a = gw.addr;
    let refresh = [("Cache-Control", "max-age=0")];

    // anyone
    let s1 = seq(&fetch(a, "GET", "/open/r", &[]));
    let r = fetch(a, "GET", "/open/r", &refresh);
    assert_eq!(status_of(&r), "turnpike; fwd=request; stored");
    assert_ne!(seq(&r), s1);
    assert_eq!(
        seq(&fetch(a, "GET", "/open/r", &[])),
        seq(&r),
        "the refreshed entry serves"
    );

    // require_api_key + fail_403
    let k1 = seq(&fetch(a, "GET", "/keyed/r", &[]));
    assert_eq!(fetch(a, "GET", "/keyed/r", &refresh).status, 403);
    let bob = [
        ("Cache-Control", "max-age=0"),
        ("x-api-key", "bob-00123456789abcdef0123456789abcdef"),
    ];
    let denied = fetch(a, "GET", "/keyed/r", &bob);
    assert_eq!(denied.status, 403);
    assert_eq!(denied.json_field("message").as_deref(), Some("Forbidden"));
    let alice = [
        ("Cache-Control", "max-age=0"),
        ("x-api-key", "alice-0123456789abcdef0123456789abcdef"),
    ];
    let fresh = fetch(a, "GET", "/keyed/r", &alice);
    assert_eq!(fresh.status, 200);
    assert_ne!(seq(&fresh), k1);

    // nobody + ignore_with_header: served from the cache, with a warning
    let c1 = seq(&fetch(a, "GET", "/closed/r", &[]));
    let w = fetch(a, "GET", "/closed/r", &refresh);
    assert_eq!(seq(&w), c1);
    assert!(status_of(&w).starts_with("turnpike; hit"));
    assert!(
        w.header("warning").is_some_and(|v| v.starts_with("199 ")),
        "{:?}",
        w.headers
    );

    // nobody + ignore: served from the cache, silently
    let q1 = seq(&fetch(a, "GET", "/quiet/r", &[]));
    let q = fetch(a, "GET", "/quiet/r", &refresh);
    assert_eq!(seq(&q), q1);
    assert!(q.header("warning").is_none());
}

#[test]
fn admin_flushes_a_stage_and_reload_drops_changed_routes() {
    let up = Upstream::start();
    let body = |ttl: &str| {
        config(
            &format!(
                r#"
[apis.a.routes."GET /x"]
integration = {{ type = "http_proxy", uri = "http://{{UP}}/x" }}
cache = {{ ttl = "{ttl}" }}

[apis.a.routes."GET /y"]
integration = {{ type = "http_proxy", uri = "http://{{UP}}/y" }}

[stages.prod]
api = "a"
cache = {{ capacity = "1MiB" }}

[stages.nocache]
api = "a"
base_path = "/n"
"#
            ),
            Some(up.addr),
        )
    };
    let dir = TempDir::new("cache-admin");
    let path = dir.write("turnpike.toml", &body("60s"));
    let gw = Gateway::start_with(dir, path.clone(), &["run", "-c"]);
    let a = gw.addr;

    let x1 = seq(&fetch(a, "GET", "/x", &[]));
    let y1 = seq(&fetch(a, "GET", "/y", &[]));
    assert_eq!(seq(&fetch(a, "GET", "/x", &[])), x1);

    // a reload that changes /x's cache settings drops /x's entries only
    std::fs::write(&path, body("120s")).unwrap();
    let r = admin(&gw, "POST", "/reload");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        gw.wait_log("dropped 1 cache entries", Duration::from_secs(5)),
        "{}",
        gw.log()
    );
    assert_ne!(seq(&fetch(a, "GET", "/x", &[])), x1);
    assert_eq!(
        seq(&fetch(a, "GET", "/y", &[])),
        y1,
        "unchanged route keeps its entry"
    );

    let flushed = admin(&gw, "DELETE", "/stages/prod/cache");
    assert_eq!(flushed.status, 200, "{}", flushed.text());
    assert_eq!(flushed.json_field("entries").as_deref(), Some("2"));
    assert_ne!(seq(&fetch(a, "GET", "/y", &[])), y1, "flushed");

    assert_eq!(admin(&gw, "DELETE", "/stages/nope/cache").status, 404);
    assert_eq!(admin(&gw, "DELETE", "/stages/nocache/cache").status, 404);
    assert_eq!(admin(&gw, "GET", "/stages/prod/cache").status, 405);
}

#[test]
fn concurrent_misses_send_one_upstream_request() {
    let up = Upstream::start();
    let gw = Gateway::start(&config(
        r#"
[apis.a.routes."GET /slow"]
integration = { type = "http_proxy", uri = "http://{UP}/slowecho/400" }

[stages.prod]
api = "a"
cache = { capacity = "1MiB" }
"#,
        Some(up.addr),
    ));
    let before = upstream_count(up.addr);
    let addr = gw.addr;
    let threads: Vec<_> = (0..100)
        .map(|_| std::thread::spawn(move || fetch(addr, "GET", "/slow", &[])))
        .collect();
    let answers: Vec<Response> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(answers.iter().all(|r| r.status == 200));
    let first = seq(&answers[0]);
    assert!(
        answers.iter().all(|r| seq(r) == first),
        "one response for all"
    );
    let collapsed = answers
        .iter()
        .filter(|r| status_of(r).contains("collapsed"))
        .count();
    // one request reached the upstream (plus the count request)
    assert_eq!(upstream_count(up.addr) - before, 2);
    assert!(
        collapsed >= 90,
        "{collapsed} of 100 collapsed onto the first"
    );
}

#[test]
fn capacity_holds_under_a_flood_of_distinct_keys() {
    let up = Upstream::start();
    let gw = Gateway::start(&config(
        r#"
[apis.a.routes."GET /k/{n}"]
integration = { type = "http_proxy", uri = "http://{UP}/k/{n}" }

[stages.prod]
api = "a"
cache = { capacity = "64KiB", max_entry = "8KiB" }
"#,
        Some(up.addr),
    ));
    let mut c = Client::connect(gw.addr);
    let hot = seq(&c.get("/k/hot"));
    for i in 0..600 {
        let r = c.get(&format!("/k/{i}"));
        assert_eq!(r.status, 200);
        // a key that keeps being asked for survives the flood (SIEVE)
        assert_eq!(seq(&c.get("/k/hot")), hot, "after {i} distinct keys");
    }
    let bytes = metric_sum(&gw, "turnpike_cache_bytes{stage=\"prod\"}");
    let entries = metric_sum(&gw, "turnpike_cache_entries{stage=\"prod\"}");
    assert!(bytes <= 65536.0, "{bytes} bytes held");
    assert!(entries > 10.0 && entries < 200.0, "{entries} entries");
    assert!(metric_sum(&gw, "turnpike_cache_evictions_total{stage=\"prod\"}") >= 400.0);
    assert_eq!(
        metric_sum(&gw, "turnpike_cache_capacity_bytes{stage=\"prod\"}"),
        65536.0
    );
}

#[test]
fn large_and_streamed_bodies() {
    let up = Upstream::start();
    let gw = Gateway::start(&config(
        r#"
[apis.a.routes."GET /b/{n}"]
integration = { type = "http_proxy", uri = "http://{UP}/bytes/{n}" }

[apis.a.routes."GET /c/{n}"]
integration = { type = "http_proxy", uri = "http://{UP}/chunked/{n}" }

[apis.a.routes."GET /z/{n}"]
integration = { type = "http_proxy", uri = "http://{UP}/close/{n}" }

[stages.prod]
api = "a"
cache = { capacity = "8MiB", max_entry = "1MiB" }
"#,
        Some(up.addr),
    ));
    let mut c = Client::connect(gw.addr);
    // chunked and close-delimited bodies that fit are stored and replayed with a length
    for path in ["/c/20000", "/z/3000", "/b/300000"] {
        let r1 = c.get(path);
        assert_eq!(status_of(&r1), "turnpike; fwd=miss; stored", "{path}");
        let r2 = c.get(path);
        assert!(status_of(&r2).starts_with("turnpike; hit"), "{path}");
        assert_eq!(r1.body, r2.body, "{path}");
        assert_eq!(
            r2.header("content-length").unwrap(),
            r2.body.len().to_string()
        );
    }
    // over max_entry: streamed whole, not stored
    for (path, n) in [("/c/3000000", 3_000_000), ("/b/2000000", 2_000_000)] {
        for _ in 0..2 {
            let r = c.get(path);
            assert_eq!(r.body.len(), n, "{path}");
            assert_eq!(status_of(&r), "turnpike; fwd=miss; detail=size", "{path}");
        }
    }
    let z = get(gw.addr, "/z/1500000");
    assert_eq!(z.body.len(), 1_500_000);
}
