//! API keys: looked up by SHA-256 digest, compared in constant time. The gateway
//! keeps digests only; a key's value never reaches a log or a metric.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use sha2::{Digest, Sha256};

pub type KeyId = u32;
pub type Sha = [u8; 32];

/// Digests are uniformly random: their first 8 bytes are a perfect hash already.
#[derive(Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 |= u64::from(*b) << (8 * i);
        }
    }
}

#[derive(Debug, Default)]
pub struct ApiKeys {
    by_digest: HashMap<Sha, KeyId, BuildHasherDefault<DigestHasher>>,
}

pub fn sha256(bytes: &[u8]) -> Sha {
    Sha256::digest(bytes).into()
}

/// Equality whose time does not depend on where the inputs differ.
pub fn ct_eq(a: &Sha, b: &Sha) -> bool {
    let mut diff = 0u8;
    for i in 0..32 {
        diff |= a[i] ^ b[i];
    }
    std::hint::black_box(diff) == 0
}

/// Parses 64 hex digits.
pub fn parse_hex_digest(s: &str) -> Option<Sha> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks(2).enumerate() {
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        out[i] = hex(pair[0])? << 4 | hex(pair[1])?;
    }
    Some(out)
}

impl ApiKeys {
    /// Adds a key by digest; false when the digest is already there.
    pub fn insert(&mut self, digest: Sha, id: KeyId) -> bool {
        self.by_digest.insert(digest, id).is_none()
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The key a client presented, if it is one of ours.
    pub fn find(&self, presented: &[u8]) -> Option<KeyId> {
        if presented.is_empty() || presented.len() > 128 {
            return None;
        }
        let d = sha256(presented);
        let (stored, id) = self.by_digest.get_key_value(&d)?;
        ct_eq(stored, &d).then_some(*id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_by_value_and_digest() {
        let mut k = ApiKeys::default();
        let key = b"0123456789abcdef0123456789abcdef";
        assert!(k.insert(sha256(key), 7));
        assert_eq!(k.find(key), Some(7));
        assert_eq!(k.find(b"0123456789abcdef0123456789abcdeX"), None);
        assert_eq!(k.find(b""), None);
        let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; // sha256("test")
        assert!(k.insert(parse_hex_digest(hex).unwrap(), 8));
        assert_eq!(k.find(b"test"), Some(8));
        assert!(parse_hex_digest("xyz").is_none());
    }
}
