//! Integration tests: the built binaries run as real processes.

mod accounts;
mod auth;
mod bench_js;
mod cli;
mod cli_js;
mod cli_server;
mod cluster;
mod config;
mod consumer;
mod core;
mod flow;
mod gateway;
mod jetstream;
mod jwt;
mod leaf;
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
mod websocket;
