//! gRPC over the HTTP/2 adapter: gateway answers as trailers-only gRPC statuses
//! (gRPC's HTTP-to-status table) and trailer sections as HTTP/2 trailer blocks.

use crate::proto::h1::forwardable_trailers;

/// The gRPC status for an HTTP status, as gRPC's `http-grpc-status-mapping.md` has
/// clients derive it.
pub(super) fn grpc_status(http: u16) -> u8 {
    match http {
        400 => 13,                   // INTERNAL
        401 => 16,                   // UNAUTHENTICATED
        403 => 7,                    // PERMISSION_DENIED
        404 => 12,                   // UNIMPLEMENTED
        429 | 502 | 503 | 504 => 14, // UNAVAILABLE
        _ => 2,                      // UNKNOWN
    }
}

/// `grpc-message`: the HTTP status and reason, percent-encoded as gRPC requires.
pub(super) fn grpc_message(status: u16, reason: &[u8]) -> String {
    let mut m = format!("HTTP {status}");
    if !reason.is_empty() {
        m.push_str(": ");
        for &b in reason {
            if (0x20..=0x7e).contains(&b) && b != b'%' {
                m.push(b as char);
            } else {
                m.push_str(&format!("%{b:02X}"));
            }
        }
    }
    m
}

/// The forwardable fields of a chunked trailer section as an HTTP/2 trailer block
/// (`None` when there are none). Fields HTTP/2 cannot carry are left out.
pub fn trailer_map(raw: &[u8]) -> Option<http::HeaderMap> {
    let mut map = http::HeaderMap::new();
    forwardable_trailers(raw, |name, value| {
        let name = http::HeaderName::from_bytes(&name.to_ascii_lowercase());
        let value = http::HeaderValue::from_bytes(value);
        if let (Ok(n), Ok(v)) = (name, value) {
            map.append(n, v);
        }
    });
    (!map.is_empty()).then_some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_to_grpc_as_grpc_says() {
        let cases = [
            (400, 13),
            (401, 16),
            (403, 7),
            (404, 12),
            (429, 14),
            (503, 14),
            (500, 2),
        ];
        for (http, grpc) in cases {
            assert_eq!(grpc_status(http), grpc, "{http}");
        }
        assert_eq!(
            grpc_message(429, b"Too Many Requests"),
            "HTTP 429: Too Many Requests"
        );
        assert_eq!(grpc_message(500, b"50% \xff"), "HTTP 500: 50%25 %FF");
    }

    #[test]
    fn trailer_blocks_keep_only_forwardable_fields() {
        let t = trailer_map(b"grpc-status: 0\r\nContent-Length: 3\r\nX-Sum: abc\r\n").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t["grpc-status"], "0");
        assert_eq!(t["x-sum"], "abc");
        assert!(trailer_map(b"").is_none());
    }
}
