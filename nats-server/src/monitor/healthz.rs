//! `/healthz`: `{"status":"ok"}` once the server runs; with JetStream configured, 503
//! `unavailable` until it has started (single server: no assets to check beyond that, as
//! the reference, for `js-enabled-only` and `js-server-only` alike).

use super::query::Params;
use super::{bad_request, go_json, respond, Mon};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use nats_common::monitor::Healthz;

pub async fn handle(State(mon): Mon, RawQuery(q): RawQuery) -> Response {
    let params = Params::parse(q.as_deref());
    mon.count("/healthz");
    let js_enabled = match params.boolean("js-enabled") {
        Ok(v) => v,
        Err(e) => return bad_request(e),
    };
    if js_enabled {
        tracing::warn!("Healthcheck: js-enabled deprecated, use js-enabled-only instead");
    }
    for name in ["js-enabled-only", "js-server-only"] {
        if let Err(e) = params.boolean(name) {
            return bad_request(e);
        }
    }
    if mon.server.opts().jetstream && mon.server.jetstream().is_none() {
        let h = Healthz {
            status: "unavailable".into(),
            error: "JetStream not enabled".into(),
        };
        return respond(&params, StatusCode::SERVICE_UNAVAILABLE, go_json(&h));
    }
    respond(&params, StatusCode::OK, go_json(&Healthz::ok()))
}
