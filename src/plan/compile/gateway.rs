//! `[gateway]` and `[[gateway.tls]]` → the gateway's settings and TLS listeners.

use std::net::SocketAddr;
use std::time::Duration;

use super::{at, duration, size, Ctx, MAX_ROUTE_TIMEOUT, MIN_ROUTE_TIMEOUT};
use crate::config::{model, Config, Entry};
use crate::plan::Gateway;

/// Request bodies up to this size are read whole before going upstream (nginx's
/// `proxy_request_buffering` default reads them all; this bounds the memory).
pub(super) const DEFAULT_REQUEST_BUFFERING: u64 = 64 << 10;

pub(super) fn gateway(cx: &mut Ctx, g: Option<&Entry<model::Gateway>>, cores: usize) -> Gateway {
    const DEFAULT_ACCOUNT: &str = "000000000000";
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
            request_buffering: DEFAULT_REQUEST_BUFFERING,
            max_header_size: 32 << 10,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
            tls_listen: Vec::new(),
            region: String::new(),
            account: DEFAULT_ACCOUNT.into(),
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
    let max_body = size(cx, e, &v.max_body, 10 << 20);
    let request_buffering = match &v.request_buffering {
        None => DEFAULT_REQUEST_BUFFERING.min(max_body),
        Some(s) => {
            let n = size(cx, e, &v.request_buffering, DEFAULT_REQUEST_BUFFERING);
            if n > max_body {
                cx.err(
                    at(e, s.span()),
                    format!(
                        "request_buffering ({n} bytes) must be at most max_body ({max_body} bytes)"
                    ),
                    Some("\"0\" turns buffering off: every body streams"),
                );
            }
            n.min(max_body)
        }
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
        max_body,
        request_buffering,
        max_header_size: max_header_size as usize,
        header_timeout: duration(cx, e, &v.header_timeout, Duration::from_secs(10)),
        idle_timeout: duration(cx, e, &v.idle_timeout, Duration::from_secs(60)),
        drain_timeout: duration(cx, e, &v.drain_timeout, Duration::from_secs(30)),
        tls_listen: v
            .tls
            .iter()
            .filter_map(|t| t.listen.get_ref().parse().ok())
            .collect(),
        region: v
            .region
            .as_ref()
            .map_or_else(String::new, |r| r.get_ref().clone()),
        account: match &v.account {
            None => DEFAULT_ACCOUNT.into(),
            Some(a)
                if a.get_ref().len() == 12 && a.get_ref().bytes().all(|b| b.is_ascii_digit()) =>
            {
                a.get_ref().clone()
            }
            Some(a) => {
                cx.err(
                    at(e, a.span()),
                    format!("account `{}` is not a 12-digit AWS account id", a.get_ref()),
                    None,
                );
                DEFAULT_ACCOUNT.into()
            }
        },
    }
}

/// `[[gateway.tls]]` → each listener's server configuration; certificate and key
/// paths are relative to the file that names them.
pub(super) fn tls_listeners(cx: &mut Ctx, cfg: &Config) -> Vec<crate::plan::TlsListener> {
    let Some(e) = cfg.gateway.as_ref() else {
        return Vec::new();
    };
    let base = super::dir_of(&cfg.sources, e);
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
            Ok(config) => out.push(crate::plan::TlsListener { addr, config }),
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
