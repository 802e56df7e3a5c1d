//! W3C trace context (`traceparent`): keep the caller's trace, add our own span.

use super::request_id::IdGen;

const HEX: &[u8; 16] = b"0123456789abcdef";

fn is_lower_hex(b: &[u8]) -> bool {
    b.iter()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// Writes the `traceparent` to send upstream: the caller's trace id and flags when
/// its header is valid (version 00, non-zero ids), a new trace otherwise; the parent
/// id is always a fresh span id of ours. 55 bytes.
#[inline]
pub fn next_traceparent(incoming: Option<&[u8]>, ids: &IdGen, out: &mut Vec<u8>) {
    let valid = incoming.filter(|v| {
        v.len() == 55
            && v.starts_with(b"00-")
            && v[35] == b'-'
            && v[52] == b'-'
            && is_lower_hex(&v[3..35])
            && is_lower_hex(&v[36..52])
            && is_lower_hex(&v[53..55])
            && v[3..35].iter().any(|&c| c != b'0')
            && v[36..52].iter().any(|&c| c != b'0')
    });
    out.extend_from_slice(b"00-");
    match valid {
        Some(v) => out.extend_from_slice(&v[3..35]),
        None => {
            push_hex(out, ids.next_u64() | 1);
            push_hex(out, ids.next_u64());
        }
    }
    out.push(b'-');
    push_hex(out, ids.next_u64() | 1);
    out.push(b'-');
    match valid {
        Some(v) => out.extend_from_slice(&v[53..55]),
        // a trace we start is sampled, so the upstream's spans join it
        None => out.extend_from_slice(b"01"),
    }
}

fn push_hex(out: &mut Vec<u8>, n: u64) {
    for i in (0..16).rev() {
        out.push(HEX[((n >> (i * 4)) & 15) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_valid_trace_and_replaces_the_span() {
        let ids = IdGen::new(3);
        let mut out = Vec::new();
        let inc = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        next_traceparent(Some(inc), &ids, &mut out);
        assert_eq!(out.len(), 55);
        assert_eq!(&out[..36], &inc[..36]);
        assert_ne!(&out[36..52], &inc[36..52]);
        assert_eq!(&out[52..], b"-01");
    }

    #[test]
    fn starts_a_trace_when_absent_or_invalid() {
        let ids = IdGen::new(4);
        for bad in [
            None,
            Some(&b"garbage"[..]),
            Some(&b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"[..]),
            Some(&b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"[..]),
        ] {
            let mut out = Vec::new();
            next_traceparent(bad, &ids, &mut out);
            assert_eq!(out.len(), 55, "{bad:?}");
            assert!(out.starts_with(b"00-") && out.ends_with(b"-01"));
            if let Some(b) = bad {
                assert_ne!(&out[..], b);
            }
        }
    }
}
