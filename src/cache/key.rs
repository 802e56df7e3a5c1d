//! Cache keys (DESIGN §3): stage + method + path after the base path, plus the values
//! of the route's declared `query.*` and `header.*` parameters. Nothing else of the
//! request counts: undeclared query parameters, other headers and the body never do.
//!
//! The stage (and the route's cache settings) are folded into the key's `tag`, so a
//! reload that changes a route's settings can never serve entries stored under the
//! old ones. Every part is length-prefixed, so no two requests share a key by
//! shifting bytes from one part to the next. HEAD uses GET's key: a HEAD request is
//! answered from the GET response without its body.

/// A route's declared key parameters, compiled once per plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KeySpec {
    /// Query parameter names, sorted (so declaration order does not matter).
    pub query: Vec<Box<[u8]>>,
    /// Header names, lower-case, sorted.
    pub headers: Vec<Box<[u8]>>,
}

impl KeySpec {
    /// Parses `["query.fields", "header.accept-language"]`.
    pub fn parse(list: &[String]) -> Result<KeySpec, String> {
        let mut spec = KeySpec::default();
        for item in list {
            if let Some(name) = item.strip_prefix("query.") {
                if name.is_empty() || name.bytes().any(|b| b"&=#? ".contains(&b)) {
                    return Err(format!("cache key `{item}`: not a query parameter name"));
                }
                spec.query.push(name.as_bytes().into());
            } else if let Some(name) = item.strip_prefix("header.") {
                let token = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !token {
                    return Err(format!("cache key `{item}`: not a header name"));
                }
                spec.headers
                    .push(name.to_ascii_lowercase().into_bytes().into());
            } else {
                return Err(format!(
                    "cache key `{item}`: expected `query.NAME` or `header.NAME`"
                ));
            }
        }
        spec.query.sort();
        spec.query.dedup();
        spec.headers.sort();
        spec.headers.dedup();
        Ok(spec)
    }

    /// Whether `name` (any case) is a declared header: a response that varies on
    /// anything else cannot be stored under this key.
    pub fn declares_header(&self, name: &[u8]) -> bool {
        self.headers.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Writes the key of a request into `out` (cleared first).
    pub fn build<'h>(
        &self,
        out: &mut Vec<u8>,
        tag: u64,
        method: &[u8],
        path: &[u8],
        query: Option<&[u8]>,
        header: impl Fn(&[u8]) -> Option<&'h [u8]>,
    ) {
        out.clear();
        out.extend_from_slice(&tag.to_le_bytes());
        part(out, if method == b"HEAD" { b"GET" } else { method });
        part(out, path);
        for name in &self.query {
            // every value of the parameter, in request order
            let mut values = 0;
            for pair in query.unwrap_or(b"").split(|&b| b == b'&') {
                let (n, v) = match pair.iter().position(|&b| b == b'=') {
                    Some(i) => (&pair[..i], &pair[i + 1..]),
                    None => (pair, &b""[..]),
                };
                if n == &name[..] {
                    part(out, v);
                    values += 1;
                }
            }
            out.extend_from_slice(&(values as u32).to_le_bytes());
        }
        for name in &self.headers {
            match header(name) {
                Some(v) => {
                    out.push(1);
                    part(out, v);
                }
                None => out.push(0),
            }
        }
    }
}

fn part(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(
        spec: &KeySpec,
        method: &str,
        path: &str,
        query: Option<&str>,
        lang: Option<&str>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        spec.build(
            &mut out,
            7,
            method.as_bytes(),
            path.as_bytes(),
            query.map(str::as_bytes),
            |n| {
                (n == b"accept-language")
                    .then_some(lang.map(str::as_bytes))
                    .flatten()
            },
        );
        out
    }

    #[test]
    fn declared_parameters_count_and_others_do_not() {
        let spec = KeySpec::parse(&[
            "query.fields".into(),
            "header.Accept-Language".into(),
            "query.a".into(),
        ])
        .unwrap();
        let base = key(&spec, "GET", "/u/1", Some("fields=x&a=1"), Some("en"));
        // order-insensitive, undeclared ignored
        assert_eq!(
            base,
            key(&spec, "GET", "/u/1", Some("a=1&z=9&fields=x"), Some("en"))
        );
        // HEAD shares GET's key
        assert_eq!(
            base,
            key(&spec, "HEAD", "/u/1", Some("fields=x&a=1"), Some("en"))
        );
        for other in [
            key(&spec, "GET", "/u/1", Some("fields=y&a=1"), Some("en")),
            key(&spec, "GET", "/u/1", Some("fields=x&a=1"), Some("fr")),
            key(&spec, "GET", "/u/1", Some("fields=x&a=1"), None),
            key(&spec, "GET", "/u/2", Some("fields=x&a=1"), Some("en")),
            key(&spec, "POST", "/u/1", Some("fields=x&a=1"), Some("en")),
            key(&spec, "GET", "/u/1", Some("fields=x&a=1&a=2"), Some("en")),
            key(&spec, "GET", "/u/1", Some("a=1"), Some("en")),
        ] {
            assert_ne!(base, other);
        }
        // a parameter present but empty differs from one absent
        assert_ne!(
            key(&spec, "GET", "/u/1", Some("a"), None),
            key(&spec, "GET", "/u/1", None, None)
        );
    }

    #[test]
    fn bad_declarations_are_errors() {
        for bad in [
            "fields",
            "query.",
            "header.",
            "header.a b",
            "cookie.x",
            "query.a=b",
        ] {
            assert!(KeySpec::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
