//! Keeping a client connected: the driver task that serves a connection, notices its loss
//! and moves to the next server of the pool with backoff, re-sending subscriptions and the
//! publishes buffered meanwhile.

use super::connection::{establish, serve, Ended, Established};
use super::servers::ServerAddr;
use super::{ConnState, Event, Shared};
use crate::proto;
use std::sync::Arc;

/// Makes a freshly established connection current: subscriptions first, then whatever
/// was buffered while disconnected.
pub(crate) fn activate(shared: &Shared, conn: &Established) {
    let mut prefix = Vec::new();
    {
        let subs = shared.subs.lock();
        let mut b = itoa::Buffer::new();
        for (sid, e) in &subs.map {
            let sid_s = b.format(*sid).as_bytes().to_vec();
            proto::sub(
                &mut prefix,
                e.subject.as_bytes(),
                e.queue.as_deref().map(str::as_bytes),
                &sid_s,
            );
            if let Some(left) = e.remaining() {
                proto::unsub(&mut prefix, &sid_s, Some(left));
            }
        }
    }
    let dropped;
    {
        let mut o = shared.out.lock();
        if o.state == ConnState::Closed {
            return;
        }
        if !prefix.is_empty() {
            prefix.extend_from_slice(&o.buf);
            o.buf = prefix;
        }
        o.state = ConnState::Connected;
        o.gen += 1;
        o.pings_out = 0;
        if conn.info.max_payload > 0 {
            o.max_payload = conn.info.max_payload as usize;
        }
        dropped = (o.dropped_msgs, o.dropped_bytes);
        o.dropped_msgs = 0;
        o.dropped_bytes = 0;
    }
    {
        let mut st = shared.status.lock();
        st.info = conn.info.clone();
        st.addr = Some(conn.addr.clone());
    }
    shared
        .pool
        .lock()
        .merge_discovered(&conn.info.connect_urls, &conn.addr);
    if dropped.0 > 0 {
        shared.emit(Event::Dropped {
            msgs: dropped.0,
            bytes: dropped.1,
        });
    }
    shared.writer_wake.notify_one();
    shared.space.notify_waiters();
}

/// After a loss: stop the old writer, fail flushes whose PING already went to the dead
/// server (PINGs still buffered keep their waiters), and start buffering.
fn mark_disconnected(shared: &Shared) {
    let mut o = shared.out.lock();
    if o.state == ConnState::Closed {
        return;
    }
    o.state = ConnState::Reconnecting;
    o.gen += 1;
    let keep = o.unsent_pings.min(o.pongs.len());
    let fail = o.pongs.len() - keep;
    o.pongs.drain(..fail);
    o.pings_out = 0;
    drop(o);
    shared.space.notify_waiters();
}

pub(crate) async fn run(shared: Arc<Shared>, first: Established) {
    let mut conn = first;
    loop {
        let addr = conn.addr.clone();
        let ended = serve(&shared, conn).await;
        if shared.is_closed() {
            return;
        }
        let reason = match ended {
            Ended::Closed => return,
            Ended::Lost(r) => r,
            Ended::LameDuck => "server entered lame duck mode".to_string(),
        };
        mark_disconnected(&shared);
        if !shared.opts.allow_reconnect {
            shared.emit(Event::Disconnected { reason });
            shared.shut();
            shared.emit(Event::Closed);
            return;
        }
        shared.emit(Event::Disconnected { reason });
        shared.pool.lock().demote(&addr);
        match next_connection(&shared).await {
            Some(c) => {
                activate(&shared, &c);
                shared.emit(Event::Reconnected {
                    url: c.addr.to_string(),
                });
                conn = c;
            }
            None => {
                if !shared.is_closed() {
                    shared.shut();
                    shared.emit(Event::Closed);
                }
                return;
            }
        }
    }
}

/// Tries servers in pool order, waiting `reconnect_wait` (+ jitter) before retrying one
/// attempted recently. `None` when closed or every server ran out of attempts.
async fn next_connection(shared: &Arc<Shared>) -> Option<Established> {
    let mut closed = shared.closed.subscribe();
    loop {
        if shared.is_closed() {
            return None;
        }
        let jitter = if shared.tls.lock().is_some() {
            shared.opts.reconnect_jitter_tls
        } else {
            shared.opts.reconnect_jitter
        };
        let (addr, delay): (ServerAddr, _) = shared.pool.lock().next(
            shared.opts.max_reconnects,
            shared.opts.reconnect_wait,
            jitter,
        )?;
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = closed.wait_for(|c| *c) => return None,
            }
        }
        let attempt = tokio::select! {
            r = establish(shared, &addr) => r,
            _ = closed.wait_for(|c| *c) => return None,
        };
        match attempt {
            Ok(c) => {
                shared.pool.lock().record(&addr, true);
                return Some(c);
            }
            Err(_) => shared.pool.lock().record(&addr, false),
        }
    }
}
