//! A non-proxy integration's templates, passthrough, parameter mappings and
//! integration responses → `transform::mapping::Mapping`. Templates compile here,
//! once; a broken one is reported at its own line and column in the file when the
//! file holds it verbatim (a `'''` string), else at the integration with the
//! template's line and column.

use std::collections::BTreeMap;
use std::ops::Range;

use std::sync::Arc;

use super::{at, Ctx};
use crate::config::{model, Config, Entry, Pos};
use crate::transform::mapping::{
    self, ContentHandling, HeaderSource, Mapping, Passthrough, Response, Source, Target,
};
use crate::transform::vtl::Template;

/// What a route's integration table says about its mapping.
pub(super) struct Spec<'c> {
    pub request_templates: &'c BTreeMap<String, String>,
    pub passthrough: Option<&'c str>,
    pub request_parameters: Option<&'c BTreeMap<String, String>>,
    pub responses: &'c [model::IntegrationResponse],
    pub content_handling: Option<&'c str>,
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
        let content_handling = match resp.content_handling.as_deref().map(ContentHandling::parse) {
            None => None,
            Some(Ok(h)) => Some(h),
            Some(Err(msg)) => {
                cx.err(at(r, span.clone()), format!("response {n}: {msg}"), None);
                ok = false;
                None
            }
        };
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
            content_handling,
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
    let content_handling = match spec.content_handling.map(ContentHandling::parse) {
        None => None,
        Some(Ok(h)) => Some(h),
        Some(Err(msg)) => {
            cx.err(at(r, span.clone()), msg, None);
            ok = false;
            None
        }
    };
    ok.then_some(Mapping {
        request_templates,
        passthrough,
        responses,
        request_parameters,
        uses_context,
        content_handling,
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

/// The API's `[apis.A.gateway_responses.TYPE]` for one of its stages (`report`:
/// this is the API's first stage, whose compile reports the errors).
pub(super) fn gateway_responses(
    cx: &mut Ctx,
    cfg: &Config,
    api: &str,
    stage: &crate::plan::Stage,
    report: bool,
) -> Option<Arc<crate::plan::StageResponses>> {
    use crate::transform::responses::{header_value, Custom, GatewayResponses, Subst, Type};
    let mut responses = GatewayResponses::default();
    for (_, e) in cfg.gateway_responses.iter().filter(|(a, _)| a == api) {
        let Some(t) = Type::parse(&e.name) else {
            if report {
                let names: Vec<&str> = crate::transform::responses::TYPES
                    .iter()
                    .map(|(_, n)| *n)
                    .collect();
                cx.err(
                    e.at.clone(),
                    format!("`{}` is not a gateway response type", e.name),
                    Some(&names.join(", ")),
                );
            }
            continue;
        };
        let g = &e.value;
        let status = match &g.status {
            Some(s) if !(100..=599).contains(s.get_ref()) => {
                if report {
                    cx.err(
                        at(e, s.span()),
                        format!("status {} is not an HTTP status", s.get_ref()),
                        None,
                    );
                }
                continue;
            }
            s => s.as_ref().map(|s| *s.get_ref()),
        };
        let mut headers = Vec::new();
        for (name, value) in &g.headers {
            let lower = name.to_ascii_lowercase();
            if !is_token(name)
                || matches!(
                    lower.as_str(),
                    "content-length" | "transfer-encoding" | "connection"
                )
            {
                if report {
                    cx.err(e.at.clone(), format!("header `{name}` cannot be set"), None);
                }
                continue;
            }
            headers.push((lower, header_value(value)));
        }
        responses.set(
            t,
            Custom {
                status,
                headers,
                template: g.template.as_deref().map(Subst::parse),
                content_type: g
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "application/json".into()),
            },
        );
    }
    if responses.is_empty() {
        return None;
    }
    Some(Arc::new(crate::plan::StageResponses {
        responses,
        stage: stage.name.clone(),
        api: stage.api.clone(),
        variables: stage.variables.clone(),
    }))
}

/// A route's `validate`: its model (compiled) and required parameters. `None`: an
/// error (reported when `report`).
pub(super) fn validation(
    cx: &mut Ctx,
    cfg: &Config,
    api: &str,
    r: &Entry<model::Route>,
    param_names: &[String],
    report: bool,
) -> Option<Option<Box<crate::plan::Validation>>> {
    use crate::transform::models::{Model, Required};
    let Some(v) = &r.value.validate else {
        return Some(None);
    };
    let mut ok = true;
    let body = match &v.body {
        None => None,
        Some(name) => {
            let found = cfg
                .models
                .iter()
                .find(|(a, m)| a == api && m.name == *name.get_ref());
            match found {
                None => {
                    if report {
                        cx.err(
                            at(r, name.span()),
                            format!("api `{api}` has no model `{}`", name.get_ref()),
                            Some("define it as [apis.NAME.models.MODEL] with a `schema`"),
                        );
                    }
                    ok = false;
                    None
                }
                Some((_, m)) => match model_text(cfg, m) {
                    Err(msg) => {
                        if report {
                            cx.err(m.at.clone(), format!("model `{}`: {msg}", m.name), None);
                        }
                        ok = false;
                        None
                    }
                    Ok(text) => match Model::compile(&m.name, &text) {
                        Ok(model) => Some(Arc::new(model)),
                        Err(msg) => {
                            if report {
                                cx.err(m.at.clone(), format!("model `{}`: {msg}", m.name), None);
                            }
                            ok = false;
                            None
                        }
                    },
                },
            }
        }
    };
    let mut params = Vec::new();
    for p in &v.params {
        match Required::parse(p.get_ref()) {
            Ok(Required::Path(n)) if !param_names.contains(&n) => {
                if report {
                    cx.err(
                        at(r, p.span()),
                        format!("the route has no path parameter `{n}`"),
                        None,
                    );
                }
                ok = false;
            }
            Ok(req) => params.push(req),
            Err(msg) => {
                if report {
                    cx.err(at(r, p.span()), msg, None);
                }
                ok = false;
            }
        }
    }
    ok.then(|| Some(Box::new(crate::plan::Validation { body, params })))
}

/// A model's schema: inline, or read from `schema_file` beside its file.
fn model_text(cfg: &Config, m: &Entry<model::Model>) -> Result<String, String> {
    match (&m.value.schema, &m.value.schema_file) {
        (Some(s), None) => Ok(s.get_ref().clone()),
        (None, Some(f)) => {
            let path = super::dir_of(&cfg.sources, m).join(f.get_ref());
            std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        }
        _ => Err("give one of `schema` and `schema_file`".into()),
    }
}
