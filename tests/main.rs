//! Integration tests: the built binaries run as real processes.

mod core;
mod mkpasswd;
mod support;
mod top;
