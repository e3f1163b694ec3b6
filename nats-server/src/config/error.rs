//! Errors from reading and parsing configuration files.

use std::fmt;

use super::value::Pos;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be opened or read.
    Io,
    /// Syntax error.
    Parse,
    /// `$NAME` matched neither a key nor an environment variable, or the
    /// environment variable's text did not parse.
    Variable,
    /// An integer literal does not fit in i64.
    Range,
    /// Maps/arrays/includes nested too deeply (guards the stack).
    Nesting,
}

/// A configuration error.
///
/// `Display` prints exactly what nats-server 2.9.10 prints after its
/// `nats-server: ` prefix (e.g. `Parse error on line 2: 'Unexpected EOF.'`);
/// [`ConfigError::located`] gives the `<file>:<line>:<col>: <message>` form.
/// For errors inside an included file, `pos` and `message` describe the
/// innermost cause while `Display` shows the reference's wrapping chain.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    pub kind: ErrorKind,
    /// Position of the offending character/token (1-based line and column).
    pub pos: Pos,
    /// The bare message, e.g. `Unexpected EOF.`.
    pub message: String,
    display: String,
}

impl ConfigError {
    pub(crate) fn new(kind: ErrorKind, pos: Pos, message: String, display: String) -> Self {
        ConfigError {
            kind,
            pos,
            message,
            display,
        }
    }

    /// A syntax error. `ref_line` is the line number the reference reports,
    /// which is one past `pos.line` when the offending character is the
    /// newline itself (the reference has already counted it).
    pub(crate) fn parse(pos: Pos, ref_line: u32, message: String) -> Self {
        let display = format!("Parse error on line {}: '{}'", ref_line, message);
        ConfigError::new(ErrorKind::Parse, pos, message, display)
    }

    pub(crate) fn io(pos: Pos, message: String) -> Self {
        ConfigError::new(ErrorKind::Io, pos, message.clone(), message)
    }

    /// Wraps an error that happened while processing `include <path>`.
    pub(crate) fn in_include(self, include_path: &str) -> Self {
        let display = format!(
            "error parsing include file '{}', {}",
            include_path, self.display
        );
        ConfigError { display, ..self }
    }

    /// `<file>:<line>:<col>: <message>` with 1-based line and column (the
    /// file part is omitted when the text did not come from a file).
    pub fn located(&self) -> String {
        format!("{}: {}", self.pos, self.message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl std::error::Error for ConfigError {}
