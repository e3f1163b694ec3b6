//! Integration tests: the built binaries run as real processes.

mod cluster;
mod core;
mod mkpasswd;
mod support;
mod top;
