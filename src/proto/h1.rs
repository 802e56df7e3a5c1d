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

/// Calls `each` with the fields of a chunked trailer section (as kept by
/// [`ChunkedDecoder::keeping_trailers`]) that may cross the proxy: not hop-by-hop,
/// and none of the fields a trailer must not carry (framing, routing, content
/// metadata; RFC 9110 §6.5.1). `false` when the section does not parse (or has
/// more than 32 fields): nothing of it is forwarded.
pub fn forwardable_trailers(raw: &[u8], mut each: impl FnMut(&[u8], &[u8])) -> bool {
    if raw.is_empty() {
        return true;
    }
    let mut text = Vec::with_capacity(raw.len() + 2);
    text.extend_from_slice(raw);
    text.extend_from_slice(b"\r\n");
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let Ok(httparse::Status::Complete((_, fields))) = httparse::parse_headers(&text, &mut fields)
    else {
        return false;
    };
    for f in fields.iter() {
        if !trailer_forbidden(f.name.as_bytes()) {
            each(f.name.as_bytes(), f.value);
        }
    }
    true
}

/// Fields never forwarded in a trailer section.
pub fn trailer_forbidden(name: &[u8]) -> bool {
    const NOT_IN_TRAILERS: [&[u8]; 7] = [
        b"content-length",
        b"content-type",
        b"content-encoding",
        b"content-range",
        b"host",
        b"authorization",
        b"set-cookie",
    ];
    is_hop_by_hop(name) || NOT_IN_TRAILERS.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Whether a comma-separated header value contains `token` (case-insensitive).
pub fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_forwarded_without_forbidden_fields() {
        let mut got = Vec::new();
        let raw = b"grpc-status: 0\r\nContent-Length: 5\r\nTransfer-Encoding: x\r\ngrpc-message: fine\r\n";
        assert!(forwardable_trailers(raw, |n, v| got.push((n.to_vec(), v.to_vec()))));
        assert_eq!(
            got,
            vec![
                (b"grpc-status".to_vec(), b"0".to_vec()),
                (b"grpc-message".to_vec(), b"fine".to_vec())
            ]
        );
        assert!(!forwardable_trailers(b"no colon here\r\n", |_, _| {}));
        assert!(forwardable_trailers(b"", |_, _| panic!("no fields")));
    }
}
