//! JetStream's advisories on `$JS.EVENT.ADVISORY.>`: the reference's TypedEvent head
//! (`type`, `id`, `timestamp`) and the event's own fields, published in an account by the
//! server itself (nothing is sent when nobody listens).

use crate::accounts::Account;
use crate::server::Server;
use serde_json::Value;
use std::sync::Arc;

/// Fields of one advisory in the reference's order (as JSON texts: a map would sort
/// them), and whether it goes out as the reference's stream and consumer messages do
/// (with an empty reply) or as a plain server message (the API audit).
pub struct Advisory(Vec<(String, String)>, bool);

impl Advisory {
    pub fn new(kind: &str) -> Advisory {
        Advisory(Vec::new(), true)
            .with("type", kind)
            .with("id", nats_common::nuid::next())
            .with(
                "timestamp",
                super::api::types::time_string(super::stream::now_nanos()),
            )
    }

    pub fn with(self, key: &str, v: impl Into<Value>) -> Advisory {
        let text = serde_json::to_string(&v.into()).unwrap_or_default();
        self.with_raw(key, text)
    }

    /// A field whose value is JSON text already (kept as it was written).
    pub fn with_raw(mut self, key: &str, json: String) -> Advisory {
        self.0.push((key.to_string(), json));
        self
    }

    /// Sent without the empty reply.
    pub fn plain(mut self) -> Advisory {
        self.1 = false;
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
        let mut body = String::from("{");
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&serde_json::to_string(k).unwrap_or_default());
            body.push(':');
            body.push_str(v);
        }
        body.push('}');
        let reply: Option<&[u8]> = if self.1 { Some(b"") } else { None };
        server.send_internal(account, subject.as_bytes(), reply, None, body.as_bytes());
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
