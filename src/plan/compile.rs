//! Config → Plan: every meaning check, all errors collected, nothing allocated later.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use toml::Spanned;

use super::route_key::{self, RouteKey, Segment};
use super::router::{Conflict, Router};
use super::template::{expand_stage_variables, parse_uri};
use super::{Gateway, Integration, Mock, Plan, Proxy, Route, Stage, Target, Upstream};
use crate::config::{model, Config, Entry, Errors, Pos};
use crate::observe::access_log::{Format, DEFAULT_FORMAT};

const MIN_ROUTE_TIMEOUT: Duration = Duration::from_millis(50);
const MAX_ROUTE_TIMEOUT: Duration = Duration::from_secs(29);

struct Ctx {
    errors: Errors,
    warnings: Vec<String>,
    /// The client TLS configuration with the system's roots, built on first need.
    system_tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Ctx {
    /// The system-roots TLS client configuration (made once per compile).
    fn system_tls(&mut self) -> Option<std::sync::Arc<rustls::ClientConfig>> {
        if self.system_tls.is_none() {
            match crate::upstream::tls::client_config(None) {
                Ok((c, warning)) => {
                    if let Some(w) = warning {
                        self.warnings.push(w);
                    }
                    self.system_tls = Some(c);
                }
                Err(msg) => self.warnings.push(format!("TLS: {msg}")),
            }
        }
        self.system_tls.clone()
    }
}

impl Ctx {
    fn err(&mut self, pos: Pos, msg: impl Into<String>, hint: Option<&str>) {
        self.errors.push(pos, msg.into(), hint);
    }
}

fn at<T>(e: &Entry<T>, span: Range<usize>) -> Pos {
    e.pos(span)
}

/// Compiles a loaded configuration. `available_cores` resolves `workers = 0`.
pub fn compile(mut cfg: Config, available_cores: usize) -> Result<Plan, Errors> {
    let mut cx = Ctx {
        errors: std::mem::take(&mut cfg.errors),
        warnings: Vec::new(),
        system_tls: None,
    };
    let gateway = gateway(&mut cx, cfg.gateway.as_ref(), available_cores);
    let tls = tls_listeners(&mut cx, &cfg);
    let upstreams = upstream::compile(&mut cx, &cfg.upstreams, gateway.workers, &cfg.sources);
    let mut stages = Vec::new();
    let mut routes = Vec::new();
    let mut router = Router::default();
    for stage in &cfg.stages {
        compile_stage(
            &mut cx,
            &cfg,
            stage,
            &upstreams,
            &mut stages,
            &mut routes,
            &mut router,
        );
    }
    for api in &cfg.apis {
        if !stages.iter().any(|s: &Stage| s.api == api.name) {
            cx.warnings
                .push(format!("api `{}` is not served by any stage", api.name));
            validate_unmounted(&mut cx, &cfg, &api.name, &upstreams);
        }
    }
    let limits = limits::compile(&mut cx, &cfg, &mut stages, &mut routes, gateway.workers);
    let access_log = cfg.access_log.as_ref().and_then(|e| {
        let text = e.value.format.as_deref().unwrap_or(DEFAULT_FORMAT);
        match Format::parse(text) {
            Ok(f) => Some((e.value.path.clone(), f)),
            Err(m) => {
                cx.err(e.at.clone(), format!("[access_log] format: {m}"), None);
                None
            }
        }
    });
    if !cx.errors.is_empty() {
        cx.errors.sources = cfg.sources;
        return Err(cx.errors);
    }
    let mut h = DefaultHasher::new();
    for f in &cfg.sources.files {
        f.text.hash(&mut h);
    }
    Ok(Plan {
        hash: h.finish(),
        loaded_at: SystemTime::now(),
        sources: cfg.sources.files.iter().map(|f| f.path.clone()).collect(),
        gateway,
        tls,
        limits: limits.limits,
        keys: limits.keys,
        key_info: limits.key_info,
        usage_plans: limits.usage_plans,
        access_log,
        router,
        routes,
        stages,
        upstreams,
        warnings: cx.warnings,
    })
}

/// A config value parsed by `parse` (a duration, a size), or `default` when absent;
/// a bad value is reported at its position and `default` stands in.
fn parsed<T>(
    cx: &mut Ctx,
    e: &Entry<impl Sized>,
    v: &Option<Spanned<String>>,
    default: T,
    parse: fn(&str) -> Result<T, String>,
) -> T {
    match v {
        None => default,
        Some(s) => parse(s.get_ref()).unwrap_or_else(|msg| {
            cx.err(at(e, s.span()), msg, None);
            default
        }),
    }
}

fn duration(
    cx: &mut Ctx,
    e: &Entry<impl Sized>,
    v: &Option<Spanned<String>>,
    default: Duration,
) -> Duration {
    parsed(cx, e, v, default, crate::config::units::parse_duration)
}

fn size(cx: &mut Ctx, e: &Entry<impl Sized>, v: &Option<Spanned<String>>, default: u64) -> u64 {
    parsed(cx, e, v, default, crate::config::units::parse_size)
}

pub(super) fn socket_addr(s: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let with_port = if s
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        s.to_string()
    } else {
        format!("{s}:{default_port}")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{s}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{s}` resolves to no address"))
}

fn gateway(cx: &mut Ctx, g: Option<&Entry<model::Gateway>>, cores: usize) -> Gateway {
    let default_listen: SocketAddr = ([127, 0, 0, 1], 8080).into();
    let Some(e) = g else {
        return Gateway {
            listen: vec![default_listen],
            admin: Some(([127, 0, 0, 1], 9901).into()),
            admin_token: None,
            workers: cores.max(1),
            state_dir: None,
            timeout: MAX_ROUTE_TIMEOUT,
            max_body: 10 << 20,
            max_header_size: 32 << 10,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
            tls_listen: Vec::new(),
        };
    };
    let v = &e.value;
    let mut listen = Vec::new();
    for l in v.listen.iter().flatten() {
        match l.get_ref().parse::<SocketAddr>() {
            Ok(a) => listen.push(a),
            Err(_) => cx.err(
                at(e, l.span()),
                format!("`{}` is not an ip:port address", l.get_ref()),
                Some("e.g. \"127.0.0.1:8080\" or \"[::1]:8080\""),
            ),
        }
    }
    if v.listen.is_none() {
        listen.push(default_listen);
    } else if listen.is_empty() && v.listen.as_ref().is_some_and(|l| l.is_empty()) {
        cx.err(
            e.at.clone(),
            "`listen` is empty: the gateway would serve nothing",
            None,
        );
    }
    let admin = match &v.admin {
        None => Some(([127, 0, 0, 1], 9901).into()),
        Some(s) if s.get_ref().is_empty() => None,
        Some(s) => match s.get_ref().parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                cx.err(
                    at(e, s.span()),
                    format!("`{}` is not an ip:port address", s.get_ref()),
                    None,
                );
                None
            }
        },
    };
    let timeout = duration(cx, e, &v.timeout, MAX_ROUTE_TIMEOUT);
    if let Some(t) = &v.timeout {
        if !(MIN_ROUTE_TIMEOUT..=MAX_ROUTE_TIMEOUT).contains(&timeout) {
            cx.err(
                at(e, t.span()),
                "timeout must be between 50ms and 29s",
                None,
            );
        }
    }
    let max_header_size = size(cx, e, &v.max_header_size, 32 << 10);
    if let Some(s) = &v.max_header_size {
        if !(1024..=1 << 20).contains(&max_header_size) {
            cx.err(
                at(e, s.span()),
                "max_header_size must be between 1KiB and 1MiB",
                None,
            );
        }
    }
    let admin_token = match &v.admin_token {
        Some(t) if t.get_ref().len() < 16 => {
            cx.err(
                at(e, t.span()),
                "admin_token must be at least 16 characters",
                None,
            );
            None
        }
        Some(t) => Some(crate::limit::keys::sha256(t.get_ref().as_bytes())),
        None => None,
    };
    Gateway {
        listen,
        admin,
        admin_token,
        workers: match v.workers {
            None | Some(0) => cores.max(1),
            Some(n) => n.min(1024),
        },
        state_dir: v.state_dir.as_ref().map(std::path::PathBuf::from),
        timeout,
        max_body: size(cx, e, &v.max_body, 10 << 20),
        max_header_size: max_header_size as usize,
        header_timeout: duration(cx, e, &v.header_timeout, Duration::from_secs(10)),
        idle_timeout: duration(cx, e, &v.idle_timeout, Duration::from_secs(60)),
        drain_timeout: duration(cx, e, &v.drain_timeout, Duration::from_secs(30)),
        tls_listen: v
            .tls
            .iter()
            .filter_map(|t| t.listen.get_ref().parse().ok())
            .collect(),
    }
}

/// `[[gateway.tls]]` → each listener's server configuration; certificate and key
/// paths are relative to the file that names them.
fn tls_listeners(cx: &mut Ctx, cfg: &Config) -> Vec<super::TlsListener> {
    let Some(e) = cfg.gateway.as_ref() else {
        return Vec::new();
    };
    let base = cfg
        .sources
        .files
        .get(e.at.file)
        .and_then(|f| f.path.parent())
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let mut out = Vec::new();
    for t in &e.value.tls {
        let Ok(addr) = t.listen.get_ref().parse::<SocketAddr>() else {
            cx.err(
                at(e, t.listen.span()),
                format!("`{}` is not an ip:port address", t.listen.get_ref()),
                None,
            );
            continue;
        };
        type Paths = (
            std::path::PathBuf,
            std::path::PathBuf,
            Option<std::path::PathBuf>,
        );
        let paths: Vec<Paths> = t
            .certs
            .iter()
            .map(|c| {
                let ocsp = c.ocsp.as_ref().map(|o| base.join(o));
                (base.join(&c.cert), base.join(&c.key), ocsp)
            })
            .collect();
        let specs: Vec<crate::proto::tls::CertSpec<'_>> = t
            .certs
            .iter()
            .zip(&paths)
            .map(|(c, (cert, key, ocsp))| crate::proto::tls::CertSpec {
                hosts: &c.hosts,
                cert,
                key,
                ocsp: ocsp.as_deref(),
            })
            .collect();
        let client_ca = t.client_ca.as_ref().map(|p| base.join(p));
        let required = match t.client_auth.as_ref().map(|s| (s.get_ref().as_str(), s)) {
            None | Some(("required", _)) => true,
            Some(("optional", _)) => false,
            Some((other, s)) => {
                cx.err(
                    at(e, s.span()),
                    format!("client_auth `{other}`: expected required or optional"),
                    None,
                );
                true
            }
        };
        if t.client_auth.is_some() && client_ca.is_none() {
            cx.err(at(e, t.listen.span()), "client_auth needs client_ca", None);
        }
        let client = client_ca
            .as_deref()
            .map(|ca| crate::proto::tls::ClientAuth { ca, required });
        match crate::proto::tls::server_config(&specs, client) {
            Ok(config) => out.push(super::TlsListener { addr, config }),
            Err(list) => {
                for (_, msg) in list {
                    cx.err(
                        at(e, t.listen.span()),
                        format!("TLS listener {addr}: {msg}"),
                        None,
                    );
                }
            }
        }
    }
    out
}

fn compile_stage(
    cx: &mut Ctx,
    cfg: &Config,
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
    });
    let first_stage = stages.iter().filter(|st| st.api == *api).count() == 1;
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
        let Some(integration) =
            integration(cx, r, &param_names, &s.variables, upstreams, &cfg.broken)
        else {
            continue;
        };
        let canary_integration = match &canary {
            Some((_, vars)) => {
                match self::integration(cx, r, &param_names, vars, upstreams, &cfg.broken) {
                    Some(i) => Some(i),
                    None => continue,
                }
            }
            None => None,
        };
        let timeout = match &r.value.timeout {
            None => None,
            Some(t) => {
                let d = duration(cx, r, &Some(t.clone()), MAX_ROUTE_TIMEOUT);
                if !(MIN_ROUTE_TIMEOUT..=MAX_ROUTE_TIMEOUT).contains(&d) {
                    cx.err(
                        at(r, t.span()),
                        "timeout must be between 50ms and 29s",
                        None,
                    );
                }
                Some(d)
            }
        };
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
            timeout: timeout.unwrap_or(MAX_ROUTE_TIMEOUT),
            api_key_required: r.value.api_key_required,
            limit: None,
            series: None,
            cache: route_cache,
            canary: canary_integration,
        });
    }
}

fn integration(
    cx: &mut Ctx,
    r: &Entry<model::Route>,
    params: &[String],
    vars: &std::collections::BTreeMap<String, String>,
    upstreams: &[Upstream],
    broken: &[String],
) -> Option<Integration> {
    let span = r.value.integration.span();
    match r.value.integration.get_ref() {
        model::Integration::Mock {
            status,
            body,
            headers,
        } => {
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
                headers: Bytes::from(head),
                has_content_type,
                body: Bytes::from(body.clone().into_bytes()),
            }))
        }
        model::Integration::HttpProxy { uri } => {
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
            }))
        }
    }
}

/// Checks the routes of an API that no stage serves, so their errors still show.
/// Stage variables cannot be checked without a stage; everything else is.
fn validate_unmounted(cx: &mut Ctx, cfg: &Config, api: &str, upstreams: &[Upstream]) {
    for (_, r) in cfg.routes.iter().filter(|(a, _)| a == api) {
        let key = match route_key::parse(&r.name) {
            Ok(k) => k,
            Err(msg) => {
                cx.err(r.at.clone(), msg, None);
                continue;
            }
        };
        if let Some(t) = &r.value.timeout {
            let d = duration(cx, r, &Some(t.clone()), MAX_ROUTE_TIMEOUT);
            if !(MIN_ROUTE_TIMEOUT..=MAX_ROUTE_TIMEOUT).contains(&d) {
                cx.err(
                    at(r, t.span()),
                    "timeout must be between 50ms and 29s",
                    None,
                );
            }
        }
        let uses_vars = matches!(r.value.integration.get_ref(), model::Integration::HttpProxy { uri } if uri.contains("${"));
        if !uses_vars {
            integration(
                cx,
                r,
                &key.param_names(),
                &Default::default(),
                upstreams,
                &cfg.broken,
            );
        }
    }
}

mod cache;
mod limits;
mod upstream;

#[cfg(test)]
mod tests;
