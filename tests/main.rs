//! Integration tests: the built binaries run as real processes.

mod accounts;
mod auth;
mod cli;
mod cli_server;
mod cluster;
mod config;
mod core;
mod flow;
mod jetstream;
mod jwt;
mod logs;
mod metrics;
mod mkpasswd;
mod monitor;
mod operator;
mod support;
mod syslog;
mod system;
mod tls;
mod top;
