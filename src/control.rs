//! Control of a running node: loading and reloading the plan (`reload`), signals and
//! the drain (`run`), and the admin listener (`admin`). The only layer that may touch
//! every other one. Runs on its own threads, never on a worker.

pub mod admin;
pub mod reload;
pub mod run;

pub use reload::ConfigSource;
pub use run::run;
