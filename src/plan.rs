//! The compiled, immutable form of the configuration, and the handle that publishes it.
//!
//! A [`Plan`] holds everything a worker needs to serve a request: the router, each
//! route's integration with its URI template already expanded for its stage, the
//! upstreams with resolved addresses, the limits. All parsing and allocation happen in
//! [`compile`]; the request path only reads. A reload builds a new plan and swaps it
//! in with `arc-swap`; a request keeps the `Arc` it started with until it finishes.
//! Tested by unit tests here and by `turnpike check`/`routes` end-to-end tests.

pub mod compile;
pub mod route_key;
pub mod router;
pub mod template;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;

use crate::cache::{Cache, CacheStore, KeySpec};
use crate::limit::budget::Rate;
use crate::limit::quota::{Period, QuotaCounter, QuotaStore};
use crate::limit::table::KeyTable;
use crate::limit::{ApiKeys, Budget};
use crate::observe::access_log::Format;
use crate::observe::metrics::{MetricsStore, Series};
use crate::upstream::health::HealthStore;

pub use compile::{compile, socket_addr};
pub use route_key::Method;
pub use router::{Lookup, Params, RouteId, Router};
pub use template::PathTemplate;

/// Listener, limits and timeouts from `[gateway]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    pub listen: Vec<SocketAddr>,
    pub admin: Option<SocketAddr>,
    /// SHA-256 of the admin bearer token, when one is required.
    pub admin_token: Option<[u8; 32]>,
    /// Number of worker threads; already resolved from `workers = 0`.
    pub workers: usize,
    /// Where quota counters are kept across restarts (none: in memory only).
    pub state_dir: Option<PathBuf>,
    pub timeout: Duration,
    pub max_body: u64,
    /// Request bodies up to this many bytes are read whole before going upstream
    /// (routes may say otherwise); 0: every body streams.
    pub request_buffering: u64,
    pub max_header_size: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub drain_timeout: Duration,
    /// `[[gateway.tls]]` listener addresses (their configurations are in `Plan::tls`).
    pub tls_listen: Vec<SocketAddr>,
    /// The region and account of execute-api ARNs.
    pub region: String,
    pub account: String,
}

/// A TLS listener's server configuration (certificates loaded and checked).
#[derive(Debug, Clone)]
pub struct TlsListener {
    pub addr: SocketAddr,
    pub config: Arc<rustls::ServerConfig>,
}

#[derive(Debug)]
pub struct Plan {
    /// Hash of every source file's text, shown by the admin `/config`.
    pub hash: u64,
    pub loaded_at: SystemTime,
    pub sources: Vec<PathBuf>,
    pub gateway: Gateway,
    /// In the order of `gateway.tls_listen`.
    pub tls: Vec<TlsListener>,
    pub router: Router,
    pub routes: Vec<Route>,
    pub stages: Vec<Stage>,
    pub upstreams: Vec<Upstream>,
    pub limits: Limits,
    pub keys: ApiKeys,
    /// Indexed by `KeyId`.
    pub key_info: Vec<ApiKey>,
    pub usage_plans: Vec<UsagePlan>,
    /// Every API's JWT authorizers (`RouteAuth::Jwt` indexes this).
    pub authorizers: Vec<JwtAuthorizer>,
    /// Every API's request and token authorizers (`RouteAuth::Request` indexes this).
    pub request_authorizers: Vec<RequestAuthorizer>,
    /// `[iam.users]`, sorted by access key (looked up by binary search).
    pub iam_users: Vec<IamUser>,
    /// The AWS services the plan calls (their credentials refreshed off the request path).
    pub aws_services: Vec<Arc<crate::aws::Service>>,
    /// `[access_log]`: where lines go (`-` = stdout) and their compiled format.
    pub access_log: Option<(String, Format)>,
    /// Things that compiled but that the operator should know (features not enforced yet).
    pub warnings: Vec<String>,
}

/// The node-wide budgets of this plan. Cross-core state (atomics): each worker
/// leases from them through its `limit::Locals`.
#[derive(Debug)]
pub struct Limits {
    pub budgets: Vec<Budget>,
    /// Lease size per budget (same index).
    pub leases: Vec<u32>,
    /// `[gateway].throttle`.
    pub gateway: Option<u32>,
    /// Per-key (and per-key per-route) buckets, claimed on first use.
    pub keys: KeyTable,
    /// The zero of every `now_ns` of this plan's buckets.
    pub epoch: Instant,
}

impl Limits {
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            budgets: Vec::new(),
            leases: Vec::new(),
            gateway: None,
            keys: KeyTable::new(64),
            epoch: Instant::now(),
        }
    }
}

#[derive(Debug)]
pub struct UsagePlan {
    pub name: String,
    pub stages: Vec<u32>,
    pub throttle: Option<(f64, u64)>,
    pub invalidate_cache: bool,
}

/// A configured API key (its value is never kept, only its digest in `ApiKeys`).
#[derive(Debug)]
pub struct ApiKey {
    pub name: String,
    pub plan: u32,
    /// The plan's per-key throttle and its lease size (state in `Limits::keys`).
    pub throttle: Option<(Rate, u32)>,
    /// The plan's per-key per-route throttles: (route, rate, lease).
    pub route_limits: Vec<(RouteId, Rate, u32)>,
    pub quota: Option<KeyQuota>,
}

/// A key's usage-plan quota and the node-wide counter it spends (bound by name to
/// the persistent `QuotaStore` before the plan is published).
#[derive(Debug)]
pub struct KeyQuota {
    pub limit: u64,
    pub period: Period,
    /// Quota leased per worker at a time.
    pub lease: u32,
    pub counter: Arc<QuotaCounter>,
}

#[derive(Debug)]
pub struct Stage {
    pub name: String,
    pub api: String,
    pub hosts: Vec<String>,
    /// `""` for `/`, else `/v1`-style without a trailing slash.
    pub base_path: String,
    /// `[stages.S].throttle` budget.
    pub limit: Option<u32>,
    /// `[stages.S].cache`: present = caching on for the stage.
    pub cache: Option<StageCache>,
    /// `[stages.S].canary`: the share of requests it takes, in parts per million.
    pub canary_ppm: Option<u32>,
    /// The API's CORS policy (`[apis.A.cors]`).
    pub cors: Option<Arc<crate::auth::cors::Cors>>,
    /// `[stages.S].variables` (for authorizer events; integrations have theirs
    /// expanded at compile time).
    pub variables: Vec<(String, String)>,
    /// The API's `api_key_source = "authorizer"`: the key is the one a request
    /// authorizer's `usageIdentifierKey` names, not `x-api-key`.
    pub key_from_authorizer: bool,
    /// The API's `binary_media_types` (lower-case; `type/*` and `*/*` allowed).
    pub binary_media_types: Vec<String>,
    /// The API's customised gateway responses (`None`: the built-in answers).
    pub gateway_responses: Option<Arc<StageResponses>>,
}

/// An API's gateway responses, with what their templates may name of the stage.
#[derive(Debug)]
pub struct StageResponses {
    pub responses: crate::transform::responses::GatewayResponses,
    pub stage: String,
    pub api: String,
    pub variables: Vec<(String, String)>,
}

/// A route's request validation (DESIGN §10).
#[derive(Debug)]
pub struct Validation {
    /// The model a JSON body must satisfy.
    pub body: Option<Arc<crate::transform::models::Model>>,
    pub params: Vec<crate::transform::models::Required>,
}

/// A stage's cache settings and the cache itself (bound by `bind_caches`).
#[derive(Debug)]
pub struct StageCache {
    pub capacity: usize,
    pub max_entry: usize,
    pub ttl: Duration,
    pub statuses: Vec<u16>,
    pub invalidation: Invalidation,
    pub unauthorized: Unauthorized,
    pub cache: Option<Arc<Cache>>,
}

/// Who may send `Cache-Control: max-age=0` to refresh an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    /// Callers whose API key's usage plan has `invalidate_cache = true`.
    RequireApiKey,
    Anyone,
    Nobody,
}

/// AWS's three answers to a refresh that is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthorized {
    /// 403 Forbidden.
    Fail403,
    /// Served as if the header were absent, with a `Warning` saying so.
    IgnoreWithHeader,
    Ignore,
}

/// A route's cache policy in a stage that caches (compiled only where it applies).
#[derive(Debug)]
pub struct RouteCache {
    pub spec: KeySpec,
    /// Hash of the stage, route key and every setting here: part of each key, so
    /// changed settings never see old entries (and a reload drops them).
    pub tag: u64,
    pub ttl: Duration,
    /// Methods cached besides GET and HEAD.
    pub methods: Vec<Vec<u8>>,
    pub authorization: bool,
    pub statuses: Vec<u16>,
}

impl RouteCache {
    pub fn caches_method(&self, m: &[u8]) -> bool {
        m == b"GET" || m == b"HEAD" || self.methods.iter().any(|x| x == m)
    }
}

/// One route of one stage: the same API route mounted on two stages is two `Route`s.
#[derive(Debug)]
pub struct Route {
    /// `"GET /users/{id}"`, as written.
    pub key: Arc<str>,
    pub stage: u32,
    pub param_names: Vec<String>,
    pub integration: Integration,
    pub timeout: Duration,
    /// Request bodies up to this many bytes are read whole, framing checked, before
    /// anything goes upstream (0: streamed as they come).
    pub request_buffering: u64,
    pub api_key_required: bool,
    /// Who may call it (DESIGN §8.1).
    pub auth: RouteAuth,
    /// JWT scopes of which the token must grant one (empty: none asked for).
    pub scopes: Vec<String>,
    /// `[stages.S].routes."KEY".throttle` budget.
    pub limit: Option<u32>,
    /// Metrics of this stage's route (bound by `bind_metrics` before publishing).
    pub series: Option<Arc<Series>>,
    pub cache: Option<RouteCache>,
    /// The integration with the stage's canary variables (stages with a canary).
    pub canary: Option<Integration>,
    /// Request validation (`None`: none asked for).
    pub validate: Option<Box<Validation>>,
}

/// A route's authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAuth {
    None,
    /// A JWT authorizer: its index in `Plan::authorizers`.
    Jwt(u32),
    /// A request or token authorizer: its index in `Plan::request_authorizers`.
    Request(u32),
    /// SigV4-signed requests of `[iam.users]` whose policy allows the method ARN.
    Iam,
}

/// A caller of `auth = "iam"` routes (`[iam.users.NAME]`).
#[derive(Debug)]
pub struct IamUser {
    pub access_key: String,
    pub secret: String,
    /// `arn:aws:iam::{account}:user/{name}`.
    pub arn: String,
    pub policy: Option<crate::auth::policy::Policy>,
    /// The signing key derived for the day (verification).
    pub keys: crate::aws::sign::KeyCache,
}

/// A request or token (Lambda) authorizer of an API (DESIGN §8.3).
#[derive(Debug)]
pub struct RequestAuthorizer {
    /// `api/name`, for logs and metrics.
    pub name: String,
    /// REST TOKEN: one identity value, sent as `authorizationToken`.
    pub token: bool,
    pub identity: Vec<crate::auth::authorizer::Source>,
    pub caller: Caller,
    pub payload: crate::auth::authorizer::Payload,
    pub response: crate::auth::authorizer::Response,
    pub timeout: Duration,
    /// The node's answers, per identity, for the TTL (shared by every worker).
    pub results: crate::auth::decisions::Results,
    /// `forward_context`: (context key, lower-case header) sent to `http_proxy` upstreams.
    pub forward: Vec<(String, String)>,
}

/// What a request authorizer calls.
#[derive(Debug)]
pub enum Caller {
    /// `POST` of the event to this URL (`endpoint.path`).
    Http(crate::upstream::call::Endpoint),
    /// The Lambda Invoke API.
    Lambda {
        function: String,
        service: Arc<crate::aws::Service>,
    },
}

/// A JWT authorizer of an API (DESIGN §8.2).
#[derive(Debug)]
pub struct JwtAuthorizer {
    /// `api/name`, for logs and metrics.
    pub name: String,
    pub rules: crate::auth::jwt::JwtRules,
    pub identity: Identity,
    pub source: crate::auth::jwks::Source,
    /// The key set read at compile time (a file), handed to the store at bind.
    pub initial: Option<Arc<crate::auth::jwks::KeySet>>,
    /// The node's set for `source` (bound before the plan is published).
    pub keys: std::sync::OnceLock<Arc<crate::auth::jwks::Jwks>>,
    /// `forward_claims`: (claim, lower-case header) sent to `http_proxy` upstreams.
    pub forward: Vec<(String, String)>,
}

/// Where an authorizer finds the caller's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A request header (lower-case name).
    Header(String),
    /// A query-string parameter.
    Query(String),
}

#[derive(Debug)]
pub enum Integration {
    Mock(Mock),
    HttpProxy(Proxy),
    Lambda(LambdaProxy),
    Aws(AwsAction),
    /// A non-proxy HTTP integration (DESIGN §10).
    Http(Box<HttpMapped>),
    /// A custom (non-proxy) Lambda integration (DESIGN §10).
    LambdaMapped(Box<LambdaMapped>),
    /// An AWS service by its integration URI, REST style (DESIGN §9.3, §10).
    AwsMapped(Box<AwsMapped>),
}

/// `type = "aws", uri = "arn:aws:apigateway:…"`.
#[derive(Debug)]
pub struct AwsMapped {
    pub service: Arc<crate::aws::Service>,
    pub protocol: crate::aws::rest::Protocol,
    pub method: String,
    /// `action/NAME`: the action and the URI's `&k=v` parameters.
    pub action: Option<(String, Vec<(String, String)>)>,
    /// `path/…` (with `{name}` placeholders); empty for actions.
    pub path: String,
    pub mapping: crate::transform::mapping::Mapping,
}

/// `type = "http"`: the request mapped by templates and parameters, sent by the
/// gateway itself, the answer mapped by integration responses.
#[derive(Debug)]
pub struct HttpMapped {
    pub endpoint: crate::upstream::call::Endpoint,
    /// The URL's path after the endpoint, with `{name}` placeholders.
    pub path: String,
    /// The method sent (`None`: the request's).
    pub method: Option<String>,
    pub mapping: crate::transform::mapping::Mapping,
}

/// `type = "lambda", proxy = false`.
#[derive(Debug)]
pub struct LambdaMapped {
    pub function: String,
    pub service: Arc<crate::aws::Service>,
    pub mapping: crate::transform::mapping::Mapping,
}

/// An `aws` integration: a named service action (DESIGN §9.3).
#[derive(Debug)]
pub struct AwsAction {
    pub action: &'static crate::aws::actions::Action,
    /// Each parameter and where its value comes from.
    pub params: Vec<(&'static str, Param)>,
    pub service: Arc<crate::aws::Service>,
}

/// Where a mapped parameter's value comes from (HTTP API parameter mapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// A fixed value (stage variables already in it).
    Literal(String),
    /// `$request.body`, or `$request.body.a.b` (a member of a JSON body).
    Body(Vec<String>),
    /// `$request.header.NAME` (lower-case).
    Header(String),
    /// `$request.querystring.NAME`.
    Query(String),
    /// `$request.path.NAME`: the route parameter's index.
    Path(usize),
    /// `$context.requestId`.
    RequestId,
    /// `$context.identity.sourceIp`.
    SourceIp,
}

/// A `lambda` integration (AWS_PROXY, DESIGN §9.2).
#[derive(Debug)]
pub struct LambdaProxy {
    /// Name or ARN (with qualifier), stage variables expanded.
    pub function: String,
    pub payload: crate::auth::authorizer::Payload,
    pub service: Arc<crate::aws::Service>,
}

#[derive(Debug)]
pub struct Mock {
    pub status: u16,
    /// AWS's MOCK with templates: the request template's `statusCode` selects an
    /// integration response (`None`: the fixed answer below).
    pub mapping: Option<Box<crate::transform::mapping::Mapping>>,
    /// Header lines, each `name: value\r\n`, validated at compile time.
    pub headers: Bytes,
    pub has_content_type: bool,
    pub body: Bytes,
}

#[derive(Debug)]
pub struct Proxy {
    pub target: Target,
    /// `None`: forward the request's path after the stage's base path.
    pub path: Option<PathTemplate>,
    /// The `Host` header sent upstream.
    pub host: String,
    /// TLS to a literal `https://host:port` (upstreams carry their own).
    pub tls: Option<crate::upstream::TlsPeer>,
    /// HTTP API parameter mapping (`None`: the request goes as it came).
    pub mapping: Option<Box<crate::transform::params::ParamMapping>>,
    /// HTTP API response mapping by status (`None`: the answer goes as it came).
    pub response_mapping: Option<Box<crate::transform::params::ResponseMapping>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Upstream(u32),
    Addr(SocketAddr),
}

#[derive(Debug)]
pub struct Upstream {
    pub name: String,
    pub targets: Vec<WeightedAddr>,
    pub connect_timeout: Duration,
    pub retries: u32,
    /// Retries allowed as a share of requests (per worker, see `upstream::balance`).
    pub retry_budget: f64,
    pub balance: Balance,
    /// Points of the consistent-hash ring: (point, target index), sorted by point.
    pub ring: Vec<(u64, u32)>,
    pub health: Option<HealthCheck>,
    pub outlier: Outlier,
    /// Most requests in flight per worker (`max_connections` split between workers).
    pub max_in_flight: Option<u32>,
    /// Most requests per worker waiting for a free slot.
    pub max_pending: u32,
    pub max_requests_per_connection: Option<u32>,
    pub idle_timeout: Duration,
    /// Connects that may run at once per target, per worker (`max_connecting` split).
    pub max_connecting: u32,
    /// Requests per target per worker that may wait for a connection.
    pub max_queued: u32,
    /// How long a request waits in that queue before a 503.
    pub queue_timeout: Duration,
    /// Active health per target (bound by `bind_health`; `None`: always healthy).
    pub target_health: Vec<Option<Arc<crate::upstream::health::TargetHealth>>>,
    /// Metric series per target (bound by `bind_metrics`).
    pub target_series: Vec<Option<Arc<crate::observe::metrics::TargetSeries>>>,
    /// TLS per target (`tls = true`): the same config, each target's server name.
    pub tls: Vec<Option<crate::upstream::TlsPeer>>,
    /// Speak HTTP/2 to the targets (`protocol = "h2"`).
    pub h2: bool,
}

/// How a target is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Balance {
    /// Smooth weighted round-robin (nginx's).
    RoundRobin,
    /// Fewest requests in flight relative to weight.
    LeastRequests,
    /// Power of two random choices, by requests in flight.
    Random2,
    /// Consistent hashing on a request value; requests without it go round-robin.
    Hash(HashOn),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashOn {
    /// Lower-case header name.
    Header(Vec<u8>),
    Query(Vec<u8>),
    Ip,
}

/// An upstream's active health check, run by one thread for the whole node.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub unhealthy_after: u32,
    pub healthy_after: u32,
    /// Healthy statuses; empty = any 2xx.
    pub expect: Vec<u16>,
}

/// Passive outlier detection settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outlier {
    pub consecutive: u32,
    pub base_ejection: Duration,
    pub max_ejection: Duration,
    /// Most targets ejected at once, as a share of them (always allowing one).
    pub max_ejection_percent: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct WeightedAddr {
    pub addr: SocketAddr,
    pub weight: u32,
}

/// The published plan. Readers load it lock-free; reloads store a new one.
pub type PlanHandle = Arc<ArcSwap<Plan>>;

impl Plan {
    pub fn route(&self, id: RouteId) -> &Route {
        &self.routes[id as usize]
    }

    /// Links every route to its metric series (by stage and route key), and every
    /// upstream target to its own, so counters keep counting across reloads. Call
    /// after `bind_health`.
    pub fn bind_metrics(&mut self, store: &MetricsStore) {
        for r in &mut self.routes {
            let stage = &self.stages[r.stage as usize].name;
            let series = store.series(stage, &r.key);
            let authorizer = match r.auth {
                RouteAuth::Jwt(i) => Some(self.authorizers[i as usize].name.clone()),
                RouteAuth::Request(i) => Some(self.request_authorizers[i as usize].name.clone()),
                RouteAuth::Iam => Some("iam".to_string()),
                RouteAuth::None => None,
            };
            if let Ok(mut a) = series.authorizer.lock() {
                *a = authorizer;
            }
            r.series = Some(series);
        }
        for u in &mut self.upstreams {
            for (i, t) in u.targets.iter().enumerate() {
                let series = store.target(&u.name, &t.addr.to_string());
                if let Ok(mut h) = series.health.lock() {
                    *h = u.target_health[i].clone();
                }
                u.target_series[i] = Some(series);
            }
        }
    }

    /// Links the targets of upstreams with active checks to their node-wide health
    /// flags (by upstream name and address, so they survive reloads).
    pub fn bind_health(&mut self, store: &HealthStore) {
        for u in &mut self.upstreams {
            if u.health.is_none() {
                continue;
            }
            for (i, t) in u.targets.iter().enumerate() {
                u.target_health[i] = Some(store.target(&u.name, t.addr));
            }
        }
    }

    /// Gives every caching stage its cache from `store` (kept across reloads when
    /// its size is unchanged), forgets the caches of stages that stopped caching, and
    /// drops the entries of routes whose cache settings changed. Call before publishing.
    /// Gives each JWT authorizer the node's key set for its source (fetched by the
    /// store's thread; a file read at compile time is its first set).
    /// Starts the credential refreshers of the plan's AWS services (they end with it).
    pub fn start_aws_refresh(&self) {
        for s in &self.aws_services {
            s.start_refresh();
        }
    }

    pub fn bind_jwks(&mut self, store: &crate::auth::jwks::JwksStore) {
        for a in &mut self.authorizers {
            let set = store.bind(&a.source, a.initial.take());
            let _ = a.keys.set(set);
        }
    }

    pub fn bind_caches(&mut self, store: &CacheStore) {
        let keep: Vec<&str> = self
            .stages
            .iter()
            .filter(|s| s.cache.is_some())
            .map(|s| s.name.as_str())
            .collect();
        store.retain(&keep);
        for s in &mut self.stages {
            if let Some(c) = &mut s.cache {
                let cache = store.bind(&s.name, c.capacity, c.max_entry);
                c.cache = Some(cache);
            }
        }
    }

    /// The tags of routes whose entries `next` cannot use (settings changed, route
    /// gone), by stage, and drops those entries.
    pub fn drop_stale_cache_entries(&self, next: &Plan) -> usize {
        let mut dropped = 0;
        for s in &next.stages {
            let Some(cache) = s.cache.as_ref().and_then(|c| c.cache.as_ref()) else {
                continue;
            };
            let live: Vec<u64> = next
                .routes
                .iter()
                .filter_map(|r| r.cache.as_ref().map(|c| c.tag))
                .collect();
            let gone: Vec<u64> = self
                .routes
                .iter()
                .filter(|r| self.stages[r.stage as usize].name == s.name)
                .filter_map(|r| r.cache.as_ref().map(|c| c.tag))
                .filter(|t| !live.contains(t))
                .collect();
            dropped += cache.drop_tags(&gone);
        }
        dropped
    }

    /// Links every key's quota to its counter in `store` (by key name), so counts
    /// survive reloads and restarts. Call before publishing the plan.
    pub fn bind_quotas(&mut self, store: &QuotaStore) {
        for k in &mut self.key_info {
            if let Some(q) = &mut k.quota {
                q.counter = store.counter(&k.name, q.period);
            }
        }
    }

    /// The routing table as `turnpike routes` prints it.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str("STAGE\tHOSTS\tROUTE\tINTEGRATION\tTIMEOUT\n");
        for r in &self.routes {
            let stage = &self.stages[r.stage as usize];
            let integ = match &r.integration {
                Integration::Mock(m) => format!("mock {}", m.status),
                Integration::Lambda(l) => format!("lambda {}", l.function),
                Integration::Aws(a) => format!("aws {}", a.action.name),
                Integration::Http(h) => format!(
                    "http {}{}{}",
                    if h.endpoint.tls.is_some() {
                        "https://"
                    } else {
                        "http://"
                    },
                    h.endpoint.authority,
                    h.path
                ),
                Integration::LambdaMapped(l) => format!("lambda {} (custom)", l.function),
                Integration::AwsMapped(a) => match &a.action {
                    Some((name, _)) => format!("aws {}:action/{name}", a.service.name),
                    None => format!("aws {}:path{}", a.service.name, a.path),
                },
                Integration::HttpProxy(p) => {
                    let target = match p.target {
                        Target::Upstream(u) => self.upstreams[u as usize].name.clone(),
                        Target::Addr(a) => a.to_string(),
                    };
                    let path = match &p.path {
                        Some(t) => t.to_string(),
                        None => "(request path)".into(),
                    };
                    format!("http_proxy http://{target}{path}")
                }
            };
            let key = match r.key.split_once(' ') {
                Some((m, p)) if !stage.base_path.is_empty() => {
                    let p = if p == "/" { "" } else { p };
                    format!("{m} {}{p}", stage.base_path)
                }
                _ => r.key.to_string(),
            };
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{:?}\n",
                stage.name,
                stage.hosts.join(","),
                key,
                integ,
                r.timeout
            ));
        }
        out
    }
}
