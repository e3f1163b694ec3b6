//! The NATS configuration language.
//!
//! ```text
//! port: 4222
//! authorization { users = [ {user: a, password: "$2a$11$..."} ] }
//! ping_interval = "2m"
//! max_payload = 1MB
//! ```
//!
//! [`parse_file`] / [`parse_str`] turn such text into a [`Value`] tree (the
//! top level is always a map). Values are not interpreted here: durations
//! stay strings/integers ([`Value::as_duration`] interprets them) and sizes
//! are already integers (`1MB` = 1048576, `1k` = 1000). Every node carries
//! its [`Pos`] so option validation can report `<file>:<line>:<col>: ...`.

mod accounts;
pub(crate) use accounts::export_approves;
pub mod apply;
mod error;
mod lexer;
pub mod operator;
mod parser;
mod value;

#[cfg(test)]
mod tests;

use std::path::Path;

// Re-exported for the option-processing code; not all are used yet.
#[allow(unused_imports)]
pub use error::{ConfigError, ErrorKind};
#[allow(unused_imports)]
pub use value::{parse_duration, Entry, Kind, Map, Pos, Value};

/// Parses the configuration file at `path` (includes are resolved relative
/// to the file's directory).
pub fn parse_file(path: &Path) -> Result<Value, ConfigError> {
    let map = parser::parse_file_at(path, Pos::default(), 0)?;
    Ok(top_value(map, Some(path)))
}

/// Parses configuration text. `origin` names the file it came from; it is
/// used in positions and as the base directory for `include`.
pub fn parse_str(text: &str, origin: Option<&Path>) -> Result<Value, ConfigError> {
    let map = parser::Parser::new(text, origin, 0).parse_document()?;
    Ok(top_value(map, origin))
}

fn top_value(map: Map, origin: Option<&Path>) -> Value {
    let pos = Pos {
        file: origin.map(|p| std::sync::Arc::new(p.to_path_buf())),
        line: 1,
        col: 1,
    };
    Value::new(Kind::Map(map), pos)
}
