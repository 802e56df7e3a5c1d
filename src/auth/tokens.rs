//! Each worker's cache of tokens it has verified (a speed-up only, so per worker:
//! STYLE): a token seen again skips the signature check until its `exp`. Bounded by
//! [`MAX_TOKENS`] per worker; when full, the entries that expired go, and if none
//! did, the whole cache is dropped (tokens are cheap to verify again, and a flood of
//! distinct tokens must not grow memory). Looked up by a hash of the token's last
//! 32 bytes (its signature's end, random for every real token) and its length, then
//! compared in full: no hash stands in for a credential, and a hash of the whole
//! token (~1 KiB) would cost more than the rest of the auth stage. Only verified
//! tokens are stored, so nobody without the issuer's key can crowd a bucket.
//!
//! Tested below and end to end in `tests/jwt.rs`.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use super::jwt::{Verified, LEEWAY};

/// Most tokens one worker keeps.
pub const MAX_TOKENS: usize = 4096;

/// A kept token: its bytes, the authorizer that verified it, what it found.
type Kept = (Box<[u8]>, u32, Verified);

#[derive(Debug, Default)]
pub struct TokenCache {
    /// By [`TokenCache::slot`]: the tokens there, the authorizer that verified each,
    /// and what it found. (A token used with two authorizers is kept for the last.)
    map: HashMap<u64, Vec<Kept>>,
    len: usize,
    hasher: std::collections::hash_map::RandomState,
    /// The plan the entries were verified under (authorizer numbers are per plan).
    plan: u64,
}

impl TokenCache {
    fn slot(&self, token: &[u8]) -> u64 {
        let b = token;
        let mut h = self.hasher.build_hasher();
        h.write(&b[b.len().saturating_sub(32)..]);
        h.write_usize(b.len());
        h.finish()
    }

    /// The verification of `token` by authorizer `authorizer`, if it is cached and
    /// not expired at `now`.
    pub fn get(&self, authorizer: u32, token: &[u8], now: u64) -> Option<&Verified> {
        let list = self.map.get(&self.slot(token))?;
        let (_, by, v) = list.iter().find(|(t, _, _)| &**t == token)?;
        if *by != authorizer {
            return None;
        }
        v.exp
            .is_some_and(|exp| exp.saturating_add(LEEWAY) > now)
            .then_some(v)
    }

    /// Keeps a verified token until its `exp` (tokens without one are not kept).
    pub fn put(&mut self, authorizer: u32, token: &[u8], v: Verified, now: u64) {
        if v.exp.is_none() {
            return;
        }
        let live = |t: &Verified| t.exp.is_some_and(|exp| exp.saturating_add(LEEWAY) > now);
        if self.len >= MAX_TOKENS {
            self.map.retain(|_, list| {
                list.retain(|(_, _, t)| live(t));
                !list.is_empty()
            });
            self.len = self.map.values().map(Vec::len).sum();
            if self.len >= MAX_TOKENS {
                self.map.clear();
                self.len = 0;
            }
        }
        let slot = self.slot(token);
        let list = self.map.entry(slot).or_default();
        match list.iter_mut().find(|(t, _, _)| &**t == token) {
            Some(e) => *e = (Box::from(token), authorizer, v),
            None => {
                list.push((Box::from(token), authorizer, v));
                self.len += 1;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets everything when `plan` is not the plan the entries were verified
    /// under (after a reload, authorizer numbers and rules may mean other things).
    pub fn for_plan(&mut self, plan: u64) {
        if self.plan != plan {
            self.map.clear();
            self.len = 0;
            self.plan = plan;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn v(exp: Option<u64>) -> Verified {
        Verified {
            exp,
            claims: Arc::new(serde_json::Map::new()),
        }
    }

    #[test]
    fn tokens_are_kept_until_they_expire_and_bounded() {
        let mut c = TokenCache::default();
        c.put(0, b"t1", v(Some(1000)), 900);
        assert!(c.get(0, b"t1", 950).is_some());
        assert!(c.get(1, b"t1", 950).is_none(), "per authorizer");
        assert!(c.get(0, b"t1", 1000 + LEEWAY).is_none(), "expired");
        c.put(0, b"noexp", v(None), 900);
        assert!(c.get(0, b"noexp", 900).is_none());
        for i in 0..MAX_TOKENS + 10 {
            c.put(0, format!("x{i}").as_bytes(), v(Some(2000)), 900);
        }
        assert!(c.len() <= MAX_TOKENS);
        // same tail and length, different token: never mistaken for one another
        let mut c = TokenCache::default();
        c.put(
            0,
            b"aaaa.bbbb.same-tail-0123456789abcdef0123456789",
            v(Some(2000)),
            900,
        );
        assert!(c
            .get(0, b"zzzz.yyyy.same-tail-0123456789abcdef0123456789", 950)
            .is_none());
        assert!(c
            .get(0, b"aaaa.bbbb.same-tail-0123456789abcdef0123456789", 950)
            .is_some());
    }
}
