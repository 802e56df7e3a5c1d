//! `[stages.NAME]` → the stage, its routes in the router, and each route's integration.

use bytes::Bytes;

use std::time::Duration;

use super::{
    at, cache, duration, size, socket_addr, upstream, Ctx, MAX_ROUTE_TIMEOUT, MIN_ROUTE_TIMEOUT,
};
use crate::config::{model, Config, Entry};
use crate::plan::route_key::{self, RouteKey, Segment};
use crate::plan::router::{Conflict, Router};
use crate::plan::template::{expand_stage_variables, parse_uri};
use crate::plan::{Gateway, Integration, Mock, Proxy, Route, Stage, Target, Upstream};

/// A route's integration timeout and request buffering: its own, else the gateway's.
fn route_settings(cx: &mut Ctx, r: &Entry<model::Route>, g: &Gateway) -> (Duration, u64) {
    let timeout = match &r.value.timeout {
        None => g.timeout,
        Some(t) => {
            let d = duration(cx, r, &Some(t.clone()), MAX_ROUTE_TIMEOUT);
            if !(MIN_ROUTE_TIMEOUT..=MAX_ROUTE_TIMEOUT).contains(&d) {
                cx.err(
                    at(r, t.span()),
                    "timeout must be between 50ms and 29s",
                    None,
                );
            }
            d
        }
    };
    let buffering = match &r.value.request_buffering {
        None => g.request_buffering,
        Some(s) => {
            let n = size(cx, r, &r.value.request_buffering, g.request_buffering);
            if n > g.max_body {
                cx.err(
                    at(r, s.span()),
                    format!(
                        "request_buffering ({n} bytes) must be at most the gateway's max_body ({} bytes)",
                        g.max_body
                    ),
                    Some("\"0\" turns buffering off: the body streams"),
                );
            }
            n.min(g.max_body)
        }
    };
    (timeout, buffering)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn compile_stage(
    cx: &mut Ctx,
    cfg: &Config,
    gateway: &Gateway,
    stage: &Entry<model::Stage>,
    upstreams: &[Upstream],
    stages: &mut Vec<Stage>,
    routes: &mut Vec<Route>,
    router: &mut Router,
) {
    let s = &stage.value;
    let api = s.api.get_ref();
    if !cfg.apis.iter().any(|a| a.name == *api) && !cfg.broken.contains(api) {
        cx.err(
            at(stage, s.api.span()),
            format!(
                "stage `{}` names api `{api}`, which is not defined",
                stage.name
            ),
            None,
        );
        return;
    }
    let base_path = match &s.base_path {
        None => String::new(),
        Some(b) => {
            let p = b.get_ref().trim_end_matches('/');
            let ok = b.get_ref().starts_with('/')
                && route_key::parse_path(p.trim_start_matches('/'))
                    .map(|segs| segs.iter().all(|s| matches!(s, Segment::Static(_))))
                    .unwrap_or(false);
            if !ok {
                cx.err(
                    at(stage, b.span()),
                    format!(
                        "base_path `{}` must be `/` or `/seg/seg` with no parameters",
                        b.get_ref()
                    ),
                    None,
                );
                return;
            }
            p.to_string()
        }
    };
    let base_segments: Vec<&str> = base_path.split('/').filter(|s| !s.is_empty()).collect();
    let mut hosts = Vec::new();
    for h in &s.hosts {
        let name = h.get_ref().to_ascii_lowercase();
        let valid = name == "*"
            || (!name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
        if !valid {
            cx.err(
                at(stage, h.span()),
                format!("`{}` is not a host name (or `*`)", h.get_ref()),
                None,
            );
        } else if !hosts.contains(&name) {
            hosts.push(name);
        }
    }
    // canary: its share in parts per million, and the stage's variables with the
    // canary's on top
    let canary = s.canary.as_ref().and_then(|c| {
        if !(0.0..=100.0).contains(&c.percent) {
            cx.err(
                stage.at.clone(),
                format!(
                    "stage `{}`: canary percent {} is not between 0 and 100",
                    stage.name, c.percent
                ),
                None,
            );
            return None;
        }
        let mut vars = s.variables.clone();
        vars.extend(c.variables.iter().map(|(k, v)| (k.clone(), v.clone())));
        Some(((c.percent * 10_000.0).round() as u32, vars))
    });
    let stage_cache = cache::stage(cx, stage);
    let stage_id = stages.len() as u32;
    stages.push(Stage {
        name: stage.name.clone(),
        api: api.clone(),
        hosts: hosts.clone(),
        base_path: base_path.clone(),
        limit: None,
        cache: stage_cache,
        canary_ppm: canary.as_ref().map(|c| c.0),
        cors: None,
        variables: s
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        key_from_authorizer: false,
        gateway_responses: None,
        binary_media_types: cfg
            .binary_media_types
            .iter()
            .filter(|(a, _)| a == api)
            .flat_map(|(_, e)| e.value.iter().map(|t| t.to_ascii_lowercase()))
            .collect(),
    });
    let first_stage = stages.iter().filter(|st| st.api == *api).count() == 1;
    stages[stage_id as usize].key_from_authorizer =
        super::auth::key_source(cx, cfg, api, first_stage);
    stages[stage_id as usize].cors = super::auth::cors(cx, cfg, api, first_stage);
    stages[stage_id as usize].gateway_responses =
        super::transform::gateway_responses(cx, cfg, api, &stages[stage_id as usize], first_stage);
    for (route_api, r) in cfg.routes.iter().filter(|(a, _)| a == api) {
        let _ = route_api;
        let key = match route_key::parse(&r.name) {
            Ok(k) => k,
            Err(msg) => {
                // Report a bad key once, not once per stage.
                if stages.iter().filter(|st| st.api == *api).count() == 1 {
                    cx.err(r.at.clone(), msg, Some("route keys look like \"GET /users/{id}\", \"ANY /files/{path+}\" or \"$default\""));
                }
                continue;
            }
        };
        let param_names = key.param_names();
        let Some(integration) = integration(cx, r, &param_names, &s.variables, upstreams, cfg)
        else {
            continue;
        };
        let canary_integration = match &canary {
            Some((_, vars)) => match self::integration(cx, r, &param_names, vars, upstreams, cfg) {
                Some(i) => Some(i),
                None => continue,
            },
            None => None,
        };
        let (timeout, mut request_buffering) = route_settings(cx, r, gateway);
        let Some((auth, scopes)) = super::auth::route(cx, cfg, api, r, first_stage) else {
            continue;
        };
        let Some(validate) =
            super::transform::validation(cx, cfg, api, r, &param_names, first_stage)
        else {
            continue;
        };
        if validate.as_ref().is_some_and(|v| v.body.is_some()) {
            // a body is validated whole before it goes anywhere
            request_buffering = gateway.max_body;
        }
        let id = routes.len() as u32;
        let mut conflict = None;
        for h in &hosts {
            let trie = router.trie_mut(h);
            let res = match &key {
                RouteKey::Default => trie.insert_default(&base_segments, id),
                RouteKey::Path { method, segments } => {
                    trie.insert(&base_segments, *method, segments, id)
                }
            };
            if let Err(Conflict::SameAs(other)) = res {
                conflict = Some((other, h.clone()));
                break;
            }
        }
        if let Some((other, host)) = conflict {
            let o: &Route = &routes[other as usize];
            cx.err(
                r.at.clone(),
                format!(
                    "route `{}` of stage `{}` can never be reached: `{}` of stage `{}` already answers it on host `{host}`",
                    r.name, stage.name, o.key, stages[o.stage as usize].name
                ),
                Some("two routes with the same method and path shape, or two stages mounted at the same host and base path"),
            );
            continue;
        }
        let route_cache = cache::route(
            cx,
            r,
            &stage.name,
            stages[stage_id as usize].cache.as_ref(),
            matches!(integration, Integration::HttpProxy(_)),
            first_stage,
        );
        routes.push(Route {
            key: r.name.as_str().into(),
            stage: stage_id,
            param_names,
            integration,
            timeout,
            request_buffering,
            api_key_required: r.value.api_key_required,
            auth,
            scopes,
            limit: None,
            series: None,
            cache: route_cache,
            canary: canary_integration,
            validate,
        });
    }
}

fn integration(
    cx: &mut Ctx,
    r: &Entry<model::Route>,
    params: &[String],
    vars: &std::collections::BTreeMap<String, String>,
    upstreams: &[Upstream],
    cfg: &Config,
) -> Option<Integration> {
    let broken = &cfg.broken;
    let span = r.value.integration.span();
    match r.value.integration.get_ref() {
        model::Integration::Aws {
            action,
            parameters,
            uri,
            method,
            request_templates,
            passthrough,
            request_parameters,
            responses,
            content_handling,
        } => {
            let action = match (action, uri) {
                (Some(a), None) => a,
                (None, Some(uri)) => {
                    let spec = super::transform::Spec {
                        request_templates,
                        passthrough: passthrough.as_deref(),
                        request_parameters: Some(request_parameters),
                        responses,
                        content_handling: content_handling.as_deref(),
                    };
                    return aws_rest(cx, cfg, r, span, uri, method.as_deref(), vars, &spec);
                }
                _ => {
                    cx.err(
                        at(r, span),
                        "an aws integration takes `action` (HTTP API style) or `uri` (REST style)",
                        Some("e.g. action = \"SQS-SendMessage\", or uri = \"arn:aws:apigateway:us-east-1:dynamodb:action/PutItem\""),
                    );
                    return None;
                }
            };
            let Some(a) = crate::aws::actions::find(action) else {
                let names: Vec<&str> = crate::aws::actions::ACTIONS
                    .iter()
                    .map(|a| a.name)
                    .collect();
                cx.err(
                    at(r, span),
                    format!("aws action `{action}` is not one turnpike knows"),
                    Some(&format!("actions: {}", names.join(", "))),
                );
                return None;
            };
            let given: Vec<&str> = parameters.keys().map(String::as_str).collect();
            if let Err(msg) = a.check(&given) {
                cx.err(at(r, span), msg, None);
                return None;
            }
            let mut params = Vec::new();
            for (name, value) in parameters {
                let Some(&(pname, _, _)) = a.params.iter().find(|(p, _, _)| p == name) else {
                    continue; // Region: the endpoint's region is [aws]'s
                };
                match param_source(value, vars, params_names(r)) {
                    Ok(p) => params.push((pname, p)),
                    Err(msg) => {
                        cx.err(
                            at(r, span.clone()),
                            format!("parameter `{name}`: {msg}"),
                            None,
                        );
                        return None;
                    }
                }
            }
            let service = super::aws::service_as(cx, cfg, a.endpoint, a.signing, &at(r, span))?;
            Some(Integration::Aws(crate::plan::AwsAction {
                action: a,
                params,
                service,
            }))
        }
        model::Integration::Lambda {
            function,
            payload,
            proxy,
            request_templates,
            passthrough,
            responses,
            content_handling,
        } => {
            if !*proxy || !request_templates.is_empty() || !responses.is_empty() {
                if *proxy {
                    cx.err(
                        at(r, span),
                        "request_templates and responses belong to a custom Lambda integration",
                        Some("add proxy = false"),
                    );
                    return None;
                }
                let function = lambda_function(cx, r, &span, function, vars)?;
                let spec = super::transform::Spec {
                    request_templates,
                    passthrough: passthrough.as_deref(),
                    request_parameters: None,
                    responses,
                    content_handling: content_handling.as_deref(),
                };
                let mapping = super::transform::mapping(cx, cfg, r, span.clone(), &spec)?;
                let service = super::aws::service(cx, cfg, "lambda", &at(r, span))?;
                return Some(Integration::LambdaMapped(Box::new(
                    crate::plan::LambdaMapped {
                        function,
                        service,
                        mapping,
                    },
                )));
            }
            let payload = match payload.as_str() {
                "1.0" => crate::auth::authorizer::Payload::V1,
                "2.0" => crate::auth::authorizer::Payload::V2,
                other => {
                    cx.err(
                        at(r, span),
                        format!("lambda payload \"{other}\" is neither \"1.0\" nor \"2.0\""),
                        None,
                    );
                    return None;
                }
            };
            let function = lambda_function(cx, r, &span, function, vars)?;
            let service = super::aws::service(cx, cfg, "lambda", &at(r, span))?;
            Some(Integration::Lambda(crate::plan::LambdaProxy {
                function,
                payload,
                service,
            }))
        }
        model::Integration::Mock {
            status,
            body,
            headers,
            request_templates,
            passthrough,
            responses,
        } => {
            let mapping = if request_templates.is_empty() && responses.is_empty() {
                None
            } else {
                let spec = super::transform::Spec {
                    request_templates,
                    passthrough: passthrough.as_deref(),
                    request_parameters: None,
                    responses,
                    content_handling: None,
                };
                Some(Box::new(super::transform::mapping(
                    cx,
                    cfg,
                    r,
                    span.clone(),
                    &spec,
                )?))
            };
            if !(100..=599).contains(status) {
                cx.err(
                    at(r, span),
                    format!("mock status {status} is not an HTTP status"),
                    None,
                );
                return None;
            }
            let mut head = Vec::new();
            let mut has_content_type = false;
            for (k, v) in headers {
                let name_ok = !k.is_empty()
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                let value_ok = v.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f));
                if !name_ok || !value_ok {
                    cx.err(
                        at(r, span.clone()),
                        format!("mock header `{k}` is not a valid header"),
                        None,
                    );
                    return None;
                }
                let lower = k.to_ascii_lowercase();
                if matches!(
                    lower.as_str(),
                    "content-length" | "transfer-encoding" | "connection"
                ) {
                    cx.err(
                        at(r, span.clone()),
                        format!("mock header `{k}` is set by the gateway"),
                        None,
                    );
                    return None;
                }
                has_content_type |= lower == "content-type";
                let v = expand_stage_variables(v, vars).unwrap_or_else(|_| v.clone());
                head.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
            }
            Some(Integration::Mock(Mock {
                status: *status,
                mapping,
                headers: Bytes::from(head),
                has_content_type,
                body: Bytes::from(body.clone().into_bytes()),
            }))
        }
        model::Integration::Http {
            uri,
            method,
            request_templates,
            passthrough,
            request_parameters,
            responses,
            content_handling,
        } => {
            let expanded = match expand_stage_variables(uri, vars) {
                Ok(u) => u,
                Err(msg) => {
                    cx.err(at(r, span.clone()), msg, None);
                    return None;
                }
            };
            let (base, path) = split_url(&expanded);
            let endpoint = match super::endpoint::endpoint(base, || cx.system_tls()) {
                Ok(e) => e,
                Err(msg) => {
                    cx.err(
                        at(r, span.clone()),
                        msg,
                        Some("a non-proxy http integration calls an http:// or https:// URL with a host:port (named upstreams are for http_proxy)"),
                    );
                    return None;
                }
            };
            if let Some(m) = method {
                if crate::plan::Method::from_bytes(m.as_bytes()).is_none() {
                    cx.err(
                        at(r, span.clone()),
                        format!("method `{m}` is not an HTTP method turnpike routes"),
                        None,
                    );
                    return None;
                }
            }
            let spec = super::transform::Spec {
                request_templates,
                passthrough: passthrough.as_deref(),
                request_parameters: Some(request_parameters),
                responses,
                content_handling: content_handling.as_deref(),
            };
            let mapping = super::transform::mapping(cx, cfg, r, span.clone(), &spec)?;
            Some(Integration::Http(Box::new(crate::plan::HttpMapped {
                endpoint,
                path: path.to_string(),
                method: method.clone(),
                mapping,
            })))
        }
        model::Integration::HttpProxy {
            uri,
            parameter_mapping,
            response_parameters,
        } => {
            let response_mapping = if response_parameters.is_empty() {
                None
            } else {
                use crate::transform::params::{
                    parse_response_key, parse_value, ResponseMapping, ResponseOp,
                };
                let mut by_status = Vec::new();
                for (status, ops) in response_parameters {
                    let Ok(code @ 200..=599) = status.parse::<u16>() else {
                        cx.err(
                            at(r, span.clone()),
                            format!(
                                "response_parameters: `{status}` is not a status from 200 to 599"
                            ),
                            None,
                        );
                        return None;
                    };
                    let mut list = Vec::new();
                    for (k, v) in ops {
                        let parsed = parse_response_key(k).and_then(|(action, header)| {
                            Ok(ResponseOp {
                                action,
                                header,
                                value: parse_value(v, params, vars)?,
                            })
                        });
                        match parsed {
                            Ok(op) => list.push(op),
                            Err(msg) => {
                                cx.err(
                                    at(r, span.clone()),
                                    format!("response_parameters.{status}: {msg}"),
                                    None,
                                );
                                return None;
                            }
                        }
                    }
                    by_status.push((code, list));
                }
                Some(Box::new(ResponseMapping { by_status }))
            };
            let mapping = if parameter_mapping.is_empty() {
                None
            } else {
                use crate::transform::params::{parse_key, parse_value, Op, ParamMapping};
                let mut ops = Vec::new();
                for (k, v) in parameter_mapping {
                    let parsed = parse_key(k).and_then(|(action, place)| {
                        let value = parse_value(v, params, vars)?;
                        if value.iter().any(|p| {
                            matches!(p, crate::transform::params::Piece::ResponseHeader(_))
                        }) {
                            return Err(format!(
                                "`{v}`: $response values belong to response_parameters"
                            ));
                        }
                        Ok(Op {
                            action,
                            place,
                            value,
                        })
                    });
                    match parsed {
                        Ok(op) => ops.push(op),
                        Err(msg) => {
                            cx.err(
                                at(r, span.clone()),
                                format!("parameter_mapping: {msg}"),
                                None,
                            );
                            return None;
                        }
                    }
                }
                Some(Box::new(ParamMapping { ops }))
            };
            let expanded = match expand_stage_variables(uri, vars) {
                Ok(u) => u,
                Err(msg) => {
                    cx.err(at(r, span.clone()), msg, None);
                    return None;
                }
            };
            let parsed = match parse_uri(&expanded, params) {
                Ok(p) => p,
                Err(msg) => {
                    cx.err(at(r, span.clone()), msg, None);
                    return None;
                }
            };
            let mut tls = None;
            let target = match upstreams.iter().position(|u| u.name == parsed.authority) {
                // (an upstream whose targets all failed was reported already)
                Some(i)
                    if !upstreams[i].targets.is_empty()
                        && parsed.tls != upstreams[i].tls.iter().any(Option::is_some) =>
                {
                    cx.err(
                        at(r, span.clone()),
                        format!(
                            "`{}` uses {} but upstream `{}` {}",
                            uri,
                            if parsed.tls { "https://" } else { "http://" },
                            parsed.authority,
                            if parsed.tls {
                                "has no `tls = true`"
                            } else {
                                "speaks TLS (`tls = true`): use https://"
                            }
                        ),
                        None,
                    );
                    return None;
                }
                Some(i) => Target::Upstream(i as u32),
                // already reported where the upstream is defined
                None if broken.contains(&parsed.authority) => return None,
                None => match socket_addr(&parsed.authority, if parsed.tls { 443 } else { 80 }) {
                    Ok(a) if parsed.tls => {
                        let host = upstream::host_of(&parsed.authority);
                        let config = cx.system_tls()?;
                        match crate::upstream::TlsPeer::new(config, "", host) {
                            Ok(p) => tls = Some(p),
                            Err(msg) => {
                                cx.err(at(r, span.clone()), msg, None);
                                return None;
                            }
                        }
                        Target::Addr(a)
                    }
                    Ok(a) => Target::Addr(a),
                    Err(msg) => {
                        cx.err(
                            at(r, span.clone()),
                            format!(
                                "`{}` is neither an upstream nor a reachable host:port ({msg})",
                                parsed.authority
                            ),
                            None,
                        );
                        return None;
                    }
                },
            };
            Some(Integration::HttpProxy(Proxy {
                target,
                path: parsed.path,
                host: parsed.authority,
                tls,
                mapping,
                response_mapping,
            }))
        }
    }
}

/// The route's parameter names, from its key.
fn params_names(r: &Entry<model::Route>) -> Vec<String> {
    route_key::parse(&r.name)
        .map(|k| k.param_names())
        .unwrap_or_default()
}

/// Where a parameter mapping value comes from.
fn param_source(
    value: &str,
    vars: &std::collections::BTreeMap<String, String>,
    path_params: Vec<String>,
) -> Result<crate::plan::Param, String> {
    use crate::plan::Param;
    let v = value.trim();
    if v == "$request.body" {
        return Ok(Param::Body(Vec::new()));
    }
    if let Some(path) = v.strip_prefix("$request.body.") {
        let parts: Vec<String> = path.split('.').map(str::to_string).collect();
        if parts.iter().any(String::is_empty) {
            return Err(format!("`{v}` is not a body member path"));
        }
        return Ok(Param::Body(parts));
    }
    if let Some(h) = v.strip_prefix("$request.header.").filter(|h| !h.is_empty()) {
        return Ok(Param::Header(h.to_ascii_lowercase()));
    }
    if let Some(q) = v
        .strip_prefix("$request.querystring.")
        .filter(|q| !q.is_empty())
    {
        return Ok(Param::Query(q.to_string()));
    }
    if let Some(p) = v.strip_prefix("$request.path.") {
        return match path_params.iter().position(|n| n == p) {
            Some(i) => Ok(Param::Path(i)),
            None => Err(format!("the route has no path parameter `{p}`")),
        };
    }
    match v {
        "$context.requestId" => return Ok(Param::RequestId),
        "$context.identity.sourceIp" => return Ok(Param::SourceIp),
        _ => {}
    }
    if let Some(name) = v.strip_prefix("$stageVariables.") {
        return vars
            .get(name)
            .map(|x| Param::Literal(x.clone()))
            .ok_or_else(|| format!("the stage has no variable `{name}`"));
    }
    if v.starts_with('$') && !v.starts_with("${") {
        return Err(format!("`{v}` is not a mapping value turnpike knows ($request.body[.path], $request.header.X, $request.querystring.X, $request.path.X, $context.requestId, $context.identity.sourceIp, $stageVariables.X)"));
    }
    expand_stage_variables(value, vars).map(Param::Literal)
}

/// Checks the routes of an API that no stage serves, so their errors still show.
/// Stage variables cannot be checked without a stage; everything else is.
pub(super) fn validate_unmounted(
    cx: &mut Ctx,
    cfg: &Config,
    gateway: &Gateway,
    api: &str,
    upstreams: &[Upstream],
) {
    for (_, r) in cfg.routes.iter().filter(|(a, _)| a == api) {
        let key = match route_key::parse(&r.name) {
            Ok(k) => k,
            Err(msg) => {
                cx.err(r.at.clone(), msg, None);
                continue;
            }
        };
        route_settings(cx, r, gateway);
        super::auth::route(cx, cfg, api, r, true);
        let uses_vars = match r.value.integration.get_ref() {
            model::Integration::HttpProxy {
                uri,
                parameter_mapping,
                response_parameters,
            } => {
                uri.contains("${")
                    || parameter_mapping
                        .values()
                        .chain(response_parameters.values().flat_map(|m| m.values()))
                        .any(|v| v.contains("stageVariables"))
            }
            model::Integration::Lambda { function, .. } => function.contains("${"),
            model::Integration::Aws {
                parameters, uri, ..
            } => {
                parameters.values().any(|v| v.contains("stageVariables"))
                    || uri.as_deref().is_some_and(|u| u.contains("${"))
            }
            model::Integration::Http { uri, .. } => uri.contains("${"),
            model::Integration::Mock { .. } => false,
        };
        if !uses_vars {
            integration(
                cx,
                r,
                &key.param_names(),
                &Default::default(),
                upstreams,
                cfg,
            );
        }
    }
}

/// `type = "aws"` with AWS's integration URI (REST style).
#[allow(clippy::too_many_arguments)]
fn aws_rest(
    cx: &mut Ctx,
    cfg: &Config,
    r: &Entry<model::Route>,
    span: std::ops::Range<usize>,
    uri: &str,
    method: Option<&str>,
    vars: &std::collections::BTreeMap<String, String>,
    spec: &super::transform::Spec<'_>,
) -> Option<Integration> {
    use crate::aws::rest::{parse_uri, Protocol, Target as RestTarget};
    let uri = match expand_stage_variables(uri, vars) {
        Ok(u) => u,
        Err(msg) => {
            cx.err(at(r, span), msg, None);
            return None;
        }
    };
    let parsed = match parse_uri(&uri) {
        Ok(p) => p,
        Err(msg) => {
            cx.err(at(r, span), msg, None);
            return None;
        }
    };
    let method = match (method, parsed.service.protocol) {
        (Some(m), _) if crate::plan::Method::from_bytes(m.as_bytes()).is_none() => {
            cx.err(
                at(r, span),
                format!("method `{m}` is not an HTTP method"),
                None,
            );
            return None;
        }
        (Some(m), _) => m.to_ascii_uppercase(),
        (None, Protocol::RestXml) => {
            cx.err(
                at(r, span),
                "an S3 integration needs its `method` (GET, PUT, DELETE, …)",
                None,
            );
            return None;
        }
        (None, _) => "POST".to_string(),
    };
    let mapping = super::transform::mapping(cx, cfg, r, span.clone(), spec)?;
    let service = super::aws::service_as(
        cx,
        cfg,
        parsed.service.endpoint,
        parsed.service.signing,
        &at(r, span.clone()),
    )?;
    if service.region != parsed.region {
        cx.err(
            at(r, span),
            format!(
                "`{uri}` names region {}, but the gateway calls AWS in {} ([aws] region)",
                parsed.region, service.region
            ),
            None,
        );
        return None;
    }
    let (action, path) = match parsed.target {
        RestTarget::Action(a, extra) => (Some((a, extra)), String::new()),
        RestTarget::Path(p) => (None, p),
    };
    Some(Integration::AwsMapped(Box::new(crate::plan::AwsMapped {
        service,
        protocol: parsed.service.protocol,
        method,
        action,
        path,
        mapping,
    })))
}

/// A Lambda integration's function, stage variables expanded.
fn lambda_function(
    cx: &mut Ctx,
    r: &Entry<model::Route>,
    span: &std::ops::Range<usize>,
    function: &str,
    vars: &std::collections::BTreeMap<String, String>,
) -> Option<String> {
    match expand_stage_variables(function, vars) {
        Ok(f) if !f.is_empty() => Some(f),
        Ok(_) => {
            cx.err(
                at(r, span.clone()),
                "a lambda integration needs a function name or ARN",
                None,
            );
            None
        }
        Err(msg) => {
            cx.err(at(r, span.clone()), format!("lambda function: {msg}"), None);
            None
        }
    }
}

/// `scheme://authority` and the path after it (with its `{name}` placeholders).
fn split_url(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => url.split_at(after_scheme + i),
        None => (url, ""),
    }
}
