//! Integration tests: the built binaries run as real processes.

mod accounts;
mod auth;
mod cli;
mod cli_server;
mod cluster;
mod config;
mod core;
mod flow;
mod mkpasswd;
mod monitor;
mod support;
mod tls;
mod top;
