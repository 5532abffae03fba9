//! [`RedisRealtime`]: one server process's node in a cluster sharing rooms and SSE
//! broadcasts through Redis.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use armature_sse::{SseBroadcaster, SseConfig};
use armature_ws::{Hub, WebSocketConfig, WebSocketManager, WebSocketMessage};
use armature_ws_core::encode_message;
use bytes::Bytes;
use redis::{Client, ConnectionInfo, IntoConnectionInfo, ProtocolVersion, Value};
use tokio::sync::broadcast;

use crate::config::{PubSubMode, RedisConfig, node_of, random_node_id, validate_node_id};
use crate::envelope::Kind;
use crate::link::{self, Endpoint};
use crate::routes::Node;
use crate::stats::{RedisEvent, RedisStats};
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
        let mut applied = self.node.applied.subscribe();
        let wait = applied.wait_for(|a| a.is_some_and(|g| g >= generation));
        matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(_)))
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
