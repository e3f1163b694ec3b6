//! JetStream's advisories on `$JS.EVENT.ADVISORY.>`: the reference's TypedEvent head
//! (`type`, `id`, `timestamp`) and the event's own fields, published in an account by the
//! server itself (nothing is sent when nobody listens).

use crate::accounts::Account;
use crate::server::Server;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Fields of one advisory, in the reference's order, and whether it goes out as the
/// reference's stream and consumer messages do (with an empty reply) or as a plain
/// server message (the API audit).
pub struct Advisory(Map<String, Value>, bool);

impl Advisory {
    pub fn new(kind: &str) -> Advisory {
        let mut m = Map::new();
        m.insert("type".into(), kind.into());
        m.insert("id".into(), nats_common::nuid::next().into());
        m.insert(
            "timestamp".into(),
            super::api::types::time_string(super::stream::now_nanos()).into(),
        );
        Advisory(m, true)
    }

    /// Sent without the empty reply.
    pub fn plain(mut self) -> Advisory {
        self.1 = false;
        self
    }

    pub fn with(mut self, key: &str, v: impl Into<Value>) -> Advisory {
        self.0.insert(key.into(), v.into());
        self
    }

    pub fn send(self, server: &Arc<Server>, account: &Arc<Account>, subject: &str) {
        if account
            .sublist
            .read()
            .match_subject(subject.as_bytes())
            .is_empty()
        {
            return;
        }
        let body = serde_json::to_vec(&Value::Object(self.0)).unwrap_or_default();
        let reply: Option<&[u8]> = if self.1 { Some(b"") } else { None };
        server.send_internal(account, subject.as_bytes(), reply, None, &body);
    }
}

/// A stream was created, updated or deleted (`create`, `modify`, `delete`).
pub fn stream_action(server: &Arc<Server>, account: &Arc<Account>, stream: &str, action: &str) {
    let kind = match action {
        "create" => "CREATED",
        "delete" => "DELETED",
        _ => "UPDATED",
    };
    Advisory::new("io.nats.jetstream.advisory.v1.stream_action")
        .with("stream", stream)
        .with("action", action)
        .send(
            server,
            account,
            &format!("$JS.EVENT.ADVISORY.STREAM.{kind}.{stream}"),
        );
}
