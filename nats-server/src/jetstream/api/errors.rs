//! The reference's API errors (jetstream_errors_generated.go): HTTP-like code, JetStream
//! error code and description, for the errors this server can give.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiError {
    pub code: u16,
    pub err_code: u16,
    pub description: String,
}

fn e(code: u16, err_code: u16, description: impl Into<String>) -> ApiError {
    ApiError {
        code,
        err_code,
        description: description.into(),
    }
}

pub fn bad_request() -> ApiError {
    e(400, 10003, "bad request")
}
pub fn invalid_json() -> ApiError {
    e(400, 10025, "invalid JSON")
}
pub fn not_enabled_for_account() -> ApiError {
    e(503, 10039, "JetStream not enabled for account")
}
pub fn no_message_found() -> ApiError {
    e(404, 10037, "no message found")
}
pub fn sequence_not_found(seq: u64) -> ApiError {
    e(400, 10043, format!("sequence {seq} not found"))
}
pub fn stream_not_found() -> ApiError {
    e(404, 10059, "stream not found")
}
pub fn stream_name_exist() -> ApiError {
    e(
        400,
        10058,
        "stream name already in use with a different configuration",
    )
}
pub fn stream_mismatch() -> ApiError {
    e(400, 10056, "stream name in subject does not match request")
}
pub fn stream_name_path_separators() -> ApiError {
    e(400, 10128, "Stream name can not contain path separators")
}
pub fn subject_overlap() -> ApiError {
    e(400, 10065, "subjects overlap with an existing stream")
}
pub fn replicas_not_supported() -> ApiError {
    e(
        500,
        10074,
        "replicas > 1 not supported in non-clustered mode",
    )
}
pub fn stream_sealed() -> ApiError {
    e(400, 10109, "invalid operation on sealed stream")
}
pub fn invalid_config(err: impl Into<String>) -> ApiError {
    e(500, 10052, err)
}
pub fn stream_create(err: impl Into<String>) -> ApiError {
    e(500, 10049, err)
}
pub fn stream_update(err: impl Into<String>) -> ApiError {
    e(500, 10069, err)
}
pub fn stream_delete(err: impl Into<String>) -> ApiError {
    e(500, 10050, err)
}
pub fn stream_general(err: impl Into<String>) -> ApiError {
    e(500, 10051, err)
}
pub fn msg_delete_failed(err: impl Into<String>) -> ApiError {
    e(500, 10057, err)
}
pub fn purge_failed(err: impl Into<String>) -> ApiError {
    e(500, 10110, err)
}
pub fn rollup_failed(err: impl Into<String>) -> ApiError {
    e(500, 10111, err)
}
pub fn store_failed(err: impl Into<String>) -> ApiError {
    e(503, 10077, err)
}
pub fn stream_not_match() -> ApiError {
    e(400, 10060, "expected stream does not match")
}
pub fn wrong_last_sequence(seq: u64) -> ApiError {
    e(400, 10071, format!("wrong last sequence: {seq}"))
}
pub fn wrong_last_msg_id(id: &str) -> ApiError {
    e(400, 10070, format!("wrong last msg ID: {id}"))
}
pub fn message_exceeds_maximum() -> ApiError {
    e(400, 10054, "message size exceeds maximum allowed")
}
pub fn header_exceeds_maximum() -> ApiError {
    e(400, 10097, "header size exceeds maximum allowed of 64k")
}
pub fn replicas_negative() -> ApiError {
    e(400, 10133, "replicas count cannot be negative")
}
pub fn insufficient_resources() -> ApiError {
    e(503, 10023, "insufficient resources")
}
pub fn memory_resources_exceeded() -> ApiError {
    e(500, 10028, "insufficient memory resources available")
}
pub fn storage_resources_exceeded() -> ApiError {
    e(500, 10047, "insufficient storage resources available")
}

// Consumers.
pub fn consumer_not_found() -> ApiError {
    e(404, 10014, "consumer not found")
}
pub fn not_empty_request() -> ApiError {
    e(400, 10038, "expected an empty request payload")
}
pub fn consumer_create(err: impl Into<String>) -> ApiError {
    e(500, 10012, err)
}
pub fn consumer_name_exist() -> ApiError {
    e(400, 10013, "consumer name already in use")
}
pub fn consumer_bad_durable_name() -> ApiError {
    e(400, 10103, "durable name can not contain '.', '*', '>'")
}
pub fn consumer_name_too_long(max: usize) -> ApiError {
    e(
        400,
        10102,
        format!("consumer name is too long, maximum allowed is {max}"),
    )
}
pub fn consumer_durable_and_name_mismatch() -> ApiError {
    e(
        400,
        10132,
        "Consumer Durable and Name have to be equal if both are provided",
    )
}
pub fn consumer_filter_subject_mismatch() -> ApiError {
    e(
        400,
        10131,
        "Consumer create request did not match filtered subject from create subject",
    )
}
pub fn consumer_deliver_cycle() -> ApiError {
    e(400, 10081, "consumer deliver subject forms a cycle")
}
pub fn consumer_deliver_to_wildcards() -> ApiError {
    e(400, 10079, "consumer deliver subject has wildcards")
}
pub fn consumer_description_too_long(max: usize) -> ApiError {
    e(
        400,
        10107,
        format!("consumer description is too long, maximum allowed is {max}"),
    )
}
pub fn consumer_direct_requires_ephemeral() -> ApiError {
    e(400, 10091, "consumer direct requires an ephemeral consumer")
}
pub fn consumer_direct_requires_push() -> ApiError {
    e(400, 10090, "consumer direct requires a push based consumer")
}
pub fn consumer_durable_not_in_subject() -> ApiError {
    e(
        400,
        10016,
        "consumer expected to be durable but no durable name set in subject",
    )
}
pub fn consumer_durable_not_match_subject() -> ApiError {
    e(
        400,
        10017,
        "consumer name in subject does not match durable name in request",
    )
}
pub fn consumer_durable_not_set() -> ApiError {
    e(
        400,
        10018,
        "consumer expected to be durable but a durable name was not set",
    )
}
pub fn consumer_ephemeral_with_durable_name() -> ApiError {
    e(
        400,
        10020,
        "consumer expected to be ephemeral but a durable name was set in request",
    )
}
pub fn consumer_fc_requires_push() -> ApiError {
    e(
        400,
        10089,
        "consumer flow control requires a push based consumer",
    )
}
pub fn consumer_filter_not_subset() -> ApiError {
    e(
        400,
        10093,
        "consumer filter subject is not a valid subset of the interest subjects",
    )
}
pub fn consumer_hb_requires_push() -> ApiError {
    e(
        400,
        10088,
        "consumer idle heartbeat requires a push based consumer",
    )
}
pub fn consumer_invalid_deliver_subject() -> ApiError {
    e(400, 10112, "invalid push consumer deliver subject")
}
pub fn consumer_invalid_policy(err: impl Into<String>) -> ApiError {
    e(400, 10094, err)
}
pub fn consumer_invalid_sampling(err: impl Into<String>) -> ApiError {
    e(
        400,
        10095,
        format!(
            "failed to parse consumer sampling configuration: {}",
            err.into()
        ),
    )
}
pub fn consumer_max_deliver_backoff() -> ApiError {
    e(
        400,
        10116,
        "max deliver is required to be > length of backoff values",
    )
}
pub fn consumer_max_pending_ack_policy_required() -> ApiError {
    e(
        400,
        10082,
        "consumer requires ack policy for max ack pending",
    )
}
pub fn consumer_max_request_batch_negative() -> ApiError {
    e(400, 10114, "consumer max request batch needs to be > 0")
}
pub fn consumer_max_request_expires_too_small() -> ApiError {
    e(
        400,
        10115,
        "consumer max request expires needs to be >= 1ms",
    )
}
pub fn consumer_max_waiting_negative() -> ApiError {
    e(400, 10087, "consumer max waiting needs to be positive")
}
pub fn consumer_name_path_separators() -> ApiError {
    e(400, 10127, "Consumer name can not contain path separators")
}
pub fn consumer_pull_requires_ack() -> ApiError {
    e(400, 10084, "consumer in pull mode requires ack policy")
}
pub fn consumer_pull_with_rate_limit() -> ApiError {
    e(
        400,
        10086,
        "consumer in pull mode can not have rate limit set",
    )
}
pub fn consumer_push_max_waiting() -> ApiError {
    e(400, 10080, "consumer in push mode can not set max waiting")
}
pub fn consumer_replicas_exceeds_stream() -> ApiError {
    e(
        400,
        10126,
        "consumer config replica count exceeds parent stream",
    )
}
pub fn consumer_small_heartbeat() -> ApiError {
    e(400, 10083, "consumer idle heartbeat needs to be >= 100ms")
}
pub fn consumer_store_failed(err: impl Into<String>) -> ApiError {
    e(
        500,
        10104,
        format!("error creating store for consumer: {}", err.into()),
    )
}
pub fn consumer_wq_not_deliver_all() -> ApiError {
    e(
        400,
        10101,
        "consumer must be deliver all on workqueue stream",
    )
}
pub fn consumer_wq_not_unique() -> ApiError {
    e(
        400,
        10100,
        "filtered consumer not unique on workqueue stream",
    )
}
pub fn consumer_wq_multiple_unfiltered() -> ApiError {
    e(
        400,
        10099,
        "multiple non-filtered consumers not allowed on workqueue stream",
    )
}
pub fn consumer_wq_requires_explicit_ack() -> ApiError {
    e(400, 10098, "workqueue stream requires explicit ack")
}
pub fn consumer_fc_needs_heartbeats() -> ApiError {
    e(
        400,
        10108,
        "consumer with flow control also needs heartbeats",
    )
}
pub fn maximum_consumers_limit() -> ApiError {
    e(400, 10026, "maximum consumers limit reached")
}
pub fn cluster_required() -> ApiError {
    e(503, 10010, "JetStream clustering support required")
}
pub fn maximum_streams_limit() -> ApiError {
    e(400, 10027, "maximum number of streams reached")
}
pub fn stream_max_bytes_required() -> ApiError {
    e(
        400,
        10113,
        "account requires a stream config to have max bytes set",
    )
}
pub fn stream_max_stream_bytes_exceeded() -> ApiError {
    e(
        400,
        10122,
        "stream max bytes exceeds account limit max stream bytes",
    )
}
pub fn account_resources_exceeded() -> ApiError {
    e(400, 10002, "resource limits exceeded for account")
}
pub fn consumer_max_pending_ack_excess(limit: i64) -> ApiError {
    e(
        400,
        10121,
        format!("consumer max ack pending exceeds system limit of {limit}"),
    )
}

// Mirrors and sources.
pub fn mirror_max_message_size_too_big() -> ApiError {
    e(
        400,
        10030,
        "stream mirror must have max message size >= source",
    )
}
pub fn mirror_with_sources() -> ApiError {
    e(
        400,
        10031,
        "stream mirrors can not also contain other sources",
    )
}
pub fn mirror_with_subjects() -> ApiError {
    e(400, 10034, "stream mirrors can not contain subjects")
}
pub fn source_max_message_size_too_big() -> ApiError {
    e(
        400,
        10046,
        "stream source must have max message size >= target",
    )
}
pub fn mirror_not_updatable() -> ApiError {
    e(400, 10055, "stream mirror configuration can not be updated")
}
