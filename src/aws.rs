//! Calling AWS (DESIGN §9.1): the region, credentials from the standard chain or
//! the configuration (`credentials`), endpoints (configured, `AWS_ENDPOINT_URL_*`,
//! else AWS's own), and SigV4 signing (`sign`: our own, checked against AWS's
//! `aws-sigv4` crate in the tests). The requests go over the worker's pooled connections
//! (`upstream::call`); nothing here does I/O except reading credential files at
//! compile time.
//!
//! - `credentials`: the chain (environment, shared credentials and config files
//!   with profiles) and static credentials; secrets never reach a log line.
//! - `sign`: SigV4: canonical requests, signing keys cached per day, the headers
//!   that make a request a signed one.
//! - `lambda`: the Invoke API request and how its answers read; the proxy events.
//! - `actions`: HTTP API style service actions (SQS, EventBridge, Kinesis, Step
//!   Functions) and the bodies they send.

pub mod actions;
pub mod credentials;
pub mod lambda;
pub mod rest;
pub mod sign;

use std::sync::Arc;

use crate::upstream::call::Endpoint;

pub use credentials::Credentials;

/// Everything a signed call to one AWS service needs.
///
/// Cross-core state, named here: `credentials` is swapped by the service's
/// refresher thread ([`Service::start_refresh`]) when the chain's answer changes (a
/// rotated shared-credentials file), and read by every worker with one `arc-swap`
/// load per call.
#[derive(Debug)]
pub struct Service {
    /// The signing name (`lambda`, `sqs`, …).
    pub name: &'static str,
    pub region: String,
    pub endpoint: Endpoint,
    pub credentials: arc_swap::ArcSwap<Credentials>,
    /// The standard chain's profile, when the credentials came from it (they are
    /// looked up again every `REFRESH`); `None`: static, never refreshed.
    pub chain: Option<Option<String>>,
    /// The signing key derived last (once a day, and when the credentials change).
    pub keys: sign::KeyCache,
}

/// Temporary credentials are fetched again this long before they expire.
pub const REFRESH_BEFORE_EXPIRY: std::time::Duration = std::time::Duration::from_secs(300);

/// How often chain credentials are looked up again.
pub const REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

impl Service {
    pub fn new(
        name: &'static str,
        region: String,
        endpoint: Endpoint,
        credentials: Credentials,
    ) -> Service {
        Service {
            name,
            region,
            endpoint,
            credentials: arc_swap::ArcSwap::from_pointee(credentials),
            chain: None,
            keys: sign::KeyCache::default(),
        }
    }

    /// For chain credentials: a thread that looks them up again every `REFRESH`
    /// (off the request path) and swaps in a changed answer; it ends when the plan
    /// holding the service is gone. A failed lookup keeps the last good ones.
    pub fn start_refresh(self: &Arc<Self>) {
        let Some(profile) = self.chain.clone() else {
            return;
        };
        let weak = Arc::downgrade(self);
        let _ = std::thread::Builder::new()
            .name(format!("aws-{}-credentials", self.name))
            .spawn(move || loop {
                std::thread::sleep(REFRESH);
                let Some(svc) = weak.upgrade() else {
                    return;
                };
                // temporary credentials: fetched again only in their last minutes
                if let Some(expires) = svc.credentials.load().expires {
                    if std::time::SystemTime::now() + REFRESH_BEFORE_EXPIRY < expires {
                        continue;
                    }
                }
                let env = |k: &str| std::env::var(k).ok();
                if let Ok(fresh) = credentials::chain(&env, profile.as_deref()) {
                    if **svc.credentials.load() != fresh {
                        crate::info!("aws {}: credentials changed ({})", svc.name, fresh.source);
                        svc.credentials.store(Arc::new(fresh));
                    }
                }
            });
    }
}
