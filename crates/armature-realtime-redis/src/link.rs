//! The link task: one RESP3 connection to Redis (or a Redis Cluster connection: one per
//! shard, routed by the redis crate) that publishes the outbox in pipelines, keeps the wanted
//! channels subscribed, checks its health, and on loss reconnects with back-off and
//! subscribes every wanted channel again.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionInfo, Pipeline, ProtocolVersion, PushInfo,
    PushKind, RedisFuture, Value,
};
use tokio::sync::Notify;

use crate::config::PubSubMode;
use crate::routes::Node;
use crate::stats::{Counters, RedisEvent, random_u64};

/// Where the node's Redis is.
#[derive(Clone)]
pub(crate) enum Endpoint {
    /// One Redis server.
    Single(Client),
    /// A Redis Cluster, by the seed nodes given.
    Cluster(Vec<ConnectionInfo>),
}

/// A connection to one server, or to a cluster.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Single(_) => "Conn::Single",
            Conn::Cluster(_) => "Conn::Cluster",
        })
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// A live connection and the signal that it dropped.
pub(crate) struct Link {
    conn: Conn,
    dropped: Arc<Notify>,
}

impl Link {
    pub(crate) fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

/// Channels subscribed or unsubscribed concurrently, at most this many at once.
const SUBSCRIBE_CHUNK: usize = 128;

/// Opens a connection whose pushes (messages, and the library's disconnection notice) go
/// straight to the node, on the connection's reader, with no queue in between (a cluster
/// connection forwards its shards' pushes through one channel first).
pub(crate) async fn connect(endpoint: &Endpoint, node: &Arc<Node>) -> redis::RedisResult<Link> {
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
        let Some(node) = weak.upgrade() else {
            return Err(());
        };
        if matches!(info.kind, PushKind::SUnsubscribe | PushKind::Unsubscribe) {
            // Ours, or the server's (a resharding moved the channel's slot away): the link
            // subscribes again whatever is still wanted.
            if let Some(Value::BulkString(channel)) = info.data.first()
                && let Ok(channel) = std::str::from_utf8(channel)
            {
                node.lost_subscription(channel);
            }
            return Ok(());
        }
        if info.kind != message_kind {
            return Ok(());
        }
        let mut data = info.data.into_iter();
        match (data.next(), data.next()) {
            (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) => {
                node.on_message(&channel, Bytes::from(payload));
            }
            _ => Counters::bump(&node.counters.malformed),
        }
        Ok(())
    };
    let conn = match endpoint {
        Endpoint::Single(client) => {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(node.config.connect_timeout))
                .set_response_timeout(Some(node.config.response_timeout))
                .set_push_sender(on_push);
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            // Named after the node, so an operator (or a test) can tell the links apart.
            let name: String = format!("armature-{}", node.node_id)
                .chars()
                .map(|c| if c.is_ascii_graphic() { c } else { '_' })
                .collect();
            redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg(name)
                .query_async::<Value>(&mut conn)
                .await?;
            Conn::Single(conn)
        }
        Endpoint::Cluster(nodes) => {
            let client = ClusterClientBuilder::new(nodes.iter().cloned())
                .use_protocol(ProtocolVersion::RESP3)
                .push_sender(on_push)
                .connection_timeout(node.config.connect_timeout)
                .response_timeout(node.config.response_timeout)
                // A failed shard is the link's to handle (reconnect, resubscribe, recover):
                // a few quick retries for MOVED/ASK and a reconnect, not a long stall.
                .retries(3)
                .min_retry_wait(10)
                .max_retry_wait(200)
                .build()?;
            Conn::Cluster(client.get_async_connection().await?)
        }
    };
    Ok(Link { conn, dropped })
}

/// Runs the link until the node shuts down or is dropped. `first` is the connection made by
/// `connect`.
pub(crate) async fn run(node: Weak<Node>, endpoint: Endpoint, first: Link) {
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
            None => match connect(&endpoint, &n).await {
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
    *node.conn.write() = Some(conn.clone());
    let reason = serve_on(node, &mut conn, &dropped, reconnect).await;
    *node.conn.write() = None;
    reason
}

async fn serve_on(
    node: &Arc<Node>,
    conn: &mut Conn,
    dropped: &Notify,
    reconnect: bool,
) -> Option<String> {
    let mut subscribed: HashSet<Arc<str>> = HashSet::new();
    let mut announced = false;
    loop {
        // Shut down, or nothing but this task holds the node: every handle and transport
        // is gone, nobody can broadcast or listen any more.
        if node.shutdown.load(Ordering::Acquire) || Arc::strong_count(node) == 1 {
            return None;
        }
        if let Err(e) = reconcile(node, conn, &mut subscribed).await {
            return Some(e);
        }
        if !announced {
            announced = true;
            node.counters.connected.store(true, Ordering::Release);
            node.counters.emit(RedisEvent::Connected { reconnect });
        }
        let batch = node.outbox.peek(node.config.batch_messages);
        if !batch.is_empty() {
            if let Err(e) = publish(node, conn, &batch).await {
                return Some(e);
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
                if let Err(e) = redis::cmd("PING").query_async::<Value>(conn).await {
                    return Some(e.to_string());
                }
            }
        }
    }
}

/// Publishes one batch: one pipeline on one server; on a cluster one pipeline per slot (a
/// channel's messages stay in order in its slot's pipeline), the slots' pipelines at once.
async fn publish(
    node: &Node,
    conn: &Conn,
    batch: &[crate::outbox::Outgoing],
) -> Result<(), String> {
    let command = node.publish_command();
    let publisher = format!("{}{:016x}", node.node_id, node.epoch);
    let add = |pipe: &mut Pipeline, m: &crate::outbox::Outgoing| match &m.durable {
        None => {
            pipe.cmd(command)
                .arg(&*m.channel)
                .arg(&m.envelope[..])
                .ignore();
        }
        Some(d) => {
            pipe.cmd("EVAL")
                .arg(crate::durable::PUBLISH_SCRIPT)
                .arg(2)
                .arg(&d.meta_key)
                .arg(&d.stream_key)
                .arg(&*m.channel)
                .arg(&m.envelope[..])
                .arg(d.max_len)
                .arg(&random_u64().to_be_bytes()[..])
                .arg(crate::envelope::epoch_position(&m.envelope))
                .arg(d.ttl_ms)
                .arg(command)
                .arg(&publisher)
                .arg(m.publish_id)
                .ignore();
        }
    };
    match conn {
        Conn::Single(_) => {
            let mut pipe = redis::pipe();
            for m in batch {
                add(&mut pipe, m);
            }
            pipe.query_async::<()>(&mut conn.clone())
                .await
                .map_err(|e| e.to_string())
        }
        Conn::Cluster(_) => {
            let mut by_slot: HashMap<Slot, (Pipeline, Vec<&crate::outbox::Outgoing>)> =
                HashMap::new();
            for m in batch.iter().filter(|m| !m.done.load(Ordering::Acquire)) {
                let (pipe, members) = by_slot
                    .entry(Slot::for_key(m.channel.as_bytes()))
                    .or_insert_with(|| (redis::pipe(), Vec::new()));
                add(pipe, m);
                members.push(m);
            }
            let results = join_all(by_slot.into_values().map(|(pipe, members)| {
                let mut conn = conn.clone();
                async move {
                    let result = pipe.query_async::<()>(&mut conn).await;
                    if result.is_ok() {
                        for m in members {
                            m.done.store(true, Ordering::Release);
                        }
                    }
                    result
                }
            }))
            .await;
            results
                .into_iter()
                .collect::<Result<Vec<()>, _>>()
                .map(drop)
                .map_err(|e| e.to_string())
        }
    }
}

/// One subscribe or unsubscribe command for one channel.
async fn subscription(
    mut conn: Conn,
    mode: PubSubMode,
    subscribe: bool,
    channel: &str,
) -> Result<(), String> {
    let result = match (&mut conn, mode, subscribe) {
        (Conn::Cluster(c), PubSubMode::Sharded, true) => c.ssubscribe(channel).await,
        (Conn::Cluster(c), PubSubMode::Sharded, false) => c.sunsubscribe(channel).await,
        (Conn::Cluster(c), PubSubMode::Classic, true) => c.subscribe(channel).await,
        (Conn::Cluster(c), PubSubMode::Classic, false) => c.unsubscribe(channel).await,
        (Conn::Single(_), _, _) => {
            let command = match (mode, subscribe) {
                (PubSubMode::Sharded, true) => "SSUBSCRIBE",
                (PubSubMode::Sharded, false) => "SUNSUBSCRIBE",
                (PubSubMode::Classic, true) => "SUBSCRIBE",
                (PubSubMode::Classic, false) => "UNSUBSCRIBE",
            };
            match redis::cmd(command)
                .arg(channel)
                .query_async::<Value>(&mut conn)
                .await
            {
                Ok(Value::ServerError(e)) => return Err(format!("{command} {channel}: {e:?}")),
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            }
        }
    };
    result.map_err(|e| format!("subscribing {channel}: {e}"))
}

/// Subscribes the wanted channels not yet subscribed and unsubscribes the others, then
/// records the generation it reached.
async fn reconcile(
    node: &Arc<Node>,
    conn: &mut Conn,
    subscribed: &mut HashSet<Arc<str>>,
) -> Result<(), String> {
    loop {
        let lost = node.take_lost();
        let (wanted, generation) = {
            let routes = node.routes.read();
            (routes.wanted(), routes.generation)
        };
        let mut resubscribe = false;
        for channel in lost {
            if wanted.contains(&channel) && subscribed.remove(&channel) {
                resubscribe = true;
            }
        }
        let applied = *node.applied.borrow();
        if applied == Some(generation) && !resubscribe {
            return Ok(());
        }
        let add: Vec<Arc<str>> = wanted.difference(subscribed).cloned().collect();
        let remove: Vec<Arc<str>> = subscribed.difference(&wanted).cloned().collect();
        let mode = node.config.mode;
        for (on, channels) in [(true, &add), (false, &remove)] {
            for chunk in channels.chunks(SUBSCRIBE_CHUNK) {
                let results = join_all(
                    chunk
                        .iter()
                        .map(|channel| subscription(conn.clone(), mode, on, channel)),
                )
                .await;
                results.into_iter().collect::<Result<Vec<()>, _>>()?;
            }
        }
        for channel in add {
            if let Some(d) = node.durable(&channel) {
                crate::stream::catch_up(node, conn, &d)
                    .await
                    .map_err(|e| format!("reading stream {}: {e}", d.stream_key))?;
            }
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
