//! The NATS wire protocol: the op types, a streaming parser and the encoder.
//!
//! One parser serves three sides of a connection: a server reading a client, a server
//! reading a route peer, and a client reading a server. Each side accepts its own op set.

mod encode;
mod ops;
mod parser;

pub use encode::*;
pub use ops::*;
pub use parser::{drive, Driven, OpHandler, ParseError, Parser, Side};
