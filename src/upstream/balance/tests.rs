use super::*;
use crate::config::load_str;
use crate::plan::compile;

fn plan(balance: &str, targets: &str, extra: &str) -> Plan {
    let cfg = format!(
        r#"
[gateway]
listen = ["127.0.0.1:0"]
workers = 1

[upstreams.u]
targets = [{targets}]
balance = "{balance}"
{extra}

[apis.a.routes."GET /x"]
integration = {{ type = "http_proxy", uri = "http://u/x" }}

[stages.s]
api = "a"
"#
    );
    compile(load_str("t.toml", &cfg).unwrap(), 1).unwrap()
}

const THREE: &str = r#""127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3""#;

fn counts(picks: impl Iterator<Item = u32>, n: usize) -> Vec<usize> {
    let mut c = vec![0; n];
    for p in picks {
        c[p as usize] += 1;
    }
    c
}

#[test]
fn smooth_weighted_split() {
    let p = plan(
        "round_robin",
        r#""127.0.0.1:1", { addr = "127.0.0.1:2", weight = 3 }"#,
        "",
    );
    let b = Balancers::new(0);
    let picks: Vec<u32> = (0..8).map(|_| b.pick(&p, 0, None, &[]).unwrap()).collect();
    assert_eq!(counts(picks.iter().copied(), 2), vec![2, 6]);
    // smooth: the light target is not left to the end of a cycle
    assert!(picks[0..4].contains(&0));
}

#[test]
fn tried_and_ejected_targets_are_skipped() {
    let p = plan(
        "round_robin",
        THREE,
        "outlier = { consecutive = 2, base_ejection = \"10s\" }",
    );
    let b = Balancers::new(0);
    for _ in 0..30 {
        assert_eq!(b.pick(&p, 0, None, &[0, 2]), Some(1));
    }
    assert_eq!(b.pick(&p, 0, None, &[0, 1, 2]), None);
    // two failures in a row eject target 1 for the base ejection time
    b.begin(&p, 0, 1);
    assert_eq!(b.end(&p, 0, 1, Attempt::Failed), None);
    b.begin(&p, 0, 1);
    assert_eq!(
        b.end(&p, 0, 1, Attempt::Failed),
        Some(Duration::from_secs(10))
    );
    for _ in 0..30 {
        assert_ne!(b.pick(&p, 0, None, &[]), Some(1));
    }
    // a success in between resets the count
    b.begin(&p, 0, 0);
    b.end(&p, 0, 0, Attempt::Failed);
    b.begin(&p, 0, 0);
    b.end(&p, 0, 0, Attempt::Ok);
    b.begin(&p, 0, 0);
    assert_eq!(b.end(&p, 0, 0, Attempt::Failed), None);
    // the client going away says nothing about the target
    b.begin(&p, 0, 0);
    assert_eq!(b.end(&p, 0, 0, Attempt::Abandoned), None);
}

#[test]
fn least_requests_prefers_the_idle_target() {
    let p = plan("least_requests", THREE, "");
    let b = Balancers::new(0);
    b.begin(&p, 0, 0);
    b.begin(&p, 0, 1);
    for _ in 0..10 {
        assert_eq!(b.pick(&p, 0, None, &[]), Some(2));
    }
    b.begin(&p, 0, 2);
    b.begin(&p, 0, 2);
    b.end(&p, 0, 0, Attempt::Ok);
    assert_eq!(b.pick(&p, 0, None, &[]), Some(0));
}

#[test]
fn random2_spreads_and_avoids_the_busy_target() {
    let p = plan("random2", THREE, "");
    let b = Balancers::new(0);
    let c = counts((0..3000).map(|_| b.pick(&p, 0, None, &[]).unwrap()), 3);
    assert!(c.iter().all(|&n| n > 700), "{c:?}");
    for _ in 0..50 {
        b.begin(&p, 0, 1);
    }
    let c = counts((0..3000).map(|_| b.pick(&p, 0, None, &[]).unwrap()), 3);
    assert!(c[1] < 100, "{c:?}");
}

#[test]
fn consistent_hashing_moves_about_one_nth_of_keys() {
    let targets = r#""127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4", "127.0.0.1:5""#;
    let p = plan("hash(header.x-user)", targets, "");
    let b = Balancers::new(0);
    let keys: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
    let before: Vec<u32> = keys
        .iter()
        .map(|k| b.pick(&p, 0, Some(k.as_bytes()), &[]).unwrap())
        .collect();
    // the same key lands on the same target on any worker
    let other = Balancers::new(7);
    for (k, t) in keys.iter().zip(&before).take(100) {
        assert_eq!(other.pick(&p, 0, Some(k.as_bytes()), &[]), Some(*t));
    }
    let c = counts(before.iter().copied(), 5);
    assert!(c.iter().all(|&n| (1500..2500).contains(&n)), "{c:?}");
    // target 2 leaves: only its keys move
    let after: Vec<u32> = keys
        .iter()
        .map(|k| b.pick(&p, 0, Some(k.as_bytes()), &[2]).unwrap())
        .collect();
    let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    assert_eq!(moved, c[2], "exactly the keys of the target that left");
}

#[test]
fn circuit_breaking_slots_and_retry_budget() {
    let p = plan(
        "round_robin",
        THREE,
        "max_connections = 2\nmax_pending = 1\nretry_budget = 0.5",
    );
    let b = Balancers::new(0);
    assert_eq!(b.slot(&p, 0), Slot::Free);
    b.begin(&p, 0, 0);
    b.begin(&p, 0, 1);
    assert_eq!(b.slot(&p, 0), Slot::Queue);
    b.queued(&p, 0, true);
    assert_eq!(b.slot(&p, 0), Slot::Full);
    b.queued(&p, 0, false);
    b.end(&p, 0, 0, Attempt::Ok);
    assert_eq!(b.slot(&p, 0), Slot::Free);
    // the floor's 10 tokens to start with, then 0.5 per request
    let mut granted = 0;
    for _ in 0..30 {
        b.deposit(&p, 0);
        granted += usize::from(b.take_retry(&p, 0, 0));
    }
    // (the floor adds one more each 100 ms this takes)
    assert!((25..=26).contains(&granted), "10 + 30 × 0.5, got {granted}");
    assert!(!b.take_retry(&p, 0, 0));
    // the floor: 10 a second even with no requests to earn them
    std::thread::sleep(Duration::from_millis(250));
    assert!(b.take_retry(&p, 0, 0));
    assert!(b.take_retry(&p, 0, 0));
}

fn fail_times(b: &Balancers, p: &Plan, t: u32, n: usize) -> Option<Duration> {
    let mut last = None;
    for _ in 0..n {
        b.begin(p, 0, t);
        last = last.or(b.end(p, 0, t, Attempt::Failed));
    }
    last
}

#[test]
fn ejection_takes_at_most_its_share_and_never_the_last_target() {
    let ten: String = (1..=10)
        .map(|i| format!(r#""127.0.0.1:{i}""#))
        .collect::<Vec<_>>()
        .join(", ");
    let p = plan(
        "round_robin",
        &ten,
        "outlier = { consecutive = 1, base_ejection = \"10s\", max_ejection_percent = 20 }",
    );
    let b = Balancers::new(0);
    // 20% of ten: two targets out at most
    assert!(fail_times(&b, &p, 0, 1).is_some());
    assert!(fail_times(&b, &p, 1, 1).is_some());
    assert_eq!(fail_times(&b, &p, 2, 3), None);
    let picked = counts((0..100).map(|_| b.pick(&p, 0, None, &[]).unwrap()), 10);
    assert_eq!((picked[0], picked[1]), (0, 0), "{picked:?}");
    assert!(picked[2] > 0);

    // the default (10%) still allows one; a single target is never ejected
    let p = plan(
        "round_robin",
        r#""127.0.0.1:1", "127.0.0.1:2""#,
        "outlier = { consecutive = 1 }",
    );
    let b = Balancers::new(0);
    assert!(fail_times(&b, &p, 0, 1).is_some());
    assert_eq!(fail_times(&b, &p, 1, 5), None, "the last one able to serve");
    let p = plan(
        "round_robin",
        r#""127.0.0.1:1""#,
        "outlier = { consecutive = 1 }",
    );
    let b = Balancers::new(0);
    assert_eq!(fail_times(&b, &p, 0, 5), None);
    assert_eq!(b.pick(&p, 0, None, &[]), Some(0));
}

#[test]
fn with_every_target_out_the_balancer_panics_over_all_of_them() {
    let p = plan(
        "round_robin",
        THREE,
        "outlier = { consecutive = 1, max_ejection_percent = 100 }",
    );
    let b = Balancers::new(0);
    assert!(fail_times(&b, &p, 0, 1).is_some());
    assert!(fail_times(&b, &p, 1, 1).is_some());
    // the third is the last able to serve: kept
    assert_eq!(fail_times(&b, &p, 2, 1), None);
    assert_eq!(b.pick(&p, 0, None, &[]), Some(2));
    // tried already: the ejected ones are used rather than nothing (panic mode)
    let c = counts((0..40).map(|_| b.pick(&p, 0, None, &[2]).unwrap()), 3);
    assert_eq!(c[2], 0);
    assert!(c[0] > 10 && c[1] > 10, "{c:?}");
    assert_eq!(b.pick(&p, 0, None, &[0, 1, 2]), None);
}
