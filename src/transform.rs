//! Transformations (DESIGN §10): Velocity mapping templates (`vtl`) over the
//! values they work on (`value`), the JSONPath they read bodies with
//! (`jsonpath`), and `$util`'s functions (`util`), and a non-proxy integration's mapping (`mapping`:
//! template selection, passthrough, integration responses, parameter sources), HTTP API parameter mapping
//! on proxy routes (`params`), request models (`models`) and gateway responses
//! (`responses`). Everything here decides on plain
//! data and is unit-tested without a runtime; the pipeline calls it.

pub mod jsonpath;
pub mod mapping;
pub mod models;
pub mod params;
pub mod responses;
pub mod util;
pub mod value;
pub mod vtl;
