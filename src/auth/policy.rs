//! IAM policy documents as API Gateway evaluates them for `execute-api` (DESIGN
//! §8.3–8.5): statements with `Effect`, `Action`/`NotAction`, `Resource`/
//! `NotResource`, strings or lists, `*` and `?` wildcards; an explicit deny wins,
//! then an allow, else the request is implicitly denied.
//!
//! `Condition` blocks are not evaluated here: a statement that has one is treated
//! the safe way (an Allow never applies, a Deny always does) until the resource
//! policy work (§8.5) gives conditions their keys. Plain data in, a verdict out;
//! unit-tested below and benched in `benches/authorizer.rs`.

use serde_json::Value;

/// What a policy says about one action on one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// A `Deny` statement matched.
    ExplicitDeny,
    /// No statement allowed it.
    ImplicitDeny,
}

/// A parsed policy document.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone)]
struct Statement {
    allow: bool,
    /// `NotAction`: the list names what the statement does not cover.
    not_action: bool,
    actions: Vec<String>,
    not_resource: bool,
    resources: Vec<String>,
    conditional: bool,
}

/// Most statements read from one document (AWS's policies are size-bounded too).
const MAX_STATEMENTS: usize = 1000;

impl Policy {
    /// Reads a policy document (`Version`, `Statement` as one object or a list).
    pub fn parse(doc: &Value) -> Result<Policy, String> {
        let doc = doc
            .as_object()
            .ok_or("the policy document is not an object")?;
        let statements = match doc.get("Statement") {
            Some(Value::Array(list)) => list.iter().collect::<Vec<_>>(),
            Some(s @ Value::Object(_)) => vec![s],
            _ => return Err("the policy document has no Statement".into()),
        };
        if statements.len() > MAX_STATEMENTS {
            return Err(format!("more than {MAX_STATEMENTS} statements"));
        }
        let mut out = Vec::with_capacity(statements.len());
        for (i, s) in statements.into_iter().enumerate() {
            out.push(statement(s).map_err(|e| format!("statement {}: {e}", i + 1))?);
        }
        Ok(Policy { statements: out })
    }

    /// The verdict for `action` (e.g. `execute-api:Invoke`) on `resource` (an ARN).
    pub fn evaluate(&self, action: &str, resource: &str) -> Verdict {
        let mut allowed = false;
        for s in &self.statements {
            let action_hit = s.actions.iter().any(|p| wildcard_ci(p, action)) != s.not_action;
            if !action_hit {
                continue;
            }
            let resource_hit = s.resources.iter().any(|p| wildcard(p, resource)) != s.not_resource;
            if !resource_hit {
                continue;
            }
            if !s.allow {
                return Verdict::ExplicitDeny;
            }
            allowed |= !s.conditional;
        }
        if allowed {
            Verdict::Allow
        } else {
            Verdict::ImplicitDeny
        }
    }
}

fn statement(s: &Value) -> Result<Statement, String> {
    let s = s.as_object().ok_or("not an object")?;
    let allow = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => true,
        Some("Deny") => false,
        _ => return Err("Effect is neither \"Allow\" nor \"Deny\"".into()),
    };
    let (not_action, actions) = either(s, "Action", "NotAction")?;
    let (not_resource, resources) = either(s, "Resource", "NotResource")?;
    Ok(Statement {
        allow,
        not_action,
        actions,
        not_resource,
        resources,
        conditional: s.contains_key("Condition"),
    })
}

/// The values of `key` (false) or of `not_key` (true): exactly one of them.
fn either(
    s: &serde_json::Map<String, Value>,
    key: &str,
    not_key: &str,
) -> Result<(bool, Vec<String>), String> {
    match (s.get(key), s.get(not_key)) {
        (Some(v), None) => Ok((false, strings(v, key)?)),
        (None, Some(v)) => Ok((true, strings(v, not_key)?)),
        (Some(_), Some(_)) => Err(format!("both {key} and {not_key}")),
        (None, None) => Err(format!("no {key}")),
    }
}

fn strings(v: &Value, key: &str) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(list) => list
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{key} holds a value that is not a string"))
            })
            .collect(),
        _ => Err(format!("{key} is neither a string nor a list of strings")),
    }
}

/// IAM's wildcard match: `*` any run of characters (also none), `?` exactly one.
/// Linear backtracking on the last `*` (no exponential cases).
pub fn wildcard(pattern: &str, text: &str) -> bool {
    matches(pattern.as_bytes(), text.as_bytes(), |a, b| a == b)
}

/// [`wildcard`], ASCII case-insensitive (action names).
fn wildcard_ci(pattern: &str, text: &str) -> bool {
    matches(pattern.as_bytes(), text.as_bytes(), |a, b| {
        a.eq_ignore_ascii_case(&b)
    })
}

fn matches(p: &[u8], t: &[u8], eq: impl Fn(u8, u8) -> bool) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || (p[pi] != b'*' && eq(p[pi], t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            // let the last `*` take one more character
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVOKE: &str = "execute-api:Invoke";

    fn policy(json: &str) -> Policy {
        Policy::parse(&serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn wildcards_follow_iam() {
        assert!(wildcard("*", ""));
        assert!(wildcard(
            "arn:aws:execute-api:*:*:shop/prod/GET/*",
            "arn:aws:execute-api:us-east-1:1:shop/prod/GET/orders/7"
        ));
        assert!(!wildcard(
            "arn:aws:execute-api:*:*:shop/prod/GET/*",
            "arn:aws:execute-api:us-east-1:1:shop/prod/POST/orders"
        ));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "ac"));
        assert!(wildcard("*/GET/*", "x/GET/y/GET/z"));
        assert!(!wildcard("abc", "abcd"));
        assert!(wildcard("a*b*c", "aXXbYYc"));
        assert!(!wildcard("a*b*c", "aXXbYY"));
        // ARNs are case-sensitive, actions are not
        assert!(!wildcard("shop/prod/get/*", "shop/prod/GET/a"));
        assert!(wildcard_ci("execute-api:invoke", INVOKE));
        assert!(wildcard_ci("execute-api:*", INVOKE));
    }

    #[test]
    fn a_pathological_pattern_stays_linear_enough() {
        let text = "a".repeat(2000);
        let pattern = format!("{}b", "*a".repeat(200));
        assert!(!wildcard(&pattern, &text));
    }

    #[test]
    fn explicit_deny_wins_over_allow() {
        let p = policy(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:shop/prod/*"},
                {"Effect":"Deny","Action":["execute-api:Invoke"],"Resource":["arn:aws:execute-api:*:*:shop/prod/DELETE/*"]}]}"#,
        );
        let arn = |m: &str| format!("arn:aws:execute-api:us-east-1:123:shop/prod/{m}/orders/1");
        assert_eq!(p.evaluate(INVOKE, &arn("GET")), Verdict::Allow);
        assert_eq!(p.evaluate(INVOKE, &arn("DELETE")), Verdict::ExplicitDeny);
        assert_eq!(
            p.evaluate(
                INVOKE,
                "arn:aws:execute-api:us-east-1:123:shop/test/GET/orders"
            ),
            Verdict::ImplicitDeny
        );
        assert_eq!(
            p.evaluate("execute-api:InvalidateCache", &arn("GET")),
            Verdict::ImplicitDeny
        );
    }

    #[test]
    fn not_resource_and_not_action_invert_the_match() {
        let p = policy(
            r#"{"Statement":{"Effect":"Allow","NotAction":"execute-api:ManageConnections","NotResource":"arn:aws:execute-api:*:*:shop/prod/*/admin*"}}"#,
        );
        assert_eq!(
            p.evaluate(INVOKE, "arn:aws:execute-api:r:1:shop/prod/GET/orders"),
            Verdict::Allow
        );
        assert_eq!(
            p.evaluate(INVOKE, "arn:aws:execute-api:r:1:shop/prod/GET/admin/x"),
            Verdict::ImplicitDeny
        );
        assert_eq!(
            p.evaluate(
                "execute-api:ManageConnections",
                "arn:aws:execute-api:r:1:shop/prod/GET/orders"
            ),
            Verdict::ImplicitDeny
        );
    }

    #[test]
    fn conditions_are_taken_the_safe_way() {
        let p = policy(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
        );
        assert_eq!(p.evaluate(INVOKE, "arn:x"), Verdict::ImplicitDeny);
        let p = policy(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"x":"true"}}}]}"#,
        );
        assert_eq!(p.evaluate(INVOKE, "arn:x"), Verdict::ExplicitDeny);
    }

    #[test]
    fn malformed_documents_are_refused() {
        for bad in [
            r#"[]"#,
            r#"{}"#,
            r#"{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","NotResource":"x"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":[1],"Resource":"*"}]}"#,
        ] {
            assert!(
                Policy::parse(&serde_json::from_str(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }
}
