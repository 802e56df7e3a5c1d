//! The TOML model of DESIGN §3, one struct per table, `deny_unknown_fields` everywhere.
//!
//! Values an operator can get wrong in ways serde cannot see (durations, sizes,
//! addresses, route keys, references between tables) are kept as `Spanned` so that
//! validation can point at them. The loader (`load.rs`) deserializes each map entry on
//! its own, so a broken route does not hide the errors of the next one.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    pub listen: Option<Vec<Spanned<String>>>,
    pub admin: Option<Spanned<String>>,
    /// When set, admin requests need `Authorization: Bearer <token>`.
    pub admin_token: Option<Spanned<String>>,
    pub workers: Option<usize>,
    pub state_dir: Option<String>,
    pub throttle: Option<Throttle>,
    pub timeout: Option<Spanned<String>>,
    pub max_body: Option<Spanned<String>>,
    /// Request bodies up to this size are read whole (and their framing checked)
    /// before anything goes upstream; `"0"` streams every body.
    pub request_buffering: Option<Spanned<String>>,
    /// Largest request head (request line + headers) accepted; larger → 431.
    pub max_header_size: Option<Spanned<String>>,
    /// How long a client may take to send a complete request head.
    pub header_timeout: Option<Spanned<String>>,
    /// How long an idle keep-alive connection is kept open.
    pub idle_timeout: Option<Spanned<String>>,
    /// How long SIGTERM waits for in-flight requests before exiting.
    pub drain_timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub tls: Vec<Tls>,
    /// For execute-api ARNs (and SigV4 scopes): default `[aws].region`, else us-east-1.
    pub region: Option<Spanned<String>>,
    /// The account id in execute-api ARNs (default 000000000000).
    pub account: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub listen: Spanned<String>,
    pub certs: Vec<TlsCert>,
    /// PEM file of the CAs whose client certificates are accepted (mutual TLS).
    pub client_ca: Option<String>,
    /// `required` (default with `client_ca`) or `optional`.
    pub client_auth: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsCert {
    pub hosts: Vec<String>,
    pub cert: String,
    pub key: String,
    /// A DER-encoded OCSP response for `cert`, stapled to handshakes.
    pub ocsp: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLog {
    pub path: String,
    pub format: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    pub rate: f64,
    pub burst: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub targets: Vec<Spanned<Target>>,
    pub balance: Option<Spanned<String>>,
    pub health: Option<Spanned<Health>>,
    pub connect_timeout: Option<Spanned<String>>,
    /// Retries on another target for idempotent requests (connect failure, reset).
    pub retries: Option<u32>,
    /// Retries allowed as a share of requests (0.2 = at most 20% extra load).
    pub retry_budget: Option<f64>,
    /// Passive outlier detection.
    pub outlier: Option<Outlier>,
    /// Most requests in flight to this upstream (node-wide, split between workers).
    pub max_connections: Option<u32>,
    /// Most requests waiting for a free connection when `max_connections` is reached.
    pub max_pending: Option<u32>,
    /// Requests sent on one connection before it is closed.
    pub max_requests_per_connection: Option<u32>,
    /// How long an idle pooled connection is kept.
    pub idle_timeout: Option<Spanned<String>>,
    /// Connects that may run at once to one target (node-wide, split between
    /// workers); more concurrent requests queue for a connection.
    pub max_connecting: Option<u32>,
    /// Requests per target that may wait for a connection (node-wide); more → 503.
    pub max_queued: Option<u32>,
    /// How long a request waits for a connection before a 503.
    pub queue_timeout: Option<Spanned<String>>,
    /// Speak TLS to the targets (also implied by `https://` integration URIs).
    #[serde(default)]
    pub tls: bool,
    /// PEM file of the CA(s) to trust instead of the system's roots.
    pub tls_ca: Option<Spanned<String>>,
    /// Name for SNI and certificate verification (default: each target's host).
    pub tls_server_name: Option<Spanned<String>>,
    /// `http/1.1` (default) or `h2`: HTTP/2, with prior knowledge (h2c) or over TLS
    /// with ALPN.
    pub protocol: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outlier {
    /// Consecutive connect failures, resets or 5xx answers that eject a target.
    pub consecutive: Option<u32>,
    /// First ejection's length; each further one in a row is longer by as much.
    pub base_ejection: Option<Spanned<String>>,
    pub max_ejection: Option<Spanned<String>>,
    /// Most targets ejected at once, in percent of them (default 10; one always may be).
    pub max_ejection_percent: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Target {
    Addr(String),
    Weighted(WeightedTarget),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedTarget {
    pub addr: String,
    pub weight: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub path: String,
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub unhealthy_after: Option<u32>,
    pub healthy_after: Option<u32>,
    /// Statuses that count as healthy (default: any 2xx).
    pub expect: Option<Vec<u16>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub integration: Spanned<Integration>,
    #[serde(default)]
    pub api_key_required: bool,
    pub cache: Option<RouteCache>,
    pub timeout: Option<Spanned<String>>,
    /// The gateway's `request_buffering` for this route.
    pub request_buffering: Option<Spanned<String>>,
    /// `"none"` or the name of an authorizer of the API (default: the API's
    /// `default_auth`, else none).
    pub auth: Option<Spanned<String>>,
    /// JWT scopes of which the token must grant one (`scope` / `scp`).
    #[serde(default)]
    pub scopes: Vec<Spanned<String>>,
    /// Request validation: a body model and required parameters.
    pub validate: Option<Validate>,
}

/// `[apis.A.models.NAME]`: a JSON Schema (draft 4) for request bodies (DESIGN §10).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub schema: Option<Spanned<String>>,
    /// A file holding the schema, relative to this file.
    pub schema_file: Option<Spanned<String>>,
}

/// `[apis.A.gateway_responses.TYPE]`: how the gateway's own answers of one AWS
/// gateway-response type look on this API (DESIGN §10).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayResponse {
    pub status: Option<Spanned<u16>>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `$context.*` / `$stageVariables.*` substitutions (not VTL, as AWS's).
    pub template: Option<String>,
    /// The `Content-Type` of the template's output (default `application/json`).
    pub content_type: Option<String>,
}

/// A route's request validation (DESIGN §10).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validate {
    /// The model a JSON body must satisfy.
    pub body: Option<Spanned<String>>,
    /// Required parameters: `header.NAME`, `query.NAME` (or `querystring.NAME`), `path.NAME`.
    #[serde(default)]
    pub params: Vec<Spanned<String>>,
}

/// `[apis.A.cors]` (DESIGN §8.5, AWS's HTTP API `corsConfiguration`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    #[serde(default)]
    pub allow_origins: Vec<Spanned<String>>,
    #[serde(default)]
    pub allow_methods: Vec<Spanned<String>>,
    #[serde(default)]
    pub allow_headers: Vec<Spanned<String>>,
    #[serde(default)]
    pub expose_headers: Vec<Spanned<String>>,
    /// How long a browser may keep a preflight's answer (at most 86400s).
    pub max_age: Option<Spanned<String>>,
    #[serde(default)]
    pub allow_credentials: bool,
}

/// `[apis.A.authorizers.NAME]` (DESIGN §8.2–8.3).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorizer {
    /// `jwt` (also for Cognito user pools); `request` and `token` are refused at
    /// `check` until they are built (ADR 0003: never an authorizer that lets all in).
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    pub issuer: Option<Spanned<String>>,
    #[serde(default)]
    pub audience: Vec<Spanned<String>>,
    /// Where the token is: `$request.header.NAME` (default `Authorization`) or
    /// `$request.querystring.NAME`; a request authorizer may list several sources.
    pub identity: Option<Spanned<OneOrMany>>,
    /// A URL or a local file; default: the issuer's `/.well-known/jwks.json`.
    pub jwks: Option<Spanned<String>>,
    /// Claims sent to `http_proxy` upstreams as request headers: `{ sub = "x-user" }`
    /// (off by default; a client's own copies of those headers are always dropped).
    #[serde(default)]
    pub forward_claims: BTreeMap<String, Spanned<String>>,
    /// Request authorizers: answer `context` keys (and `principalId`) sent to
    /// `http_proxy` upstreams as request headers, as `forward_claims` does for JWTs.
    #[serde(default)]
    pub forward_context: BTreeMap<String, Spanned<String>>,
    /// Request and token authorizers: what is called with the event.
    pub function: Option<Spanned<AuthorizerFunction>>,
    /// `"1.0"` (REST events, IAM answers) or `"2.0"` (HTTP API events).
    pub payload: Option<Spanned<String>>,
    /// `"simple"` (`isAuthorized`) or `"iam"` (a policy document).
    pub response: Option<Spanned<String>>,
    /// How long an answer is kept per identity (`"0s"`: not at all; default 300s).
    pub ttl: Option<Spanned<String>>,
    /// How long the authorizer may take (default and at most 10s, AWS's limit).
    pub timeout: Option<Spanned<String>>,
}

/// One value or a list (`identity`).
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// What a request or token authorizer calls.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthorizerFunction {
    /// A function through the Lambda Invoke API (`[aws]` credentials and endpoint).
    Lambda { function: String },
    /// `POST` of the event as JSON to an HTTP(S) URL.
    Http { uri: String },
}

/// `[aws]` (DESIGN §9.1): how the gateway calls AWS.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Aws {
    pub region: Option<Spanned<String>>,
    /// `"default"` (the standard chain) or `{ access_key, secret | secret_env | secret_file }`.
    pub credentials: Option<Spanned<AwsCredentials>>,
    /// The shared-files profile the default chain reads (else `AWS_PROFILE`, else `default`).
    pub profile: Option<Spanned<String>>,
    /// Endpoint URL per service (`lambda`, `sqs`, …), before `AWS_ENDPOINT_URL_<SERVICE>`.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum AwsCredentials {
    Chain(String),
    Static(StaticCredentials),
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct StaticCredentials {
    pub access_key: String,
    pub secret: Option<String>,
    pub secret_env: Option<String>,
    pub secret_file: Option<String>,
    pub session_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Integration {
    // Internally tagged enums are buffered by serde, which loses spans: errors in
    // an integration point at the integration itself.
    HttpProxy {
        uri: String,
        /// HTTP API parameter mapping: `overwrite:header.x` = "$context.requestId" …
        #[serde(default)]
        parameter_mapping: BTreeMap<String, String>,
        /// HTTP API response mapping: `"500" = { "overwrite:statuscode" = "403", … }`.
        #[serde(default)]
        response_parameters: BTreeMap<String, BTreeMap<String, String>>,
    },
    /// An AWS service action with parameters from the request (DESIGN §9.3).
    ///
    /// REST style: AWS's integration URI (`arn:aws:apigateway:REGION:SERVICE:action/NAME`
    /// or `…:path/PATH`) with a request template and integration responses.
    Aws {
        action: Option<String>,
        #[serde(default)]
        parameters: BTreeMap<String, String>,
        uri: Option<String>,
        method: Option<String>,
        #[serde(default)]
        request_templates: BTreeMap<String, String>,
        passthrough: Option<String>,
        #[serde(default)]
        request_parameters: BTreeMap<String, String>,
        #[serde(default)]
        responses: Vec<IntegrationResponse>,
        content_handling: Option<String>,
    },
    /// AWS's non-proxy HTTP integration: the request through templates and
    /// parameter mappings, the answer through integration responses (DESIGN §10).
    Http {
        uri: String,
        /// The method sent (default: the request's).
        method: Option<String>,
        #[serde(default)]
        request_templates: BTreeMap<String, String>,
        passthrough: Option<String>,
        #[serde(default)]
        request_parameters: BTreeMap<String, String>,
        #[serde(default)]
        responses: Vec<IntegrationResponse>,
        /// `CONVERT_TO_TEXT` / `CONVERT_TO_BINARY` of the request body.
        content_handling: Option<String>,
    },
    /// AWS_PROXY: the Lambda Invoke API with the proxy event (DESIGN §9.2); with
    /// `proxy = false`, AWS's custom Lambda integration (the payload from a
    /// request template, the answer through integration responses).
    Lambda {
        function: String,
        #[serde(default = "default_lambda_payload")]
        payload: String,
        #[serde(default = "default_true")]
        proxy: bool,
        #[serde(default)]
        request_templates: BTreeMap<String, String>,
        passthrough: Option<String>,
        #[serde(default)]
        responses: Vec<IntegrationResponse>,
        content_handling: Option<String>,
    },
    Mock {
        #[serde(default = "default_status")]
        status: u16,
        #[serde(default)]
        body: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// AWS's MOCK: the template's `statusCode` selects the response.
        #[serde(default)]
        request_templates: BTreeMap<String, String>,
        passthrough: Option<String>,
        #[serde(default)]
        responses: Vec<IntegrationResponse>,
    },
}

/// An integration response (DESIGN §10): selected by `pattern` (a regex matched
/// against the whole integration status, or a Lambda error's `errorMessage`; none:
/// the default), with the status, headers and templates the client gets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationResponse {
    pub pattern: Option<String>,
    pub status: Option<u16>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
    /// `CONVERT_TO_TEXT` / `CONVERT_TO_BINARY` of the answer.
    pub content_handling: Option<String>,
}

fn default_true() -> bool {
    true
}

fn default_lambda_payload() -> String {
    "2.0".into()
}

fn default_status() -> u16 {
    200
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteCache {
    /// `query.NAME` and `header.NAME` values added to the cache key.
    #[serde(default)]
    pub key: Vec<Spanned<String>>,
    /// `"0s"` turns caching off for the route.
    pub ttl: Option<Spanned<String>>,
    /// Methods cached besides GET and HEAD (e.g. `["POST"]`).
    #[serde(default)]
    pub methods: Vec<Spanned<String>>,
    /// Cache requests that carry `Authorization` too (off: they bypass the cache).
    #[serde(default)]
    pub authorization: bool,
    /// Statuses stored (default: the stage's, else `[200]`).
    pub statuses: Option<Spanned<Vec<u16>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub api: Spanned<String>,
    #[serde(default = "any_host")]
    pub hosts: Vec<Spanned<String>>,
    pub base_path: Option<Spanned<String>>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    pub throttle: Option<Throttle>,
    #[serde(default)]
    pub routes: BTreeMap<Spanned<String>, StageRoute>,
    pub cache: Option<StageCache>,
    pub canary: Option<Canary>,
}

fn any_host() -> Vec<Spanned<String>> {
    vec![Spanned::new(0..0, "*".to_string())]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageRoute {
    pub throttle: Option<Throttle>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageCache {
    pub capacity: Option<Spanned<String>>,
    pub ttl: Option<Spanned<String>>,
    pub invalidation: Option<Spanned<String>>,
    pub unauthorized: Option<Spanned<String>>,
    /// Largest response stored (keys + headers + body); default 1 MiB.
    pub max_entry: Option<Spanned<String>>,
    /// Statuses stored; default `[200]`.
    pub statuses: Option<Spanned<Vec<u16>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    pub percent: f64,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsagePlan {
    #[serde(default)]
    pub stages: Vec<Spanned<String>>,
    pub throttle: Option<Throttle>,
    pub quota: Option<Quota>,
    #[serde(default)]
    pub invalidate_cache: bool,
    #[serde(default)]
    pub routes: BTreeMap<String, Throttle>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub limit: u64,
    pub period: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub key: Option<Spanned<String>>,
    pub key_sha256: Option<Spanned<String>>,
    pub plan: Spanned<String>,
}

/// `[iam]` (DESIGN §8.4): the callers `auth = "iam"` routes accept.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Iam {
    #[serde(default)]
    pub users: BTreeMap<String, IamUser>,
}

/// `[iam.users.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamUser {
    pub access_key: String,
    pub secret: Option<String>,
    pub secret_env: Option<String>,
    pub secret_file: Option<String>,
    /// An identity policy (JSON); without one the user may call nothing.
    pub policy: Option<String>,
    pub policy_file: Option<String>,
}
