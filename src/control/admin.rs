//! The admin listener (DESIGN §6): `/healthz`, `/ready`, `/config`, `POST /reload`.
//! One plain thread with blocking sockets: admin traffic is rare and must never
//! compete with workers. Loopback by default; never put it on a public address.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use super::reload::{self, ConfigSource, ReloadStats};
use crate::cache::CacheStore;
use crate::limit::quota::QuotaStore;
use crate::observe::metrics::MetricsStore;
use crate::plan::PlanHandle;
use crate::proto::h1::{parse_request, RequestHead};
use crate::upstream::health::HealthStore;
use crate::worker::Shutdown;

pub struct Admin {
    pub plan: PlanHandle,
    pub source: ConfigSource,
    pub shutdown: Arc<Shutdown>,
    pub stats: Arc<ReloadStats>,
    pub quotas: Arc<QuotaStore>,
    pub metrics: Arc<MetricsStore>,
    pub caches: Arc<CacheStore>,
    pub jwks: Arc<crate::auth::jwks::JwksStore>,
    pub health: Arc<HealthStore>,
}

pub fn start(addr: SocketAddr, admin: Admin) -> std::io::Result<SocketAddr> {
    crate::worker::listener::ensure_free(addr)?;
    let l = TcpListener::bind(addr)?;
    let bound = l.local_addr()?;
    std::thread::Builder::new()
        .name("turnpike-admin".into())
        .spawn(move || {
            for s in l.incoming().flatten() {
                let _ = serve(s, &admin);
            }
        })?;
    Ok(bound)
}

fn serve(mut s: TcpStream, admin: &Admin) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::with_capacity(4096);
    let mut head = RequestHead::default();
    let mut chunk = [0u8; 4096];
    loop {
        match parse_request(&buf, 16 << 10, &mut head) {
            Ok(Some(_)) => break,
            Ok(None) => {}
            Err(_) => {
                return respond(
                    &mut s,
                    400,
                    "application/json",
                    r#"{"message":"Bad Request"}"#,
                )
            }
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    if let Some(want) = admin.plan.load().gateway.admin_token {
        let given = head
            .header(b"authorization")
            .and_then(|v| v.strip_prefix(b"Bearer "))
            .map(crate::limit::keys::sha256);
        if !given.is_some_and(|g| crate::limit::keys::ct_eq(&g, &want)) {
            return respond(
                &mut s,
                401,
                "application/json",
                r#"{"message":"Unauthorized"}"#,
            );
        }
    }
    let (status, body) = route(head.method(), head.path(), admin);
    let ctype = if head.path() == "/metrics" && status == 200 {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "application/json"
    };
    respond(&mut s, status, ctype, &body)
}

fn route(method: &[u8], path: &str, admin: &Admin) -> (u16, String) {
    match (method, path) {
        (b"GET" | b"HEAD", "/healthz") => (200, r#"{"status":"ok"}"#.into()),
        (b"GET", "/metrics") => {
            let p = admin.plan.load();
            let hash = format!("{{hash=\"{:016x}\"}}", p.hash);
            let ok = admin.stats.ok.load(Ordering::Relaxed) as f64;
            let failed = admin.stats.failed.load(Ordering::Relaxed) as f64;
            let ready = if admin.shutdown.is_draining() {
                0.0
            } else {
                1.0
            };
            let mut text = admin.metrics.render(&[
                (
                    "turnpike_plan_info",
                    "The active plan's hash.",
                    "gauge",
                    &hash,
                    1.0,
                ),
                (
                    "turnpike_reloads_ok_total",
                    "Reloads that compiled and were published.",
                    "counter",
                    "",
                    ok,
                ),
                (
                    "turnpike_reloads_failed_total",
                    "Reloads that failed and changed nothing.",
                    "counter",
                    "",
                    failed,
                ),
                (
                    "turnpike_ready",
                    "1 while serving, 0 while draining.",
                    "gauge",
                    "",
                    ready,
                ),
            ]);
            cache_metrics(&mut text, &admin.caches);
            (200, text)
        }
        (b"GET" | b"HEAD", "/ready") => {
            if admin.shutdown.is_draining() {
                (503, r#"{"ready":false,"reason":"draining"}"#.into())
            } else {
                (200, r#"{"ready":true}"#.into())
            }
        }
        (b"GET", "/config") => {
            let p = admin.plan.load();
            let loaded = p
                .loaded_at
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            let sources: Vec<String> = p
                .sources
                .iter()
                .map(|s| json_str(&s.display().to_string()))
                .collect();
            (
                200,
                format!(
                    r#"{{"hash":"{:016x}","loaded_at":{loaded},"sources":[{}],"routes":{},"reloads_ok":{},"reloads_failed":{}}}"#,
                    p.hash,
                    sources.join(","),
                    p.routes.len(),
                    admin.stats.ok.load(Ordering::Relaxed),
                    admin.stats.failed.load(Ordering::Relaxed),
                ),
            )
        }
        (b"POST", "/reload") => {
            match reload::reload(
                &admin.plan,
                &admin.source,
                &admin.stats,
                &admin.quotas,
                &admin.metrics,
                &admin.caches,
                &admin.health,
                &admin.jwks,
            ) {
                Ok(p) => (
                    200,
                    format!(r#"{{"message":"reloaded","hash":"{:016x}"}}"#, p.hash),
                ),
                Err(e) => {
                    let list: Vec<String> = e
                        .list
                        .iter()
                        .map(|x| {
                            let at = x
                                .pos
                                .as_ref()
                                .map(|p| e.sources.locate(p))
                                .unwrap_or_default();
                            json_str(&format!("{at}: {}", x.message))
                        })
                        .collect();
                    (
                        400,
                        format!(
                            r#"{{"message":"reload failed","errors":[{}]}}"#,
                            list.join(",")
                        ),
                    )
                }
            }
        }
        (m, p) if p.starts_with("/stages/") && p.ends_with("/cache") => {
            let stage = &p["/stages/".len()..p.len() - "/cache".len()];
            if m != b"DELETE" {
                return (405, r#"{"message":"Method Not Allowed"}"#.into());
            }
            flush_stage(stage, admin)
        }
        (_, "/healthz" | "/ready" | "/config" | "/reload") => {
            (405, r#"{"message":"Method Not Allowed"}"#.into())
        }
        _ => (404, r#"{"message":"Not Found"}"#.into()),
    }
}

/// `DELETE /stages/{stage}/cache`: drops every entry of the stage's cache.
fn flush_stage(stage: &str, admin: &Admin) -> (u16, String) {
    let plan = admin.plan.load();
    let Some(s) = plan.stages.iter().find(|s| s.name == stage) else {
        return (
            404,
            format!(
                r#"{{"message":{}}}"#,
                json_str(&format!("no stage `{stage}`"))
            ),
        );
    };
    let Some(cache) = s.cache.as_ref().and_then(|c| c.cache.as_ref()) else {
        return (
            404,
            format!(
                r#"{{"message":{}}}"#,
                json_str(&format!("stage `{stage}` has no cache"))
            ),
        );
    };
    let n = cache.flush();
    crate::info!("cache of stage `{stage}` flushed: {n} entries dropped");
    (
        200,
        format!(
            r#"{{"message":"flushed","stage":{},"entries":{n}}}"#,
            json_str(stage)
        ),
    )
}

/// Per-stage cache gauges: entries, bytes held, capacity, evictions.
fn cache_metrics(out: &mut String, caches: &CacheStore) {
    use std::fmt::Write as _;
    let all = caches.all();
    let rows: Vec<(String, crate::cache::Stats, usize)> = all
        .iter()
        .map(|(name, c)| (name.clone(), c.stats(), c.capacity))
        .collect();
    for (name, help, kind) in [
        (
            "turnpike_cache_entries",
            "Entries held in the stage's cache.",
            "gauge",
        ),
        (
            "turnpike_cache_bytes",
            "Bytes held (keys + headers + bodies) in the stage's cache.",
            "gauge",
        ),
        (
            "turnpike_cache_capacity_bytes",
            "The stage's cache capacity.",
            "gauge",
        ),
        (
            "turnpike_cache_evictions_total",
            "Entries evicted to make room.",
            "counter",
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (stage, st, cap) in &rows {
            let v = match name {
                "turnpike_cache_entries" => st.entries as u64,
                "turnpike_cache_bytes" => st.bytes as u64,
                "turnpike_cache_capacity_bytes" => *cap as u64,
                _ => st.evictions,
            };
            let label = crate::observe::metrics::esc(stage);
            let _ = writeln!(out, "{name}{{stage=\"{label}\"}} {v}");
        }
    }
}

fn respond(s: &mut TcpStream, status: u16, ctype: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or(""),
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())
}

/// A JSON string literal with everything that needs escaping escaped.
pub fn json_str(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'"');
    crate::observe::access_log::escape(&mut out, s.as_bytes());
    out.push(b'"');
    // escape() writes valid UTF-8 (it escapes or re-encodes every char)
    String::from_utf8(out).unwrap_or_default()
}
