//! Throttling: node-wide token-bucket budgets (`budget`), the per-worker buckets that
//! lease from them (`local`), and API keys (`keys`).
//!
//! Every throttle in the config (gateway, stage, stage route, usage plan per key,
//! usage plan per key per route) is one [`Budget`]: a token bucket global to the
//! node, on atomics. Workers never take one token at a time from it: each keeps a
//! [`Local`] bucket that leases a small batch and spends it without touching shared
//! memory, so the node admits its configured rate whether traffic lands on one core
//! or on all of them. See `docs/architecture.md` for lease sizing and overshoot.
//! Tested by unit tests here (including a multi-threaded conservation test),
//! `benches/limit.rs`, and `tests/throttle.rs` (accuracy end to end).

pub mod budget;
pub mod keys;
pub mod local;
pub mod quota;
pub mod table;

pub use budget::Budget;
pub use keys::{ApiKeys, KeyId};
pub use local::{Local, Locals};
