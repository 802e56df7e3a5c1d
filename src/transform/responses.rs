//! Gateway responses (DESIGN §10, AWS's `GatewayResponse`): the gateway's own
//! answers by AWS type, each of which an API may give its own status, headers
//! and body template. A type an API does not customise falls back to its class's
//! `DEFAULT_4XX` / `DEFAULT_5XX`, and then to the built-in answer (DESIGN §5).
//!
//! Templates are AWS's "simple variable substitutions", not VTL: `$context.NAME`,
//! `$stageVariables.NAME` and `method.request.{header,querystring,path}.NAME`
//! (also in `${…}` form); `$context.error.messageString` is the message as a JSON
//! string. Header values: `'static'` or `method.request.…` (plain text is taken as
//! it is).
//!
//! Plain data and decisions, unit-tested below; `pipeline::respond` writes them.

use crate::error::Error;

/// AWS's gateway-response types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Default4xx,
    Default5xx,
    ResourceNotFound,
    Unauthorized,
    InvalidApiKey,
    AccessDenied,
    AuthorizerFailure,
    AuthorizerConfigurationError,
    InvalidSignature,
    ExpiredToken,
    MissingAuthenticationToken,
    IntegrationFailure,
    IntegrationTimeout,
    ApiConfigurationError,
    UnsupportedMediaType,
    BadRequestParameters,
    BadRequestBody,
    RequestTooLarge,
    Throttled,
    QuotaExceeded,
    WafFiltered,
}

pub const TYPES: [(Type, &str); 21] = [
    (Type::Default4xx, "DEFAULT_4XX"),
    (Type::Default5xx, "DEFAULT_5XX"),
    (Type::ResourceNotFound, "RESOURCE_NOT_FOUND"),
    (Type::Unauthorized, "UNAUTHORIZED"),
    (Type::InvalidApiKey, "INVALID_API_KEY"),
    (Type::AccessDenied, "ACCESS_DENIED"),
    (Type::AuthorizerFailure, "AUTHORIZER_FAILURE"),
    (
        Type::AuthorizerConfigurationError,
        "AUTHORIZER_CONFIGURATION_ERROR",
    ),
    (Type::InvalidSignature, "INVALID_SIGNATURE"),
    (Type::ExpiredToken, "EXPIRED_TOKEN"),
    (
        Type::MissingAuthenticationToken,
        "MISSING_AUTHENTICATION_TOKEN",
    ),
    (Type::IntegrationFailure, "INTEGRATION_FAILURE"),
    (Type::IntegrationTimeout, "INTEGRATION_TIMEOUT"),
    (Type::ApiConfigurationError, "API_CONFIGURATION_ERROR"),
    (Type::UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"),
    (Type::BadRequestParameters, "BAD_REQUEST_PARAMETERS"),
    (Type::BadRequestBody, "BAD_REQUEST_BODY"),
    (Type::RequestTooLarge, "REQUEST_TOO_LARGE"),
    (Type::Throttled, "THROTTLED"),
    (Type::QuotaExceeded, "QUOTA_EXCEEDED"),
    (Type::WafFiltered, "WAF_FILTERED"),
];

impl Type {
    pub fn parse(name: &str) -> Option<Type> {
        TYPES.iter().find(|(_, n)| *n == name).map(|(t, _)| *t)
    }

    pub fn name(self) -> &'static str {
        TYPES
            .iter()
            .find(|(t, _)| *t == self)
            .map_or("DEFAULT_4XX", |(_, n)| n)
    }

    fn index(self) -> usize {
        TYPES.iter().position(|(t, _)| *t == self).unwrap_or(0)
    }

    /// The type of an error the gateway answers (`iam_kind`: an IAM refusal's
    /// `x-amzn-ErrorType`).
    pub fn of(err: Error, iam_kind: Option<&str>) -> Type {
        match err {
            Error::BodyTooLarge | Error::RequestTooLong => Type::RequestTooLarge,
            Error::NotFound => Type::ResourceNotFound,
            Error::Forbidden => Type::InvalidApiKey,
            Error::Unauthorized(_) | Error::Unauthenticated => Type::Unauthorized,
            Error::InsufficientScope | Error::AccessDenied { .. } => Type::AccessDenied,
            Error::AuthorizerFailure => Type::AuthorizerConfigurationError,
            Error::IamRefused => match iam_kind {
                Some("MissingAuthenticationTokenException") => Type::MissingAuthenticationToken,
                Some("AccessDeniedException") => Type::AccessDenied,
                Some("UnrecognizedClientException") => Type::ExpiredToken,
                _ => Type::InvalidSignature,
            },
            Error::LambdaFailure
            | Error::LambdaRejected
            | Error::UpstreamConnect
            | Error::UpstreamReset
            | Error::UpstreamMalformed
            | Error::UpstreamTls => Type::IntegrationFailure,
            Error::UpstreamTimeout | Error::UpstreamConnectTimeout => Type::IntegrationTimeout,
            Error::TemplateFailure | Error::NoResponseMapping => Type::ApiConfigurationError,
            Error::UnsupportedMediaType => Type::UnsupportedMediaType,
            Error::BadRequestBody => Type::BadRequestBody,
            Error::BadRequestParameters => Type::BadRequestParameters,
            Error::TooManyRequests { .. } => Type::Throttled,
            Error::LimitExceeded { .. } => Type::QuotaExceeded,
            e if e.status() >= 500 => Type::Default5xx,
            _ => Type::Default4xx,
        }
    }
}

/// An API's customised gateway responses.
#[derive(Debug, Default)]
pub struct GatewayResponses {
    by_type: [Option<Custom>; 21],
}

/// One customised type.
#[derive(Debug, Default)]
pub struct Custom {
    pub status: Option<u16>,
    /// (lower-case name, value).
    pub headers: Vec<(String, Piece)>,
    pub template: Option<Subst>,
    pub content_type: String,
}

/// A substitution template: text and variables.
#[derive(Debug, Default, Clone)]
pub struct Subst {
    pub pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// `$context.NAME` (dotted).
    Context(String),
    StageVariable(String),
    Header(String),
    Query(String),
    Path(String),
}

impl GatewayResponses {
    pub fn set(&mut self, t: Type, c: Custom) {
        self.by_type[t.index()] = Some(c);
    }

    pub fn is_empty(&self) -> bool {
        self.by_type.iter().all(Option::is_none)
    }

    /// The customisation for an error of type `t` with built-in status `status`:
    /// the type's own, else its class default's.
    pub fn find(&self, t: Type, status: u16) -> Option<&Custom> {
        self.by_type[t.index()].as_ref().or_else(|| {
            let fallback = if status >= 500 {
                Type::Default5xx
            } else {
                Type::Default4xx
            };
            self.by_type[fallback.index()].as_ref()
        })
    }
}

impl Subst {
    /// Parses `$context.a.b`, `${context.a.b}`, `$stageVariables.x` and
    /// `method.request.header.X` (the last also bare, as AWS writes it).
    pub fn parse(text: &str) -> Subst {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while !rest.is_empty() {
            let (var, used) = variable(rest);
            match var {
                Some(p) => {
                    if !lit.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut lit)));
                    }
                    pieces.push(p);
                    rest = &rest[used..];
                }
                None => {
                    let c = rest.chars().next().unwrap_or(' ');
                    lit.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        Subst { pieces }
    }

    /// Renders with `value` giving each variable's text.
    pub fn render(&self, mut value: impl FnMut(&Piece) -> String) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                v => out.push_str(&value(v)),
            }
        }
        out
    }
}

/// A variable at the start of `s` and the bytes it takes.
fn variable(s: &str) -> (Option<Piece>, usize) {
    let name_len = |t: &str| {
        t.bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b"_-.".contains(&b)))
            .unwrap_or(t.len())
    };
    let make = |name: &str| -> Option<Piece> {
        let name = name.trim_end_matches('.');
        if let Some(n) = name.strip_prefix("context.") {
            return Some(Piece::Context(n.to_string()));
        }
        if let Some(n) = name.strip_prefix("stageVariables.") {
            return Some(Piece::StageVariable(n.to_string()));
        }
        let m = name.strip_prefix("method.request.")?;
        let (place, n) = m.split_once('.')?;
        match place {
            "header" => Some(Piece::Header(n.to_string())),
            "querystring" => Some(Piece::Query(n.to_string())),
            "path" => Some(Piece::Path(n.to_string())),
            _ => None,
        }
    };
    if let Some(inner) = s.strip_prefix("${") {
        if let Some(end) = inner.find('}') {
            return (make(&inner[..end]), end + 3);
        }
        return (None, 0);
    }
    if let Some(r) = s.strip_prefix('$') {
        let n = name_len(r);
        let name = r[..n].trim_end_matches('.');
        return (make(name), 1 + name.len());
    }
    if s.starts_with("method.request.") {
        let n = name_len(s);
        let name = s[..n].trim_end_matches('.');
        return (make(name), name.len());
    }
    (None, 0)
}

/// A header value: `'static'`, a `method.request.…` value, or plain text.
pub fn header_value(v: &str) -> Piece {
    if let Some(s) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return Piece::Text(s.to_string());
    }
    match variable(v) {
        (Some(p), n) if n == v.len() => p,
        _ => Piece::Text(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_awss_types() {
        assert_eq!(
            Type::of(
                Error::TooManyRequests {
                    retry_after: 1,
                    limit: 1,
                    burst: 1
                },
                None
            ),
            Type::Throttled
        );
        assert_eq!(Type::of(Error::Forbidden, None), Type::InvalidApiKey);
        assert_eq!(
            Type::of(
                Error::IamRefused,
                Some("MissingAuthenticationTokenException")
            ),
            Type::MissingAuthenticationToken
        );
        assert_eq!(
            Type::of(Error::IamRefused, Some("InvalidSignatureException")),
            Type::InvalidSignature
        );
        assert_eq!(
            Type::of(Error::UpstreamTimeout, None),
            Type::IntegrationTimeout
        );
        assert_eq!(Type::of(Error::QueueFull, None), Type::Default5xx);
        assert_eq!(Type::of(Error::BadRequest, None), Type::Default4xx);
        assert_eq!(Type::parse("QUOTA_EXCEEDED"), Some(Type::QuotaExceeded));
        assert_eq!(Type::parse("NOPE"), None);
        assert_eq!(TYPES.len(), 21);
    }

    #[test]
    fn types_fall_back_to_their_class() {
        let mut g = GatewayResponses::default();
        g.set(
            Type::Default4xx,
            Custom {
                status: Some(400),
                ..Custom::default()
            },
        );
        g.set(
            Type::Throttled,
            Custom {
                status: Some(503),
                ..Custom::default()
            },
        );
        assert_eq!(g.find(Type::Throttled, 429).unwrap().status, Some(503));
        assert_eq!(g.find(Type::Unauthorized, 401).unwrap().status, Some(400));
        assert!(g.find(Type::IntegrationTimeout, 504).is_none());
    }

    #[test]
    fn templates_substitute_variables() {
        let t = Subst::parse(
            r#"{"error": $context.error.messageString, "id": "${context.requestId}", "env": "$stageVariables.env", "h": "method.request.header.x-trace"}"#,
        );
        let out = t.render(|p| match p {
            Piece::Context(n) if n == "error.messageString" => "\"Too Many Requests\"".into(),
            Piece::Context(n) if n == "requestId" => "r-1".into(),
            Piece::StageVariable(n) if n == "env" => "prod".into(),
            Piece::Header(n) if n == "x-trace" => "t-9".into(),
            _ => "?".into(),
        });
        assert_eq!(
            out,
            r#"{"error": "Too Many Requests", "id": "r-1", "env": "prod", "h": "t-9"}"#
        );
        assert_eq!(
            Subst::parse("$5 and $other").render(|_| "X".into()),
            "$5 and $other"
        );
        assert_eq!(header_value("'*'"), Piece::Text("*".into()));
        assert_eq!(
            header_value("method.request.header.Origin"),
            Piece::Header("Origin".into())
        );
        assert_eq!(header_value("text/plain"), Piece::Text("text/plain".into()));
    }
}
