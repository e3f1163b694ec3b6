//! A consumer's configuration: the reference's defaults and checks, in its order, and
//! which changes an update may make.

use crate::jetstream::api::errors::{self, ApiError};
use crate::jetstream::api::types::{
    AckPolicy, ConsumerConfig, DeliverPolicy, Retention, StreamConfig,
};
use nats_common::subject;

/// `ack_wait` of explicit and all ack consumers that set none (30 s).
pub const ACK_WAIT_DEFAULT: i64 = 30_000_000_000;
/// `max_ack_pending` of explicit and all ack consumers that set none.
pub const MAX_ACK_PENDING_DEFAULT: i64 = 1000;
/// `max_waiting` of pull consumers that set none.
pub const MAX_WAITING_DEFAULT: i64 = 512;
/// How long an ephemeral without interest lives (`inactive_threshold` shown).
pub const DELETE_WAIT_DEFAULT: i64 = 5_000_000_000;
pub const MAX_DESCRIPTION_LEN: usize = 4 * 1024;
pub const MAX_NAME_LEN: usize = 255;

/// The reference's setConsumerConfigDefaults (`acc_max_ack_pending`: the account's
/// limit, -1 or 0 for none).
pub fn set_defaults(c: &mut ConsumerConfig, acc_max_ack_pending: i64) {
    if c.deliver_subject.is_empty() && c.max_waiting == 0 {
        c.max_waiting = MAX_WAITING_DEFAULT;
    }
    let acks = matches!(c.ack_policy, AckPolicy::Explicit | AckPolicy::All);
    if c.ack_wait == 0 && acks {
        c.ack_wait = ACK_WAIT_DEFAULT;
    }
    if c.max_deliver == 0 {
        c.max_deliver = -1;
    }
    if let Some(first) = c.backoff.first() {
        c.ack_wait = *first;
    }
    if acks && c.max_ack_pending == 0 {
        c.max_ack_pending = if acc_max_ack_pending > 0 {
            acc_max_ack_pending.min(MAX_ACK_PENDING_DEFAULT)
        } else {
            MAX_ACK_PENDING_DEFAULT
        };
    }
}

fn valid_subject(s: &str) -> bool {
    subject::is_valid_subject(s.as_bytes())
}

fn is_literal(s: &str) -> bool {
    !subject::has_wildcard(s.as_bytes())
}

/// `a` is within `b` (every subject `a` matches, `b` matches).
fn subset(a: &str, b: &str) -> bool {
    subject::is_subset(a.as_bytes(), b.as_bytes())
}

/// The reference's checkConsumerCfg, after the defaults (`acc_max_ack_pending`: the
/// account's limit, -1 or 0 for none).
pub fn check(
    c: &ConsumerConfig,
    stream: &StreamConfig,
    acc_max_ack_pending: i64,
    recovering: bool,
) -> Result<(), ApiError> {
    if c.num_replicas > 0 && c.num_replicas > stream.num_replicas.max(1) {
        return Err(errors::consumer_replicas_exceeds_stream());
    }
    if c.num_replicas < 0 {
        return Err(errors::replicas_negative());
    }
    if !c.backoff.is_empty() && c.max_deliver <= c.backoff.len() as i64 {
        return Err(errors::consumer_max_deliver_backoff());
    }
    if c.description.len() > MAX_DESCRIPTION_LEN {
        return Err(errors::consumer_description_too_long(MAX_DESCRIPTION_LEN));
    }
    if !c.deliver_subject.is_empty() {
        if !is_literal(&c.deliver_subject) {
            return Err(errors::consumer_deliver_to_wildcards());
        }
        if !valid_subject(&c.deliver_subject) {
            return Err(errors::consumer_invalid_deliver_subject());
        }
        if stream
            .subjects
            .iter()
            .any(|s| subset(&c.deliver_subject, s))
        {
            return Err(errors::consumer_deliver_cycle());
        }
        if c.max_waiting != 0 {
            return Err(errors::consumer_push_max_waiting());
        }
        if c.max_ack_pending > 0 && c.ack_policy == AckPolicy::None {
            return Err(errors::consumer_max_pending_ack_policy_required());
        }
        if c.idle_heartbeat > 0 && c.idle_heartbeat < 100_000_000 {
            return Err(errors::consumer_small_heartbeat());
        }
    } else {
        if c.ack_policy == AckPolicy::None && stream.retention == Retention::WorkQueue {
            return Err(errors::consumer_pull_requires_ack());
        }
        if c.rate_limit_bps > 0 {
            return Err(errors::consumer_pull_with_rate_limit());
        }
        if c.max_waiting < 0 {
            return Err(errors::consumer_max_waiting_negative());
        }
        if c.idle_heartbeat > 0 {
            return Err(errors::consumer_hb_requires_push());
        }
        if c.flow_control {
            return Err(errors::consumer_fc_requires_push());
        }
        if c.max_batch < 0 {
            return Err(errors::consumer_max_request_batch_negative());
        }
        if c.max_expires != 0 && c.max_expires < 1_000_000 {
            return Err(errors::consumer_max_request_expires_too_small());
        }
    }
    if acc_max_ack_pending > 0 && c.max_ack_pending > acc_max_ack_pending {
        return Err(errors::consumer_max_pending_ack_excess(acc_max_ack_pending));
    }
    if c.direct {
        if c.deliver_subject.is_empty() {
            return Err(errors::consumer_direct_requires_push());
        }
        if !c.durable_name.is_empty() {
            return Err(errors::consumer_direct_requires_ephemeral());
        }
    }
    if !c.filter_subject.is_empty() && !recovering && !valid_filter(&c.filter_subject, stream) {
        return Err(errors::consumer_filter_not_subset());
    }
    let bad_start = |dp: &str, start: &str| {
        Err(errors::consumer_invalid_policy(format!(
            "consumer delivery policy is deliver {dp}, but optional start {start} is also set"
        )))
    };
    let not_set = |dp: &str, what: &str| {
        Err(errors::consumer_invalid_policy(format!(
            "consumer delivery policy is deliver {dp}, but optional {what} is not set"
        )))
    };
    let seq = c.opt_start_seq > 0;
    let time = c.opt_start_time.is_some();
    match c.deliver_policy {
        DeliverPolicy::All | DeliverPolicy::Last | DeliverPolicy::New => {
            let dp = match c.deliver_policy {
                DeliverPolicy::All => "all",
                DeliverPolicy::Last => "last",
                _ => "new",
            };
            if seq {
                return bad_start(dp, "sequence");
            }
            if time {
                return bad_start(dp, "time");
            }
        }
        DeliverPolicy::LastPerSubject => {
            if seq {
                return bad_start("last per subject", "sequence");
            }
            if time {
                return bad_start("last per subject", "time");
            }
            if c.filter_subject.is_empty() {
                return not_set("last per subject", "filter subject");
            }
        }
        DeliverPolicy::ByStartSequence => {
            if !seq {
                return not_set("by start sequence", "start sequence");
            }
            if time {
                return bad_start("by start sequence", "time");
            }
        }
        DeliverPolicy::ByStartTime => {
            if !time {
                return not_set("by start time", "start time");
            }
            if seq {
                return bad_start("by start time", "start sequence");
            }
        }
    }
    if !c.sample_freq.is_empty() {
        let s = c.sample_freq.trim_end_matches('%');
        match s.parse::<i64>() {
            Err(_) => {
                return Err(errors::consumer_invalid_sampling(format!(
                    "strconv.Atoi: parsing {:?}: invalid syntax",
                    s
                )))
            }
            Ok(n) if n < 0 => return Err(errors::consumer_invalid_sampling("<nil>")),
            _ => {}
        }
    }
    if c.flow_control && c.idle_heartbeat == 0 {
        return Err(errors::consumer_fc_needs_heartbeats());
    }
    if !c.durable_name.is_empty() && !c.name.is_empty() && c.name != c.durable_name {
        return Err(errors::consumer_durable_and_name_mismatch());
    }
    Ok(())
}

/// The reference's validFilteredSubject: within one of the stream's subjects, or (with
/// wildcards) wider than one of them.
fn valid_filter(filter: &str, stream: &StreamConfig) -> bool {
    if !valid_subject(filter) {
        return false;
    }
    let wc = !is_literal(filter);
    stream
        .subjects
        .iter()
        .any(|s| subset(filter, s) || (wc && subset(s, filter)))
}

/// The reference's checkNewConsumerConfig: what an update of an existing consumer may
/// change. `deliver_bound`: the old deliver subject has interest.
pub fn check_update(
    old: &ConsumerConfig,
    new: &ConsumerConfig,
    deliver_bound: impl Fn() -> bool,
) -> Result<(), ApiError> {
    if old == new {
        return Ok(());
    }
    let fail = |m: &str| Err(errors::consumer_create(m));
    if old.deliver_policy != new.deliver_policy {
        return fail("deliver policy can not be updated");
    }
    if old.opt_start_seq != new.opt_start_seq {
        return fail("start sequence can not be updated");
    }
    if old.opt_start_time != new.opt_start_time {
        return fail("start time can not be updated");
    }
    if old.ack_policy != new.ack_policy {
        return fail("ack policy can not be updated");
    }
    if old.replay_policy != new.replay_policy {
        return fail("replay policy can not be updated");
    }
    if old.idle_heartbeat != new.idle_heartbeat {
        return fail("heart beats can not be updated");
    }
    if old.flow_control != new.flow_control {
        return fail("flow control can not be updated");
    }
    if old.max_waiting != new.max_waiting {
        return fail("max waiting can not be updated");
    }
    if old.deliver_subject != new.deliver_subject {
        if old.deliver_subject.is_empty() {
            return fail("can not update pull consumer to push based");
        }
        if new.deliver_subject.is_empty() {
            return fail("can not update push consumer to pull based");
        }
        if deliver_bound() {
            return Err(errors::consumer_name_exist());
        }
    }
    if !new.backoff.is_empty() && new.max_deliver <= new.backoff.len() as i64 {
        return Err(errors::consumer_max_deliver_backoff());
    }
    Ok(())
}

/// The reference's isValidName.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains([' ', '\t', '\r', '\n', '\x0c', '.', '*', '>'])
}
