//! The values a mapping template works on: what Velocity's Java objects are in
//! API Gateway (strings, numbers, booleans, lists and maps parsed from JSON, the
//! `$input` and `$util` objects, a `#foreach`'s loop state), with Java's rendering
//! (`toString`) and JSON in and out that keeps an object's key order.
//!
//! Lists and maps are shared and mutable (`$list.add(…)`, `$map.put(…)`), as in
//! Java; a template's values never outlive its evaluation.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::rc::Rc;

use indexmap::IndexMap;

pub type List = Rc<RefCell<Vec<Value>>>;
pub type Map = Rc<RefCell<IndexMap<Rc<str>, Value>>>;

#[derive(Debug, Clone, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    List(List),
    Map(Map),
    /// `$input`: the request's body and parameters.
    Input,
    /// `$util`.
    Util,
    /// `$foreach`: the innermost loop's position.
    Loop {
        index: i64,
        has_next: bool,
    },
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Rc::from(s))
    }

    pub fn new_list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(RefCell::new(items)))
    }

    pub fn new_map(entries: IndexMap<Rc<str>, Value>) -> Value {
        Value::Map(Rc::new(RefCell::new(entries)))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Velocity 1.7's truth: everything but `null` and `false` is true.
    pub fn truthy(&self) -> bool {
        !matches!(self, Value::Null | Value::Bool(false))
    }

    /// The number, when it is one.
    pub fn number(&self) -> Option<Num> {
        match *self {
            Value::Int(i) => Some(Num::Int(i)),
            Value::Float(f) => Some(Num::Float(f)),
            _ => None,
        }
    }

    /// Appends Java's `toString()` of the value (`null` renders as nothing).
    pub fn render(&self, out: &mut String) {
        self.render_within(out, usize::MAX);
    }

    /// `render`, stopping once `out` is longer than `limit` (a list holding the
    /// same list twice, doubled 40 times, is short to build and endless to print):
    /// `false` when it stopped.
    pub fn render_within(&self, out: &mut String, limit: usize) -> bool {
        match self {
            Value::Null => {}
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => java_double(*f, out),
            Value::Str(s) => out.push_str(s),
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.borrow().iter().enumerate() {
                    if out.len() > limit {
                        return false;
                    }
                    if i > 0 {
                        out.push_str(", ");
                    }
                    if v.is_null() {
                        out.push_str("null");
                    } else if !v.render_within(out, limit) {
                        return false;
                    }
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push('{');
                for (i, (k, v)) in m.borrow().iter().enumerate() {
                    if out.len() > limit {
                        return false;
                    }
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(k);
                    out.push('=');
                    if v.is_null() {
                        out.push_str("null");
                    } else if !v.render_within(out, limit) {
                        return false;
                    }
                }
                out.push('}');
            }
            Value::Input => out.push_str("$input"),
            Value::Util => out.push_str("$util"),
            Value::Loop { index, has_next } => {
                let _ = write!(out, "{{index={index}, hasNext={has_next}}}");
            }
        }
        out.len() <= limit
    }

    /// Java's `toString()` as a new string.
    pub fn to_text(&self) -> Rc<str> {
        match self {
            Value::Str(s) => s.clone(),
            v => {
                let mut s = String::new();
                v.render(&mut s);
                Rc::from(s)
            }
        }
    }

    /// Appends the value as JSON text (what `$input.json(…)` returns).
    pub fn write_json(&self, out: &mut String) {
        self.write_json_within(out, usize::MAX);
    }

    /// `write_json`, stopping once `out` is longer than `limit`: `false` then.
    pub fn write_json_within(&self, out: &mut String, limit: usize) -> bool {
        match self {
            Value::Null | Value::Input | Value::Util => out.push_str("null"),
            Value::Bool(_) | Value::Int(_) => self.render(out),
            Value::Float(f) if f.is_finite() => java_double(*f, out),
            Value::Float(_) => out.push_str("null"),
            Value::Str(s) => json_string(s, out),
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.borrow().iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    if out.len() > limit || !v.write_json_within(out, limit) {
                        return false;
                    }
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push('{');
                for (i, (k, v)) in m.borrow().iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_string(k, out);
                    out.push(':');
                    if out.len() > limit || !v.write_json_within(out, limit) {
                        return false;
                    }
                }
                out.push('}');
            }
            Value::Loop { .. } => out.push_str("{}"),
        }
        out.len() <= limit
    }

    /// Parses JSON text, keeping object key order; `None` when it is not JSON.
    pub fn from_json(text: &[u8]) -> Option<Value> {
        let mut de = serde_json::Deserializer::from_slice(text);
        // deep nesting is refused by serde_json itself (its recursion limit)
        let v: Json = serde::Deserialize::deserialize(&mut de).ok()?;
        de.end().ok()?;
        Some(v.0)
    }
}

/// A number of either kind.
#[derive(Debug, Clone, Copy)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// Java's `Double.toString` for the values templates meet: always a decimal point,
/// exponent form outside 10⁻³..10⁷.
fn java_double(f: f64, out: &mut String) {
    if !f.is_finite() {
        out.push_str(if f.is_nan() {
            "NaN"
        } else if f > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        });
        return;
    }
    let a = f.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let start = out.len();
        let _ = write!(out, "{f}");
        if !out[start..].contains('.') {
            out.push_str(".0");
        }
        return;
    }
    // d.dddE±n
    let s = format!("{f:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    out.push_str(mantissa);
    if !mantissa.contains('.') {
        out.push_str(".0");
    }
    out.push('E');
    out.push_str(exp);
}

/// Appends `s` as a JSON string literal (runs without escapes copied whole).
pub fn json_string(s: &str, out: &mut String) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        // every byte that needs an escape is ASCII: `i` is a character boundary
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// serde's view of a [`Value`] (JSON in, key order kept).
struct Json(Value);

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor).map(Json)
    }
}

struct JsonVisitor;

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::str(s))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(Json(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::new_list(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = IndexMap::new();
        while let Some((k, Json(v))) = map.next_entry::<std::borrow::Cow<'de, str>, Json>()? {
            entries.insert(Rc::from(&*k), v);
        }
        Ok(Value::new_map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: &Value) -> String {
        let mut s = String::new();
        v.render(&mut s);
        s
    }

    fn json(v: &Value) -> String {
        let mut s = String::new();
        v.write_json(&mut s);
        s
    }

    #[test]
    fn json_keeps_key_order_and_java_renders_maps() {
        let v = Value::from_json(br#"{"z":1,"a":[true,null,2.5],"m":{"k":"v"}}"#).unwrap();
        assert_eq!(json(&v), r#"{"z":1,"a":[true,null,2.5],"m":{"k":"v"}}"#);
        assert_eq!(text(&v), "{z=1, a=[true, null, 2.5], m={k=v}}");
        assert!(Value::from_json(b"{\"a\":1} x").is_none());
        assert!(Value::from_json(b"").is_none());
    }

    #[test]
    fn doubles_render_as_java_does() {
        assert_eq!(text(&Value::Float(249.99)), "249.99");
        assert_eq!(text(&Value::Float(1.0)), "1.0");
        assert_eq!(text(&Value::Float(1e10)), "1.0E10");
        assert_eq!(text(&Value::Float(0.0001)), "1.0E-4");
        assert_eq!(json(&Value::str("a\"b\n")), r#""a\"b\n""#);
    }
}
