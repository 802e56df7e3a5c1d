//! Entry points shared by the cargo-fuzz targets in `fuzz/` and by the test that
//! replays their seed corpora (`tests/fuzz_seeds.rs`). Each must accept any bytes
//! without panicking; that is the whole property being fuzzed.

use crate::proto::h1::{parse_request, BodyFraming, ChunkedDecoder, RequestHead};

/// Parses a request head and, when it says chunked, decodes the bytes after it.
pub fn h1_request(data: &[u8]) {
    let mut head = RequestHead::default();
    if let Ok(Some(n)) = parse_request(data, 64 << 10, &mut head) {
        let _ = (head.path(), head.query(), head.host(), head.method());
        if head.body == BodyFraming::Chunked {
            let mut out = Vec::new();
            let _ = ChunkedDecoder::default().decode(&data[n..], &mut out);
        }
    }
}

/// Loads and compiles a configuration from arbitrary text.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match crate::config::load_str("fuzz.toml", text) {
        Ok(cfg) => {
            if let Err(e) = crate::plan::compile(cfg, 2) {
                let _ = e.to_string();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
