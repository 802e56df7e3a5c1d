//! The template parser: text, references and directives into the tree of
//! [`super::Node`]s, with variables resolved to slots and literal JSONPaths and
//! regexes compiled. Every error names the line and column where it was found.

use super::{
    jsonpath, Call, Error, Expr, Node, Op, Part, Pre, Ref, Template, PREDEFINED, SLOT_CONTEXT,
};

/// Blocks and expressions nest at most this deep (the parser recurses).
const MAX_DEPTH: usize = 64;

pub fn parse(text: &str) -> Result<Template, Error> {
    let mut p = Parser {
        s: text,
        b: text.as_bytes(),
        at: 0,
        end: text.len(),
        slots: PREDEFINED.iter().map(|n| Box::from(*n)).collect(),
        uses_context: false,
        depth: 0,
    };
    let (nodes, end) = p.block()?;
    match end {
        Close::Eof => Ok(Template {
            nodes,
            slots: p.slots,
            uses_context: p.uses_context,
        }),
        Close::End(at) => Err(p.error_at(at, "#end without a directive to end")),
        Close::Else(at) | Close::Elseif(at, _) => {
            Err(p.error_at(at, "#else or #elseif outside an #if"))
        }
    }
}

struct Parser<'s> {
    s: &'s str,
    b: &'s [u8],
    at: usize,
    /// Where the text being parsed ends (a double-quoted string's contents end
    /// before the template does).
    end: usize,
    slots: Vec<Box<str>>,
    uses_context: bool,
    depth: usize,
}

/// How a block ended (with the offset of the directive that ended it).
enum Close {
    Eof,
    End(usize),
    Else(usize),
    Elseif(usize, Expr),
}

fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl<'s> Parser<'s> {
    fn error_at(&self, at: usize, message: impl Into<String>) -> Error {
        let before = &self.s[..at.min(self.s.len())];
        let line = before.matches('\n').count() as u32 + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
        Error {
            offset: at,
            line,
            column,
            message: message.into(),
        }
    }

    fn error(&self, message: impl Into<String>) -> Error {
        self.error_at(self.at, message)
    }

    fn peek(&self) -> Option<u8> {
        if self.at < self.end {
            Some(self.b[self.at])
        } else {
            None
        }
    }

    fn peek_at(&self, n: usize) -> Option<u8> {
        let i = self.at + n;
        if i < self.end {
            Some(self.b[i])
        } else {
            None
        }
    }

    fn rest(&self) -> &'s [u8] {
        &self.b[self.at..self.end]
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("the template nests too deep"));
        }
        Ok(())
    }

    fn slot(&mut self, name: &str) -> Result<u16, Error> {
        if let Some(i) = self.slots.iter().position(|s| &**s == name) {
            if i == SLOT_CONTEXT as usize {
                self.uses_context = true;
            }
            return Ok(i as u16);
        }
        if self.slots.len() >= u16::MAX as usize {
            return Err(self.error("too many variables"));
        }
        self.slots.push(Box::from(name));
        Ok((self.slots.len() - 1) as u16)
    }

    /// Text and nodes up to the end of the input or the directive that ends the block.
    fn block(&mut self) -> Result<(Vec<Node>, Close), Error> {
        self.enter()?;
        let mut nodes = Vec::new();
        let mut text = String::new();
        let end = loop {
            let Some(c) = self.peek() else {
                break Close::Eof;
            };
            match c {
                b'\\' if matches!(self.peek_at(1), Some(b'$' | b'#')) => {
                    // an escaped `$` or `#` is text, and so is what follows it
                    text.push(self.b[self.at + 1] as char);
                    self.at += 2;
                    if let Some(n) = self.rest().iter().position(|c| !ident_char(*c)) {
                        text.push_str(&self.s[self.at..self.at + n]);
                        self.at += n;
                    }
                }
                b'$' => match self.reference(true)? {
                    Some(r) => {
                        flush(&mut text, &mut nodes);
                        nodes.push(Node::Ref(r));
                    }
                    None => {
                        text.push('$');
                        self.at += 1;
                    }
                },
                b'#' => {
                    if let Some(end) = self.directive(&mut text, &mut nodes)? {
                        break end;
                    }
                }
                _ => {
                    let n = memchr::memchr3(b'$', b'#', b'\\', self.rest())
                        .unwrap_or(self.end - self.at)
                        .max(1);
                    // `$`, `#` and `\` are ASCII: `n` ends on a character boundary
                    text.push_str(&self.s[self.at..self.at + n]);
                    self.at += n;
                }
            }
        };
        flush(&mut text, &mut nodes);
        self.depth -= 1;
        Ok((nodes, end))
    }

    /// Whether only spaces and tabs stand between the start of the line and `at`.
    fn alone_before(&self, at: usize) -> usize {
        let line = &self.b[..at];
        let start = line.iter().rposition(|c| *c == b'\n').map_or(0, |i| i + 1);
        if line[start..].iter().all(|c| *c == b' ' || *c == b'\t') {
            at - start
        } else {
            usize::MAX
        }
    }

    /// After a directive: drops the rest of its line when that is only
    /// whitespace, and then also the directive's indentation (`lead` bytes of
    /// `text`) when it stood alone on its line.
    fn gobble(&mut self, text: &mut String, lead: usize) {
        let rest = self.rest();
        let ws = rest
            .iter()
            .position(|c| *c != b' ' && *c != b'\t')
            .unwrap_or(rest.len());
        let after = &rest[ws..];
        let eol = if after.starts_with(b"\r\n") {
            Some(2)
        } else if after.starts_with(b"\n") {
            Some(1)
        } else if after.is_empty() {
            Some(0)
        } else {
            None
        };
        if let Some(n) = eol {
            self.at += ws + n;
            trim_lead(text, lead);
        }
    }

    /// A `#…` at `self.at`: a directive (added to `nodes`, or the end of the
    /// block), a comment, or plain text.
    fn directive(
        &mut self,
        text: &mut String,
        nodes: &mut Vec<Node>,
    ) -> Result<Option<Close>, Error> {
        let start = self.at;
        let lead = self.alone_before(start);
        let rest = self.rest();
        if rest.starts_with(b"##") {
            let n = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
            self.at += n;
            trim_lead(text, lead);
            return Ok(None);
        }
        if rest.starts_with(b"#*") {
            let Some(n) = memchr::memmem::find(&rest[2..], b"*#") else {
                return Err(self.error("the #* comment does not end with *#"));
            };
            self.at += n + 4;
            self.gobble(text, lead);
            return Ok(None);
        }
        if rest.starts_with(b"#[[") {
            let Some(n) = memchr::memmem::find(&rest[3..], b"]]#") else {
                return Err(self.error("the #[[ text does not end with ]]#"));
            };
            text.push_str(&self.s[self.at + 3..self.at + 3 + n]);
            self.at += n + 6;
            return Ok(None);
        }
        // #name or #{name}
        let formal = rest.get(1) == Some(&b'{');
        let name_at = start + 1 + usize::from(formal);
        let name_len = self.b[name_at..self.end]
            .iter()
            .position(|c| !c.is_ascii_alphabetic())
            .unwrap_or(self.end - name_at);
        let name = &self.s[name_at..name_at + name_len];
        let mut after = name_at + name_len;
        if formal {
            if self.b.get(after) != Some(&b'}') || after >= self.end {
                text.push('#');
                self.at += 1;
                return Ok(None);
            }
            after += 1;
        }
        let known = matches!(
            name,
            "set" | "if" | "elseif" | "else" | "end" | "foreach" | "break" | "stop"
        );
        if !known {
            if matches!(name, "macro" | "define" | "include" | "parse" | "evaluate") {
                return Err(self.error_at(
                    start,
                    format!("#{name} is not supported in mapping templates"),
                ));
            }
            text.push('#');
            self.at += 1;
            return Ok(None);
        }
        self.at = after;
        match name {
            "set" => {
                self.open_paren(name)?;
                self.skip_ws();
                let target = match self.reference(false)? {
                    Some(r) => r,
                    None => return Err(self.error("#set needs a $reference to assign to")),
                };
                self.skip_ws();
                if self.peek() != Some(b'=') {
                    return Err(self.error("`=` was expected in #set"));
                }
                self.at += 1;
                let value = self.expr()?;
                self.close_paren(name)?;
                self.gobble(text, lead);
                flush(text, nodes);
                nodes.push(Node::Set(target, value));
                Ok(None)
            }
            "if" => {
                self.open_paren(name)?;
                let cond = self.expr()?;
                self.close_paren(name)?;
                self.gobble(text, lead);
                flush(text, nodes);
                let mut arms = Vec::new();
                let mut cond = cond;
                let otherwise = loop {
                    let (body, end) = self.block()?;
                    match end {
                        Close::Elseif(_, next) => {
                            arms.push((cond, body));
                            cond = next;
                        }
                        Close::Else(_) => {
                            arms.push((cond, body));
                            let (body, end) = self.block()?;
                            match end {
                                Close::End(_) => break body,
                                Close::Eof => return Err(self.error_at(start, "#if without #end")),
                                Close::Else(at) | Close::Elseif(at, _) => {
                                    return Err(self.error_at(at, "#else or #elseif after #else"))
                                }
                            }
                        }
                        Close::End(_) => {
                            arms.push((cond, body));
                            break Vec::new();
                        }
                        Close::Eof => return Err(self.error_at(start, "#if without #end")),
                    }
                };
                nodes.push(Node::If(arms, otherwise));
                Ok(None)
            }
            "elseif" => {
                self.open_paren(name)?;
                let cond = self.expr()?;
                self.close_paren(name)?;
                self.gobble(text, lead);
                Ok(Some(Close::Elseif(start, cond)))
            }
            "else" => {
                self.gobble(text, lead);
                Ok(Some(Close::Else(start)))
            }
            "end" => {
                self.gobble(text, lead);
                Ok(Some(Close::End(start)))
            }
            "foreach" => {
                self.open_paren(name)?;
                self.skip_ws();
                let var = match self.reference(false)? {
                    Some(r) if r.parts.is_empty() => r.slot,
                    _ => return Err(self.error("#foreach needs a $variable")),
                };
                self.skip_ws();
                if !self.rest().starts_with(b"in") || self.peek_at(2).is_some_and(ident_char) {
                    return Err(self.error("`in` was expected in #foreach"));
                }
                self.at += 2;
                let items = self.expr()?;
                self.close_paren(name)?;
                self.gobble(text, lead);
                flush(text, nodes);
                let (body, end) = self.block()?;
                match end {
                    Close::End(_) => {}
                    Close::Eof => return Err(self.error_at(start, "#foreach without #end")),
                    Close::Else(at) | Close::Elseif(at, _) => {
                        return Err(self.error_at(at, "#else or #elseif outside an #if"))
                    }
                }
                nodes.push(Node::Foreach(var, items, body));
                Ok(None)
            }
            "break" | "stop" => {
                self.gobble(text, lead);
                flush(text, nodes);
                nodes.push(if name == "break" {
                    Node::Break
                } else {
                    Node::Stop
                });
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn open_paren(&mut self, directive: &str) -> Result<(), Error> {
        self.skip_ws();
        if self.peek() != Some(b'(') {
            return Err(self.error(format!("`(` was expected after #{directive}")));
        }
        self.at += 1;
        Ok(())
    }

    fn close_paren(&mut self, directive: &str) -> Result<(), Error> {
        self.skip_ws();
        if self.peek() != Some(b')') {
            return Err(self.error(format!("`)` was expected to close #{directive}")));
        }
        self.at += 1;
        Ok(())
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// An identifier: a letter or `_`, then letters, digits, `_`, and `-` where a
    /// letter follows it (so `$a-1` is a subtraction).
    fn ident(&mut self) -> &'s str {
        let start = self.at;
        while let Some(c) = self.peek() {
            if ident_char(c) || (c == b'-' && self.peek_at(1).is_some_and(ident_start)) {
                self.at += 1;
            } else {
                break;
            }
        }
        &self.s[start..self.at]
    }

    /// A reference at `$`. In text (`in_text`), `None` when what follows is not
    /// one (the `$` is then text).
    fn reference(&mut self, in_text: bool) -> Result<Option<Ref>, Error> {
        let start = self.at;
        if self.peek() != Some(b'$') {
            return Ok(None);
        }
        let mut i = 1;
        let silent = self.peek_at(i) == Some(b'!');
        i += usize::from(silent);
        let formal = self.peek_at(i) == Some(b'{');
        i += usize::from(formal);
        if !self.peek_at(i).is_some_and(ident_start) {
            if in_text {
                return Ok(None);
            }
            return Err(self.error("a $reference was expected"));
        }
        self.enter()?;
        self.at += i;
        let name = self.ident();
        let slot = self.slot(name)?;
        let mut parts = Vec::new();
        loop {
            match self.peek() {
                Some(b'.') if self.peek_at(1).is_some_and(ident_start) => {
                    self.at += 1;
                    let name = self.ident();
                    if self.peek() == Some(b'(') {
                        self.at += 1;
                        let args = self.args()?;
                        let pre = self.precompile(name, &args)?;
                        parts.push(Part::Call(Call {
                            name: Box::from(name),
                            args,
                            pre,
                        }));
                    } else {
                        parts.push(Part::Prop(Box::from(name)));
                    }
                }
                Some(b'[') => {
                    self.at += 1;
                    let e = self.expr()?;
                    self.skip_ws();
                    if self.peek() != Some(b']') {
                        return Err(self.error("`]` was expected"));
                    }
                    self.at += 1;
                    parts.push(Part::Index(e));
                }
                _ => break,
            }
        }
        if formal {
            if self.peek() != Some(b'}') {
                return Err(self.error("`}` was expected to close ${…}"));
            }
            self.at += 1;
        }
        self.depth -= 1;
        Ok(Some(Ref {
            slot,
            parts,
            silent,
            src: Box::from(&self.s[start..self.at]),
        }))
    }

    /// Arguments up to `)`.
    fn args(&mut self) -> Result<Vec<Expr>, Error> {
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b')') {
            self.at += 1;
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b')') => {
                    self.at += 1;
                    return Ok(args);
                }
                _ => return Err(self.error("`,` or `)` was expected in the arguments")),
            }
        }
    }

    /// Compiles a literal first argument of the calls that take a JSONPath or a
    /// regex, so that a bad one is a load-time error and a good one costs nothing
    /// per request.
    fn precompile(&self, method: &str, args: &[Expr]) -> Result<Pre, Error> {
        let Some(Expr::Str(arg)) = args.first() else {
            return Ok(Pre::None);
        };
        match method {
            "path" | "json" => jsonpath::Path::compile(arg)
                .map(Pre::Path)
                .map_err(|e| self.error(format!("{e}: {arg}"))),
            "replaceAll" | "replaceFirst" | "split" => java_regex(arg, false)
                .map(Pre::Regex)
                .map_err(|e| self.error(e)),
            "matches" => java_regex(arg, true)
                .map(Pre::Regex)
                .map_err(|e| self.error(e)),
            _ => Ok(Pre::None),
        }
    }

    fn expr(&mut self) -> Result<Expr, Error> {
        self.enter()?;
        let e = self.binary(0)?;
        self.depth -= 1;
        Ok(e)
    }

    /// The operator at `self.at` of precedence level `level` (0: or … 4: `*`).
    fn op(&mut self, level: u8) -> Option<Op> {
        self.skip_ws();
        let r = self.rest();
        let word = |w: &[u8]| r.starts_with(w) && !r.get(w.len()).is_some_and(|c| ident_char(*c));
        let (op, n) = match level {
            0 if r.starts_with(b"||") => (Op::Or, 2),
            0 if word(b"or") => (Op::Or, 2),
            1 if r.starts_with(b"&&") => (Op::And, 2),
            1 if word(b"and") => (Op::And, 3),
            2 if r.starts_with(b"==") => (Op::Eq, 2),
            2 if r.starts_with(b"!=") => (Op::Ne, 2),
            2 if word(b"eq") => (Op::Eq, 2),
            2 if word(b"ne") => (Op::Ne, 2),
            3 if r.starts_with(b"<=") => (Op::Le, 2),
            3 if r.starts_with(b">=") => (Op::Ge, 2),
            3 if r.starts_with(b"<") => (Op::Lt, 1),
            3 if r.starts_with(b">") => (Op::Gt, 1),
            3 if word(b"le") => (Op::Le, 2),
            3 if word(b"ge") => (Op::Ge, 2),
            3 if word(b"lt") => (Op::Lt, 2),
            3 if word(b"gt") => (Op::Gt, 2),
            4 if r.starts_with(b"+") => (Op::Add, 1),
            4 if r.starts_with(b"-") => (Op::Sub, 1),
            5 if r.starts_with(b"*") => (Op::Mul, 1),
            5 if r.starts_with(b"/") => (Op::Div, 1),
            5 if r.starts_with(b"%") => (Op::Mod, 1),
            _ => return None,
        };
        self.at += n;
        Some(op)
    }

    fn binary(&mut self, level: u8) -> Result<Expr, Error> {
        if level > 5 {
            return self.unary();
        }
        let mut a = self.binary(level + 1)?;
        while let Some(op) = self.op(level) {
            let b = self.binary(level + 1)?;
            a = Expr::Bin(op, Box::new(a), Box::new(b));
        }
        Ok(a)
    }

    fn unary(&mut self) -> Result<Expr, Error> {
        self.skip_ws();
        let r = self.rest();
        if r.starts_with(b"!") && !r.starts_with(b"!=") {
            self.at += 1;
            self.enter()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        if r.starts_with(b"not") && !r.get(3).is_some_and(|c| ident_char(*c)) {
            self.at += 3;
            self.enter()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        if r.starts_with(b"-") && !r.get(1).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
            self.enter()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Neg(Box::new(e)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, Error> {
        self.skip_ws();
        let Some(c) = self.peek() else {
            return Err(self.error("an expression was expected"));
        };
        match c {
            b'$' => match self.reference(false)? {
                Some(r) => Ok(Expr::Ref(Box::new(r))),
                None => Err(self.error("a $reference was expected")),
            },
            b'(' => {
                self.at += 1;
                let e = self.expr()?;
                self.skip_ws();
                if self.peek() != Some(b')') {
                    return Err(self.error("`)` was expected"));
                }
                self.at += 1;
                Ok(e)
            }
            b'\'' | b'"' => self.string(c),
            b'[' => {
                self.at += 1;
                self.skip_ws();
                let mut items = Vec::new();
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Ok(Expr::List(items));
                }
                let first = self.expr()?;
                self.skip_ws();
                if self.rest().starts_with(b"..") {
                    self.at += 2;
                    let last = self.expr()?;
                    self.skip_ws();
                    if self.peek() != Some(b']') {
                        return Err(self.error("`]` was expected to close the range"));
                    }
                    self.at += 1;
                    return Ok(Expr::Range(Box::new(first), Box::new(last)));
                }
                items.push(first);
                loop {
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => {
                            self.at += 1;
                            items.push(self.expr()?);
                        }
                        Some(b']') => {
                            self.at += 1;
                            return Ok(Expr::List(items));
                        }
                        _ => return Err(self.error("`,` or `]` was expected in the list")),
                    }
                }
            }
            b'{' => {
                self.at += 1;
                let mut entries = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Ok(Expr::Map(entries));
                }
                loop {
                    let k = self.expr()?;
                    self.skip_ws();
                    if self.peek() != Some(b':') {
                        return Err(self.error("`:` was expected in the map"));
                    }
                    self.at += 1;
                    let v = self.expr()?;
                    entries.push((k, v));
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(Expr::Map(entries));
                        }
                        _ => return Err(self.error("`,` or `}` was expected in the map")),
                    }
                }
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ => {
                let start = self.at;
                let word = self.ident();
                match word {
                    "true" => Ok(Expr::Bool(true)),
                    "false" => Ok(Expr::Bool(false)),
                    "null" => Ok(Expr::Null),
                    _ => Err(self.error_at(start, "an expression was expected")),
                }
            }
        }
    }

    fn number(&mut self) -> Result<Expr, Error> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        let float =
            self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit());
        if float {
            self.at += 1;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.at += 1;
            }
        }
        let t = &self.s[start..self.at];
        if float {
            t.parse()
                .map(Expr::Float)
                .map_err(|_| self.error_at(start, "not a number"))
        } else {
            t.parse()
                .map(Expr::Int)
                .map_err(|_| self.error_at(start, "the number is too large"))
        }
    }

    /// A string literal; a double-quoted one with references is interpolated.
    fn string(&mut self, quote: u8) -> Result<Expr, Error> {
        let start = self.at;
        self.at += 1;
        let body = self.at;
        loop {
            match self.peek() {
                None => return Err(self.error_at(start, "the string does not end")),
                Some(b'\\') => self.at += 2.min(self.end - self.at),
                Some(c) if c == quote => break,
                Some(_) => self.at += 1,
            }
        }
        let close = self.at;
        self.at += 1;
        let raw = &self.s[body..close];
        if quote == b'\'' || !raw.contains(['$', '#']) {
            return Ok(Expr::Str(Box::from(raw)));
        }
        // parse the contents as a template of their own
        let (resume, end) = (self.at, self.end);
        self.at = body;
        self.end = close;
        let parsed = self.block();
        self.at = resume;
        self.end = end;
        match parsed? {
            (nodes, Close::Eof) => Ok(Expr::Interp(nodes)),
            (_, Close::End(at) | Close::Else(at) | Close::Elseif(at, _)) => {
                Err(self.error_at(at, "a directive ends outside its string"))
            }
        }
    }
}

/// Drops a directive's indentation (`lead` bytes of spaces and tabs) from `text`.
fn trim_lead(text: &mut String, lead: usize) {
    if lead == usize::MAX || text.len() < lead {
        return;
    }
    let keep = text.len() - lead;
    if text.as_bytes()[keep..]
        .iter()
        .all(|c| *c == b' ' || *c == b'\t')
    {
        text.truncate(keep);
    }
}

fn flush(text: &mut String, nodes: &mut Vec<Node>) {
    if !text.is_empty() {
        nodes.push(Node::Text(Box::from(text.as_str())));
        text.clear();
    }
}

/// Compiles a Java regex (`String.replaceAll`, `matches`, …) as the `regex` crate
/// reads it; `whole`: it must match the whole string (`matches`).
pub fn java_regex(pattern: &str, whole: bool) -> Result<regex::Regex, String> {
    let p = if whole {
        format!("^(?:{pattern})$")
    } else {
        pattern.to_string()
    };
    regex::RegexBuilder::new(&p)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| match e {
            regex::Error::Syntax(s) => format!(
                "the regex {pattern:?} does not compile (lookaround and backreferences are not supported): {}",
                s.lines().last().unwrap_or("")
            ),
            _ => format!("the regex {pattern:?} is too large"),
        })
}
