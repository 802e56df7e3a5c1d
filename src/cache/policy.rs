//! What may be stored, and what the client is told (RFC 9211 `Cache-Status`).
//!
//! Never stored: a status outside the route's list (default 200), a response with
//! `Set-Cookie`, `Cache-Control: no-store`, `private` or `no-cache`, or one that
//! `Vary`s on a header the route's key does not declare (`Vary: *` included), since
//! the entry would then be served to requests it was not made for.

use super::KeySpec;

/// Why a response was not stored (the `detail` of `Cache-Status`).
pub fn unstorable<'a>(
    status: u16,
    statuses: &[u16],
    spec: &KeySpec,
    headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Option<&'static str> {
    if !statuses.contains(&status) {
        return Some("status");
    }
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(b"set-cookie") {
            return Some("set-cookie");
        }
        if name.eq_ignore_ascii_case(b"cache-control")
            && tokens(value).any(|t| {
                let directive = t.split(|&b| b == b'=').next().unwrap_or(b"");
                directive.eq_ignore_ascii_case(b"no-store")
                    || directive.eq_ignore_ascii_case(b"private")
                    || directive.eq_ignore_ascii_case(b"no-cache")
            })
        {
            return Some("cache-control");
        }
        if name.eq_ignore_ascii_case(b"vary") && tokens(value).any(|t| !spec.declares_header(t)) {
            return Some("vary");
        }
    }
    None
}

/// Whether a request's `Cache-Control` asks for a fresh response (AWS: `max-age=0`).
pub fn wants_refresh(cache_control: Option<&[u8]>) -> bool {
    cache_control.is_some_and(|v| tokens(v).any(|t| t.eq_ignore_ascii_case(b"max-age=0")))
}

/// Response headers that are not stored: framing, hop-by-hop, and the fields that
/// belong to one exchange (our request id, the upstream's `Age`).
pub fn stores_header(name: &[u8]) -> bool {
    const SKIP: [&[u8]; 10] = [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
        b"te",
        b"trailer",
        b"content-length",
        b"x-request-id",
        b"age",
    ];
    !SKIP.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// The comma-separated, trimmed, non-empty members of a list header.
fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',')
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
}

/// How the cache took part in a response, for `Cache-Status`, the access log
/// (`$context.cacheStatus`) and the hit/miss metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Hit,
    /// Served from an entry another request was filling at the same time.
    Collapsed,
    Miss,
    /// An entry was there but past its TTL.
    Stale,
    /// The client asked for a fresh response (`max-age=0`) and was allowed to.
    Refresh,
    /// The route's cache does not apply to this request (method, `Authorization`).
    Bypass,
}

impl Outcome {
    /// `$context.cacheStatus`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Collapsed => "collapsed",
            Outcome::Miss => "miss",
            Outcome::Stale => "stale",
            Outcome::Refresh => "refresh",
            Outcome::Bypass => "bypass",
        }
    }

    pub fn is_hit(self) -> bool {
        matches!(self, Outcome::Hit | Outcome::Collapsed)
    }

    /// Writes the `cache-status` header line (RFC 9211). `stored`: the response was
    /// stored; `ttl`: seconds of freshness left (hits); `detail`: why not stored.
    pub fn write_header(
        self,
        out: &mut Vec<u8>,
        stored: bool,
        ttl: Option<u64>,
        detail: Option<&str>,
    ) {
        out.extend_from_slice(b"cache-status: turnpike; ");
        out.extend_from_slice(match self {
            Outcome::Hit => b"hit".as_slice(),
            Outcome::Collapsed => b"fwd=miss; collapsed",
            Outcome::Miss => b"fwd=miss",
            Outcome::Stale => b"fwd=stale",
            Outcome::Refresh => b"fwd=request",
            Outcome::Bypass => b"fwd=bypass",
        });
        if stored {
            out.extend_from_slice(b"; stored");
        }
        if let Some(t) = ttl {
            out.extend_from_slice(b"; ttl=");
            decimal(out, t);
        }
        if let Some(d) = detail {
            out.extend_from_slice(b"; detail=");
            out.extend_from_slice(d.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// `n` in decimal, without going through `fmt` (this is on every hit).
fn decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, headers: &[(&str, &str)]) -> Option<&'static str> {
        let spec = KeySpec::parse(&["header.accept-language".into()]).unwrap();
        unstorable(
            status,
            &[200, 404],
            &spec,
            headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
        )
    }

    #[test]
    fn never_stores_what_it_must_not() {
        assert_eq!(check(200, &[("content-type", "text/plain")]), None);
        assert_eq!(check(404, &[]), None);
        assert_eq!(check(500, &[]), Some("status"));
        assert_eq!(check(200, &[("Set-Cookie", "a=b")]), Some("set-cookie"));
        for cc in [
            "no-store",
            "private",
            "max-age=5, Private",
            "no-cache=\"x\"",
        ] {
            assert_eq!(
                check(200, &[("cache-control", cc)]),
                Some("cache-control"),
                "{cc}"
            );
        }
        assert_eq!(check(200, &[("cache-control", "public, max-age=60")]), None);
        assert_eq!(check(200, &[("vary", "Accept-Language")]), None);
        assert_eq!(
            check(200, &[("vary", "accept-language, accept-encoding")]),
            Some("vary")
        );
        assert_eq!(check(200, &[("vary", "*")]), Some("vary"));
    }

    #[test]
    fn cache_status_lines() {
        let mut out = Vec::new();
        Outcome::Hit.write_header(&mut out, false, Some(3600), None);
        Outcome::Miss.write_header(&mut out, true, None, None);
        Outcome::Stale.write_header(&mut out, false, None, Some("size"));
        Outcome::Collapsed.write_header(&mut out, false, Some(0), None);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "cache-status: turnpike; hit; ttl=3600\r\n\
             cache-status: turnpike; fwd=miss; stored\r\n\
             cache-status: turnpike; fwd=stale; detail=size\r\n\
             cache-status: turnpike; fwd=miss; collapsed; ttl=0\r\n"
        );
    }

    #[test]
    fn refresh_needs_max_age_zero() {
        assert!(wants_refresh(Some(b"max-age=0")));
        assert!(wants_refresh(Some(b"no-transform, MAX-AGE=0")));
        assert!(!wants_refresh(Some(b"max-age=00x")));
        assert!(!wants_refresh(Some(b"no-cache")));
        assert!(!wants_refresh(None));
    }
}
