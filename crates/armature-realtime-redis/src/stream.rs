//! Durable stream I/O: reading what a node missed (`XRANGE`), finding where a stream is
//! (`HGET` of its meta hash) when a node subscribes, and a WebSocket member's resume.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use armature_ws::{WebSocketConnection, WebSocketMessage, WebSocketRoom};
use armature_ws_core::encode_message;
use bytes::Bytes;
use redis::Value;

use crate::durable::{FETCH_COUNT, Offset};
use crate::envelope::{self, Envelope};
use crate::link::Conn;
use crate::routes::{DurableChannel, Node, room_frame};
use crate::stats::{Counters, RedisEvent, random_u64};
use crate::{Error, Result};

/// What a WebSocket member's resume did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resumed {
    /// Joined at the current position (told to the client as `@offset`); no offset given.
    Joined(Offset),
    /// The `n` messages after the client's offset were sent, then it joined.
    Replayed(usize),
    /// The client's offset is of another epoch or no longer in the stream: it was sent one
    /// `@reset <offset> <room>` with the current position, then joined.
    Reset(Offset),
}

/// Reads entries after `after` (exclusive) up to `until` (inclusive; `None`: the end).
async fn range(
    conn: &mut Conn,
    d: &DurableChannel,
    after: u64,
    until: Option<u64>,
) -> redis::RedisResult<(Vec<(u64, Envelope)>, bool)> {
    let end = until.map_or_else(|| "+".to_owned(), |u| format!("0-{u}"));
    let reply: Value = redis::cmd("XRANGE")
        .arg(&d.stream_key)
        .arg(format!("(0-{after}"))
        .arg(end)
        .arg("COUNT")
        .arg(FETCH_COUNT)
        .query_async(conn)
        .await?;
    let Value::Array(items) = reply else {
        return Ok((Vec::new(), false));
    };
    let more = items.len() >= FETCH_COUNT;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(parts) = item else { continue };
        let mut parts = parts.into_iter();
        let (Some(id), Some(Value::Array(fields))) = (parts.next(), parts.next()) else {
            continue;
        };
        let id = match id {
            Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
            Value::SimpleString(s) => s,
            _ => continue,
        };
        let Some(n) = id.strip_prefix("0-").and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        let Some(Value::BulkString(bytes)) = fields.into_iter().nth(1) else {
            continue;
        };
        if let Ok(env) = envelope::decode(Bytes::from(bytes)) {
            out.push((n, env));
        }
    }
    Ok((out, more))
}

/// Reads the stream after `after` until the hole is filled (the order's `fetching` flag is
/// set by the caller and cleared here).
pub(crate) fn spawn_fetch(node: Arc<Node>, d: Arc<DurableChannel>, after: u64) {
    tokio::spawn(async move {
        let mut after = after;
        loop {
            let conn = node.conn.read().clone();
            let Some(mut conn) = conn else {
                // The link is down; its return reads the stream again.
                d.order.lock().fetching = false;
                return;
            };
            let result = range(&mut conn, &d, after, None).await;
            let mut order = d.order.lock();
            let Ok((entries, more)) = result else {
                order.fetching = false;
                return;
            };
            let (mut step, recovered) = order.fetched(after, entries, more);
            report_recovered(&node, &d, recovered);
            let next = step.fetch_after.take();
            node.apply(&d, &mut order, step);
            match next {
                Some(a) => after = a,
                None => {
                    order.fetching = false;
                    return;
                }
            }
        }
    });
}

fn report_recovered(node: &Node, d: &DurableChannel, recovered: usize) {
    if recovered > 0 {
        node.counters
            .recovered
            .fetch_add(recovered as u64, Ordering::Relaxed);
        node.counters.emit(RedisEvent::Recovered {
            channel: d.channel.to_string(),
            messages: recovered as u64,
        });
    }
}

/// The channel is (again) subscribed: find the start position the first time, then read
/// whatever the stream holds past the last delivered offset.
pub(crate) async fn catch_up(
    node: &Arc<Node>,
    conn: &mut Conn,
    d: &Arc<DurableChannel>,
) -> redis::RedisResult<()> {
    let started = d.order.lock().epoch.is_some();
    if !started {
        let candidate = random_u64().to_be_bytes();
        let (_, epoch, offset): (i64, Option<Vec<u8>>, Option<u64>) = redis::pipe()
            .cmd("HSETNX")
            .arg(&d.meta_key)
            .arg("epoch")
            .arg(&candidate[..])
            .cmd("HGET")
            .arg(&d.meta_key)
            .arg("epoch")
            .cmd("HGET")
            .arg(&d.meta_key)
            .arg("offset")
            .query_async(conn)
            .await?;
        if d.ttl_ms > 0 {
            let _: Value = redis::cmd("PEXPIRE")
                .arg(&d.meta_key)
                .arg(d.ttl_ms)
                .query_async(conn)
                .await?;
        }
        let epoch = epoch
            .and_then(|e| <[u8; 8]>::try_from(e.as_slice()).ok())
            .map_or(0, u64::from_be_bytes);
        let offset = offset.unwrap_or(0);
        let mut order = d.order.lock();
        if order.epoch.is_none() {
            let step = order.start(epoch, offset.saturating_sub(d.preload));
            node.apply(d, &mut order, step);
        }
    }
    let after = {
        let mut order = d.order.lock();
        if order.fetching {
            None
        } else {
            order.fetching = true;
            Some(order.last)
        }
    };
    if let Some(after) = after {
        spawn_fetch(node.clone(), d.clone(), after);
    }
    d.ready.send_replace(true);
    Ok(())
}

fn marker(kind: &str, offset: Offset, room: &str) -> Bytes {
    encode_message(&WebSocketMessage::text(format!("@{kind} {offset} {room}")))
}

/// Joins `id` to the durable `room`, first sending it what it missed after `from`.
pub(crate) async fn resume(
    node: &Arc<Node>,
    d: &Arc<DurableChannel>,
    room: &WebSocketRoom,
    id: String,
    connection: WebSocketConnection,
    from: Option<Offset>,
) -> Result<Resumed> {
    let mut replay: Vec<(u64, Envelope)> = Vec::new();
    let mut after = from.map_or(0, |f| f.offset);
    loop {
        let (epoch, last) = {
            let order = d.order.lock();
            (order.epoch, order.last)
        };
        let Some(epoch) = epoch else {
            return Err(Error::Closed);
        };
        let current = Offset {
            epoch,
            offset: last,
        };
        let reset = match from {
            None => false,
            Some(f) => f.epoch != epoch || f.offset > last,
        };
        if from.is_none() || reset || after >= last {
            // Everything up to `last` is in `replay`: send it and join under the order's
            // lock, so the next delivery (last + 1) comes after it and nothing in between.
            let order = d.order.lock();
            if order.last != last || order.epoch != Some(epoch) {
                continue;
            }
            let outcome = if from.is_none() {
                connection.send_frame(marker("offset", current, &d.name))?;
                Resumed::Joined(current)
            } else if reset {
                connection.send_frame(marker("reset", current, &d.name))?;
                Resumed::Reset(current)
            } else {
                let n = replay.len();
                for (offset, env) in replay.drain(..) {
                    if env.tag.as_deref() == Some(id.as_str()) {
                        continue;
                    }
                    let at = Offset { epoch, offset };
                    connection.send_frame(room_frame(&d.name, at, &env.payload))?;
                }
                Counters::bump(&node.counters.resumes);
                Resumed::Replayed(n)
            };
            room.join(id, connection)?;
            drop(order);
            return Ok(outcome);
        }
        let conn = node.conn.read().clone();
        let Some(mut conn) = conn else {
            return Err(Error::Closed);
        };
        let (entries, _) = range(&mut conn, d, after, Some(last))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(format!("reading stream: {e}"))))?;
        if entries.first().is_some_and(|(n, _)| *n != after + 1) || entries.is_empty() {
            // Trimmed past the client's offset: it cannot be resumed exactly.
            if let Some(f) = from {
                let _ = f;
                return resume_reset(d, room, id, connection);
            }
        }
        for (n, env) in entries {
            if env.epoch != epoch {
                continue;
            }
            after = n;
            replay.push((n, env));
        }
    }
}

fn resume_reset(
    d: &Arc<DurableChannel>,
    room: &WebSocketRoom,
    id: String,
    connection: WebSocketConnection,
) -> Result<Resumed> {
    let order = d.order.lock();
    let current = DurableChannel::position(&order).ok_or(Error::Closed)?;
    connection.send_frame(marker("reset", current, &d.name))?;
    room.join(id, connection)?;
    drop(order);
    Ok(Resumed::Reset(current))
}
