//! HTTP API parameter mapping on proxy routes (DESIGN §10, AWS's
//! `requestParameters` of an HTTP API integration): `overwrite:`, `append:` and
//! `remove:` on `header.NAME` and `querystring.NAME`, and `overwrite:path`, with
//! values made of `$request.header.N`, `$request.querystring.N`, `$request.path`,
//! `$request.path.N`, `$context.N`, stage variables (expanded at load) and text,
//! alone or together (`${request.path.id}-v2`).
//!
//! Only routes that configure a mapping pay for it: the proxy asks
//! [`ParamMapping::render`] for the changes once per request and applies them while
//! it writes the upstream head.

/// Headers AWS does not let a mapping touch.
const RESERVED: &[&str] = &[
    "authorization",
    "connection",
    "content-encoding",
    "content-length",
    "content-location",
    "forwarded",
    "keep-alive",
    "origin",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "via",
    "host",
    "x-request-id",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Overwrite,
    Append,
    Remove,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Lower-case.
    Header(String),
    Query(String),
    Path,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Header(String),
    Query(String),
    /// A route parameter, by index.
    Path(usize),
    /// The request's path within the stage.
    WholePath,
    /// `$context.NAME` (dotted).
    Context(String),
    /// `$response.header.NAME` (response mappings only; lower-case).
    ResponseHeader(String),
}

#[derive(Debug, Clone)]
pub struct Op {
    pub action: Action,
    pub place: Place,
    pub value: Vec<Piece>,
}

/// A route's parameter mapping.
#[derive(Debug, Default)]
pub struct ParamMapping {
    pub ops: Vec<Op>,
}

/// What the facts of a request say a variable is.
pub trait Facts {
    fn header(&self, lower: &str) -> Option<String>;
    fn query(&self, name: &str) -> Option<String>;
    fn path_param(&self, i: usize) -> String;
    fn path(&self) -> String;
    fn context(&self, name: &str) -> Option<String>;
}

/// The changes to the upstream request.
#[derive(Debug, Default)]
pub struct Changes {
    pub path: Option<String>,
    /// The whole new query string (without `?`) when a mapping touched it.
    pub query: Option<String>,
    /// Lower-case names of the request's headers not to forward.
    pub drop: Vec<String>,
    /// Headers to add.
    pub add: Vec<(String, String)>,
}

impl Changes {
    pub fn drops(&self, name: &[u8]) -> bool {
        self.drop
            .iter()
            .any(|d| name.eq_ignore_ascii_case(d.as_bytes()))
    }
}

/// `overwrite:header.x-user` and its kin.
pub fn parse_key(key: &str) -> Result<(Action, Place), String> {
    let (action, rest) = key
        .split_once(':')
        .ok_or_else(|| format!("`{key}` is not ACTION:PLACE (e.g. overwrite:header.x-user)"))?;
    let action = match action {
        "overwrite" => Action::Overwrite,
        "append" => Action::Append,
        "remove" => Action::Remove,
        other => {
            return Err(format!(
                "`{key}`: `{other}` is none of overwrite, append, remove"
            ))
        }
    };
    let place = if rest == "path" {
        if action != Action::Overwrite {
            return Err(format!("`{key}`: the path can only be overwritten"));
        }
        Place::Path
    } else if let Some(h) = rest.strip_prefix("header.").filter(|h| !h.is_empty()) {
        let lower = h.to_ascii_lowercase();
        if RESERVED.contains(&lower.as_str())
            || lower.starts_with("x-amz-")
            || lower.starts_with("x-amzn-")
            || lower.starts_with("apigw-")
            || lower.starts_with("access-control-")
        {
            return Err(format!(
                "`{key}`: header `{h}` is reserved and cannot be mapped"
            ));
        }
        if !h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        {
            return Err(format!("`{key}`: `{h}` is not a header name"));
        }
        Place::Header(lower)
    } else if let Some(q) = rest.strip_prefix("querystring.").filter(|q| !q.is_empty()) {
        Place::Query(q.to_string())
    } else {
        return Err(format!(
            "`{key}`: `{rest}` is none of header.NAME, querystring.NAME, path"
        ));
    };
    Ok((action, place))
}

/// A value: variables (`$x.y` or `${x.y}`) among text. `params`: the route's path
/// parameters; `vars`: the stage's variables, expanded here.
pub fn parse_value(
    v: &str,
    params: &[String],
    vars: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = v;
    while let Some(i) = rest.find('$') {
        text.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, used) = if let Some(inner) = after.strip_prefix('{') {
            let end = inner
                .find('}')
                .ok_or_else(|| format!("`{v}`: `${{` without `}}`"))?;
            (&inner[..end], end + 2)
        } else {
            let n = after
                .bytes()
                .position(|b| !(b.is_ascii_alphanumeric() || b"._-".contains(&b)))
                .unwrap_or(after.len());
            (
                after[..n].trim_end_matches('.'),
                after[..n].trim_end_matches('.').len(),
            )
        };
        if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            text.push('$');
            rest = after;
            continue;
        }
        let piece = if let Some(n) = name.strip_prefix("stageVariables.") {
            let value = vars
                .get(n)
                .ok_or_else(|| format!("`{v}`: the stage has no variable `{n}`"))?;
            text.push_str(value);
            rest = &after[used..];
            continue;
        } else if let Some(h) = name.strip_prefix("request.header.") {
            Piece::Header(h.to_ascii_lowercase())
        } else if let Some(q) = name.strip_prefix("request.querystring.") {
            Piece::Query(q.to_string())
        } else if name == "request.path" {
            Piece::WholePath
        } else if let Some(p) = name.strip_prefix("request.path.") {
            let i = params
                .iter()
                .position(|n| n == p)
                .ok_or_else(|| format!("`{v}`: the route has no path parameter `{p}`"))?;
            Piece::Path(i)
        } else if let Some(c) = name.strip_prefix("context.") {
            Piece::Context(c.to_string())
        } else if let Some(h) = name.strip_prefix("response.header.") {
            Piece::ResponseHeader(h.to_ascii_lowercase())
        } else if name.starts_with("request.body") {
            return Err(format!(
                "`{v}`: $request.body values are not mapped on proxy routes (the body streams)"
            ));
        } else {
            return Err(format!(
                "`{v}`: `${name}` is none of $request.header.N, $request.querystring.N, $request.path[.N], $context.N, $stageVariables.N"
            ));
        };
        if !text.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut text)));
        }
        out.push(piece);
        rest = &after[used..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

/// HTTP API response mappings (`response_parameters`): per status, `overwrite:statuscode`
/// and `append|overwrite|remove:header.NAME`, values as for requests plus
/// `$response.header.NAME`.
#[derive(Debug, Default)]
pub struct ResponseMapping {
    /// (status, operations), as configured.
    pub by_status: Vec<(u16, Vec<ResponseOp>)>,
}

#[derive(Debug, Clone)]
pub struct ResponseOp {
    pub action: Action,
    /// `None`: the status code.
    pub header: Option<String>,
    pub value: Vec<Piece>,
}

/// A response mapping's key: `overwrite:statuscode` or `ACTION:header.NAME`.
pub fn parse_response_key(key: &str) -> Result<(Action, Option<String>), String> {
    if key == "overwrite:statuscode" {
        return Ok((Action::Overwrite, None));
    }
    match parse_key(key)? {
        (action, Place::Header(h)) => Ok((action, Some(h))),
        _ => Err(format!(
            "`{key}`: a response maps header.NAME or overwrite:statuscode"
        )),
    }
}

/// What a response mapping changes.
#[derive(Debug, Default)]
pub struct ResponseChanges {
    pub status: Option<u16>,
    /// Lower-case names of the upstream's headers not to pass on.
    pub drop: Vec<String>,
    pub add: Vec<(String, String)>,
}

impl ResponseChanges {
    pub fn drops(&self, name: &[u8]) -> bool {
        self.drop
            .iter()
            .any(|d| name.eq_ignore_ascii_case(d.as_bytes()))
    }
}

impl ResponseMapping {
    /// The changes for a response of `status`; `header` reads the upstream's
    /// response headers. `None`: no mapping for this status.
    pub fn render(
        &self,
        status: u16,
        f: &dyn Facts,
        header: ResponseHeaders<'_>,
    ) -> Option<ResponseChanges> {
        let (_, ops) = self.by_status.iter().find(|(s, _)| *s == status)?;
        let mut c = ResponseChanges::default();
        for op in ops {
            let v = render_value(&op.value, f, Some(header));
            match &op.header {
                None => {
                    if let Ok(s @ 100..=599) = v.trim().parse::<u16>() {
                        c.status = Some(s);
                    }
                }
                Some(name) => {
                    header_op(&mut c.add, &mut c.drop, name, op.action, v, || header(name));
                }
            }
        }
        Some(c)
    }
}

/// Reads a header of the upstream's response (response mappings).
type ResponseHeaders<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A value's text; `response` reads the upstream's headers (response mappings).
fn render_value(pieces: &[Piece], f: &dyn Facts, response: Option<ResponseHeaders<'_>>) -> String {
    let mut s = String::new();
    for p in pieces {
        let part = match p {
            Piece::Text(t) => {
                s.push_str(t);
                continue;
            }
            Piece::Header(h) => f.header(h),
            Piece::Query(q) => f.query(q),
            Piece::Path(i) => Some(f.path_param(*i)),
            Piece::WholePath => Some(f.path()),
            Piece::Context(n) => f.context(n),
            // refused at load in request mappings
            Piece::ResponseHeader(h) => response.and_then(|r| r(h)),
        };
        s.push_str(&part.unwrap_or_default());
    }
    s
}

/// One header operation on the headers to add and the names to drop; `current`
/// reads the header as it came (for `append`).
fn header_op(
    add: &mut Vec<(String, String)>,
    drop: &mut Vec<String>,
    name: &str,
    action: Action,
    v: String,
    current: impl FnOnce() -> Option<String>,
) {
    // a value with control characters never reaches the head
    if !v.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f)) {
        return;
    }
    let existing = add
        .iter()
        .position(|(n, _)| n == name)
        .map(|i| add.remove(i).1)
        .or_else(|| (!drop.iter().any(|d| d == name)).then(current).flatten());
    if !drop.iter().any(|d| d == name) {
        drop.push(name.to_string());
    }
    match action {
        Action::Remove => {}
        Action::Overwrite => add.push((name.to_string(), v)),
        Action::Append => add.push((
            name.to_string(),
            match existing {
                Some(e) if !e.is_empty() => format!("{e},{v}"),
                _ => v,
            },
        )),
    }
}

impl ParamMapping {
    /// The changes for one request; `query` is the request's query string.
    pub fn render(&self, f: &dyn Facts, query: &str) -> Changes {
        let mut c = Changes::default();
        let mut pairs: Option<Vec<(String, String)>> = None;
        for op in &self.ops {
            let value = || render_value(&op.value, f, None);
            match &op.place {
                Place::Path => c.path = Some(value()),
                Place::Header(name) => {
                    header_op(&mut c.add, &mut c.drop, name, op.action, value(), || {
                        f.header(name)
                    });
                }
                Place::Query(name) => {
                    let v = value();
                    let list = pairs.get_or_insert_with(|| {
                        crate::auth::authorizer::query_pairs(query).collect()
                    });
                    match op.action {
                        Action::Remove => list.retain(|(k, _)| k != name),
                        Action::Overwrite => {
                            list.retain(|(k, _)| k != name);
                            list.push((name.clone(), v));
                        }
                        Action::Append => list.push((name.clone(), v)),
                    }
                }
            }
        }
        if let Some(list) = pairs {
            let mut q = String::new();
            for (k, v) in list {
                if !q.is_empty() {
                    q.push('&');
                }
                q.push_str(&super::util::url_encode(&k));
                q.push('=');
                q.push_str(&super::util::url_encode(&v));
            }
            c.query = Some(q);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct F;
    impl Facts for F {
        fn header(&self, n: &str) -> Option<String> {
            (n == "x-in").then(|| "one".to_string())
        }
        fn query(&self, n: &str) -> Option<String> {
            (n == "q").then(|| "a b".to_string())
        }
        fn path_param(&self, i: usize) -> String {
            ["7", "x"][i].to_string()
        }
        fn path(&self) -> String {
            "/items/7".into()
        }
        fn context(&self, n: &str) -> Option<String> {
            (n == "requestId").then(|| "r-1".to_string())
        }
    }

    fn mapping(pairs: &[(&str, &str)]) -> ParamMapping {
        let params = vec!["id".to_string(), "other".to_string()];
        let vars = [("env".to_string(), "prod".to_string())]
            .into_iter()
            .collect();
        ParamMapping {
            ops: pairs
                .iter()
                .map(|(k, v)| {
                    let (action, place) = parse_key(k).unwrap();
                    Op {
                        action,
                        place,
                        value: parse_value(v, &params, &vars).unwrap(),
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn awss_examples_map() {
        let m = mapping(&[
            ("append:header.header1", "$context.requestId"),
            ("append:header.x-in", "two"),
            ("overwrite:header.x-user", "${request.path.id}-v2"),
            ("remove:header.cookie", "''"),
            ("overwrite:querystring.q", "$request.header.x-in"),
            ("append:querystring.v", "2"),
            ("overwrite:path", "/new$request.path"),
            (
                "overwrite:header.x-env",
                "$stageVariables.env/${stageVariables.env}",
            ),
        ]);
        let c = m.render(&F, "q=old&keep=1&q=older");
        assert_eq!(c.path.as_deref(), Some("/new/items/7"));
        assert_eq!(c.query.as_deref(), Some("keep=1&q=one&v=2"));
        assert!(c.drops(b"Cookie") && c.drops(b"x-in") && c.drops(b"X-User"));
        assert!(!c.drops(b"accept"));
        assert_eq!(
            c.add,
            vec![
                ("header1".to_string(), "r-1".to_string()),
                ("x-in".to_string(), "one,two".to_string()),
                ("x-user".to_string(), "7-v2".to_string()),
                ("x-env".to_string(), "prod/prod".to_string()),
            ]
        );
    }

    #[test]
    fn responses_map_by_status() {
        let vars = Default::default();
        let op = |k: &str, v: &str| {
            let (action, header) = parse_response_key(k).unwrap();
            ResponseOp {
                action,
                header,
                value: parse_value(v, &[], &vars).unwrap(),
            }
        };
        // AWS's example: {"500": {"append:header.header1": "$context.requestId", "overwrite:statuscode": "403"}}
        let m = ResponseMapping {
            by_status: vec![
                (
                    500,
                    vec![
                        op("append:header.header1", "$context.requestId"),
                        op("overwrite:statuscode", "403"),
                    ],
                ),
                (
                    404,
                    vec![
                        op("overwrite:header.x-up", "$response.header.server"),
                        op("remove:header.server", ""),
                    ],
                ),
            ],
        };
        let up = |n: &str| (n == "server").then(|| "nginx".to_string());
        let c = m.render(500, &F, &up).unwrap();
        assert_eq!(c.status, Some(403));
        assert_eq!(c.add, vec![("header1".to_string(), "r-1".to_string())]);
        let c = m.render(404, &F, &up).unwrap();
        assert_eq!(c.add, vec![("x-up".to_string(), "nginx".to_string())]);
        assert!(c.drops(b"Server"));
        assert!(m.render(200, &F, &up).is_none());
        assert!(parse_response_key("overwrite:querystring.a").is_err());
        assert!(parse_response_key("append:statuscode").is_err());
    }

    #[test]
    fn bad_mappings_are_refused() {
        assert!(parse_key("overwrite:header.authorization").is_err());
        assert!(parse_key("append:header.x-amz-date").is_err());
        assert!(parse_key("append:path").is_err());
        assert!(parse_key("replace:header.x").is_err());
        assert!(parse_key("overwrite:cookie.x").is_err());
        let none = Default::default();
        assert!(parse_value("$request.path.nope", &[], &none).is_err());
        assert!(parse_value("$request.body.a", &[], &none).is_err());
        assert!(parse_value("${request.header.x", &[], &none).is_err());
        assert!(parse_value("$stageVariables.nope", &[], &none).is_err());
        assert_eq!(
            parse_value("cost $5", &[], &none).unwrap(),
            vec![Piece::Text("cost $5".into())]
        );
    }
}
