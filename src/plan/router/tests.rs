use super::*;
use crate::plan::route_key::{parse, RouteKey};

fn trie(keys: &[&str]) -> Trie {
    let mut t = Trie::default();
    for (i, k) in keys.iter().enumerate() {
        match parse(k).unwrap() {
            RouteKey::Default => t.insert_default(&[], i as RouteId).unwrap(),
            RouteKey::Path { method, segments } => {
                t.insert(&[], method, &segments, i as RouteId).unwrap()
            }
        }
    }
    t
}

fn found(t: &Trie, m: Method, path: &str) -> Option<(RouteId, Vec<String>)> {
    match t.lookup(Some(m), path) {
        Lookup::Found(id, p) => Some((
            id,
            (0..p.len()).map(|i| p.get(path, i).to_string()).collect(),
        )),
        _ => None,
    }
}

#[test]
fn static_beats_param_beats_greedy() {
    let t = trie(&["GET /users/me", "GET /users/{id}", "GET /users/{rest+}"]);
    assert_eq!(found(&t, Method::Get, "/users/me"), Some((0, vec![])));
    assert_eq!(
        found(&t, Method::Get, "/users/42"),
        Some((1, vec!["42".into()]))
    );
    assert_eq!(
        found(&t, Method::Get, "/users/42/orders/7"),
        Some((2, vec!["42/orders/7".into()]))
    );
}

#[test]
fn backtracks_from_a_static_branch_that_dead_ends() {
    let t = trie(&["GET /users/me/profile", "GET /users/{id}/orders"]);
    assert_eq!(
        found(&t, Method::Get, "/users/me/orders"),
        Some((1, vec!["me".into()]))
    );
}

#[test]
fn method_mismatch_reports_allowed_methods() {
    let t = trie(&["GET /a", "POST /a"]);
    match t.lookup(Some(Method::Delete), "/a") {
        Lookup::MethodNotAllowed(bits) => assert_eq!(Method::allow_header(bits), "GET, HEAD, POST"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        t.lookup(Some(Method::Get), "/b"),
        Lookup::NotFound
    ));
}

#[test]
fn any_and_head_fallback() {
    let t = trie(&["ANY /x", "GET /y"]);
    assert_eq!(found(&t, Method::Patch, "/x").map(|f| f.0), Some(0));
    assert!(matches!(t.lookup(None, "/x"), Lookup::Found(0, _)));
    assert_eq!(found(&t, Method::Head, "/y").map(|f| f.0), Some(1));
}

#[test]
fn default_catches_unmatched_paths_but_not_matched_ones() {
    let t = trie(&["GET /a", "$default"]);
    assert_eq!(found(&t, Method::Get, "/a").map(|f| f.0), Some(0));
    assert_eq!(found(&t, Method::Get, "/zzz/q").map(|f| f.0), Some(1));
    assert_eq!(found(&t, Method::Post, "/a").map(|f| f.0), Some(1));
}

#[test]
fn trailing_slash_and_root() {
    let t = trie(&["GET /", "GET /a/{id}"]);
    assert_eq!(found(&t, Method::Get, "/").map(|f| f.0), Some(0));
    assert_eq!(found(&t, Method::Get, "/a/1/"), Some((1, vec!["1".into()])));
    assert!(found(&t, Method::Get, "/a/").is_none());
}

#[test]
fn conflicting_routes_are_rejected() {
    let mut t = trie(&["GET /a/{x}"]);
    let RouteKey::Path { method, segments } = parse("GET /a/{y}").unwrap() else {
        unreachable!()
    };
    assert_eq!(
        t.insert(&[], method, &segments, 9),
        Err(Conflict::SameAs(0))
    );
}

#[test]
fn base_paths_mount_stages() {
    let mut t = Trie::default();
    let RouteKey::Path { method, segments } = parse("GET /x").unwrap() else {
        unreachable!()
    };
    t.insert(&["v1"], method, &segments, 0).unwrap();
    t.insert(&["v2"], method, &segments, 1).unwrap();
    t.insert_default(&["v2"], 2).unwrap();
    assert_eq!(found(&t, Method::Get, "/v1/x").map(|f| f.0), Some(0));
    assert_eq!(found(&t, Method::Get, "/v2/x").map(|f| f.0), Some(1));
    assert_eq!(found(&t, Method::Get, "/v2/nope").map(|f| f.0), Some(2));
    assert!(found(&t, Method::Get, "/v1/nope").is_none());
}

#[test]
fn hosts_exact_then_wildcard() {
    let mut r = Router::default();
    let RouteKey::Path { method, segments } = parse("GET /x").unwrap() else {
        unreachable!()
    };
    r.trie_mut("api.example.com")
        .insert(&[], method, &segments, 0)
        .unwrap();
    r.trie_mut("*").insert(&[], method, &segments, 1).unwrap();
    assert!(matches!(
        r.lookup("api.example.com", Some(Method::Get), "/x"),
        Lookup::Found(0, _)
    ));
    assert!(matches!(
        r.lookup("other", Some(Method::Get), "/x"),
        Lookup::Found(1, _)
    ));
}

#[test]
fn wide_nodes_probe_briefly() {
    let mut n = Node::default();
    for i in 0..10_000u32 {
        n.add_static(&format!("svc{i}"), i);
    }
    let mask = n.index.len() - 1;
    let mut worst = 0;
    for i in 0..10_000u32 {
        let seg = format!("svc{i}");
        let mut j = hash_segment(&seg) & mask;
        let mut probes = 1;
        while *n.statics[n.index[j] as usize - 1].0 != *seg {
            j = (j + 1) & mask;
            probes += 1;
        }
        worst = worst.max(probes);
        assert_eq!(n.find_static(&seg), Some(i));
    }
    assert!(
        worst < 64,
        "worst probe run {worst} in a table of {}",
        n.index.len()
    );
}
