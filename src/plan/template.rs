//! Integration URIs: `http://users/v1/users/{id}` with `${stageVariables.x}` expanded
//! at compile time (per stage) and `{param}` filled per request.

use std::fmt;

/// A path with `{param}` holes, compiled to pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    /// Index into the route's parameter list.
    Param(usize),
}

impl PathTemplate {
    /// Appends the expanded path to `out`; `param(i)` gives the i-th parameter's value.
    pub fn render<'a>(&self, out: &mut Vec<u8>, param: impl Fn(usize) -> &'a str) {
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.extend_from_slice(s.as_bytes()),
                Piece::Param(i) => out.extend_from_slice(param(*i).as_bytes()),
            }
        }
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => f.write_str(s)?,
                Piece::Param(i) => write!(f, "{{#{i}}}")?,
            }
        }
        Ok(())
    }
}

/// Replaces every `${stageVariables.NAME}`; an unknown name is an error.
pub fn expand_stage_variables(
    s: &str,
    vars: &std::collections::BTreeMap<String, String>,
) -> Result<String, String> {
    const OPEN: &str = "${stageVariables.";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(OPEN) {
        out.push_str(&rest[..i]);
        let after = &rest[i + OPEN.len()..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{stageVariables.` in `{s}`"))?;
        let name = &after[..end];
        let v = vars
            .get(name)
            .ok_or_else(|| format!("stage variable `{name}` is not defined by the stage"))?;
        out.push_str(v);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// An `http://authority/path` URI split for the proxy.
#[derive(Debug, PartialEq, Eq)]
pub struct ParsedUri {
    pub authority: String,
    /// `https://`
    pub tls: bool,
    pub path: Option<PathTemplate>,
}

/// Parses an integration URI (stage variables already expanded). `params` are the
/// route's parameter names; `{name}` must name one of them.
pub fn parse_uri(uri: &str, params: &[String]) -> Result<ParsedUri, String> {
    let (tls, rest) = match uri.split_once("://") {
        Some(("http", rest)) => (false, rest),
        Some(("https", rest)) => (true, rest),
        _ => return Err(format!("`{uri}` must start with http:// or https://")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains(['{', '}', '@', '?', '#']) {
        return Err(format!("`{authority}` is not a valid host in `{uri}`"));
    }
    if path.contains(['?', '#']) {
        return Err(format!(
            "`{uri}`: no query or fragment in an integration URI; the request's query string is forwarded"
        ));
    }
    if path.is_empty() {
        return Ok(ParsedUri {
            authority: authority.to_string(),
            tls,
            path: None,
        });
    }
    let mut pieces = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Lit(rest[..open].to_string()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in `{uri}`"))?
            + open;
        let name = rest[open + 1..close].trim_end_matches('+');
        let idx = params
            .iter()
            .position(|p| p == name)
            .ok_or_else(|| format!("`{{{name}}}` in `{uri}` is not a parameter of the route"))?;
        pieces.push(Piece::Param(idx));
        rest = &rest[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("unmatched `}}` in `{uri}`"));
    }
    if !rest.is_empty() {
        pieces.push(Piece::Lit(rest.to_string()));
    }
    Ok(ParsedUri {
        tls,
        authority: authority.to_string(),
        path: Some(PathTemplate { pieces }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn renders_params() {
        let u = parse_uri("http://users/v1/users/{id}/x", &["id".into()]).unwrap();
        assert_eq!(u.authority, "users");
        let mut out = Vec::new();
        u.path.unwrap().render(&mut out, |_| "42");
        assert_eq!(out, b"/v1/users/42/x");
    }

    #[test]
    fn no_path_forwards_request_path() {
        let u = parse_uri("http://127.0.0.1:9000", &[]).unwrap();
        assert_eq!(u.path, None);
    }

    #[test]
    fn rejects_unknown_params_and_schemes() {
        assert!(parse_uri("http://a/{nope}", &["id".into()]).is_err());
        assert!(parse_uri("ftp://a/", &[]).is_err());
        assert!(parse_uri("http://a/x?y=1", &[]).is_err());
    }

    #[test]
    fn stage_variables() {
        let mut v = BTreeMap::new();
        v.insert("files".to_string(), "127.0.0.1:9100".to_string());
        assert_eq!(
            expand_stage_variables("http://${stageVariables.files}/{path}", &v).unwrap(),
            "http://127.0.0.1:9100/{path}"
        );
        assert!(expand_stage_variables("http://${stageVariables.nope}/", &v).is_err());
    }
}
