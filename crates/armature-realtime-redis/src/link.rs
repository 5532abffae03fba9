//! The link task: one RESP3 connection to Redis that publishes the outbox in pipelines,
//! keeps the wanted channels subscribed, checks its health, and on loss reconnects with
//! back-off and subscribes every wanted channel again.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, PushInfo, PushKind, Value};
use tokio::sync::Notify;

use crate::config::PubSubMode;
use crate::routes::Node;
use crate::stats::{Counters, RedisEvent, random_u64};

/// A live connection and the signal that it dropped.
pub(crate) struct Link {
    conn: MultiplexedConnection,
    dropped: Arc<Notify>,
}

impl Link {
    pub(crate) fn conn(&mut self) -> &mut MultiplexedConnection {
        &mut self.conn
    }
}

/// Channels subscribed or unsubscribed concurrently, at most this many at once.
const SUBSCRIBE_CHUNK: usize = 128;

/// Opens a connection whose pushes (messages, and the library's disconnection notice) go
/// straight to the node, on the connection's reader, with no queue in between.
pub(crate) async fn connect(client: &Client, node: &Arc<Node>) -> redis::RedisResult<Link> {
    let dropped = Arc::new(Notify::new());
    let weak: Weak<Node> = Arc::downgrade(node);
    let signal = dropped.clone();
    let message_kind = match node.config.mode {
        PubSubMode::Sharded => PushKind::SMessage,
        PubSubMode::Classic => PushKind::Message,
    };
    let on_push = move |info: PushInfo| -> Result<(), ()> {
        if info.kind == PushKind::Disconnection {
            signal.notify_one();
            return Ok(());
        }
        if info.kind != message_kind {
            return Ok(());
        }
        let Some(node) = weak.upgrade() else {
            return Err(());
        };
        let mut data = info.data.into_iter();
        match (data.next(), data.next()) {
            (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) => {
                node.on_message(&channel, Bytes::from(payload));
            }
            _ => Counters::bump(&node.counters.malformed),
        }
        Ok(())
    };
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(node.config.connect_timeout))
        .set_response_timeout(Some(node.config.response_timeout))
        .set_push_sender(on_push);
    let conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    Ok(Link { conn, dropped })
}

/// Runs the link until the node shuts down or is dropped. `first` is the connection made by
/// `connect`.
pub(crate) async fn run(node: Weak<Node>, client: Client, first: Link) {
    let mut link = Some(first);
    let mut ever_connected = false;
    let mut backoff = match node.upgrade() {
        Some(n) => n.config.backoff_min,
        None => return,
    };
    loop {
        let Some(n) = node.upgrade() else { return };
        if n.shutdown.load(Ordering::Acquire) {
            return;
        }
        let current = match link.take() {
            Some(l) => l,
            None => match connect(&client, &n).await {
                Ok(l) => l,
                Err(_) => {
                    Counters::bump(&n.counters.connect_failures);
                    let (min, max) = (n.config.backoff_min, n.config.backoff_max);
                    drop(n);
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff = (backoff * 2).clamp(min, max);
                    continue;
                }
            },
        };
        backoff = n.config.backoff_min;
        if ever_connected {
            Counters::bump(&n.counters.reconnects);
        }
        let reconnect = ever_connected;
        ever_connected = true;
        let reason = serve(&n, current, reconnect).await;
        n.counters.connected.store(false, Ordering::Release);
        n.counters.subscriptions.store(0, Ordering::Relaxed);
        n.applied.send_replace(None);
        match reason {
            Some(reason) => n.counters.emit(RedisEvent::Disconnected { reason }),
            None => return,
        }
    }
}

/// Serves one connection; returns why it was lost, or `None` on shutdown.
async fn serve(node: &Arc<Node>, link: Link, reconnect: bool) -> Option<String> {
    let Link { mut conn, dropped } = link;
    let mut subscribed: HashSet<Arc<str>> = HashSet::new();
    let mut announced = false;
    loop {
        // Shut down, or nothing but this task holds the node: every handle and transport
        // is gone, nobody can broadcast or listen any more.
        if node.shutdown.load(Ordering::Acquire) || Arc::strong_count(node) == 1 {
            return None;
        }
        if let Err(e) = reconcile(node, &mut conn, &mut subscribed).await {
            return Some(e);
        }
        if !announced {
            announced = true;
            node.counters.connected.store(true, Ordering::Release);
            node.counters.emit(RedisEvent::Connected { reconnect });
        }
        let batch = node.outbox.peek(node.config.batch_messages);
        if !batch.is_empty() {
            let mut pipe = redis::pipe();
            for m in &batch {
                pipe.cmd(node.publish_command())
                    .arg(&*m.channel)
                    .arg(&m.envelope[..])
                    .ignore();
            }
            if let Err(e) = pipe.query_async::<()>(&mut conn).await {
                return Some(e.to_string());
            }
            node.outbox.confirm(batch.len());
            node.counters
                .published
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            continue;
        }
        tokio::select! {
            _ = node.outbox.ready.notified() => {}
            _ = node.wake.notified() => {}
            _ = dropped.notified() => return Some("connection to redis closed".to_owned()),
            _ = tokio::time::sleep(node.config.health_interval) => {
                if let Err(e) = redis::cmd("PING").query_async::<Value>(&mut conn).await {
                    return Some(e.to_string());
                }
            }
        }
    }
}

/// Subscribes the wanted channels not yet subscribed and unsubscribes the others, then
/// records the generation it reached.
async fn reconcile(
    node: &Arc<Node>,
    conn: &mut MultiplexedConnection,
    subscribed: &mut HashSet<Arc<str>>,
) -> Result<(), String> {
    loop {
        let (wanted, generation) = {
            let routes = node.routes.read();
            (routes.wanted(), routes.generation)
        };
        let applied = *node.applied.borrow();
        if applied == Some(generation) {
            return Ok(());
        }
        let (sub, unsub) = match node.config.mode {
            PubSubMode::Sharded => ("SSUBSCRIBE", "SUNSUBSCRIBE"),
            PubSubMode::Classic => ("SUBSCRIBE", "UNSUBSCRIBE"),
        };
        let add: Vec<Arc<str>> = wanted.difference(subscribed).cloned().collect();
        let remove: Vec<Arc<str>> = subscribed.difference(&wanted).cloned().collect();
        for (command, channels) in [(sub, &add), (unsub, &remove)] {
            for chunk in channels.chunks(SUBSCRIBE_CHUNK) {
                let results = join_all(chunk.iter().map(|channel| {
                    let mut conn = conn.clone();
                    async move {
                        redis::cmd(command)
                            .arg(&**channel)
                            .query_async::<Value>(&mut conn)
                            .await
                    }
                }))
                .await;
                for result in results {
                    match result {
                        Ok(Value::ServerError(e)) => return Err(format!("{command}: {e:?}")),
                        Ok(_) => {}
                        Err(e) => return Err(format!("{command}: {e}")),
                    }
                }
            }
        }
        for channel in add {
            subscribed.insert(channel);
        }
        for channel in remove {
            subscribed.remove(&channel);
            node.forget(&channel);
        }
        node.counters
            .subscriptions
            .store(subscribed.len() as u64, Ordering::Relaxed);
        node.applied.send_replace(Some(generation));
    }
}

/// `d` plus up to 25% of it, so nodes that lost Redis together do not reconnect in step.
fn jitter(d: Duration) -> Duration {
    let quarter = d.as_micros() as u64 / 4;
    if quarter == 0 {
        return d;
    }
    d + Duration::from_micros(random_u64() % quarter)
}
