//! Integration tests: the built binaries run as real processes.

mod auth;
mod cli;
mod cluster;
mod config;
mod core;
mod logs;
mod mkpasswd;
mod monitor;
mod operator;
mod support;
mod syslog;
mod tls;
mod top;
