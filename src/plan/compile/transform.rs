//! A non-proxy integration's templates, passthrough, parameter mappings and
//! integration responses → `transform::mapping::Mapping`. Templates compile here,
//! once; a broken one is reported at its own line and column in the file when the
//! file holds it verbatim (a `'''` string), else at the integration with the
//! template's line and column.

use std::collections::BTreeMap;
use std::ops::Range;

use super::{at, Ctx};
use crate::config::{model, Config, Entry, Pos};
use crate::transform::mapping::{
    self, HeaderSource, Mapping, Passthrough, Response, Source, Target,
};
use crate::transform::vtl::Template;

/// What a route's integration table says about its mapping.
pub(super) struct Spec<'c> {
    pub request_templates: &'c BTreeMap<String, String>,
    pub passthrough: Option<&'c str>,
    pub request_parameters: Option<&'c BTreeMap<String, String>>,
    pub responses: &'c [model::IntegrationResponse],
}

pub(super) fn mapping(
    cx: &mut Ctx,
    cfg: &Config,
    r: &Entry<model::Route>,
    span: Range<usize>,
    spec: &Spec<'_>,
) -> Option<Mapping> {
    let mut ok = true;
    let mut uses_context = false;
    let request_templates = templates(
        cx,
        cfg,
        r,
        &span,
        "request",
        spec.request_templates,
        &mut ok,
        &mut uses_context,
    );
    let mut responses = Vec::new();
    for (i, resp) in spec.responses.iter().enumerate() {
        let n = i + 1;
        let pattern = match resp.pattern.as_deref() {
            None => None,
            Some(p) => match mapping::pattern(p) {
                Ok(re) => Some(re),
                Err(msg) => {
                    cx.err(at(r, span.clone()), format!("response {n}: {msg}"), None);
                    ok = false;
                    None
                }
            },
        };
        if let Some(s) = resp.status {
            if !(100..=599).contains(&s) {
                cx.err(
                    at(r, span.clone()),
                    format!("response {n}: status {s} is not an HTTP status"),
                    None,
                );
                ok = false;
            }
        }
        let mut headers = Vec::new();
        for (name, value) in &resp.headers {
            let lower = name.to_ascii_lowercase();
            if !is_token(name)
                || matches!(
                    lower.as_str(),
                    "content-length" | "transfer-encoding" | "connection"
                )
            {
                cx.err(
                    at(r, span.clone()),
                    format!("response {n}: header `{name}` cannot be mapped"),
                    None,
                );
                ok = false;
                continue;
            }
            match HeaderSource::parse(value) {
                Ok(src) => {
                    uses_context |= matches!(src, HeaderSource::Context(_));
                    headers.push((lower, src));
                }
                Err(msg) => {
                    cx.err(
                        at(r, span.clone()),
                        format!("response {n}, header `{name}`: {msg}"),
                        None,
                    );
                    ok = false;
                }
            }
        }
        let what = format!("response {n}");
        let templates = templates(
            cx,
            cfg,
            r,
            &span,
            &what,
            &resp.templates,
            &mut ok,
            &mut uses_context,
        );
        responses.push(Response {
            pattern,
            status: resp.status,
            headers,
            templates,
        });
    }
    if responses.iter().filter(|r| r.pattern.is_none()).count() > 1 {
        cx.err(
            at(r, span.clone()),
            "more than one response without a pattern: only one can be the default",
            None,
        );
        ok = false;
    }
    let mut request_parameters = Vec::new();
    for (key, value) in spec.request_parameters.into_iter().flatten() {
        match (Target::parse(key), Source::parse(value)) {
            (Ok(t), Ok(s)) => {
                uses_context |= matches!(s, Source::Context(_));
                request_parameters.push((t, s));
            }
            (Err(msg), _) | (_, Err(msg)) => {
                cx.err(
                    at(r, span.clone()),
                    format!("request_parameters: {msg}"),
                    Some("e.g. \"integration.request.header.x-user\" = \"method.request.querystring.user\""),
                );
                ok = false;
            }
        }
    }
    let passthrough = match spec.passthrough {
        None => Passthrough::WhenNoMatch,
        Some(p) => match Passthrough::parse(p) {
            Ok(p) => p,
            Err(msg) => {
                cx.err(at(r, span.clone()), msg, None);
                ok = false;
                Passthrough::WhenNoMatch
            }
        },
    };
    ok.then_some(Mapping {
        request_templates,
        passthrough,
        responses,
        request_parameters,
        uses_context,
    })
}

/// Compiles a map of templates by media type; clears `ok` on an error.
#[allow(clippy::too_many_arguments)]
fn templates(
    cx: &mut Ctx,
    cfg: &Config,
    r: &Entry<model::Route>,
    span: &Range<usize>,
    what: &str,
    map: &BTreeMap<String, String>,
    ok: &mut bool,
    uses_context: &mut bool,
) -> Vec<(String, Template)> {
    let mut out = Vec::new();
    for (media, text) in map {
        let media = media.trim().to_ascii_lowercase();
        if media.is_empty() || !media.contains('/') {
            cx.err(
                at(r, span.clone()),
                format!("{what} template key `{media}` is not a media type"),
                Some("keys are content types, e.g. \"application/json\""),
            );
            *ok = false;
            continue;
        }
        match Template::compile(text) {
            Ok(t) => {
                *uses_context |= t.uses_context;
                out.push((media, t));
            }
            Err(e) => {
                let pos = template_pos(cfg, r, span, text, e.offset);
                cx.err(
                    pos,
                    format!(
                        "{what} template `{media}`, line {} column {} of the template: {}",
                        e.line, e.column, e.message
                    ),
                    None,
                );
                *ok = false;
            }
        }
    }
    out
}

/// Where a template error is in the file: exact when the file holds the template
/// as written after the integration's start (the span of a `[…integration]` table
/// is its header), else the integration.
fn template_pos(
    cfg: &Config,
    r: &Entry<model::Route>,
    span: &Range<usize>,
    text: &str,
    offset: usize,
) -> Pos {
    let found = cfg
        .sources
        .files
        .get(r.at.file)
        .and_then(|f| f.text.get(span.start..))
        .filter(|_| !text.is_empty())
        .and_then(|after| after.find(text));
    match found {
        Some(i) => {
            let o = span.start + i + offset;
            r.pos(o..o + 1)
        }
        None => at(r, span.clone()),
    }
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
