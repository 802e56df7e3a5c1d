//! `[apis.A.authorizers.N]`, `default_auth`, a route's `auth` and `scopes` → the
//! plan's JWT and request/token authorizers and each route's `RouteAuth` (DESIGN
//! §8.1–8.3). What is not built yet (`auth = "iam"`) is an error, never an open
//! door (ADR 0003).

use std::sync::Arc;
use std::time::Duration;

use super::{at, Ctx};
use crate::auth::authorizer::{Payload, Response, Source};
use crate::auth::decisions::Results;
use crate::auth::jwks::KeySet;
use crate::auth::jwt::JwtRules;
use crate::config::{model, Config, Entry};
use crate::plan::{Caller, Identity, JwtAuthorizer, RequestAuthorizer, RouteAuth};

/// AWS's limit on audiences per authorizer.
const MAX_AUDIENCES: usize = 50;
/// AWS's limit on scopes per route.
const MAX_SCOPES: usize = 10;

/// Every API's authorizers: the JWT ones and the request/token ones.
pub(super) fn authorizers(
    cx: &mut Ctx,
    cfg: &Config,
) -> (Vec<JwtAuthorizer>, Vec<RequestAuthorizer>) {
    let mut jwts = Vec::new();
    let mut requests = Vec::new();
    for (api, e) in &cfg.authorizers {
        let a = &e.value;
        match a.kind.get_ref().as_str() {
            "jwt" => {
                let Some(jwt) = jwt(cx, cfg, e) else {
                    continue;
                };
                cx.authorizer_names.push((api.clone(), e.name.clone()));
                jwts.push(JwtAuthorizer {
                    name: format!("{api}/{}", e.name),
                    ..jwt
                });
            }
            kind @ ("request" | "token") => {
                let Some(r) = request(cx, cfg, e, kind == "token") else {
                    continue;
                };
                cx.request_authorizer_names
                    .push((api.clone(), e.name.clone()));
                requests.push(RequestAuthorizer {
                    name: format!("{api}/{}", e.name),
                    ..r
                });
            }
            other => {
                cx.err(
                    at(e, a.kind.span()),
                    format!("authorizer `{}`: unknown type \"{other}\"", e.name),
                    Some("type is \"jwt\", \"request\" or \"token\""),
                );
            }
        }
    }
    (jwts, requests)
}

/// AWS's limit on an authorizer's answer TTL.
const MAX_TTL: Duration = Duration::from_secs(3600);
/// AWS's (fixed) limit on an authorizer's answer time.
const MAX_AUTHORIZER_TIMEOUT: Duration = Duration::from_secs(10);

fn request(
    cx: &mut Ctx,
    cfg: &Config,
    e: &Entry<model::Authorizer>,
    token: bool,
) -> Option<RequestAuthorizer> {
    let a = &e.value;
    let name = &e.name;
    let mut ok = true;
    for (field, present) in [
        ("issuer", a.issuer.is_some()),
        ("audience", !a.audience.is_empty()),
        ("jwks", a.jwks.is_some()),
        ("forward_claims", !a.forward_claims.is_empty()),
    ] {
        if present {
            cx.err(
                e.at.clone(),
                format!("authorizer `{name}`: `{field}` is for JWT authorizers"),
                None,
            );
            ok = false;
        }
    }
    let payload = match a.payload.as_ref().map(|p| p.get_ref().as_str()) {
        None if token => Payload::V1,
        None | Some("2.0") => Payload::V2,
        Some("1.0") => Payload::V1,
        Some(other) => {
            cx.err(
                at(e, a.payload.as_ref().map_or(0..0, |p| p.span())),
                format!("authorizer `{name}`: payload \"{other}\" is neither \"1.0\" nor \"2.0\""),
                None,
            );
            return None;
        }
    };
    if token && payload == Payload::V2 {
        cx.err(e.at.clone(), format!("authorizer `{name}`: a token authorizer receives REST's TOKEN event (payload \"1.0\")"), Some("use type = \"request\" for payload 2.0"));
        return None;
    }
    let response = match a.response.as_ref().map(|r| r.get_ref().as_str()) {
        None if payload == Payload::V1 => Response::Iam,
        None | Some("simple") => Response::Simple,
        Some("iam") => Response::Iam,
        Some(other) => {
            cx.err(
                at(e, a.response.as_ref().map_or(0..0, |p| p.span())),
                format!(
                    "authorizer `{name}`: response \"{other}\" is neither \"simple\" nor \"iam\""
                ),
                None,
            );
            return None;
        }
    };
    if response == Response::Simple && payload == Payload::V1 {
        cx.err(e.at.clone(), format!("authorizer `{name}`: simple answers need payload \"2.0\" (AWS: 1.0 answers are IAM policies)"), None);
        return None;
    }
    let sources = match &a.identity {
        None if token => vec!["$request.header.Authorization".to_string()],
        None => Vec::new(),
        Some(s) => s.get_ref().to_vec(),
    };
    let mut identity = Vec::new();
    for s in &sources {
        match Source::parse(s) {
            Ok(src) => identity.push(src),
            Err(msg) => {
                cx.err(
                    at(e, a.identity.as_ref().map_or(0..0, |i| i.span())),
                    format!("authorizer `{name}`: {msg}"),
                    None,
                );
                ok = false;
            }
        }
    }
    if token && !matches!(identity.as_slice(), [Source::Header(_)]) {
        cx.err(
            e.at.clone(),
            format!("authorizer `{name}`: a token authorizer reads one header"),
            Some("identity = \"$request.header.Authorization\""),
        );
        return None;
    }
    let ttl = super::duration(cx, e, &a.ttl, Duration::from_secs(300));
    if ttl > MAX_TTL {
        cx.err(
            at(e, a.ttl.as_ref().map_or(0..0, |t| t.span())),
            format!("authorizer `{name}`: ttl is at most 3600s (AWS's limit)"),
            None,
        );
        ok = false;
    }
    if !ttl.is_zero() && identity.is_empty() {
        cx.err(
            e.at.clone(),
            format!(
                "authorizer `{name}`: caching answers (ttl) needs at least one identity source"
            ),
            Some("set identity = [\"$request.header.Authorization\"], or ttl = \"0s\""),
        );
        ok = false;
    }
    let timeout = super::duration(cx, e, &a.timeout, MAX_AUTHORIZER_TIMEOUT);
    if timeout > MAX_AUTHORIZER_TIMEOUT || timeout.is_zero() {
        cx.err(
            at(e, a.timeout.as_ref().map_or(0..0, |t| t.span())),
            format!("authorizer `{name}`: timeout is between 1ms and 10s (AWS's limit)"),
            None,
        );
        ok = false;
    }
    let Some(function) = &a.function else {
        cx.err(e.at.clone(), format!("authorizer `{name}` needs a `function`"), Some("function = { type = \"lambda\", function = \"arn:aws:lambda:…\" } or { type = \"http\", uri = \"http://…\" }"));
        return None;
    };
    let fpos = at(e, function.span());
    let caller = match function.get_ref() {
        model::AuthorizerFunction::Http { uri } => {
            match super::endpoint::endpoint(uri, || cx.system_tls()) {
                Ok(ep) => Caller::Http(ep),
                Err(msg) => {
                    cx.err(fpos, format!("authorizer `{name}`: {msg}"), None);
                    return None;
                }
            }
        }
        model::AuthorizerFunction::Lambda { function } => {
            if function.is_empty() || function.contains("${") {
                cx.err(
                    fpos,
                    format!("authorizer `{name}`: `{function}` is not a function name or ARN"),
                    None,
                );
                return None;
            }
            let service = super::aws::service(cx, cfg, "lambda", &fpos)?;
            Caller::Lambda {
                function: function.clone(),
                service,
            }
        }
    };
    let forward = forward_headers(cx, e, &a.forward_context, "forward_context")?;
    if !ok {
        return None;
    }
    Some(RequestAuthorizer {
        forward,
        name: name.clone(),
        token,
        identity,
        caller,
        payload,
        response,
        timeout,
        results: Results::new(ttl, timeout),
    })
}

fn jwt(cx: &mut Ctx, cfg: &Config, e: &Entry<model::Authorizer>) -> Option<JwtAuthorizer> {
    let a = &e.value;
    let Some(issuer) = &a.issuer else {
        cx.err(
            e.at.clone(),
            format!("JWT authorizer `{}` needs an `issuer`", e.name),
            None,
        );
        return None;
    };
    if !a.forward_context.is_empty() || a.function.is_some() || a.ttl.is_some() {
        cx.err(
            e.at.clone(),
            format!("JWT authorizer `{}`: function, ttl and forward_context are for request authorizers", e.name),
            Some("a JWT authorizer forwards claims with forward_claims"),
        );
        return None;
    }
    let iss = issuer.get_ref().trim_end_matches('/').to_string();
    if a.audience.is_empty() || a.audience.len() > MAX_AUDIENCES {
        cx.err(
            e.at.clone(),
            format!(
                "JWT authorizer `{}` needs 1 to {MAX_AUDIENCES} `audience` entries",
                e.name
            ),
            Some("matched against the token's `aud`, or `client_id` when it has no `aud`"),
        );
        return None;
    }
    let identity = match &a.identity {
        None => Identity::Header("authorization".into()),
        Some(s) => {
            let model::OneOrMany::One(v) = s.get_ref() else {
                cx.err(
                    at(e, s.span()),
                    "a JWT authorizer has one identity source".to_string(),
                    None,
                );
                return None;
            };
            if let Some(h) = v.strip_prefix("$request.header.").filter(|h| !h.is_empty()) {
                Identity::Header(h.to_ascii_lowercase())
            } else if let Some(q) = v
                .strip_prefix("$request.querystring.")
                .filter(|q| !q.is_empty())
            {
                Identity::Query(q.to_string())
            } else {
                cx.err(
                    at(e, s.span()),
                    format!("identity `{v}`: a JWT comes from `$request.header.NAME` or `$request.querystring.NAME`"),
                    None,
                );
                return None;
            }
        }
    };
    let (source, initial) = match &a.jwks {
        None => (
            crate::auth::jwks::Source::Url(format!("{iss}/.well-known/jwks.json")),
            None,
        ),
        Some(j) => {
            let v = j.get_ref();
            if v.starts_with("http://") || v.starts_with("https://") {
                (crate::auth::jwks::Source::Url(v.clone()), None)
            } else {
                // a file, relative to the file that names it; read now so `check`
                // reports a bad one
                let path = super::dir_of(&cfg.sources, e).join(v);
                let parsed = std::fs::read(&path)
                    .map_err(|err| format!("cannot read {}: {err}", path.display()))
                    .and_then(|b| KeySet::parse(&b));
                match parsed {
                    Ok(keys) => (crate::auth::jwks::Source::File(path), Some(Arc::new(keys))),
                    Err(msg) => {
                        cx.err(at(e, j.span()), format!("jwks: {msg}"), None);
                        return None;
                    }
                }
            }
        }
    };
    let forward = forward_headers(cx, e, &a.forward_claims, "forward_claims")?;
    Some(JwtAuthorizer {
        name: e.name.clone(),
        forward,
        rules: JwtRules {
            issuer: iss,
            audience: a.audience.iter().map(|s| s.get_ref().clone()).collect(),
        },
        identity,
        source,
        initial,
        keys: std::sync::OnceLock::new(),
    })
}

/// `forward_claims` / `forward_context`: (key, lower-case header) pairs, each header
/// one turnpike may set.
fn forward_headers(
    cx: &mut Ctx,
    e: &Entry<model::Authorizer>,
    map: &std::collections::BTreeMap<String, toml::Spanned<String>>,
    field: &str,
) -> Option<Vec<(String, String)>> {
    let mut forward = Vec::new();
    for (claim, header) in map {
        let h = header.get_ref().to_ascii_lowercase();
        let token = !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        let reserved = matches!(
            h.as_str(),
            "host"
                | "content-length"
                | "transfer-encoding"
                | "connection"
                | "authorization"
                | "x-request-id"
        ) || crate::proto::h1::is_hop_by_hop(h.as_bytes());
        if !token || reserved {
            cx.err(
                at(e, header.span()),
                format!("{field}.{claim}: `{}` is not a header turnpike can set", header.get_ref()),
                Some("a header name such as \"x-user-sub\"; not host, content-length, connection, authorization or hop-by-hop ones"),
            );
            return None;
        }
        forward.push((claim.clone(), h));
    }
    Some(forward)
}

/// A route's auth (its own, else the API's `default_auth`) and scopes; `None` when
/// they are wrong (reported when `report`: once per route, not per stage).
pub(super) fn route(
    cx: &mut Ctx,
    cfg: &Config,
    api: &str,
    r: &Entry<model::Route>,
    report: bool,
) -> Option<(RouteAuth, Vec<String>)> {
    let fail = |cx: &mut Ctx, span: std::ops::Range<usize>, msg: String, hint: Option<&str>| {
        if report {
            cx.err(at(r, span), msg, hint);
        }
        None
    };
    let default = cfg.default_auth.iter().find(|(a, _)| a == api);
    let (name, pos) = match (&r.value.auth, default) {
        (Some(s), _) => (s.get_ref().as_str(), Some(s.span())),
        (None, Some((_, d))) => (d.value.as_str(), None),
        (None, None) => ("none", None),
    };
    let span = pos.clone().unwrap_or(0..0);
    let auth = match name {
        "none" => RouteAuth::None,
        "iam" => RouteAuth::Iam,
        n => match cx
            .authorizer_names
            .iter()
            .position(|(a, x)| a == api && x == n)
        {
            Some(i) => RouteAuth::Jwt(i as u32),
            None if cx
                .request_authorizer_names
                .iter()
                .any(|(a, x)| a == api && x == n) =>
            {
                let i = cx
                    .request_authorizer_names
                    .iter()
                    .position(|(a, x)| a == api && x == n)
                    .unwrap_or(0);
                RouteAuth::Request(i as u32)
            }
            None if cfg.broken.iter().any(|b| b == n) => return None,
            None => {
                let what = if pos.is_some() {
                    "auth"
                } else {
                    "default_auth"
                };
                return fail(
                    cx,
                    span,
                    format!("{what} `{n}` of route `{}` is not an authorizer of api `{api}`", r.name),
                    Some("auth is \"none\" or the name of one of the API's [apis.A.authorizers.NAME]"),
                );
            }
        },
    };
    let scopes: Vec<String> = r.value.scopes.iter().map(|s| s.get_ref().clone()).collect();
    if !scopes.is_empty() && !matches!(auth, RouteAuth::Jwt(_)) {
        let span = r.value.scopes[0].span();
        return fail(
            cx,
            span,
            format!(
                "route `{}` asks for scopes but has no JWT authorizer",
                r.name
            ),
            None,
        );
    }
    if scopes.len() > MAX_SCOPES {
        let span = r.value.scopes[MAX_SCOPES].span();
        return fail(
            cx,
            span,
            format!("at most {MAX_SCOPES} scopes per route (AWS's limit)"),
            None,
        );
    }
    Some((auth, scopes))
}

/// The API's `[apis.A.cors]` (errors reported when `report`: once per API).
pub(super) fn cors(
    cx: &mut Ctx,
    cfg: &Config,
    api: &str,
    report: bool,
) -> Option<Arc<crate::auth::cors::Cors>> {
    let (_, e) = cfg.cors.iter().find(|(a, _)| a == api)?;
    let c = &e.value;
    let mut ok = true;
    let mut fail = |cx: &mut Ctx, span: std::ops::Range<usize>, msg: String| {
        if report {
            cx.err(at(e, span), msg, None);
        }
        ok = false;
    };
    let mut origins = Vec::new();
    for o in &c.allow_origins {
        let v = o.get_ref().trim().to_ascii_lowercase();
        let valid = v == "*"
            || (v.starts_with("http://") || v.starts_with("https://"))
                && !v.ends_with('/')
                && (!v.contains('*') || v.ends_with("://*"));
        if !valid {
            fail(cx, o.span(), format!("allow_origins: `{v}` is not `*`, `scheme://*` or an origin such as `https://app.example.com`"));
        }
        origins.push(v);
    }
    if c.allow_credentials && origins.iter().any(|o| o == "*") {
        let span = c
            .allow_origins
            .iter()
            .find(|o| o.get_ref().trim() == "*")
            .map_or(0..0, |o| o.span());
        fail(cx, span, "allow_origins = [\"*\"] cannot be combined with allow_credentials (browsers refuse it): list the origins".into());
    }
    let mut methods = Vec::new();
    for m in &c.allow_methods {
        let v = m.get_ref().trim().to_ascii_uppercase();
        if v != "*" && (v.is_empty() || !v.bytes().all(|b| b.is_ascii_uppercase())) {
            fail(
                cx,
                m.span(),
                format!("allow_methods: `{}` is not a method or `*`", m.get_ref()),
            );
        }
        methods.push(v);
    }
    let names = |list: &[toml::Spanned<String>]| -> Vec<String> {
        list.iter()
            .map(|h| h.get_ref().trim().to_ascii_lowercase())
            .collect()
    };
    let allow_headers = names(&c.allow_headers);
    let expose_headers = names(&c.expose_headers);
    for (h, s) in allow_headers
        .iter()
        .zip(&c.allow_headers)
        .chain(expose_headers.iter().zip(&c.expose_headers))
    {
        if h != "*"
            && (h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)))
        {
            fail(
                cx,
                s.span(),
                format!("`{}` is not a header name", s.get_ref()),
            );
        }
    }
    let max_age = match &c.max_age {
        None => None,
        Some(s) => match crate::config::units::parse_duration(s.get_ref()) {
            Ok(d) if d.as_secs() <= 86_400 => Some(d.as_secs() as i64),
            Ok(_) => {
                fail(
                    cx,
                    s.span(),
                    "max_age is at most 86400s (AWS's limit)".into(),
                );
                None
            }
            Err(m) => {
                fail(cx, s.span(), m);
                None
            }
        },
    };
    ok.then(|| {
        Arc::new(crate::auth::cors::Cors {
            allow_origins: origins,
            allow_methods: methods,
            allow_headers,
            expose_headers,
            max_age,
            allow_credentials: c.allow_credentials,
        })
    })
}

/// The API's `api_key_source`: true for `"authorizer"` (errors reported when
/// `report`: once per API).
pub(super) fn key_source(cx: &mut Ctx, cfg: &Config, api: &str, report: bool) -> bool {
    let Some((_, e)) = cfg.api_key_source.iter().find(|(a, _)| a == api) else {
        return false;
    };
    match e.value.as_str() {
        "header" => false,
        "authorizer" => true,
        other => {
            if report {
                cx.err(
                    e.at.clone(),
                    format!("api_key_source \"{other}\" is neither \"header\" nor \"authorizer\""),
                    Some("\"authorizer\": the key is the usageIdentifierKey of the route's request authorizer"),
                );
            }
            false
        }
    }
}

/// `[iam.users]` → the plan's IAM users, sorted by access key.
pub(super) fn iam_users(cx: &mut Ctx, cfg: &Config, account: &str) -> Vec<crate::plan::IamUser> {
    let Some(e) = &cfg.iam else {
        return Vec::new();
    };
    let mut out: Vec<crate::plan::IamUser> = Vec::new();
    for (name, u) in &e.value.users {
        let secret = match (&u.secret, &u.secret_env, &u.secret_file) {
            (Some(s), None, None) => Ok(s.clone()),
            (None, Some(var), None) => {
                std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))
            }
            (None, None, Some(f)) => {
                let path = super::dir_of(&cfg.sources, e).join(f);
                std::fs::read_to_string(&path)
                    .map(|t| t.trim().to_string())
                    .map_err(|err| format!("cannot read {}: {err}", path.display()))
            }
            _ => Err("give exactly one of secret, secret_env, secret_file".into()),
        };
        let secret = match secret {
            Ok(s) if !s.is_empty() => s,
            Ok(_) => {
                cx.err(
                    e.at.clone(),
                    format!("iam user `{name}`: the secret is empty"),
                    None,
                );
                continue;
            }
            Err(msg) => {
                cx.err(e.at.clone(), format!("iam user `{name}`: {msg}"), None);
                continue;
            }
        };
        let text = match (&u.policy, &u.policy_file) {
            (Some(p), None) => Some(Ok(p.clone())),
            (None, Some(f)) => {
                let path = super::dir_of(&cfg.sources, e).join(f);
                Some(
                    std::fs::read_to_string(&path)
                        .map_err(|err| format!("cannot read {}: {err}", path.display())),
                )
            }
            (None, None) => None,
            (Some(_), Some(_)) => Some(Err("give policy or policy_file, not both".into())),
        };
        let policy = match text {
            None => None,
            Some(Ok(t)) => match serde_json::from_str(&t)
                .map_err(|err| format!("not JSON: {err}"))
                .and_then(|v| crate::auth::policy::Policy::parse(&v))
            {
                Ok(p) => Some(p),
                Err(msg) => {
                    cx.err(
                        e.at.clone(),
                        format!("iam user `{name}`: policy: {msg}"),
                        None,
                    );
                    continue;
                }
            },
            Some(Err(msg)) => {
                cx.err(e.at.clone(), format!("iam user `{name}`: {msg}"), None);
                continue;
            }
        };
        if out.iter().any(|x| x.access_key == u.access_key) {
            cx.err(
                e.at.clone(),
                format!(
                    "iam user `{name}`: access key {} is another user's too",
                    u.access_key
                ),
                None,
            );
            continue;
        }
        out.push(crate::plan::IamUser {
            access_key: u.access_key.clone(),
            secret,
            arn: format!("arn:aws:iam::{account}:user/{name}"),
            policy,
            keys: Default::default(),
        });
    }
    out.sort_by(|a, b| a.access_key.cmp(&b.access_key));
    out
}
