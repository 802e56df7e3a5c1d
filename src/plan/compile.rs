//! Config → Plan: every meaning check, all errors collected, nothing allocated later.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::time::{Duration, SystemTime};

use toml::Spanned;

use super::router::Router;
use super::{Plan, Stage};
use crate::config::{Config, Entry, Errors, Pos};
use crate::observe::access_log::{Format, DEFAULT_FORMAT};

const MIN_ROUTE_TIMEOUT: Duration = Duration::from_millis(50);
const MAX_ROUTE_TIMEOUT: Duration = Duration::from_secs(29);

struct Ctx {
    errors: Errors,
    /// `(api, name)` of each JWT authorizer, by its index in the plan.
    authorizer_names: Vec<(String, String)>,
    /// `(api, name)` of each request/token authorizer, by its index in the plan.
    request_authorizer_names: Vec<(String, String)>,
    /// AWS services made so far (`aws::service`).
    aws_services: Vec<std::sync::Arc<crate::aws::Service>>,
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

/// The directory of the file an entry is in: paths a configuration names (keys,
/// certificates, key sets) are relative to the file that names them.
fn dir_of<T>(sources: &crate::config::Sources, e: &Entry<T>) -> std::path::PathBuf {
    sources
        .files
        .get(e.at.file)
        .and_then(|f| f.path.parent())
        .map(|p| p.to_path_buf())
        .unwrap_or_default()
}

/// Compiles a loaded configuration. `available_cores` resolves `workers = 0`.
pub fn compile(mut cfg: Config, available_cores: usize) -> Result<Plan, Errors> {
    let mut cx = Ctx {
        errors: std::mem::take(&mut cfg.errors),
        authorizer_names: Vec::new(),
        request_authorizer_names: Vec::new(),
        aws_services: Vec::new(),
        warnings: Vec::new(),
        system_tls: None,
    };
    let gateway = gateway(&mut cx, cfg.gateway.as_ref(), available_cores);
    let tls = tls_listeners(&mut cx, &cfg);
    let upstreams = upstream::compile(&mut cx, &cfg.upstreams, gateway.workers, &cfg.sources);
    let mut gateway = gateway;
    if gateway.region.is_empty() {
        gateway.region = cfg
            .aws
            .as_ref()
            .and_then(|a| a.value.region.as_ref())
            .map_or_else(|| "us-east-1".to_string(), |r| r.get_ref().clone());
    }
    let (authorizers, request_authorizers) = auth::authorizers(&mut cx, &cfg);
    let iam_users = auth::iam_users(&mut cx, &cfg, &gateway.account);
    let mut stages = Vec::new();
    let mut routes = Vec::new();
    let mut router = Router::default();
    for stage in &cfg.stages {
        compile_stage(
            &mut cx,
            &cfg,
            &gateway,
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
            validate_unmounted(&mut cx, &cfg, &gateway, &api.name, &upstreams);
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
        authorizers,
        request_authorizers,
        aws_services: std::mem::take(&mut cx.aws_services),
        iam_users,
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

pub fn socket_addr(s: &str, default_port: u16) -> Result<SocketAddr, String> {
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

mod auth;
mod aws;
mod cache;
mod endpoint;
mod gateway;
mod limits;
mod stage;
mod transform;
mod upstream;

use gateway::{gateway, tls_listeners};
use stage::{compile_stage, validate_unmounted};

#[cfg(test)]
mod tests;
