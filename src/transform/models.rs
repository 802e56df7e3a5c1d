//! Request models (DESIGN §10, AWS's `Model` with `RequestValidator`): a JSON
//! Schema draft 4 validated by the `jsonschema` crate, compiled at load (a schema
//! that does not compile, or refers outside itself, is a `check` error), and the
//! required-parameter check. Failures are AWS's 400s: `Invalid request body` and
//! `Missing required request parameters: [a, b]`; the validator's own words go to
//! `$context.error.validationErrorString` (and the access log), not to the client.
//!
//! Checked against the official JSON-Schema-Test-Suite's draft-4 cases in
//! `tests/models.rs`; fuzzed by `fuzz/fuzz_targets/model.rs`.

/// A compiled model.
#[derive(Debug)]
pub struct Model {
    pub name: String,
    validator: jsonschema::Validator,
}

impl Model {
    /// Compiles a schema; the error says why not.
    pub fn compile(name: &str, schema: &str) -> Result<Model, String> {
        let value: serde_json::Value =
            serde_json::from_str(schema).map_err(|e| format!("the schema is not JSON: {e}"))?;
        if !value.is_object() && !value.is_boolean() {
            return Err("a schema is a JSON object".into());
        }
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .build(&value)
            .map_err(|e| format!("the schema does not compile: {e}"))?;
        Ok(Model {
            name: name.to_string(),
            validator,
        })
    }

    /// Validates a request body: `Err` holds the reasons (at most 8 of them).
    pub fn check(&self, body: &[u8]) -> Result<(), String> {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Err("[the body is not JSON]".into());
        };
        self.check_value(&value)
    }

    pub fn check_value(&self, value: &serde_json::Value) -> Result<(), String> {
        if self.validator.is_valid(value) {
            return Ok(());
        }
        let reasons: Vec<String> = self
            .validator
            .iter_errors(value)
            .take(8)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        Err(format!("[{}]", reasons.join(", ")))
    }
}

/// A required request parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Required {
    /// Lower-case.
    Header(String),
    Query(String),
    Path(String),
}

impl Required {
    /// `header.NAME`, `query.NAME` / `querystring.NAME`, `path.NAME`.
    pub fn parse(s: &str) -> Result<Required, String> {
        let (place, name) = s
            .split_once('.')
            .filter(|(_, n)| !n.is_empty())
            .ok_or_else(|| format!("`{s}` is not header.NAME, query.NAME or path.NAME"))?;
        match place {
            "header" => Ok(Required::Header(name.to_ascii_lowercase())),
            "query" | "querystring" => Ok(Required::Query(name.to_string())),
            "path" => Ok(Required::Path(name.to_string())),
            _ => Err(format!("`{s}`: `{place}` is none of header, query, path")),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Required::Header(n) | Required::Query(n) | Required::Path(n) => n,
        }
    }
}

/// AWS's message for missing (or blank) required parameters.
pub fn missing_message(missing: &[&str]) -> String {
    format!(
        "Missing required request parameters: [{}]",
        missing.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft4_models_validate_bodies() {
        let m = Model::compile(
            "Order",
            r#"{"$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
                "required": ["id", "qty"],
                "properties": {"id": {"type": "string"}, "qty": {"type": "integer", "minimum": 1, "exclusiveMinimum": true}}}"#,
        )
        .unwrap();
        assert!(m.check(br#"{"id": "a", "qty": 2}"#).is_ok());
        // draft 4's boolean exclusiveMinimum
        let why = m.check(br#"{"id": "a", "qty": 1}"#).unwrap_err();
        assert!(why.contains("/qty"), "{why}");
        assert!(m.check(br#"{"id": 7}"#).is_err());
        assert!(m.check(b"not json").is_err());
        assert!(Model::compile("x", "[1]").is_err());
        assert!(Model::compile("x", r#"{"type": "nonsense"}"#).is_err());
        assert!(Model::compile("x", r#"{"$ref": "http://example.com/other.json"}"#).is_err());
    }

    #[test]
    fn required_parameters_parse() {
        assert_eq!(
            Required::parse("header.X-Tenant").unwrap(),
            Required::Header("x-tenant".into())
        );
        assert_eq!(
            Required::parse("querystring.page").unwrap(),
            Required::Query("page".into())
        );
        assert!(Required::parse("cookie.a").is_err());
        assert!(Required::parse("header.").is_err());
        assert_eq!(
            missing_message(&["x-header-param", "issuer", "qs1"]),
            "Missing required request parameters: [x-header-param, issuer, qs1]"
        );
    }
}
