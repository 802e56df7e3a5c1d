//! Configuration: the TOML model (`model`), reading files with positions (`load`),
//! durations and sizes (`units`), and error reporting (`errors`).
//!
//! This layer only reads and type-checks. Meaning (references, route conflicts,
//! ranges) is checked when the plan is compiled, which reports through the same
//! [`Errors`] so `turnpike check` prints everything at once.

pub mod errors;
pub mod load;
pub mod model;
pub mod units;

pub use errors::{Errors, Pos, Sources};
pub use load::{load_file, load_str, Config, Entry};

/// The built-in quickstart, served by a bare `turnpike run`.
pub const QUICKSTART: &str = include_str!("../configs/quickstart.toml");
