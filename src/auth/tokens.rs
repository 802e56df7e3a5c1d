//! Each worker's cache of tokens it has verified (a speed-up only, so per worker:
//! STYLE): a token seen again skips the signature check until its `exp`. Bounded by
//! [`MAX_TOKENS`] per worker; when full, the entries that expired go, and if none
//! did, the whole cache is dropped (tokens are cheap to verify again, and a flood of
//! distinct tokens must not grow memory). Keyed by the authorizer and the token's
//! own bytes, compared in full (no hash stands in for a credential).
//!
//! Tested below and end to end in `tests/jwt.rs`.

use std::collections::HashMap;

use super::jwt::{Verified, LEEWAY};

/// Most tokens one worker keeps.
pub const MAX_TOKENS: usize = 4096;

#[derive(Debug, Default)]
pub struct TokenCache {
    /// By token: the authorizer that verified it, and what it found. (A token used
    /// with two authorizers is kept for the last one that checked it.)
    map: HashMap<Box<str>, (u32, Verified)>,
    /// The plan the entries were verified under (authorizer numbers are per plan).
    plan: u64,
}

impl TokenCache {
    /// The verification of `token` by authorizer `authorizer`, if it is cached and
    /// not expired at `now`.
    pub fn get(&self, authorizer: u32, token: &str, now: u64) -> Option<&Verified> {
        let (by, v) = self.map.get(token)?;
        if *by != authorizer {
            return None;
        }
        v.exp
            .is_some_and(|exp| exp.saturating_add(LEEWAY) > now)
            .then_some(v)
    }

    /// Keeps a verified token until its `exp` (tokens without one are not kept).
    pub fn put(&mut self, authorizer: u32, token: &str, v: Verified, now: u64) {
        if v.exp.is_none() {
            return;
        }
        if self.map.len() >= MAX_TOKENS {
            self.map
                .retain(|_, (_, t)| t.exp.is_some_and(|exp| exp.saturating_add(LEEWAY) > now));
            if self.map.len() >= MAX_TOKENS {
                self.map.clear();
            }
        }
        self.map.insert(Box::from(token), (authorizer, v));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Forgets everything when `plan` is not the plan the entries were verified
    /// under (after a reload, authorizer numbers and rules may mean other things).
    pub fn for_plan(&mut self, plan: u64) {
        if self.plan != plan {
            self.map.clear();
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
        c.put(0, "t1", v(Some(1000)), 900);
        assert!(c.get(0, "t1", 950).is_some());
        assert!(c.get(1, "t1", 950).is_none(), "per authorizer");
        assert!(c.get(0, "t1", 1000 + LEEWAY).is_none(), "expired");
        c.put(0, "noexp", v(None), 900);
        assert!(c.get(0, "noexp", 900).is_none());
        for i in 0..MAX_TOKENS + 10 {
            c.put(0, &format!("x{i}"), v(Some(2000)), 900);
        }
        assert!(c.len() <= MAX_TOKENS);
    }
}
