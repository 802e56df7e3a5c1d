//! Request validation (DESIGN §10): required parameters before anything else is
//! done with the request, a JSON body against the route's model once the body has
//! been read. Refusals are AWS's 400s; why goes to `Rec::validation` (the message
//! and, for `$context.error.validationErrorString`, the validator's reasons).

use crate::error::Error;
use crate::plan::router::Params;
use crate::plan::{Route, Validation};
use crate::proto::h1::RequestHead;
use crate::transform::models::{missing_message, Required};

use super::Downstream;

/// The route's required parameters: all present and non-blank, or
/// `BadRequestParameters` naming the missing ones.
pub fn params(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    route: &Route,
    v: &Validation,
    params: &Params,
) -> Result<(), Error> {
    if v.params.is_empty() {
        return Ok(());
    }
    let query = head
        .query()
        .and_then(|q| std::str::from_utf8(q).ok())
        .unwrap_or("");
    let mut missing = Vec::new();
    for p in &v.params {
        let present = match p {
            Required::Header(n) => head.headers().any(|(k, val)| {
                k.eq_ignore_ascii_case(n.as_bytes()) && !val.trim_ascii().is_empty()
            }),
            Required::Query(n) => crate::auth::authorizer::query_pairs(query)
                .any(|(k, val)| k == *n && !val.trim().is_empty()),
            Required::Path(n) => route
                .param_names
                .iter()
                .position(|x| x == n)
                .is_some_and(|i| !params.get(head.path(), i).is_empty()),
        };
        if !present {
            missing.push(p.name());
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let message = missing_message(&missing);
    ds.rec.validation = Some(Box::new((message.clone(), format!("[{message}]"))));
    Err(Error::BadRequestParameters)
}

/// A body against the route's model, when the body is JSON (a `Content-Type` of
/// `application/json`, `…+json`, or none): other media types have no model, as
/// AWS binds models per content type.
pub fn body(
    ds: &mut Downstream<'_>,
    head: &RequestHead,
    v: &Validation,
    body: &[u8],
) -> Result<(), Error> {
    let Some(model) = &v.body else {
        return Ok(());
    };
    let json = match head.header(b"content-type") {
        None => true,
        Some(ct) => {
            let mt = crate::transform::mapping::media_type(ct);
            mt == "application/json" || mt.ends_with("+json")
        }
    };
    if !json {
        return Ok(());
    }
    match model.check(body) {
        Ok(()) => Ok(()),
        Err(why) => {
            ds.rec.validation = Some(Box::new(("Invalid request body".into(), why)));
            Err(Error::BadRequestBody)
        }
    }
}
