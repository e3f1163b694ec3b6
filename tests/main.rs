//! Integration tests: the built binaries run as real processes.

mod mkpasswd;
mod support;
mod top;
