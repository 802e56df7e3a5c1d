//! URLs of things the gateway calls itself (an HTTP authorizer, an AWS endpoint)
//! → resolved `upstream::call::Endpoint`s.

use crate::upstream::call::Endpoint;
use crate::upstream::TlsPeer;

/// An endpoint from an `http://` or `https://` URL; `tls` gives the client TLS
/// configuration for https (the system roots).
pub fn endpoint(
    url: &str,
    tls: impl FnOnce() -> Option<std::sync::Arc<rustls::ClientConfig>>,
) -> Result<Endpoint, String> {
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') || path.contains(['?', '#', ' ']) {
        return Err(format!("`{url}`: expected scheme://host[:port][/path]"));
    }
    let addr = super::socket_addr(authority, if https { 443 } else { 80 })?;
    let tls = if https {
        let config = tls().ok_or_else(|| format!("`{url}`: no TLS roots to check it with"))?;
        Some(TlsPeer::new(
            config,
            "",
            super::upstream::host_of(authority),
        )?)
    } else {
        None
    };
    Ok(Endpoint {
        addr,
        authority: authority.to_string(),
        tls,
        path: path.trim_end_matches('/').to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_come_from_urls() {
        let e = endpoint("http://127.0.0.1:9500/authorize/", || None).unwrap();
        assert_eq!(e.addr, "127.0.0.1:9500".parse().unwrap());
        assert_eq!(e.authority, "127.0.0.1:9500");
        assert_eq!(e.path, "/authorize");
        assert!(e.tls.is_none());
        let e = endpoint("http://127.0.0.1", || None).unwrap();
        assert_eq!(e.addr.port(), 80);
        assert_eq!(e.path, "");
        assert!(endpoint("ftp://x", || None).is_err());
        assert!(endpoint("http://127.0.0.1/a?b", || None).is_err());
        assert!(endpoint("http://user@127.0.0.1/", || None).is_err());
        // https needs roots to check the peer with
        assert!(endpoint("https://127.0.0.1:1/", || None).is_err());
    }
}
