//! Route keys as written in the config: `"GET /users/{id}"`, `"ANY /files/{path+}"`, `"$default"`.

use std::fmt;

/// The methods a route may name. Anything else is matched only by `ANY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get = 0,
    Head,
    Post,
    Put,
    Delete,
    Patch,
    Options,
    Connect,
    Trace,
}

impl Method {
    pub const COUNT: usize = 9;
    pub const ALL: [Method; Method::COUNT] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Patch,
        Method::Options,
        Method::Connect,
        Method::Trace,
    ];

    pub fn from_bytes(b: &[u8]) -> Option<Method> {
        Some(match b {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"PATCH" => Method::Patch,
            b"OPTIONS" => Method::Options,
            b"CONNECT" => Method::Connect,
            b"TRACE" => Method::Trace,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Options => "OPTIONS",
            Method::Connect => "CONNECT",
            Method::Trace => "TRACE",
        }
    }

    /// `Allow` header value for a set of method bits (as returned by the router).
    pub fn allow_header(bits: u16) -> String {
        let names: Vec<&str> = Method::ALL
            .iter()
            .filter(|m| bits & (1 << **m as usize) != 0)
            .map(|m| m.as_str())
            .collect();
        names.join(", ")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodSpec {
    One(Method),
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Static(String),
    Param(String),
    Greedy(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKey {
    Default,
    Path {
        method: MethodSpec,
        segments: Vec<Segment>,
    },
}

impl RouteKey {
    /// Names of the path parameters in order of appearance.
    pub fn param_names(&self) -> Vec<String> {
        match self {
            RouteKey::Default => Vec::new(),
            RouteKey::Path { segments, .. } => segments
                .iter()
                .filter_map(|s| match s {
                    Segment::Param(n) | Segment::Greedy(n) => Some(n.clone()),
                    Segment::Static(_) => None,
                })
                .collect(),
        }
    }
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteKey::Default => f.write_str("$default"),
            RouteKey::Path { method, segments } => {
                match method {
                    MethodSpec::Any => f.write_str("ANY")?,
                    MethodSpec::One(m) => f.write_str(m.as_str())?,
                }
                f.write_str(" ")?;
                if segments.is_empty() {
                    return f.write_str("/");
                }
                for s in segments {
                    match s {
                        Segment::Static(s) => write!(f, "/{s}")?,
                        Segment::Param(n) => write!(f, "/{{{n}}}")?,
                        Segment::Greedy(n) => write!(f, "/{{{n}+}}")?,
                    }
                }
                Ok(())
            }
        }
    }
}

fn valid_param_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Characters allowed in a static path segment of a route key (RFC 3986 pchar, unencoded).
fn valid_static(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%".contains(&b))
}

/// Parses a route key; the error says what is wrong with it.
pub fn parse(key: &str) -> Result<RouteKey, String> {
    if key == "$default" {
        return Ok(RouteKey::Default);
    }
    let (m, path) = key
        .split_once(' ')
        .ok_or_else(|| format!("route key `{key}` must be \"METHOD /path\" or \"$default\""))?;
    let method = if m == "ANY" {
        MethodSpec::Any
    } else {
        MethodSpec::One(Method::from_bytes(m.as_bytes()).ok_or_else(|| {
            format!("`{m}` is not a method; use GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, CONNECT, TRACE or ANY")
        })?)
    };
    if !path.starts_with('/') {
        return Err(format!("path `{path}` must start with `/`"));
    }
    let segments = parse_path(&path[1..])?;
    Ok(RouteKey::Path { method, segments })
}

/// Parses path segments (after the leading `/`); shared by route keys and base paths.
pub fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = path.split('/').collect();
    let mut segments = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if let Some(name) = inner.strip_suffix('+') {
                if !last {
                    return Err(format!(
                        "greedy parameter `{{{name}+}}` must be the last segment"
                    ));
                }
                if !valid_param_name(name) {
                    return Err(format!("`{{{name}+}}` is not a valid parameter name"));
                }
                segments.push(Segment::Greedy(name.to_string()));
            } else {
                if !valid_param_name(inner) {
                    return Err(format!("`{{{inner}}}` is not a valid parameter name"));
                }
                segments.push(Segment::Param(inner.to_string()));
            }
        } else if part.is_empty() {
            return Err("empty path segment (`//` or a trailing `/`)".to_string());
        } else if part.contains(['{', '}']) || !valid_static(part) {
            return Err(format!("`{part}` is not a valid path segment"));
        } else {
            segments.push(Segment::Static(part.to_string()));
        }
    }
    let names: Vec<&String> = segments
        .iter()
        .filter_map(|s| match s {
            Segment::Param(n) | Segment::Greedy(n) => Some(n),
            Segment::Static(_) => None,
        })
        .collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(format!("parameter `{n}` appears twice"));
        }
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        for k in [
            "GET /users/{id}",
            "ANY /files/{path+}",
            "POST /",
            "$default",
        ] {
            assert_eq!(parse(k).unwrap().to_string(), k);
        }
    }

    #[test]
    fn rejects_bad_keys() {
        for k in [
            "GET users",
            "FETCH /x",
            "GET /a/{p+}/b",
            "GET /a//b",
            "GET /a/",
            "GET /{a}/{a}",
            "GET /{}",
            "GET /a{b}",
            "GET",
        ] {
            assert!(parse(k).is_err(), "{k} should be rejected");
        }
    }
}
