//! Replays the fuzz targets' seed corpora as ordinary tests: every seed must go
//! through the same entry point the fuzzer calls without panicking.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    replay_cuts(target, f, 32)
}

/// `cuts` prefixes of each long input (every one of a short input when `cuts` is
/// 32; the template and schema targets evaluate what they parse, so their
/// fuzzer-grown corpora are replayed with fewer).
fn replay_cuts(target: &str, f: fn(&[u8]), cuts: usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        f(&std::fs::read(&path).unwrap());
        // prefixes too: truncated input is the most common shape on the wire
        // (every one of a short seed, 32 spread over a long one)
        let data = std::fs::read(&path).unwrap();
        let step = (data.len() / cuts).max(1);
        let short = cuts >= 32 && data.len() <= 256;
        for cut in (0..data.len()).filter(|c| short || c % step == 0) {
            f(&data[..cut]);
        }
        n += 1;
    }
    assert!(n >= 5, "seed corpus of {target} has only {n} files");
}

#[test]
fn h1_request_seeds() {
    replay("h1_request", turnpike::fuzz::h1_request);
}

#[test]
fn config_seeds() {
    replay("config", turnpike::fuzz::config);
}

#[test]
fn chunked_seeds() {
    replay("chunked", turnpike::fuzz::chunked);
}

#[test]
fn router_seeds() {
    replay("router", turnpike::fuzz::router);
}

#[test]
fn jwt_seeds() {
    replay("jwt", turnpike::fuzz::jwt);
}

#[test]
fn sigv4_seeds() {
    replay("sigv4", turnpike::fuzz::sigv4);
}

#[test]
fn authorizer_answer_seeds() {
    replay("authorizer_answer", turnpike::fuzz::authorizer_answer);
}

/// The `jwt` target's corpus holds tokens that verify with the target's key set (so
/// the fuzzer starts from inputs that get through every check) and key sets that
/// parse, besides the forgeries and junk.
#[test]
fn jwt_corpus_reaches_a_verified_token() {
    use turnpike::auth::{jwks::KeySet, jwt};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/jwt");
    let (mut verified, mut sets) = (0, 0);
    let rules = jwt::JwtRules {
        issuer: "https://issuer.fuzz".into(),
        audience: vec!["fuzz".into()],
    };
    let keys = KeySet::parse(turnpike::fuzz::FUZZ_JWKS.as_bytes()).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let raw = std::fs::read(entry.unwrap().path()).unwrap();
        match raw.split_first() {
            Some((0, rest)) => {
                let token = jwt::bearer(rest).and_then(|t| std::str::from_utf8(t).ok());
                if token.is_some_and(|t| jwt::verify(t, &keys, &rules, 1_800_000_000).is_ok()) {
                    verified += 1;
                }
            }
            Some((_, rest)) => sets += usize::from(KeySet::parse(rest).is_ok()),
            None => {}
        }
    }
    assert!(verified >= 1, "no seed token verifies");
    assert!(sets >= 1, "no seed key set parses");
}

#[test]
fn vtl_seeds() {
    replay_cuts("vtl", turnpike::fuzz::vtl, 4);
}

#[test]
fn jsonpath_seeds() {
    replay("jsonpath", turnpike::fuzz::jsonpath);
}

#[test]
fn model_seeds() {
    replay_cuts("model", turnpike::fuzz::model, 4);
}
