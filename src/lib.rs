//! turnpike: a thread-per-core API gateway and edge proxy on io_uring.
//!
//! The modules follow the request's path, and data flows one way through them:
//!
//! ```text
//! config ─► plan ─► worker ─► proto ─► pipeline ─► upstream ─► observe
//!  TOML      compiled  per-core  h1        route →      pools,     logs,
//!  model,    Plan,     runtime,  framing,  integrate →  connect,   request
//!  spans,    router    listener, bodies    respond      balance    ids
//!  errors    trie      conn loop
//!                         ▲
//!                      control: reload (SIGHUP, admin), drain, admin listener
//! ```
//!
//! - [`config`]: reads TOML with positions; every error has file:line:column.
//! - [`plan`]: compiles the config into an immutable [`plan::Plan`] (router trie,
//!   per-stage integrations) published through `arc-swap`.
//! - [`worker`]: one monoio runtime per core, pinned, with its own `SO_REUSEPORT`
//!   listener, connection pools and state; io_uring first, epoll fallback.
//! - [`proto`]: HTTP/1.1 framing on `httparse` (request heads, body framing,
//!   encoding), the HTTP/2 adapter, TLS, and the response head seam (`proto::head`)
//!   through which every response head reaches the client in its protocol.
//! - [`pipeline`]: the stages a request goes through, in order.
//! - [`cache`]: the per-stage response cache, sharded across cores (SIEVE eviction).
//! - [`limit`]: throttles as node-wide budgets leased by per-worker buckets; API keys.
//! - [`upstream`]: connections to upstream targets, per-worker keep-alive pools, and
//!   the gateway's own calls (`upstream::call`: authorizers, AWS).
//! - [`aws`]: credentials, endpoints and SigV4 signing for calls to AWS (Lambda).
//! - [`transform`]: mapping templates (VTL), JSONPath, `$util`.
//! - [`observe`]: request ids and the gateway's own log lines.
//! - [`control`]: reload, graceful drain, the admin listener.
//! - [`error`]: which side failed and whether a retry is safe, mapped to a response.
//! - [`fuzz`]: entry points of the fuzz targets, shared with their seed-corpus test.

pub mod auth;
pub mod aws;
pub mod cache;
pub mod config;
pub mod control;
pub mod error;
pub mod fuzz;
pub mod limit;
pub mod observe;
pub mod pipeline;
pub mod plan;
pub mod proto;
pub mod transform;
pub mod upstream;
pub mod worker;
