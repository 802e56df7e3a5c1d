//! Velocity templates as API Gateway runs them (the subset its mapping templates
//! use, DESIGN §10): references in silent (`$!x`) and formal (`${x}`) notation with
//! properties, indices and method calls; `#set #if #elseif #else #foreach #break
//! #stop #end`; `##` and `#* *#` comments; Velocity 1.7's whitespace (the line
//! break after a directive is dropped, and a directive alone on its line leaves no
//! trace).
//!
//! A template is compiled once, at load, into a tree whose variables are slots;
//! compile errors carry the template's line and column. Evaluation (`eval`) is
//! bounded: at most 1,000 iterations per `#foreach` (AWS's limit; further items are
//! skipped, as Velocity's `maxloops` does), a step budget for the whole template,
//! and a cap on the output and on every string it builds, so a template can never
//! hang or exhaust a worker.
//!
//! Unit-tested here and in `eval`; end to end in `tests/templates.rs`; fuzzed by
//! `fuzz/fuzz_targets/vtl.rs`.

pub mod eval;
pub mod parse;

use super::jsonpath;

pub use eval::{Inputs, Rendered};

/// A compiled template, shareable by every worker.
#[derive(Debug)]
pub struct Template {
    pub(crate) nodes: Vec<Node>,
    /// Variable names by slot (the first few are the predefined ones).
    pub(crate) slots: Vec<Box<str>>,
    /// Whether it reads `$context` (the caller builds that map only then).
    pub uses_context: bool,
}

/// A compile error, at a line and column of the template (both 1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The byte offset in the template.
    pub offset: usize,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for Error {}

impl Template {
    /// Compiles `text`.
    pub fn compile(text: &str) -> Result<Template, Error> {
        parse::parse(text)
    }
}

/// The slots every template has.
pub(crate) const SLOT_INPUT: u16 = 0;
pub(crate) const SLOT_CONTEXT: u16 = 1;
pub(crate) const SLOT_STAGE_VARIABLES: u16 = 2;
pub(crate) const SLOT_UTIL: u16 = 3;
pub(crate) const SLOT_FOREACH: u16 = 4;
pub(crate) const SLOT_VELOCITY_COUNT: u16 = 5;
pub(crate) const SLOT_VELOCITY_HAS_NEXT: u16 = 6;
pub(crate) const PREDEFINED: [&str; 7] = [
    "input",
    "context",
    "stageVariables",
    "util",
    "foreach",
    "velocityCount",
    "velocityHasNext",
];

#[derive(Debug)]
pub(crate) enum Node {
    Text(Box<str>),
    Ref(Ref),
    Set(Ref, Expr),
    If(Vec<(Expr, Vec<Node>)>, Vec<Node>),
    Foreach(u16, Expr, Vec<Node>),
    Break,
    Stop,
}

/// `$name.part…`: a variable and what follows it.
#[derive(Debug)]
pub(crate) struct Ref {
    pub slot: u16,
    pub parts: Vec<Part>,
    pub silent: bool,
    /// The reference as written (rendered as is when its variable is undefined).
    pub src: Box<str>,
}

#[derive(Debug)]
pub(crate) enum Part {
    Prop(Box<str>),
    Call(Call),
    Index(Expr),
}

#[derive(Debug)]
pub(crate) struct Call {
    pub name: Box<str>,
    pub args: Vec<Expr>,
    /// The first argument compiled at load when it is a literal JSONPath or regex.
    pub pre: Pre,
}

#[derive(Debug)]
pub(crate) enum Pre {
    None,
    Path(jsonpath::Path),
    Regex(regex::Regex),
}

#[derive(Debug)]
pub(crate) enum Expr {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Box<str>),
    /// A double-quoted string with references in it.
    Interp(Vec<Node>),
    Ref(Box<Ref>),
    List(Vec<Expr>),
    Range(Box<Expr>, Box<Expr>),
    Map(Vec<(Expr, Expr)>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[cfg(test)]
mod tests;
