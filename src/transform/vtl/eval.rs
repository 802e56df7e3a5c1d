//! Evaluates a compiled template against one request: `$input` (body, JSONPath,
//! parameters), `$context` and `$stageVariables` as the caller gives them, `$util`,
//! and Java's methods on strings, lists, maps and numbers as AWS's engine offers
//! them. Bounded in loops, steps and bytes built (see the module above).

use std::borrow::Cow;
use std::cell::OnceCell;
use std::rc::Rc;

use indexmap::IndexMap;

use super::{
    jsonpath, Call, Expr, Node, Op, Part, Pre, Ref, Template, SLOT_CONTEXT, SLOT_FOREACH,
    SLOT_INPUT, SLOT_STAGE_VARIABLES, SLOT_UTIL, SLOT_VELOCITY_COUNT, SLOT_VELOCITY_HAS_NEXT,
};
use crate::transform::util;
use crate::transform::value::{Num, Value};

/// Iterations of one `#foreach` (AWS's limit; the rest of the items are skipped).
pub const MAX_LOOP: usize = 1000;
/// The output's limit: API Gateway's 10 MB payload.
pub const MAX_OUTPUT: usize = 10 << 20;
/// Nodes and expressions one evaluation may visit.
pub const MAX_STEPS: u64 = 2_000_000;
/// Bytes of strings one evaluation may build (output included).
pub const MAX_BUILT: usize = 64 << 20;
/// How deep lists and maps a template builds may nest (JSON bodies: serde_json's 128).
pub const MAX_NESTING: usize = 160;

/// What a template reads from the request.
#[derive(Debug, Default)]
pub struct Inputs<'a> {
    pub body: &'a [u8],
    pub path: Vec<(&'a str, Cow<'a, str>)>,
    /// Query parameters, decoded, in request order.
    pub query: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub headers: Vec<(&'a str, &'a str)>,
    /// `$context`: a map (built by the caller only when the template uses it).
    pub context: Value,
    /// `$stageVariables`: a map.
    pub stage_variables: Value,
}

/// Why an evaluation stopped with an error (the gateway answers 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalError {
    TooLarge,
    TooManySteps,
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EvalError::TooLarge => "the template built more than its byte limit",
            EvalError::TooManySteps => "the template ran past its step limit",
        })
    }
}

/// A template's output.
#[derive(Debug)]
pub struct Rendered {
    pub body: String,
}

impl Template {
    /// Evaluates the template.
    pub fn eval(&self, inputs: &Inputs<'_>) -> Result<Rendered, EvalError> {
        let mut slots: Vec<Option<Value>> = vec![None; self.slots.len()];
        slots[SLOT_INPUT as usize] = Some(Value::Input);
        slots[SLOT_UTIL as usize] = Some(Value::Util);
        slots[SLOT_CONTEXT as usize] = Some(inputs.context.clone());
        slots[SLOT_STAGE_VARIABLES as usize] = Some(inputs.stage_variables.clone());
        let mut ev = Eval {
            slots,
            inputs,
            root: OnceCell::new(),
            steps: 0,
            built: 0,
        };
        let mut out = String::new();
        ev.nodes(&self.nodes, &mut out)?;
        Ok(Rendered { body: out })
    }
}

enum Flow {
    Normal,
    Break,
    Stop,
}

struct Eval<'i, 'a> {
    slots: Vec<Option<Value>>,
    inputs: &'i Inputs<'a>,
    /// The body parsed as JSON, on first use.
    root: OnceCell<Value>,
    steps: u64,
    built: usize,
}

type R<T> = Result<T, EvalError>;

impl Eval<'_, '_> {
    fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(EvalError::TooManySteps);
        }
        Ok(())
    }

    /// Counts `n` bytes built; refuses past the budget.
    fn build(&mut self, n: usize) -> R<()> {
        self.built += n;
        if self.built > MAX_BUILT {
            return Err(EvalError::TooLarge);
        }
        Ok(())
    }

    fn emit(&mut self, out: &mut String, s: &str) -> R<()> {
        self.build(s.len())?;
        if out.len() + s.len() > MAX_OUTPUT {
            return Err(EvalError::TooLarge);
        }
        out.push_str(s);
        Ok(())
    }

    fn nodes(&mut self, nodes: &[Node], out: &mut String) -> R<Flow> {
        for n in nodes {
            self.step()?;
            match n {
                Node::Text(t) => self.emit(out, t)?,
                Node::Ref(r) => {
                    let v = self.reference(r)?;
                    if v.is_null() {
                        // Velocity shows an undefined reference as written; the
                        // gateway's own objects render a missing value as nothing
                        let own = (r.slot as usize) < super::PREDEFINED.len();
                        if !r.silent && !own {
                            self.emit(out, &r.src)?;
                        }
                    } else {
                        let start = out.len();
                        if !v.render_within(out, MAX_OUTPUT) {
                            return Err(EvalError::TooLarge);
                        }
                        self.build(out.len() - start)?;
                    }
                }
                Node::Set(target, e) => {
                    let v = self.expr(e)?;
                    // Velocity 1.7: a null right-hand side leaves the target as it was
                    if !v.is_null() {
                        self.assign(target, v)?;
                    }
                }
                Node::If(arms, otherwise) => {
                    let mut body = otherwise;
                    for (cond, b) in arms {
                        if self.expr(cond)?.truthy() {
                            body = b;
                            break;
                        }
                    }
                    match self.nodes(body, out)? {
                        Flow::Normal => {}
                        f => return Ok(f),
                    }
                }
                Node::Foreach(var, items, body) => {
                    if let Flow::Stop = self.foreach(*var, items, body, out)? {
                        return Ok(Flow::Stop);
                    }
                }
                Node::Break => return Ok(Flow::Break),
                Node::Stop => return Ok(Flow::Stop),
            }
        }
        Ok(Flow::Normal)
    }

    fn foreach(&mut self, var: u16, items: &Expr, body: &[Node], out: &mut String) -> R<Flow> {
        let items: Vec<Value> = match self.expr(items)? {
            Value::List(l) => l.borrow().iter().take(MAX_LOOP + 1).cloned().collect(),
            Value::Map(m) => m.borrow().values().take(MAX_LOOP + 1).cloned().collect(),
            _ => return Ok(Flow::Normal),
        };
        let keep = [
            self.slots[var as usize].take(),
            self.slots[SLOT_FOREACH as usize].take(),
            self.slots[SLOT_VELOCITY_COUNT as usize].take(),
            self.slots[SLOT_VELOCITY_HAS_NEXT as usize].take(),
        ];
        let n = items.len().min(MAX_LOOP);
        let mut flow = Flow::Normal;
        for (i, item) in items.into_iter().take(n).enumerate() {
            let has_next = i + 1 < n;
            self.slots[var as usize] = Some(item);
            self.slots[SLOT_FOREACH as usize] = Some(Value::Loop {
                index: i as i64,
                has_next,
            });
            self.slots[SLOT_VELOCITY_COUNT as usize] = Some(Value::Int(i as i64 + 1));
            self.slots[SLOT_VELOCITY_HAS_NEXT as usize] = Some(Value::Bool(has_next));
            match self.nodes(body, out) {
                Ok(Flow::Normal) => {}
                Ok(Flow::Break) => break,
                Ok(Flow::Stop) => {
                    flow = Flow::Stop;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        let [a, b, c, d] = keep;
        self.slots[var as usize] = a;
        self.slots[SLOT_FOREACH as usize] = b;
        self.slots[SLOT_VELOCITY_COUNT as usize] = c;
        self.slots[SLOT_VELOCITY_HAS_NEXT as usize] = d;
        Ok(flow)
    }

    fn assign(&mut self, target: &Ref, v: Value) -> R<()> {
        let Some((last, path)) = target.parts.split_last() else {
            self.slots[target.slot as usize] = Some(v);
            return Ok(());
        };
        let mut cur = self.slots[target.slot as usize].clone().unwrap_or_default();
        for p in path {
            cur = self.part(cur, p)?;
        }
        match (last, &cur) {
            (Part::Prop(name), Value::Map(m)) => {
                self.admit(&v, Some(&cur))?;
                m.borrow_mut().insert(Rc::from(&**name), v);
            }
            (Part::Index(e), Value::Map(m)) => {
                let k = self.expr(e)?;
                let k = self.text(&k)?;
                self.admit(&v, Some(&cur))?;
                m.borrow_mut().insert(k, v);
            }
            (Part::Index(e), Value::List(l)) => {
                if let Some(i) = self.expr(e)?.number() {
                    let i = i.as_f64() as i64;
                    self.admit(&v, Some(&cur))?;
                    let mut l = l.borrow_mut();
                    if (0..l.len() as i64).contains(&i) {
                        l[i as usize] = v;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn reference(&mut self, r: &Ref) -> R<Value> {
        let mut cur = match &self.slots[r.slot as usize] {
            Some(v) => v.clone(),
            None => return Ok(Value::Null),
        };
        for p in &r.parts {
            if cur.is_null() {
                return Ok(Value::Null);
            }
            cur = self.part(cur, p)?;
        }
        Ok(cur)
    }

    fn part(&mut self, cur: Value, p: &Part) -> R<Value> {
        self.step()?;
        Ok(match p {
            Part::Prop(name) => property(&cur, name, self),
            Part::Index(e) => {
                let k = self.expr(e)?;
                match (&cur, k) {
                    (Value::List(l), Value::Int(i)) => {
                        let l = l.borrow();
                        usize::try_from(i)
                            .ok()
                            .and_then(|i| l.get(i).cloned())
                            .unwrap_or_default()
                    }
                    (Value::Map(m), k) => {
                        m.borrow().get(&*k.to_text()).cloned().unwrap_or_default()
                    }
                    _ => Value::Null,
                }
            }
            Part::Call(c) => self.call(cur, c)?,
        })
    }

    fn expr(&mut self, e: &Expr) -> R<Value> {
        self.step()?;
        Ok(match e {
            Expr::Null => Value::Null,
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Int(i) => Value::Int(*i),
            Expr::Float(f) => Value::Float(*f),
            Expr::Str(s) => Value::str(s),
            Expr::Interp(nodes) => {
                let mut s = String::new();
                self.nodes(nodes, &mut s)?;
                Value::Str(Rc::from(s))
            }
            Expr::Ref(r) => self.reference(r)?,
            Expr::List(items) => {
                let mut v = Vec::with_capacity(items.len());
                for i in items {
                    let x = self.expr(i)?;
                    self.admit(&x, None)?;
                    v.push(x);
                }
                Value::new_list(v)
            }
            Expr::Range(a, b) => {
                let (a, b) = (self.expr(a)?, self.expr(b)?);
                let (Some(a), Some(b)) = (a.number(), b.number()) else {
                    return Ok(Value::Null);
                };
                let (a, b) = (a.as_f64() as i64, b.as_f64() as i64);
                let len = a.abs_diff(b) + 1;
                if len > MAX_STEPS {
                    return Err(EvalError::TooManySteps);
                }
                self.steps += len;
                let v: Vec<Value> = if a <= b {
                    (a..=b).map(Value::Int).collect()
                } else {
                    (b..=a).rev().map(Value::Int).collect()
                };
                Value::new_list(v)
            }
            Expr::Map(entries) => {
                let mut m = IndexMap::with_capacity(entries.len());
                for (k, v) in entries {
                    let k = self.expr(k)?;
                    let k = self.text(&k)?;
                    let v = self.expr(v)?;
                    self.admit(&v, None)?;
                    m.insert(k, v);
                }
                Value::new_map(m)
            }
            Expr::Not(e) => Value::Bool(!self.expr(e)?.truthy()),
            Expr::Neg(e) => match self.expr(e)?.number() {
                Some(Num::Int(i)) => Value::Int(i.wrapping_neg()),
                Some(Num::Float(f)) => Value::Float(-f),
                None => Value::Null,
            },
            Expr::Bin(Op::And, a, b) => {
                Value::Bool(self.expr(a)?.truthy() && self.expr(b)?.truthy())
            }
            Expr::Bin(Op::Or, a, b) => {
                Value::Bool(self.expr(a)?.truthy() || self.expr(b)?.truthy())
            }
            Expr::Bin(op, a, b) => {
                let (a, b) = (self.expr(a)?, self.expr(b)?);
                self.binary(*op, a, b)?
            }
        })
    }

    fn binary(&mut self, op: Op, a: Value, b: Value) -> R<Value> {
        use std::cmp::Ordering;
        Ok(match op {
            Op::Eq => Value::Bool(self.equal(&a, &b)?),
            Op::Ne => Value::Bool(!self.equal(&a, &b)?),
            Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                let ord = match (&a, &b) {
                    (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
                    _ => match (a.number(), b.number()) {
                        (Some(x), Some(y)) => x.as_f64().partial_cmp(&y.as_f64()),
                        _ => None,
                    },
                };
                Value::Bool(match (op, ord) {
                    (Op::Lt, Some(o)) => o == Ordering::Less,
                    (Op::Le, Some(o)) => o != Ordering::Greater,
                    (Op::Gt, Some(o)) => o == Ordering::Greater,
                    (Op::Ge, Some(o)) => o != Ordering::Less,
                    _ => false,
                })
            }
            Op::Add if matches!((&a, &b), (Value::Str(_), _) | (_, Value::Str(_))) => {
                if a.is_null() || b.is_null() {
                    return Ok(Value::Null);
                }
                let (x, y) = (self.text(&a)?, self.text(&b)?);
                self.build(x.len() + y.len())?;
                let mut s = String::with_capacity(x.len() + y.len());
                s.push_str(&x);
                s.push_str(&y);
                Value::Str(Rc::from(s))
            }
            _ => match (a.number(), b.number()) {
                (Some(Num::Int(x)), Some(Num::Int(y))) => match op {
                    Op::Add => Value::Int(x.wrapping_add(y)),
                    Op::Sub => Value::Int(x.wrapping_sub(y)),
                    Op::Mul => Value::Int(x.wrapping_mul(y)),
                    Op::Div if y != 0 => Value::Int(x.wrapping_div(y)),
                    Op::Mod if y != 0 => Value::Int(x.wrapping_rem(y)),
                    _ => Value::Null,
                },
                (Some(x), Some(y)) => {
                    let (x, y) = (x.as_f64(), y.as_f64());
                    match op {
                        Op::Add => Value::Float(x + y),
                        Op::Sub => Value::Float(x - y),
                        Op::Mul => Value::Float(x * y),
                        Op::Div if y != 0.0 => Value::Float(x / y),
                        Op::Mod if y != 0.0 => Value::Float(x % y),
                        _ => Value::Null,
                    }
                }
                _ => Value::Null,
            },
        })
    }

    /// A string argument (a literal borrowed, anything else rendered).
    fn str_arg<'e>(&mut self, e: Option<&'e Expr>) -> R<Option<Cow<'e, str>>> {
        match e {
            None => Ok(None),
            Some(Expr::Str(s)) => Ok(Some(Cow::Borrowed(&**s))),
            Some(e) => {
                let v = self.expr(e)?;
                Ok(if v.is_null() {
                    None
                } else {
                    Some(Cow::Owned(self.text(&v)?.to_string()))
                })
            }
        }
    }

    fn int_arg(&mut self, e: Option<&Expr>) -> R<Option<i64>> {
        match e {
            None => Ok(None),
            Some(e) => Ok(match self.expr(e)? {
                Value::Int(i) => Some(i),
                Value::Float(f) => Some(f as i64),
                Value::Str(s) => s.trim().parse().ok(),
                _ => None,
            }),
        }
    }

    fn root(&self) -> Value {
        self.root
            .get_or_init(|| {
                let body = self.inputs.body;
                if body.iter().all(u8::is_ascii_whitespace) {
                    Value::new_map(IndexMap::new())
                } else {
                    Value::from_json(body).unwrap_or(Value::Null)
                }
            })
            .clone()
    }

    fn json_path(&mut self, c: &Call) -> R<Option<Value>> {
        let v = match &c.pre {
            Pre::Path(p) => p.eval(&self.root()),
            _ => {
                let Some(text) = self.str_arg(c.args.first())? else {
                    return Ok(None);
                };
                match jsonpath::Path::compile(&text) {
                    Ok(p) => p.eval(&self.root()),
                    Err(_) => return Ok(None),
                }
            }
        };
        Ok(Some(v))
    }

    fn regex<'c>(&mut self, c: &'c Call, whole: bool) -> R<Option<Cow<'c, regex::Regex>>> {
        if let Pre::Regex(re) = &c.pre {
            return Ok(Some(Cow::Borrowed(re)));
        }
        let Some(p) = self.str_arg(c.args.first())? else {
            return Ok(None);
        };
        self.steps += 1000; // compiling a pattern costs more than a step
        Ok(super::parse::java_regex(&p, whole).ok().map(Cow::Owned))
    }

    fn call(&mut self, target: Value, c: &Call) -> R<Value> {
        let name = &*c.name;
        let args = &c.args;
        Ok(match &target {
            Value::Input => match name {
                "body" => self.input_body(),
                "json" => match self.json_path(c)? {
                    Some(v) => {
                        let mut s = String::new();
                        if !v.write_json_within(&mut s, MAX_OUTPUT) {
                            return Err(EvalError::TooLarge);
                        }
                        self.build(s.len())?;
                        Value::Str(Rc::from(s))
                    }
                    None => Value::Null,
                },
                "path" => self.json_path(c)?.unwrap_or_default(),
                "params" => match self.str_arg(args.first())? {
                    None if args.is_empty() => self.all_params(),
                    None => Value::Null,
                    Some(n) => Value::str(&self.param(&n)),
                },
                _ => Value::Null,
            },
            Value::Util => {
                let Some(s) = self.str_arg(args.first())? else {
                    return Ok(Value::Null);
                };
                let out = match name {
                    "escapeJavaScript" => util::escape_javascript(&s),
                    "urlEncode" => util::url_encode(&s),
                    "urlDecode" => util::url_decode(&s),
                    "base64Encode" => util::base64_encode(s.as_bytes()),
                    "base64Decode" => util::base64_decode(&s).unwrap_or_default(),
                    "parseJson" => return Ok(Value::from_json(s.as_bytes()).unwrap_or_default()),
                    _ => return Ok(Value::Null),
                };
                self.build(out.len())?;
                Value::Str(Rc::from(out))
            }
            Value::Str(s) => self.string_method(s, c)?,
            Value::List(l) => match name {
                "size" => Value::Int(l.borrow().len() as i64),
                "isEmpty" => Value::Bool(l.borrow().is_empty()),
                "get" => {
                    let i = self.int_arg(args.first())?;
                    let l = l.borrow();
                    i.and_then(|i| usize::try_from(i).ok())
                        .and_then(|i| l.get(i).cloned())
                        .unwrap_or_default()
                }
                "contains" => {
                    let x = self.arg(args.first())?;
                    Value::Bool(self.position(l, &x)?.is_some())
                }
                "indexOf" => {
                    let x = self.arg(args.first())?;
                    Value::Int(self.position(l, &x)?.map_or(-1, |i| i as i64))
                }
                "add" => {
                    let x = self.arg(args.first())?;
                    self.admit(&x, Some(&target))?;
                    l.borrow_mut().push(x);
                    Value::Bool(true)
                }
                "addAll" => {
                    let x = self.arg(args.first())?;
                    if let Value::List(other) = &x {
                        self.admit(&x, Some(&target))?;
                        let items: Vec<Value> = other.borrow().clone();
                        l.borrow_mut().extend(items);
                    }
                    Value::Bool(true)
                }
                "set" => {
                    let i = self.int_arg(args.first())?;
                    let x = self.arg(args.get(1))?;
                    self.admit(&x, Some(&target))?;
                    let mut l = l.borrow_mut();
                    match i.and_then(|i| usize::try_from(i).ok()) {
                        Some(i) if i < l.len() => std::mem::replace(&mut l[i], x),
                        _ => Value::Null,
                    }
                }
                "remove" => match self.arg(args.first())? {
                    Value::Int(i) => {
                        let mut l = l.borrow_mut();
                        match usize::try_from(i) {
                            Ok(i) if i < l.len() => l.remove(i),
                            _ => Value::Null,
                        }
                    }
                    x => match self.position(l, &x)? {
                        Some(i) => {
                            l.borrow_mut().remove(i);
                            Value::Bool(true)
                        }
                        None => Value::Bool(false),
                    },
                },
                "toString" => Value::Str(self.text(&target)?),
                _ => Value::Null,
            },
            Value::Map(m) => match name {
                "get" => {
                    let k = self.arg(args.first())?;
                    let k = self.text(&k)?;
                    m.borrow().get(&*k).cloned().unwrap_or_default()
                }
                "containsKey" => {
                    let k = self.arg(args.first())?;
                    let k = self.text(&k)?;
                    Value::Bool(m.borrow().contains_key(&*k))
                }
                "containsValue" => {
                    let x = self.arg(args.first())?;
                    let values: Vec<Value> = m.borrow().values().cloned().collect();
                    let mut found = false;
                    for v in &values {
                        if self.equal(v, &x)? {
                            found = true;
                            break;
                        }
                    }
                    Value::Bool(found)
                }
                "keySet" => {
                    Value::new_list(m.borrow().keys().map(|k| Value::Str(k.clone())).collect())
                }
                "values" => Value::new_list(m.borrow().values().cloned().collect()),
                "entrySet" => Value::new_list(
                    m.borrow()
                        .iter()
                        .map(|(k, v)| {
                            let mut e = IndexMap::with_capacity(2);
                            e.insert(Rc::from("key"), Value::Str(k.clone()));
                            e.insert(Rc::from("value"), v.clone());
                            Value::new_map(e)
                        })
                        .collect(),
                ),
                "size" => Value::Int(m.borrow().len() as i64),
                "isEmpty" => Value::Bool(m.borrow().is_empty()),
                "put" => {
                    let k = self.arg(args.first())?;
                    let k = self.text(&k)?;
                    let v = self.arg(args.get(1))?;
                    self.admit(&v, Some(&target))?;
                    m.borrow_mut().insert(k, v).unwrap_or_default()
                }
                "putAll" => {
                    let x = self.arg(args.first())?;
                    self.admit(&x, Some(&target))?;
                    if let Value::Map(other) = x {
                        let items: Vec<(Rc<str>, Value)> = other
                            .borrow()
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        m.borrow_mut().extend(items);
                    }
                    Value::Null
                }
                "remove" => {
                    let k = self.arg(args.first())?;
                    let k = self.text(&k)?;
                    m.borrow_mut().shift_remove(&*k).unwrap_or_default()
                }
                "toString" => Value::Str(self.text(&target)?),
                _ => Value::Null,
            },
            Value::Loop { .. } => match name {
                "hasNext" | "getHasNext" => property(&target, "hasNext", self),
                "getIndex" => property(&target, "index", self),
                "getCount" => property(&target, "count", self),
                "isFirst" => property(&target, "first", self),
                "isLast" => property(&target, "last", self),
                _ => Value::Null,
            },
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => match (name, target.number()) {
                ("toString", _) => Value::Str(self.text(&target)?),
                ("intValue" | "longValue", Some(n)) => Value::Int(n.as_f64() as i64),
                ("doubleValue" | "floatValue", Some(n)) => Value::Float(n.as_f64()),
                ("equals", _) => {
                    let x = self.arg(args.first())?;
                    Value::Bool(self.equal(&target, &x)?)
                }
                _ => Value::Null,
            },
            Value::Null => Value::Null,
        })
    }

    /// Java's `toString()`, within the byte budget (and charged to it).
    fn text(&mut self, v: &Value) -> R<Rc<str>> {
        if let Value::Str(s) = v {
            return Ok(s.clone());
        }
        let mut out = String::new();
        if !v.render_within(&mut out, MAX_BUILT.saturating_sub(self.built)) {
            return Err(EvalError::TooLarge);
        }
        self.build(out.len())?;
        Ok(Rc::from(out))
    }

    /// Velocity's `==`: numbers by value, strings and booleans as such, lists and
    /// maps element by element (each element a step), anything else by its
    /// `toString()`.
    fn equal(&mut self, a: &Value, b: &Value) -> R<bool> {
        self.step()?;
        Ok(match (a, b) {
            (Value::Null, Value::Null) => true,
            (Value::Null, _) | (_, Value::Null) => false,
            (Value::Str(x), Value::Str(y)) => x == y,
            (Value::Bool(x), Value::Bool(y)) => x == y,
            (Value::List(x), Value::List(y)) => {
                if Rc::ptr_eq(x, y) {
                    return Ok(true);
                }
                let (x, y) = (x.borrow().clone(), y.borrow().clone());
                if x.len() != y.len() {
                    return Ok(false);
                }
                for (p, q) in x.iter().zip(y.iter()) {
                    if !self.equal(p, q)? {
                        return Ok(false);
                    }
                }
                true
            }
            (Value::Map(x), Value::Map(y)) => {
                if Rc::ptr_eq(x, y) {
                    return Ok(true);
                }
                let x: Vec<(Rc<str>, Value)> = x
                    .borrow()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let y = y.borrow().clone();
                if x.len() != y.len() {
                    return Ok(false);
                }
                for (k, v) in &x {
                    match y.get(k) {
                        Some(w) if self.equal(v, w)? => {}
                        _ => return Ok(false),
                    }
                }
                true
            }
            _ => match (a.number(), b.number()) {
                (Some(x), Some(y)) => x.as_f64() == y.as_f64(),
                _ => {
                    let (x, y) = (self.text(a)?, self.text(b)?);
                    x == y
                }
            },
        })
    }

    /// Where `x` is in the list (each comparison a step).
    fn position(&mut self, l: &crate::transform::value::List, x: &Value) -> R<Option<usize>> {
        let items = l.borrow().clone();
        for (i, v) in items.iter().enumerate() {
            if self.equal(v, x)? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// Whether `v` may go into a list or map (`into`: the one it goes into): it must
    /// not nest deeper than `MAX_NESTING` nor hold `into` itself (a cycle would
    /// outlive the evaluation and never end when printed). The walk is charged to
    /// the step budget.
    fn admit(&mut self, v: &Value, into: Option<&Value>) -> R<()> {
        fn same(a: &Value, b: &Value) -> bool {
            match (a, b) {
                (Value::List(x), Value::List(y)) => Rc::ptr_eq(x, y),
                (Value::Map(x), Value::Map(y)) => Rc::ptr_eq(x, y),
                _ => false,
            }
        }
        fn walk(ev: &mut Eval<'_, '_>, v: &Value, into: Option<&Value>, depth: usize) -> R<()> {
            if !matches!(v, Value::List(_) | Value::Map(_)) {
                return Ok(());
            }
            ev.step()?;
            if depth >= MAX_NESTING || into.is_some_and(|c| same(v, c)) {
                return Err(EvalError::TooLarge);
            }
            let children: Vec<Value> = match v {
                Value::List(l) => l.borrow().clone(),
                Value::Map(m) => m.borrow().values().cloned().collect(),
                _ => Vec::new(),
            };
            for c in &children {
                walk(ev, c, into, depth + 1)?;
            }
            Ok(())
        }
        walk(self, v, into, 1)
    }

    fn arg(&mut self, e: Option<&Expr>) -> R<Value> {
        match e {
            Some(e) => self.expr(e),
            None => Ok(Value::Null),
        }
    }

    fn string_method(&mut self, s: &Rc<str>, c: &Call) -> R<Value> {
        let args = &c.args;
        let text = |x: &str| Value::str(x);
        Ok(match &*c.name {
            "length" | "size" => Value::Int(s.encode_utf16().count() as i64),
            "isEmpty" => Value::Bool(s.is_empty()),
            "toString" | "intern" => Value::Str(s.clone()),
            "toLowerCase" => text(&s.to_lowercase()),
            "toUpperCase" => text(&s.to_uppercase()),
            "trim" => text(s.trim_matches(|c: char| c <= ' ')),
            "equals" => {
                let x = self.arg(args.first())?;
                Value::Bool(matches!(&x, Value::Str(y) if y == s))
            }
            "equalsIgnoreCase" => {
                let x = self.str_arg(args.first())?;
                Value::Bool(x.is_some_and(|x| x.to_lowercase() == s.to_lowercase()))
            }
            "contains" | "startsWith" | "endsWith" | "indexOf" | "lastIndexOf" | "concat" => {
                let Some(x) = self.str_arg(args.first())? else {
                    return Ok(Value::Null);
                };
                match &*c.name {
                    "contains" => Value::Bool(s.contains(&*x)),
                    "startsWith" => Value::Bool(s.starts_with(&*x)),
                    "endsWith" => Value::Bool(s.ends_with(&*x)),
                    "indexOf" => Value::Int(s.find(&*x).map_or(-1, |b| utf16_index(s, b))),
                    "lastIndexOf" => Value::Int(s.rfind(&*x).map_or(-1, |b| utf16_index(s, b))),
                    _ => {
                        self.build(s.len() + x.len())?;
                        text(&format!("{s}{x}"))
                    }
                }
            }
            "charAt" => {
                let i = self.int_arg(args.first())?;
                i.and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| s.chars().nth(i))
                    .map_or(Value::Null, |c| text(c.encode_utf8(&mut [0; 4])))
            }
            "substring" => {
                let from = self.int_arg(args.first())?;
                let to = self.int_arg(args.get(1))?;
                let n = s.encode_utf16().count() as i64;
                let (Some(a), b) = (from, to.unwrap_or(n)) else {
                    return Ok(Value::Null);
                };
                if a < 0 || b > n || a > b {
                    return Ok(Value::Null);
                }
                let units: Vec<u16> = s.encode_utf16().collect();
                text(&String::from_utf16_lossy(&units[a as usize..b as usize]))
            }
            "replace" => {
                let (Some(a), Some(b)) = (self.str_arg(args.first())?, self.str_arg(args.get(1))?)
                else {
                    return Ok(Value::Null);
                };
                if a.is_empty() {
                    return Ok(Value::Str(s.clone()));
                }
                let count = s.matches(&*a).count();
                self.build(s.len() + count.saturating_mul(b.len()))?;
                text(&s.replace(&*a, &b))
            }
            "replaceAll" | "replaceFirst" => {
                let Some(re) = self.regex(c, false)? else {
                    return Ok(Value::Null);
                };
                let Some(with) = self.str_arg(args.get(1))? else {
                    return Ok(Value::Null);
                };
                let with = java_replacement(&with);
                let limit = if &*c.name == "replaceFirst" {
                    1
                } else {
                    usize::MAX
                };
                let mut out = String::new();
                let mut last = 0;
                for caps in re.captures_iter(s).take(limit) {
                    self.step()?;
                    let Some(m) = caps.get(0) else { continue };
                    out.push_str(&s[last..m.start()]);
                    caps.expand(&with, &mut out);
                    last = m.end();
                    self.build(0)?;
                    if out.len() > MAX_OUTPUT {
                        return Err(EvalError::TooLarge);
                    }
                }
                out.push_str(&s[last..]);
                self.build(out.len())?;
                Value::Str(Rc::from(out))
            }
            "matches" => match self.regex(c, true)? {
                Some(re) => Value::Bool(re.is_match(s)),
                None => Value::Null,
            },
            "split" => {
                let Some(re) = self.regex(c, false)? else {
                    return Ok(Value::Null);
                };
                let mut parts: Vec<Value> = Vec::new();
                for p in re.split(s) {
                    self.step()?;
                    parts.push(text(p));
                }
                // Java drops trailing empty strings
                while matches!(parts.last(), Some(Value::Str(p)) if p.is_empty()) && parts.len() > 1
                {
                    parts.pop();
                }
                Value::new_list(parts)
            }
            _ => Value::Null,
        })
    }

    fn input_body(&mut self) -> Value {
        Value::str(&String::from_utf8_lossy(self.inputs.body))
    }

    /// `$input.params(name)`: path, then query string, then header.
    fn param(&self, name: &str) -> String {
        let i = self.inputs;
        if let Some((_, v)) = i.path.iter().find(|(n, _)| *n == name) {
            return v.to_string();
        }
        if let Some((_, v)) = i.query.iter().find(|(n, _)| n == name) {
            return v.to_string();
        }
        if let Some((_, v)) = i.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return v.to_string();
        }
        String::new()
    }

    /// `$input.params()`: `{path: {…}, querystring: {…}, header: {…}}`.
    fn all_params(&self) -> Value {
        let i = self.inputs;
        let map = |pairs: &mut dyn Iterator<Item = (&str, &str)>| {
            let mut m = IndexMap::new();
            for (k, v) in pairs {
                // a repeated name keeps its last value, as AWS's map does
                m.insert(Rc::from(k), Value::str(v));
            }
            Value::new_map(m)
        };
        let mut all = IndexMap::with_capacity(3);
        all.insert(
            Rc::from("path"),
            map(&mut i.path.iter().map(|(k, v)| (*k, &**v))),
        );
        all.insert(
            Rc::from("querystring"),
            map(&mut i.query.iter().map(|(k, v)| (&**k, &**v))),
        );
        all.insert(
            Rc::from("header"),
            map(&mut i.headers.iter().map(|(k, v)| (*k, *v))),
        );
        Value::new_map(all)
    }
}

/// A property: a map's entry, `$input.body`, a loop's position, or a Java getter.
fn property(v: &Value, name: &str, ev: &mut Eval<'_, '_>) -> Value {
    match v {
        Value::Map(m) => m.borrow().get(name).cloned().unwrap_or_default(),
        Value::Input if name == "body" => ev.input_body(),
        Value::Loop { index, has_next } => match name {
            "index" => Value::Int(*index),
            "count" => Value::Int(index + 1),
            "hasNext" => Value::Bool(*has_next),
            "first" => Value::Bool(*index == 0),
            "last" => Value::Bool(!has_next),
            _ => Value::Null,
        },
        Value::List(l) if name == "empty" => Value::Bool(l.borrow().is_empty()),
        Value::Str(s) if name == "empty" => Value::Bool(s.is_empty()),
        _ => Value::Null,
    }
}

/// Java's replacement syntax (`$1`, `\$`) in the `regex` crate's (`${1}`, `$$`).
fn java_replacement(java: &str) -> String {
    let mut out = String::with_capacity(java.len() + 8);
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(x) => out.push(x),
                None => {}
            },
            '$' => {
                let mut n = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    n.push(*d);
                    chars.next();
                }
                if n.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str("${");
                    out.push_str(&n);
                    out.push('}');
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The UTF-16 index (Java's) of byte offset `b` of `s`.
fn utf16_index(s: &str, b: usize) -> i64 {
    s[..b].encode_utf16().count() as i64
}
