//! Calling AWS (DESIGN §9.1): the region, credentials from the standard chain or
//! the configuration (`credentials`), endpoints (configured, `AWS_ENDPOINT_URL_*`,
//! else AWS's own), and SigV4 signing with the maintained `aws-sigv4` crate
//! (`sign`). The requests go over the worker's pooled connections
//! (`upstream::call`); nothing here does I/O except reading credential files at
//! compile time.
//!
//! - `credentials`: the chain (environment, shared credentials and config files
//!   with profiles) and static credentials; secrets never reach a log line.
//! - `sign`: the headers that make a request a SigV4-signed one.
//! - `lambda`: the Invoke API request and how its answers read.

pub mod credentials;
pub mod lambda;
pub mod sign;

use std::sync::Arc;

use crate::upstream::call::Endpoint;

pub use credentials::Credentials;

/// Everything a signed call to one AWS service needs.
#[derive(Debug)]
pub struct Service {
    /// The signing name (`lambda`, `sqs`, …).
    pub name: &'static str,
    pub region: String,
    pub endpoint: Endpoint,
    pub credentials: Arc<Credentials>,
}
