//! The pieces of NATS shared by the server, the `nats` CLI, `nats-top` and the tests.

pub mod client;
pub mod fasthash;
pub mod gofmt;
pub mod headers;
pub mod info;
pub mod monitor;
pub mod nuid;
pub mod proto;
pub mod subject;
pub mod sublist;
pub mod transform;
pub mod ws;
