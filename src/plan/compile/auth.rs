//! `[apis.A.authorizers.N]`, `default_auth`, a route's `auth` and `scopes` → the
//! plan's JWT authorizers and each route's `RouteAuth` (DESIGN §8.1–8.2). Kinds not
//! built yet (`request`, `token`, `auth = "iam"`) are errors, never an open door
//! (ADR 0003).

use std::sync::Arc;

use super::{at, Ctx};
use crate::auth::jwks::{KeySet, Source};
use crate::auth::jwt::JwtRules;
use crate::config::{model, Config, Entry};
use crate::plan::{Identity, JwtAuthorizer, RouteAuth};

/// AWS's limit on audiences per authorizer.
const MAX_AUDIENCES: usize = 50;
/// AWS's limit on scopes per route.
const MAX_SCOPES: usize = 10;

pub(super) fn authorizers(cx: &mut Ctx, cfg: &Config) -> Vec<JwtAuthorizer> {
    let mut out = Vec::new();
    for (api, e) in &cfg.authorizers {
        let a = &e.value;
        match a.kind.get_ref().as_str() {
            "jwt" => {}
            "request" | "token" => {
                cx.err(
                    at(e, a.kind.span()),
                    format!("authorizer `{}`: type \"{}\" (Lambda authorizers) is not built yet", e.name, a.kind.get_ref()),
                    Some("only type = \"jwt\" authorizers exist so far; a route must not go unprotected"),
                );
                continue;
            }
            other => {
                cx.err(
                    at(e, a.kind.span()),
                    format!("authorizer `{}`: unknown type \"{other}\"", e.name),
                    Some("type is \"jwt\", \"request\" or \"token\""),
                );
                continue;
            }
        }
        let Some(jwt) = jwt(cx, cfg, e) else {
            continue;
        };
        cx.authorizer_names.push((api.clone(), e.name.clone()));
        out.push(JwtAuthorizer {
            name: format!("{api}/{}", e.name),
            ..jwt
        });
    }
    out
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
            let v = s.get_ref();
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
        None => (Source::Url(format!("{iss}/.well-known/jwks.json")), None),
        Some(j) => {
            let v = j.get_ref();
            if v.starts_with("http://") || v.starts_with("https://") {
                (Source::Url(v.clone()), None)
            } else {
                // a file, relative to the file that names it; read now so `check`
                // reports a bad one
                let path = super::dir_of(&cfg.sources, e).join(v);
                let parsed = std::fs::read(&path)
                    .map_err(|err| format!("cannot read {}: {err}", path.display()))
                    .and_then(|b| KeySet::parse(&b));
                match parsed {
                    Ok(keys) => (Source::File(path), Some(Arc::new(keys))),
                    Err(msg) => {
                        cx.err(at(e, j.span()), format!("jwks: {msg}"), None);
                        return None;
                    }
                }
            }
        }
    };
    let mut forward = Vec::new();
    for (claim, header) in &a.forward_claims {
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
                format!("forward_claims.{claim}: `{}` is not a header turnpike can set", header.get_ref()),
                Some("a header name such as \"x-user-sub\"; not host, content-length, connection, authorization or hop-by-hop ones"),
            );
            return None;
        }
        forward.push((claim.clone(), h));
    }
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
        "iam" => {
            return fail(
                cx,
                span,
                "auth = \"iam\" (SigV4) is not built yet".into(),
                Some("use a JWT authorizer, or \"none\""),
            );
        }
        n => match cx
            .authorizer_names
            .iter()
            .position(|(a, x)| a == api && x == n)
        {
            Some(i) => RouteAuth::Jwt(i as u32),
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
    if !scopes.is_empty() && auth == RouteAuth::None {
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
