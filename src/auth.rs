//! Identity and access (DESIGN §8): who the caller is and whether the route lets
//! them in. Each piece decides on plain data and is unit-tested without a runtime;
//! the pipeline's auth stage (`pipeline/auth.rs`) calls them in the order §8.1 gives.
//!
//! - `jwt`: JWT verification (signature, `iss`, `aud`/`client_id`, `exp`/`nbf`/`iat`
//!   with leeway, scopes), on the keys of
//! - `jwks`: the node's JSON Web Key Sets, from files or URLs, fetched and refreshed
//!   off the request path by one thread, the last good set kept;
//! - `tokens`: each worker's cache of tokens it has verified, until they expire.
//! - `cors`: an API's CORS policy: preflight answers and headers on responses.
//! - `authorizer`: request and token (Lambda) authorizers: identity values, the
//!   events sent, the answers read, the decision per method ARN, with
//! - `policy`: IAM policy documents evaluated for `execute-api` ARNs, and
//! - `decisions`: the node's cache of authorizer answers, with coalescing.
//! - `sigv4`: SigV4 signatures presented by callers, verified (for `auth = "iam"`).

pub mod authorizer;
pub mod cors;
pub mod decisions;
pub mod jwks;
pub mod jwt;
pub mod policy;
pub mod sigv4;
pub mod tokens;
