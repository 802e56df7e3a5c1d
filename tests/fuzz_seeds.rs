//! Replays the fuzz targets' seed corpora as ordinary tests: every seed must go
//! through the same entry point the fuzzer calls without panicking.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
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
        let step = (data.len() / 32).max(1);
        let short = data.len() <= 256;
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
