//! `x-request-id`: kept from the client when sane, else generated per worker.

use std::cell::Cell;

/// A client's id is kept when it is 1..=128 bytes of `[A-Za-z0-9._:+=/-]`.
pub fn is_sane(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._:+=/-".contains(b))
}

/// Per-worker generator of UUID-shaped random ids (xorshift128+, not cryptographic:
/// ids name requests, they authorize nothing).
#[derive(Debug)]
pub struct IdGen {
    s0: Cell<u64>,
    s1: Cell<u64>,
}

impl IdGen {
    pub fn new(seed: u64) -> Self {
        let mix = |mut z: u64| {
            z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let s0 = mix(seed);
        IdGen {
            s0: Cell::new(s0 | 1),
            s1: Cell::new(mix(s0)),
        }
    }

    pub fn from_entropy(worker: usize) -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        IdGen::new(t ^ ((worker as u64) << 48) ^ u64::from(std::process::id()))
    }

    pub fn next_u64(&self) -> u64 {
        let mut x = self.s0.get();
        let y = self.s1.get();
        self.s0.set(y);
        x ^= x << 23;
        x ^= x >> 17;
        x ^= y ^ (y >> 26);
        self.s1.set(x);
        x.wrapping_add(y)
    }

    /// Writes a fresh id (36 bytes, UUID v4 layout) into `out`.
    pub fn write(&self, out: &mut [u8; 36]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let a = self.next_u64();
        let b = self.next_u64();
        let bytes: [u8; 16] = {
            let mut v = [0u8; 16];
            v[..8].copy_from_slice(&a.to_le_bytes());
            v[8..].copy_from_slice(&b.to_le_bytes());
            v[6] = (v[6] & 0x0f) | 0x40;
            v[8] = (v[8] & 0x3f) | 0x80;
            v
        };
        let mut j = 0;
        for (i, byte) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out[j] = b'-';
                j += 1;
            }
            out[j] = HEX[(byte >> 4) as usize];
            out[j + 1] = HEX[(byte & 15) as usize];
            j += 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanity() {
        assert!(is_sane(b"abc-123"));
        assert!(!is_sane(b""));
        assert!(!is_sane(b"a b"));
        assert!(!is_sane(b"a\"b"));
        assert!(!is_sane(&[b'a'; 129]));
    }

    #[test]
    fn ids_are_uuid_shaped_and_distinct() {
        let g = IdGen::new(1);
        let mut a = [0u8; 36];
        let mut b = [0u8; 36];
        g.write(&mut a);
        g.write(&mut b);
        assert_ne!(a, b);
        assert_eq!(a[8], b'-');
        assert_eq!(a[14], b'4');
        assert!(is_sane(&a));
    }
}
