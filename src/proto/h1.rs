//! HTTP/1.1 framing: request heads (`request`), response heads from upstreams
//! (`response`), body framing (`body`), and encoding what we send (`encode`).
//!
//! Strict where ambiguity enables request smuggling (RFC 9112 §6.3, §11.2): a
//! request with both Content-Length and Transfer-Encoding, a repeated or malformed
//! Content-Length, a Transfer-Encoding other than exactly `chunked`, obs-fold,
//! whitespace before a colon, a bare CR, or a bad chunk size is refused with 400 and
//! the connection closes. Tested by unit tests here, the fuzz target's seed corpus,
//! and the `smuggling` end-to-end tests.

pub mod body;
pub mod encode;
pub mod request;
pub mod response;

pub use body::{BodyFraming, ChunkedDecoder};
pub use request::{parse_request, HeadError, RequestHead};
pub use response::{parse_response, ResponseHead};

/// Headers that describe one hop and never cross the proxy (RFC 9110 §7.6.1).
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    const HOP: [&[u8]; 9] = [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authenticate",
        b"proxy-authorization",
    ];
    HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Whether a comma-separated header value contains `token` (case-insensitive).
pub fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}
