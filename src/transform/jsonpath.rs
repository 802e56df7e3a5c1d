//! JSONPath as `$input.path`/`$input.json` and parameter mapping read it (API
//! Gateway uses Jayway JsonPath): `$`, `.name`, `['name']`, `[n]` (negative from the
//! end), `[a,b]`, `[start:end]`, `*`, `..name`, `[?(@.price < 10 && @.type == 'dog')]`,
//! and a trailing `.length()`. A definite path (names and single indices only) gives
//! one value or null; any other gives the list of what it matched, as Jayway does.
//!
//! Compiled once (template literals are compiled at load); evaluation borrows the
//! document and clones only the values it returns (lists and maps by reference).

use super::value::Value;

// A path lives in the plan, shared by every worker: it holds no `Rc`.

/// A compiled path.
#[derive(Debug, Clone)]
pub struct Path {
    steps: Vec<Step>,
    definite: bool,
    length: bool,
}

#[derive(Debug, Clone)]
enum Step {
    Name(Box<str>),
    Names(Vec<Box<str>>),
    Index(i64),
    Indices(Vec<i64>),
    Slice(Option<i64>, Option<i64>),
    Wildcard,
    /// `..`: this step applied at every depth.
    Descend(Box<Step>),
    Filter(Filter),
}

#[derive(Debug, Clone)]
enum Filter {
    Or(Box<Filter>, Box<Filter>),
    And(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Exists(Operand),
    Compare(Operand, Cmp, Operand),
}

#[derive(Debug, Clone)]
enum Operand {
    /// `@…` (relative) or `$…` (from the root): names and indices only.
    Path {
        root: bool,
        steps: Vec<Step>,
    },
    Lit(Lit),
    Regex(Box<regex::Regex>),
}

/// A literal of a filter.
#[derive(Debug, Clone)]
enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Box<str>),
}

impl Lit {
    fn value(&self) -> Value {
        match self {
            Lit::Null => Value::Null,
            Lit::Bool(b) => Value::Bool(*b),
            Lit::Int(i) => Value::Int(*i),
            Lit::Float(f) => Value::Float(*f),
            Lit::Str(s) => Value::str(s),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
}

/// Why a path did not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError {
    pub at: usize,
    pub why: &'static str,
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at offset {} of the JSONPath", self.why, self.at)
    }
}

/// Paths deeper than this are refused (the evaluator recurses per `..`).
const MAX_STEPS: usize = 64;

impl Path {
    /// Compiles `text`; a path without a leading `$` is read as if it had `$.`
    /// (parameter mapping's `method.request.body.a.b`).
    pub fn compile(text: &str) -> Result<Path, PathError> {
        let mut p = Parser {
            s: text.as_bytes(),
            at: 0,
        };
        p.skip_ws();
        let mut steps = Vec::new();
        match p.peek() {
            Some(b'$') => p.at += 1,
            None | Some(b'.' | b'[') => {}
            Some(_) => steps.push(Step::Name(p.name()?)),
        }
        let mut length = false;
        loop {
            p.skip_ws();
            match p.peek() {
                None => break,
                Some(b'.') if p.s[p.at..].starts_with(b".length()") && p.at + 9 == p.s.len() => {
                    length = true;
                    break;
                }
                _ => steps.push(p.step()?),
            }
            if steps.len() > MAX_STEPS {
                return Err(p.err("too many steps"));
            }
        }
        let definite = steps
            .iter()
            .all(|s| matches!(s, Step::Name(_) | Step::Index(_)));
        Ok(Path {
            steps,
            definite,
            length,
        })
    }

    /// What the path selects in `root`.
    pub fn eval(&self, root: &Value) -> Value {
        let v = if self.definite {
            let mut cur = root.clone();
            for s in &self.steps {
                cur = match s {
                    Step::Name(n) => child(&cur, n),
                    Step::Index(i) => index(&cur, *i),
                    _ => Value::Null,
                };
                if cur.is_null() {
                    break;
                }
            }
            cur
        } else {
            let mut cur = vec![root.clone()];
            for s in &self.steps {
                let mut next = Vec::new();
                for v in &cur {
                    apply(s, v, root, &mut next);
                }
                cur = next;
            }
            Value::new_list(cur)
        };
        if self.length {
            return match &v {
                Value::List(l) => Value::Int(l.borrow().len() as i64),
                Value::Map(m) => Value::Int(m.borrow().len() as i64),
                Value::Str(s) => Value::Int(s.chars().count() as i64),
                _ => Value::Null,
            };
        }
        v
    }
}

fn child(v: &Value, name: &str) -> Value {
    match v {
        Value::Map(m) => m.borrow().get(name).cloned().unwrap_or_default(),
        _ => Value::Null,
    }
}

fn index(v: &Value, i: i64) -> Value {
    match v {
        Value::List(l) => {
            let l = l.borrow();
            let n = l.len() as i64;
            let i = if i < 0 { n + i } else { i };
            if (0..n).contains(&i) {
                l[i as usize].clone()
            } else {
                Value::Null
            }
        }
        _ => Value::Null,
    }
}

/// Applies one step to `v`, pushing what it selects.
fn apply(step: &Step, v: &Value, root: &Value, out: &mut Vec<Value>) {
    match step {
        Step::Name(n) => {
            if let Value::Map(m) = v {
                if let Some(x) = m.borrow().get(&**n) {
                    out.push(x.clone());
                }
            }
        }
        Step::Names(ns) => {
            if let Value::Map(m) = v {
                let m = m.borrow();
                out.extend(ns.iter().filter_map(|n| m.get(&**n).cloned()));
            }
        }
        Step::Index(i) => {
            let x = index(v, *i);
            if !x.is_null() || matches!(v, Value::List(l) if in_range(l.borrow().len(), *i)) {
                out.push(x);
            }
        }
        Step::Indices(is) => {
            for i in is {
                apply(&Step::Index(*i), v, root, out);
            }
        }
        Step::Slice(from, to) => {
            if let Value::List(l) = v {
                let l = l.borrow();
                let n = l.len() as i64;
                let fix = |x: i64| if x < 0 { (n + x).max(0) } else { x.min(n) };
                let a = from.map_or(0, fix);
                let b = to.map_or(n, fix);
                if a < b {
                    out.extend(l[a as usize..b as usize].iter().cloned());
                }
            }
        }
        Step::Wildcard => match v {
            Value::Map(m) => out.extend(m.borrow().values().cloned()),
            Value::List(l) => out.extend(l.borrow().iter().cloned()),
            _ => {}
        },
        Step::Descend(inner) => descend(inner, v, root, out, 0),
        Step::Filter(f) => match v {
            Value::List(l) => {
                for item in l.borrow().iter() {
                    if f.test(item, root) {
                        out.push(item.clone());
                    }
                }
            }
            Value::Map(_) if f.test(v, root) => out.push(v.clone()),
            _ => {}
        },
    }
}

fn in_range(len: usize, i: i64) -> bool {
    let n = len as i64;
    let i = if i < 0 { n + i } else { i };
    (0..n).contains(&i)
}

/// `..step`: the step at `v` and at every value below it (depth-first, as Jayway).
fn descend(step: &Step, v: &Value, root: &Value, out: &mut Vec<Value>, depth: usize) {
    // JSON documents are at most serde_json's 128 levels deep; this is a backstop
    if depth > 256 {
        return;
    }
    apply(step, v, root, out);
    match v {
        Value::Map(m) => {
            for x in m.borrow().values() {
                descend(step, x, root, out, depth + 1);
            }
        }
        Value::List(l) => {
            for x in l.borrow().iter() {
                descend(step, x, root, out, depth + 1);
            }
        }
        _ => {}
    }
}

impl Filter {
    fn test(&self, item: &Value, root: &Value) -> bool {
        match self {
            Filter::Or(a, b) => a.test(item, root) || b.test(item, root),
            Filter::And(a, b) => a.test(item, root) && b.test(item, root),
            Filter::Not(a) => !a.test(item, root),
            Filter::Exists(o) => !o.value(item, root).is_null(),
            Filter::Compare(a, cmp, b) => {
                let x = a.value(item, root);
                if let (Cmp::Match, Operand::Regex(re)) = (cmp, b) {
                    return matches!(&x, Value::Str(s) if re.is_match(s));
                }
                let y = b.value(item, root);
                compare(&x, *cmp, &y)
            }
        }
    }
}

impl Operand {
    fn value(&self, item: &Value, root: &Value) -> Value {
        match self {
            Operand::Path {
                root: from_root,
                steps,
            } => {
                let mut cur = if *from_root {
                    root.clone()
                } else {
                    item.clone()
                };
                for s in steps {
                    cur = match s {
                        Step::Name(n) => child(&cur, n),
                        Step::Index(i) => index(&cur, *i),
                        _ => Value::Null,
                    };
                }
                cur
            }
            Operand::Lit(v) => v.value(),
            Operand::Regex(_) => Value::Null,
        }
    }
}

fn compare(x: &Value, cmp: Cmp, y: &Value) -> bool {
    use std::cmp::Ordering;
    let ord = match (x, y) {
        (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => match (x.number(), y.number()) {
            (Some(a), Some(b)) => a.as_f64().partial_cmp(&b.as_f64()),
            _ => None,
        },
    };
    match (cmp, ord) {
        (Cmp::Eq, Some(o)) => o == Ordering::Equal,
        (Cmp::Ne, Some(o)) => o != Ordering::Equal,
        (Cmp::Ne, None) => true,
        (Cmp::Lt, Some(o)) => o == Ordering::Less,
        (Cmp::Le, Some(o)) => o != Ordering::Greater,
        (Cmp::Gt, Some(o)) => o == Ordering::Greater,
        (Cmp::Ge, Some(o)) => o != Ordering::Less,
        _ => false,
    }
}

struct Parser<'s> {
    s: &'s [u8],
    at: usize,
}

impl<'s> Parser<'s> {
    fn err(&self, why: &'static str) -> PathError {
        PathError { at: self.at, why }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn name(&mut self) -> Result<Box<str>, PathError> {
        let start = self.at;
        while let Some(c) = self.peek() {
            if c == b'.' || c == b'[' || c == b' ' || c == b'(' || c == b')' {
                break;
            }
            // the filter grammar's operators end a name inside `[?( )]`
            if matches!(c, b'=' | b'!' | b'<' | b'>' | b'&' | b'|' | b']') {
                break;
            }
            self.at += 1;
        }
        if start == self.at {
            return Err(self.err("a name was expected"));
        }
        std::str::from_utf8(&self.s[start..self.at])
            .map(Box::from)
            .map_err(|_| self.err("the name is not UTF-8"))
    }

    fn quoted(&mut self) -> Result<Box<str>, PathError> {
        let q = self
            .peek()
            .ok_or_else(|| self.err("a quote was expected"))?;
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err("the quoted name does not end")),
                Some(b'\\') if self.s.get(self.at + 1).is_some() => {
                    out.push(self.s[self.at + 1]);
                    self.at += 2;
                }
                Some(c) if c == q => {
                    self.at += 1;
                    break;
                }
                Some(c) => {
                    out.push(c);
                    self.at += 1;
                }
            }
        }
        String::from_utf8(out)
            .map(Box::from)
            .map_err(|_| self.err("the name is not UTF-8"))
    }

    fn int(&mut self) -> Result<i64, PathError> {
        self.skip_ws();
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        std::str::from_utf8(&self.s[start..self.at])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| self.err("a number was expected"))
    }

    fn step(&mut self) -> Result<Step, PathError> {
        match self.peek() {
            Some(b'.') => {
                self.at += 1;
                if self.eat(b'.') {
                    let inner = match self.peek() {
                        Some(b'[') => self.bracket()?,
                        Some(b'*') => {
                            self.at += 1;
                            Step::Wildcard
                        }
                        _ => Step::Name(self.name()?),
                    };
                    return Ok(Step::Descend(Box::new(inner)));
                }
                if self.eat(b'*') {
                    return Ok(Step::Wildcard);
                }
                Ok(Step::Name(self.name()?))
            }
            Some(b'[') => self.bracket(),
            _ => Err(self.err("`.` or `[` was expected")),
        }
    }

    fn bracket(&mut self) -> Result<Step, PathError> {
        self.at += 1; // [
        self.skip_ws();
        let step = match self.peek() {
            Some(b'*') => {
                self.at += 1;
                Step::Wildcard
            }
            Some(b'\'' | b'"') => {
                let mut names = vec![self.quoted()?];
                self.skip_ws();
                while self.eat(b',') {
                    self.skip_ws();
                    names.push(self.quoted()?);
                    self.skip_ws();
                }
                if names.len() == 1 {
                    Step::Name(names.pop().unwrap_or_default())
                } else {
                    Step::Names(names)
                }
            }
            Some(b'?') => {
                self.at += 1;
                self.skip_ws();
                if !self.eat(b'(') {
                    return Err(self.err("`(` was expected after `?`"));
                }
                let f = self.filter_or(0)?;
                self.skip_ws();
                if !self.eat(b')') {
                    return Err(self.err("`)` was expected"));
                }
                Step::Filter(f)
            }
            Some(b':') => {
                self.at += 1;
                self.skip_ws();
                let to = if self.peek() == Some(b']') {
                    None
                } else {
                    Some(self.int()?)
                };
                Step::Slice(None, to)
            }
            _ => {
                let first = self.int()?;
                self.skip_ws();
                if self.eat(b':') {
                    self.skip_ws();
                    let to = if self.peek() == Some(b']') {
                        None
                    } else {
                        Some(self.int()?)
                    };
                    Step::Slice(Some(first), to)
                } else {
                    let mut is = vec![first];
                    while self.eat(b',') {
                        is.push(self.int()?);
                        self.skip_ws();
                    }
                    if is.len() == 1 {
                        Step::Index(first)
                    } else {
                        Step::Indices(is)
                    }
                }
            }
        };
        self.skip_ws();
        if !self.eat(b']') {
            return Err(self.err("`]` was expected"));
        }
        Ok(step)
    }

    fn filter_or(&mut self, depth: usize) -> Result<Filter, PathError> {
        let mut a = self.filter_and(depth)?;
        loop {
            self.skip_ws();
            if self.s[self.at..].starts_with(b"||") {
                self.at += 2;
                let b = self.filter_and(depth)?;
                a = Filter::Or(Box::new(a), Box::new(b));
            } else {
                return Ok(a);
            }
        }
    }

    fn filter_and(&mut self, depth: usize) -> Result<Filter, PathError> {
        let mut a = self.filter_unary(depth)?;
        loop {
            self.skip_ws();
            if self.s[self.at..].starts_with(b"&&") {
                self.at += 2;
                let b = self.filter_unary(depth)?;
                a = Filter::And(Box::new(a), Box::new(b));
            } else {
                return Ok(a);
            }
        }
    }

    fn filter_unary(&mut self, depth: usize) -> Result<Filter, PathError> {
        if depth > 32 {
            return Err(self.err("the filter nests too deep"));
        }
        self.skip_ws();
        if self.peek() == Some(b'!') && self.s.get(self.at + 1) != Some(&b'=') {
            self.at += 1;
            return Ok(Filter::Not(Box::new(self.filter_unary(depth + 1)?)));
        }
        if self.eat(b'(') {
            let f = self.filter_or(depth + 1)?;
            self.skip_ws();
            if !self.eat(b')') {
                return Err(self.err("`)` was expected"));
            }
            return Ok(f);
        }
        let a = self.operand()?;
        self.skip_ws();
        let rest = &self.s[self.at..];
        let (cmp, n) = if rest.starts_with(b"==") {
            (Cmp::Eq, 2)
        } else if rest.starts_with(b"!=") {
            (Cmp::Ne, 2)
        } else if rest.starts_with(b"<=") {
            (Cmp::Le, 2)
        } else if rest.starts_with(b">=") {
            (Cmp::Ge, 2)
        } else if rest.starts_with(b"=~") {
            (Cmp::Match, 2)
        } else if rest.starts_with(b"<") {
            (Cmp::Lt, 1)
        } else if rest.starts_with(b">") {
            (Cmp::Gt, 1)
        } else {
            return Ok(Filter::Exists(a));
        };
        self.at += n;
        self.skip_ws();
        let b = self.operand()?;
        Ok(Filter::Compare(a, cmp, b))
    }

    fn operand(&mut self) -> Result<Operand, PathError> {
        self.skip_ws();
        match self.peek() {
            Some(c @ (b'@' | b'$')) => {
                self.at += 1;
                let mut steps = Vec::new();
                while matches!(self.peek(), Some(b'.' | b'[')) {
                    let s = self.step()?;
                    if !matches!(s, Step::Name(_) | Step::Index(_)) {
                        return Err(self.err("a filter's path takes names and indices only"));
                    }
                    steps.push(s);
                    if steps.len() > MAX_STEPS {
                        return Err(self.err("too many steps"));
                    }
                }
                Ok(Operand::Path {
                    root: c == b'$',
                    steps,
                })
            }
            Some(b'\'' | b'"') => Ok(Operand::Lit(Lit::Str(self.quoted()?))),
            Some(b'/') => {
                self.at += 1;
                let start = self.at;
                while let Some(c) = self.peek() {
                    if c == b'/' && self.s[self.at - 1] != b'\\' {
                        break;
                    }
                    self.at += 1;
                }
                let body = std::str::from_utf8(&self.s[start..self.at])
                    .map_err(|_| self.err("the regex is not UTF-8"))?;
                if !self.eat(b'/') {
                    return Err(self.err("the regex does not end"));
                }
                let case_insensitive = self.eat(b'i');
                let re = regex::RegexBuilder::new(body)
                    .case_insensitive(case_insensitive)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|_| self.err("the regex does not compile"))?;
                Ok(Operand::Regex(Box::new(re)))
            }
            _ => {
                let start = self.at;
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'.' || c == b'-' || c == b'+')
                {
                    self.at += 1;
                }
                let word = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("");
                let v = match word {
                    "true" => Lit::Bool(true),
                    "false" => Lit::Bool(false),
                    "null" => Lit::Null,
                    w => {
                        if let Ok(i) = w.parse::<i64>() {
                            Lit::Int(i)
                        } else if let Ok(f) = w.parse::<f64>() {
                            Lit::Float(f)
                        } else {
                            return Err(self.err("a value was expected"));
                        }
                    }
                };
                Ok(Operand::Lit(v))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(path: &str, doc: &str) -> String {
        let doc = Value::from_json(doc.as_bytes()).unwrap();
        let mut s = String::new();
        Path::compile(path).unwrap().eval(&doc).write_json(&mut s);
        s
    }

    const STORE: &str = r#"{"store":{"book":[
        {"category":"reference","author":"Nigel Rees","title":"Sayings","price":8.95},
        {"category":"fiction","author":"Evelyn Waugh","title":"Sword","price":12.99},
        {"category":"fiction","author":"Herman Melville","title":"Moby Dick","isbn":"0-553","price":8.99}],
        "bicycle":{"color":"red","price":19.95}}}"#;

    #[test]
    fn definite_paths_give_one_value() {
        assert_eq!(eval("$.store.bicycle.color", STORE), r#""red""#);
        assert_eq!(eval("$['store']['bicycle']['price']", STORE), "19.95");
        assert_eq!(eval("$.store.book[0].author", STORE), r#""Nigel Rees""#);
        assert_eq!(eval("$.store.book[-1].title", STORE), r#""Moby Dick""#);
        assert_eq!(eval("$.nope.deeper", STORE), "null");
        assert_eq!(eval("store.bicycle.color", STORE), r#""red""#);
        assert_eq!(eval("$.store.book.length()", STORE), "3");
    }

    #[test]
    fn indefinite_paths_give_lists() {
        assert_eq!(
            eval("$.store.book[*].author", STORE),
            r#"["Nigel Rees","Evelyn Waugh","Herman Melville"]"#
        );
        assert_eq!(eval("$..price", STORE), "[8.95,12.99,8.99,19.95]");
        assert_eq!(eval("$.store.book[0,2].price", STORE), "[8.95,8.99]");
        assert_eq!(eval("$.store.book[:2].price", STORE), "[8.95,12.99]");
        assert_eq!(eval("$.store.book[-1:].price", STORE), "[8.99]");
        assert_eq!(
            eval("$.store.book[?(@.price < 10)].title", STORE),
            r#"["Sayings","Moby Dick"]"#
        );
        assert_eq!(eval("$..book[?(@.isbn)].title", STORE), r#"["Moby Dick"]"#);
        assert_eq!(
            eval(
                "$.store.book[?(@.category == 'fiction' && @.price > 10)].author",
                STORE
            ),
            r#"["Evelyn Waugh"]"#
        );
        assert_eq!(
            eval("$.store.book[?(@.author =~ /.*melville/i)].price", STORE),
            "[8.99]"
        );
    }

    #[test]
    fn bad_paths_say_where() {
        for bad in ["$.", "$[", "$.a[?(@.b <)]", "$['a", "$.a[1:x]"] {
            assert!(Path::compile(bad).is_err(), "{bad}");
        }
    }
}
