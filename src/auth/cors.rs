//! CORS (DESIGN §8.5, AWS's HTTP API `corsConfiguration`): an API's policy, the
//! gateway's answer to a preflight (`OPTIONS` with `Origin` and
//! `Access-Control-Request-Method`, answered for any path of the API, before any
//! route, authorizer or throttle), and the headers added to every other response of
//! a request that carries an `Origin` the policy allows. CORS headers an upstream
//! sends are dropped, as AWS does: the policy alone speaks.
//!
//! Plain data in, header lines out; tested below and end to end in `tests/cors.rs`.

use crate::proto::head::push_line;

/// An API's CORS policy, as compiled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    /// Exact origins (lower-case), `*`, or `scheme://*` prefixes.
    pub allow_origins: Vec<String>,
    /// Upper-case methods, or `*`.
    pub allow_methods: Vec<String>,
    /// Lower-case header names, or `*`.
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    /// Seconds; `None`: no `access-control-max-age` (−1 as AWS: the browser's default).
    pub max_age: Option<i64>,
    pub allow_credentials: bool,
}

impl Cors {
    /// Whether `origin` may call (compared case-insensitively).
    pub fn allows(&self, origin: &[u8]) -> bool {
        let Ok(o) = std::str::from_utf8(origin) else {
            return false;
        };
        let o = o.to_ascii_lowercase();
        self.allow_origins.iter().any(|a| {
            a == "*"
                || *a == o
                || a.strip_suffix('*')
                    .is_some_and(|prefix| prefix.ends_with("://") && o.starts_with(prefix))
        })
    }

    /// The `access-control-allow-origin` value for an allowed origin: `*` when the
    /// policy allows every origin without credentials, else the origin itself.
    fn origin_value<'a>(&self, origin: &'a [u8]) -> &'a [u8] {
        if !self.allow_credentials && self.allow_origins.iter().any(|a| a == "*") {
            b"*"
        } else {
            origin
        }
    }

    /// Header lines for the answer to a preflight from `origin` asking for `method`
    /// and `headers`; `None` when the origin, the method or a header is not allowed
    /// (the gateway then answers without CORS headers, which the browser refuses).
    pub fn preflight(
        &self,
        origin: &[u8],
        method: &[u8],
        headers: Option<&[u8]>,
    ) -> Option<Vec<u8>> {
        if !self.allows(origin) {
            return None;
        }
        let any_method = self.allow_methods.iter().any(|m| m == "*");
        let m = std::str::from_utf8(method).ok()?.trim();
        if !any_method && !self.allow_methods.iter().any(|a| a.eq_ignore_ascii_case(m)) {
            return None;
        }
        let any_header = self.allow_headers.iter().any(|h| h == "*");
        let asked: Vec<String> = headers
            .and_then(|h| std::str::from_utf8(h).ok())
            .map(|h| {
                h.split(',')
                    .map(|x| x.trim().to_ascii_lowercase())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if !any_header && !asked.iter().all(|a| self.allow_headers.contains(a)) {
            return None;
        }
        let mut out = Vec::with_capacity(256);
        push_line(
            &mut out,
            b"access-control-allow-origin",
            self.origin_value(origin),
        );
        if self.allow_credentials {
            push_line(&mut out, b"access-control-allow-credentials", b"true");
        }
        let methods = if any_method {
            m.to_string()
        } else {
            self.allow_methods.join(", ")
        };
        push_line(
            &mut out,
            b"access-control-allow-methods",
            methods.as_bytes(),
        );
        let allowed_headers = if any_header {
            asked.join(", ")
        } else {
            self.allow_headers.join(", ")
        };
        if !allowed_headers.is_empty() {
            push_line(
                &mut out,
                b"access-control-allow-headers",
                allowed_headers.as_bytes(),
            );
        }
        if let Some(age) = self.max_age.filter(|a| *a >= 0) {
            push_line(
                &mut out,
                b"access-control-max-age",
                age.to_string().as_bytes(),
            );
        }
        push_line(&mut out, b"vary", b"origin");
        Some(out)
    }

    /// Appends the header lines for an actual (non-preflight) response to a request
    /// from `origin` (nothing but `vary` when the origin is not allowed).
    pub fn actual(&self, origin: &[u8], out: &mut Vec<u8>) {
        if self.allows(origin) {
            push_line(
                out,
                b"access-control-allow-origin",
                self.origin_value(origin),
            );
            if self.allow_credentials {
                push_line(out, b"access-control-allow-credentials", b"true");
            }
            if !self.expose_headers.is_empty() {
                push_line(
                    out,
                    b"access-control-expose-headers",
                    self.expose_headers.join(", ").as_bytes(),
                );
            }
        }
        push_line(out, b"vary", b"origin");
    }
}

/// Whether a response field is a CORS field (dropped from upstream answers when the
/// API has a policy).
pub fn is_cors_field(name: &[u8]) -> bool {
    name.len() > 15 && name[..15].eq_ignore_ascii_case(b"access-control-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Cors {
        Cors {
            allow_origins: vec!["https://app.example.com".into(), "http://*".into()],
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["authorization".into(), "x-custom".into()],
            expose_headers: vec!["x-request-id".into()],
            max_age: Some(600),
            allow_credentials: true,
        }
    }

    fn text(v: &[u8]) -> String {
        String::from_utf8(v.to_vec()).unwrap()
    }

    #[test]
    fn preflights_answer_only_what_the_policy_allows() {
        let c = policy();
        let ok = c
            .preflight(
                b"https://APP.example.com",
                b"POST",
                Some(b"X-Custom, authorization"),
            )
            .unwrap();
        let t = text(&ok);
        assert!(
            t.contains("access-control-allow-origin: https://APP.example.com\r\n"),
            "{t}"
        );
        assert!(t.contains("access-control-allow-credentials: true\r\n"));
        assert!(t.contains("access-control-allow-methods: GET, POST\r\n"));
        assert!(t.contains("access-control-allow-headers: authorization, x-custom\r\n"));
        assert!(t.contains("access-control-max-age: 600\r\n"));
        assert!(t.contains("vary: origin\r\n"));
        assert!(
            c.preflight(b"http://anything.test", b"GET", None).is_some(),
            "http://* prefix"
        );
        assert!(c.preflight(b"https://evil.example", b"GET", None).is_none());
        assert!(c
            .preflight(b"https://app.example.com", b"DELETE", None)
            .is_none());
        assert!(c
            .preflight(b"https://app.example.com", b"GET", Some(b"x-other"))
            .is_none());
    }

    #[test]
    fn wildcards_echo_and_star_only_without_credentials() {
        let c = Cors {
            allow_origins: vec!["*".into()],
            allow_methods: vec!["*".into()],
            allow_headers: vec!["*".into()],
            ..Cors::default()
        };
        let t = text(
            &c.preflight(b"https://x.test", b"PATCH", Some(b"x-a, x-b"))
                .unwrap(),
        );
        assert!(t.contains("access-control-allow-origin: *\r\n"), "{t}");
        assert!(t.contains("access-control-allow-methods: PATCH\r\n"));
        assert!(t.contains("access-control-allow-headers: x-a, x-b\r\n"));
        assert!(!t.contains("max-age"));
        let mut out = Vec::new();
        c.actual(b"https://x.test", &mut out);
        assert_eq!(
            text(&out),
            "access-control-allow-origin: *\r\nvary: origin\r\n"
        );
        let mut out = Vec::new();
        policy().actual(b"https://evil.example", &mut out);
        assert_eq!(text(&out), "vary: origin\r\n");
        assert!(is_cors_field(b"Access-Control-Allow-Origin"));
        assert!(!is_cors_field(b"access-control"));
    }
}
