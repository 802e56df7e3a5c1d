//! A non-proxy integration's mapping (DESIGN §10, AWS's `Integration` with its
//! `requestTemplates`, `passthroughBehavior`, `requestParameters` and
//! `IntegrationResponse`s): which request template a content type selects, whether
//! an unmapped body passes through or is refused with 415, which integration
//! response a status (or a Lambda `errorMessage`) selects, which response template
//! the client's `Accept` selects, and where mapped parameters and headers come from.
//!
//! Plain data and decisions, unit-tested below; the pipeline (`pipeline::mapped`)
//! carries them out.

use super::jsonpath::Path;
use super::vtl::Template;

#[derive(Debug)]
pub struct Mapping {
    /// (lower-case media type, template), as configured.
    pub request_templates: Vec<(String, Template)>,
    pub passthrough: Passthrough,
    pub responses: Vec<Response>,
    /// `integration.request.{header,querystring,path}.NAME` ← source.
    pub request_parameters: Vec<(Target, Source)>,
    /// A template or a parameter reads `$context`.
    pub uses_context: bool,
    /// What happens to a request body's encoding (AWS's `contentHandling`).
    pub content_handling: Option<ContentHandling>,
}

/// AWS's `contentHandling`: base64 between text and binary payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentHandling {
    /// A binary payload becomes its base64 text.
    ConvertToText,
    /// A text payload is base64 and becomes the bytes it encodes.
    ConvertToBinary,
}

impl ContentHandling {
    pub fn parse(s: &str) -> Result<ContentHandling, String> {
        match s {
            "CONVERT_TO_TEXT" => Ok(ContentHandling::ConvertToText),
            "CONVERT_TO_BINARY" => Ok(ContentHandling::ConvertToBinary),
            _ => Err(format!(
                "content_handling \"{s}\" is neither \"CONVERT_TO_TEXT\" nor \"CONVERT_TO_BINARY\""
            )),
        }
    }

    /// Converts `payload` (`binary`: its media type is one of the API's binary
    /// media types). `None`: text that is not base64 (AWS: a configuration
    /// error, 500). `Some(None)`: nothing to convert.
    pub fn convert(this: Option<Self>, payload: &[u8], binary: bool) -> Option<Option<Vec<u8>>> {
        use base64::Engine as _;
        let b64 = &base64::engine::general_purpose::STANDARD;
        match this {
            Some(ContentHandling::ConvertToText)
                if binary || std::str::from_utf8(payload).is_err() =>
            {
                Some(Some(b64.encode(payload).into_bytes()))
            }
            Some(ContentHandling::ConvertToBinary) if !binary => {
                let text: Vec<u8> = payload
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                b64.decode(text).ok().map(Some)
            }
            _ => Some(None),
        }
    }
}

/// AWS's `passthroughBehavior`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passthrough {
    WhenNoMatch,
    WhenNoTemplates,
    Never,
}

impl Passthrough {
    pub fn parse(s: &str) -> Result<Passthrough, String> {
        match s.to_ascii_lowercase().as_str() {
            "when_no_match" => Ok(Passthrough::WhenNoMatch),
            "when_no_templates" => Ok(Passthrough::WhenNoTemplates),
            "never" => Ok(Passthrough::Never),
            _ => Err(format!(
                "passthrough \"{s}\" is none of \"when_no_match\", \"when_no_templates\", \"never\""
            )),
        }
    }
}

/// What to do with a request body.
#[derive(Debug)]
pub enum RequestChoice<'m> {
    /// Render this template (configured for this media type).
    Template(&'m str, &'m Template),
    /// Send the body as it came.
    Passthrough,
    /// 415 Unsupported Media Type.
    Unsupported,
}

/// An integration response: `pattern` (none: the default), the status the client
/// gets (none: the integration's), headers and templates.
#[derive(Debug)]
pub struct Response {
    pub pattern: Option<regex::Regex>,
    pub status: Option<u16>,
    pub headers: Vec<(String, HeaderSource)>,
    /// (lower-case media type, template).
    pub templates: Vec<(String, Template)>,
    pub content_handling: Option<ContentHandling>,
}

/// Where a mapped request parameter goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Header(String),
    Query(String),
    Path(String),
}

/// Where a mapped request parameter comes from (REST's `requestParameters`).
#[derive(Debug, Clone)]
pub enum Source {
    Static(String),
    Path(String),
    Query(String),
    MultiQuery(String),
    Header(String),
    MultiHeader(String),
    Body,
    BodyPath(Path),
    StageVariable(String),
    Context(String),
}

/// Where a mapped response header comes from (`method.response.header.X` ←).
#[derive(Debug, Clone)]
pub enum HeaderSource {
    Static(String),
    Header(String),
    MultiHeader(String),
    Body,
    BodyPath(Path),
    StageVariable(String),
    Context(String),
}

/// The media type of a `Content-Type` or `Accept` value: before any `;`, trimmed,
/// lower-case.
pub fn media_type(v: &[u8]) -> String {
    let v = v.split(|b| *b == b';').next().unwrap_or(b"");
    String::from_utf8_lossy(v).trim().to_ascii_lowercase()
}

impl Mapping {
    /// The request template for `content_type` (absent: `application/json`), or
    /// what the passthrough behaviour says when there is none.
    pub fn request_template(&self, content_type: Option<&[u8]>) -> RequestChoice<'_> {
        let mt = content_type.map_or_else(|| "application/json".to_string(), media_type);
        if let Some((k, t)) = self.request_templates.iter().find(|(k, _)| *k == mt) {
            return RequestChoice::Template(k, t);
        }
        match self.passthrough {
            Passthrough::WhenNoMatch => RequestChoice::Passthrough,
            Passthrough::WhenNoTemplates if self.request_templates.is_empty() => {
                RequestChoice::Passthrough
            }
            _ => RequestChoice::Unsupported,
        }
    }

    /// The integration response `selector` (a status, or a Lambda `errorMessage`)
    /// selects: the first whose pattern matches it whole, else the default.
    /// `None` when responses are configured and none applies (AWS: a
    /// configuration error, 500).
    pub fn response(&self, selector: &str) -> Option<&Response> {
        self.responses
            .iter()
            .find(|r| r.pattern.as_ref().is_some_and(|p| p.is_match(selector)))
            .or_else(|| self.responses.iter().find(|r| r.pattern.is_none()))
    }
}

impl Response {
    /// The response template for the client's `Accept` (absent:
    /// `application/json`), else the `application/json` one, else the first.
    pub fn template(&self, accept: Option<&[u8]>) -> Option<(&str, &Template)> {
        let wanted: Vec<String> = match accept {
            Some(a) => a.split(|b| *b == b',').map(media_type).collect(),
            None => vec!["application/json".to_string()],
        };
        let pick = |k: &str| self.templates.iter().find(|(m, _)| m == k);
        wanted
            .iter()
            .find_map(|w| pick(w))
            .or_else(|| pick("application/json"))
            .or_else(|| self.templates.first())
            .map(|(k, t)| (k.as_str(), t))
    }
}

/// Compiles a response's selection pattern: a whole-string match, as AWS's.
pub fn pattern(p: &str) -> Result<regex::Regex, String> {
    super::vtl::parse::java_regex(p, true)
}

impl Target {
    /// `integration.request.header.NAME` and its kin.
    pub fn parse(key: &str) -> Result<Target, String> {
        let rest = key.strip_prefix("integration.request.").ok_or_else(|| {
            format!("`{key}` is not integration.request.{{header,querystring,path}}.NAME")
        })?;
        let (place, name) = rest
            .split_once('.')
            .ok_or_else(|| format!("`{key}` names no parameter"))?;
        check_name(name, key)?;
        match place {
            "header" => Ok(Target::Header(name.to_string())),
            "querystring" => Ok(Target::Query(name.to_string())),
            "path" => Ok(Target::Path(name.to_string())),
            _ => Err(format!(
                "`{key}`: `{place}` is none of header, querystring, path"
            )),
        }
    }
}

fn check_name(name: &str, whole: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._$-".contains(&b))
    {
        return Err(format!(
            "`{whole}`: parameter names are letters, digits and . _ $ -"
        ));
    }
    Ok(())
}

/// `'static'`, `stageVariables.NAME` and `context.NAME`, shared by both sides.
fn common(v: &str) -> Option<Result<(u8, String), String>> {
    if let Some(s) = v.strip_prefix('\'') {
        return Some(match s.strip_suffix('\'') {
            Some(s) => Ok((0, s.to_string())),
            None => Err(format!("`{v}`: a static value ends with '")),
        });
    }
    if let Some(n) = v.strip_prefix("stageVariables.") {
        return Some(Ok((1, n.to_string())));
    }
    if let Some(n) = v.strip_prefix("context.") {
        return Some(Ok((2, n.to_string())));
    }
    None
}

impl Source {
    pub fn parse(v: &str) -> Result<Source, String> {
        if let Some(c) = common(v) {
            let (kind, s) = c?;
            return Ok(match kind {
                0 => Source::Static(s),
                1 => Source::StageVariable(s),
                _ => Source::Context(s),
            });
        }
        let rest = v.strip_prefix("method.request.").ok_or_else(|| {
            format!("`{v}` is none of method.request.…, stageVariables.…, context.…, 'static'")
        })?;
        if rest == "body" {
            return Ok(Source::Body);
        }
        if let Some(p) = rest.strip_prefix("body.") {
            return Path::compile(p)
                .map(Source::BodyPath)
                .map_err(|e| format!("`{v}`: {e}"));
        }
        let (place, name) = rest
            .split_once('.')
            .ok_or_else(|| format!("`{v}` names no parameter"))?;
        check_name(name, v)?;
        let name = name.to_string();
        match place {
            "path" => Ok(Source::Path(name)),
            "querystring" => Ok(Source::Query(name)),
            "multivaluequerystring" => Ok(Source::MultiQuery(name)),
            "header" => Ok(Source::Header(name)),
            "multivalueheader" => Ok(Source::MultiHeader(name)),
            _ => Err(format!(
                "`{v}`: `{place}` is none of path, querystring, multivaluequerystring, header, multivalueheader, body"
            )),
        }
    }
}

impl HeaderSource {
    /// A response header's value: a mapping expression, `'static'`, or (as a
    /// convenience AWS does not offer) plain text taken as it is.
    pub fn parse(v: &str) -> Result<HeaderSource, String> {
        if let Some(c) = common(v) {
            let (kind, s) = c?;
            return Ok(match kind {
                0 => HeaderSource::Static(s),
                1 => HeaderSource::StageVariable(s),
                _ => HeaderSource::Context(s),
            });
        }
        let Some(rest) = v.strip_prefix("integration.response.") else {
            return Ok(HeaderSource::Static(v.to_string()));
        };
        if rest == "body" {
            return Ok(HeaderSource::Body);
        }
        if let Some(p) = rest.strip_prefix("body.") {
            return Path::compile(p)
                .map(HeaderSource::BodyPath)
                .map_err(|e| format!("`{v}`: {e}"));
        }
        if let Some(n) = rest.strip_prefix("header.") {
            return Ok(HeaderSource::Header(n.to_ascii_lowercase()));
        }
        if let Some(n) = rest.strip_prefix("multivalueheader.") {
            return Ok(HeaderSource::MultiHeader(n.to_ascii_lowercase()));
        }
        Err(format!(
            "`{v}` is none of integration.response.header.N, .multivalueheader.N, .body, .body.PATH"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(templates: &[&str], passthrough: Passthrough) -> Mapping {
        Mapping {
            request_templates: templates
                .iter()
                .map(|k| (k.to_string(), Template::compile("x").unwrap()))
                .collect(),
            passthrough,
            responses: Vec::new(),
            request_parameters: Vec::new(),
            uses_context: false,
            content_handling: None,
        }
    }

    fn choice(m: &Mapping, ct: Option<&str>) -> &'static str {
        match m.request_template(ct.map(str::as_bytes)) {
            RequestChoice::Template(..) => "transformed",
            RequestChoice::Passthrough => "passthrough",
            RequestChoice::Unsupported => "415",
        }
    }

    #[test]
    fn passthrough_follows_awss_matrix() {
        use Passthrough::*;
        // one application/json template
        for (p, xml) in [
            (WhenNoMatch, "passthrough"),
            (WhenNoTemplates, "415"),
            (Never, "415"),
        ] {
            let m = mapping(&["application/json"], p);
            assert_eq!(choice(&m, None), "transformed");
            assert_eq!(
                choice(&m, Some("application/json; charset=UTF-8")),
                "transformed"
            );
            assert_eq!(choice(&m, Some("application/xml")), xml);
        }
        // one application/xml template
        for (p, json) in [
            (WhenNoMatch, "passthrough"),
            (WhenNoTemplates, "415"),
            (Never, "415"),
        ] {
            let m = mapping(&["application/xml"], p);
            assert_eq!(choice(&m, None), json);
            assert_eq!(choice(&m, Some("application/json")), json);
            assert_eq!(choice(&m, Some("Application/XML")), "transformed");
        }
        // no templates
        assert_eq!(
            choice(&mapping(&[], WhenNoTemplates), Some("text/plain")),
            "passthrough"
        );
        assert_eq!(choice(&mapping(&[], Never), Some("text/plain")), "415");
    }

    #[test]
    fn responses_are_selected_by_whole_match_then_default() {
        let r = |p: Option<&str>, s: u16| Response {
            pattern: p.map(|p| pattern(p).unwrap()),
            status: Some(s),
            headers: Vec::new(),
            templates: vec![
                ("application/xml".into(), Template::compile("xml").unwrap()),
                (
                    "application/json".into(),
                    Template::compile("json").unwrap(),
                ),
            ],
            content_handling: None,
        };
        let mut m = mapping(&[], Passthrough::WhenNoMatch);
        m.responses = vec![
            r(None, 200),
            r(Some("4\\d{2}"), 400),
            r(Some(".*Not Found.*"), 404),
        ];
        assert_eq!(m.response("404").unwrap().status, Some(400));
        assert_eq!(m.response("500").unwrap().status, Some(200));
        assert_eq!(
            m.response("1404").unwrap().status,
            Some(200),
            "a whole match"
        );
        assert_eq!(m.response("Item Not Found: 7").unwrap().status, Some(404));
        m.responses.remove(0);
        assert!(m.response("500").is_none());
        let resp = &m.responses[0];
        assert_eq!(resp.template(None).unwrap().0, "application/json");
        assert_eq!(
            resp.template(Some(b"text/html, application/xml;q=0.9"))
                .unwrap()
                .0,
            "application/xml"
        );
        assert_eq!(
            resp.template(Some(b"text/csv")).unwrap().0,
            "application/json"
        );
    }

    #[test]
    fn content_handling_follows_awss_table() {
        use ContentHandling::*;
        let c = |h, p: &[u8], bin| ContentHandling::convert(h, p, bin);
        assert_eq!(
            c(Some(ConvertToText), &[0xff, 0], true),
            Some(Some(b"/wA=".to_vec()))
        );
        assert_eq!(c(Some(ConvertToText), b"text", false), Some(None));
        assert_eq!(
            c(Some(ConvertToBinary), b"aGk=\n", false),
            Some(Some(b"hi".to_vec()))
        );
        assert_eq!(c(Some(ConvertToBinary), b"not base64!", false), None);
        assert_eq!(c(Some(ConvertToBinary), &[1, 2], true), Some(None));
        assert_eq!(c(None, &[0xff], true), Some(None));
        assert!(ContentHandling::parse("CONVERT_TO_TEXT").is_ok());
        assert!(ContentHandling::parse("convert").is_err());
    }

    #[test]
    fn mapping_expressions_parse() {
        assert_eq!(
            Target::parse("integration.request.header.x-user").unwrap(),
            Target::Header("x-user".into())
        );
        assert!(Target::parse("integration.request.cookie.a").is_err());
        assert!(
            matches!(Source::parse("method.request.querystring.user").unwrap(), Source::Query(n) if n == "user")
        );
        assert!(matches!(Source::parse("'static'").unwrap(), Source::Static(s) if s == "static"));
        assert!(matches!(
            Source::parse("method.request.body.petstore.pets[0].name").unwrap(),
            Source::BodyPath(_)
        ));
        assert!(
            matches!(Source::parse("context.requestId").unwrap(), Source::Context(n) if n == "requestId")
        );
        assert!(Source::parse("method.request.header.bad name").is_err());
        assert!(Source::parse("'unterminated").is_err());
        assert!(matches!(
            HeaderSource::parse("integration.response.body.redirect.url").unwrap(),
            HeaderSource::BodyPath(_)
        ));
        assert!(
            matches!(HeaderSource::parse("integration.response.header.X-Id").unwrap(), HeaderSource::Header(n) if n == "x-id")
        );
        assert!(
            matches!(HeaderSource::parse("text/csv").unwrap(), HeaderSource::Static(s) if s == "text/csv")
        );
    }
}
