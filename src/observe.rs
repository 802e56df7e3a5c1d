//! What the gateway tells its operator: its own log lines (`log`) and request ids
//! (`request_id`). Never logs per request; never allocates on the request path for a
//! line nobody reads.

pub mod access_log;
pub mod log;
pub mod metrics;
pub mod request_id;
pub mod trace;
