//! Configuration errors: collected, never swallowed, each with file:line:column and a hint.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// One file the configuration was read from, kept for rendering positions.
#[derive(Debug, Default, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

#[derive(Debug, Default, Clone)]
pub struct Sources {
    pub files: Vec<SourceFile>,
}

impl Sources {
    /// `path:line:column` (1-based) of a byte offset.
    pub fn locate(&self, pos: &Pos) -> String {
        let Some(f) = self.files.get(pos.file) else {
            return "<unknown>".into();
        };
        let offset = pos.span.start.min(f.text.len());
        let before = &f.text.as_bytes()[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let col = f.text[line_start..offset].chars().count() + 1;
        format!("{}:{line}:{col}", f.path.display())
    }
}

/// Where something was written: a file of [`Sources`] and a byte span in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    pub file: usize,
    pub span: Range<usize>,
}

#[derive(Debug)]
pub struct ConfigError {
    pub pos: Option<Pos>,
    pub message: String,
    pub hint: Option<String>,
}

/// All errors of one load or compile, rendered together.
#[derive(Debug, Default)]
pub struct Errors {
    pub sources: Sources,
    pub list: Vec<ConfigError>,
    /// Nothing sensible can follow (syntax error, unreadable file).
    pub fatal: bool,
}

impl Errors {
    pub fn push(&mut self, pos: Pos, message: String, hint: Option<&str>) {
        self.list.push(ConfigError {
            pos: Some(pos),
            message,
            hint: hint.map(str::to_string),
        });
    }

    pub fn push_plain(&mut self, message: String) {
        self.list.push(ConfigError {
            pos: None,
            message,
            hint: None,
        });
    }

    pub fn push_toml(&mut self, file: usize, e: &toml::de::Error) {
        let message = e.message().trim_end().to_string();
        match e.span() {
            Some(span) => self.push(Pos { file, span }, message, None),
            None => self.list.push(ConfigError {
                pos: Some(Pos { file, span: 0..0 }),
                message,
                hint: None,
            }),
        }
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list: Vec<&ConfigError> = self.list.iter().collect();
        list.sort_by_key(|e| e.pos.as_ref().map(|p| (p.file, p.span.start)));
        for e in list {
            match &e.pos {
                Some(p) => write!(f, "{}: error: {}", self.sources.locate(p), e.message)?,
                None => write!(f, "error: {}", e.message)?,
            }
            if let Some(h) = &e.hint {
                write!(f, "\n  hint: {h}")?;
            }
            writeln!(f)?;
        }
        write!(
            f,
            "{} error{}",
            self.list.len(),
            if self.list.len() == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Errors {}
