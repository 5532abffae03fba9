//! [`RedisRealtime`]: one server process's node in a cluster sharing rooms and SSE
//! broadcasts through Redis.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use armature_sse::{SseBroadcaster, SseConfig};
use armature_ws::{
    Hub, WebSocketConfig, WebSocketConnection, WebSocketManager, WebSocketMessage, WebSocketRoom,
};
use armature_ws_core::encode_message;
use bytes::Bytes;
use redis::{Client, ConnectionInfo, IntoConnectionInfo, ProtocolVersion, Value};
use tokio::sync::broadcast;

use crate::config::{
    Durability, PubSubMode, RedisConfig, node_of, random_node_id, validate_node_id,
};
use crate::durable::Offset;
use crate::envelope::Kind;
use crate::link::{self, Endpoint};
use crate::routes::DurableChannel;
use crate::routes::Node;
use crate::stats::{RedisEvent, RedisStats};
use crate::stream::Resumed;
use crate::transport::{RedisRoomTransport, RedisSseTransport};
use crate::{Error, Result};

/// A server process's node: the Redis link, and the way to switch WebSocket rooms and SSE
/// broadcasters from in-process to cluster-wide. Cheap to clone (an `Arc`).
///
/// ```no_run
/// use armature_realtime_redis::{RedisConfig, RedisRealtime};
/// use armature_sse::SseBroadcaster;
/// use armature_ws::WebSocketConfig;
///
/// # #[tokio::main] async fn main() -> Result<(), armature_realtime_redis::Error> {
/// let redis = RedisRealtime::connect(RedisConfig::new("redis://127.0.0.1:6379")).await?;
/// // WebSocket: connection ids carry this node's id, rooms broadcast cluster-wide.
/// let hub = redis.hub(WebSocketConfig::default());
/// let manager = redis.websocket_manager();
/// // SSE: one broadcaster named "prices", shared by every node that attaches it.
/// let prices = redis.attach_sse("prices", SseBroadcaster::new());
/// # drop((hub, manager, prices)); Ok(()) }
/// ```
///
/// The user code that broadcasts (`room.broadcast_text(..)`,
/// `broadcaster.broadcast_message(..)`) does not change.
#[derive(Clone)]
pub struct RedisRealtime {
    node: Arc<Node>,
}

impl fmt::Debug for RedisRealtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRealtime")
            .field("node_id", &self.node.node_id)
            .field("stats", &self.stats())
            .finish()
    }
}

impl RedisRealtime {
    /// Connects to Redis and starts the node's link task (needs a tokio runtime).
    ///
    /// # Errors
    /// [`Error::Validation`] for a bad URL or node id; [`Error::Io`] when Redis cannot be
    /// reached within the connect timeout (the message names the address, never the
    /// password); [`Error::Protocol`] when the server lacks RESP3 or, in
    /// [`PubSubMode::Sharded`], sharded pub/sub (Redis before 7).
    pub async fn connect(config: RedisConfig) -> Result<RedisRealtime> {
        let node_id = match &config.node_id {
            Some(id) => id.clone(),
            None => random_node_id(),
        };
        validate_node_id(&node_id).map_err(Error::Validation)?;
        let (endpoint, address) = endpoint(&config)?;
        let node = Arc::new(Node::new(config, node_id));
        let mut first = match link::connect(&endpoint, &node).await {
            Ok(link) => link,
            Err(e) => {
                let kind = if e.is_timeout() {
                    io::ErrorKind::TimedOut
                } else if e.is_connection_refusal() {
                    io::ErrorKind::ConnectionRefused
                } else {
                    io::ErrorKind::Other
                };
                return Err(Error::Io(io::Error::new(
                    kind,
                    format!("cannot reach redis at {address}: {e}"),
                )));
            }
        };
        if node.config.mode == PubSubMode::Sharded {
            let probe = format!("{}probe", node.config.channel_prefix);
            // On a cluster this reaches the shard of the probe's slot: every shard runs the
            // same version in practice.
            match redis::cmd("SPUBLISH")
                .arg(probe)
                .arg("")
                .query_async::<Value>(first.conn())
                .await
            {
                Ok(Value::Int(_)) => {}
                other => {
                    return Err(Error::Protocol(format!(
                        "redis at {address} does not support sharded pub/sub (Redis 7+ needed; \
                         use PubSubMode::Classic): {other:?}"
                    )));
                }
            }
        }
        tokio::spawn(link::run(Arc::downgrade(&node), endpoint, first));
        if let Some(ttl) = node.config.presence_ttl {
            tokio::spawn(crate::presence::run(Arc::downgrade(&node), ttl));
        }
        Ok(RedisRealtime { node })
    }

    /// This node's id (the origin of what it publishes).
    pub fn node_id(&self) -> &str {
        &self.node.node_id
    }

    /// The room transport of this node, for
    /// [`WebSocketManager::with_transport`].
    pub fn room_transport(&self) -> Arc<RedisRoomTransport> {
        Arc::new(RedisRoomTransport {
            node: self.node.clone(),
        })
    }

    /// A [`WebSocketManager`] whose rooms broadcast through this node.
    pub fn websocket_manager(&self) -> WebSocketManager {
        WebSocketManager::new().with_transport(self.room_transport())
    }

    /// A WebSocket [`Hub`] for `config` whose connection ids start with this node's id and
    /// which [`send_to_connection`](Self::send_to_connection) on any node can reach.
    pub fn hub(&self, config: WebSocketConfig) -> Hub {
        let hub = Hub::new(self.websocket_config(config));
        self.node.add_hub(&hub);
        hub
    }

    /// `config` with this node's id as its [`WebSocketConfig::node_id`]: for a hub made
    /// elsewhere (e.g. by an application framework from its WebSocket config), to be
    /// passed to [`attach_hub`](Self::attach_hub) once built.
    ///
    /// ```no_run
    /// # use armature_realtime_redis::{RedisConfig, RedisRealtime};
    /// # use armature_ws::{Hub, WebSocketConfig};
    /// # async fn f(redis: RedisRealtime) -> Result<(), armature_realtime_redis::Error> {
    /// let hub = Hub::new(redis.websocket_config(WebSocketConfig::default()));
    /// redis.attach_hub(&hub)?;
    /// assert!(hub.next_id().starts_with(redis.node_id()));
    /// # Ok(()) }
    /// ```
    pub fn websocket_config(&self, config: WebSocketConfig) -> WebSocketConfig {
        config.node_id(self.node.node_id.clone())
    }

    /// Makes the connections of `hub` reachable by id from every node.
    ///
    /// # Errors
    /// [`Error::Validation`] when the hub's node id ends in a digit (its connection ids
    /// could not be told apart from another node's).
    pub fn attach_hub(&self, hub: &Hub) -> Result<()> {
        validate_node_id(hub.node_id()).map_err(Error::Validation)?;
        self.node.add_hub(hub);
        Ok(())
    }

    /// Sends `message` to the WebSocket connection with this id, on whichever node it is
    /// connected: directly when it is one of this node's hubs', else through the node
    /// channel of its owner (the id's node prefix).
    ///
    /// # Errors
    /// As [`WebSocketConnection::try_send`](armature_ws::WebSocketConnection::try_send) for
    /// a local connection, and [`Error::Closed`] when the id names this node but no live
    /// connection. For a remote connection delivery is not confirmed: a gone connection
    /// is counted in [`RedisStats::unroutable`] on its node.
    pub fn send_to_connection(&self, id: &str, message: WebSocketMessage) -> Result<()> {
        if let Some(hub) = self.node.local_hub(node_of(id)) {
            return match hub.connection(id) {
                Some(connection) => connection.try_send(message),
                None => Err(Error::Closed),
            };
        }
        self.send_frame_to_connection(id, encode_message(&message))
    }

    /// [`send_to_connection`](Self::send_to_connection) with an already encoded frame.
    ///
    /// # Errors
    /// As [`send_to_connection`](Self::send_to_connection).
    pub fn send_frame_to_connection(&self, id: &str, frame: Bytes) -> Result<()> {
        let node = node_of(id);
        if let Some(hub) = self.node.local_hub(node) {
            return match hub.connection(id) {
                Some(connection) => connection.send_frame(frame),
                None => Err(Error::Closed),
            };
        }
        let channel = self.node.node_channel(node);
        self.node.publish(&channel, Kind::Direct, Some(id), &frame);
        Ok(())
    }

    /// Sets what closes every connection of a user on this node (user id, close reason;
    /// returns how many it closed), and subscribes this node to the cluster-wide users
    /// channel, so that [`close_user`](Self::close_user) on any node reaches it. With the
    /// facade: `redis.on_close_user(move |user, _| app.close_user(user))`.
    pub fn on_close_user(&self, close: impl Fn(&str, &str) -> usize + Send + Sync + 'static) {
        self.node
            .set_close_user(crate::routes::CloseUser(Arc::new(close)));
    }

    /// Logout everywhere: closes every connection of `user` on this node at once (through
    /// the [`on_close_user`](Self::on_close_user) function) and publishes a
    /// [`Kind::CloseUser`](crate::envelope::Kind::CloseUser) envelope that every other node
    /// subscribed to the users channel handles on arrival. Returns how many connections it
    /// closed here; delivery to other nodes is not confirmed (a node that is cut off from
    /// Redis at that moment misses it; the outbox holds it while the link reconnects).
    pub fn close_user(&self, user: &str, reason: &str) -> usize {
        let here = self
            .node
            .close_user_handler()
            .map_or(0, |close| (close.0)(user, reason));
        let channel = self.node.users_channel();
        self.node
            .publish(&channel, Kind::CloseUser, Some(user), reason.as_bytes());
        here
    }

    /// Shares `broadcaster` with every node that attaches a broadcaster under the same
    /// `name`: its broadcasts reach their clients, and theirs reach its clients and
    /// history. Returns it, ready to use.
    ///
    /// Give events ids unique across nodes if clients resume (`Last-Event-ID`) on another
    /// node: [`SseConfig::auto_ids`] numbers per process, so two nodes would both send
    /// id `1`. See `docs/redis.md` for what a resume on another node guarantees.
    pub fn attach_sse(&self, name: &str, broadcaster: SseBroadcaster) -> Arc<SseBroadcaster> {
        let channel = self.node.sse_channel(name);
        let transport = Arc::new(RedisSseTransport {
            node: self.node.clone(),
            channel: channel.clone(),
        });
        let broadcaster = Arc::new(broadcaster.with_transport(transport));
        self.node.add_sse(channel, Arc::downgrade(&broadcaster));
        broadcaster
    }

    /// [`attach_sse`](Self::attach_sse) of a new broadcaster with `config`.
    pub fn sse_broadcaster(&self, name: &str, config: SseConfig) -> Arc<SseBroadcaster> {
        self.attach_sse(name, SseBroadcaster::with_config(config))
    }

    /// Stops listening for the broadcaster attached under `name` (its own broadcasts still
    /// go out). Returns false when none was attached.
    pub fn detach_sse(&self, name: &str) -> bool {
        self.node.remove_sse(&self.node.sse_channel(name))
    }

    /// Makes the room `name` durable on this node: its messages go through a capped Redis
    /// Stream and every node delivers them in the stream's order (the origin too, when its
    /// message comes back from Redis), filling any hole (a cut link, a failover) from the
    /// stream before later messages. Declare it on every node, before members join. The
    /// node listens to a durable room for as long as it is declared, so a member that joins
    /// afterwards gets every message published after its join.
    ///
    /// Members get each message preceded by a text message `@offset <offset> <room>` (one
    /// buffer: nothing comes between the two); a client that reconnects passes its last
    /// offset to [`join_durable`](Self::join_durable). Returns once the node knows the
    /// stream's position.
    ///
    /// # Errors
    /// [`Error::Io`] when Redis did not answer in time (the declaration stands; the node
    /// catches up when the link is back).
    pub async fn durable_room(&self, name: &str, durability: Durability) -> Result<()> {
        let channel = self.node.durable_room_channel(name);
        let d =
            self.node
                .add_durable(self.durable_channel(channel, name, Kind::Room, durability, 0));
        self.wait_ready(&d).await
    }

    /// [`attach_sse`](Self::attach_sse) for a durable broadcaster: its events are kept in a
    /// capped Redis Stream, every node delivers them in the stream's order with the stream
    /// offset as the event id (`id: <offset>`; the broadcaster's own ids are replaced, so
    /// leave `auto_ids` off), and fills holes from the stream. Every node's history then
    /// holds the same events in the same order, so a client resuming with `Last-Event-ID`
    /// on any node gets exactly the events after it, or the `reset` event when the history
    /// no longer has it. On attach the node reads the last `history_len` events of the
    /// stream into the history.
    ///
    /// # Errors
    /// As [`durable_room`](Self::durable_room).
    pub async fn attach_durable_sse(
        &self,
        name: &str,
        broadcaster: SseBroadcaster,
        durability: Durability,
    ) -> Result<Arc<SseBroadcaster>> {
        let channel = self.node.durable_sse_channel(name);
        let preload = broadcaster.config().history_len as u64;
        let transport = Arc::new(RedisSseTransport {
            node: self.node.clone(),
            channel: channel.clone(),
        });
        let broadcaster = Arc::new(broadcaster.with_transport(transport));
        self.node
            .add_sse(channel.clone(), Arc::downgrade(&broadcaster));
        let d = self.node.add_durable(self.durable_channel(
            channel,
            name,
            Kind::Sse,
            durability,
            preload,
        ));
        self.wait_ready(&d).await?;
        Ok(broadcaster)
    }

    fn durable_channel(
        &self,
        channel: Arc<str>,
        name: &str,
        kind: Kind,
        durability: Durability,
        preload: u64,
    ) -> DurableChannel {
        DurableChannel {
            stream_key: format!("{channel}:stream"),
            meta_key: format!("{channel}:meta"),
            channel,
            name: name.to_owned(),
            kind,
            max_len: durability.max_len,
            ttl_ms: durability.ttl.map_or(0, |t| t.as_millis().max(1) as u64),
            preload,
            order: parking_lot::Mutex::new(Default::default()),
            ready: tokio::sync::watch::Sender::new(false),
        }
    }

    async fn wait_ready(&self, d: &DurableChannel) -> Result<()> {
        let mut ready = d.ready.subscribe();
        let timeout = self.node.config.connect_timeout + self.node.config.response_timeout;
        match tokio::time::timeout(timeout, ready.wait_for(|r| *r)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("durable stream {} not reachable in time", d.stream_key),
            ))),
        }
    }

    /// Joins connection `id` to `room` so that every message published on any node after
    /// this returns reaches it: for a volatile room, once this node's subscription to the
    /// room is confirmed (the first member makes the node subscribe); a durable room is
    /// always listened to.
    ///
    /// # Errors
    /// As [`WebSocketRoom::join`](armature_ws::WebSocketRoom::join); [`Error::Io`] when the
    /// subscription was not confirmed within the response timeout (the member stays joined
    /// and gets messages once it is).
    pub async fn join(
        &self,
        room: &WebSocketRoom,
        id: String,
        connection: WebSocketConnection,
    ) -> Result<()> {
        // A room of this node's manager already waits in `add_connection` (its transport's
        // `member_ready`); the wait below then returns at once.
        room.add_connection(id, connection).await?;
        if self.node.durable_room(room.name()).is_some() {
            return Ok(());
        }
        if self.wait_synced(self.node.config.response_timeout).await {
            Ok(())
        } else {
            Err(Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("room {} not subscribed in time", room.name()),
            )))
        }
    }

    /// Joins connection `id` to the durable `room`, resuming from `from` (the last
    /// `@offset` the client saw, e.g. parsed from its `@resume <offset> <room>` message
    /// with [`Offset`]'s `FromStr`): it is first sent exactly the messages after that
    /// offset (each after its `@offset` marker), then live ones, with nothing twice and
    /// nothing missing, whichever node served it before. An offset of another epoch or
    /// already trimmed from the stream gets one `@reset <offset> <room>` message (the
    /// current position) instead. With no offset, the member is told the current position
    /// (`@offset <offset> <room>`) and joins.
    ///
    /// # Errors
    /// [`Error::Validation`] when `room` was not declared with
    /// [`durable_room`](Self::durable_room); [`Error::Closed`] while the link is down;
    /// [`Error::Io`] when reading the stream fails; as the room's join.
    pub async fn join_durable(
        &self,
        room: &WebSocketRoom,
        id: String,
        connection: WebSocketConnection,
        from: Option<Offset>,
    ) -> Result<Resumed> {
        let Some(d) = self.node.durable_room(room.name()) else {
            return Err(Error::Validation(format!(
                "room {} is not durable (RedisRealtime::durable_room)",
                room.name()
            )));
        };
        self.wait_ready(&d).await?;
        crate::stream::resume(&self.node, &d, room, id, connection, from).await
    }

    /// Who is in room `room` on every node (members refreshed within the presence TTL).
    ///
    /// # Errors
    /// [`Error::Validation`] when presence is off ([`RedisConfig::presence`]);
    /// [`Error::Closed`] while the link is down; [`Error::Io`] when Redis fails to answer.
    pub async fn presence(&self, room: &str) -> Result<crate::Presence> {
        let members: Vec<String> = self.read_presence(room, "ids").await?;
        let mut members = members;
        members.sort();
        Ok(crate::Presence { members })
    }

    /// Refreshes this node's presence entries now (instead of at the next `ttl / 3` tick), so
    /// a join or leave that just happened is counted by every node. Returns false when
    /// presence is off or the refresh did not complete within the response timeout.
    pub async fn refresh_presence(&self) -> bool {
        if self.node.config.presence_ttl.is_none() {
            return false;
        }
        let mut passes = self.node.presence_passes.subscribe();
        let before = *passes.borrow_and_update();
        self.node.presence_wake.notify_one();
        let wait = passes.wait_for(|p| *p > before);
        matches!(
            tokio::time::timeout(self.node.config.response_timeout, wait).await,
            Ok(Ok(_))
        )
    }

    /// How many members room `room` has on every node; as [`presence`](Self::presence),
    /// without the ids.
    ///
    /// # Errors
    /// As [`presence`](Self::presence).
    pub async fn presence_count(&self, room: &str) -> Result<usize> {
        self.read_presence(room, "count").await
    }

    async fn read_presence<T: redis::FromRedisValue>(&self, room: &str, what: &str) -> Result<T> {
        let Some(ttl) = self.node.config.presence_ttl else {
            return Err(Error::Validation(
                "presence is off (RedisConfig::presence)".to_owned(),
            ));
        };
        let conn = self.node.conn.read().clone();
        let Some(mut conn) = conn else {
            return Err(Error::Closed);
        };
        redis::cmd("EVAL")
            .arg(crate::presence::READ_SCRIPT)
            .arg(1)
            .arg(crate::presence::key(&self.node, room))
            .arg(ttl.as_millis() as u64)
            .arg(what)
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::Io(io::Error::other(format!("reading presence: {e}"))))
    }

    /// The node's counters.
    pub fn stats(&self) -> RedisStats {
        self.node.stats()
    }

    /// Connection changes and gaps as they happen (the last
    /// [`EVENT_BACKLOG`](crate::EVENT_BACKLOG) are kept for a slow reader).
    pub fn events(&self) -> broadcast::Receiver<RedisEvent> {
        self.node.counters.subscribe()
    }

    /// Waits until the link is up and every channel wanted now is subscribed (e.g. after a
    /// first member joined a room: from then on, other nodes' broadcasts to it arrive).
    /// Returns false if that did not happen within `timeout`.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let generation = self.node.routes.read().generation;
        self.node.synced(generation, timeout).await
    }

    /// Stops the link task; broadcasts still reach local members and clients.
    pub fn shutdown(&self) {
        self.node.shutdown.store(true, Ordering::Release);
        self.node.wake.notify_one();
    }
}

/// A URL as RESP3 connection info.
fn resp3(url: &str) -> Result<ConnectionInfo> {
    let info = url
        .into_connection_info()
        .map_err(|e| Error::Validation(format!("bad redis url: {e}")))?;
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    Ok(info.set_redis_settings(settings))
}

/// The endpoint of `config`, and the address to name in errors (never the password).
fn endpoint(config: &RedisConfig) -> Result<(Endpoint, String)> {
    if config.cluster.is_empty() {
        let info = resp3(&config.url)?;
        let address = info.addr().to_string();
        let client =
            Client::open(info).map_err(|e| Error::Validation(format!("bad redis url: {e}")))?;
        return Ok((Endpoint::Single(client), address));
    }
    let infos = config
        .cluster
        .iter()
        .map(|url| resp3(url))
        .collect::<Result<Vec<_>>>()?;
    let address = format!(
        "cluster {}",
        infos
            .iter()
            .map(|i| i.addr().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok((Endpoint::Cluster(infos), address))
}
